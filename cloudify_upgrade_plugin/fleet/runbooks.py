"""The fleet's default backend: the CLI's runbooks, called with explicit connections.

``RunbooksBackend`` runs `plan`, `prepare`, `new-host` / `in-place` and `verify-heals` for
one ``FleetUpgrade`` exactly as the CLI does, without a cfy profile or a terminal:

- connections: the old and the new manager become ``ProfileSettings`` registered as
  explicit connections (``manager.profiles.explicit_connections``) under names stable for
  the node instance (``fleet-<instance>-old`` / ``-new``), for the duration of the call; the
  runbooks keep these names in workspace.json, and a rerun registers them again from the
  node's current properties and secrets.  The CA certificate and the SSH key (text in
  secrets) are written to a private temporary directory (0700, files 0600) outside the
  deployment's work directory, deleted when the call ends;
- workspace: ``<deployment workdir>/upgrades/<upgrade id>`` (options ``workdir``), SSH host
  keys pinned in ``<deployment workdir>/upgrades/upgrade_known_hosts``;
- progress: every journal transition reaches the operation's ``progress`` callback
  (options ``reporter``), and the runbooks' log records of the calling thread are
  forwarded to the operation's logger (``progress.logger``), redacted;
- confirmation: the cut-over is confirmed by the workflow (``yes``); with ``rehearse`` the
  runbook stops before the point of no return (``not-confirmed`` -> ``rehearsed``);
- outcomes: each command's document is summarised (no secret: it is the ``--json``
  document); verify-heals finding suspicious heals is ``suspicious-heals``, one that could
  not check everything ``heals-incomplete``.

A rerun is the same call: the runbooks resume from the workspace's journal.  After a
restore that installs the old admin's password on the new manager, the new manager's
password changes; the fleet never writes secrets, so the outcome says so
(``new_manager_password_changed``) and the operator updates the secret before
``verify_heals``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from typing import Iterator

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.checks import Waiver
from cloudify_upgrade_plugin.engine.redact import redact, redact_text
from cloudify_upgrade_plugin.engine.step import NotConfirmed
from cloudify_upgrade_plugin.engine.workspace import Workspace, upgrades_dir
from cloudify_upgrade_plugin.errors import EXIT_INCOMPLETE, EXIT_OK, UpgradeError
from cloudify_upgrade_plugin.files import FILE_MODE, atomic_write, make_private_dirs
from cloudify_upgrade_plugin.fleet.outcome import DONE, REHEARSED, Outcome, StepEvent
from cloudify_upgrade_plugin.fleet.connection import FleetUpgrade, ManagerConnection
from cloudify_upgrade_plugin.heals import command as heals_command
from cloudify_upgrade_plugin.host import known_hosts
from cloudify_upgrade_plugin.log import LOGGER_NAME
from cloudify_upgrade_plugin.manager.credentials import Credentials
from cloudify_upgrade_plugin.manager.profiles import (
    ExplicitProfile, ProfileSettings, explicit_connections, explicit_settings)
from cloudify_upgrade_plugin.options import (
    InPlaceOptions, NewHostOptions, PlanOptions, PrepareOptions, VerifyHealsOptions)
from cloudify_upgrade_plugin.runbooks import plan as plan_command
from cloudify_upgrade_plugin.runbooks import prepare as prepare_command
from cloudify_upgrade_plugin.runbooks.restore import command as restore_command

KNOWN_HOSTS = 'upgrade_known_hosts'
# What each command's summary keeps of its document (all non-secret).
SUMMARY_KEYS = {
    'plan': ('mode', 'target_version', 'source', 'target', 'steps'),
    'prepare': ('upgrade_id', 'mode', 'snapshot', 'next'),
    'cutover': ('upgrade_id', 'mode', 'target', 'restore_execution_id', 'reconciliation',
                'agents', 'cutover_at', 'healing_fenced', 'left_to_do'),
    'verify_heals': ('ok', 'complete', 'since', 'until', 'healing_active'),
}


class _Session:
    """One runbook call's explicit connections, files and progress."""

    def __init__(self, upgrade: FleetUpgrade, progress, private_dir: str):
        self.upgrade = upgrade
        self.progress = progress
        self.private_dir = private_dir
        self.old_name = upgrade.upgrade_id + '-old'
        self.new_name = upgrade.upgrade_id + '-new'
        self.known_hosts = os.path.join(upgrades_dir(upgrade.workdir), KNOWN_HOSTS)

    def settings(self, name: str, connection: ManagerConnection) -> ProfileSettings:
        cert = self._private_file(name + '-ca.pem', connection.certificate)
        ssh = connection.ssh
        key = self._private_file(name + '-ssh.key', ssh.key) if ssh else None
        if ssh and ssh.host_key:
            make_private_dirs(os.path.dirname(self.known_hosts))
            known_hosts.pin_line(self.known_hosts, connection.address, ssh.port, ssh.host_key)
        profile = ExplicitProfile(
            profile_name=name, manager_ip=connection.address, rest_port=connection.rest_port,
            ssh_user=ssh.user if ssh else None, ssh_key=key, ssh_port=ssh.port if ssh else 22,
            known_hosts_path=self.known_hosts)
        return ProfileSettings(
            name=name, profile=profile, host=connection.address, port=connection.rest_port,
            protocol=connection.protocol, cert=cert, trust_all=False,
            tenant=connection.tenant,
            credentials=Credentials(username=connection.username,
                                    password=connection.password))

    def _private_file(self, name: str, text: str | None) -> str | None:
        if not text:
            return None
        path = os.path.join(self.private_dir, name)
        atomic_write(path, text if text.endswith('\n') else text + '\n', mode=FILE_MODE)
        return path

    def report(self, step_id, event, index, total, details) -> None:
        self.progress(StepEvent(step_id, event, index, total, dict(details or {})))


