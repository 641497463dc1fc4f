"""What the runbooks share: opening managers and hosts, snapshot life cycle, rendering.

Thin glue between the steps and the layers below (manager/, host/, snapshot/, engine/):
each function does one manager- or host-level action the steps of prepare, new-host and
in-place need, with the version rules of docs/manager-behaviour.md applied in one place.
"""
import os
from typing import List, Optional

from cloudify_upgrade_plugin import log, versions
from cloudify_upgrade_plugin.engine.checks import Check, evaluate
from cloudify_upgrade_plugin.engine.summary import summarize
from cloudify_upgrade_plugin.errors import BlockedError, InputError, UpgradeError
from cloudify_upgrade_plugin.host import known_hosts
from cloudify_upgrade_plugin.host.errors import HostUnavailable
from cloudify_upgrade_plugin.host.ssh import Host
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import cluster
from cloudify_upgrade_plugin.manager.client import Manager
from cloudify_upgrade_plugin.manager.events import EventPrinter
from cloudify_upgrade_plugin.manager.waits import wait_for_execution
from cloudify_upgrade_plugin.snapshot import archive, transfer


# -- opening things ---------------------------------------------------------------------

def open_manager(profile_name=None, role='source', host=None) -> Manager:
    """The discovered manager of a cfy profile (the active one when None); ``host``: at that
    address instead of the profile's (the cluster node an upgrade is pinned to)."""
    manager = Manager.from_profile(profile_name, host=host)
    get_logger().info('%s manager: %s%s at %s (API %s)', role.capitalize(),
                      manager.version, ' ' + manager.edition if manager.edition else '',
                      manager.address, manager.api_prefix)
    return manager


def parse_target(text) -> Optional[versions.Version]:
    if not text:
        return None
    try:
        return versions.Version.parse(text)
    except UpgradeError:
        raise
    except Exception:
        raise InputError('--target-version {0!r} is not a Cloudify version.'.format(text),
                         error_id='bad-target-version',
                         hints=['Give a version like 4.6, 5.2.7 or 7.0.4.'])


def manager_meta(manager) -> dict:
    """The non-secret description of a manager kept in workspace.json."""
    return {'profile': manager.profile_name, 'address': manager.address,
            'version': str(manager.version), 'edition': manager.edition,
            'api_prefix': manager.api_prefix}


def ssh_configured(manager) -> bool:
    profile = manager.profile
    if profile is not None and manager.host != getattr(profile, 'manager_ip', None):
        settings = cluster.node_ssh_profile(profile, manager.host)
        return bool(settings.get('ssh_user') and settings.get('ssh_key'))
    return bool(profile is not None and getattr(profile, 'ssh_user', None)
                and getattr(profile, 'ssh_key', None))


def open_host(manager) -> Host:
    """SSH to the manager's host, from its profile's ssh_user / ssh_key / ssh_port (a cluster
    node other than the profile's address: its cluster entry's, ``manager/cluster.py``)."""
    profile = manager.profile
    if profile is not None and manager.host != getattr(profile, 'manager_ip', None):
        return Host.from_profile(cluster.node_ssh_profile(profile, manager.host))
    return Host.from_profile(profile)


def ssh_probe(manager) -> None:
    with open_host(manager) as host:
        host.run(['true'])


def verify_host_keys(profiles) -> None:
    """A command's first contact with the manager hosts it will use over SSH (issue 17
    item 5): each host's key is checked without logging in; a changed key, or an unknown
    one nobody confirmed, stops the command before anything changes (``BlockedError``,
    exit 3, ids ``ssh-host-key-changed`` / ``ssh-host-key-unknown``).  A host that does not
    answer, or a profile without SSH settings, is left to the checks that need it."""
    for profile in profiles:
        try:
            with Host.from_profile(profile) as host:
                host.verify_host_key()
        except HostUnavailable as error:
            if error.error_id in ('ssh-host-key-changed', 'ssh-host-key-unknown'):
                raise BlockedError(error.message, error_id=error.error_id,
                                   hints=error.hints)


def journal_host_keys(workspace) -> None:
    """Record in the journal every SSH host key trusted since the last call (a waiver-like
    entry: ``check`` ssh-host-key-accepted, how, the host and the fingerprint)."""
    for record in known_hosts.take_accepted():
        workspace.journal.append('host-keys', 'waived', {
            'check': 'ssh-host-key-accepted', 'reason': record['how'],
            'message': 'SSH host key of {0} trusted: {1} {2}'.format(
                record['host'], record['algorithm'], record['fingerprint']),
            'host': record['host'], 'algorithm': record['algorithm'],
            'fingerprint': record['fingerprint'], 'pinned_in': record['pinned_in']})


def existing_parent(path) -> str:
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path or '/'


# -- reading a manager ------------------------------------------------------------------

