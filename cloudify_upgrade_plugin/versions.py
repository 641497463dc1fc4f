"""Cloudify Manager versions and the rules that depend on them.

Owns: parsing manager and snapshot version strings (``Version``), the REST API prefix per
version, the upgrade-path rules (which source/target/mode combinations are possible), the
restore and snapshot-create request bodies per manager version, and the snapshot id rule.
Nothing here talks to a manager; ``manager/`` uses these rules.

Every rule cites the section of ``docs/manager-behaviour.md`` ("facts") it comes from.
"""
import functools
import re

from cloudify_upgrade_plugin.errors import InputError

MODE_NEW_HOST = 'new-host'
MODE_IN_PLACE = 'in-place'
MODES = (MODE_NEW_HOST, MODE_IN_PLACE)

# Community builds of 4.0 / 4.1 report calendar versions from their VERSION file
# (behaviour §2.2 "Community builds can report calendar versions"; §10: only these two are known).
CALENDAR_VERSIONS = {
    '17.3.31': '4.0.0',
    '17.6.30': '4.1.0',
}
# Cloudify's numbered releases never went past 7.x; a first component in this range is a
# calendar (year-based) community build.
_CALENDAR_MAJORS = range(17, 100)

_NUMBERS = r'\d+(?:\.\d+){0,3}'
# "4.1.0-p3-4.0.1": a 4.0.1 manager with patch 3 writes snapshot version 4.1.0-p3-4.0.1
# (behaviour §7.3); "4.0.1-p3" is our own normalised spelling of the same thing.
_PATCHED_SNAPSHOT_RE = re.compile(
    r'^(?P<claimed>{0})-p(?P<patch>\d+)-(?P<base>{0})$'.format(_NUMBERS))
_PATCHED_SHORT_RE = re.compile(r'^(?P<base>{0})-p(?P<patch>\d+)$'.format(_NUMBERS))
# Plain versions, optionally with a build/milestone suffix ("5.0.5-rc1", "4.4m5",
# "5.1.0.dev1") that is kept in ``suffix`` but ignored when comparing, exactly as the
# manager's own ManagerVersion ignores everything after the first "-" (behaviour §2.2).
_PLAIN_RE = re.compile(
    r'^(?P<base>{0})(?P<suffix>(?:[-+.]?(?:m|rc|dev|a|b|ga|build)[0-9a-z.]*|-[0-9A-Za-z.+_-]*)?)$'
    .format(_NUMBERS), re.IGNORECASE)


