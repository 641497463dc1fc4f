"""Run one workflow of an existing local fleet deployment in this process, as a separate
program (the kill test starts it, then SIGKILLs it mid-run):

    python -m tests.fleet.run_workflow STORAGE_DIR SECRETS_FILE WORKFLOW PARAMETERS_JSON

STORAGE_DIR: the ``FileStorage`` directory of a deployment named ``fleet`` (made by the
``deploy`` fixture); SECRETS_FILE: a JSON object {secret name: value} (0600, outside the
storage directory) for run-time ``get_secret``.  Exit 0 when the workflow ended, 1 when it
failed.
"""
import json
import sys

from cloudify.workflows import local

from tests.fleet.conftest import FileStorageWithSecrets, SecretStore


def main(storage_dir, secrets_file, workflow, parameters):
    with open(secrets_file) as stream:
        secrets = SecretStore(json.load(stream))
    env = local.load_env('fleet', storage=FileStorageWithSecrets(storage_dir, secrets))
    try:
        env.execute(workflow, parameters=json.loads(parameters), task_retries=0,
                    task_retry_interval=0, task_thread_pool_size=8)
    except Exception as error:
        print('workflow failed: {0}'.format(error))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:5]))
