"""Snapshot zip inspection: good archives per version, corruption, metadata problems."""
import json
import os
import zipfile

import pytest

from cloudify_upgrade_plugin.errors import InputError
from cloudify_upgrade_plugin.snapshot import archive

AGENT = {'version': '4.4.0', 'broker_config': {'broker_ip': '10.0.0.1',
                                               'broker_user': 'u', 'broker_pass': 'p'}}


def make_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(str(path), 'w', compression) as zf:
        for name, content in members.items():
            if isinstance(content, (dict, list)):
                content = json.dumps(content)
            zf.writestr(name, content)
    return str(path)


def snapshot_44(tmp_path, **extra):
    members = {
        'metadata.json': {'snapshot_version': '4.4.0', 'schema_revision': 'abc'},
        'agents.json': {'default_tenant': {'dep1': {'vm': {'vm_1': AGENT, 'vm_2': AGENT}}},
                        't2': {'dep2': {'host': {'host_1': AGENT}}}},
        'networks.json': ['default', 'external'],
        'ssl/cloudify_internal_cert.pem': 'CERT',
        'rest-security.conf': {'hash_salt': 'do-not-read'},
        'pg_data': 'x' * 5000,
    }
    members.update(extra)
    return make_zip(tmp_path / 'snap.zip', members)


def test_inspect_good_archive(tmp_path):
    path = snapshot_44(tmp_path)
    info = archive.inspect(path)
    assert info['snapshot_version'] == '4.4.0'
    assert info['metadata']['schema_revision'] == 'abc'
    assert set(info['members']) == {'metadata.json', 'agents.json', 'networks.json',
                                    'ssl/cloudify_internal_cert.pem', 'rest-security.conf',
                                    'pg_data'}
    assert info['has_ssl'] is True
    assert info['has_rest_security'] is True
    assert info['has_hash_salt'] is True
    assert info['agents_layout'] == 'per-tenant'
    assert info['agent_tenants'] == ['default_tenant', 't2']
    assert info['agents_count'] == 3
    assert info['agent_networks'] == ['default', 'external']
    assert info['format'] == 'legacy'
    assert info['size'] == os.path.getsize(path)


def test_inspect_never_exposes_rest_security_values(tmp_path):
    info = archive.inspect(snapshot_44(tmp_path))
    assert 'do-not-read' not in json.dumps(info)


def test_flat_agents_of_an_unpatched_401(tmp_path):
    path = make_zip(tmp_path / 's.zip', {
        'metadata.json': {'snapshot_version': '4.0.1'},
        'agents.json': {'dep1': {'vm': {'vm_1': AGENT}}, 'dep2': {'vm': {'vm_9': AGENT}}},
        'ssl/x.pem': 'x'})
    info = archive.inspect(path)
    assert info['agents_layout'] == 'flat'
    assert info['agent_tenants'] is None
    assert info['agents_count'] == 2
    assert info['has_hash_salt'] is False
    assert info['has_rest_security'] is False
    assert info['agent_networks'] is None


def test_patched_401_is_per_tenant(tmp_path):
    path = make_zip(tmp_path / 's.zip', {
        'metadata.json': {'snapshot_version': '4.1.0-p3-4.0.1'},
        'agents.json': {'default_tenant': {'dep1': {'vm': {'vm_1': AGENT}}}}})
    info = archive.inspect(path)
    assert info['snapshot_version'] == '4.1.0-p3-4.0.1'
    assert info['agents_layout'] == 'per-tenant'
    assert info['agent_tenants'] == ['default_tenant']


@pytest.mark.parametrize('version,layout', [('4.0.1', 'flat'), ('4.1.0-p3-4.0.1', 'per-tenant'),
                                            ('4.2', 'per-tenant'), ('3.4.2', 'flat')])
def test_empty_agents_layout_follows_the_version(tmp_path, version, layout):
    path = make_zip(tmp_path / 's.zip', {'metadata.json': {'snapshot_version': version},
                                         'agents.json': {}})
    assert archive.inspect(path)['agents_layout'] == layout


