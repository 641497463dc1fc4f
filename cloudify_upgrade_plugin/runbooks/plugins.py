"""Plugins (wagons) across Python versions (behaviour §12.4): which fit the target, and wagons.

Owns: listing a manager's plugins with the fields that say where a wagon runs
(``supported_py_versions``, ``supported_platform``, ``distribution``, ``distribution_release``)
and the blueprints that use each one (their plans, as ``GET /blueprints?_include=id,plan``
shows them: a plugin row names no blueprint); whether a plugin *fits* a target version;
the ``plugins-python`` check of ``plan`` and ``prepare``; reading a ``--wagons`` directory
and matching its wagons to the unfit plugins they replace (bad input: exit 2 before
anything changes); the exact ``cfy plugins upload`` / ``cfy plugins update`` commands to run
by hand.  The step that uploads and updates is ``runbooks/plugin_update.py``.

What *fits* means follows how the target installs a managed plugin
(cloudify-common@7.0.4 cloudify/plugin_installer.py): the interpreter is the highest of the
wagon's ``supported_py_versions`` the manager has, else the manager's own Python
(``_PythonExecutables.version_for_plugin``); a manager has one plugin Python
(``versions.plugin_python``), so a wagon fits when it declares that one.  Its platform must
be installable there (``_is_plugin_supported``: ``any``, ``manylinux*``, or ``linux_<arch>``
of the manager's machine, assumed x86_64).  Targets that keep only the wagons of their own
distribution during the restore (4.x-5.0.x, ``versions.restore_drops_unfit_wagons``) also
compare distribution and release with the target's (cloudify-manager@5.0.5
snapshot_restore.py ``_plugin_installable_on_current_platform``).  A wagon that declares no
readable Python version is *unknown*: listed, not replaced.
"""
import json
import os
import re
import tarfile
from typing import Dict, Iterable, List, Optional, Tuple

from cloudify_upgrade_plugin import versions
from cloudify_upgrade_plugin.engine.checks import PASS, WARN
from cloudify_upgrade_plugin.errors import InputError

# Blueprint plan keys that list plugins (cloudify-common@7.0.4 dsl_parser/constants.py).
PLAN_KEYS = ('deployment_plugins_to_install', 'workflow_plugins_to_install',
             'host_agent_plugins_to_install')
PLUGIN_FIELDS = ['id', 'package_name', 'package_version', 'supported_py_versions',
                 'supported_platform', 'distribution', 'distribution_release']
MACHINE = 'x86_64'
WAGON_METADATA = 'package.json'          # wagon 1.0 METADATA_FILE_NAME
_PY_RE = re.compile(r'^(?:py|cp)?(\d)\.?(\d+)$')


# -- reading a manager --------------------------------------------------------------------

def list_plugins(lister) -> Optional[Dict[str, list]]:
    """{tenant: [plugin rows]} through an ``inventory.Lister`` (None: no plugins list)."""
    field = versions.visibility_field(lister.manager.version)
    return lister.by_tenant('plugins', PLUGIN_FIELDS + ([field] if field else []))


def plugin_label(row) -> str:
    return '{0}=={1}'.format(row.get('package_name'), row.get('package_version'))


def plan_packages(plan) -> set:
    """(package_name, package_version) of the managed plugins a blueprint plan names."""
    found = set()
    for key in PLAN_KEYS:
        for entry in (plan or {}).get(key) or []:
            if isinstance(entry, dict) and entry.get('package_name'):
                found.add((entry['package_name'], entry.get('package_version')))
    return found


def describe_plugins(grouped: Dict[str, list], usage: Dict[tuple, set]) -> List[dict]:
    """Every plugin once (by id), with the blueprints (``tenant/blueprint``) that use it: a
    blueprint uses a plugin of its own tenant, or a global one, of the same package name
    and version."""
    plugins = {}
    for tenant, rows in sorted(grouped.items()):
        for row in rows:
            pid = row.get('id')
            if pid in plugins:
                continue
            visibility = row.get('visibility') or row.get('resource_availability')
            owner = row.get('tenant_name') or tenant
            users = usage.get((row.get('package_name'), row.get('package_version')), set())
            plugins[pid] = {
                'id': pid, 'tenant': owner, 'visibility': visibility,
                'package_name': row.get('package_name'),
                'package_version': row.get('package_version'),
                'supported_py_versions': row.get('supported_py_versions'),
                'supported_platform': row.get('supported_platform'),
                'distribution': row.get('distribution'),
                'distribution_release': row.get('distribution_release'),
                'blueprints': sorted('{0}/{1}'.format(t, b) for t, b in users
                                     if visibility == 'global' or t == owner)}
    return sorted(plugins.values(), key=lambda p: (p['package_name'] or '',
                                                   p['tenant'] or '', p['id'] or ''))