class _Forward(logging.Handler):
    """Forward the plugin logger's records of one thread to an operation's logger."""

    def __init__(self, target: logging.Logger, thread: int):
        super().__init__(logging.INFO)
        self.target = target
        self.thread = thread

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or (record.module, record.funcName) == \
                ('runner', '_journal'):
            return      # another upgrade's, or a transition ``progress`` already reported
        try:
            self.target.log(record.levelno, '%s', redact_text(record.getMessage()))
        except Exception:     # a log line must never fail the upgrade
            pass


@contextlib.contextmanager
def _forwarding(progress) -> Iterator[None]:
    target = getattr(progress, 'logger', None)
    if target is None:
        yield
        return
    logger = logging.getLogger(LOGGER_NAME)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)        # nobody configures cfy's logger here
    handler = _Forward(target, threading.get_ident())
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


@contextlib.contextmanager
def session(upgrade: FleetUpgrade, progress, target: ManagerConnection | None = None
            ) -> Iterator[_Session]:
    """Register the upgrade's connections (the old one's name answering with ``target``
    when given: in place, the rebuilt manager at the old address) for one call."""
    make_private_dirs(upgrades_dir(upgrade.workdir))
    private_dir = tempfile.mkdtemp(prefix='cfy-upgrade-fleet-')
    try:
        current = _Session(upgrade, progress, private_dir)
        old = current.settings(current.old_name, target or upgrade.old)
        new = current.settings(current.new_name, upgrade.new)
        with explicit_connections(old, new), _forwarding(progress):
            yield current
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)


def _waivers(upgrade: FleetUpgrade):
    return tuple(Waiver(w.check, w.reason) for w in upgrade.waivers)


def _summary(command: str, document: dict) -> dict:
    document = redact(document or {})
    return {k: document[k] for k in SUMMARY_KEYS[command] if k in document}


