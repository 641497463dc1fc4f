"""What new-host and in-place do after the restore besides credentials and agents (issue 15).

The glue between ``restore/command.py`` and the issue-15 modules: the steps
(``update-plugins``: ``plugin_update.py``; ``restore-ldap``: ``ldap.py``) that run after the
credentials switch and before the reconciliation; the input checks of ``--wagons``,
``--ldap-bind-password-file`` and ``--ldap-ca-file`` (``InputError``, exit 2, before
anything changes); and what the final output, the ``--json`` document and report.md show:
the reconciliation table (``reconcile.py``), the plugins (replaced, or the commands to run),
LDAP (set, or the ``cfy ldap set`` command).
"""
from typing import List, Tuple

from cloudify_upgrade_plugin.errors import InputError
from cloudify_upgrade_plugin.runbooks import ldap, plugin_update, plugins, reconcile


def steps() -> list:
    """The steps between the credentials and the reconciliation, in order."""
    return [plugin_update.UpdatePlugins(), ldap.RestoreLdap()]


def validate_inputs(options, workspace, target) -> None:
    """Bad --wagons / LDAP files are exit 2 before anything changes."""
    source = workspace.read_json('inventory/source.json')
    ldap.validate_options(options, source)
    if not options.wagons:
        return
    if source is None or source.get('plugins') is None:
        raise InputError('--wagons {0}: prepare recorded no plugins for upgrade {1} (an '
                         'older plugin, or a source that lists none), so no wagon can '
                         'replace one.'.format(options.wagons, workspace.upgrade_id),
                         error_id='bad-wagons', hints=['Leave --wagons out.'])
    wagons = plugins.scan_wagons(options.wagons)
    result = plugin_update.unfit_on(target, workspace)
    plugins.match_wagons(wagons, result['unfit'], target.version,
                         plugin_update.target_distribution(target))


def plugins_document(meta: dict) -> dict:
    """The ``plugins`` part of the new-host / in-place document."""
    summary = meta.get(plugin_update.META_KEY) or {}
    return {'python': summary.get('python'), 'unfit': summary.get('unfit') or [],
            'unknown': summary.get('unknown') or [], 'uploads': summary.get('uploads') or [],
            'blueprints': summary.get('blueprints') or [],
            'commands': summary.get('manual') or []}


def left_to_do(meta: dict) -> List[str]:
    return plugin_update.left_to_do(meta) + ldap.left_to_do(meta)


def result_lines(document: dict) -> List[str]:
    """Reconciliation table, plugins and LDAP lines of the final output."""
    recon = document.get('reconciliation') or {}
    lines = reconcile.table_lines(recon) or [
        'Reconciliation: {0}.'.format('no difference' if recon.get('ok') else
                                      'not done' if recon.get('ok') is None else
                                      recon.get('differences'))]
    doc = document.get('plugins') or {}
    if doc.get('unfit'):
        updated = [b for b in doc.get('blueprints') or [] if b.get('status') == 'succeeded']
        lines.append('Plugins: {0} did not fit the new manager (Python {1}): {2}.'.format(
            len(doc['unfit']), doc.get('python'),
            ', '.join(plugins.plugin_label(p) for p in doc['unfit'])))
        if doc.get('uploads'):
            lines.append('  uploaded: {0}; blueprints updated: {1}.'.format(
                ', '.join(sorted({u.get('package') or '?' for u in doc['uploads']})),
                ', '.join('{0}/{1}'.format(b['tenant'], b['blueprint']) for b in updated)
                or 'none'))
    state = document.get('ldap') or {}
    if state.get('enabled_on_source'):
        lines.append('LDAP: {0}.'.format('set on the new manager (server {0})'.format(
            state.get('server')) if state.get('applied') else 'not set ({0})'.format(
            state.get('reason'))))
    return lines


def report_sections(meta: dict) -> List[Tuple[str, List[str]]]:
    """Sections of report.md: the reconciliation table, plugins, LDAP."""
    sections = []
    table = reconcile.markdown(meta.get('reconciliation'))
    if table:
        sections.append(('Reconciliation', table + _details(meta.get('reconciliation'))))
    plugin_lines = _plugin_markdown(meta.get(plugin_update.META_KEY) or {})
    if plugin_lines:
        sections.append(('Plugins', plugin_lines))
    state = meta.get(ldap.STATE_KEY) or {}
    if state.get('enabled_on_source'):
        sections.append(('LDAP', ['Set on the new manager (server {0}).'.format(
            state.get('server'))] if state.get('applied') else [
            'Not set on the new manager: {0}. Run:'.format(state.get('reason')), '',
            '    {0}'.format(state.get('command'))]))
    return sections


def _details(recon) -> List[str]:
    lines = ['- difference: ' + line for line in reconcile.difference_lines(recon)]
    for loss in recon.get('expected') or []:
        lines.append('- expected loss: {0}: {1} ({2})'.format(
            loss.get('kind'), ', '.join(loss.get('items') or []), loss.get('reason')))
    for item in recon.get('attention') or []:
        lines.append('- attention: {0} {1}: {2} ({3})'.format(
            item.get('tenant'), item.get('kind'), ', '.join(item.get('items') or []),
            item.get('reason')))
    return [''] + lines if lines else []


def _plugin_markdown(summary: dict) -> List[str]:
    if not summary.get('unfit') and not summary.get('unknown'):
        return ['Every plugin fits the new manager (Python {0}).'.format(
            summary['python'])] if summary.get('python') else []
    lines = ['Plugins that do not fit the new manager (Python {0}):'.format(
        summary.get('python')), '', '| plugin | tenant | visibility | why | blueprints |',
        '|---|---|---|---|---|']
    for plugin in summary.get('unfit') or []:
        lines.append('| {0} | {1} | {2} | {3} | {4} |'.format(
            plugins.plugin_label(plugin), plugin.get('tenant'), plugin.get('visibility'),
            plugin.get('reason'), ', '.join(plugin.get('blueprints') or []) or '-'))
    for plugin in summary.get('unknown') or []:
        lines.append('| {0} | {1} | {2} | unknown: {3} | {4} |'.format(
            plugins.plugin_label(plugin), plugin.get('tenant'), plugin.get('visibility'),
            plugin.get('reason'), ', '.join(plugin.get('blueprints') or []) or '-'))
    if summary.get('blueprints'):
        lines += ['', 'Plugins updates (one per blueprint):', '']
        for entry in summary['blueprints']:
            lines.append('- {0}/{1}: {2} (update {3}, {4} attempt(s))'.format(
                entry.get('tenant'), entry.get('blueprint'), entry.get('status'),
                entry.get('update_id'), entry.get('attempts')))
    if summary.get('manual'):
        lines += ['', 'Commands to run{0}:'.format(
            ' ({0})'.format(summary['reason']) if summary.get('reason') else ''), '']
        lines += ['    {0}'.format(command) for command in summary['manual']]
    return lines
