"""Snapshot download/upload against a small local HTTP server started by each test.

The server (archive_server.py, started by the ``serve`` fixture of this directory's
conftest.py) generates its body on the fly from a fixed pattern (never holding it whole), and
has switches for Content-Length, Range support, connection drops after K bytes, wrong
Content-Range answers, scripted error statuses and an upload endpoint.
"""
import errno
import hashlib
import io
import os
import socket
import stat
import threading
import tracemalloc

import pytest
import requests

from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.snapshot import localfile, progress, transfer
from tests.unit.snapshot.archive_server import body_sha, body_slice, make_file


def fetch(server, dest, **kwargs):
    kwargs.setdefault('backoff', 0)
    kwargs.setdefault('timeout', (5, 10))
    return transfer.download(requests.Session(), server.url, str(dest), **kwargs)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def assert_complete(dest, result, size):
    expected = body_sha(size)
    assert result['sha256'] == expected
    assert result['size'] == size
    assert transfer.sha256_file(str(dest)) == expected
    with open(str(dest) + '.sha256') as f:
        assert f.read() == '{0}  {1}\n'.format(expected, os.path.basename(str(dest)))
    assert mode_of(dest) == 0o600
    assert mode_of(str(dest) + '.sha256') == 0o600
    assert not os.path.exists(str(dest) + '.part')


# ------------------------------------------------------------------------ downloads


def test_download_with_content_length(serve, tmp_path):
    server = serve()
    dest = tmp_path / 'snap' / 's1.zip'
    seen = []
    result = fetch(server, dest, progress=lambda done, total: seen.append((done, total)))
    assert_complete(dest, result, 300000)
    assert result['resumes'] == 0
    assert seen[-1] == (300000, 300000)
    assert 'Range' not in server.gets()[0]['headers']
    assert server.gets()[0]['headers'].get('Accept-Encoding') == 'identity'


def test_download_without_content_length(serve, tmp_path):
    server = serve(content_length=False)
    dest = tmp_path / 's1.zip'
    seen = []
    result = fetch(server, dest, progress=lambda done, total: seen.append((done, total)))
    assert_complete(dest, result, 300000)
    assert seen[-1] == (300000, None)


def test_drop_is_resumed_with_range(serve, tmp_path):
    server = serve(drops=[100000])
    dest = tmp_path / 's1.zip'
    result = fetch(server, dest)
    assert_complete(dest, result, 300000)
    assert result['resumes'] == 1
    gets = server.gets()
    assert len(gets) == 2
    assert gets[1]['headers']['Range'] == 'bytes=100000-'


def test_several_drops_are_resumed(serve, tmp_path):
    server = serve(drops=[50000, 70001, 1, 0])
    dest = tmp_path / 's1.zip'
    result = fetch(server, dest, max_resumes=5)
    assert_complete(dest, result, 300000)
    assert result['resumes'] == 4
    ranges = [g['headers'].get('Range') for g in server.gets()]
    assert ranges == [None, 'bytes=50000-', 'bytes=120001-', 'bytes=120002-',
                      'bytes=120002-']


def test_chunked_body_drop_is_resumed(serve, tmp_path):
    server = serve(content_length=False, chunked=True, drops=[100000])
    dest = tmp_path / 's1.zip'
    result = fetch(server, dest)
    assert_complete(dest, result, 300000)
    assert result['resumes'] == 1
    assert server.gets()[1]['headers']['Range'] == 'bytes=100000-'


def test_ignored_range_restarts_from_zero(serve, tmp_path):
    server = serve(honour_range=False, drops=[123456])
    dest = tmp_path / 's1.zip'
    result = fetch(server, dest)
    assert_complete(dest, result, 300000)
    assert server.gets()[1]['headers']['Range'] == 'bytes=123456-'


def test_wrong_content_range_restarts_without_range(serve, tmp_path):
    server = serve(drops=[100000], range_skew=5)
    dest = tmp_path / 's1.zip'
    result = fetch(server, dest)
    assert_complete(dest, result, 300000)
    ranges = [g['headers'].get('Range') for g in server.gets()]
    assert ranges == [None, 'bytes=100000-', None]


def test_drop_without_content_length_needs_expected_size(serve, tmp_path):
    server = serve(content_length=False, drops=[100000])
    dest = tmp_path / 's1.zip'
    result = fetch(server, dest, expected_size=300000)
    assert_complete(dest, result, 300000)
    assert server.gets()[1]['headers']['Range'] == 'bytes=100000-'


