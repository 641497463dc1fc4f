"""The options of every `cfy upgrade` command: frozen, typed, with their defaults in one place.

``cli.py`` builds one of these from the command line (click's defaults come from here too)
and hands it to the command; steps read it from their context (``ctx.options.timeout``),
never from a dict.  ``manager_password`` is left out of ``repr``.

Two fields serve callers without a cfy workdir or a terminal (the fleet operations,
``fleet/adapter.py``): ``workdir``, the directory whose ``upgrades/`` holds the workspaces
(None: the cfy workdir), and ``reporter``, called with every journal transition
(``engine.runner.Runner``: step id, event, index, total, details).  The CLI leaves both None.
"""
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Optional, Tuple

from cloudify_upgrade_plugin.engine.checks import Waiver
from cloudify_upgrade_plugin.versions import MODE_IN_PLACE, MODE_NEW_HOST

# Longest wait for one manager execution or outage (--timeout).
DEFAULT_TIMEOUT = 3600
# Longest wait for one deployment's install_new_agents (--agent-timeout).
DEFAULT_AGENT_TIMEOUT = 900
DEFAULT_AGENTS_CONCURRENCY = 5
MAX_AGENTS_CONCURRENCY = 50
DEFAULT_TENANT = 'default_tenant'
USERS_POLICIES = ('rest-security', 'reset-passwords', 'skip')
# Link speed the transfer-time estimate assumes (--link-mbps, Mbit/s).
DEFAULT_LINK_MBPS = 100.0


@dataclass(frozen=True)
class PlanOptions:
    """`cfy upgrade plan`."""

    mode: str = MODE_NEW_HOST
    target_version: Optional[str] = None
    from_profile: Optional[str] = None
    waivers: Tuple[Waiver, ...] = ()
    # issue 14 (item 10): plan only; the new manager's profile, to run the target checks
    to_profile: Optional[str] = None
    accept_new_host_keys: bool = False
    link_mbps: float = DEFAULT_LINK_MBPS
    # issue 19: callers without a cfy workdir (the fleet); see the module docstring
    workdir: Optional[str] = None
    reporter: Optional[Callable] = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class PrepareOptions(PlanOptions):
    """`cfy upgrade prepare`."""

    upgrade_id: Optional[str] = None
    snapshot_id: Optional[str] = None
    freeze: bool = False
    timeout: int = DEFAULT_TIMEOUT
    new: bool = False


@dataclass(frozen=True)
class RestoreOptions:
    """What `new-host` and `in-place` share (``mode`` says which one)."""

    mode: ClassVar[str]
    upgrade_id: Optional[str] = None
    users: Optional[str] = None
    agent_timeout: int = DEFAULT_AGENT_TIMEOUT
    agents_concurrency: int = DEFAULT_AGENTS_CONCURRENCY
    # install_new_agents' stop_old_agent, where the deployment declares it
    stop_old_agents: bool = False
    # hosts known to be dead: left out of the agents' move (reported)
    skip_node_instances: Tuple[str, ...] = ()
    yes: bool = False
    waivers: Tuple[Waiver, ...] = ()
    timeout: int = DEFAULT_TIMEOUT
    accept_new_host_keys: bool = False
    # new-host only: in place they keep these values
    passwords_file: Optional[str] = None
    no_stop_old_healing: bool = False
    no_fence_old_manager: bool = False
    # issue 14: 4.5.0-5.0.x targets skip deployments whose plugins do not install;
    # forget the failed logins an earlier run recorded (the operator checked the password)
    ignore_plugin_failure: bool = False
    reset_failed_logins: bool = False
    # after the restore (issue 15): wagons replacing unfit plugins, the LDAP bind password
    # and CA (files: the password never appears on a command line)
    wagons: Optional[str] = None
    ldap_bind_password_file: Optional[str] = None
    ldap_ca_file: Optional[str] = None
    # issue 19: see the module docstring; ``rehearse`` stops before the point of no return
    workdir: Optional[str] = None
    reporter: Optional[Callable] = field(default=None, repr=False, compare=False)
    rehearse: bool = False


@dataclass(frozen=True)
class NewHostOptions(RestoreOptions):
    """`cfy upgrade new-host`: the target by profile, or a profile made from its address."""

    mode: ClassVar[str] = MODE_NEW_HOST
    to_profile: Optional[str] = None
    manager_ip: Optional[str] = None
    profile_name: Optional[str] = None
    manager_username: Optional[str] = None
    manager_password: Optional[str] = field(default=None, repr=False)
    manager_tenant: str = DEFAULT_TENANT
    rest_port: Optional[int] = None
    ssl: bool = False
    rest_certificate: Optional[str] = None
    ssh_user: Optional[str] = None
    ssh_key: Optional[str] = None
    ssh_port: Optional[int] = None


@dataclass(frozen=True)
class InPlaceOptions(RestoreOptions):
    """`cfy upgrade in-place`."""

    mode: ClassVar[str] = MODE_IN_PLACE


@dataclass(frozen=True)
class VerifyHealsOptions:
    """`cfy upgrade verify-heals`."""

    upgrade_id: Optional[str] = None
    old_profile: Optional[str] = None
    new_profile: Optional[str] = None
    since: Optional[str] = None
    until: Optional[str] = None
    accept_new_host_keys: bool = False


@dataclass(frozen=True)
class StatusOptions:
    """`cfy upgrade status`."""

    upgrade_id: Optional[str] = None
