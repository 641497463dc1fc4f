"""Unit tests of issue 15's pure pieces: which plugins fit a target (cloudify-common@7.0.4
plugin_installer.py), wagons and the commands to run by hand (checked against cfy 7.0.5's
own click parsers), the reconciliation and its table, LDAP settings, the commands and the
request body, and the inventory's listing per tenant."""
import shlex

import pytest
from cloudify_cli.commands import ldap as cli_ldap
from cloudify_cli.commands import plugins as cli_plugins

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.redact import redact_text
from cloudify_upgrade_plugin.errors import EXIT_USAGE, InputError
from cloudify_upgrade_plugin.runbooks import inventory, ldap, plugins, reconcile
from tests.simulator import plugins as simplugins


def _plugin(name='cloudify-openstack-plugin', version='2.14.7', py=('py27',),
            platform='linux_x86_64', tenant='default_tenant', visibility='global',
            blueprints=('default_tenant/hello-world',), pid=None, distribution='centos',
            release='core'):
    return {'id': pid or '{0}-{1}'.format(name, version), 'tenant': tenant,
            'visibility': visibility, 'package_name': name, 'package_version': version,
            'supported_py_versions': list(py), 'supported_platform': platform,
            'distribution': distribution, 'distribution_release': release,
            'blueprints': list(blueprints)}


# -- fitting a target ------------------------------------------------------------------------

def test_python_versions_are_read_as_the_installer_reads_them():
    assert plugins.parse_py_versions(['py27', 'py3.11', '3.6', 'cp311', 'py3', 'x']) == [
        (2, 7), (3, 11), (3, 6), (3, 11)]


@pytest.mark.parametrize('target,python', [('4.4', (2, 7)), ('5.0.5', (2, 7)),
                                           ('5.1', (3, 6)), ('6.4', (3, 6)),
                                           ('7.0.4', (3, 11))])
def test_the_plugin_python_per_version(target, python):
    assert versions.plugin_python(target) == python


@pytest.mark.parametrize('py,platform,fits', [
    (('py27',), 'linux_x86_64', False), (('py311',), 'linux_x86_64', True),
    (('py36', 'py311'), 'manylinux2014_x86_64', True), (('py311',), 'any', True),
    (('py311',), 'win_amd64', False), (('py311',), 'linux_aarch64', False),
    ((), 'linux_x86_64', None), (('py3',), 'linux_x86_64', None)])
def test_fit_on_a_70_target(py, platform, fits):
    found, reason = plugins.fit(_plugin(py=py, platform=platform), '7.0.4')
    assert found is fits and reason


def test_distribution_counts_only_where_the_restore_drops_wagons():
    centos = _plugin(py=('py27',), distribution='centos', release='core')
    assert plugins.fit(centos, '4.6', ('CentOS', 'Core'))[0] is True
    assert plugins.fit(_plugin(py=('py27',), distribution='ubuntu', release='trusty'),
                       '4.6', ('centos', 'core'))[0] is False
    # 5.1+ install with ignore_platform: the distribution is not compared
    assert plugins.fit(_plugin(py=('py36',), distribution='ubuntu'), '5.1',
                       ('centos', 'core'))[0] is True


def test_classify_and_the_check_list_every_unfit_plugin_with_its_blueprints():
    rows = [_plugin(), _plugin('cloudify-utilities-plugin', '1.23.5', visibility='tenant',
                               blueprints=('default_tenant/web-app',)),
            _plugin('cloudify-ok-plugin', '1.0', py=('py311',)), _plugin('odd', '1', py=())]
    result = plugins.classify(rows, '7.0.4')
    assert (result['python'], result['fit']) == ('3.11', 1)
    assert [p['package_name'] for p in result['unfit']] == ['cloudify-openstack-plugin',
                                                            'cloudify-utilities-plugin']
    assert [p['package_name'] for p in result['unknown']] == ['odd']
    status, message, details = plugins.check_plugins(rows, '4.4', None)
    assert status == 'warn'
    assert 'cloudify-openstack-plugin==2.14.7' in message and 'hello-world' in message
    assert details['target'] == str(versions.NEWEST_TARGET)
    assert plugins.check_plugins(rows[2:3], '6.4', '7.0.4')[0] == 'pass'


