"""Contract tests of the simulated manager host (tests/simulator/host.py), a real SSH server.

Clients are the ones the plugin uses: fabric (as cfy 7.0.5 itself builds it, behaviour §6.3:
`fabric.Connection(host, user=ssh_user, port=..., key_filename=ssh_key)`) and paramiko's
SSHClient/SFTP. Host keys: the fabric tests use fabric's own AutoAddPolicy (its default);
`test_known_hosts_line_verifies_with_reject_policy` pins host key checking with RejectPolicy and
`SimulatedHost.known_hosts_line()`.
"""
import hashlib
import io
import os
import socket
import stat
import tarfile

import asyncssh
import fabric
import paramiko
import pytest

from tests.simulator.host import SimulatedHost

SSL_FILES = {   # behaviour §7.1: 4.2+ contents of /etc/cloudify/ssl (names only matter here)
    'cloudify_internal_cert.pem': (b'internal cert\n', 0o644),
    'cloudify_internal_key.pem': (b'internal key\n', 0o600),
    'cloudify_internal_ca_cert.pem': (b'ca cert\n', 0o644),
    'cloudify_external_cert.pem': (b'external cert\n', 0o644),
}


class Recorder:
    """An on_systemctl callback that records calls and answers from a table."""

    def __init__(self):
        self.calls = []
        self.answers = {}

    def __call__(self, action, unit):
        self.calls.append((action, unit))
        return self.answers.get((action, unit), (0, ''))


def _write(root, remote, data, mode=0o644):
    local = os.path.join(str(root), remote.lstrip('/'))
    os.makedirs(os.path.dirname(local), exist_ok=True)
    with open(local, 'wb') as out:
        out.write(data)
    os.chmod(local, mode)
    return local


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def root(tmp_path):
    root = tmp_path / 'host'
    for name, (data, mode) in SSL_FILES.items():
        _write(root, '/etc/cloudify/ssl/' + name, data, mode)
    _write(root, '/opt/manager/rest-security.conf', b'{"hash_salt": "c2FsdA=="}\n', 0o440)
    return root


@pytest.fixture
def host(root, recorder):
    with SimulatedHost(root, recorder) as host:
        yield host


def _client(host, key_filename=None, username=None, policy=None, known_hosts=None):
    client = paramiko.SSHClient()
    if known_hosts:
        client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(policy or paramiko.AutoAddPolicy())
    client.connect('127.0.0.1', port=host.port, username=username or host.user,
                   key_filename=key_filename or host.key_path, look_for_keys=False,
                   allow_agent=False, timeout=10, banner_timeout=10, auth_timeout=10)
    return client


@pytest.fixture
def ssh(host):
    client = _client(host)
    yield client
    client.close()


@pytest.fixture
def conn(host):
    connection = fabric.Connection(
        '127.0.0.1', port=host.port, user=host.user, config=fabric.Config(lazy=True),
        connect_kwargs={'key_filename': host.key_path, 'look_for_keys': False,
                        'allow_agent': False})
    yield connection
    connection.close()


def run(client, command, stdin=None):
    """Run one command over paramiko -> (exit status, stdout bytes, stderr bytes)."""
    chan_in, chan_out, chan_err = client.exec_command(command, timeout=20)
    if stdin is not None:
        chan_in.write(stdin)
    chan_in.channel.shutdown_write()
    out, err = chan_out.read(), chan_err.read()
    return chan_out.channel.recv_exit_status(), out, err


def frun(conn, command):
    return conn.run(command, hide=True, warn=True, in_stream=False)


def _other_key(tmp_path):
    path = str(tmp_path / 'other_ed25519')
    key = asyncssh.generate_private_key('ssh-ed25519')
    key.write_private_key(path)
    key.write_public_key(path + '.pub')
    return path


# ------------------------------------------------------------------ authentication

def test_fabric_key_auth_runs_commands_and_returns_exit_status(host, conn):
    ok = frun(conn, 'echo connected')
    assert (ok.exited, ok.stdout) == (0, 'connected\n')
    assert frun(conn, 'false').exited == 1
    assert host.commands == ['echo connected', 'false']


def test_key_files_are_private(host):
    for path in (host.key_path, host.host_key_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(host.key_path)).st_mode) == 0o700
    assert not host.key_path.startswith(str(host.root) + os.sep)   # not visible over SSH


def test_unauthorized_key_is_refused(host, tmp_path):
    with pytest.raises(paramiko.AuthenticationException):
        _client(host, key_filename=_other_key(tmp_path))
    assert host.commands == []


