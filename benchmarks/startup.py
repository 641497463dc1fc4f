"""Start-up cost of the plugin's `.pth` hook: two fresh venvs, with and without the plugin.

Builds the plugin's wheel from a copy of the checkout (or takes `--wheel`), creates two
fresh virtualenvs that differ only by that wheel (the Makefile's setuptools pin, SETUPTOOLS
(why: README.md, Install), + cloudify 7.0.x in both),
then times `python -c pass`, `cfy --version` and `cfy snapshots --help` in each, interleaving
the two venvs run by run (the order flips every round) to spread machine noise evenly.  It
reports medians, the paired median difference and the ratio, the hook's own import time
(`python -X importtime`), and checks the targets of issue 2: the `.pth` adds under 2 ms to a
bare Python start, `cfy snapshots --help` has a with/without ratio <= 1.03.

`--record` writes the figures, the machine and the date into benchmarks/README.md (between
the `startup:begin` / `startup:end` markers).  Not a test: nothing here asserts timings.
"""
import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = Path(__file__).resolve().parent / 'README.md'
BEGIN, END = '<!-- startup:begin -->', '<!-- startup:end -->'
HOOK = '_cloudify_upgrade_hook'
PTH_TARGET_MS = 2.0
RATIO_TARGET = 1.03
SETUPTOOLS = 'setuptools<80.9'  # the Makefile's pin (why: README.md, Install)
COMMANDS = (
    ('python -c pass', ('python', '-c', 'pass')),
    ('cfy --version', ('cfy', '--version')),
    ('cfy snapshots --help', ('cfy', 'snapshots', '--help')),
)
_SKIP = {'.git', '.venv', 'build', 'dist', 'wagon-out', '.tox', '__pycache__',
         '.pytest_cache'}
_DROP_ENV = ('PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'PYTHONINSPECT', 'VIRTUAL_ENV',
             'PYTHONWARNINGS', 'PYTHONDEVMODE', 'PYTHONPROFILEIMPORTTIME',
             'CFY_UPGRADE_PLUGIN_DISABLE')


def log(message):
    sys.stderr.write('[startup] {0}\n'.format(message))
    sys.stderr.flush()


def _run(argv, **kwargs):
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit('failed ({0}): {1}\n{2}\n{3}'.format(
            result.returncode, ' '.join(str(a) for a in argv), result.stdout, result.stderr))
    return result.stdout


def build_wheel(dest):
    """Build the wheel from a copy of the checkout (nothing is written into the checkout)."""
    source = Path(dest) / 'source'
    shutil.copytree(REPO, source, symlinks=True, ignore=lambda d, names: [
        n for n in names if n in _SKIP or n.endswith(('.egg-info', '.pyc'))])
    _run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
          '-w', Path(dest) / 'dist', source], cwd=source)
    return next((Path(dest) / 'dist').glob('cloudify_upgrade_plugin-*.whl'))


