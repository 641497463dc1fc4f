"""host.ssh.Host against the simulated manager host (a real SSH server on 127.0.0.1)."""
import hashlib
import json
import os
import socket
import stat

import pytest
from cloudify_cli.env import ProfileContext

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.host import known_hosts, ssh
from cloudify_upgrade_plugin.host.ssh import Host, HostUnavailable, RemoteCommandFailed
from tests.simulator.host import SimulatedHost

SSL = {
    'cloudify_internal_cert.pem': (b'internal cert\n', 0o644),
    'cloudify_internal_key.pem': (b'internal key\n', 0o600),
    'cloudify_internal_ca_cert.pem': (b'ca cert\n', 0o644),
}
REST_SECURITY = b'{"hash_salt": "c2FsdA==", "secret_key": "c2VjcmV0"}\n'


class Systemd(object):
    def __init__(self):
        self.calls = []
        self.answers = {}

    def __call__(self, action, unit):
        self.calls.append((action, unit))
        return self.answers.get((action, unit), (0, ''))


def put_file(root, remote, data, mode=0o644):
    local = os.path.join(str(root), remote.lstrip('/'))
    os.makedirs(os.path.dirname(local), exist_ok=True)
    with open(local, 'wb') as f:
        f.write(data)
    os.chmod(local, mode)
    return local


def on_host(sim, remote):
    return os.path.join(sim.root, remote.lstrip('/'))


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def systemd():
    return Systemd()


@pytest.fixture
def sim(tmp_path, systemd):
    root = tmp_path / 'host'
    for name, (data, mode) in SSL.items():
        put_file(root, '/etc/cloudify/ssl/' + name, data, mode)
    put_file(root, '/opt/manager/rest-security.conf', REST_SECURITY, 0o440)
    with SimulatedHost(root, systemd) as host:
        yield host


def profile_for(sim, **overrides):
    context = {'manager_ip': '127.0.0.1', 'ssh_user': sim.user, 'ssh_key': sim.key_path,
               'ssh_port': sim.port}
    context.update(overrides)
    return ProfileContext(context, profile_name='sim')


@pytest.fixture
def host(sim, tmp_path):
    with Host.from_profile(profile_for(sim),
                           known_hosts_path=str(tmp_path / 'known_hosts')) as h:
        yield h


# ------------------------------------------------------------------- commands


def test_run_returns_rc_and_stdout(host, sim):
    assert host.run(['echo', 'hello']) == (0, 'hello\n')
    assert host.run(['false'], check=False) == (1, '')
    assert sim.commands == ['echo hello', 'false']


def test_every_argument_is_quoted(host, sim):
    nasty = 'it\'s a "test" with $HOME; rm -rf / && `id` | cat > x'
    rc, out = host.run(['echo', nasty, 'two  spaces'])
    assert out == nasty + ' two  spaces\n'
    assert sim.commands[-1] == ssh.quote_argv(['echo', nasty, 'two  spaces'])


def test_failed_command_raises_with_the_remote_message(host):
    with pytest.raises(RemoteCommandFailed) as info:
        host.run(['mkdir', '-p', '/etc/cloudify/backup'])
    err = info.value
    assert err.error_id == 'ssh-command-failed'
    assert err.rc == 1
    assert 'Permission denied' in err.message
    assert isinstance(err, UpgradeError)


def test_sudo_prefix(host, sim):
    host.run(['mkdir', '-p', '/etc/cloudify/backup'], sudo=True)
    assert sim.commands[-1] == 'sudo -n mkdir -p /etc/cloudify/backup'
    assert os.path.isdir(on_host(sim, '/etc/cloudify/backup'))


def test_sudo_needing_a_password(host, sim):
    sim.sudo_allowed = False
    with pytest.raises(RemoteCommandFailed) as info:
        host.run(['true'], sudo=True)
    assert info.value.error_id == 'ssh-sudo-failed'
    assert sim.user in info.value.hints[0]


def test_unknown_command_exit_code(host):
    assert host.run(['cfy_manager', 'remove', '-f'], check=False)[0] == 127


def test_quote_argv():
    assert ssh.quote_argv(['cat', '/a b']) == "cat '/a b'"
    assert ssh.quote_argv(['systemctl', 'stop', 'x'], sudo=True) == 'sudo -n systemctl stop x'
    with pytest.raises(ValueError):
        ssh.quote_argv([])
    with pytest.raises(ValueError):
        ssh.quote_argv(['cat', None])