@pytest.mark.parametrize('version,agents,layout', [
    # without the node level (deployment/instance, tenant/deployment/instance)
    ('4.0.1', {'dep1': {'vm_1': AGENT}}, 'flat'),
    ('4.4.0', {'dep1': {'vm_1': AGENT}}, 'flat'),
    ('4.4.0', {'default_tenant': {'dep1': {'vm_1': AGENT}}}, 'per-tenant'),
    # depth 3 is ambiguous: the version decides, as on the restoring manager
    ('4.0.1', {'t': {'dep1': {'vm_1': AGENT}}}, 'flat'),
    # depth 4 can only be per tenant
    ('4.0.1', {'t': {'dep1': {'vm': {'vm_1': AGENT}}}}, 'per-tenant'),
])
def test_agents_layout_by_depth_and_version(tmp_path, version, agents, layout):
    path = make_zip(tmp_path / 's.zip', {'metadata.json': {'snapshot_version': version},
                                         'agents.json': agents})
    info = archive.inspect(path)
    assert info['agents_layout'] == layout
    assert info['agents_count'] == 1


def test_agent_networks_from_records_when_no_networks_json(tmp_path):
    agent = dict(AGENT, network='default')
    other = dict(AGENT, network='external')
    path = make_zip(tmp_path / 's.zip', {
        'metadata.json': {'snapshot_version': '4.5.5'},
        'agents.json': {'t': {'d': {'n': {'a': agent, 'b': other, 'c': agent}}}}})
    assert archive.inspect(path)['agent_networks'] == ['default', 'external']


def test_old_style_agent_records_are_recognised(tmp_path):
    old = {'broker_user': 'u', 'broker_pass': 'p', 'broker_ip': '1.2.3.4',
           'broker_ssl_enabled': False, 'broker_ssl_cert': ''}
    path = make_zip(tmp_path / 's.zip', {'metadata.json': {'snapshot_version': '3.4.2'},
                                         'agents.json': {'dep': {'vm': {'vm_1': old}}}})
    info = archive.inspect(path)
    assert info['agents_layout'] == 'flat'
    assert info['agents_count'] == 1


def test_hash_salt_file_of_42(tmp_path):
    path = make_zip(tmp_path / 's.zip', {'metadata.json': {'snapshot_version': '4.2'},
                                         'hash_salt.json': '"salt"'})
    info = archive.inspect(path)
    assert info['has_hash_salt'] is True
    assert info['has_rest_security'] is False
    assert info['agents_layout'] is None


def test_entity_format_of_70(tmp_path):
    path = make_zip(tmp_path / 's.zip', {
        'metadata.json': {'snapshot_version': '7.0.4', 'execution_id': 'e1'},
        'mgmt/tenants/0.json': {'type': 'tenants', 'items': []},
        'tenants/default_tenant/agents/0.json': {'type': 'agents', 'items': []},
        'tenants/t2/agents/0.json': {'type': 'agents', 'items': []},
        'tenants/t3/blueprints/0.json': {'type': 'blueprints', 'items': []}})
    info = archive.inspect(path)
    assert info['format'] == 'entities'
    assert info['agents_layout'] == 'per-tenant'
    assert info['agent_tenants'] == ['default_tenant', 't2']


def test_not_a_zip(tmp_path):
    path = tmp_path / 's.zip'
    path.write_text('this is not a zip file at all')
    with pytest.raises(InputError) as info:
        archive.inspect(str(path))
    assert info.value.error_id == 'snapshot-corrupt'
    assert info.value.exit_code == 2


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as info:
        archive.inspect(str(tmp_path / 'nope.zip'))
    assert info.value.error_id == 'snapshot-not-found'


def test_truncated(tmp_path):
    path = snapshot_44(tmp_path)
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(InputError) as info:
        archive.inspect(path)
    assert info.value.error_id == 'snapshot-corrupt'


