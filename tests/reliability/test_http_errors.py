"""HTTP error answers are summarized, never shown raw (issue 17 item 14), through the real `cfy`
against simulated managers.

- h01: an nginx HTML 502 page (the REST service behind nginx is down) becomes the status, its
  reason and the page's title; no HTML, no Python bytes literal, no traceback.
- h02: Cloudify's JSON error (``message``, ``error_code``, ``server_traceback``; the simulated
  500 is the REST service's ``internal_server_error``) becomes status, error code and message;
  the server's traceback is not shown.
- h03: while new-host waits for the restore, the target answers three 502 pages: the "still
  waiting" line names the manager once and summarizes the page.
"""
import re

from tests import flows
from tests.reliability import harness

RAW = ('<html', '<head', '<title', '</', "b'", '\\r\\n', 'Traceback')


def _plan(sc):
    return sc.run('upgrade', 'plan', '--target-version', flows.TARGET_VERSION,
                  '--waive', 'ssh-access', '--reason', 'no SSH in this test')


def _source(flow, simulated_manager):
    old = simulated_manager('4.1', data='demo', ssh=False,
                            admin_password=flows.OLD_ADMIN_PASSWORD)
    flow.profile('old', old, ssh=False)
    return old


def _line(output, check_id):
    lines = [line for line in output.splitlines() if check_id + ':' in line]
    assert lines, output
    return lines[-1]


def test_h01_html_502_is_summarized(flow, simulated_manager):
    """plan while the old manager's /status answers nginx's 502 page: source-healthy fails
    with "answered HTTP 502 Bad Gateway (reading the status): an HTML page "502 Bad
    Gateway"", and nothing of the page's markup is printed."""
    old = _source(flow, simulated_manager)
    old.faults.fail_requests(r'/status$', count=None, status=502)
    result = _plan(flow)
    output = result.stdout + result.stderr
    assert result.returncode == 3, harness.show(result)
    line = _line(output, 'source-healthy')
    assert 'answered HTTP 502 Bad Gateway (reading the status): an HTML page ' \
           '"502 Bad Gateway"' in line, line
    for raw in RAW:
        assert raw not in output, (raw, harness.show(result))


def test_h02_json_error_shows_status_code_and_message(flow, simulated_manager):
    """plan while the old manager's execution list answers the REST service's JSON 500:
    status, error code and message are shown; the server traceback is not."""
    old = _source(flow, simulated_manager)
    old.faults.fail_requests(r'/executions$', count=None, status=500)
    result = _plan(flow)
    output = result.stdout + result.stderr
    assert result.returncode == 3, harness.show(result)
    line = _line(output, 'no-active-executions')
    assert 'answered HTTP 500 Internal Server Error, error internal_server_error ' \
           '(listing executions): Internal error occurred in manager REST server ' \
           '(simulated)' in line, line
    for raw in RAW:
        assert raw not in output, (raw, harness.show(result))


def test_h03_label_once_while_waiting(managers):
    """new-host; the target answers 502 pages to three polls of the restore execution: the
    upgrade finishes, the "still waiting" line names the manager once and shows no HTML."""
    sc = managers
    sc.prepare()
    sc.new.faults.fail_requests(r'/executions/[^/]+$', count=3, status=502, method='GET')
    result = sc.run(*flows.NEW_HOST)
    output = result.stdout + result.stderr
    assert result.returncode == 0, harness.show(result)
    waiting = [line for line in output.splitlines() if 'still waiting for execution' in line]
    assert waiting, harness.show(result)
    label = re.search(r'manager \S+ \(profile new\)', waiting[0]).group(0)
    for line in waiting:
        assert line.count(label) == 1, line
        assert 'answered HTTP 502 Bad Gateway' in line and \
            'an HTML page "502 Bad Gateway"' in line, line
    for raw in RAW[:-1]:
        assert raw not in output, (raw, harness.show(result))
    harness.assert_upgraded(sc)