@functools.total_ordering
class Version(object):
    """A Cloudify Manager (or snapshot) version.

    Comparable with other ``Version`` objects and with version strings, hashable.
    ``str()`` gives the normalised version ("4.0" -> "4.0.0", "17.3.31" -> "4.0.0",
    "4.1.0-p3-4.0.1" -> "4.0.1-p3"); ``raw`` keeps the text it was parsed from.
    A patched version sorts after its base and before the next release.
    """

    __slots__ = ('_parts', '_patch', '_raw', '_calendar', '_suffix', '_claimed')

    def __init__(self, parts, patch=None, raw=None, calendar=None, suffix='',
                 claimed=None):
        parts = tuple(int(p) for p in parts)
        if not 1 <= len(parts) <= 4:
            raise ValueError('a version has 1 to 4 numeric parts: {0!r}'.format(parts))
        while len(parts) < 3:
            parts = parts + (0,)
        # "4.5.0.0" is 4.5.0; "4.5.0.1" keeps its fourth part
        if len(parts) == 4 and parts[3] == 0:
            parts = parts[:3]
        self._parts = parts
        self._patch = int(patch) if patch is not None else None
        self._calendar = calendar
        self._suffix = suffix or ''
        self._claimed = claimed
        self._raw = raw if raw is not None else self._normalised()

    # -- construction -----------------------------------------------------------------

    @classmethod
    def parse(cls, text):
        """Parse a version string as reported by a manager or found in a snapshot.

        Raises ``InputError('bad-version')`` for text that is not a version and
        ``InputError('unknown-calendar-version')`` for calendar builds we cannot map.
        """
        if isinstance(text, Version):
            return text
        if text is None:
            raise InputError('No version given.', error_id='bad-version')
        raw = str(text)
        cleaned = raw.strip()
        if cleaned[:1] in ('v', 'V'):
            cleaned = cleaned[1:]

        match = _PATCHED_SNAPSHOT_RE.match(cleaned)
        if match:
            base = cls._parse_plain(match.group('base'), raw)
            return cls(base._parts, patch=match.group('patch'), raw=raw,
                       calendar=base._calendar, claimed=match.group('claimed'))
        match = _PATCHED_SHORT_RE.match(cleaned)
        if match:
            base = cls._parse_plain(match.group('base'), raw)
            return cls(base._parts, patch=match.group('patch'), raw=raw,
                       calendar=base._calendar)
        return cls._parse_plain(cleaned, raw)

    @classmethod
    def _parse_plain(cls, text, raw):
        match = _PLAIN_RE.match(text)
        if not match:
            raise InputError(
                '"{0}" is not a Cloudify Manager version.'.format(raw),
                error_id='bad-version',
                hints=['Give a version like 4.0.1, 4.5.0.1 or 7.0.4.'])
        numbers = match.group('base')
        parts = [int(p) for p in numbers.split('.')]
        if parts[0] in _CALENDAR_MAJORS:
            # behaviour §2.2 / §10: community calendar builds need our own mapping table
            key = '.'.join(str(p) for p in (parts + [0, 0])[:3])
            mapped = CALENDAR_VERSIONS.get(key)
            if mapped is None:
                known = ', '.join('{0} (= {1})'.format(k, v)
                                  for k, v in sorted(CALENDAR_VERSIONS.items()))
                raise InputError(
                    '"{0}" is a community calendar build whose equivalent Cloudify version '
                    'is not known (known: {1}).'.format(raw, known),
                    error_id='unknown-calendar-version',
                    hints=['Pass the equivalent Cloudify version explicitly, e.g. '
                           '`--source-version 4.1.0` (or `--target-version`).'])
            return cls([int(p) for p in mapped.split('.')], raw=raw, calendar=key)
        return cls(parts, raw=raw, suffix=match.group('suffix'))

    # -- attributes -------------------------------------------------------------------

    @property
    def raw(self):
        """The text this version was parsed from."""
        return self._raw

    @property
    def parts(self):
        """Numeric parts, at least three: (4, 0, 1), (4, 5, 0, 1)."""
        return self._parts

    @property
    def major(self):
        return self._parts[0]

    @property
    def minor(self):
        return self._parts[1]

    @property
    def micro(self):
        return self._parts[2]

    service = micro

    @property
    def patch(self):
        """'p3' for "4.1.0-p3-4.0.1", else None."""
        return 'p{0}'.format(self._patch) if self._patch is not None else None

    @property
    def patch_number(self):
        return self._patch

    @property
    def is_patched(self):
        return self._patch is not None

    @property
    def is_calendar(self):
        """True when parsed from a community calendar build ("17.3.31")."""
        return self._calendar is not None

    @property
    def calendar(self):
        return self._calendar

    @property
    def suffix(self):
        """A build/milestone suffix ("-rc1", "m5"), ignored when comparing."""
        return self._suffix

    @property
    def claimed(self):
        """For "4.1.0-p3-4.0.1": the version the manager compares ("4.1.0"), else None."""
        return self._claimed

    @property
    def base(self):
        """This version without patch and suffix."""
        return Version(self._parts)

    @property
    def major_minor(self):
        return self._parts[:2]

    # -- protocol ---------------------------------------------------------------------

    def _key(self):
        patch = self._patch if self._patch is not None else -1
        return self._parts + (0,) * (4 - len(self._parts)) + (patch,)

    def _normalised(self):
        text = '.'.join(str(p) for p in self._parts)
        if self._patch is not None:
            text += '-p{0}'.format(self._patch)
        return text

    @staticmethod
    def _coerce(other):
        if isinstance(other, Version):
            return other
        if isinstance(other, str):
            return Version.parse(other)
        return None

    def __eq__(self, other):
        other = self._coerce(other)
        if other is None:
            return NotImplemented
        return self._key() == other._key()

    def __lt__(self, other):
        other = self._coerce(other)
        if other is None:
            return NotImplemented
        return self._key() < other._key()

    def __hash__(self):
        return hash(self._key())

    def __str__(self):
        return self._normalised()

    def __repr__(self):
        if self._raw != self._normalised():
            return 'Version({0!r}, raw={1!r})'.format(str(self), self._raw)
        return 'Version({0!r})'.format(str(self))


