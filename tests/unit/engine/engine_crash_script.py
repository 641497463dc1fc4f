"""A tiny runbook run in a subprocess by the crash tests (test_engine_crash.py).

Usage: ``python engine_crash_script.py run UPGRADE_ID EFFECTS_DIR`` or
``python engine_crash_script.py hold-lock UPGRADE_ID EFFECTS_DIR``.

Each step appends ``start:<id>`` to ``EFFECTS_DIR/effects.log`` when its run begins and
``end:<id>`` when its effect is complete; ``check`` is "``end:<id>`` is in the log".  With
``CRASH_HANG=<step>:<phase>`` the step writes ``EFFECTS_DIR/hanging`` and sleeps (so the test
can SIGKILL it) either before its effect (``run``) or after it (``after``).  Prints the
result (or the error) as one JSON line; exits with the error's exit code.
"""
import json
import os
import sys
import time

from cloudify_upgrade_plugin.engine.runner import Runner
from cloudify_upgrade_plugin.engine.step import Context, Runbook, Step
from cloudify_upgrade_plugin.engine.workspace import Workspace
from cloudify_upgrade_plugin.errors import UpgradeError

STEPS = (
    # id, rerunnable, point_of_no_return
    ('alpha', True, False),
    ('bravo', False, True),
    ('charlie', True, False),
    ('delta', True, False),
)


def _append(path, line):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + '\n').encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _lines(path):
    try:
        with open(path) as stream:
            return stream.read().split()
    except FileNotFoundError:
        return []


def _hang(effects_dir, step_id, phase):
    if os.environ.get('CRASH_HANG') == '{0}:{1}'.format(step_id, phase):
        _append(os.path.join(effects_dir, 'hanging'), '{0}:{1}'.format(step_id, phase))
        time.sleep(120)


class CountingStep(Step):

    def __init__(self, step_id, rerunnable, point_of_no_return, effects_dir):
        super(CountingStep, self).__init__(id=step_id, rerunnable=rerunnable,
                                           point_of_no_return=point_of_no_return)
        self.effects_dir = effects_dir
        self.log = os.path.join(effects_dir, 'effects.log')

    def check(self, ctx):
        return 'end:' + self.id in _lines(self.log)

    def run(self, ctx):
        _append(self.log, 'start:' + self.id)
        _hang(self.effects_dir, self.id, 'run')
        _append(self.log, 'end:' + self.id)
        _hang(self.effects_dir, self.id, 'after')
        return {'effect': self.id}

    def verify(self, ctx):
        if not self.check(ctx):
            raise UpgradeError('no effect for ' + self.id, error_id='no-effect')


def main(argv):
    command, upgrade_id, effects_dir = argv
    workspace = Workspace.create(upgrade_id, mode='new-host', exist_ok=True)
    if command == 'hold-lock':
        with workspace.lock():
            _append(os.path.join(effects_dir, 'locked'), 'locked')
            time.sleep(120)
        return 0
    runbook = Runbook('new-host', [CountingStep(step_id, rerunnable, ponr, effects_dir)
                                   for step_id, rerunnable, ponr in STEPS])
    fingerprint = {'source': {'address': '10.0.0.1', 'version': '4.6'},
                   'target': {'address': '10.0.0.2', 'version': '7.0.0'}}
    ctx = Context(workspace, yes=True)
    try:
        result = Runner(workspace, runbook, fingerprint).run(ctx)
    except UpgradeError as error:
        print(json.dumps({'error': error.to_dict()}))
        return error.exit_code
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
