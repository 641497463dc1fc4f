"""Contract: `python -m tests.simulator ...` prints one JSON line, serves, and stops cleanly
on SIGTERM (issue 3 acceptance; docs/cli-contract.md 'The simulated managers')."""
import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS = {'rest_port', 'ssh_port', 'ssh_user', 'ssh_key', 'admin_username', 'admin_password',
        'rest_protocol', 'rest_certificate', 'http_port'}


def launch(*args):
    return subprocess.Popen([sys.executable, '-m', 'tests.simulator'] + [str(a) for a in args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def port_open(port):
    try:
        with socket.create_connection(('127.0.0.1', port), 1):
            return True
    except OSError:
        return False


def test_runs_prints_one_line_and_stops_on_sigterm(tmp_path):
    proc = launch('--manager-version', '4.1', '--data', 'demo', '--time-scale', '0.05',
                  '--state-dir', tmp_path)
    try:
        info = json.loads(proc.stdout.readline())
        assert set(info) == KEYS
        url = 'http://127.0.0.1:{0}/api/version'.format(info['rest_port'])
        response = requests.get(url, auth=(info['admin_username'], info['admin_password']))
        assert response.json()['version'] == '4.1.0'
        import paramiko                        # tests/simulator/host.py serves SSH
        ssh = paramiko.SSHClient()
        ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        ssh.connect('127.0.0.1', port=info['ssh_port'], username=info['ssh_user'],
                    key_filename=info['ssh_key'], look_for_keys=False, allow_agent=False)
        _, out, _ = ssh.exec_command('systemctl is-active cloudify-riemann')
        assert out.read().decode().strip() == 'active'
        ssh.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out == ''                       # exactly one line was printed
        assert not port_open(info['rest_port'])
        assert os.path.isfile(str(tmp_path / 'host' / 'opt' / 'manager' /
                                  'rest-security.conf'))     # --state-dir keeps the host
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_teardown_on_exit_and_sigint(tmp_path):
    proc = launch('--manager-version', '7.0', '--no-ssh', '--state-dir', tmp_path,
                  '--teardown-on-exit')
    try:
        info = json.loads(proc.stdout.readline())
        assert info['ssh_port'] is None and info['ssh_key'] is None
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert not os.path.exists(str(tmp_path / 'host' / 'opt' / 'manager'))
        assert not os.path.exists(str(tmp_path / 'host' / 'etc' / 'cloudify'))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize('args', [('--manager-version', '9.9'),
                                  ('--manager-version', '4.2', '--data', 'huge')])
def test_bad_arguments(args):
    proc = launch(*args)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and out == ''


def test_fault_flags():
    proc = launch('--manager-version', '7.0', '--no-ssh', '--fail-requests',
                  '/blueprints$:1:503')
    try:
        info = json.loads(proc.stdout.readline())
        url = 'http://127.0.0.1:{0}/api/v3.1/blueprints'.format(info['rest_port'])
        auth = (info['admin_username'], info['admin_password'])
        headers = {'Tenant': 'default_tenant'}
        codes = [requests.get(url, auth=auth, headers=headers).status_code for _ in range(2)]
        assert codes == [503, 200]
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
