"""Moving to 7.0 as real managers behave (issue 14): the restore route, through the real `cfy`.

A 7.0 target picks its restore route from the snapshot's metadata.json (behaviour §12.1): the
simulated 7.0 does so (tests/simulator README "Snapshot formats and the 7.0 restore route").
Every test here ends either with the target holding the source's data (reconcile passes, and
the simulators' data compared directly) or with exit 3 before any upload: none may see a
restore that restored nothing.
"""
import hashlib
import json
import os
import zipfile

from tests import flows
from tests.flows import data_view

REVISIONS = ('schema_revision', 'composer_schema_revision', 'stage_schema_revision')


def _assert_reconciled(document):
    """The target holds the source's data: no difference and nothing needing attention."""
    found = document['reconciliation']
    assert (found['ok'], found['differences'], found['attention']) == (True, [], []), found


def _sha256(path):
    with open(path, 'rb') as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def _metadata(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read('metadata.json'))


def _assert_nothing_uploaded(sim):
    assert flows.upload_requests(sim) == []
    assert sim.requests.matching('POST', '/restore') == []
    assert flows.restore_executions(sim) == []


def _assert_copy_restored(flow, sim, added):
    """The route copy was made beside the untouched original, verified, uploaded and
    restored under its own id, on the legacy route."""
    meta = flow.meta()
    snapshot = meta['snapshot']
    copy = meta['restore_route']['copy']
    assert meta['restore_route']['action'] == 'copy'
    assert copy['id'] == snapshot['id'] + '-route' and copy['added'] == added
    original = os.path.join(flow.workspace(), snapshot['path'])
    copied = os.path.join(flow.workspace(), copy['path'])
    assert _sha256(original) == snapshot['sha256']            # the original is untouched
    assert _sha256(copied) == copy['sha256']
    with open(copied + '.sha256') as stream:
        assert stream.read().split()[0] == copy['sha256']
    old_meta, new_meta = _metadata(original), _metadata(copied)
    assert new_meta == dict(old_meta, **added)
    assert all(key in new_meta for key in REVISIONS)
    # uploaded and restored: the copy, under its own id
    [restore] = flows.restore_executions(sim)
    assert restore['parameters']['snapshot_id'] == copy['id']
    assert [r['path'].split('/')[-2] for r in flows.upload_requests(sim)
            if r['status'] == 201] == [copy['id']]
    assert 'restore route legacy' in sim.events()
    assert flow.last_entry('route-copy', 'succeeded')['details']['sha256'] == copy['sha256']


def _prepare(flow, make_profile, old, mode='new-host'):
    make_profile('old', old)
    flow.prepare('--from-profile', 'old', '--mode', mode, '--json')


# -- community 5.1 ----------------------------------------------------------------------

def test_community_51_to_community_704_new_host_restores_a_route_copy(
        flow, simulated_manager, make_profile):
    old = simulated_manager('5.1', edition='community', data='demo', ssh=True)
    new = simulated_manager('7.0', edition='community', data='empty', ssh=True)
    make_profile('new', new)
    _prepare(flow, make_profile, old)
    assert flow.meta()['snapshot']['revisions'] == ['schema_revision']
    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes')
    assert result.returncode == 0, result
    _assert_reconciled(result.json)
    _assert_copy_restored(flow, new, {'stage_schema_revision': '',
                                      'composer_schema_revision': ''})
    assert data_view(new) == data_view(old)
    # the copy took the legacy route, which gives the admin the old password (behaviour
    # §3.8): decided from the copy's metadata, and followed into the profile
    assert flow.meta()['restore_installs_source_admin'] is True
    assert flows.can_login(new, 'admin', old.admin_password)
    assert flow.read_profile('new')['manager_password'] == old.admin_password
    checks = {c['id']: c for c in flow.meta()['target_checks']}
    assert checks['target-restore-route']['status'] == 'pass'
    assert checks['target-licence']['status'] == 'pass'          # community: no gate


def test_community_51_to_community_704_in_place(flow, simulated_manager, make_profile,
                                                tmp_path):
    old = simulated_manager('5.1', edition='community', data='demo', ssh=True,
                            state_dir=str(tmp_path / 'machine'))
    source_view = data_view(old)
    _prepare(flow, make_profile, old, 'in-place')
    # installed with the old admin password: a >= 4.2 snapshot gives the admin the old
    # one (behaviour §3.8), and the profile keeps working (how other passwords are followed is
    # issue 14 item 3)
    new = old.reinstall('7.0', admin_password=old.admin_password)
    assert new.rules.edition == 'community'
    result = flow.upgrade('in-place', '--yes')
    assert result.returncode == 0, result
    _assert_reconciled(result.json)
    _assert_copy_restored(flow, new, {'stage_schema_revision': '',
                                      'composer_schema_revision': ''})
    assert data_view(new) == source_view


def test_community_51_to_premium_704_is_blocked_before_any_upload(
        flow, simulated_manager, make_profile):
    old = simulated_manager('5.1', edition='community', data='demo', ssh=True)
    new = simulated_manager('7.0', data='empty', ssh=True)
    make_profile('new', new)
    _prepare(flow, make_profile, old)
    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes')
    assert result.returncode == 3, result
    checks = {c['id']: c for c in result.json['checks']}
    route = checks['target-restore-route']
    assert route['status'] == 'fail' and route['not_waivable']
    assert 'community 7.0.4 manager' in route['message']
    assert 'target-restore-route' in result.json['error']['message']
    # the hint offers no waiver of a check that cannot be waived
    assert not any('--waive target-restore-route' in h for h in result.json['error']['hints'])
    # waiving it is bad input, before anything changes
    waived = flow.upgrade('new-host', '--to-profile', 'new', '--yes', '--waive',
                          'target-restore-route', '--reason', 'try anyway')
    assert waived.returncode == 2, waived
    assert waived.json['error']['id'] == 'waiver-not-allowed'
    _assert_nothing_uploaded(new)
    assert not [n for n in os.listdir(os.path.join(flow.workspace(), 'snapshot'))
                if 'route' in n]


