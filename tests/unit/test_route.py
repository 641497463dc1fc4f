"""The 7.0 restore route table (versions/route.py) and the paths rules of issue 14.

Rows follow the verdicts read from cloudify-manager@7.0.0…7.0.4
mgmtworker/cloudify_system_workflows/snapshots/snapshot_restore.py (`_is_legacy_snapshot`,
`restore`, `_restore_db`, `_restore_stage`, `_restore_composer`): key presence picks the
route; a copy adds the missing keys where the legacy route then restores correctly.
"""
import pytest

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.versions import route

ALL = versions.REVISION_KEYS
SCHEMA = ('schema_revision',)
SCHEMA_STAGE = ('schema_revision', 'stage_schema_revision')
EMPTY_UI = {'stage_schema_revision': '', 'composer_schema_revision': ''}
OLD_DB = {'schema_revision': versions.SCHEMA_REVISION_4_0}


@pytest.mark.parametrize('snapshot, keys, target, edition, route_, action, add', [
    # targets before 7.0: one route, whatever the metadata
    ('5.1.0', SCHEMA, '6.4', 'premium', 'single', 'as-is', {}),
    ('3.4.2', (), '4.6', 'premium', 'single', 'as-is', {}),
    # all three keys: the legacy route, as it is (premium 4.1+ sources)
    ('4.4.0', ALL, '7.0.4', 'premium', 'legacy', 'as-is', {}),
    ('4.4.0', ALL, '7.0.4', 'community', 'legacy', 'as-is', {}),
    # community sources (no UI revisions): a copy on community 7.0, never on premium 4.3+
    ('5.1.0', SCHEMA, '7.0.4', 'community', 'legacy', 'copy', EMPTY_UI),
    ('5.1.0', SCHEMA, '7.0.4', 'premium', 'entities', 'block', {}),
    ('4.3.0', SCHEMA, '7.0.0', 'premium', 'entities', 'block', {}),
    ('7.0.4', SCHEMA, '7.0.4', 'premium', 'entities', 'block', {}),    # 7.0 legacy: true
    ('7.0.4', SCHEMA, '7.0.4', 'community', 'legacy', 'copy', EMPTY_UI),
    ('4.2.0', SCHEMA, '7.0.4', 'premium', 'legacy', 'copy', EMPTY_UI),  # < 4.3: forgiven
    ('4.0.1', SCHEMA, '7.0.4', 'premium', 'legacy', 'copy', EMPTY_UI),
    # premium 4.0.1 + update-3 (snapshot 4.1.0-p3-4.0.1): only composer is missing
    ('4.1.0-p3-4.0.1', SCHEMA_STAGE, '7.0.4', 'premium', 'legacy', 'copy',
     {'composer_schema_revision': ''}),
    ('4.1.0-p3-4.0.1', SCHEMA_STAGE, '7.0.4', 'community', 'legacy', 'copy',
     {'composer_schema_revision': ''}),
    # 4.0.0 (patched or not): schema_revision gets 4.0's, never an empty value
    ('4.1.0-p1-4.0.0', (), '7.0.4', 'premium', 'legacy', 'copy', dict(EMPTY_UI, **OLD_DB)),
    ('4.0.0', (), '7.0.4', 'community', 'legacy', 'copy', dict(EMPTY_UI, **OLD_DB)),
    # 3.x: the legacy route refuses it, the new one restores nothing
    ('3.4.2', (), '7.0.4', 'community', 'entities', 'block', {}),
    # a snapshot newer than 4.0.0 without schema_revision: no manager wrote it
    ('5.1.0', (), '7.0.4', 'community', 'entities', 'block', {}),
])
def test_route_table(snapshot, keys, target, edition, route_, action, add):
    plan = versions.restore_route(snapshot, keys, target, edition)
    assert (plan.route, plan.action, plan.add) == (route_, action, add), plan.reason
    assert plan.blocked is (action == 'block')
    assert plan.needs_copy is (action == 'copy')
    if add:
        assert '' != plan.add.get('schema_revision', 'x')     # never an empty schema


