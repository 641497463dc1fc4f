"""The simulated management worker: a scheduler thread that moves executions through
pending -> started -> terminated/failed/cancelled over (scaled) time, and the workflows it
runs: create_snapshot, restore_snapshot (validator, DB swap, post-restore work per target
version, facts §3.6 / §3.8), install_new_agents (facts §5.3), heal and plain workflows.

Durations are in "manager seconds" and multiplied by the manager's time scale.
"""
import heapq
import itertools
import os
import shutil
import threading
import time

from tests.simulator import archive
from tests.simulator import data as datamod
from tests.simulator.rules import version_tuple

# manager-second durations (README "Time scale")
PENDING_DELAY = 0.3        # pending -> started
WORK_STEP = 1.0            # one step of a workflow
POST_RESTORE_DELAY = 3.0   # the detached post-restore shell sleeps 3 s (facts §3.8)
REST_RESTART_OUTAGE = 3.0  # cloudify-restservice restart (facts §3.8: "a few seconds")
REBOOT_OUTAGE = 15.0       # `shutdown -r now` after a certificate restore (facts §3.8)
POLL = 0.2


class WorkflowFailed(Exception):
    pass


class Scheduler(object):
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


class Engine(object):
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
        while ex['status'] == 'queued':        # facts §3.1: queue from 4.5
            if not self._others_active(ex):
                self._set(ex, status='pending')
                break
            yield POLL
        while not mgr.unit_active('cloudify-mgmtworker') and not ex.get('_cancel'):
            yield POLL                          # no worker: stays pending (obs70 §3.1)
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
        """heal = auto_heal_reinstall_node_subgraph (facts §7.4)."""
        yield WORK_STEP
        if fail_rule is not None:
            raise WorkflowFailed(fail_rule.error)
        nid = (ex.get('parameters') or {}).get('node_instance_id')
        with self.mgr.store.lock:
            for ni in self.mgr.store.find('node_instances', nid, [ex['tenant_name']]):
                ni['version'] = ni.get('version', 1) + 1
        yield WORK_STEP

    def create_snapshot_work(self, ex, fail_rule):
        """facts §3.1: the snapshot row moves creating -> created/failed."""
        mgr = self.mgr
        params = ex.get('parameters') or {}
        sid = params.get('snapshot_id')
        yield WORK_STEP
        snap = mgr.snapshot_record(sid, ex['tenant_name'])
        if fail_rule is not None:
            if snap is not None:
                self._set(snap, status='failed', error=fail_rule.error)
            raise WorkflowFailed(fail_rule.error)
        legacy = params.get('legacy', not mgr.rules.new_format_restore)
        with mgr.store.lock:
            dump = mgr.store.dump()
            agents = [dict(a) for a in mgr.store.all('agents') if a.get('state') == 'started']
        if legacy or not mgr.rules.new_format_restore:
            # MGR@4.2..7.0.4 postgres.py _append_delete_current_execution: the dump deletes
            # the running create_snapshot execution
            dump['resources']['executions'] = [
                e for e in dump['resources']['executions'] if e['id'] != ex['id']]
        archive.build(mgr.snapshot_path(sid), mgr.rules, dump, mgr.root,
                      mgr.rest_security_file(), ex['id'], legacy,
                      include_credentials=params.get('include_credentials', True),
                      agents=agents)
        yield WORK_STEP
        if snap is not None:
            self._set(snap, status='created', error='')

    def install_agents_work(self, ex, fail_rule):
        """facts §5.3: every selected host must be started; the old agent is reached through
        the old broker (validate_amqp), then the new agent is installed."""
        mgr = self.mgr
        params = ex.get('parameters') or {}
        tenant, did = ex['tenant_name'], ex['deployment_id']
        yield WORK_STEP
        with mgr.store.lock:
            hosts = [ni for ni in mgr.store.all('node_instances')
                     if ni['tenant_name'] == tenant and ni['deployment_id'] == did
                     and ni['id'] == ni['host_id']]
            if params.get('node_instance_ids'):
                hosts = [ni for ni in hosts if ni['id'] in params['node_instance_ids']]
            if params.get('node_ids'):
                hosts = [ni for ni in hosts if ni['node_id'] in params['node_ids']]
            not_started = [ni['id'] for ni in hosts if ni['state'] != 'started']
            agents = {a['node_instance_id']: a for a in mgr.store.all('agents')
                      if a['tenant_name'] == tenant and a['deployment'] == did}
        if not_started:
            raise WorkflowFailed('RuntimeError: Node instances {0} are not started'.format(
                ', '.join(not_started)))
        failed = []
        wanted_fail = None
        if fail_rule is not None:
            wanted_fail = set(fail_rule.node_instance_ids or [ni['id'] for ni in hosts])
        for ni in hosts:
            agent = agents.get(ni['id'])
            if agent is None:
                continue
            if wanted_fail is not None and ni['id'] in wanted_fail:
                failed.append('{0}: {1}'.format(ni['id'], fail_rule.error))
                continue
            if not mgr.broker_alive(agent['broker']):
                failed.append('{0}: validate_amqp failed: cannot connect to the old broker '
                              'at {1}:{2}'.format(ni['id'], agent['broker']['ip'],
                                                  agent['broker']['port']))
                continue
            with mgr.store.lock:
                agent['broker'] = {'ip': mgr.broker['ip'], 'port': mgr.broker['port']}
                agent['version'] = mgr.broker['manager_version']
                agent['installs'] = agent.get('installs', 0) + 1
                agent['created_at'] = datamod.ts()
                if params.get('stop_old_agent'):
                    agent['old_agent_stopped'] = True
        with mgr.store.lock:
            key = (tenant, did)
            mgr.store.agent_installs[key] = mgr.store.agent_installs.get(key, 0) + 1
        yield WORK_STEP
        if failed:
            raise WorkflowFailed('install_new_agents failed for: ' + '; '.join(failed))

    def restore_work(self, ex, fail_rule):
        """facts §3.6 (validator), §3.8 (what happens after, per target)."""
        mgr, rules = self.mgr, self.mgr.rules
        params = ex.get('parameters') or {}
        sid = params['snapshot_id']
        mgr.set_snapshot_flag(True)             # facts §2.3 snapshot-status (5.0.5+)
        try:
            yield WORK_STEP
            if fail_rule is not None:
                raise WorkflowFailed(fail_rule.error)
            try:
                arc = archive.read(mgr.snapshot_path(sid))
            except archive.ArchiveError as e:
                raise WorkflowFailed(str(e))
            meta = arc['metadata']
            snap_version = str(meta.get('snapshot_version', '0'))
            sv = version_tuple(snap_version)
            # facts §3.7: 7.0 treats a snapshot as legacy when it has the three schema
            # revisions; facts §3.6 items 3/5: only the 7.0.4 format skips the validator
            # (README: older zips always take the legacy path here)
            new_format = rules.new_format_restore and sv >= (7, 0, 0) and not (
                'schema_revision' in meta and 'composer_schema_revision' in meta
                and 'stage_schema_revision' in meta)
            if arc['data'] is None:
                raise WorkflowFailed('The snapshot holds no manager data')
            caller = params.get('_caller_id')
            force = params.get('force')
            into_tenant = None
            if not new_format:
                self._validate(arc, sv, snap_version, caller, force, ex)
                if sv < (4, 0, 0) and rules.has_tenants:
                    into_tenant = self._tenant_for_3x(ex, params)
            yield WORK_STEP
            self._check_cancel(ex)
            # the DB step: the manager's data becomes the snapshot's (facts §3.8)
            mgr.mark('db restored')
            with mgr.store.lock:
                target_admin = dict(mgr.store.admin())
                keep = [e for e in mgr.store.all('executions') if e is ex]
                mgr.store.load(arc['data'], keep_admin=target_admin,
                               into_tenant=into_tenant, keep=keep)
                if new_format:
                    # MGR@7.0.4 _new_restore_update_execution_status: the snapshot's own
                    # create execution is marked terminated
                    for rec in mgr.store.find('executions', meta.get('execution_id')):
                        rec.update(status='terminated', ended_at=rec.get('ended_at') or
                                   datamod.ts(), error='')
                if into_tenant is None and sv < (4, 2, 0) and rules.roles_42:
                    _map_old_roles(mgr.store)                    # facts §9 item 7
                if rules.delete_snapshot_after_restore:
                    for rec in mgr.store.find('snapshots', sid):
                        mgr.store.delete('snapshots', rec)
            security = self._security_from(arc, sv)
            restart = security is not None and rules.post_restore != 'none'
            if rules.post_restore == 'inside' and restart:
                # 4.6+: rest-security restored and restservice restarted inside the workflow
                mgr.merge_rest_security(security)
                mgr.restart_restservice(REST_RESTART_OUTAGE)
                yield REST_RESTART_OUTAGE
            yield WORK_STEP
        except WorkflowFailed:
            mgr.set_snapshot_flag(False)
            raise
        source_admin = None
        if sv >= (4, 2, 0):
            source_admin = next((u for u in arc['data'].get('users', {}).values()
                                 if u['id'] == 0), None)
        certs = params.get('restore_certificates') and self._certs_ok(arc)

        def after_terminated():
            self.later(POST_RESTORE_DELAY, self._post_restore, source_admin,
                       security if rules.post_restore == 'after_terminated' else None,
                       arc['ssl'] if certs else None, params.get('no_reboot'), sid)
        if rules.delete_snapshot_after_restore:
            shutil.rmtree(os.path.dirname(mgr.snapshot_path(sid)), ignore_errors=True)
        return after_terminated

    def _validate(self, arc, sv, snap_version, caller, force, ex):
        mgr, rules = self.mgr, self.mgr.rules
        if sv > rules.v:
            raise WorkflowFailed(
                "NonRecoverableError: Cannot restore a newer manager's snapshot on this "
                "manager [{0} > {1}]".format(snap_version, rules.reported_version))
        if sv >= (4, 0, 0):
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
            if rules.checks_agent_networks and sv >= (4, 2, 0):
                wanted = {a.get('network', 'default') for a in
                          arc['data'].get('resources', {}).get('agents', [])
                          if a.get('state') == 'started'}
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
        """facts §3.6 item 3: 4.1-4.6 restore a 3.x snapshot into the request's tenant;
        facts §3.5 4.0.x row: premium needs a non-null new tenant_name, community null."""
        rules = self.mgr.rules
        if rules.v >= (4, 1, 0):
            return ex['tenant_name']
        name = params.get('tenant_name')
        if rules.edition == 'premium' and not name:
            raise WorkflowFailed('NonRecoverableError: tenant_name must be given to restore '
                                 'a 3.x snapshot')
        if rules.edition == 'community' and name:
            raise WorkflowFailed('NonRecoverableError: tenant_name must be null on the '
                                 'community edition')
        name = name or 'default_tenant'
        with self.mgr.store.lock:
            if name not in self.mgr.store.tenants:
                self.mgr.store.tenants[name] = datamod.new_tenant(name)
        return name

    def _security_from(self, arc, sv):
        """facts §7.2: 4.2-4.3 snapshots carry hash_salt.json, 4.4+ rest-security.conf."""
        if sv >= (4, 4, 0) and arc['rest_security']:
            return dict(arc['rest_security'])
        if sv >= (4, 2, 0) and arc['hash_salt']:
            return {'hash_salt': arc['hash_salt']}
        return None

    def _certs_ok(self, arc):
        """facts §3.8: 4.0.1-4.1 only restore certificates whose metadata matches."""
        if not arc['ssl']:
            return False
        if self.mgr.rules.cert_restore_needs_matching_metadata:
            mine = self.mgr.read_host_file('etc/cloudify/ssl/certificate_metadata')
            return mine is not None and arc['ssl'].get('certificate_metadata') == mine
        return True

    def _post_restore(self, source_admin, security, ssl_files, no_reboot, sid):
        """The detached post-restore shell (facts §3.8 '4.2 - 4.5.x targets' / '4.6+')."""
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


def _map_old_roles(store):
    """facts §9 item 7: user->default, admin->sys_admin, tenant roles become 'user'."""
    for user in store.users.values():
        if user['id'] == 0:
            continue
        roles = {'admin': 'sys_admin', 'user': 'default'}
        user['role'] = roles.get(user['role'], user['role'])
        user['tenant_roles'] = {t: 'user' for t in user.get('tenant_roles', {})}
