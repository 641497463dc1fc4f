"""Unit tests of the runbooks' pure pieces: inventory diff, agent eligibility, post-restore
expectations, host backups per version, default snapshot ids."""
import pytest

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.runbooks import agents, inventory, source_checks
from cloudify_upgrade_plugin.runbooks.in_place import teardown_instructions
from cloudify_upgrade_plugin.runbooks.prepare import default_snapshot_id
from cloudify_upgrade_plugin.runbooks.restore import command as restore_command
from cloudify_upgrade_plugin.runbooks.restore import execute


class FakeManager:
    def __init__(self, version='4.2', edition='premium', tenants=('default_tenant',),
                 data=None, users=None):
        self.version = versions.Version.parse(version)
        self.edition = edition
        self.tenants = list(tenants)
        self.data = data or {}
        self.users = users
        self.has_tenants = self.version.major >= 4

    def list_tenants(self):
        return list(self.tenants)

    def list_all(self, resource, tenant=None, include=None, all_tenants=False, **_):
        if all_tenants:      # one listing over every tenant (4.2+): items name their tenant
            return [dict(item, tenant_name=t) for (t, kind), items in self.data.items()
                    if kind == resource for item in items]
        return [dict(item) for item in self.data.get((tenant, resource), [])]

    def list_users(self):
        return [{'username': u} for u in self.users or []]


def _inv(**tenants):
    return {'manager': {}, 'users': ['admin', 'bob'], 'tenants': tenants}


def test_differences_lists_missing_items_and_changed_states():
    source = _inv(t1={'blueprints': {'count': 2, 'names': ['a', 'b']},
                      'node_instances': {'count': 2, 'by_state': {'started': 2}}},
                  t2={'blueprints': {'count': 0, 'names': []}})
    target = _inv(t1={'blueprints': {'count': 1, 'names': ['a']},
                      'node_instances': {'count': 2, 'by_state': {'started': 1,
                                                                  'deleted': 1}}})
    target['users'] = ['admin']
    diffs = inventory.differences(source, target)
    kinds = sorted((d['tenant'], d['kind'], d['problem']) for d in diffs
                   if d['tenant'])
    assert kinds == [('t1', 'blueprints', 'missing'), ('t1', 'node_instances', 'changed'),
                     ('t2', 'tenant', 'missing')]
    assert {'tenant': None, 'kind': 'users', 'problem': 'missing',
            'items': ['bob']} in diffs


def test_differences_empty_when_target_has_everything_and_more():
    source = _inv(t1={'blueprints': {'count': 1, 'names': ['a']}})
    target = _inv(t1={'blueprints': {'count': 2, 'names': ['a', 'new']}},
                  t9={'blueprints': {'count': 0, 'names': []}})
    assert inventory.differences(source, target) == []


def test_agents_plan_eligibility_by_compute_hosts():
    data = {
        ('t1', 'node-instances'): [
            {'id': 'vm_1', 'host_id': 'vm_1', 'deployment_id': 'd1', 'state': 'started'},
            {'id': 'app_1', 'host_id': 'vm_1', 'deployment_id': 'd1', 'state': 'deleted'},
            {'id': 'vm_2', 'host_id': 'vm_2', 'deployment_id': 'd2', 'state': 'stopped'},
            {'id': 'net_1', 'host_id': None, 'deployment_id': 'd3', 'state': 'started'}],
        ('t1', 'deployments'): [{'id': 'd1'}, {'id': 'd2'}, {'id': 'd3'}],
    }
    found = agents.plan(FakeManager(tenants=['t1'], data=data))
    # only the Compute host's state matters (behaviour §9.10, CLI 4.6 rework)
    assert found.eligible == [('t1', 'd1')]
    assert [n['deployment_id'] for n in found.not_eligible] == ['d2']
    assert 'vm_2' in found.not_eligible[0]['reason']
    # a 4.2 target has no agents list: nothing is left out by install method, nothing checked
    assert found.not_moved == [] and found.verifiable is False


