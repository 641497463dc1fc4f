"""A second HTTP server on 127.0.0.1 that records what it is sent (issue 17 item 4): the
other origin a simulated manager redirects to (``faults.redirect``).  Every request's
method, path and headers go to ``requests``; it answers 200 with ``answer`` (JSON).
"""
import http.server
import json
import threading


class RecordingServer(object):
    """``with RecordingServer() as other:`` ... ``other.url``, ``other.requests``."""

    def __init__(self, answer=None):
        self.answer = answer if answer is not None else {}
        self.requests = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def _record(self):
                length = int(self.headers.get('Content-Length') or 0)
                if length:
                    self.rfile.read(length)
                recorder.requests.append({'method': self.command, 'path': self.path,
                                          'headers': dict(self.headers.items())})
                body = json.dumps(recorder.answer).encode('utf-8')
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _record

        self._server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = 'http://127.0.0.1:{0}'.format(self.port)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={'poll_interval': 0.05}, daemon=True)
        self._thread.start()

    def headers_seen(self):
        """Every header name received (lower case), over every request."""
        return {name.lower() for request in self.requests for name in request['headers']}

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
