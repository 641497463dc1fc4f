"""Execution schedules (5.2+) of the simulated managers: the REST endpoints (list, get, create,
``PATCH`` e.g. ``{"enabled": false}``, delete) and the manager's execution scheduler, which
starts the workflow of every enabled schedule that is due.

The scheduler (MGR@5.2.7 / MGR@6.0.0..7.0.4 execution-scheduler/execution_scheduler/main.py
``check_schedules``, ``should_run``, ``execute_workflow``) runs every 60 manager-seconds
(scaled by the time scale) while the manager's ``cloudify-execution-scheduler`` unit is
active; on 6.0+ it does nothing while maintenance mode is ``activated``, on 5.2.x it fires
anyway (behaviour §12.5).  It reads a simulated clock, ``mgr.scheduler.now()`` =
real UTC + an offset, so a test can move time: ``mgr.scheduler.advance(seconds)`` shifts the
clock and runs one check at once; ``mgr.scheduler.check()`` runs one check; both return the
ids of the executions started.  Each one is also in ``mgr.started_executions(source=
'scheduler')``.

Rules (MGR@5.2.7 / 6.0.0 / 7.0.4 rest/resources_v3_1/execution_schedules.py): GET, PATCH and
DELETE by id take ``?deployment_id=`` and need it from 6.0; PATCH answers 201; a frequency
is ``{"frequency": ...}`` at 5.2.x, ``{"recurrence": ...}`` from 6.0; 5.2.x reads
``deployment_id`` from the create body, 6.0+ from the query.
"""
import calendar
import datetime
import functools
import json
import re
import threading
import uuid

from tests.simulator import api as apimod
from tests.simulator import data as datamod
from tests.simulator.api import ApiError, _bool, bad, route
from tests.simulator.transport import Response
from tests.simulator.workflows import WORK_STEP, WorkflowFailed

UNIT = 'cloudify-execution-scheduler'    # MI@5.2.0 cfy_manager/components/execution_scheduler
INTERVAL = 60.0                          # main.py DEFAULT_INTERVAL (manager-seconds)
_UNITS = {'sec': 'seconds', 'second': 'seconds', 'min': 'minutes', 'minute': 'minutes',
          'h': 'hours', 'hour': 'hours', 'd': 'days', 'day': 'days', 'w': 'weeks',
          'week': 'weeks', 'mo': 'months', 'month': 'months', 'y': 'years', 'year': 'years'}
_RRULE_FREQ = {'SECONDLY': 'seconds', 'MINUTELY': 'minutes', 'HOURLY': 'hours',
               'DAILY': 'days', 'WEEKLY': 'weeks', 'MONTHLY': 'months', 'YEARLY': 'years'}
_WEEKDAYS = ('MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU')
_FORMATS = ('%Y-%m-%dT%H:%M:%S.%f', '%Y-%m-%dT%H:%M:%S', '%Y-%m-%d %H:%M:%S.%f',
            '%Y-%m-%d %H:%M:%S', '%Y-%m-%dT%H:%M', '%Y-%m-%d %H:%M', '%Y-%m-%d')
apimod.MODEL_NAMES['execution_schedules'] = 'ExecutionSchedule'


# ----------------------------------------------------------------------------------------
# time and rules
# ----------------------------------------------------------------------------------------
def parse_time(text):
    """parse_datetime_multiple_formats (MGR@7.0.4 rest_utils.py), UTC, naive."""
    if isinstance(text, datetime.datetime):
        return text.replace(tzinfo=None)
    raw = str(text).strip()
    raw = re.sub(r'(Z|[+-]00:?00)$', '', raw)
    for fmt in _FORMATS:
        try:
            return datetime.datetime.strptime(raw, fmt)
        except ValueError:
            continue
    raise bad('{0} is not a legal time format. accepted formats are YYYY-MM-DD HH:MM | '
              'YYYY-MM-DD HH:MM:SS | ISO 8601'.format(text))


def fmt_time(moment):
    return datamod.ts(moment) if moment is not None else None


