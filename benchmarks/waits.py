"""Wait efficiency: how soon a wait notices an execution's end, and its requests per minute.

`python -m benchmarks waits [--executions 60] [--spread 60] [--long-wait 60]
[--scaled-wait 3600] [--quick] [--record]` starts a simulated 7.0 manager in this process
(`tests.simulator.start`, `demo` data; executions of `execute_operation` hang until ended) and
measures the plugin's `manager.waits.wait_for_execution` - the wait every step uses for
snapshot creation, restore and agent installs - twice: with its default adaptive poll, and
with the cap the restore wait passes (`manager.waits.RESTORE_POLL_CAP`):

- notice latency: a separate process (so the waits do not share this process's GIL with the
  simulator) connects with `Manager.connect(...)` and waits on `--executions` executions at
  once, one thread each; this process ends them through the REST API (the admin
  `PATCH /executions/<id>` `{"status": "cancelled"}` that finalises a stuck execution,
  observed-7.0; the simulator stamps `ended_at`; a hung simulated execution can only end
  cancelled, and the wait notices every end state the same way) at random (seeded) offsets
  over `--spread` seconds after the waits began, so every phase of the poll's back-off is
  sampled.  Latency = the moment the wait returned (wall clock in
  the waiting process) - the execution's `ended_at` in the simulator's answer.
- requests during a long wait: in the same run one more wait polls an execution that never
  ends for `--long-wait` real seconds (it times out); the simulator's request log gives the
  `GET /executions/<id>` count.  `--scaled-wait` seconds (default one hour) are then waited
  on another never-ending execution with the wait's injectable clock (its sleeps advance a
  virtual clock instead of sleeping), against the same simulator: every poll is a real HTTP
  request, counted per virtual minute.

Targets (issue 10): the end is noticed in under 2 s; the request rate of a long wait is
bounded.  `--record` writes the figures into benchmarks/README.md (between the
`waits:begin`/`waits:end` markers).  Not a test: nothing asserts timings.
"""
from benchmarks import record_section
import argparse
import datetime
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, 'benchmarks', 'README.md')
BEGIN, END = '<!-- waits:begin -->', '<!-- waits:end -->'
SECTION = '## Wait efficiency'
VERSION = '7.0'
TENANT = 'default_tenant'
DEPLOYMENT = 'hw-1'
WORKFLOW = 'execute_operation'
PASSWORD_ENV = 'BENCH_ADMIN_PASSWORD'
NOTICE_TARGET = 2.0


def log(message):
    sys.stderr.write('[waits] {0}\n'.format(message))
    sys.stderr.flush()


def _manager(port, password):
    from cloudify_upgrade_plugin.manager.client import Manager
    return Manager.connect('127.0.0.1', port, 'http', username='admin', password=password,
                           tenant=TENANT)


# ----------------------------------------------------------------------------- child side

def child(argv):
    """Wait on every execution at once (one thread and one Manager each); print JSON.

    stdout: one line `{"ready": <epoch>}` when every wait has begun, then one line with
    the results `{"waits": [{"id", "returned", "outcome", "polls"}]}`.
    """
    parser = argparse.ArgumentParser(prog='benchmarks.waits child')
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--ids', required=True, help='comma separated execution ids')
    parser.add_argument('--timeout', type=float, required=True)
    parser.add_argument('--long-id', default=None)
    parser.add_argument('--long-timeout', type=float, default=None)
    parser.add_argument('--poll-cap', type=float, default=None)
    args = parser.parse_args(argv)
    from cloudify_upgrade_plugin.errors import UpgradeError
    from cloudify_upgrade_plugin.manager import waits
    password = os.environ[PASSWORD_ENV]
    jobs = [(eid, args.timeout) for eid in args.ids.split(',') if eid]
    if args.long_id:
        jobs.append((args.long_id, args.long_timeout))
    managers = [_manager(args.port, password) for _ in jobs]
    options = {} if args.poll_cap is None else {'poll_cap': args.poll_cap}
    barrier = threading.Barrier(len(jobs) + 1)
    results = [None] * len(jobs)

    def wait(index, execution_id, timeout):
        manager = managers[index]
        barrier.wait()
        try:
            execution = waits.wait_for_execution(manager, execution_id, timeout=timeout,
                                                 **options)
            outcome = execution.get('status')
        except UpgradeError as error:
            outcome = error.error_id
        results[index] = {'id': execution_id, 'returned': time.time(), 'outcome': outcome}

    threads = [threading.Thread(target=wait, args=(i, eid, timeout), daemon=True)
               for i, (eid, timeout) in enumerate(jobs)]
    for thread in threads:
        thread.start()
    barrier.wait()
    sys.stdout.write(json.dumps({'ready': time.time()}) + '\n')
    sys.stdout.flush()
    for thread in threads:
        thread.join()
    sys.stdout.write(json.dumps({'waits': results}) + '\n')
    sys.stdout.flush()
    return 0


