"""runbooks/cluster.py and cluster_steps.py: routes, unwaivable checks, the steps a cluster
target adds (issue 16)."""
import pytest

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.checks import BLOCK, Check, Waiver, evaluate
from cloudify_upgrade_plugin.errors import BlockedError, InputError
from cloudify_upgrade_plugin.manager.cluster import CLUSTER, HA4, Layout, Node
from cloudify_upgrade_plugin.runbooks import cluster, cluster_steps
from cloudify_upgrade_plugin.runbooks.restore import command as restore_command


def _layout(kind=CLUSTER, managers=3, distribution='centos Core'):
    return Layout(kind, [Node('manager', 'm{0}'.format(i), '10.0.0.{0}'.format(i),
                              distribution=distribution) for i in range(1, managers + 1)],
                  [Node('broker', 'b1', '10.0.1.1')], [Node('db', 'd1', '10.0.2.1')])


@pytest.mark.parametrize('source, target, kind, rpm', [
    ('5.1', '7.0.4', CLUSTER, True),
    ('6.4', None, CLUSTER, True),
    ('5.0.5', '7.0.4', CLUSTER, False),        # the vendor's tool upgrades 5.1.0+
    ('6.4', '6.4.1', CLUSTER, False),          # not going to 7.0
    ('4.4', '7.0.4', HA4, False),
])
def test_routes(source, target, kind, rpm):
    found = {r['id']: r for r in cluster.routes(_layout(kind), source, target)}
    assert 'snapshot' in found
    assert ('rpm-in-place' in found) is rpm
    if rpm:
        route = found['rpm-in-place']
        assert route['order'] == ['db', 'broker', 'manager']
        assert route['nodes'] == ['d1', 'b1', 'm1', 'm2', 'm3']
        assert route['rpm_install'] is True
        assert 'cfy_cluster_manager upgrade' in route['command']


def test_rpm_install_unknown_or_not():
    route = cluster.routes(_layout(distribution=None), '6.4', '7.0.4')[1]
    assert route['rpm_install'] is None
    route = cluster.routes(_layout(distribution='debian bookworm'), '6.4', '7.0.4')[1]
    assert route['rpm_install'] is False


def test_ha4_check_cannot_be_waived():
    with pytest.raises(InputError) as caught:
        cluster.refuse_unwaivable([Waiver('ha4-cluster-restore', 'try')])
    assert caught.value.error_id == 'waiver-not-allowed'
    cluster.refuse_unwaivable([Waiver('target-licence', 'ok')])
    assert 'ha4-cluster-restore' in restore_command.CHECK_IDS


class _Target:
    version = versions.Version.parse('4.4')


def test_ha4_check_blocks_with_the_documented_way():
    check = cluster.ha4_cluster_restore.func(_Target(), _layout(HA4, managers=2))
    assert check[0] == 'fail' and 'cfy cluster join' in check[1]
    single = cluster.ha4_cluster_restore.func(_Target(), _layout(HA4, managers=1))
    assert single[0] == 'pass'
    checks = [Check('ha4-cluster-restore', BLOCK, 'fail', check[1]),
              Check('target-licence', BLOCK, 'fail', 'no licence')]
    with pytest.raises(BlockedError) as caught:
        evaluate(checks, ())
    error = cluster.blocked(caught.value)
    assert 'cfy cluster start' in error.hints[0]
    assert not any('--waive ha4-cluster-restore' in hint for hint in error.hints)
    assert any('--waive target-licence' in hint for hint in error.hints)


def test_cluster_steps_only_for_a_cluster_of_several_managers():
    steps = restore_command.steps_for(restore_command.MODES['new-host'],
                                      versions.Version.parse('5.1'))
    assert cluster_steps.with_cluster_steps(steps, None) is steps
    ha4 = cluster.ClusterTarget(_layout(HA4, managers=2))
    assert cluster_steps.with_cluster_steps(steps, ha4) is steps
    layout = _layout()
    target = cluster.ClusterTarget(layout, layout.managers[0])
    ids = [s.id for s in cluster_steps.with_cluster_steps(steps, target)]
    assert ids[:3] == ['cluster-pin', 'check-target', 'cluster-stop-others']
    assert ids.index('follow-credentials') < ids.index('cluster-sync-rest-security') < \
        ids.index('cluster-start-others') < ids.index('cluster-verify-nodes') < \
        ids.index('reconcile')
    pinned = [s.id for s in cluster_steps.with_cluster_steps(steps, target)
              if isinstance(s, cluster_steps.Pinned)]
    assert pinned == ['upload-snapshot', 'start-restore', 'wait-restore',
                      'follow-credentials']
    assert [n.name for n in target.others] == ['m2', 'm3']
