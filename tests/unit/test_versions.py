"""Unit tests of cloudify_upgrade_plugin.versions: parsing, ordering, path rules, bodies."""
import json

import pytest

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import InputError
from cloudify_upgrade_plugin.versions import Version


@pytest.mark.parametrize('text, normalised, parts, patch', [
    ('3.4.2', '3.4.2', (3, 4, 2), None),
    ('4.0', '4.0.0', (4, 0, 0), None),
    ('4.0.1', '4.0.1', (4, 0, 1), None),
    ('4.1.0-p3-4.0.1', '4.0.1-p3', (4, 0, 1), 'p3'),
    ('4.1.0-p1-4.0.0', '4.0.0-p1', (4, 0, 0), 'p1'),
    ('4.0.1-p3', '4.0.1-p3', (4, 0, 1), 'p3'),
    ('4.5.0.1', '4.5.0.1', (4, 5, 0, 1), None),
    ('4.5.0.0', '4.5.0', (4, 5, 0), None),
    ('5.0.5', '5.0.5', (5, 0, 5), None),
    ('7.0.4', '7.0.4', (7, 0, 4), None),
    ('17.3.31', '4.0.0', (4, 0, 0), None),
    ('17.6.30', '4.1.0', (4, 1, 0), None),
    (' 4.2 ', '4.2.0', (4, 2, 0), None),
    ('v6.4', '6.4.0', (6, 4, 0), None),
    ('5.0.5-rc1', '5.0.5', (5, 0, 5), None),
    ('4.4m5', '4.4.0', (4, 4, 0), None),
])
def test_parse(text, normalised, parts, patch):
    version = Version.parse(text)
    assert str(version) == normalised
    assert version.parts == parts
    assert version.patch == patch
    assert version.is_patched == (patch is not None)
    assert version.raw == text
    assert version.major == parts[0] and version.minor == parts[1]
    assert version.micro == parts[2]
    # the normalised form parses back to an equal version
    assert Version.parse(str(version)) == version


def test_patched_snapshot_version_keeps_claimed_and_base():
    version = Version.parse('4.1.0-p3-4.0.1')
    assert version.claimed == '4.1.0'
    assert version.patch_number == 3
    assert version.base == Version.parse('4.0.1')
    assert not version.base.is_patched


def test_calendar_versions_are_mapped_and_remember_the_build():
    version = Version.parse('17.3.31')
    assert version.is_calendar and version.calendar == '17.3.31'
    assert version == '4.0.0'
    assert not Version.parse('4.0.0').is_calendar


@pytest.mark.parametrize('text', ['18.2.28', '17.12.1', '19.1'])
def test_unknown_calendar_version_asks_for_the_equivalent(text):
    with pytest.raises(InputError) as info:
        Version.parse(text)
    assert info.value.error_id == 'unknown-calendar-version'
    assert info.value.exit_code == 2
    assert text in info.value.message
    assert any('--source-version' in hint for hint in info.value.hints)


@pytest.mark.parametrize('text', ['', 'latest', '4.x', '-4.0.1', None, '1.2.3.4.5', '4..1'])
def test_garbage_is_a_bad_version(text):
    with pytest.raises(InputError) as info:
        Version.parse(text)
    assert info.value.error_id == 'bad-version'


def test_ordering():
    ordered = ['3.4.2', '17.3.31', '4.0.1', '4.1.0-p3-4.0.1', '4.0.2', '4.1', '4.5',
               '4.5.0.1', '4.5.1', '5.0.5', '7.0.4']
    shuffled = [Version.parse(t) for t in reversed(ordered)]
    assert [v.raw for v in sorted(shuffled)] == ordered
    assert Version.parse('4.0.1') < Version.parse('4.0.1-p3') < Version.parse('4.0.2')
    assert Version.parse('4.5.0.1') > '4.5.0'
    assert Version.parse('4.2') >= '4.2.0'
    assert not Version.parse('4.2') < '4.2.0'
    assert Version.parse('5.0.5-rc1') == '5.0.5'


def test_hashable_and_equal_across_spellings():
    assert len({Version.parse('4.0'), Version.parse('4.0.0'), Version.parse('17.3.31')}) == 1
    assert len({Version.parse('4.0.1'), Version.parse('4.1.0-p3-4.0.1')}) == 2
    assert {Version.parse('4.2'): 'x'}[Version.parse('4.2.0')] == 'x'
    assert Version.parse('4.2') != 4.2


