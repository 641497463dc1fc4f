"""The target checks of issue 14 (runbooks/restore/gates.py, checks.py) on fake managers:
licence gate, edition, route, Kubernetes, old agents, the gated run and the catalogue; the
route-copy step on a real workspace."""
import hashlib
import json
import zipfile

import pytest

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.checks import CheckSet
from cloudify_upgrade_plugin.engine.workspace import Workspace
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.runbooks.restore import checks as target_checks
from cloudify_upgrade_plugin.runbooks.restore import command as restore_command
from cloudify_upgrade_plugin.runbooks.restore import gates
from cloudify_upgrade_plugin.runbooks.restore.base import restored_snapshot
from cloudify_upgrade_plugin.runbooks.restore.route import (
    RouteCopy, explain_restore_failure, route_snapshot_id)

LICENCE = {'customer_id': 'c1', 'expiration_date': '2030-01-01T00:00:00.000Z',
           'license_edition': 'Premium', 'trial': False, 'cloudify_version': '7.0',
           'expired': False}


class Target:
    label = 'manager http://new (profile new)'

    def __init__(self, version='7.0.4', edition='premium', licences=None, protocol='http',
                 services=None, refuse=None):
        self.version = versions.Version.parse(version)
        self.edition = edition
        self.licences = licences
        self.protocol = protocol
        self.services = services or {}
        self.refuse = refuse

    def licence(self):
        if self.refuse:
            raise self.refuse
        return {'items': list(self.licences or [])}

    def status(self):
        return {'services': self.services}

    def list_tenants(self):
        raise UpgradeError('refused', error_id='manager-unlicensed')


def _facts(version='4.4', edition='premium', revisions=versions.REVISION_KEYS,
           snapshot=None, agents=None, **held):
    version = versions.Version.parse(version)
    return gates.SourceFacts(
        version=version, edition=edition,
        snapshot_version=versions.Version.parse(snapshot or str(version)),
        revisions=tuple(revisions),
        agents_version=versions.Version.parse(agents) if agents else None, **held)


@pytest.mark.parametrize('licences, status, words', [
    ([], 'fail', 'has no licence'),
    ([dict(LICENCE, expired=True, trial=True)], 'fail', 'expired trial'),
    ([dict(LICENCE, expired=True)], 'warn', 'keeps the manager serving'),
    ([dict(LICENCE, expired=True, trial=True), LICENCE], 'pass', 'valid until'),
    ([dict(LICENCE, cloudify_version='4.6')], 'pass', 'only when a licence is uploaded'),
    ([dict(LICENCE, cloudify_version=None, expiration_date=None)], 'pass', 'no end'),
])
def test_licence_gate(licences, status, words):
    """behaviour §12.2: a missing licence or an expired trial closes the gate; an expired
    paying licence and an old cloudify_version do not."""
    check = CheckSet().run_check(gates.target_licence, Target(licences=licences))
    assert check.status == status and words in check.message, check
    assert check.not_waivable


def test_no_licence_gate_on_community_or_before_46():
    for target in (Target(edition='community'), Target(version='4.5.5')):
        assert CheckSet().run_check(gates.target_licence, target).status == 'pass'


def test_unreadable_licence_is_a_warning():
    target = Target(refuse=UpgradeError('boom', error_id='manager-request-failed'))
    assert CheckSet().run_check(gates.target_licence, target).status == 'warn'


def test_gated_checks_are_not_failures_of_their_own():
    checks = CheckSet()
    gated = target_checks._Gated(checks, Target(licences=[]))
    assert gated.closed
    skipped = gated.rest(target_checks.target_not_clean, Target())
    ran = gated.run(gates.target_restore_route, _facts(), Target())
    assert skipped.status == 'warn' and skipped.message.startswith('Not checked')
    assert ran.status == 'pass'
    assert [c.id for c in checks] == ['target-licence', 'target-not-clean',
                                      'target-restore-route']


