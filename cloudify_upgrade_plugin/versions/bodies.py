"""Request bodies per manager version: snapshot create and restore.

The stock 7.0.5 client sends bodies older managers refuse (behaviour §1.1); these functions
build, for one manager version, the body that version accepts.  ``manager/client.py``
sends them.
"""
from cloudify_upgrade_plugin.errors import InputError
from cloudify_upgrade_plugin.versions.rules import (
    IGNORE_PLUGIN_FAILURE_RANGE, has_ignore_plugin_failure, snapshot_has_certificates)
from cloudify_upgrade_plugin.versions.version import as_version

DEFAULT_RESTORE_TIMEOUT = 300


def restore_body(target, force=False, restore_certificates=False, no_reboot=False,
                 snapshot_version=None, timeout=DEFAULT_RESTORE_TIMEOUT, tenant_name=None,
                 ignore_plugin_failure=False) -> dict:
    """The JSON body of ``POST /snapshots/<id>/restore`` for a target manager version.

    behaviour §1.1 / §3.5: ``force`` is read with dict indexing on every version (missing ->
    500), so it is always sent; ``recreate_deployments_envs`` is required on 3.4.2 - 5.2.x
    and was removed in 6.0; 4.0.x also requires the ``tenant_name`` key; 4.5.0-4.5.1 require
    ``ignore_plugin_failure``.  For 4.1 - 5.2.x the maximally compatible body of behaviour
    §3.5 is used (extra keys are ignored everywhere, behaviour §1.1).  Booleans are JSON
    booleans.
    ``ignore_plugin_failure`` true is only for the targets that read it (4.5.0 - 5.0.x,
    behaviour §12.4): a deployment whose plugins do not install no longer fails the restore.
    """
    target = as_version(target)
    if ignore_plugin_failure and not has_ignore_plugin_failure(target):
        raise InputError(
            '--ignore-plugin-failure is only for {0} targets; {1} does not read it.'.format(
                IGNORE_PLUGIN_FAILURE_RANGE, target),
            error_id='ignore-plugin-failure-unsupported',
            hints=['Drop --ignore-plugin-failure: {0} targets install plugins only when a '
                   'workflow needs them (5.1+), or fail the restore on a plugin that does '
                   'not install (before 4.5).'.format(target)])
    force = bool(force)
    restore_certificates = bool(restore_certificates)
    no_reboot = bool(no_reboot)
    # behaviour §3.5 (4.1 row) and observed-7.0 §3.2: no_reboot without
    # restore_certificates is a 400 on every version that knows it
    if no_reboot and not restore_certificates:
        raise InputError('no_reboot only makes sense when restoring certificates.',
                         error_id='no-reboot-without-certificates',
                         hints=['Drop no_reboot, or restore the certificates too.'])
    supports_certificates = target >= '4.1'
    # behaviour §3.5: restore_certificates exists from 4.1 (4.0.x/3.x would silently ignore it)
    if restore_certificates and not supports_certificates:
        raise InputError('A {0} manager cannot restore certificates from a snapshot.'.format(
            target), error_id='restore-certificates-unsupported')
    # behaviour §7.1: 4.0.0 (and 3.x) snapshots carry no ssl/ directory
    if restore_certificates and snapshot_version is not None:
        snap = as_version(snapshot_version)
        if not snapshot_has_certificates(snap):
            raise InputError(
                'A {0} snapshot contains no certificates (no ssl/ directory); they cannot '
                'be restored from it.'.format(snap), error_id='no-certificates-in-snapshot',
                hints=['Restore the certificates of /etc/cloudify/ssl from a host backup.'])

    body = {'force': force}
    if target.major < 6:
        # behaviour §3.5: required 3.4.2 - 5.2.x, removed in 6.0 (RD-1945, behaviour §9.1)
        body['recreate_deployments_envs'] = True
    if target.major_minor == (4, 0):
        # behaviour §3.5 (4.0, 4.0.1 row): the key must exist; null for 4.x snapshots
        body['tenant_name'] = tenant_name
    if supports_certificates:
        body['restore_certificates'] = restore_certificates
        body['no_reboot'] = no_reboot
    if (4, 1) <= target.major_minor < (6, 0):
        # behaviour §1.1: required on 4.5.0-4.5.1, optional 4.5.5-5.0.x, ignored elsewhere;
        # the maximally compatible 4.1-5.2.x body carries it (false unless asked, §12.4)
        body['ignore_plugin_failure'] = bool(ignore_plugin_failure)
    body['timeout'] = int(timeout)
    return body


def snapshot_create_body(source, legacy=None) -> dict:
    """The JSON body of ``PUT /snapshots/<id>`` for a source manager version.

    behaviour §3.1: no key is required on any version, but 3.4.2 needs a JSON object; only
    keys the version knows are sent: ``include_credentials`` everywhere,
    ``include_metrics`` false until it was dropped in 5.0.5, ``include_logs`` /
    ``include_events`` from 4.3, ``queue`` false from 4.5 (fail rather than wait behind
    other executions: the plugin checks the source is idle itself).

    7.0: ``legacy`` defaults to True in 7.0.0 and False in 7.0.4 (behaviour §3.1).  We always
    ask for a legacy snapshot: it is the one format every target restores with the
    validator and the clean-target check (behaviour §3.6.5: the new 7.0.4 per-entity format
    skips both), and its metadata.json is what ``snapshot.inspect`` reads for every other
    version.  Pass ``legacy=False`` to get the 7.0.4 per-entity format.
    """
    source = as_version(source)
    body = {'include_credentials': True}
    if source < '5.0.5':
        body['include_metrics'] = False
    if source >= '4.3':
        body['include_logs'] = True
        body['include_events'] = True
    if source >= '4.5':
        body['queue'] = False
    if source >= '7.0':
        body['legacy'] = True if legacy is None else bool(legacy)
    return body
