"""Estimates before the snapshot exists: its size, the disk it needs where, the transfer time.

``plan`` and ``prepare`` count what the old manager holds (``count_items``: one list request
per resource and tenant asking for one row, whose ``metadata.pagination.total`` is the
count), turn the counts into sizes with a per-item model (``estimate``; the model and its
assumptions are in docs/estimates.md: no REST API of 3.4-7.0 gives a blueprint's or a
plugin's size), say where the bytes land (the old host, this machine, the new host) and how
long the download and the upload take at ``--link-mbps``.  ``host_free_space`` reads
``df -Pk`` (POSIX output, 1024-byte blocks) on a manager host over SSH so that the checks
``source-disk`` (plan, prepare) and ``target-disk`` (check-target) compare, per file
system, the free space with what lands on it.
"""
import os
import shlex
import zipfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.options import DEFAULT_LINK_MBPS

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
MARGIN = 1.25           # needs are the estimate plus 25 %
# What every snapshot holds whatever the data: the database schema and its fixed tables,
# the manager's own files (certificates, agent settings, metadata): bytes, zip ratio.
BASE = (30 * MIB, 0.5)
FILES, DATABASE = 'files', 'database'
# resource -> (bytes per item before zipping, zip ratio, where the restore puts it)
PER_ITEM: Dict[str, Tuple[int, float, str]] = {
    'blueprints': (2 * MIB, 0.6, FILES),        # the uploaded archive and its extracted copy
    'plugins': (25 * MIB, 1.0, FILES),          # a wagon: wheels, already compressed
    'deployments': (64 * KIB, 0.2, DATABASE),   # rows, the plan, the deployment's folder
    'node-instances': (8 * KIB, 0.2, DATABASE),  # runtime properties
    'executions': (4 * KIB, 0.2, DATABASE),     # parameters, tasks (5.x+)
    'events': (1 * KIB, 0.15, DATABASE),        # events and logs
}
# Where the bytes land on a manager host (cloudify-manager@4.2
# workflows/cloudify_system_workflows/snapshots/snapshot_create.py SnapshotCreate: the data
# is copied into a tempfile.mkdtemp() folder, then zipped into
# <file_server_root>/snapshots/<id>/<id>.zip; the restore extracts the zip into a temporary
# folder again and copies the files under the file server root).
TEMP_DIR = '/tmp'
FILE_SERVER_ROOT = '/opt/manager/resources'


@dataclass
class Estimate:
    """What the model says for one manager's data (bytes, seconds)."""

    counts: Dict[str, Optional[int]]
    link_mbps: float
    uncompressed_bytes: int = 0
    snapshot_bytes: int = 0
    files_bytes: int = 0
    needs: Dict[str, Dict[str, int]] = field(default_factory=dict)

    @property
    def transfer_seconds(self) -> int:
        """One way (the download, or the upload) at ``link_mbps``."""
        return int(round(self.snapshot_bytes * 8 / (self.link_mbps * 1e6)))

    def to_dict(self) -> dict:
        return {'counts': dict(self.counts),
                'not_counted': sorted(k for k, v in self.counts.items() if v is None),
                'snapshot_bytes': self.snapshot_bytes,
                'uncompressed_bytes': self.uncompressed_bytes,
                'link_mbps': self.link_mbps,
                'transfer_seconds': {'download': self.transfer_seconds,
                                     'upload': self.transfer_seconds},
                'needs': {where: dict(paths) for where, paths in self.needs.items()},
                'margin': MARGIN, 'model': 'docs/estimates.md'}


def estimate(counts: Dict[str, Optional[int]], link_mbps: float = DEFAULT_LINK_MBPS,
             snapshot_bytes: Optional[int] = None,
             uncompressed_bytes: Optional[int] = None) -> Estimate:
    """The model applied to ``counts`` (a missing count is taken as 0 and listed under
    ``not_counted``); a known snapshot's sizes replace the modelled ones."""
    raw, zipped, files = BASE[0], BASE[0] * BASE[1], 0
    for resource, (size, ratio, where) in PER_ITEM.items():
        count = counts.get(resource) or 0
        raw += count * size
        zipped += count * size * ratio
        if where == FILES:
            files += count * size
    result = Estimate(counts=dict(counts), link_mbps=float(link_mbps),
                      uncompressed_bytes=int(uncompressed_bytes or raw),
                      snapshot_bytes=int(snapshot_bytes or zipped), files_bytes=int(files))
    zip_need = _with_margin(result.snapshot_bytes)
    unzipped_need = _with_margin(result.uncompressed_bytes)
    result.needs = {
        'old_host': {TEMP_DIR: unzipped_need, FILE_SERVER_ROOT: zip_need},
        'local': {'workspace': zip_need},
        'new_host': {TEMP_DIR: unzipped_need,
                     FILE_SERVER_ROOT: zip_need + _with_margin(result.files_bytes)},
    }
    return result


