"""Snapshot transfer: plugin download/upload vs curl and the stock cfy, throughput and RSS.

`python -m benchmarks transfer [--sizes 1024,4096] [--runs 5] [--quick] [--candidate PATH]
[--link RATE[:SIZE]]... [--link-runs N] [--workdir DIR] [--save PATH | --load PATH]
[--record]` starts a simulated 7.0 manager (`python -m tests.simulator`, its own
process), has it create a snapshot, replaces that
snapshot's archive on the simulated host by a valid zip of the requested size (the
simulator's own members, `metadata.json` first, plus one big stored member), then for every
size measures, in rounds whose client order rotates:

- download by the plugin (`snapshot.transfer.download` with a `Manager.connect(...)`, as the
  runbooks call it, progress reporter included), by the whole `cfy upgrade prepare
  --snapshot-id` (its `download-snapshot` / `verify-snapshot` steps timed from the journal),
  by the plugin with SHA-256 replaced by a no-op (diagnostic: what hashing in the pass
  costs), by `curl`, by `curl | tee | sha256sum` (the same verified result with standard
  tools) and by the stock `cfy snapshots download` (the real click command run in-process
  by a small driver, so that interpreter start-up is not counted; the plugin's `.pth` hook
  is switched off there);
- upload by the plugin (`snapshot.transfer.upload_snapshot`), `curl -T` and the stock
  `cfy snapshots upload`;
- what prepare's verify step costs on the downloaded file (a second SHA-256 pass,
  `transfer.verify_file`, and the zip check, `archive.inspect`, timed inside
  `runbooks.common.inspect_local_snapshot`), and a plain read of the file for reference.

Every client runs in its own process under GNU time (peak RSS, CPU); the transfer time is
measured inside the client (curl: `%{time_total}`).  `os.sync()` runs (untimed) before every
transfer.  `--candidate PATH` adds rows for a modified copy of `snapshot/transfer.py` loaded
in place of the plugin's (to evaluate a fix).  Sizes are MiB (1024 = 1 GiB), rates MiB/s.
Targets (issue 10): plugin/curl >= 0.9, plugin/stock >= 1.0, peak RSS independent of size
and under 100 MB, hashing in the same pass and no second full read except the zip check.

`--link RATE[:SIZE]` (repeatable) then measures the plugin, curl, `curl | tee | sha256sum` and
the stock CLI again, downloads and uploads of a SIZE MiB archive (default: the smallest size),
through an emulated link of RATE MiB/s each way (`benchmarks/link.py`, a rate-limited TCP
proxy in its own process): loopback shows what each client costs in CPU, the link whether
the plugin keeps up with a realistic link (100 MiB/s ~ a fast 1 Gbit/s LAN, 12 MiB/s ~ a
100 Mbit/s VPN).  `--link-runs` rounds each (3; `--quick`: 2).

`--record` writes the figures into benchmarks/README.md (between the `transfer:begin` /
`transfer:end` markers).  Not a test: nothing asserts timings.
"""
from benchmarks import record_section
from benchmarks.link import LinkProcess
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
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, 'benchmarks', 'README.md')
BEGIN, END = '<!-- transfer:begin -->', '<!-- transfer:end -->'
SECTION = '## Snapshot transfer'
MIB = 1 << 20
VERSION = '7.0'
TENANT = 'default_tenant'
SOURCE_ID = 'benchsrc'
PASSWORD_ENV = 'BENCH_ADMIN_PASSWORD'
DOWNLOADERS = ('plugin', 'plugin-nohash', 'prepare', 'curl', 'curl-sha256', 'stock')
UPLOADERS = ('plugin', 'curl', 'stock')
LINK_DOWNLOADERS = ('plugin', 'curl', 'curl-sha256', 'stock')
LINK_UPLOADERS = UPLOADERS
QUICK_LINK_RUNS = 2
ORDER = ('plugin', 'candidate', 'prepare', 'plugin-nohash', 'curl', 'curl-sha256', 'stock')
LABELS = {'plugin': 'plugin (`transfer.download`/`upload_snapshot`)',
          'plugin-nohash': 'plugin, SHA-256 off (diagnostic)',
          'prepare': '`cfy upgrade prepare` download step (journal)',
          'candidate': 'candidate `transfer.py` (`--candidate`)',
          'curl': '`curl`', 'curl-sha256': '`curl \\| tee \\| sha256sum` (same result)',
          'stock': 'stock `cfy snapshots download/upload`'}
RSS_LIMIT_MB = 100.0
TIME = '/usr/bin/time'
CFY = os.path.join(os.path.dirname(sys.executable), 'cfy')
CURL_RATIO = 0.9
STOCK_RATIO = 1.0


def log(message):
    sys.stderr.write('[transfer] {0}\n'.format(message))
    sys.stderr.flush()


# ----------------------------------------------------------------------------- child side
# Runs in a fresh process (`python -c ... child(argv)`), so its peak RSS is its own.

def _child_args(argv):
    parser = argparse.ArgumentParser(prog='benchmarks.transfer child')
    parser.add_argument('action', choices=('plugin-download', 'plugin-upload',
                                           'stock-download', 'stock-upload', 'verify'))
    parser.add_argument('--port', type=int)
    parser.add_argument('--snapshot-id')
    parser.add_argument('--path', required=True)
    parser.add_argument('--result', required=True)
    parser.add_argument('--no-hash', action='store_true')
    parser.add_argument('--sha256', default=None, help='the digest the download computed')
    parser.add_argument('--module', default=None,
                        help='a candidate transfer.py used in place of the plugin\'s')
    return parser.parse_args(argv)


