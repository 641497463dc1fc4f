"""Kill-point hook of the reliability suite, loaded only inside the `cfy` subprocesses that a
crash scenario starts (its directory is put first on their PYTHONPATH).

With ``CFY_REL_PAUSE="<step>:<event>:<phase>"`` and ``CFY_REL_PAUSE_MARKER=<path>`` set, the
plugin's ``Journal.append(step, event)`` is wrapped: for ``phase == 'before'`` the process
writes the marker file and stops *before* that journal line is written (the step's remote
effect is done, its ``succeeded`` is not journaled yet); for ``phase == 'after'`` it stops
right after the line is written (the step has just started).  "Stops" means it sleeps until
the test kills it with SIGKILL; nothing else of the plugin is changed.  Without the
variables this module does nothing.
"""
import importlib.abc
import importlib.util
import os
import sys
import time

TARGET = 'cloudify_upgrade_plugin.engine.journal'


def _pause(marker):
    with open(marker + '.tmp', 'w') as stream:
        stream.write(str(os.getpid()))
    os.replace(marker + '.tmp', marker)
    while True:              # wait for the SIGKILL of the test
        time.sleep(3600)


def _patch(module, step, event, phase, marker):
    original = module.Journal.append

    def append(self, step_id, event_id, details=None):
        matches = step_id == step and event_id == event
        if matches and phase == 'before':
            _pause(marker)
        entry = original(self, step_id, event_id, details)
        if matches and phase == 'after':
            _pause(marker)
        return entry

    module.Journal.append = append


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, spec_text, marker):
        self.step, self.event, self.phase = spec_text.split(':')
        self.marker = marker

    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module
        hook = self

        def exec_and_patch(module):
            exec_module(module)
            _patch(module, hook.step, hook.event, hook.phase, hook.marker)

        loader.exec_module = exec_and_patch
        return spec


def _install():
    spec_text = os.environ.get('CFY_REL_PAUSE')
    marker = os.environ.get('CFY_REL_PAUSE_MARKER')
    if spec_text and marker and spec_text.count(':') == 2:
        sys.meta_path.insert(0, _Finder(spec_text, marker))


_install()
