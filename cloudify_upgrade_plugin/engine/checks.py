"""Checks with severities, run and reported together, and named waivers.

- ``Check(id, severity, status, message, details=None)``: severity ``block|warn|info``,
  status ``pass|warn|fail|waived``; ``to_dict()`` is the contract's ``checks[]`` item.
- ``CheckSet``: runs check functions and collects every result; a function that raises becomes
  a failed check (never a crash), so the operator sees every problem at once.
- ``CheckRegistry``: where a command's check functions are registered, with their id and
  severity (``@REGISTRY.check('source-healthy', BLOCK)``, which makes a ``CheckSpec``);
  ``ids`` - the catalogue of ids ``--waive`` may name - is derived from the registrations,
  including the ``also`` ids a check may report instead of its own.
  A check may be registered as one that cannot be waived (``unwaivable={id: why}``): it
  describes what a manager refuses whatever the operator says; ``unwaivable`` maps those ids
  to the reason.  ``declare`` registers an id a step builds itself (checks made after the
  managers changed), so that it is in the catalogue too.
- ``Waiver(check, reason)``: one ``--waive ID --reason TEXT``.
- ``validate_waivers(waivers, known_ids, unwaivable)``: what every command does once, before
  anything changes: an unknown id is ``InputError('unknown-waiver')``, an id that cannot be
  waived ``InputError('waiver-not-allowed')`` naming why, a waiver without a reason
  ``InputError('waiver-needs-reason')`` (all exit 2).
- ``evaluate(checks, waivers, journal=None, known_ids=None)``: applies the waivers (each one
  names one check id and carries a reason), journals every waiver actually used (``waived``,
  details ``check``, ``reason``, ``message``), and raises ``BlockedError`` (exit 3) listing
  every failed blocking check that was not waived; its ``document`` carries ``checks`` for the
  ``--json`` output, and its hints offer only checks that can be waived.  A waiver for an
  unknown check id is ``InputError('unknown-waiver')``; one naming a check that cannot be
  waived ``InputError('waiver-not-allowed')``.
"""
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple, Union

from cloudify_upgrade_plugin.errors import BlockedError, InputError, UpgradeError
from cloudify_upgrade_plugin.log import get_logger

BLOCK, WARN, INFO = 'block', 'warn', 'info'
SEVERITIES = (BLOCK, WARN, INFO)
PASS, FAIL, WAIVED = 'pass', 'fail', 'waived'
STATUSES = (PASS, WARN, FAIL, WAIVED)


class Check:
    """The result of one check."""

    def __init__(self, id, severity, status, message, details=None, waiver=None,
                 not_waivable=None):
        if severity not in SEVERITIES:
            raise ValueError('check {0}: severity {1!r} is not one of {2}'.format(
                id, severity, SEVERITIES))
        if status not in STATUSES:
            raise ValueError('check {0}: status {1!r} is not one of {2}'.format(
                id, status, STATUSES))
        self.id = id
        self.severity = severity
        self.status = status
        self.message = message
        self.details = details or {}
        self.waiver = waiver
        # why a waiver cannot override it (what a manager refuses whatever the operator
        # says), or None: it may be waived
        self.not_waivable = not_waivable

    def __repr__(self):
        return '<Check {0} {1}/{2}: {3}>'.format(self.id, self.severity, self.status,
                                                 self.message)

    @property
    def waivable(self) -> bool:
        return not self.not_waivable

    @property
    def blocking_failure(self) -> bool:
        return self.severity == BLOCK and self.status == FAIL

    def to_dict(self) -> dict:
        doc = {'id': self.id, 'severity': self.severity, 'status': self.status,
               'message': self.message}
        if self.details:
            doc['details'] = self.details
        if self.waiver:
            doc['waiver'] = dict(self.waiver)
        if self.not_waivable:
            doc['not_waivable'] = self.not_waivable
        return doc

    def waived(self, reason) -> 'Check':
        if not self.waivable:
            raise ValueError('check {0} cannot be waived'.format(self.id))
        return Check(self.id, self.severity, WAIVED, self.message, self.details,
                     waiver={'reason': reason})


# What a check function returns: a Check, a bool, or (status, message[, details]).
CheckOutcome = Union[Check, bool, Tuple]