class _NoHash(object):
    """Stands in for hashlib.sha256 in the diagnostic run (the digest is meaningless)."""

    def update(self, data):
        pass

    def hexdigest(self):
        return '0' * 64


def _timed_fsync():
    """Wrap os.fsync so the child can report how long the durability fsyncs took."""
    spent = {'seconds': 0.0}
    real = os.fsync

    def fsync(fd):
        start = time.perf_counter()
        try:
            return real(fd)
        finally:
            spent['seconds'] += time.perf_counter() - start
    os.fsync = fsync
    return spent


def _cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _plugin_manager(port):
    from cloudify_upgrade_plugin.manager.client import Manager
    return Manager.connect('127.0.0.1', port, 'http', username='admin',
                           password=os.environ[PASSWORD_ENV], tenant=TENANT)


def _transfer_module(args):
    """The plugin's snapshot.transfer, or the candidate file given with --module."""
    if not args.module:
        from cloudify_upgrade_plugin.snapshot import transfer
        return transfer
    import importlib.util
    import cloudify_upgrade_plugin.snapshot as package
    name = 'cloudify_upgrade_plugin.snapshot.transfer'
    spec = importlib.util.spec_from_file_location(name, args.module)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    package.transfer = module
    return module


def _child_plugin_download(args):
    transfer = _transfer_module(args)
    if args.no_hash:
        from cloudify_upgrade_plugin.snapshot import localfile

        class _Shim(object):
            sha256 = _NoHash
        # the digest of a download is kept by snapshot/localfile.py (PartState)
        localfile.hashlib = _Shim
    fsync = _timed_fsync()
    start = time.perf_counter()
    manager = _plugin_manager(args.port)
    connected, cpu = time.perf_counter(), _cpu()
    result = transfer.download(manager.connection(),
                               transfer.snapshot_archive_uri(args.snapshot_id),
                               args.path,
                               progress=transfer.progress_reporter(args.path, 'Downloading'))
    end = time.perf_counter()
    return {'seconds': end - connected, 'connect': connected - start,
            'cpu_transfer': _cpu() - cpu, 'fsync': fsync['seconds'], 'bytes': result['size'],
            'sha256': None if args.no_hash else result['sha256']}


def _child_plugin_upload(args):
    transfer = _transfer_module(args)
    start = time.perf_counter()
    manager = _plugin_manager(args.port)
    connected, cpu = time.perf_counter(), _cpu()
    transfer.upload_snapshot(manager.connection(), args.snapshot_id, args.path,
                             progress=transfer.progress_reporter(args.path, 'Uploading'))
    end = time.perf_counter()
    return {'seconds': end - connected, 'connect': connected - start,
            'cpu_transfer': _cpu() - cpu, 'bytes': os.path.getsize(args.path)}


def _child_stock(args, command):
    """The stock command, in-process: exactly what the `cfy` launcher runs, minus start-up."""
    from cloudify_cli.main import _cfy
    start, cpu = time.perf_counter(), _cpu()
    try:
        _cfy.main(args=command, prog_name='cfy')
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    end = time.perf_counter()
    if code:
        raise SystemExit('stock `cfy {0}` exited {1}'.format(' '.join(command), code))
    return {'seconds': end - start, 'cpu_transfer': _cpu() - cpu}


def _child_verify(args):
    """Prepare's verify-snapshot step on a just-downloaded file, its reads timed.

    The step gets what `download-snapshot` hands it in `prepare` (the digest computed while
    streaming and the file's identity) when `inspect_local_snapshot` accepts it; then the
    SHA-256 pass a rerun (or new-host's `snapshot-checksum` check) does is timed alone.
    """
    import inspect
    from cloudify_upgrade_plugin.runbooks import common
    from cloudify_upgrade_plugin.snapshot import archive, transfer
    spent = {}

    def timed(name, func):
        def wrapper(*a, **kw):
            start = time.perf_counter()
            try:
                return func(*a, **kw)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - start
        return wrapper
    transfer.verify_file = timed('sha256', transfer.verify_file)
    archive.inspect = timed('zip', archive.inspect)

    class _Workspace(object):
        root = os.path.dirname(os.path.dirname(args.path))

        def path(self, relpath):
            return os.path.join(self.root, relpath)

    start = time.perf_counter()
    with open(args.path, 'rb', buffering=0) as stream:
        while stream.read(transfer.DEFAULT_CHUNK):
            pass
    read = time.perf_counter() - start
    extra = ()
    if args.sha256 and 'downloaded' in inspect.signature(
            common.inspect_local_snapshot).parameters:
        extra = ({'sha256': args.sha256, 'identity': common.file_identity(args.path)},)
    start = time.perf_counter()
    document = common.inspect_local_snapshot(_Workspace(), args.snapshot_id, *extra)
    step = time.perf_counter() - start
    in_step = spent.pop('sha256', None)
    start = time.perf_counter()
    digest = transfer.verify_file(args.path)
    alone = time.perf_counter() - start
    if digest != document['sha256']:
        raise SystemExit('verify_file and the verify step disagree')
    return {'read': read, 'step': step, 'step_sha256': in_step, 'sha256_pass': alone,
            'zip': spent.get('zip'), 'sha256': document['sha256'],
            'snapshot_version': document['snapshot_version'],
            'bytes': os.path.getsize(args.path)}


def child(argv):
    args = _child_args(argv)
    if args.action == 'plugin-download':
        result = _child_plugin_download(args)
    elif args.action == 'plugin-upload':
        result = _child_plugin_upload(args)
    elif args.action == 'stock-download':
        result = _child_stock(args, ['snapshots', 'download', args.snapshot_id,
                                     '--output-path', args.path])
    elif args.action == 'stock-upload':
        result = _child_stock(args, ['snapshots', 'upload', args.path,
                                     '--snapshot-id', args.snapshot_id])
    else:
        result = _child_verify(args)
    with open(args.result, 'w') as stream:
        json.dump(result, stream)
    return 0