# -- fitting a target ---------------------------------------------------------------------

def parse_py_versions(declared) -> List[Tuple[int, int]]:
    """``["py27", "py3.11", "3.6"]`` -> ``[(2, 7), (3, 11), (3, 6)]``; unreadable items are
    left out, as ``_PythonExecutables._parse_supported_versions`` does."""
    parsed = []
    for item in declared or []:
        match = _PY_RE.match(str(item).strip().lower())
        if match:
            parsed.append((int(match.group(1)), int(match.group(2))))
    return parsed


def python_label(python: Tuple[int, int]) -> str:
    return '{0}.{1}'.format(*python)


def platform_fits(platform) -> bool:
    """``_is_plugin_supported`` on a linux x86_64 manager."""
    platform = platform or ''
    if platform == 'any' or platform.startswith('manylinux'):
        return True
    return platform == 'linux_' + MACHINE


def fit(plugin: dict, target, distribution: Optional[Tuple[str, str]] = None
        ) -> Tuple[Optional[bool], str]:
    """(True | False | None for unknown, why) for one plugin row on a ``target`` version;
    ``distribution`` = the target's (name, release), when known."""
    python = versions.plugin_python(target)
    declared = parse_py_versions(plugin.get('supported_py_versions'))
    platform = plugin.get('supported_platform')
    if not platform_fits(platform):
        return False, 'platform {0} is not installable on a linux {1} manager'.format(
            platform or '(none)', MACHINE)
    if distribution and versions.restore_drops_unfit_wagons(target) and platform != 'any':
        wanted = tuple(str(part or '').lower() for part in distribution)
        found = (str(plugin.get('distribution') or '').lower(),
                 str(plugin.get('distribution_release') or '').lower())
        if found != wanted:
            return False, 'built on {0} {1}, the {2} target runs {3} {4} and drops it ' \
                          'during the restore'.format(found[0] or '?', found[1] or '?',
                                                      target, *wanted)
    if not declared:
        return None, 'declares no Python version ({0!r}): the target would run it with ' \
                     'its own Python {1}'.format(plugin.get('supported_py_versions'),
                                                 python_label(python))
    if python in declared:
        return True, 'built for Python {0}'.format(python_label(python))
    return False, 'built for Python {0}; a {1} manager runs plugins with Python {2}'.format(
        ', '.join(python_label(p) for p in declared), target, python_label(python))


def classify(plugins: Optional[List[dict]], target,
             distribution: Optional[Tuple[str, str]] = None) -> dict:
    """``{python, target, fit, unfit: [plugin + reason], unknown: [...]}`` for a target."""
    result = {'target': str(target), 'python': python_label(versions.plugin_python(target)),
              'fit': 0, 'unfit': [], 'unknown': []}
    for plugin in plugins or []:
        fits, reason = fit(plugin, target, distribution)
        if fits:
            result['fit'] += 1
        else:
            result['unfit' if fits is False else 'unknown'].append(dict(plugin,
                                                                        reason=reason))
    return result


def affected_blueprints(unfit: Iterable[dict]) -> List[str]:
    return sorted({bp for plugin in unfit for bp in plugin.get('blueprints') or []})


# -- the plan / prepare check ---------------------------------------------------------------