def test_a_blueprint_uses_a_plugin_of_its_tenant_or_a_global_one():
    grouped = {'default_tenant': [
        {'id': 'g', 'package_name': 'os', 'package_version': '1', 'visibility': 'global',
         'tenant_name': 'default_tenant'},
        {'id': 't', 'package_name': 'ut', 'package_version': '2', 'visibility': 'tenant',
         'tenant_name': 'default_tenant'}], 't_prod': []}
    usage = {('os', '1'): {('default_tenant', 'a'), ('t_prod', 'b')},
             ('ut', '2'): {('default_tenant', 'a'), ('t_prod', 'b')}}
    rows = {p['id']: p for p in plugins.describe_plugins(grouped, usage)}
    assert rows['g']['blueprints'] == ['default_tenant/a', 't_prod/b']
    assert rows['t']['blueprints'] == ['default_tenant/a']
    plan = {'deployment_plugins_to_install': [{'package_name': 'os', 'package_version': '1'},
                                              {'name': 'source-only'}],
            'host_agent_plugins_to_install': [{'package_name': 'ut', 'package_version': '2'}]}
    assert plugins.plan_packages(plan) == {('os', '1'), ('ut', '2')}


# -- commands by hand ------------------------------------------------------------------------

def _parse(command, cli, fill=()):
    """Parse a printed command with cfy 7.0.5's own click command (options must exist)."""
    for placeholder, value in fill:
        command = command.replace(placeholder, value)
    argv = shlex.split(command)
    return cli.make_context(argv[2], argv[3:]).params


def test_manual_plugin_commands_are_what_cfy_705_accepts():
    unfit = plugins.classify([
        _plugin(blueprints=('default_tenant/hello-world', 'default_tenant/web-app',
                            't_prod/web-app')),
        _plugin('cloudify-utilities-plugin', '1.23.5', visibility='tenant',
                blueprints=('default_tenant/web-app',))], '7.0.4')['unfit']
    commands = plugins.manual_commands(unfit, '3.11')
    assert commands == [
        'cfy plugins upload <wagon of cloudify-openstack-plugin newer than 2.14.7, built for '
        'Python 3.11> -y <its plugin.yaml> -t default_tenant --visibility global',
        'cfy plugins upload <wagon of cloudify-utilities-plugin newer than 1.23.5, built for '
        'Python 3.11> -y <its plugin.yaml> -t default_tenant',
        'cfy plugins update hello-world -t default_tenant --plugin-name '
        'cloudify-openstack-plugin',
        'cfy plugins update web-app -t default_tenant --plugin-name cloudify-openstack-plugin '
        '--plugin-name cloudify-utilities-plugin',
        'cfy plugins update web-app -t t_prod --plugin-name cloudify-openstack-plugin']
    upload = _parse(commands[0], cli_plugins.upload, fill=(
        ('<wagon of cloudify-openstack-plugin newer than 2.14.7, built for Python 3.11>',
         'os.wgn'), ('<its plugin.yaml>', 'plugin.yaml')))
    assert (upload['plugin_path'], tuple(upload['yaml_path']), upload['visibility'],
            upload['tenant_name']) == ('os.wgn', ('plugin.yaml',), 'global', 'default_tenant')
    update = _parse(commands[3], cli_plugins.update)
    assert update['blueprint_id'] == 'web-app' and update['tenant_name'] == 'default_tenant'
    assert list(update['plugin_names']) == ['cloudify-openstack-plugin',
                                            'cloudify-utilities-plugin']


# -- --wagons DIR ----------------------------------------------------------------------------

@pytest.fixture
def unfit():
    return plugins.classify([_plugin(), _plugin('cloudify-utilities-plugin', '1.23.5',
                                                visibility='tenant')], '7.0.4')['unfit']


def _wagon(directory, name, version, py=('py311',), yaml=True):
    path = str(directory / '{0}-{1}.wgn'.format(name, version))
    simplugins.make_wagon(path, name, version, py)
    if yaml:
        (directory / '{0}-{1}.yaml'.format(name, version)).write_text('plugins: {}\n')
    return path


