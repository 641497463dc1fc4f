"""Helpers for tests that talk to simulated managers: raw HTTP calls (requests), waiting for
executions through the official client, polling a condition, and a file's SHA-256."""
import base64
import hashlib
import os
import time

import requests

from cloudify_rest_client.exceptions import CloudifyClientError


def auth_header(username, password):
    token = base64.b64encode('{0}:{1}'.format(username, password).encode('utf-8'))
    return 'Basic ' + token.decode('ascii')


def raw(mgr, method, path, auth=True, tenant='default_tenant', json_body=None, data=None,
        headers=None, username=None, password=None, timeout=10, **kwargs):
    """One HTTP request to `mgr` (path includes the /api/... prefix)."""
    hdrs = {}
    if auth:
        hdrs['Authorization'] = auth_header(username or mgr.admin_username,
                                            password or mgr.admin_password)
    if tenant:
        hdrs['Tenant'] = tenant
    if json_body is not None:
        hdrs['Content-Type'] = 'application/json'
        data = __import__('json').dumps(json_body)
    hdrs.update(headers or {})
    if getattr(mgr, 'ssl', False):
        kwargs.setdefault('verify', mgr.ca_path)
    return requests.request(method, mgr.url + path, headers=hdrs, data=data,
                            timeout=timeout, **kwargs)


def sha256_of(path):
    """Hex SHA-256 of a file (the tests' own, independent of the plugin's hashing)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def wait_until(predicate, timeout=10.0, interval=0.02, what='condition'):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for {0}'.format(what))
        time.sleep(interval)


def wait_execution(client, execution_id, timeout=15.0, tolerate_errors=True):
    """Poll executions.get until an end state; errors during outages are retried."""
    def done():
        try:
            ex = client.executions.get(execution_id)
        except (CloudifyClientError, requests.exceptions.ConnectionError):
            if not tolerate_errors:
                raise
            return None
        return ex if ex.status in ('terminated', 'failed', 'cancelled') else None
    return wait_until(done, timeout, what='execution {0}'.format(execution_id))


def is_json(response):
    return response.headers.get('Content-Type', '').startswith('application/json')


def wait_execution_any(mgr, execution_id, passwords, timeout=15.0):
    """Like wait_execution, trying each admin password in turn: around a restore the admin
    password changes from the target's to the source's (behaviour §3.8)."""
    clients = [mgr.client(password=p) for p in passwords]

    def done():
        for client in clients:
            try:
                ex = client.executions.get(execution_id)
            except (CloudifyClientError, requests.exceptions.ConnectionError):
                continue
            return ex if ex.status in ('terminated', 'failed', 'cancelled') else None
        return None
    return wait_until(done, timeout, what='execution {0}'.format(execution_id))


def trust_host_keys(cfy_workdir, *sims):
    """Pin the SSH host keys of simulated managers' hosts in the plugin's known-hosts file
    of ``cfy_workdir`` (<it>/.cloudify/upgrade_known_hosts), as an operator who checked
    them would have: commands then need neither a prompt nor --accept-new-host-keys."""
    lines = [sim.machine.host.known_hosts_line() for sim in sims
             if getattr(getattr(sim, 'machine', None), 'host', None) is not None]
    if not lines:
        return
    directory = os.path.join(str(cfy_workdir), '.cloudify')
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, 'upgrade_known_hosts')
    existing = ''
    if os.path.exists(path):
        with open(path) as stream:
            existing = stream.read()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, 'a') as stream:
        for line in lines:
            if line not in existing:
                stream.write(line + '\n')
