"""Reconciliation: the restored target against the source inventory, as a table (issue 15).

``compare(source, target)`` takes two inventories (``runbooks/inventory.py``) and returns
``{ok, differences, expected, attention, rows}``:

- ``differences``: what the target lacks or has changed (the source's items only: a new
  manager may carry its own); each ``{tenant, kind, problem: missing|changed, items}`` (node
  instances: ``source`` / ``target`` counts by state).  ``ok`` is True when there is none.
- ``expected``: losses Cloudify's own code makes on this path, reported, never a difference
  (a 5.2.x snapshot's filters on a 6.0+ target: ``versions.restore_loses_filters``).
- ``attention``: restored, but not usable as it is (a 5.2.x execution schedule whose rule
  a 6.0+ manager cannot read: ``versions.schedule_rule_key``); not a difference either.
- ``rows``: one per kind - ``{what, source, target, result}`` - for the table
  (``table_lines`` for the terminal, ``markdown`` for report.md).  A kind the source
  version does not have is ``skipped`` with the reason its inventory recorded.

Pure data: nothing here talks to a manager.
"""
from typing import List, Optional

from cloudify_upgrade_plugin import versions

# (inventory key, what the table calls it), tenant-scoped kinds first.
TENANT_KINDS = (('blueprints', 'blueprints'), ('deployments', 'deployments'),
                ('node_instances', 'node instances (by state)'),
                ('agents', 'hosts with an agent'), ('secrets', 'secrets (and visibility)'),
                ('plugins', 'plugins'), ('sites', 'sites'),
                ('deployment_groups', 'deployment groups'),
                ('deployments_filters', 'deployment filters'),
                ('blueprints_filters', 'blueprint filters'),
                ('deployment_labels', 'deployment labels'),
                ('blueprint_labels', 'blueprint labels'),
                ('execution_schedules', 'execution schedules'))
GLOBAL_KINDS = (('users', 'users'), ('tenant_roles', 'tenant roles'),
                ('user_groups', 'user groups'), ('user_group_roles', 'user group roles'))
# Entries "tenant/user=role" (4.2+) or "tenant/user" (4.0 / 4.1: membership only).
ROLE_KINDS = ('tenant_roles', 'user_group_roles')
# Counted and shown, never a difference (the agents move after the cut-over).
INFO_ONLY = ('agents',)
SHOWN_NAMES = 5


def _names(entry) -> set:
    if isinstance(entry, dict):
        return set(entry.get('names') or [])
    return set(entry or [])


def _count(entry) -> int:
    if isinstance(entry, dict):
        return int(entry.get('count') or 0)
    return len(entry or [])


def _shown(items) -> str:
    items = sorted(items)
    more = len(items) - SHOWN_NAMES
    return ', '.join(items[:SHOWN_NAMES]) + (' and {0} more'.format(more) if more > 0 else '')


