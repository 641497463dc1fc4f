"""What a target refuses whatever the operator says, and waivers (issue 14 items 4, 6, 7, 10).

Through the real `cfy` against simulated managers: the licence gate of premium 7.0.4
targets (behaviour §12.2), supported paths (§12.8: the newest known release, the vendor-tested
stepping stone, `cfy_manager upgrade`, old agents onto an SSL 6.0+ target), checks that
cannot be waived, waivers validated once per command, and `plan --to-profile` (the target
checks, read only).
"""
import os

import pytest

from tests import flows


def _checks(document):
    return {check['id']: check for check in document['checks']}


def _mutations(sim):
    return [(r['method'], r['path']) for r in sim.requests if r['method'] != 'GET']


def _upgrades(cfy_workdir):
    directory = os.path.join(str(cfy_workdir), '.cloudify', 'upgrades')
    return os.listdir(directory) if os.path.isdir(directory) else []


# -- licence (item 4) ----------------------------------------------------------------------

def test_unlicensed_premium_704_target_blocks_before_any_upload(
        flow, simulated_manager, make_profile):
    old = simulated_manager('4.4', data='demo', ssh=True)
    new = simulated_manager('7.0', data='empty', ssh=True, licensed=False)
    make_profile('new', new)
    make_profile('old', old)
    flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json')
    new.requests.clear()
    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes')
    assert result.returncode == 3, result
    checks = _checks(result.json)
    assert result.json['checks'][0]['id'] == 'target-licence'       # it runs first
    licence = checks['target-licence']
    assert licence['status'] == 'fail' and licence['not_waivable']
    assert 'cfy license upload' in licence['message']
    assert result.json['error']['id'] == 'blocked'
    # the checks the licence gate would break are not reported as failures of their own
    for check_id in ('target-not-clean', 'not-bootstrap-admin', 'agent-networks'):
        assert checks[check_id]['status'] == 'warn', checks[check_id]
        assert checks[check_id]['message'].startswith('Not checked')
    failed = [c['id'] for c in result.json['checks'] if c['status'] == 'fail']
    assert failed == ['target-licence']
    # no upload, no restore: only reads reached the target
    assert _mutations(new) == []
    assert flows.upload_requests(new) == [] and flows.restore_executions(new) == []
    waived = flow.upgrade('new-host', '--to-profile', 'new', '--yes', '--waive',
                          'target-licence', '--reason', 'we have one somewhere')
    assert waived.returncode == 2, waived
    assert waived.json['error']['id'] == 'waiver-not-allowed'
    assert _mutations(new) == []


@pytest.mark.parametrize('licence, status, words', [
    ({'licence_expired': True}, 'warn', 'expired'),                     # paying: still serves
    ({'licence_expired': True, 'licence_trial': True}, 'fail', 'expired trial'),
    ({'licence_version': '4.6'}, 'pass', 'older than the manager'),     # checked at upload
])
def test_plan_to_profile_reads_the_licence(run_cfy, simulated_manager, make_profile,
                                           cfy_workdir, licence, status, words):
    old = simulated_manager('4.4', data='demo')
    new = simulated_manager('7.0', data='empty', **licence)
    make_profile('new', new, ssh=False)
    make_profile('old', old, ssh=False)
    result = run_cfy('upgrade', 'plan', '--to-profile', 'new', '--json')
    assert result.returncode == (3 if status == 'fail' else 0), result
    check = _checks(result.json)['target-licence']
    assert check['status'] == status and words in check['message'], check
    assert _mutations(new) == [] and _mutations(old) == []
    assert _upgrades(cfy_workdir) == []


# -- plan --to-profile (item 10) -----------------------------------------------------------

def test_plan_to_profile_runs_the_target_checks_read_only(
        run_cfy, simulated_manager, make_profile, cfy_workdir):
    old = simulated_manager('5.1', edition='community', data='demo')
    premium = simulated_manager('7.0', data='empty')
    community = simulated_manager('7.0', edition='community', data='demo')
    make_profile('premium', premium, ssh=False)
    make_profile('community', community, ssh=False)
    make_profile('old', old, ssh=False)
    # a community 5.1 snapshot cannot be restored on a premium 7.0: predicted, exit 3
    blocked = run_cfy('upgrade', 'plan', '--to-profile', 'premium', '--json')
    assert blocked.returncode == 3, blocked
    route = _checks(blocked.json)['target-restore-route']
    assert route['status'] == 'fail' and 'community 7.0.4 manager' in route['message']
    assert blocked.json['target']['version'] == '7.0.4'
    # onto a community 7.0 that holds data: the route is a copy, the target is not clean
    dirty = run_cfy('upgrade', 'plan', '--to-profile', 'community', '--json')
    assert dirty.returncode == 3, dirty
    checks = _checks(dirty.json)
    assert checks['target-restore-route']['status'] == 'pass'
    assert checks['target-restore-route']['details']['action'] == 'copy'
    assert 'predicted' in checks['target-restore-route']['message']
    assert checks['target-not-clean']['status'] == 'fail'
    assert 'path-not-vendor-tested' not in checks           # 5.1 is a vendor-tested source
    assert dirty.json['target_version'] == '7.0.4'
    for sim in (old, premium, community):
        assert _mutations(sim) == [], sim
    assert _upgrades(cfy_workdir) == []


# -- supported paths (item 6) ------------------------------------------------------------

