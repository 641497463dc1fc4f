"""The upgrade flows the reliability scenarios drive, and the end-state invariants they assert.

A flow is the operator's command sequence on a 4.1 premium ``demo`` manager (profile
``old``): ``prepare`` -> ``new-host`` to a 7.0 ``empty`` manager (profile ``new``), or
``prepare --mode in-place`` -> teardown + install of 7.0 on the same host and port ->
``in-place``.  ``assert_upgraded`` checks everything issue 9 asks of a finished upgrade:
the snapshot created once and restored once, each deployment's agents installed once, the
target's data equal to the source's (simulator state and inventory files), the local
snapshot equal to the server's, no half-written file, private modes, and the old manager
untouched by the restore side.
"""
import os

from tests.reliability import harness

TARGET_VERSION = '7.0'
PREPARE = ('upgrade', 'prepare', '--target-version', TARGET_VERSION)
NEW_HOST = ('upgrade', 'new-host', '--to-profile', 'new', '--yes', '--users', 'rest-security')
IN_PLACE = ('upgrade', 'in-place', '--yes', '--users', 'rest-security')

# The 7.0 reinstalled in place runs at 0.2 (a 3 s reboot after the certificate restore): at
# the suite's usual 0.05 the 0.75 s reboot ends before the plugin starts watching for it and
# wait-restore then waits out its 60 s grace (reported; not a failure).
IN_PLACE_TIME_SCALE = 0.2

SNAPSHOT_CREATE = r'/snapshots/[^/]+$'
SNAPSHOT_RESTORE = r'/snapshots/[^/]+/restore$'
SNAPSHOT_ARCHIVE = r'/snapshots/[^/]+/archive$'


def setup(sc, simulated_manager, source='4.1', target=True, ssl=False):
    """The old manager (``source``, premium, ``demo`` data, SSH host, known admin password)
    as profile ``old`` (active), and with ``target`` a new 7.0 ``empty`` manager as profile
    ``new``; remembers the source's data and agents for ``assert_upgraded``.  ``ssl``: both
    serve https and the profiles carry each manager's CA as ``rest_certificate``."""
    old = simulated_manager(source, data='demo', ssh=True,
                            admin_password=harness.OLD_ADMIN_PASSWORD, ssl=ssl)
    sc.new = None
    if target:
        sc.new = simulated_manager(TARGET_VERSION, data='empty', ssh=True,
                                   admin_password=harness.NEW_ADMIN_PASSWORD, ssl=ssl)
        sc.profile('new', sc.new, activate=False, protocol=sc.new.protocol,
                   certificate=sc.new.ca_path)
    sc.profile('old', old, protocol=old.protocol, certificate=old.ca_path)
    sc.old = old
    sc.source_view = harness.data_view(old)
    sc.source_agents = sorted({(a['tenant_name'], a['deployment'])
                               for a in old.agents() if a.get('state') == 'started'})
    return sc


def prepare_args(mode='new-host', extra=()):
    return PREPARE + ('--mode', mode) + tuple(extra)


def command_args(mode):
    return NEW_HOST if mode == 'new-host' else IN_PLACE


def record_server_snapshot(sc):
    """Remember the SHA-256 of the snapshot archive on the old manager (after prepare)."""
    meta = sc.meta()
    sid = meta['snapshot']['id']
    sc.snapshot_id = sid
    sc.server_sha = {sid: harness.server_archive_sha256(sc.old, sid)}
    assert sc.server_sha[sid], 'the old manager has no archive of ' + sid
    sc.old_requests_after_prepare = len(sc.old.requests)
    return sid


def prepare(sc, mode='new-host', extra=()):
    result = sc.run(*prepare_args(mode, extra))
    assert result.returncode == 0, result
    record_server_snapshot(sc)
    return result


