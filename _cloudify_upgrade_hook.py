"""Start-up shim that registers plugin commands into the `cfy` CLI (stdlib only).

cfy 7.0.5 builds its command tree when ``cloudify_cli.main`` is imported and reads no
entry points.  A one-line ``.pth`` file imports this module at interpreter start; it
installs a meta-path finder that ignores every module except ``cloudify_cli.main``.
Once that module has executed, the root group ``_cfy`` learns to resolve the
``cloudify_cli.commands`` entry-point group lazily: entry points are read only when a
command name is not built in, or when the command list is needed (``--help``).

Safety rules: idempotent; ``CFY_UPGRADE_PLUGIN_DISABLE`` (any non-empty value) turns it
off; never raises into the host; a command the host already has wins; a plugin that
fails to load - it raises, calls ``sys.exit`` while it is imported, or is not a click
command (anybody's entry point in the group, not only ours) - becomes a command that
explains the failure instead of a traceback, so ``cfy --help`` and every other command
keep working.
"""
import os
import sys

KILL_SWITCH = 'CFY_UPGRADE_PLUGIN_DISABLE'
TARGET_MODULE = 'cloudify_cli.main'
ROOT_GROUP_ATTR = '_cfy'
ENTRY_POINT_GROUP = 'cloudify_cli.commands'
_MARK = '_cloudify_upgrade_plugin_attached'


def disabled():
    return bool(os.environ.get(KILL_SWITCH))


class _AttachingLoader:
    """Wraps the real loader of cloudify_cli.main and attaches after it ran."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            attach(getattr(module, ROOT_GROUP_ATTR, None))
        except Exception:  # never break the host
            pass


class _Finder:
    """Meta-path finder interested in exactly one module name."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != TARGET_MODULE:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        try:
            from importlib.machinery import PathFinder
            spec = PathFinder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None \
                    and hasattr(spec.loader, 'exec_module'):
                spec.loader = _AttachingLoader(spec.loader)
            return spec
        except Exception:
            return None

    def invalidate_caches(self):
        pass


def _entry_points():
    from importlib.metadata import entry_points
    return list(entry_points(group=ENTRY_POINT_GROUP))


def _distribution(ep):
    """The name of the distribution that declares ``ep`` (None when unknown)."""
    try:
        return ep.dist.name
    except Exception:
        return None


def _broken_command(name, error, distribution=None):
    import click
    distribution = distribution or 'cloudify-upgrade-plugin'

    @click.command(name=name, context_settings={
        'ignore_unknown_options': True, 'allow_extra_args': True},
        add_help_option=False,
        short_help='[broken plugin] run it for details')
    def broken():
        click.echo(
            'The `cfy {0}` plugin command could not be loaded:\n  {1}: {2}\n'
            'Reinstall it (pip install --force-reinstall {3}), or uninstall {3}{4}.'.format(
                name, type(error).__name__, error, distribution,
                ' (or set {0}=1 to hide it)'.format(KILL_SWITCH)
                if distribution == 'cloudify-upgrade-plugin' else ''), err=True)
        sys.exit(1)
    return broken


def _load(ep):
    """The click command of ``ep``, or a command explaining why there is none.

    ``SystemExit`` is caught too: a module that exits while it is imported must not end
    ``cfy --help`` (KeyboardInterrupt still goes through).
    """
    import click
    try:
        command = ep.load()
    except (Exception, SystemExit) as error:
        return _broken_command(ep.name, error, _distribution(ep))
    if not isinstance(command, click.Command):
        return _broken_command(ep.name, TypeError(
            'the entry point gives {0!r}, not a click command'.format(command)),
            _distribution(ep))
    return command


class _LazyCommands:
    """Loads the entry-point commands into a root group, once, on demand."""

    def __init__(self, root):
        self.root = root
        self.loaded = False

    def load(self):
        if self.loaded:
            return
        self.loaded = True
        try:
            eps = _entry_points()
        except Exception:
            return
        for ep in eps:
            if ep.name in self.root.commands:
                continue  # the host (or an earlier plugin) owns this name
            try:
                self.root.add_command(_load(ep), ep.name)
            except Exception:
                continue    # never break the host


def attach(root):
    """Teach the click group `root` to find entry-point commands. Idempotent."""
    if root is None or disabled() or getattr(root, _MARK, False):
        return root
    lazy = _LazyCommands(root)
    original_get = root.get_command
    original_list = root.list_commands

    def get_command(ctx, name):
        command = original_get(ctx, name)
        if command is None and not lazy.loaded:
            lazy.load()
            command = original_get(ctx, name)
        return command

    def list_commands(ctx):
        lazy.load()
        return original_list(ctx)

    root.get_command = get_command
    root.list_commands = list_commands
    setattr(root, _MARK, True)
    return root


def install():
    """Called from the .pth line: put the finder in place, once."""
    if disabled():
        return
    if any(isinstance(f, _Finder) or type(f).__name__ == '_Finder'
           and getattr(f, '__module__', '') == __name__
           for f in sys.meta_path):
        return
    main = sys.modules.get(TARGET_MODULE)
    if main is not None:  # already imported: attach directly
        attach(getattr(main, ROOT_GROUP_ATTR, None))
        return
    sys.meta_path.insert(0, _Finder())


try:
    install()
except Exception:
    pass