def as_version(value):
    """A ``Version`` from a ``Version`` or a string."""
    return Version.parse(value)


# -- REST API prefix ------------------------------------------------------------------

def api_version(version):
    """The ``api_version`` to give ``CloudifyClient`` for a manager of this version.

    behaviour §1.2 / §2.1: 3.x nginx proxies only v1|v2|v2.1; the stock 4.0.0 and 4.0.1 nginx
    regex proxies only up to v3 (v3.1 falls through to the UI even on 4.0.1); 4.1+ v3.1.
    """
    version = as_version(version)
    if version.major < 4:
        return 'v2.1'
    if version.major_minor == (4, 0):
        return 'v3'
    return 'v3.1'


def api_prefix(version):
    """'/api/v2.1' (3.x), '/api/v3' (4.0.0, 4.0.1) or '/api/v3.1' (4.1+); behaviour §1.2, §2.1."""
    return '/api/' + api_version(version)


# -- upgrade-path rules -----------------------------------------------------------------

MIN_TARGET = Version((4, 2, 0))
MIN_SOURCE = Version((3, 4, 0))
MIN_IN_PLACE_SOURCE = Version((4, 0, 1))
MIN_IN_PLACE_WITH_SSL_BACKUP = Version((4, 0, 0))
FIRST_TARGET_REFUSING_3X = Version((5, 0, 0))


def upgrade_problems(source, target, mode=None):
    """Everything that makes (source, target, mode) impossible: a list of (check_id, message).

    An empty list means the path itself is possible; the other checks (clean target,
    patches, credentials...) are made elsewhere.  ``mode`` is 'new-host', 'in-place' or
    None (mode-independent checks only).
    """
    source = as_version(source)
    target = as_version(target)
    if mode is not None and mode not in MODES:
        raise InputError('Unknown upgrade mode "{0}".'.format(mode), error_id='bad-mode',
                         hints=['Use one of: {0}.'.format(', '.join(MODES))])
    problems = []
    # facts scope + procedure 'Version relevance': sources are 3.4.2 and newer
    if source < MIN_SOURCE:
        problems.append((
            'source-version-unsupported',
            'Source manager {0} is older than 3.4; only 3.4.2 and newer can be upgraded '
            'through a snapshot.'.format(source)))
    # procedure 'Version relevance': the new manager must be 4.2 or newer
    if target < MIN_TARGET:
        problems.append((
            'target-version-too-old',
            'Target version {0} is older than 4.2; upgrades must go to 4.2 or newer.'.format(
                target)))
    # behaviour §3.6.1: every target refuses a snapshot newer than itself
    if target.base < source.base:
        problems.append((
            'target-older-than-source',
            'Target version {0} is older than the source {1}; a manager refuses snapshots '
            'of a newer manager.'.format(target, source)))
    # behaviour §1.4 / §3.6.3: 4.2-4.6 restore 3.x snapshots, 5.0.0+ refuse anything below 4.0.0
    if source.major < 4 and target >= FIRST_TARGET_REFUSING_3X:
        problems.append((
            'source-3x-needs-stepping-stone',
            'A {0} snapshot can only be restored on a 4.2-4.6 manager; {1} refuses snapshots '
            'older than 4.0.0. Upgrade to a 4.x (4.2-4.6) manager first, then from that '
            'manager to {1}.'.format(source, target)))
    # procedure 'In-place upgrade': "only supported in 4.0.1+"; but procedure step P2
    # covers a 4.0.0 in-place upgrade whose certificates (not in 4.0.0 snapshots, behaviour
    # §7.1) are copied off the host by hand ("contact support"), which this tool automates:
    # 4.0.0 is allowed; patch-1 is enforced by the patch-level checks and the ssl backup by
    # prepare / the host-backups check of in-place.  Only 3.x stays refused.
    if mode == MODE_IN_PLACE and source.base < MIN_IN_PLACE_WITH_SSL_BACKUP:
        problems.append((
            'in-place-unsupported',
            'An in-place upgrade is only supported from 4.0.1 on (4.0.0 with patch-1 and a '
            'backup of /etc/cloudify/ssl); the source is {0}. Use a new-host '
            'upgrade.'.format(source)))
    return problems


