"""Secrets (issue 9 item 5): run the whole upgrade with known secrets, then look for them in
everything the plugin and cfy leave behind.

Known secrets: both admin passwords and their Basic-auth encodings, the seeded users'
passwords, the rest-security values of both hosts (hash_salt, secret_key, encryption_key,
encoding_alphabet), both SSH private keys (every base64 line of the key bodies), the
manager secrets' values and agent broker passwords, and the API tokens the target issued.

Searched: every file under CFY_WORKDIR except ``.cloudify/profiles`` (cfy's own store of
connection settings, the profile password lives there by design), which includes the
workspace and cfy's CLI log (``.cloudify/logs/cli.log``); the private TMPDIR given to every
`cfy` run; the captured stdout/stderr of every command (profile creation included).

Excluded on purpose, one file: ``backups/rest-security.conf``, the copy of the old
manager's rest-security.conf that issue 6/7 require (``--users rest-security`` puts it back
on the target); it must be mode 0600 in a 0700 directory.  (``new-user-passwords.txt`` would
be the second one with ``--users reset-passwords``; this flow does not create it.)
The snapshot zip is searched as it is: a compressed copy of the manager's own data
(password hashes, not passwords).

Also asserted: workspace directories 0700, files 0600; cfy's plugin-written files outside
the workspace (the pinned SSH host keys) 0600.
"""
import base64
import os
import secrets
import stat

import pytest

from tests import flows
from tests.reliability import harness
from tests.simulator import helpers

EXCLUDED = (os.path.join('backups', 'rest-security.conf'),)


def _key_lines(path):
    """The base64 lines of an OpenSSH private key (each one is secret material)."""
    with open(path, encoding='ascii') as stream:
        lines = [line.strip() for line in stream if line.strip()]
    return [line for line in lines if not line.startswith('-----') and len(line) >= 16]


def _rest_security_values(sim):
    conf = sim.rest_security_file() or {}
    return [str(conf[key]) for key in ('hash_salt', 'secret_key', 'encryption_key',
                                       'encoding_alphabet') if conf.get(key)]


def _profile_use(sc, name, sim):
    """What the make_profile fixture runs (`cfy profiles use ... -p PASSWORD`), captured."""
    result = sc.run('profiles', 'use', '127.0.0.1', '--profile-name', name,
                    '--rest-port', sim.rest_port, '-u', sim.admin_username,
                    '-p', sim.admin_password, '-t', 'default_tenant',
                    '--skip-credentials-validation', '--ssh-user', sim.ssh_user,
                    '--ssh-key', sim.ssh_key, '--ssh-port', sim.ssh_port)
    assert result.returncode == 0, harness.show(result)
    helpers.trust_host_keys(sc.workdir, sim)


def _files(root, skip_dirs=()):
    for current, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(current, d) not in skip_dirs]
        for name in files:
            yield os.path.join(current, name)


def test_s01_no_secret_anywhere(flow, simulated_manager, tmp_path):
    """plan, prepare, new-host, verify-heals, status with known secrets: none of them in any
    file (profiles and backups/rest-security.conf excluded), TMPDIR or output; modes
    0700/0600."""
    sc = flow
    old = simulated_manager('4.1', data='demo', ssh=True,
                            admin_password=flows.OLD_ADMIN_PASSWORD)
    new = simulated_manager('7.0', data='empty', ssh=True,
                            admin_password=flows.NEW_ADMIN_PASSWORD)
    with old.state.lock:
        for record in old.state.all('secrets'):
            record['value'] = 'secret-value-' + secrets.token_hex(12)
        manager_secrets = [r['value'] for r in old.state.all('secrets')]
        broker_passwords = sorted({a['rabbitmq_password'] for a in old.state.all('agents')
                                   if a.get('rabbitmq_password')})
    known = {
        'old admin password': [flows.OLD_ADMIN_PASSWORD],
        'new admin password': [flows.NEW_ADMIN_PASSWORD],
        'basic auth': [base64.b64encode('admin:{0}'.format(p).encode()).decode()
                       for p in (flows.OLD_ADMIN_PASSWORD, flows.NEW_ADMIN_PASSWORD)],
        'user passwords': [p for u, p in old.user_passwords.items() if u != 'admin'],
        'old rest-security': _rest_security_values(old),
        'new rest-security': _rest_security_values(new),
        'old ssh key': _key_lines(old.ssh_key),
        'new ssh key': _key_lines(new.ssh_key),
        'manager secrets': manager_secrets,
        'broker passwords': broker_passwords,
    }
    assert all(known.values()), {k: len(v) for k, v in known.items()}
    private_tmp = tmp_path / 'private-tmp'
    private_tmp.mkdir()
    run_env = {'TMPDIR': str(private_tmp)}

    _profile_use(sc, 'new', new)
    _profile_use(sc, 'old', old)
    sc.old, sc.new = old, new
    sc.source_view = flows.data_view(old)
    sc.source_agents = sorted({(a['tenant_name'], a['deployment'])
                               for a in old.agents() if a.get('state') == 'started'})
    for args in (('upgrade', 'plan', '--target-version', flows.TARGET_VERSION),
                 flows.prepare_args(), flows.NEW_HOST,
                 ('upgrade', 'verify-heals'), ('upgrade', 'status'),
                 ('upgrade', 'status', '--json'), ('upgrade', 'verify-heals', '--json', '-v')):
        result = sc.run(*args, env=run_env)
        assert result.returncode == 0, harness.show(result)
        if args == flows.prepare_args():
            sc.record_server_snapshot()
    harness.assert_upgraded(sc)
    # every token the target issued (revoked ones too: they must not leak either)
    known['api tokens'] = [rec['value'] for rec in new.token_history]
    assert known['api tokens']

    # where to look
    workspace = sc.workspace()
    excluded = {os.path.join(workspace, rel) for rel in EXCLUDED}
    profiles = os.path.join(sc.dot, 'profiles')
    haystacks = {}
    for path in _files(sc.workdir, skip_dirs={profiles}):
        if path in excluded:
            continue
        with open(path, 'rb') as stream:
            haystacks[os.path.relpath(path, sc.workdir)] = stream.read()
    for path in _files(str(private_tmp)):
        with open(path, 'rb') as stream:
            haystacks['TMPDIR/' + os.path.relpath(path, str(private_tmp))] = stream.read()
    for number, result in enumerate(sc.captures):
        haystacks['run {0} ({1}) stdout'.format(number, ' '.join(result.argv[:2]))] = \
            result.stdout.encode('utf-8')
        haystacks['run {0} ({1}) stderr'.format(number, ' '.join(result.argv[:2]))] = \
            result.stderr.encode('utf-8')
    assert os.path.join('.cloudify', 'logs', 'cli.log') in haystacks
    assert any(name.startswith(os.path.join('.cloudify', 'upgrades')) for name in haystacks)

    def search(stacks):
        found = []
        for what, values in known.items():
            for value in values:
                needle = value.encode('utf-8')
                found.extend((what, name) for name, content in stacks.items()
                             if needle in content)
        return sorted(set(found))

    # positive controls: the search finds what the excluded places legitimately hold
    with open(os.path.join(profiles, 'old', 'context.json'), 'rb') as stream:
        assert ('old admin password', 'profile') in search({'profile': stream.read()})
    with open(os.path.join(workspace, EXCLUDED[0]), 'rb') as stream:
        assert ('old rest-security', 'backup') in search({'backup': stream.read()})
    assert search(haystacks) == []

    # the one excluded file: private
    backup = os.path.join(workspace, 'backups', 'rest-security.conf')
    assert os.path.isfile(backup)
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(backup)).st_mode) == 0o700
    assert not os.path.exists(os.path.join(workspace, 'new-user-passwords.txt'))
    harness.assert_private_modes(sc)
    known_hosts = os.path.join(sc.dot, 'upgrade_known_hosts')
    if os.path.exists(known_hosts):
        assert stat.S_IMODE(os.stat(known_hosts).st_mode) == 0o600