# ----------------------------------------------------------------------------- main side

def machine():
    try:
        uname = subprocess.run(['uname', '-a'], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        uname = ' '.join(part for part in platform.uname() if part)
    try:
        with open('/proc/meminfo') as stream:
            kib = int(stream.readline().split()[1])
        memory = '{0:.1f} GiB'.format(kib / 1024.0 / 1024.0)
    except (OSError, ValueError, IndexError):
        memory = 'unknown'
    try:
        cpu = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo')
                    if line.startswith('model name')), 'unknown')
    except OSError:
        cpu = 'unknown'
    curl = subprocess.run(['curl', '--version'], capture_output=True, text=True)
    return {'uname': uname, 'nproc': len(os.sched_getaffinity(0)), 'memory': memory,
            'cpu': cpu, 'python': platform.python_version(),
            'curl': curl.stdout.split('\n', 1)[0].split(' (', 1)[0] if curl.stdout else '?',
            'date': datetime.datetime.now(datetime.timezone.utc).strftime(
                '%Y-%m-%d %H:%M UTC'),
            'load_start': '{0:.2f}'.format(os.getloadavg()[0])}


class Simulator(object):
    """`python -m tests.simulator` in its own process (the server's CPU is not ours)."""

    def __init__(self, workdir):
        self.state_dir = os.path.join(workdir, 'sim')
        self.log_path = os.path.join(workdir, 'simulator.log')
        self._log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'tests.simulator', '--manager-version', VERSION,
             '--no-ssh', '--state-dir', self.state_dir, '--time-scale', '0.05'],
            cwd=REPO, stdout=subprocess.PIPE, stderr=self._log, env=_base_env())
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise SystemExit('the simulator did not start; see {0}'.format(self.log_path))
        info = json.loads(line)
        self.port = info['rest_port']
        self.password = info['admin_password']
        self.url = 'http://127.0.0.1:{0}/api/v3.1'.format(self.port)
        self.manager = None

    def connect(self):
        from cloudify_upgrade_plugin.manager.client import Manager
        self.manager = Manager.connect('127.0.0.1', self.port, 'http', username='admin',
                                       password=self.password, tenant=TENANT)
        return self.manager

    def snapshot_path(self, sid):
        return os.path.join(self.state_dir, 'host', 'opt', 'manager', 'resources',
                            'snapshots', sid, '{0}.zip'.format(sid))

    def delete_snapshot(self, sid):
        self.manager.request('delete', '/snapshots/{0}'.format(sid), expected=(200, 204),
                             what='deleting snapshot {0}'.format(sid))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


def _base_env():
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'CLOUDIFY_USERNAME', 'CLOUDIFY_PASSWORD',
                        'CLOUDIFY_TENANT', 'CLOUDIFY_TOKEN', 'CLOUDIFY_SSL_TRUST_ALL')}
    env['PYTHONPATH'] = REPO
    env['PYTHONWARNINGS'] = 'ignore'
    return env


