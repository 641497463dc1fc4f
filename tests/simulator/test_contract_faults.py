"""Contract of the fault switches (issue 3 item 8): 5xx bursts, dropped downloads, slow
responses, REST outages (refused connections or nginx 502), downloads without
Content-Length, and units stopped through the host's systemctl.
"""
import pytest
import requests

from tests.simulator.helpers import is_json, raw, wait_execution, wait_until


def snapshot_ready(mgr, sid='snap1'):
    client = mgr.client()
    ex = client.snapshots.create(sid, True)
    assert wait_execution(client, ex.id).status == 'terminated'
    return '/api/v3.1/snapshots/{0}/archive'.format(sid)


def test_5xx_burst(simulated_manager):
    mgr = simulated_manager('7.0')
    mgr.faults.fail_requests(r'/blueprints$', count=2, status=503)
    first, second, third = (raw(mgr, 'GET', '/api/v3.1/blueprints') for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert not is_json(first)
    mgr.faults.fail_requests(r'/blueprints$', count=1, status=500)
    broken = raw(mgr, 'GET', '/api/v3.1/blueprints')
    assert broken.status_code == 500
    assert broken.json()['error_code'] == 'internal_server_error'
    assert [e['status'] for e in mgr.requests.matching('GET', '/blueprints')] == [
        503, 503, 200, 500]


def test_dropped_download_then_resume(simulated_manager):
    mgr = simulated_manager('7.0', data='demo')
    path = snapshot_ready(mgr)
    whole = raw(mgr, 'GET', path).content
    mgr.faults.drop_download(after_bytes=100, times=1)
    with pytest.raises(requests.exceptions.RequestException):
        raw(mgr, 'GET', path).content
    rest = raw(mgr, 'GET', path, headers={'Range': 'bytes=100-'})
    assert rest.status_code == 206 and whole[:100] + rest.content == whole


def test_slow_response(simulated_manager):
    mgr = simulated_manager('7.0')
    mgr.faults.delay(r'/version$', seconds=3, count=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        raw(mgr, 'GET', '/api/v3.1/version', timeout=0.3)
    assert raw(mgr, 'GET', '/api/v3.1/version').status_code == 200


def test_rest_outage_refuses_connections(simulated_manager):
    mgr = simulated_manager('7.0')
    port = mgr.rest_port
    mgr.rest_outage(1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        raw(mgr, 'GET', '/api/v3.1/version', timeout=2)

    def back():
        try:
            return raw(mgr, 'GET', '/api/v3.1/version', timeout=2).status_code == 200
        except requests.exceptions.ConnectionError:
            return False
    wait_until(back, 10, what='REST back on the same port')
    assert mgr.rest_port == port


def test_rest_outage_502(simulated_manager):
    mgr = simulated_manager('4.2')
    mgr.rest_outage(30, mode='502')
    response = raw(mgr, 'GET', '/api/v3.1/version')
    assert response.status_code == 502 and not is_json(response)


def test_download_without_content_length(simulated_manager, tmp_path):
    """README 'Content-Length': nginx sends it; this switch drops it (chunked) to exercise
    clients that must cope without it.  The stock 7.0.5 client cannot (it reads the
    content-length header unconditionally)."""
    mgr = simulated_manager('7.0', data='demo')
    path = snapshot_ready(mgr)
    mgr.faults.no_content_length = True
    response = raw(mgr, 'GET', path)
    assert 'Content-Length' not in response.headers
    assert response.headers['Transfer-Encoding'] == 'chunked'
    assert response.content[:2] == b'PK'
    with pytest.raises(KeyError):
        mgr.client().snapshots.download('snap1', str(tmp_path / 'x.zip'))


def test_units_through_systemctl(simulated_manager):
    """issue 3 item 7: stopping nginx refuses connections; stopping the REST service makes
    nginx answer 502; /status and is-active reflect the units."""
    mgr = simulated_manager('4.2')
    assert mgr.systemctl('stop', 'cloudify-restservice') == (0, '')
    assert raw(mgr, 'GET', '/api/v3.1/version').status_code == 502
    assert mgr.systemctl('start', 'cloudify-restservice') == (0, '')
    mgr.systemctl('stop', 'cloudify-rabbitmq')
    status = raw(mgr, 'GET', '/api/v3.1/status').json()
    rabbit = [s for s in status['services'] if s['display_name'] == 'RabbitMQ'][0]
    assert rabbit['instances'][0]['ActiveState'] == 'inactive'
    assert mgr.systemctl('stop', 'nginx') == (0, '')
    with pytest.raises(requests.exceptions.ConnectionError):
        raw(mgr, 'GET', '/api/v3.1/version', timeout=2)
    assert mgr.systemctl('is-active', 'nginx') == (3, 'inactive\n')
    mgr.systemctl('start', 'nginx')
    assert raw(mgr, 'GET', '/api/v3.1/version').status_code == 200
    assert mgr.systemctl('restart', 'nosuch')[0] == 5


def test_requests_log_has_no_credentials(simulated_manager):
    mgr = simulated_manager('7.0')
    raw(mgr, 'GET', '/api/v3.1/blueprints?_size=5')
    entry = mgr.requests.matching('GET', '/blueprints')[0]
    assert entry['query'] == {'_size': '5'} and entry['status'] == 200
    assert mgr.admin_password not in repr(list(mgr.requests))
    assert 'Authorization' not in repr(list(mgr.requests))


@pytest.mark.parametrize('version,has_length', [('5.0.5', True), ('5.1', False),
                                                ('7.0', False)])
def test_rest_download_headers(simulated_manager, version, has_length):
    """behaviour §3.3: the REST service's Content-Length is set up to 5.0.x and dropped in 5.1;
    download_headers='rest' exposes that rule instead of nginx's (README)."""
    mgr = simulated_manager(version, data='demo', download_headers='rest')
    response = raw(mgr, 'GET', snapshot_ready(mgr))
    assert ('Content-Length' in response.headers) is has_length
    assert response.content[:2] == b'PK'


# -- hostile answers (issue 17): what no Cloudify Manager sends --------------------------------

def test_replace_answer_sends_a_wrong_shape(simulated_manager):
    mgr = simulated_manager('4.1')
    mgr.faults.replace_answer(r'^/api/version$', {'version': 41, 'edition': 'premium'},
                              count=1)
    replaced = raw(mgr, 'GET', '/api/version', auth=False)
    assert replaced.status_code == 200
    assert replaced.json() == {'version': 41, 'edition': 'premium'}
    assert raw(mgr, 'GET', '/api/version').json()['version'] == '4.1.0'


def test_endless_json_never_ends_until_its_limit(simulated_manager):
    mgr = simulated_manager('7.0')
    mgr.faults.endless_json(r'/deployments$', limit=1 << 20)
    response = raw(mgr, 'GET', '/api/v3.1/deployments', stream=True)
    assert response.status_code == 200 and is_json(response)
    assert 'Content-Length' not in response.headers
    body = b''.join(response.iter_content(1 << 16))
    assert body.startswith(b'{"items": ["xxx') and len(body) > 1 << 20
    with pytest.raises(ValueError):
        __import__('json').loads(body)


def test_trickle_sends_one_byte_at_a_time(simulated_manager):
    mgr = simulated_manager('7.0')
    mgr.faults.trickle(r'/deployments$', interval=0.05, body={'items': []}, count=1)
    response = raw(mgr, 'GET', '/api/v3.1/deployments', stream=True, timeout=(5, 1))
    assert response.headers['Content-Length'] == str(len(b'{"items": []}'))
    pieces = list(response.raw.stream(1, decode_content=False))
    assert len(pieces) > 1 and b''.join(pieces) == b'{"items": []}'


def test_redirect_to_another_origin(simulated_manager):
    from tests.simulator.recorder import RecordingServer
    mgr = simulated_manager('7.0')
    with RecordingServer(answer={'items': []}) as other:
        mgr.faults.redirect(r'/deployments$', other.url, count=2)
        moved = raw(mgr, 'GET', '/api/v3.1/deployments?_size=5', allow_redirects=False)
        assert moved.status_code == 302
        assert moved.headers['Location'] == other.url + '/api/v3.1/deployments?_size=5'
        followed = raw(mgr, 'GET', '/api/v3.1/deployments', headers={'X-Probe': '1'})
        assert followed.status_code == 200 and followed.json() == {'items': []}
        assert [r['path'] for r in other.requests] == ['/api/v3.1/deployments']
        assert 'x-probe' in other.headers_seen()
        assert raw(mgr, 'GET', '/api/v3.1/deployments').json()['items'] == []   # used up
        assert len(other.requests) == 1