def test_wagons_replace_unfit_plugins(tmp_path, unfit):
    _wagon(tmp_path, 'cloudify-openstack-plugin', '3.2.0')
    _wagon(tmp_path, 'cloudify-openstack-plugin', '3.1.0')
    _wagon(tmp_path, 'cloudify-utilities-plugin', '1.24.0', py=('py36', 'py311'))
    wagons = plugins.scan_wagons(str(tmp_path))
    assert [w['yaml'][-len('3.1.0.yaml'):] for w in wagons] == [
        '3.1.0.yaml', '3.2.0.yaml', '.24.0.yaml']
    matches = plugins.match_wagons(wagons, unfit, '7.0.4')
    assert [(m['package_name'], m['wagon']['row']['package_version']) for m in matches] == [
        ('cloudify-openstack-plugin', '3.2.0'), ('cloudify-utilities-plugin', '1.24.0')]
    assert matches[0]['replaces'] == ['cloudify-openstack-plugin-2.14.7']


@pytest.mark.parametrize('case,needle', [
    ('missing', 'no such directory'), ('empty', 'holds no wagon'),
    ('not-a-wagon', 'not a readable wagon'), ('wrong-python', 'does not fit'),
    ('no-yaml', 'no readable cloudify-openstack-plugin-3.2.0.yaml'),
    ('unrelated', 'replaces no unfit plugin'), ('older', 'not newer')])
def test_a_bad_wagons_directory_is_bad_input(tmp_path, unfit, case, needle):
    directory = tmp_path / 'wagons'
    if case != 'missing':
        directory.mkdir()
    if case == 'not-a-wagon':
        (directory / 'broken.wgn').write_bytes(b'not a tar')
    elif case == 'no-yaml':
        _wagon(directory, 'cloudify-openstack-plugin', '3.2.0', yaml=False)
    elif case == 'wrong-python':
        _wagon(directory, 'cloudify-openstack-plugin', '3.2.0', py=('py36',))
    elif case == 'unrelated':
        _wagon(directory, 'cloudify-aws-plugin', '3.0.0')
    elif case == 'older':
        _wagon(directory, 'cloudify-openstack-plugin', '2.14.7')
    with pytest.raises(InputError) as raised:
        plugins.match_wagons(plugins.scan_wagons(str(directory)), unfit, '7.0.4')
    assert raised.value.error_id == 'bad-wagons'
    assert raised.value.exit_code == EXIT_USAGE
    assert needle in raised.value.message


# -- reconciliation ---------------------------------------------------------------------------

def _inventory(version, **tenants):
    return {'manager': {'version': version}, 'tenants': tenants, 'probes': {},
            'users': ['admin', 'bob'], 'tenant_roles': ['default_tenant/bob=user'],
            'has_tenant_roles': True}


def _names(*names):
    return {'count': len(names), 'names': list(names)}