def test_drop_without_any_size_is_accepted_unverified(serve, tmp_path):
    # Documented limitation: with no Content-Length and no expected size, a close-delimited
    # body that stops early cannot be told from a complete one.
    server = serve(content_length=False, honour_range=False, drops=[100000])
    dest = tmp_path / 's1.zip'
    result = fetch(server, dest)
    assert result['size'] == 100000
    assert result['sha256'] == hashlib.sha256(body_slice(0, 100000)).hexdigest()


def test_give_up_leaves_no_final_file_and_a_later_call_resumes(serve, tmp_path):
    server = serve(drops=[40000, 40000, 40000])
    dest = tmp_path / 's1.zip'
    with pytest.raises(UpgradeError) as info:
        fetch(server, dest, max_resumes=2)
    assert info.value.error_id == 'download-failed'
    assert info.value.hints
    assert not dest.exists()
    assert not os.path.exists(str(dest) + '.sha256')
    part = str(dest) + '.part'
    assert os.path.getsize(part) == 120000
    assert mode_of(part) == 0o600
    assert len(server.gets()) == 3

    result = fetch(server, dest)
    assert_complete(dest, result, 300000)
    assert server.gets()[-1]['headers']['Range'] == 'bytes=120000-'


def test_existing_part_is_discarded_when_range_is_ignored(serve, tmp_path):
    dest = tmp_path / 's1.zip'
    (tmp_path / 's1.zip.part').write_bytes(b'garbage that is not the body')
    server = serve(honour_range=False)
    result = fetch(server, dest)
    assert_complete(dest, result, 300000)


def test_complete_part_is_finished_on_416(serve, tmp_path):
    dest = tmp_path / 's1.zip'
    (tmp_path / 's1.zip.part').write_bytes(body_slice(0, 300000))
    server = serve()
    result = fetch(server, dest)
    assert_complete(dest, result, 300000)
    assert server.gets()[0]['headers']['Range'] == 'bytes=300000-'


def test_part_bigger_than_expected_is_discarded(serve, tmp_path):
    dest = tmp_path / 's1.zip'
    (tmp_path / 's1.zip.part').write_bytes(b'z' * 400000)
    server = serve()
    result = fetch(server, dest, expected_size=300000)
    assert_complete(dest, result, 300000)
    assert 'Range' not in server.gets()[0]['headers']


def test_resume_partial_false_starts_over(serve, tmp_path):
    dest = tmp_path / 's1.zip'
    (tmp_path / 's1.zip.part').write_bytes(b'zzz')
    server = serve()
    result = fetch(server, dest, resume_partial=False)
    assert_complete(dest, result, 300000)
    assert 'Range' not in server.gets()[0]['headers']


def test_refusal_is_not_retried(serve, tmp_path):
    server = serve(statuses=[404])
    dest = tmp_path / 's1.zip'
    with pytest.raises(UpgradeError) as info:
        fetch(server, dest)
    assert info.value.error_id == 'download-failed'
    assert 'HTTP 404' in info.value.message
    assert 'scripted' in info.value.message
    assert len(server.gets()) == 1
    assert not dest.exists()


def test_5xx_is_retried(serve, tmp_path):
    server = serve(statuses=[503, 502])
    dest = tmp_path / 's1.zip'
    slept = []
    result = fetch(server, dest, backoff=0.5, sleep=slept.append)
    assert_complete(dest, result, 300000)
    assert slept == [0.5, 1.0]
    assert len(server.gets()) == 3


def test_announced_size_must_match_expected(serve, tmp_path):
    server = serve()
    dest = tmp_path / 's1.zip'
    with pytest.raises(UpgradeError) as info:
        fetch(server, dest, expected_size=299999)
    assert info.value.error_id == 'download-failed'
    assert not dest.exists()


def test_rest_service_without_nginx_is_explained(serve, tmp_path):
    server = serve(size=0, extra_headers={'X-Accel-Redirect': '/resources-local/s/s1.zip'})
    with pytest.raises(UpgradeError) as info:
        fetch(server, tmp_path / 's1.zip')
    assert 'X-Accel-Redirect' in info.value.message


