"""The fleet's pieces on their own: node properties -> FleetUpgrade (validation, secrets kept
out of repr and descriptions), the runtime-property records, the adapter's default backend
and its switch, and one call's session of explicit connections.
"""
import os
import stat

import pytest

from cloudify_upgrade_plugin import cli
from cloudify_upgrade_plugin.engine.redact import redact, registered_secrets
from cloudify_upgrade_plugin.errors import InputError
from cloudify_upgrade_plugin.fleet import adapter
from cloudify_upgrade_plugin.fleet import runtime
from cloudify_upgrade_plugin.fleet.runbooks import RunbooksBackend, session
from cloudify_upgrade_plugin.manager import profiles
from cloudify_upgrade_plugin.fleet.connection import (
    USERS_POLICIES, FleetUpgrade, ManagerConnection)

OLD = {'address': '192.0.2.1', 'password': 'old-secret-pw', 'protocol': 'http',
       'ssh': {'user': 'centos', 'key': 'PEM-PRIVATE-KEY-TEXT', 'port': 2222}}
NEW = {'address': '198.51.100.1', 'password': 'new-secret-pw'}


def _upgrade(properties=None, old=None, new=None):
    return FleetUpgrade.from_node(properties or {}, old or OLD, new or NEW, node_id='region_a',
                                  instance_id='region_a_x1', workdir='/srv/deployments/fleet')


def _bad(properties=None, old=None, new=None):
    with pytest.raises(InputError) as error:
        _upgrade(properties, old, new)
    assert error.value.error_id == 'bad-fleet-property'
    assert error.value.exit_code == 2
    return error.value.message


def test_defaults_and_derived_values():
    upgrade = _upgrade()
    assert upgrade.mode == 'new-host' and upgrade.timeout == 3600
    assert upgrade.agents_concurrency == 5 and upgrade.waivers == ()
    assert upgrade.upgrade_id == 'fleet-region_a_x1'
    assert upgrade.workspace == '/srv/deployments/fleet/upgrades/fleet-region_a_x1'
    assert upgrade.old.rest_port == 80 and upgrade.new.rest_port == 443
    assert upgrade.new.username == 'admin' and upgrade.new.tenant == 'default_tenant'
    assert upgrade.old.ssh.port == 2222 and upgrade.new.ssh is None


def test_secrets_are_registered_and_never_described_nor_repr():
    upgrade = _upgrade()
    assert {'old-secret-pw', 'new-secret-pw', 'PEM-PRIVATE-KEY-TEXT'} <= registered_secrets()
    for text in (repr(upgrade), repr(upgrade.describe()), repr(redact(upgrade.describe()))):
        for secret in ('old-secret-pw', 'new-secret-pw', 'PEM-PRIVATE-KEY-TEXT'):
            assert secret not in text
    described = upgrade.describe()
    assert described['old_manager'] == {
        'address': '192.0.2.1', 'port': 80, 'protocol': 'http', 'tenant': 'default_tenant',
        'username': 'admin', 'certificate': False, 'ssh': {'user': 'centos', 'port': 2222}}
    assert redact(described) == described        # nothing in it looks secret either


def test_waivers_need_a_reason():
    upgrade = _upgrade({'waivers': [{'check': 'target-licence', 'reason': ' trial '}]})
    assert [w.to_dict() for w in upgrade.waivers] == [
        {'check': 'target-licence', 'reason': 'trial'}]
    assert 'waivers[0].reason' in _bad({'waivers': [{'check': 'target-licence'}]})
    assert 'waivers' in _bad({'waivers': 'target-licence'})


@pytest.mark.parametrize('properties, old, new, named', [
    ({'mode': 'sideways'}, None, None, 'mode'),
    ({'target_version': 'latest'}, None, None, 'target_version'),
    ({'users_policy': 'everyone'}, None, None, 'users_policy'),
    ({'timeout': 0}, None, None, 'timeout'),
    ({'timeout': '60'}, None, None, 'timeout'),
    ({'agents_concurrency': 51}, None, None, 'agents_concurrency'),
    ({}, dict(OLD, protocol='ftp'), None, 'old_manager.protocol'),
    ({}, dict(OLD, password=''), None, 'old_manager.password'),
    ({}, {'password': 'x'}, None, 'old_manager.address'),
    ({}, dict(OLD, ssh={'user': 'centos'}), None, 'old_manager.ssh'),
    ({}, dict(OLD, port=70000), None, 'old_manager.port'),
    ({}, None, dict(NEW, address='192.0.2.1', protocol='http'), 'new_manager.address'),
    ({'mode': 'in-place'}, None, None, 'new_manager.address'),
])
def test_bad_properties_are_named(properties, old, new, named):
    assert _bad(properties, old, new).startswith('Node property {0}'.format(named))