def build_archive(small, dest, size):
    """A valid zip of about `size` bytes: the simulator's members, then one stored blob."""
    block = os.urandom(8 * MIB)
    with zipfile.ZipFile(small) as source, \
            zipfile.ZipFile(dest, 'w', zipfile.ZIP_STORED, allowZip64=True) as target:
        for info in source.infolist():
            target.writestr(info, source.read(info.filename))
        target.fp.flush()
        remaining = max(0, size - os.path.getsize(dest) - 4096)
        info = zipfile.ZipInfo('bench/payload.bin', date_time=(2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED
        with target.open(info, 'w', force_zip64=True) as stream:
            while remaining > 0:
                piece = block[:min(remaining, len(block))]
                stream.write(piece)
                remaining -= len(piece)
    return os.path.getsize(dest)


def install_archive(sim, archive):
    """Put `archive` in place of the simulator's SOURCE_ID zip (a hard link: no copy)."""
    target = sim.snapshot_path(SOURCE_ID)
    tmp = target + '.bench'
    try:
        os.link(archive, tmp)
    except OSError:
        shutil.copyfile(archive, tmp)
    os.replace(tmp, target)


class Runner(object):
    """Runs one client process and returns its figures (child-measured time + GNU time)."""

    def __init__(self, workdir, sim, candidate=None, port=None, name='cfy'):
        self.workdir = workdir
        self.sim = sim
        self.candidate = candidate
        # Where every client connects: the simulator, or an emulated link in front of it.
        self.port = sim.port if port is None else port
        self.url = 'http://127.0.0.1:{0}/api/v3.1'.format(self.port)
        self.cfy_home = os.path.join(workdir, name)
        self.curl_config = os.path.join(workdir, 'curl.cfg')
        self.counter = 0

    def setup(self):
        os.makedirs(self.cfy_home, mode=0o700, exist_ok=True)
        fd = os.open(self.curl_config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as stream:
            stream.write('user = "admin:{0}"\nheader = "Tenant: {1}"\n'.format(
                self.sim.password, TENANT))
        proc = subprocess.run(
            [CFY, 'profiles', 'use', '127.0.0.1', '--profile-name', 'bench', '--rest-port',
             str(self.port), '-u', 'admin', '-p', self.sim.password, '-t', TENANT,
             '--skip-credentials-validation'], env=self.env(stock=True), cwd=self.workdir,
            capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit('cfy profiles use failed: {0}{1}'.format(
                proc.stdout, proc.stderr))

    def env(self, stock=False):
        env = _base_env()
        env['CFY_WORKDIR'] = self.cfy_home
        env[PASSWORD_ENV] = self.sim.password
        if stock:
            env['CFY_UPGRADE_PLUGIN_DISABLE'] = '1'
        return env

    def _child_argv(self, action, path, result, snapshot_id, extra=()):
        return [sys.executable, '-c', 'import sys; from benchmarks import transfer; '
                'sys.exit(transfer.child(sys.argv[1:]))', action, '--port',
                str(self.port), '--snapshot-id', snapshot_id, '--path', path,
                '--result', result] + list(extra)

    def _files(self):
        self.counter += 1
        return (os.path.join(self.workdir, 'result-{0}.json'.format(self.counter)),
                os.path.join(self.workdir, 'out-{0}.txt'.format(self.counter)))

    def run(self, client, direction, path, snapshot_id):
        """One transfer by `client`; `path` is the destination (download) or the source."""
        result, out = self._files()
        env = self.env(stock=client == 'stock')
        if client == 'curl':
            url = '{0}/snapshots/{1}/archive'.format(self.url, snapshot_id)
            argv = ['curl', '-sS', '--fail', '-K', self.curl_config, '-w',
                    '%{time_total} %{http_code}']
            if direction == 'download':
                argv += ['-o', path, url]
            else:
                argv += ['-T', path, '-H', 'Content-Type: application/octet-stream', '-o',
                         os.devnull, url]
        elif client == 'curl-sha256':
            url = '{0}/snapshots/{1}/archive'.format(self.url, snapshot_id)
            argv = ['bash', '-o', 'pipefail', '-c',
                    'curl -sS --fail -K "$1" "$2" | tee "$3" | sha256sum', 'bench',
                    self.curl_config, url, path]
        elif client == 'prepare':
            self.counter += 1
            upgrade_id = 'bench-{0}'.format(self.counter)
            argv = [CFY, 'upgrade', 'prepare', '--mode', 'new-host', '--snapshot-id',
                    snapshot_id, '--upgrade-id', upgrade_id]
        elif client == 'stock':
            argv = self._child_argv('stock-' + direction, path, result, snapshot_id)
        else:
            extra = ['--no-hash'] if client == 'plugin-nohash' else []
            if client == 'candidate':
                extra = ['--module', self.candidate]
            argv = self._child_argv('plugin-' + direction, path, result, snapshot_id, extra)
        os.sync()
        figures = _measure(argv, env, out, self.workdir)
        if client == 'curl':
            with open(out) as stream:
                seconds, status = stream.read().split()
            if status not in ('200', '201'):
                raise SystemExit('curl {0}: HTTP {1}'.format(direction, status))
            figures.update(seconds=float(seconds), cpu_transfer=figures['cpu'])
        elif client == 'curl-sha256':
            with open(out) as stream:
                digest = stream.read().split()[0]
            figures.update(seconds=figures['wall'], cpu_transfer=figures['cpu'],
                           sha256=digest)
        elif client == 'prepare':
            figures.update(self._prepare_figures(upgrade_id, snapshot_id, path))
        else:
            with open(result) as stream:
                figures.update(json.load(stream))
            os.unlink(result)
        os.unlink(out)
        return figures

    def _prepare_figures(self, upgrade_id, snapshot_id, path):
        """Step durations from the journal; the workspace's zip moved to `path`."""
        workspace = os.path.join(self.cfy_home, '.cloudify', 'upgrades', upgrade_id)
        times = {}
        digest = None
        with open(os.path.join(workspace, 'journal.jsonl')) as stream:
            for line in stream:
                entry = json.loads(line)
                times[(entry['step'], entry['event'])] = _parse_ts(entry['ts'])
                if entry['step'] == 'download-snapshot' and entry['event'] == 'succeeded':
                    digest = entry['details'].get('sha256')

        def took(step):
            return times[(step, 'succeeded')] - times[(step, 'started')]
        os.replace(os.path.join(workspace, 'snapshot', '{0}.zip'.format(snapshot_id)), path)
        shutil.rmtree(workspace)
        return {'seconds': took('download-snapshot'), 'verify_step': took('verify-snapshot'),
                'sha256': digest, 'cpu_transfer': None}

    def verify(self, path, snapshot_id, sha256):
        result, out = self._files()
        figures = _measure(self._child_argv('verify', path, result, snapshot_id,
                                            ['--sha256', sha256]),
                           self.env(), out, self.workdir)
        with open(result) as stream:
            figures.update(json.load(stream))
        os.unlink(result)
        os.unlink(out)
        return figures


def _parse_ts(text):
    moment = datetime.datetime.strptime(text.rstrip('Z'), '%Y-%m-%dT%H:%M:%S.%f')
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def _measure(argv, env, out, cwd):
    """Run argv under GNU time; return wall time, peak RSS (MiB) and CPU seconds.

    GNU time forks the client from its own small process: `wait4()` on a child that we
    spawn ourselves would report our RSS (Python's vfork + exec keeps the parent's
    high-water mark in the child's `ru_maxrss`).
    """
    usage_file = out + '.time'
    argv = [TIME, '-f', '%M %U %S', '-o', usage_file] + list(argv)
    with open(out, 'wb') as stdout:
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, stdout=stdout, stderr=subprocess.PIPE,
                              cwd=cwd)
        wall = time.perf_counter() - start
    with open(usage_file) as stream:
        lines = [line for line in stream.read().splitlines() if line.strip()]
    os.unlink(usage_file)
    if proc.returncode:
        raise SystemExit('{0} exited {1}:\n{2}'.format(
            ' '.join(a for a in argv if not a.startswith('import ')), proc.returncode,
            proc.stderr.decode('utf-8', 'replace')[-3000:]))
    rss_kib, user, system = lines[-1].split()
    return {'wall': wall, 'rss_mb': int(rss_kib) / 1024.0, 'cpu': float(user) + float(system)}


def _rotate(items, n):
    n %= len(items)
    return list(items[n:]) + list(items[:n])


def measure_size(sim, runner, workdir, size_mib, runs, candidate=False,
                 downloaders=DOWNLOADERS, uploaders=UPLOADERS, verify=True, where=''):
    """Every client's downloads and uploads of one archive size, `runs` rotated rounds."""
    size = size_mib * MIB
    archive = os.path.join(workdir, 'archive-{0}.zip'.format(size_mib))
    start = time.perf_counter()
    actual = build_archive(sim.snapshot_path(SOURCE_ID), archive, size)
    log('{0} MiB: archive of {1} bytes built in {2:.1f}s'.format(
        size_mib, actual, time.perf_counter() - start))
    small = sim.snapshot_path(SOURCE_ID) + '.small'
    shutil.copyfile(sim.snapshot_path(SOURCE_ID), small)
    install_archive(sim, archive)
    downloaders = tuple(downloaders) + (('candidate',) if candidate else ())
    uploaders = tuple(uploaders) + (('candidate',) if candidate else ())
    results = {'size_mib': size_mib, 'bytes': actual, 'download': {}, 'upload': {},
               'verify': [], 'digests': set()}
    dest_dir = os.path.join(workdir, 'dl')
    dest = os.path.join(dest_dir, 'snapshot', '{0}.zip'.format(SOURCE_ID))
    try:
        for round_no in range(runs):
            for client in _rotate(downloaders, round_no):
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                figures = runner.run(client, 'download', dest, SOURCE_ID)
                got = os.path.getsize(dest)
                if got != actual:
                    raise SystemExit('{0} downloaded {1} bytes, expected {2}'.format(
                        client, got, actual))
                if figures.get('sha256'):
                    results['digests'].add(figures['sha256'])
                results['download'].setdefault(client, []).append(figures)
                log('{0}{1} MiB download {2:<13} {3:7.1f} MiB/s  peak RSS {4:5.1f} MiB'.format(
                    where, size_mib, client, actual / MIB / figures['seconds'], figures['rss_mb']))
                if verify and client == 'plugin' and round_no < min(runs, 3):
                    checked = runner.verify(dest, SOURCE_ID, figures['sha256'])
                    results['verify'].append(checked)
                    results['digests'].add(checked['sha256'])
                    log('{0} MiB verify: read {1:.1f}s, SHA-256 pass {2:.1f}s, zip check '
                        '{3:.1f}s'.format(size_mib, checked['read'], checked['sha256_pass'],
                                          checked['zip']))
                shutil.rmtree(dest_dir, ignore_errors=True)
            for client in _rotate(uploaders, round_no):
                sid = 'up-{0}-{1}'.format(client, round_no)
                figures = runner.run(client, 'upload', archive, sid)
                stored = sim.snapshot_path(sid)
                got = os.path.getsize(stored) if os.path.exists(stored) else None
                sim.delete_snapshot(sid)
                if got != actual:
                    raise SystemExit('{0} upload stored {1} bytes, expected {2}'.format(
                        client, got, actual))
                results['upload'].setdefault(client, []).append(figures)
                log('{0}{1} MiB upload   {2:<13} {3:7.1f} MiB/s  peak RSS {4:5.1f} MiB'.format(
                    where, size_mib, client, actual / MIB / figures['seconds'], figures['rss_mb']))
    finally:
        shutil.rmtree(dest_dir, ignore_errors=True)
        os.replace(small, sim.snapshot_path(SOURCE_ID))
        os.unlink(archive)
    if len(results['digests']) != 1:
        raise SystemExit('the SHA-256 digests disagree: {0}'.format(results['digests']))
    return results


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(results):
    """Medians per size, direction and client, with the ratios to curl and the stock CLI."""
    rows = []
    for res in results:
        size = res['bytes'] / MIB
        gib = res['bytes'] / float(1 << 30)
        for direction in ('download', 'upload'):
            clients = res[direction]
            rate = {c: size / _median([r['seconds'] for r in runs])
                    for c, runs in clients.items()}
            for client in [c for c in ORDER if c in clients]:
                runs = clients[client]
                cpu = _median([r['cpu_transfer'] for r in runs])
                rows.append({
                    'link': res.get('link'),
                    'size_mib': res['size_mib'], 'direction': direction, 'client': client,
                    'runs': len(runs), 'rate': rate[client],
                    'vs_curl': rate[client] / rate['curl'],
                    'vs_curl_sha': rate[client] / rate['curl-sha256']
                    if 'curl-sha256' in rate else None,
                    'vs_stock': rate[client] / rate['stock'],
                    'rss': _median([r['rss_mb'] for r in runs]),
                    'rss_max': max(r['rss_mb'] for r in runs),
                    'cpu_per_gib': None if cpu is None else cpu / gib,
                    'fsync': _median([r.get('fsync') for r in runs]),
                    'seconds': _median([r['seconds'] for r in runs]),
                    'verify_step': _median([r.get('verify_step') for r in runs]),
                    'connect': _median([r.get('connect') for r in runs])})
    return rows


def _find(rows, size, direction, client):
    return next((r for r in rows if r['size_mib'] == size and r['direction'] == direction
                 and r['client'] == client), None)


def verdicts(results, rows):
    """One line per target of issue 10, with the figures that decide it."""
    lines = []
    sizes = [res['size_mib'] for res in results]
    for direction in ('download', 'upload'):
        for size in sizes:
            row = _find(rows, size, direction, 'plugin')
            extra = ''
            e2e = _find(rows, size, direction, 'prepare')
            if e2e:
                extra = ' (`cfy upgrade prepare`: {0:.2f} / {1:.2f})'.format(
                    e2e['vs_curl'], e2e['vs_stock'])
            lines.append(
                '{0} MiB {1}: plugin/curl {2:.2f} (target >= {3}): {4}; plugin/stock {5:.2f} '
                '(target >= {6}): {7}{8}'.format(
                    size, direction, row['vs_curl'], CURL_RATIO,
                    'met' if row['vs_curl'] >= CURL_RATIO else '**not met**',
                    row['vs_stock'], STOCK_RATIO,
                    'met' if row['vs_stock'] >= STOCK_RATIO else '**not met**', extra))
    lines.extend(rss_verdicts(sizes, rows))
    for res in results:
        size = res['size_mib']
        hashed = _find(rows, size, 'download', 'plugin')
        bare = _find(rows, size, 'download', 'plugin-nohash')
        ver = res['verify']
        second = _median([v['sha256_pass'] for v in ver])
        zipcheck = _median([v['zip'] for v in ver])
        rehashed = [v for v in ver if v.get('step_sha256') is not None]
        e2e = _find(rows, size, 'download', 'prepare')
        in_prepare = '' if not e2e or e2e['verify_step'] is None else \
            ' (the step took {0:.1f} s inside `cfy upgrade prepare`)'.format(e2e['verify_step'])
        if rehashed:
            verdict = ('but prepare\'s `verify-snapshot` step re-reads the file for a second '
                       'SHA-256 pass ({0:.1f} s){1}: "no second full read except the zip check" '
                       '**not met**'.format(second, in_prepare))
        else:
            verdict = ('prepare\'s `verify-snapshot` step trusts that digest when the file is '
                       'untouched since the download{0}: "no second full read except the zip '
                       'check" met; a rerun that skipped the download, and new-host\'s '
                       '`snapshot-checksum` check, still hash it again ({1:.1f} s)'.format(
                           in_prepare, second))
        lines.append(
            '{0} MiB: SHA-256 is computed in the download\'s pass (it costs {1:.1f} s of the '
            '{2:.1f} s download: {3:.0f} vs {4:.0f} MiB/s with it off); zip check {5:.1f} s '
            '(one extra read, expected); {6}'.format(
                size, hashed['seconds'] - bare['seconds'], hashed['seconds'], hashed['rate'],
                bare['rate'], zipcheck, verdict))
    return lines


def rss_verdicts(sizes, rows):
    """Peak RSS: the highest run against the limit, the medians against each other."""
    lines = []
    for client, what in (('plugin', 'plugin process'), ('prepare', '`cfy upgrade prepare`')):
        peaks, medians = {}, {}
        for direction in ('download', 'upload'):
            for size in sizes:
                row = _find(rows, size, direction, client)
                if row:
                    peaks[(direction, size)] = row['rss_max']
                    medians[(direction, size)] = row['rss']
        if not peaks:
            continue
        worst = max(peaks.values())
        spread = max(abs(medians[(d, sizes[-1])] - medians[(d, sizes[0])])
                     for d, _ in medians
                     if (d, sizes[0]) in medians and (d, sizes[-1]) in medians)
        lines.append(
            'peak RSS of the {0} (median / max per run): {1}; highest {2:.1f} MiB = {3:.1f} MB '
            '(target < {4:.0f} MB); medians {5:.1f} MiB apart between {6} and {7} MiB '
            '(independent of size): {8}'.format(
                what, ', '.join('{0} {1} MiB {2:.1f} / {3:.1f}'.format(
                    d, s, medians[(d, s)], v) for (d, s), v in sorted(peaks.items())),
                worst, worst * 1.048576, RSS_LIMIT_MB, spread, sizes[0], sizes[-1],
                'met' if worst * 1.048576 < RSS_LIMIT_MB and spread < 5.0
                else '**not met**'))
    return lines


def render(info, results, rows, args, links=(), link_rows=()):
    lines = [
        'Recorded {date} with `python -m benchmarks transfer{extra}` on `{uname}`, nproc '
        '{nproc} ({cpu}), {memory} memory, Python {python}, cloudify 7.0.5, {curl} (Debian '
        'package, already installed), GNU time; load average {load_start} at the start, '
        '{load_end} at the end (a shared machine: other sessions were running their tests).'
        .format(extra=' ' + ' '.join(args.argv) if args.argv else '', **info),
        '',
        'Simulated 7.0 manager (`python -m tests.simulator`, its own process) on 127.0.0.1. '
        'Medians of {0} runs per client and size, the client order rotated every round. '
        'MiB/s = archive size / transfer time measured inside the client (curl: '
        '`%{{time_total}}`; stock: the click command run in-process; plugin: the '
        '`transfer` call after `Manager.connect`; prepare: the `download-snapshot` step\'s '
        'journal timestamps), so process start-up is not counted. Peak RSS of the client '
        'process from GNU time; CPU = user + system seconds of the transfer per GiB; fsync = '
        'the plugin\'s durability fsyncs before the rename (included in its time; its '
        'background fdatasyncs during the transfer are not counted: they overlap it).'.format(
            args.runs),
        '',
        '| size | direction | client | MiB/s | vs curl | vs curl + sha256sum | vs stock '
        '| peak RSS (median / max) | CPU s/GiB | fsync |',
        '|---:|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for row in rows:
        lines.append('| {0} MiB | {1} | {2} | {3:.0f} | {4:.2f} | {5} | {6:.2f} | {7:.1f} / '
                     '{8:.1f} MiB | {9} | {10} |'.format(
                         row['size_mib'], row['direction'], LABELS[row['client']],
                         row['rate'], row['vs_curl'],
                         '-' if row['vs_curl_sha'] is None else '{0:.2f}'.format(
                             row['vs_curl_sha']),
                         row['vs_stock'], row['rss'], row['rss_max'],
                         '-' if row['cpu_per_gib'] is None else '{0:.2f}'.format(
                             row['cpu_per_gib']),
                         '-' if row['fsync'] is None else '{0:.2f} s'.format(row['fsync'])))
    lines += ['', 'Verifying the downloaded file (prepare\'s `verify-snapshot` step, '
              '`runbooks.common.inspect_local_snapshot`, given what the download step hands '
              'it; medians of {0} runs, the file in the page cache). "SHA-256 pass" is '
              '`transfer.verify_file` alone: what the step costs on a rerun that skipped the '
              'download, and what new-host\'s `snapshot-checksum` check costs; the last column '
              'is the step inside `cfy upgrade prepare`, from its journal:'.format(
                  min(args.runs, 3)), '',
              '| size | plain read | SHA-256 pass | zip check | step after a download '
              '| step in `prepare` |', '|---:|---:|---:|---:|---:|---:|']
    for res in results:
        ver = res['verify']
        size = res['bytes'] / MIB

        def cell(seconds):
            return '{0:.2f} s ({1:.0f} MiB/s)'.format(seconds, size / seconds)
        e2e = _find(rows, res['size_mib'], 'download', 'prepare')
        lines.append('| {0} MiB | {1} | {2} | {3} | {4} | {5} |'.format(
            res['size_mib'], cell(_median([v['read'] for v in ver])),
            cell(_median([v['sha256_pass'] for v in ver])),
            cell(_median([v['zip'] for v in ver])), cell(_median([v['step'] for v in ver])),
            cell(e2e['verify_step']) if e2e and e2e['verify_step'] else '-'))
    lines += render_links(links, link_rows, args.link_runs)
    lines += [''] + ['- {0}'.format(v) for v in verdicts(results, rows)]
    lines += ['- {0}'.format(v) for v in link_verdicts(links, link_rows)]
    return '\n'.join(lines) + '\n'


def render_links(links, rows, runs):
    """The table of the transfers through emulated links (none: no lines)."""
    if not links:
        return []
    sizes = sorted({(res['link'], res['size_mib']) for res in links}, reverse=True)
    lines = [
        '', 'Through an emulated link: `benchmarks/link.py`, a TCP proxy on 127.0.0.1 in its '
        'own process between every client and the simulator, with a token-bucket rate limit '
        'in each direction (no added latency or loss); {0}. Medians of {1} runs per client, '
        'the order rotated every round; the archive is smaller on a slow link to keep the '
        'runs short. "of the link" = MiB/s / the link\'s rate:'.format(
            ', '.join('{0:g} MiB/s with {1} MiB'.format(rate, size) for rate, size in sizes),
            runs), '',
        '| link | size | direction | client | MiB/s | of the link | vs curl '
        '| vs curl + sha256sum | vs stock | peak RSS (median / max) | CPU s/GiB |',
        '|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|']
    for row in rows:
        lines.append(
            '| {0:g} MiB/s | {1} MiB | {2} | {3} | {4:.1f} | {5:.2f} | {6:.2f} | {7} | {8:.2f} '
            '| {9:.1f} / {10:.1f} MiB | {11} |'.format(
                row['link'], row['size_mib'], row['direction'], LABELS[row['client']],
                row['rate'], row['rate'] / row['link'], row['vs_curl'],
                '-' if row['vs_curl_sha'] is None else '{0:.2f}'.format(row['vs_curl_sha']),
                row['vs_stock'], row['rss'], row['rss_max'],
                '-' if row['cpu_per_gib'] is None else '{0:.2f}'.format(
                    row['cpu_per_gib'])))
    return lines


def link_verdicts(links, rows):
    """The issue's ratios through each emulated link."""
    lines = []
    for res in links:
        for direction in ('download', 'upload'):
            row = next(r for r in rows if r['link'] == res['link'] and
                       r['size_mib'] == res['size_mib'] and r['direction'] == direction and
                       r['client'] == 'plugin')
            lines.append(
                'link {0:g} MiB/s, {1} MiB {2}: plugin/curl {3:.3f} (target >= {4}): {5}; '
                'plugin/stock {6:.3f} (target >= {7}): {8}; the plugin moves {9:.1%} of the '
                'link\'s rate'.format(
                    res['link'], res['size_mib'], direction, row['vs_curl'], CURL_RATIO,
                    'met' if row['vs_curl'] >= CURL_RATIO else '**not met**',
                    row['vs_stock'], STOCK_RATIO, _link_stock_verdict(row, res['link']),
                    row['rate'] / res['link']))
    return lines


LINK_BOUND = 0.98     # a client at this share of the link's rate or more is link-bound


def _link_stock_verdict(row, link):
    """'met', or - when the plugin and the stock CLI both move the link's full rate - a
    tie the link decides (their difference is measurement noise), else not met."""
    if row['vs_stock'] >= STOCK_RATIO:
        return 'met'
    stock_rate = row['rate'] / row['vs_stock'] if row['vs_stock'] else 0.0
    if row['rate'] / link >= LINK_BOUND and stock_rate / link >= LINK_BOUND:
        return ('a tie: both saturate the link ({0:.1%} apart, within noise; nothing can '
                'be faster than the link)'.format(1 - row['vs_stock']))
    return '**not met**'


def record(text):
    record_section('transfer', SECTION, text)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m benchmarks transfer',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='1024,4096',
                        help='archive sizes in MiB, comma separated (default 1024,4096)')
    parser.add_argument('--runs', type=int, default=5, help='runs per client and size')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: 64 MiB, 3 runs (overrides --sizes/--runs)')
    parser.add_argument('--workdir', default=None,
                        help='where the archives and downloads go (default: a temp dir)')
    parser.add_argument('--candidate', default=None, metavar='PATH',
                        help='also measure a candidate copy of snapshot/transfer.py (a fix '
                             'being evaluated) loaded in place of the plugin\'s')
    parser.add_argument('--save', default=None, metavar='PATH',
                        help='also write every run\'s raw figures to PATH (JSON)')
    parser.add_argument('--load', default=None, metavar='PATH',
                        help='measure nothing: render (and --record) figures saved by --save')
    parser.add_argument('--link', action='append', default=[], metavar='RATE[:SIZE]',
                        help='also measure plugin, curl, curl | sha256sum and the stock CLI '
                             'through an emulated link of RATE MiB/s each way '
                             '(benchmarks/link.py) with an archive of SIZE MiB (default: the '
                             'smallest of --sizes); repeatable: --link 100:1024 --link 12:256')
    parser.add_argument('--link-runs', type=int, default=None,
                        help='runs per client through each link (default 3, --quick 2)')
    parser.add_argument('--record', action='store_true',
                        help='write the figures into benchmarks/README.md')
    args = parser.parse_args(argv)
    if args.candidate:
        args.candidate = os.path.abspath(args.candidate)
    if args.quick:
        args.sizes, args.runs = '64', 3
    args.size_list = [int(s) for s in args.sizes.split(',') if s.strip()]
    if args.link_runs is None:
        args.link_runs = QUICK_LINK_RUNS if args.quick else 3
    args.links = []
    for spec in args.link:
        rate, _, size = spec.partition(':')
        try:
            args.links.append((float(rate), int(size) if size else min(args.size_list)))
        except ValueError:
            parser.error('--link {0}: expected RATE[:SIZE], MiB/s and MiB'.format(spec))
        if args.links[-1][0] <= 0 or args.links[-1][1] <= 0:
            parser.error('--link {0}: the rate and the size must be positive'.format(spec))
    args.argv = argv
    return args


def main(argv=None):
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.load:
        with open(args.load) as stream:
            saved = json.load(stream)
        info, results = saved['info'], saved['results']
        links = saved.get('links', [])
        args.runs, args.argv = saved['runs'], saved['argv']
        args.link_runs = saved.get('link_runs', args.link_runs)
    else:
        info, results, links = measure(args)
        if results is None:
            return 2
    if args.save:
        with open(args.save, 'w') as stream:
            json.dump({'info': info, 'results': results, 'runs': args.runs,
                       'links': links, 'link_runs': args.link_runs,
                       'argv': args.argv}, stream, indent=1, default=sorted)
    rows = summarize(results)
    text = render(info, results, rows, args, links, summarize(links))
    sys.stdout.write(text)
    if args.record:
        record(text)
        log('recorded in {0}'.format(README))
    return 0


def measure(args):
    """Start the simulator, measure every size, then every link.

    -> (machine info, results, link results) or (None, None, None)."""
    for tool in ('curl', TIME, 'bash', 'sha256sum', 'tee'):
        if shutil.which(tool) is None:
            log('{0} is missing: install it (apt-get install -y curl time coreutils) and run '
                'again'.format(tool))
            return None, None, None
    workdir = tempfile.mkdtemp(prefix='bench-transfer-', dir=args.workdir)
    need = 3 * max(args.size_list + [size for _, size in args.links]) * MIB + (1 << 30)
    free = shutil.disk_usage(workdir).free
    if free < need:
        shutil.rmtree(workdir, ignore_errors=True)
        log('not enough disk under {0}: {1:.1f} GiB free, {2:.1f} GiB needed'.format(
            workdir, free / (1 << 30), need / (1 << 30)))
        return None, None, None
    info = machine()
    sim = None
    try:
        sim = Simulator(workdir)
        manager = sim.connect()
        execution = manager.create_snapshot(SOURCE_ID)
        manager.wait_for_execution(execution, timeout=120)
        runner = Runner(workdir, sim, candidate=args.candidate)
        runner.setup()
        results = []
        for size in args.size_list:
            results.append(measure_size(sim, runner, workdir, size, args.runs,
                                        candidate=bool(args.candidate)))
        links = [measure_link(sim, workdir, rate, size, args) for rate, size in args.links]
    finally:
        if sim is not None:
            sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    info['load_end'] = '{0:.2f}'.format(os.getloadavg()[0])
    return info, results, links


def measure_link(sim, workdir, rate, size, args):
    """The clients of LINK_DOWNLOADERS/LINK_UPLOADERS through an emulated link."""
    link = LinkProcess(sim.port, rate, cwd=REPO, env=_base_env())
    try:
        runner = Runner(workdir, sim, candidate=args.candidate, port=link.port,
                        name='cfy-link-{0:g}'.format(rate))
        runner.setup()
        res = measure_size(sim, runner, workdir, size, args.link_runs,
                           candidate=bool(args.candidate), downloaders=LINK_DOWNLOADERS,
                           uploaders=LINK_UPLOADERS, verify=False,
                           where='link {0:g} MiB/s: '.format(rate))
    finally:
        link.stop()
    res['link'] = rate
    return res


if __name__ == '__main__':   # pragma: no cover
    sys.exit(main())
