"""TLS (issue 9 item 5): verification is on by default and uses the profile's certificate.

The simulators serve https with a certificate of their own CA (tests/simulator/tls.py,
behaviour §2.1); an operator's profile holds that CA as ``rest_certificate`` (behaviour §6.1
'Certificate').  Asserted through the real `cfy`:

- t01: the whole upgrade (prepare with its download, new-host with its upload, restore and
  agents, verify-heals, status) over https with the profiles' certificates, no warning about
  verification, every invariant of a finished upgrade;
- t02: a profile without a certificate (system CAs only) and t03: with another manager's
  CA: exit 1 ``manager-tls-failed`` naming `--rest-certificate`, no HTTP request reached the
  manager, no workspace;
- t04: ``CLOUDIFY_SSL_TRUST_ALL`` is the only way to turn verification off, and it warns;
- t05: an https profile on a plain-HTTP manager is never downgraded to http;
- t06: an http profile on the plain port of an SSL-enabled 7.0 (400 ``SSL_REQUIRED``):
  ``manager-requires-https``, nothing sent over plain HTTP beyond the probes;
- t07: the stock `cfy profiles use --rest-certificate` profile is what the plugin uses;
- t08: new-host creating the target profile from `--rest-certificate` (https, that CA).
"""
import os

from tests.reliability import flows, harness

PLAN = ('upgrade', 'plan', '--target-version', flows.TARGET_VERSION, '--json')
DISABLED_WARNING = 'CLOUDIFY_SSL_TRUST_ALL'


def _error(result):
    return result.json['error']


def _assert_tls_refused(sc, result, sim):
    assert result.returncode == 1, harness.show(result)
    error = _error(result)
    assert error['id'] == 'manager-tls-failed', error
    assert any('--rest-certificate' in hint for hint in error['hints']), error
    assert len(sim.requests) == 0, list(sim.requests)     # the handshake failed first
    assert sc.upgrade_ids() == []


def test_t01_whole_upgrade_over_https_with_the_profiles_certificates(
        scenario, simulated_manager):  # noqa: F811
    sc = flows.setup(scenario, simulated_manager, ssl=True)
    assert sc.old.url.startswith('https://') and sc.new.url.startswith('https://')
    flows.prepare(sc)
    result = sc.run(*flows.NEW_HOST)
    assert result.returncode == 0, harness.show(result)
    heals = sc.run('upgrade', 'verify-heals', '--json')
    assert heals.returncode == 0, harness.show(heals)
    status = sc.run('upgrade', 'status', '--json')
    assert status.returncode == 0, harness.show(status)
    flows.assert_upgraded(sc)
    # the snapshot went down and up over TLS (the only listener the managers have)
    assert harness.requests_matching(sc.old, 'GET', flows.SNAPSHOT_ARCHIVE, status=200)
    assert harness.requests_matching(sc.new, 'PUT', r'/snapshots/[^/]+/archive$',
                                     status=201)
    for result in sc.captures:
        assert DISABLED_WARNING not in result.stderr, harness.show(result)


def test_t02_profile_without_certificate_fails_closed(scenario, simulated_manager):  # noqa
    sc = scenario
    old = simulated_manager('6.4', data='demo', ssh=False, ssl=True)
    sc.profile('old', old, ssh=False, protocol='https', certificate=None)
    _assert_tls_refused(sc, sc.run(*PLAN), old)
    _assert_tls_refused(sc, sc.run('upgrade', 'prepare', '--target-version', '7.0',
                                   '--json'), old)
    assert harness.executions(old, 'create_snapshot') == []


def test_t03_another_managers_ca_is_refused(scenario, simulated_manager):  # noqa: F811
    sc = scenario
    old = simulated_manager('5.0.5', data='demo', ssh=False, ssl=True)
    other = simulated_manager('7.0', ssh=False, ssl=True)
    sc.profile('old', old, ssh=False, protocol='https', certificate=other.ca_path)
    _assert_tls_refused(sc, sc.run(*PLAN), old)


