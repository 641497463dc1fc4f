"""The simulated management worker: a scheduler thread that moves executions through
pending -> started -> terminated/failed/cancelled over (scaled) time, and the workflows it
runs: create_snapshot, restore_snapshot (validator, DB swap, post-restore work per target
version, behaviour §3.6 / §3.8; the 5.0.5-6.1 database swap with the REST service up, §12.7;
the 4.x-5.0.x deployment environments' plugins, §12.4), heal and plain workflows; other
modules register theirs (install_new_agents: agents.py, update_plugin: plugins.py) and the
fix-ups of restored data (``RESTORE_HOOKS``).

Durations are in "manager seconds" and multiplied by the manager's time scale.
"""
import heapq
import itertools
import threading
import time

from tests.simulator import archive
from tests.simulator import data as datamod
from tests.simulator.rules import SnapshotRules

# manager-second durations (README "Time scale")
PENDING_DELAY = 0.3        # pending -> started
WORK_STEP = 1.0            # one step of a workflow
POST_RESTORE_DELAY = 3.0   # the detached post-restore shell sleeps 3 s (behaviour §3.8)
REST_RESTART_OUTAGE = 3.0  # cloudify-restservice restart (behaviour §3.8: "a few seconds")
REBOOT_OUTAGE = 15.0       # `shutdown -r now` after a certificate restore (behaviour §3.8)
POLL = 0.2


class WorkflowFailed(Exception):
    pass


# Workflows implemented in other modules (plugins.py, agents.py, ...): workflow id ->
# fn(engine, execution, fail_rule), a generator like the Engine's *_work methods.
EXTRA_WORKS = {}


def register_work(workflow_id, fn):
    EXTRA_WORKS[workflow_id] = fn


# Called after a restore's data step as fn(mgr, snapshot, new_format): `snapshot` is the
# rules.SnapshotRules of the restored snapshot, `new_format` True on the 7.0 new route
# (behaviour §12.1), where nothing of the legacy DB step happens.  Hooks adjust the restored
# data and cannot fail the restore; the workflow's own later steps that can (the 4.x-5.0.x
# deployment environments, `Engine._restore_deployment_envs`) stay in `restore_work`.
RESTORE_HOOKS = []


