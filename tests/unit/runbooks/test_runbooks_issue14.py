"""Unit tests of issue 14's runbook pieces: when the old admin's password may be sent to the
target, the post-restore expectations per route, and the deployments
--ignore-plugin-failure skipped (read from the restore's log records)."""
import types

import pytest

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import InputError
from cloudify_upgrade_plugin.manager.credentials import Credentials
from cloudify_upgrade_plugin.runbooks import credentials
from cloudify_upgrade_plugin.runbooks.restore import execute, plugins

SOURCE = Credentials('admin', 'old-admin-pw', label='source')


class FakeJournal:
    def __init__(self, entries=()):
        self.entries = list(entries)

    def step_entries(self, step_id):
        return [entry for entry in self.entries if entry['step'] == step_id]


class FakeWorkspace:
    def __init__(self, journal=(), **meta):
        self.meta = meta
        self.journal = FakeJournal(journal)


def started(**extra):
    meta = {'restore_execution_id': 'ex1', 'restore_installs_source_admin': True,
            'target': {'profile': 'new', 'version': '7.0.4'},
            'source': {'profile': 'old', 'address': 'http://10.0.0.1:80'},
            'snapshot': {'id': 's', 'path': 'snapshot/s.zip', 'snapshot_version': '4.4.0'}}
    meta.update(extra)
    return FakeWorkspace(**meta)


@pytest.fixture
def source_profile(mocker):
    return mocker.patch.object(credentials.profiles, 'profile_credentials',
                               return_value=SOURCE)


def test_the_old_password_goes_only_where_this_upgrade_restored_it(source_profile):
    assert credentials.source_admin_credentials(started(), 'old', 'new', 'http') == SOURCE


@pytest.mark.parametrize('why, workspace', [
    ('no restore started yet', started(restore_execution_id=None)),
    ('the restore keeps the admin (7.0 per-entity route)',
     started(restore_installs_source_admin=False)),
    ('another target profile', started(target={'profile': 'other', 'version': '7.0.4'})),
])
def test_the_old_password_is_not_sent(source_profile, why, workspace):
    assert credentials.source_admin_credentials(workspace, 'old', 'new', 'http') is None, why


def test_a_run_killed_inside_start_restore_may_have_started_the_restore(source_profile):
    """The restore request reached the target, the run died before recording its answer:
    the restore installs the old admin's password all the same (issue 19's kill test)."""
    killed = started(restore_execution_id=None,
                     journal=[{'step': 'start-restore', 'event': 'started'}])
    assert credentials.source_admin_credentials(killed, 'old', 'new', 'http') == SOURCE
    before = started(restore_execution_id=None,
                     journal=[{'step': 'upload-snapshot', 'event': 'succeeded'}])
    assert credentials.source_admin_credentials(before, 'old', 'new', 'http') is None


def test_never_over_http_when_the_source_was_https(source_profile):
    https = started(source={'profile': 'old', 'address': 'https://10.0.0.1:443'})
    assert credentials.source_admin_credentials(https, 'old', 'new', 'http') is None
    assert credentials.source_admin_credentials(https, 'old', 'new', 'https') == SOURCE


def test_in_place_has_no_second_password(source_profile):
    assert credentials.source_admin_credentials(started(), 'old', 'old', 'http') is None


def test_the_route_is_read_from_the_zip_when_not_recorded(mocker):
    workspace = started(restore_installs_source_admin=None)
    workspace.path = lambda rel: '/nowhere/' + rel
    read = mocker.patch.object(credentials.archive, 'read_member', return_value={
        'snapshot_version': '5.1.0', 'schema_revision': 'x'})
    assert credentials.restore_installs_source_admin(workspace, '7.0.4') is False
    read.return_value = {'snapshot_version': '5.1.0', 'schema_revision': 'x',
                         'stage_schema_revision': '', 'composer_schema_revision': ''}
    assert credentials.restore_installs_source_admin(workspace, '7.0.4') is True
    assert credentials.restore_installs_source_admin(workspace, '6.4') is True


def test_the_route_copy_metadata_decides_when_the_copy_is_restored(mocker):
    """check-target planned a route copy (``restore_route.copy``): the copy is what is
    uploaded and restored (``restored_snapshot``), so its metadata.json, which gained the
    three revisions, decides - not the original's, which would say the per-entity route."""
    copy = {'id': 's-route', 'path': 'snapshot/s-route.zip', 'sha256': 'h', 'size': 1}
    workspace = started(restore_installs_source_admin=None,
                        restore_route={'route': 'legacy', 'action': 'copy', 'copy': copy},
                        snapshot={'id': 's', 'path': 'snapshot/s.zip', 'sha256': 'o',
                                  'size': 1, 'snapshot_version': '5.1.0'})
    workspace.path = lambda rel: '/nowhere/' + rel
    original = {'snapshot_version': '5.1.0', 'schema_revision': 'x'}
    members = {'/nowhere/snapshot/s.zip': original,
               '/nowhere/snapshot/s-route.zip': dict(original, stage_schema_revision='',
                                                     composer_schema_revision='')}
    read = mocker.patch.object(credentials.archive, 'read_member',
                               side_effect=lambda path, name: members[path])
    assert credentials.restore_installs_source_admin(workspace, '7.0.4') is True
    read.assert_called_once_with('/nowhere/snapshot/s-route.zip', 'metadata.json')
    workspace.meta['restore_route'] = {'route': 'legacy', 'action': 'as-is'}
    assert credentials.restore_installs_source_admin(workspace, '7.0.4') is False