# ---------------------------------------------------------------------- files


def test_read_file(host):
    assert host.read_file('/opt/manager/rest-security.conf', sudo=True) == REST_SECURITY
    with pytest.raises(RemoteCommandFailed) as info:
        host.read_file('/opt/manager/nothing')
    assert info.value.error_id == 'remote-file-missing'


def test_get_is_private_and_atomic(host, sim, tmp_path):
    dest = tmp_path / 'backups' / 'rest-security.conf'
    result = host.get('/opt/manager/rest-security.conf', str(dest), sudo=True)
    assert dest.read_bytes() == REST_SECURITY
    assert mode_of(dest) == 0o600
    assert result == {'path': str(dest), 'size': len(REST_SECURITY),
                      'sha256': hashlib.sha256(REST_SECURITY).hexdigest()}
    assert os.listdir(str(dest.parent)) == ['rest-security.conf']
    host.get('/etc/cloudify/ssl/cloudify_internal_cert.pem', str(tmp_path / 'c.pem'),
             mode=0o640)
    assert mode_of(tmp_path / 'c.pem') == 0o640


def test_failed_get_leaves_nothing(host, tmp_path):
    dest = tmp_path / 'out' / 'x'
    with pytest.raises(RemoteCommandFailed):
        host.get('/opt/manager/missing', str(dest))
    assert os.listdir(str(tmp_path / 'out')) == []


def test_get_streams_a_large_file(host, sim, tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 17)
    put_file(sim.root, '/opt/manager/resources/snapshots/s1/s1.zip', data, 0o600)
    result = host.get('/opt/manager/resources/snapshots/s1/s1.zip', str(tmp_path / 's1.zip'))
    assert result['sha256'] == hashlib.sha256(data).hexdigest()
    assert (tmp_path / 's1.zip').read_bytes() == data


def test_put_without_sudo(host, sim, tmp_path):
    local = tmp_path / 'my file.txt'
    local.write_bytes(b'payload\n')
    host.put(str(local), '/tmp/my file.txt', mode=0o640)
    remote = on_host(sim, '/tmp/my file.txt')
    assert open(remote, 'rb').read() == b'payload\n'
    assert mode_of(remote) == 0o640
    assert sorted(os.listdir(on_host(sim, '/tmp'))) == ['my file.txt']
    with pytest.raises(RemoteCommandFailed):
        host.put(str(local), '/opt/manager/rest-security.conf')
    assert open(on_host(sim, '/opt/manager/rest-security.conf'), 'rb').read() == REST_SECURITY


def test_put_with_sudo_replaces_atomically(host, sim, tmp_path):
    local = tmp_path / 'rest-security.conf'
    local.write_bytes(b'{"hash_salt": "bmV3"}\n')
    host.put(str(local), '/opt/manager/rest-security.conf', mode=0o440, sudo=True,
             owner='cfyuser:cfyuser')
    remote = on_host(sim, '/opt/manager/rest-security.conf')
    assert open(remote, 'rb').read() == b'{"hash_salt": "bmV3"}\n'
    assert mode_of(remote) == 0o440
    assert os.listdir(on_host(sim, '/opt/manager')) == ['rest-security.conf']
    assert os.listdir(on_host(sim, '/tmp')) == []
    sudo_commands = [c for c in sim.commands if c.startswith('sudo -n ')]
    assert any(c.startswith('sudo -n chown cfyuser:cfyuser ') for c in sudo_commands)
    assert sudo_commands[-1].startswith('sudo -n mv -f ')


def test_file_and_dir_exist(host):
    assert host.file_exists('/opt/manager/rest-security.conf') is True
    assert host.file_exists('/etc/cloudify/ssl') is False
    assert host.dir_exists('/etc/cloudify/ssl') is True
    assert host.dir_exists('/root/cloudify') is False


# ---------------------------------------------------------------- directories


