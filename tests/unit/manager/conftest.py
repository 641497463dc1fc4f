"""Fakes for the manager layer's unit tests: a requests.Session stand-in and a fake clock.

The fake session is the transport seam: ``CloudifyClient(session=...)`` and the discovery
probes both call ``session.get/put/post(url, ...)``; every call is recorded.
"""
import json
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.manager.client import Manager
from cloudify_upgrade_plugin.manager.discovery import ManagerInfo
from cloudify_upgrade_plugin.manager.retry import RetryPolicy


class FakeResponse(object):
    def __init__(self, status=200, body=None, content_type='application/json', text=None,
                 headers=None):
        self.status_code = status
        self.reason = 'fake'
        self.history = []
        self.request = SimpleNamespace(headers={})
        self.headers = CaseInsensitiveDict(headers or {})
        if content_type:
            self.headers.setdefault('Content-Type', content_type)
        self.text = text if text is not None else json.dumps(body)
        self.content = self.text.encode('utf-8')

    def json(self):
        try:
            return json.loads(self.text)
        except ValueError as exc:   # what requests raises (a RequestException and ValueError)
            raise requests.exceptions.JSONDecodeError(str(exc), self.text, 0)


def html(status=404):
    return FakeResponse(status, content_type='text/html',
                        text='<html><body>Cloudify Console</body></html>')


def error(status, code, message='boom'):
    return FakeResponse(status, {'message': message, 'error_code': code,
                                 'server_traceback': None})


class Call(object):
    def __init__(self, method, url, params, headers, data, verify):
        parts = urlsplit(url)
        self.method = method.upper()
        self.url = url
        self.scheme = parts.scheme
        self.port = parts.port
        self.path = parts.path
        query = {k: v for k, v in parse_qs(parts.query).items()}
        for key, value in (params or {}).items():
            query[key] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        self.query = query
        self.headers = dict(headers or {})
        self.raw_body = data
        self.body = json.loads(data) if isinstance(data, (str, bytes)) and data else None
        self.verify = verify

    def q(self, key, default=None):
        values = self.query.get(key)
        return values[0] if values else default

    def __repr__(self):
        return '<{0} {1} {2}>'.format(self.method, self.path, self.query)


class FakeSession(object):
    """Routes every request to ``handler(call)``; records the calls."""

    def __init__(self, handler):
        self.handler = handler
        self.calls = []

    def _do(self, method, url, data=None, params=None, headers=None, verify=True, **_):
        call = Call(method, url, params, headers, data, verify)
        self.calls.append(call)
        answer = self.handler(call)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get(self, url, **kw):
        return self._do('get', url, **kw)

    def put(self, url, **kw):
        return self._do('put', url, **kw)

    def post(self, url, **kw):
        return self._do('post', url, **kw)

    def patch(self, url, **kw):
        return self._do('patch', url, **kw)

    def delete(self, url, **kw):
        return self._do('delete', url, **kw)


def refused(url='http://x'):
    return requests.exceptions.ConnectionError('[Errno 111] Connection refused: ' + url)


class FakeClock(object):
    """time.monotonic / time.sleep stand-ins: sleeping advances the clock."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def info_for(version, edition='premium', protocol='http', port=80, host='10.0.0.5'):
    version = versions.Version.parse(version)
    return ManagerInfo(version=version, edition=edition,
                       api_prefix=versions.api_prefix(version),
                       api_version=versions.api_version(version), protocol=protocol,
                       port=port, host=host)


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def make_manager(sleeps):
    """make_manager(version, handler, edition='premium', **kw) -> (Manager, FakeSession)."""

    def make(version, handler, edition='premium', username='admin', password='s3cret-pw',
             tenant=None, **kwargs):
        session = FakeSession(handler)
        manager = Manager(info_for(version, edition), username=username, password=password,
                          tenant=tenant, session=session,
                          retry_policy=RetryPolicy(sleep=sleeps.append), **kwargs)
        return manager, session
    return make


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def fakes():
    """The fake transport pieces: Response, Session, html(), error(), refused(), info_for()."""
    return SimpleNamespace(Response=FakeResponse, Session=FakeSession, html=html, error=error,
                           refused=refused, info_for=info_for)
