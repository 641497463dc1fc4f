"""in-place: restore on the rebuilt manager at the same address (issue 7).

What differs from new-host around the shared restore steps (``runbooks/restore``): the
target is the old manager's own profile, and the check ``target-is-source`` makes sure the
manager there is the new install; the snapshot's certificates are restored with it (the
agents keep trusting the address; behaviour §3.8) and the reboot that follows is waited
through and confirmed over SSH; a source whose snapshot carries no certificates (4.0.0,
behaviour §7.1) gets /etc/cloudify/ssl back from prepare's backup (restore-ssl); old users are
restored with the old rest-security values by default (procedure step I4); there
is no old manager left to fence.  Also how to tear the old manager down (behaviour §7.5).
"""
import hashlib
import os
import zipfile
from typing import List, Optional

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine import notices
from cloudify_upgrade_plugin.engine.checks import (
    BLOCK, FAIL, PASS, CheckOutcome, CheckRegistry, CheckSet)
from cloudify_upgrade_plugin.engine.step import Step
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import waits
from cloudify_upgrade_plugin.options import InPlaceOptions
from cloudify_upgrade_plugin.runbooks import common
from cloudify_upgrade_plugin.runbooks.restore.base import (
    RestoreMode, RestoreStep, prepared_snapshot)

SSL_DIR = '/etc/cloudify/ssl'
IN_PLACE_CHECKS = CheckRegistry('in-place')


class InPlace(RestoreMode):
    """Restore on the rebuilt manager at the old address, certificates included."""

    name = versions.MODE_IN_PLACE
    checks = IN_PLACE_CHECKS
    # prepare always backs rest-security.conf up in place, and procedure step I4
    # puts it back
    default_users_policy = 'rest-security'

    def target_profile(self, options: InPlaceOptions, meta: dict,
                       source_profile: Optional[str]) -> str:
        return source_profile

    def add_target_checks(self, checks: CheckSet, ctx, source_meta: dict,
                          snapshot: dict) -> None:
        checks.run_check(target_is_source, source_meta, snapshot, ctx.target_manager)

    def host_needs(self, snapshot: dict) -> List[str]:
        return [] if snapshot.get('has_ssl') else ['put back /etc/cloudify/ssl']

    def missing_backups(self, workspace, snapshot: dict) -> List[str]:
        """behaviour §7.1: without certificates in the snapshot, prepare's copy is the only one."""
        if snapshot.get('has_ssl') or \
                os.path.isdir(workspace.path(os.path.join('backups', 'ssl'))):
            return []
        return ['backups/ssl (the {0} snapshot has no certificates)'.format(
            versions.as_version(snapshot['snapshot_version']))]

    def steps_after_restore(self, source) -> List[Step]:
        return [] if versions.snapshot_has_certificates(source) else [RestoreSsl()]

    def restores_certificates(self, snapshot: dict) -> bool:
        """Only when the snapshot carries ssl/ (not 4.0.0, behaviour §7.1)."""
        return bool(snapshot.get('has_ssl'))

    def certificate_differences(self, ctx, target) -> Optional[List[str]]:
        return certificate_differences(ctx, target)

    def confirm_certificates(self, ctx, target) -> str:
        return confirm_certificates(ctx, target)

    def fence_plan(self, ctx, meta: dict) -> str:
        return 'the old manager is gone (in place): nothing to fence'


IN_PLACE = InPlace()


@IN_PLACE_CHECKS.check('target-is-source', BLOCK)
def target_is_source(source_meta, snapshot, target) -> CheckOutcome:
    """In place: the manager at the address must be the new install, not the old one."""
    if str(target.version) == source_meta.get('version'):
        return FAIL, 'The manager at {0} still runs {1}, the old version: tear it down and ' \
                     'install the new version first (see the instructions prepare ' \
                     'printed).'.format(target.address, target.version)
    if common.snapshot_status(target, snapshot['id']) == 'created':
        # a fresh install holds no snapshot; the old manager holds the one prepare made
        return FAIL, 'The manager at {0} holds snapshot {1} created by prepare: it is the ' \
                     'old manager, not a fresh install. Tear it down and install the new ' \
                     'version first.'.format(target.address, snapshot['id'])
    return PASS, 'The manager at {0} now runs {1}.'.format(target.address, target.version)


CERTIFICATES_CHECKED = ('cloudify_internal_ca_cert.pem', 'cloudify_internal_cert.pem')


def certificate_differences(ctx, target) -> Optional[List[str]]:
    """Public internal certificates (never the keys) of the snapshot's ssl/ that differ on
    the host over SSH: a list; None when there is nothing to compare or no SSH."""
    path = ctx.workspace.path(prepared_snapshot(ctx.workspace)['path'])
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        wanted = {name: archive.read('ssl/' + name) for name in CERTIFICATES_CHECKED
                  if 'ssl/' + name in names}
    if not wanted or not common.ssh_configured(target):
        return None
    differ = []
    with common.open_host(target) as host:
        for name, content in sorted(wanted.items()):
            try:
                remote = host.read_file('/etc/cloudify/ssl/' + name, sudo=True)
            except UpgradeError:
                remote = None
            if remote != content:
                differ.append(name)
    return differ