def test_get_dir_copies_ssl_privately_with_a_manifest(host, sim, tmp_path):
    local = tmp_path / 'backups' / 'ssl'
    local.mkdir(parents=True)
    (local / 'stale.pem').write_bytes(b'old')
    manifest = host.get_dir('/etc/cloudify/ssl', str(local))
    assert sorted(os.listdir(str(local))) == sorted(SSL)
    assert mode_of(local) == 0o700
    for name, (data, _) in SSL.items():
        assert (local / name).read_bytes() == data
        assert mode_of(local / name) == 0o600
    entries = {e['name']: e for e in manifest['entries']}
    assert entries['cloudify_internal_cert.pem']['mode'] == '0644'
    assert entries['cloudify_internal_key.pem']['mode'] == '0600'
    assert entries['cloudify_internal_key.pem']['sha256'] == \
        hashlib.sha256(b'internal key\n').hexdigest()
    assert entries['.']['type'] == 'dir'
    saved = json.loads((tmp_path / 'backups' / 'ssl.manifest.json').read_text())
    assert saved == manifest
    assert mode_of(tmp_path / 'backups' / 'ssl.manifest.json') == 0o600
    assert sorted(os.listdir(str(tmp_path / 'backups'))) == ['ssl', 'ssl.manifest.json']
    assert sim.commands[-1] == 'sudo -n tar czf - -C /etc/cloudify ssl'


def test_get_dir_of_a_missing_directory(host, tmp_path):
    backups = tmp_path / 'backups'
    with pytest.raises(RemoteCommandFailed) as info:
        host.get_dir('/root/cloudify', str(backups / 'x'))
    assert info.value.error_id == 'remote-file-missing'
    assert os.listdir(str(backups)) == []


def test_put_dir_restores_the_remote_modes(host, sim, tmp_path):
    local = tmp_path / 'ssl'
    host.get_dir('/etc/cloudify/ssl', str(local))
    host.put_dir(str(local), '/etc/cloudify/restored/ssl')
    for name, (data, mode) in SSL.items():
        remote = on_host(sim, '/etc/cloudify/restored/ssl/' + name)
        assert open(remote, 'rb').read() == data
        assert mode_of(remote) == mode


# ------------------------------------------------------------------- services


def test_systemctl_and_is_active(host, sim, systemd):
    assert host.systemctl('stop', 'cloudify-riemann') == 0
    assert sim.commands[-1] == 'sudo -n systemctl stop cloudify-riemann'
    systemd.answers[('is-active', 'cloudify-riemann')] = (3, 'inactive')
    assert host.is_active('cloudify-riemann') is False
    assert sim.commands[-1] == 'systemctl is-active cloudify-riemann'
    assert host.is_active('cloudify-restservice') is True
    systemd.answers[('start', 'cloudify-restservice')] = (1, 'Job failed')
    assert host.systemctl('start', 'cloudify-restservice') == 1
    with pytest.raises(RemoteCommandFailed):
        host.systemctl('start', 'cloudify-restservice', check=True)
    assert systemd.calls[0] == ('stop', 'cloudify-riemann')


# ------------------------------------------------------- profile and failures


@pytest.mark.parametrize('overrides,missing', [
    ({'ssh_user': None}, 'ssh_user'),
    ({'ssh_key': None}, 'ssh_key'),
    ({'ssh_key': '/nonexistent/key'}, '/nonexistent/key'),
    ({'manager_ip': None}, 'manager IP'),
    ({'ssh_port': 'abc'}, 'ssh_port'),
])
def test_missing_ssh_settings(sim, overrides, missing):
    with pytest.raises(HostUnavailable) as info:
        Host.from_profile(profile_for(sim, **overrides))
    assert info.value.error_id == 'ssh-not-configured'
    assert missing in info.value.message
    assert any('cfy profiles set --ssh-user' in hint for hint in info.value.hints)


def test_profile_by_name_and_default_known_hosts(sim, cfy_workdir):
    from cloudify_cli import env
    profile_for(sim).save()
    host = Host.from_profile('sim')
    assert (host.hostname, host.port, host.user) == ('127.0.0.1', sim.port, sim.user)
    try:
        assert host.run(['whoami']) == (0, sim.user + '\n')
    finally:
        host.close()
    known = os.path.join(env.CLOUDIFY_WORKDIR, 'upgrade_known_hosts')
    assert known.startswith(str(cfy_workdir))
    assert mode_of(known) == 0o600
    assert open(known).read() == sim.known_hosts_line() + '\n'


