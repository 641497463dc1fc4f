"""The reliability suite's invariants (issue 9): what every scenario asserts after its runs.

The runs themselves (profiles, `cfy` runs, kill points, request gates, the operator's
sequence) are the one flow helper, tests/flows.py (``Flow``, the ``flow`` fixture).  Here:

- ``show``: the full story of a run for an assertion message;
- ``snapshot_files_problems``: every ``snapshot/*.zip`` has a matching ``.sha256`` equal to
  the server archive's SHA-256, and every route copy ``<id>-route.zip`` is its original with
  only the missing schema revisions added (``route_copy_problems``); ``tree_modes``: the
  modes of a workspace;
- ``assert_upgraded`` (every invariant of a finished upgrade), ``assert_resumed`` (the
  journal shows an interruption and its resumption), ``assert_snapshot_intact``,
  ``assert_no_partial_files``, ``assert_private_modes``.
"""
import json
import os
import zipfile

from tests import flows
from tests.simulator.helpers import sha256_of


def show(result, limit=6000):
    """The full story of a run for an assertion message (pytest shortens reprs)."""
    return 'cfy {0} -> rc {1}\n--- stdout\n{2}\n--- stderr\n{3}'.format(
        ' '.join(result.argv), result.returncode, result.stdout[-limit:],
        result.stderr[-limit:])


ROUTE_COPY_SUFFIX = '-route'
ROUTE_KEYS = ('schema_revision', 'composer_schema_revision', 'stage_schema_revision')


def route_copy_problems(copy_path, original_path):
    """What is wrong with ``<id>-route.zip``, the copy of ``<id>.zip`` the 7.0 restore route
    needs (issue 14): [] when it holds the original's members with the same CRCs and sizes
    and a metadata.json that only adds missing schema revisions."""
    name = os.path.basename(copy_path)
    if not os.path.isfile(original_path):
        return ['{0}: no original {1} beside it'.format(name, os.path.basename(original_path))]
    with zipfile.ZipFile(original_path) as original, zipfile.ZipFile(copy_path) as copy:
        if copy.testzip() is not None:
            return ['{0}: CRC check failed'.format(name)]
        theirs = {i.filename: (i.CRC, i.file_size) for i in original.infolist()}
        ours = {i.filename: (i.CRC, i.file_size) for i in copy.infolist()}
        old = json.loads(original.read('metadata.json'))
        new = json.loads(copy.read('metadata.json'))
    problems = []
    if sorted(theirs) != sorted(ours):
        problems.append('{0}: members differ from the original'.format(name))
    problems.extend('{0}: {1} differs from the original'.format(name, member)
                    for member in theirs if member != 'metadata.json' and
                    member in ours and ours[member] != theirs[member])
    added = {k: v for k, v in new.items() if k not in old}
    if {k: new.get(k) for k in old} != old or set(added) - set(ROUTE_KEYS) or not added:
        problems.append('{0}: metadata.json {1} is not the original\'s {2} plus missing '
                        'revisions'.format(name, new, old))
    return problems


def snapshot_files_problems(workspace, server_sha256, require_sha_file=True):
    """What is wrong with the snapshot zips under ``workspace/snapshot``: [] when each
    ``<id>.zip`` has a ``.sha256`` that matches it and equals ``server_sha256[<id>]``
    (the SHA-256 of the archive on the manager), and each route copy ``<id>-route.zip``
    has a matching ``.sha256`` and is ``<id>.zip`` with only missing schema revisions
    added to its metadata.json (``route_copy_problems``).  A missing directory is fine.
    ``require_sha_file=False`` (right after a kill): a zip may lack its .sha256 (the
    process may die between the two renames), but its content must be the server's."""
    problems = []
    directory = os.path.join(workspace, 'snapshot')
    if not os.path.isdir(directory):
        return problems
    for name in sorted(os.listdir(directory)):
        if not name.endswith('.zip'):
            continue
        path = os.path.join(directory, name)
        sid = name[:-4]
        actual = sha256_of(path)
        try:
            with open(path + '.sha256', encoding='utf-8') as stream:
                recorded = stream.read().split()[0]
        except (FileNotFoundError, IndexError):
            recorded = None
            if require_sha_file:
                problems.append('{0}: no .sha256 next to it'.format(name))
                continue
        if recorded is not None and recorded != actual:
            problems.append('{0}: .sha256 {1} != file {2}'.format(name, recorded, actual))
        if sid.endswith(ROUTE_COPY_SUFFIX) and sid not in server_sha256:
            problems.extend(route_copy_problems(
                path, os.path.join(directory, sid[:-len(ROUTE_COPY_SUFFIX)] + '.zip')))
            continue
        expected = server_sha256.get(sid)
        if expected is None:
            problems.append('{0}: no server archive to compare with'.format(name))
        elif expected != actual:
            problems.append('{0}: sha256 {1} != server archive {2}'.format(
                name, actual, expected))
    return problems


