"""The upgrade workspace: ``<cfy workdir>/upgrades/<upgrade-id>/``, its files and its lock.

Owns where workspaces live, how they are named, created and found again, how files in them
are written (atomically, 0600, redacted JSON) and the inter-process lock that lets exactly one
``cfy upgrade`` process work on a workspace at a time.  Directories are 0700 and files 0600,
set explicitly so the operator's umask does not matter.

``workspace.json`` (``Workspace.meta``) holds the keys listed in docs/ARCHITECTURE.md
(``upgrade_id``, ``mode``, ``created_at``, ``fingerprint``, ``source``, ``target``, ...) plus
``runbooks``: the step ids and titles of every runbook run in it, so ``status`` can list
pending steps without importing the runbooks.  Never a secret.
"""
import contextlib
import datetime
import errno
import json
import os
import re
import secrets as _random
import threading
from typing import Any, Iterator, List

import fasteners

from cloudify_upgrade_plugin import clock
from cloudify_upgrade_plugin.engine.journal import Journal
from cloudify_upgrade_plugin.engine.redact import redact
from cloudify_upgrade_plugin.errors import InputError, UpgradeError
from cloudify_upgrade_plugin.files import (
    DIR_MODE, FILE_MODE, atomic_write, cfy_workdir, enforce_private_tree, make_private_dirs,
    open_private, refuse_link)
from cloudify_upgrade_plugin.log import get_logger

UPGRADES = 'upgrades'
META_FILE = 'workspace.json'
JOURNAL_FILE = 'journal.jsonl'
LOCK_FILE = '.lock'
UPGRADE_ID_RE = re.compile(r'[A-Za-z][A-Za-z0-9._-]*')
MAX_ID_LENGTH = 100


def upgrades_dir(base=None) -> str:
    """``<base>/upgrades`` (``base``: the cfy workdir unless a caller such as the fleet
    names another, e.g. a deployment's work directory)."""
    return os.path.join(base or cfy_workdir(), UPGRADES)


def validate_upgrade_id(upgrade_id) -> str:
    if (not isinstance(upgrade_id, str) or len(upgrade_id) > MAX_ID_LENGTH
            or not UPGRADE_ID_RE.fullmatch(upgrade_id)):
        raise InputError(
            'Invalid upgrade id {0!r}: it must start with a letter and contain only letters, '
            'digits, ".", "_" and "-" (at most {1} characters).'.format(
                upgrade_id, MAX_ID_LENGTH),
            error_id='invalid-upgrade-id',
            hints=['Use an id like upg-20260101-120000-ab12, or leave --upgrade-id out.'])
    return upgrade_id


def new_upgrade_id(moment=None) -> str:
    moment = (moment or clock.utcnow()).astimezone(clock.UTC)
    return 'upg-{0}-{1}'.format(moment.strftime('%Y%m%d-%H%M%S'), _random.token_hex(2))


def list_upgrade_ids(base=None) -> List[str]:
    """Ids of the existing workspaces (directories holding a workspace.json), sorted."""
    root = upgrades_dir(base)
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(name for name in names
                  if UPGRADE_ID_RE.fullmatch(name)
                  and os.path.isfile(os.path.join(root, name, META_FILE)))


# The type of every workspace.json key the plugin writes (None is always allowed), and of
# the string fields inside the manager and snapshot descriptions: a document that breaks
# them is refused (workspace-corrupt) instead of failing later with a TypeError.
META_TYPES = {
    'upgrade_id': str, 'mode': str, 'created_at': str, 'snapshot_id': str,
    'target_version': str, 'restore_execution_id': str, 'restore_started_at': str,
    'supersedes': str, 'superseded_by': str,
    'restore_ended_seen_at': str, 'cutover_at': str, 'target_health': str,
    'fingerprint': dict, 'source': dict, 'target': dict, 'snapshot': dict,
    'reconciliation': dict, 'agents': dict, 'estimates': dict,
    'runbooks': list, 'checks': list, 'backups': list, 'target_checks': list,
    'failed_restore_execution_ids': list, 'warnings': list,
}
_META_STRING_FIELDS = {
    'source': ('profile', 'address', 'version', 'edition', 'api_prefix'),
    'target': ('profile', 'address', 'version', 'edition', 'api_prefix'),
    'snapshot': ('id', 'path', 'sha256', 'snapshot_version'),
}
_TYPE_NAMES = {str: 'a string', dict: 'an object', list: 'a list'}


