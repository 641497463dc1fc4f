"""The checks run on the old manager by `plan` and `prepare` (all reported together).

Each check has a stable id (the one `--waive` names) and is registered in
``SOURCE_CHECKS`` where it is defined: the catalogue of ids ``--waive`` may name before
the checks ran is ``SOURCE_CHECKS.ids``.  They only read: REST GETs, an SSH
`test`/`grep`, the local disk.  Version rules come from ``versions``: maintenance mode
blocks snapshots on 3.4-4.4 (behaviour §2.5), 4.0.0 needs patch-1 and 4.0.1 update-3 (§7.3),
several users on 4.0/4.1 need the rest-security backup (§7.2), system executions count as
running work (§4).  ``local-disk`` and ``source-disk`` compare the free space here and on the
old manager host (``df -Pk`` over SSH) with the needs of ``runbooks/estimates.py``.
"""
import shutil
from typing import List, Optional

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.checks import (
    BLOCK, FAIL, INFO, PASS, WARN, Check, CheckOutcome, CheckRegistry, CheckSet)
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.files import cfy_workdir
from cloudify_upgrade_plugin.runbooks import common, estimates, inventory, ldap, plugins

# Free space wanted in the cfy workdir before a snapshot is created; the download step
# checks again against the snapshot's real size.
MIN_FREE_BYTES = 1 << 30

PATCH_CHECK = 'patch-level'

SOURCE_CHECKS = CheckRegistry('source')


def source_checks(manager, mode, target, estimate=None) -> CheckSet:
    """Run every source check; return the CheckSet (never raises for a failed check).

    ``estimate``: the ``estimates.Estimate`` of this manager's snapshot (made here, at the
    default link speed, when not given)."""
    if estimate is None:
        estimate = estimates.for_manager(manager)
    checks = CheckSet(catalogue=SOURCE_CHECKS.ids)
    checks.run_check(source_healthy, manager)
    for check in upgrade_path(manager.version, target, mode):
        checks.add(check)
    checks.run_check(patch_level, manager)
    maintenance = checks.run_check(maintenance_mode, manager)
    if maintenance.status == PASS:
        checks.run_check(no_active_executions, manager)
    else:
        # the executions list answers 503 in maintenance mode (behaviour §2.5)
        checks.add(Check(no_active_executions.id, no_active_executions.severity, WARN,
                         'Not checked: the manager is in maintenance mode (see '
                         'maintenance-mode).'))
    checks.run_check(local_disk, estimate)
    checks.run_check(source_disk, manager, estimate)
    checks.run_check(users_rest_security, manager, mode)
    checks.run_check(ldap_settings, manager)
    checks.run_check(ssh_access, manager, mode)
    if maintenance.status == PASS:      # lists answer 503 in maintenance mode
        checks.run_check(plugins_python, manager, target)
        checks.run_check(ldap_settings, manager)
    if mode == versions.MODE_IN_PLACE and versions.has_host_security_files(manager.version) \
            and not versions.snapshot_has_certificates(manager.version):
        checks.run_check(in_place_certificates, manager)
    return checks


@SOURCE_CHECKS.check('plugins-python', WARN)
def plugins_python(manager, target) -> CheckOutcome:
    """behaviour §12.4: plugins built for another Python than the target's."""
    return plugins.check_plugins(inventory.plugins_of(manager), manager.version, target)


@SOURCE_CHECKS.check('ldap-settings', WARN)
def ldap_settings(manager) -> CheckOutcome:
    """behaviour §12.3: LDAP settings do not travel with a snapshot."""
    return ldap.check_ldap(ldap.read_settings(manager), manager.version)


@SOURCE_CHECKS.check('in-place-certificates', BLOCK)
def in_place_certificates(manager) -> CheckOutcome:
    """behaviour §7.1: a 4.0.0 snapshot has no ssl/; in place, the host copy is the only one."""
    if common.ssh_configured(manager):
        return PASS, 'A {0} snapshot carries no certificates (no ssl/): prepare copies ' \
                     '/etc/cloudify/ssl over SSH and in-place puts it back, so the agents ' \
                     'keep trusting the manager.'.format(manager.version)
    return FAIL, 'A {0} snapshot carries no certificates and the teardown deletes ' \
                 '/etc/cloudify/ssl: an in-place upgrade needs it backed up over SSH, and ' \
                 'the profile has no SSH settings (`cfy profiles set --ssh-user USER ' \
                 '--ssh-key KEY --ssh-port PORT`).'.format(manager.version)


