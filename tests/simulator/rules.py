"""The per-version rule table of the simulated managers (one place for every version rule).

Every handler of the simulator asks a :class:`Rules` object instead of comparing versions
itself.  Each rule carries a citation of the reference line it comes from:
``behaviour §x`` = docs/manager-behaviour.md (its §13 holds the API matrix),
``observed-7.0`` = docs/manager-7.0-observed.md, ``MGR@tag:path`` = a rule read
in the cloudify-manager source where the references are silent (listed in README.md).
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


class Rules(object):
    """Everything that differs between versions, computed once per simulated manager."""

    def __init__(self, spec, edition='premium', update_3=False, patch_1=False,
                 security_enabled=None):
        key, update_3, patch_1 = parse_spec(spec, update_3, patch_1)
        if edition not in ('premium', 'community'):
            raise ValueError('edition must be premium or community')
        self.key = key
        self.edition = edition
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
        self.has_agents_endpoint = v >= (5, 0, 5)               # behaviour §2.1 (5.0.5 adds agents)
        self.has_sites = v >= (5, 0, 5)                         # README assumption (5.0)
        self.has_license = v >= (4, 6, 0) and edition == 'premium'   # behaviour §11 [I]
        self.has_old_cluster = (4, 0, 0) <= v < (5, 0, 5) and edition == 'premium'
        self.has_user_endpoint = v >= (4, 0, 0)
        self.users_premium_only = v >= (4, 0, 0)                # observed-7.0 /users community 404
        self.v1_status = v < (7, 0, 0)                          # behaviour §2.3 (gone in 7.0.0)
        self.new_status_shape = v >= (5, 0, 5)                  # behaviour §2.3 (v3.1, 5.0.5+)
        self.tokens_post = v >= (7, 0, 0)                       # observed-7.0 'POST /tokens'
        self.has_riemann = v < (5, 0, 0)                        # behaviour §7.4 (removed 5.0.0)

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

        # --- snapshot archive content (behaviour §3.7, §7.1-§7.3) ------------------------------
        self.per_tenant_agents_json = v >= (4, 1, 0) or update_3 or patch_1
        self.snapshot_has_ssl = v >= (4, 0, 1)
        self.snapshot_has_hash_salt = (4, 2, 0) <= v < (4, 4, 0)
        self.snapshot_has_rest_security = v >= (4, 4, 0)
        self.snapshot_has_license = v >= (4, 6, 0)
        self.snapshot_has_networks = v >= (4, 2, 0)
        self.snapshot_execution_id = v >= (7, 0, 0)
        self.schema_revision = (None if v < (4, 0, 1) else
                                _SCHEMA_REVISION.get(key, 'sim-{0}'.format(key)))
        self.has_composer = v >= (4, 1, 0)
        self.has_stage_revision = v >= (4, 0, 1)

        # --- download / upload (behaviour §3.3, §3.4; README on Content-Length) ---------------
        self.rest_sends_content_length = v < (5, 1, 0)
        self.upload_existing = 'replace' if v >= (7, 0, 0) else 'conflict'
        self.upload_private_resource_param = (4, 0, 0) <= v < (4, 3, 0)

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
        self.checks_agent_networks = v >= (4, 2, 0)
        self.cert_restore_needs_matching_metadata = (4, 0, 1) <= v < (4, 2, 0)
        if v < (4, 2, 0):
            self.post_restore = 'none'
        elif v < (4, 6, 0):
            self.post_restore = 'after_terminated'    # detached shell, sleep 3, restart
        else:
            self.post_restore = 'inside'              # restart inside the workflow
        self.snapshot_status_flag = v >= (5, 0, 5)
        self.delete_snapshot_after_restore = v >= (6, 3, 0)
        self.new_format_restore = v >= (7, 0, 0)      # behaviour §3.6 item 5

        # --- maintenance (behaviour §2.5 table; MGR@7.0.4 constants.py) -----------------------
        allowed = ['maintenance', 'status', 'version']
        if v >= (4, 5, 0):
            allowed.append('snapshots')
        if v >= (5, 0, 5):
            allowed = ['brokers', 'managers', 'db-nodes', 'cluster', 'config', 'status',
                       'version', 'license', 'maintenance', 'cluster-status',
                       'file-server-auth', 'ok', 'snapshots', 'snapshot-status']
        self.maintenance_allowed = tuple(allowed)

        # --- host files (behaviour §7.1, §7.2) ----------------------------------------------------
        self.has_rest_security_conf = v >= (4, 0, 0)
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