class Venv(object):
    def __init__(self, root, label):
        self.root = Path(root)
        self.label = label
        self.scratch = self.root.parent / (label + '-scratch')
        self.scratch.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
        env.update({'HOME': str(self.scratch), 'CFY_WORKDIR': str(self.scratch),
                    'PATH': '{0}{1}{2}'.format(self.root / 'bin', os.pathsep, env['PATH']),
                    'LC_ALL': 'C.UTF-8', 'LANG': 'C.UTF-8', 'COLUMNS': '80',
                    'PIP_DISABLE_PIP_VERSION_CHECK': '1'})
        self.env = env

    def argv(self, command):
        return [str(self.root / 'bin' / command[0])] + list(command[1:])

    def create(self, requirements):
        _run([sys.executable, '-m', 'venv', self.root])
        _run(self.argv(('python', '-m', 'pip', 'install', '-q')) + list(requirements),
             env=self.env, cwd=self.scratch)

    def output(self, *command):
        return _run(self.argv(command), env=self.env, cwd=self.scratch)

    def freeze(self):
        lines = self.output('python', '-m', 'pip', 'freeze', '--all').splitlines()
        return {line for line in lines if not line.lower().startswith('cloudify-upgrade')}

    def time_once(self, command):
        """(wall seconds, child CPU seconds) of one run; CPU time is less disturbed by load."""
        start = time.perf_counter()
        child = subprocess.Popen(self.argv(command), env=self.env, cwd=str(self.scratch),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise SystemExit('{0}: `{1}` exited {2}'.format(
                self.label, ' '.join(command), child.returncode))
        return elapsed, usage.ru_utime + usage.ru_stime


def measure(without, with_plugin, command, runs):
    """Interleaved timings (seconds): the venv order flips every round."""
    pairs = {without.label: [], with_plugin.label: []}
    for venv in (without, with_plugin):  # warm-up: .pyc files, page cache
        venv.time_once(command)
        venv.time_once(command)
    for i in range(runs):
        order = (without, with_plugin) if i % 2 == 0 else (with_plugin, without)
        for venv in order:
            pairs[venv.label].append(venv.time_once(command))
    return pairs


def hook_import_ms(venv, runs):
    """Median self-time of the hook module in `python -X importtime -c pass`, in ms."""
    samples = []
    for _ in range(runs):
        result = subprocess.run(venv.argv(('python', '-X', 'importtime', '-c', 'pass')),
                                env=venv.env, cwd=str(venv.scratch), capture_output=True,
                                text=True)
        match = re.search(r'import time:\s+(\d+) \|\s+\d+ \|\s+' + HOOK + r'\s*$',
                          result.stderr, re.M)
        if match:
            samples.append(int(match.group(1)) / 1000.0)
    return statistics.median(samples) if samples else None


def summarize(label, pairs, runs):
    row = {'command': label, 'runs': runs}
    for index, kind in ((0, 'wall'), (1, 'cpu')):
        base = [sample[index] * 1000 for sample in pairs['without']]
        plug = [sample[index] * 1000 for sample in pairs['with']]
        row[kind] = {'without_ms': statistics.median(base), 'with_ms': statistics.median(plug),
                     'added_ms': statistics.median([b - a for a, b in zip(base, plug)]),
                     'ratio': statistics.median(plug) / statistics.median(base)}
    return row


def machine():
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count()
    try:
        uname = subprocess.run(['uname', '-a'], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        uname = ' '.join(part for part in platform.uname() if part)
    return {'uname': uname, 'nproc': cpus, 'python': platform.python_version(),
            'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}


def render(rows, info, hook_ms, verdicts):
    lines = [
        'Recorded {date} with `python -m benchmarks startup` on `{uname}`, nproc {nproc}, '
        'Python {python}, {cloudify}; load average {load_start} at the start, {load_end} at '
        'the end.'.format(**info),
        '',
        'Two fresh venvs that differ only by the plugin\'s wheel; medians of interleaved runs '
        '(venv order flipped every round, two warm-up runs each not counted). "added" is the '
        'median of the paired per-round differences; ratio = median with / median without. '
        'Wall-clock time decides the targets; CPU time (user + system of the child) is less '
        'disturbed by other load and is shown as a cross-check.',
        '',
        '| command | runs | without plugin | with plugin | added | ratio | added (CPU) '
        '| ratio (CPU) |',
        '|---|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for row in rows:
        wall, cpu = row['wall'], row['cpu']
        lines.append('| `{0}` | {1} | {2:.1f} ms | {3:.1f} ms | {4:+.2f} ms | {5:.3f} | '
                     '{6:+.2f} ms | {7:.3f} |'.format(
                         row['command'], row['runs'], wall['without_ms'], wall['with_ms'],
                         wall['added_ms'], wall['ratio'], cpu['added_ms'], cpu['ratio']))
    lines += ['', 'Hook module self-time in `python -X importtime -c pass` (median of 30): '
              '{0}.'.format('n/a' if hook_ms is None else '{0:.2f} ms'.format(hook_ms)), '']
    lines += ['- {0}'.format(v) for v in verdicts]
    return '\n'.join(lines) + '\n'


def record(text):
    current = README.read_text() if README.exists() else ''
    block = '{0}\n{1}{2}'.format(BEGIN, text, END)
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        updated = head + block + rest.split(END, 1)[1]
    else:
        updated = current.rstrip('\n') + '\n\n## Start-up\n\n' + block + '\n'
    README.write_text(updated)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m benchmarks startup',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('--runs', type=int, default=20,
                        help='timed runs per venv for the cfy commands (default 20)')
    parser.add_argument('--pass-runs', type=int, default=100,
                        help='timed runs per venv for `python -c pass` (default 100)')
    parser.add_argument('--wheel', type=Path, default=None,
                        help='use this wheel instead of building one from the checkout')
    parser.add_argument('--workdir', type=Path, default=None,
                        help='keep the venvs here (default: a temporary dir, removed)')
    parser.add_argument('--record', action='store_true',
                        help='write the figures into benchmarks/README.md')
    args = parser.parse_args(argv)
    if args.runs < 10 or args.pass_runs < 10:
        parser.error('at least 10 runs each (the targets are medians of >= 10 runs)')
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix='cfy-upgrade-startup-'))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _main(args, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _main(args, workdir):
    info = machine()
    wheel = args.wheel or build_wheel(workdir / 'build')
    log('wheel: {0}'.format(wheel.name))
    without, with_plugin = Venv(workdir / 'without', 'without'), Venv(workdir / 'with', 'with')
    log('creating the venv without the plugin')
    without.create([SETUPTOOLS, 'cloudify>=7.0.5,<7.1'])
    log('creating the venv with the plugin')
    with_plugin.create([SETUPTOOLS, str(wheel)])
    if without.freeze() != with_plugin.freeze():
        log('warning: the venvs differ beyond the plugin: {0}'.format(
            sorted(without.freeze() ^ with_plugin.freeze())))
    if 'upgrade' not in with_plugin.output('cfy', '--help') or \
            '  upgrade ' in without.output('cfy', '--help'):
        raise SystemExit('sanity check failed: `cfy --help` must list upgrade only with '
                         'the plugin')
    info['cloudify'] = next((p.replace('==', ' ') for p in with_plugin.freeze()
                             if p.startswith('cloudify==')), 'cloudify ?')
    info['load_start'] = '{0:.2f}'.format(os.getloadavg()[0])

    rows = []
    for label, command in COMMANDS:
        runs = args.pass_runs if command[0] == 'python' else args.runs
        log('timing `{0}` ({1} runs per venv)'.format(label, runs))
        rows.append(summarize(label, measure(without, with_plugin, command, runs), runs))
    hook_ms = hook_import_ms(with_plugin, 30)
    info['load_end'] = '{0:.2f}'.format(os.getloadavg()[0])

    by_label = {row['command']: row for row in rows}
    pth = by_label['python -c pass']['wall']['added_ms']
    ratio = by_label['cfy snapshots --help']['wall']['ratio']
    verdicts = [
        '`.pth` cost on a bare start: {0:+.2f} ms (target < {1:.0f} ms): {2}'.format(
            pth, PTH_TARGET_MS, 'met' if pth < PTH_TARGET_MS else 'NOT met'),
        '`cfy snapshots --help` ratio: {0:.3f} (target <= {1}): {2}'.format(
            ratio, RATIO_TARGET, 'met' if ratio <= RATIO_TARGET else 'NOT met'),
    ]
    text = render(rows, info, hook_ms, verdicts)
    sys.stdout.write(text)
    if args.record:
        record(text)
        log('recorded in {0}'.format(README))
    return 0


if __name__ == '__main__':
    sys.exit(main())
