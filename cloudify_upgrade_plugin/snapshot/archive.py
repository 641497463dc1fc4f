"""Snapshot zip inspection: integrity, ``metadata.json`` and what the archive carries.

This module owns reading a downloaded snapshot archive without extracting it:

- ``inspect(path)`` checks that the file is a zip (``zipfile.is_zipfile``), CRC-checks every
  member (``ZipFile.testzip()``, one full read of the archive), parses ``metadata.json`` and
  reports what the upgrade needs to know (behaviour §3.7, §7.3)::

      {'snapshot_version': '4.4.0', 'metadata': {...}, 'members': [...names...],
       'size': bytes, 'format': 'legacy' | 'entities',
       'has_ssl': bool,            # ssl/ (copy of /etc/cloudify/ssl; 4.0.1+)
       'has_rest_security': bool,  # rest-security.conf (4.4+)
       'has_hash_salt': bool,      # hash_salt.json (4.2-4.3) or rest-security.conf (4.4+)
       'agents_layout': 'per-tenant' | 'flat' | None,
       'agent_tenants': [...] | None, 'agents_count': int | None,
       'agent_networks': [...] | None,   # networks.json (4.2+); None when absent
       'agents_min_version': '4.1' | None,   # the oldest agent version in agents.json
       'revisions': [...]}   # which of schema_revision, composer_schema_revision,
                             # stage_schema_revision metadata.json holds (behaviour §12.1)

  ``agents_layout`` is read from the structure of ``agents.json`` (per tenant:
  tenant/deployment/node/instance -> agent; flat: deployment/node/instance -> agent); when
  the file holds no agent, it follows the rule the managers apply: snapshot versions from
  4.1.0 on (including ``4.1.0-p3-4.0.1``, the patched 4.0.1) are per tenant.  7.0's
  entity-by-entity format keeps agents under ``tenants/<name>/agents/`` (per tenant).
  ``None`` means the archive has no agent data at all.  ``agent_networks`` comes from
  ``networks.json`` (4.2+), else from ``network`` keys of the agent records, else None.
  ``has_hash_salt`` is decided from member names only: the secrets in
  ``rest-security.conf`` are never read by this module.  ``revisions`` lists the schema
  revision keys present (key presence, as 7.0 decides its restore route:
  ``versions.restore_route``), in the order of ``versions.REVISION_KEYS``.
- ``read_member(path, name)`` returns one small member parsed as JSON (``agents.json``,
  ``networks.json``...), bounded by ``max_size``.

Errors are ``InputError`` (exit 2): ``snapshot-not-found``, ``snapshot-corrupt`` (not a
zip, truncated, CRC or compressed-data failure), ``snapshot-no-metadata`` (no readable
``metadata.json`` with a ``snapshot_version``), ``snapshot-member-missing``,
``snapshot-member-unreadable``, ``snapshot-member-too-large``.  JSON nested deeper than the
parser can follow (``[[[[...``) is ``snapshot-corrupt``.
"""
import json
import os
import re
import zipfile
import zlib
from typing import Any

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.log import get_logger

METADATA = 'metadata.json'
AGENTS = 'agents.json'
NETWORKS = 'networks.json'
REST_SECURITY = 'rest-security.conf'
HASH_SALT = 'hash_salt.json'
DEFAULT_MAX_MEMBER = 64 * 1024 * 1024
_METADATA_MAX = 1024 * 1024
_AGENT_KEYS = frozenset(['broker_config', 'broker_ip', 'broker_user', 'broker_pass'])
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError,
               RuntimeError, ValueError, OSError)


def _corrupt(path, why):
    return InputError(
        'The snapshot archive {0} is corrupt: {1}'.format(path, why),
        error_id='snapshot-corrupt',
        hints=['Download the snapshot again from the manager (rerun the command; the '
               'download step is redone when the archive fails its checks).',
               'If it is corrupt on the manager as well, create a new snapshot.'])