check_path = upgrade_problems


def needs_patch(source):
    """The patch a source must have before its snapshot is usable, or None.

    behaviour §7.3 / §9.9: 4.0.0 needs 'patch-1' (snapshot version 4.1.0-p1-4.0.0) and 4.0.1
    needs 'update-3' (snapshot version 4.1.0-p3-4.0.1), otherwise agents are restored
    without their tenant.  A manager's /version never shows the patch: ``source`` must be
    the snapshot's ``snapshot_version`` (metadata.json) to tell a patched one apart.
    """
    source = as_version(source)
    if source.parts[:3] == (4, 0, 0) and (source.patch_number or 0) < 1:
        return 'patch-1'
    if source.parts[:3] == (4, 0, 1) and (source.patch_number or 0) < 3:
        return 'update-3'
    return None


def patch_problem(source):
    """``needs_patch`` as a (check_id, message) pair, or None."""
    source = as_version(source)
    patch = needs_patch(source)
    if patch is None:
        return None
    return (
        '{0}-missing'.format(patch),
        'Cloudify {0} without {1}: agents in its snapshot carry no tenant, so they are '
        'restored without it (the snapshot version would be 4.1.0-p{2}-{0} when patched). '
        'Apply {1} on the old manager first (contact Cloudify support).'.format(
            source.base, patch, 1 if patch == 'patch-1' else 3))


def certificates_restorable(mode):
    """Whether the snapshot's certificates may be restored for this mode.

    behaviour §3.8 (last bullet) / §9.5: only for an in-place upgrade on the same IP or
    hostname; restoring them on another address breaks the agents.
    """
    return mode == MODE_IN_PLACE


# -- request bodies ---------------------------------------------------------------------

DEFAULT_RESTORE_TIMEOUT = 300


def restore_body(target, force=False, restore_certificates=False, no_reboot=False,
                 snapshot_version=None, timeout=DEFAULT_RESTORE_TIMEOUT, tenant_name=None):
    """The JSON body of ``POST /snapshots/<id>/restore`` for a target manager version.

    behaviour §1.1 / §3.5: ``force`` is read with dict indexing on every version (missing ->
    500), so it is always sent; ``recreate_deployments_envs`` is required on 3.4.2 - 5.2.x
    and was removed in 6.0; 4.0.x also requires the ``tenant_name`` key; 4.5.0-4.5.1 require
    ``ignore_plugin_failure``.  For 4.1 - 5.2.x the facts' maximally compatible body is
    used (extra keys are ignored everywhere, behaviour §1.1).  Booleans are JSON booleans.
    """
    target = as_version(target)
    force = bool(force)
    restore_certificates = bool(restore_certificates)
    no_reboot = bool(no_reboot)
    # behaviour §3.5 (4.1 row) and observed-7.0 §3.2: no_reboot without
    # restore_certificates is a 400 on every version that knows it
    if no_reboot and not restore_certificates:
        raise InputError('no_reboot only makes sense when restoring certificates.',
                         error_id='no-reboot-without-certificates',
                         hints=['Drop no_reboot, or restore the certificates too.'])
    supports_certificates = target >= '4.1'
    # behaviour §3.5: restore_certificates exists from 4.1 (4.0.x/3.x would silently ignore it)
    if restore_certificates and not supports_certificates:
        raise InputError('A {0} manager cannot restore certificates from a snapshot.'.format(
            target), error_id='restore-certificates-unsupported')
    # behaviour §7.1: 4.0.0 (and 3.x) snapshots carry no ssl/ directory
    if restore_certificates and snapshot_version is not None:
        snap = as_version(snapshot_version)
        if snap.base < MIN_IN_PLACE_SOURCE:
            raise InputError(
                'A {0} snapshot contains no certificates (no ssl/ directory); they cannot '
                'be restored from it.'.format(snap), error_id='no-certificates-in-snapshot',
                hints=['Restore the certificates of /etc/cloudify/ssl from a host backup.'])

    body = {'force': force}
    if target.major < 6:
        # behaviour §3.5: required 3.4.2 - 5.2.x, removed in 6.0 (RD-1945, behaviour §9.1)
        body['recreate_deployments_envs'] = True
    if target.major_minor == (4, 0):
        # behaviour §3.5 (4.0, 4.0.1 row): the key must exist; null for 4.x snapshots
        body['tenant_name'] = tenant_name
    if supports_certificates:
        body['restore_certificates'] = restore_certificates
        body['no_reboot'] = no_reboot
    if (4, 1) <= target.major_minor < (6, 0):
        # behaviour §1.1: required on 4.5.0-4.5.1, optional 4.5.5-5.0.x, ignored elsewhere;
        # the maximally compatible 4.1-5.2.x body carries it as false
        body['ignore_plugin_failure'] = False
    body['timeout'] = int(timeout)
    return body


