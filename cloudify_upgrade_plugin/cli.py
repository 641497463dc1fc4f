"""The `cfy upgrade` command group: option parsing (the error boundary: ``boundary.py``).

Commands are thin: every parameter is named in the callback's signature, they build the
command's frozen options (``options.py``), call one command entry point - imported only
when the command runs, so `cfy --help` stays cheap - and exit with the code of its
``Outcome``.  No REST or SSH call lives here.  Errors become exit codes per
docs/cli-contract.md: 1 failed, 2 usage, 3 blocked before any change, 4 suspicious heals found,
5 verify-heals incomplete, 130 interrupted (Ctrl-C).
"""
import os
import re
import sys
from typing import Callable

import click
from cloudify_cli.cli import cfy

from cloudify_upgrade_plugin.boundary import boundary
from cloudify_upgrade_plugin.engine.checks import Waiver
from cloudify_upgrade_plugin.engine.command import Outcome
from cloudify_upgrade_plugin.options import (
    DEFAULT_AGENT_TIMEOUT, DEFAULT_AGENTS_CONCURRENCY, DEFAULT_LINK_MBPS, DEFAULT_TENANT,
    DEFAULT_TIMEOUT, MAX_AGENTS_CONCURRENCY, USERS_POLICIES, InPlaceOptions, NewHostOptions,
    PlanOptions, PrepareOptions, StatusOptions, VerifyHealsOptions)
from cloudify_upgrade_plugin.versions import MODE_NEW_HOST, MODES

NODE_INSTANCE_ID_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]{0,255}')


def _waivers(waive, reason):
    if waive and not reason:
        raise click.UsageError('--waive needs --reason TEXT (why it is safe '
                               'to go on despite the failed check).')
    return tuple(Waiver(check_id, reason) for check_id in waive)


def _manager_password(password, password_file, manager_ip, profile_name, username):
    """The new profile's password: --manager-password, the first line of
    --manager-password-file (one or the other: exit 2), or a hidden prompt when a profile
    will be created, stdin is a terminal and CLOUDIFY_PASSWORD is not set (issue 17 item 11).
    The password is registered as a secret at once (never logged)."""
    from cloudify_upgrade_plugin.engine.redact import register_secret
    if password is not None and password_file is not None:
        raise click.UsageError('--manager-password and --manager-password-file are mutually '
                               'exclusive: give one of them.')
    if password_file is not None:
        from cloudify_upgrade_plugin.files import read_secret_line
        password = read_secret_line(password_file, '--manager-password-file')
    elif password is None and manager_ip and not os.environ.get('CLOUDIFY_PASSWORD') \
            and sys.stdin is not None and sys.stdin.isatty():
        from cloudify_cli import env
        if not env.is_profile_exists(profile_name or manager_ip):
            password = click.prompt('Password of {0} on the new manager {1}'.format(
                username or 'the user', manager_ip), hide_input=True, err=True)
    register_secret(password)
    return password


def upgrade_id_option(f) -> Callable:
    return click.option(
        '--upgrade-id', default=None, metavar='ID',
        help='The upgrade workspace to use (default: the most recent one).')(f)


def waive_options(f) -> Callable:
    f = click.option('--reason', default=None, metavar='TEXT',
                     help='Why the waived checks are safe to ignore '
                          '(recorded in the journal).')(f)
    return click.option(
        '--waive', multiple=True, metavar='CHECK_ID',
        help='Waive one named blocking check (repeatable); needs --reason. '
             'There is no blanket --force.')(f)


def yes_option(f) -> Callable:
    return click.option(
        '--yes', is_flag=True, default=False,
        help='Do not ask for confirmation at the point of no return.')(f)


def host_keys_option(f) -> Callable:
    return click.option(
        '--accept-new-host-keys', is_flag=True, default=False,
        help='Trust the SSH host key of a manager host this machine does not know yet '
             '(its fingerprint is shown and recorded in the journal). Without it an '
             'unknown key is confirmed on the terminal, or refused.')(f)


