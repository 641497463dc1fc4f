"""The benchmarks' emulated link (benchmarks/link.py): bytes intact, the rate enforced.

The transfer benchmark's link table is only as good as this proxy, so its two promises are
checked here: what goes in comes out unchanged both ways (a download through it keeps its
digest), and a token bucket lets through its rate, not more.
"""
import hashlib
import os
import socket
import threading
import time

import requests

from benchmarks.link import BLOCK, Proxy, TokenBucket
from cloudify_upgrade_plugin.snapshot import transfer
from tests.unit.snapshot.archive_server import body_sha, make_file


class FakeClock(object):
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_enforces_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(1000000, burst=200000, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        bucket.take(100000)             # 5 MB at 1 MB/s, from a full 200 kB bucket
    assert abs(clock.now - 4.8) < 1e-6
    clock.now += 10                     # idle: the bucket refills to its burst only
    start = clock.now
    for _ in range(3):
        bucket.take(100000)
    assert abs(clock.now - start - 0.1) < 1e-6


def test_token_bucket_burst_holds_two_blocks_at_least():
    assert TokenBucket(1000).burst == 2 * BLOCK


def test_download_and_upload_through_the_link_are_intact_and_limited(serve, tmp_path):
    size = 3 * (1 << 20) + 5
    server = serve(size=size)
    proxy = Proxy(server.port, 20).start()      # 20 MiB/s each way
    try:
        base = 'http://127.0.0.1:{0}/api/v3.1/snapshots/s1/archive'.format(proxy.port)
        start = time.perf_counter()
        result = transfer.download(requests.Session(), base, str(tmp_path / 's1.zip'),
                                   backoff=0, timeout=(5, 10))
        took = time.perf_counter() - start
        assert result['sha256'] == body_sha(size)
        assert took >= 0.8 * (size / (20 << 20))
        path = make_file(tmp_path / 'up.zip', size)
        start = time.perf_counter()
        transfer.upload(requests.Session(), base, path)
        took = time.perf_counter() - start
        put = [r for r in server.requests if r['method'] == 'PUT'][0]
        assert put['sha256'] == body_sha(size)
        assert took >= 0.8 * (size / (20 << 20))
    finally:
        proxy.close()


def test_half_close_is_passed_on():
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    got = []

    def echo_until_eof():
        conn, _ = listener.accept()
        data = b''
        while True:
            block = conn.recv(65536)
            if not block:
                break
            data += block
        conn.sendall(hashlib.sha256(data).digest())
        conn.close()
    thread = threading.Thread(target=echo_until_eof, daemon=True)
    thread.start()
    proxy = Proxy(listener.getsockname()[1], 50).start()
    try:
        payload = os.urandom(300000)
        client = socket.create_connection(('127.0.0.1', proxy.port), timeout=10)
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        while True:
            block = client.recv(64)
            if not block:
                break
            got.append(block)
        client.close()
        assert b''.join(got) == hashlib.sha256(payload).digest()
    finally:
        proxy.close()
        listener.close()
        thread.join(5)
