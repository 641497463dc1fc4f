"""Inventory, reconcile and agents planning at scale: 10,000 deployments over 50 tenants.

`python -m benchmarks scale [--tenants 50] [--deployments 10000] [--runs 3]
[--source-version 6.4] [--target-version 7.0] [--agents-deployments 100]
[--agents-concurrency 5] [--record]` starts a simulated source and a simulated target in this
process (tests/simulator), fills both with the `scale` data set's shape
(`tests.simulator.scale.fill`: per deployment a started Compute host with an agent and one
contained instance, so 2 node instances per deployment), and runs each measured part in a
child process of its own (`python -m benchmarks scale --child ...`), so that its CPU time
(user + system) and peak RSS are the plugin's own, not the simulators':

- inventory: `runbooks.inventory.collect` of the source (what `prepare` records);
- reconcile: the target's inventory and `runbooks.reconcile.compare` against the source's
  (what new-host's reconcile step does);
- agents plan: `runbooks.agents.plan` of the target (eligible deployments);
- reference: the stock 7.0.5 client listing the same deployments, node instances,
  blueprints and secrets as `cfy <resource> list --all-tenants` pages them (`_all_tenants`,
  `_size=1000`, every field);
- agents install: `runbooks.agents.install_all` on a separate small target holding
  `--agents-deployments` deployments, with `--agents-concurrency`: the most
  `install_new_agents` executions in flight at once, from the simulator's execution records.

List requests are counted on the simulator's side (GETs carrying `_offset`), with the rows
the listed resources hold; a listing is within bounds when it made at most
max(1, ceil(rows / 1000)) requests.  Medians of `--runs` runs.  Targets (issue 15 item 7):
at most one list request per 1,000 rows (per listing), reconcile under 30 s, peak RSS under
150 MB, agent installs bounded by --agents-concurrency.  Nothing here is a test; timings are
indicative (shared machine).  `--record` writes the figures into benchmarks/README.md.
"""
import argparse
import datetime
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import record_section

SECTION = '## Inventory, reconcile and agents at scale'
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# list path (under the API prefix) -> what the simulator's store holds for it
LISTED = {'/deployments': 'deployments', '/node-instances': 'node_instances',
          '/blueprints': 'blueprints', '/secrets': 'secrets', '/plugins': 'plugins',
          '/sites': 'sites', '/deployment-groups': 'deployment_groups',
          '/filters/deployments': 'deployments_filters',
          '/filters/blueprints': 'blueprints_filters', '/filters': 'deployments_filters',
          '/execution-schedules': 'execution_schedules', '/user-groups': 'user_groups',
          '/plugins-updates': 'plugins_updates', '/executions': 'executions',
          '/agents': 'agents', '/tenants': None, '/users': None}


# -- the child: one measured part --------------------------------------------------------------

def _manager(port, password):
    from cloudify_upgrade_plugin.manager import Manager
    return Manager.connect('127.0.0.1', port, 'http', username='admin', password=password,
                           tenant='default_tenant')


def child(args) -> dict:
    """Run one part; its wall time, CPU seconds, peak RSS and a few facts."""
    started = time.perf_counter()
    facts = {}
    if args.child == 'inventory':
        from cloudify_upgrade_plugin.runbooks import inventory
        data = inventory.collect(_manager(args.port, args.password))
        with open(args.out, 'w') as stream:
            json.dump(data, stream)
        facts['tenants'] = len(data['tenants'])
    elif args.child == 'reconcile':
        from cloudify_upgrade_plugin.runbooks import inventory, reconcile
        with open(args.source) as stream:
            source = json.load(stream)
        result = reconcile.compare(source, inventory.collect(_manager(args.port,
                                                                      args.password)))
        facts.update(ok=result['ok'], differences=len(result['differences']))
    elif args.child == 'agents-plan':
        from cloudify_upgrade_plugin.runbooks import agents
        eligible, not_eligible = agents.plan(_manager(args.port, args.password))
        facts.update(eligible=len(eligible), not_eligible=len(not_eligible))
    elif args.child == 'stock':
        facts['rows'] = _stock_listing(args.port, args.password)
    elif args.child == 'agents-install':
        facts.update(_install(args))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return dict(facts, seconds=time.perf_counter() - started,
                cpu=usage.ru_utime + usage.ru_stime, rss_mib=peak_rss_mib())


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM: per address space, so it starts anew at
    exec; ``ru_maxrss`` would report the parent's, inherited through fork on Linux)."""
    with open('/proc/self/status') as stream:
        for line in stream:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _stock_listing(port, password) -> int:
    """`cfy deployments|node-instances|blueprints|secrets list --all-tenants`, paged."""
    from cloudify_rest_client import CloudifyClient
    client = CloudifyClient(host='127.0.0.1', port=port, username='admin',
                            password=password, tenant='default_tenant')
    rows = 0
    for api in (client.deployments, client.node_instances, client.blueprints,
                client.secrets):
        offset = 0
        while True:
            page = api.list(_all_tenants=True, _offset=offset, _size=1000)
            rows += len(page.items)
            offset += len(page.items)
            if not page.items or offset >= page.metadata.pagination.total:
                break
    return rows