@SOURCE_CHECKS.check('source-healthy', BLOCK)
def source_healthy(manager) -> CheckOutcome:
    state, failing = manager.health()
    if state == 'ok':
        return PASS, 'The manager reports its services as running.'
    if state == 'degraded':
        return WARN, 'The manager reports degraded services: {0}.'.format(
            ', '.join(failing) or 'unknown')
    return FAIL, 'The manager reports failing services: {0}. A snapshot taken now may be ' \
                 'incomplete.'.format(', '.join(failing) or 'unknown')


@SOURCE_CHECKS.check('upgrade-path', BLOCK,
                     also=versions.PATH_PROBLEM_IDS + versions.PATH_ADVICE_IDS,
                     unwaivable=versions.PATH_UNWAIVABLE)
def upgrade_path(source, target, mode) -> CheckOutcome:
    """The path checks: ``upgrade-path``, or one check per problem (under its own id, not
    waivable when the target manager refuses the path whatever the options say), and a
    warning where the path is not the one the vendor tests (behaviour §12.8)."""
    if target is None:
        problems = versions.upgrade_problems(source, max(source, versions.MIN_TARGET), mode)
        problems = [p for p in problems if p[0] in ('in-place-unsupported',
                                                    'source-version-unsupported')]
        checks = path_problem_checks(problems)
        checks.append(Check('upgrade-path', INFO, PASS,
                            'No --target-version given: the path to the new manager is '
                            'checked when {0} runs.'.format(mode)))
        return checks
    problems = versions.upgrade_problems(source, target, mode)
    advice = [Check(pid, WARN, WARN, message)
              for pid, message in versions.path_advice(source, target)]
    if not problems:
        return [Check('upgrade-path', BLOCK, PASS,
                      '{0} -> {1} ({2}) is a supported path.'.format(source, target, mode))
                ] + advice
    return path_problem_checks(problems) + advice


def path_problem_checks(problems) -> List[Check]:
    """One failed blocking check per path problem, under the problem's id."""
    return [Check(pid, BLOCK, FAIL, message, not_waivable=versions.PATH_UNWAIVABLE.get(pid))
            for pid, message in problems]


@SOURCE_CHECKS.check(PATCH_CHECK, BLOCK, also=versions.PATCH_PROBLEM_IDS)
def patch_level(manager) -> CheckOutcome:
    """4.0.0 needs patch-1, 4.0.1 update-3: a host marker tells before the snapshot.

    Like the path checks, a missing patch is reported under its problem id
    (``update-3-missing`` / ``patch-1-missing``, the id ``--waive`` names); otherwise the
    check is ``patch-level``.
    """
    patch = versions.needs_patch(manager.version)
    if patch is None:
        return Check(PATCH_CHECK, BLOCK, PASS,
                     'No patch is required for {0}.'.format(manager.version))
    marker = common.host_patch_marker(manager)
    if marker is True:
        return Check(PATCH_CHECK, BLOCK, PASS,
                     '{0} is applied (found on the host).'.format(patch),
                     details={'patch': patch, 'source': 'host'})
    if marker is False:
        problem_id = versions.patch_problem(manager.version)[0]
        return Check(problem_id, BLOCK, FAIL,
                     '{0} is not applied on this {1} manager (not found in its management '
                     'worker on the host); its snapshot would restore agents without their '
                     'tenant. Apply {0} (contact Cloudify support) first, then run this '
                     'command again.'.format(patch, manager.version),
                     details={'patch': patch, 'source': 'host'})
    return Check(PATCH_CHECK, BLOCK, WARN,
                 'Whether {0} is applied cannot be seen without SSH access to the host; '
                 'prepare reads it from the snapshot version (4.1.0-p{1}-{2} when patched) '
                 'and blocks then if it is missing.'.format(
                     patch, versions.patch_number(patch), manager.version.base),
                 details={'patch': patch, 'source': 'unknown'})


