"""dsl_parser (cloudify-common 7.0.5, the parser `cfy blueprints validate` and the manager use)
accepts plugin.yaml with the example blueprint, and what they declare is what the code
implements: every operation and workflow mapping resolves to a function of the package.
"""
import importlib

import pytest
from dsl_parser import tasks as dsl_tasks
from dsl_parser.parser import parse_from_path

from tests.fleet.conftest import EXAMPLE, NODES, SECRETS, import_resolver

NODE_TYPE = 'cloudify.nodes.upgrade.ManagedUpgrade'
WORKFLOWS = {
    'upgrade_plan': {'concurrency': 5},
    'upgrade_prepare': {'concurrency': 2},
    'upgrade_cutover': {'concurrency': 1, 'rehearse': False},
    'upgrade_verify_heals': {'concurrency': 5},
}


@pytest.fixture(scope='module')
def plan():
    return parse_from_path(str(EXAMPLE), resolver=import_resolver(EXAMPLE))


def _function(mapping):
    module, _, name = mapping.rpartition('.')
    return getattr(importlib.import_module(module), name)


def test_the_example_has_one_managed_upgrade_per_node_template(plan):
    nodes = {node['id']: node for node in plan['nodes']}
    assert sorted(nodes) == list(NODES)
    for node in nodes.values():
        assert NODE_TYPE in node['type_hierarchy']
        assert node['capabilities']['scalable']['properties']['default_instances'] == 1
        assert node['properties']['mode'] == 'new-host'
        assert node['properties']['cutover_on_install'] is False
        assert node['properties']['old_manager']['password'] == {
            'get_secret': '{0}_old_password'.format(node['id'])}
        assert node['properties']['new_manager']['ssh']['key'] == {
            'get_secret': 'manager_ssh_key'}
    assert nodes['region_c']['properties']['users_policy'] == 'rest-security'


def test_the_example_needs_exactly_the_secrets_it_documents(plan):
    asked = set()

    def get_secret(key):
        asked.add(key)
        return {'value': 'x'}

    deployment = dsl_tasks.prepare_deployment_plan(plan, get_secret_method=get_secret)
    assert asked == set(SECRETS)
    properties = {node['id']: node['properties'] for node in deployment['nodes']}
    assert properties['region_b']['old_manager']['address'] == '192.0.2.12'
    assert properties['region_b']['old_manager']['protocol'] == 'http'
    assert properties['region_b']['target_version'] == '7.0.4'
    description = EXAMPLE.read_text()
    for name in ('<name>_old_password', '<name>_new_password', 'manager_ssh_key'):
        assert name in description


def test_the_plugin_is_a_central_deployment_agent_plugin(plan):
    for plugin in plan['deployment_plugins_to_install']:
        assert plugin['name'] == 'upgrade'
        assert plugin['executor'] == 'central_deployment_agent'
        assert plugin['package_name'] == 'cloudify-upgrade-plugin'
    ours = [p for p in plan['workflow_plugins_to_install'] if p['name'] == 'upgrade']
    assert len(ours) == 1 and ours[0]['package_name'] == 'cloudify-upgrade-plugin'


def test_every_operation_maps_to_a_function_of_the_fleet_package(plan):
    operations = plan['nodes'][0]['operations']
    expected = {
        'cloudify.interfaces.lifecycle.create': 'plan',
        'cloudify.interfaces.lifecycle.configure': 'prepare',
        'cloudify.interfaces.lifecycle.start': 'start',
        'cloudify.interfaces.upgrade.plan': 'plan',
        'cloudify.interfaces.upgrade.prepare': 'prepare',
        'cloudify.interfaces.upgrade.cutover': 'cutover',
        'cloudify.interfaces.upgrade.verify_heals': 'verify_heals',
    }
    for name, function in expected.items():
        operation = operations[name]
        assert operation['plugin'] == 'upgrade'
        assert operation['operation'] == 'cloudify_upgrade_plugin.fleet.operations.' + function
        assert callable(_function(operation['operation']))
        assert operation['inputs']['old_manager'] == {
            'get_property': ['SELF', 'old_manager']}
        assert operation['inputs']['new_manager'] == {
            'get_property': ['SELF', 'new_manager']}
    assert operations['cloudify.interfaces.upgrade.cutover']['inputs']['rehearse'] is False


def test_the_four_workflows_take_concurrency_and_the_instance_filters(plan):
    for name, defaults in WORKFLOWS.items():
        workflow = plan['workflows'][name]
        assert workflow['plugin'] == 'upgrade'
        assert workflow['operation'] == 'cloudify_upgrade_plugin.fleet.workflows.' + name
        assert callable(_function(workflow['operation']))
        parameters = workflow['parameters']
        assert set(parameters) == set(defaults) | {'node_ids', 'node_instance_ids'}
        for parameter, default in defaults.items():
            assert parameters[parameter]['default'] == default
        assert parameters['concurrency']['type'] == 'integer'
        assert parameters['node_instance_ids'] == {
            'description': 'Only these node instances.', 'type': 'list', 'default': []}