def _install(args) -> dict:
    """agents.install_all on the small target, with a throw-away workspace."""
    from types import SimpleNamespace
    from cloudify_upgrade_plugin.engine.workspace import Workspace
    from cloudify_upgrade_plugin.runbooks import agents
    workspace = Workspace.create(mode='new-host')
    options = SimpleNamespace(agent_timeout=600, agents_concurrency=args.concurrency,
                              waivers=())
    ctx = SimpleNamespace(target_manager=_manager(args.port, args.password),
                          workspace=workspace, options=options)
    summary = agents.install_all(ctx)
    return {'deployments': summary['deployments'], 'succeeded': summary['succeeded']}


def run_child(part, port, password, code=None, **extra) -> dict:
    """Run one part in a child process; ``code``: another checkout whose
    ``cloudify_upgrade_plugin`` the child imports (a 'before' row)."""
    argv = [sys.executable, '-m', 'benchmarks.scale', '--child', part, '--port', str(port),
            '--password', password]
    for key, value in extra.items():
        argv += ['--' + key.replace('_', '-'), str(value)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [p for p in (code, ROOT, os.environ.get('PYTHONPATH')) if p]))
    # not cwd=ROOT: `-m` puts the working directory first on sys.path, before PYTHONPATH
    with tempfile.TemporaryDirectory(prefix='bench-scale-child-') as cwd:
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env,
                              timeout=3600)
    if proc.returncode != 0:
        raise SystemExit('child {0} failed:\n{1}'.format(part, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the parent: simulators, runs, figures -------------------------------------------------------

def list_requests(sim) -> dict:
    """{list path: requests} of the GETs carrying `_offset` (every paged listing)."""
    prefix = sim.rules.api_prefix
    found = {}
    for entry in list(sim.requests):
        if entry['method'] == 'GET' and '_offset' in (entry.get('query') or {}):
            path = entry['path'][len(prefix):] if entry['path'].startswith(prefix) else \
                entry['path']
            found[path] = found.get(path, 0) + 1
    return found


def rows_of(sim, path) -> int:
    kind = LISTED.get(path)
    with sim.state.lock:
        if path == '/tenants':
            return len(sim.state.tenants)
        if path == '/users':
            return len(sim.state.users)
        if kind is None:
            return 0
        return len(sim.state.all(kind))


def bounds(sim, requests) -> dict:
    """Per listing: requests, rows, the bound max(1, ceil(rows/1000)), within it."""
    out = {}
    for path, count in sorted(requests.items()):
        rows = rows_of(sim, path)
        bound = max(1, math.ceil(rows / 1000.0))
        out[path] = {'requests': count, 'rows': rows, 'bound': bound, 'ok': count <= bound}
    return out


def measure(sim, part, runs, **extra) -> dict:
    """Medians of `runs` child runs of `part` against `sim`, and its list requests."""
    results = []
    for _ in range(runs):
        sim.requests.clear()
        result = run_child(part, sim.rest_port, sim.admin_password, **extra)
        result['requests'] = list_requests(sim)
        result['all_requests'] = len(sim.requests)
        results.append(result)
    last = results[-1]
    summary = {key: statistics.median(r[key] for r in results)
               for key in ('seconds', 'cpu', 'rss_mib')}
    summary.update({k: v for k, v in last.items() if k not in summary})
    summary['bounds'] = bounds(sim, last['requests'])
    summary['list_requests'] = sum(last['requests'].values())
    summary['rows'] = sum(b['rows'] for b in summary['bounds'].values())
    return summary


def max_in_flight(sim) -> int:
    """The most install_new_agents executions between creation and end at one moment."""
    from cloudify_upgrade_plugin import clock
    events = []
    with sim.state.lock:
        for ex in sim.state.all('executions'):
            if ex['workflow_id'] == 'install_new_agents' and ex.get('ended_at'):
                events.append((clock.parse(ex['created_at']), 1))
                events.append((clock.parse(ex['ended_at']), -1))
    peak = current = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        current += delta
        peak = max(peak, current)
    return peak


def scenario(args) -> dict:
    from tests.simulator import scale, start
    results = {}
    source = start(args.source_version, data='empty', ssh=False, time_scale=0.01)
    target = start(args.target_version, data='empty', ssh=False, time_scale=0.01)
    small = start(args.target_version, data='empty', ssh=False, time_scale=0.01)
    workdir = tempfile.mkdtemp(prefix='bench-scale-')
    try:
        began = time.perf_counter()
        for sim in (source, target):
            scale.fill(sim, tenants=args.tenants, deployments=args.deployments)
        scale.fill(small, tenants=1, deployments=args.agents_deployments)
        results['fill'] = time.perf_counter() - began
        saved = os.path.join(workdir, 'source.json')
        results['inventory'] = measure(source, 'inventory', args.runs, out=saved)
        results['reconcile'] = measure(target, 'reconcile', args.runs, source=saved)
        results['agents-plan'] = measure(target, 'agents-plan', args.runs)
        results['stock'] = measure(target, 'stock', args.runs)
        if args.compare_with:
            out = os.path.join(workdir, 'before.json')
            results['before-inventory'] = measure(source, 'inventory', args.runs, out=out,
                                                  code=args.compare_with)
            results['before-agents-plan'] = measure(target, 'agents-plan', args.runs,
                                                    code=args.compare_with)
        os.environ['CFY_WORKDIR'] = workdir
        results['agents-install'] = measure(small, 'agents-install', 1,
                                            concurrency=args.agents_concurrency)
        results['agents-install']['in_flight'] = max_in_flight(small)
    finally:
        for sim in (source, target, small):
            sim.stop()
    return results


def render(results, args) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    load = os.getloadavg()[0]
    lines = ['Recorded {0} with `python -m benchmarks scale{1}` on `{2}`, nproc {3}, Python '
             '{4}; load average {5:.2f} at the end. Source {6}, target {7}: {8:,} '
             'deployments and {9:,} node instances over {10} tenants on each; medians of {11} '
             'runs, each part in its own process.'.format(
                 now.strftime('%Y-%m-%d %H:%M UTC'),
                 ' ' + ' '.join(args.argv) if args.argv else '',
                 ' '.join(part for part in platform.uname() if part),
                 os.cpu_count(), sys.version.split()[0], load, args.source_version,
                 args.target_version, args.deployments, 2 * args.deployments, args.tenants,
                 args.runs), '',
             '| part | wall | CPU | peak RSS | list requests | rows listed | requests per '
             '1,000 rows | every listing within max(1, ceil(rows/1000)) | other requests |',
             '|---|---:|---:|---:|---:|---:|---:|---|---:|']
    names = (('inventory', 'inventory of the source (`inventory.collect`)'),
             ('reconcile', 'reconcile (target inventory + `reconcile.compare`)'),
             ('agents-plan', 'agents plan (`agents.plan`)'),
             ('stock', 'reference: stock client, `list --all-tenants` of deployments, node '
                       'instances, blueprints, secrets'),
             ('before-inventory', 'before: inventory with {0}'.format(args.compare_label)),
             ('before-agents-plan', 'before: agents plan with {0}'.format(
                 args.compare_label)))
    for key, label in names:
        if key not in results:
            continue
        r = results[key]
        per = r['list_requests'] / (r['rows'] / 1000.0) if r['rows'] else 0.0
        lines.append('| {0} | {1:.2f} s | {2:.2f} s | {3:.1f} MiB | {4} | {5:,} | {6:.2f} | '
                     '{7} | {8} |'.format(label, r['seconds'], r['cpu'], r['rss_mib'],
                                          r['list_requests'], r['rows'], per,
                                          'yes' if all(b['ok'] for b in r['bounds'].values())
                                          else 'no', r['all_requests'] - r['list_requests']))
    lines += ['', 'Listings (last run): ' + '; '.join(
        '{0}: {1}'.format(key, ', '.join('{0} {1}/{2}'.format(path, b['requests'], b['bound'])
                                         for path, b in sorted(results[key]['bounds'].items())))
        for key, _ in names[:3]) + ' (requests / bound).']
    install = results['agents-install']
    lines += ['', 'Agents install: {0} deployments on a separate target, --agents-concurrency '
              '{1}: {2} moved in {3:.1f} s; at most {4} `install_new_agents` executions in '
              'flight at once.'.format(args.agents_deployments, args.agents_concurrency,
                                       install.get('succeeded'), install['seconds'],
                                       install['in_flight']), '']
    lines += verdicts(results, args)
    return '\n'.join(lines)


def verdicts(results, args):
    def met(flag):
        return 'met' if flag else '**not met**'
    listings = all(b['ok'] for key in ('inventory', 'reconcile', 'agents-plan')
                   for b in results[key]['bounds'].values())
    rss = max(results[key]['rss_mib'] for key in ('inventory', 'reconcile', 'agents-plan'))
    return ['- every listing at most one request per 1,000 rows (max(1, ceil(rows/1000))): '
            '{0}'.format(met(listings)),
            '- reconcile {0:.2f} s (target < 30 s): {1}'.format(
                results['reconcile']['seconds'], met(results['reconcile']['seconds'] < 30)),
            '- peak RSS {0:.1f} MiB (target < 150 MB): {1}'.format(rss, met(rss < 143.05)),
            '- agent installs in flight {0} (bound: --agents-concurrency {1}): {2}'.format(
                results['agents-install']['in_flight'], args.agents_concurrency,
                met(results['agents-install']['in_flight'] <= args.agents_concurrency))]


def main(argv) -> int:
    parser = argparse.ArgumentParser(prog='python -m benchmarks scale',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--tenants', type=int, default=50)
    parser.add_argument('--deployments', type=int, default=10000)
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--source-version', default='6.4')
    parser.add_argument('--target-version', default='7.0')
    parser.add_argument('--agents-deployments', type=int, default=100)
    parser.add_argument('--agents-concurrency', type=int, default=5)
    parser.add_argument('--compare-with', metavar='DIR',
                        help='another checkout (e.g. `git archive i14base | tar -x -C DIR`): '
                             'adds "before" rows for its inventory and agents plan')
    parser.add_argument('--compare-label', default='the code of --compare-with',
                        help='how the table names that checkout')
    parser.add_argument('--record', action='store_true')
    # the child process (internal)
    parser.add_argument('--child', help=argparse.SUPPRESS)
    parser.add_argument('--port', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--password', help=argparse.SUPPRESS)
    parser.add_argument('--out', help=argparse.SUPPRESS)
    parser.add_argument('--source', help=argparse.SUPPRESS)
    parser.add_argument('--concurrency', type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.stdout.write(json.dumps(child(args)) + '\n')
        return 0
    args.argv = [a for a in argv if a != '--record']
    if args.compare_with:
        args.argv = ['DIR' if a == args.compare_with else a for a in args.argv]
    results = scenario(args)
    text = render(results, args)
    sys.stdout.write(text + '\n')
    if args.record:
        record_section('scale', SECTION, text)
    return 0


if __name__ == '__main__':   # pragma: no cover
    sys.exit(main(sys.argv[1:]))