def test_wrong_user_is_refused(host):
    with pytest.raises(paramiko.AuthenticationException):
        _client(host, username='root')


def test_refuse_keys_fault_toggles(host):
    host.refuse_keys = True
    with pytest.raises(paramiko.AuthenticationException):
        _client(host)
    host.refuse_keys = False
    client = _client(host)
    assert run(client, 'true')[0] == 0
    client.close()


def test_explicit_authorized_keys_path_replaces_the_generated_key(root, recorder, tmp_path):
    other = _other_key(tmp_path)
    authorized = tmp_path / 'authorized_keys'
    authorized.write_bytes(open(other + '.pub', 'rb').read())
    with SimulatedHost(root, recorder, authorized_keys_path=str(authorized)) as host:
        with pytest.raises(paramiko.AuthenticationException):
            _client(host)
        client = _client(host, key_filename=other)
        assert run(client, 'whoami') == (0, b'centos\n', b'')
        client.close()


def test_known_hosts_line_verifies_with_reject_policy(host, tmp_path):
    known = tmp_path / 'known_hosts'
    known.write_text(host.known_hosts_line() + '\n')
    assert host.known_hosts_line().startswith('[127.0.0.1]:%d ssh-ed25519 ' % host.port)
    client = _client(host, policy=paramiko.RejectPolicy(), known_hosts=str(known))
    assert run(client, 'true')[0] == 0
    client.close()
    (tmp_path / 'empty').write_text('')
    with pytest.raises(paramiko.SSHException, match='not found in known_hosts'):
        _client(host, policy=paramiko.RejectPolicy(), known_hosts=str(tmp_path / 'empty'))


# ----------------------------------------------------------------- exec commands

def test_cat_reads_everything_even_without_sudo(ssh):
    # behaviour §7.2: the tool reads the source's /opt/manager/rest-security.conf
    assert run(ssh, 'cat /opt/manager/rest-security.conf') == (
        0, b'{"hash_salt": "c2FsdA=="}\n', b'')
    rc, out, err = run(ssh, 'cat /etc/cloudify/nothing')
    assert (rc, out) == (1, b'')
    assert err == b'cat: /etc/cloudify/nothing: No such file or directory\n'


def test_test_f_and_d_exit_codes(ssh):
    # behaviour §7.1: 3.4.2 has no /etc/cloudify/ssl, so the tool tests before copying
    assert run(ssh, 'test -f /etc/cloudify/ssl/cloudify_internal_key.pem')[0] == 0
    assert run(ssh, 'test -f /etc/cloudify/ssl')[0] == 1
    assert run(ssh, 'test -d /etc/cloudify/ssl')[0] == 0
    assert run(ssh, 'test -d /root/cloudify')[0] == 1


def test_grep_q_detects_update_3_marker(host, ssh):
    # behaviour §7.3 way 2: grep -q "4.1.0-p3" .../snapshots/snapshot_create.py on a patched 4.0.1
    path = ('/opt/mgmtworker/env/lib/python2.7/site-packages/cloudify_system_workflows/'
            'snapshots/snapshot_create.py')
    _write(host.root, path, b"VERSION = '4.1.0-p3-4.0.1'\n")
    assert run(ssh, 'grep -q 4.1.0-p3 %s' % path)[0] == 0
    assert run(ssh, 'grep -q 4.2.0 %s' % path)[0] == 1
    assert run(ssh, 'grep -q 4.1.0-p3 /opt/mgmtworker/missing.py')[0] == 2


def test_sha256sum_ls_and_df(host, ssh):
    data, _ = SSL_FILES['cloudify_internal_key.pem']
    rc, out, _ = run(ssh, 'sha256sum /etc/cloudify/ssl/cloudify_internal_key.pem')
    assert (rc, out.split()) == (0, [hashlib.sha256(data).hexdigest().encode(),
                                     b'/etc/cloudify/ssl/cloudify_internal_key.pem'])
    rc, out, _ = run(ssh, 'ls -1 /etc/cloudify/ssl')
    assert (rc, out.decode().split()) == (0, sorted(SSL_FILES))
    host.disk_kb = (1000000, 250000)
    rc, out, _ = run(ssh, 'df -Pk /opt/manager')
    header, line = out.decode().splitlines()
    assert rc == 0 and header.split()[:4] == ['Filesystem', '1024-blocks', 'Used', 'Available']
    assert line.split()[1:5] == ['1000000', '750000', '250000', '75%']
    assert run(ssh, 'df -Pk /nowhere')[0] == 1


