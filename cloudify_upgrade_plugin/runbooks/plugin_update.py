"""update-plugins: replace the plugins that do not fit the target, after the restore (issue 15).

Runs after the restore and the credentials switch, before the reconciliation and the
cut-over (it changes only the new manager).  From the source inventory's plugins
(``runbooks/plugins.py``) it finds those that do not fit the target.  With ``--wagons
DIR`` it uploads each wagon that replaces one (in the replaced plugin's tenant and with its
visibility; already there or a 409: adopted), then runs the plugins update of every
blueprint that uses one (``plugins-updates/<blueprint>/update/initiate``, 5.0+, behaviour
§12.4), one blueprint at a time, each waited for through its ``update_plugin`` execution and
retried up to ``ATTEMPTS`` times.  Every upload and every blueprint's result is persisted
in ``plugins/state.json`` (atomically, after each change) and listed in the step's journal
entry, so a re-run adopts what a killed run started and redoes only what failed.
``verify`` reads each updated blueprint's plan on the target: no unfit version may remain.

Without ``--wagons`` (or for unfit plugins no wagon replaces) nothing changes: the step
records the exact ``cfy plugins upload`` / ``cfy plugins update`` commands, which the final
output and the report list.
"""
import io
import os
import threading
import zipfile
from typing import List, Optional, Tuple

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.errors import UpgradeError
from cloudify_upgrade_plugin.log import get_logger
from cloudify_upgrade_plugin.manager import waits
from cloudify_upgrade_plugin.runbooks import plugins
from cloudify_upgrade_plugin.runbooks.restore.base import RestoreStep

STATE_FILE = 'plugins/state.json'
META_KEY = 'plugins'
ATTEMPTS = 3
ACTIVE = ('updating', 'executing_workflow', 'finalizing')
DONE = ('successful', 'no_changes_required')
SUCCEEDED, FAILED, STARTED = 'succeeded', 'failed', 'started'


class PluginState:
    """``{"uploads": {key: {...}}, "blueprints": {tenant/blueprint: {...}}}``, persisted."""

    def __init__(self, workspace):
        self.workspace = workspace
        self.lock = threading.Lock()
        self.data = workspace.read_json(STATE_FILE) or {}
        self.data.setdefault('uploads', {})
        self.data.setdefault('blueprints', {})

    def get(self, section, key) -> dict:
        return dict(self.data[section].get(key) or {})

    def update(self, section, key, **fields) -> None:
        with self.lock:
            self.data[section].setdefault(key, {}).update(fields)
            self.workspace.makedirs('plugins')
            self.workspace.write_json(STATE_FILE, self.data)


def target_distribution(target) -> Optional[Tuple[str, str]]:
    """(distribution, release) the target reports, where its restore compares them."""
    if not versions.restore_drops_unfit_wagons(target.version):
        return None
    try:
        data = target.version_data() or {}
    except UpgradeError:
        return None
    if data.get('distribution'):
        return data.get('distribution'), data.get('distro_release')
    return None


def unfit_on(target, workspace) -> dict:
    """The classification of the source's plugins against ``target``."""
    source = workspace.read_json('inventory/source.json') or {}
    return plugins.classify(source.get('plugins'), target.version,
                            target_distribution(target))


def archive_of(wagon: dict) -> bytes:
    """The bytes to upload: a zip of the wagon and its YAML, what ``cfy plugins upload -y``
    7.0.5 sends (cloudify-cli@7.0.4 commands/plugins.py ``upload``; the manager takes it from
    4.3: cloudify-manager@4.3 upload_manager.py ``UploadedPluginsManager``)."""
    with open(wagon['path'], 'rb') as stream:
        raw = stream.read()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as archive:
        archive.writestr(os.path.basename(wagon['path']), raw)
        archive.write(wagon['yaml'], os.path.basename(wagon['yaml']))
    return buffer.getvalue()