@pytest.mark.parametrize('target,snapshot,mode,expected', [
    ('4.2', '4.1.0', 'new-host', {'credentials_change': False, 'restart': False,
                                  'reboot': False, 'flag': False}),
    ('4.2', '4.2.0', 'new-host', {'credentials_change': True, 'restart': True,
                                  'reboot': False, 'flag': False}),
    ('7.0.4', '5.2.7', 'new-host', {'credentials_change': True, 'restart': True,
                                    'reboot': False, 'flag': True}),
    ('4.2', '4.1.0', 'in-place', {'credentials_change': False, 'restart': True,
                                  'reboot': True, 'flag': False}),
])
def test_post_restore_expectations(target, snapshot, mode, expected):
    # certificates are restored in place only, from a snapshot that has them (has_ssl)
    got = execute.post_restore_expectations(
        versions.Version.parse(target), versions.Version.parse(snapshot),
        certificates=mode == 'in-place')
    assert got == expected


@pytest.mark.parametrize('version,mode,users,expected', [
    ('3.4.2', 'new-host', None, []),
    ('4.0.0', 'new-host', ['admin'], ['ssl']),
    ('4.1', 'new-host', ['admin', 'bob'], ['rest-security']),
    ('4.1', 'new-host', ['admin'], []),
    ('4.2', 'new-host', ['admin', 'bob'], []),
    ('4.4', 'in-place', ['admin'], ['rest-security', 'ssl']),
])
def test_host_backups_needed(version, mode, users, expected, mocker):
    manager = FakeManager(version=version)
    mocker.patch('cloudify_upgrade_plugin.runbooks.common.usernames',
                 return_value=users)
    assert source_checks.host_backups_needed(manager, mode) == expected


def test_describe_lists_certificate_and_fence_steps_per_mode():
    new_host = [s['id'] for s in restore_command.describe('new-host', '4.1', '4.2')]
    in_place = [s['id'] for s in restore_command.describe('in-place', '4.0.0', '4.2')]
    assert 'cut-over' in new_host and 'restore-users' in new_host
    assert 'restore-ssl' in in_place and 'restore-ssl' not in new_host
    assert new_host.index('reconcile') < new_host.index('cut-over') < \
        new_host.index('install-agents')


def test_default_snapshot_id_is_valid():
    class W:
        upgrade_id = 'upg-20261126-120000-abcd'
    snapshot_id = default_snapshot_id(W())
    assert versions.snapshot_id_problem(snapshot_id) is None


@pytest.mark.parametrize('version,needle', [
    ('4.0.1', 'cfy_teardown_4_0_0.sh'), ('4.2', 'cfy teardown -f'),
    ('4.4', 'cfy_manager remove -f'), ('6.4', '-c <config.yaml>')])
def test_teardown_instructions_per_version(version, needle):
    assert any(needle in line for line in teardown_instructions(version))


def _zip_snapshot(path, version='4.1.0'):
    import json
    import zipfile
    with zipfile.ZipFile(str(path), 'w') as zf:
        zf.writestr('metadata.json', json.dumps({'snapshot_version': version}))
        zf.writestr('data.bin', b'x' * 4096)


def test_verify_trusts_the_streamed_hash_only_for_an_untouched_file(tmp_path, mocker):
    """Issue 10: no second full SHA-256 read after a download (the zip CRC check stays)."""
    import hashlib
    from cloudify_upgrade_plugin.runbooks import common
    from cloudify_upgrade_plugin.snapshot import transfer

    class W:
        def path(self, rel):
            return str(tmp_path / rel)
    (tmp_path / 'snapshot').mkdir()
    zpath = tmp_path / 'snapshot' / 's1.zip'
    _zip_snapshot(zpath)
    digest = hashlib.sha256(zpath.read_bytes()).hexdigest()
    (tmp_path / 'snapshot' / 's1.zip.sha256').write_text(digest + '  s1.zip\n')
    spy = mocker.spy(transfer, 'verify_file')
    downloaded = {'sha256': digest, 'identity': common.file_identity(str(zpath))}
    doc = common.inspect_local_snapshot(W(), 's1', downloaded)
    assert doc['sha256'] == digest and spy.call_count == 0
    # touched since the download (content changed): the hash is recomputed and refused
    zpath.write_bytes(zpath.read_bytes() + b'junk')
    with pytest.raises(Exception) as raised:
        common.inspect_local_snapshot(W(), 's1', downloaded)
    assert spy.call_count == 1
    assert getattr(raised.value, 'error_id', None) == 'snapshot-hash-mismatch'