@pytest.mark.parametrize('version, prefix, api_version', [
    ('3.4.2', '/api/v2.1', 'v2.1'),
    ('4.0', '/api/v3', 'v3'),
    ('4.0.1', '/api/v3', 'v3'),
    ('4.1.0-p3-4.0.1', '/api/v3', 'v3'),
    ('17.3.31', '/api/v3', 'v3'),
    ('17.6.30', '/api/v3.1', 'v3.1'),
    ('4.1', '/api/v3.1', 'v3.1'),
    ('4.2', '/api/v3.1', 'v3.1'),
    ('5.0.5', '/api/v3.1', 'v3.1'),
    ('7.0.4', '/api/v3.1', 'v3.1'),
])
def test_api_prefix(version, prefix, api_version):
    assert versions.api_prefix(version) == prefix
    assert versions.api_version(Version.parse(version)) == api_version


def _ids(problems):
    return sorted(check_id for check_id, _ in problems)


@pytest.mark.parametrize('source, target, mode, expected', [
    ('4.0.1', '4.2', 'new-host', []),
    ('4.0.1', '4.2', 'in-place', []),
    ('4.2', '7.0.4', 'in-place', []),
    ('7.0.4', '7.0.4', 'new-host', []),
    ('3.4.2', '4.6', 'new-host', []),
    ('3.4.2', '4.6.0', 'new-host', []),
    ('3.4.2', '4.2', 'in-place', ['in-place-unsupported']),
    # 4.0.0 in place: allowed (procedure step P2; patch-1 and the ssl backup are
    # checked by patch-level and host-backups)
    ('4.0', '4.3', 'in-place', []),
    ('4.1.0-p1-4.0.0', '4.2', 'in-place', []),
    ('17.3.31', '4.3', 'in-place', []),
    ('3.4.2', '4.6', 'in-place', ['in-place-unsupported']),
    ('3.4.2', '5.0.0', 'new-host', ['source-3x-needs-stepping-stone']),
    ('3.4.2', '7.0.4', 'in-place', ['in-place-unsupported', 'source-3x-needs-stepping-stone']),
    ('4.0.1', '4.1', 'new-host', ['target-version-too-old']),
    ('5.0.5', '4.6', 'new-host', ['target-older-than-source']),
    ('6.0', '4.1', None, ['target-older-than-source', 'target-version-too-old']),
    ('3.3.1', '4.2', 'new-host', ['source-version-unsupported']),
])
def test_upgrade_problems(source, target, mode, expected):
    problems = versions.upgrade_problems(source, target, mode)
    assert _ids(problems) == sorted(expected)
    for check_id, message in problems:
        assert check_id == check_id.lower() and ' ' not in check_id
        assert message


def test_upgrade_problems_messages_name_the_versions():
    (check_id, message), = versions.upgrade_problems('3.4.2', '5.0.5', 'new-host')
    assert '3.4.2' in message and '5.0.5' in message and '4.2-4.6' in message


def test_unknown_mode_is_an_input_error():
    with pytest.raises(InputError) as info:
        versions.upgrade_problems('4.2', '5.0.5', 'sideways')
    assert info.value.error_id == 'bad-mode'


@pytest.mark.parametrize('source, patch', [
    ('4.0.0', 'patch-1'),
    ('4.0', 'patch-1'),
    ('17.3.31', 'patch-1'),
    ('4.1.0-p1-4.0.0', None),
    ('4.0.1', 'update-3'),
    ('4.0.1-p2', 'update-3'),
    ('4.1.0-p3-4.0.1', None),
    ('4.1', None),
    ('3.4.2', None),
    ('7.0.4', None),
])
def test_needs_patch(source, patch):
    assert versions.needs_patch(source) == patch
    problem = versions.patch_problem(source)
    if patch is None:
        assert problem is None
    else:
        assert problem[0] == patch + '-missing'