class UpdatePlugins(RestoreStep):
    id = 'update-plugins'
    title = 'Replace the plugins that do not fit the target (--wagons) and update the ' \
            'blueprints using them'
    changes = 'with --wagons: uploads wagons to the target and updates the plugins of the ' \
              'blueprints that use unfit ones; without: nothing (prints the commands)'

    def run(self, ctx) -> dict:
        target = ctx.target_manager
        result = unfit_on(target, ctx.workspace)
        unfit = result['unfit']
        summary = {'target': result['target'], 'python': result['python'],
                   'unfit': [_brief(p) for p in unfit],
                   'unknown': [_brief(p) for p in result['unknown']],
                   'wagons': ctx.options.wagons, 'uploads': [], 'blueprints': [],
                   'manual': [], 'reason': None}
        matches = []
        if unfit and ctx.options.wagons:
            matches = plugins.match_wagons(plugins.scan_wagons(ctx.options.wagons), unfit,
                                           target.version, target_distribution(target))
            if matches and not versions.has_plugins_update(target.version):
                summary['reason'] = 'a {0} manager has no plugins update (5.0+)'.format(
                    target.version)
                matches = []
        replaced = {m['package_name'] for m in matches}
        handled = [p for p in unfit if p['package_name'] in replaced]
        manual = [p for p in unfit if p['package_name'] not in replaced]
        summary['manual'] = plugins.manual_commands(manual, result['python'])
        summary['manual_plugins'] = [plugins.plugin_label(p) for p in manual]
        ctx.workspace.update_meta(**{META_KEY: summary})
        if not handled:
            if unfit:
                get_logger().warning('%d plugin(s) do not fit the %s target (Python %s); '
                                     'run these commands once the upgrade is done:\n  %s',
                                     len(unfit), target.version, result['python'],
                                     '\n  '.join(summary['manual']))
            return _journal(summary)
        state = PluginState(ctx.workspace)
        summary['uploads'] = [self._upload(target, state, match, plugin)
                              for match in matches for plugin in _owners(match, handled)]
        since = _started_at(ctx.workspace, self.id)
        for tenant, blueprint, names in plugins.blueprint_updates(handled):
            summary['blueprints'].append(_update_one(
                target, state, tenant, blueprint, names, ctx.options.timeout, since))
        ctx.workspace.update_meta(**{META_KEY: summary})
        failed = [b for b in summary['blueprints'] if b['status'] != SUCCEEDED]
        if failed:
            raise UpgradeError(
                'The plugins update failed for {0} of {1} blueprint(s): {2}.'.format(
                    len(failed), len(summary['blueprints']), '; '.join(
                        '{0}/{1} ({2})'.format(b['tenant'], b['blueprint'], b.get('error'))
                        for b in failed)),
                error_id='plugins-update-failed', details={'failed': failed},
                hints=['Read the update_plugin execution\'s events on the new manager (`cfy '
                       'events list <execution id> -t <tenant>`), fix the cause, then run the '
                       'same command again: only the failed blueprints are updated again.'])
        return _journal(summary)

    def _upload(self, target, state, match, plugin) -> dict:
        """Upload ``match``'s wagon where ``plugin`` lives (once per tenant/visibility)."""
        wagon = match['wagon']
        row = wagon['row']
        tenant, visibility = plugin.get('tenant'), plugin.get('visibility')
        key = '{0}@{1}/{2}'.format(os.path.basename(wagon['path']), tenant, visibility)
        done = state.get('uploads', key)
        if done.get('plugin_id'):
            return dict(done, key=key)
        existing = _find_plugin(target, tenant, row)
        if existing is None:
            label = 'wagon {0} ({1})'.format(os.path.basename(wagon['path']),
                                             plugins.plugin_label(row))
            try:
                existing = target.upload_plugin(archive_of(wagon), tenant=tenant,
                                                visibility=visibility, label=label)
                get_logger().info('Uploaded %s to tenant %s (%s).', label, tenant,
                                  visibility)
            except UpgradeError as error:
                if (error.details or {}).get('status_code') != 409:
                    raise
                existing = _find_plugin(target, tenant, row) or {}
        state.update('uploads', key, plugin_id=existing.get('id'), tenant=tenant,
                     visibility=visibility, package=plugins.plugin_label(row),
                     replaces=plugins.plugin_label(plugin))
        return dict(state.get('uploads', key), key=key)

    def verify(self, ctx) -> None:
        summary = ctx.workspace.meta.get(META_KEY) or {}
        unfit = {(p['package_name'], p['package_version']) for p in summary.get('unfit') or []}
        still = []
        for entry in summary.get('blueprints') or []:
            blueprint = ctx.target_manager.get_blueprint(entry['blueprint'], entry['tenant'],
                                                         include=['id', 'plan'])
            left = sorted(plugins.plan_packages(blueprint.get('plan')) & unfit)
            if left:
                still.append('{0}/{1} still uses {2}'.format(
                    entry['tenant'], entry['blueprint'],
                    ', '.join('{0}=={1}'.format(*p) for p in left)))
        if still:
            raise UpgradeError('The plugins update did not replace every unfit plugin: '
                               '{0}.'.format('; '.join(still)),
                               error_id='plugins-not-updated',
                               hints=['Check the blueprints on the new manager (`cfy '
                                      'blueprints get`) and the plugins updates (`cfy plugins '
                                      'get-update`), then run the same command again.'])


def _brief(plugin) -> dict:
    return {key: plugin.get(key) for key in ('id', 'tenant', 'visibility', 'package_name',
                                             'package_version', 'supported_py_versions',
                                             'supported_platform', 'blueprints', 'reason')}