def _flip_byte_in(path, marker):
    data = bytearray(open(path, 'rb').read())
    at = data.index(marker) + len(marker) // 2
    data[at] ^= 0xFF
    with open(path, 'wb') as f:
        f.write(bytes(data))


def test_corrupt_byte_in_a_stored_member_fails_the_crc(tmp_path):
    path = make_zip(tmp_path / 's.zip', {
        'metadata.json': {'snapshot_version': '4.4.0'},
        'pg_data': b'POSTGRES-DUMP-' * 100}, compression=zipfile.ZIP_STORED)
    archive.inspect(path)
    _flip_byte_in(path, b'POSTGRES-DUMP-POSTGRES')
    with pytest.raises(InputError) as info:
        archive.inspect(path)
    assert info.value.error_id == 'snapshot-corrupt'
    assert 'pg_data' in info.value.message


def test_corrupt_byte_in_a_deflated_member(tmp_path):
    path = make_zip(tmp_path / 's.zip', {
        'metadata.json': {'snapshot_version': '4.4.0'},
        'pg_data': os.urandom(4096)})
    data = bytearray(open(path, 'rb').read())
    # the second local header is pg_data's; damage the middle of its compressed data
    second = data.index(b'PK\x03\x04', 4)
    data[second + 30 + len('pg_data') + 2000] ^= 0xFF
    with open(path, 'wb') as f:
        f.write(bytes(data))
    with pytest.raises(InputError) as info:
        archive.inspect(path)
    assert info.value.error_id == 'snapshot-corrupt'


def test_no_metadata(tmp_path):
    path = make_zip(tmp_path / 's.zip', {'agents.json': {}})
    with pytest.raises(InputError) as info:
        archive.inspect(path)
    assert info.value.error_id == 'snapshot-no-metadata'


@pytest.mark.parametrize('content', ['{not json', '[]', '{"schema_revision": "x"}',
                                     '{"snapshot_version": ""}'])
def test_unreadable_metadata(tmp_path, content):
    path = make_zip(tmp_path / 's.zip', {'metadata.json': content})
    with pytest.raises(InputError) as info:
        archive.inspect(path)
    assert info.value.error_id == 'snapshot-no-metadata'


def test_read_member(tmp_path):
    path = snapshot_44(tmp_path)
    agents = archive.read_member(path, 'agents.json')
    assert agents['t2']['dep2']['host']['host_1'] == AGENT
    assert archive.read_member(path, 'ssl/cloudify_internal_cert.pem', as_json=False) == \
        b'CERT'
    with pytest.raises(InputError) as info:
        archive.read_member(path, 'license.json')
    assert info.value.error_id == 'snapshot-member-missing'
    with pytest.raises(InputError) as info:
        archive.read_member(path, 'pg_data')
    assert info.value.error_id == 'snapshot-member-unreadable'
    with pytest.raises(InputError) as info:
        archive.read_member(path, 'pg_data', max_size=100)
    assert info.value.error_id == 'snapshot-member-too-large'


@pytest.mark.parametrize('member', ['metadata.json', 'agents.json'])
def test_json_nested_too_deep_is_a_corrupt_snapshot(tmp_path, member):
    """Issue 17 item 8: a RecursionError of the parser is snapshot-corrupt (exit 2)."""
    deep = '[' * 100000 + ']' * 100000
    path = str(tmp_path / 'deep.zip')
    with zipfile.ZipFile(path, 'w') as zf:
        metadata = {'snapshot_version': '4.1.0'}
        zf.writestr('metadata.json', json.dumps(metadata) if member != 'metadata.json'
                    else '{"snapshot_version": "4.1.0", "x": ' + deep + '}')
        if member == 'agents.json':
            zf.writestr('agents.json', '{"t": ' + deep + '}')
    with pytest.raises(InputError) as info:
        archive.inspect(path)
    assert info.value.error_id == 'snapshot-corrupt' and info.value.exit_code == 2
    assert member in info.value.message
