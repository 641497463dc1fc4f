"""verify-heals at scale: 100,000 executions over 50 tenants, 20 heals in the window.

`python -m benchmarks heals [--executions N] [--tenants N] [--heals N] [--versions 4.1,4.5.5]
[--record]` starts one simulated old manager per version (tests/simulator), fills it with N
executions spread over the tenants (a few percent of them old heals, some ordinary workflows
after the cut-over) plus `--heals` heal executions after the cut-over, then measures

- plugin: what `cfy upgrade verify-heals` does for the old manager (heals.inspect_manager
  through the plugin's manager layer: discovery, tenants where needed, every workflow since
  issue 15 (the heals and what else the old manager ran after the cut-over), newest first,
  paging stopped at the window);
- stock: listing every execution the way the stock 7.0.5 `cfy executions list --all-tenants`
  pages (`_all_tenants=true`, `_sort=created_at`, `_size=1000`, `_offset` += 1000 until the
  total) with the stock client, then picking the heals in the window on the client side.

It counts the HTTP requests the simulator received and the wall time of each, checks that
both found the same heals, and prints the figures (`--record` writes them into
benchmarks/README.md, section "verify-heals at scale"). The targets (issue 8): requests
proportional to tenants and heals, not to executions; at least 10x faster than the stock
paging. Timings are indicative only (shared machine); nothing here is a test.
"""
from benchmarks import record_section
import argparse
import datetime
import os
import random
import sys
import time

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'README.md')
BEGIN, END = '<!-- heals:begin -->', '<!-- heals:end -->'
SECTION = '## verify-heals at scale'
STOCK_COLUMNS = ['id', 'workflow_id', 'status_display', 'is_dry_run', 'deployment_id',
                 'created_at', 'started_at', 'scheduled_for', 'visibility', 'tenant_name',
                 'created_by']   # cloudify_cli 7.0.5 commands/executions.py
WORKFLOWS = ('install', 'uninstall', 'scale', 'execute_operation', 'update',
             'install_new_agents', 'heal')


def _iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%S.') + '{0:03d}Z'.format(moment.microsecond // 1000)


def populate(sim, executions, tenants, heals, cutover, seed=8):
    """Fill the simulated store; return the ids of the heals in the window."""
    from tests.simulator import data as simdata
    rng = random.Random(seed)
    names = ['default_tenant'] + ['tenant_{0:02d}'.format(i) for i in range(1, tenants)]
    expected = set()
    with sim.state.lock:
        if sim.rules.has_tenants:
            for name in names[1:]:
                sim.state.tenants[name] = simdata.new_tenant(name)
        else:
            names = ['default_tenant']
        for n in range(executions):
            tenant = names[n % len(names)]
            after = n % 200 == 0          # 0.5 %: ordinary workflows after the cut-over
            if after:
                workflow = WORKFLOWS[n % 6]
                created = cutover + datetime.timedelta(seconds=rng.randint(1, 3000))
            else:
                workflow = WORKFLOWS[rng.randrange(len(WORKFLOWS))]
                created = cutover - datetime.timedelta(seconds=rng.randint(60, 30 * 86400))
            record = simdata.new_execution(
                'ex-{0:06d}'.format(n), workflow, tenant, 'admin',
                '{0}-dep-{1}'.format(tenant, n % 40), 'bp',
                {'node_instance_id': 'vm_{0}'.format(n)} if workflow == 'heal' else {},
                _iso(created), is_system=False)
            record['status'] = 'terminated'
            sim.state.put('executions', record)
        for n in range(heals):
            tenant = names[(n * 7) % len(names)]
            record = simdata.new_execution(
                'window-heal-{0:02d}'.format(n), 'heal', tenant, 'admin',
                '{0}-dep-{1}'.format(tenant, n), 'bp',
                {'node_instance_id': 'host_{0}'.format(n)},
                _iso(cutover + datetime.timedelta(seconds=60 * (n + 1))), is_system=False)
            record['status'] = 'terminated'
            sim.state.put('executions', record)
            expected.add(record['id'])
    return expected


def run_plugin(sim, since, until):
    from cloudify_upgrade_plugin import heals
    from cloudify_upgrade_plugin.manager import Manager

    def factory(_profile):
        return heals.RestSource(Manager.connect(
            '127.0.0.1', sim.rest_port, 'http', username=sim.admin_username,
            password=sim.admin_password, tenant='default_tenant'))
    sim.requests.clear()
    start = time.perf_counter()
    report = heals.inspect_manager('old', 'bench', factory, since, until, workflow=None)
    elapsed = time.perf_counter() - start
    if report['error']:
        raise SystemExit('plugin run failed: {0}'.format(report['error']))
    return {'found': {h['id'] for h in report['heals']}, 'seconds': elapsed,
            'requests': _count(sim), 'scope': report['scope']}


