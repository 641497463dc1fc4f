"""new-host: restore on a new manager at another address, then fence the old one (issue 6).

What differs from in-place around the shared restore steps (``runbooks/restore``): the
target is another cfy profile (``--to-profile``, or one made from ``--manager-ip`` and the
`cfy profiles use`-like options); at the cut-over the old 3.x/4.x manager's auto-heal is
fenced by stopping cloudify-riemann over SSH (behaviour §7.4), unless
``--no-stop-old-healing`` records a waiver; a 5.x+ old manager (no riemann) is fenced by the
step fence-old-manager after the cut-over (maintenance mode, 5.2.x schedules disabled;
``runbooks/fence.py``), unless ``--no-fence-old-manager`` records a waiver; the old manager
must be kept until verify-heals is clean.
"""
from typing import List, Optional

from cloudify_cli import env

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine import notices
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.options import NewHostOptions
from cloudify_upgrade_plugin.engine.step import Step
from cloudify_upgrade_plugin.runbooks import common, fence
from cloudify_upgrade_plugin.runbooks.restore.base import RestoreMode
from cloudify_upgrade_plugin.runbooks.restore.cutover import FenceOldManager

RIEMANN_UNIT = 'cloudify-riemann'


class NewHost(RestoreMode):
    """Restore on another manager; fence the old one's auto-heal at the cut-over."""

    name = versions.MODE_NEW_HOST

    def target_profile(self, options: NewHostOptions, meta: dict,
                       source_profile: Optional[str]) -> str:
        name = options.to_profile
        if options.manager_ip:
            validate_names(options)
            name = create_profile(options)
        name = name or (meta.get('target') or {}).get('profile')
        if not name:
            raise InputError('Which manager is the new one? Give --to-profile NAME or '
                             '--manager-ip IP (with the `cfy profiles use` options).',
                             error_id='target-profile-missing',
                             hints=['`cfy upgrade new-host --to-profile NEW` after `cfy '
                                    'profiles use NEW_IP --profile-name NEW ...`.'])
        if name == source_profile:
            raise InputError('--to-profile {0} is the old manager\'s profile; a new-host '
                             'upgrade restores on another manager.'.format(name),
                             error_id='target-is-source-profile',
                             hints=['Use `cfy upgrade in-place` for the same address.'])
        return name

    def fence(self, ctx, step_id: str) -> bool:
        source = _source_version(ctx.workspace.meta)
        if not versions.has_riemann(source):
            return False
        if ctx.options.no_stop_old_healing:
            ctx.workspace.journal.append(step_id, 'waived', {
                'check': 'fence-healing', 'reason': '--no-stop-old-healing'})
            notices.warn(ctx.workspace, 'fence-healing',
                         'Auto-heal on the old manager is NOT stopped '
                         '(--no-stop-old-healing): heals there may duplicate VMs until it '
                         'is shut down.', step_id)
            return False
        return stop_riemann(ctx.source_profile)

    def steps_after_cutover(self, source) -> List[Step]:
        return [FenceOldManager()] if fence.needed(source) else []

    def fence_plan(self, ctx, meta: dict) -> str:
        source = _source_version(meta)
        if not versions.has_riemann(source):
            return fence.plan_text(source, ctx.options,
                                   (meta.get('source') or {}).get('address'))
        if ctx.options.no_stop_old_healing:
            return 'auto-heal on the old manager is NOT stopped (--no-stop-old-healing)'
        return 'cloudify-riemann is stopped on the old manager ({0}) over SSH'.format(
            (meta.get('source') or {}).get('address'))

    def left_to_do(self) -> List[str]:
        return ['Keep the old manager until `cfy upgrade verify-heals` is clean, then shut '
                'it down (or disconnect it from every network it heals on).']


NEW_HOST = NewHost()


def _source_version(meta: dict) -> versions.Version:
    return versions.Version.parse((meta.get('source') or {}).get('version'))


def validate_names(options: NewHostOptions) -> None:
    """--manager-tenant and --manager-username are names the target checks with its own
    rule (``versions.name_problem``, whole value): refused here, before a profile exists."""
    for option, value, what in (('--manager-tenant', options.manager_tenant, 'a tenant name'),
                                ('--manager-username', options.manager_username,
                                 'a user name')):
        if value is None:
            continue
        problem = versions.name_problem(value, what)
        if problem:
            raise InputError('Invalid {0}: {1}.'.format(option, problem),
                             error_id='bad-name',
                             hints=['Give the name exactly as the new manager knows it '
                                    '(letters, digits, ".", "-" and "_", a letter '
                                    'first).'])


def create_profile(options: NewHostOptions) -> str:
    """A cfy profile for the new manager from `cfy profiles use`-like options."""
    name = options.profile_name or options.manager_ip
    if env.is_profile_exists(name):
        return name
    ssl = bool(options.ssl or options.rest_certificate)
    profile = env.ProfileContext(profile_name=name)
    profile.manager_ip = options.manager_ip
    profile.rest_protocol = 'https' if ssl else 'http'
    profile.rest_port = options.rest_port or (443 if ssl else 80)
    profile.rest_certificate = options.rest_certificate
    profile.manager_username = options.manager_username
    profile.manager_password = options.manager_password
    profile.manager_tenant = options.manager_tenant or 'default_tenant'
    profile.ssh_user = options.ssh_user
    profile.ssh_key = options.ssh_key
    profile.ssh_port = options.ssh_port or 22
    profile.save()
    get_logger().info('Created cfy profile %s for the new manager.', name)
    return name


def stop_riemann(source_profile_name: str) -> bool:
    """behaviour §7.4: `systemctl stop` + `disable` cloudify-riemann on the old 3.x/4.x host."""
    manager = common.open_manager(source_profile_name, role='old')
    if not common.ssh_configured(manager):
        raise UpgradeError(
            'Cannot stop cloudify-riemann on the old manager: its profile has no SSH '
            'settings, and its auto-heal could duplicate VMs once the agents move.',
            error_id='ssh-not-configured',
            hints=['`cfy profiles set --ssh-user USER --ssh-key KEY --ssh-port PORT` on the '
                   'old manager\'s profile, then re-run.',
                   'Or stop it yourself and re-run with --no-stop-old-healing.'])
    with common.open_host(manager) as host:
        host.systemctl('stop', RIEMANN_UNIT)
        host.systemctl('disable', RIEMANN_UNIT)
        if host.is_active(RIEMANN_UNIT):
            raise UpgradeError('cloudify-riemann is still active on the old manager.',
                               error_id='healing-not-fenced',
                               hints=['Stop it on the host: `sudo systemctl stop '
                                      'cloudify-riemann`, then re-run.'])
    get_logger().info('Auto-heal fenced: cloudify-riemann stopped on the old manager.')
    return True