def parse_recurrence(expr):
    """MGR@7.0.4 utils.parse_recurrence: '2 weeks' -> (2, 'weeks') or (None, None)."""
    found = re.findall(r"(\d+)\ ?(sec(ond)?|min(ute)?|h(our)?|d(ay)?|w(eek)?|mo(nth)?|"
                       r"y(ear)?)s?$", str(expr or ''))
    if not found:
        return None, None
    return int(found[0][0]), _UNITS[found[0][1]]


def _add(moment, amount, unit):
    if unit in ('months', 'years'):
        months = amount * (12 if unit == 'years' else 1)
        year, month = divmod(moment.month - 1 + months, 12)
        year += moment.year
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        return moment.replace(year=year, month=month + 1, day=day)
    return moment + datetime.timedelta(**{unit: amount})


def _parse_rrule(text):
    """The subset of RFC 5545 the simulator understands: FREQ, INTERVAL, COUNT, BYDAY."""
    fields = {}
    for part in str(text).replace('RRULE:', '').split(';'):
        if '=' in part:
            key, _, value = part.partition('=')
            fields[key.strip().upper()] = value.strip().upper()
    if fields.get('FREQ') not in _RRULE_FREQ:
        raise bad('invalid RRULE string provided: invalid FREQ')
    return {'unit': _RRULE_FREQ[fields['FREQ']], 'interval': int(fields.get('INTERVAL', 1)),
            'count': int(fields['COUNT']) if 'COUNT' in fields else None,
            'weekdays': [d[-2:] for d in fields['BYDAY'].split(',')] if 'BYDAY' in fields
            else None}


def occurrences(schedule, rules):
    """Iterate the schedule's occurrences (MGR@7.0.4 utils.get_rrule: dtstart = since;
    count=1 without a recurrence = once at since)."""
    rule = schedule.get('rule') or {}
    since = parse_time(schedule['since']) if schedule.get('since') else None
    until = parse_time(schedule['until']) if schedule.get('until') else None
    if since is None:
        return
    if rule.get('rrule'):
        spec = _parse_rrule(rule['rrule'])
        amount, unit, count, weekdays = (spec['interval'], spec['unit'], spec['count'],
                                         spec['weekdays'])
    else:
        amount, unit = parse_recurrence(rule.get(rules.schedule_rule_key))
        count, weekdays = rule.get('count'), rule.get('weekdays')
        if unit is None:
            if count == 1:
                if until is None or since <= until:
                    yield since
            return
    produced, step, moment = 0, 0, since
    while step < 200000:
        if until is not None and moment > until:
            return
        if not weekdays or _WEEKDAYS[moment.weekday()] in [w.upper()[:2] for w in weekdays]:
            yield moment
            produced += 1
            if count and produced >= int(count):
                return
        step += 1
        moment = _add(since, amount * step, unit)


def rule_usable(schedule, rules):
    """False when get_rrule returns None for the rule: a frequency under the other
    version's key (a 5.2.x `frequency` schedule restored onto 6.0+, which no migration
    renames: no 'frequency' in cloudify-manager@7.0.4 rest-service/migrations) [I]."""
    rule = schedule.get('rule') or {}
    if rule.get('rrule') or rule.get('count') == 1:
        return True
    return parse_recurrence(rule.get(rules.schedule_rule_key))[1] is not None


def next_occurrence(schedule, rules, after):
    for moment in occurrences(schedule, rules):
        if moment > after:
            return moment
    return None


def all_next(schedule, rules, now, limit=1000):
    """ExecutionSchedule.all_next_occurrences: up to 1000 future occurrences."""
    out = []
    for moment in occurrences(schedule, rules):
        if len(out) >= limit:
            break
        if moment >= now:
            out.append(moment.strftime('%Y-%m-%d %H:%M:%S'))
    return out