@pytest.mark.slow
def test_s02_reset_passwords_file_is_private(managers):
    """--users reset-passwords writes generated passwords once, to a 0600 file; they appear
    nowhere else (output, journal, report, CLI log)."""
    sc = managers
    sc.prepare()
    result = sc.run('upgrade', 'new-host', '--to-profile', 'new', '--yes', '--users',
                    'reset-passwords')
    assert result.returncode == 0, harness.show(result)
    path = os.path.join(sc.workspace(), 'new-user-passwords.txt')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, encoding='utf-8') as stream:
        generated = [line.split(':', 1)[1].strip() for line in stream if ':' in line]
    assert generated
    hits = []
    for current, _, files in os.walk(sc.workdir):
        if current.startswith(os.path.join(sc.dot, 'profiles')):
            continue
        for name in files:
            full = os.path.join(current, name)
            if full == path:
                continue
            with open(full, 'rb') as stream:
                content = stream.read()
            hits.extend((full, p) for p in generated if p.encode() in content)
    for capture in sc.captures:
        hits.extend((capture.argv[1], p) for p in generated
                    if p in capture.stdout or p in capture.stderr)
    assert hits == []
    harness.assert_private_modes(sc)


def test_s03_no_token_or_basic_credential_with_vvv(managers):
    """new-host -vvv with --users rest-security (the plugin takes an API token on the 7.0
    target; cfy's REST client logs every request header at DEBUG): neither the token, nor
    the Basic credential of either admin, nor their passwords appear in stdout, stderr or
    cfy's cli.log; the token was short-lived (an expiration date) and is revoked on the
    target when restore-users ends (issue 17 item 1)."""
    sc = managers
    _profile_use(sc, 'new', sc.new)     # the stock command: it also writes cfy's config.yaml,
    _profile_use(sc, 'old', sc.old)     # which gives cfy's REST client logger its handlers
    sc.prepare()
    result = sc.run(*flows.NEW_HOST, '-vvv')
    assert result.returncode == 0, harness.show(result)
    harness.assert_upgraded(sc)
    log_path = os.path.join(sc.dot, 'logs', 'cli.log')
    with open(log_path, 'rb') as stream:
        cli_log = stream.read().decode('utf-8', 'replace')
    assert 'request header:' in cli_log      # cfy's REST client did log its headers
    issued = [t for t in sc.new.token_history if t['description'].startswith('cfy upgrade')]
    assert issued, sc.new.token_history
    secrets_ = [t['value'] for t in issued] + [
        base64.b64encode('admin:{0}'.format(p).encode()).decode()
        for p in (flows.OLD_ADMIN_PASSWORD, flows.NEW_ADMIN_PASSWORD)] + [
        flows.OLD_ADMIN_PASSWORD, flows.NEW_ADMIN_PASSWORD]
    places = {'cli.log': cli_log}
    for number, capture in enumerate(sc.captures):
        places['run {0} stdout'.format(number)] = capture.stdout
        places['run {0} stderr'.format(number)] = capture.stderr
    leaks = sorted({(place, value[:12]) for place, text in places.items()
                    for value in secrets_ if value in text})
    assert leaks == []
    # short-lived, and gone once the step ended
    assert all(t['expiration_date'] for t in issued), issued
    with sc.new.state.lock:
        alive = [t for t in sc.new.state.tokens.values()
                 if t['description'].startswith('cfy upgrade')]
    assert alive == []
