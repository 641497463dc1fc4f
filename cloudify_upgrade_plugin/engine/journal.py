"""The workspace journal: append-only, hash-chained ``journal.jsonl``.

One JSON object per line: ``ts`` (UTC ISO 8601, ``Z``), ``step``, ``event``, ``details``
(passed through ``redact``), ``prev`` (the previous line's ``hash``; 64 zeros for the first
line) and ``hash`` (sha256 of the canonical JSON - sorted keys, compact separators - of the
object without ``hash``).  Lines are appended whole with ``O_APPEND`` and fsynced.

A sidecar ``journal.jsonl.head`` (``{"count", "hash"}``, written atomically after each append)
makes the removal of lines at the end detectable too; the journal may be ahead of it (a crash
between the two writes), never behind, and its line ``count`` must carry the head's hash.

Every load verifies the whole chain; any break is ``InputError('journal-tampered')`` (exit 2:
the workspace given is not one the plugin can trust).

Events: ``started``, ``succeeded``, ``failed``, ``skipped``, ``waived`` (the contract's
vocabulary), plus the notes ``interrupted`` (the previous process died inside the step),
``resumed`` (the step is run again after an interruption) and ``rehearsed`` (a rehearsal,
``new-host --rehearse``, stopped before this step: the point of no return; the step did not
run).
"""
import hashlib
import json
import os
from typing import Dict, List, Optional

from cloudify_upgrade_plugin import clock, files
from cloudify_upgrade_plugin.engine.redact import redact
from cloudify_upgrade_plugin.errors import InputError

STARTED = 'started'
SUCCEEDED = 'succeeded'
FAILED = 'failed'
SKIPPED = 'skipped'
WAIVED = 'waived'
INTERRUPTED = 'interrupted'
RESUMED = 'resumed'
REHEARSED = 'rehearsed'

EVENTS = (STARTED, SUCCEEDED, FAILED, SKIPPED, WAIVED, INTERRUPTED, RESUMED, REHEARSED)
# Events that end an attempt at a step (the step is "done" after the first three).
DONE_EVENTS = (SUCCEEDED, SKIPPED, WAIVED)
LIFECYCLE_EVENTS = (STARTED, SUCCEEDED, FAILED, SKIPPED, WAIVED)
GENESIS = '0' * 64


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(',', ':'), ensure_ascii=False)


def entry_hash(entry) -> str:
    body = {key: value for key, value in entry.items() if key != 'hash'}
    return hashlib.sha256(canonical(body).encode('utf-8')).hexdigest()


def is_check_waiver(entry) -> bool:
    """A ``waived`` entry recording a check waiver (not the end of a step)."""
    return entry.get('event') == WAIVED and 'check' in (entry.get('details') or {})