def test_the_archive_restored_takes_the_planned_route_and_decides_the_admin():
    """One rule for the route (``route_taken``): the archive check-target's plan restores
    (the snapshot as it is, or the copy with ``add``) takes the plan's route, and whether
    that restore installs the source admin follows from it (behaviour §3.8, §12.1)."""
    for snapshot, keys, target, edition in (
            ('5.1.0', SCHEMA, '7.0.4', 'community'), ('4.4.0', ALL, '7.0.4', 'premium'),
            ('4.2.0', SCHEMA, '7.0.4', 'premium'), ('4.0.1', SCHEMA, '7.0.4', 'premium'),
            ('4.1.0-p3-4.0.1', SCHEMA_STAGE, '7.0.4', 'premium'),
            ('5.1.0', SCHEMA, '6.4', 'premium'), ('5.1.0', SCHEMA, '7.0.4', 'premium')):
        plan = versions.restore_route(snapshot, keys, target, edition)
        restored = dict(dict.fromkeys(keys, 'x'), snapshot_version=snapshot, **plan.add)
        taken = versions.route_taken(target, restored)
        installs = versions.restore_installs_source_admin(target, restored)
        if plan.blocked:        # nothing is restored; as it is, the per-entity route
            assert taken == 'entities' and installs is False
            continue
        assert taken == plan.route, (snapshot, target, plan)
        assert installs is versions.snapshot_carries_passwords(snapshot), (snapshot, target)
    # the original of a route copy alone would have taken the per-entity route
    assert versions.route_taken('7.0.4', {'schema_revision': 'x'}) == 'entities'
    assert versions.restore_installs_source_admin(
        '7.0.4', {'snapshot_version': '5.1.0', 'schema_revision': 'x'}) is False


def test_new_format_snapshots_take_the_entity_route_as_they_are():
    plan = versions.restore_route('7.0.4', (), '7.0.4', 'premium', snapshot_format='entities')
    assert (plan.route, plan.action) == ('entities', 'as-is')


def test_unknown_edition_counts_as_premium():
    assert versions.restore_route('5.1.0', SCHEMA, '7.0.4', None).blocked


def test_blocked_reason_says_what_to_do():
    reason = versions.restore_route('5.1.0', SCHEMA, '7.0.4', 'premium').reason
    assert 'restore nothing' in reason and 'community 7.0.4 manager' in reason


@pytest.mark.parametrize('source, edition, keys', [
    ('3.4.2', 'premium', ()),
    ('4.0.0', 'premium', ()),
    ('4.0.1', 'community', SCHEMA),
    ('4.0.1', 'premium', SCHEMA_STAGE),
    ('4.1', 'premium', ('schema_revision', 'stage_schema_revision',
                        'composer_schema_revision')),
    ('5.1', 'community', SCHEMA),
    ('7.0.4', 'premium', ('schema_revision', 'stage_schema_revision',
                          'composer_schema_revision')),
])
def test_predicted_revisions_follow_what_each_source_writes(source, edition, keys):
    """behaviour §3.7 / §12.1: the keys `_dump_metadata` writes per edition and version."""
    assert versions.snapshot_revisions(source, edition) == keys


def test_kubernetes_refusal_from_703():
    assert not versions.refuses_legacy_on_kubernetes('7.0.2')
    assert versions.refuses_legacy_on_kubernetes('7.0.3')
    assert versions.refuses_legacy_on_kubernetes('7.0.4')
    assert route.KUBERNETES_REFUSAL_SINCE == versions.Version((7, 0, 3))


# -- paths (item 6) ----------------------------------------------------------------------

def test_newest_known_release_is_defined_once_and_refused_beyond():
    assert versions.NEWEST_KNOWN_RELEASE == versions.Version((7, 0, 5))
    ids = [pid for pid, _ in versions.upgrade_problems('5.1', '8.0', 'new-host')]
    assert ids == ['target-version-unknown']
    assert versions.upgrade_problems('5.1', '7.0.5', 'new-host') == []
    assert 'target-version-unknown' in versions.PATH_UNWAIVABLE


def test_unwaivable_path_rules_are_what_a_manager_refuses():
    assert set(versions.PATH_UNWAIVABLE) == {
        'source-3x-needs-stepping-stone', 'target-older-than-source', 'target-version-unknown'}
    assert set(versions.PATH_UNWAIVABLE) <= set(versions.PATH_PROBLEM_IDS)


@pytest.mark.parametrize('source, target, advised', [
    ('4.4', '7.0', True), ('5.0.5', '6.0', True), ('4.6', '5.2.7', False),
    ('5.1', '7.0', False), ('6.4', '7.0', False)])
def test_vendor_tested_stepping_stone(source, target, advised):
    advice = versions.path_advice(source, target)
    assert bool(advice) is advised
    if advised:
        assert advice[0][0] == 'path-not-vendor-tested' and '5.1' in advice[0][1]


def test_cfy_manager_upgrade_from_61():
    assert versions.cfy_manager_upgrade_applies('6.1')
    assert versions.cfy_manager_upgrade_applies('6.4')
    assert not versions.cfy_manager_upgrade_applies('6.0')