# ----------------------------------------------------------------------------- main side

def _epoch(stamp):
    """Simulator timestamps: "2026-11-26T11:14:58.115Z" (UTC)."""
    moment = datetime.datetime.strptime(stamp.rstrip('Z'), '%Y-%m-%dT%H:%M:%S.%f')
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def start_executions(manager, count):
    ids = []
    for _ in range(count):
        execution = manager.request(
            'post', '/executions', data={'deployment_id': DEPLOYMENT, 'workflow_id': WORKFLOW,
                                         'parameters': {}, 'force': True},
            expected=(200, 201), what='starting an execution')
        ids.append(execution['id'])
    return ids


def percentile(values, fraction):
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(math.ceil(fraction * len(ordered))) - 1))
    return ordered[index]


def measure_notice(sim, manager, args, cap):
    """Run the waiting process, end the executions on schedule, pair the timestamps."""
    ids = start_executions(manager, args.executions)
    long_id = start_executions(manager, 1)[0]
    rng = random.Random(10)        # seeded: evenly spaced ends would alias with the poll
    offsets = [rng.uniform(0.5, args.spread) for _ in range(args.executions)]
    env = dict(os.environ, PYTHONPATH=REPO, PYTHONWARNINGS='ignore')
    env[PASSWORD_ENV] = sim.admin_password
    argv = [sys.executable, '-c', 'import sys; from benchmarks import waits; '
            'sys.exit(waits.child(sys.argv[1:]))', '--port', str(sim.rest_port),
            '--ids', ','.join(ids), '--timeout', str(args.spread + 120),
            '--long-id', long_id, '--long-timeout', str(args.long_wait),
            '--poll-cap', repr(cap)]
    sim.requests.clear()
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())['ready']
        ended = {}
        for eid, offset in sorted(zip(ids, offsets), key=lambda pair: pair[1]):
            delay = ready + offset - time.time()
            if delay > 0:
                time.sleep(delay)
            answer = manager.request('patch', '/executions/{0}'.format(eid),
                                     data={'status': 'cancelled'},
                                     what='ending execution {0}'.format(eid))
            ended[eid] = {'ended_at': _epoch(answer['ended_at']), 'offset': offset,
                          'patched': time.time()}
        line = proc.stdout.readline()
        if proc.wait(60) or not line:
            raise SystemExit('the waiting process failed (exit {0})'.format(proc.returncode))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    waits = json.loads(line)['waits']
    requests = list(sim.requests)
    samples = []
    long_wait = None
    for item in waits:
        polls = sum(1 for r in requests if r['method'] == 'GET' and
                    r['path'].endswith('/executions/{0}'.format(item['id'])))
        if item['id'] == long_id:
            long_wait = {'outcome': item['outcome'], 'polls': polls,
                         'seconds': item['returned'] - ready}
            continue
        end = ended[item['id']]
        samples.append({'latency': item['returned'] - end['ended_at'],
                        'offset': end['offset'], 'outcome': item['outcome'],
                        'polls': polls})
    return samples, long_wait