def test_reconcile_reports_missing_changed_expected_and_attention():
    source = _inventory('5.2.7', default_tenant={
        'deployments': _names('a', 'b'),
        'secrets': dict(_names('k1', 'k2'), visibility=['k1:global', 'k2:tenant']),
        'deployments_filters': _names('prod'),
        'execution_schedules': _names('a/nightly'), 'schedules_enabled': ['a/nightly'],
        'node_instances': {'count': 2, 'by_state': {'started': 2}}})
    target = _inventory('7.0.4', default_tenant={
        'deployments': _names('a'),
        'secrets': dict(_names('k1', 'k2'), visibility=['k1:tenant', 'k2:tenant']),
        'deployments_filters': _names(),
        'execution_schedules': _names('a/nightly'), 'schedules_enabled': ['a/nightly'],
        'schedules_unreadable': ['a/nightly'],
        'node_instances': {'count': 2, 'by_state': {'started': 2}}})
    target['probes'] = {}
    source['probes'] = {'deployment_groups': 'deployment groups come with 5.2 (5.1.0)'}
    result = reconcile.compare(source, target)
    assert result['ok'] is False
    assert sorted((d['kind'], d['problem'], tuple(d.get('items') or ())) for d in
                  result['differences']) == [
        ('deployments', 'missing', ('b',)),
        ('secrets_visibility', 'changed', ('k1: global -> tenant',))]
    assert [e['items'] for e in result['expected']] == [['default_tenant/prod']]
    assert 'migration' in result['expected'][0]['reason']
    assert [a['items'] for a in result['attention']] == [['a/nightly']]
    rows = {row['what']: row for row in result['rows']}
    assert rows['deployment filters']['result'].startswith('expected loss of 1')
    assert rows['deployment groups']['result'] == \
        'skipped: deployment groups come with 5.2 (5.1.0)'
    assert rows['execution schedules']['result'].startswith(
        'attention, 1 (default_tenant/a/nightly): their rule uses 5.2')
    assert rows['users']['result'] == 'ok'
    lines = reconcile.table_lines(result)
    assert lines[0] == 'Reconciliation: 2 difference(s), 1 known loss(es) reported as ' \
                       'expected, 1 item(s) need attention.'
    assert lines[1].split() == ['what', 'source', 'target', 'result']
    assert len({line.index(' ok') for line in lines if line.endswith('  ok')}) == 1
    markdown = reconcile.markdown(result)
    assert markdown[2:4] == ['| what | source | target | result |', '|---|---:|---:|---|']


def test_reconcile_compares_membership_only_before_tenant_roles():
    source = _inventory('4.1')
    source.update(tenant_roles=['default_tenant/bob'], has_tenant_roles=False)
    target = _inventory('4.2')
    assert reconcile.compare(source, target)['ok'] is True
    target['tenant_roles'] = []
    assert reconcile.compare(source, target)['differences'] == [
        {'tenant': None, 'kind': 'tenant_roles', 'problem': 'missing',
         'items': ['default_tenant/bob']}]


# -- LDAP ------------------------------------------------------------------------------------

class _ConfigManager:
    def __init__(self, version, rows):
        self.version = versions.Version.parse(version)
        self.rows = rows
        self.edition = 'premium'

    def config_items(self, scope):
        return [dict(r) for r in self.rows]


LDAP_ROWS = [{'name': 'ldap_server', 'value': 'ldap://192.0.2.7:389'},
             {'name': 'ldap_username', 'value': 'cn=binder,dc=example,dc=com'},
             {'name': 'ldap_password', 'value': 'Bind-Secret-31f'},
             {'name': 'ldap_domain', 'value': 'example.com'},
             {'name': 'ldap_is_active_directory', 'value': True},
             {'name': 'ldap_dn_extra', 'value': None},
             {'name': 'ldap_nested_levels', 'value': 2},
             {'name': 'ldap_timeout', 'value': 5.0},
             {'name': 'min_available_memory_mb', 'value': 100}]


def test_ldap_settings_are_read_without_the_bind_password():
    saved = ldap.read_settings(_ConfigManager('5.2.7', LDAP_ROWS))
    assert saved['enabled'] is True and saved['binds_with_user'] is True
    assert 'ldap_password' not in saved['settings']
    assert 'Bind-Secret-31f' not in repr(saved)
    assert redact_text('the password is Bind-Secret-31f') == 'the password is ***'
    assert ldap.read_settings(_ConfigManager('5.0.0', LDAP_ROWS))['enabled'] is None
    assert ldap.read_settings(_ConfigManager('6.4', LDAP_ROWS[2:]))['enabled'] is False