def snapshot_create_body(source, legacy=None):
    """The JSON body of ``PUT /snapshots/<id>`` for a source manager version.

    behaviour §3.1: no key is required on any version, but 3.4.2 needs a JSON object; only
    keys the version knows are sent: ``include_credentials`` everywhere,
    ``include_metrics`` false until it was dropped in 5.0.5, ``include_logs`` /
    ``include_events`` from 4.3, ``queue`` false from 4.5 (fail rather than wait behind
    other executions: the plugin checks the source is idle itself).

    7.0: ``legacy`` defaults to True in 7.0.0 and False in 7.0.4 (behaviour §3.1).  We always
    ask for a legacy snapshot: it is the one format every target restores with the
    validator and the clean-target check (behaviour §3.6.5: the new 7.0.4 per-entity format
    skips both), and its metadata.json is what ``snapshot.inspect`` reads for every other
    version.  Pass ``legacy=False`` to get the 7.0.4 per-entity format.
    """
    source = as_version(source)
    body = {'include_credentials': True}
    if source < '5.0.5':
        body['include_metrics'] = False
    if source >= '4.3':
        body['include_logs'] = True
        body['include_events'] = True
    if source >= '4.5':
        body['queue'] = False
    if source >= '7.0':
        body['legacy'] = True if legacy is None else bool(legacy)
    return body


# -- snapshot ids -----------------------------------------------------------------------

_SNAPSHOT_ID_RE = re.compile(r'^[A-Za-z][A-Za-z0-9._-]*$')
MAX_SNAPSHOT_ID_LENGTH = 256


def snapshot_id_problem(snapshot_id):
    """Why ``snapshot_id`` is not a valid snapshot id, or None.

    behaviour §3.1: from 4.4 ids must be non-empty, at most 256 characters, only
    [A-Za-z0-9._-] and start with a letter; the strict rule is applied for every version
    so that a snapshot id works on any target.
    """
    if not snapshot_id:
        return 'a snapshot id must not be empty'
    if len(snapshot_id) > MAX_SNAPSHOT_ID_LENGTH:
        return 'a snapshot id must be at most {0} characters (got {1})'.format(
            MAX_SNAPSHOT_ID_LENGTH, len(snapshot_id))
    if not snapshot_id[0].isascii() or not snapshot_id[0].isalpha():
        return 'a snapshot id must start with a letter: "{0}"'.format(snapshot_id)
    if not _SNAPSHOT_ID_RE.match(snapshot_id):
        return ('a snapshot id may only contain letters, digits, ".", "-" and "_": '
                '"{0}"'.format(snapshot_id))
    return None