def active_executions(manager) -> List[dict]:
    """Every active execution in every tenant, system workflows included."""
    # 4.0/4.1 executions lists may ignore _all_tenants (4.1 source has no all_tenants
    # decorator there, though behaviour §4 says 4.0+): ask tenant by tenant before 4.2.
    per_tenant = not versions.honours_all_tenants_on_executions(manager.version)
    return list(manager.list_all(
        'executions', all_tenants=True, per_tenant=per_tenant,
        status=versions.active_execution_states(manager.version),
        include=['id', 'workflow_id', 'status', 'deployment_id', 'tenant_name']
        if manager.has_tenants else ['id', 'workflow_id', 'status', 'deployment_id']))


def usernames(manager) -> Optional[List[str]]:
    """Usernames on premium 4.0+; None where there is no user list (community, 3.x)."""
    if not manager.has_tenants or manager.edition == 'community':
        return None
    try:
        return sorted(user['username'] for user in
                      manager.list_all('users', include=['username']))
    except UpgradeError as error:
        if 'premium' in error.message or error.error_id == 'not-found':
            return None
        raise


def host_patch_marker(manager) -> Optional[bool]:
    """True/False when SSH tells whether update-3 / patch-1 is in the mgmtworker, else None.

    behaviour §7.3 (way 2, [I]/[U]): the patched snapshot_create.py writes "4.1.0-p3" (4.0.1)
    or "4.1.0-p1" (4.0.0).
    """
    patch = versions.needs_patch(manager.version)
    if patch is None or not ssh_configured(manager):
        return None
    marker = '4.1.0-p3' if patch == 'update-3' else '4.1.0-p1'
    path = ('/opt/mgmtworker/env/lib/python2.7/site-packages/cloudify_system_workflows/'
            'snapshots/snapshot_create.py')
    try:
        with open_host(manager) as host:
            if not host.file_exists(path):
                return None
            rc, _ = host.run(['grep', '-q', marker, path], check=False)
    except UpgradeError:
        return None
    return rc == 0


# -- snapshots --------------------------------------------------------------------------

def snapshot_status(manager, snapshot_id) -> Optional[str]:
    try:
        return manager.get_snapshot(snapshot_id).get('status')
    except UpgradeError as error:
        if error.error_id == 'not-found':
            return None
        raise


def snapshot_execution(manager, snapshot_id, workflow='create_snapshot') -> Optional[dict]:
    """The newest execution of `workflow` for this snapshot id, if the manager lists it."""
    for execution in manager.list_all('executions', workflow_id=workflow, sort='-created_at',
                                      include=['id', 'status', 'parameters', 'created_at']):
        parameters = execution.get('parameters') or {}
        if parameters.get('snapshot_id') == snapshot_id:
            return execution
    return None


def create_snapshot(manager, snapshot_id, timeout) -> Optional[str]:
    """Create the snapshot (or adopt the one a previous run started) and wait for it."""
    logger = get_logger()
    status = snapshot_status(manager, snapshot_id)
    if status == 'created':
        logger.info('Snapshot %s already exists on the old manager.', snapshot_id)
        return None
    if status == 'failed':
        raise snapshot_failed(manager, snapshot_id)
    if status is None:
        execution_id = manager.create_snapshot(snapshot_id)
        logger.info('Creating snapshot %s (execution %s)...', snapshot_id, execution_id)
    else:
        execution = snapshot_execution(manager, snapshot_id)
        if execution is None:
            raise UpgradeError(
                'Snapshot {0} is "{1}" on {2} but no create_snapshot execution for it was '
                'found.'.format(snapshot_id, status, manager.label),
                error_id='snapshot-orphaned',
                hints=['Delete the snapshot (`cfy snapshots delete {0}`) and run prepare '
                       'again, or run prepare with another --snapshot-id.'.format(
                           snapshot_id)])
        execution_id = execution['id']
        logger.info('Waiting for snapshot %s started earlier (execution %s)...',
                    snapshot_id, execution_id)
    try:
        wait_for_execution(manager, execution_id, timeout=timeout,
                           on_event=EventPrinter(execution_id))
    except UpgradeError as error:
        if error.error_id == 'execution-failed':
            raise snapshot_failed(manager, snapshot_id, error)
        raise
    require_snapshot_created(manager, snapshot_id)
    return execution_id


def snapshot_failed(manager, snapshot_id, cause=None) -> UpgradeError:
    try:
        reason = manager.get_snapshot(snapshot_id).get('error') or ''
    except UpgradeError:
        reason = ''
    reason = reason or (cause.message if cause else 'no reason given')
    return UpgradeError(
        'Snapshot {0} failed on {1}: {2}'.format(snapshot_id, manager.label,
                                                 reason.strip().splitlines()[-1]
                                                 if reason.strip() else reason),
        error_id='snapshot-failed',
        hints=['Read the create_snapshot execution\'s events on the old manager '
               '(`cfy executions list --include-system-workflows`, then `cfy events list '
               '<execution id>`).',
               'Fix the cause, then run prepare again with a new --snapshot-id.'])


def require_snapshot_created(manager, snapshot_id) -> None:
    status = snapshot_status(manager, snapshot_id)
    if status == 'failed':
        raise snapshot_failed(manager, snapshot_id)
    if status != 'created':
        raise UpgradeError('Snapshot {0} is "{1}" on {2}, not "created".'.format(
            snapshot_id, status, manager.label), error_id='snapshot-not-created',
            hints=['Run the command again; it waits for the snapshot.'])