def test_refused_reads_become_not_checked_when_the_gate_is_open():
    checks = CheckSet()
    gated = target_checks._Gated(checks, Target(licences=[LICENCE]))
    assert not gated.closed
    check = gated.run(target_checks.target_not_clean, Target())
    assert check.status == 'warn' and check.message.startswith('Not checked')
    assert checks.results[-1] is check


def test_edition_lists_what_a_community_target_would_lose():
    facts = _facts(tenants=('default_tenant', 't_prod'), users=('admin', 'alice'),
                   user_groups=('ops',), ldap='enabled')
    check = CheckSet().run_check(gates.target_edition, facts, Target(edition='community'))
    assert check.status == 'fail'
    assert check.details['would_lose'] == {'tenants': ['t_prod'], 'users': ['alice'],
                                           'user_groups': ['ops'], 'ldap': ['enabled']}
    assert check.waivable
    only_default = _facts(tenants=('default_tenant',), users=('admin',))
    check = CheckSet().run_check(gates.target_edition, only_default,
                                 Target(edition='community'))
    assert check.status == 'pass' and 'user groups, LDAP' in check.message
    check = CheckSet().run_check(gates.target_edition, facts, Target(edition='premium'))
    assert check.status == 'pass'


def test_route_check_blocks_unwaivably_and_says_why():
    facts = _facts('5.1', 'community', revisions=('schema_revision',))
    check = CheckSet().run_check(gates.target_restore_route, facts, Target())
    assert check.status == 'fail' and check.not_waivable
    assert check.details['action'] == 'block'
    copy = CheckSet().run_check(gates.target_restore_route, facts,
                                Target(edition='community'))
    assert copy.status == 'pass' and copy.details['action'] == 'copy'


@pytest.mark.parametrize('services, target, status', [
    ({'Webserver': 'Active', 'SeaweedFS Master': 'Active'}, '7.0.4', 'fail'),
    ({'Webserver': 'Active'}, '7.0.4', 'warn'),
    ({'Webserver': 'Active'}, '7.0.2', 'pass'),     # the refusal exists from 7.0.3
    ({'Webserver': 'Active'}, '6.4', 'pass'),
])
def test_kubernetes_target(services, target, status):
    check = CheckSet().run_check(gates.target_distributed, _facts(),
                                 Target(version=target, services=services))
    assert check.status == status, check


def test_kubernetes_does_not_matter_on_the_entity_route():
    facts = gates.SourceFacts(version=versions.Version.parse('7.0.4'), edition='premium',
                              snapshot_version=versions.Version.parse('7.0.4'),
                              revisions=(), snapshot_format='entities')
    check = CheckSet().run_check(gates.target_distributed, facts,
                                 Target(services={'SeaweedFS Master': 'Active'}))
    assert check.status == 'pass'


@pytest.mark.parametrize('agents, target, protocol, status', [
    ('4.1', '7.0.4', 'https', 'fail'),
    ('4.1', '7.0.4', 'http', 'pass'),
    ('4.1', '5.2.7', 'https', 'pass'),
    ('4.2', '7.0.4', 'https', 'pass'),
    (None, '7.0.4', 'https', 'pass'),
])
def test_old_agents_onto_an_ssl_target(agents, target, protocol, status):
    check = CheckSet().run_check(gates.agents_too_old_for_ssl, _facts(agents=agents),
                                 Target(version=target, protocol=protocol))
    assert check.status == status, check
    assert check.waivable


def test_the_catalogue_has_the_late_ids_and_the_unwaivable_ones():
    for check_id in ('reconcile-differences', 'agents-not-eligible', 'target-licence',
                     'target-edition', 'target-restore-route', 'target-distributed',
                     'agents-too-old-for-ssl', 'path-not-vendor-tested'):
        assert check_id in restore_command.CHECK_IDS
    assert set(restore_command.UNWAIVABLE) == {
        'target-licence', 'target-restore-route', 'target-distributed',
        'source-3x-needs-stepping-stone', 'target-older-than-source',
        'target-version-unknown'}


