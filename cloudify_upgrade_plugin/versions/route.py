"""The restore route a target takes for a snapshot, and what a copy of the snapshot must add.

Before 7.0 a manager has one restore route (the database dump).  A 7.0 manager picks its
route from the snapshot's ``metadata.json``: the legacy (database dump) route only when the
three keys ``schema_revision``, ``composer_schema_revision`` and ``stage_schema_revision``
are present (key presence: an empty value counts), otherwise the per-entity route, which
restores a legacy-shaped zip as nothing (cloudify-manager@7.0.0…7.0.4
mgmtworker/cloudify_system_workflows/snapshots/snapshot_restore.py `_is_legacy_snapshot`,
`restore`; behaviour §12.1).  Every community snapshot and every 4.0.x snapshot lacks a key.

Whether a copy whose metadata gains the missing keys restores correctly was decided from
the same file at the 7.0.x tags (`restore`, `_restore_db`, `_restore_stage`,
`_restore_composer`):

- the legacy route reads ``schema_revision`` with a default of ``333998bc1627`` (4.0) only
  when the key is absent: a present empty value reaches alembic and fails, so a copy adds
  ``333998bc1627``, and only for 4.0.0 snapshots (the only ones without it);
- an empty composer revision skips the composer step on every target;
- on a community target the stage and composer steps return at once, whatever the values;
- on a premium target the stage step runs with the revision given: an empty one fails
  after the main database was replaced, which the workflow forgives only for snapshots
  older than 4.3 (``ManagerVersion``: "4.1.0-p3-4.0.1" counts as 4.1.0).

So a copy restores correctly on a community 7.0 target for every 4.0+ snapshot, and on a
premium 7.0 target for snapshots older than 4.3 (any missing composer key is harmless);
a premium 7.0 target cannot restore a community 4.3+ snapshot (5.1, a 7.0 ``legacy: true``
one...).  A 7.0 manager on Kubernetes (7.0.3+) refuses every legacy snapshot inside the
workflow ("legacy snapshots cannot be restored on a distributed manager").
"""
from dataclasses import dataclass, field
from typing import Dict, Iterable, Optional, Tuple

from cloudify_upgrade_plugin.versions.rules import snapshot_carries_passwords
from cloudify_upgrade_plugin.versions.version import Version, as_version

SCHEMA_REVISION = 'schema_revision'
COMPOSER_REVISION = 'composer_schema_revision'
STAGE_REVISION = 'stage_schema_revision'
REVISION_KEYS = (SCHEMA_REVISION, COMPOSER_REVISION, STAGE_REVISION)
# cloudify-manager@7.0.4 snapshot_restore.py SnapshotRestore.SCHEMA_REVISION_4_0
SCHEMA_REVISION_4_0 = '333998bc1627'

ROUTE_RULE_SINCE = Version((7, 0, 0))
STAGE_FAILURE_FATAL_FROM = Version((4, 3, 0))
# cloudify-manager@7.0.3-build and 7.0.4 snapshot_restore.py `restore` (absent in 7.0.0-7.0.2)
KUBERNETES_REFUSAL_SINCE = Version((7, 0, 3))
DISTRIBUTED_REFUSAL = 'legacy snapshots cannot be restored on a distributed manager'
# Services only the Kubernetes build of 7.0 lists in `GET /status` (cloudify-manager@7.0.4
# rest-service/manager_rest/rest/resources_v3_1/status.py OPTIONAL_SERVICES when
# RUNTIME_ENVIRONMENT is k8s; optional services are listed when Prometheus reports them)
KUBERNETES_STATUS_SERVICES = ('Kubernetes State Metrics', 'SeaweedFS Master',
                              'Cloudify Console Backend', 'Cloudify Console Frontend',
                              'Cloudify Composer Backend', 'Cloudify Composer Frontend')

SINGLE, LEGACY, ENTITIES = 'single', 'legacy', 'entities'
AS_IS, COPY, BLOCK = 'as-is', 'copy', 'block'


@dataclass(frozen=True)
class RoutePlan:
    """What the target will do with the snapshot, and what the plugin does about it.

    ``route``: ``single`` (a target before 7.0), ``legacy`` or ``entities`` (7.0);
    ``action``: ``as-is`` (restore the snapshot itself), ``copy`` (restore a copy whose
    metadata.json gains ``add``) or ``block`` (no version of the snapshot restores
    correctly there); ``reason`` says why, for the check's message.
    """

    route: str
    action: str
    reason: str
    add: Dict[str, str] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        return self.action == BLOCK

    @property
    def needs_copy(self) -> bool:
        return self.action == COPY

    @property
    def legacy(self) -> bool:
        """The 7.0 legacy (database dump) route."""
        return self.route == LEGACY

    def to_dict(self) -> dict:
        return {'route': self.route, 'action': self.action, 'reason': self.reason,
                'add': dict(self.add)}


def has_route_rule(target) -> bool:
    """behaviour §12.1: 7.0 chooses the restore route from the snapshot's metadata."""
    return as_version(target) >= ROUTE_RULE_SINCE


def refuses_legacy_on_kubernetes(target) -> bool:
    """behaviour §12.1: a Kubernetes (distributed) 7.0.3+ manager refuses legacy snapshots."""
    return as_version(target) >= KUBERNETES_REFUSAL_SINCE


def _as_7_0_reads_it(snapshot) -> Version:
    """The snapshot version as 7.0's ``ManagerVersion`` reads it (suffixes dropped:
    "4.1.0-p3-4.0.1" is 4.1.0)."""
    snapshot = as_version(snapshot)
    return Version.parse(snapshot.claimed) if snapshot.claimed else snapshot.base


