"""The new manager's password without `--manager-password` on the command line (issue 17 item
11), through the real `cfy`.

- p01: `new-host --manager-ip ... --manager-password-file FILE`: the profile it creates holds
  the file's first line, the upgrade finishes, the password is printed nowhere.
- p02: the same without any password option, on a terminal (a pseudo-terminal): the password
  is asked (hidden, not echoed) and the profile holds what was typed.
- p03: bad input, exit 2 before any profile or request: both options, a symbolic link, a
  FIFO, a missing file, an empty first line; the message never shows the file's content.
"""
import fcntl
import os
import pty
import select
import subprocess
import termios
import time

import pytest

from tests import flows
from tests.reliability import harness


def _new_host(sc, *password_args):
    new = sc.new
    return ('upgrade', 'new-host', '--manager-ip', '127.0.0.1', '--rest-port', new.rest_port,
            '--profile-name', 'made-here', '--manager-username', 'admin',
            '--ssh-user', new.ssh_user, '--ssh-key', new.ssh_key, '--ssh-port', new.ssh_port,
            '--yes', '--users', 'rest-security') + password_args


def test_p01_password_file(managers, tmp_path):
    sc = managers
    sc.prepare()
    path = tmp_path / 'pw'
    path.write_text(flows.NEW_ADMIN_PASSWORD + '\nsecond line is ignored\n')
    path.chmod(0o600)
    result = sc.run(*_new_host(sc, '--manager-password-file', str(path)))
    assert result.returncode == 0, harness.show(result)
    assert sc.read_profile('made-here')['manager_password'] in (
        flows.NEW_ADMIN_PASSWORD, flows.OLD_ADMIN_PASSWORD)  # followed after the restore
    assert flows.NEW_ADMIN_PASSWORD not in result.stdout + result.stderr
    assert 'second line' not in result.stdout + result.stderr


def _run_on_terminal(sc, args, answer, timeout=flows.RUN_TIMEOUT):
    """Run `cfy ARGS` with a pseudo-terminal as its controlling terminal, stdin, stdout and
    stderr; type ``answer`` at the password prompt; return (exit code, everything shown)."""
    master, slave = pty.openpty()

    def controlling_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([flows.CFY] + [str(a) for a in args], env=sc.env(),
                            stdin=slave, stdout=slave, stderr=slave, cwd=sc.workdir,
                            preexec_fn=controlling_terminal, close_fds=True)
    os.close(slave)
    shown, typed, deadline = b'', False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:         # EIO: the process closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if not typed and b'Password of admin on the new manager' in shown:
                os.write(master, answer.encode() + b'\n')
                typed = True
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    return proc.returncode, typed, shown.decode('utf-8', 'replace')


def test_p02_password_prompt(managers):
    sc = managers
    sc.prepare()
    code, typed, shown = _run_on_terminal(sc, _new_host(sc), flows.NEW_ADMIN_PASSWORD)
    assert typed, shown
    assert code == 0, shown
    assert flows.NEW_ADMIN_PASSWORD not in shown       # not echoed, not logged
    assert sc.read_profile('made-here')['manager_password'] in (
        flows.NEW_ADMIN_PASSWORD, flows.OLD_ADMIN_PASSWORD)


def _bad(tmp_path, kind):
    secret = 'Content-Never-Shown-42'
    real = tmp_path / 'real'
    real.write_text(secret + '\n')
    if kind == 'both':
        return ['--manager-password', 'pw', '--manager-password-file', str(real)], 'exclusive'
    path = tmp_path / 'given'
    if kind == 'symlink':
        os.symlink(str(real), str(path))
        return ['--manager-password-file', str(path)], 'symbolic link'
    if kind == 'fifo':
        os.mkfifo(str(path))
        return ['--manager-password-file', str(path)], 'not a regular file'
    if kind == 'missing':
        return ['--manager-password-file', str(path)], 'No such file'
    path.write_text('\n' + secret + '\n')
    return ['--manager-password-file', str(path)], 'first line is empty'


@pytest.mark.parametrize('kind', ['both', 'symlink', 'fifo', 'missing', 'empty'])
def test_p03_bad_password_input(flow, simulated_manager, tmp_path, kind):
    sc = flow
    new = simulated_manager('7.0', data='empty')
    args, words = _bad(tmp_path, kind)
    marks = len(new.requests)
    result = sc.run('upgrade', 'new-host', '--manager-ip', '127.0.0.1', '--rest-port',
                    new.rest_port, '--profile-name', 'made-here', '--manager-username',
                    'admin', '--yes', *args)
    text = result.stdout + result.stderr
    assert result.returncode == 2, harness.show(result)
    assert words in text, harness.show(result)
    assert 'Traceback' not in text and 'Content-Never-Shown-42' not in text
    if kind != 'both':
        assert 'Error [bad-password-file]' in text, harness.show(result)
    assert not os.path.exists(os.path.join(sc.dot, 'profiles', 'made-here'))
    assert len(new.requests) == marks