class Scheduler:
    """One thread running callables at monotonic deadlines."""

    def __init__(self, name='sim-scheduler'):
        self._heap = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def call_later(self, delay, fn, *args):
        with self._cond:
            if self._stopped:
                return
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._seq),
                                        fn, args))
            self._cond.notify()

    def _loop(self):
        while True:
            with self._cond:
                while not self._stopped and (
                        not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = (self._heap[0][0] - time.monotonic()) if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, fn, args = heapq.heappop(self._heap)
            try:
                fn(*args)
            except Exception:          # a broken step must not kill the worker
                import traceback
                traceback.print_exc()

    def stop(self):
        with self._cond:
            self._stopped = True
            self._heap = []
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(5)


class Engine:
    """Runs workflow generators: each `yield d` sleeps d manager-seconds."""

    def __init__(self, mgr):
        self.mgr = mgr
        self.sched = Scheduler('sim-worker-{0}'.format(mgr.rules.key))

    def stop(self):
        self.sched.stop()

    def later(self, seconds, fn, *args):
        self.sched.call_later(seconds * self.mgr.time_scale, fn, *args)

    def spawn(self, gen):
        self.sched.call_later(0, self._step, gen)

    def _step(self, gen):
        if self.mgr.stopped:
            return
        try:
            delay = next(gen)
        except StopIteration:
            return
        self.sched.call_later(max(0.002, float(delay) * self.mgr.time_scale), self._step, gen)

    # -- execution lifecycle ------------------------------------------------------------------
    def start_execution(self, ex, work=None):
        """Run execution record `ex` (already stored, status pending or queued)."""
        self.spawn(self._lifecycle(ex, work or self.plain_work))

    def _set(self, ex, **fields):
        with self.mgr.store.lock:
            ex.update(fields)

    def _others_active(self, ex):
        with self.mgr.store.lock:
            return [e for e in self.mgr.store.all('executions') if e is not ex
                    and e['status'] in datamod.ACTIVE_STATES and e['status'] != 'queued']

    def _lifecycle(self, ex, work):
        mgr = self.mgr
        while ex['status'] == 'queued':        # behaviour §3.1: queue from 4.5
            if not self._others_active(ex):
                self._set(ex, status='pending')
                break
            yield POLL
        while not mgr.unit_active('cloudify-mgmtworker') and not ex.get('_cancel'):
            yield POLL                          # no worker: stays pending (observed-7.0 §3.1)
        yield PENDING_DELAY
        if ex.get('_cancel'):
            self._finish(ex, 'cancelled')
            return
        fault, rule = mgr.faults.take_execution_fault(ex)
        self._set(ex, status='started', started_at=datamod.ts(), error='')
        # cloudify-common@7.0.5 cloudify/dispatch.py WorkflowHandler._workflow_started
        mgr.emit_event(ex, 'workflow_started',
                       "Starting '{0}' workflow execution".format(ex['workflow_id']))
        for event_type, message in mgr.faults.take_events(ex):
            mgr.emit_event(ex, event_type, message)
        if fault == 'hang':
            while True:
                action = ex.get('_cancel')
                if action in ('force-cancel', 'kill'):
                    self._finish(ex, 'cancelled')
                    return
                yield POLL                      # a plain cancel stays 'cancelling'
        try:
            result = yield from work(ex, rule if fault == 'fail' else None)
        except WorkflowFailed as e:
            self._finish(ex, 'failed', str(e))
            return
        if ex.get('_cancel'):
            self._finish(ex, 'cancelled')
            return
        self._finish(ex, 'terminated')
        if callable(result):
            result()

    def _finish(self, ex, status, error=''):
        # cloudify-common@7.0.5 cloudify/dispatch.py _workflow_succeeded / _workflow_failed /
        # _workflow_cancelled: the last event, sent before the status is updated
        if ex.get('started_at'):
            workflow = ex['workflow_id']
            if status == 'terminated':
                self.mgr.emit_event(ex, 'workflow_succeeded',
                                    "'{0}' workflow execution succeeded".format(workflow))
            elif status == 'failed':
                self.mgr.emit_event(ex, 'workflow_failed',
                                    "'{0}' workflow execution failed: {1}".format(
                                        workflow, error))
            else:
                self.mgr.emit_event(ex, 'workflow_cancelled',
                                    "'{0}' workflow execution cancelled".format(workflow))
        self._set(ex, status=status, ended_at=datamod.ts(), error=error)
        self.mgr.on_execution_end(ex)

    def _check_cancel(self, ex):
        if ex.get('_cancel'):
            raise WorkflowFailed('Execution cancelled')

    # -- workflows ------------------------------------------------------------------------------
    def plain_work(self, ex, fail_rule):
        yield WORK_STEP
        if fail_rule is not None:
            raise WorkflowFailed(fail_rule.error)
        yield WORK_STEP

    def heal_work(self, ex, fail_rule):
        """heal = auto_heal_reinstall_node_subgraph (behaviour §7.4)."""
        yield WORK_STEP
        if fail_rule is not None:
            raise WorkflowFailed(fail_rule.error)
        nid = (ex.get('parameters') or {}).get('node_instance_id')
        with self.mgr.store.lock:
            for ni in self.mgr.store.find('node_instances', nid, [ex['tenant_name']]):
                ni['version'] = ni.get('version', 1) + 1
        yield WORK_STEP

    def create_snapshot_work(self, ex, fail_rule):
        """behaviour §3.1: the snapshot row moves creating -> created/failed; the zip's format
        and metadata follow behaviour §12.1 (archive.py, rules.py)."""
        mgr, rules = self.mgr, self.mgr.rules
        params = ex.get('parameters') or {}
        sid = params.get('snapshot_id')
        yield WORK_STEP
        snap = mgr.snapshot_record(sid, ex['tenant_name'])
        if fail_rule is not None:
            if snap is not None:
                self._set(snap, status='failed', error=fail_rule.error)
            raise WorkflowFailed(fail_rule.error)
        legacy = bool(params.get('legacy', not rules.new_format_create))
        with mgr.store.lock:
            dump = mgr.store.dump()
            agents = [dict(a) for a in mgr.store.all('agents') if datamod.is_current_agent(a)]
        if legacy or not rules.new_format_create:
            # MGR@4.2..7.0.4 postgres.py _append_delete_current_execution: the dump deletes
            # the running create_snapshot execution
            dump['resources']['executions'] = [
                e for e in dump['resources']['executions'] if e['id'] != ex['id']]
        archive.build(mgr.snapshot_path(sid), rules, dump, mgr.root,
                      mgr.rest_security_file(), ex['id'], legacy,
                      include_credentials=params.get('include_credentials', True),
                      agents=agents)
        yield WORK_STEP
        if snap is not None:
            self._set(snap, status='created', error='')

    def restore_work(self, ex, fail_rule):
        """behaviour §12.1 (the 7.0 route), §3.6 (validator), §3.8 (what happens after, per
        target)."""
        mgr, rules = self.mgr, self.mgr.rules
        params = ex.get('parameters') or {}
        sid = params['snapshot_id']
        mgr.set_snapshot_flag(True)             # behaviour §2.3 snapshot-status (5.0.5+)
        db_replaced = False
        try:
            yield WORK_STEP
            if fail_rule is not None:
                raise WorkflowFailed(fail_rule.error)
            try:
                arc = archive.read(mgr.snapshot_path(sid))
            except archive.ArchiveError as e:
                raise WorkflowFailed(str(e))
            meta = arc['metadata']
            snap = SnapshotRules(meta.get('snapshot_version', '0'))
            route = rules.restore_route(meta)
            mgr.mark('restore route {0}'.format(route))
            if route == 'new':
                yield from self._new_route(ex, arc, meta, snap)
                # the new route returns before the snapshot dir is removed and has no
                # post-restore shell: only the restore flag goes (MGR@7.0.4 `restore`,
                # `_mark_manager_finished_restoring`)
                mgr.set_snapshot_flag(False)
                return None
            if rules.refuses_legacy_restore:
                raise WorkflowFailed(rules.legacy_refused_message)      # behaviour §12.1
            caller = params.get('_caller_id')
            force = params.get('force')
            into_tenant = None
            self._validate(arc, snap, caller, force, ex)
            if arc['data'] is None:
                raise WorkflowFailed('The snapshot holds no manager data')
            if snap.is_3x and rules.has_tenants:
                into_tenant = self._tenant_for_3x(ex, params)
            security = self._security_from(arc, snap)
            restart = security is not None and rules.post_restore != 'none'
            if rules.post_restore == 'inside' and restart:
                # 4.6+: `_restore_files_to_manager` writes the snapshot's rest-security
                # values before the DB step; the REST service reads them at its restart
                mgr.merge_rest_security(security)
            yield WORK_STEP
            self._check_cancel(ex)
            if rules.checks_schema_revision_value and 'schema_revision' in meta and \
                    not meta['schema_revision']:
                # MGR@7.0.4 `restore`: .get(key, default) keeps an empty value, which alembic
                # cannot downgrade to (before any table is cleared) [I]
                raise WorkflowFailed('RuntimeError: Failed running command: alembic '
                                     'downgrade {0!r}'.format(meta['schema_revision']))
            if rules.restore_db_swap_serves_rest:
                # behaviour §12.7: 5.0.5-6.1 downgrade and upgrade the database with the REST
                # service up; a request reaching it meanwhile can deadlock the migration
                mgr.begin_db_swap()
                yield mgr.db_swap_seconds()
                traffic = mgr.end_db_swap()
                if traffic and mgr.deadlock_on_db_swap_traffic:
                    raise WorkflowFailed(
                        'psycopg2.extensions.TransactionRollbackError: deadlock detected '
                        '(while restoring the database; {0} REST request(s) during the '
                        'migration)'.format(len(traffic)))
            # the DB step: the manager's data becomes the snapshot's (behaviour §3.8)
            mgr.mark('db restored')
            with mgr.store.lock:
                target_admin = dict(mgr.store.admin())
                keep = [e for e in mgr.store.all('executions') if e is ex]
                mgr.store.load(arc['data'], keep_admin=target_admin,
                               into_tenant=into_tenant, keep=keep)
                if into_tenant is None and snap.has_old_roles and rules.roles_42:
                    _map_old_roles(mgr.store)                    # behaviour §9 item 7
            self._ui_databases(arc, meta, snap)
            # `_restore_db` is over (its Stage / Composer steps included): the admin's
            # UPDATE is queued next (`_restore_hash_salt`, MGR@4.5.5..7.0.4)
            db_replaced = True
            with mgr.store.lock:
                if rules.delete_snapshot_after_restore:
                    for rec in mgr.store.find('snapshots', sid):
                        mgr.store.delete('snapshots', rec)
                for hook in RESTORE_HOOKS:
                    hook(mgr, snap, False)
            if rules.post_restore == 'inside' and restart:
                # 4.6+: the REST service is restarted inside the workflow
                mgr.restart_restservice(REST_RESTART_OUTAGE)
                yield REST_RESTART_OUTAGE
            if rules.restore_installs_deployment_plugins:
                self._restore_deployment_envs(ex, params)
            yield WORK_STEP
        except WorkflowFailed:
            if db_replaced and rules.post_restore_commands_in_finally:
                # MGR@4.5.5+ `restore`: `finally: _trigger_post_restore_commands()`, and
                # the admin's UPDATE was queued right after `_restore_db`
                # (`_restore_hash_salt` -> `_restore_admin_user`): a restore that fails
                # later still installs the source admin, then removes the flag
                self.later(POST_RESTORE_DELAY, self._post_restore,
                           self._source_admin(arc, snap),
                           security if rules.post_restore == 'after_terminated' else None,
                           None, True, sid)
            else:
                mgr.set_snapshot_flag(False)
            raise
        source_admin = self._source_admin(arc, snap)
        certs = params.get('restore_certificates') and self._certs_ok(arc)

        def after_terminated():
            self.later(POST_RESTORE_DELAY, self._post_restore, source_admin,
                       security if rules.post_restore == 'after_terminated' else None,
                       arc['ssl'] if certs else None, params.get('no_reboot'), sid)
        if rules.delete_snapshot_after_restore:
            mgr.remove_snapshot_file(sid)
        return after_terminated

    @staticmethod
    def _source_admin(arc, snap):
        """behaviour §3.8: the admin a >= 4.2 snapshot installs (its user with id 0)."""
        if not snap.installs_source_admin:
            return None
        return next((u for u in arc['data'].get('users', {}).values() if u['id'] == 0),
                    None)

    def _restore_deployment_envs(self, ex, params):
        """behaviour §12.4: up to 5.0.x every restored deployment's environment gets its
        plugins; one that does not install (``faults.fail_plugin_install``) fails the
        restore unless ``ignore_plugin_failure`` (4.5.0-5.0.x).  Log texts and what
        happens per version: MGR@4.4, 4.5.1, 4.5.5, 5.0.5 snapshot_restore.py
        `_restore_deployment_envs`, `_get_and_execute_task_graph`,
        `_log_final_information`, `__remove_failed_deployments_footprints`; the task's
        error text is [I]."""
        mgr, rules = self.mgr, self.mgr.rules
        ignore = bool(params.get('ignore_plugin_failure')) and \
            rules.restore_reads_ignore_plugin_failure
        with mgr.store.lock:
            deployments = [(d['tenant_name'], d['id']) for d in mgr.store.all('deployments')]
        tenants = []
        for tenant, _ in deployments:
            if tenant not in tenants:
                tenants.append(tenant)
        skipped, failed = [], []
        for tenant in tenants:
            mgr.workflow_log(ex, 'info', 'Restoring deployment environments for '
                                         '{0}'.format(tenant))
            for t, did in deployments:
                if t != tenant:
                    continue
                plugin = mgr.faults.plugin_install_failure(tenant, did)
                if plugin is None:
                    continue
                error = ("RuntimeError: Workflow failed: Task failed "
                         "'cloudify_agent.operations.install_plugins' -> Failed to install "
                         "plugin {0}: no wagon of it fits this manager".format(plugin))
                if not ignore:
                    if not rules.plugin_failures_collected:
                        raise WorkflowFailed(error)            # 4.x-4.5.1: `raise re`
                    mgr.workflow_log(ex, 'info', error)
                    failed.append((did, tenant))
                    continue
                skipped.append((did, tenant))
                if rules.ignore_plugin_failure_deletes:
                    mgr.workflow_log(ex, 'warning', 'Failed to create deployment: {0},'
                                     'ignore_plugin_failureflag used, proceeding...'.format(did))
                    mgr.workflow_log(ex, 'info', 'Removing failed deployment {0} '
                                                 'footprints'.format(did))
                    self._delete_deployment(tenant, did)
                else:
                    mgr.workflow_log(ex, 'warning', 'Failed to install plugins for '
                                     'deployment `{0}` under tenant `{1}`.  Proceeding '
                                     'since `ignore_plugin_failure` flag was used.'.format(
                                         did, tenant))
        if failed:
            raise WorkflowFailed(
                'NonRecoverableError: Failed to restore snapshot, the following deployment '
                'environments were not restored: {0}. See exception tracebacks logged '
                'above for more details.'.format(_py2_repr(failed)))
        if skipped and rules.plugin_failures_collected:
            mgr.workflow_log(ex, 'warning', 'Finished restoring deployment evnironments. '
                             'Please note that the following deployment plugins were not '
                             'installed and need to be installed manually on each '
                             'deployment`s virtual env: {0}'.format(_py2_repr(skipped)))
        elif rules.plugin_failures_collected:
            mgr.workflow_log(ex, 'info', 'Successfully restored deployment environments.')

    def _delete_deployment(self, tenant, did):
        """`deployments.delete` of 4.5.0-4.5.1's failed-environment cleanup: the
        deployment, its nodes, node instances and agents."""
        store = self.mgr.store
        with store.lock:
            for kind, field in (('deployments', 'id'), ('nodes', 'deployment_id'),
                                ('node_instances', 'deployment_id'),
                                ('agents', 'deployment')):
                for rec in [r for r in store.all(kind)
                            if r.get('tenant_name') == tenant and r.get(field) == did]:
                    store.delete(kind, rec)

    def _new_route(self, ex, arc, meta, snap):
        """behaviour §12.1: the 7.0 per-entity route (MGR@7.0.4 snapshot_restore.py
        `scan_snapshot`, `_new_restore`).  No validator, no clean check, no rest-security,
        no certificates; entities found under mgmt/ and tenants/ are created through REST
        (an existing one is an error logged and skipped: COMMON@7.0.4 `restore` methods),
        users except `admin` (COMMON@7.0.4 users.py `restore`), so the admin password does
        not change.  A legacy-shaped zip has no such members: nothing is restored and the
        execution still ends terminated."""
        mgr = self.mgr
        yield WORK_STEP
        self._check_cancel(ex)
        with mgr.store.lock:
            restored = mgr.store.restore_entities(arc['entities'], skip_users=('admin',),
                                                  types=archive.NEW_FORMAT_TENANT_TYPES)
            for hook in RESTORE_HOOKS:
                hook(mgr, snap, True)
        mgr.mark('entities restored {0}'.format(restored))
        create_id = meta.get('execution_id')
        if create_id:
            # MGR@7.0.1+ `_new_restore_update_execution_status`: executions.update(id,
            # 'terminated') without a try, so an unknown id fails the workflow [I]
            with mgr.store.lock:
                found = mgr.store.find('executions', create_id)
                for rec in found:
                    rec.update(status='terminated', ended_at=rec.get('ended_at') or
                               datamod.ts(), error='')
            if not found:
                raise WorkflowFailed('CloudifyClientError: 404: Requested `Execution` with '
                                     'ID `{0}` was not found'.format(create_id))
        yield WORK_STEP

    def _ui_databases(self, arc, meta, snap):
        """The 7.0 legacy route's Stage / Composer steps on a premium target (rules.py
        `models_ui_db_restore`; MGR@7.0.4 snapshot_restore.py `_restore_db`): they run after
        the main DB was replaced.  The manager option `legacy_stage_restore='lenient'` makes
        them succeed whatever the zip holds."""
        mgr = self.mgr
        if not mgr.rules.models_ui_db_restore or mgr.legacy_stage_restore == 'lenient':
            return
        names = arc['names']
        stage_revision = meta.get('stage_schema_revision') or ''
        composer_revision = meta.get('composer_schema_revision') or ''
        stage_error = None
        if not stage_revision:
            stage_error = ("RuntimeError: Failed running command: npm run "
                           "db-migrate-down-to '' (Migration name to down to has to be "
                           "supplied)")
        elif 'stage_data' not in names:
            stage_error = ('RuntimeError: Failed running command: psql -f '
                           '<tempdir>/stage_data (No such file or directory)')
        if stage_error is not None:
            if not snap.stage_failure_forgiven:
                raise WorkflowFailed(stage_error)
            mgr.mark('stage not restored')              # a warning only (< 4.3)
        if composer_revision and snap.restores_composer and 'composer_data' not in names:
            raise WorkflowFailed('RuntimeError: Failed running command: psql -f '
                                 '<tempdir>/composer_data (No such file or directory)')

    def _validate(self, arc, snap, caller, force, ex):
        """behaviour §3.6: the restore workflow's validator (legacy route only on 7.0)."""
        mgr, rules = self.mgr, self.mgr.rules
        if snap.newer_than(rules):
            raise WorkflowFailed(
                "NonRecoverableError: Cannot restore a newer manager's snapshot on this "
                "manager [{0} > {1}]".format(snap.text, rules.reported_version))
        if snap.needs_bootstrap_admin:
            if caller != 0:
                raise WorkflowFailed(
                    'NonRecoverableError: Only the bootstrap admin is allowed to perform '
                    'this action')
            with mgr.store.lock:
                dirty = bool(mgr.store.all('blueprints'))
            if dirty and not force:
                raise WorkflowFailed(
                    'NonRecoverableError: Snapshot restoration on a dirty manager is not '
                    'permitted. Use the force flag to override')
            if rules.checks_agent_networks and snap.checks_agent_networks:
                wanted = {a.get('network', 'default') for a in
                          (arc['data'] or {}).get('resources', {}).get('agents', [])
                          if datamod.is_current_agent(a)}
                missing = sorted(wanted - set(mgr.networks))
                if missing:
                    raise WorkflowFailed(
                        'NonRecoverableError: Networks `{0}` do not exist on this manager. '
                        'Upgrade is not allowed!'.format(', '.join(missing)))
        else:
            if not rules.accepts_3x_snapshots:
                raise WorkflowFailed('NonRecoverableError: Restoring snapshot from version '
                                     '3.x is not supported')
            with mgr.store.lock:
                dirty = [b for b in mgr.store.all('blueprints')
                         if b['tenant_name'] == ex['tenant_name']]
            if dirty and not force:
                raise WorkflowFailed(
                    'NonRecoverableError: Snapshot restoration on a dirty manager is not '
                    'permitted. Use the force flag to override')

    def _tenant_for_3x(self, ex, params):
        """behaviour §3.6 item 3: 4.1-4.6 restore a 3.x snapshot into the request's tenant;
        behaviour §3.5 4.0.x row: premium needs a non-null new tenant_name, community null."""
        rules = self.mgr.rules
        if rules.restores_3x_into_request_tenant:
            return ex['tenant_name']
        name = params.get('tenant_name')
        if rules.premium and not name:
            raise WorkflowFailed('NonRecoverableError: tenant_name must be given to restore '
                                 'a 3.x snapshot')
        if not rules.premium and name:
            raise WorkflowFailed('NonRecoverableError: tenant_name must be null on the '
                                 'community edition')
        name = name or 'default_tenant'
        with self.mgr.store.lock:
            if name not in self.mgr.store.tenants:
                self.mgr.store.tenants[name] = datamod.new_tenant(name)
        return name

    def _security_from(self, arc, snap):
        """behaviour §7.2: 4.2-4.3 snapshots carry hash_salt.json, 4.4+ rest-security.conf."""
        if snap.carries_rest_security and arc['rest_security']:
            return dict(arc['rest_security'])
        if snap.carries_hash_salt and arc['hash_salt']:
            return {'hash_salt': arc['hash_salt']}
        return None

    def _certs_ok(self, arc):
        """behaviour §3.8: 4.0.1-4.1 only restore certificates whose metadata matches."""
        if not arc['ssl']:
            return False
        if self.mgr.rules.cert_restore_needs_matching_metadata:
            mine = self.mgr.read_host_file('etc/cloudify/ssl/certificate_metadata')
            return mine is not None and arc['ssl'].get('certificate_metadata') == mine
        return True

    def _post_restore(self, source_admin, security, ssl_files, no_reboot, sid):
        """The detached post-restore shell (behaviour §3.8 '4.2 - 4.5.x targets' / '4.6+')."""
        mgr = self.mgr
        if mgr.stopped:
            return
        if source_admin is not None:
            with mgr.store.lock:
                admin = mgr.store.admin()
                mgr.store.users.pop(admin['username'], None)
                admin.update(username=source_admin['username'],
                             password_hash=source_admin['password_hash'],
                             api_token_key=source_admin.get('api_token_key'))
                mgr.store.users[admin['username']] = admin
            mgr.mark('admin updated')
        delay = 0.0
        if security is not None:
            mgr.merge_rest_security(security)
            mgr.restart_restservice(REST_RESTART_OUTAGE)
            delay = REST_RESTART_OUTAGE
        if ssl_files:
            mgr.replace_certificates(ssl_files)
            if not no_reboot:
                mgr.reboot(REBOOT_OUTAGE)
                delay = max(delay, REBOOT_OUTAGE)
        self.later(delay, mgr.set_snapshot_flag, False)


def _py2_repr(pairs):
    """How a Python 2.7 mgmtworker formats a list of (deployment, tenant) tuples."""
    return '[{0}]'.format(', '.join("(u'{0}', u'{1}')".format(d, t) for d, t in pairs))


def _map_old_roles(store):
    """behaviour §9 item 7: user->default, admin->sys_admin, tenant roles become 'user'."""
    for user in store.users.values():
        if user['id'] == 0:
            continue
        roles = {'admin': 'sys_admin', 'user': 'default'}
        user['role'] = roles.get(user['role'], user['role'])
        user['tenant_roles'] = {t: 'user' for t in user.get('tenant_roles', {})}