def snapshot_relpath(snapshot_id) -> str:
    return os.path.join('snapshot', '{0}.zip'.format(snapshot_id))


def local_snapshot_intact(workspace, snapshot_id) -> bool:
    """True when the downloaded zip exists and matches its recorded .sha256."""
    path = workspace.path(snapshot_relpath(snapshot_id))
    if not os.path.isfile(path) or not os.path.isfile(path + '.sha256'):
        return False
    try:
        transfer.verify_file(path)
    except UpgradeError:
        return False
    return True


def download_snapshot(manager, workspace, snapshot_id) -> dict:
    workspace.makedirs('snapshot')
    dest = workspace.path(snapshot_relpath(snapshot_id))
    return transfer.download(manager.connection(), transfer.snapshot_archive_uri(snapshot_id),
                             dest, progress=transfer.progress_reporter(dest, 'Downloading'))


def file_identity(path) -> List[int]:
    """What tells that a file was not touched: size, mtime (ns) and inode."""
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def inspect_local_snapshot(workspace, snapshot_id, downloaded=None) -> dict:
    """The contract's `snapshot` document for the local zip (after a zip + CRC check).

    ``downloaded``: ``{'sha256', 'identity'}`` from a download made by this same process;
    when the file is untouched since, its SHA-256 (computed while streaming) is trusted
    instead of re-reading the file: the zip's CRC check stays the only second read.
    """
    rel = snapshot_relpath(snapshot_id)
    path = workspace.path(rel)
    if downloaded and downloaded.get('identity') == file_identity(path) and \
            transfer.read_sha256_file(path + '.sha256') == downloaded.get('sha256'):
        sha256 = downloaded['sha256']
    else:
        sha256 = transfer.verify_file(path)
    details = archive.inspect(path)
    return {'id': snapshot_id, 'path': rel, 'sha256': sha256,
            'size': os.path.getsize(path),
            'snapshot_version': details['snapshot_version'],
            'agents_layout': details.get('agents_layout'),
            'agent_networks': details.get('agent_networks') or [],
            'has_ssl': details.get('has_ssl'),
            'has_rest_security': details.get('has_rest_security'),
            # not 'has_hash_salt': redaction masks every key naming a salt, even a bool
            'has_users_hashing': details.get('has_hash_salt'),
            # issue 14: what 7.0 picks its restore route from, and the oldest agent
            'format': details.get('format'),
            'revisions': details.get('revisions') or [],
            'agents_min_version': details.get('agents_min_version')}


# -- host files -------------------------------------------------------------------------

HOST_FILES = {
    'rest-security': ('/opt/manager/rest-security.conf', 'rest-security.conf'),  # §7.2
    'ssl': ('/etc/cloudify/ssl', 'ssl'),                                           # §7.1
}


def backup_host_files(manager, workspace, needed) -> List[dict]:
    """Copy the needed host files into backups/ (0700 dirs, 0600 files)."""
    backups = []
    workspace.makedirs('backups')
    with open_host(manager) as host:
        for kind in needed:
            remote, local_name = HOST_FILES[kind]
            local = workspace.path(os.path.join('backups', local_name))
            if kind == 'ssl':
                host.get_dir(remote, local, sudo=True)
            else:
                host.get(remote, local, mode=0o600, sudo=True)
            backups.append({'kind': kind, 'path': os.path.join('backups', local_name),
                            'remote': remote})
            get_logger().info('Backed up %s:%s', manager.host, remote)
    return backups


def evaluate_late(checks, ctx, step, known_ids) -> List[Check]:
    """Evaluate checks made after the managers were changed: a failure is exit 1, not 3.

    Exit 3 means "blocked before anything changed"; past the upload/restore that is no
    longer true, so a failed blocking check becomes an UpgradeError named after it.  The
    waivers were validated when the command started (against ``ctx.check_ids``, every id
    it can raise), so none of them is refused here.
    """
    known = set(known_ids or ()) | set(getattr(ctx, 'check_ids', None) or ())
    try:
        return evaluate(checks, ctx.options.waivers,
                        journal=ctx.workspace.journal, known_ids=known, step=step)
    except BlockedError as error:
        failed = (error.details or {}).get('failed') or ['blocked']
        raise UpgradeError(error.message.replace('; nothing was changed', ''),
                           error_id=failed[0], hints=error.possible_solutions)


# -- output -----------------------------------------------------------------------------

def check_lines(checks) -> List[str]:
    lines = ['Checks:']
    for check in checks:
        lines.append('  [{0:6}] {1}: {2}'.format(check['status'], check['id'],
                                                 check['message']))
    return lines


def step_states(workspace) -> List[dict]:
    return summarize(workspace).get('steps', [])


def render(document, lines) -> None:
    """The JSON document with --json, otherwise the human lines (through cfy's logger)."""
    if log.json_mode():
        log.emit_json(document)
        return
    logger = get_logger()
    for line in lines:
        logger.info(line)
