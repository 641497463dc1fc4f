"""Fleet upgrades: 20 simulated managers upgraded through the local workflow environment.

`python -m benchmarks fleet [--managers 20] [--concurrency 1,5] [--runs 3] [--source 4.6]
[--time-scale 0.05] [--record]` (about 2 minutes a run on 2 busy cores) upgrades
`--managers` old managers (`--source`, premium, `demo` data, SSH host) to as many empty
7.0.4 managers with the plugin's fleet workflows (`upgrade_plan`, `upgrade_prepare`,
`upgrade_cutover`, each with the `concurrency` parameter) on cloudify-common's real
workflow engine (`cloudify.workflows.local`, FileStorage), with the plugin's own backend
(`fleet.runbooks.RunbooksBackend`: the CLI's runbooks, no cfy profile):

- the simulated managers run in one child process (`tests.simulator.start`, time scale
  `--time-scale`; one SSH key accepted by every host), so that the workflow process does
  not share its GIL with them;
- each concurrency runs in a fresh workflow process (a child: its peak RSS is its own)
  against fresh managers (a target is restored once); the concurrencies are interleaved
  run by run, and medians over `--runs` are reported;
- figures: the wall time of the three workflows, the peak RSS and CPU time of the
  workflow process, the CPU time of the simulators' process,
  and per manager the time spent in the plugin's operations (the runtime records'
  `ended_at - started_at`, summed over the three commands) and the fleet's overhead at
  concurrency 1 (the workflows' wall time minus that, divided by the managers: what the
  workflow engine, events and runtime properties add to one manager's upgrade).

Target (issue 19): with concurrency 5 the fleet takes at most a third of the concurrency-1
time.  `--record` writes the figures into benchmarks/README.md (`fleet:begin`/`fleet:end`).
Not a test: nothing asserts timings.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import record_section

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTION = '## Fleet upgrades (issue 19)'
TARGET_VERSION = '7.0.4'
WORKFLOWS = ('upgrade_plan', 'upgrade_prepare', 'upgrade_cutover')
COMMANDS = ('plan', 'prepare', 'cutover')
TARGET_RATIO = 1 / 3.0


def log(message):
    sys.stderr.write('[fleet] {0}\n'.format(message))
    sys.stderr.flush()


# --------------------------------------------------------------- child: the simulators

def serve_managers(argv):
    """Start the pairs, print one JSON line describing them, serve until stdin closes."""
    parser = argparse.ArgumentParser(prog='benchmarks.fleet managers')
    parser.add_argument('--managers', type=int, required=True)
    parser.add_argument('--source', required=True)
    parser.add_argument('--time-scale', type=float, required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, REPO)
    from tests.simulator.manager import start
    started, pairs = [], []
    try:
        for index in range(args.managers):
            old = start(args.source, data='demo', ssh=True, time_scale=args.time_scale,
                        admin_password='old-pw-{0}'.format(index))
            started.append(old)
            new = start(TARGET_VERSION, data='empty', ssh=True, time_scale=args.time_scale,
                        admin_password='new-pw-{0}'.format(index))
            started.append(new)
            pairs.append({'old': _describe(old), 'new': _describe(new)})
        with open(started[0].ssh_key + '.pub') as stream:
            public = stream.read()
        for sim in started[1:]:
            with open(sim.machine.host.authorized_keys_path, 'a') as stream:
                stream.write(public)
        with open(started[0].ssh_key) as stream:
            key = stream.read()
        sys.stdout.write(json.dumps({'pairs': pairs, 'ssh_key': key,
                                     'ssh_user': started[0].ssh_user}) + '\n')
        sys.stdout.flush()
        sys.stdin.read()          # the parent closes stdin when it is done
        usage = resource.getrusage(resource.RUSAGE_SELF)
        sys.stdout.write(json.dumps({'cpu': usage.ru_utime + usage.ru_stime}) + '\n')
        sys.stdout.flush()
    finally:
        for sim in reversed(started):
            sim.stop()
    return 0


def _describe(sim):
    return {'port': sim.rest_port, 'ssh_port': sim.ssh_port, 'password': sim.admin_password,
            'host_key': ' '.join(sim.machine.host.known_hosts_line().split()[1:])}


# ----------------------------------------------------------------- child: the workflows

_NODE = '''
  m{index:02d}:
    type: cloudify.nodes.upgrade.ManagedUpgrade
    properties:
      mode: new-host
      target_version: {target}
      old_manager:
        address: 127.0.0.1
        port: {old[port]}
        protocol: http
        password: {{ get_input: [passwords, m{index:02d}, old] }}
        ssh: {{ user: {user}, key: {{ get_input: ssh_key }}, port: {old[ssh_port]},
               host_key: '{old[host_key]}' }}
      new_manager:
        address: 127.0.0.1
        port: {new[port]}
        protocol: http
        password: {{ get_input: [passwords, m{index:02d}, new] }}
        ssh: {{ user: {user}, key: {{ get_input: ssh_key }}, port: {new[ssh_port]},
               host_key: '{new[host_key]}' }}
'''


def blueprint(fleet):
    """A blueprint of one ManagedUpgrade per pair (passwords and the key as inputs)."""
    text = ['tosca_definitions_version: cloudify_dsl_1_4', 'imports:',
            '  - cloudify/types/types.yaml', '  - plugin:cloudify-upgrade-plugin',
            'inputs:', '  passwords: {type: dict}', '  ssh_key: {type: string}',
            'node_templates:']
    for index, pair in enumerate(fleet['pairs']):
        text.append(_NODE.format(index=index, target=TARGET_VERSION, user=fleet['ssh_user'],
                                 **pair))
    inputs = {'ssh_key': fleet['ssh_key'], 'passwords': {
        'm{0:02d}'.format(i): {'old': p['old']['password'], 'new': p['new']['password']}
        for i, p in enumerate(fleet['pairs'])}}
    return '\n'.join(text) + '\n', inputs


def run_workflows(argv):
    """Deploy the blueprint locally and run the three workflows; print JSON figures."""
    parser = argparse.ArgumentParser(prog='benchmarks.fleet workflows')
    parser.add_argument('--fleet', required=True, help='the managers child\'s JSON file')
    parser.add_argument('--concurrency', type=int, required=True)
    parser.add_argument('--dir', required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, REPO)
    from cloudify.workflows import local
    from cloudify_upgrade_plugin import clock
    from tests.fleet.conftest import import_resolver
    with open(args.fleet) as stream:
        fleet = json.load(stream)
    text, inputs = blueprint(fleet)
    path = os.path.join(args.dir, 'blueprint', 'fleet.yaml')
    os.makedirs(os.path.dirname(path))
    with open(path, 'w') as stream:
        stream.write(text)
    env = local.init_env(path, name='fleet', inputs=inputs,
                         storage=local.FileStorage(os.path.join(args.dir, 'storage')),
                         resolver=import_resolver(path))
    walls = {}
    for workflow in WORKFLOWS:
        began = time.monotonic()
        env.execute(workflow, parameters={'concurrency': args.concurrency}, task_retries=0,
                    task_retry_interval=0, task_thread_pool_size=max(8, args.concurrency))
        walls[workflow] = time.monotonic() - began
    busy, statuses = 0.0, {}
    for instance in env.storage.get_node_instances():
        for command in COMMANDS:
            record = instance.runtime_properties.get('upgrade_' + command) or {}
            statuses.setdefault(record.get('status'), 0)
            statuses[record.get('status')] += 1
            busy += (clock.parse(record['ended_at']) -
                     clock.parse(record['started_at'])).total_seconds()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    sys.stdout.write(json.dumps({
        'walls': walls, 'busy': busy, 'statuses': statuses, 'peak_rss_kib': usage.ru_maxrss,
        'cpu': usage.ru_utime + usage.ru_stime}) + '\n')
    return 0


# ------------------------------------------------------------------------- the parent

def one_run(args, concurrency, workdir):
    """Fresh managers and a fresh workflow process at ``concurrency``: its figures."""
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    managers = subprocess.Popen(
        [sys.executable, '-m', 'benchmarks', 'fleet', '--serve-managers', '--managers',
         str(args.managers), '--source', args.source, '--time-scale', str(args.time_scale)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = managers.stdout.readline()
        if not line:
            raise SystemExit('the simulated managers did not start')
        fleet_file = os.path.join(workdir, 'fleet.json')
        with open(os.open(fleet_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                  'w') as stream:
            stream.write(line)
        began = time.monotonic()
        result = subprocess.run(
            [sys.executable, '-m', 'benchmarks', 'fleet', '--run-workflows', '--fleet',
             fleet_file, '--concurrency', str(concurrency), '--dir', workdir],
            cwd=REPO, capture_output=True, text=True, env=env)
        elapsed = time.monotonic() - began
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
            raise SystemExit('the workflows failed at concurrency {0}'.format(concurrency))
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        figures['process'] = elapsed
    finally:
        managers.stdin.close()
        tail = managers.stdout.read()
        managers.wait(60)
    figures['simulators_cpu'] = json.loads(tail.strip().splitlines()[-1])['cpu'] \
        if tail.strip() else None
    return figures


def render(results, args, started, loads):
    lines = ['Recorded {0} with `python -m benchmarks fleet --runs {1}` on `{2}`, nproc {3}, '
             'Python {4}; load average {5:.2f} at the start, {6:.2f} at the end.'.format(
                 started, args.runs, ' '.join(platform.uname()), os.cpu_count(),
                 sys.version.split()[0], loads[0], loads[1]), '',
             '{0} managers {1} -> {2} (`demo` data, simulator time scale {3}), new-host; '
             'upgrade_plan, upgrade_prepare and upgrade_cutover with the concurrency shown; '
             'medians of {4} run(s).'.format(args.managers, args.source, TARGET_VERSION,
                                             args.time_scale, args.runs), '',
             '| concurrency | plan | prepare | cutover | total | peak RSS | in operations '
             'per manager | CPU workflow process | CPU simulators | managers done |',
             '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    medians = {}
    for concurrency in args.levels:
        runs = results[concurrency]
        walls = {w: statistics.median(r['walls'][w] for r in runs) for w in WORKFLOWS}
        total = statistics.median(sum(r['walls'].values()) for r in runs)
        busy = statistics.median(r['busy'] for r in runs) / args.managers
        rss = statistics.median(r['peak_rss_kib'] for r in runs) / 1024.0
        done = min(r['statuses'].get('done', 0) for r in runs) // len(COMMANDS)
        cpu = statistics.median(r['cpu'] for r in runs)
        sims = statistics.median(r.get('simulators_cpu') or 0 for r in runs)
        medians[concurrency] = {'total': total, 'busy': busy}
        lines.append('| {0} | {1:.1f} s | {2:.1f} s | {3:.1f} s | {4:.1f} s | {5:.0f} MiB | '
                     '{6:.2f} s | {7:.1f} s | {8:.1f} s | {9}/{10} |'.format(
                         concurrency, walls['upgrade_plan'], walls['upgrade_prepare'],
                         walls['upgrade_cutover'], total, rss, busy, cpu, sims, done,
                         args.managers))
    lines.append('')
    lines.append('CPU: user + system time of the whole workflow process (imports and the '
                 'deployment included) and of the simulators\' process (their start '
                 'included).')
    lines.append('')
    low, high = min(args.levels), max(args.levels)
    if 1 in medians:
        overhead = (medians[1]['total'] - medians[1]['busy'] * args.managers) / args.managers
        lines.append('- fleet overhead per manager at concurrency 1 (workflow wall time not '
                     'spent in the operations): {0:.2f} s'.format(overhead))
    ratio = medians[high]['total'] / medians[low]['total']
    lines.append('- concurrency {0} / concurrency {1}: {2:.2f} of the time (target <= {3:.2f}):'
                 ' {4}'.format(high, low, ratio, TARGET_RATIO,
                               'met' if ratio <= TARGET_RATIO else 'NOT met'))
    return '\n'.join(lines), ratio


def main(argv):
    if argv and argv[0] == '--serve-managers':
        return serve_managers(argv[1:])
    if argv and argv[0] == '--run-workflows':
        return run_workflows(argv[1:])
    parser = argparse.ArgumentParser(prog='python -m benchmarks fleet',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--managers', type=int, default=20)
    parser.add_argument('--concurrency', default='1,5')
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--source', default='4.6')
    parser.add_argument('--time-scale', type=float, default=0.05)
    parser.add_argument('--record', action='store_true',
                        help='write the figures into benchmarks/README.md')
    args = parser.parse_args(argv)
    args.levels = [int(c) for c in args.concurrency.split(',') if c.strip()]
    started = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    loads = [os.getloadavg()[0]]
    results = {c: [] for c in args.levels}
    for run in range(args.runs):
        order = args.levels if run % 2 == 0 else list(reversed(args.levels))
        for concurrency in order:
            workdir = tempfile.mkdtemp(prefix='bench-fleet-')
            try:
                figures = one_run(args, concurrency, workdir)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            results[concurrency].append(figures)
            log('run {0}, concurrency {1}: {2:.1f} s, CPU: workflow process {3:.1f} s, '
                'simulators {4:.1f} s ({5})'.format(
                    run + 1, concurrency, sum(figures['walls'].values()), figures['cpu'],
                    figures['simulators_cpu'] or 0, figures['statuses']))
    loads.append(os.getloadavg()[0])
    text, ratio = render(results, args, started, loads)
    sys.stdout.write(text + '\n')
    if args.record:
        record_section('fleet', SECTION, text)
    return 0


if __name__ == '__main__':   # pragma: no cover
    sys.exit(main(sys.argv[1:]))