def test_target_newer_than_any_known_release_is_refused(run_cfy, simulated_manager,
                                                        make_profile, cfy_workdir):
    sim = simulated_manager('5.1', data='demo')
    make_profile('old', sim, ssh=False)
    plan = run_cfy('upgrade', 'plan', '--target-version', '8.0', '--json')
    assert plan.returncode == 3, plan
    unknown = _checks(plan.json)['target-version-unknown']
    assert unknown['status'] == 'fail' and '7.0.5' in unknown['message']
    assert not any('--waive target-version-unknown' in h for h in plan.json['error']['hints'])
    prepare = run_cfy('upgrade', 'prepare', '--target-version', '8.0', '--json')
    assert prepare.returncode == 3, prepare
    waived = run_cfy('upgrade', 'prepare', '--target-version', '8.0', '--waive',
                     'target-version-unknown', '--reason', 'try', '--json')
    assert waived.returncode == 2, waived
    assert waived.json['error']['id'] == 'waiver-not-allowed'
    assert _mutations(sim) == [] and _upgrades(cfy_workdir) == []


def test_342_to_70_cannot_be_waived_into_a_restore(flow, run_cfy, simulated_manager,
                                                   make_profile, cfy_workdir):
    old = simulated_manager('3.4.2', data='demo', ssh=True)
    new = simulated_manager('7.0', data='empty', ssh=True)
    make_profile('new', new)
    make_profile('old', old)
    waive = ('--waive', 'source-3x-needs-stepping-stone', '--reason', 'try')
    refused = run_cfy('upgrade', 'prepare', '--target-version', '7.0', '--json', *waive)
    assert refused.returncode == 2, refused
    assert refused.json['error']['id'] == 'waiver-not-allowed'
    assert 'refuse 3.x snapshots' in refused.json['error']['message']
    assert _upgrades(cfy_workdir) == []
    # prepared without a target version, the new-host onto 7.0 is blocked, unwaivably
    flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json')
    blocked = flow.upgrade('new-host', '--to-profile', 'new', '--yes')
    assert blocked.returncode == 3, blocked
    checks = _checks(blocked.json)
    assert checks['target-path']['status'] == 'fail' and checks['target-path']['not_waivable']
    assert 'source-3x-needs-stepping-stone' in checks['target-path']['message']
    assert checks['target-restore-route']['status'] == 'fail'
    for check_id in ('target-path', 'target-restore-route'):
        again = flow.upgrade('new-host', '--to-profile', 'new', '--yes', '--waive', check_id,
                             '--reason', 'try')
        assert again.returncode == 2, again
        assert again.json['error']['id'] == 'waiver-not-allowed'
    assert _mutations(new) == []


def test_paths_the_vendor_does_not_test_and_its_alternatives(
        run_cfy, simulated_manager, make_profile):
    old44 = simulated_manager('4.4', data='demo')
    make_profile('old44', old44, ssh=False)
    plan = run_cfy('upgrade', 'plan', '--from-profile', 'old44', '--target-version', '7.0',
                   '--json')
    assert plan.returncode == 0, plan
    advice = _checks(plan.json)['path-not-vendor-tested']
    assert advice['status'] == 'warn' and '5.1' in advice['message']
    assert plan.json['notes'] == []
    old64 = simulated_manager('6.4', data='demo')
    make_profile('old64', old64, ssh=False)
    plan = run_cfy('upgrade', 'plan', '--from-profile', 'old64', '--target-version', '7.0',
                   '--json')
    assert plan.returncode == 0, plan
    assert 'path-not-vendor-tested' not in _checks(plan.json)
    [note] = plan.json['notes']
    assert '`cfy_manager upgrade`' in note and 'all-in-one' in note


def test_agents_older_than_42_onto_an_ssl_70_are_blocked(
        flow, run_cfy, simulated_manager, make_profile):
    old = simulated_manager('4.1', data='demo', ssh=True)
    new = simulated_manager('7.0', data='empty', ssh=True, ssl=True)
    created = run_cfy('profiles', 'use', '127.0.0.1', '--profile-name', 'new', '--rest-port',
                      new.rest_port, '-u', new.admin_username, '-p', new.admin_password,
                      '-t', 'default_tenant', '--ssl', '--rest-certificate', new.ca_path,
                      '--skip-credentials-validation')
    assert created.returncode == 0, created
    make_profile('old', old)
    flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json')
    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes', '--users',
                          'rest-security')
    assert result.returncode == 3, result
    check = _checks(result.json)['agents-too-old-for-ssl']
    assert check['status'] == 'fail' and 'https' in check['message']
    assert any('--waive agents-too-old-for-ssl' in h for h in result.json['error']['hints'])
    assert _mutations(new) == []


# -- waivers validated once per command (item 7) ------------------------------------------

def test_waivers_are_checked_before_anything_and_never_fail_a_later_step(
        flow, simulated_manager, make_profile):
    old = simulated_manager('4.4', data='demo', ssh=True)
    new = simulated_manager('7.0', data='empty', ssh=True)
    make_profile('new', new)
    make_profile('old', old)
    flow.prepare('--from-profile', 'old', '--mode', 'new-host', '--json')
    journal = flow.journal()
    new.requests.clear()
    nonsense = flow.upgrade('new-host', '--to-profile', 'new', '--yes', '--waive', 'nonsense',
                            '--reason', 'because')
    assert nonsense.returncode == 2, nonsense
    assert nonsense.json['error']['id'] == 'unknown-waiver'
    assert 'reconcile-differences' in nonsense.json['error']['message']
    assert list(new.requests) == [] and flow.journal() == journal
    # ids of late checks and of checks that pass are accepted up front and never refused
    # by a later step (reconcile used to refuse a waiver of a check-target id)
    result = flow.upgrade('new-host', '--to-profile', 'new', '--yes',
                          '--waive', 'reconcile-differences', '--waive', 'target-not-clean',
                          '--waive', 'agents-not-eligible', '--reason', 'accepted risk')
    assert result.returncode == 0, result
    assert result.json['reconciliation']['ok'] is True
    assert flow.events('finish')[-1] == 'succeeded'
