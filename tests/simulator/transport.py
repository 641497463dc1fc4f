"""HTTP plumbing of the simulated manager: a stdlib ThreadingHTTPServer on 127.0.0.1 (plain
HTTP, or HTTPS with a context from tls.py) that can stop listening and listen again on the
same port (reboots, outages), de-chunks request bodies the way nginx does (behaviour §3.4;
observed-7.0 §3.2 'nginx normally de-chunks'), and streams response bodies with
Content-Length or chunked, with byte ranges and mid-body drops.
"""
import http.server
import os
import socket
import threading
import urllib.parse


class Request(object):
    """One parsed request: method, path, query (name -> list), headers, body access."""

    def __init__(self, handler, method):
        self.handler = handler
        self.method = method
        split = urllib.parse.urlsplit(handler.path)
        self.raw_path = split.path
        self.path = urllib.parse.unquote(split.path)
        self.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self.headers = handler.headers
        self.client = handler.client_address
        self._body = None
        self._consumed = False

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[-1] if values else default

    def iter_body(self, chunk_size=65536):
        """Yield the request body (de-chunked), reading it from the socket once."""
        if self._consumed:
            if self._body:
                yield self._body
            return
        self._consumed = True
        rfile = self.handler.rfile
        if 'chunked' in (self.headers.get('Transfer-Encoding') or '').lower():
            while True:
                line = rfile.readline(65537)
                if not line:
                    raise ConnectionError('client closed during chunked body')
                size = int(line.split(b';', 1)[0].strip() or b'0', 16)
                if size == 0:
                    while True:        # trailers up to the empty line
                        trailer = rfile.readline(65537)
                        if trailer in (b'\r\n', b'\n', b''):
                            break
                    return
                remaining = size
                while remaining:
                    data = rfile.read(min(remaining, chunk_size))
                    if not data:
                        raise ConnectionError('client closed during chunk')
                    remaining -= len(data)
                    yield data
                rfile.readline(3)      # CRLF after the chunk
        else:
            remaining = int(self.headers.get('Content-Length') or 0)
            while remaining > 0:
                data = rfile.read(min(remaining, chunk_size))
                if not data:
                    raise ConnectionError('client closed during body')
                remaining -= len(data)
                yield data

    def body(self):
        if not self._consumed:
            self._body = b''.join(self.iter_body())
        return self._body or b''

    def drain(self):
        if not self._consumed:
            for _ in self.iter_body():
                pass