def test_writes_outside_tmp_and_home_need_sudo(host, ssh):
    target = os.path.join(str(host.root), 'opt/manager/rest-security.conf')
    _write(host.root, '/tmp/rest-security.conf', b'{"hash_salt": "bmV3"}\n', 0o600)
    rc, _, err = run(ssh, 'cp /tmp/rest-security.conf /opt/manager/rest-security.conf')
    assert rc == 1 and b'Permission denied' in err
    assert open(target, 'rb').read() == b'{"hash_salt": "c2FsdA=="}\n'
    assert run(ssh, 'mkdir -p /etc/cloudify/backup')[0] == 1
    assert run(ssh, 'rm -f /opt/manager/rest-security.conf')[0] == 1
    assert run(ssh, 'chown cfyuser:cfyuser /opt/manager/rest-security.conf')[0] == 1
    # with sudo (and sudo -n) the same commands work
    assert run(ssh, 'sudo -n cp /tmp/rest-security.conf /opt/manager/rest-security.conf')[0] == 0
    assert open(target, 'rb').read() == b'{"hash_salt": "bmV3"}\n'
    assert run(ssh, 'sudo chown cfyuser:cfyuser /opt/manager/rest-security.conf')[0] == 0
    assert run(ssh, 'sudo mkdir -p /etc/cloudify/backup')[0] == 0
    assert os.path.isdir(os.path.join(str(host.root), 'etc/cloudify/backup'))
    # the user's own places need no sudo
    assert run(ssh, 'mkdir -p /tmp/work/a && true')[0] == 2    # shell syntax is refused
    assert run(ssh, 'mkdir -p /tmp/work/a')[0] == 0
    assert run(ssh, 'mv /tmp/work/a /tmp/work/b')[0] == 0
    assert run(ssh, 'test -d /tmp/work/b')[0] == 0
    assert run(ssh, 'rm -rf /tmp/work')[0] == 0
    assert not os.path.exists(os.path.join(str(host.root), 'tmp/work'))
    assert run(ssh, 'sudo rm -rf /')[0] == 1


def test_sudo_needing_a_password_fails(host, ssh):
    host.sudo_allowed = False
    assert run(ssh, 'sudo -n true') == (1, b'', b'sudo: a password is required\n')
    assert run(ssh, 'true')[0] == 0


def test_chmod_sets_modes(host, ssh):
    _write(host.root, '/tmp/f', b'x', 0o644)
    assert run(ssh, 'chmod 600 /tmp/f')[0] == 0
    assert stat.S_IMODE(os.stat(os.path.join(str(host.root), 'tmp/f')).st_mode) == 0o600
    assert run(ssh, 'chmod u+x /tmp/f')[0] == 1


def test_unknown_command_is_127_and_sudo_reports_it_like_sudo(ssh):
    assert run(ssh, 'cfy_manager remove -f') == (
        127, b'', b'bash: cfy_manager: command not found\n')
    assert run(ssh, 'sudo cfy_manager remove -f') == (
        1, b'', b'sudo: cfy_manager: command not found\n')


# ----------------------------------------------------------------------- systemctl

def test_systemctl_is_delegated_to_the_callback(recorder, conn):
    # behaviour §7.4: `sudo systemctl stop cloudify-riemann` (and disable) on the old manager
    assert frun(conn, 'sudo systemctl stop cloudify-riemann').exited == 0
    assert frun(conn, 'sudo systemctl disable cloudify-riemann.service').exited == 0
    recorder.answers[('is-active', 'cloudify-riemann')] = (3, 'inactive')
    result = frun(conn, 'systemctl is-active cloudify-riemann')
    assert (result.exited, result.stdout) == (3, 'inactive\n')
    assert recorder.calls == [('stop', 'cloudify-riemann'), ('disable', 'cloudify-riemann'),
                              ('is-active', 'cloudify-riemann')]


def test_systemctl_state_changes_need_sudo(recorder, conn):
    result = frun(conn, 'systemctl restart cloudify-restservice')
    assert result.exited == 1 and 'Interactive authentication required' in result.stderr
    assert recorder.calls == []


def test_systemctl_failure_reaches_the_client(recorder, conn):
    recorder.answers[('start', 'cloudify-restservice')] = (1, 'Job failed')
    result = frun(conn, 'sudo systemctl start cloudify-restservice')
    assert (result.exited, result.stderr) == (1, 'Job failed\n')


def test_systemctl_callback_exception_is_exit_1(root, tmp_path):
    def broken(action, unit):
        raise RuntimeError('boom')
    with SimulatedHost(root, broken) as host:
        client = _client(host)
        rc, _, err = run(client, 'sudo systemctl restart cloudify-restservice')
        assert rc == 1 and b'boom' in err
        assert run(client, 'true')[0] == 0
        client.close()