def reinstall(sc):
    """The operator's in-place middle part: tear the 4.1 down, install 7.0 on the same host
    and port (its own admin password), update the profile's password."""
    new = sc.old.reinstall(TARGET_VERSION, admin_password=harness.NEW_ADMIN_PASSWORD,
                           time_scale=IN_PLACE_TIME_SCALE)
    sc.profile('old', new, password=harness.NEW_ADMIN_PASSWORD)
    sc.new = new
    return new


def target(sc, mode):
    return sc.new


def assert_resumed(sc, step):
    """The journal shows the interruption of ``step`` and its resumption to success."""
    entries = [e for e in sc.journal() if e['step'] == step]
    events = [e['event'] for e in entries]
    assert 'interrupted' in events, (step, events)
    after = entries[events.index('interrupted') + 1:]
    outcome = [e for e in after if e['event'] in ('succeeded', 'skipped')]
    assert outcome, (step, events)
    resumed = any(e['event'] == 'resumed' for e in after) or \
        (outcome[0].get('details') or {}).get('recovered')
    assert resumed, (step, events, outcome[0])


def assert_snapshot_intact(sc):
    problems = harness.snapshot_files_problems(sc.workspace(), sc.server_sha)
    assert problems == [], problems


def assert_no_partial_files(sc):
    """No partial download left once the upgrade is done (a kill may orphan the hidden
    ``.<name>.*.tmp`` of an atomic write: never under a final name, not checked)."""
    leftovers = []
    for current, _, files in os.walk(sc.workspace()):
        leftovers.extend(os.path.join(current, name) for name in files
                         if name.endswith('.part'))
    assert leftovers == [], leftovers


def assert_private_modes(sc):
    wrong = [(rel, oct(mode), kind) for rel, mode, kind in harness.tree_modes(sc.workspace())
             if mode != (0o700 if kind == 'dir' else 0o600)]
    assert wrong == [], wrong


def assert_upgraded(sc, mode='new-host'):
    """Every invariant of a finished upgrade (see the module docstring)."""
    old, new = sc.old, sc.new
    meta = sc.meta()
    state = {e['step']: e['event'] for e in sc.journal()
             if 'check' not in (e.get('details') or {})}
    assert state.get('write-prepare-report') == 'succeeded', state
    assert state.get('finish') == 'succeeded', state
    # the snapshot: created once on the old manager, restored once on the target
    creates = harness.requests_matching(old, 'PUT', SNAPSHOT_CREATE, status=201)
    assert len(creates) == 1, creates
    assert len(harness.executions(old, 'create_snapshot')) == 1
    restores = harness.requests_matching(new, 'POST', SNAPSHOT_RESTORE, status=200)
    assert len(restores) == 1, restores
    # each deployment's agents installed once, on the target
    installs = new.agent_installs()
    assert sorted(installs) == sc.source_agents, (installs, sc.source_agents)
    assert set(installs.values()) == {1}, installs
    assert (meta.get('agents') or {}).get('succeeded') == len(sc.source_agents), meta
    # the target's data is the source's
    assert harness.data_view(new) == sc.source_view
    source = harness.read_json(os.path.join(sc.workspace(), 'inventory', 'source.json'))
    target_inv = harness.read_json(os.path.join(sc.workspace(), 'inventory', 'target.json'))
    # a 7.0 target also lists kinds a 4.1 source has not (sites): compare the source's kinds
    assert sorted(target_inv['tenants']) == sorted(source['tenants'])
    for tenant, kinds in source['tenants'].items():
        assert {kind: target_inv['tenants'][tenant].get(kind) for kind in kinds} == kinds, \
            tenant
    assert target_inv['users'] == source['users']
    assert (meta.get('reconciliation') or {}).get('ok') is True, meta.get('reconciliation')
    # the local snapshot is the server's, nothing half-written, modes private
    assert_snapshot_intact(sc)
    assert_no_partial_files(sc)
    assert_private_modes(sc)
    if mode == 'new-host':
        # the old manager was only read after prepare (riemann is stopped over SSH)
        assert harness.mutations(old, sc.old_requests_after_prepare) == []
        assert not old.unit_active('cloudify-riemann')