def test_logins_put_the_installed_password_first():
    target = types.SimpleNamespace(credentials=Credentials('admin', 'new-pw', label='target'))
    made = []

    def with_credentials(c):
        made.append(c)
        return types.SimpleNamespace(credentials=c)
    target.with_credentials = with_credentials
    found = [target.credentials, SOURCE]
    ordered = credentials.logins(target, found, source_first=True)
    assert [m.credentials.label for m in ordered] == ['source', 'target']
    assert ordered[1] is target
    assert [m.credentials.label for m in credentials.logins(target, found, False)] == \
        ['target', 'source']


@pytest.mark.parametrize('installs, expected', [
    (True, {'credentials_change': True, 'restart': True, 'reboot': False, 'flag': True}),
    (False, {'credentials_change': False, 'restart': False, 'reboot': False, 'flag': True}),
])
def test_post_restore_expectations_follow_the_route(installs, expected):
    """behaviour §12.1: the 7.0 per-entity route changes neither the admin nor restarts."""
    got = execute.post_restore_expectations(versions.Version.parse('7.0.4'),
                                            versions.Version.parse('5.1.0'),
                                            certificates=False, installs_admin=installs)
    assert got == expected


# -- --ignore-plugin-failure ---------------------------------------------------------------

def log(message, level='warning'):
    return {'type': 'cloudify_log', 'level': level, 'message': message}


def test_skipped_deployments_of_455_to_50():
    records = [
        log('Restoring deployment environments for default_tenant', 'info'),
        log('Failed to install plugins for deployment `hw-1` under tenant `default_tenant`.  '
            'Proceeding since `ignore_plugin_failure` flag was used.'),
        log('Restoring deployment environments for t_prod', 'info'),
        log('Failed to install plugins for deployment `prod-db` under tenant `t_prod`.  '
            'Proceeding since `ignore_plugin_failure` flag was used.'),
        log("Finished restoring deployment evnironments. Please note that the following "
            "deployment plugins were not installed and need to be installed manually on each "
            "deployment`s virtual env: [(u'hw-1', u'default_tenant'), (u'prod-db', "
            "u't_prod')]"),
    ]
    assert plugins.skipped_from_logs(records) == [
        {'deployment': 'hw-1', 'tenant': 'default_tenant', 'removed': False},
        {'deployment': 'prod-db', 'tenant': 't_prod', 'removed': False}]


def test_skipped_deployments_of_450_were_removed():
    records = [
        log('Restoring deployment environments for t_prod', 'info'),
        {'type': 'cloudify_log', 'level': 'warning',
         'message': {'text': 'Failed to create deployment: prod-web,ignore_plugin_failureflag '
                             'used, proceeding...'}},
        log('Removing failed deployment prod-web footprints', 'info'),
    ]
    assert plugins.skipped_from_logs(records) == [
        {'deployment': 'prod-web', 'tenant': 't_prod', 'removed': True}]
    assert plugins.skipped_from_logs([log('Successfully restored deployment environments.',
                                          'info')]) == []


def test_the_option_is_refused_where_the_target_does_not_read_it():
    options = types.SimpleNamespace(ignore_plugin_failure=True)
    for version in ('4.5.5', '5.0.5'):
        plugins.validate_option(options, types.SimpleNamespace(
            version=versions.Version.parse(version), label='manager X'))
    with pytest.raises(InputError) as info:
        plugins.validate_option(options, types.SimpleNamespace(
            version=versions.Version.parse('5.1'), label='manager X'))
    assert info.value.error_id == 'ignore-plugin-failure-unsupported'
    assert info.value.exit_code == 2 and '4.5.0 - 5.0.x' in info.value.message
    plugins.validate_option(types.SimpleNamespace(ignore_plugin_failure=False),
                            types.SimpleNamespace(version=versions.Version.parse('7.0')))


def test_a_failed_restore_on_a_plugin_hints_at_the_option():
    target = types.SimpleNamespace(version=versions.Version.parse('5.0.5'))
    text = ("NonRecoverableError: Failed to restore snapshot, the following deployment "
            "environments were not restored: [(u'hw-1', u'default_tenant')].")
    assert any('--ignore-plugin-failure' in h
               for h in plugins.restore_failure_hints(target, text))
    assert plugins.restore_failure_hints(target, 'something else') == []
    newer = types.SimpleNamespace(version=versions.Version.parse('5.1'))
    assert plugins.restore_failure_hints(newer, text) == []