@dataclass(frozen=True)
class Waiver:
    """One waived check: ``--waive check --reason reason`` (recorded in the journal)."""

    check: str
    reason: str

    @classmethod
    def of(cls, value: Union['Waiver', Mapping]) -> 'Waiver':
        """A ``Waiver`` from a ``Waiver`` or a ``{'check', 'reason'}`` mapping."""
        if isinstance(value, Waiver):
            return value
        return cls(value.get('check'), value.get('reason') or '')


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: its id, severity, function, the ids it may report instead, and
    those of its ids that cannot be waived (id -> why)."""

    id: str
    severity: str
    func: Optional[Callable]
    also: Tuple[str, ...] = ()
    unwaivable: Tuple[Tuple[str, str], ...] = ()

    def __call__(self, *args, **kwargs):
        return self.func(*args, **kwargs)

    @property
    def ids(self) -> Tuple[str, ...]:
        return (self.id,) + self.also

    def not_waivable(self, check_id: str) -> Optional[str]:
        """Why ``check_id`` cannot be waived, or None."""
        return dict(self.unwaivable).get(check_id)


class CheckRegistry:
    """The checks of one command, registered with the functions that make them."""

    def __init__(self, name: str):
        self.name = name
        self._specs = {}

    def check(self, check_id: str, severity: str, also: Iterable[str] = (),
              unwaivable: Optional[Mapping[str, str]] = None
              ) -> Callable[[Callable], CheckSpec]:
        """Decorator: register the function as check ``check_id``; returns its CheckSpec.

        ``unwaivable``: {id: why} for the ids (``check_id`` or ``also``) that describe what
        a manager refuses whatever the operator says; ``--waive`` on them is refused.
        """
        if severity not in SEVERITIES:
            raise ValueError('check {0}: severity {1!r} is not one of {2}'.format(
                check_id, severity, SEVERITIES))
        unwaivable = tuple(sorted((unwaivable or {}).items()))
        unknown = {cid for cid, _ in unwaivable} - {check_id, *also}
        if unknown:
            raise ValueError('check {0}: unwaivable ids {1} are not its ids'.format(
                check_id, sorted(unknown)))

        def register(func: Optional[Callable]) -> CheckSpec:
            if check_id in self._specs:
                raise ValueError('{0} checks: {1} is registered twice'.format(
                    self.name, check_id))
            spec = CheckSpec(check_id, severity, func, tuple(also), unwaivable)
            self._specs[check_id] = spec
            return spec
        return register

    def declare(self, check_id: str, severity: str, why_not_waivable: Optional[str] = None
                ) -> CheckSpec:
        """Register an id whose ``Check`` a step builds itself (no function here)."""
        unwaivable = {check_id: why_not_waivable} if why_not_waivable else None
        return self.check(check_id, severity, unwaivable=unwaivable)(None)

    def __iter__(self):
        return iter(self._specs.values())

    @property
    def ids(self) -> FrozenSet[str]:
        """Every id these checks may report: the catalogue ``--waive`` may name."""
        return frozenset(check_id for spec in self for check_id in spec.ids)

    @property
    def unwaivable(self) -> Dict[str, str]:
        """{id: why} of the ids ``--waive`` may not name."""
        return {check_id: why for spec in self for check_id, why in spec.unwaivable}


class CheckSet:
    """Collects check results; ``run`` turns a raising check function into a failed check.

    A check function returns a ``Check``, a ``(status, message)`` or
    ``(status, message, details)`` tuple, or a bool (True = pass).
    """

    def __init__(self, catalogue=None):
        self.results = []
        self.catalogue = set(catalogue or ())

    def __iter__(self):
        return iter(self.results)

    def __len__(self):
        return len(self.results)

    @property
    def known_ids(self) -> set:
        return self.catalogue.union(check.id for check in self.results)

    def add(self, check) -> Check:
        self.results.append(check)
        return check

    def run_check(self, spec: CheckSpec, *args, **kwargs) -> Check:
        """Run the registered check ``spec`` with these arguments (see ``run``); a result
        under one of the spec's unwaivable ids cannot be waived."""
        check = self.run(spec.id, spec.severity, spec.func, *args, **kwargs)
        if spec.not_waivable(check.id) and not check.not_waivable:
            check.not_waivable = spec.not_waivable(check.id)
        return check

    def run(self, check_id, severity, func, *args, **kwargs) -> Check:
        """Run ``func(*args, **kwargs)`` as check ``check_id``; always returns a Check."""
        self.catalogue.add(check_id)
        try:
            check = _as_check(check_id, severity, func(*args, **kwargs))
        except UpgradeError as error:
            check = Check(check_id, severity, FAIL, error.message,
                          {'error_id': error.error_id, 'hints': list(error.hints)})
        except Exception as error:
            get_logger().debug('check %s raised', check_id, exc_info=True)
            check = Check(check_id, severity, FAIL,
                          'The check could not run: {0}: {1}'.format(
                              type(error).__name__, error))
        return self.add(check)

    def to_list(self) -> List[dict]:
        return [check.to_dict() for check in self.results]