def _owners(match, handled) -> List[dict]:
    """The replaced plugins of one package, once per (tenant, visibility)."""
    seen, owners = set(), []
    for plugin in handled:
        key = (plugin.get('tenant'), plugin.get('visibility'))
        if plugin['package_name'] == match['package_name'] and key not in seen:
            seen.add(key)
            owners.append(plugin)
    return owners


def _find_plugin(target, tenant, row) -> Optional[dict]:
    for item in target.list_all('plugins', tenant=tenant, include=['id', 'package_name',
                                                                   'package_version'],
                                package_name=row['package_name'],
                                package_version=row['package_version']):
        return item
    return None


def _started_at(workspace, step_id) -> Optional[str]:
    starts = [e['ts'] for e in workspace.journal.step_entries(step_id)
              if e['event'] == 'started']
    return starts[0] if starts else None


def _update_one(target, state, tenant, blueprint, names, timeout, since) -> dict:
    """One blueprint's plugins update, adopted or started, waited for, retried."""
    logger = get_logger()
    key = '{0}/{1}'.format(tenant, blueprint)
    scoped = target.for_tenant(tenant)
    entry = state.get('blueprints', key)
    if entry.get('status') == SUCCEEDED:
        return dict(entry, tenant=tenant, blueprint=blueprint)
    update = None
    if entry.get('status') == STARTED and entry.get('update_id'):
        update = {'id': entry['update_id'], 'execution_id': entry.get('execution_id')}
    else:
        update = _active_update(scoped, tenant, blueprint, since)
    attempts = entry.get('attempts', 0)
    error = None
    for _ in range(ATTEMPTS):
        if update is None:
            attempts += 1
            try:
                update = scoped.start_plugins_update(blueprint, tenant, names)
            except UpgradeError as exc:
                if (exc.details or {}).get('status_code') != 409:
                    raise
                update = _active_update(scoped, tenant, blueprint, None)
                if update is None:
                    error = exc.message
                    continue
            logger.info('Plugins update of %s (%s): %s started.', key, ', '.join(names),
                        update.get('id'))
        state.update('blueprints', key, status=STARTED, update_id=update.get('id'),
                     execution_id=update.get('execution_id'), plugins=names,
                     attempts=attempts)
        error = _wait(scoped, update, tenant, timeout)
        if error is None:
            state.update('blueprints', key, status=SUCCEEDED, error=None)
            return dict(state.get('blueprints', key), tenant=tenant, blueprint=blueprint)
        logger.warning('Plugins update of %s failed: %s', key, error)
        update = None
    state.update('blueprints', key, status=FAILED, error=str(error)[:500])
    return dict(state.get('blueprints', key), tenant=tenant, blueprint=blueprint)


def _active_update(scoped, tenant, blueprint, since) -> Optional[dict]:
    """A plugins update of this blueprint still running (started by this step, if ``since``)."""
    for update in scoped.plugins_updates(blueprint, tenant):
        if since and (update.get('created_at') or '') < since:
            return None
        if update.get('state') in ACTIVE or (since and update.get('state') in DONE):
            return update
        return None
    return None


def _wait(scoped, update, tenant, timeout) -> Optional[str]:
    """None when the update ended well, else why not."""
    if update.get('execution_id'):
        try:
            waits.wait_for_execution(scoped, update['execution_id'], timeout=timeout)
        except UpgradeError as error:
            if error.error_id not in ('execution-failed', 'execution-cancelled'):
                raise
            return error.message
    final = scoped.get_plugins_update(update['id'], tenant)
    if final.get('state') in DONE:
        return None
    return 'plugins update {0} is {1}'.format(update['id'], final.get('state'))


def _journal(summary) -> dict:
    """The journal entry: one result per blueprint, the uploads, the commands left."""
    return {'unfit': len(summary['unfit']), 'unknown': len(summary['unknown']),
            'uploads': [{'package': u.get('package'), 'tenant': u.get('tenant'),
                         'plugin_id': u.get('plugin_id')} for u in summary['uploads']],
            'blueprints': [{'blueprint': '{0}/{1}'.format(b['tenant'], b['blueprint']),
                            'status': b['status'], 'update_id': b.get('update_id'),
                            'attempts': b.get('attempts')} for b in summary['blueprints']],
            'manual_commands': len(summary['manual'])}


def left_to_do(meta: dict) -> List[str]:
    """The commands still to run for plugins no wagon replaced (final output, report)."""
    summary = meta.get(META_KEY) or {}
    if not summary.get('manual'):
        return []
    lines = ['{0} plugin(s) do not fit the new manager (Python {1}){2}: {3}. Upload wagons '
             'built for it and update the blueprints using them:'.format(
                 len(summary.get('manual_plugins') or []), summary.get('python'),
                 ' ({0})'.format(summary['reason']) if summary.get('reason') else '',
                 ', '.join(summary.get('manual_plugins') or []))]
    return lines + ['`{0}`'.format(command) for command in summary['manual']]