def tree_modes(root):
    """[(relpath, mode, 'dir'|'file')] of everything under ``root``."""
    found = []
    for current, dirs, files in os.walk(root):
        for name in dirs:
            full = os.path.join(current, name)
            found.append((os.path.relpath(full, root), os.stat(full).st_mode & 0o777, 'dir'))
        for name in files:
            full = os.path.join(current, name)
            found.append((os.path.relpath(full, root), os.stat(full).st_mode & 0o777,
                          'file'))
    return found


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
    problems = snapshot_files_problems(sc.workspace(), sc.server_sha)
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
    wrong = [(rel, oct(mode), kind) for rel, mode, kind in tree_modes(sc.workspace())
             if mode != (0o700 if kind == 'dir' else 0o600)]
    assert wrong == [], wrong


def assert_upgraded(sc, mode='new-host'):
    """Every invariant of a finished upgrade: the snapshot created once and restored once,
    each deployment's agents installed once, the target's data equal to the source's
    (simulator state and inventory files), the local snapshot equal to the server's, no
    half-written file, private modes, and (new-host) the old manager untouched by the
    restore side, its auto-heal fenced (3.x/4.x) or it fenced (5.x+: maintenance mode, 5.2.x
    schedules disabled and recorded)."""
    old, new = sc.old, sc.new
    meta = sc.meta()
    state = {e['step']: e['event'] for e in sc.journal()
             if 'check' not in (e.get('details') or {})}
    assert state.get('write-prepare-report') == 'succeeded', state
    assert state.get('finish') == 'succeeded', state
    # the snapshot: created once on the old manager, restored once on the target
    creates = flows.requests_matching(old, 'PUT', flows.SNAPSHOT_CREATE, status=201)
    assert len(creates) == 1, creates
    assert len(flows.executions(old, 'create_snapshot')) == 1
    restores = flows.requests_matching(new, 'POST', flows.SNAPSHOT_RESTORE, status=200)
    assert len(restores) == 1, restores
    # each deployment's agents installed once, on the target
    installs = new.agent_installs()
    assert sorted(installs) == sc.source_agents, (installs, sc.source_agents)
    assert set(installs.values()) == {1}, installs
    assert (meta.get('agents') or {}).get('succeeded') == len(sc.source_agents), meta
    # the target's data is the source's
    assert flows.data_view(new) == sc.source_view
    source = flows.read_json(os.path.join(sc.workspace(), 'inventory', 'source.json'))
    target_inv = flows.read_json(os.path.join(sc.workspace(), 'inventory', 'target.json'))
    # a 7.0 target also lists kinds a 4.1 source has not (sites): compare the source's kinds,
    # except the known losses reconcile reported apart (a 5.2.x source's filters, its
    # schedules' rules: runbooks/reconcile.py), which must be all it reported
    reconciliation = meta.get('reconciliation') or {}
    assert reconciliation.get('ok') is True and reconciliation.get('differences') == [], \
        reconciliation
    known = {e['kind'] for e in (reconciliation.get('expected') or []) +
             (reconciliation.get('attention') or [])}
    if 'execution_schedules' in known:
        known.add('schedules_unreadable')
    assert sorted(target_inv['tenants']) == sorted(source['tenants'])
    for tenant, kinds in source['tenants'].items():
        compared = {kind: value for kind, value in kinds.items() if kind not in known}
        assert {kind: target_inv['tenants'][tenant].get(kind) for kind in compared} == \
            compared, tenant
    assert target_inv['users'] == source['users']
    # the local snapshot is the server's, nothing half-written, modes private
    assert_snapshot_intact(sc)
    assert_no_partial_files(sc)
    assert_private_modes(sc)
    if mode == 'new-host':
        # the old manager was only read after prepare (riemann is stopped over SSH), but for
        # its fence from 5.x (issue 15): maintenance mode, 5.2.x schedules disabled
        fence = [m for m in flows.mutations(old, sc.old_requests_after_prepare)
                 if m[0] == 'POST' and m[1].endswith('/maintenance/activate')
                 or m[0] == 'PATCH' and '/execution-schedules/' in m[1]]
        assert [m for m in flows.mutations(old, sc.old_requests_after_prepare)
                if m not in fence] == []
        fenced = old.rules.v >= (5, 0, 0)
        if not fenced:      # 5.x+ have no riemann unit (behaviour §7.4)
            assert not old.unit_active('cloudify-riemann')
        assert (old.maintenance_state()['status'] == 'activated') is fenced
        if old.rules.has_execution_schedules and old.rules.v < (6, 0, 0):
            with old.state.lock:
                enabled = [s['id'] for s in old.state.all('execution_schedules')
                           if s['enabled']]
            assert enabled == []
            recorded = {s['id'] for s in (meta.get('old_manager_fence') or {}).get(
                'schedules') or []}
            assert recorded == {'nightly-check'}, meta.get('old_manager_fence')
