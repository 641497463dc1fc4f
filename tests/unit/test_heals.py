"""Unit tests of verify-heals (cloudify_upgrade_plugin/heals.py) with fake managers.

The fake manager answers `GET /executions` the way the real REST services do per version:
`workflow_id` filter, `_sort=-created_at`, `_size`/`_offset`, `_include` validated
(unknown field -> error, as `no_such_include_field_error`), `_all_tenants` honoured
only from 4.2 (4.0 / 4.1 ignore it on executions), and no tenants on 3.4.2.
"""
import datetime
import json

import pytest
import requests

from cloudify_upgrade_plugin import clock, heals
from cloudify_upgrade_plugin.errors import (
    EXIT_HEALS_FOUND, EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, InputError, UpgradeError)
from cloudify_upgrade_plugin.heals import command as heals_command
from cloudify_upgrade_plugin.options import VerifyHealsOptions

UTC = datetime.timezone.utc
CUTOVER = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
UNTIL = datetime.datetime(2024, 5, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _private_cfy_workdir(cfy_workdir):
    """Profiles are read (same-address check) from a private workdir, never ~."""
    return cfy_workdir


def at(minutes):
    """A manager-style created_at, `minutes` after the cut-over (negative: before)."""
    moment = CUTOVER + datetime.timedelta(minutes=minutes)
    return clock.iso_millis(moment)


class FakeManager:
    """Executions per tenant; answers list_executions like the REST list per version."""

    def __init__(self, version, executions=(), tenants=('default_tenant',),
                 tenants_error=None, unordered=False):
        self.version = version
        self.tenant = 'default_tenant'
        self.tenants = list(tenants)
        self.executions = list(executions)
        self.tenants_error = tenants_error
        self.unordered = unordered
        self.calls = []

    def list_tenants(self):
        if self.tenants_error:
            raise self.tenants_error
        return [{'name': name} for name in self.tenants]

    def list_executions(self, params, tenant):
        self.calls.append((dict(params), tenant))
        allowed = set(heals.include_fields(self.version)) | {'blueprint_id', 'error'}
        fields = params['_include'].split(',')
        unknown = [f for f in fields if f not in allowed]
        if unknown:
            raise UpgradeError('no_such_include_field_error {0}'.format(unknown))
        size = int(params['_size'])
        assert 1 <= size <= 1000
        offset = int(params['_offset'])
        scope = heals.listing_scope(self.version)
        rows = [e for e in self.executions
                if e['workflow_id'] == params.get('workflow_id', e['workflow_id'])]
        if scope == 'per-tenant' or (scope == 'all-tenants'
                                     and params.get('_all_tenants') != 'true'):
            rows = [e for e in rows if e['tenant_name'] == (tenant or self.tenant)]
        if params.get('_sort') == '-created_at' and not self.unordered:
            rows.sort(key=lambda e: e['created_at'], reverse=True)
        page = rows[offset:offset + size]
        items = [{k: v for k, v in e.items() if k in fields} for e in page]
        return {'items': items,
                'metadata': {'pagination': {'total': len(rows), 'size': size,
                                            'offset': offset}}}


def execution(exec_id, minutes, tenant='default_tenant', deployment='dep1',
              node_instance='vm_1', workflow='heal', status='terminated'):
    params = {'node_instance_id': node_instance, 'diagnose_value': 'x'} \
        if workflow == 'heal' else {}
    return {'id': exec_id, 'workflow_id': workflow, 'status': status,
            'deployment_id': deployment, 'created_at': at(minutes),
            'ended_at': at(minutes + 1), 'parameters': params, 'tenant_name': tenant,
            'blueprint_id': 'bp', 'error': ''}


def factory(**managers):
    def make(profile):
        value = managers[profile]
        if isinstance(value, Exception):
            raise value
        return value
    return make


def inputs(**overrides):
    base = {'workspace': None, 'upgrade_id': None, 'mode': None,
            'old_profile': 'old', 'new_profile': 'new', 'since': CUTOVER,
            'until': UNTIL, 'cutover': CUTOVER, 'healing_fenced': False,
            'source_version': None}
    base.update(overrides)
    return base


def probe(word):
    def ssh(profile):
        if isinstance(word, Exception):
            raise word
        return word
    return ssh


# ------------------------------------------------------------------------ times

@pytest.mark.parametrize('text, expected', [
    ('2024-05-01T12:00:00Z', CUTOVER),
    ('2024-05-01T14:00:00+02:00', CUTOVER),
    ('2024-05-01 12:00:00', CUTOVER),
    ('2024-05-01T12:00', CUTOVER),
    ('2024-05-01', datetime.datetime(2024, 5, 1, tzinfo=UTC)),
])
def test_parse_time_accepts_iso_8601(text, expected):
    assert clock.parse_option(text, '--since') == expected


@pytest.mark.parametrize('text', ['yesterday', '2024-13-01', '01/05/2024', ''])
def test_parse_time_rejects_bad_values_with_exit_2(text):
    with pytest.raises(InputError) as info:
        clock.parse_option(text, '--since')
    assert info.value.exit_code == EXIT_USAGE
    assert info.value.error_id == 'bad-time'
    assert '--since' in info.value.message
    assert info.value.hints


def test_parse_manager_timestamps_per_version_formats():
    assert clock.parse('2024-05-01T12:00:00.000Z') == CUTOVER
    # 3.4.2: str(datetime.now()), naive -> taken as UTC
    assert clock.parse('2024-05-01 12:00:00.250000') == \
        CUTOVER + datetime.timedelta(milliseconds=250)
    assert clock.parse(None) is None
    assert clock.parse('garbage') is None


# ----------------------------------------------------------------- version gates

@pytest.mark.parametrize('version, scope, tenant_name, ended_at, riemann', [
    ('3.4.2', 'single', False, False, True),
    ('4.0.1', 'per-tenant', True, False, True),
    ('4.1.0', 'per-tenant', True, False, True),
    ('17.6.30', 'per-tenant', True, False, True),
    ('4.2.0', 'all-tenants', True, False, True),
    ('4.4.0', 'all-tenants', True, True, True),
    ('5.0.5', 'all-tenants', True, True, False),
    ('7.0.4', 'all-tenants', True, True, False),
])
def test_version_gates(version, scope, tenant_name, ended_at, riemann):
    assert heals.listing_scope(version) == scope
    fields = heals.include_fields(version)
    assert ('tenant_name' in fields) is tenant_name
    assert ('ended_at' in fields) is ended_at
    assert {'id', 'status', 'deployment_id', 'created_at', 'parameters'} <= set(fields)
    assert heals.has_riemann(version) is riemann


# ------------------------------------------------------------------------ paging

def _pages(items, size):
    calls = []

    def fetch(offset, page_size):
        calls.append((offset, page_size))
        return {'items': items[offset:offset + page_size],
                'metadata': {'pagination': {'total': len(items)}}}
    return fetch, calls


def test_collect_heals_stops_at_the_first_page_older_than_since():
    # 5,000 heals, newest first, one every minute going back from the end of the window
    items = [{'id': 'h{0}'.format(i), 'created_at': at(1440 - i)} for i in range(5000)]
    fetch, calls = _pages(items, 10)
    kept, pages = heals.collect_heals(fetch, CUTOVER, UNTIL, page_size=10)
    assert [k['id'] for k in kept] == ['h{0}'.format(i) for i in range(1441)]
    assert pages == len(calls) == 145   # 1441 in the window -> 145 pages of 10, not 500
    assert calls[0] == (0, 10) and calls[-1] == (1440, 10)


def test_collect_heals_caps_the_page_size_at_1000():
    fetch, calls = _pages([], 1000)
    heals.collect_heals(fetch, CUTOVER, UNTIL, page_size=5000)
    assert calls == [(0, 1000)]


def test_collect_heals_drops_heals_after_until():
    items = [{'id': 'late', 'created_at': at(3000)}, {'id': 'in', 'created_at': at(5)},
             {'id': 'early', 'created_at': at(-5)}]
    fetch, _ = _pages(items, 10)
    kept, _ = heals.collect_heals(fetch, CUTOVER, UNTIL)
    assert [k['id'] for k in kept] == ['in']


def test_collect_heals_without_until_keeps_heals_from_a_clock_ahead():
    items = [{'id': 'ahead', 'created_at': at(3000)}, {'id': 'in', 'created_at': at(5)}]
    fetch, _ = _pages(items, 10)
    kept, _ = heals.collect_heals(fetch, CUTOVER, None)
    assert [k['id'] for k in kept] == ['ahead', 'in']


def test_resolve_inputs_default_until_does_not_bound_the_listing():
    now = datetime.datetime(2024, 5, 3, tzinfo=UTC)
    result = heals.resolve_inputs(VerifyHealsOptions(), opener(FakeWorkspace(_ws_meta())),
                                  lambda: now)
    assert result['until'] == now and result['until_bound'] is None
    explicit = heals.resolve_inputs(VerifyHealsOptions(until='2024-05-02T12:00:00Z'),
                                    opener(FakeWorkspace(_ws_meta())), lambda: now)
    assert explicit['until_bound'] == UNTIL


def test_collect_heals_pages_to_the_end_when_the_server_did_not_sort():
    items = [{'id': 'old', 'created_at': at(-100)}, {'id': 'a', 'created_at': at(5)},
             {'id': 'b', 'created_at': at(-50)}, {'id': 'c', 'created_at': at(7)},
             {'id': 'd', 'created_at': at(-1)}]
    fetch, calls = _pages(items, 2)
    kept, pages = heals.collect_heals(fetch, CUTOVER, UNTIL, page_size=2)
    assert sorted(k['id'] for k in kept) == ['a', 'c']
    assert pages == 3


def test_collect_heals_keeps_heals_with_an_unreadable_time():
    fetch, _ = _pages([{'id': 'x', 'created_at': None}], 10)
    kept, _ = heals.collect_heals(fetch, CUTOVER, UNTIL)
    assert [k['id'] for k in kept] == ['x']


# ---------------------------------------------------------------- one manager

def _busy_manager(version, tenants):
    executions = []
    for n in range(300):
        tenant = tenants[n % len(tenants)]
        executions.append(execution('run{0}'.format(n), n - 150, tenant=tenant,
                                    workflow='install' if n % 2 else 'uninstall'))
    executions.append(execution('heal-before', -30, tenant=tenants[0]))
    executions.append(execution('heal-t1', 10, tenant=tenants[0], node_instance='vm_a'))
    executions.append(execution('heal-t2', 20, tenant=tenants[-1], node_instance='vm_b',
                                deployment='dep2', status='started'))
    return FakeManager(version, executions, tenants=tenants)


def test_inspect_manager_41_lists_every_tenant_separately():
    tenants = ['default_tenant', 't1', 't2', 't3']
    manager = _busy_manager('4.1.0', tenants)
    report = heals.inspect_manager('old', 'old', factory(old=manager), CUTOVER, UNTIL)
    assert report['reachable'] is True and report['error'] is None
    assert report['scope'] == 'per-tenant'
    assert report['tenants'] == sorted(tenants)
    assert [(h['id'], h['tenant'], h['node_instance_id']) for h in report['heals']] == [
        ('heal-t1', 'default_tenant', 'vm_a'), ('heal-t2', 't3', 'vm_b')]
    assert report['requests'] == len(manager.calls) == 4
    assert sorted(tenant for _, tenant in manager.calls) == sorted(tenants)
    for params, _ in manager.calls:
        assert params['workflow_id'] == 'heal'
        assert params['_sort'] == '-created_at'
        assert '_all_tenants' not in params
        assert 'ended_at' not in params['_include']


def test_inspect_manager_41_one_tenant_refused_is_a_gap_not_a_failure():
    tenants = ['default_tenant', 't1', 't3']
    manager = _busy_manager('4.1.0', tenants)
    listing = manager.list_executions

    def refuse_t1(params, tenant):
        if tenant == 't1':
            raise UpgradeError('forbidden', error_id='manager-forbidden')
        return listing(params, tenant)
    manager.list_executions = refuse_t1
    report = heals.inspect_manager('old', 'old', factory(old=manager), CUTOVER, UNTIL)
    assert report['error'] is None
    assert [h['id'] for h in report['heals']] == ['heal-t1', 'heal-t2']
    assert report['gaps'] == [
        'old manager: tenant t1 could not be listed: [manager-forbidden] forbidden']


def test_inspect_manager_42_uses_one_all_tenants_listing():
    tenants = ['default_tenant', 't1', 't2']
    manager = _busy_manager('4.2.0', tenants)
    report = heals.inspect_manager('new', 'new', factory(new=manager), CUTOVER, UNTIL)
    assert report['scope'] == 'all-tenants'
    assert report['tenants'] is None
    assert [h['id'] for h in report['heals']] == ['heal-t1', 'heal-t2']
    assert len(manager.calls) == 1
    assert manager.calls[0][0]['_all_tenants'] == 'true'


def test_inspect_manager_342_has_no_tenants():
    manager = FakeManager('3.4.2', [execution('h1', 5, tenant=None)])
    report = heals.inspect_manager('old', 'old', factory(old=manager), CUTOVER, UNTIL)
    assert report['scope'] == 'single'
    assert [(h['id'], h['tenant']) for h in report['heals']] == [('h1', None)]
    assert 'tenant_name' not in manager.calls[0][0]['_include']


def test_inspect_manager_unreachable_is_reported_not_raised():
    error = requests.exceptions.ConnectionError('Connection refused')
    report = heals.inspect_manager('old', 'old', factory(old=error), CUTOVER, UNTIL)
    assert report['reachable'] is False
    assert 'Connection refused' in report['error']
    assert report['heals'] == []
    assert report['gaps'] and 'old manager' in report['gaps'][0]


def test_inspect_manager_error_while_listing_is_a_gap():
    manager = FakeManager('4.2.0')
    manager.list_executions = lambda params, tenant: (_ for _ in ()).throw(
        requests.exceptions.ReadTimeout('read timed out'))
    report = heals.inspect_manager('old', 'old', factory(old=manager), CUTOVER, UNTIL)
    assert report['reachable'] is False
    assert 'timed out' in report['error']


def test_inspect_manager_tenant_list_refused_falls_back_to_profile_tenant():
    manager = _busy_manager('4.1.0', ['default_tenant', 't1'])
    manager.tenants_error = UpgradeError('401 unauthorized')
    report = heals.inspect_manager('old', 'old', factory(old=manager), CUTOVER, UNTIL)
    assert report['tenants'] == ['default_tenant']
    assert [h['id'] for h in report['heals']] == ['heal-t1']
    assert any('only tenant default_tenant' in gap for gap in report['gaps'])


# ---------------------------------------------------------------------- analysis

def _heal(exec_id, minutes, tenant='t1', deployment='dep1', node_instance='vm_1'):
    return heals.normalise_heal(execution(exec_id, minutes, tenant, deployment,
                                          node_instance))


def test_analyse_old_heal_after_cutover_alone_is_suspicious():
    findings = heals.analyse([_heal('o1', 5)], [], CUTOVER, 'new')
    assert len(findings) == 1
    finding = findings[0]
    assert {k: finding[k] for k in ('tenant', 'deployment_id', 'node_instance_id',
                                    'old_execution_id', 'new_execution_id')} == {
        'tenant': 't1', 'deployment_id': 'dep1', 'node_instance_id': 'vm_1',
        'old_execution_id': 'o1', 'new_execution_id': None}
    assert any('cfy node-instances get vm_1 -t t1' in c for c in finding['check'])
    assert any('VM list' in c for c in finding['check'])


def test_analyse_same_node_instance_on_both_is_a_duplicate():
    findings = heals.analyse([_heal('o1', 5)], [_heal('n1', 7), _heal('n2', 7, 't2')],
                             CUTOVER)
    assert [(f['old_execution_id'], f['new_execution_id']) for f in findings] == [
        ('o1', 'n1')]


def test_analyse_old_heal_before_cutover_counts_only_with_a_new_twin():
    before = _heal('o0', -60)
    assert heals.analyse([before], [], CUTOVER) == []
    findings = heals.analyse([before], [_heal('n1', 3)], CUTOVER)
    assert [(f['old_execution_id'], f['new_execution_id'], f['reason']) for f in findings] \
        == [('o0', 'n1', 'healed on both managers in the window')]


def test_analyse_new_manager_heals_alone_are_not_suspicious():
    assert heals.analyse([], [_heal('n1', 3), _heal('n2', 4)], CUTOVER) == []


def test_analyse_3x_heal_without_tenant_matches_any_tenant():
    old = _heal('o1', 5, tenant=None)
    findings = heals.analyse([old], [_heal('n1', 6, tenant='default_tenant')], CUTOVER)
    assert [(f['tenant'], f['new_execution_id']) for f in findings] == [
        ('default_tenant', 'n1')]


def test_analyse_heal_without_node_instance_says_to_check_the_deployment():
    findings = heals.analyse([_heal('o1', 5, node_instance=None)], [], CUTOVER)
    assert findings[0]['node_instance_id'] is None
    assert 'cfy node-instances list -d dep1 -t t1' in findings[0]['check'][0]


# ------------------------------------------------------------------- healing

def test_healing_state_5x_has_no_riemann():
    def never(profile):
        raise AssertionError('no SSH for 5.x')
    state = heals.healing_state('old', '5.0.5', False, never)
    assert state['state'] == 'not-applicable' and state['active'] is False


@pytest.mark.parametrize('word, state, active', [
    ('active\n', 'active', True), ('inactive', 'inactive', False),
    ('failed', 'inactive', False), ('unknown', 'inactive', False)])
def test_healing_state_over_ssh(word, state, active):
    result = heals.healing_state('old', '4.1.0', False, probe(word))
    assert (result['state'], result['active']) == (state, active)
    assert 'cloudify-riemann' in result['reason']


def test_healing_state_without_ssh_settings_is_unknown_with_reason():
    error = UpgradeError('The profile old has no ssh_user and no ssh_key',
                         error_id='ssh-not-configured')
    result = heals.healing_state('old', '4.1.0', True, probe(error))
    assert result['state'] == 'unknown' and result['active'] is None
    assert 'has no ssh_user and no ssh_key' in result['reason']
    assert 'healing_fenced' in result['reason']


# ------------------------------------------------------------------------ inputs

class FakeWorkspace(object):
    def __init__(self, meta):
        self.meta = meta


def opener(workspace):
    def open_(upgrade_id, required):
        return workspace
    return open_


def _ws_meta(**extra):
    meta = {'upgrade_id': 'up1', 'mode': 'new-host',
            'source': {'profile': 'old', 'version': '4.1.0'},
            'target': {'profile': 'new', 'version': '7.0.4'},
            'cutover_at': '2024-05-01T12:00:00Z', 'healing_fenced': True}
    meta.update(extra)
    return meta


def test_resolve_inputs_from_workspace():
    now = datetime.datetime(2024, 5, 3, tzinfo=UTC)
    result = heals.resolve_inputs(VerifyHealsOptions(), opener(FakeWorkspace(_ws_meta())),
                                  lambda: now)
    assert (result['old_profile'], result['new_profile']) == ('old', 'new')
    assert result['since'] == result['cutover'] == CUTOVER
    assert result['until'] == now
    assert result['healing_fenced'] is True
    assert result['upgrade_id'] == 'up1'


def test_resolve_inputs_explicit_needs_no_workspace():
    def no_workspace(upgrade_id, required):
        raise AssertionError('explicit options must not open a workspace')
    result = heals.resolve_inputs(
        VerifyHealsOptions(old_profile='a', new_profile='b', since='2024-05-01T12:00:00Z',
                           until='2024-05-02T12:00:00Z'), no_workspace)
    assert result['workspace'] is None
    assert (result['since'], result['until']) == (CUTOVER, UNTIL)


def test_resolve_inputs_without_cutover_needs_since():
    meta = _ws_meta()
    del meta['cutover_at']
    with pytest.raises(InputError) as info:
        heals.resolve_inputs(VerifyHealsOptions(), opener(FakeWorkspace(meta)))
    assert info.value.exit_code == EXIT_USAGE
    assert '--since' in info.value.message


def test_resolve_inputs_without_anything_says_what_to_give():
    with pytest.raises(InputError) as info:
        heals.resolve_inputs(VerifyHealsOptions(), opener(None))
    assert '--since' in info.value.message and '--new-profile' in info.value.message


def test_resolve_inputs_rejects_an_empty_window():
    with pytest.raises(InputError) as info:
        heals.resolve_inputs(VerifyHealsOptions(old_profile='a', new_profile='b',
                                                since='2024-05-02', until='2024-05-01'),
                             opener(None))
    assert info.value.error_id == 'bad-window'


def test_resolve_inputs_in_place_needs_no_old_profile():
    meta = _ws_meta(mode='in-place')
    meta['source'] = {'version': '4.1.0'}
    result = heals.resolve_inputs(VerifyHealsOptions(), opener(FakeWorkspace(meta)))
    assert result['old_profile'] is None and result['mode'] == 'in-place'


# ------------------------------------------------------------------ verify / run

def _managers():
    old = _busy_manager('4.1.0', ['default_tenant', 't1', 't3'])
    new = FakeManager('7.0.4', [execution('new-heal', 15, tenant='t3', deployment='dep2',
                                          node_instance='vm_b')],
                      tenants=['default_tenant', 't1', 't3'])
    return old, new


def test_verify_reports_old_heals_after_cutover_and_duplicates():
    old, new = _managers()
    doc = heals.verify(inputs(), factory(old=old, new=new), probe('active'))
    assert doc['ok'] is False and doc['complete'] is True
    assert [(f['old_execution_id'], f['new_execution_id'], f['node_instance_id'])
            for f in doc['suspected_duplicates']] == [
        ('heal-t1', None, 'vm_a'), ('heal-t2', 'new-heal', 'vm_b')]
    assert doc['healing_active'] is True
    assert doc['old_manager']['healing']['state'] == 'active'
    assert [h['id'] for h in doc['old_manager']['heals']] == ['heal-t1', 'heal-t2']
    assert [h['id'] for h in doc['new_manager']['heals']] == ['new-heal']
    json.dumps(doc)   # the document is plain JSON


def test_verify_old_unreachable_still_analyses_the_new_manager():
    _, new = _managers()
    error = requests.exceptions.ConnectionError('refused')
    doc = heals.verify(inputs(), factory(old=error, new=new), probe(error))
    assert doc['old_manager']['reachable'] is False
    assert 'refused' in doc['old_manager']['error']
    assert [h['id'] for h in doc['new_manager']['heals']] == ['new-heal']
    assert doc['suspected_duplicates'] == []
    assert doc['ok'] is True and doc['complete'] is False
    assert any('could not be checked' in gap for gap in doc['gaps'])
    assert doc['old_manager']['healing']['state'] == 'unknown'


def test_verify_both_unreachable_is_incomplete_not_an_error():
    error = requests.exceptions.ConnectionError('refused')
    doc = heals.verify(inputs(), factory(old=error, new=error), probe('inactive'))
    assert doc['complete'] is False and doc['ok'] is True
    assert [(n['manager'], n['tenant']) for n in doc['not_checked']] == [
        ('old', None), ('new', None)]
    assert all('refused' in n['reason'] for n in doc['not_checked'])


def test_verify_lists_every_old_execution_and_reports_the_old_manager_acting():
    old, new = _managers()
    doc = heals.verify(inputs(), factory(old=old, new=new), probe('inactive'))
    # the old manager: every execution (no workflow filter); the new one: heals only
    assert all('workflow_id' not in params for params, _ in old.calls)
    assert all(params['workflow_id'] == 'heal' for params, _ in new.calls)
    acted = doc['acted_after_cutover']
    expected = sorted(e['id'] for e in old.executions
                      if e['workflow_id'] != 'heal' and e['created_at'] >= at(0))
    assert expected and sorted(e['id'] for e in acted) == expected
    assert {e['workflow_id'] for e in acted} == {'install', 'uninstall'}
    assert all(e['reason'] == 'the old manager acted after the cut-over' for e in acted)
    # heals are still the findings (possible duplicates), never listed as "acted"
    assert not any(e['workflow_id'] == 'heal' for e in acted)
    assert [f['old_execution_id'] for f in doc['suspected_duplicates']] == [
        'heal-t1', 'heal-t2']


def test_verify_other_workflow_after_cutover_alone_is_suspicious():
    old = FakeManager('5.2.7', [execution('sched-1', 3, workflow='execute_operation'),
                                execution('before', -3, workflow='install')])
    new = FakeManager('7.0.4')
    doc = heals.verify(inputs(since=CUTOVER - datetime.timedelta(minutes=10)),
                       factory(old=old, new=new), probe('x'))
    assert [e['id'] for e in doc['acted_after_cutover']] == ['sched-1']
    assert doc['suspected_duplicates'] == [] and doc['ok'] is False
    assert doc['complete'] is True


def _maintenance_error():
    return UpgradeError('manager answered 503: Your request was rejected since Cloudify '
                        'manager is currently in maintenance mode',
                        error_id='manager-request-failed',
                        details={'status_code': 503, 'error_code': 'maintenance_mode_active'})


@pytest.mark.parametrize('version, says', [('5.1.0', 'before 5.2'),
                                           ('5.2.7', 'not an admin')])
def test_old_manager_in_maintenance_is_not_checked_with_the_reason(version, says):
    old = FakeManager(version)
    old.list_executions = lambda params, tenant: (_ for _ in ()).throw(_maintenance_error())
    new = FakeManager('7.0.4')
    doc = heals.verify(inputs(), factory(old=old, new=new), probe('x'))
    assert doc['complete'] is False and doc['ok'] is True
    [item] = doc['not_checked']
    assert item['manager'] == 'old' and item['tenant'] is None
    assert 'maintenance mode' in item['reason'] and says in item['reason']


def test_a_tenant_that_cannot_be_listed_is_not_checked():
    manager = _busy_manager('4.1.0', ['default_tenant', 't1'])
    listing = manager.list_executions

    def refuse_t1(params, tenant):
        if tenant == 't1':
            raise UpgradeError('forbidden', error_id='manager-forbidden')
        return listing(params, tenant)
    manager.list_executions = refuse_t1
    doc = heals.verify(inputs(), factory(old=manager, new=FakeManager('7.0.4')),
                       probe('inactive'))
    assert doc['not_checked'] == [{'manager': 'old', 'tenant': 't1',
                                   'reason': '[manager-forbidden] forbidden'}]
    assert doc['complete'] is False


def test_verify_in_place_does_not_query_the_old_address():
    _, new = _managers()

    def make(profile):
        assert profile == 'new'
        return new
    doc = heals.verify(inputs(mode='in-place', old_profile=None), make, probe('x'))
    assert doc['old_manager']['reachable'] is False
    assert 'in-place' in doc['old_manager']['error']
    assert doc['ok'] is True


def _real_workspace(**meta):
    from cloudify_upgrade_plugin.engine.workspace import Workspace
    document = _ws_meta(**meta)
    document.pop('upgrade_id')
    mode = document.pop('mode')
    return Workspace.create('up1', mode=mode, **document)


def test_run_exits_4_and_journals_into_the_workspace(monkeypatch, capsys):
    old, new = _managers()
    workspace = _real_workspace()
    monkeypatch.setattr(heals_command, 'json_mode', lambda: True)
    outcome = heals.run(VerifyHealsOptions(), factory(old=old, new=new), probe('inactive'),
                        clock=lambda: UNTIL)
    assert outcome.exit_code == EXIT_HEALS_FOUND
    document = json.loads(capsys.readouterr().out)   # exactly one JSON document
    assert {'since', 'until', 'old_manager', 'new_manager', 'suspected_duplicates',
            'ok'} <= set(document)
    assert document['ok'] is False and document['upgrade_id'] == 'up1'
    for entry in document['suspected_duplicates']:
        assert {'tenant', 'deployment_id', 'node_instance_id', 'old_execution_id',
                'new_execution_id'} <= set(entry)
    entries = workspace.journal.entries()
    # something suspicious: the step did not succeed (status shows it)
    assert [(e['step'], e['event']) for e in entries] == [
        ('verify-heals', 'started'), ('verify-heals', 'failed')]
    assert entries[1]['details']['suspected_duplicates'] == 2
    assert entries[1]['details']['error_id'] == 'heals-suspicious'
    report = workspace.read_json('report.json')
    assert [f['old_execution_id'] for f in report['verify_heals']['suspected_duplicates']] \
        == ['heal-t1', 'heal-t2']
    assert sum(item.startswith('verify-heals: heal ') for item in report['left_to_do']) == 2
    with open(workspace.path('report.md')) as stream:
        assert 'heal-t2' in stream.read()


def test_run_twice_replaces_its_report_items(monkeypatch, capsys):
    old, new = _managers()
    workspace = _real_workspace()
    monkeypatch.setattr(heals_command, 'json_mode', lambda: True)
    for _ in range(2):
        outcome = heals.run(VerifyHealsOptions(upgrade_id='up1'), factory(old=old, new=new),
                            probe('inactive'), clock=lambda: UNTIL)
        assert outcome.exit_code == EXIT_HEALS_FOUND
    report = workspace.read_json('report.json')
    assert sum(item.startswith('verify-heals: heal ') for item in report['left_to_do']) == 2
    assert len(workspace.journal.entries()) == 4


def test_run_on_a_locked_workspace_still_reports(monkeypatch, capsys):
    old, new = _managers()
    workspace = _real_workspace()
    monkeypatch.setattr(heals_command, 'json_mode', lambda: True)
    with workspace.lock():
        outcome = heals.run(VerifyHealsOptions(), factory(old=old, new=new),
                            probe('inactive'), clock=lambda: UNTIL)
    assert outcome.exit_code == EXIT_HEALS_FOUND
    assert json.loads(capsys.readouterr().out)['ok'] is False
    assert workspace.journal.entries() == []


def test_run_clean_returns_the_document_and_prints_tables(monkeypatch, capsys):
    old = FakeManager('4.1.0', [execution('inst', -5, workflow='install')])
    new = FakeManager('7.0.4')
    monkeypatch.setattr(heals_command, 'json_mode', lambda: False)
    outcome = heals.run(VerifyHealsOptions(old_profile='old', new_profile='new',
                                           since='2024-05-01T12:00:00Z'),
                        factory(old=old, new=new), probe('inactive'), opener(None),
                        clock=lambda: UNTIL)
    document = outcome.document
    assert outcome.exit_code == EXIT_OK and document['ok'] is True
    assert document['suspected_duplicates'] == []
    out = capsys.readouterr().out
    assert 'Old manager (old, 4.1.0): 0 heal(s)' in out


def _profile(name, ip, port):
    from cloudify_cli import env
    env.ProfileContext({'manager_ip': ip, 'rest_port': port}, profile_name=name).save()


def test_same_address_profiles_are_not_queried_as_two_managers():
    _profile('before', '10.0.0.5', 80)
    _profile('after', '10.0.0.5', 80)
    _profile('elsewhere', '10.0.0.6', 80)
    _, new = _managers()
    asked = []

    def make(profile):
        asked.append(profile)
        return new
    doc = heals.verify(inputs(old_profile='before', new_profile='after'), make, probe('x'))
    assert asked == ['after']
    assert 'same address' in doc['old_manager']['error']
    assert doc['suspected_duplicates'] == []
    asked.clear()
    old, _ = _managers()
    heals.verify(inputs(old_profile='elsewhere', new_profile='after'),
                 lambda p: asked.append(p) or (old if p == 'elsewhere' else new),
                 probe('inactive'))
    assert asked == ['elsewhere', 'after']


def test_run_journals_a_run_that_could_check_nothing():
    workspace = _real_workspace()
    error = requests.exceptions.ConnectionError('refused')
    outcome = heals.run(VerifyHealsOptions(), factory(old=error, new=error), probe(error),
                        clock=lambda: UNTIL)
    assert outcome.exit_code == EXIT_INCOMPLETE
    assert [(e['event'], e['details'].get('error_id')) for e in workspace.journal.entries()] \
        == [('started', None), ('failed', 'heals-incomplete')]
    assert workspace.read_json('report.json')['verify_heals']['complete'] is False


def _statuses(workspace):
    from cloudify_upgrade_plugin.engine.summary import summarize
    summary = summarize(workspace)
    row = next(r for r in summary['steps'] if r['id'] == 'verify-heals')
    return row['status'], row.get('error_id'), summary['next']


def test_an_incomplete_run_never_hides_an_earlier_suspicious_one(monkeypatch, capsys):
    old, new = _managers()
    workspace = _real_workspace()
    monkeypatch.setattr(heals_command, 'json_mode', lambda: True)
    run = heals.run(VerifyHealsOptions(), factory(old=old, new=new), probe('inactive'),
                    clock=lambda: UNTIL)
    assert run.exit_code == EXIT_HEALS_FOUND
    first = workspace.journal.entries()[-1]
    # the old manager is gone now: this run cannot check it
    down = requests.exceptions.ConnectionError('refused')
    run = heals.run(VerifyHealsOptions(), factory(old=down, new=new), probe(down),
                    clock=lambda: UNTIL)
    assert run.exit_code == EXIT_INCOMPLETE
    assert run.document['earlier_result'] == {'at': first['ts'],
                                              'error_id': 'heals-suspicious'}
    last = workspace.journal.entries()[-1]
    assert last['event'] == 'failed' and last['details']['error_id'] == 'heals-suspicious'
    assert last['details']['carried_from'] == first['ts']
    assert _statuses(workspace)[:2] == ('failed', 'heals-suspicious')
    report = workspace.read_json('report.json')
    assert any('stands' in item for item in report['left_to_do'])
    # and again: still carried from the first run
    heals.run(VerifyHealsOptions(), factory(old=down, new=new), probe(down),
              clock=lambda: UNTIL)
    assert workspace.journal.entries()[-1]['details']['carried_from'] == first['ts']
    # a complete, clean run replaces it
    clean_old = FakeManager('4.1.0', [execution('inst', -5, workflow='install')])
    run = heals.run(VerifyHealsOptions(), factory(old=clean_old, new=FakeManager('7.0.4')),
                    probe('inactive'), clock=lambda: UNTIL)
    assert run.exit_code == EXIT_OK
    assert _statuses(workspace)[:2] == ('succeeded', None)


def test_an_incomplete_run_after_a_clean_one_is_not_succeeded(monkeypatch, capsys):
    workspace = _real_workspace()
    monkeypatch.setattr(heals_command, 'json_mode', lambda: True)
    clean_old = FakeManager('4.1.0')
    assert heals.run(VerifyHealsOptions(), factory(old=clean_old, new=FakeManager('7.0.4')),
                     probe('inactive'), clock=lambda: UNTIL).exit_code == EXIT_OK
    assert _statuses(workspace)[0] == 'succeeded'
    down = requests.exceptions.ConnectionError('refused')
    run = heals.run(VerifyHealsOptions(), factory(old=down, new=FakeManager('7.0.4')),
                    probe(down), clock=lambda: UNTIL)
    assert run.exit_code == EXIT_INCOMPLETE and run.document['earlier_result'] is None
    assert _statuses(workspace)[:2] == ('failed', 'heals-incomplete')