def route_taken(target, revisions: Iterable[str], snapshot_format: str = 'legacy') -> str:
    """The route ``target`` takes for an archive as it is, whose ``metadata.json`` holds the
    keys ``revisions`` (any iterable of key names: a metadata dict will do).

    ``single`` before 7.0; on 7.0 ``legacy`` (the database dump) only when all three
    ``REVISION_KEYS`` are present (key presence, an empty value counts), otherwise
    ``entities`` (behaviour §12.1; cloudify-manager@7.0.0…7.0.4 snapshot_restore.py
    `_is_legacy_snapshot`).
    """
    if not has_route_rule(target):
        return SINGLE
    present = set(revisions or ())
    if snapshot_format == 'entities' or any(key not in present for key in REVISION_KEYS):
        return ENTITIES
    return LEGACY


def restore_installs_source_admin(target, snapshot_meta: Optional[dict]) -> bool:
    """Does restoring this archive give the target's admin the SOURCE admin's password?

    The one rule for it (check-target's route plan and the credential switch after the
    restore both follow ``route_taken``).  behaviour §3.8 'Effect on credentials': yes for
    a snapshot of 4.2 or later restored by the legacy (database) route, the only route
    before 7.0; on 7.0 only when ``metadata.json`` sends it down that route (behaviour
    §12.1): the per-entity route leaves the admin as it was.  ``snapshot_meta`` is the
    ``metadata.json`` of the archive the restore was started with (``snapshot_version`` and
    the revision keys): the route copy's, when the plugin restores that copy.
    """
    meta = snapshot_meta or {}
    version = meta.get('snapshot_version')
    if not version or not snapshot_carries_passwords(version):
        return False
    return route_taken(target, meta) != ENTITIES


def restore_route(snapshot_version, revisions: Iterable[str], target, target_edition,
                  snapshot_format: str = 'legacy') -> RoutePlan:
    """The route ``target`` takes for a snapshot whose metadata holds ``revisions``.

    ``snapshot_format`` is ``legacy`` (a database dump) or ``entities`` (7.0's per-entity
    format); ``target_edition`` ``premium`` or ``community`` (unknown counts as premium,
    the stricter one).
    """
    target = as_version(target)
    route = route_taken(target, revisions, snapshot_format)
    if route == SINGLE:
        return RoutePlan(SINGLE, AS_IS, 'A {0} manager has one restore route.'.format(target))
    if snapshot_format == 'entities':
        return RoutePlan(ENTITIES, AS_IS, 'A per-entity snapshot: {0} restores it entity by '
                                          'entity.'.format(target))
    if route == LEGACY:
        return RoutePlan(LEGACY, AS_IS, 'The snapshot\'s metadata names all three schema '
                                        'revisions: {0} restores it on its legacy (database) '
                                        'route.'.format(target))
    present = set(revisions or ())
    missing = [key for key in REVISION_KEYS if key not in present]
    snapshot = as_version(snapshot_version)
    nothing = 'Its metadata.json lacks {0}, so {1} would take its per-entity route and ' \
              'restore nothing of it (behaviour §12.1).'.format(', '.join(missing), target)
    if snapshot.major < 4:
        return RoutePlan(ENTITIES, BLOCK, nothing + ' Adding the keys would not help: the '
                         'legacy route refuses snapshots older than 4.0 (behaviour §3.6.3).')
    add = {}
    if SCHEMA_REVISION in missing:
        if snapshot.base > Version((4, 0, 0)):
            return RoutePlan(ENTITIES, BLOCK, nothing + ' A {0} snapshot without '
                             'schema_revision is not one a Cloudify manager wrote.'.format(
                                 snapshot))
        add[SCHEMA_REVISION] = SCHEMA_REVISION_4_0
    premium = target_edition != 'community'
    if STAGE_REVISION in missing:
        if premium and _as_7_0_reads_it(snapshot) >= STAGE_FAILURE_FATAL_FROM:
            return RoutePlan(ENTITIES, BLOCK, nothing + ' A premium {0} manager cannot '
                             'restore it on its legacy route either: with no Stage revision '
                             'its Stage step fails after the main database was replaced, '
                             'and it '
                             'forgives that only for snapshots older than 4.3 (a {1} '
                             'snapshot of a community manager has no Stage revision). '
                             'Restore it on a community {0} manager instead.'.format(
                                 target, snapshot))
        add[STAGE_REVISION] = ''
    if COMPOSER_REVISION in missing:
        add[COMPOSER_REVISION] = ''
    how = 'on a community target the Stage and Composer steps are skipped' if not premium \
        else 'an empty Composer revision skips the Composer step, and a Stage failure is ' \
             'forgiven for snapshots older than 4.3'
    return RoutePlan(LEGACY, COPY, nothing + ' A copy whose metadata.json adds {0} takes the '
                     'legacy route and restores everything ({1}); the copy is restored '
                     'instead, the original is kept unchanged.'.format(
                         ', '.join('{0}={1!r}'.format(k, v) for k, v in sorted(add.items())),
                         how), add)


def snapshot_revisions(source, edition: Optional[str]) -> Tuple[str, ...]:
    """The revision keys a snapshot of this source will hold (for ``plan``, before any
    snapshot exists): ``schema_revision`` from 4.0.1; ``stage_schema_revision`` on premium
    4.0.1+, ``composer_schema_revision`` on premium 4.1+ (behaviour §3.7, §12.1; a patched
    4.0.x writes the keys of its base version)."""
    base = as_version(source).base
    keys = []
    if base >= Version((4, 0, 1)):
        keys.append(SCHEMA_REVISION)
        if edition == 'premium':
            keys.append(STAGE_REVISION)
            if base >= Version((4, 1, 0)):
                keys.append(COMPOSER_REVISION)
    return tuple(keys)