def test_legacy_profile_ssh_port_is_honoured(sim, tmp_path):
    profile = ProfileContext({'manager_ip': '127.0.0.1', 'ssh_user': sim.user,
                              'ssh_key': sim.key_path, '_ssh_port': str(sim.port)},
                             profile_name='old')
    assert profile.ssh_port == 22
    with Host.from_profile(profile, known_hosts_path=str(tmp_path / 'kh')) as host:
        assert host.port == sim.port
        assert host.run(['true']) == (0, '')


def test_refused_key(sim, tmp_path):
    sim.refuse_keys = True
    host = Host.from_profile(profile_for(sim), known_hosts_path=str(tmp_path / 'kh'))
    with pytest.raises(HostUnavailable) as info:
        host.run(['true'])
    err = info.value
    assert err.error_id == 'ssh-failed'
    assert '{0}@127.0.0.1:{1}'.format(sim.user, sim.port) in err.message
    assert sim.key_path in err.message
    key_text = open(sim.key_path).read()
    body = [line for line in key_text.splitlines() if line and 'PRIVATE KEY' not in line]
    assert all(line not in err.message for line in body)
    assert sim.commands == []


def test_nothing_listening(tmp_path, sim):
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    host = Host('127.0.0.1', 'centos', sim.key_path, port=port,
                known_hosts_path=str(tmp_path / 'kh'), connect_timeout=5)
    with pytest.raises(HostUnavailable) as info:
        host.run(['true'])
    assert info.value.error_id == 'ssh-failed'
    assert ':{0}'.format(port) in info.value.message


def test_changed_host_key_is_refused(sim, tmp_path, systemd):
    other = SimulatedHost(tmp_path / 'other', systemd)   # another identity, never started
    other.port = sim.port
    known = tmp_path / 'kh'
    known.write_text(other.known_hosts_line() + '\n')
    host = Host.from_profile(profile_for(sim), known_hosts_path=str(known))
    with pytest.raises(HostUnavailable) as info:
        host.run(['true'])
    assert info.value.error_id == 'ssh-host-key-changed'
    assert str(known) in info.value.hints[0]
    assert known.read_text() == other.known_hosts_line() + '\n'
    assert sim.commands == []


def test_pinned_key_is_reused_and_strict_mode_refuses_unknown(sim, tmp_path):
    known = tmp_path / 'kh'
    with Host.from_profile(profile_for(sim), known_hosts_path=str(known)) as host:
        host.run(['true'])
    with Host.from_profile(profile_for(sim), known_hosts_path=str(known),
                           strict_host_keys=True) as host:
        host.run(['true'])
    assert known.read_text() == sim.known_hosts_line() + '\n'
    strict = Host.from_profile(profile_for(sim), known_hosts_path=str(tmp_path / 'empty'),
                               strict_host_keys=True)
    with pytest.raises(HostUnavailable) as info:
        strict.run(['true'])
    assert info.value.error_id == 'ssh-host-key-unknown'
    assert not (tmp_path / 'empty').exists()


def test_write_creates_the_copy_private_from_its_first_byte(host, sim):
    """Issue 17 item 2: staged in a mktemp -d directory (0700), created 0600, removed."""
    host.stage_tag = 'upg-1'
    host.write(b'{"hash_salt": "bmV3"}\n', '/opt/manager/rest-security.conf', mode=0o600,
               sudo=True)
    staged = [c for c in sim.created if c['path'].startswith('/tmp/')]
    assert staged and all((c['mode'], c['dir_mode'], c['via']) == (0o600, 0o700, 'sh')
                          for c in staged)
    assert staged[0]['path'].startswith('/tmp/.cfy-upgrade-upg-1.')
    assert os.listdir(on_host(sim, '/tmp')) == []
    assert os.listdir(on_host(sim, '/opt/manager')) == ['rest-security.conf']