def test_old_pair_is_replaced_consistently(serve, tmp_path):
    dest = tmp_path / 's1.zip'
    dest.write_bytes(b'old archive')
    (tmp_path / 's1.zip.sha256').write_text('0' * 64 + '  s1.zip\n')
    result = fetch(serve(), dest)
    assert_complete(dest, result, 300000)
    assert transfer.verify_file(str(dest)) == result['sha256']


def _disk_full_after(mocker, writes):
    """os.write of the transfer module succeeds ``writes`` times, then fails with ENOSPC;
    returns the list of the sizes it was asked to write."""
    real_write = os.write
    calls = []

    def write(fd, data):
        calls.append(len(data))
        if len(calls) > writes:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_write(fd, data)
    mocker.patch.object(transfer.os, 'write', side_effect=write)
    return calls


def test_disk_full_is_reported_and_part_kept_for_resume(serve, tmp_path, mocker):
    server = serve()
    dest = tmp_path / 's1.zip'
    _disk_full_after(mocker, 2)
    with pytest.raises(UpgradeError) as info:
        fetch(server, dest, chunk_size=65536)
    mocker.stopall()
    err = info.value
    assert err.error_id == 'local-disk-full'
    assert str(tmp_path) in err.message
    assert err.details['directory'] == str(tmp_path)
    assert err.details['needed'] == 300000 - os.path.getsize(str(dest) + '.part')
    assert not dest.exists()
    assert os.path.getsize(str(dest) + '.part') > 0

    result = fetch(server, dest)
    assert_complete(dest, result, 300000)
    assert server.gets()[-1]['headers']['Range'].startswith('bytes=')


def test_download_through_a_cloudify_client(serve, tmp_path):
    from cloudify_rest_client import CloudifyClient
    from cloudify_upgrade_plugin import versions
    from cloudify_upgrade_plugin.manager.client import Manager
    from cloudify_upgrade_plugin.manager.connection import Connection
    from cloudify_upgrade_plugin.manager.discovery import ManagerInfo
    server = serve()
    client = CloudifyClient(host='127.0.0.1', port=server.port, protocol='http',
                            username='admin', password='s3cret', tenant='t1')
    info = ManagerInfo(version=versions.Version.parse('7.0.4'), edition='premium',
                       api_prefix='/api/v3.1', api_version='v3.1', protocol='http',
                       port=server.port, host='127.0.0.1')
    manager = Manager(info, username='admin', password='s3cret', tenant='t1')
    for name, source in (('client', Connection.of_client(client)),
                         ('manager', manager.connection())):
        dest = tmp_path / '{0}.zip'.format(name)
        result = transfer.download_snapshot(source, 'snap-1', str(dest), backoff=0)
        assert_complete(dest, result, 300000)
        sent = server.gets()[-1]
        assert sent['path'] == '/api/v3.1/snapshots/snap-1/archive'
        assert sent['headers']['Tenant'] == 't1'
        assert sent['headers']['Authorization'].startswith('Basic ')


def test_download_streams_with_constant_memory(serve, tmp_path):
    size = 64 * 1024 * 1024
    server = serve(size=size)
    dest = tmp_path / 'big.zip'
    tracemalloc.start()
    try:
        result = fetch(server, dest)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result['size'] == size
    assert result['sha256'] == body_sha(size)
    assert peak < 20 * 1024 * 1024


# ------------------------------------------------------------------------ uploads


def test_relative_url_needs_a_client(tmp_path):
    path = make_file(tmp_path / 'up.zip', 10)
    with pytest.raises(ValueError):
        transfer.upload_snapshot(requests.Session(), 'up1', path)
    with pytest.raises(ValueError):
        transfer.download_snapshot(requests.Session(), 'up1', str(tmp_path / 'd.zip'))


