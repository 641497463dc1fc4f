"""The per-version rule table of the simulated managers (one place for every version rule).

Every handler of the simulator asks a :class:`Rules` object (the target manager) or a
:class:`SnapshotRules` object (the snapshot being restored) instead of comparing versions
itself: no other module of the simulator compares version tuples.  Each rule carries a
citation: ``behaviour §x`` = docs/manager-behaviour.md, section x (§12 corrects earlier
sections; its §13 holds the API matrix), ``observed-7.0`` = docs/manager-7.0-observed.md (what
the real 7.0.4 REST service answered), ``MGR@tag:path`` = cloudify-cosmo/cloudify-manager at
that tag (likewise ``COMMON@``, ``MI@``, ``STAGE@``, ``AG@`` = cloudify-agent), used where the
project's docs are silent (listed in README.md).
"""

# The versions the simulator can play, in order (issue 3 "What to build" item 1).
VERSIONS = ('3.4.2', '4.0.0', '4.0.1', '4.1', '4.2', '4.3', '4.4', '4.5.0', '4.5.5', '4.6',
            '5.0.5', '5.1', '5.2.7', '6.0', '6.4', '7.0')

_ALIASES = {
    '4.0': '4.0.0', '4.1.0': '4.1', '4.2.0': '4.2', '4.3.0': '4.3', '4.4.0': '4.4',
    '4.5': '4.5.0', '4.6.0': '4.6', '5.1.0': '5.1', '6.0.0': '6.0', '6.4.0': '6.4',
    '7.0.4': '7.0', '7.0.0': '7.0',
}

# What /version reports (behaviour §2.2: VERSION files use three parts; 7.0 plays 7.0.4,
# observed-7.0).
_REPORTED = {
    '3.4.2': '3.4.2', '4.0.0': '4.0.0', '4.0.1': '4.0.1', '4.1': '4.1.0', '4.2': '4.2.0',
    '4.3': '4.3.0', '4.4': '4.4.0', '4.5.0': '4.5.0', '4.5.5': '4.5.5', '4.6': '4.6.0',
    '5.0.5': '5.0.5', '5.1': '5.1.0', '5.2.7': '5.2.7', '6.0': '6.0.0', '6.4': '6.4.0',
    '7.0': '7.0.4',
}

# Community calendar versions (behaviour §2.2: MGR@17.3.31 / 17.6.30 VERSION files).
_COMMUNITY_CALENDAR = {'4.0.0': '17.3.31', '4.1': '17.6.30'}

# DB schema revisions written into metadata.json (behaviour §3.6 item 4: 333998bc1627 = 4.0).
# Only 4.0's id is in the references; the others are simulator labels (README assumption).
_SCHEMA_REVISION = {'4.0.1': '333998bc1627'}


def version_tuple(text):
    """'4.1.0-p3-4.0.1' -> (4, 1, 0): ManagerVersion keeps major.minor.service of the part
    before the first '-' (behaviour §2.2 'What the version string looks like')."""
    head = str(text).split('-', 1)[0].split('+', 1)[0]
    parts = []
    for piece in head.split('.')[:3]:
        digits = ''.join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def parse_spec(spec, update_3=False, patch_1=False):
    """'4.0.1+update3' / '4.0.0+patch1' / '7.0.4' -> (key, update_3, patch_1)."""
    text = str(spec).strip()
    if '+' in text:
        text, suffix = text.split('+', 1)
        suffix = suffix.replace('-', '').replace('_', '').lower()
        if suffix in ('update3', 'p3', 'patch3'):
            update_3 = True
        elif suffix in ('patch1', 'p1'):
            patch_1 = True
        else:
            raise ValueError('unknown version suffix: +{0}'.format(suffix))
    key = _ALIASES.get(text, text)
    if key not in VERSIONS:
        raise ValueError('unsupported manager version {0!r}; choose one of {1}'.format(
            spec, ', '.join(VERSIONS)))
    if update_3 and key != '4.0.1':
        raise ValueError('update-3 exists only for 4.0.1 (behaviour §7.3)')
    if patch_1 and key != '4.0.0':
        raise ValueError('patch-1 exists only for 4.0.0 (behaviour §7.3)')
    return key, update_3, patch_1


