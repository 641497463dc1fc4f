"""Snapshot archives of the simulated managers: real zips laid out per version and format.

Legacy format (every version; 7.0 with ``legacy: true``; behaviour §3.7 as corrected by behaviour
§12.1): ``metadata.json`` (revision keys per edition and version, rules.py), ``agents.json``
(flat or per tenant, behaviour §7.3), ``pg_data`` / ``es_data``, ``stage_data`` /
``composer_data``, ``ssl/`` (4.0.1+, copied from the host's /etc/cloudify/ssl),
``hash_salt.json`` (4.2-4.3), ``rest-security.conf`` (4.4+), ``admin_account.json`` (4.x+),
``license.json`` (4.6+), and the manager's data in the simulator's own member
``simulator-data.json`` (the stand-in for the DB dump).

New per-entity format (7.0 default, MGR@7.0.4 snapshot_create.py): ``metadata.json``
(``snapshot_version``, ``execution_id``), ``mgmt/NNNNNNNN.json`` (tenants, users) and
``tenants/<tenant>/NNNNNNNN.json`` (one file per entity type: ``{"type", "items"}``), empty
``composer/`` and ``stage/``; no DB dump, no ssl/, no rest-security.conf, no agents.json.
:func:`read` scans a zip the way the 7.0 new route does (``scan_snapshot``): only
``mgmt/*.json`` and ``tenants/<t>/...`` members carry entities.
"""
import json
import os
import zipfile

DATA_FILE = 'simulator-data.json'

# The tenant entity types of the new format, in the order the 7.0.4 create dumps them and its
# restore applies them (MGR@7.0.4 snapshot_create.py `_dump_tenant`, snapshot_restore.py
# `_new_restore_parse_and_restore`), limited to the kinds the simulator stores (data.KINDS
# minus snapshots, which the new format does not dump; `plugins_updates` is the source's
# `plugins_update`).
NEW_FORMAT_TENANT_TYPES = ('sites', 'plugins', 'secrets', 'blueprints', 'deployments',
                           'deployment_groups', 'nodes', 'node_instances', 'agents',
                           'executions', 'plugins_updates', 'deployments_filters',
                           'blueprints_filters', 'execution_schedules')
# MGR@7.0.4 snapshot_create.py `_dump_management`: tenants, permissions, user_groups, users
# (permissions are not simulated).
NEW_FORMAT_MGMT_TYPES = ('tenants', 'user_groups', 'users')


