"""The small local HTTP server of the snapshot transfer tests (test_snapshot_transfer.py,
test_transfer_link.py; the ``serve`` fixture of this directory's conftest.py starts one).

The server generates its body on the fly from a fixed pattern (never holding it whole), and
has switches for Content-Length, Range support, connection drops after K bytes, wrong
Content-Range answers, scripted error statuses and an upload endpoint.  ``body_slice`` /
``body_sha`` give the bytes and the SHA-256 it serves; ``make_file`` writes the same bytes
to a local file for uploads.
"""
import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATTERN = hashlib.sha256(b'seed').digest() * 2047 + b'x'   # 65505 bytes, odd period


def body_slice(start, end):
    """Bytes [start, end) of the served body, generated from PATTERN."""
    out = bytearray()
    pos = start
    n = len(PATTERN)
    while pos < end:
        i = pos % n
        take = min(n - i, end - pos)
        out += PATTERN[i:i + take]
        pos += take
    return bytes(out)


def body_sha(size, block=1 << 20):
    digest = hashlib.sha256()
    for start in range(0, size, block):
        digest.update(body_slice(start, min(size, start + block)))
    return digest.hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.0'

    def log_message(self, *args):
        pass

    def do_GET(self):
        cfg = self.server.cfg
        self.server.requests.append({'method': 'GET', 'path': self.path,
                                     'headers': dict(self.headers.items())})
        if cfg['statuses']:
            status = cfg['statuses'].pop(0)
            body = json.dumps({'error_code': 'x_error', 'message': 'scripted'}).encode()
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if cfg['chunked']:
            self.protocol_version = 'HTTP/1.1'
        size = cfg['size']
        start = 0
        range_header = self.headers.get('Range')
        if range_header and cfg['honour_range']:
            start = int(range_header.split('=')[1].split('-')[0])
            if start >= size:
                self.send_response(416)
                self.send_header('Content-Range', 'bytes */{0}'.format(size))
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            claimed = start + cfg['range_skew']
            self.send_response(206)
            self.send_header('Content-Range', 'bytes {0}-{1}/{2}'.format(
                claimed, size - 1, size))
            if cfg['content_length']:
                self.send_header('Content-Length', str(size - start))
        else:
            self.send_response(200)
            if cfg['content_length']:
                self.send_header('Content-Length', str(size))
        self.send_header('Content-Type', 'application/octet-stream')
        if cfg['chunked']:
            self.send_header('Transfer-Encoding', 'chunked')
            self.send_header('Connection', 'close')
        for key, value in cfg['extra_headers'].items():
            self.send_header(key, value)
        self.end_headers()
        drop_after = cfg['drops'].pop(0) if cfg['drops'] else None
        pos = start
        sent = 0
        while pos < size:
            n = min(1 << 16, size - pos)
            if drop_after is not None and sent + n > drop_after:
                n = drop_after - sent
                if n:
                    self.send_block(body_slice(pos, pos + n))
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.send_block(body_slice(pos, pos + n))
            pos += n
            sent += n
        if cfg['chunked']:
            self.wfile.write(b'0\r\n\r\n')

    def send_block(self, data):
        if self.server.cfg['chunked']:
            self.wfile.write('{0:x}\r\n'.format(len(data)).encode() + data + b'\r\n')
        else:
            self.wfile.write(data)

    def do_PUT(self):
        cfg = self.server.cfg
        length = self.headers.get('Content-Length')
        digest = hashlib.sha256()
        received = 0
        if length is not None:
            remaining = int(length)
            while remaining:
                block = self.rfile.read(min(remaining, 1 << 16))
                if not block:
                    break
                digest.update(block)
                received += len(block)
                remaining -= len(block)
        self.server.requests.append({
            'method': 'PUT', 'path': self.path, 'headers': dict(self.headers.items()),
            'sha256': digest.hexdigest(), 'size': received})
        status = cfg['put_status']
        if status == 201 and self.headers.get('Transfer-Encoding'):
            status = 400    # like gunicorn without nginx in front
        body = json.dumps({'id': 'up1', 'status': 'uploaded'} if status == 201 else
                          {'error_code': 'conflict_error', 'message': 'already exists'})
        body = body.encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client closing early (a refused size, an X-Accel answer) breaks the pipe.
        pass


class Server(object):
    def __init__(self, **cfg):
        self.cfg = {'size': 300000, 'content_length': True, 'honour_range': True,
                    'drops': [], 'range_skew': 0, 'statuses': [], 'extra_headers': {},
                    'put_status': 201, 'chunked': False}
        self.cfg.update(cfg)
        self.httpd = QuietServer(('127.0.0.1', 0), Handler)
        self.httpd.cfg = self.cfg
        self.httpd.requests = []
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.httpd.server_address[1]

    @property
    def url(self):
        return 'http://127.0.0.1:{0}/api/v3.1/snapshots/s1/archive'.format(self.port)

    @property
    def requests(self):
        return self.httpd.requests

    def gets(self):
        return [r for r in self.requests if r['method'] == 'GET']

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def make_file(path, size):
    with open(path, 'wb') as f:
        for start in range(0, size, 1 << 20):
            f.write(body_slice(start, min(size, start + (1 << 20))))
    return str(path)
