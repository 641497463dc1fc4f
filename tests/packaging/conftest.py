"""Fixtures of the packaging tests: a copy of the source tree, the wheel built from it, and one
fresh virtualenv per session with that wheel installed from its dependencies on PyPI.

Nothing is built or installed inside the checkout or the developer's virtualenv: the source
tree is copied to a temporary directory first, every build writes there, and the fresh
virtualenv lives under pytest's temporary directory.  Commands run with their own HOME,
CFY_WORKDIR and working directory (so `python -m` never imports the checkout by accident).
Tests that break the installation (uninstall, deleted package, deleted hook) restore it in
their fixture's teardown, so the session virtualenv can be shared.
"""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DIST_NAME = 'cloudify-upgrade-plugin'
PTH_NAME = 'cloudify_upgrade_plugin-hook.pth'
HOOK_NAME = '_cloudify_upgrade_hook'
PACKAGE_DIR = 'cloudify_upgrade_plugin'
KILL_SWITCH = 'CFY_UPGRADE_PLUGIN_DISABLE'
CONTRACT_COMMANDS = {'plan', 'prepare', 'new-host', 'in-place', 'verify-heals', 'status'}

# Build artefacts and local state that never belong in the copy (mirrors .gitignore).
_SKIP_NAMES = {'.git', '.venv', 'build', 'dist', 'wagon-out', '.tox', '__pycache__',
               '.pytest_cache'}
_SKIP_SUFFIXES = ('.egg-info', '.pyc', '.pyo')
_INSTALL_TIMEOUT = 900
_RUN_TIMEOUT = 180
# Variables of the calling environment that would change what a fresh interpreter does.
_DROP_ENV = ('PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'PYTHONINSPECT', 'PYTHONUSERBASE',
             'PYTHONNOUSERSITE', 'VIRTUAL_ENV', 'PYTHONSAFEPATH', 'PYTHONWARNINGS',
             'PYTHONDEVMODE', '_CFY_COMPLETE', 'CLOUDIFY_USERNAME', 'CLOUDIFY_PASSWORD',
             'CLOUDIFY_TENANT', 'CLOUDIFY_SSL_TRUST_ALL', KILL_SWITCH)


class Result(object):
    """Outcome of one command; str() gives everything needed to understand a failure."""

    def __init__(self, argv, completed):
        self.argv = argv
        self.rc = completed.returncode
        self.out = completed.stdout
        self.err = completed.stderr

    def __str__(self):
        return 'command: {0}\nexit code: {1}\n--- stdout ---\n{2}\n--- stderr ---\n{3}'.format(
            ' '.join(str(a) for a in self.argv), self.rc, self.out, self.err)


def _ignore(directory, names):
    return [n for n in names if n in _SKIP_NAMES or n.endswith(_SKIP_SUFFIXES)]


def copy_source(dest):
    """Copy the checkout (working tree, without artefacts) to `dest`; return `dest`."""
    shutil.copytree(REPO, dest, ignore=_ignore, symlinks=True)
    return Path(dest)


def run(argv, cwd, env=None, timeout=_RUN_TIMEOUT, check=False):
    completed = subprocess.run([str(a) for a in argv], cwd=str(cwd), env=env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=timeout)
    result = Result(argv, completed)
    if check:
        assert result.rc == 0, str(result)
    return result


def clean_env(home, workdir, extra=None, path_prefix=None):
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env.update({'HOME': str(home), 'CFY_WORKDIR': str(workdir), 'COLUMNS': '80',
                'LC_ALL': 'C.UTF-8', 'LANG': 'C.UTF-8', 'PIP_DISABLE_PIP_VERSION_CHECK': '1'})
    if path_prefix:
        env['PATH'] = str(path_prefix) + os.pathsep + env.get('PATH', '')
    env.update(extra or {})
    return env