def test_community_70_legacy_snapshot_to_community_704(
        flow, simulated_manager, make_profile):
    """A 7.0 community source: its `legacy: true` snapshot has no UI revisions either
    (behaviour §12.1), so a community 7.0 target restores the route copy."""
    old = simulated_manager('7.0', edition='community', data='demo', ssh=True)
    new = simulated_manager('7.0', edition='community', data='empty', ssh=True)
    make_profile('new', new)
    _prepare(flow, make_profile, old)
    assert flow.meta()['snapshot']['revisions'] == ['schema_revision']
    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes')
    assert result.returncode == 0, result
    _assert_reconciled(result.json)
    _assert_copy_restored(flow, new, {'stage_schema_revision': '',
                                      'composer_schema_revision': ''})
    assert data_view(new) == data_view(old)


# -- premium 4.0.1 with update-3 ----------------------------------------------------------

def test_premium_401_update3_to_premium_704_new_host(flow, simulated_manager,
                                                     make_profile):
    old = simulated_manager('4.0.1+update3', data='demo', ssh=True)
    new = simulated_manager('7.0', data='empty', ssh=True)
    make_profile('new', new)
    _prepare(flow, make_profile, old)
    assert flow.meta()['snapshot']['revisions'] == ['schema_revision',
                                                    'stage_schema_revision']
    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes', '--users',
                          'rest-security')
    assert result.returncode == 0, result
    _assert_reconciled(result.json)
    _assert_copy_restored(flow, new, {'composer_schema_revision': ''})
    assert data_view(new) == data_view(old)


def test_premium_401_update3_to_premium_704_in_place(
        flow, simulated_manager, make_profile, run_cfy, tmp_path):
    old = simulated_manager('4.0.1+update3', data='demo', ssh=True,
                            state_dir=str(tmp_path / 'machine'))
    source_view = data_view(old)
    _prepare(flow, make_profile, old, 'in-place')
    new = old.reinstall('7.0')
    assert run_cfy('profiles', 'set', '-p', new.admin_password,
                   '--skip-credentials-validation').returncode == 0
    result = flow.upgrade('in-place', '--yes')
    assert result.returncode == 0, result
    _assert_reconciled(result.json)
    _assert_copy_restored(flow, new, {'composer_schema_revision': ''})
    assert data_view(new) == source_view


def test_premium_401_update3_with_tenants_to_community_704_is_blocked(
        flow, simulated_manager, make_profile):
    """Item 5: a premium source whose tenants and users a community target cannot hold."""
    old = simulated_manager('4.0.1+update3', data='demo', ssh=True)
    new = simulated_manager('7.0', edition='community', data='empty', ssh=True)
    make_profile('new', new)
    _prepare(flow, make_profile, old)
    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes', '--users',
                          'rest-security')
    assert result.returncode == 3, result
    edition = {c['id']: c for c in result.json['checks']}['target-edition']
    assert edition['status'] == 'fail'
    lost = edition['details']['would_lose']
    assert lost['tenants'] == ['t_prod'] and sorted(lost['users']) == ['alice', 'bob']
    assert 't_prod' in edition['message'] and 'alice' in edition['message']
    _assert_nothing_uploaded(new)


def test_premium_401_update3_default_tenant_only_to_community_704(
        flow, simulated_manager, make_profile):
    """A premium source holding only what a community target keeps: a route copy
    (stage and composer are skipped on a community target) restores it."""
    old = simulated_manager('4.0.1+update3', data='empty', ssh=True)
    new = simulated_manager('7.0', edition='community', data='empty', ssh=True)
    make_profile('new', new)
    _prepare(flow, make_profile, old)
    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes')
    assert result.returncode == 0, result
    assert {c['id']: c['status'] for c in flow.meta()['target_checks']}[
        'target-edition'] == 'pass'
    _assert_copy_restored(flow, new, {'composer_schema_revision': ''})


# -- a distributed (Kubernetes) 7.0 -----------------------------------------------------------

def test_distributed_704_warns_then_explains_the_refusal(flow, simulated_manager,
                                                         make_profile):
    """behaviour §12.1: nothing in the REST answers of the simulated Kubernetes 7.0 tells, so
    check-target warns; the workflow refuses the legacy snapshot and the error says why."""
    old = simulated_manager('4.4', data='demo', ssh=True)
    new = simulated_manager('7.0', data='empty', ssh=True, distributed=True)
    make_profile('new', new)
    _prepare(flow, make_profile, old)
    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes')
    assert result.returncode == 1, result
    checks = {c['id']: c for c in flow.meta()['target_checks']}
    assert checks['target-distributed']['status'] == 'warn'
    assert 'Kubernetes' in checks['target-distributed']['message']
    error = result.json['error']
    assert error['id'] == 'restore-failed'
    assert 'legacy snapshots cannot be restored on a distributed manager' in error['message']
    assert 'Kubernetes' in error['message']
    assert any('installed on a host' in hint for hint in error['hints'])
    # nothing was restored: the target holds none of the source's blueprints
    assert data_view(new)['tenants'] == {}