# ---------------------------------------------------------------------------- SFTP

def test_sftp_get_and_put_preserve_modes(host, conn, tmp_path):
    # behaviour §7.5: copy rest-security.conf and the ssl directory off the host
    local = tmp_path / 'key.pem'
    conn.get('/etc/cloudify/ssl/cloudify_internal_key.pem', str(local))
    assert local.read_bytes() == SSL_FILES['cloudify_internal_key.pem'][0]
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    upload = tmp_path / 'script.sh'
    upload.write_bytes(b'#!/bin/sh\n')
    upload.chmod(0o750)
    conn.put(str(upload), '/tmp/script.sh')   # fabric preserves the mode with chmod
    remote = os.path.join(str(host.root), 'tmp/script.sh')
    assert open(remote, 'rb').read() == b'#!/bin/sh\n'
    assert stat.S_IMODE(os.stat(remote).st_mode) == 0o750


def test_sftp_stat_listdir_mkdir_and_write_rule(host, ssh, tmp_path):
    sftp = ssh.open_sftp()
    assert sorted(sftp.listdir('/etc/cloudify/ssl')) == sorted(SSL_FILES)
    st = sftp.stat('/opt/manager/rest-security.conf')
    assert stat.S_IMODE(st.st_mode) == 0o440
    sftp.mkdir('/tmp/backup')
    sftp.chmod('/tmp/backup', 0o700)
    assert stat.S_IMODE(sftp.stat('/tmp/backup').st_mode) == 0o700
    assert sftp.normalize('.') == '/home/centos'
    with pytest.raises(PermissionError):
        sftp.mkdir('/etc/cloudify/other')
    with pytest.raises(PermissionError):
        sftp.putfo(io.BytesIO(b'x'), '/opt/manager/rest-security.conf')
    with pytest.raises(PermissionError):
        sftp.chmod('/opt/manager/rest-security.conf', 0o777)
    assert open(os.path.join(str(host.root), 'opt/manager/rest-security.conf'), 'rb').read() \
        == b'{"hash_salt": "c2FsdA=="}\n'
    sftp.close()


# ---------------------------------------------------------------------- path escape

def test_paths_escaping_the_root_are_refused(host, ssh, tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'secret').write_bytes(b'not on the host\n')
    os.symlink(str(outside), os.path.join(str(host.root), 'tmp', 'link'))
    rc, out, err = run(ssh, 'cat /../../%s/secret' % str(outside).lstrip('/'))
    assert (rc, out) == (1, b'') and b'Permission denied' in err
    rc, out, err = run(ssh, 'cat /tmp/link/secret')
    assert (rc, out) == (1, b'') and b'Permission denied' in err
    assert run(ssh, 'sudo rm -rf /tmp/link/secret')[0] == 1
    assert (outside / 'secret').exists()
    sftp = ssh.open_sftp()
    with pytest.raises(PermissionError):
        sftp.open('/tmp/link/secret').read()
    with pytest.raises(PermissionError):
        sftp.stat('../../../../%s/secret' % str(outside).lstrip('/'))
    sftp.close()


# ------------------------------------------------------------------------------ tar

def test_tar_round_trip_of_the_ssl_directory(host, ssh):
    rc, archive, err = run(ssh, 'sudo tar czf - -C /etc/cloudify ssl')
    assert (rc, err) == (0, b'')
    with tarfile.open(fileobj=io.BytesIO(archive), mode='r:gz') as tar:
        assert sorted(tar.getnames()) == sorted(['ssl'] + ['ssl/' + n for n in SSL_FILES])
    rc, _, err = run(ssh, 'tar xzf - -C /etc', stdin=archive)
    assert rc == 2 and b'Permission denied' in err
    assert run(ssh, 'sudo mkdir -p /etc/cloudify-restore')[0] == 0
    rc, _, err = run(ssh, 'sudo tar xzf - -C /etc/cloudify-restore', stdin=archive)
    assert (rc, err) == (0, b'')
    for name, (data, mode) in SSL_FILES.items():
        local = os.path.join(str(host.root), 'etc/cloudify-restore/ssl', name)
        assert open(local, 'rb').read() == data
        assert stat.S_IMODE(os.stat(local).st_mode) == mode


def test_tar_refuses_members_leaving_the_destination(ssh):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz') as tar:
        info = tarfile.TarInfo('../../evil')
        info.size = 1
        tar.addfile(info, io.BytesIO(b'x'))
    rc, _, err = run(ssh, 'tar xzf - -C /tmp', stdin=buf.getvalue())
    assert rc == 2 and b'outside' in err


