"""Unit tests of runbooks/fence.py: fencing a 5.x+ old manager after the cut-over (issue 15)."""
import pytest

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.options import NewHostOptions
from cloudify_upgrade_plugin.runbooks import fence
from cloudify_upgrade_plugin.runbooks.restore.command import fence_lines


class FakeOld:
    """An old manager: schedules per tenant, maintenance state, every write recorded."""

    label = 'manager http://old'

    def __init__(self, version, schedules=None, state='deactivated', fail_patch=False):
        self.version = versions.Version.parse(version)
        self.schedules = schedules or {}
        self.state = state
        self.fail_patch = fail_patch
        self.calls = []
        self.bypass = False

    def bypassing_maintenance(self):
        self.bypass = True
        return self

    def list_tenants(self):
        return sorted(self.schedules) or ['default_tenant']

    def list_all(self, resource, tenant=None, include=None, **_):
        assert resource == 'execution-schedules' and self.bypass
        return [dict(s) for s in self.schedules.get(tenant, [])]

    def set_schedule_enabled(self, sid, deployment_id, enabled, tenant=None):
        self.calls.append(('patch', tenant, sid, enabled))
        if self.fail_patch:
            raise UpgradeError('refused', error_id='manager-request-failed')
        for schedule in self.schedules.get(tenant, []):
            if schedule['id'] == sid:
                schedule['enabled'] = enabled

    def maintenance_state(self):
        return self.state

    def activate_maintenance(self):
        self.calls.append(('activate',))
        self.state = 'activated'

    def maintenance(self):
        return {'status': self.state}


class FakeWorkspace:
    def __init__(self):
        self.meta = {}
        self.metas = []
        self.journal = self

    def update_meta(self, **fields):
        self.meta.update(fields)
        self.metas.append(dict(fields))

    def append(self, step, event, details):
        self.appended = (step, event, details)


class Ctx:
    def __init__(self, options, workspace):
        self.options = options
        self.workspace = workspace
        self.source_profile = 'old'


SCHEDULES = {'default_tenant': [{'id': 'nightly', 'deployment_id': 'hw-1',
                                 'workflow_id': 'execute_operation', 'enabled': True}],
             't_prod': [{'id': 'weekly', 'deployment_id': 'db', 'workflow_id': 'backup',
                         'enabled': False}]}


@pytest.fixture
def old(monkeypatch):
    holder = {}

    def open_manager(profile, role):
        assert (profile, role) == ('old', 'old')
        return holder['old']
    monkeypatch.setattr(fence.common, 'open_manager', open_manager)
    return holder


def _schedules():
    return {t: [dict(s) for s in rows] for t, rows in SCHEDULES.items()}


def test_52_records_the_enabled_schedules_before_disabling_them(old):
    old['old'] = manager = FakeOld('5.2.7', _schedules())
    workspace = FakeWorkspace()
    details = fence.fence(Ctx(NewHostOptions(timeout=5), workspace), 'fence-old-manager')
    recorded = [{'tenant': 'default_tenant', 'id': 'nightly', 'deployment_id': 'hw-1',
                 'workflow_id': 'execute_operation'}]
    assert details == {'maintenance': 'activated', 'schedules_disabled': recorded}
    # workspace.json knew the schedule before the first PATCH
    assert workspace.metas[0]['old_manager_fence']['schedules'] == recorded
    assert manager.calls == [('patch', 'default_tenant', 'nightly', False), ('activate',)]
    assert workspace.meta['old_manager_fence']['undo'] == [
        'cfy profiles use old', 'cfy maintenance-mode deactivate',
        'cfy deployments schedule enable hw-1 nightly -t default_tenant']


def test_a_rerun_keeps_the_schedules_an_earlier_attempt_disabled(old):
    schedules = _schedules()
    old['old'] = FakeOld('5.2.7', schedules, fail_patch=True)
    workspace = FakeWorkspace()
    with pytest.raises(UpgradeError) as info:
        fence.fence(Ctx(NewHostOptions(timeout=5), workspace), 'fence-old-manager')
    assert any('--no-fence-old-manager' in hint for hint in info.value.hints)
    schedules['default_tenant'][0]['enabled'] = False     # the PATCH acted, its answer lost
    old['old'] = FakeOld('5.2.7', schedules, state='activated')
    details = fence.fence(Ctx(NewHostOptions(timeout=5), workspace), 'fence-old-manager')
    assert [s['id'] for s in details['schedules_disabled']] == ['nightly']
    # a waiver after a half-done fence still says how to undo what was done
    waived = fence.fence(Ctx(NewHostOptions(no_fence_old_manager=True), workspace),
                         'fence-old-manager')
    assert waived == {'waived': True}
    assert workspace.appended == ('fence-old-manager', 'waived',
                                  {'check': 'fence-old-manager',
                                   'reason': '--no-fence-old-manager'})
    record = workspace.meta['old_manager_fence']
    assert record['waived'] is True and record['undo'][-1].endswith('nightly -t default_tenant')
    lines = fence_lines(record)
    assert lines[0].startswith('The old manager was NOT fenced') and 'nightly' in lines[0]
    assert 'cfy maintenance-mode deactivate' in lines[1]


@pytest.mark.parametrize('version, patches', [('6.4', 0), ('5.1', 0), ('5.2.7', 1)])
def test_only_52x_schedules_are_disabled(old, version, patches):
    old['old'] = manager = FakeOld(version, _schedules())
    fence.fence(Ctx(NewHostOptions(timeout=5), FakeWorkspace()), 'fence-old-manager')
    assert len([c for c in manager.calls if c[0] == 'patch']) == patches
    assert manager.calls[-1] == ('activate',)


def test_already_in_maintenance_is_not_activated_again(old):
    old['old'] = manager = FakeOld('6.4', state='activated')
    details = fence.fence(Ctx(NewHostOptions(timeout=5), FakeWorkspace()), 'fence-old-manager')
    assert details['maintenance'] == 'activated' and manager.calls == []


def test_plan_text_and_who_is_fenced():
    assert fence.needed('5.0.5') and fence.needed('7.0.4') and not fence.needed('4.6')
    assert 'disabling its enabled execution schedules' in fence.plan_text(
        versions.Version.parse('5.2.7'), NewHostOptions(), 'http://old')
    assert 'schedules' not in fence.plan_text(versions.Version.parse('6.4'), NewHostOptions(),
                                              'http://old')
    assert 'NOT fenced' in fence.plan_text(versions.Version.parse('6.4'),
                                           NewHostOptions(no_fence_old_manager=True), 'x')