def _compute_rule(rules, body, existing=None):
    """compute_rule_from_scheduling_params (MGR@7.0.4 rest_utils.py; 5.2.7 with
    'frequency')."""
    key = rules.schedule_rule_key
    rrule_string = body.get('rrule')
    recurrence = body.get(key)
    weekdays = body.get('weekdays')
    count = body.get('count')
    if rrule_string:
        if recurrence or weekdays or count:
            raise bad('`rrule` cannot be provided together with `{0}`, `weekdays` or '
                      '`count`.'.format(key))
        _parse_rrule(rrule_string)
        return {'rrule': rrule_string}
    if count:
        try:
            count = int(count)
        except (TypeError, ValueError):
            raise bad('invalid parameter, should be int, got: {0}'.format(count))
    if recurrence and parse_recurrence(recurrence)[1] is None:
        raise bad('`{0}` is not a legal {1} expression. Supported format is: <number> '
                  'seconds|minutes|hours|days|weeks|months|years'.format(recurrence, key))
    if weekdays is not None and not isinstance(weekdays, list):
        raise bad('weekdays: expected a list, but got: {0}'.format(weekdays))
    if existing:
        count = count or existing.get('count')
        recurrence = recurrence or existing.get(key)
        weekdays = weekdays or existing.get('weekdays')
    if not recurrence and count != 1:
        raise bad('{0} must be specified for execution count larger than 1'.format(key))
    return {key: recurrence, 'count': count,
            'weekdays': [w.upper() for w in weekdays] if weekdays else None}


# ----------------------------------------------------------------------------------------
# records
# ----------------------------------------------------------------------------------------
def new_schedule(rules, sid, deployment, workflow_id, since, creator, now, rule, until=None,
                 slip=0, parameters=None, execution_arguments=None, stop_on_fail=False,
                 enabled=True, created_at=None):
    rec = {'id': sid, 'deployment_id': deployment['id'], 'workflow_id': workflow_id,
           'created_at': created_at or fmt_time(now), 'since': fmt_time(since),
           'until': fmt_time(until), 'rule': rule, 'slip': slip, 'parameters': parameters,
           'execution_arguments': execution_arguments or {
               'allow_custom_parameters': False, 'force': False, 'dry_run': False,
               'queue': False, 'wait_after_fail': 600},
           'stop_on_fail': stop_on_fail, 'enabled': enabled, 'next_occurrence': None,
           'latest_execution_id': None, 'tenant_name': deployment['tenant_name'],
           'created_by': creator, 'visibility': 'tenant'}
    rec['next_occurrence'] = fmt_time(next_occurrence(rec, rules, now))
    return rec


def seed_demo(seeder, premium, now=None):
    """Demo schedules (5.2+): `nightly-check` on default_tenant's hw-1 (enabled) and, on
    premium, `weekly-backup` on t_prod's prod-db (disabled).  The first occurrence is one
    hour after the manager starts, so nothing fires in a test unless the test moves the
    scheduler's clock (`mgr.scheduler.advance`)."""
    rules, store = seeder.rules, seeder.store
    if not rules.has_execution_schedules:
        return
    now = now or datetime.datetime.utcnow()
    since = now.replace(second=0, microsecond=0) + datetime.timedelta(hours=1)
    key = rules.schedule_rule_key
    specs = [('default_tenant', 'hw-1', 'nightly-check', '1 day', True)]
    if premium:
        specs.append(('t_prod', 'prod-db', 'weekly-backup', '1 week', False))
    for tenant, did, sid, every, enabled in specs:
        found = store.find('deployments', did, [tenant])
        if not found:
            continue
        store.put('execution_schedules', new_schedule(
            rules, sid, found[0], 'execute_operation', since, found[0]['created_by'], now,
            {key: every, 'count': None, 'weekdays': None}, slip=60,
            parameters={'operation': 'cloudify.interfaces.monitoring.check'},
            enabled=enabled, created_at=seeder.tick()))


def _present(api, rec, include):
    rules = api.rules
    latest = None
    if rec.get('latest_execution_id'):
        found = [e for e in api.store.all('executions')
                 if e['id'] == rec['latest_execution_id']]
        latest = found[0]['status'] if found else None
    view = dict(rec, latest_execution_status=latest)
    if include is None or 'all_next_occurrences' in include:
        if not rule_usable(rec, rules):
            # all_next_occurrences iterates get_rrule(...) = None (MGR@7.0.4
            # resource_models.py ExecutionSchedule) [I]
            raise ApiError(500, 'internal_server_error',
                           "Internal error occurred in manager REST server - TypeError: "
                           "'NoneType' object is not iterable",
                           server_traceback='Traceback (most recent call last):\n'
                           "TypeError: 'NoneType' object is not iterable\n")
        view['all_next_occurrences'] = all_next(rec, rules, api.mgr.scheduler.now())
    return datamod.present('execution_schedules', view, rules, include)