def test_upload_headers_body_and_progress(serve, tmp_path):
    server = serve()
    path = make_file(tmp_path / 'up.zip', 300000)
    url = 'http://127.0.0.1:{0}/api/v3.1/snapshots/up1/archive'.format(server.port)
    seen = []
    answer = transfer.upload(requests.Session(), url, path, headers={'Tenant': 't1'},
                             chunk_size=65536,
                             progress=lambda done, total: seen.append((done, total)))
    assert answer == {'id': 'up1', 'status': 'uploaded'}
    put = [r for r in server.requests if r['method'] == 'PUT'][0]
    assert put['headers']['Content-Length'] == '300000'
    assert 'Transfer-Encoding' not in put['headers']
    assert put['headers']['Content-Type'] == 'application/octet-stream'
    assert put['headers']['Tenant'] == 't1'
    assert put['sha256'] == body_sha(300000)
    assert seen[-1] == (300000, 300000)
    assert all(total == 300000 for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_upload_through_client_overrides_json_content_type(serve, tmp_path):
    from cloudify_rest_client import CloudifyClient
    from cloudify_upgrade_plugin.manager.connection import Connection
    server = serve()
    client = CloudifyClient(host='127.0.0.1', port=server.port, protocol='http',
                            username='admin', password='pw', tenant='default_tenant')
    path = make_file(tmp_path / 'up.zip', 1000)
    transfer.upload_snapshot(Connection.of_client(client), 'up1', path)
    put = [r for r in server.requests if r['method'] == 'PUT'][0]
    assert put['path'] == '/api/v3.1/snapshots/up1/archive'
    content_types = [v for k, v in put['headers'].items() if k.lower() == 'content-type']
    assert content_types == ['application/octet-stream']
    assert put['size'] == 1000


def test_upload_conflict_has_its_own_id(serve, tmp_path):
    server = serve(put_status=409)
    path = make_file(tmp_path / 'up.zip', 1000)
    url = 'http://127.0.0.1:{0}/api/v3.1/snapshots/up1/archive'.format(server.port)
    with pytest.raises(UpgradeError) as info:
        transfer.upload(requests.Session(), url, path)
    assert info.value.error_id == 'snapshot-already-exists'


def test_upload_connection_refused(tmp_path):
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    path = make_file(tmp_path / 'up.zip', 10)
    with pytest.raises(UpgradeError) as info:
        transfer.upload(requests.Session(), 'http://127.0.0.1:{0}/x'.format(port), path,
                        timeout=(2, 2))
    assert info.value.error_id == 'upload-failed'


def test_upload_streams_with_constant_memory(serve, tmp_path):
    size = 64 * 1024 * 1024
    server = serve()
    path = make_file(tmp_path / 'big.zip', size)
    url = 'http://127.0.0.1:{0}/api/v3.1/snapshots/up1/archive'.format(server.port)
    tracemalloc.start()
    try:
        transfer.upload(requests.Session(), url, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    put = [r for r in server.requests if r['method'] == 'PUT'][0]
    assert put['size'] == size
    assert put['sha256'] == body_sha(size)
    assert peak < 20 * 1024 * 1024


# ------------------------------------------------------------------------ helpers


def test_verify_file_detects_tampering(tmp_path):
    path = make_file(tmp_path / 'a.zip', 5000)
    digest = transfer.sha256_file(path)
    assert digest == body_sha(5000)
    with open(path + '.sha256', 'w') as f:
        f.write('{0}  a.zip\n'.format(digest))
    assert transfer.verify_file(path) == digest
    with open(path, 'r+b') as f:
        f.seek(10)
        f.write(b'\0')
    with pytest.raises(UpgradeError) as info:
        transfer.verify_file(path)
    assert info.value.error_id == 'snapshot-hash-mismatch'
    os.unlink(path + '.sha256')
    with pytest.raises(UpgradeError) as info:
        transfer.verify_file(path)
    assert info.value.error_id == 'snapshot-hash-missing'


def test_progress_reporter_on_a_tty_draws_cfys_bar(tmp_path, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    report = transfer.progress_reporter(str(tmp_path / 'snap.zip'), 'Downloading',
                                        stream=Terminal())
    report(50, 100)
    report(100, 100)
    out = capsys.readouterr().out
    assert 'Downloading' in out and 'snap.zip' in out and '100.0%' in out


@pytest.mark.parametrize('size, text', [
    (0, '0 B'), (1536, '1.5 KiB'), (5 * 1024 ** 3, '5.0 GiB'),
    (None, 'an unknown number of bytes')])
def test_human_sizes(size, text):
    assert progress.human_size(size) == text


def test_progress_reporter_rate_limits_log_lines(tmp_path, caplog):
    now = [0.0]

    class NotATty(object):
        def isatty(self):
            return False
    import logging
    logger = logging.getLogger('test.transfer.progress')
    progress = transfer.progress_reporter(str(tmp_path / 'x.zip'), 'Downloading',
                                          stream=NotATty(), interval=5.0,
                                          clock=lambda: now[0], logger=logger)
    with caplog.at_level(logging.INFO, logger='test.transfer.progress'):
        progress(0, 100)
        now[0] = 1.0
        progress(10, 100)
        now[0] = 6.0
        progress(50, 100)
        now[0] = 6.5
        progress(100, 100)
        progress(5, None)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert messages[1].endswith('(50%)')
    assert messages[2].endswith('(100%)')


# ------------------------------------------------------------------------ hash worker


def hash_threads():
    """The download's worker threads still alive (none once download() returned)."""
    return [t for t in threading.enumerate()
            if t.name in ('snapshot-sha256', 'snapshot-flush')]


class RecordingSha256(object):
    """hashlib.sha256 stand-in: the real digest, plus which thread fed it and how much."""

    real = staticmethod(hashlib.sha256)

    def __init__(self, log, delay=0.0, fail_after=None):
        self._digest = self.real()
        self._log = log
        self._delay = delay
        self._fail_after = fail_after

    def update(self, data):
        if self._fail_after is not None and len(self._log) >= self._fail_after:
            raise RuntimeError('hash worker failed')
        if self._delay:
            import time
            time.sleep(self._delay)
        self._log.append((threading.current_thread().name, len(data)))
        self._digest.update(data)

    def hexdigest(self):
        return self._digest.hexdigest()


def test_download_hashes_in_a_worker_thread_and_joins_it(serve, tmp_path, mocker):
    log = []
    mocker.patch.object(localfile.hashlib, 'sha256', side_effect=lambda: RecordingSha256(log))
    server = serve(size=3 * 65536 + 17, drops=[100000])
    dest = tmp_path / 's1.zip'
    result = fetch(server, dest, chunk_size=65536)
    mocker.stopall()
    assert_complete(dest, result, 3 * 65536 + 17)
    assert result['resumes'] == 1
    assert {name for name, _ in log} == {'snapshot-sha256'}
    assert sum(n for _, n in log) == 3 * 65536 + 17
    assert hash_threads() == []


def test_hash_queue_is_bounded(serve, tmp_path, mocker):
    """A slow hash holds the reads back: at most HASH_QUEUE_DEPTH blocks wait for it."""
    size = 40 * 4096
    log = []
    mocker.patch.object(localfile, 'HASH_QUEUE_DEPTH', 2)
    mocker.patch.object(localfile.hashlib, 'sha256',
                        side_effect=lambda: RecordingSha256(log, delay=0.01))
    real_write = os.write
    written = [0]
    ahead = []      # bytes written to the .part but not hashed yet, after every write

    def write(fd, data):
        n = real_write(fd, data)
        written[0] += n
        ahead.append(written[0] - sum(size for _, size in log))
        return n
    mocker.patch.object(transfer.os, 'write', side_effect=write)
    result = fetch(serve(size=size), tmp_path / 's1.zip', chunk_size=4096)
    mocker.stopall()
    assert result['sha256'] == body_sha(size)
    # queued (2) + the one being hashed + the one just written
    assert max(ahead) <= 4 * 4096
    assert hash_threads() == []


def test_hash_worker_error_is_raised_in_the_caller(serve, tmp_path, mocker):
    log = []
    mocker.patch.object(localfile.hashlib, 'sha256',
                        side_effect=lambda: RecordingSha256(log, fail_after=2))
    dest = tmp_path / 's1.zip'
    with pytest.raises(RuntimeError, match='hash worker failed'):
        fetch(serve(), dest, chunk_size=65536)
    mocker.stopall()
    assert hash_threads() == []
    assert not dest.exists()
    assert not os.path.exists(str(dest) + '.sha256')


def test_disk_full_with_the_worker_running_is_mapped_and_joined(serve, tmp_path, mocker):
    """ENOSPC while the worker hashes: today's local-disk-full error, digest still right."""
    size = 1 << 20
    server = serve(size=size)
    dest = tmp_path / 's1.zip'
    log = []
    mocker.patch.object(localfile.hashlib, 'sha256',
                        side_effect=lambda: RecordingSha256(log, delay=0.005))
    _disk_full_after(mocker, 5)
    with pytest.raises(UpgradeError) as info:
        fetch(server, dest, chunk_size=8192)
    mocker.stopall()
    assert info.value.error_id == 'local-disk-full'
    part = str(dest) + '.part'
    assert info.value.details['needed'] == size - os.path.getsize(part)
    assert hash_threads() == []
    assert not dest.exists()
    result = fetch(server, dest)
    assert_complete(dest, result, size)


def test_interrupt_during_download_leaves_no_worker(serve, tmp_path):
    dest = tmp_path / 's1.zip'
    seen = []

    def progress(done, total):
        seen.append(done)
        if done >= 131072:
            raise KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        fetch(serve(), dest, chunk_size=65536, progress=progress)
    assert hash_threads() == []
    assert not dest.exists()
    result = fetch(serve(), dest)
    assert_complete(dest, result, 300000)


def test_too_much_data_in_the_stream_leaves_no_worker(serve, tmp_path):
    dest = tmp_path / 's1.zip'
    with pytest.raises(UpgradeError) as info:
        fetch(serve(content_length=False), dest, expected_size=1000)
    assert info.value.error_id == 'download-failed'
    assert 'more than' in info.value.message
    assert hash_threads() == []
    assert not dest.exists()


def test_download_flushes_in_the_background(serve, tmp_path, mocker):
    flushes = []
    real = os.fdatasync
    mocker.patch.object(localfile, 'FLUSH_EVERY', 65536)

    def fdatasync(fd):
        flushes.append(threading.current_thread().name)
        return real(fd)
    mocker.patch.object(transfer.os, 'fdatasync', side_effect=fdatasync)
    fsyncs = mocker.spy(transfer.os, 'fsync')
    dest = tmp_path / 's1.zip'
    result = fetch(serve(size=1 << 20), dest, chunk_size=65536)
    mocker.stopall()
    assert_complete(dest, result, 1 << 20)
    assert flushes and set(flushes) == {'snapshot-flush'}
    assert fsyncs.call_count >= 1          # the durability fsync before the rename stays
    assert hash_threads() == []


@pytest.mark.parametrize('code,error_id', [(errno.EIO, 'local-write-failed'),
                                           (errno.ENOSPC, 'local-disk-full')])
def test_background_flush_error_is_a_local_write_error(serve, tmp_path, mocker, code,
                                                       error_id):
    """The kernel reports a writeback error once: to the flush, so the flush raises it."""
    mocker.patch.object(localfile, 'FLUSH_EVERY', 65536)
    mocker.patch.object(transfer.os, 'fdatasync',
                        side_effect=OSError(code, os.strerror(code)))
    server = serve(size=1 << 20, drops=[300000])
    dest = tmp_path / 's1.zip'
    with pytest.raises(UpgradeError) as info:
        fetch(server, dest, chunk_size=65536)
    mocker.stopall()
    assert info.value.error_id == error_id
    assert len(server.gets()) == 1          # a local failure is not retried
    assert hash_threads() == []
    assert not dest.exists()
    assert not os.path.exists(str(dest) + '.sha256')
    result = fetch(server, dest)
    assert_complete(dest, result, 1 << 20)


# ------------------------------------------------------------------------ upload blocks


def test_upload_sends_the_body_in_chunk_size_blocks(serve, tmp_path, mocker):
    """One sendall per 1 MiB block (urllib3 would send a file object 16 KiB at a time)."""
    size = 3 * (1 << 20) + 12345
    server = serve()
    path = make_file(tmp_path / 'up.zip', size)
    url = 'http://127.0.0.1:{0}/api/v3.1/snapshots/up1/archive'.format(server.port)
    sent = []
    real_sendall = socket.socket.sendall

    def sendall(sock, data, *args):
        sent.append(len(data))
        return real_sendall(sock, data, *args)
    mocker.patch.object(socket.socket, 'sendall', sendall)
    seen = []
    transfer.upload(requests.Session(), url, path,
                    progress=lambda done, total: seen.append(done))
    mocker.stopall()
    body = [n for n in sent if n > 4096]
    assert body == [1 << 20] * 3 + [12345]
    put = [r for r in server.requests if r['method'] == 'PUT'][0]
    assert put['headers']['Content-Length'] == str(size)
    assert 'Transfer-Encoding' not in put['headers']
    assert put['sha256'] == body_sha(size)
    assert seen == [1 << 20, 2 << 20, 3 << 20, size]


def test_upload_of_an_empty_file(serve, tmp_path):
    server = serve()
    path = make_file(tmp_path / 'empty.zip', 0)
    url = 'http://127.0.0.1:{0}/api/v3.1/snapshots/up1/archive'.format(server.port)
    transfer.upload(requests.Session(), url, path)
    put = [r for r in server.requests if r['method'] == 'PUT'][0]
    assert put['headers']['Content-Length'] == '0'
    assert put['size'] == 0