def test_the_ldap_command_is_what_cfy_705_accepts_and_holds_no_password():
    saved = ldap.read_settings(_ConfigManager('5.2.7', LDAP_ROWS))
    command = ldap.command(saved)
    assert command == ('cfy ldap set -s ldap://192.0.2.7:389 -u cn=binder,dc=example,dc=com '
                       '-p <bind password> -d example.com -a --ldap-nested-levels 2')
    params = _parse(command, cli_ldap.set, fill=(('<bind password>', 'x'),))
    assert (params['ldap_server'], params['ldap_domain'], params['ldap_is_active_directory'],
            params['ldap_nested_levels']) == ('ldap://192.0.2.7:389', 'example.com', True, '2')
    body = ldap.request_body(saved, 'pw', None)
    # the keys cloudify-common@7.0.4 cloudify_rest_client/ldap.py `set` sends
    assert set(body) == {
        'ldap_server', 'ldap_is_active_directory', 'ldap_domain', 'ldap_dn_extra',
        'ldap_username', 'ldap_password', 'ldap_base_dn', 'ldap_group_dn',
        'ldap_bind_format', 'ldap_user_filter', 'ldap_group_member_filter',
        'ldap_attribute_email', 'ldap_attribute_first_name', 'ldap_attribute_last_name',
        'ldap_attribute_uid', 'ldap_attribute_group_membership', 'ldap_nested_levels'}
    assert body['ldap_is_active_directory'] is True and body['ldap_dn_extra'] == ''
    assert 'ldap_ca_cert' in ldap.request_body(saved, 'pw', 'PEM')


def test_ldap_inputs_are_checked_before_anything_changes(tmp_path):
    class Options:
        ldap_bind_password_file = None
        ldap_ca_file = None
    options = Options()
    saved = {'ldap': {'enabled': True, 'settings': {'ldap_server': 'ldaps://x'},
                      'binds_with_user': True, 'ldaps': True}}
    ldap.validate_options(options, saved)               # nothing given: nothing checked
    options.ldap_bind_password_file = str(tmp_path / 'missing')
    for source, needle in ((saved, 'cannot be read'),
                           ({'ldap': {'enabled': False}}, 'does not use LDAP')):
        with pytest.raises(InputError) as raised:
            ldap.validate_options(options, source)
        assert raised.value.exit_code == EXIT_USAGE and needle in raised.value.message
    (tmp_path / 'empty').write_text('\n')
    options.ldap_bind_password_file = str(tmp_path / 'empty')
    with pytest.raises(InputError):
        ldap.validate_options(options, saved)
    (tmp_path / 'pw').write_text('Bind-Secret-77a\n')
    options.ldap_bind_password_file = str(tmp_path / 'pw')
    ldap.validate_options(options, saved)
    assert redact_text('Bind-Secret-77a') == '***'

    class Target:
        edition = 'premium'
        version = versions.Version.parse('7.0.4')
    assert 'ldaps' in ldap.blocker(saved['ldap'], Target, options)
    options.ldap_ca_file = 'ca.pem'
    assert ldap.blocker(saved['ldap'], Target, options) is None
    Target.version = versions.Version.parse('5.1')
    assert 'no user besides the admin' in ldap.blocker(saved['ldap'], Target, options)


# -- the inventory's listing ------------------------------------------------------------------

class _ListingManager:
    def __init__(self, version, items):
        self.version = versions.Version.parse(version)
        self.has_tenants = True
        self.items = items
        self.calls = []

    def list_all(self, resource, include=None, page_size=1000, tenant=None,
                 all_tenants=False, **_):
        self.calls.append((resource, tenant, all_tenants))
        return [dict(i) for i in self.items
                if all_tenants or i['tenant_name'] == tenant or i['visibility'] == 'global']


def test_one_listing_over_every_tenant_from_42_and_per_tenant_before():
    items = [{'id': 'g', 'tenant_name': 't1', 'visibility': 'global'},
             {'id': 'a', 'tenant_name': 't1', 'visibility': 'tenant'},
             {'id': 'b', 'tenant_name': 't2', 'visibility': 'tenant'}]
    expected = {'t1': ['a', 'g'], 't2': ['b'], 't3': []}
    for version, calls in (('4.2', [('secrets', None, True)]),
                           ('4.1', [('secrets', 't1', False), ('secrets', 't2', False),
                                    ('secrets', 't3', False)])):
        manager = _ListingManager(version, items)
        grouped = inventory.Lister(manager, ['t1', 't2', 't3']).by_tenant('secrets', ['id'])
        assert {t: sorted(i['id'] for i in v) for t, v in grouped.items()} == expected
        assert manager.calls == calls
