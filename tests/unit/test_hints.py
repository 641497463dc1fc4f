"""Every option a message names exists (issue 17 item 13).

Hints, check messages, help texts and docstrings are collected as they are in the code: every
string constant of every module of ``cloudify_upgrade_plugin`` (parsed with ``ast``, so
implicitly concatenated strings are one text).  Each ``--option`` in them must exist:

- after a ``cfy <group> <command>`` written in the same phrase (`cfy profiles set --ssh-user
  ...`, `cfy executions list --all-tenants`): on that cfy command, found by walking cfy's own
  click groups (the manager variants of executions, deployments...);
- in a text of a module that builds another cfy command from parts (``FRAGMENTS``: the
  `cfy ldap set` options of the LDAP settings, the `cfy plugins upload|update` options of
  the commands printed for unfit plugins): on that cfy command, checked here too;
- after `cfy_cluster_manager <command>` (``OTHER_TOOLS``: the cluster tool of
  cloudify-cosmo/cloudify-cluster-manager, not a cfy command, so not introspectable): left
  to that tool;
- otherwise (`--waive ssh-access --reason TEXT`, `--users reset-passwords`): on some
  `cfy upgrade` command, found by introspecting the plugin's click group.
"""
import ast
import os
import re

import click
import pytest

import cloudify_upgrade_plugin
from cloudify_upgrade_plugin.cli import upgrade

PACKAGE = os.path.dirname(os.path.abspath(cloudify_upgrade_plugin.__file__))
OPTION = re.compile(r'(?<![\w-])--[a-z][a-z0-9-]*')
CFY = re.compile(r'\bcfy ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)*)')
# What ends the phrase a `cfy ...` command was written in.
PHRASE_END = re.compile(r'`|\)|;|\. |, ')
# Options named on purpose although no command has them, with the sentence that says so.
NAMED_AS_ABSENT = {'--force': 'There is no blanket --force'}
# Modules that assemble a cfy command's options from separate strings: {module: cfy words}.
FRAGMENTS = {'runbooks/ldap.py': [('ldap', 'set')],
             'runbooks/plugins.py': [('plugins', 'upload'), ('plugins', 'update')]}
# Commands of other tools (not cfy): the options written after them are theirs.
OTHER_TOOLS = re.compile(r'\bcfy_cluster_manager [a-z-]+')


def _texts():
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if not name.endswith('.py'):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding='utf-8') as stream:
                tree = ast.parse(stream.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    yield os.path.relpath(path, PACKAGE), node.lineno, node.value


def _options(command):
    names = {'--help'}
    for param in command.params:
        names.update(opt for opt in getattr(param, 'opts', ()) if opt.startswith('--'))
        names.update(opt for opt in getattr(param, 'secondary_opts', ())
                     if opt.startswith('--'))
    return names


def _cfy_groups():
    """cfy's top-level commands, manager variants first (cfy picks local or manager ones by
    the active profile when it starts)."""
    import cloudify_cli.main as cfy_main
    from cloudify_upgrade_plugin.registration import cfy_root
    root = cfy_root()
    groups = dict(root.commands)
    for name in dir(cfy_main):
        if name.startswith('manager_'):
            value = getattr(cfy_main, name)
            if isinstance(value, click.Command):
                groups[value.name] = value
    return root, groups


def _resolve(words):
    """The cfy click command that ``cfy WORDS`` names, and the options along its path."""
    root, groups = _cfy_groups()
    ctx = click.Context(root)
    command, options = root, _options(root)
    for index, word in enumerate(words):
        if not isinstance(command, click.Group):
            break
        sub = groups.get(word) if index == 0 else command.get_command(ctx, word)
        if sub is None:
            break
        ctx = click.Context(sub, parent=ctx)
        command = sub
        options |= _options(sub)
    return command, options


UPGRADE_OPTIONS = set().union(*(_options(command) for command in upgrade.commands.values()))


def _owner(text, start):
    """The `cfy ...` words of the phrase the option at ``start`` is in, or None."""
    owner = None
    for match in CFY.finditer(text, 0, start):
        if not PHRASE_END.search(text, match.end(), start):
            owner = match.group(1).split()
    return owner


def _problems():
    problems = []
    for path, line, text in _texts():
        for match in OPTION.finditer(text):
            option = match.group(0)
            if option in NAMED_AS_ABSENT and NAMED_AS_ABSENT[option] in text:
                continue
            words = _owner(text, match.start())
            tool = None
            for found in OTHER_TOOLS.finditer(text, 0, match.start()):
                if not PHRASE_END.search(text, found.end(), match.start()):
                    tool = found.group(0)
            if tool:
                continue
            fragments = set().union(*(_resolve(list(words_))[1]
                                      for words_ in FRAGMENTS.get(path, ())))
            if option in fragments:
                continue
            if words and words[0] != 'upgrade':
                _, known = _resolve(words)
                where = 'cfy ' + ' '.join(words)
            elif words and len(words) > 1 and words[1] in upgrade.commands:
                known = _options(upgrade.commands[words[1]]) | _options(upgrade)
                where = 'cfy upgrade ' + words[1]
            else:
                known, where = UPGRADE_OPTIONS, 'any cfy upgrade command'
            if option not in known:
                problems.append('{0}:{1}: {2} is not an option of {3}: {4!r}'.format(
                    path, line, option, where, text[:160]))
    return problems


def test_every_named_option_exists():
    assert _problems() == []


def test_the_collector_finds_hints_and_resolves_cfy_commands():
    """The checker itself: it sees the hints (an option of a cfy command and of an upgrade
    command) and refuses an option that exists nowhere."""
    options = {option for _, _, text in _texts() for option in OPTION.findall(text)}
    assert {'--waive', '--users', '--ssh-user', '--accept-new-host-keys'} <= options
    _, known = _resolve(['profiles', 'set'])
    assert '--ssh-user' in known and '--users' not in known
    _, known = _resolve(['executions', 'list'])
    assert '--all-tenants' in known
    assert _owner('Run `cfy profiles set --ssl off`, then `--users skip`.', 22) == \
        ['profiles', 'set']
    assert _owner('Run `cfy profiles set --ssl off`, then `--users skip`.', 40) is None
    assert '--source-version' not in UPGRADE_OPTIONS | _resolve(['upgrade', 'plan'])[1]


def test_the_fragment_commands_exist_and_carry_what_the_modules_name():
    """``FRAGMENTS`` is no blanket pass: each names a real cfy command, and the options the
    LDAP and plugins modules assemble are among that command's."""
    _, ldap_set = _resolve(['ldap', 'set'])
    assert {'--ldap-base-dn', '--ldap-nested-levels', '--ldap-server'} <= ldap_set
    _, upload = _resolve(['plugins', 'upload'])
    _, update = _resolve(['plugins', 'update'])
    assert '--yaml-path' in upload and '--visibility' in upload
    assert '--plugin-name' in update
    assert '--ldap-base-dn' not in upload


@pytest.mark.parametrize('command', sorted(upgrade.commands))
def test_every_upgrade_command_has_options_to_check(command):
    assert '--help' in _options(upgrade.commands[command])
    assert len(_options(upgrade.commands[command])) > 1
