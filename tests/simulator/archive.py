"""Snapshot archives of the simulated managers: a real zip laid out per version (behaviour §3.7)
with ``metadata.json``, ``agents.json`` (flat or per tenant, behaviour §7.3), ``ssl/`` (4.0.1+,
copied from the host's /etc/cloudify/ssl), ``hash_salt.json`` (4.2-4.3),
``rest-security.conf`` (4.4+), ``admin_account.json`` (4.x+), ``license.json`` (4.6+), and
the manager's data in the simulator's own file ``simulator-data.json``.
"""
import json
import os
import zipfile

DATA_FILE = 'simulator-data.json'


def build(path, rules, store_dump, host_root, rest_security, execution_id, legacy,
          include_credentials=True, agents=None):
    """Write the snapshot zip of a manager following `rules` to `path`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    metadata = {'snapshot_version': rules.snapshot_version}
    if rules.is_3x:
        metadata['has_cloudify_events'] = True          # behaviour §3.7 (3.x)
    if rules.new_format_restore and not legacy:
        # 7.0.4 non-legacy format: no schema revisions -> not "legacy" (behaviour §3.7)
        metadata['execution_id'] = execution_id
    else:
        if rules.schema_revision:
            metadata['schema_revision'] = rules.schema_revision        # 4.0.1+
        if rules.has_stage_revision:
            metadata['stage_schema_revision'] = 'sim-stage-' + rules.key
        if rules.has_composer:
            metadata['composer_schema_revision'] = 'sim-composer-' + rules.key   # 4.1+
        if rules.snapshot_execution_id:
            metadata['execution_id'] = execution_id
    tmp = path + '.tmp'
    with zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED) as zf:
        zf.writestr('metadata.json', json.dumps(metadata))
        zf.writestr(DATA_FILE, json.dumps({'source': {
            'version': rules.reported_version, 'edition': rules.edition,
            'key': rules.key}, 'data': store_dump}))
        zf.writestr('agents.json', json.dumps(agents_json(rules, agents or [])))
        if rules.is_3x:
            zf.writestr('es_data', '')
        else:
            zf.writestr('pg_data', '')
            admin = next((u for u in store_dump['users'].values() if u['id'] == 0), None)
            if admin:
                zf.writestr('admin_account.json', json.dumps(
                    {'username': admin['username'], 'password': admin['password_hash']}))
        if include_credentials:
            zf.writestr('snapshot-credentials/', '')
        if rules.snapshot_has_ssl:
            ssl_dir = os.path.join(host_root, 'etc', 'cloudify', 'ssl')
            if os.path.isdir(ssl_dir):
                for name in sorted(os.listdir(ssl_dir)):
                    full = os.path.join(ssl_dir, name)
                    if os.path.isfile(full):
                        zf.write(full, 'ssl/' + name)
        if rules.snapshot_has_hash_salt and rest_security:
            zf.writestr('hash_salt.json', json.dumps(rest_security.get('hash_salt')))
        if rules.snapshot_has_rest_security and rest_security:
            zf.writestr('rest-security.conf', json.dumps(rest_security))
        if rules.snapshot_has_license and rules.edition == 'premium':
            zf.writestr('license.json', json.dumps({'customer_id': 'simulator'}))
    os.replace(tmp, path)
    return metadata


def agents_json(rules, agents):
    """Per-tenant layout from 4.1 (or patched 4.0.x), flat (by deployment) otherwise
    (behaviour §3.7 table row agents.json; behaviour §7.3 'Ways to detect it' item 1)."""
    out = {}
    for agent in agents:
        entry = {'version': agent['version'], 'ip': agent['ip'],
                 'broker_config': {'broker_ip': agent['broker']['ip'],
                                   'broker_port': agent['broker']['port'],
                                   'broker_user': agent['rabbitmq_username'],
                                   'broker_pass': agent['rabbitmq_password'],
                                   'broker_vhost': 'rabbitmq_vhost_' + agent['tenant_name']},
                 'network': agent.get('network', 'default')}
        if rules.per_tenant_agents_json:
            out.setdefault(agent['tenant_name'], {}).setdefault(
                agent['deployment'], {})[agent['node_instance_id']] = entry
        else:
            out.setdefault(agent['deployment'], {})[agent['node_instance_id']] = entry
    return out


class ArchiveError(Exception):
    pass


def read(path):
    """-> dict(metadata, data, source, ssl {name: bytes}, hash_salt, rest_security)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if 'metadata.json' not in names:
                raise ArchiveError('metadata.json not found in the snapshot archive')
            out = {'metadata': json.loads(zf.read('metadata.json').decode('utf-8')),
                   'ssl': {}, 'hash_salt': None, 'rest_security': None, 'data': None,
                   'source': None}
            if DATA_FILE in names:
                blob = json.loads(zf.read(DATA_FILE).decode('utf-8'))
                out['data'] = blob.get('data')
                out['source'] = blob.get('source')
            for name in names:
                if name.startswith('ssl/') and not name.endswith('/'):
                    out['ssl'][name[4:]] = zf.read(name)
            if 'hash_salt.json' in names:
                out['hash_salt'] = json.loads(zf.read('hash_salt.json').decode('utf-8'))
            if 'rest-security.conf' in names:
                out['rest_security'] = json.loads(
                    zf.read('rest-security.conf').decode('utf-8'))
            return out
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ArchiveError('Cannot read the snapshot archive: {0}'.format(e))