def test_target_path_is_unwaivable_only_for_problems_a_manager_refuses():
    refused = CheckSet().run_check(target_checks.target_path, versions.Version.parse('3.4.2'),
                                   Target(), 'new-host')
    assert refused.status == 'fail' and refused.not_waivable
    assert 'source-3x-needs-stepping-stone' in refused.message
    assert refused.details['problems'] == ['source-3x-needs-stepping-stone']
    waivable = CheckSet().run_check(target_checks.target_path,
                                    versions.Version.parse('3.4.2'), Target(version='4.1'),
                                    'new-host')
    assert waivable.status == 'fail' and waivable.waivable


def test_route_copy_id_and_failure_explanation():
    assert route_snapshot_id('upg-1') == 'upg-1-route'
    long_id = 'a' * versions.MAX_SNAPSHOT_ID_LENGTH
    assert len(route_snapshot_id(long_id)) == versions.MAX_SNAPSHOT_ID_LENGTH
    assert versions.snapshot_id_problem(route_snapshot_id(long_id)) is None
    more, hints = explain_restore_failure(
        'NonRecoverableError: legacy snapshots cannot be restored on a distributed manager')
    assert 'Kubernetes' in more and hints
    assert explain_restore_failure('something else') == ('', [])


# -- the route-copy step on a real workspace ----------------------------------------------

def _prepared_workspace(tmp_path):
    ws = Workspace.create('upg-route', mode='new-host')
    ws.makedirs('snapshot')
    path = ws.path('snapshot/snap1.zip')
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
        archive.writestr('metadata.json', json.dumps({'snapshot_version': '5.1.0',
                                                      'schema_revision': 'abc'}))
        archive.writestr('pg_data', b'data' * 1000)
    with open(path, 'rb') as stream:
        digest = hashlib.sha256(stream.read()).hexdigest()
    with open(path + '.sha256', 'w') as stream:
        stream.write('{0}  snap1.zip\n'.format(digest))
    ws.update_meta(snapshot={'id': 'snap1', 'path': 'snapshot/snap1.zip', 'sha256': digest,
                             'size': 1, 'snapshot_version': '5.1.0',
                             'revisions': ['schema_revision']},
                   restore_route={'route': 'legacy', 'action': 'copy', 'reason': 'r',
                                  'add': {'stage_schema_revision': '',
                                          'composer_schema_revision': ''}})
    return ws


class _Ctx:
    def __init__(self, workspace):
        self.workspace = workspace
        self.target_manager = None


def test_route_copy_step_makes_verifies_and_reopens_an_earlier_upload(cfy_workdir, tmp_path):
    ws = _prepared_workspace(tmp_path)
    # an upload done by an earlier run for the original id
    ws.journal.append('upload-snapshot', 'started', {})
    ws.journal.append('upload-snapshot', 'succeeded', {'snapshot_id': 'snap1'})
    ctx, step = _Ctx(ws), RouteCopy()
    assert step.check(ctx) is False
    details = step.run(ctx)
    assert details['snapshot_id'] == 'snap1-route'
    assert details['path'] == 'snapshot/snap1-route.zip'
    copy = ws.meta['restore_route']['copy']
    assert copy['sha256'] == details['sha256'] and copy['of'] == 'snap1'
    assert step.check(ctx) is True
    restored = restored_snapshot(ws)
    assert (restored['id'], restored['path'], restored['original_id']) == \
        ('snap1-route', 'snapshot/snap1-route.zip', 'snap1')
    assert restored['snapshot_version'] == '5.1.0'
    assert ws.journal.last_event('upload-snapshot') == 'failed'     # uploaded again
    # a copy that no longer matches its hash is never used: the step runs again
    with open(ws.path(copy['path']), 'ab') as stream:
        stream.write(b'junk')
    assert step.check(ctx) is False


def test_route_copy_is_skipped_when_the_route_needs_none(cfy_workdir, tmp_path):
    ws = _prepared_workspace(tmp_path)
    ws.update_meta(restore_route={'route': 'legacy', 'action': 'as-is', 'reason': 'r',
                                  'add': {}})
    assert RouteCopy().check(_Ctx(ws)) is True
    assert restored_snapshot(ws)['id'] == 'snap1'