class Rules:
    """Everything that differs between versions, computed once per simulated manager.

    `distributed`: a Kubernetes (split services) 7.0 manager (behaviour §12.1; MGR@7.0.4
    snapshots/utils.py `is_split_services_environment`)."""

    def __init__(self, spec, edition='premium', update_3=False, patch_1=False,
                 security_enabled=None, distributed=False):
        key, update_3, patch_1 = parse_spec(spec, update_3, patch_1)
        if edition not in ('premium', 'community'):
            raise ValueError('edition must be premium or community')
        self.key = key
        self.edition = edition
        self.premium = edition == 'premium'
        self.update_3 = update_3
        self.patch_1 = patch_1
        self.v = version_tuple(_REPORTED[key])
        v = self.v

        # --- identity -----------------------------------------------------------------
        self.base_version = _REPORTED[key]
        # behaviour §2.2: community builds report calendar versions (V for 17.3.31 / 17.6.30)
        if edition == 'community' and key in _COMMUNITY_CALENDAR:
            self.reported_version = _COMMUNITY_CALENDAR[key]
        else:
            self.reported_version = self.base_version
        # behaviour §7.3: update-3 / patch-1 write '4.1.0-p3-4.0.1' / '4.1.0-p1-4.0.0'
        if update_3:
            self.snapshot_version = '4.1.0-p3-4.0.1'
        elif patch_1:
            self.snapshot_version = '4.1.0-p1-4.0.0'
        else:
            self.snapshot_version = self.reported_version
        self.is_3x = v < (4, 0, 0)

        # --- API prefixes (behaviour §2.1 table) -------------------------------------------
        if v < (4, 0, 0):
            self.server_api_versions = ('v1', 'v2', 'v2.1')
            self.nginx_api_versions = ('v1', 'v2', 'v2.1')
        elif v < (4, 0, 1):
            self.server_api_versions = ('v1', 'v2', 'v2.1', 'v3')
            self.nginx_api_versions = ('v1', 'v2', 'v2.1', 'v3')
        elif v < (4, 1, 0):
            # behaviour §2.1: 4.0.1 registers v3.1 but the stock nginx regex proxies v1..v3 only
            self.server_api_versions = ('v1', 'v2', 'v2.1', 'v3', 'v3.1')
            self.nginx_api_versions = ('v1', 'v2', 'v2.1', 'v3')
        else:
            self.server_api_versions = ('v1', 'v2', 'v2.1', 'v3', 'v3.1')
            self.nginx_api_versions = ('v1', 'v2', 'v2.1', 'v3', 'v3.1')
        self.api_prefix = ('/api/v2.1' if v < (4, 0, 0) else
                           '/api/v3' if v < (4, 1, 0) else '/api/v3.1')   # behaviour §1 item 2
        self.unversioned_version_route = v >= (4, 0, 0)        # behaviour §2.1 '/api/version'
        # behaviour §2.1: 4.1-5.x proxy a fixed list of resource names; 5.0.5 adds
        # snapshot-status, managers, agents; 6.0+ proxies everything under /api/.
        self.nginx_proxies_everything = v >= (6, 0, 0)
        # The UI answers unproxied paths with HTML (behaviour §2.1 [I]: "HTML or a UI 404");
        # we answer the UI's 404 page, which cfy 7.0.5 expects from managers older than
        # 5.0.5 (behaviour §6.1 'On 404 it logs ... falls back to GET /cluster'); 6.0+ reaches
        # Flask whose unknown routes are Werkzeug HTML 404s (observed-7.0 'GET /api/v9/version').
        self.ui_status_for_unproxied = 404

        # --- endpoints present ------------------------------------------------------------
        self.has_tenants = v >= (4, 0, 0)
        self.has_ok = v >= (6, 0, 0)                            # behaviour §2.3 /ok (6.0+)
        self.has_snapshot_status = v >= (5, 0, 5)               # behaviour §2.3 (5.0.5+)
        self.has_cluster_nodes = v >= (5, 0, 5)                 # behaviour §6.1, §13.5
        self.has_sites = v >= (5, 0, 5)                         # README assumption (5.0)
        # behaviour §11 [I]: premium `cfy upload` calls /license-check (MGR@4.6+ license.py)
        self.has_license_check = v >= (4, 6, 0)
        self.has_license = v >= (4, 6, 0) and self.premium          # behaviour §11 [I]
        # behaviour §12.2: GET /license from 4.6 (MGR@4.6 resources_v3_1/license.py); community
        # answers the JSON 404 missing_premium_package_error (behaviour §12.11; MGR@4.6
        # MissingPremiumFeatureResource, MGR@6.4+ LicenseCommunity `premium_only`)
        self.has_license_endpoint = v >= (4, 6, 0)
        # the pre-5.0.5 HA cluster route exists on both editions; community answers 404
        self.has_old_cluster_route = (4, 0, 0) <= v < (5, 0, 5)
        self.has_old_cluster = self.has_old_cluster_route and self.premium
        self.has_user_endpoint = v >= (4, 0, 0)
        self.users_premium_only = v >= (4, 0, 0)                # observed-7.0 /users community 404
        self.v1_status = v < (7, 0, 0)                          # behaviour §2.3 (gone in 7.0.0)
        self.new_status_shape = v >= (5, 0, 5)                  # behaviour §2.3 (v3.1, 5.0.5+)
        self.tokens_post = v >= (7, 0, 0)                       # observed-7.0 'POST /tokens'
        self.tokens_get_signed = not self.tokens_post           # behaviour §2.4 'GET /tokens'
        # behaviour §12.11: 7.0.4 GET /tokens items carry `value`, the secret masked
        # (MGR@7.0.4 storage/management_models.py Token.value: 'ctok-<id>-********')
        self.token_list_value = self.tokens_post
        self.has_riemann = v < (5, 0, 0)                        # behaviour §7.4 (removed 5.0.0)
        # /ok: behaviour §2.3 (6.0+); behaviour §12.11: 500 "FAIL" after about 3 s when a service is
        # down (obs 7.0.4; the same OK.get at MGR@6.0.0..7.0.4 status.py)
        self.ok_fail_delay = 3.0                                # manager seconds

        # --- auth (behaviour §2.4, §2.2) ---------------------------------------------------------
        self.security_enabled = (v >= (4, 0, 0)) if security_enabled is None else \
            bool(security_enabled)
        if v < (4, 0, 0):
            self.tenant_mode = 'none'
            self.version_auth = False                            # behaviour §2.2 3.4.2 row
        elif v < (4, 2, 0):
            self.tenant_mode = 'mandatory'                       # 401 'a Tenant name ...'
            self.version_auth = True
        elif v < (7, 0, 0):
            self.tenant_mode = 'optional'                        # global-only without it
            self.version_auth = True
        else:
            self.tenant_mode = 'optional_403'                    # observed-7.0 403 'tenant not ...'
            self.version_auth = True
        self.version_fields = (('version', 'build', 'date', 'commit') if v < (4, 0, 0) else
                               ('edition', 'version', 'build', 'date', 'commit') if v < (4, 4, 0)
                               else ('edition', 'version', 'build', 'date', 'commit',
                                     'distribution', 'distro_release'))
        if v >= (7, 0, 0):
            self.distribution = ('debian', 'bookworm')          # observed-7.0 GET /version
        else:
            self.distribution = ('centos', 'Core')              # README assumption
        self.roles_42 = v >= (4, 2, 0)      # behaviour §9 item 7: sys_admin/default from 4.2
        # observed-7.0: 'X must be <true/false>' keeps the leading underscore on 7.0 (MGR@4.2
        # rest_decorators strips it: 'all_tenants must be ...')
        self.bool_error_keeps_underscore = v >= (7, 0, 0)

        # --- account lock (behaviour §12.10; MGR@4.4..7.0.4 config.py, management_models.py
        # User.is_locked: locked while failed_logins_counter > failed_logins_before_account_lock
        # and the last failure is younger than account_lock_period minutes) ------------------
        self.has_account_lock = v >= (4, 4, 0)
        # MGR@4.4..6.3 security/authentication.py `_check_if_user_is_locked` runs before the
        # password check: a locked user is refused even with the right password.  MGR@6.4.0+
        # security/user_handler.py `_get_user_from_auth` checks the password first and a right
        # password resets the counter before `authenticate` looks at is_locked, so from 6.4 a
        # lock refuses token logins (and wrong passwords) only.
        self.account_lock_check = ('before_password' if v < (6, 4, 0) else 'after_password')
        self.failed_logins_before_account_lock_default = 4       # MGR@4.4+ config.py
        self.account_lock_period_default = -1                    # MI@7.0.4 config.yaml

        # --- licence gate (behaviour §12.2: premium from 4.6, MGR@<tag> constants.py
        # ALLOWED_LICENSE_ENDPOINTS; applied by a before_request hook registered before the
        # maintenance handler and before authentication, MGR@4.6..7.0.4 server.py) ----------
        # Closed by a missing licence or an expired *trial* one; an expired paying licence
        # still serves (the vendor's MGR@7.0.4 tests/integration_tests/tests/
        # agentless_tests/test_license.py; manager.licence_state).
        self.licence_gate = self.premium and v >= (4, 6, 0)
        if v < (5, 0, 5):
            licence = ['status', 'version', 'license', 'tokens', 'config', 'cluster',
                       'tenants']                                          # MGR@4.6
        elif v < (5, 2, 0):
            licence = ['status', 'version', 'license', 'maintenance', 'cluster-status',
                       'tokens', 'config', 'cluster', 'tenants', 'brokers', 'managers',
                       'db-nodes']                                         # MGR@5.0.5
            if v >= (5, 1, 0):
                licence.insert(5, 'file-server-auth')                      # MGR@5.1.0
        else:
            licence = ['brokers', 'managers', 'db-nodes', 'cluster', 'config', 'status',
                       'version', 'license', 'maintenance', 'cluster-status',
                       'file-server-auth', 'tokens', 'tenants']            # MGR@5.2.7
            if v >= (6, 0, 0):
                licence += ['ok', ('users', 'GET')]                        # MGR@6.0.0
            if v >= (6, 4, 0):
                licence.append('user')                                     # MGR@6.4.0, 7.0.4
        self.licence_allowed = tuple(licence) if self.licence_gate else ()
        # The HTTP status of the refusal is closed source (behaviour §12.2 [U]); 400 is what the
        # open LicenseCheckCommunity answers with the same error code (MGR@6.4.0+
        # resources_v3_1/license.py) and what Cloudify's UI treats as a licence error
        # (cloudify-cosmo/cloudify-stage app/utils/Internal.js/.ts `isLicenseError`:
        # status 400 and one of the two codes). [U]
        self.licence_refusal_status = 400
        # behaviour §12.2: a licence older than the manager is refused at upload only (MGR@7.0.4
        # manager_exceptions.py InvalidCloudifyLicense, 400 unverified_cloudify_license); the
        # default licence of a simulated manager is issued for its major.minor
        self.licence_version = '{0}.{1}'.format(v[0], v[1])

        # --- lists (behaviour §4 pagination table; MGR@4.4..7.0.4 storage_manager._paginate) --
        if v < (4, 0, 0):
            self.pagination = 'truncate'          # 3.4.2: silently truncated at 1000
        elif v < (4, 5, 5):
            self.pagination = 'strict'            # 4.0-4.5.x: >1000 -> error, _offset -> 0
        else:
            self.pagination = 'default'           # 4.5.5+: default_page_size 1000
        self.max_results = 1000
        self.size_over_max_is_error = v < (4, 5, 5)
        if v < (4, 4, 0):
            self.get_all_results = None           # not accepted (behaviour §4)
        elif v < (4, 5, 5):
            self.get_all_results = 'no_pagination'   # MGR@4.4/4.5 _paginate: skips size check
        elif v < (5, 1, 0):
            self.get_all_results = 'ignored'      # MGR@4.5.5/5.0.5 _paginate ignores it
        else:
            self.get_all_results = 'all'          # MGR@5.1.0..7.0.4 _paginate
        self.all_tenants_param = v >= (4, 0, 0)   # behaviour §4
        self.pydantic_errors = v >= (7, 0, 0)     # observed-7.0 '_size=abc' variant
        self.list_meta_filtered = v >= (5, 1, 0)  # observed-7.0 '"filtered": null' (MGR@5.1.0+)
        # secrets: is_hidden_value from 4.4 (MGR@4.4 resource_models.py Secret)
        self.secret_hidden_value_field = v >= (4, 4, 0)

        # --- execution states (behaviour §4 'Status values') ----------------------------------
        states = ['pending', 'started', 'cancelling', 'force_cancelling', 'cancelled',
                  'terminated', 'failed']
        if v >= (4, 4, 0):
            states.append('kill_cancelling')
        if v >= (4, 5, 0):
            states.append('queued')
        if v >= (4, 5, 5):
            states.append('scheduled')
        self.execution_states = tuple(states)
        self.cancel_actions = (('cancel', 'force-cancel', 'kill', 'resume', 'force-resume',
                                'requeue') if v >= (7, 0, 0) else
                               ('cancel', 'force-cancel', 'kill') if v >= (4, 4, 0) else
                               ('cancel', 'force-cancel'))
        # behaviour §12.11: GET /executions?status=<unknown> -> 500 (obs 7.0.4: psycopg2 enum
        # error); the status column is a PostgreSQL enum from 4.0 (MGR@4.0..7.0.4
        # storage/resource_models.py 'execution_status'), 3.4.2 filters in Elasticsearch [I]
        self.unknown_status_filter_500 = v >= (4, 0, 0)
        # heal parameters (behaviour §4; MGR@4.2 types.yaml): check_status and allow_reinstall
        # on 7.0 (COMMON@7.0.4 plugins/workflows.py); install_new_agents: see
        # `install_new_agents_params` (_after_cutover_rules)
        self.workflow_params_70 = v >= (7, 0, 0)
        # MGR@4.0+: deployments are created by a create_deployment_environment execution
        self.create_deployment_environment_execution = v >= (4, 0, 0)

        # --- snapshot create (behaviour §3.1 table) -----------------------------------------------
        keys = {'include_metrics': False, 'include_credentials': True}
        if (4, 0, 0) <= v < (4, 3, 0):
            keys['private_resource'] = False
        if v >= (4, 3, 0):
            keys.update(include_logs=True, include_events=True)
        if v >= (4, 5, 0):
            keys['queue'] = False
        if v >= (5, 0, 5):
            del keys['include_metrics']
        if v >= (6, 4, 0):
            keys['tempdir_path'] = None
        if v >= (7, 0, 0):
            keys['legacy'] = False              # 7.0.4 default (behaviour §3.1)
            keys['listener_timeout'] = None
        self.snapshot_create_keys = keys
        self.snapshot_body_must_be_object = True   # behaviour §3.1 (3.4.2: 500 otherwise)
        self.snapshot_id_rules = v >= (4, 4, 0)    # behaviour §3.1 constraints
        self.queue_supported = v >= (4, 5, 0)
        self.system_wide_check = v >= (4, 0, 0)    # behaviour §3.1 '4.x' rule
        # observed-7.0: a rejected restore still leaves a pending row; MGR@4.2 resource_manager
        # checks before creating the row and deletes the snapshot row of a refused create.
        self.rejected_restore_leaves_row = v >= (7, 0, 0)
        self.running_execution_message = (
            'Cannot start execution because there are other executions running e.g.: {ids}'
            if v >= (7, 0, 0) else
            'You cannot start a system-wide execution if there are other executions '
            'running. Currently running executions: {ids}')
        # observed-7.0 lists the ids comma-joined; MGR@4.2 formats the Python list
        self.running_execution_ids_joined = v >= (7, 0, 0)
        # behaviour §3.2: 6.0+ refuse to delete a snapshot while its create/restore runs
        self.snapshot_delete_checks_executions = v >= (6, 0, 0)
        # Snapshot rows (created or uploaded) are `private` from 4.3 (MGR@4.3..7.0.4
        # resource_manager.py create_snapshot_model; behaviour §12.11 'snapshots created by PUT
        # are private'); 4.0-4.2 take the private_resource parameter (behaviour §3.1, §3.4).
        self.snapshot_visibility = 'private' if v >= (4, 3, 0) else 'param'

        # --- snapshot formats (behaviour §12.1, correcting §3.7) --------------------------------
        # 7.0 writes the new per-entity format (mgmt/, tenants/ members) unless the create
        # asks legacy: true (7.0.4 default False, behaviour §3.1); a distributed (Kubernetes)
        # manager never writes a legacy snapshot (MGR@7.0.4 cloudify_system_workflows/
        # snapshot.py `create`).
        self.new_format_create = v >= (7, 0, 0)
        self.distributed = bool(distributed)
        if self.distributed and not self.new_format_create:
            raise ValueError('distributed (Kubernetes) managers are simulated on 7.0 only')

        # --- snapshot archive content (behaviour §3.7, §7.1-§7.3) ------------------------------
        self.per_tenant_agents_json = v >= (4, 1, 0) or update_3 or patch_1
        self.snapshot_has_ssl = v >= (4, 0, 1)
        self.snapshot_has_hash_salt = (4, 2, 0) <= v < (4, 4, 0)
        self.snapshot_has_rest_security = v >= (4, 4, 0)
        self.snapshot_has_license = v >= (4, 6, 0)
        self.snapshot_has_networks = v >= (4, 2, 0)
        # legacy metadata.json (behaviour §12.1, correcting §3.7; MGR@4.0.1/4.1/4.2..7.0.4
        # snapshot_create(_legacy).py `_dump_metadata`, snapshots/utils.py): schema_revision
        # from 4.0.1 on both editions; the stage revision (4.0.1+) and the composer revision
        # (4.1+) are written only when truthy and are None unless the edition is premium.
        # The 7.0.4 legacy create writes no execution_id (only the new format does,
        # MGR@7.0.4 snapshot_create.py `_dump_metadata`).
        self.schema_revision = (None if v < (4, 0, 1) else
                                _SCHEMA_REVISION.get(key, 'sim-{0}'.format(key)))
        self.writes_stage_revision = self.premium and v >= (4, 0, 1)
        self.writes_composer_revision = self.premium and v >= (4, 1, 0)
        # legacy zip members of the UI databases (research of MGR@4.0.1..7.0.4 postgres.py
        # `dump_stage` / `dump_composer`: stage_data whenever the Stage DB exists, i.e. from
        # 4.0.1 [I for community]; composer_data on premium from 4.2, 4.1 dumps stage only)
        self.snapshot_has_stage_data = v >= (4, 0, 1)
        self.snapshot_has_composer_data = self.premium and v >= (4, 2, 0)

        # --- download / upload (behaviour §3.3, §3.4; README on Content-Length) ---------------
        self.rest_sends_content_length = v < (5, 1, 0)
        self.upload_existing = 'replace' if v >= (7, 0, 0) else 'conflict'
        self.upload_private_resource_param = (4, 0, 0) <= v < (4, 3, 0)
        # observed-7.0: filename quoted on 7.0 (MGR@4.2 rest_utils: unquoted)
        self.download_filename_quoted = v >= (7, 0, 0)
        # observed-7.0: an upload with curl's default form content type -> nginx 413 page
        self.upload_form_content_type_413 = v >= (7, 0, 0)

        # --- restore request (behaviour §3.5 table) --------------------------------------------
        required = []
        if v < (6, 0, 0):
            required.append('recreate_deployments_envs')
        if (4, 0, 0) <= v < (4, 1, 0):
            required.append('tenant_name')
        if (4, 5, 0) <= v < (4, 5, 5):
            required.append('ignore_plugin_failure')
        self.restore_required = tuple(required)
        self.restore_has_certificates = v >= (4, 1, 0)
        self.restore_bool_strict = v >= (7, 0, 0)   # behaviour §3.5 'Further details'

        # --- restore workflow (behaviour §3.6, §3.8) -------------------------------------------
        self.accepts_3x_snapshots = v < (5, 0, 0)     # behaviour §3.6 item 3 (5.0.0+ refuse)
        # behaviour §3.6 item 3: 4.1+ restore a 3.x snapshot into the request's tenant; 4.0.x
        # take tenant_name (behaviour §3.5 4.0.x row)
        self.restores_3x_into_request_tenant = v >= (4, 1, 0)
        self.checks_agent_networks = v >= (4, 2, 0)
        self.cert_restore_needs_matching_metadata = (4, 0, 1) <= v < (4, 2, 0)
        if v < (4, 2, 0):
            self.post_restore = 'none'
        elif v < (4, 6, 0):
            self.post_restore = 'after_terminated'    # detached shell, sleep 3, restart
        else:
            self.post_restore = 'inside'              # restart inside the workflow
        self.snapshot_status_flag = v >= (5, 0, 5)
        # MGR@4.5.5..7.0.4 `restore`: the post-restore commands run in `finally`, so a
        # legacy restore that fails after its DB step still runs them (MGR@4.2..4.5.1 only
        # on success, inside the `try`)
        self.post_restore_commands_in_finally = v >= (4, 5, 5)
        # behaviour §12.7: 5.0.5-6.1 keep the REST service up while the restore downgrades and
        # upgrades the database, and REST traffic can deadlock that migration (MGR PR
        # #2937 RD-2110 locks `users` and `maintenance_mode`, which every request's
        # maintenance check and authentication read; PR #3186 RD-2913: "we keep seeing
        # deadlocks with concurrent requests", so from 6.2 `_pause_services` stops
        # cloudify-restservice during that step)
        self.restore_db_swap_serves_rest = (5, 0, 5) <= v < (6, 2, 0)
        # behaviour §12.4: up to 5.0.x the restore installs every deployment's plugins into
        # its environment and a failure fails the restore (MGR@4.4..5.0.5
        # snapshot_restore.py `_restore_deployment_envs`; [I] before 4.4); 5.1 only makes
        # the deployment directories (MGR@5.1.0), plugins install when a workflow needs them
        self.restore_installs_deployment_plugins = (4, 0, 0) <= v < (5, 1, 0)
        # ... `ignore_plugin_failure` is read from 4.5.0 (MGR@4.5 resources_v2/snapshots.py)
        self.restore_reads_ignore_plugin_failure = (4, 5, 0) <= v < (5, 1, 0)
        # 4.5.0-4.5.1 stop at the first failed environment (`raise re`) and, with the flag,
        # delete the deployment (`__remove_failed_deployments_footprints`); 4.5.5-5.0.x
        # restore every environment, keep a skipped deployment without its plugins, and
        # fail at the end listing the failed ones (MGR@4.5.1, 4.5.5, 5.0.5)
        self.ignore_plugin_failure_deletes = (4, 5, 0) <= v < (4, 5, 5)
        self.plugin_failures_collected = (4, 5, 5) <= v < (5, 1, 0)
        # behaviour §2.3: the restore flag file moved to /tmp/cloudify on 7.0.4
        self.snapshot_flag_file = ('tmp/cloudify/snapshot_restoring' if v >= (7, 0, 0) else
                                   'opt/manager/snapshot_status/snapshot_restoring')
        # behaviour §3.8 '6.3+ targets' (legacy route only: the new route returns before the
        # rmtree, MGR@7.0.4 snapshot_restore.py `restore`)
        self.delete_snapshot_after_restore = v >= (6, 3, 0)
        # behaviour §3.8: 7.0 moves every file of the snapshot's ssl/, earlier only the internal
        # CA / certificate / key / p12
        self.cert_restore_moves_all = v >= (7, 0, 0)
        # behaviour §12.1: 7.0 picks the route from metadata.json, whatever the snapshot's
        # version: legacy only with all three schema revision keys (key presence,
        # MGR@7.0.0..7.0.4 snapshot_restore.py `_is_legacy_snapshot`), else the new
        # per-entity route (`scan_snapshot` + `_new_restore`); before 7.0 there is one route.
        self.route_by_metadata_keys = v >= (7, 0, 0)
        # behaviour §12.1: a distributed (Kubernetes) 7.0.3+ manager fails a legacy restore with
        # this message, inside the workflow (MGR@7.0.4 snapshot_restore.py `restore`)
        self.refuses_legacy_restore = self.distributed
        self.legacy_refused_message = ('NonRecoverableError: legacy snapshots cannot be '
                                       'restored on a distributed manager')
        # The 7.0 legacy route's UI database steps (MGR@7.0.0..7.0.4 snapshot_restore.py
        # `_restore_db`, `_restore_stage`, `_restore_composer`; research of those tags):
        # premium targets only; stage: `npm run db-migrate-down-to <rev>` then
        # `psql -f stage_data` -- an empty revision or a missing stage_data fails, forgiven
        # only for snapshots < 4.3 (SnapshotRules.stage_failure_forgiven); composer: skipped
        # when the revision is empty, else composer_data must be present (no forgiveness,
        # snapshots >= 4.2).  An empty/null schema_revision fails at the alembic downgrade.
        self.models_ui_db_restore = v >= (7, 0, 0) and self.premium
        self.checks_schema_revision_value = v >= (7, 0, 0)

        # --- maintenance (behaviour §2.5 table, corrected for 4.6-5.1 from the source) ----------
        # ALLOWED_MAINTENANCE_ENDPOINTS: MGR@4.2/4.5 maintenance.py ALLOWED_ENDPOINTS;
        # MGR@4.6, 5.0.5, 5.2.0, 6.0.0, 7.0.4 rest-service/manager_rest/constants.py
        allowed = ['maintenance', 'status', 'version']
        if v >= (4, 5, 0):
            allowed.append('snapshots')
        if v >= (4, 6, 0):
            allowed = ['status', 'version', 'license', 'maintenance', 'snapshots']
        if v >= (5, 0, 5):
            allowed = ['status', 'version', 'license', 'maintenance', 'cluster-status',
                       'snapshots', 'snapshot-status']
        if v >= (5, 1, 0):
            allowed.append('file-server-auth')
        if v >= (5, 2, 0):
            allowed += ['brokers', 'managers', 'db-nodes', 'cluster', 'config']
        if v >= (6, 0, 0):
            allowed.append('ok')
        self.maintenance_allowed = tuple(allowed)
        # Who may pass maintenance mode with X-BYPASS-MAINTENANCE: 'internal' = only requests
        # from the manager host itself (MGR@4.2 maintenance.py _is_internal_request; MGR@4.6,
        # 5.0.5, 5.1.0 utils.is_internal_request), never a remote client; 'admin' = any
        # request whose user may maintenance_mode_set (MGR@5.2.0..7.0.4 maintenance.py
        # maintenance_mode_handler + is_user_action_allowed).
        self.maintenance_bypass = 'admin' if v >= (5, 2, 0) else 'internal'
        # The 503 body's server_traceback is traceback.print_exc() with no exception active
        # (MGR@4.2..7.0.4 maintenance.py _create_maintenance_error): "NoneType: None\n" on
        # the Python 3 REST service (5.1+, behaviour §12.4 / §12.11), "None\n" on Python 2.7 [I].
        self.maintenance_traceback = 'NoneType: None\n' if v >= (5, 1, 0) else 'None\n'
        # behaviour §12.11: POST /maintenance/activate answers remaining_executions: [[...]] (a
        # trailing comma makes it a tuple; MGR@5.1.1..7.0.4 resources_v2_1/
        # maintenance_mode.py, commit 868e6ba78 RD-554); status activated at once when
        # nothing runs (MGR@4.2+)
        self.maintenance_activate_nested_list = v >= (5, 1, 1)

        # --- clusters (behaviour §12.9, §3.5; Cloudify source named per rule) ---------------------
        # behaviour §12.9: premium clusters of several managers sharing one DB, with broker and
        # DB node entries, listed by GET managers|brokers|db-nodes (5.0.5+); behaviour §3.5: the
        # 4.x premium active/passive HA cluster (`cfy cluster`, GET /cluster, /cluster/nodes;
        # cloudify-manager@4.4 rest-service/manager_rest/rest/resources_v3/cluster.py)
        self.cluster_kind = ('nodes' if self.premium and self.has_cluster_nodes else
                             'ha4' if self.has_old_cluster else None)
        # GET managers|brokers|db-nodes columns beyond the common ones (research of
        # cloudify-manager@5.0.5..7.0.4 rest-service/manager_rest/storage/management_models.py):
        # node_id at 5.0.5; monitoring_username / monitoring_password from 5.1.0 through 6.3.x
        self.cluster_node_extra_fields = (
            ('node_id',) if v < (5, 1, 0) else
            ('monitoring_username', 'monitoring_password') if v < (6, 4, 0) else ())
        # GET cluster-status (cloudify-manager@5.0.5..7.0.4 rest-service/manager_rest/rest/
        # resources_v3_1/cluster_status.py): `?summary=true` answers 500 on Fail from 5.1.0;
        # per-node `metrics` from 5.1.0 (Prometheus, cluster_status_manager.py) and
        # `failures` from 6.4.0 (absent at 6.3.0)
        self.has_cluster_status = v >= (5, 0, 5)
        self.cluster_status_summary_500 = v >= (5, 1, 0)
        self.cluster_status_metrics = v >= (5, 1, 0)
        self.cluster_status_node_failures = v >= (6, 4, 0)
        # services run under supervisord from 7.0 (cloudify-manager-install@7.0.4
        # cfy_manager/utils/service.py `Supervisord`), systemd before [I for the label]
        self.process_manager = 'supervisord' if v >= (7, 0, 0) else 'systemd'
        # behaviour §3.5: cloudify-manager@4.1..4.6 resources_v2/snapshots.py
        # SnapshotsIdRestore.post calls `_verify_no_multi_node_cluster("restore snapshot")`
        # before reading the body: 400 illegal_action_error on a multi-node HA cluster (gone
        # at 5.0.0); upload and create are not refused
        self.restore_refused_on_multi_node_cluster = (4, 1, 0) <= v < (5, 0, 0)
        # A 4.x HA standby answers REST calls with 400 (DOCS 4.4.0-build .. 4.6-build
        # working_with/manager/high-availability-clusters.md 'Finding the Active Cloudify
        # Manager'); the code is the client's NotClusterMaster (cloudify-common@4.4
        # cloudify_rest_client/exceptions.py `not_cluster_master`) [I: the server side is
        # closed source]
        self.ha_standby_status = 400
        self.ha_standby_error_code = 'not_cluster_master'
        # Maintenance mode state: a file of each manager (maintenance_folder) up to 5.1.0, a
        # DB row shared by every manager from 5.1.1 (cloudify-manager commit 868e6ba78 RD-554,
        # first tag 5.1.1; rest-service/manager_rest/maintenance.py get_maintenance_state)
        self.maintenance_state_in_db = v >= (5, 1, 1)
        # `cfy_manager start|stop|restart` (cloudify-manager-install@4.3..7.0.4
        # cfy_manager/main.py); there is no `cfy_manager status` at any tag
        self.has_cfy_manager = v >= (4, 3, 0)

        # --- host files (behaviour §7.1, §7.2) ----------------------------------------------------
        self.has_rest_security_conf = v >= (4, 0, 0)
        # behaviour §7.2 'At install (5.0.5+)': flask_security: of /etc/cloudify/config.yaml
        self.install_reads_config_yaml = v >= (5, 0, 5)
        # behaviour §7.3 'Ways to detect it' item 2: the 4.0.x mgmtworker's snapshot_create.py
        self.has_40x_snapshot_create_file = (4, 0, 0) <= v < (4, 1, 0)
        # behaviour §2.1 'Ports and protocol': where nginx reads the external certificate
        self.external_cert_files = (
            ('etc/cloudify/ssl/cloudify_external_cert.pem',
             'etc/cloudify/ssl/cloudify_external_key.pem') if v >= (4, 0, 0) else
            ('root/cloudify/server.crt', 'root/cloudify/server.key'))
        # behaviour §2.1: an SSL-enabled 4.2+ manager answers 400 on its plain port; 6.0+ a JSON
        # SSL_REQUIRED on ^/api/ (MI@6.0.0 manager.upstream), 4.2-5.x nginx's bare 400
        self.ssl_plain_port_400 = v >= (4, 2, 0)
        self.ssl_required_json = v >= (6, 0, 0)
        self.rest_security_encryption_key_bytes = (0 if v < (4, 4, 0) else
                                                   32 if v < (5, 0, 5) else 64)
        ssl = []
        if v >= (4, 0, 0):
            ssl = ['cloudify_internal_cert.pem', 'cloudify_internal_key.pem',
                   'cloudify_internal.p12', 'cloudify_external_cert.pem',
                   'cloudify_external_key.pem', 'certificate_metadata']
        if v >= (4, 2, 0):
            ssl += ['cloudify_internal_ca_cert.pem', 'cloudify_internal_ca_key.pem']
        if v >= (7, 0, 0):
            ssl += ['cloudify_external_ca_cert.pem', 'cloudify_external_ca_key.pem',
                    'postgresql.crt', 'postgresql.key', 'rabbitmq-cert.pem', 'rabbitmq-key.pem',
                    'rabbitmq-ca.pem', 'rabbitmq-ca-key.pem', 'monitoring_cert.pem',
                    'monitoring_key.pem']
        self.ssl_files = tuple(ssl)
        units = ['cloudify-restservice', 'nginx', 'cloudify-mgmtworker', 'cloudify-rabbitmq']
        if self.has_riemann:
            units.append('cloudify-riemann')
        units.append('elasticsearch' if v < (4, 0, 0) else
                     'postgresql-9.5' if v < (5, 0, 0) else 'postgresql')
        self.units = tuple(units)
        self._after_cutover_rules()

    # ------------------------------------------------------------------------------------
    def _after_cutover_rules(self):
        """Plugins, plugins updates, execution schedules, agents, LDAP / config and the data
        a restore must carry (issue 15).  Citations: behaviour §x, or MGR@tag / COMMON@tag /
        AG@tag / MI@tag = the cloudify-manager / cloudify-common / cloudify-agent source at that
        release tag."""
        v = self.v
        premium = self.edition == 'premium'

        # --- plugins (behaviour §12.4) ----------------------------------------------------------
        # The Python the manager runs plugins with, hence what a wagon built for it declares
        # in supported_py_versions (MI@6.4.0 / MI@7.0.4 cfy_manager/utils/scripts.py).
        self.plugin_python = ('py27' if v < (5, 1, 0) else
                              'py36' if v < (7, 0, 0) else 'py311')
        # POST /plugins accepts a bare wagon everywhere, a zip (wagon + plugin.yaml, what
        # `cfy plugins upload` 7.0.5 sends) from 4.4 (MGR@4.2/4.4 upload_manager.py
        # UploadedPluginsManager._prepare_and_process_doc).
        self.plugin_upload_zip = v >= (4, 4, 0)
        # plan['host_agent_plugins_to_install'] from 5.0 (COMMON@5.0.0 dsl_parser/
        # constants.py HOST_AGENT_PLUGINS_TO_INSTALL; absent at COMMON@4.6)
        self.plan_host_agent_plugins = v >= (5, 0, 0)
        # plugins-updates endpoints from 5.0 (MGR@5.0 endpoint_mapper.py); 5.0.x reads
        # `force` from the query (MGR@5.0.5 resources_v3_1/plugins.py PluginsUpdate.post),
        # 5.1+ a JSON body of filters (MGR@5.1.0), `force` etc. in the body from 5.2
        # (MGR@5.2.0), all_tenants / deployments_per_tenant from 6.4 (MGR@6.4.0
        # resource_models.py PluginsUpdate).
        self.has_plugins_update = v >= (5, 0, 0)      # plugins.py routes: when=
        self.plugins_update_args = ('query' if v < (5, 1, 0) else 'json')
        self.plugins_update_body_force = v >= (5, 2, 0)
        self.plugins_update_per_tenant = v >= (6, 4, 0)

        # --- execution schedules (behaviour §12.5) ---------------------------------------------
        self.has_execution_schedules = v >= (5, 2, 0)
        # GET/PATCH/DELETE by id need ?deployment_id= from 6.0 (MGR@6.0.0 resources_v3_1/
        # execution_schedules.py get_args_and_verify_arguments(required=True))
        self.schedule_needs_deployment_id = v >= (6, 0, 0)
        # the scheduler skips every schedule in maintenance mode from 6.0 (MGR@6.0.0..7.0.4
        # execution-scheduler/execution_scheduler/main.py check_schedules); 5.2.x fires anyway
        self.scheduler_skips_in_maintenance = v >= (6, 0, 0)
        # the rule's frequency key: 'frequency' at 5.2.x, 'recurrence' from 6.0
        # (MGR@5.2.7 utils.get_rrule; MGR@6.0.0 rest_utils.compute_rule_from_scheduling_params)
        self.schedule_rule_key = 'recurrence' if v >= (6, 0, 0) else 'frequency'
        # slip window: `<` at 5.2.x, `<=` from 6.0 (main.py should_run)
        self.scheduler_slip_inclusive = v >= (6, 0, 0)

        # --- agents (behaviour §12.6) -----------------------------------------------------------
        # GET /agents: REST and nginx from 4.5 (MGR@4.5 endpoint_mapper 'Agents'; MI@4.5
        # rest-location.cloudify).
        self.has_agents_endpoint = v >= (4, 5, 0)
        fields = ['id', 'host_id', 'ip', 'install_method', 'system', 'version', 'node',
                  'deployment']
        if v >= (5, 0, 5):
            fields.append('tenant_name')                 # MGR@5.0.5 responses_v3.py
        if v >= (6, 3, 0):
            # MGR@6.3.0 responses_v3.py AgentResponse (absent at 6.2.0): the 6.4 of
            # 6.4 is the first simulated version that has them
            fields = ['id', 'host_id', 'node_instance_id', 'ip', 'install_method', 'system',
                      'version', 'node', 'deployment', 'tenant_name', 'created_at',
                      'rabbitmq_exchange', 'created_by', 'rabbitmq_username', 'visibility',
                      'rabbitmq_password', 'state']
        self.agent_fields = tuple(fields)
        # which hosts install_new_agents moves by default: 4.5+ only the "installed" methods
        # init_script, plugin, remote (COMMON@4.5..7.0.4 workflows.py _create_hosts_list,
        # constants.AGENT_INSTALL_METHODS_INSTALLED); 4.4 every method but 'none'
        # (COMMON@4.4); before 4.4 assumed the same as 4.4 [I]
        self.agent_methods_moved = (('init_script', 'plugin', 'remote') if v >= (4, 5, 0)
                                    else ('init_script', 'plugin', 'remote', 'provided'))
        # declared parameters of install_new_agents in the types a blueprint imports
        # (MGR@4.2..7.0.4 resources/rest-service/cloudify/types/types.yaml): manager_ip,
        # manager_certificate, stop_old_agent from 4.4, install_methods from 4.5
        # (this supersedes the earlier reading "stop_old_agent 4.5+, the other three 7.0")
        params = {'install_agent_timeout': 300, 'node_ids': [], 'node_instance_ids': [],
                  'validate': True, 'install': True, 'install_script': ''}
        if v >= (4, 4, 0):
            params.update(manager_ip='', manager_certificate='', stop_old_agent=False)
        if v >= (4, 5, 0):
            params['install_methods'] = None
        self.install_new_agents_params = params
        # the agents table exists from 4.5.5 (MGR@7.0.4 snapshots/agents.py
        # insert_agent_to_db creates rows, state 'restored', only for snapshots older than
        # 4.5.5: SnapshotRules.has_agents_table); 4.5.0 lists the agents from the node
        # instances (MGR@4.5 list_agents)
        self.has_agents_table = v >= (4, 5, 5)

        # --- config table and LDAP (behaviour §12.3) -------------------------------------------
        # config table (scope rest) and GET /config?scope=, /config/<name> from 5.0
        # (MGR@7.0.4 migrations 423a1643f365_4_6_to_5_0; MGR@5.0.5 manager_config.py)
        self.has_config_table = v >= (5, 0, 0)
        self.config_admin_only = v >= (6, 4, 0)        # migration 272e61bf5f4a (6.4)
        ldap = ['ldap_server', 'ldap_username', 'ldap_password', 'ldap_domain',
                'ldap_is_active_directory', 'ldap_dn_extra', 'ldap_timeout',
                'ldap_nested_levels']
        if (5, 0, 5) <= v < (5, 2, 0):
            ldap.append('ldap_ca_path')                # migration 62a8d746d13b (5.0.5)
        if v >= (5, 2, 0):
            # migration 9d261e90b1f3_5_1_1_to_5_2 NEW_LDAP_CONFIG_ENTRIES; the CA becomes
            # the certificates row _auth-ldap-ca (MGR@5.2.0 manager_rest/config.py)
            ldap += ['ldap_group_members_filter', 'ldap_attribute_group_membership',
                     'ldap_base_dn', 'ldap_group_dn', 'ldap_bind_format',
                     'ldap_user_filter', 'ldap_group_member_filter', 'ldap_attribute_email',
                     'ldap_attribute_first_name', 'ldap_attribute_last_name',
                     'ldap_attribute_uid']
        self.ldap_config_keys = tuple(ldap)
        # GET /ldap ('enabled' / 'disabled') from 4.6 (MGR@4.6..7.0.4 resources_v3/
        # manager.py LdapAuthentication.get); POST /ldap simulated from 5.0, where the
        # settings live in the config table (ldap.py)
        self.has_ldap_status = v >= (4, 6, 0)
        self.has_ldap_set = self.has_config_table
        # POST /ldap: premium only; 5.0.5-5.1 only on a clean manager (no user but the
        # bootstrap admin) (MGR@5.0.5/5.1.0 resources_v3/manager.py, gone at 5.2.0); the
        # ldap:// / ldaps:// + CA rules and ldap_nested_levels from 5.2 [MGR@7.0.4]
        self.ldap_clean_manager_only = v < (5, 2, 0)
        self.ldap_url_rules = v >= (5, 2, 0)
        # an unreachable LDAP server has its own message from 6.2 (MGR@6.2.0 manager.py
        # NotListeningLDAPServer), before: 'Failed setting LDAP authenticator: ...'
        self.ldap_unreachable_message = v >= (6, 2, 0)

        # --- data a restore carries (issue 15 item 6) ---------------------------------------
        # deployment groups, filters, deployment labels, execution schedules: tables created
        # by MGR migration 9d261e90b1f3_5_1_1_to_5_2 (5.2); endpoints 'deployment-groups',
        # 'filters', 'labels/deployments' (MGR@5.2.0 endpoint_mapper.py); 6.0 splits
        # filters into filters/deployments + filters/blueprints and adds blueprint labels
        # (MGR@6.0.0 endpoint_mapper.py, resource_models.py BlueprintLabel)
        self.has_deployment_groups = v >= (5, 2, 0)
        self.has_deployment_labels = v >= (5, 2, 0)
        self.has_blueprint_labels = v >= (6, 0, 0)
        self.filters_api = (None if v < (5, 2, 0) else
                            'filters' if v < (6, 0, 0) else 'split')
        # routes: `filters` 5.2.x, `filters/deployments|blueprints` from 6.0
        self.has_single_filters = self.filters_api == 'filters'
        self.has_split_filters = self.filters_api == 'split'
        # a restore of a snapshot older than 5.3 (SnapshotRules.has_split_filters) onto a
        # split-filters manager loses the filters: the 5.2 -> 5.3 migration drops the
        # `filters` table (MGR@7.0.4 migrations 396303c07e35_5_2_to_5_3
        # _create_filters_tables / op.drop_table('filters'))
        self.migration_drops_old_filters = self.has_split_filters
        # a label's author: creator_id (5.2-6.4), created_by (7.0) (MGR@5.2.0/6.4.0/7.0.0
        # rest/responses.py Label)
        self.label_author_field = 'created_by' if v >= (7, 0, 0) else 'creator_id'
        # system deployment filters created at install (MGR@6.0.0 / 6.4.0
        # packaging/rest-service/files/opt/manager/scripts/create_system_filters.py;
        # MGR@7.0.4 configure_manager.py create_system_filters)
        if v < (6, 0, 0):
            self.system_filters = ()
        elif v < (6, 4, 0):
            self.system_filters = ('csys-environment-filter', 'csys-service-filter')
        else:
            self.system_filters = (
                'csys-environment-filter', 'csys-service-filter', 'csys-k8s-filter',
                'csys-terraform-filter', 'aws-deployments', 'azure-deployments',
                'gcp-deployments', 'terragrunt-deployments', 'helm-deployments',
                'ansible-deployments', 'starlingx-deployments', 'vsphere-deployments',
                'docker-deployments', 'netconf-deployments', 'fabric-deployments',
                'libvirt-deployments', 'utilities-deployments', 'host-pool-deployments',
                'diamond-deployments', 'openstack-deployments', 'openstack-v3-deployments',
                'vcloud-deployments')
        # user groups: premium, endpoint 'user-groups' from 4.0 (MGR@4.0 endpoint_mapper.py;
        # the response class is closed premium code, fields from Group.to_response +
        # COMMON@7.0.4 user_groups.py) [U field set]
        self.has_user_groups_route = v >= (4, 0, 0)      # community: premium-only error
        self.has_user_groups = self.has_user_groups_route and premium
        # secrets carry visibility from 4.3 (behaviour §3.2 tenant fields), private_resource
        # before; global secrets from 4.2 (MGR@4.2 endpoint_mapper 'secrets/<key>/set-global')
        self.secret_global = v >= (4, 2, 0)

    def plugin_fields(self):
        """GET /plugins item fields (MGR@4.0/4.6/5.1.0/6.4.0/7.0.4
        resource_models.py Plugin): 7.0 also shows the pickled `_p` twin columns (null),
        as it shows `parameters_p` of executions (observed-7.0) [I]."""
        v = self.v
        fields = ['id', 'package_name', 'archive_name', 'package_source', 'package_version',
                  'supported_platform', 'distribution', 'distribution_version',
                  'distribution_release', 'wheels', 'excluded_wheels',
                  'supported_py_versions', 'uploaded_at']
        if v >= (4, 6, 0):
            fields += ['file_server_path', 'yaml_url_path']
        if v >= (5, 1, 0):
            fields += ['title', 'installation_state']
        if v >= (6, 4, 0):
            fields += ['blueprint_labels', 'labels', 'resource_tags']
        if v >= (7, 0, 0):
            fields.remove('file_server_path')
            fields += ['excluded_wheels_p', 'supported_platform_p', 'supported_py_versions_p',
                       'wheels_p', 'yaml_files_paths']
        return tuple(fields) + self.tenant_fields()

    def plugins_update_fields(self):
        """MGR@5.0.5..7.0.4 resource_models.py PluginsUpdate (+ SQLResourceBase fields)."""
        fields = ['id', 'state', 'deployments_to_update', 'forced', 'blueprint_id',
                  'temp_blueprint_id', 'execution_id', 'created_at']
        if self.plugins_update_per_tenant:
            fields += ['deployments_per_tenant', 'all_tenants']
        return tuple(fields) + self.tenant_fields()

    def execution_schedule_fields(self):
        """MGR@5.2.7/7.0.4 resource_models.py ExecutionSchedule (+ all_next_occurrences)."""
        return ('id', 'deployment_id', 'workflow_id', 'created_at', 'next_occurrence',
                'since', 'until', 'rule', 'slip', 'parameters', 'execution_arguments',
                'stop_on_fail', 'enabled', 'latest_execution_status',
                'all_next_occurrences') + self.tenant_fields()

    def deployment_group_fields(self):
        """MGR@5.2.0/6.0.0/6.4.0 resource_models.py DeploymentGroup."""
        fields = ['id', 'description', 'default_inputs', 'created_at', 'deployment_ids',
                  'default_blueprint_id']
        if self.v >= (6, 0, 0):
            fields += ['creation_counter', 'labels']
        return tuple(fields) + self.tenant_fields()

    def filter_fields(self):
        """MGR@5.2.0 Filter (labels_filters); MGR@6.0.0..7.0.4 FilterBase."""
        if self.filters_api == 'filters':
            fields = ['id', 'value', 'created_at', 'updated_at', 'labels_filters']
        else:
            fields = ['id', 'value', 'created_at', 'updated_at', 'is_system_filter',
                      'labels_filter_rules', 'attrs_filter_rules']
        return tuple(fields) + self.tenant_fields()

    # ------------------------------------------------------------------------------------
    def execution_fields(self):
        """Execution fields per version (MGR@3.4.2 models.py, @4.4/@4.5/@4.5.5/@6.0.0
        resource_models.py; observed-7.0 §5 'Execution')."""
        v = self.v
        if v >= (7, 0, 0):
            return ('created_at', 'visibility', 'id', 'ended_at', 'error',
                    'is_system_workflow', 'parameters_p', 'parameters', 'status',
                    'workflow_id', 'started_at', 'scheduled_for', 'is_dry_run', 'resume',
                    'total_operations', 'finished_operations', 'allow_custom_parameters',
                    'blueprint_id', 'deployment_display_name', 'deployment_id',
                    'status_display', 'tenant_name', 'created_by', 'resource_availability',
                    'private_resource')
        fields = ['id', 'status', 'deployment_id', 'workflow_id', 'blueprint_id',
                  'created_at', 'error', 'parameters', 'is_system_workflow']
        fields += self.tenant_fields()
        if v >= (4, 4, 0):
            fields.append('ended_at')
        if v >= (4, 5, 0):
            fields.append('started_at')
        if v >= (4, 5, 5):
            fields += ['scheduled_for', 'is_dry_run']
        if v >= (5, 0, 5):
            fields.append('status_display')
        if v >= (6, 0, 0):
            fields += ['resume', 'total_operations', 'finished_operations',
                       'allow_custom_parameters']
        return tuple(fields)

    def tenant_fields(self):
        """behaviour §3.2 'Fields': tenant_name, created_by + private_resource /
        resource_availability (4.0-4.2) or visibility (4.3+)."""
        v = self.v
        if v < (4, 0, 0):
            return ()
        if v < (4, 3, 0):
            return ('tenant_name', 'created_by', 'private_resource', 'resource_availability')
        return ('tenant_name', 'created_by', 'visibility', 'private_resource',
                'resource_availability')

    def snapshot_fields(self):
        """behaviour §3.2; observed-7.0 §5 'Snapshot'."""
        return ('id', 'created_at', 'status', 'error') + self.tenant_fields()

    def describe(self):
        return '{0} {1}{2}'.format(self.key, self.edition,
                                   ' +update-3' if self.update_3 else
                                   ' +patch-1' if self.patch_1 else '')

    def workflow_parameters(self, workflow_id):
        """Declared parameters of the deployment workflows the simulator runs (MGR@4.2
        types.yaml; behaviour §5.3; behaviour §4 heal parameters; COMMON@7.0.4
        plugins/workflows.py)."""
        if workflow_id == 'install_new_agents':
            return dict(self.install_new_agents_params)
        if workflow_id == 'heal':
            params = {'node_instance_id': None, 'diagnose_value': 'Not provided',
                      'ignore_failure': True}
            if self.workflow_params_70:
                params.update(check_status=True, allow_reinstall=True)
            return params
        return {}

    def licence_allows(self, endpoint, method):
        """Is `endpoint` (the first path segment after the API prefix) served without a
        valid licence?  Entries are names or (name, method) pairs, compared like MGR@7.0.4
        utils.py `check_allowed_endpoint` (the closed licence hook is assumed to match the
        same way [U])."""
        for entry in self.licence_allowed:
            if isinstance(entry, tuple):
                if entry[0] == endpoint:
                    return method == entry[1]
            elif entry == endpoint:
                return True
        return False

    def licence_version_older(self, licence_version):
        """behaviour §12.2: a licence whose cloudify_version (major.minor) is older than the
        manager's is refused at upload (400 unverified_cloudify_license) [I: the comparison
        is closed source; we compare major.minor]."""
        return version_tuple(licence_version)[:2] < self.v[:2]

    def restore_route(self, metadata):
        """'legacy' or 'new' for a snapshot whose metadata.json is `metadata` (behaviour §12.1:
        on 7.0 the three keys decide, whatever the snapshot's version; earlier managers have
        the legacy route only)."""
        if not self.route_by_metadata_keys:
            return 'legacy'
        keys = ('schema_revision', 'composer_schema_revision', 'stage_schema_revision')
        return 'legacy' if all(k in metadata for k in keys) else 'new'