class Response(object):
    """status, headers, and one of: bytes `body`, a file `path` (optionally a byte range),
    an iterable of byte strings `pieces` (sent as they come: endless or trickled answers;
    give `length` for a Content-Length, else it is chunked)."""

    def __init__(self, status, body=b'', headers=None, path=None, content_type=None,
                 chunked=False, drop_after=None, file_range=None, reason=None, pieces=None,
                 length=None):
        self.status = status
        self.body = body
        self.pieces = pieces
        self.length = length
        self.headers = list(headers or [])
        self.path = path
        self.file_range = file_range
        self.chunked = chunked
        self.drop_after = drop_after
        self.reason = reason
        if content_type:
            self.headers.insert(0, ('Content-Type', content_type))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'nginx'
    sys_version = ''
    # nginx's default `tcp_nodelay on`: small answers leave at once instead of waiting
    # for the client's delayed ACK (about 40 ms per request otherwise)
    disable_nagle_algorithm = True

    def log_message(self, *args):       # quiet: tests read manager.requests instead
        pass

    def setup(self):
        super().setup()
        self.server.track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def _dispatch(self, method):
        request = Request(self, method)
        try:
            response = self.server.app.handle(request)
        except ConnectionError:
            self.close_connection = True
            return
        if response is None:          # the app dropped the connection on purpose
            self.close_connection = True
            return
        try:
            request.drain()
        except (ConnectionError, ValueError):
            self.close_connection = True
        try:
            self._write(request, response)
        except OSError:                # the client went away (timeouts, drops)
            self.close_connection = True

    def _write(self, request, response):
        self.send_response(response.status, response.reason)
        names = set()
        for name, value in response.headers:
            names.add(name.lower())
            self.send_header(name, value)
        body, size = response.body, None
        if response.pieces is not None:
            size = response.length
        elif response.path is not None:
            start, end = response.file_range or (0, os.path.getsize(response.path) - 1)
            size = max(0, end - start + 1)
        else:
            size = len(body)
        chunked = response.chunked or (response.pieces is not None and size is None)
        if chunked:
            self.send_header('Transfer-Encoding', 'chunked')
        elif 'content-length' not in names:
            self.send_header('Content-Length', str(size))
        self.end_headers()
        if request.method == 'HEAD':
            return
        limit = response.drop_after
        sent = 0
        try:
            for piece in self._pieces(response):
                if limit is not None and sent + len(piece) > limit:
                    piece = piece[:max(0, limit - sent)]
                    self._send_piece(piece, chunked)
                    self.wfile.flush()
                    self._abort()
                    return
                self._send_piece(piece, chunked)
                sent += len(piece)
                if response.pieces is not None:
                    self.wfile.flush()      # a trickle must reach the client as it goes
            if chunked:
                self.wfile.write(b'0\r\n\r\n')
            self.wfile.flush()
        except (ConnectionError, OSError):
            self.close_connection = True

    def _send_piece(self, piece, chunked):
        if not piece:
            return
        if chunked:
            self.wfile.write(b'%x\r\n' % len(piece) + piece + b'\r\n')
        else:
            self.wfile.write(piece)

    def _abort(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    @staticmethod
    def _pieces(response):
        if response.pieces is not None:
            yield from response.pieces
            return
        if response.path is None:
            if response.body:
                yield response.body
            return
        start, end = response.file_range or (0, os.path.getsize(response.path) - 1)
        remaining = end - start + 1
        with open(response.path, 'rb') as f:
            f.seek(start)
            while remaining > 0:
                data = f.read(min(remaining, 262144))
                if not data:
                    return
                remaining -= len(data)
                yield data

    def do_GET(self):
        self._dispatch('GET')

    def do_HEAD(self):
        self._dispatch('HEAD')

    def do_POST(self):
        self._dispatch('POST')

    def do_PUT(self):
        self._dispatch('PUT')

    def do_PATCH(self):
        self._dispatch('PATCH')

    def do_DELETE(self):
        self._dispatch('DELETE')


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, app, tracker, ssl_context=None):
        self.app = app
        self.track = tracker
        self.ssl_context = ssl_context
        super().__init__(address, _Handler)

    def finish_request(self, request, client_address):
        """With TLS, the handshake runs here, in the connection's own thread (a client
        that rejects the certificate only ends its own connection)."""
        if self.ssl_context is None:
            return super().finish_request(request, client_address)
        request.settimeout(30)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ValueError):
            return None                # handshake refused or the peer went away
        try:
            tls.settimeout(None)
            return super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        import sys
        if isinstance(sys.exc_info()[1], OSError):
            return                     # a peer that closed its socket is not an error
        super().handle_error(request, client_address)


class Listener(object):
    """Owns the listening socket; `pause()` refuses connections (closes the socket and every
    open connection), `resume()` listens again on the same port."""

    def __init__(self, app, host='127.0.0.1', port=0, ssl_context=None):
        self.app = app
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._server = None
        self._thread = None
        self._lock = threading.RLock()
        self._conns = set()
        self._conn_lock = threading.Lock()

    def _track(self, conn, alive):
        with self._conn_lock:
            if alive:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    @property
    def listening(self):
        return self._server is not None

    def start(self):
        with self._lock:
            if self._server is not None:
                return
            self._server = _Server((self.host, self.port), self.app, self._track,
                                   self.ssl_context)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={'poll_interval': 0.05},
                                            name='sim-http-{0}'.format(self.port),
                                            daemon=True)
            self._thread.start()

    def pause(self):
        """Stop listening and cut open connections (connection refused from now on)."""
        with self._lock:
            server, self._server = self._server, None
            if server is None:
                return
            server.shutdown()
            server.server_close()
            with self._conn_lock:
                conns = list(self._conns)
            for conn in conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._thread.join(5)

    def resume(self):
        self.start()

    def stop(self):
        self.pause()