def test_clean_staging_removes_only_this_tags_leftovers(host, sim):
    os.makedirs(on_host(sim, '/tmp/.cfy-upgrade-upg-1.AbCdEfGhIj'))
    put_file(sim.root, '/tmp/.cfy-upgrade-upg-1.AbCdEfGhIj/rest-security.conf', b'x', 0o600)
    os.makedirs(on_host(sim, '/tmp/.cfy-upgrade-other.KlMnOpQrSt'))
    put_file(sim.root, '/opt/manager/.rest-security.conf.cfy-upgrade-upg-1.0a1b2c', b'x')
    put_file(sim.root, '/tmp/unrelated', b'x')
    removed = host.clean_staging('upg-1', remotes=['/opt/manager/rest-security.conf'])
    assert removed == 2
    left = sorted(os.listdir(on_host(sim, '/tmp')))
    assert left == ['.cfy-upgrade-other.KlMnOpQrSt', 'unrelated']
    assert os.listdir(on_host(sim, '/opt/manager')) == ['rest-security.conf']


# -- issue 17 item 5: the operator's known hosts, confirmation, first contact ---------------

def test_the_operators_known_hosts_are_honoured_and_nothing_is_pinned(sim, tmp_path,
                                                                      trust_new_host_keys):
    known_hosts.configure(accept_new=False, interactive=False)
    ssh_dir = tmp_path / 'home' / '.ssh'
    ssh_dir.mkdir()
    (ssh_dir / 'known_hosts').write_text(sim.known_hosts_line() + '\n')
    pinned = tmp_path / 'kh'
    with Host.from_profile(profile_for(sim), known_hosts_path=str(pinned)) as host:
        assert host.verify_host_key() == 'known'
        assert host.run(['true']) == (0, '')
    assert not pinned.exists()
    assert known_hosts.take_accepted() == []


def test_an_unknown_key_is_refused_without_a_confirmation(sim, tmp_path):
    known_hosts.configure(accept_new=False, interactive=False)
    host = Host.from_profile(profile_for(sim), known_hosts_path=str(tmp_path / 'kh'))
    with pytest.raises(HostUnavailable) as info:
        host.verify_host_key()
    error = info.value
    assert error.error_id == 'ssh-host-key-unknown'
    assert known_hosts.fingerprint(_server_key(sim)) in error.message
    assert any('--accept-new-host-keys' in hint for hint in error.hints)
    with pytest.raises(HostUnavailable):
        host.run(['true'])
    assert sim.commands == [] and not (tmp_path / 'kh').exists()


def test_a_confirmed_key_is_pinned_and_recorded(sim, tmp_path, monkeypatch):
    known_hosts.configure(accept_new=False, interactive=True)
    answers = []
    monkeypatch.setattr(known_hosts.click, 'confirm',
                        lambda *args, **kwargs: answers.append(args) or True)
    pinned = tmp_path / 'kh'
    with Host.from_profile(profile_for(sim), known_hosts_path=str(pinned)) as host:
        assert host.verify_host_key() == 'accepted'
        assert host.run(['true']) == (0, '')
    assert len(answers) == 1 and pinned.read_text() == sim.known_hosts_line() + '\n'
    accepted = known_hosts.take_accepted()
    assert [(a['how'], a['pinned_in']) for a in accepted] == [
        ('confirmed at the prompt', str(pinned))]


def test_plan_trusts_for_the_run_only_and_writes_nothing(sim, tmp_path):
    known_hosts.configure(accept_new=True, pin=False)
    pinned = tmp_path / 'kh'
    with Host.from_profile(profile_for(sim), known_hosts_path=str(pinned)) as host:
        assert host.verify_host_key() == 'accepted'
        assert host.run(['true']) == (0, '')     # no second question
    assert not pinned.exists()
    assert [a['pinned_in'] for a in known_hosts.take_accepted()] == [None]


def test_a_changed_key_is_refused_at_the_first_contact(sim, tmp_path, systemd):
    other = SimulatedHost(tmp_path / 'other', systemd)
    other.port = sim.port
    ssh_dir = tmp_path / 'home' / '.ssh'
    ssh_dir.mkdir()
    (ssh_dir / 'known_hosts').write_text(other.known_hosts_line() + '\n')
    host = Host.from_profile(profile_for(sim), known_hosts_path=str(tmp_path / 'kh'))
    with pytest.raises(HostUnavailable) as info:
        host.verify_host_key()
    assert info.value.error_id == 'ssh-host-key-changed'
    assert str(ssh_dir / 'known_hosts') in info.value.message
    assert sim.commands == []


def _server_key(sim):
    return known_hosts.server_key('127.0.0.1', sim.port, 10)
