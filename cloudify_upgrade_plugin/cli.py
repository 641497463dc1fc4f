"""The `cfy upgrade` command group: option parsing and the one error boundary.

Commands are thin: parse options, build an options dict, call one engine entry point
(imported lazily, so `cfy --help` stays cheap), render the result.  No REST or SSH call
lives here.  Errors become exit codes per docs/cli-contract.md: 1 failed, 2 usage, 3 blocked
before any change, 4 suspicious heals found.
"""
import errno
import functools
import importlib
import sys

import click
from cloudify_cli.cli import cfy

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin import log

MODES = ('new-host', 'in-place')
USERS_POLICIES = ('rest-security', 'reset-passwords', 'skip')


def boundary(func):
    """Turn UpgradeError into a message, hints, a JSON document and an exit code."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UpgradeError as error:
            logger = log.get_logger()
            logger.error('Error [%s]: %s', error.error_id, error.message)
            if error.possible_solutions:
                logger.error('Possible solutions:')
                for hint in error.possible_solutions:
                    logger.error('  - %s', hint)
            if log.json_mode():
                document = {'error': error.to_dict()}
                document.update(getattr(error, 'document', None) or {})
                log.emit_json(document)
            sys.exit(error.exit_code)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise
            return _disk_full(error)
    return wrapper


def _disk_full(error):
    """Last resort for a full local disk met outside a step (journal, workspace files)."""
    full = UpgradeError(
        'The local disk is full: {0}'.format(error), error_id='local-disk-full',
        hints=['Free space where the cfy workdir is (or set CFY_WORKDIR to a bigger disk), '
               'then run the same command again: finished steps are not redone.'])
    return boundary(_raise)(full)


def _raise(error):
    raise error


def _call(target, **options):
    """Run `module:function` from cloudify_upgrade_plugin with the parsed options."""
    module_name, func_name = target.split(':')
    module = importlib.import_module('cloudify_upgrade_plugin.' + module_name)
    return getattr(module, func_name)(options)


def _waivers(waive, reason):
    if waive and not reason:
        raise click.UsageError('--waive needs --reason TEXT (why it is safe '
                               'to go on despite the failed check).')
    return [{'check': check_id, 'reason': reason} for check_id in waive]


def upgrade_id_option(f):
    return click.option(
        '--upgrade-id', default=None, metavar='ID',
        help='The upgrade workspace to use (default: the most recent one).')(f)


def waive_options(f):
    f = click.option('--reason', default=None, metavar='TEXT',
                     help='Why the waived checks are safe to ignore '
                          '(recorded in the journal).')(f)
    return click.option(
        '--waive', multiple=True, metavar='CHECK_ID',
        help='Waive one named blocking check (repeatable); needs --reason. '
             'There is no blanket --force.')(f)


def yes_option(f):
    return click.option(
        '--yes', is_flag=True, default=False,
        help='Do not ask for confirmation at the point of no return.')(f)


def timeout_option(f):
    return click.option(
        '--timeout', type=click.IntRange(1), default=3600, show_default=True,
        metavar='SECONDS', help='Longest wait for one manager execution or '
                                'outage.')(f)


@cfy.group(name='upgrade')
@cfy.options.common_options
def upgrade():
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
@click.option('--mode', type=click.Choice(MODES), default='new-host',
              show_default=True, help='How the new manager will be built.')
@click.option('--target-version', default=None, metavar='VERSION',
              help='Version of the manager you will upgrade to.')
@click.option('--from-profile', default=None, metavar='NAME',
              help='Profile of the old manager (default: the active one).')
@waive_options
@cfy.options.common_options
@boundary
def plan(mode, target_version, from_profile, waive, reason, **_):
    """Check an upgrade and list its steps; changes nothing.

    Runs every check `prepare` would run that needs no snapshot (reachability,
    version and edition, upgrade path, update-3 / patch-1, running executions,
    maintenance mode, users, SSH access, local disk) and prints the ordered
    steps of the chosen mode for this source/target pair. Exit 3 when a
    blocking check fails.
    """
    _call('runbooks.prepare:plan', mode=mode, target_version=target_version,
          from_profile=from_profile, waivers=_waivers(waive, reason))


@upgrade.command(name='prepare')
@click.option('--mode', type=click.Choice(MODES), default='new-host',
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
@waive_options
@timeout_option
@cfy.options.common_options
@boundary
def prepare(mode, target_version, from_profile, upgrade_id, snapshot_id,
            freeze, waive, reason, timeout, **_):
    """Snapshot and back up the old manager; touches nothing irreversibly.

    Checks the old manager, creates a snapshot and waits for it, downloads it
    (streamed, SHA-256 while streaming, resumable) and verifies it, copies
    rest-security.conf and /etc/cloudify/ssl over SSH where the version needs
    them, records the source inventory, and prints the next command.
    """
    _call('runbooks.prepare:prepare', mode=mode,
          target_version=target_version, from_profile=from_profile,
          upgrade_id=upgrade_id, snapshot_id=snapshot_id, freeze=freeze,
          waivers=_waivers(waive, reason), timeout=timeout)


def agents_options(f):
    f = click.option('--agent-timeout', type=click.IntRange(1), default=900,
                     show_default=True, metavar='SECONDS',
                     help='Timeout of one deployment\'s agent install.')(f)
    return click.option('--agents-concurrency', type=click.IntRange(1, 50), default=5,
                        show_default=True, help='Agent installs run at once.')(f)


def users_option(f):
    return click.option(
        '--users', type=click.Choice(USERS_POLICIES), default=None,
        help='Pre-4.2 snapshots with several users: copy the old hash salt '
             'and keys into the new rest-security.conf (rest-security), set '
             'new passwords (reset-passwords), or record a waiver (skip).')(f)


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
@click.option('--manager-password', default=None, metavar='PASSWORD')
@click.option('--manager-tenant', default='default_tenant',
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
@agents_options
@yes_option
@waive_options
@timeout_option
@cfy.options.common_options
@boundary
def new_host(waive, reason, **options):
    """Restore the snapshot on a new manager and move the agents to it.

    Checks the new manager (version, clean, bootstrap admin, agent networks,
    snapshot checksum), uploads and restores the snapshot with the body the
    target version needs, follows the admin credential change, restores old
    users, reconciles the data, then - after confirmation, the point of no
    return - stops the old manager's auto-heal and installs new agents in
    every tenant. The new manager becomes the active profile.
    """
    options.pop('logger', None)
    _call('runbooks.new_host:run', waivers=_waivers(waive, reason),
          **_without_common(options))


@upgrade.command(name='in-place')
@upgrade_id_option
@users_option
@agents_options
@yes_option
@waive_options
@timeout_option
@cfy.options.common_options
@boundary
def in_place(waive, reason, **options):
    """Restore the snapshot on the rebuilt manager at the same address.

    Run it after tearing the old manager down and installing the new version
    on the same host (prepare printed how). Verifies that the manager is a
    fresh install, uploads, restores with certificates, waits through the
    reboot, restores rest-security and users, reconciles, and moves agents.
    """
    _call('runbooks.in_place:run', waivers=_waivers(waive, reason),
          **_without_common(options))


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
@cfy.options.common_options
@boundary
def verify_heals(**options):
    """Find heal executions that may have duplicated VMs after the cut-over.

    Lists `heal` executions in every tenant of both managers inside the
    window and flags heals on the old manager after the cut-over and heals
    of the same node instance on both. Exit 0 when clean, 4 when something
    is suspicious.
    """
    _call('heals:run', **_without_common(options))


@upgrade.command(name='status')
@upgrade_id_option
@cfy.options.common_options
@boundary
def status(**options):
    """Show the steps done, failed and pending, and the next command."""
    _call('engine.status:run', **_without_common(options))


def _without_common(options):
    for key in ('manager', 'json', 'format', 'verbose', 'quiet',
                'logger', 'client'):
        options.pop(key, None)
    return options
