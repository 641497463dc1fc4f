"""Fixtures of the fleet tests: the example blueprint deployed in cloudify-common's local
workflow environment (``cloudify.workflows.local``), in-process, against a simulated fleet.

Three things a manager provides and the local environment does not are provided here, each
at the seam cloudify-common leaves for it (docs/fleet-design.md, "Local mode"):

- imports: ``cloudify/types/types.yaml`` and ``plugin:cloudify-upgrade-plugin`` resolve
  through dsl_parser's ``DefaultImportResolver`` rules to tests/fleet/types.yaml and the
  repository's plugin.yaml (no network);
- secrets: ``local._parse_plan`` prepares the plan without a ``get_secret_method`` and
  ``DeploymentStorage.get_secret`` is not implemented, so a blueprint with ``get_secret``
  cannot even be deployed; ``SecretStore`` answers both (the plan preparation gets it as
  ``get_secret_method``, as the manager's deployment creation does, and a FileStorage
  subclass serves it to run-time evaluation);
- a deployment work directory: ``FileStorage`` (``InMemoryStorage.get_workdir`` raises).

The adapter's backend is a ``SimulatedFleet`` for the test's duration.
"""
import functools
import os
import threading
from pathlib import Path
from urllib.request import pathname2url

import pytest
from cloudify.workflows import local
from dsl_parser import tasks as dsl_tasks
from dsl_parser.import_resolver.default_import_resolver import DefaultImportResolver

from cloudify_upgrade_plugin.engine.redact import clear_registered_secrets
from cloudify_upgrade_plugin.fleet import adapter
from tests.fleet.simulated import SimulatedFleet

REPO = Path(__file__).resolve().parents[2]
PLUGIN_YAML = REPO / 'plugin.yaml'
EXAMPLE = REPO / 'examples' / 'fleet-upgrade.yaml'
TYPES = Path(__file__).with_name('types.yaml')
NODES = ('region_a', 'region_b', 'region_c')
# Secret values no test output may contain (distinct, greppable).
SECRETS = {
    'region_a_old_password': 'pw-a-old-Zq81',
    'region_a_new_password': 'pw-a-new-Xk27',
    'region_b_old_password': 'pw-b-old-Lm44',
    'region_b_new_password': 'pw-b-new-Rt90',
    'region_c_old_password': 'pw-c-old-Vb13',
    'region_c_new_password': 'pw-c-new-Hn65',
    'manager_ssh_key': '-----BEGIN OPENSSH PRIVATE KEY-----\nfleet-test-key-Qw52\n'
                       '-----END OPENSSH PRIVATE KEY-----\n',
}


def import_resolver(blueprint_path):
    """Rules mapping the manager-side imports of a blueprint to local files."""
    here = pathname2url(os.path.dirname(os.path.abspath(str(blueprint_path))))
    return DefaultImportResolver(rules=[
        # a relative import is looked for next to the blueprint first (dsl_parser
        # elements/imports.py _get_resource_location)
        {'file:{0}/cloudify/types/types.yaml'.format(here): 'file:{0}'.format(TYPES)},
        {'plugin:cloudify-upgrade-plugin': 'file:{0}'.format(PLUGIN_YAML)},
    ], fallback=False)


class SecretNotFound(Exception):
    status_code = 404      # what dsl_parser.tasks._validate_secrets looks for


class Secret(dict):
    """What a secret store returns: the evaluation handler reads ``.value``."""

    @property
    def value(self):
        return self['value']


class SecretStore:
    def __init__(self, values):
        self.values = dict(values)

    def get(self, key):
        if key not in self.values:
            raise SecretNotFound(key)
        return Secret(key=key, value=self.values[key])


class _DeploymentStorageWithSecrets(local.DeploymentStorage):
    def get_secret(self, key):
        return self._storage.secrets.get(key)


class FileStorageWithSecrets(local.FileStorage):
    def __init__(self, storage_dir, secrets):
        super().__init__(storage_dir)
        self.secrets = secrets

    def load(self, name):
        deployment = self.get_deployment(name)
        return None if deployment is None else _DeploymentStorageWithSecrets(self, deployment)


class LocalFleet:
    """The example deployment, its storage and the simulated fleet behind the adapter."""

    def __init__(self, env, storage_dir, backend):
        self.env = env
        self.storage_dir = storage_dir
        self.backend = backend

    def execute(self, workflow, **parameters):
        return self.env.execute(workflow, parameters=parameters, task_retries=0,
                                task_retry_interval=0, task_thread_pool_size=8)

    def instances(self):
        """{node id: node instance} (the example has one instance per node)."""
        return {instance.node_id: instance for instance in self.env.storage.get_node_instances()}

    def record(self, node_id, command):
        return dict(self.instances()[node_id].runtime_properties.get('upgrade_' + command)
                    or {})

    def status(self, command):
        return {node: self.record(node, command).get('status') for node in NODES}

    def set_record(self, node_id, command, record):
        """Write a command's record directly (what a killed execution leaves behind)."""
        instance = self.instances()[node_id]
        properties = dict(instance.runtime_properties)
        properties['upgrade_' + command] = record
        self.env.storage.update_node_instance(instance.id, instance.version,
                                              runtime_properties=properties, force=True)

    @property
    def workdir(self):
        return self.env.storage.get_workdir()

    def files(self):
        """Every file under the storage directory (deployment, instances, workspaces)."""
        for base, _, names in os.walk(self.storage_dir):
            for name in names:
                yield os.path.join(base, name)


@pytest.fixture(autouse=True)
def _forget_secrets():
    yield
    clear_registered_secrets()


@pytest.fixture
def secret_store(monkeypatch):
    store = SecretStore(SECRETS)
    monkeypatch.setattr(dsl_tasks, 'prepare_deployment_plan', functools.partial(
        dsl_tasks.prepare_deployment_plan, get_secret_method=store.get))
    return store


@pytest.fixture
def deploy(tmp_path, secret_store):
    """deploy(backend=None, blueprint=EXAMPLE, inputs=None) -> LocalFleet."""
    active = []

    def make(backend=None, blueprint=EXAMPLE, inputs=None):
        backend = backend or SimulatedFleet()
        storage_dir = tmp_path / 'cloudify-local'
        storage = FileStorageWithSecrets(str(storage_dir), secret_store)
        env = local.init_env(str(blueprint), name='fleet', inputs=inputs, storage=storage,
                             resolver=import_resolver(blueprint))
        context = adapter.use_backend(backend)
        context.__enter__()
        active.append(context)
        return LocalFleet(env, str(storage_dir), backend)

    yield make
    for context in reversed(active):
        context.__exit__(None, None, None)


@pytest.fixture
def barrier():
    """Two parties; a generous timeout turns "never together" into a broken barrier."""
    return threading.Barrier(2, timeout=30)
