"""The target checks that say what a target refuses or cannot hold (issue 14).

Registered in ``TARGET_CHECKS`` and run by check-target (``checks.target_checks``) and by
``plan --to-profile`` (``checks.plan_target_checks``), on ``SourceFacts``: what the
snapshot holds (or, for ``plan``, will hold) and what the source has that only a premium
manager keeps.

- ``target-licence`` (first): a premium 4.6+ target without a usable licence answers only
  a short allow-list; a missing licence or an expired trial one closes the gate, an expired
  paying licence does not, and the licence's ``cloudify_version`` is checked only when a
  licence is uploaded (behaviour §12.2; the vendor's tests cloudify-manager@7.0.4
  tests/integration_tests/tests/agentless_tests/test_license.py).  Not waivable.
- ``target-edition``: a community target cannot hold a premium source's other tenants,
  users, user groups or LDAP.
- ``target-restore-route``: the route a 7.0 target takes for this snapshot
  (``versions.restore_route``); blocks, not waivable, when no version of the snapshot
  restores correctly there.
- ``target-distributed``: a Kubernetes 7.0.3+ target refuses legacy snapshots inside the
  workflow (behaviour §12.1): blocks when its status lists a service only the Kubernetes build
  has, warns otherwise (no REST answer is known to tell for sure).
- ``agents-too-old-for-ssl``: agents older than 4.2 cannot follow an SSL 6.0+ target's
  redirect to https (behaviour §12.6); "SSL" is read from the target profile's protocol.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.checks import BLOCK, FAIL, PASS, WARN, CheckOutcome
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.runbooks import inventory
from cloudify_upgrade_plugin.runbooks.restore.base import TARGET_CHECKS
from cloudify_upgrade_plugin.snapshot import archive
from cloudify_upgrade_plugin.versions import Version

DEFAULT_TENANT = 'default_tenant'
NO_LICENCE = 'an unlicensed premium manager refuses the upload and the restore (behaviour §12.2)'
NO_ROUTE = 'the target restores such a snapshot as nothing or fails it; a waiver does not ' \
           'change its restore route (behaviour §12.1)'
ON_KUBERNETES = 'a Kubernetes 7.0.3+ manager refuses legacy snapshots inside the restore ' \
                '(behaviour §12.1)'


@dataclass(frozen=True)
class SourceFacts:
    """What the target checks need to know of the source and its snapshot."""

    version: Version
    edition: Optional[str]
    snapshot_version: Version
    revisions: Tuple[str, ...]
    snapshot_format: str = 'legacy'
    agents_version: Optional[Version] = None      # the oldest agent; None: no agent data
    tenants: Optional[Tuple[str, ...]] = None
    users: Optional[Tuple[str, ...]] = None
    user_groups: Optional[Tuple[str, ...]] = None
    ldap: Optional[str] = None
    predicted: bool = False       # plan: what the snapshot will hold

    @classmethod
    def of_workspace(cls, workspace, snapshot: dict) -> 'SourceFacts':
        """From the prepared snapshot and the source inventory of an upgrade."""
        source = workspace.meta.get('source') or {}
        held = workspace.read_json('inventory/source.json') or {}
        revisions = snapshot.get('revisions')
        if revisions is None:       # prepared before the revisions were recorded
            revisions = _zip_revisions(workspace, snapshot)
        version = Version.parse(source.get('version') or snapshot['snapshot_version'])
        agents = snapshot.get('agents_min_version')
        if agents is None and snapshot.get('agents_layout'):
            agents = str(version)
        return cls(version=version, edition=source.get('edition'),
                   snapshot_version=Version.parse(snapshot['snapshot_version']),
                   revisions=tuple(revisions), snapshot_format=snapshot.get('format')
                   or 'legacy', agents_version=Version.parse(agents) if agents else None,
                   tenants=_tuple(list((held.get('tenants') or {}).keys()) or None),
                   users=_tuple(held.get('users')), user_groups=_tuple(held.get('user_groups')),
                   ldap=_ldap_state(held.get('ldap')))

    @classmethod
    def of_manager(cls, manager) -> 'SourceFacts':
        """For ``plan``: from the live source, the snapshot it would make predicted."""
        held = inventory.premium_holdings(manager)
        return cls(version=manager.version, edition=manager.edition,
                   snapshot_version=manager.version,
                   revisions=versions.snapshot_revisions(manager.version, manager.edition),
                   agents_version=manager.version, tenants=_tuple(held['tenants']),
                   users=_tuple(held['users']), user_groups=_tuple(held['user_groups']),
                   ldap=held['ldap'], predicted=True)


def _ldap_state(saved):
    """'enabled' / 'disabled' / None from the inventory's LDAP settings (``runbooks/ldap.py``
    ``read_settings``: ``enabled`` None where they were not read)."""
    if isinstance(saved, dict):
        enabled = saved.get('enabled')
        return None if enabled is None else ('enabled' if enabled else 'disabled')
    return saved


def _tuple(value):
    return tuple(value) if value is not None else None


def _zip_revisions(workspace, snapshot):
    metadata = archive.read_member(workspace.path(snapshot['path']), archive.METADATA)
    return [key for key in versions.REVISION_KEYS if key in metadata]


# -- licence ------------------------------------------------------------------------------

@TARGET_CHECKS.check('target-licence', BLOCK, unwaivable={'target-licence': NO_LICENCE})
def target_licence(target) -> CheckOutcome:
    """behaviour §12.2: the licence gate of a premium 4.6+ target (see the module docstring)."""
    if not versions.has_licence_gate(target.version, target.edition):
        return PASS, 'A {0} {1} manager has no licence gate.'.format(
            target.edition or '', target.version)
    try:
        items = target.licence().get('items') or []
    except UpgradeError as error:
        return WARN, 'Could not read the licence ({0}); if the upload is refused with ' \
                     'missing_cloudify_license, upload one with `cfy license upload`.'.format(
                         error.message)
    upload = 'Upload a licence for {0}.{1} first: `cfy license upload LICENCE_FILE`.'.format(
        target.version.major, target.version.minor)
    if not items:
        return FAIL, '{0} has no licence: an unlicensed premium manager refuses the ' \
                     'snapshot upload, the restore and every list but a few (facts ' \
                     '§12.2). {1}'.format(target.label, upload)
    usable = [item for item in items if not (item.get('expired') and item.get('trial'))]
    if not usable:
        return FAIL, 'The licence of {0} is an expired trial licence: the manager refuses ' \
                     'every request but a few with expired_cloudify_license (behaviour §12.2). ' \
                     '{1}'.format(target.label, upload)
    best = next((item for item in usable if not item.get('expired')), usable[0])
    notes = []
    licensed = best.get('cloudify_version')
    if licensed and _older_than(licensed, target.version):
        notes.append(' Its cloudify_version {0} is older than the manager; Cloudify checks '
                     'that only when a licence is uploaded, so the one installed keeps '
                     'working.'.format(licensed))
    if best.get('expired'):
        return WARN, 'The licence of {0} expired on {1}: a paying licence keeps the manager ' \
                     'serving (behaviour §12.2), but renew it.{2}'.format(
                         target.label, best.get('expiration_date'), ''.join(notes))
    return PASS, 'Licence of {0}: {1}{2}, valid until {3}.{4}'.format(
        target.label, best.get('license_edition') or 'premium',
        ' (trial)' if best.get('trial') else '', best.get('expiration_date') or 'no end',
        ''.join(notes))


def _older_than(licensed, target) -> bool:
    try:
        return Version.parse(licensed).major_minor < target.major_minor
    except UpgradeError:
        return False


def licence_closed(check) -> bool:
    """True when the target-licence check says the licence gate is closed."""
    return check.id == target_licence.id and check.status == FAIL


# -- edition ------------------------------------------------------------------------------

@TARGET_CHECKS.check('target-edition', BLOCK)
def target_edition(facts: SourceFacts, target) -> CheckOutcome:
    """A community target cannot hold what only a premium source has."""
    if facts.edition != 'premium' or target.edition != 'community':
        return PASS, 'A {0} source onto a {1} target keeps what the source holds.'.format(
            facts.edition or '', target.edition or '')
    lost = {}
    tenants = [t for t in facts.tenants or () if t != DEFAULT_TENANT]
    users = [u for u in facts.users or () if u != 'admin']
    for name, items in (('tenants', tenants), ('users', users),
                        ('user_groups', list(facts.user_groups or ()))):
        if items:
            lost[name] = items
    if facts.ldap == 'enabled':
        lost['ldap'] = ['enabled']
    unknown = [name for name, value in (('tenants', facts.tenants), ('users', facts.users),
                                        ('user groups', facts.user_groups),
                                        ('LDAP', facts.ldap)) if value is None]
    note = ' Not known: {0}.'.format(', '.join(unknown)) if unknown else ''
    if not lost:
        return PASS, 'The premium source holds only the default tenant and the admin: a ' \
                     'community {0} can hold its data.{1}'.format(target.version, note)
    listed = '; '.join('{0}: {1}'.format(name.replace('_', ' '), ', '.join(items[:20]))
                       for name, items in lost.items())
    return FAIL, 'The target is a community {0} manager; it cannot hold what this premium ' \
                 'source has, which would be lost: {1}.{2} Restore onto a premium manager ' \
                 '(with a licence), or remove these from the source first.'.format(
                     target.version, listed, note), {'would_lose': lost}


# -- the restore route ------------------------------------------------------------------

@TARGET_CHECKS.check('target-restore-route', BLOCK,
                     unwaivable={'target-restore-route': NO_ROUTE})
def target_restore_route(facts: SourceFacts, target) -> CheckOutcome:
    """The route the target takes for the snapshot, and whether a copy is needed."""
    plan = route_plan(facts, target)
    details = plan.to_dict()
    if plan.blocked:
        return FAIL, plan.reason, details
    predicted = ' (predicted from the source: {0} {1})'.format(
        facts.edition or '', facts.version) if facts.predicted else ''
    return PASS, plan.reason + predicted, details


def route_plan(facts: SourceFacts, target) -> versions.RoutePlan:
    return versions.restore_route(facts.snapshot_version, facts.revisions, target.version,
                                  target.edition, facts.snapshot_format)


@TARGET_CHECKS.check('target-distributed', BLOCK,
                     unwaivable={'target-distributed': ON_KUBERNETES})
def target_distributed(facts: SourceFacts, target) -> CheckOutcome:
    """behaviour §12.1: a Kubernetes 7.0.3+ target refuses legacy snapshots in the workflow."""
    if not route_plan(facts, target).legacy or \
            not versions.refuses_legacy_on_kubernetes(target.version):
        return PASS, 'Not a legacy restore onto 7.0.3 or later.'
    found = kubernetes_services(target)
    if found:
        return FAIL, '{0} runs on Kubernetes (its status lists {1}): it refuses legacy ' \
                     'snapshots inside the restore ("{2}"). Restore onto a 7.0 manager ' \
                     'installed on a host (RPM), then move from there if needed.'.format(
                         target.label, ', '.join(found), versions.DISTRIBUTED_REFUSAL)
    return WARN, 'This snapshot takes the legacy route: a 7.0 manager running on ' \
                 'Kubernetes (helm) refuses it inside the restore ("{0}", behaviour §12.1). ' \
                 'Nothing {1} answered says it runs on Kubernetes; if it does, restore ' \
                 'onto a 7.0 manager installed on a host instead.'.format(
                     versions.DISTRIBUTED_REFUSAL, target.label)


def kubernetes_services(target) -> List[str]:
    """Services of the target's status that only the Kubernetes build lists."""
    try:
        services = target.status().get('services') or {}
    except UpgradeError:
        return []
    return sorted(name for name in services if name in versions.KUBERNETES_STATUS_SERVICES)


