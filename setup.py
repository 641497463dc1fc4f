"""Packaging for cloudify-upgrade-plugin: metadata, one version source, entry points,
and a build_py that ships the start-up ``.pth`` at the root of site-packages.

Prints nothing of its own (wagon runs ``setup.py --name`` / ``--version``).
"""
import os

from setuptools import setup, find_packages
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PTH = 'cloudify_upgrade_plugin-hook.pth'


def read(*parts):
    with open(os.path.join(HERE, *parts)) as f:
        return f.read()


def read_version():
    scope = {}
    exec(read('cloudify_upgrade_plugin', '__version__.py'), scope)
    return scope['__version__']


class BuildPyWithPth(build_py):
    """Copy the .pth next to the packages so the wheel installs it (and RECORDs it)."""

    def run(self):
        build_py.run(self)
        self.copy_file(os.path.join(HERE, PTH),
                       os.path.join(self.build_lib, PTH),
                       preserve_mode=0)


setup(
    name='cloudify-upgrade-plugin',
    version=read_version(),
    description='`cfy upgrade`: upgrade a Cloudify Manager through a snapshot',
    long_description=read('README.md'),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(include=['cloudify_upgrade_plugin',
                                    'cloudify_upgrade_plugin.*']),
    py_modules=['_cloudify_upgrade_hook'],
    python_requires='>=3.11,<3.12',
    install_requires=[
        'cloudify>=7.0.5,<7.1',
        # imported by the plugin itself; cloudify 7.0.5 pins them (kept unpinned here so
        # that cloudify's own requirements decide the versions)
        'click',
        'fabric',
        'fasteners',
        'paramiko',
        'requests',
        'urllib3',
    ],
    extras_require={
        'test': [
            'pytest>=7',
            'pytest-mock>=3',
            'pytest-xdist>=3',
            'asyncssh>=2.14',
            'flake8>=6',
            'wagon>=1.0',
        ],
    },
    entry_points={
        'cloudify_cli.commands': [
            'upgrade = cloudify_upgrade_plugin.cli:upgrade',
        ],
        'console_scripts': [
            'cfy-upgrade = cloudify_upgrade_plugin.registration:main',
        ],
    },
    cmdclass={'build_py': BuildPyWithPth},
    zip_safe=False,
)