def link_option(f) -> Callable:
    return click.option(
        '--link-mbps', type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_LINK_MBPS, show_default=True, metavar='MBIT_S',
        help='Speed of the link between this machine and the managers, for the '
             'transfer-time estimate.')(f)


def timeout_option(f) -> Callable:
    return click.option(
        '--timeout', type=click.IntRange(1), default=DEFAULT_TIMEOUT, show_default=True,
        metavar='SECONDS', help='Longest wait for one manager execution or '
                                'outage.')(f)


@cfy.group(name='upgrade')
@cfy.options.common_options
def upgrade() -> None:
    """Upgrade a Cloudify Manager through a snapshot (3.4.2 - 7.0).

    Automates the documented procedure: `plan` checks, `prepare` snapshots
    and backs up the old manager, then `new-host` (restore on a new manager)
    or `in-place` (restore on the rebuilt manager at the same address) moves
    data and agents, and `verify-heals` looks for VMs duplicated by the old
    manager's auto-heal. `status` shows where an upgrade stands.

    State lives in <cfy workdir>/upgrades/<upgrade-id>/ (journal, snapshot,
    backups, inventories, report); every command resumes from its journal.
    """


@upgrade.command(name='plan')
@click.option('--mode', type=click.Choice(MODES), default=MODE_NEW_HOST,
              show_default=True, help='How the new manager will be built.')
@click.option('--target-version', default=None, metavar='VERSION',
              help='Version of the manager you will upgrade to.')
@click.option('--from-profile', default=None, metavar='NAME',
              help='Profile of the old manager (default: the active one).')
# issue 14 (item 10)
@click.option('--to-profile', default=None, metavar='NAME',
              help='Profile of the new manager: also run the target checks '
                   '(read only).')
@waive_options
@host_keys_option
@link_option
@cfy.options.common_options
@boundary
def plan(mode, target_version, from_profile, to_profile, waive, reason,
         accept_new_host_keys, link_mbps) -> Outcome:
    """Check an upgrade and list its steps; changes nothing.

    Runs every check `prepare` would run that needs no snapshot (reachability,
    version and edition, upgrade path, update-3 / patch-1, running executions,
    maintenance mode, users, SSH access, local disk) and prints the ordered
    steps of the chosen mode for this source/target pair. With --to-profile
    it also runs the target checks that need no snapshot (licence, path,
    edition, restore route, clean, admin). Exit 3 when a blocking check fails.
    """
    from cloudify_upgrade_plugin.runbooks import plan as command
    return command.run(PlanOptions(mode=mode, target_version=target_version,
                                   from_profile=from_profile, to_profile=to_profile,
                                   waivers=_waivers(waive, reason),
                                   accept_new_host_keys=accept_new_host_keys,
                                   link_mbps=link_mbps))


@upgrade.command(name='prepare')
@click.option('--mode', type=click.Choice(MODES), default=MODE_NEW_HOST,
              show_default=True, help='How the new manager will be built.')
@click.option('--target-version', default=None, metavar='VERSION',
              help='Version of the manager you will upgrade to.')
@click.option('--from-profile', default=None, metavar='NAME',
              help='Profile of the old manager (default: the active one).')
@upgrade_id_option
@click.option('--snapshot-id', default=None, metavar='ID',
              help='Snapshot id (letter first, then [A-Za-z0-9._-]; '
                   'default: derived from the upgrade id).')
@click.option('--freeze', is_flag=True, default=False,
              help='After the snapshot is safe locally, put the old manager '
                   'in maintenance mode so no later change is silently lost. '
                   'On 3.4-4.4 this blocks every REST call but status, '
                   'version and maintenance; on 4.5+ snapshots stay allowed.')
@click.option('--new', 'new', is_flag=True, default=False,
              help='Start a new upgrade (a new snapshot) even when the latest one of this '
                   'manager and mode is prepared or unfinished; that one is kept, marked '
                   'superseded.')