def test_t04_trust_all_only_when_asked_and_with_a_warning(scenario, simulated_manager):  # noqa
    sc = scenario
    old = simulated_manager('6.4', data='demo', ssh=False, ssl=True)
    sc.profile('old', old, ssh=False, protocol='https', certificate=None)
    result = sc.run(*PLAN, env={'CLOUDIFY_SSL_TRUST_ALL': 'true'})
    assert result.returncode == 0, harness.show(result)
    assert DISABLED_WARNING in result.stderr and 'not verified' in result.stderr, \
        harness.show(result)
    assert len(old.requests) > 0


def test_t05_https_profile_is_never_downgraded(scenario, simulated_manager):  # noqa: F811
    sc = scenario
    old = simulated_manager('4.1', data='demo', ssh=False)           # plain HTTP only
    sc.profile('old', old, ssh=False, protocol='https', certificate=None)
    result = sc.run(*PLAN)
    assert result.returncode == 1, harness.show(result)
    assert _error(result)['id'] in ('manager-tls-failed', 'manager-unreachable')
    assert len(old.requests) == 0, list(old.requests)   # nothing was sent over http


def test_t06_http_profile_on_the_plain_port_of_an_ssl_manager(scenario,
                                                              simulated_manager):  # noqa
    sc = scenario
    old = simulated_manager('7.0', data='demo', ssh=False, ssl=True)
    sc.profile('old', old, ssh=False, protocol='http', port=old.http_port, certificate=None)
    result = sc.run(*PLAN)
    assert result.returncode == 1, harness.show(result)
    error = _error(result)
    assert error['id'] == 'manager-requires-https', error
    assert any('--ssl on' in hint for hint in error['hints']), error
    assert len(old.requests) == 0          # the https port saw no guess
    assert sc.upgrade_ids() == []


def test_t07_stock_profiles_use_with_rest_certificate(scenario, simulated_manager):  # noqa
    sc = scenario
    old = simulated_manager('6.4', data='demo', ssh=False, ssl=True)
    made = sc.run('profiles', 'use', '127.0.0.1', '--profile-name', 'old',
                  '--rest-port', old.rest_port, '-u', old.admin_username,
                  '-p', old.admin_password, '-t', 'default_tenant',
                  '--rest-certificate', old.ca_path)
    assert made.returncode == 0, harness.show(made)
    stored = sc.read_profile('old')
    assert (stored['rest_protocol'], stored['rest_certificate']) == ('https', old.ca_path)
    result = sc.run(*PLAN)
    assert result.returncode == 0, harness.show(result)
    assert result.json['source']['version'].startswith('6.4')
    assert DISABLED_WARNING not in result.stderr
    assert os.path.isfile(old.ca_path)


def test_t08_new_host_creates_an_https_profile_from_its_options(scenario,
                                                                simulated_manager):  # noqa
    """`new-host --manager-ip ... --rest-certificate CA` (the `cfy profiles use` options):
    the created profile is https with that certificate and the whole new-host runs on it."""
    sc = flows.setup(scenario, simulated_manager, ssl=True)
    flows.prepare(sc)
    new = sc.new
    result = sc.run('upgrade', 'new-host', '--yes', '--users', 'rest-security',
                    '--manager-ip', '127.0.0.1', '--profile-name', 'made',
                    '--rest-port', new.rest_port, '--rest-certificate', new.ca_path,
                    '--manager-username', new.admin_username,
                    '--manager-password', new.admin_password,
                    '--ssh-user', new.ssh_user, '--ssh-key', new.ssh_key,
                    '--ssh-port', new.ssh_port, '--json')
    assert result.returncode == 0, harness.show(result)
    made = sc.read_profile('made')
    assert (made['rest_protocol'], made['rest_port'], made['rest_certificate']) == \
        ('https', new.rest_port, new.ca_path)
    flows.assert_upgraded(sc)