def _as_check(check_id, severity, outcome):
    if isinstance(outcome, Check):
        return outcome
    if isinstance(outcome, bool):
        return Check(check_id, severity, PASS if outcome else FAIL,
                     'ok' if outcome else 'failed')
    if isinstance(outcome, tuple) and len(outcome) in (2, 3):
        status, message = outcome[0], outcome[1]
        details = outcome[2] if len(outcome) == 3 else None
        return Check(check_id, severity, status, message, details)
    raise TypeError('check {0} returned {1!r}; expected a Check, a bool or a (status, '
                    'message[, details]) tuple'.format(check_id, outcome))


def validate_waivers(waivers, known_ids: Iterable[str],
                     unwaivable: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """Check every waiver against the ids a command can raise; {check id: reason}.

    Run once per command before anything changes (so that no later step can refuse a
    waiver the command accepted): an id outside ``known_ids`` is
    ``InputError('unknown-waiver')``, an id of ``unwaivable`` (id -> why) is
    ``InputError('waiver-not-allowed')``, an empty reason ``InputError('waiver-needs-reason')``.
    """
    known = set(known_ids or ())
    unwaivable = dict(unwaivable or {})
    reasons = {}
    for waiver in waivers or ():
        waiver = Waiver.of(waiver)
        check_id, reason = waiver.check, (waiver.reason or '').strip()
        if check_id not in known:
            raise InputError(
                '--waive {0}: there is no check with that id. Known check ids: {1}.'.format(
                    check_id, ', '.join(sorted(known)) or '(none)'),
                error_id='unknown-waiver',
                hints=['Use one of the ids listed (they also appear in the checks of '
                       '`cfy upgrade plan --json`).'],
                details={'known_ids': sorted(known)})
        if check_id in unwaivable:
            raise InputError(
                '--waive {0}: this check cannot be waived: {1}'.format(
                    check_id, unwaivable[check_id]),
                error_id='waiver-not-allowed',
                hints=['Fix what the check describes: a waiver would not change what the '
                       'manager does.'],
                details={'check': check_id})
        if not reason:
            raise InputError('--waive {0} needs --reason TEXT.'.format(check_id),
                             error_id='waiver-needs-reason',
                             hints=['Say why it is safe to go on despite the failed check.'])
        reasons[check_id] = reason
    return reasons


def evaluate(checks, waivers=(), journal=None, known_ids=None, step='checks') -> List[Check]:
    """Apply ``waivers`` to ``checks``; return the resulting list of Check.

    ``waivers``: ``Waiver`` objects (cli.py builds them from ``--waive`` and ``--reason``)
    or ``{'check': id, 'reason': text}`` mappings.  ``known_ids`` (default: the ids of
    ``checks``, plus a CheckSet's catalogue) is every id a waiver may name.  Raises
    ``InputError('unknown-waiver')``, ``InputError('waiver-not-allowed')`` or
    ``BlockedError`` (exit 3) as described in the module docstring.
    """
    results = list(checks)
    known = set(known_ids or ())
    known.update(check.id for check in results)
    if isinstance(checks, CheckSet):
        known.update(checks.known_ids)
    unwaivable = {check.id: check.not_waivable for check in results if check.not_waivable}
    reasons = validate_waivers(waivers, known, unwaivable)

    logger = get_logger()
    evaluated = []
    for check in results:
        if check.id in reasons and check.status == FAIL:
            check = check.waived(reasons[check.id])
            if journal is not None:
                journal.append(step, 'waived', {'check': check.id, 'reason': reasons[check.id],
                                                'message': check.message,
                                                'severity': check.severity})
            logger.warning('Check %s failed and is WAIVED (%s): %s', check.id,
                           reasons[check.id], check.message)
        elif check.id in reasons:
            logger.info('Waiver for check %s not needed: it did not fail.', check.id)
        evaluated.append(check)

    blocking = [check for check in evaluated if check.blocking_failure]
    if blocking:
        raise blocked_error(evaluated, blocking)
    return evaluated


def blocked_error(evaluated: List[Check], blocking: List[Check]) -> BlockedError:
    """The exit-3 error for failed blocking checks; hints offer only waivable ones."""
    lines = ['{0}: {1}'.format(check.id, check.message) for check in blocking]
    hints = ['Fix what the failed checks describe and run the command again.']
    waivable = [check.id for check in blocking if check.waivable]
    if waivable:
        hints.append('If one of them is safe to ignore in your case, waive it by name: '
                     '--waive {0} --reason TEXT (recorded in the journal).'.format(
                         waivable[0]))
    for check in blocking:
        if check.not_waivable:
            hints.append('{0} cannot be waived: {1}.'.format(check.id, check.not_waivable))
    return BlockedError(
        '{0} blocking check(s) failed; nothing was changed:\n  - {1}'.format(
            len(blocking), '\n  - '.join(lines)),
        checks=[check.to_dict() for check in evaluated],
        error_id='blocked', hints=hints,
        details={'failed': [check.id for check in blocking]},
        document={'checks': [check.to_dict() for check in evaluated]})
