"""Security (issue 17): what an attacker on this machine, on the network or on a manager could
make the plugin do, through the real `cfy` against simulated managers.

- x01-x02: the workspace never follows a planted symbolic link and keeps private modes
  (item 6).
"""
import os
import stat

from tests.reliability import flows, harness


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_x01_planted_link_at_the_part_path(managers, tmp_path):
    """prepare killed as download-snapshot starts; a symbolic link to a file outside the
    workspace is planted where the download's .part goes: the re-run refuses the workspace
    (exit 2 workspace-unsafe) and the outside file is unchanged; once the link is removed
    the same command finishes."""
    sc = managers
    sc.crash(*flows.prepare_args(), pause=('download-snapshot', 'started', 'after'),
             inside='download-snapshot')
    sid = sc.meta()['snapshot_id']
    directory = os.path.join(sc.workspace(), 'snapshot')
    os.makedirs(directory, mode=0o700, exist_ok=True)
    outside = tmp_path / 'outside.txt'
    outside.write_bytes(b'the operator\'s own file\n')
    part = os.path.join(directory, sid + '.zip.part')
    os.symlink(str(outside), part)

    result = sc.run(*flows.prepare_args())
    assert result.returncode == 2, harness.show(result)
    assert 'Error [workspace-unsafe]' in result.stdout + result.stderr, harness.show(result)
    assert 'Traceback' not in result.stdout + result.stderr
    assert outside.read_bytes() == b'the operator\'s own file\n'
    assert os.path.islink(part)

    os.unlink(part)
    result = sc.run(*flows.prepare_args())
    assert result.returncode == 0, harness.show(result)
    assert outside.read_bytes() == b'the operator\'s own file\n'
    flows.record_server_snapshot(sc)
    flows.assert_snapshot_intact(sc)
    flows.assert_private_modes(sc)


def test_x02_workspace_modes_are_put_back(managers):
    """A prepared workspace whose folders were made 0755 and a file 0644 (a copy, an umask, a
    careless chmod): the next command puts them back to 0700/0600 and says so."""
    sc = managers
    flows.prepare(sc)
    workspace = sc.workspace()
    os.chmod(workspace, 0o755)
    os.chmod(os.path.join(workspace, 'snapshot'), 0o755)
    os.chmod(os.path.join(workspace, 'workspace.json'), 0o644)
    os.chmod(sc.upgrades_dir, 0o755)
    result = sc.run('upgrade', 'status')
    assert result.returncode == 0, harness.show(result)
    assert 'modes are back to 0700/0600' in result.stdout + result.stderr, harness.show(result)
    flows.assert_private_modes(sc)
    assert _mode(sc.upgrades_dir) == 0o700