def patch_check_from_snapshot(source_version, snapshot_version) -> Check:
    """After the snapshot: its metadata's snapshot_version says whether the patch is there."""
    problem = versions.patch_problem(snapshot_version)
    if problem is None:
        patch = versions.needs_patch(versions.as_version(source_version).base)
        return Check(PATCH_CHECK, BLOCK, PASS,
                     'Snapshot version {0}: {1}.'.format(
                         snapshot_version, '{0} is applied'.format(patch) if patch
                         else 'no patch is required'),
                     details={'snapshot_version': snapshot_version, 'source': 'snapshot'})
    return Check(problem[0], BLOCK, FAIL,
                 'Snapshot version {0}: {1}'.format(snapshot_version, problem[1]),
                 details={'snapshot_version': snapshot_version, 'source': 'snapshot'})


@SOURCE_CHECKS.check('no-active-executions', BLOCK)
def no_active_executions(manager) -> CheckOutcome:
    active = common.active_executions(manager)
    if not active:
        return PASS, 'No execution is running on any tenant.'
    listed = ['{0} ({1}, tenant {2}, deployment {3}, {4})'.format(
        e.get('id'), e.get('workflow_id'), e.get('tenant_name') or '-',
        e.get('deployment_id') or '-', e.get('status')) for e in active[:20]]
    more = '' if len(active) <= 20 else ' and {0} more'.format(len(active) - 20)
    return FAIL, '{0} execution(s) are running: {1}{2}. Wait for them to end (or cancel ' \
                 'them) before taking the snapshot.'.format(len(active), '; '.join(listed),
                                                            more), \
        {'executions': [e.get('id') for e in active]}


@SOURCE_CHECKS.check('maintenance-mode', BLOCK)
def maintenance_mode(manager) -> CheckOutcome:
    """behaviour §2.5: maintenance mode answers 503 to everything but an allow-list.

    3.4-4.4 allow only maintenance, status and version (no snapshot create or download);
    4.5+ add snapshots, but no version allows the lists prepare reads (executions for the
    idle check, blueprints, deployments... for the inventory), so it blocks everywhere.
    """
    state = manager.maintenance_state()
    if state in (None, 'deactivated'):
        return PASS, 'Maintenance mode is off.'
    if not versions.maintenance_allows_snapshots(manager.version):
        blocked = 'snapshot create and download and every list prepare reads'
    else:
        blocked = 'the executions and inventory lists prepare reads (snapshots stay ' \
                  'allowed)'
    return FAIL, 'Maintenance mode is {0}: on {1} it blocks {2} (behaviour §2.5). Deactivate ' \
                 'it first (`cfy maintenance-mode deactivate`); `prepare --freeze` ' \
                 'activates it again once the snapshot is safe.'.format(
                     state, manager.version, blocked)


@SOURCE_CHECKS.check('local-disk', BLOCK)
def local_disk(estimate=None) -> CheckOutcome:
    """The snapshot's download lands in the workspace: the estimate plus 25 %, at least
    MIN_FREE_BYTES (the download step checks again against the real size)."""
    where = cfy_workdir()
    free = shutil.disk_usage(common.existing_parent(where)).free
    needed = max(MIN_FREE_BYTES, estimate.needs['local']['workspace'] if estimate else 0)
    details = {'path': where, 'free_bytes': free, 'needed_bytes': needed}
    if free >= needed:
        return PASS, '{0} free in {1}; the snapshot needs about {2} there.'.format(
            estimates.human_bytes(free), where, estimates.human_bytes(needed)), details
    return FAIL, 'Only {0} free in {1}; the snapshot needs about {2} there (the estimate ' \
                 'plus 25 %, at least {3}). Free space or set CFY_WORKDIR to a bigger ' \
                 'disk.'.format(estimates.human_bytes(free), where,
                                estimates.human_bytes(needed),
                                estimates.human_bytes(MIN_FREE_BYTES)), details