@waive_options
@host_keys_option
@link_option
@timeout_option
@cfy.options.common_options
@boundary
def prepare(mode, target_version, from_profile, upgrade_id, snapshot_id,
            freeze, new, waive, reason, accept_new_host_keys, link_mbps, timeout) -> Outcome:
    """Snapshot and back up the old manager; touches nothing irreversibly.

    Checks the old manager, creates a snapshot and waits for it, downloads it
    (streamed, SHA-256 while streaming, resumable) and verifies it, copies
    rest-security.conf and /etc/cloudify/ssl over SSH where the version needs
    them, records the source inventory, and prints the next command.
    """
    from cloudify_upgrade_plugin.runbooks import prepare as command
    return command.run(PrepareOptions(
        mode=mode, target_version=target_version, from_profile=from_profile,
        upgrade_id=upgrade_id, snapshot_id=snapshot_id, freeze=freeze, new=new,
        waivers=_waivers(waive, reason), timeout=timeout,
        accept_new_host_keys=accept_new_host_keys, link_mbps=link_mbps))


def _node_instance_ids(ctx, param, value) -> tuple:
    """``--skip-node-instances ID,ID`` (repeatable) -> a tuple of ids."""
    ids = []
    for text in value or ():
        for item in text.split(','):
            item = item.strip()
            if not item or not NODE_INSTANCE_ID_RE.fullmatch(item):
                raise click.BadParameter('{0!r} is not a node instance id (a '
                                         'comma-separated list of ids).'.format(item))
            if item not in ids:
                ids.append(item)
    return tuple(ids)


def agents_options(f) -> Callable:
    f = click.option('--skip-node-instances', multiple=True, metavar='ID,...',
                     callback=_node_instance_ids,
                     help='Host node instances known to be dead: their agents are not '
                          'moved (the rest of their deployment is); reported.')(f)
    f = click.option('--stop-old-agents', is_flag=True, default=False,
                     help='Stop each old agent once its new one runs (the workflow\'s '
                          'stop_old_agent, where the deployment declares it).')(f)
    f = click.option('--agent-timeout', type=click.IntRange(1),
                     default=DEFAULT_AGENT_TIMEOUT,
                     show_default=True, metavar='SECONDS',
                     help='Timeout of one deployment\'s agent install.')(f)
    return click.option('--agents-concurrency',
                        type=click.IntRange(1, MAX_AGENTS_CONCURRENCY),
                        default=DEFAULT_AGENTS_CONCURRENCY, show_default=True,
                        help='Agent installs run at once.')(f)


def after_restore_options(f) -> Callable:
    """--wagons, --ldap-bind-password-file, --ldap-ca-file (new-host and in-place)."""
    f = click.option('--ldap-ca-file', default=None, metavar='FILE',
                     help='PEM CA of an ldaps:// LDAP server (5.2+ targets need it to set '
                          'LDAP).')(f)
    f = click.option('--ldap-bind-password-file', default=None, metavar='FILE',
                     help='File whose first line is the LDAP bind password: the source\'s '
                          'LDAP settings are then set on the new manager after the '
                          'restore (a restore does not carry them).')(f)
    return click.option('--wagons', default=None, metavar='DIR',
                        help='Directory of wagons (NAME.wgn, each with its plugin YAML '
                             'NAME.yaml) built for the new manager\'s Python: after the '
                             'restore each one replacing an unfit plugin is uploaded and the '
                             'blueprints using it are updated.')(f)


def users_option(f) -> Callable:
    return click.option(
        '--users', type=click.Choice(USERS_POLICIES), default=None,
        help='Pre-4.2 snapshots with several users: copy the old hash salt '
             'and keys into the new rest-security.conf (rest-security), set '
             'new passwords (reset-passwords), or record a waiver (skip).')(f)


def restore_issue14_options(f) -> Callable:
    """Options of new-host and in-place added by issue 14 (plugins, failed logins)."""
    f = click.option('--ignore-plugin-failure', is_flag=True, default=False,
                     help='4.5.0-5.0.x targets: restore the deployments whose plugins '
                          'install and skip the others (reported) instead of failing '
                          'the whole restore.')(f)
    return click.option('--reset-failed-logins', is_flag=True, default=False,
                        help='Forget the failed logins earlier runs of this upgrade '
                             'recorded (after you checked the password by hand).')(f)