def _open(path):
    if not os.path.isfile(path):
        raise InputError('No snapshot archive at {0}'.format(path),
                         error_id='snapshot-not-found',
                         hints=['Check the path, or run `cfy upgrade prepare` to download '
                                'the snapshot.'])
    try:
        if not zipfile.is_zipfile(path):
            raise _corrupt(path, 'not a zip archive (or truncated: no central directory)')
        return zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise _corrupt(path, exc)


def _read(zf, path, name, max_size):
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    if info.file_size > max_size:
        raise InputError(
            'The member {0} of {1} is {2} bytes, more than the {3} allowed.'.format(
                name, path, info.file_size, max_size),
            error_id='snapshot-member-too-large',
            hints=['This does not look like a Cloudify snapshot member; check the archive.'])
    try:
        with zf.open(info) as f:
            return f.read(max_size + 1)
    except _ZIP_ERRORS as exc:
        raise _corrupt(path, '{0}: {1}'.format(name, exc))


def _parse_json(data, path=None, name=None):
    """The JSON in ``data``; nesting too deep for the parser (a hostile or broken archive:
    ``[[[[...`` a hundred thousand levels) is ``snapshot-corrupt``, never a RecursionError."""
    try:
        return json.loads(data.decode('utf-8-sig'))
    except RecursionError:
        raise _corrupt(path, '{0} nests its JSON deeper than a snapshot ever does'.format(
            name))


def read_member(path, name, max_size=DEFAULT_MAX_MEMBER, as_json=True) -> Any:
    """One member of the archive, parsed as JSON (or raw bytes with ``as_json=False``)."""
    with _open(path) as zf:
        data = _read(zf, path, name, max_size)
    if data is None:
        raise InputError('The snapshot {0} has no {1}'.format(path, name),
                         error_id='snapshot-member-missing',
                         hints=['This snapshot was made by a version that does not write '
                                '{0}.'.format(name)])
    if not as_json:
        return data
    try:
        return _parse_json(data, path, name)
    except ValueError as exc:
        raise InputError('The member {0} of {1} is not valid JSON: {2}'.format(
            name, path, exc), error_id='snapshot-member-unreadable',
            hints=['Download the snapshot again; create a new one if this persists.'])


def _numeric_version(text):
    """Leading ``X.Y.Z`` as a tuple (``4.1.0-p3-4.0.1`` -> (4, 1, 0)); None if absent."""
    match = re.match(r'\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?', str(text or ''))
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


def _is_agent_record(obj):
    return isinstance(obj, dict) and (
        bool(_AGENT_KEYS.intersection(obj)) or isinstance(obj.get('version'), str))


def _agent_depth(obj, depth=0):
    """Depth of the first agent record under ``obj`` (3 = flat, 4 = per tenant)."""
    if not isinstance(obj, dict) or depth > 4:
        return None
    if depth and _is_agent_record(obj):
        return depth
    for value in obj.values():
        found = _agent_depth(value, depth + 1)
        if found is not None:
            return found
    return None


def _agent_records(obj, depth, target):
    if not isinstance(obj, dict):
        return
    if depth == target:
        yield obj
        return
    for value in obj.values():
        yield from _agent_records(value, depth + 1, target)


def _oldest_version(records):
    """The oldest ``version`` among agent records (as written), or None."""
    found = []
    for record in records:
        try:
            found.append(versions.Version.parse(record.get('version')))
        except (UpgradeError, ValueError, TypeError):
            continue
    return min(found).raw if found else None


def _agents_summary(agents, snapshot_version):
    """(layout, tenants, count, networks, oldest version) from a parsed agents.json.

    Managers write tenant/deployment/node/instance (depth 4) or deployment/node/instance
    (depth 3).  Depth 4 can only be per tenant and depth 2 (no node level) only flat; depth 3
    or no agent at all is decided by the snapshot version, as the restoring manager does.
    """
    if not isinstance(agents, dict):
        return None, None, None, [], None
    depth = _agent_depth(agents)
    if depth == 4:
        layout = 'per-tenant'
    elif depth is not None and depth <= 2:
        layout = 'flat'
    else:
        version = _numeric_version(snapshot_version)
        layout = 'per-tenant' if version and version >= (4, 1, 0) else 'flat'
    records = list(_agent_records(agents, 0, depth)) if depth else []
    networks = sorted({r['network'] for r in records if isinstance(r.get('network'), str)})
    tenants = sorted(agents) if layout == 'per-tenant' else None
    return layout, tenants, len(records), networks, _oldest_version(records)