# -- agents -------------------------------------------------------------------------------

@TARGET_CHECKS.check('agents-too-old-for-ssl', BLOCK)
def agents_too_old_for_ssl(facts: SourceFacts, target) -> CheckOutcome:
    """behaviour §12.6: < 4.2 agents fetch the new installer over http, which an SSL 6.0+
    target redirects to https (a 308 they do not follow)."""
    agents = facts.agents_version
    if agents is None:
        return PASS, 'The snapshot carries no agent.'
    if not versions.agent_fetches_installer_over_http(agents):
        return PASS, 'Agents of {0} fetch their new installer as the target serves it.'.format(
            agents)
    if target.protocol != 'https' or not versions.redirects_http_to_https(target.version):
        return PASS, 'Agents of {0} fetch their new installer over http, which {1} serves ' \
                     '(its profile talks {2}).'.format(agents, target.label, target.protocol)
    return FAIL, 'Agents of {0} (the oldest in the snapshot) fetch the new agent\'s installer ' \
                 'over plain http, and {1} is an SSL {2} manager (its profile talks https) ' \
                 'that redirects http to https, which they do not follow: install-agents ' \
                 'would fail for them (behaviour §12.6). Move through a manager older than 6.0 ' \
                 'first (e.g. 5.1: its install_new_agents gives them 5.1 agents), or plan to ' \
                 'install their agents by hand and waive this check.'.format(
                     agents, target.label, target.version)