@pytest.mark.parametrize('rule, true_from, false_below', [
    ('has_tenants', ['4.0.0', '17.3.31', '7.0.4'], ['3.4.2']),
    ('has_events_api', ['4.0.0', '7.0.4'], ['3.4.2']),
    ('has_ok_endpoint', ['6.0.0', '7.0.4'], ['5.2.7', '3.4.2']),
    ('reports_restore_flag', ['5.0.5', '7.0.4'], ['5.0.0', '4.6']),
    ('honours_all_tenants_on_executions', ['4.2', '7.0.4'], ['4.1.1', '17.6.30', '4.0.0']),
    ('executions_have_ended_at', ['4.4', '5.0.5'], ['4.3.1', '3.4.2']),
    ('maintenance_allows_snapshots', ['4.5', '7.0.4'], ['4.4', '3.4.2']),
    ('creates_db_tokens', ['7.0.0', '7.0.4'], ['6.4', '4.2']),
    ('upload_needs_private_resource', ['4.0.0', '4.1.1'], ['4.2', '3.4.2', '5.0.5']),
    ('snapshot_carries_passwords', ['4.2', '4.2.0-p1', '7.0.4'], ['4.1.0-p3-4.0.1', '4.1.1']),
    ('users_need_rest_security', ['4.0.0', '4.1.1'], ['3.4.2', '4.2', '7.0.4']),
    ('snapshot_has_certificates', ['4.0.1', '4.1.0-p3-4.0.1', '4.2'],
     ['4.1.0-p1-4.0.0', '4.0.0', '3.4.2']),
    ('has_host_security_files', ['4.0.0', '7.0.4'], ['3.4.2']),
    ('restarts_rest_after_restore', ['4.2', '4.5.5'], ['4.6', '7.0.4']),
    ('has_riemann', ['3.4.2', '4.6'], ['5.0.5', '7.0.4']),
])
def test_named_version_rules(rule, true_from, false_below):
    predicate = getattr(versions, rule)
    assert [predicate(v) for v in true_from] == [True] * len(true_from)
    assert [predicate(v) for v in false_below] == [False] * len(false_below)


def test_active_execution_states_only_name_states_the_version_knows():
    base = ['pending', 'started', 'cancelling', 'force_cancelling']
    assert versions.active_execution_states('4.3') == base
    assert versions.active_execution_states('4.4') == base + ['kill_cancelling']
    assert versions.active_execution_states('7.0.4') == base + ['kill_cancelling', 'queued']


def test_licence_rule_needs_premium_5x():
    assert versions.may_need_licence('5.0.5', 'premium') is True
    assert versions.may_need_licence('5.0.5', 'community') is False
    assert versions.may_need_licence('4.6', 'premium') is False


@pytest.mark.parametrize('version, kind', [
    ('4.0.1', 'teardown-script'), ('4.1', 'cfy-teardown'), ('4.2', 'cfy-teardown'),
    ('4.3', 'cfy-manager-remove'), ('6.3', 'cfy-manager-remove'),
    ('6.4', 'cfy-manager-remove-config'), ('7.0.4', 'cfy-manager-remove-config')])
def test_teardown_kind(version, kind):
    assert versions.teardown_kind(version) == kind


def test_problem_ids_are_derived_from_the_rules():
    assert versions.PATH_PROBLEM_IDS == tuple(rule.id for rule in versions.PATH_RULES)
    assert set(versions.PATCH_PROBLEM_IDS) == {'patch-1-missing', 'update-3-missing'}


@pytest.mark.parametrize('target, keys', [
    ('3.4.2', {'force', 'recreate_deployments_envs', 'timeout'}),
    ('4.0.0', {'force', 'recreate_deployments_envs', 'tenant_name', 'timeout'}),
    ('4.0.1', {'force', 'recreate_deployments_envs', 'tenant_name', 'timeout'}),
    ('4.1', {'force', 'recreate_deployments_envs', 'restore_certificates', 'no_reboot',
             'ignore_plugin_failure', 'timeout'}),
    ('4.2', {'force', 'recreate_deployments_envs', 'restore_certificates', 'no_reboot',
             'ignore_plugin_failure', 'timeout'}),
    ('4.5.1', {'force', 'recreate_deployments_envs', 'restore_certificates', 'no_reboot',
               'ignore_plugin_failure', 'timeout'}),
    ('5.2.7', {'force', 'recreate_deployments_envs', 'restore_certificates', 'no_reboot',
               'ignore_plugin_failure', 'timeout'}),
    ('6.0', {'force', 'restore_certificates', 'no_reboot', 'timeout'}),
    ('7.0.4', {'force', 'restore_certificates', 'no_reboot', 'timeout'}),
])
def test_restore_body_keys_per_target(target, keys):
    body = versions.restore_body(target)
    assert set(body) == keys
    assert body['force'] is False
    assert body['timeout'] == 300
    if 'recreate_deployments_envs' in body:
        assert body['recreate_deployments_envs'] is True
    if 'ignore_plugin_failure' in body:
        assert body['ignore_plugin_failure'] is False
    if 'tenant_name' in body:
        assert body['tenant_name'] is None
        assert '"tenant_name": null' in json.dumps(body)


