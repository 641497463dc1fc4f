"""The README's main command (`make demo` = `python -m tests.demo`) keeps working, shows
`verify-heals` passing when the old manager is fenced and catching its heals when the fence is
waived, and never prints a password of a simulated manager (issue 17 item 23).

The demo's ``main`` runs here in-process (what `python -m tests.demo` runs) so that the test
knows the simulators it started and their passwords; the commands are the real `cfy` in
subprocesses, and their output is captured at the file-descriptor level.
"""
import os
import re
import tempfile

from tests import demo


def _section(out, heading):
    """The demo output from the banner that starts with `heading` to the next banner."""
    start = out.index('== ' + heading)
    end = out.find('\n' + '=' * 78 + '\n== ', out.index('=' * 78, start) + 78)
    return out[start:end if end != -1 else len(out)]


def test_demo_runs_the_whole_upgrade(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    started = []
    assert demo.main(started) == 0
    out, err = capfd.readouterr()
    out += err
    for heading in ('1. cfy upgrade plan', '2. cfy upgrade prepare', '3. cfy upgrade new-host',
                    '4. cfy upgrade verify-heals', '5. cfy upgrade status', 'Part 2',
                    '6. cfy upgrade verify-heals'):
        assert '== ' + heading in out
    assert 'Agents: 4 of 4 deployment(s) moved.' in out

    # no password of any simulated manager (admin and the seeded users) is printed
    assert len(started) == 4
    passwords = {pw for sim in started for pw in sim.user_passwords.values()}
    passwords |= {sim.admin_password for sim in started}
    assert len(passwords) >= 4 and all(passwords)
    assert [pw for pw in passwords if pw in out] == []
    shown = [line for line in out.splitlines() if line.startswith('$ cfy profiles use ')]
    assert len(shown) == 4 and all(' -p ******** ' in line for line in shown)

    # fenced (part 1): the old manager's failed hosts start no heal; verify-heals exits 0
    old1, old2 = started[0], started[2]
    assert old1.auto_heal.fired == [] and len(old1.auto_heal.suppressed) == 4
    fenced = _section(out, '4. cfy upgrade verify-heals')
    assert 'No suspicious heal found.' in fenced
    assert fenced.rstrip().endswith('[exit code 0: done]')

    # waived (part 2): the old manager heals after the cut-over; verify-heals catches each
    assert 'Auto-heal on the old manager is NOT stopped (--no-stop-old-healing)' in out
    caught = _section(out, '6. cfy upgrade verify-heals')
    assert len(old2.auto_heal.fired) == 4
    for heal_id in old2.auto_heal.fired:
        assert re.search(r'\| {0} \|.*\| terminated \|'.format(heal_id), caught), heal_id
    assert '[exit code 4: suspicious heals found]' in caught

    # it stopped its simulators and cleaned up after itself
    assert all(sim.stopped for sim in started)
    assert not [name for name in os.listdir(str(tmp_path))
                if name.startswith('cfy-upgrade-demo-')]