def build(path, rules, store_dump, host_root, rest_security, execution_id, legacy,
          include_credentials=True, agents=None):
    """Write the snapshot zip of a manager following `rules` to `path`; `legacy` is the
    create request's choice (only 7.0 writes the new format, never when distributed)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    if rules.new_format_create and (not legacy or rules.distributed):
        metadata = _build_new(tmp, rules, store_dump, execution_id)
    else:
        metadata = _build_legacy(tmp, rules, store_dump, host_root, rest_security,
                                 include_credentials, agents or [])
    os.replace(tmp, path)
    return metadata


def legacy_metadata(rules):
    """metadata.json of a legacy snapshot (behaviour §12.1 correcting §3.7; rules.py)."""
    metadata = {'snapshot_version': rules.snapshot_version}
    if rules.is_3x:
        metadata['has_cloudify_events'] = True           # behaviour §3.7 (3.x)
    if rules.schema_revision:
        metadata['schema_revision'] = rules.schema_revision
    if rules.writes_stage_revision:
        metadata['stage_schema_revision'] = 'sim-stage-' + rules.key
    if rules.writes_composer_revision:
        metadata['composer_schema_revision'] = 'sim-composer-' + rules.key
    return metadata


def _build_legacy(tmp, rules, store_dump, host_root, rest_security, include_credentials,
                  agents):
    metadata = legacy_metadata(rules)
    with zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED) as zf:
        zf.writestr('metadata.json', json.dumps(metadata))
        zf.writestr(DATA_FILE, json.dumps({'source': {
            'version': rules.reported_version, 'edition': rules.edition,
            'key': rules.key}, 'data': store_dump}))
        zf.writestr('agents.json', json.dumps(agents_json(rules, agents)))
        if rules.is_3x:
            zf.writestr('es_data', '')
        else:
            zf.writestr('pg_data', '')
            admin = next((u for u in store_dump['users'].values() if u['id'] == 0), None)
            if admin:
                zf.writestr('admin_account.json', json.dumps(
                    {'username': admin['username'], 'password': admin['password_hash']}))
        if rules.snapshot_has_stage_data:
            zf.writestr('stage_data', '')
        if rules.snapshot_has_composer_data:
            zf.writestr('composer_data', '')
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
        if rules.snapshot_has_license and rules.premium:
            zf.writestr('license.json', json.dumps({'customer_id': 'simulator'}))
    return metadata


def _build_new(tmp, rules, store_dump, execution_id):
    """MGR@7.0.4 snapshot_create.py: metadata, mgmt/ (tenants, user groups, users), tenants/<t>/ per
    entity type, composer/ and stage/ (the UI dumps; empty here)."""
    metadata = {'snapshot_version': rules.snapshot_version, 'execution_id': execution_id}
    with zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED) as zf:
        zf.writestr('metadata.json', json.dumps(metadata))
        for folder in ('mgmt/', 'tenants/', 'composer/', 'stage/'):
            zf.writestr(folder, '')
        seq = 0
        mgmt = {'tenants': list(store_dump['tenants'].values()),
                'user_groups': list(store_dump['resources'].get('user_groups') or []),
                'users': list(store_dump['users'].values())}
        for kind in NEW_FORMAT_MGMT_TYPES:
            if mgmt[kind]:
                seq += 1
                zf.writestr('mgmt/{0:08d}.json'.format(seq),
                            json.dumps({'type': kind, 'items': mgmt[kind]}))
        resources = store_dump['resources']
        for tenant in store_dump['tenants']:
            zf.writestr('tenants/{0}/'.format(tenant), '')
            seq = 0
            for kind in NEW_FORMAT_TENANT_TYPES:
                items = [r for r in resources.get(kind, [])
                         if (r.get('tenant_name') or 'default_tenant') == tenant]
                if items:
                    seq += 1
                    zf.writestr('tenants/{0}/{1:08d}.json'.format(tenant, seq),
                                json.dumps({'type': kind, 'items': items}))
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
    """-> dict(metadata, names, data, source, ssl {name: bytes}, hash_salt, rest_security,
    entities).  `data` is the legacy DB stand-in (None in a new-format zip); `entities` is
    what the 7.0 new route finds (MGR@7.0.4 snapshot_restore.py `scan_snapshot`):
    {'mgmt': {type: [items]}, 'tenants': {tenant: {type: [items]}}}; a legacy-shaped zip
    has none."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if 'metadata.json' not in names:
                raise ArchiveError('metadata.json not found in the snapshot archive')
            out = {'metadata': json.loads(zf.read('metadata.json').decode('utf-8')),
                   'names': names, 'ssl': {}, 'hash_salt': None, 'rest_security': None,
                   'data': None, 'source': None, 'entities': _scan(zf)}
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


def _scan(zf):
    """mgmt/*.json (one slash) and tenants/<t>/*.json (two or more slashes) members; every
    other member is "Unexpected file in snapshot" (logged at DEBUG) and ignored."""
    found = {'mgmt': {}, 'tenants': {}}
    for entry in zf.infolist():
        name = entry.filename
        if name.endswith('/') or not name.endswith('.json'):
            continue
        parts = name.split('/')
        if len(parts) == 2 and parts[0] == 'mgmt':
            target = found['mgmt']
        elif len(parts) >= 3 and parts[0] == 'tenants':
            target = found['tenants'].setdefault(parts[1], {})
        else:
            continue
        blob = json.loads(zf.read(name).decode('utf-8'))
        if isinstance(blob, dict) and blob.get('type'):
            target.setdefault(blob['type'], []).extend(blob.get('items') or [])
    return found