def _networks(data):
    if isinstance(data, dict):
        return sorted(str(key) for key in data)
    if isinstance(data, list):
        return [item if isinstance(item, str) else json.dumps(item, sort_keys=True)
                for item in data]
    return []


def inspect(path) -> dict:
    """Check the archive and summarise it (see the module docstring for the keys)."""
    log = get_logger()
    path = os.path.abspath(path)
    with _open(path) as zf:
        try:
            bad = zf.testzip()
        except _ZIP_ERRORS as exc:
            raise _corrupt(path, exc)
        if bad is not None:
            raise _corrupt(path, 'CRC check failed for {0}'.format(bad))
        members = zf.namelist()
        names = set(members)
        raw_metadata = _read(zf, path, METADATA, _METADATA_MAX)
        if raw_metadata is None:
            raise InputError(
                'The archive {0} has no metadata.json: it is not a Cloudify snapshot.'.format(
                    path),
                error_id='snapshot-no-metadata',
                hints=['Use an archive downloaded with `cfy snapshots download` or '
                       '`cfy upgrade prepare`.'])
        try:
            metadata = _parse_json(raw_metadata, path, METADATA)
        except ValueError as exc:
            metadata = exc
        if not isinstance(metadata, dict) or not metadata.get('snapshot_version'):
            raise InputError(
                'The metadata.json of {0} is unreadable or has no snapshot_version.'.format(
                    path),
                error_id='snapshot-no-metadata',
                hints=['Download the snapshot again; create a new one if this persists.'])
        snapshot_version = str(metadata['snapshot_version'])
        agents_raw = _read(zf, path, AGENTS, DEFAULT_MAX_MEMBER)
        networks_raw = _read(zf, path, NETWORKS, _METADATA_MAX)

    entity_format = any(name.startswith(('mgmt/', 'tenants/')) for name in members)
    layout = tenants = count = oldest = None
    record_networks = []
    if agents_raw is not None:
        try:
            layout, tenants, count, record_networks, oldest = _agents_summary(
                _parse_json(agents_raw, path, AGENTS), snapshot_version)
        except ValueError:
            log.warning('agents.json in %s is not valid JSON; agent layout unknown', path)
    elif entity_format:
        agent_tenants = sorted({name.split('/')[1] for name in members
                                if re.match(r'tenants/[^/]+/agents/.', name)})
        if agent_tenants:
            layout, tenants = 'per-tenant', agent_tenants
    agent_networks = record_networks or None
    if networks_raw is not None:
        try:
            agent_networks = _networks(_parse_json(networks_raw, path, NETWORKS))
        except ValueError:
            log.warning('networks.json in %s is not valid JSON', path)
    result = {
        'path': path,
        'size': os.path.getsize(path),
        'snapshot_version': snapshot_version,
        'metadata': metadata,
        'members': members,
        'format': 'entities' if entity_format else 'legacy',
        'has_ssl': any(name.startswith('ssl/') and not name.endswith('/')
                       for name in members),
        'has_rest_security': REST_SECURITY in names,
        'has_hash_salt': HASH_SALT in names or REST_SECURITY in names,
        'agents_layout': layout,
        'agent_tenants': tenants,
        'agents_count': count,
        'agent_networks': agent_networks,
        'agents_min_version': oldest,
        'revisions': [key for key in versions.REVISION_KEYS if key in metadata],
    }
    log.debug('Snapshot %s: version %s, %d members, agents %s', path, snapshot_version,
              len(members), layout)
    return result