def test_in_place_restores_on_the_same_address_with_new_credentials():
    upgrade = _upgrade({'mode': 'in-place'}, new={'address': '192.0.2.1', 'protocol': 'https',
                                                  'password': 'fresh-install-pw'})
    assert upgrade.mode == 'in-place' and upgrade.new.password == 'fresh-install-pw'


def test_users_policies_are_the_cli_choices():
    assert USERS_POLICIES == cli.USERS_POLICIES


def test_a_connection_with_a_certificate_keeps_it_out_of_repr():
    connection = ManagerConnection.from_property(
        dict(NEW, certificate='-----BEGIN CERTIFICATE-----abc'), 'new_manager')
    assert 'BEGIN CERTIFICATE' not in repr(connection)
    assert connection.describe()['certificate'] is True


def test_runtime_records_keep_step_ids_that_look_secret():
    properties = {}
    runtime.begin(properties, 'cutover', 'exec-1', 'upgrade_cutover')
    runtime.step(properties, 'cutover', 'follow-credentials', 'started', '[4/9] ...')
    runtime.step(properties, 'cutover', 'follow-credentials', 'succeeded', '[4/9] ...')
    runtime.step(properties, 'cutover', 'reconcile', 'started', '[5/9] reconcile: started')
    record = runtime.finish(properties, 'cutover', runtime.DONE, {'password': 'p'})
    assert record['steps'] == [{'id': 'follow-credentials', 'event': 'succeeded'},
                               {'id': 'reconcile', 'event': 'started'}]
    assert record['summary'] == {'password': '***'}
    assert runtime.is_done(properties, 'cutover') and record['attempt'] == 1
    runtime.begin(properties, 'cutover', 'exec-2', 'upgrade_cutover')
    failed = runtime.fail(properties, 'cutover', 'restore-failed', 'boom', ['retry'])
    assert failed['attempt'] == 2 and failed['status'] == 'failed'
    assert failed['error'] == {'id': 'restore-failed', 'message': 'boom', 'hints': ['retry']}
    assert not runtime.is_done(properties, 'cutover')
    assert set(properties) == {'upgrade_cutover'}


def test_the_switch_installs_a_backend_and_restores_the_runbooks():
    upgrade = _upgrade()
    assert isinstance(adapter._backend, RunbooksBackend)

    class Fake:
        def plan(self, upgrade, progress):
            progress(adapter.StepEvent('source-checks', 'started', 1, 1))
            return adapter.Outcome(adapter.DONE, {'checks': 3})

    events = []
    with adapter.use_backend(Fake()):
        assert adapter.plan(upgrade, events.append).summary == {'checks': 3}
    assert [event.line() for event in events] == ['[1/1] source-checks: started']
    assert isinstance(adapter._backend, RunbooksBackend)


def test_a_session_registers_both_connections_and_leaves_no_key_or_certificate(tmp_path):
    """What the runbooks see during one call: explicit connections (no cfy profile) whose
    key and CA certificate are private files, gone once the call ends."""
    new = dict(NEW, certificate='-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----',
               ssh={'user': 'rocky', 'key': 'NEW-KEY-TEXT'})
    upgrade = FleetUpgrade.from_node({}, OLD, new, node_id='region_a', instance_id='ra_1',
                                     workdir=str(tmp_path))
    events = []
    with session(upgrade, events.append) as current:
        old = profiles.read_profile(current.old_name)
        target = profiles.read_profile(current.new_name)
        assert (old.host, old.port, old.protocol, old.cert) == ('192.0.2.1', 80, 'http', None)
        assert old.credentials.password == 'old-secret-pw'
        assert profiles.profile_credentials(current.new_name).password == 'new-secret-pw'
        assert (target.protocol, target.port) == ('https', 443)
        files = [old.profile.ssh_key, target.profile.ssh_key, target.cert]
        for path in files:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
            assert not path.startswith(str(tmp_path))     # never in the synced work dir
        with open(target.cert) as stream:
            assert 'CA' in stream.read()
        assert old.profile.ssh_port == 2222 and target.profile.ssh_user == 'rocky'
        assert old.profile.known_hosts_path == str(
            tmp_path / 'upgrades' / 'upgrade_known_hosts')
        # the restore's credential switch stays in memory, for the adapter to report
        profiles.store_credentials(current.new_name, old.credentials)
        assert profiles.explicit_settings(current.new_name).credentials.password == \
            'old-secret-pw'
        current.report('upload-snapshot', 'started', 3, 10, {})
    assert [event.line() for event in events] == ['[3/10] upload-snapshot: started']
    assert profiles.explicit_settings(current.old_name) is None
    assert not any(os.path.exists(path) for path in files)
