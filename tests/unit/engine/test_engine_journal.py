"""The hash-chained journal: entries, chain, and every kind of tampering refused."""
import hashlib
import json

import pytest

from cloudify_upgrade_plugin.engine.journal import GENESIS, Journal, canonical
from cloudify_upgrade_plugin.engine.runner import Runner
from cloudify_upgrade_plugin.engine.step import Context, FunctionStep, Runbook
from cloudify_upgrade_plugin.errors import UpgradeError


def _fill(journal):
    journal.append('alpha', 'started')
    journal.append('alpha', 'succeeded', {'size': 3})
    journal.append('bravo', 'started')
    journal.append('bravo', 'failed', {'error_id': 'x', 'message': 'boom'})
    journal.append('bravo', 'started')


def _lines(journal):
    with open(journal.path, 'rb') as stream:
        return stream.read().splitlines(keepends=True)


def _write(journal, lines):
    with open(journal.path, 'wb') as stream:
        stream.write(b''.join(lines))


def test_entries_are_chained_and_hashed(tmp_path):
    journal = Journal(str(tmp_path / 'journal.jsonl'))
    _fill(journal)
    entries = Journal(journal.path).entries()
    assert [(e['step'], e['event']) for e in entries] == [
        ('alpha', 'started'), ('alpha', 'succeeded'), ('bravo', 'started'),
        ('bravo', 'failed'), ('bravo', 'started')]
    assert entries[0]['prev'] == GENESIS
    for previous, entry in zip(entries, entries[1:]):
        assert entry['prev'] == previous['hash']
    for entry in entries:
        body = {k: v for k, v in entry.items() if k != 'hash'}
        assert entry['hash'] == hashlib.sha256(canonical(body).encode()).hexdigest()
        assert entry['ts'].endswith('Z')
        assert set(entry) == {'ts', 'step', 'event', 'details', 'prev', 'hash'}
    # One compact JSON object per line.
    assert all(json.loads(line) for line in _lines(journal))
    assert entries[1]['details'] == {'size': 3}


def test_state_and_last_event(tmp_path):
    journal = Journal(str(tmp_path / 'journal.jsonl'))
    _fill(journal)
    journal.append('checks', 'waived', {'check': 'disk-space', 'reason': 'tested'})
    assert journal.state() == {'alpha': 'succeeded', 'bravo': 'started'}
    assert journal.last_event('alpha') == 'succeeded'
    assert journal.last_event('bravo') == 'started'
    assert journal.last_event('nothing') is None
    assert [w['details']['check'] for w in journal.waivers()] == ['disk-space']


def test_unknown_event_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError):
        Journal(str(tmp_path / 'j.jsonl')).append('alpha', 'finished')


def _edit(lines):
    entry = json.loads(lines[1])
    entry['details']['size'] = 4
    lines[1] = (canonical(entry) + '\n').encode()
    return lines


def _edit_and_rehash(lines):
    entry = json.loads(lines[1])
    entry['event'] = 'skipped'
    body = {k: v for k, v in entry.items() if k != 'hash'}
    entry['hash'] = hashlib.sha256(canonical(body).encode()).hexdigest()
    lines[1] = (canonical(entry) + '\n').encode()
    return lines


def _reorder(lines):
    lines[1], lines[2] = lines[2], lines[1]
    return lines


TAMPERING = {
    'edited line': (_edit, 2),
    'edited and rehashed line': (_edit_and_rehash, 3),
    'deleted first line': (lambda lines: lines[1:], 1),
    'deleted middle line': (lambda lines: lines[:2] + lines[3:], 3),
    'deleted last line': (lambda lines: lines[:-1], 5),
    'truncated last line': (lambda lines: lines[:-1] + [lines[-1][:40]], 5),
    'reordered lines': (_reorder, 2),
    'non-JSON line': (lambda lines: lines[:3] + [b'not json\n'] + lines[3:], 4),
    'blank line inserted': (lambda lines: lines[:1] + [b'\n'] + lines[1:], 2),
}


@pytest.mark.parametrize('name', sorted(TAMPERING))
def test_tampered_journal_is_refused(tmp_path, name):
    tamper, line_no = TAMPERING[name]
    journal = Journal(str(tmp_path / 'journal.jsonl'))
    _fill(journal)
    _write(journal, tamper(_lines(journal)))
    with pytest.raises(UpgradeError) as info:
        Journal(journal.path).entries()
    error = info.value
    assert error.error_id == 'journal-tampered'
    assert 'line {0}'.format(line_no) in error.message
    assert any('Do not edit' in hint for hint in error.hints)
    assert any('--upgrade-id' in hint for hint in error.hints)
    # Appending to a tampered journal is refused too.
    with pytest.raises(UpgradeError):
        Journal(journal.path).append('charlie', 'started')


def test_runner_refuses_a_tampered_journal(ws):
    ran = []
    runbook = Runbook('prepare', [FunctionStep('alpha', run=lambda ctx: ran.append(1)),
                                  FunctionStep('bravo', run=lambda ctx: ran.append(2))])
    Runner(ws, runbook, {'v': 1}).run(Context(ws, yes=True))
    lines = _lines(ws.journal)
    _write(ws.journal, lines[:1] + lines[2:])
    with pytest.raises(UpgradeError) as info:
        Runner(ws, runbook, {'v': 1}).run(Context(ws, yes=True))
    assert info.value.error_id == 'journal-tampered'
    assert ran == [1, 2]


def test_journal_ahead_of_its_head_is_accepted(tmp_path):
    """A crash between the journal append and the head update loses nothing."""
    journal = Journal(str(tmp_path / 'journal.jsonl'))
    _fill(journal)
    with open(journal.head_path, 'rb') as stream:
        head = stream.read()
    journal.append('charlie', 'started')
    with open(journal.head_path, 'wb') as stream:
        stream.write(head)
    assert len(Journal(journal.path).entries()) == 6