def for_manager(manager, link_mbps: float = DEFAULT_LINK_MBPS) -> Estimate:
    """The estimate of ``manager``'s snapshot from what it lists now."""
    return estimate(count_items(manager), link_mbps)


def _with_margin(size: int) -> int:
    return int(size * MARGIN)


# members of a snapshot zip that go to the database, not under the file server root
DATABASE_MEMBERS = ('pg_data', 'es_data', 'influxdb_data', 'stage_data', 'composer_data')


def snapshot_sizes(path: str) -> Tuple[int, int]:
    """(bytes once unzipped, bytes of it that land under the file server root) of a local
    snapshot zip, from its directory (nothing is extracted)."""
    total = files = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            total += info.file_size
            if info.filename.split('/', 1)[0] not in DATABASE_MEMBERS:
                files += info.file_size
    return total, files


def for_snapshot(path: str, link_mbps: float = DEFAULT_LINK_MBPS) -> Estimate:
    """The needs of a snapshot already downloaded (its real sizes, not the model's)."""
    total, files = snapshot_sizes(path)
    result = estimate({}, link_mbps, snapshot_bytes=os.path.getsize(path),
                      uncompressed_bytes=total)
    result.files_bytes = files
    result.needs['new_host'][FILE_SERVER_ROOT] = \
        _with_margin(result.snapshot_bytes) + _with_margin(files)
    return result


def count_items(manager) -> Dict[str, Optional[int]]:
    """How many of each modelled resource the manager holds, over every tenant (None: the
    manager could not say; events are not counted on 3.x, whose events live in
    Elasticsearch)."""
    tenants = manager.list_tenants() if manager.has_tenants else []
    counts = {}
    for resource in PER_ITEM:
        if resource == 'events' and not versions.has_tenants(manager.version):
            counts[resource] = None
            continue
        total = 0
        for tenant in tenants or [None]:
            found = _count(manager, resource, tenant)
            if found is None:
                total = None
                break
            total += found
        counts[resource] = total
    return counts


def _count(manager, resource, tenant) -> Optional[int]:
    params = {'_size': 1, '_offset': 0}
    if resource == 'executions':
        params['_include_system_workflows'] = True
    if resource != 'events':
        params['_include'] = 'id'
    try:
        answer = manager.list_page(resource, params, tenant=tenant,
                                   what='counting {0}'.format(resource))
    except UpgradeError:
        return None
    total = ((answer.get('metadata') or {}).get('pagination') or {}).get('total')
    if total is None:
        return len(answer.get('items') or [])
    return int(total)


@dataclass(frozen=True)
class FreeSpace:
    """One ``df -Pk`` line: the file system holding ``path``."""

    path: str
    filesystem: str
    mount: str
    free_bytes: int