def test_restore_body_booleans_are_json_booleans():
    body = versions.restore_body('4.2', force=1, restore_certificates='yes', no_reboot=1)
    assert body['force'] is True and body['restore_certificates'] is True
    assert body['no_reboot'] is True
    encoded = json.dumps(body)
    assert '"force": true' in encoded and '"no_reboot": true' in encoded
    assert versions.restore_body('7.0.4', force=True, timeout=900)['timeout'] == 900


def test_restore_body_refuses_no_reboot_without_certificates():
    with pytest.raises(InputError) as info:
        versions.restore_body('7.0.4', no_reboot=True)
    assert info.value.error_id == 'no-reboot-without-certificates'


def test_restore_body_refuses_certificates_where_unsupported():
    with pytest.raises(InputError) as info:
        versions.restore_body('4.0.1', restore_certificates=True)
    assert info.value.error_id == 'restore-certificates-unsupported'
    with pytest.raises(InputError) as info:
        versions.restore_body('4.3', restore_certificates=True, snapshot_version='4.0.0')
    assert info.value.error_id == 'no-certificates-in-snapshot'
    body = versions.restore_body('4.3', restore_certificates=True,
                                 snapshot_version='4.1.0-p3-4.0.1')
    assert body['restore_certificates'] is True


@pytest.mark.parametrize('source, expected', [
    ('3.4.2', {'include_credentials': True, 'include_metrics': False}),
    ('4.0.1', {'include_credentials': True, 'include_metrics': False}),
    ('4.2', {'include_credentials': True, 'include_metrics': False}),
    ('4.3', {'include_credentials': True, 'include_metrics': False, 'include_logs': True,
             'include_events': True}),
    ('4.5', {'include_credentials': True, 'include_metrics': False, 'include_logs': True,
             'include_events': True, 'queue': False}),
    ('5.0.5', {'include_credentials': True, 'include_logs': True, 'include_events': True,
               'queue': False}),
    ('6.4', {'include_credentials': True, 'include_logs': True, 'include_events': True,
             'queue': False}),
    ('7.0.0', {'include_credentials': True, 'include_logs': True, 'include_events': True,
               'queue': False, 'legacy': True}),
    ('7.0.4', {'include_credentials': True, 'include_logs': True, 'include_events': True,
               'queue': False, 'legacy': True}),
])
def test_snapshot_create_body(source, expected):
    assert versions.snapshot_create_body(source) == expected


def test_snapshot_create_body_new_format_on_request():
    assert versions.snapshot_create_body('7.0.4', legacy=False)['legacy'] is False
    assert 'legacy' not in versions.snapshot_create_body('6.4', legacy=False)


@pytest.mark.parametrize('snapshot_id, ok', [
    ('upg_20240101', True),
    ('a', True),
    ('A.b-c_9', True),
    ('x' * 256, True),
    ('x' * 257, False),
    ('', False),
    (None, False),
    ('1startsdigit', False),
    ('_under', False),
    ('bad id', False),
    ('slash/id', False),
    ('é-accent', False),
])
def test_snapshot_id_problem(snapshot_id, ok):
    problem = versions.snapshot_id_problem(snapshot_id)
    assert (problem is None) == ok


@pytest.mark.parametrize('value', ['upgrade_1\n', 'upgrade_1\r\n', 'a\nb', 'tenant\x00',
                                   ' padded', 'trailing '])
def test_names_must_match_whole(value):
    """Issue 17 item 7: a trailing newline (``$`` matches before it) is refused too."""
    assert versions.name_problem(value, 'a tenant name')
    assert versions.snapshot_id_problem(value)


def test_name_problem_names_what_and_shows_the_value_escaped():
    problem = versions.name_problem('bad\nname', 'a user name')
    assert problem.startswith('a user name may only contain') and "'bad\\nname'" in problem
    assert versions.name_problem('default_tenant', 'a tenant name') is None
    assert versions.name_problem(7, 'a tenant name') == 'a tenant name must not be empty'


def test_ldap_status_from_43_and_plugin_python():
    """GET /ldap from 4.3 (resources_v3/manager.py); plugin Python per manager-behaviour
    §12.4: 2.7 up to 5.0.x, 3.6 from 5.1 to 6.4, 3.11 on 7.0."""
    assert not versions.has_ldap_status('4.2') and versions.has_ldap_status('4.3')
    assert [versions.plugin_python(v) for v in ('4.1', '5.0.5', '5.1', '6.4', '7.0.4')] == \
        ['2.7', '2.7', '3.6', '3.6', '3.11']