def _include(api, ctx):
    raw = ctx.request.arg('_include')
    if not raw:
        return None
    include = raw.split(',')
    fields = api.rules.execution_schedule_fields()
    unknown = [k for k in include if k not in fields]
    if unknown:
        raise ApiError(400, 'no_such_include_field_error',
                       "Include keys '{0}' do not exist. Allowed keys are: {1}".format(
                           unknown, list(fields)))
    return include


class MissingArgument(Exception):
    """flask-restful's RequestParser for a required query argument that is absent."""


def _deployment_arg(api, ctx):
    """6.0+: Argument('deployment_id', required=True): flask-restful answers 400
    {"message": {"deployment_id": "Missing required parameter in the query string"}}
    (flask_restful reqparse Argument.handle_validation_error) [I: no error_code]."""
    did = ctx.request.arg('deployment_id')
    if api.rules.schedule_needs_deployment_id and did is None:
        raise MissingArgument('deployment_id')
    return did


def _missing(name):
    body = {'message': {name: 'Missing required parameter in the query string'}}
    return Response(400, json.dumps(body).encode('utf-8'), content_type='application/json')


def _with_arguments(fn):
    """Answer a MissingArgument raised by `fn` as flask-restful does."""
    @functools.wraps(fn)
    def wrapper(api, ctx, **kwargs):
        try:
            return fn(api, ctx, **kwargs)
        except MissingArgument as e:
            ctx.request.drain()
            return _missing(str(e))
    return wrapper


def _get(api, ctx, sid, did):
    with api.store.lock:
        found = [s for s in api.visible(ctx, api.store.all('execution_schedules'))
                 if s['id'] == sid and (not api.rules.schedule_needs_deployment_id or
                                        s['deployment_id'] == did)]
    if not found:
        suffix = (" (filters: {{'deployment_id': '{0}'}})".format(did)
                  if api.rules.schedule_needs_deployment_id else '')
        raise ApiError(404, 'not_found_error', 'Requested `ExecutionSchedule` with ID `{0}` '
                       'was not found{1}'.format(sid, suffix))
    return found[0]


@route('GET', r'/execution-schedules', when='has_execution_schedules')
def schedules_list(api, ctx):
    return api.resource_list(ctx, 'execution_schedules',
                             presenter=lambda rec, inc: _present(api, rec, inc))


@route('GET', r'/execution-schedules/(?P<sid>[^/]+)', when='has_execution_schedules')
@_with_arguments
def schedule_get(api, ctx, sid):
    include = _include(api, ctx)
    rec = _get(api, ctx, sid, _deployment_arg(api, ctx))
    with api.store.lock:
        return 200, _present(api, rec, include)