class Journal:
    """``Journal(path)``: ``append(step, event, details=None)``, ``entries()``, ``state()``."""

    def __init__(self, path):
        self.path = path
        self.head_path = path + '.head'
        self._cache = None      # (raw bytes, entries) of the last verified read

    # -- reading --------------------------------------------------------------------------

    def entries(self) -> List[dict]:
        """Every entry, verified (``journal-tampered`` on any break); [] when absent."""
        return list(self._load()[1])

    def _load(self):
        try:
            with open(self.path, 'rb') as stream:
                raw = stream.read()
        except FileNotFoundError:
            raw = b''
        if self._cache is None or self._cache[0] != raw:
            self._cache = (raw, self._verify(raw))
        return self._cache

    def _verify(self, raw):
        entries = []
        if raw and not raw.endswith(b'\n'):
            line_no = raw.count(b'\n') + 1
            raise self._tampered(line_no, 'the last line is truncated (no end of line)')
        prev = GENESIS
        for index, line in enumerate(raw.split(b'\n')[:-1] if raw else []):
            line_no = index + 1
            try:
                entry = json.loads(line.decode('utf-8'))
            except ValueError:
                raise self._tampered(line_no, 'it is not valid JSON')
            if not isinstance(entry, dict) or not {'ts', 'step', 'event', 'prev', 'hash'} \
                    <= set(entry):
                raise self._tampered(line_no, 'it is not a journal entry')
            if entry['prev'] != prev:
                raise self._tampered(
                    line_no, 'it does not follow line {0} (the chain of hashes is broken: a '
                             'line was removed, inserted or moved)'.format(line_no - 1)
                    if line_no > 1 else 'the first line does not start the chain')
            if entry_hash(entry) != entry['hash']:
                raise self._tampered(line_no, 'its content does not match its hash (edited)')
            prev = entry['hash']
            entries.append(entry)
        self._check_head(entries)
        return entries

    def _check_head(self, entries):
        try:
            with open(self.head_path, 'r', encoding='utf-8') as stream:
                head = json.load(stream)
            count, head_hash = int(head['count']), head['hash']
        except FileNotFoundError:
            return
        except (ValueError, KeyError, TypeError):
            raise self._tampered(None, 'its head file {0} is unreadable'.format(
                self.head_path))
        if count == 0:
            return
        if len(entries) < count:
            raise self._tampered(
                len(entries) + 1, 'lines were removed from its end (the journal had {0} '
                                  'lines, it now has {1})'.format(count, len(entries)))
        if entries[count - 1]['hash'] != head_hash:
            raise self._tampered(count, 'it does not match the recorded head of the journal')

    def _tampered(self, line_no, reason):
        where = 'line {0}'.format(line_no) if line_no else 'the journal'
        return InputError(
            'The upgrade journal {0} was modified: {1} is refused because {2}. The plugin '
            'cannot tell which steps really ran, so it stops here.'.format(
                self.path, where, reason),
            error_id='journal-tampered',
            hints=['Do not edit journal.jsonl by hand; it is the record of what was done.',
                   'Restore journal.jsonl (and journal.jsonl.head) from a backup if you '
                   'have one, or start a new upgrade with a new --upgrade-id.'],
            details={'journal': self.path, 'line': line_no})

    # -- writing --------------------------------------------------------------------------

    def append(self, step, event, details=None) -> dict:
        """Append one verified-chain entry; return it."""
        if event not in EVENTS:
            raise ValueError('unknown journal event {0!r}'.format(event))
        raw, entries = self._load()
        entries = list(entries)
        entry = {'ts': clock.isoformat(), 'step': step, 'event': event,
                 'details': redact(details or {}),
                 'prev': entries[-1]['hash'] if entries else GENESIS}
        entry['hash'] = entry_hash(entry)
        line = (canonical(entry) + '\n').encode('utf-8')
        files.make_private_dirs(os.path.dirname(os.path.abspath(self.path)))
        fd = files.open_private(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.fchmod(fd, files.FILE_MODE)
            written = 0
            while written < len(line):
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        entries.append(entry)
        self._cache = (raw + line, entries)
        files.atomic_write(self.head_path, canonical(
            {'count': len(entries), 'hash': entry['hash']}) + '\n')
        return entry

    # -- views ----------------------------------------------------------------------------

    def step_entries(self, step) -> List[dict]:
        """The lifecycle entries of ``step`` (check waivers excluded), oldest first."""
        return [entry for entry in self.entries()
                if entry['step'] == step and not is_check_waiver(entry)]

    def state(self) -> Dict[str, str]:
        """``{step_id: last_event}`` over every step in the journal (check waivers excluded)."""
        result = {}
        for entry in self.entries():
            if not is_check_waiver(entry):
                result[entry['step']] = entry['event']
        return result

    def last_event(self, step) -> Optional[str]:
        """The last event of ``step`` (None when it never appeared)."""
        entries = self.step_entries(step)
        return entries[-1]['event'] if entries else None

    def last_entry(self, step) -> Optional[dict]:
        entries = self.step_entries(step)
        return entries[-1] if entries else None

    def waivers(self) -> List[dict]:
        """The check waivers recorded so far (``details``: check, reason, message)."""
        return [entry for entry in self.entries() if is_check_waiver(entry)]