@upgrade.command(name='new-host')
@upgrade_id_option
@click.option('--to-profile', default=None, metavar='NAME',
              help='Existing cfy profile of the new manager.')
@click.option('--manager-ip', default=None, metavar='IP',
              help='New manager address (creates a profile, like '
                   '`cfy profiles use`).')
@click.option('--profile-name', default=None, metavar='NAME',
              help='Name of the profile to create (default: the address).')
@click.option('--manager-username', default=None, metavar='USER')
@click.option('--manager-password', default=None, metavar='PASSWORD',
              help='Visible to other users in `ps`: prefer --manager-password-file, '
                   'or the prompt.')
@click.option('--manager-password-file', default=None, metavar='FILE',
              help='Read the new profile\'s password from the first line of FILE. Without '
                   'either option, the password is asked on the terminal (hidden) when the '
                   'profile is created.')
@click.option('--manager-tenant', default=DEFAULT_TENANT,
              show_default=True, metavar='TENANT')
@click.option('--rest-port', type=int, default=None, metavar='PORT')
@click.option('--ssl', is_flag=True, default=False,
              help='Use https for the new manager.')
@click.option('--rest-certificate', default=None, metavar='PATH')
@click.option('--ssh-user', default=None, metavar='USER')
@click.option('--ssh-key', default=None, metavar='PATH')
@click.option('--ssh-port', type=int, default=None, metavar='PORT')
@users_option
@click.option('--passwords-file', default=None, metavar='PATH',
              help='With --users reset-passwords: "user: password" lines.')
@click.option('--no-stop-old-healing', is_flag=True, default=False,
              help='Do not stop cloudify-riemann on the old manager before '
                   'the agents move (recorded as a waiver).')
@click.option('--no-fence-old-manager', is_flag=True, default=False,
              help='Do not put a 5.x+ old manager in maintenance mode (nor '
                   'disable its 5.2.x schedules) after the cut-over (recorded '
                   'as a waiver).')
@click.option('--rehearse', is_flag=True, default=False,
              help='Run every step before the point of no return (the restore on '
                   'the new manager included), write the report and stop: the old '
                   'manager stays in charge. The same command without --rehearse '
                   'continues from there.')
@agents_options
@restore_issue14_options
@after_restore_options
@yes_option
@waive_options
@host_keys_option
@timeout_option
@cfy.options.common_options
@boundary
def new_host(upgrade_id, to_profile, manager_ip, profile_name, manager_username,
             manager_password, manager_password_file, manager_tenant, rest_port, ssl,
             rest_certificate, ssh_user, ssh_key, ssh_port, users, passwords_file,
             no_stop_old_healing, no_fence_old_manager, rehearse, agent_timeout,
             agents_concurrency, stop_old_agents, skip_node_instances, ignore_plugin_failure,
             reset_failed_logins, wagons, ldap_bind_password_file, ldap_ca_file, yes, waive,
             reason, accept_new_host_keys, timeout) -> Outcome:
    """Restore the snapshot on a new manager and move the agents to it.

    Checks the new manager (version, clean, bootstrap admin, agent networks,
    snapshot checksum), uploads and restores the snapshot with the body the
    target version needs, follows the admin credential change, restores old
    users, reconciles the data, then - after confirmation, the point of no
    return - stops the old manager's auto-heal (3.x/4.x) or puts it in
    maintenance mode (5.x+; 5.2.x: its execution schedules disabled first),
    installs new agents in every tenant and verifies them. The new manager
    becomes the active profile.
    """
    manager_password = _manager_password(manager_password, manager_password_file,
                                         manager_ip, profile_name, manager_username)
    from cloudify_upgrade_plugin.runbooks.restore import command
    return command.run(NewHostOptions(
        upgrade_id=upgrade_id, to_profile=to_profile, manager_ip=manager_ip,
        profile_name=profile_name, manager_username=manager_username,
        manager_password=manager_password, manager_tenant=manager_tenant,
        rest_port=rest_port, ssl=ssl, rest_certificate=rest_certificate, ssh_user=ssh_user,
        ssh_key=ssh_key, ssh_port=ssh_port, users=users, passwords_file=passwords_file,
        no_stop_old_healing=no_stop_old_healing, no_fence_old_manager=no_fence_old_manager,
        rehearse=rehearse,
        agent_timeout=agent_timeout, agents_concurrency=agents_concurrency,
        stop_old_agents=stop_old_agents, skip_node_instances=skip_node_instances,
        ignore_plugin_failure=ignore_plugin_failure,
        reset_failed_logins=reset_failed_logins, wagons=wagons,
        ldap_bind_password_file=ldap_bind_password_file, ldap_ca_file=ldap_ca_file, yes=yes,
        waivers=_waivers(waive, reason), timeout=timeout,
        accept_new_host_keys=accept_new_host_keys))