class RunbooksBackend:
    """The runbooks of the CLI, called without a cfy profile (see the module docstring)."""

    def plan(self, upgrade: FleetUpgrade, progress) -> Outcome:
        with session(upgrade, progress) as current:
            outcome = plan_command.run(PlanOptions(
                mode=upgrade.mode, target_version=upgrade.target_version,
                from_profile=current.old_name, waivers=_waivers(upgrade),
                to_profile=current.new_name if upgrade.mode == versions.MODE_NEW_HOST
                else None, workdir=upgrade.workdir, reporter=current.report))
        return Outcome(DONE, _summary('plan', outcome.document))

    def prepare(self, upgrade: FleetUpgrade, progress) -> Outcome:
        with session(upgrade, progress) as current:
            outcome = prepare_command.run(PrepareOptions(
                mode=upgrade.mode, target_version=upgrade.target_version,
                from_profile=current.old_name, upgrade_id=upgrade.upgrade_id,
                waivers=_waivers(upgrade), timeout=upgrade.timeout, workdir=upgrade.workdir,
                reporter=current.report))
        return Outcome(DONE, _summary('prepare', outcome.document))

    def cutover(self, upgrade: FleetUpgrade, progress, rehearse: bool) -> Outcome:
        in_place = upgrade.mode == versions.MODE_IN_PLACE
        with session(upgrade, progress, target=upgrade.new if in_place else None) as current:
            common = dict(
                upgrade_id=upgrade.upgrade_id, users=upgrade.users_policy,
                agents_concurrency=upgrade.agents_concurrency, yes=not rehearse,
                rehearse=rehearse, waivers=_waivers(upgrade), timeout=upgrade.timeout,
                workdir=upgrade.workdir, reporter=current.report)
            options = InPlaceOptions(**common) if in_place else \
                NewHostOptions(to_profile=current.new_name, **common)
            try:
                outcome = restore_command.run(options)
            except NotConfirmed:
                if not rehearse:
                    raise
                return Outcome(REHEARSED, {'upgrade_id': upgrade.upgrade_id,
                                           'stopped_before': 'the point of no return'})
            summary = _summary('cutover', outcome.document)
            target = current.old_name if in_place else current.new_name
            now = explicit_settings(target).credentials.password
        if now != upgrade.new.password:
            summary['new_manager_password_changed'] = True
            logging.getLogger(LOGGER_NAME).warning(
                'The restore installed the old admin\'s password on the new manager: '
                'update the secret behind new_manager.password before verify_heals.')
        return Outcome(DONE, summary)

    def verify_heals(self, upgrade: FleetUpgrade, progress) -> Outcome:

        def opener(upgrade_id, required):
            return Workspace.open(upgrade_id, base=upgrade.workdir)

        in_place = upgrade.mode == versions.MODE_IN_PLACE
        with session(upgrade, progress, target=upgrade.new if in_place else None) as current:
            outcome = heals_command.run(VerifyHealsOptions(
                upgrade_id=upgrade.upgrade_id, old_profile=current.old_name,
                new_profile=current.old_name if in_place else current.new_name),
                workspace_opener=opener)
        summary = _summary('verify_heals', outcome.document)
        summary['suspected_duplicates'] = len(outcome.document.get('suspected_duplicates')
                                              or [])
        if outcome.exit_code == EXIT_INCOMPLETE:
            raise UpgradeError(
                'verify-heals could not check everything on {0} (a manager or a tenant could '
                'not be listed): nothing suspicious in what it read, but that is not a clean '
                'result.'.format(upgrade.old.address), error_id='heals-incomplete',
                details=summary,
                hints=['Read the upgrade_verify_heals record of this node instance and the '
                       'report in its workspace: it names what was not checked (e.g. an old '
                       'manager before 5.2 in maintenance mode refuses the listing).'])
        if outcome.exit_code != EXIT_OK:
            raise UpgradeError(
                'verify-heals found heals the old manager may have duplicated since the '
                'cut-over on {0}.'.format(upgrade.old.address), error_id='suspicious-heals',
                details=summary,
                hints=['Read the upgrade_verify_heals record of this node instance and the '
                       'report in its workspace; remove the duplicated VMs by hand.'])
        return Outcome(DONE, summary)