def meta_problem(document) -> str:
    """What is wrong with the types of a workspace.json document, or '' (see META_TYPES)."""
    if document is None:
        return ''
    if not isinstance(document, dict):
        return 'it is not a JSON object'
    for key, wanted in META_TYPES.items():
        value = document.get(key)
        if value is not None and not isinstance(value, wanted):
            return '"{0}" is {1}, not {2}'.format(
                key, type(value).__name__, _TYPE_NAMES[wanted])
    for key, fields in _META_STRING_FIELDS.items():
        for name in fields:
            value = (document.get(key) or {}).get(name)
            if value is not None and not isinstance(value, str):
                return '"{0}.{1}" is {2}, not a string'.format(
                    key, name, type(value).__name__)
    for entry in document.get('runbooks') or []:
        if not isinstance(entry, dict) or not isinstance(entry.get('steps') or [], list) or \
                not all(isinstance(step, dict) for step in entry.get('steps') or []):
            return '"runbooks" holds an entry that is not a runbook'
    return ''


# The lock around each workspace.json read-merge-write, per workspace root (threads).
_meta_locks = {}
_meta_guard = threading.Lock()


def _meta_lock(root) -> threading.RLock:
    with _meta_guard:
        return _meta_locks.setdefault(os.path.normpath(os.path.abspath(root)),
                                      threading.RLock())


# Locks held by this process (path -> True): fcntl.lockf locks are per process, so a second
# lock of the same file in the same process would silently "succeed" (and releasing it would
# drop the first one).  This registry makes the second attempt fail like another process's.
_held_locks = set()
_held_guard = threading.Lock()


