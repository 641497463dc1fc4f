"""ManagerSession (issue 17 items 3 and 4): bounded answers, an overall deadline, and
credentials that never leave their origin; against a real local HTTP server."""
import http.server
import threading
import time

import pytest
import requests

from cloudify_upgrade_plugin.errors import InputError
from cloudify_upgrade_plugin.manager import session as session_module
from cloudify_upgrade_plugin.manager.retry import translate
from cloudify_upgrade_plugin.manager.session import (
    AnswerTooLarge, AnswerTooSlow, ManagerSession, same_origin)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.seen.append(dict(self.headers.items()))
        if self.path == '/big':
            body = b'[' + b'1,' * 600000 + b'1]'
            self._send(body)
        elif self.path == '/endless':
            self.send_response(200)
            self.send_header('Transfer-Encoding', 'chunked')
            self.end_headers()
            try:
                for _ in range(2000):
                    piece = b'"' + b'x' * 8000 + b'",'
                    self.wfile.write(b'%x\r\n' % len(piece) + piece + b'\r\n')
            except OSError:
                return
        elif self.path == '/trickle':
            body = b'{"items": []}' + b' ' * 200
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            try:
                for index in range(len(body)):
                    self.wfile.write(body[index:index + 1])
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                return
        elif self.path == '/away':
            self.send_response(302)
            self.send_header('Location', self.server.other + '/landed')
            self.send_header('Content-Length', '0')
            self.end_headers()
        else:
            self._send(b'{"ok": true}')

    def _send(self, body):
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    servers = []
    for _ in range(2):
        httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        httpd.daemon_threads = True
        httpd.seen = []
        httpd.url = 'http://127.0.0.1:{0}'.format(httpd.server_address[1])
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
    servers[0].other = servers[1].url
    yield servers[0], servers[1]
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_an_answer_larger_than_announced_limit_is_refused_unread(server):
    main, _ = server
    with pytest.raises(AnswerTooLarge) as info:
        ManagerSession(max_answer=100000, deadline=30).get(main.url + '/big')
    assert 'announces' in str(info.value)
    error = translate(info.value, 'manager X', 'listing things')
    assert error.error_id == 'manager-answer-too-large' and 'manager X' in error.message
    assert any(session_module.MAX_ANSWER_SETTING in hint for hint in error.hints)


def test_an_endless_answer_is_cut_at_the_limit(server):
    main, _ = server
    with pytest.raises(AnswerTooLarge) as info:
        ManagerSession(max_answer=1 << 20, deadline=30).get(main.url + '/endless')
    assert 'went past' in str(info.value)


def test_a_trickled_answer_ends_at_the_deadline(server):
    main, _ = server
    began = time.monotonic()
    with pytest.raises(AnswerTooSlow) as info:
        ManagerSession(deadline=0.5).get(main.url + '/trickle', timeout=(5, 300))
    assert time.monotonic() - began < 8
    error = translate(info.value, 'manager X', 'listing things')
    assert error.error_id == 'manager-too-slow'
    assert not error.details['transient']


def test_small_answers_and_streams_are_untouched(server):
    main, _ = server
    bounded = ManagerSession(max_answer=1000, deadline=0.5)
    assert bounded.get(main.url + '/small').json() == {'ok': True}
    streamed = bounded.get(main.url + '/big', stream=True)   # a download: its own rules
    assert len(streamed.content) > 1000


def test_origin_bound_headers_never_follow_a_redirect_elsewhere(server):
    main, other = server
    headers = {'Authentication-Token': 'ctok-abc-def', 'Tenant': 't1',
               'Authorization': 'Basic eDp5', 'X-Keep': '1'}
    answer = ManagerSession().get(main.url + '/away', headers=headers)
    assert answer.json() == {'ok': True}
    landed = {k.lower() for k in other.seen[-1]}
    assert 'x-keep' in landed
    assert not landed & {'authentication-token', 'tenant', 'authorization'}
    plain = requests.Session().get(main.url + '/away', headers=headers)
    assert plain.status_code == 200
    assert 'Authentication-Token' in other.seen[-1]   # what requests alone does


@pytest.mark.parametrize('first, second, same', [
    ('http://a:80/x', 'http://a/y', True), ('http://a/x', 'https://a/x', False),
    ('https://a/x', 'https://a:8443/x', False), ('http://A/x', 'http://a/x', True),
    ('http://a/x', 'http://b/x', False)])
def test_same_origin(first, second, same):
    assert same_origin(first, second) is same


def test_settings_are_read_and_checked(monkeypatch):
    monkeypatch.setenv(session_module.MAX_ANSWER_SETTING, '2')
    monkeypatch.setenv(session_module.DEADLINE_SETTING, '7.5')
    bounded = ManagerSession()
    assert (bounded.max_answer, bounded.deadline) == (2 << 20, 7.5)
    monkeypatch.setenv(session_module.DEADLINE_SETTING, 'soon')
    with pytest.raises(InputError) as info:
        ManagerSession()
    assert info.value.error_id == 'bad-setting'
