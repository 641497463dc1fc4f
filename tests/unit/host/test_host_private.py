"""host.private: a secret file written on a manager host, private from its first byte
(issue 16 item 3), against the simulated manager host (a real SSH server on 127.0.0.1)."""
import hashlib
import os
import stat

import pytest

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.host.private import put_private, remote_sha256, staging_dir
from cloudify_upgrade_plugin.host.ssh import Host
from tests.simulator.host import SimulatedHost
from tests.unit.host.test_host_ssh import (
    REST_SECURITY, Systemd, on_host, profile_for, put_file)

REMOTE = '/opt/manager/rest-security.conf'
NEW = b'{"hash_salt": "bmV3", "secret_key": "bmV3LWtleQ=="}\n'


@pytest.fixture
def sim(tmp_path):
    root = tmp_path / 'host'
    put_file(root, REMOTE, REST_SECURITY, 0o440)
    with SimulatedHost(root, Systemd()) as simulated:
        yield simulated


@pytest.fixture
def host(sim, tmp_path):
    with Host.from_profile(profile_for(sim),
                           known_hosts_path=str(tmp_path / 'known_hosts')) as opened:
        yield opened


def test_put_private_replaces_the_file_through_a_root_only_directory(host, sim):
    put_private(host, NEW, REMOTE, 'upg-1', owner='cfyuser')
    with open(on_host(sim, REMOTE), 'rb') as stream:
        assert stream.read() == NEW
    assert stat.S_IMODE(os.stat(on_host(sim, REMOTE)).st_mode) == 0o600
    staging = staging_dir(REMOTE, 'upg-1')
    assert staging == '/opt/manager/.cfy-upgrade-upg-1'
    assert not os.path.exists(on_host(sim, staging))
    lines = [line.replace('sudo -n ', '') for line in sim.commands]
    assert lines.index('mkdir -m 700 ' + staging) < lines.index('tar xf - -C ' + staging)
    assert 'chown cfyuser {0}/rest-security.conf'.format(staging) in lines
    assert 'mv -f {0}/rest-security.conf {1}'.format(staging, REMOTE) in lines
    assert all(line.startswith('sudo -n ') for line in sim.commands)
    assert not [line for line in sim.commands if '/tmp' in line]


def test_put_private_removes_what_a_killed_run_left(host, sim):
    staging = staging_dir(REMOTE, 'upg:2/x')
    assert staging == '/opt/manager/.cfy-upgrade-upg_2_x'
    os.makedirs(on_host(sim, staging))
    with open(os.path.join(on_host(sim, staging), 'rest-security.conf'), 'wb') as stream:
        stream.write(b'half written')
    put_private(host, NEW, REMOTE, 'upg:2/x')
    assert not os.path.exists(on_host(sim, staging))
    assert remote_sha256(host, REMOTE) == hashlib.sha256(NEW).hexdigest()


def test_put_private_cleans_up_when_a_command_fails(host, sim, monkeypatch):
    real_run = host.run

    def run(argv, **kwargs):
        if argv[0] == 'mv':
            raise UpgradeError('simulated mv failure', error_id='ssh-command-failed')
        return real_run(argv, **kwargs)
    monkeypatch.setattr(host, 'run', run)
    with pytest.raises(UpgradeError):
        put_private(host, NEW, REMOTE, 'upg-3')
    assert not os.path.exists(on_host(sim, staging_dir(REMOTE, 'upg-3')))
    with open(on_host(sim, REMOTE), 'rb') as stream:
        assert stream.read() == REST_SECURITY


def test_remote_sha256(host):
    assert remote_sha256(host, REMOTE) == hashlib.sha256(REST_SECURITY).hexdigest()
    assert remote_sha256(host, '/opt/manager/nothing-here') is None
