"""Contract: snapshot metadata written by edition and version, and 7.0's restore route.

References: behaviour §12.1 (which corrects §3.7 and, on 7.0, §3.6): the stage and composer
schema revisions are written only by premium managers (stage from 4.0.1, composer from 4.1,
MGR@4.0.1/4.1/7.0.4 snapshot_create(_legacy).py `_dump_metadata`, snapshots/utils.py); 7.0
takes the legacy route only when metadata.json holds `schema_revision`,
`composer_schema_revision` and `stage_schema_revision` (MGR@7.0.0..7.0.4
snapshot_restore.py `_is_legacy_snapshot`), otherwise the new per-entity route, on which a
legacy-shaped zip restores nothing, the execution ends `terminated` and the admin password,
rest-security.conf and certificates stay; a Kubernetes 7.0 manager refuses legacy snapshots.
The legacy route's Stage / Composer steps on a premium 7.0 target follow MGR@7.0.4
`_restore_db`, `_restore_stage`, `_restore_composer` (README 'Restore route').
"""
import io
import json
import zipfile

import pytest

from tests.simulator.helpers import raw, wait_execution, wait_execution_any, wait_until

REVISION_KEYS = ('schema_revision', 'stage_schema_revision', 'composer_schema_revision')


def create(mgr, sid='snap1', body=None):
    response = raw(mgr, 'PUT', '{0}/snapshots/{1}'.format(mgr.rules.api_prefix, sid),
                   json_body=body or {})
    assert response.status_code == 201, response.text
    done = wait_execution(mgr.client(), response.json()['id'])
    assert done.status == 'terminated', done.error
    archive = raw(mgr, 'GET', '{0}/snapshots/{1}/archive'.format(mgr.rules.api_prefix, sid))
    assert archive.status_code == 200
    return archive.content


def metadata_of(payload):
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        return json.loads(zf.read('metadata.json'))


def names_of(payload):
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        return set(zf.namelist())


