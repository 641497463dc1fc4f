"""Honest output (issue 17 items 18-20), through the real `cfy` against simulated managers.

- h18: warnings (an unreadable licence, plugins built for another Python, old users left
  without passwords, LDAP settings a snapshot does not carry) appear in the human output,
  the ``--json`` document and the report, not only in the journal (item 18).
- h19: every command that acts on a workspace rewrites report.json / report.md, which carry
  the journal's head: a blocked check-target (exit 3), a finished new-host, verify-heals
  (item 19).
- h20: the events of the executions the plugin waits for are shown while it waits, at most
  a few lines per interval, with secrets masked (item 20).
"""
import json
import os

from tests import flows
from tests.reliability import harness
from tests.simulator.helpers import raw
from tests.waiting import wait_until


def _report(sc):
    with open(os.path.join(sc.workspace(), 'report.json'), encoding='utf-8') as stream:
        report = json.load(stream)
    with open(os.path.join(sc.workspace(), 'report.md'), encoding='utf-8') as stream:
        return report, stream.read()


def _head(sc):
    entries = sc.journal()
    return {'entries': len(entries), 'head': entries[-1]['hash']}


def test_h18_warnings_in_the_output_and_the_report(managers):
    """prepare of a 4.1 source whose plugins are built for Python 2.7, then new-host to 7.0
    (a path the vendor does not test) with --users skip: each warning (a warn check, a
    step's notice) is printed after the human output, is in the --json document
    (``warnings``) and in report.json / report.md, besides the journal."""
    sc = managers
    prepared = sc.prepare()
    assert 'Warning [plugins-python]' in prepared.stdout + prepared.stderr, \
        harness.show(prepared)
    report, md = _report(sc)
    assert 'plugins-python' in [item['id'] for item in report['warnings']]
    assert '## Warnings' in md and '[plugins-python]' in md and '2.7' in md
    result = sc.run('upgrade', 'new-host', '--to-profile', 'new', '--yes', '--users', 'skip')
    assert result.returncode == 0, harness.show(result)
    text = result.stdout + result.stderr
    for warning_id in ('path-not-vendor-tested', 'users-policy'):
        assert 'Warning [{0}]'.format(warning_id) in text, harness.show(result)
    report, md = _report(sc)
    ids = [item['id'] for item in report['warnings']]
    assert {'path-not-vendor-tested', 'users-policy'} <= set(ids), report
    assert '## Warnings' in md and '[users-policy]' in md

    result = sc.run('upgrade', 'new-host', '--to-profile', 'new', '--yes', '--users', 'skip',
                    '--json')
    assert result.returncode == 0, harness.show(result)
    assert [item['id'] for item in result.json['warnings']] == ids


def test_h18_ldap_warning_from_prepare(flow, simulated_manager):
    """prepare of a 5.2.7 manager whose LDAP is enabled: the snapshot will not carry the LDAP
    settings; `Warning [ldap-settings]` ends the human output and is in report.md, and
    plan --json lists it in ``warnings``."""
    sc = flow
    old = simulated_manager('5.2.7', data='demo', ssh=True)
    answer = raw(old, 'POST', old.rules.api_prefix + '/ldap', json_body={
        'ldap_server': 'ldap://192.0.2.1:389', 'ldap_domain': 'example.com'})
    assert answer.status_code == 200, answer.text      # `cfy ldap set` (tests/simulator/ldap.py)
    wait_until(lambda: raw(old, 'GET', old.rules.api_prefix + '/ldap').status_code == 200, 20,
               what='the REST service back after POST /ldap')
    sc.profile('old', old)
    result = sc.run('upgrade', 'plan', '--target-version', flows.TARGET_VERSION, '--json')
    assert result.returncode == 0, harness.show(result)
    assert 'ldap-settings' in [item['id'] for item in result.json['warnings']]
    result = sc.run(*flows.prepare_args())
    assert result.returncode == 0, harness.show(result)
    assert 'Warning [ldap-settings]: LDAP is enabled' in result.stdout + result.stderr, \
        harness.show(result)
    report, md = _report(sc)
    assert 'ldap-settings' in [item['id'] for item in report['warnings']]
    assert '- [ldap-settings] LDAP is enabled' in md


def test_h19_every_command_rewrites_the_report_with_the_journal_head(
        managers, simulated_manager):
    """After prepare: new-host onto a busy target is blocked at check-target (exit 3) and
    the report says so, with the checks; new-host onto the right target and verify-heals
    each rewrite it.  Each time report.json's ``journal`` is the journal's length and last
    hash, and report.md shows that hash."""
    sc = managers
    sc.prepare()
    busy = simulated_manager('7.0', data='demo', ssh=True)
    sc.profile('busy', busy, activate=False)
    result = sc.run('upgrade', 'new-host', '--to-profile', 'busy', '--yes', '--users',
                    'rest-security', '--json')
    assert result.returncode == 3, harness.show(result)
    report, md = _report(sc)
    assert report['error']['id'] == 'blocked', report
    assert 'target-not-clean' in [c['id'] for c in report['checks'] if c['status'] == 'fail']
    assert report['journal'] == _head(sc)
    assert _head(sc)['head'] in md

    result = sc.run(*flows.NEW_HOST)
    assert result.returncode == 0, harness.show(result)
    report, md = _report(sc)
    assert 'error' not in report and report['cutover_at'], report
    assert report['journal'] == _head(sc) and _head(sc)['head'] in md

    result = sc.run('upgrade', 'verify-heals', '--json')
    assert result.returncode in (0, 4), harness.show(result)
    report, md = _report(sc)
    assert 'verify_heals' in report
    assert report['journal'] == _head(sc) and _head(sc)['head'] in md


FLOOD = 25


def test_h20_execution_events_shown_while_waiting(managers):
    """prepare and new-host show the events of the executions they wait for, as cfy prints
    them (create_snapshot, restore_snapshot, install_new_agents); a restore that sends a
    flood of events shows at most 10 of them in an interval and sums up the rest in one
    line; an event that holds the admin password shows it masked."""
    sc = managers
    result = sc.prepare()
    text = result.stdout + result.stderr
    assert "CFY <None> Starting 'create_snapshot' workflow execution" in text, \
        harness.show(result)
    assert "'create_snapshot' workflow execution succeeded" in text

    secret = 'Connecting to the new broker as admin with password {0}'.format(
        flows.NEW_ADMIN_PASSWORD)
    sc.new.faults.add_events(workflow_id='restore_snapshot', messages=[secret] + [
        'Restoring table number {0}'.format(index) for index in range(FLOOD)])
    result = sc.run(*flows.NEW_HOST)
    assert result.returncode == 0, harness.show(result)
    text = result.stdout + result.stderr
    assert flows.NEW_ADMIN_PASSWORD not in text, harness.show(result)
    assert 'Connecting to the new broker as admin with password ***' in text
    assert "Starting 'restore_snapshot' workflow execution" in text
    assert "'restore_snapshot' workflow execution succeeded" in text
    shown = [line for line in text.splitlines() if 'Restoring table number' in line]
    more = [line for line in text.splitlines() if 'more event(s) of execution' in line]
    held = sum(int(line.split('... ')[1].split(' ')[0]) for line in more)
    assert 0 < len(shown) < FLOOD and more, harness.show(result)
    assert len(shown) + held == FLOOD
    assert "Starting 'install_new_agents' workflow execution" in text
    assert "'install_new_agents' workflow execution succeeded" in text
