"""The ``Version`` type: Cloudify Manager and snapshot version strings, parsed and ordered.

Owns parsing what managers report and what snapshots record (calendar builds of the
community edition, build suffixes, the "4.1.0-p3-4.0.1" spelling of a patched 4.0.1) and
the ordering every version rule relies on.  The rules themselves are in ``rules.py``,
``paths.py`` and ``bodies.py`` of this package.
"""
import functools
import re
from typing import Optional, Tuple

from cloudify_upgrade_plugin.errors import InputError

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
    r'(?P<claimed>{0})-p(?P<patch>\d+)-(?P<base>{0})'.format(_NUMBERS))
_PATCHED_SHORT_RE = re.compile(r'(?P<base>{0})-p(?P<patch>\d+)'.format(_NUMBERS))
# Plain versions, optionally with a build/milestone suffix ("5.0.5-rc1", "4.4m5",
# "5.1.0.dev1") that is kept in ``suffix`` but ignored when comparing, exactly as the
# manager's own ManagerVersion ignores everything after the first "-" (behaviour §2.2).
_PLAIN_RE = re.compile(
    r'(?P<base>{0})(?P<suffix>(?:[-+.]?(?:m|rc|dev|a|b|ga|build)[0-9a-z.]*|-[0-9A-Za-z.+_-]*)?)'
    .format(_NUMBERS), re.IGNORECASE)


@functools.total_ordering
class Version:
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
    def parse(cls, text) -> 'Version':
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

        match = _PATCHED_SNAPSHOT_RE.fullmatch(cleaned)
        if match:
            base = cls._parse_plain(match.group('base'), raw)
            return cls(base._parts, patch=match.group('patch'), raw=raw,
                       calendar=base._calendar, claimed=match.group('claimed'))
        match = _PATCHED_SHORT_RE.fullmatch(cleaned)
        if match:
            base = cls._parse_plain(match.group('base'), raw)
            return cls(base._parts, patch=match.group('patch'), raw=raw,
                       calendar=base._calendar)
        return cls._parse_plain(cleaned, raw)

    @classmethod
    def _parse_plain(cls, text, raw):
        match = _PLAIN_RE.fullmatch(text)
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
                    hints=['For --target-version, give the equivalent Cloudify version '
                           '(e.g. 4.1.0 for 17.12.1).',
                           'A manager that reports an unknown calendar build is not '
                           'supported: upgrade it to a known build (or to 4.1) first.'])
            return cls([int(p) for p in mapped.split('.')], raw=raw, calendar=key)
        return cls(parts, raw=raw, suffix=match.group('suffix'))

    # -- attributes -------------------------------------------------------------------

    @property
    def raw(self) -> str:
        """The text this version was parsed from."""
        return self._raw

    @property
    def parts(self) -> Tuple[int, ...]:
        """Numeric parts, at least three: (4, 0, 1), (4, 5, 0, 1)."""
        return self._parts

    @property
    def major(self) -> int:
        return self._parts[0]

    @property
    def minor(self) -> int:
        return self._parts[1]

    @property
    def micro(self) -> int:
        return self._parts[2]

    service = micro

    @property
    def patch(self) -> Optional[str]:
        """'p3' for "4.1.0-p3-4.0.1", else None."""
        return 'p{0}'.format(self._patch) if self._patch is not None else None

    @property
    def patch_number(self) -> Optional[int]:
        return self._patch

    @property
    def is_patched(self) -> bool:
        return self._patch is not None

    @property
    def is_calendar(self) -> bool:
        """True when parsed from a community calendar build ("17.3.31")."""
        return self._calendar is not None

    @property
    def calendar(self) -> Optional[str]:
        return self._calendar

    @property
    def suffix(self) -> str:
        """A build/milestone suffix ("-rc1", "m5"), ignored when comparing."""
        return self._suffix

    @property
    def claimed(self) -> Optional[str]:
        """For "4.1.0-p3-4.0.1": the version the manager compares ("4.1.0"), else None."""
        return self._claimed

    @property
    def base(self) -> 'Version':
        """This version without patch and suffix."""
        return Version(self._parts)

    @property
    def major_minor(self) -> Tuple[int, int]:
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


def as_version(value) -> Version:
    """A ``Version`` from a ``Version`` or a string."""
    return Version.parse(value)