@route('PUT', r'/execution-schedules/(?P<sid>[^/]+)', when='has_execution_schedules', write=True)
@_with_arguments
def schedule_create(api, ctx, sid):
    """MGR@5.2.7 / 7.0.4 ExecutionSchedulesId.put."""
    rules, store = api.rules, api.store
    if rules.schedule_needs_deployment_id:
        did = _deployment_arg(api, ctx)
        body = api.json_body(ctx, required=('workflow_id', 'since'))
    else:
        body = api.json_body(ctx, required=('deployment_id', 'workflow_id', 'since', 'slip'))
        did = body['deployment_id']
    parameters = body.get('parameters')
    if parameters is not None and not isinstance(parameters, dict):
        raise bad('parameters: expected a dict, but got: {0}'.format(parameters))
    arguments = body.get('execution_arguments') or {}
    if not isinstance(arguments, dict):
        raise bad('execution_arguments: expected a dict, but got: {0}'.format(arguments))
    execution_arguments = {
        'allow_custom_parameters': _bool('allow_custom_parameters',
                                         arguments.get('allow_custom_parameters', False)),
        'force': _bool('force', arguments.get('force', False)),
        'dry_run': _bool('dry_run', arguments.get('dry_run', False)),
        'queue': _bool('queue', arguments.get('queue', False)),
        'wait_after_fail': arguments.get('wait_after_fail', 600)}
    with store.lock:
        deployment = api.get_one(ctx, 'deployments', did)
        if body['workflow_id'] not in [w['name'] for w in deployment.get('workflows', [])]:
            raise ApiError(400, 'nonexistent_workflow_error',
                           'Workflow {0} does not exist in deployment {1}'.format(
                               body['workflow_id'], did))
        if any(s['id'] == sid and s['deployment_id'] == did and
               s['tenant_name'] == deployment['tenant_name']
               for s in store.all('execution_schedules')):
            raise ApiError(409, 'conflict_error', '<ExecutionSchedule id=`{0}` tenant=`{1}`> '
                           'already exists on <Tenant name=`{1}`> or with global visibility'
                           .format(sid, deployment['tenant_name']))
        rec = new_schedule(
            rules, sid, deployment, body['workflow_id'], parse_time(body['since']),
            ctx.user['username'], api.mgr.scheduler.now(), _compute_rule(rules, body),
            until=parse_time(body['until']) if body.get('until') else None,
            slip=body.get('slip', 0) or 0, parameters=parameters,
            execution_arguments=execution_arguments,
            stop_on_fail=_bool('stop_on_fail', body.get('stop_on_fail', False)),
            enabled=body.get('enabled', True) if rules.schedule_needs_deployment_id
            else True)
        store.put('execution_schedules', rec)
        return 201, _present(api, rec, None)


@route('PATCH', r'/execution-schedules/(?P<sid>[^/]+)', when='has_execution_schedules', write=True)
@_with_arguments
def schedule_patch(api, ctx, sid):
    """ExecutionSchedulesId.patch: 201 with the schedule (MGR@5.2.7 / 7.0.4)."""
    rules = api.rules
    did = _deployment_arg(api, ctx)
    body = api.json_body(ctx)
    with api.store.lock:
        stored = _get(api, ctx, sid, did)
        rec = dict(stored)          # an error leaves the row as it was (rolled back)
        if body.get('since'):
            rec['since'] = fmt_time(parse_time(body['since']))
        if body.get('until'):
            rec['until'] = fmt_time(parse_time(body['until']))
        if body.get('workflow_id') and rules.schedule_needs_deployment_id:
            rec['workflow_id'] = body['workflow_id']
        if body.get('slip') is not None:
            rec['slip'] = body['slip']
        if body.get('stop_on_fail') is not None:
            rec['stop_on_fail'] = _bool('stop_on_fail', body['stop_on_fail'])
        if body.get('enabled') is not None:
            rec['enabled'] = _bool('enabled', body['enabled'])
        rec['rule'] = _compute_rule(rules, body, existing=rec.get('rule'))
        rec['next_occurrence'] = fmt_time(next_occurrence(rec, rules,
                                                          api.mgr.scheduler.now()))
        stored.update(rec)
        return 201, _present(api, stored, None)


@route('DELETE', r'/execution-schedules/(?P<sid>[^/]+)', when='has_execution_schedules', write=True)
@_with_arguments
def schedule_delete(api, ctx, sid):
    did = _deployment_arg(api, ctx)
    with api.store.lock:
        rec = _get(api, ctx, sid, did)
        api.store.delete('execution_schedules', rec)
    return Response(204, b'', content_type='application/json')


# ----------------------------------------------------------------------------------------
# the scheduler
# ----------------------------------------------------------------------------------------
def _refused_by_maintenance(engine, ex, fail_rule):
    """5.2.x fires in maintenance mode, but the workflow's own REST calls carry no bypass
    header and are refused with 503 [I]."""
    yield WORK_STEP
    raise WorkflowFailed('CloudifyClientError: 503: Your request was rejected since '
                         'Cloudify manager is currently in maintenance mode')