@SOURCE_CHECKS.check('source-disk', BLOCK)
def source_disk(manager, estimate) -> CheckOutcome:
    """The snapshot workflow copies the data into a temporary folder, then zips it under
    the file server root (estimates.py): both need room on the old manager host."""
    needs = estimate.needs['old_host']
    if not common.ssh_configured(manager):
        return WARN, 'Not checked: the profile has no SSH settings to run `df` on the old ' \
                     'manager host; the snapshot needs about {0} there.'.format(
                         _needs_text(needs)), {'needs': needs}
    try:
        with common.open_host(manager) as host:
            free = estimates.host_free_space(host, list(needs))
    except (UpgradeError, ValueError) as error:
        return WARN, 'Not checked: `df` on the old manager host failed ({0}).'.format(
            getattr(error, 'message', error)), {'needs': needs}
    rows, problems = estimates.shortfalls(needs, free)
    if problems:
        return FAIL, 'Too little free space on the old manager host for the snapshot ' \
                     '(its data is copied to {0}, then zipped under {1}): {2}. Free ' \
                     'space there (old snapshots: `cfy snapshots delete`), or waive ' \
                     'source-disk if the estimate is too high for this manager.'.format(
                         estimates.TEMP_DIR, estimates.FILE_SERVER_ROOT,
                         '; '.join(problems)), {'filesystems': rows}
    return PASS, 'Enough free space on the old manager host: {0}.'.format('; '.join(
        '{0} ({1}) {2} free, needs {3}'.format(
            ', '.join(row['paths']), row['mount'], estimates.human_bytes(row['free_bytes']),
            estimates.human_bytes(row['needed_bytes'])) for row in rows)), \
        {'filesystems': rows}


def _needs_text(needs) -> str:
    return ', '.join('{0} in {1}'.format(estimates.human_bytes(size), path)
                     for path, size in needs.items())


def several_users(manager) -> Optional[bool]:
    """True/False for premium 4.0/4.1 sources with more than the admin; None when unknown."""
    users = common.usernames(manager)
    if users is None:
        return None
    return len(users) > 1


@SOURCE_CHECKS.check('users-rest-security', WARN)
def users_rest_security(manager, mode) -> CheckOutcome:
    if not versions.users_need_rest_security(manager.version):
        return PASS, 'Users travel with the snapshot from {0} (hash salt included from ' \
                     '4.2).'.format(manager.version) \
            if versions.snapshot_carries_passwords(manager.version) else \
            'Source {0} has no multi-user database to carry over.'.format(manager.version)
    many = several_users(manager)
    if many is None:
        return PASS, 'No user list on this edition: only the admin account exists.'
    if not many:
        return PASS, 'Only the admin user exists.'
    if common.ssh_configured(manager):
        return WARN, 'Several users on {0}: their passwords only work on the new manager ' \
                     'with this rest-security.conf; prepare backs it up over SSH and ' \
                     '`--users rest-security` puts it back.'.format(manager.version)
    return WARN, 'Several users on {0}, and the profile has no SSH settings to back up ' \
                 '/opt/manager/rest-security.conf: without it every user but the admin ' \
                 'needs a password reset. Add SSH settings (`cfy profiles set --ssh-user ' \
                 '--ssh-key --ssh-port`), or waive ssh-access and plan `--users ' \
                 'reset-passwords`.'.format(manager.version)


def host_backups_needed(manager, mode) -> List[str]:
    """Which host files prepare copies: a list of 'rest-security' / 'ssl'."""
    needed = []
    in_place = mode == versions.MODE_IN_PLACE
    if not versions.has_host_security_files(manager.version):
        return needed  # 3.x: no rest-security.conf, no /etc/cloudify/ssl (behaviour §7.1)
    if in_place or (not versions.snapshot_carries_passwords(manager.version)
                    and several_users(manager)):
        needed.append('rest-security')
    if in_place or not versions.snapshot_has_certificates(manager.version):
        needed.append('ssl')
    return needed


@SOURCE_CHECKS.check('ssh-access', BLOCK)
def ssh_access(manager, mode) -> CheckOutcome:
    needed = host_backups_needed(manager, mode)
    if not needed:
        return PASS, 'No host file is needed for this upgrade.'
    if not common.ssh_configured(manager):
        return FAIL, 'This upgrade needs {0} from the manager host, but the profile has no ' \
                     'SSH settings. Run `cfy profiles set --ssh-user USER --ssh-key KEY ' \
                     '--ssh-port PORT` for the old manager\'s profile.'.format(
                         ' and '.join(needed))
    common.ssh_probe(manager)
    return PASS, 'SSH to the manager host works ({0} will be backed up).'.format(
        ', '.join(needed))