def run_stock(sim, since, until):
    """The stock paging of `cfy executions list --all-tenants` (stock client, every page)."""
    from tests.simulator import data as simdata
    from cloudify_upgrade_plugin.clock import parse as parse_manager_time
    client = sim.client()
    fields = simdata.fields_for('executions', sim.rules)
    columns = [c for c in STOCK_COLUMNS if c in fields]
    dropped = [c for c in STOCK_COLUMNS if c not in fields]
    sim.requests.clear()
    start = time.perf_counter()
    found, offset, total = set(), 0, None
    while total is None or offset < total:
        page = client.executions.list(
            include_system_workflows=False, sort='created_at', is_descending=False,
            _all_tenants=True, _offset=offset, _size=1000, _include=columns)
        total = page.metadata.pagination.total
        if not page.items:
            break
        offset += len(page.items)
        for item in page.items:
            created = parse_manager_time(item.get('created_at'))
            if item.get('workflow_id') == 'heal' and created and since <= created <= until:
                found.add(item['id'])
    elapsed = time.perf_counter() - start
    return {'found': found, 'seconds': elapsed, 'requests': _count(sim), 'dropped': dropped}


def _count(sim):
    entries = list(sim.requests)
    return {'total': len(entries),
            'executions': sum(1 for e in entries if e['path'].endswith('/executions')),
            'tenants': sum(1 for e in entries if e['path'].endswith('/tenants')),
            'other': sum(1 for e in entries if not e['path'].endswith(('/executions',
                                                                       '/tenants')))}


def scenario(version, args):
    from tests.simulator import start
    now = datetime.datetime.now(datetime.timezone.utc)
    cutover = now - datetime.timedelta(hours=2)
    sim = start(version, data='empty', ssh=False, time_scale=0.05)
    try:
        started = time.perf_counter()
        expected = populate(sim, args.executions, args.tenants, args.heals,
                            cutover.replace(tzinfo=None))
        fill = time.perf_counter() - started
        since, until = cutover, now + datetime.timedelta(hours=1)
        plugin = run_plugin(sim, since, until)
        stock = run_stock(sim, since, until)
    finally:
        sim.stop()
    return {'version': version, 'expected': expected, 'fill': fill, 'plugin': plugin,
            'stock': stock, 'tenants': len(sim.state.tenants)}


def render(results, args):
    lines = ['Recorded {0} on {1} CPU(s), Python {2}: {3:,} executions over {4} tenants, '
             '{5} heals in the window.'.format(
                 datetime.date.today().isoformat(), os.cpu_count(),
                 sys.version.split()[0], args.executions, args.tenants, args.heals), '',
             '| old manager | how | HTTP requests (executions / tenants / discovery) '
             '| time | heals found |', '|---|---|---|---|---|']
    for res in results:
        for key, label in (('plugin', 'verify-heals ({0})'.format(res['plugin']['scope'])),
                           ('stock', 'stock `executions list --all-tenants` paging')):
            run = res[key]
            req = run['requests']
            lines.append('| {0} | {1} | {2} ({3} / {4} / {5}) | {6:.2f} s | {7}/{8} |'.format(
                res['version'], label, req['total'], req['executions'], req['tenants'],
                req['other'], run['seconds'], len(run['found'] & res['expected']),
                len(res['expected'])))
    lines.append('')
    for res in results:
        plugin, stock = res['plugin'], res['stock']
        ratio = stock['seconds'] / plugin['seconds'] if plugin['seconds'] else float('inf')
        lines.append('- {0}: {1:.1f}x faster, {2}x fewer requests; same heals found: {3}.{4}'
                     .format(res['version'], ratio,
                             round(stock['requests']['total'] /
                                   max(1, plugin['requests']['total']), 1),
                             plugin['found'] == stock['found'] == res['expected'],
                             ' Stock `_include` columns this version rejects (dropped so the '
                             'stock listing could run at all): {0}.'.format(
                                 ', '.join(stock['dropped'])) if stock['dropped'] else ''))
    return '\n'.join(lines)


def record(text):
    record_section('heals', SECTION, text)


def main(argv):
    parser = argparse.ArgumentParser(prog='python -m benchmarks heals',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--executions', type=int, default=100000)
    parser.add_argument('--tenants', type=int, default=50)
    parser.add_argument('--heals', type=int, default=20)
    parser.add_argument('--versions', default='4.1,4.5.5',
                        help='old manager versions to simulate (comma separated)')
    parser.add_argument('--record', action='store_true',
                        help='write the figures into benchmarks/README.md')
    args = parser.parse_args(argv)
    results = []
    for version in [v.strip() for v in args.versions.split(',') if v.strip()]:
        sys.stdout.write('old manager {0}: filling {1:,} executions...\n'.format(
            version, args.executions))
        sys.stdout.flush()
        res = scenario(version, args)
        results.append(res)
    text = render(results, args)
    sys.stdout.write(text + '\n')
    failed = [r['version'] for r in results
              if not (r['plugin']['found'] == r['expected'])]
    if args.record:
        record(text)
    return 1 if failed else 0


if __name__ == '__main__':   # pragma: no cover
    sys.exit(main(sys.argv[1:]))