def confirm_certificates(ctx, target) -> str:
    """After an in-place restore with certificates: the host holds the snapshot's
    (without SSH settings it is only logged)."""
    differ = certificate_differences(ctx, target)
    if differ is None:
        notices.warn(ctx.workspace, 'certificates-not-confirmed',
                     'Cannot confirm over SSH that the certificates were restored (no SSH '
                     'settings, or none in the snapshot).', 'wait-restore')
        return 'not checked'
    if differ:
        raise UpgradeError(
            'The restore ended but {0} on {1} are not the snapshot\'s: the certificates were '
            'not restored, and the agents would not trust this manager.'.format(
                ', '.join(differ), target.label), error_id='certificates-not-restored',
            hints=['Put the ssl directory of the workspace backup (backups/ssl) into '
                   '/etc/cloudify/ssl on the host, reboot it, then run the same command again.'])
    get_logger().info('The restored certificates are in place on %s.', target.label)
    return 'restored'


class RestoreSsl(RestoreStep):
    id = 'restore-ssl'
    title = 'Put /etc/cloudify/ssl back from the backup (4.0.0 snapshots have none)'
    changes = 'replaces the certificates on the manager host and restarts its services'

    def check(self, ctx) -> bool:
        return not _ssl_differences(ctx, ctx.target_manager)

    def run(self, ctx) -> dict:
        target = ctx.target_manager
        local = _ssl_backup(ctx)
        with common.open_host(target) as host:
            host.put_dir(local, SSL_DIR, sudo=True)
            for unit in ('nginx', 'cloudify-rabbitmq', 'cloudify-restservice'):
                host.systemctl('restart', unit)
        answer = waits.wait_for_rest(target, ctx.options.timeout)
        ctx.target_manager = answer.get('manager') or target
        return {'restored': SSL_DIR}

    def verify(self, ctx) -> None:
        differ = _ssl_differences(ctx, ctx.target_manager)
        if differ:
            raise UpgradeError('After copying the ssl backup, {0} on the host still differ '
                               'from it.'.format(', '.join(differ)),
                               error_id='ssl-not-restored',
                               hints=['Copy backups/ssl to /etc/cloudify/ssl on the host by '
                                      'hand, then run the same command again.'])


def _ssl_backup(ctx):
    local = ctx.workspace.path(os.path.join('backups', 'ssl'))
    if not os.path.isdir(local):
        raise UpgradeError('No ssl backup in upgrade {0}.'.format(
            ctx.workspace.upgrade_id), error_id='ssl-backup-missing',
            hints=['Re-run prepare with SSH settings on the old profile (before the '
                   'teardown), or restore /etc/cloudify/ssl by hand.'])
    return local


def _ssl_differences(ctx, target):
    """Files of backups/ssl whose SHA-256 on the host differs (or that are missing)."""
    local = _ssl_backup(ctx)
    wanted = {}
    for base, _, names in os.walk(local):
        for name in names:
            full = os.path.join(base, name)
            rel = os.path.relpath(full, local).replace(os.sep, '/')
            with open(full, 'rb') as stream:
                wanted[rel] = hashlib.sha256(stream.read()).hexdigest()
    if not wanted:
        return []
    with common.open_host(target) as host:
        _, out = host.run(['sha256sum'] + ['{0}/{1}'.format(SSL_DIR, rel)
                                           for rel in sorted(wanted)], sudo=True, check=False)
    remote = {}
    for line in out.splitlines():
        digest, _, name = line.strip().partition('  ')
        if name.startswith(SSL_DIR + '/'):
            remote[name[len(SSL_DIR) + 1:]] = digest
    return sorted(rel for rel, digest in wanted.items() if remote.get(rel) != digest)


# How an old manager is removed, per kind (versions.teardown_kind, behaviour §7.5).
TEARDOWN = {
    'teardown-script': 'On the old manager host: `sudo bash cfy_teardown_4_0_0.sh -f` (the '
                       'cloudify-dev teardown script; `cfy teardown` does not work on 4.0.x).',
    'cfy-teardown': '`cfy teardown -f` from the CLI that bootstrapped the manager (or '
                    '`cfy_teardown_4_1_0_and_higher.sh -f` on the host).',
    'cfy-manager-remove': 'On the old manager host: `sudo cfy_manager remove -f`.',
    'cfy-manager-remove-config': 'On the old manager host: `sudo cfy_manager remove -f -c '
                                 '<config.yaml>`.',
}


def teardown_instructions(source) -> List[str]:
    """How to remove the old manager and install the new one, per source version (§7.5)."""
    return [
        'The teardown deletes /opt/manager (snapshots, rest-security.conf) and /etc/cloudify '
        '(certificates): the copies under this workspace are now the only ones - keep them.',
        TEARDOWN[versions.teardown_kind(source)],
        'Install the new manager version on the same host and address.',
        'If its admin password differs, update the profile: `cfy profiles set '
        '--manager-password ...`.',
    ]