def test_tar_of_a_large_file_streams_completely(host, ssh):
    data = os.urandom(3 * 1024 * 1024)
    _write(host.root, '/var/tmp/big/blob', data, 0o600)
    rc, archive, _ = run(ssh, 'tar cf - -C /var/tmp big')
    assert rc == 0
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert tar.extractfile('big/blob').read() == data


# ------------------------------------------------------------------------ lifecycle

def test_stop_closes_the_port_and_open_connections(root, recorder):
    host = SimulatedHost(root, recorder).start()
    port = host.port
    client = _client(host)
    host.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(('127.0.0.1', port), timeout=5).close()
    with pytest.raises((paramiko.SSHException, EOFError, OSError)):
        run(client, 'true')
    client.close()
    host.stop()   # idempotent


def test_restart_on_the_same_port_keeps_identity(root, recorder):
    first = SimulatedHost(root, recorder).start()
    port, line = first.port, first.known_hosts_line()
    first.stop()
    with SimulatedHost(root, recorder, port=port) as second:
        assert (second.port, second.known_hosts_line()) == (port, line)
        client = _client(second, key_filename=first.key_path)
        assert run(client, 'test -f /opt/manager/rest-security.conf')[0] == 0
        client.close()


def test_mktemp_makes_a_private_directory(host, ssh):
    """coreutils mktemp -d: a new directory, mode 0700, its path on stdout."""
    rc, out, err = run(ssh, 'mktemp -d /tmp/.stage-XXXXXXXXXX')
    assert rc == 0, err
    path = out.decode().strip()
    assert path.startswith('/tmp/.stage-') and len(path) == len('/tmp/.stage-') + 10
    local = os.path.join(host.root, path.lstrip('/'))
    assert stat.S_IMODE(os.stat(local).st_mode) == 0o700
    assert run(ssh, 'mktemp -d /opt/manager/.x-XXXXXX')[0] == 1       # not writable
    assert run(ssh, 'sudo mktemp -d /opt/manager/.x-XXXXXX')[0] == 0


def test_sh_umask_cat_creates_the_file_private_from_its_first_byte(host, ssh):
    """`sh -c 'umask 077 && exec cat > "$1"' sh PATH`: stdin into a file created 0600."""
    command = 'sh -c \'umask 077 && exec cat > "$1"\' sh /tmp/secret.conf'
    rc, _, err = run(ssh, command, stdin=b'{"hash_salt": "x"}')
    assert rc == 0, err
    local = os.path.join(host.root, 'tmp', 'secret.conf')
    with open(local, 'rb') as stream:
        assert stream.read() == b'{"hash_salt": "x"}'
    assert host.created[-1] == {'path': '/tmp/secret.conf', 'via': 'sh', 'mode': 0o600,
                                'dir_mode': stat.S_IMODE(os.stat(os.path.dirname(local))
                                                         .st_mode)}
    assert run(ssh, 'sh -c \'echo hi; cat > "$1"\' sh /tmp/x')[0] == 2       # nothing else
    denied = run(ssh, command.replace('/tmp/', '/opt/manager/'), stdin=b'x')
    assert denied[0] == 1 and b'Permission denied' in denied[2]


def test_sftp_creations_are_recorded_with_their_mode(host, ssh, tmp_path):
    source = tmp_path / 'f'
    source.write_bytes(b'data')
    sftp = ssh.open_sftp()
    try:
        sftp.put(str(source), '/tmp/uploaded')
    finally:
        sftp.close()
    created = [c for c in host.created if c['path'] == '/tmp/uploaded']
    assert len(created) == 1 and created[0]['via'] == 'sftp'


def test_a_new_host_key_is_a_new_identity_on_the_same_port(host, tmp_path):
    """A reinstalled host presents another key (what a changed-key refusal must catch)."""
    known = tmp_path / 'known_hosts'
    known.write_text(host.known_hosts_line() + '\n')
    before, port = host.fingerprint(), host.port
    host.new_host_key()
    assert host.port == port and host.fingerprint() != before
    with pytest.raises(paramiko.BadHostKeyException):
        _client(host, policy=paramiko.RejectPolicy(), known_hosts=str(known))
    assert host.fingerprint() == paramiko_fingerprint(host)


def paramiko_fingerprint(host):
    import base64
    sock = socket.create_connection(('127.0.0.1', host.port), timeout=10)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=10)
        digest = hashlib.sha256(transport.get_remote_server_key().asbytes()).digest()
    finally:
        transport.close()
    return 'SHA256:' + base64.b64encode(digest).decode().rstrip('=')