@upgrade.command(name='in-place')
@upgrade_id_option
@users_option
@agents_options
@restore_issue14_options
@after_restore_options
@yes_option
@waive_options
@host_keys_option
@timeout_option
@cfy.options.common_options
@boundary
def in_place(upgrade_id, users, agent_timeout, agents_concurrency, stop_old_agents,
             skip_node_instances, ignore_plugin_failure, reset_failed_logins, wagons,
             ldap_bind_password_file, ldap_ca_file, yes, waive, reason, accept_new_host_keys,
             timeout) -> Outcome:
    """Restore the snapshot on the rebuilt manager at the same address.

    Run it after tearing the old manager down and installing the new version
    on the same host (prepare printed how). Verifies that the manager is a
    fresh install, uploads, restores with certificates, waits through the
    reboot, restores rest-security and users, reconciles, and moves agents.
    """
    from cloudify_upgrade_plugin.runbooks.restore import command
    return command.run(InPlaceOptions(
        upgrade_id=upgrade_id, users=users, agent_timeout=agent_timeout,
        agents_concurrency=agents_concurrency, stop_old_agents=stop_old_agents,
        skip_node_instances=skip_node_instances, ignore_plugin_failure=ignore_plugin_failure,
        reset_failed_logins=reset_failed_logins, wagons=wagons,
        ldap_bind_password_file=ldap_bind_password_file, ldap_ca_file=ldap_ca_file, yes=yes,
        waivers=_waivers(waive, reason), timeout=timeout,
        accept_new_host_keys=accept_new_host_keys))


@upgrade.command(name='verify-heals')
@upgrade_id_option
@click.option('--old-profile', default=None, metavar='NAME',
              help='Profile of the old manager (default: from the workspace).')
@click.option('--new-profile', default=None, metavar='NAME',
              help='Profile of the new manager (default: from the workspace).')
@click.option('--since', default=None, metavar='TIME',
              help='Start of the window, ISO 8601 (default: the cut-over).')
@click.option('--until', default=None, metavar='TIME',
              help='End of the window, ISO 8601 (default: now).')
@host_keys_option
@cfy.options.common_options
@boundary
def verify_heals(upgrade_id, old_profile, new_profile, since, until,
                 accept_new_host_keys) -> Outcome:
    """Find what the old manager did after the cut-over (duplicate VMs).

    Lists every execution of the old manager and the `heal` executions of
    the new one, in every tenant, inside the window; flags heals on the old
    manager after the cut-over, heals of the same node instance on both,
    and any other workflow the old manager ran after the cut-over. Exit 0
    when clean, 4 when something is suspicious, 5 when a manager or tenant
    could not be checked.
    """
    from cloudify_upgrade_plugin.heals import command
    return command.run(VerifyHealsOptions(upgrade_id=upgrade_id, old_profile=old_profile,
                                          new_profile=new_profile, since=since,
                                          until=until,
                                          accept_new_host_keys=accept_new_host_keys))


@upgrade.command(name='status')
@upgrade_id_option
@cfy.options.common_options
@boundary
def status(upgrade_id) -> Outcome:
    """Show the steps done, failed and pending, and the next command."""
    from cloudify_upgrade_plugin import status as command
    return command.run(StatusOptions(upgrade_id=upgrade_id))
