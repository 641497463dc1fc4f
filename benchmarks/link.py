"""An emulated network link for the benchmarks: a rate-limited TCP proxy on 127.0.0.1.

This module owns the link the transfer benchmark (`benchmarks/transfer.py --link RATE`)
puts between its clients and the simulated manager, so that the plugin, curl and the stock
CLI are compared on a link of a realistic rate (e.g. 100 MiB/s, about a fast 1 Gbit/s
LAN; 12 MiB/s, about a 100 Mbit/s VPN) while loopback alone shows their CPU cost.  It is
a helper, not a benchmark (no `main`, so `python -m benchmarks` does not list it).

- `Proxy(target_port, rate)`: listens on 127.0.0.1 (an ephemeral port, `.port`) and pipes
  every accepted connection to 127.0.0.1:`target_port`, one thread per direction.  Each
  direction of the link has its own token bucket (the link is full duplex; connections
  share it): a thread reads at most `BLOCK` bytes, takes that many tokens (sleeping off
  the debt when the bucket is empty), then sends them on.  It only reads what it can
  send, so TCP's own flow control slows the sender, as a real bottleneck does.  The
  bucket holds `BURST` seconds of the rate.  No added latency, loss or reordering.
- `python -m benchmarks.link --target-port PORT --rate MIBPS` runs one in its own process
  (what the benchmark does, so the proxy's CPU is not the benchmark's) and prints
  `{"port": N}` on stdout once listening; SIGTERM stops it.  `LinkProcess` starts and
  stops that process.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

MIB = 1 << 20
BLOCK = 64 * 1024
BURST = 0.02        # seconds of the rate the bucket may hold


class TokenBucket(object):
    """`rate` bytes per second; `take(n)` returns once n more bytes may pass."""

    def __init__(self, rate, burst=None, clock=time.monotonic, sleep=time.sleep):
        self.rate = float(rate)
        self.burst = max(float(burst if burst is not None else self.rate * BURST),
                         2.0 * BLOCK)
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self, n):
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= n               # may go negative: a debt later takers share
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)


class Proxy(object):
    """The link: 127.0.0.1:`port` -> 127.0.0.1:`target_port` at `rate` MiB/s each way."""

    def __init__(self, target_port, rate_mib, target_host='127.0.0.1'):
        self.target = (target_host, target_port)
        self.rate_mib = rate_mib
        self.up = TokenBucket(rate_mib * MIB)       # client -> server (uploads)
        self.down = TokenBucket(rate_mib * MIB)     # server -> client (downloads)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(('127.0.0.1', 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name='link-accept',
                                        daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _accept(self):
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, server)
            for src, dst, bucket in ((client, server, self.up),
                                     (server, client, self.down)):
                threading.Thread(target=_pump, args=(src, dst, bucket, pair),
                                 daemon=True).start()

    def close(self):
        self._closed.set()
        try:
            self._listener.close()
        except OSError:
            pass


class _Pair(object):
    """The two sockets of one proxied connection, closed when both directions ended."""

    def __init__(self, a, b):
        self.sockets = (a, b)
        self._left = 2
        self._lock = threading.Lock()

    def done(self):
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            for sock in self.sockets:
                try:
                    sock.close()
                except OSError:
                    pass


def _pump(src, dst, bucket, pair):
    """Copy src -> dst through the bucket; pass a half-close on, end on errors."""
    try:
        while True:
            data = src.recv(BLOCK)
            if not data:
                dst.shutdown(socket.SHUT_WR)
                return
            bucket.take(len(data))
            dst.sendall(data)
    except OSError:
        for sock in pair.sockets:       # a reset on one side resets the other
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    finally:
        pair.done()


class LinkProcess(object):
    """`python -m benchmarks.link` in its own process; `.port` is where clients connect."""

    def __init__(self, target_port, rate_mib, cwd=None, env=None):
        self.rate_mib = rate_mib
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'benchmarks.link', '--target-port', str(target_port),
             '--rate', repr(float(rate_mib))],
            cwd=cwd or os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            env=env, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise SystemExit('the link emulator did not start')
        self.port = json.loads(line)['port']

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def _serve(argv=None):
    parser = argparse.ArgumentParser(prog='python -m benchmarks.link',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--target-port', type=int, required=True,
                        help='the port on 127.0.0.1 the link leads to')
    parser.add_argument('--rate', type=float, required=True,
                        help='MiB/s in each direction')
    args = parser.parse_args(argv)
    proxy = Proxy(args.target_port, args.rate).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sys.stdout.write(json.dumps({'port': proxy.port}) + '\n')
    sys.stdout.flush()
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    proxy.close()
    return 0


if __name__ == '__main__':   # pragma: no cover
    sys.exit(_serve())
