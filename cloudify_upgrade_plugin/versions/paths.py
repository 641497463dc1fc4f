"""Upgrade paths: which (source, target, mode) combinations are possible, and patches.

Each path rule is declared once in ``PATH_RULES`` with the check id it is reported under
(the id ``--waive`` names) and whether a waiver may override it (a rule that describes what
the target manager refuses whatever the operator says may not), so ``PATH_PROBLEM_IDS``,
``PATH_UNWAIVABLE`` and ``PATCH_PROBLEM_IDS`` are derived from the rules, never listed by
hand.  ``NEWEST_KNOWN_RELEASE`` is the newest manager release the plugin knows the rules
of; ``path_advice`` says where a possible path is not the vendor-tested one (behaviour §12.8).
Also the snapshot id rule.
"""
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from cloudify_upgrade_plugin.errors import InputError
from cloudify_upgrade_plugin.versions.rules import MODE_IN_PLACE, MODES
from cloudify_upgrade_plugin.versions.version import Version, as_version

MIN_TARGET = Version((4, 2, 0))
MIN_SOURCE = Version((3, 4, 0))
MIN_IN_PLACE_WITH_SSL_BACKUP = Version((4, 0, 0))
FIRST_TARGET_REFUSING_3X = Version((5, 0, 0))
# The newest release whose rules the plugin knows: cloudify 7.0.5 is the CLI it runs in, and
# the restore workflow of the 7.0.5 build branch is the 7.0.4 one (cloudify-manager@7.0.4
# and 7.0.5-build mgmtworker/cloudify_system_workflows/snapshots/snapshot_restore.py).
NEWEST_KNOWN_RELEASE = Version((7, 0, 5))
# behaviour §12.8: the vendor's 7.0-era system tests restore into the newest manager only from
# 5.1.0 or later (cloudify-system-tests SUPPORTED_RELEASES)
VENDOR_TESTED_SOURCE = Version((5, 1, 0))
VENDOR_TESTED_FROM_TARGET = Version((6, 0, 0))
# behaviour §12.8: `cfy_manager upgrade` is tested in place from 6.1 to 7.0 on all-in-one managers
CFY_MANAGER_UPGRADE_FROM = Version((6, 1, 0))


@dataclass(frozen=True)
class PathRule:
    """One reason a path is impossible: its check id, when it applies, what to say, and
    why it cannot be waived (None: a waiver may override it)."""

    id: str
    applies: Callable[[Version, Version, Optional[str]], bool]
    message: str        # formatted with source= and target=
    not_waivable: Optional[str] = None


PATH_RULES = (
    # behaviour §0 scope + procedure 'Version relevance': sources are 3.4.2 and newer
    PathRule('source-version-unsupported',
             lambda source, target, mode: source < MIN_SOURCE,
             'Source manager {source} is older than 3.4; only 3.4.2 and newer can be upgraded '
             'through a snapshot.'),
    # procedure 'Version relevance': the new manager must be 4.2 or newer
    PathRule('target-version-too-old',
             lambda source, target, mode: target < MIN_TARGET,
             'Target version {target} is older than 4.2; upgrades must go to 4.2 or newer.'),
    # behaviour §3.6.1: every target refuses a snapshot newer than itself
    PathRule('target-older-than-source',
             lambda source, target, mode: target.base < source.base,
             'Target version {target} is older than the source {source}; a manager refuses '
             'snapshots of a newer manager.',
             not_waivable='a manager refuses a snapshot of a newer manager (behaviour §3.6.1)'),
    # behaviour §1.4 / §3.6.3: 4.2-4.6 restore 3.x snapshots, 5.0.0+ refuse anything below 4.0.0
    # (and 7.0 restores them as nothing, behaviour §12.1)
    PathRule('source-3x-needs-stepping-stone',
             lambda source, target, mode: source.major < 4 and
             target >= FIRST_TARGET_REFUSING_3X,
             'A {source} snapshot can only be restored on a 4.2-4.6 manager; {target} refuses '
             'snapshots older than 4.0.0. Upgrade to a 4.x (4.2-4.6) manager first, then from '
             'that manager to {target}.',
             not_waivable='5.0 and later managers refuse 3.x snapshots, and 7.0 restores '
                          'them as nothing (behaviour §3.6.3, §12.1)'),
    # issue 14 item 6: the rules of a release the plugin does not know are guesses
    PathRule('target-version-unknown',
             lambda source, target, mode: target.base > NEWEST_KNOWN_RELEASE,
             'Target version {target} is newer than any release this plugin knows (the '
             'newest is ' + str(NEWEST_KNOWN_RELEASE) + '): its restore route, request bodies '
             'and credentials rules are unknown. Use a plugin release that knows {target}.',
             not_waivable='the plugin does not know the rules of releases after ' +
                          str(NEWEST_KNOWN_RELEASE) + '; a waiver cannot teach them'),
    # procedure 'In-place upgrade': "only supported in 4.0.1+"; but procedure step P2
    # covers a 4.0.0 in-place upgrade whose certificates (not in 4.0.0 snapshots, behaviour
    # §7.1) are copied off the host by hand ("contact support"), which this tool automates:
    # 4.0.0 is allowed; patch-1 is enforced by the patch-level checks and the ssl backup by
    # prepare / the host-backups check of in-place.  Only 3.x stays refused.
    PathRule('in-place-unsupported',
             lambda source, target, mode: mode == MODE_IN_PLACE and
             source.base < MIN_IN_PLACE_WITH_SSL_BACKUP,
             'An in-place upgrade is only supported from 4.0.1 on (4.0.0 with patch-1 and a '
             'backup of /etc/cloudify/ssl); the source is {source}. Use a new-host '
             'upgrade.'),
)
PATH_PROBLEM_IDS = tuple(rule.id for rule in PATH_RULES)
PATH_UNWAIVABLE: Dict[str, str] = {rule.id: rule.not_waivable for rule in PATH_RULES
                                   if rule.not_waivable}