def measure_scaled(sim, manager, seconds, cap):
    """A `seconds`-long wait on a virtual clock; real HTTP polls counted per minute."""
    from cloudify_upgrade_plugin.errors import UpgradeError
    from cloudify_upgrade_plugin.manager import waits
    eid = start_executions(manager, 1)[0]
    now = [0.0]
    stamps = []
    real_get = manager.get_execution

    def get_execution(execution_id, retry=True):
        stamps.append(now[0])
        return real_get(execution_id, retry=retry)

    def sleep(delay):
        now[0] += delay
    manager.get_execution = get_execution
    sim.requests.clear()
    started = time.perf_counter()
    try:
        waits.wait_for_execution(manager, eid, timeout=seconds, clock=lambda: now[0],
                                 sleep=sleep, poll_cap=cap)
        outcome = 'ended'
    except UpgradeError as error:
        outcome = error.error_id
    finally:
        del manager.get_execution
    real = time.perf_counter() - started
    served = sum(1 for r in sim.requests if r['method'] == 'GET' and
                 r['path'].endswith('/executions/{0}'.format(eid)))
    minutes = int(math.ceil(seconds / 60.0))
    buckets = [0] * minutes
    for stamp in stamps:
        buckets[min(minutes - 1, int(stamp // 60))] += 1
    manager.request('patch', '/executions/{0}'.format(eid), data={'status': 'cancelled'},
                    what='ending execution {0}'.format(eid))
    return {'seconds': seconds, 'polls': len(stamps), 'served': served, 'real': real,
            'outcome': outcome, 'first_minute': buckets[0],
            'steady': statistics.median(buckets[1:]) if minutes > 1 else buckets[0],
            'max_minute': max(buckets), 'min_minute': min(buckets)}


def machine():
    try:
        uname = subprocess.run(['uname', '-a'], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        uname = ' '.join(part for part in platform.uname() if part)
    return {'uname': uname, 'nproc': len(os.sched_getaffinity(0)),
            'python': platform.python_version(),
            'date': datetime.datetime.now(datetime.timezone.utc).strftime(
                '%Y-%m-%d %H:%M UTC'),
            'load_start': '{0:.2f}'.format(os.getloadavg()[0])}


def _cap_reached(poll):
    """Seconds into a wait after which the poll interval is at its cap."""
    start, factor, cap = poll
    elapsed, interval = 0.0, start
    while interval < cap:
        elapsed += interval
        interval = min(cap, interval * factor)
    return elapsed


def _summary(config):
    """The figures of one poll configuration."""
    samples, long_wait, scaled = config['samples'], config['long_wait'], config['scaled']
    latencies = [sample['latency'] for sample in samples]
    poll = (config['start'], config['factor'], config['cap'])
    capped_after = _cap_reached(poll)
    capped = [sample['latency'] for sample in samples if sample['offset'] > capped_after]
    outcomes = {}
    for sample in samples:
        outcomes[sample['outcome']] = outcomes.get(sample['outcome'], 0) + 1
    worst = max(samples, key=lambda sample: sample['latency'])
    return {
        'ended': '{0} ({1})'.format(len(samples), ', '.join(
            '{0} {1}'.format(v, k) for k, v in sorted(outcomes.items()))),
        'median': statistics.median(latencies), 'p90': percentile(latencies, 0.9),
        'max': worst['latency'], 'max_offset': worst['offset'], 'min': min(latencies),
        'capped_after': capped_after,
        'capped': '{0:.2f} s / {1:.2f} s ({2} ends)'.format(
            statistics.median(capped), max(capped), len(capped)) if capped else '-',
        'long_rate': long_wait['polls'] / long_wait['seconds'] * 60.0,
        'long': long_wait, 'scaled': scaled, 'poll': poll}


def render(info, configs, args):
    sums = [_summary(config) for config in configs]
    heads = ' | '.join(config['label'] for config in configs)

    def row(label, cells):
        return '| {0} | {1} |'.format(label, ' | '.join(cells))
    lines = [
        'Recorded {date} with `python -m benchmarks waits{extra}` on `{uname}`, nproc '
        '{nproc}, Python {python}, cloudify 7.0.5; load average {load_start} at the start, '
        '{load_end} at the end (a shared machine).'.format(
            extra=' ' + ' '.join(args.argv) if args.argv else '', **info),
        '',
        '`manager.waits.wait_for_execution` against a simulated 7.0 manager on 127.0.0.1, '
        'with the poll of every wait (first poll after {0:g} s, x{1:g} per poll, capped at '
        '{2:g} s) and with the cap the restore wait passes (`poll_cap={3:g}`, '
        '`manager.waits.RESTORE_POLL_CAP`).'.format(
            sums[0]['poll'][0], sums[0]['poll'][1], sums[0]['poll'][2], sums[-1]['poll'][2])
        if len(sums) > 1 else
        '`manager.waits.wait_for_execution` with its defaults (poll every {0:g} s at first, '
        'x{1:g} per poll, capped at {2:g} s), against a simulated 7.0 manager on 127.0.0.1.'
        .format(*sums[0]['poll']),
        '',
        '| measure | {0} |'.format(heads),
        '|---|{0}'.format('---|' * len(configs)),
        row('executions ended while waited on (ends spread over {0:g} s)'.format(args.spread),
            [x['ended'] for x in sums]),
        row('notice latency: median', ['{0:.2f} s'.format(x['median']) for x in sums]),
        row('notice latency: 90th percentile', ['{0:.2f} s'.format(x['p90']) for x in sums]),
        row('notice latency: maximum', ['{0:.2f} s (ended {1:.1f} s into the wait)'.format(
            x['max'], x['max_offset']) for x in sums]),
        row('notice latency: minimum', ['{0:.2f} s'.format(x['min']) for x in sums]),
        row('notice latency once the poll is at its cap: median / maximum',
            ['{0} (ends > {1:.1f} s into the wait)'.format(x['capped'], x['capped_after'])
             for x in sums]),
        row('long wait, real time: `GET /executions/<id>` per minute',
            ['{0:.1f} ({1} in {2:.0f} s; ended with `{3}`)'.format(
                x['long_rate'], x['long']['polls'], x['long']['seconds'],
                x['long']['outcome']) for x in sums]),
        row('long wait, virtual clock: polls (served by the simulator)',
            ['{0} ({1}) in {2:.0f} min; {3:.1f} s real, {4:.0f} ms per poll'.format(
                x['scaled']['polls'], x['scaled']['served'], x['scaled']['seconds'] / 60.0,
                x['scaled']['real'], 1000.0 * x['scaled']['real'] /
                max(1, x['scaled']['polls'])) for x in sums]),
        row('virtual clock: polls in the first minute / per later minute (median, min-max)',
            ['{0} / {1:g} ({2}-{3})'.format(
                x['scaled']['first_minute'], x['scaled']['steady'],
                x['scaled']['min_minute'], x['scaled']['max_minute']) for x in sums]),
        '',
    ]
    for config, x in zip(configs, sums):
        cap = x['poll'][2]
        lines.append(
            '- {0}: notice latency median {1:.2f} s, maximum {2:.2f} s (target under {3:g} s): '
            '{4}'.format(config['label'], x['median'], x['max'], NOTICE_TARGET,
                         'met' if x['max'] < NOTICE_TARGET else
                         '**not met** for the worst case (the poll cap is {0:g} s, so an end '
                         'just after a poll waits a whole interval plus the request)'.format(
                             cap)))
        bound = 60.0 / cap
        lines.append(
            '- {0}: requests per minute during a long wait {1:.1f} (real {2:.0f} s), {3:g} '
            'per minute after the first over {4:.0f} virtual minutes, at most {5} in any minute '
            '(60 / {6:g} s = {7:g}, plus the faster first polls): {8}'.format(
                config['label'], x['long_rate'], x['long']['seconds'], x['scaled']['steady'],
                x['scaled']['seconds'] / 60.0, x['scaled']['max_minute'], cap, bound,
                'bounded' if x['scaled']['max_minute'] <= bound + 6 else '**not bounded**'))
    return '\n'.join(lines) + '\n'


def record(text):
    record_section('waits', SECTION, text)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m benchmarks waits',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--executions', type=int, default=60,
                        help='executions waited on at once (default 60)')
    parser.add_argument('--spread', type=float, default=60.0,
                        help='their ends are spread over this many seconds (default 60)')
    parser.add_argument('--long-wait', type=float, default=60.0,
                        help='real seconds of the long wait whose requests are counted')
    parser.add_argument('--scaled-wait', type=float, default=3600.0,
                        help='virtual seconds of the wait on an injected clock (default 3600)')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: 12 executions over 8 s, a 15 s long wait, 10 '
                             'virtual minutes')
    parser.add_argument('--record', action='store_true',
                        help='write the figures into benchmarks/README.md')
    args = parser.parse_args(argv)
    if args.quick:
        args.executions, args.spread, args.long_wait, args.scaled_wait = 12, 8.0, 15.0, 600.0
    args.argv = argv
    return args


def main(argv=None):
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    from cloudify_upgrade_plugin.manager import waits
    from tests.simulator import start
    configs = [{'label': 'every wait (defaults)', 'cap': waits.POLL_CAP},
               {'label': 'restore wait', 'cap': waits.RESTORE_POLL_CAP}]
    info = machine()
    sim = start(VERSION, data='demo', ssh=False, time_scale=0.05)
    try:
        sim.faults.hang_execution(workflow_id=WORKFLOW)
        manager = _manager(sim.rest_port, sim.admin_password)
        for config in configs:
            config.update(start=waits.POLL_START, factor=waits.POLL_FACTOR)
            log('{0} (cap {1:g} s): waiting on {2} executions ending over {3:g} s, and one '
                'for {4:g} s...'.format(config['label'], config['cap'], args.executions,
                                        args.spread, args.long_wait))
            config['samples'], config['long_wait'] = measure_notice(sim, manager, args,
                                                                    config['cap'])
            log('{0}: a {1:g} s wait on a virtual clock...'.format(
                config['label'], args.scaled_wait))
            config['scaled'] = measure_scaled(sim, manager, args.scaled_wait, config['cap'])
    finally:
        sim.stop()
    info['load_end'] = '{0:.2f}'.format(os.getloadavg()[0])
    text = render(info, configs, args)
    sys.stdout.write(text)
    if args.record:
        record(text)
        log('recorded in {0}'.format(README))
    return 0


if __name__ == '__main__':   # pragma: no cover
    sys.exit(main())