def check_plugins(rows: Optional[List[dict]], source, target) -> tuple:
    """``plugins-python`` (warn): the plugins (``rows``, as ``describe_plugins`` makes them)
    of a ``source`` manager that do not fit the ``target`` version (the newest when None)."""
    target = target or versions.NEWEST_TARGET
    if rows is None:
        return PASS, 'This {0} manager lists no plugins.'.format(source)
    result = classify(rows, target)
    details = {'target': result['target'], 'python': result['python'],
               'unfit': [_brief(p) for p in result['unfit']],
               'unknown': [_brief(p) for p in result['unknown']]}
    if not result['unfit'] and not result['unknown']:
        return PASS, 'Every plugin ({0}) fits a {1} manager (Python {2}).'.format(
            result['fit'], target, result['python']), details
    parts = []
    if result['unfit']:
        parts.append(
            '{0} plugin(s) do not fit a {1} manager (Python {2}); the first heal, scale or '
            'uninstall of their deployments there fails until new wagons are uploaded and '
            'the blueprints updated: {3}.'.format(
                len(result['unfit']), target, result['python'],
                '; '.join(describe_unfit(p) for p in result['unfit'])))
    if result['unknown']:
        parts.append('{0} plugin(s) declare no Python version: {1}.'.format(
            len(result['unknown']), ', '.join(plugin_label(p) for p in result['unknown'])))
    parts.append('Give new-host / in-place --wagons DIR with wagons built for Python {0}, '
                 'or run the commands it prints.'.format(result['python']))
    return WARN, ' '.join(parts), details


def _brief(plugin) -> dict:
    return {key: plugin.get(key) for key in ('id', 'tenant', 'visibility', 'package_name',
                                             'package_version', 'supported_py_versions',
                                             'supported_platform', 'distribution',
                                             'blueprints', 'reason')}


def describe_unfit(plugin) -> str:
    users = plugin.get('blueprints') or []
    return '{0} ({1}{2}; {3})'.format(
        plugin_label(plugin), plugin.get('reason'),
        '' if plugin.get('visibility') != 'global' else ', global',
        'used by ' + ', '.join(users) if users else 'no blueprint uses it')


# -- commands to run by hand ------------------------------------------------------------------

def manual_commands(unfit: List[dict], python: str) -> List[str]:
    """``cfy plugins upload`` for each unfit plugin, then ``cfy plugins update`` for each
    blueprint using one (the options cfy 7.0.5 has: ``-y/--yaml-path`` is required,
    ``-t``, ``--visibility``; ``update BLUEPRINT --plugin-name NAME -t TENANT``)."""
    commands, seen = [], set()
    for plugin in unfit:
        key = (plugin['package_name'], plugin.get('tenant'), plugin.get('visibility'))
        if key in seen:
            continue
        seen.add(key)
        commands.append(
            'cfy plugins upload <wagon of {0} newer than {1}, built for Python {2}> -y <its '
            'plugin.yaml> -t {3}{4}'.format(
                plugin['package_name'], plugin['package_version'], python,
                plugin.get('tenant') or 'default_tenant',
                ' --visibility global' if plugin.get('visibility') == 'global' else ''))
    for tenant, blueprint, names in blueprint_updates(unfit):
        commands.append('cfy plugins update {0} -t {1} {2}'.format(
            blueprint, tenant, ' '.join('--plugin-name {0}'.format(n) for n in names)))
    return commands


def blueprint_updates(unfit: List[dict]) -> List[Tuple[str, str, List[str]]]:
    """[(tenant, blueprint, [package names to update])] in a stable order."""
    names = {}
    for plugin in unfit:
        for ref in plugin.get('blueprints') or []:
            tenant, _, blueprint = ref.partition('/')
            names.setdefault((tenant, blueprint), set()).add(plugin['package_name'])
    return [(t, b, sorted(n)) for (t, b), n in sorted(names.items())]


# -- --wagons DIR ---------------------------------------------------------------------------

def _bad_wagons(message, hints=None) -> InputError:
    return InputError(message, error_id='bad-wagons', hints=hints or [
        'Give --wagons a directory of wagons (NAME.wgn, each with its plugin YAML as '
        'NAME.yaml) built for the new manager\'s Python, one for each plugin the plan lists '
        'as unfit.'])