PATH_ADVICE_IDS = ('path-not-vendor-tested',)


def upgrade_problems(source, target, mode: Optional[str] = None) -> List[Tuple[str, str]]:
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
    return [(rule.id, rule.message.format(source=source, target=target))
            for rule in PATH_RULES if rule.applies(source, target, mode)]


def path_advice(source, target) -> List[Tuple[str, str]]:
    """Possible paths that are not the vendor-tested one: a list of (check_id, message).

    behaviour §12.8: the vendor's 7.0-era tests restore into 6.0+ managers only from 5.1.0 or
    later sources; older sources should go through a 5.1 manager first.
    """
    source = as_version(source)
    target = as_version(target)
    advice = []
    if source.base < VENDOR_TESTED_SOURCE and target >= VENDOR_TESTED_FROM_TARGET:
        advice.append((
            'path-not-vendor-tested',
            'Cloudify tests snapshot restores into {0} managers only from 5.1.0 or later '
            'sources (behaviour §12.8); {1} -> {0} is not a path the vendor tests. The '
            'vendor-tested stepping stone is a 5.1 manager: upgrade {1} to 5.1 first, then '
            '5.1 to {0}.'.format(target, source)))
    return advice


def cfy_manager_upgrade_applies(source) -> bool:
    """behaviour §12.8: `cfy_manager upgrade` (in place, RPM) is the vendor-tested way from
    6.1+ all-in-one managers to 7.0."""
    return as_version(source).base >= CFY_MANAGER_UPGRADE_FROM


# behaviour §7.3 / §9.9: the patch a 4.0.x manager needs before its snapshot is usable, and the
# patch number its patched snapshot_create.py writes (4.1.0-p<N>-<version>).
PATCHES = {(4, 0, 0): ('patch-1', 1), (4, 0, 1): ('update-3', 3)}
PATCH_PROBLEM_IDS = tuple('{0}-missing'.format(name) for name, _ in PATCHES.values())


def needs_patch(source) -> Optional[str]:
    """The patch a source must have before its snapshot is usable, or None.

    behaviour §7.3 / §9.9: 4.0.0 needs 'patch-1' (snapshot version 4.1.0-p1-4.0.0) and 4.0.1
    needs 'update-3' (snapshot version 4.1.0-p3-4.0.1), otherwise agents are restored
    without their tenant.  A manager's /version never shows the patch: ``source`` must be
    the snapshot's ``snapshot_version`` (metadata.json) to tell a patched one apart.
    """
    source = as_version(source)
    patch = PATCHES.get(source.parts[:3])
    if patch is not None and (source.patch_number or 0) < patch[1]:
        return patch[0]
    return None


def patch_number(patch: str) -> int:
    """The number a patched snapshot version carries for ``patch`` (1 for patch-1)."""
    return next(number for name, number in PATCHES.values() if name == patch)


def patch_problem(source) -> Optional[Tuple[str, str]]:
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
            source.base, patch, patch_number(patch)))


# -- snapshot ids and other names ---------------------------------------------------------

_NAME_RE = re.compile(r'[A-Za-z][A-Za-z0-9._-]*')
MAX_SNAPSHOT_ID_LENGTH = 256


def name_problem(value, what: str = 'a snapshot id') -> Optional[str]:
    """Why ``value`` is not a valid Cloudify name (``what``: how to call it), or None.

    The REST service's own rule for the ids and names it creates (snapshots, tenants,
    users; cloudify-manager@7.0.4 rest-service/manager_rest/rest/rest_utils.py
    ``validate_inputs``; behaviour §3.1 from 4.4): non-empty, at most 256 characters, only
    [A-Za-z0-9._-] and starting with a letter.  The whole value must match (a trailing
    newline is refused too); the strict rule is applied for every version so that a name
    works on any target.
    """
    if not isinstance(value, str) or not value:
        return '{0} must not be empty'.format(what)
    if len(value) > MAX_SNAPSHOT_ID_LENGTH:
        return '{0} must be at most {1} characters (got {2})'.format(
            what, MAX_SNAPSHOT_ID_LENGTH, len(value))
    if not value[0].isascii() or not value[0].isalpha():
        return '{0} must start with a letter: {1!r}'.format(what, value)
    if not _NAME_RE.fullmatch(value):
        return '{0} may only contain letters, digits, ".", "-" and "_": {1!r}'.format(
            what, value)
    return None


def snapshot_id_problem(snapshot_id: str) -> Optional[str]:
    """Why ``snapshot_id`` is not a valid snapshot id, or None (``name_problem``)."""
    return name_problem(snapshot_id, 'a snapshot id')