def parse_df(text: str, paths: List[str]) -> List[FreeSpace]:
    """``df -Pk PATH...`` output (GNU coreutils, POSIX format: a header, then one line per
    path: file system, 1024-blocks, used, available, capacity, mounted on) -> FreeSpace."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].split()[:1] == ['Filesystem']:
        raise ValueError('not df -P output: {0!r}'.format(text[:200]))
    rows = lines[1:]
    if len(rows) != len(paths):
        raise ValueError('df -P gave {0} line(s) for {1} path(s)'.format(len(rows), len(paths)))
    found = []
    for path, row in zip(paths, rows):
        parts = row.split()
        if len(parts) < 6 or not parts[3].isdigit():
            raise ValueError('unexpected df -P line: {0!r}'.format(row))
        # the mount point is the rest of the line (it may hold spaces)
        mount = row.split(None, 5)[5]
        found.append(FreeSpace(path, parts[0], mount, int(parts[3]) * 1024))
    return found


def host_free_space(host, paths: List[str]) -> List[FreeSpace]:
    """``df -Pk`` of each path (its nearest existing parent) on ``host`` (a host.ssh.Host)."""
    existing = []
    for path in paths:
        probe = path
        while probe not in ('', '/'):
            rc, _ = host.run(['test', '-e', probe], check=False)
            if rc == 0:
                break
            probe = os.path.dirname(probe)
        existing.append(probe or '/')
    rc, out = host.run(['df', '-Pk'] + existing, check=False)
    if rc != 0:
        raise UpgradeError('`{0}` failed on {1} (exit {2}).'.format(
            ' '.join(shlex.quote(p) for p in ['df', '-Pk'] + existing), host.label, rc),
            error_id='df-failed', hints=['Run it on the host to see why.'])
    return [FreeSpace(path, item.filesystem, item.mount, item.free_bytes)
            for path, item in zip(paths, parse_df(out, existing))]


def shortfalls(needs: Dict[str, int], free: List[FreeSpace]) -> Tuple[List[dict], List[str]]:
    """Per file system: ([{mount, filesystem, paths, needed_bytes, free_bytes}], [problems])
    - the needs of paths on the same file system add up."""
    by_fs: Dict[Tuple[str, str], dict] = {}
    for item in free:
        entry = by_fs.setdefault((item.filesystem, item.mount), {
            'mount': item.mount, 'filesystem': item.filesystem, 'paths': [],
            'needed_bytes': 0, 'free_bytes': item.free_bytes})
        entry['paths'].append(item.path)
        entry['needed_bytes'] += needs.get(item.path, 0)
    rows = list(by_fs.values())
    problems = ['{0} ({1}) has {2} free, needs {3}'.format(
        ', '.join(row['paths']), row['mount'], human_bytes(row['free_bytes']),
        human_bytes(row['needed_bytes'])) for row in rows
        if row['free_bytes'] < row['needed_bytes']]
    return rows, problems


def human_bytes(size) -> str:
    size = float(size or 0)
    for unit, scale in (('GiB', GIB), ('MiB', MIB), ('KiB', KIB)):
        if size >= scale:
            return '{0:.1f} {1}'.format(size / scale, unit)
    return '{0:.0f} B'.format(size)


def human_seconds(seconds) -> str:
    seconds = int(seconds or 0)
    if seconds < 60:
        return '{0} s'.format(seconds)
    if seconds < 3600:
        return '{0} min {1:02d} s'.format(seconds // 60, seconds % 60)
    return '{0} h {1:02d} min'.format(seconds // 3600, seconds % 3600 // 60)


def section(result: Estimate, checks) -> dict:
    """The ``estimates`` section of a plan / prepare document: the estimate and the free
    space the disk checks measured (their details), by place."""
    document = result.to_dict()
    measured = {}
    for check in checks:
        item = check.to_dict() if hasattr(check, 'to_dict') else check
        place = DISK_CHECKS.get(item.get('id'))
        if place:
            measured[place] = dict(item.get('details') or {}, status=item.get('status'))
    document['free'] = measured
    return document


# the checks that measure the free space of one place (their id -> the place)
DISK_CHECKS = {'local-disk': 'local', 'source-disk': 'old_host', 'target-disk': 'new_host'}


def lines(document: dict) -> List[str]:
    """Human lines for the ``estimates`` section of a document."""
    counts = document['counts']
    listed = ', '.join('{0} {1}'.format('?' if counts[k] is None else counts[k], k)
                       for k in PER_ITEM)
    out = ['Estimates (model: {0}): snapshot about {1} zipped, {2} unzipped, from {3}.'.format(
               document['model'], human_bytes(document['snapshot_bytes']),
               human_bytes(document['uncompressed_bytes']), listed),
           '  Transfer at {0:g} Mbit/s: download about {1}, upload about {2}.'.format(
               document['link_mbps'], human_seconds(document['transfer_seconds']['download']),
               human_seconds(document['transfer_seconds']['upload']))]
    names = {'old_host': 'the old manager host', 'local': 'this machine',
             'new_host': 'the new manager host'}
    for where, paths in document['needs'].items():
        measured = (document.get('free') or {}).get(where) or {}
        if measured.get('filesystems'):
            free = '; free: {0}'.format(', '.join('{0} {1}'.format(
                row['mount'], human_bytes(row['free_bytes']))
                for row in measured['filesystems']))
        elif measured.get('free_bytes') is not None:
            free = '; free: {0}'.format(human_bytes(measured['free_bytes']))
        else:
            free = '; free space not checked' if where != 'new_host' else \
                '; checked by check-target'
        out.append('  Disk needed on {0}: {1}{2}.'.format(
            names.get(where, where), ', '.join('{0} {1}'.format(path, human_bytes(size))
                                               for path, size in paths.items()), free))
    return out