class _Comparison:

    def __init__(self, source, target):
        self.source, self.target = source, target
        self.source_version = (source.get('manager') or {}).get('version')
        self.target_version = (target.get('manager') or {}).get('version')
        self.rows, self.differences, self.expected, self.attention = [], [], [], []

    def row(self, what, source, target, result) -> None:
        self.rows.append({'what': what, 'source': source, 'target': target,
                          'result': result})

    def run(self) -> dict:
        source_tenants = set(self.source.get('tenants') or {})
        target_tenants = set(self.target.get('tenants') or {})
        missing = sorted(source_tenants - target_tenants)
        for tenant in missing:
            self.differences.append({'tenant': tenant, 'kind': 'tenant',
                                     'problem': 'missing'})
        self.row('tenants', len(source_tenants), len(target_tenants),
                 'missing {0}: {1}'.format(len(missing), _shown(missing)) if missing else
                 'ok')
        for kind, what in TENANT_KINDS:
            self.tenant_kind(kind, what, sorted(source_tenants & target_tenants))
        for kind, what in GLOBAL_KINDS:
            self.global_kind(kind, what)
        return {'ok': not self.differences, 'differences': self.differences,
                'expected': self.expected, 'attention': self.attention, 'rows': self.rows}

    def _skipped(self, kind, what) -> bool:
        """A kind the source has not recorded: one 'skipped' row (True)."""
        note = (self.source.get('probes') or {}).get(kind)
        self.row(what, '-', '-', 'skipped: {0}'.format(
            note or 'not recorded by prepare (an older plugin, or none on the source)'))
        return True

    def tenant_kind(self, kind, what, tenants) -> None:
        src = {t: e[kind] for t, e in (self.source.get('tenants') or {}).items() if kind in e}
        dst = {t: e[kind] for t, e in (self.target.get('tenants') or {}).items() if kind in e}
        if not src:
            self._skipped(kind, what)
            return
        source_count = sum(_count(v) for v in src.values())
        target_count = sum(_count(v) for v in dst.values())
        if kind == 'deployments_filters' and versions.restore_loses_filters(
                self.source_version, self.target_version):
            lost = sorted('{0}/{1}'.format(t, n) for t, v in src.items() for n in _names(v))
            if lost:
                self.expected.append({'kind': kind, 'items': lost, 'reason': LOST_FILTERS})
            self.row(what, source_count, target_count,
                     'expected loss of {0}: {1}'.format(len(lost), LOST_FILTERS)
                     if lost else 'ok')
            return
        if not dst:
            note = (self.target.get('probes') or {}).get(kind) or 'not listed'
            items = sorted('{0}/{1}'.format(t, n) for t, v in src.items() for n in _names(v))
            if items and kind not in INFO_ONLY:
                for tenant, value in sorted(src.items()):
                    if _names(value):
                        self.differences.append({'tenant': tenant, 'kind': kind,
                                                 'problem': 'missing',
                                                 'items': sorted(_names(value))})
            self.row(what, source_count, '-', 'missing on the target ({0})'.format(note)
                     if items and kind not in INFO_ONLY else 'ok')
            return
        problems = []
        for tenant in tenants:
            if tenant not in src or tenant not in dst:
                continue
            problems.extend(self._compare(kind, tenant, src[tenant], dst[tenant]))
        result = '; '.join(problems) if problems else 'ok'
        if kind == 'execution_schedules':
            result = self._schedules(result)
        extra = target_count - source_count
        if result == 'ok' and extra > 0 and kind not in ('node_instances',):
            result = 'ok (+{0} only on the target)'.format(extra)
        self.row(what, source_count, target_count, result)

    def _compare(self, kind, tenant, src, dst) -> List[str]:
        if kind in INFO_ONLY:
            return []
        if kind == 'node_instances':
            if src.get('by_state') != dst.get('by_state'):
                self.differences.append({'tenant': tenant, 'kind': kind,
                                         'problem': 'changed', 'source': src.get('by_state'),
                                         'target': dst.get('by_state')})
                return ['{0}: {1} -> {2}'.format(tenant, src.get('by_state'),
                                                 dst.get('by_state'))]
            return []
        found = []
        missing = sorted(_names(src) - _names(dst))
        if missing:
            self.differences.append({'tenant': tenant, 'kind': kind, 'problem': 'missing',
                                     'items': missing})
            found.append('{0} missing {1}: {2}'.format(tenant, len(missing), _shown(missing)))
        if kind == 'secrets':
            before = _pairs(src.get('visibility'))
            after = _pairs(dst.get('visibility'))
            changed = sorted('{0}: {1} -> {2}'.format(k, before[k], after[k])
                             for k in before if k in after and before[k] != after[k])
            if changed:
                self.differences.append({'tenant': tenant, 'kind': 'secrets_visibility',
                                         'problem': 'changed', 'items': changed})
                found.append('{0} visibility changed: {1}'.format(tenant, _shown(changed)))
        return found

    def _schedules(self, result) -> str:
        """Enabled flags kept; rules the target cannot read flagged for attention."""
        src_tenants = self.source.get('tenants') or {}
        dst_tenants = self.target.get('tenants') or {}
        notes, unreadable_all = [], []
        for tenant, entry in sorted(dst_tenants.items()):
            before = set((src_tenants.get(tenant) or {}).get('schedules_enabled') or [])
            after = set(entry.get('schedules_enabled') or [])
            known = _names(entry.get('execution_schedules'))
            changed = sorted(n for n in before ^ after if n in known)
            if changed:
                self.differences.append({'tenant': tenant, 'kind': 'schedules_enabled',
                                         'problem': 'changed', 'items': changed})
                notes.append('{0} enabled flag changed: {1}'.format(tenant, _shown(changed)))
            unreadable = sorted(entry.get('schedules_unreadable') or [])
            if unreadable:
                self.attention.append({'tenant': tenant, 'kind': 'execution_schedules',
                                       'items': unreadable, 'reason': UNREADABLE_RULE})
                unreadable_all.extend('{0}/{1}'.format(tenant, n) for n in unreadable)
        if unreadable_all:
            notes.append('attention, {0} ({1}): {2}'.format(
                len(unreadable_all), _shown(unreadable_all), UNREADABLE_RULE))
        if not notes:
            return result
        return '; '.join(([result] if result != 'ok' else []) + notes)

    def global_kind(self, kind, what) -> None:
        src, dst = self.source.get(kind), self.target.get(kind)
        if src is None:
            self._skipped(kind, what)
            return
        if dst is None:
            # the target cannot list them (a community target has no user list): nothing to
            # compare; what it cannot hold was refused before the upload (target-edition)
            note = (self.target.get('probes') or {}).get(kind) or 'not listed'
            self.row(what, len(src), '-', 'not checked: the target does not list them '
                     '({0})'.format(note) if src else 'ok')
            return
        if kind in ROLE_KINDS and self.source.get('has_tenant_roles') is False:
            dst = [item.split('=', 1)[0] for item in dst]    # membership only before 4.2
        missing = sorted(set(src) - set(dst))
        if missing:
            self.differences.append({'tenant': None, 'kind': kind, 'problem': 'missing',
                                     'items': missing})
        self.row(what, len(src), len(dst), 'missing {0}: {1}'.format(
            len(missing), _shown(missing)) if missing else 'ok')