class Workspace:
    """One upgrade's directory.  Build it with ``create`` or ``open``."""

    def __init__(self, root, upgrade_id):
        self.root = root
        self.upgrade_id = upgrade_id
        self._journal = None

    def __repr__(self):
        return 'Workspace({0!r})'.format(self.root)

    # -- finding and creating -------------------------------------------------------------

    @classmethod
    def create(cls, upgrade_id=None, mode=None, exist_ok=False, base=None,
               **meta) -> 'Workspace':
        """Create ``<upgrades>/<upgrade_id>/`` (a new id when None) with its workspace.json.

        ``meta`` keys go into workspace.json (redacted).  An existing id is an InputError
        ``workspace-exists`` unless ``exist_ok``, which opens it instead.
        """
        now = clock.utcnow()
        upgrade_id = validate_upgrade_id(new_upgrade_id(now) if upgrade_id is None
                                         else upgrade_id)
        root = os.path.join(upgrades_dir(base), upgrade_id)
        if os.path.isfile(os.path.join(root, META_FILE)):
            if exist_ok:
                return cls.open(upgrade_id, base=base)
            raise InputError(
                'An upgrade workspace named {0} already exists ({1}).'.format(upgrade_id, root),
                error_id='workspace-exists',
                hints=['Resume it with the command that created it and --upgrade-id {0}, '
                       'or choose another --upgrade-id.'.format(upgrade_id)])
        make_private_dirs(upgrades_dir(base))
        try:
            os.mkdir(root, DIR_MODE)
        except FileExistsError:
            pass
        workspace = cls(root, upgrade_id)
        workspace.enforce_private()
        document = {'upgrade_id': upgrade_id, 'mode': mode, 'created_at': clock.isoformat(now),
                    'fingerprint': None, 'runbooks': []}
        document.update(meta)
        workspace.write_json(META_FILE, document)
        return workspace

    @classmethod
    def open(cls, upgrade_id=None, base=None) -> 'Workspace':
        """The workspace ``upgrade_id``, or the most recently created one when None."""
        existing = list_upgrade_ids(base)
        if upgrade_id is not None:
            validate_upgrade_id(upgrade_id)
            if upgrade_id in existing:
                return cls(os.path.join(upgrades_dir(base), upgrade_id),
                           upgrade_id).enforce_private()
            message = 'No upgrade workspace named {0} in {1}.'.format(
                upgrade_id, upgrades_dir(base))
        elif existing:
            return cls(*_most_recent(existing, base)).enforce_private()
        else:
            message = 'There is no upgrade workspace yet in {0}.'.format(upgrades_dir())
        if existing:
            message += ' Existing upgrade ids: {0}.'.format(', '.join(existing))
            hints = ['Pass one of the existing ids with --upgrade-id.']
        else:
            hints = ['Start an upgrade with `cfy upgrade prepare`.']
        hints.append('Check CFY_WORKDIR: workspaces live in <CFY_WORKDIR or ~>/.cloudify/'
                     'upgrades/.')
        raise InputError(message, error_id='workspace-not-found', hints=hints)

    def enforce_private(self) -> 'Workspace':
        """Refuse a workspace holding a symbolic link or another user's file (exit 2,
        ``workspace-unsafe``); put its directories back to 0700 and files to 0600 (issue 17
        item 6: a workspace found 0755 is fixed, with a warning, not refused)."""
        fixed = enforce_private_tree(self.root)
        parent = upgrades_dir()
        refuse_link(parent)
        if os.path.isdir(parent) and (os.stat(parent).st_mode & 0o777) != DIR_MODE:
            os.chmod(parent, DIR_MODE)
            fixed.append(parent)
        if fixed:
            get_logger().warning('Upgrade %s: %d file(s) or folder(s) were readable by others; '
                                 'their modes are back to 0700/0600: %s', self.upgrade_id,
                                 len(fixed), ', '.join(sorted(fixed)[:5]) +
                                 (' ...' if len(fixed) > 5 else ''))
        return self

    # -- files ----------------------------------------------------------------------------

    def path(self, rel='') -> str:
        """Absolute path of ``rel`` inside the workspace (never outside it)."""
        full = os.path.normpath(os.path.join(self.root, rel))
        root = os.path.normpath(self.root)
        if full != root and not full.startswith(root + os.sep):
            raise ValueError('{0!r} is outside the workspace'.format(rel))
        return full

    def makedirs(self, rel) -> str:
        """Create a 0700 directory (and parents) inside the workspace; return its path."""
        path = self.path(rel)
        refuse_link(path)
        return make_private_dirs(path)

    def write_bytes(self, rel, data) -> str:
        return atomic_write(self.path(rel), data)

    def write_json(self, rel, obj) -> str:
        """Write ``obj`` as JSON to ``rel``, redacted, atomically, 0600."""
        text = json.dumps(redact(obj), indent=2, sort_keys=True, default=str) + '\n'
        return atomic_write(self.path(rel), text)

    def read_json(self, rel, default=None) -> Any:
        """The JSON in ``rel``; ``default`` when the file does not exist."""
        try:
            fd = open_private(self.path(rel), os.O_RDONLY)
        except FileNotFoundError:
            return default
        try:
            with os.fdopen(fd, 'r', encoding='utf-8') as stream:
                return json.load(stream)
        except ValueError as error:
            raise InputError(
                '{0} in upgrade {1} is not valid JSON: {2}'.format(rel, self.upgrade_id, error),
                error_id='workspace-corrupt',
                hints=['Restore the file from a backup, or start a new upgrade with a new '
                       '--upgrade-id.'])

    def exists(self, rel) -> bool:
        return os.path.exists(self.path(rel))

    # -- meta -----------------------------------------------------------------------------

    @property
    def meta(self) -> dict:
        """workspace.json as a dict (empty when missing); ``workspace-corrupt`` (exit 2) when
        it or one of its known keys has the wrong type (``META_TYPES``)."""
        document = self.read_json(META_FILE, default={})
        problem = meta_problem(document)
        if problem:
            raise InputError(
                '{0} in upgrade {1} is not what the plugin wrote: {2}.'.format(
                    META_FILE, self.upgrade_id, problem),
                error_id='workspace-corrupt',
                hints=['Restore the file from a backup, or start a new upgrade with a new '
                       '--upgrade-id.'])
        return document or {}

    def update_meta(self, **fields) -> dict:
        """Merge ``fields`` into workspace.json (atomic, redacted); return the new meta.

        Read, merge and write hold the workspace's meta lock: threads of one process (the
        agent installs, a failed-logins listener called from another upgrade's thread in
        the fleet) never lose each other's fields."""
        with _meta_lock(self.root):
            document = self.meta
            document.update(fields)
            self.write_json(META_FILE, document)
        return document

    def record_runbook(self, name, steps, command=None) -> dict:
        """Remember a runbook's steps (id, title) in workspace.json, in first-run order."""
        with _meta_lock(self.root):
            return self._record_runbook(name, steps, command)

    def _record_runbook(self, name, steps, command) -> dict:
        document = self.meta
        runbooks = [rb for rb in document.get('runbooks') or [] if rb.get('name') != name]
        entry = {'name': name, 'command': command or 'cfy upgrade {0}'.format(name),
                 'steps': [{'id': step.id, 'title': step.title} for step in steps]}
        position = [rb.get('name') for rb in document.get('runbooks') or []]
        if name in position:
            runbooks.insert(position.index(name), entry)
        else:
            runbooks.append(entry)
        document['runbooks'] = runbooks
        self.write_json(META_FILE, document)
        return entry

    # -- journal --------------------------------------------------------------------------

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(self.path(JOURNAL_FILE))
        return self._journal

    # -- lock -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator['Workspace']:
        """Hold the workspace lock; fail fast with ``workspace-locked`` if anyone else has it."""
        lock_path = self.path(LOCK_FILE)
        key = os.path.realpath(lock_path)
        with _held_guard:
            if key in _held_locks:
                raise self._locked_error()
            _held_locks.add(key)
        try:
            fd = open_private(lock_path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
            os.fchmod(fd, FILE_MODE)
            os.close(fd)
            process_lock = fasteners.InterProcessLock(lock_path)
            if not process_lock.acquire(blocking=False):
                raise self._locked_error()
            try:
                yield self
            finally:
                process_lock.release()
        finally:
            with _held_guard:
                _held_locks.discard(key)

    def _locked_error(self):
        return UpgradeError(
            'Upgrade {0} is locked: another `cfy upgrade` process is running on it '
            '({1}).'.format(self.upgrade_id, self.path(LOCK_FILE)),
            error_id='workspace-locked',
            hints=['Wait for the other `cfy upgrade` command to finish (or stop it), then '
                   'run this command again; it resumes from the journal.',
                   '`cfy upgrade status --upgrade-id {0}` shows where it stands.'.format(
                       self.upgrade_id)])


def _most_recent(ids, base=None):
    """(root, id) of the workspace with the latest created_at (ties: the greatest id)."""
    best = None
    for upgrade_id in ids:
        root = os.path.join(upgrades_dir(base), upgrade_id)
        try:
            with open(os.path.join(root, META_FILE), encoding='utf-8') as stream:
                document = json.load(stream)
            created = document.get('created_at') if isinstance(document, dict) else ''
            created = created if isinstance(created, str) else ''
        except (OSError, ValueError):
            created = ''
        if not created:
            try:
                created = clock.isoformat(datetime.datetime.fromtimestamp(
                    os.stat(root).st_mtime, clock.UTC))
            except OSError as error:
                if error.errno != errno.ENOENT:
                    raise
                continue
        candidate = (created, upgrade_id)
        if best is None or candidate > best:
            best = candidate
    if best is None:
        raise InputError('There is no upgrade workspace yet in {0}.'.format(
            upgrades_dir(base)), error_id='workspace-not-found',
            hints=['Start an upgrade with `cfy upgrade prepare`.'])
    return os.path.join(upgrades_dir(base), best[1]), best[1]