class ExecutionScheduler(object):
    """The manager's cloudify-execution-scheduler (see the module docstring)."""

    def __init__(self, mgr):
        self.mgr = mgr
        self.offset = 0.0
        self.fired = []
        self.errors = []
        self._lock = threading.Lock()
        if mgr.rules.has_execution_schedules:
            mgr.units.setdefault(UNIT, True)
            mgr.engine.later(INTERVAL, self._loop)

    def now(self):
        return datetime.datetime.utcnow() + datetime.timedelta(seconds=self.offset)

    def advance(self, seconds):
        """Move the scheduler's clock forward and run one check; the ids started."""
        with self._lock:
            self.offset += float(seconds)
        return self.check()

    def _loop(self):
        mgr = self.mgr
        if mgr.stopped or mgr.torn_down:
            return
        self.check()
        mgr.engine.later(INTERVAL, self._loop)

    def check(self):
        """main.py check_schedules once; the ids of the executions started."""
        mgr = self.mgr
        rules, store = mgr.rules, mgr.store
        if not rules.has_execution_schedules or mgr.stopped or mgr.torn_down or \
                not mgr.unit_active(UNIT):
            return []
        activated = mgr.maintenance_state()['status'] == 'activated'
        if activated and rules.scheduler_skips_in_maintenance:
            return []          # "Maintenance mode activated, schedules won't run"
        started = []
        with self._lock, store.lock:
            now = self.now()
            due = [s for s in store.all('execution_schedules')
                   if s.get('enabled') and s.get('next_occurrence')
                   and parse_time(s['next_occurrence']) < now]
            for schedule in due:
                if not rule_usable(schedule, rules):
                    # compute_next_occurrence: None.after() -> AttributeError ends this
                    # check_schedules pass (main.py) [I]
                    self.errors.append('AttributeError: {0}'.format(schedule['id']))
                    break
                following = next_occurrence(schedule, rules, now)
                if self._should_run(schedule, now):
                    ex = self._execution(schedule)
                    if ex is not None:
                        schedule['latest_execution_id'] = ex['id']
                        started.append((ex, activated))
                schedule['next_occurrence'] = fmt_time(following)
        for ex, in_maintenance in started:
            self.fired.append(ex['id'])
            if in_maintenance:
                mgr.log_execution(ex, 'scheduler')
                mgr.engine.start_execution(ex, lambda e, f: _refused_by_maintenance(
                    mgr.engine, e, f))
            else:
                mgr.run_execution(ex, source='scheduler')
        return [ex['id'] for ex, _ in started]

    def _should_run(self, schedule, now):
        store, rules = self.mgr.store, self.mgr.rules
        latest = None
        if schedule.get('latest_execution_id'):
            found = [e for e in store.all('executions')
                     if e['id'] == schedule['latest_execution_id']]
            latest = found[0]['status'] if found else None
        if latest and latest not in datamod.END_STATES:
            return False
        if schedule.get('stop_on_fail') and latest == 'failed':
            schedule['enabled'] = False
            return False
        late = (now - parse_time(schedule['next_occurrence'])).total_seconds()
        window = (int(schedule.get('slip') or 0) * 60) + 60
        return late <= window if rules.scheduler_slip_inclusive else late < window

    def _execution(self, schedule):
        """execute_workflow: the schedule's workflow on its deployment, by its creator,
        queued when the deployment is busy."""
        store = self.mgr.store
        found = [d for d in store.all('deployments') if d['id'] == schedule['deployment_id']
                 and d['tenant_name'] == schedule['tenant_name']]
        if not found:
            return None
        dep = found[0]
        params = apimod._declared_params(self.mgr.rules, dep, schedule['workflow_id'])
        params.update(schedule.get('parameters') or {})
        ex = datamod.new_execution(str(uuid.uuid4()), schedule['workflow_id'],
                                   dep['tenant_name'], schedule['created_by'], dep['id'],
                                   dep['blueprint_id'], params, is_system=False)
        arguments = schedule.get('execution_arguments') or {}
        ex['allow_custom_parameters'] = bool(arguments.get('allow_custom_parameters'))
        ex['is_dry_run'] = bool(arguments.get('dry_run'))
        busy = [e for e in store.all('executions') if e['status'] in datamod.ACTIVE_STATES
                and e['status'] != 'queued']
        if busy:
            ex['status'] = 'queued'
        store.put('executions', ex)
        return ex