def _pairs(items) -> dict:
    """``["name:visibility", ...]`` -> {name: visibility}."""
    pairs = {}
    for item in items or []:
        name, _, visibility = str(item).rpartition(':')
        pairs[name] = visibility
    return pairs


LOST_FILTERS = 'a 5.2.x snapshot\'s filters are dropped on 6.0+ by the 5.2 -> 5.3 schema ' \
               'migration (cloudify-manager@7.0.4 migrations 396303c07e35_5_2_to_5_3): ' \
               'recreate them'
UNREADABLE_RULE = 'their rule uses 5.2\'s `frequency`, which 6.0+ do not read (they list ' \
                  '`recurrence`): delete and recreate them (`cfy deployments schedule`)'


def compare(source: dict, target: dict) -> dict:
    """The reconciliation of two inventories (see the module docstring)."""
    return _Comparison(source, target).run()


# -- rendering --------------------------------------------------------------------------------

def difference_lines(result: dict) -> List[str]:
    """One line per difference (tenant, kind, problem, items)."""
    lines = []
    for diff in result.get('differences') or []:
        what = ', '.join(diff.get('items') or []) or '{0} -> {1}'.format(
            diff.get('source'), diff.get('target'))
        lines.append('{0} {1} {2}: {3}'.format(diff.get('tenant') or '(all tenants)',
                                               diff.get('kind'), diff.get('problem'), what))
    return lines


def headline(result: dict) -> str:
    parts = ['{0} difference(s)'.format(len(result.get('differences') or []))
             if result.get('differences') else 'no difference']
    if result.get('expected'):
        parts.append('{0} known loss(es) reported as expected'.format(
            len(result['expected'])))
    if result.get('attention'):
        parts.append('{0} item(s) need attention'.format(len(result['attention'])))
    return ', '.join(parts)


def table_lines(result: Optional[dict]) -> List[str]:
    """The reconciliation for the terminal: a headline and an aligned table."""
    if not result or not result.get('rows'):
        return []
    rows = result['rows']
    width = max(len(r['what']) for r in rows)
    line = '  {0:<{w}}  {1:>8}  {2:>8}  {3}'
    lines = ['Reconciliation: {0}.'.format(headline(result)),
             line.format('what', 'source', 'target', 'result', w=width)]
    for r in rows:
        lines.append(line.format(r['what'], str(r['source']), str(r['target']), r['result'],
                                 w=width))
    return lines


def markdown(result: Optional[dict]) -> List[str]:
    """The same table for report.md."""
    if not result or not result.get('rows'):
        return []
    lines = [headline(result)[0].upper() + headline(result)[1:] + '.', '',
             '| what | source | target | result |', '|---|---:|---:|---|']
    for r in result['rows']:
        cells = (r['what'], r['source'], r['target'], r['result'])
        lines.append('| {0} | {1} | {2} | {3} |'.format(
            *(str(v).replace('|', '\\|') for v in cells)))
    return lines
