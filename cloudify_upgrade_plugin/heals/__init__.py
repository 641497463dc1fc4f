"""`cfy upgrade verify-heals`: heal executions that may have duplicated VMs after the cut-over.

``analysis`` lists one manager's heals in the window and finds the suspicious ones;
``command`` resolves the window, queries both managers, journals, reports and renders.
Their public functions are importable from here.
"""
from cloudify_upgrade_plugin.heals.analysis import (  # noqa: F401
    BASE_FIELDS, HEAL_WORKFLOW, MAX_PAGE_SIZE, RIEMANN_UNIT, SOURCE_ERRORS, analyse,
    collect_heals, has_riemann, healing_state, include_fields, inspect_manager,
    listing_scope, normalise_heal)
from cloudify_upgrade_plugin.heals.command import (  # noqa: F401
    STEP_ID, RestSource, VerifyHeals, resolve_inputs, rest_source, run,
    ssh_riemann_probe, verify)