def read_wagon(path) -> dict:
    """The ``package.json`` of a wagon (a tar.gz holding ``<name>/package.json``)."""
    try:
        with tarfile.open(path, 'r:*') as tar:
            for member in tar.getmembers():
                parts = member.name.strip('/').split('/')
                if parts[-1] == WAGON_METADATA and len(parts) <= 2 and member.isfile():
                    return json.loads(tar.extractfile(member).read().decode('utf-8'))
    except (OSError, tarfile.TarError, EOFError, ValueError, UnicodeDecodeError) as error:
        raise _bad_wagons('{0} is not a readable wagon: {1}.'.format(path, error))
    raise _bad_wagons('{0} is not a wagon: it holds no {1}.'.format(path, WAGON_METADATA))


def scan_wagons(directory) -> List[dict]:
    """Every ``*.wgn`` of ``directory``: ``{path, yaml, row}`` (row: a plugin row made from
    the wagon's metadata, as the manager makes it)."""
    if not directory:
        return []
    if not os.path.isdir(directory):
        raise _bad_wagons('--wagons {0}: no such directory.'.format(directory))
    try:
        names = sorted(os.listdir(directory))
    except OSError as error:
        raise _bad_wagons('--wagons {0} cannot be read: {1}.'.format(
            directory, error.strerror))
    wagons = []
    for name in names:
        if not name.endswith('.wgn'):
            continue
        path = os.path.join(directory, name)
        if not os.access(path, os.R_OK):
            raise _bad_wagons('{0} cannot be read.'.format(path))
        meta = read_wagon(path)
        build = meta.get('build_server_os_properties') or {}
        yaml = path[:-len('.wgn')] + '.yaml'
        if not os.access(yaml, os.R_OK):
            raise _bad_wagons('{0} has no readable {1} next to it: the new manager resolves a '
                              'blueprint\'s plugin imports from the plugin YAML (`cfy plugins '
                              'upload` 7.0.5 requires one, -y).'.format(
                                  path, os.path.basename(yaml)))
        wagons.append({'path': path, 'yaml': yaml,
                       'row': {'package_name': meta.get('package_name'),
                               'package_version': meta.get('package_version'),
                               'supported_py_versions': meta.get('supported_python_versions'),
                               'supported_platform': meta.get('supported_platform'),
                               'distribution': build.get('distribution'),
                               'distribution_release': build.get('distribution_release')}})
    if not wagons:
        raise _bad_wagons('--wagons {0} holds no wagon (*.wgn).'.format(directory))
    return wagons


def _version_key(text) -> tuple:
    return tuple((0, int(p)) if p.isdigit() else (1, p)
                 for p in re.split(r'[.\-]', str(text or '')))


def match_wagons(wagons: List[dict], unfit: List[dict], target,
                 distribution=None) -> List[dict]:
    """Which wagon replaces which unfit plugin: ``[{wagon, plugin ids, package_name}]``.

    Every wagon must fit the target and replace at least one unfit plugin: same package,
    a newer version (the plugins update takes the newest version the tenant sees);
    otherwise ``bad-wagons`` (exit 2).  The newest fitting wagon of a package is used.
    """
    chosen = {}
    for wagon in wagons:
        row = wagon['row']
        fits, reason = fit(row, target, distribution)
        label = '{0} ({1})'.format(os.path.basename(wagon['path']), plugin_label(row))
        if not fits:
            raise _bad_wagons('{0} does not fit the {1} target either: {2}.'.format(
                label, target, reason))
        replaced = [p for p in unfit if p['package_name'] == row['package_name']]
        if not replaced:
            raise _bad_wagons('{0} replaces no unfit plugin (unfit: {1}).'.format(
                label, ', '.join(sorted({plugin_label(p) for p in unfit})) or 'none'))
        older = [p for p in replaced
                 if _version_key(p['package_version']) >= _version_key(
                     row['package_version'])]
        if older:
            raise _bad_wagons('{0} is not newer than the unfit {1}: the plugins update '
                              'takes the newest version, so it would keep the old one.'
                              .format(label, plugin_label(older[0])))
        current = chosen.get(row['package_name'])
        if current is None or _version_key(row['package_version']) > _version_key(
                current['row']['package_version']):
            chosen[row['package_name']] = wagon
    return [{'package_name': name, 'wagon': wagon,
             'replaces': [p['id'] for p in unfit if p['package_name'] == name]}
            for name, wagon in sorted(chosen.items())]