def build_wheel(source, dest):
    """`pip wheel` the source tree with the running interpreter's setuptools; return the path."""
    run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation',
         '-w', dest, source], cwd=source, timeout=_INSTALL_TIMEOUT, check=True)
    wheels = sorted(Path(dest).glob('cloudify_upgrade_plugin-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


def commands_section(help_text):
    """The command names listed under `Commands:` in a click help page."""
    names, inside = [], False
    for line in help_text.splitlines():
        if line.strip() == 'Commands:':
            inside = True
            continue
        if inside:
            if not line.strip():
                break
            if line.startswith('  ') and not line.startswith('   '):
                names.append(line.split()[0])
    return names


class Venv(object):
    """A fresh virtualenv with helpers to run its commands in a clean environment."""

    def __init__(self, root, scratch):
        self.root = Path(root)
        self.bin = self.root / 'bin'
        self.python = self.bin / 'python'
        self.scratch = Path(scratch)
        self.home = self.scratch / 'home'
        self.workdir = self.scratch / 'cfy-workdir'
        for d in (self.home, self.workdir):
            d.mkdir(parents=True, exist_ok=True)

    @classmethod
    def create(cls, root, scratch):
        run([sys.executable, '-m', 'venv', root], cwd=scratch, check=True,
            timeout=_INSTALL_TIMEOUT)
        return cls(root, scratch)

    @property
    def site_packages(self):
        found = list((self.root / 'lib').glob('python3*/site-packages'))
        assert len(found) == 1, found
        return found[0]

    def env(self, **extra):
        return clean_env(self.home, self.workdir, extra, path_prefix=self.bin)

    def run(self, *argv, env=None, check=False, timeout=_RUN_TIMEOUT, cwd=None):
        """Run argv[0] from this venv's bin (if it is there) with a clean environment."""
        argv = list(argv)
        exe = self.bin / argv[0]
        if exe.exists():
            argv[0] = exe
        return run(argv, cwd=cwd or self.scratch, env=self.env(**(env or {})), check=check,
                   timeout=timeout)

    def pip(self, *args, check=True):
        return self.run('python', '-m', 'pip', *args, check=check, timeout=_INSTALL_TIMEOUT)


@pytest.fixture(scope='session')
def source_tree(tmp_path_factory):
    """A private copy of the checkout; builds write their `build/` and egg-info here."""
    return copy_source(tmp_path_factory.mktemp('src') / 'cloudify-upgrade-plugin')


@pytest.fixture(scope='session')
def wheel_path(source_tree, tmp_path_factory):
    return build_wheel(source_tree, tmp_path_factory.mktemp('dist'))


@pytest.fixture(scope='session')
def wheel_names(wheel_path):
    with zipfile.ZipFile(wheel_path) as whl:
        return whl.namelist()


@pytest.fixture(scope='session')
def plugin_venv(wheel_path, tmp_path_factory):
    """A fresh venv with `pip install <wheel>` done (dependencies from the package index)."""
    scratch = tmp_path_factory.mktemp('plugin-venv')
    venv = Venv.create(scratch / 'venv', scratch)
    # the setuptools pin of the Makefile (why: README.md, Install)
    venv.pip('install', '-q', 'setuptools<80.9', str(wheel_path))
    return venv


@pytest.fixture
def restore_install(plugin_venv, wheel_path):
    """Reinstall the wheel (no dependency change) after a test that broke the install."""
    yield plugin_venv
    plugin_venv.pip('install', '-q', '--no-deps', '--force-reinstall', str(wheel_path))
    check = plugin_venv.run('cfy', '--help')
    assert check.rc == 0 and 'upgrade' in commands_section(check.out), str(check)


@pytest.fixture
def stash(tmp_path):
    """Move files or directories out of the way; they are put back at teardown."""
    moved = []

    def _stash(path):
        path = Path(path)
        target = tmp_path / 'stash' / str(len(moved))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
        moved.append((path, target))
        return target

    yield _stash
    for original, target in reversed(moved):
        if os.path.lexists(original):
            if original.is_dir() and not original.is_symlink():
                shutil.rmtree(original)
            else:
                original.unlink()
        shutil.move(str(target), str(original))


@pytest.fixture(scope='session')
def help_commands():
    """Function: the command names listed under `Commands:` of a help page."""
    return commands_section


@pytest.fixture(scope='session')
def contract_commands():
    return set(CONTRACT_COMMANDS)