def with_metadata(payload, **changes):
    """A copy of the zip whose metadata.json has `changes` (None deletes a key)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(payload)) as src, \
            zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == 'metadata.json':
                meta = json.loads(data)
                for key, value in changes.items():
                    if value is None:
                        meta.pop(key, None)
                    else:
                        meta[key] = value
                data = json.dumps(meta).encode('utf-8')
            dst.writestr(info, data)
    return out.getvalue()


def upload(mgr, payload, sid='snap1'):
    response = raw(mgr, 'PUT', '/api/v3.1/snapshots/{0}/archive'.format(sid), data=payload,
                   headers={'Content-Type': 'application/octet-stream'})
    assert response.status_code == 201, response.text


def restore(mgr, sid='snap1', source=None, **body):
    """Restore and wait; `source`: the manager whose admin password a legacy restore of a
    >= 4.2 snapshot installs (behaviour §3.8), tried as well."""
    payload = {'force': True, 'restore_certificates': False, 'no_reboot': False}
    payload.update(body)
    response = raw(mgr, 'POST', '/api/v3.1/snapshots/{0}/restore'.format(sid),
                   json_body=payload)
    assert response.status_code == 200, response.text
    passwords = [mgr.admin_password] + ([source.admin_password] if source else [])
    return wait_execution_any(mgr, response.json()['id'], passwords, timeout=20)


def working_password(mgr, source=None):
    """The admin password the target accepts now (its own, or the source's once the
    post-restore shell installed the source admin)."""
    candidates = [mgr.admin_password] + ([source.admin_password] if source else [])

    def found():
        for password in candidates:
            if raw(mgr, 'GET', '/api/v3.1/tenants', password=password).status_code == 200:
                return password
        return None
    return wait_until(found, 10, what='an admin password that works')


def deployments(mgr, source=None):
    client = mgr.client(password=working_password(mgr, source))
    return {(d['tenant_name'], d['id']) for d in client.deployments.list(_all_tenants=True)}


# ---- metadata by edition and version (behaviour §12.1, correcting §3.7) --------------------
@pytest.mark.parametrize('version,edition,body,expected', [
    ('3.4.2', 'premium', None, set()),
    ('4.0.0', 'premium', None, set()),
    ('4.0.1', 'community', None, {'schema_revision'}),
    ('4.0.1', 'premium', None, {'schema_revision', 'stage_schema_revision'}),
    ('4.0.1+update3', 'premium', None, {'schema_revision', 'stage_schema_revision'}),
    ('4.1', 'community', None, {'schema_revision'}),
    ('4.1', 'premium', None, set(REVISION_KEYS)),
    ('5.1', 'community', None, {'schema_revision'}),
    ('6.4', 'premium', None, set(REVISION_KEYS)),
    ('7.0', 'community', {'legacy': True}, {'schema_revision'}),
    ('7.0', 'premium', {'legacy': True}, set(REVISION_KEYS)),
    ('7.0', 'premium', None, set()),
])
def test_revision_keys_by_edition_and_version(simulated_manager, version, edition, body,
                                              expected):
    """behaviour §12.1: schema_revision from 4.0.1; stage_schema_revision (4.0.1+) and
    composer_schema_revision (4.1+) only on premium; never on community, 7.0 `legacy: true`
    included; the 7.0 new format has none of them."""
    payload = create(simulated_manager(version, edition=edition, data='demo'), body=body)
    metadata = metadata_of(payload)
    assert set(REVISION_KEYS) & set(metadata) == expected
    assert all(metadata[k] for k in expected)


def test_70_new_format_layout(simulated_manager):
    """behaviour §12.1 / MGR@7.0.4 snapshot_create.py: without `legacy`, 7.0 writes mgmt/ and
    tenants/<tenant>/ members and metadata {snapshot_version, execution_id}; no DB dump, no
    ssl/, no rest-security.conf, no agents.json."""
    mgr = simulated_manager('7.0', data='demo')
    payload = create(mgr)
    names = names_of(payload)
    assert metadata_of(payload) == {'snapshot_version': '7.0.4',
                                    'execution_id': metadata_of(payload)['execution_id']}
    assert any(n.startswith('mgmt/') and n.endswith('.json') for n in names)
    assert any(n.startswith('tenants/default_tenant/') and n.endswith('.json')
               for n in names)
    assert any(n.startswith('tenants/t_prod/') and n.endswith('.json') for n in names)
    tops = {n.split('/', 1)[0] for n in names}
    assert not tops & {'pg_data', 'ssl', 'rest-security.conf', 'agents.json',
                       'simulator-data.json'}


def test_distributed_70_writes_new_format_even_when_legacy_asked(simulated_manager):
    """MGR@7.0.4 cloudify_system_workflows/snapshot.py: on Kubernetes a legacy snapshot
    cannot be created at all (behaviour §12.1)."""
    payload = create(simulated_manager('7.0', data='demo', distributed=True),
                     body={'legacy': True})
    assert not set(REVISION_KEYS) & set(metadata_of(payload))
    assert any(n.startswith('tenants/') for n in names_of(payload))


# ---- the route rule, for every snapshot version (behaviour §12.1) ------------------------------
@pytest.mark.parametrize('version,edition,body,route', [
    ('3.4.2', 'premium', None, 'new'),
    ('4.0.0', 'premium', None, 'new'),
    ('4.0.1+update3', 'premium', None, 'new'),
    ('4.1', 'premium', None, 'legacy'),
    ('4.4', 'community', None, 'new'),
    ('4.4', 'premium', None, 'legacy'),
    ('5.1', 'community', None, 'new'),
    ('6.4', 'premium', None, 'legacy'),
    ('7.0', 'community', {'legacy': True}, 'new'),
    ('7.0', 'premium', {'legacy': True}, 'legacy'),
])
def test_70_route_for_every_snapshot_version(simulated_manager, version, edition, body,
                                             route):
    """behaviour §12.1: the legacy (DB) route only with all three keys, whatever the version;
    otherwise the new route, where a legacy-shaped zip restores nothing and terminates."""
    source = simulated_manager(version, edition=edition, data='demo')
    payload = create(source, body=body)
    target = simulated_manager('7.0', edition='premium')
    upload(target, payload)
    done = restore(target, source=source)
    assert done.status == 'terminated', done.error
    assert 'restore route {0}'.format(route) in target.events()
    if route == 'legacy':
        assert ('default_tenant', 'hw-1') in deployments(target, source)
        assert 'db restored' in target.events()
    else:
        assert deployments(target) == set()
        assert 'db restored' not in target.events()
        assert target.events('entities restored') == ['entities restored 0']


def test_new_route_on_legacy_zip_changes_nothing(simulated_manager):
    """behaviour §12.1: on the new route a legacy-shaped zip restores nothing; the validator
    (clean target, bootstrap admin), rest-security.conf, certificates and the admin account
    are skipped: the admin password stays, no REST restart, no reboot; the uploaded zip is
    not deleted (the new route returns before the rmtree)."""
    source = simulated_manager('5.1', edition='community', data='demo')
    payload = create(source)
    target = simulated_manager('7.0', data='demo')
    before = deployments(target)
    conf_before = target.read_host_file('opt/manager/rest-security.conf')
    cert_before = target.read_host_file('etc/cloudify/ssl/cloudify_internal_cert.pem')
    upload(target, payload)
    done = restore(target, force=False, restore_certificates=True, no_reboot=False)
    assert done.status == 'terminated', done.error
    assert deployments(target) == before
    wait_until(lambda: raw(target, 'GET', '/api/v3.1/snapshot-status',
                           auth=False).json()['status'] == 'not-running', 5)
    events = target.events()
    for event in ('db restored', 'admin updated', 'rest-security merged',
                  'cloudify-restservice stopped', 'certificates replaced', 'reboot'):
        assert event not in events
    assert raw(target, 'GET', '/api/v3.1/blueprints').status_code == 200    # target password
    assert raw(target, 'GET', '/api/v3.1/blueprints',
               password=source.admin_password).status_code == 401
    assert target.read_host_file('opt/manager/rest-security.conf') == conf_before
    assert target.read_host_file('etc/cloudify/ssl/cloudify_internal_cert.pem') == \
        cert_before
    assert [s.id for s in target.client().snapshots.list()] == ['snap1']


def test_new_route_restores_new_format(simulated_manager):
    """behaviour §12.1: a new-format zip restores its entities on the new route (tenants,
    users but admin, every tenant's resources); the admin keeps the target's password and
    the snapshot's create execution is marked terminated (MGR@7.0.4
    `_new_restore_update_execution_status`)."""
    source = simulated_manager('7.0', data='demo')
    payload = create(source)
    create_id = metadata_of(payload)['execution_id']
    target = simulated_manager('7.0')
    upload(target, payload)
    done = restore(target)
    assert done.status == 'terminated', done.error
    assert {('default_tenant', 'hw-1'), ('t_prod', 'prod-web')} <= deployments(target)
    client = target.client()
    assert {u.username for u in client.users.list()} == {'admin', 'alice', 'bob'}
    assert client.executions.get(create_id).status == 'terminated'
    assert raw(target, 'GET', '/api/v3.1/blueprints').status_code == 200
    assert 'admin updated' not in target.events()


def test_new_format_carries_groups_filters_schedules_and_user_groups(simulated_manager):
    """MGR@7.0.4 snapshot_create.py `_dump_management` (tenants, permissions, user_groups,
    users) and `_dump_tenant` (... deployment_groups ... deployments_filters,
    blueprints_filters ... execution_schedules): the new format dumps them and the new route
    creates them (snapshot_restore.py `_new_restore_parse_and_restore`)."""
    source = simulated_manager('7.0', data='demo')
    payload = create(source)
    target = simulated_manager('7.0')
    upload(target, payload)
    assert restore(target).status == 'terminated'
    for kind in ('deployment_groups', 'deployments_filters', 'blueprints_filters',
                 'execution_schedules', 'user_groups'):
        with source.store.lock:
            expected = sorted(source.store.key(kind, r) for r in source.store.all(kind))
        with target.store.lock:
            found = sorted(target.store.key(kind, r) for r in target.store.all(kind))
        assert expected and found == expected, kind


def test_distributed_70_refuses_legacy_snapshots(simulated_manager):
    """behaviour §12.1: a Kubernetes 7.0 manager fails a legacy restore with "legacy snapshots
    cannot be restored on a distributed manager" (inside the workflow, after the upload)
    and changes nothing; new-format zips still restore."""
    legacy = create(simulated_manager('4.4', data='demo'))
    target = simulated_manager('7.0', distributed=True)
    upload(target, legacy)
    done = restore(target)
    assert done.status == 'failed'
    assert 'legacy snapshots cannot be restored on a distributed manager' in done.error
    assert deployments(target) == set()
    new = create(simulated_manager('7.0', data='demo'), 'snap2')
    upload(target, new, 'snap2')
    assert restore(target, 'snap2').status == 'terminated'
    assert ('default_tenant', 'hw-1') in deployments(target)


# ---- the legacy route's Stage / Composer steps on 7.0 (MGR@7.0.4 `_restore_db`) -----------
def _padded(payload, **keys):
    """A community zip whose metadata gains the missing revision keys."""
    return with_metadata(payload, **keys)


@pytest.mark.parametrize('edition,outcome', [('premium', 'failed'),
                                             ('community', 'terminated')])
def test_empty_stage_revision_on_legacy_route(simulated_manager, edition, outcome):
    """behaviour §12.1 [U] resolved from MGR@7.0.4 `_restore_stage`: an empty stage revision
    makes `npm run db-migrate-down-to ''` fail; on a premium target the restore fails after
    the main DB was replaced (snapshots >= 4.3), a community target skips both UI steps."""
    source = simulated_manager('5.1', edition='community', data='demo')
    payload = _padded(create(source), stage_schema_revision='', composer_schema_revision='')
    target = simulated_manager('7.0', edition=edition)
    upload(target, payload)
    done = restore(target, source=source)
    assert 'restore route legacy' in target.events()
    assert done.status == outcome, done.error
    assert 'db restored' in target.events()
    assert ('default_tenant', 'hw-1') in deployments(target, source)
    if outcome == 'failed':
        assert 'db-migrate-down-to' in done.error


def test_empty_stage_revision_forgiven_before_43(simulated_manager):
    """MGR@7.0.4 `_restore_db`: a stage failure is only a warning for snapshots < 4.3."""
    payload = _padded(create(simulated_manager('4.0.1', edition='community', data='demo')),
                      stage_schema_revision='', composer_schema_revision='')
    target = simulated_manager('7.0')
    upload(target, payload)
    done = restore(target)
    assert done.status == 'terminated', done.error
    assert 'stage not restored' in target.events()


def test_lenient_stage_restore_option(simulated_manager):
    """README 'Options': legacy_stage_restore='lenient' selects the other outcome of the
    [U] of behaviour §12.1 (the UI steps succeed whatever the zip holds)."""
    source = simulated_manager('5.1', edition='community', data='demo')
    payload = _padded(create(source), stage_schema_revision='', composer_schema_revision='')
    target = simulated_manager('7.0', legacy_stage_restore='lenient')
    upload(target, payload)
    assert restore(target, source=source).status == 'terminated'
    with pytest.raises(ValueError):
        simulated_manager('7.0', legacy_stage_restore='maybe')


def test_composer_revision_needs_composer_data(simulated_manager):
    """MGR@7.0.4 `_restore_composer` (premium target, snapshot >= 4.2, non-empty revision):
    `psql -f composer_data` fails without the member and is not forgiven; an empty
    revision skips the step."""
    community = create(simulated_manager('5.1', edition='community', data='demo'))
    assert 'composer_data' not in names_of(community)
    payload = _padded(community, stage_schema_revision='sim-stage',
                      composer_schema_revision='sim-composer')
    target = simulated_manager('7.0')
    upload(target, payload)
    done = restore(target)
    assert done.status == 'failed'
    assert 'composer_data' in done.error


def test_empty_schema_revision_fails_before_the_db(simulated_manager):
    """research of MGR@7.0.4 `restore`: `.get(M_SCHEMA_REVISION, default)` keeps an empty
    value and the alembic downgrade fails before any table is cleared [I]."""
    payload = _padded(create(simulated_manager('5.1', edition='community', data='demo')),
                      schema_revision='', stage_schema_revision='',
                      composer_schema_revision='')
    target = simulated_manager('7.0', edition='community')
    upload(target, payload)
    done = restore(target)
    assert done.status == 'failed'
    assert 'alembic' in done.error
    assert 'db restored' not in target.events()
