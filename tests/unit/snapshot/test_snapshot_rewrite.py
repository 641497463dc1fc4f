"""The route copy of a snapshot zip (snapshot/rewrite.py): members copied raw, a new
metadata.json, verified, hashed, renamed into place; the original untouched."""
import hashlib
import io
import json
import os
import struct
import zipfile

import pytest

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.snapshot import rewrite

ADD = {'stage_schema_revision': '', 'composer_schema_revision': ''}
META = {'snapshot_version': '5.1.0', 'schema_revision': '62a8d746d13b'}


def _sha(path):
    with open(path, 'rb') as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def _zip(path, metadata_at=1, stream=False):
    """A legacy-shaped zip; metadata.json at position ``metadata_at``; ``stream``: written
    to an unseekable stream (data descriptors after each member)."""
    members = [('pg_data', os.urandom(50000) + b'x' * 50000, zipfile.ZIP_DEFLATED),
               ('agents.json', json.dumps({'default_tenant': {}}).encode(),
                zipfile.ZIP_DEFLATED),
               ('ssl/cloudify_internal_cert.pem', b'CERT' * 100, zipfile.ZIP_STORED)]
    members.insert(metadata_at, ('metadata.json', json.dumps(META).encode(),
                                 zipfile.ZIP_DEFLATED))
    buffer = io.BytesIO()
    target = _Unseekable(buffer) if stream else buffer
    with zipfile.ZipFile(target, 'w') as archive:
        for name, data, kind in members:
            archive.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), data,
                             compress_type=kind)
    with open(path, 'wb') as out:
        out.write(buffer.getvalue())
    return path


class _Unseekable(io.RawIOBase):
    def __init__(self, buffer):
        self.buffer = buffer

    def writable(self):
        return True

    def write(self, data):
        return self.buffer.write(data)

    def seekable(self):
        return False

    def tell(self):
        raise OSError('not seekable')


def _raw_entries(path):
    """{name: the bytes of its local entry} (header + data + descriptor)."""
    with zipfile.ZipFile(path) as archive:
        infos = sorted(archive.infolist(), key=lambda i: i.header_offset)
        end = archive.start_dir
    with open(path, 'rb') as stream:
        data = stream.read()
    offsets = [i.header_offset for i in infos] + [end]
    return {info.filename: data[offsets[n]:offsets[n + 1]] for n, info in enumerate(infos)}


@pytest.mark.parametrize('metadata_at', [0, 1, 3])
@pytest.mark.parametrize('stream', [False, True])
def test_copy_keeps_every_member_byte_for_byte(tmp_path, metadata_at, stream):
    src = _zip(str(tmp_path / 'snap.zip'), metadata_at, stream)
    before = _sha(src)
    dest = str(tmp_path / 'snap-route.zip')
    result = rewrite.copy_with_metadata(src, dest, ADD)
    assert _sha(src) == before                                   # the original untouched
    assert result['sha256'] == _sha(dest) and result['size'] == os.path.getsize(dest)
    with open(dest + '.sha256') as stream_:
        assert stream_.read() == '{0}  snap-route.zip\n'.format(result['sha256'])
    assert oct(os.stat(dest).st_mode & 0o777) == '0o600'
    with zipfile.ZipFile(dest) as archive:
        assert archive.testzip() is None
        assert json.loads(archive.read('metadata.json')) == dict(META, **ADD)
    original, copied = _raw_entries(src), _raw_entries(dest)
    assert sorted(original) == sorted(copied)
    for name in original:
        if name != 'metadata.json':
            assert copied[name] == original[name], name          # never recompressed
    assert sorted(os.listdir(str(tmp_path))) == ['snap-route.zip', 'snap-route.zip.sha256',
                                                 'snap.zip']


def test_keys_already_present_are_never_changed(tmp_path):
    src = _zip(str(tmp_path / 'snap.zip'))
    result = rewrite.copy_with_metadata(src, str(tmp_path / 'c.zip'),
                                        {'schema_revision': '333998bc1627',
                                         'composer_schema_revision': ''})
    assert result['metadata']['schema_revision'] == META['schema_revision']
    assert result['metadata']['composer_schema_revision'] == ''


def test_a_failed_copy_leaves_no_file_under_the_final_name(tmp_path, monkeypatch):
    src = _zip(str(tmp_path / 'snap.zip'))
    dest = str(tmp_path / 'snap-route.zip')
    # a temporary file left by a killed run is removed; a stale copy is not kept
    stale = tmp_path / '.snap-route.zip.abc.tmp'
    stale.write_bytes(b'half')
    (tmp_path / 'snap-route.zip').write_bytes(b'old')

    def broken(dest_, tmp, infos, metadata):
        raise rewrite._failed(dest_, 'CRC check failed for pg_data')
    monkeypatch.setattr(rewrite, '_verify', broken)
    with pytest.raises(UpgradeError) as info:
        rewrite.copy_with_metadata(src, dest, ADD)
    assert info.value.error_id == 'route-copy-failed'
    assert sorted(os.listdir(str(tmp_path))) == ['snap.zip']


def test_the_verification_catches_a_damaged_copy(tmp_path, monkeypatch):
    src = _zip(str(tmp_path / 'snap.zip'))
    real_write = rewrite._write

    def damaging(src_, tmp, add):
        infos, metadata = real_write(src_, tmp, add)
        with open(tmp, 'r+b') as stream:            # flip a byte of pg_data's data
            stream.seek(100)
            byte = stream.read(1)
            stream.seek(100)
            stream.write(bytes([byte[0] ^ 0xFF]))
        return infos, metadata
    monkeypatch.setattr(rewrite, '_write', damaging)
    with pytest.raises(UpgradeError) as info:
        rewrite.copy_with_metadata(src, str(tmp_path / 'c.zip'), ADD)
    assert info.value.error_id == 'route-copy-failed'
    assert sorted(os.listdir(str(tmp_path))) == ['snap.zip']


def test_a_corrupt_original_is_named(tmp_path):
    src = tmp_path / 'snap.zip'
    src.write_bytes(b'not a zip')
    with pytest.raises(UpgradeError) as info:
        rewrite.copy_with_metadata(str(src), str(tmp_path / 'c.zip'), ADD)
    assert info.value.error_id == 'snapshot-corrupt'


def test_zip64_records_are_dropped_from_the_central_extra():
    zip64 = struct.pack('<HHQ', 1, 8, 5 << 32)
    other = struct.pack('<HH', 0x5455, 5) + b'\x01abcd'
    assert rewrite._strip_zip64_extra(other + zip64) == other
    assert rewrite._strip_zip64_extra(zip64) == b''
