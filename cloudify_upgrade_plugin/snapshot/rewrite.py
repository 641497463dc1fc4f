"""A copy of a snapshot zip whose ``metadata.json`` gains keys; every other member untouched.

``copy_with_metadata(src, dest, add)`` writes ``dest`` (then ``dest.sha256``) from ``src``:

- the bytes of every member but ``metadata.json`` (local header, name, extra, compressed
  data, data descriptor) are copied as they are, in two ranges around the old
  ``metadata.json`` entry: nothing is decompressed or recompressed, so a multi-gigabyte
  snapshot costs one sequential copy;
- a new ``metadata.json`` (the old one's keys, the ``add`` keys added, nothing changed) is
  written after them with the old entry's compression, then a central directory listing the
  copied members at their new offsets and the new metadata (Python's ``zipfile`` writes it,
  ZIP64 records included when needed);
- keys already in the original's metadata are never changed (``add`` holds missing keys);
- the result is CRC-checked (``ZipFile.testzip``, every member read), its member list and
  every member's CRC and sizes compared with the original's, and its ``metadata.json`` read
  back; only then is it hashed, ``dest.sha256`` written atomically and the file renamed into
  place (a crash leaves a hidden temporary file or a ``.sha256`` without its archive, never
  a half-written ``dest``).  ``src`` is only read.

Errors are ``UpgradeError``: ``route-copy-failed`` (the copy does not verify),
``snapshot-corrupt`` / ``snapshot-no-metadata`` from reading the original.
"""
import copy
import json
import os
import struct
import tempfile
import zipfile
from typing import Dict

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.files import FILE_MODE, atomic_write, fsync_dir
from cloudify_upgrade_plugin.snapshot import archive
from cloudify_upgrade_plugin.snapshot.localfile import sha256_file, unlink_quiet

_ZIP64_EXTRA = 0x0001
_COPY_CHUNK = 8 << 20


def _strip_zip64_extra(extra: bytes) -> bytes:
    """The extra field without its ZIP64 record (rewritten from the new offsets/sizes)."""
    kept = b''
    position = 0
    while position + 4 <= len(extra):
        tag, size = struct.unpack('<HH', extra[position:position + 4])
        end = position + 4 + size
        if tag != _ZIP64_EXTRA:
            kept += extra[position:end]
        position = end
    return kept


def _copy_range(fin, fout, start, end):
    fin.seek(start)
    left = end - start
    while left > 0:
        block = fin.read(min(_COPY_CHUNK, left))
        if not block:
            raise UpgradeError('The snapshot ended early while it was copied.',
                               error_id='route-copy-failed')
        fout.write(block)
        left -= len(block)


def _failed(dest, why):
    return UpgradeError(
        'The copy {0} of the snapshot does not verify: {1}'.format(dest, why),
        error_id='route-copy-failed',
        hints=['Check the local disk, then run the same command again: the copy is made '
               'anew from the original (which is not changed).'])


def _read_original(src):
    try:
        with zipfile.ZipFile(src) as zin:
            infos = zin.infolist()
            meta = zin.getinfo(archive.METADATA)
            metadata = json.loads(zin.read(meta).decode('utf-8-sig'))
            return infos, meta, metadata, zin.start_dir
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise UpgradeError(
            'The snapshot {0} cannot be read to copy it: {1}'.format(src, exc),
            error_id='snapshot-corrupt',
            hints=['Run `cfy upgrade prepare` for a new upgrade: the snapshot must be '
                   'downloaded again.'])


def _write(src, tmp, add):
    infos, meta, metadata, entries_end = _read_original(src)
    ordered = sorted(infos, key=lambda info: info.header_offset)
    after = [info.header_offset for info in ordered if info.header_offset > meta.header_offset]
    meta_end = min(after) if after else entries_end
    removed = meta_end - meta.header_offset
    for key, value in add.items():
        metadata.setdefault(key, value)
    data = json.dumps(metadata).encode('utf-8')
    with open(src, 'rb') as fin, open(tmp, 'wb') as fout:
        os.fchmod(fout.fileno(), FILE_MODE)
        _copy_range(fin, fout, 0, meta.header_offset)
        _copy_range(fin, fout, meta_end, entries_end)
        out = zipfile.ZipFile(fout, 'w', allowZip64=True)
        for info in infos:
            if info.filename == archive.METADATA:
                continue
            moved = copy.copy(info)
            if moved.header_offset > meta.header_offset:
                moved.header_offset -= removed
            moved.extra = _strip_zip64_extra(moved.extra)
            out.filelist.append(moved)
            out.NameToInfo[moved.filename] = moved
        new = zipfile.ZipInfo(archive.METADATA, date_time=meta.date_time)
        new.compress_type = meta.compress_type
        new.external_attr = meta.external_attr
        out.writestr(new, data)
        out.close()
        fout.flush()
        os.fsync(fout.fileno())
    return infos, metadata


def _verify(dest, tmp, infos, metadata):
    try:
        with zipfile.ZipFile(tmp) as zcopy:
            bad = zcopy.testzip()
            if bad is not None:
                raise _failed(dest, 'CRC check failed for {0}'.format(bad))
            copied = {info.filename: info for info in zcopy.infolist()}
            read_back = json.loads(zcopy.read(archive.METADATA).decode('utf-8'))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _failed(dest, exc)
    if sorted(copied) != sorted(info.filename for info in infos):
        raise _failed(dest, 'its members differ from the original\'s')
    for info in infos:
        if info.filename == archive.METADATA:
            continue
        other = copied[info.filename]
        if (other.CRC, other.file_size, other.compress_size) != \
                (info.CRC, info.file_size, info.compress_size):
            raise _failed(dest, '{0} differs from the original'.format(info.filename))
    if read_back != metadata:
        raise _failed(dest, 'its metadata.json is not the one written')


def copy_with_metadata(src: str, dest: str, add: Dict[str, str]) -> dict:
    """Write ``dest`` (and ``dest.sha256``): ``src`` with ``add`` merged into its
    metadata.json; return ``{'path', 'sha256', 'size', 'metadata'}``.  The caller has
    verified ``src`` (its SHA-256); the copy is verified here."""
    directory = os.path.dirname(os.path.abspath(dest))
    for name in os.listdir(directory):
        if name.startswith('.' + os.path.basename(dest) + '.') and name.endswith('.tmp'):
            unlink_quiet(os.path.join(directory, name))     # left by a killed run
    unlink_quiet(dest)
    unlink_quiet(dest + '.sha256')
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(dest) + '.', suffix='.tmp',
                               dir=directory)
    os.close(fd)
    try:
        infos, metadata = _write(src, tmp, add)
        _verify(dest, tmp, infos, metadata)
        digest = sha256_file(tmp)
        atomic_write(dest + '.sha256', '{0}  {1}\n'.format(digest, os.path.basename(dest)))
        os.replace(tmp, dest)
    except BaseException:
        unlink_quiet(tmp)
        raise
    fsync_dir(directory)
    return {'path': dest, 'sha256': digest, 'size': os.path.getsize(dest),
            'metadata': metadata}
