"""The estimates of issue 17 item 22 in-process: the model, `df -Pk` parsing, per file
system sums, the sizes of a real zip and the counting requests."""
import zipfile

import pytest

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.runbooks import estimates

DF = ('Filesystem     1024-blocks      Used Available Capacity Mounted on\n'
      '/dev/mapper/centos-root    1000000    750000    250000      75% /\n'
      'tmpfs                        2048         0      2048       0% /run/my tmp\n')


def test_model_counts_into_sizes_needs_and_transfer_time():
    counts = {'blueprints': 2, 'plugins': 1, 'deployments': 10, 'node-instances': 100,
              'executions': 50, 'events': None}
    result = estimates.estimate(counts, link_mbps=8)
    base, ratio = estimates.BASE
    raw = base + 2 * 2 * estimates.MIB + 25 * estimates.MIB + 10 * 64 * estimates.KIB + \
        100 * 8 * estimates.KIB + 50 * 4 * estimates.KIB
    assert result.uncompressed_bytes == raw
    assert result.files_bytes == 2 * 2 * estimates.MIB + 25 * estimates.MIB
    assert 0 < result.snapshot_bytes < raw
    assert result.transfer_seconds == round(result.snapshot_bytes * 8 / 8e6)
    doc = result.to_dict()
    assert doc['not_counted'] == ['events']
    needs = doc['needs']
    assert needs['old_host'] == {'/tmp': int(raw * 1.25),
                                 '/opt/manager/resources': int(result.snapshot_bytes * 1.25)}
    assert needs['new_host']['/opt/manager/resources'] == \
        int(result.snapshot_bytes * 1.25) + int(result.files_bytes * 1.25)
    # more data, bigger estimate
    assert estimates.estimate(dict(counts, plugins=10)).snapshot_bytes > result.snapshot_bytes


def test_df_output_is_parsed_per_path_and_mount_points_may_hold_spaces():
    found = estimates.parse_df(DF, ['/tmp', '/opt/manager/resources'])
    assert [(f.path, f.mount, f.free_bytes) for f in found] == [
        ('/tmp', '/', 250000 * 1024), ('/opt/manager/resources', '/run/my tmp', 2048 * 1024)]
    for bad in ('', 'df: /x: No such file or directory\n', DF.replace('250000', 'lots')):
        with pytest.raises(ValueError):
            estimates.parse_df(bad, ['/tmp', '/opt/manager/resources'])
    with pytest.raises(ValueError):
        estimates.parse_df(DF, ['/tmp'])


def test_needs_on_one_file_system_add_up():
    free = [estimates.FreeSpace('/tmp', 'dev', '/', 100),
            estimates.FreeSpace('/opt/manager/resources', 'dev', '/', 100)]
    rows, problems = estimates.shortfalls({'/tmp': 60, '/opt/manager/resources': 60}, free)
    assert rows == [{'mount': '/', 'filesystem': 'dev',
                     'paths': ['/tmp', '/opt/manager/resources'],
                     'needed_bytes': 120, 'free_bytes': 100}]
    assert len(problems) == 1 and 'needs 120 B' in problems[0]
    apart = [estimates.FreeSpace('/tmp', 'tmpfs', '/tmp', 100), free[1]]
    assert estimates.shortfalls({'/tmp': 60, '/opt/manager/resources': 60}, apart)[1] == []


class FakeHost:
    label = 'old host'

    def __init__(self, missing=(), df_rc=0):
        self.missing, self.df_rc, self.argvs = set(missing), df_rc, []

    def run(self, argv, check=True):
        self.argvs.append(argv)
        if argv[0] == 'test':
            return (1 if argv[2] in self.missing else 0), ''
        lines = [DF.splitlines()[0]] + ['/dev/sda1 100 50 40 50% /' for _ in argv[2:]]
        return self.df_rc, '\n'.join(lines) + '\n'


def test_host_free_space_asks_df_for_the_nearest_existing_folder():
    host = FakeHost(missing={'/opt/manager/resources'})
    found = estimates.host_free_space(host, ['/tmp', '/opt/manager/resources'])
    assert host.argvs[-1] == ['df', '-Pk', '/tmp', '/opt/manager']
    assert [(f.path, f.free_bytes) for f in found] == [('/tmp', 40 * 1024),
                                                       ('/opt/manager/resources', 40 * 1024)]
    with pytest.raises(UpgradeError) as info:
        estimates.host_free_space(FakeHost(df_rc=1), ['/tmp'])
    assert info.value.error_id == 'df-failed'


def test_sizes_of_a_real_snapshot_zip(tmp_path):
    path = str(tmp_path / 'snap.zip')
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
        archive.writestr('pg_data', b'x' * 5000)
        archive.writestr('blueprints/t/bp/bp.yaml', b'y' * 3000)
        archive.writestr('metadata.json', b'{}')
    assert estimates.snapshot_sizes(path) == (8002, 3002)
    result = estimates.for_snapshot(path)
    assert result.uncompressed_bytes == 8002
    assert result.needs['new_host']['/tmp'] == int(8002 * 1.25)


class FakeManager:
    has_tenants = True
    version = '4.4.0'

    def __init__(self, totals):
        self.totals, self.calls = totals, []

    def list_tenants(self):
        return ['default_tenant', 't_prod']

    def list_page(self, resource, params, tenant=None, what=None):
        self.calls.append((resource, tenant, dict(params)))
        if resource not in self.totals:
            raise UpgradeError('no such list', error_id='not-found')
        return {'items': [{}], 'metadata': {'pagination': {'total': self.totals[resource]}}}


def test_counts_add_the_tenants_up_with_one_row_per_request():
    manager = FakeManager({'blueprints': 2, 'plugins': 1, 'deployments': 3,
                           'node-instances': 7, 'executions': 4})
    counts = estimates.count_items(manager)
    assert counts == {'blueprints': 4, 'plugins': 2, 'deployments': 6,
                      'node-instances': 14, 'executions': 8, 'events': None}
    assert all(params['_size'] == 1 and params['_offset'] == 0
               for _, _, params in manager.calls)
    executions = [params for resource, _, params in manager.calls if resource == 'executions']
    assert executions[0]['_include_system_workflows'] is True