class SnapshotRules:
    """The rules that depend on the version of the snapshot being restored (read from its
    metadata.json `snapshot_version`; ManagerVersion drops suffixes such as '-p3-4.0.1',
    behaviour §2.2)."""

    def __init__(self, snapshot_version):
        self.text = str(snapshot_version)
        self.v = sv = version_tuple(self.text)
        self.is_3x = sv < (4, 0, 0)                         # behaviour §3.6 item 3
        # behaviour §3.6 item 2: v4+ snapshots need the bootstrap admin and a clean manager
        self.needs_bootstrap_admin = sv >= (4, 0, 0)
        # behaviour §3.6 item 2: from 4.2 the agent networks must exist on the target
        self.checks_agent_networks = sv >= (4, 2, 0)
        # behaviour §9 item 7: pre-4.2 roles (user/admin) are mapped on 4.2+ targets
        self.has_old_roles = sv < (4, 2, 0)
        # behaviour §3.8 'Effect on credentials': >= 4.2 snapshots install the source admin
        self.installs_source_admin = sv >= (4, 2, 0)
        # behaviour §7.2: 4.2-4.3 carry hash_salt.json, 4.4+ rest-security.conf
        self.carries_rest_security = sv >= (4, 4, 0)
        self.carries_hash_salt = sv >= (4, 2, 0)
        # MGR@7.0.4 snapshot_restore.py `_restore_db`: a failed stage step is only a warning
        # for snapshots older than 4.3; `_restore_composer` runs for >= 4.2 only
        self.stage_failure_forgiven = sv < (4, 3, 0)
        self.restores_composer = sv >= (4, 2, 0)
        # MGR@7.0.4 snapshots/agents.py: snapshots older than 4.5.5 carry no agents table;
        # the restore creates a row per agent (state 'restored', insert_agent_to_db)
        self.has_agents_table = sv >= (4, 5, 5)
        # the split filters tables exist from 5.3 (MGR@7.0.4 migrations
        # 396303c07e35_5_2_to_5_3); older snapshots hold the single `filters` table
        self.has_split_filters = sv >= (5, 3, 0)

    def newer_than(self, rules):
        """behaviour §3.6 item 1: 'Cannot restore a newer manager's snapshot'."""
        return self.v > rules.v
