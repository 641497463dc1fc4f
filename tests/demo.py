"""`make demo`: a whole upgrade on simulated managers, through the real `cfy`.

Part 1: starts a simulated Cloudify Manager 4.1 premium with the `demo` data (two tenants,
deployments with agents, users, auto-heal on) and its SSH host, and an empty simulated 7.0
manager with its host; creates cfy profiles in a temporary cfy workdir; runs `cfy upgrade
plan`, `prepare`, `new-host --yes` (which fences the old manager's auto-heal at the cut-over);
then the old manager's hosts "fail" (the simulator's auto-heal hazard): no heal starts, and
`verify-heals` exits 0; then `status`.

Part 2: the same upgrade on a second pair of managers with the fence waived
(`new-host --no-stop-old-healing`, shown in brief): the old manager heals the failed hosts after
the cut-over, and `verify-heals` catches those heals (exit 4).

Passwords are never printed: a `cfy profiles use` line shows `-p ********`.  Then it stops
every simulator and removes the temporary files.  Exit code: 0 when every command did what it
should, 1 otherwise.  ``main(started=None)``: each simulator started is appended to the list
`started` (the demo's test reads their passwords from it).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from tests.simulator import start

CFY = os.path.join(os.path.dirname(sys.executable), 'cfy')
TIME_SCALE = 0.2
TARGET = '7.0.4'
EXIT_MEANINGS = {0: 'done', 1: 'a step failed', 2: 'bad input', 3: 'blocked by a check',
                 4: 'suspicious heals found', 5: 'verify-heals incomplete'}
# what part 2 shows of the commands part 1 already showed in full
BRIEF_LINES = re.compile(r'^(Upgrade id:|Upgrade \S+: restored|Cut-over at|Error|Warning|'
                         r'.*(NOT stopped|fenced|waive))')


class Secret:
    """A command-line value that is passed to `cfy` but shown as ********."""

    def __init__(self, value):
        self.value = value

    def __str__(self):
        return '********'


def banner(text, *lines):
    print('\n' + '=' * 78 + '\n== ' + text, flush=True)
    for line in lines:
        print('== ' + line)
    print('=' * 78, flush=True)


def cfy(workdir, *args, expect=0, brief=False):
    """Run the real `cfy` in `workdir`, print the command (secrets as ********), its output
    (in brief: only the lines BRIEF_LINES keeps) and its exit code."""
    env = dict(os.environ, CFY_WORKDIR=workdir, PYTHONWARNINGS='ignore')
    print('$ cfy ' + ' '.join(str(a) for a in args), flush=True)
    real = [a.value if isinstance(a, Secret) else str(a) for a in args]
    proc = subprocess.run([CFY] + real, env=env, cwd=workdir,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = proc.stdout.rstrip().splitlines()
    if brief:
        kept = [line for line in lines if BRIEF_LINES.match(line)]
        lines = kept + ['  ({0} more lines, as in part 1)'.format(len(lines) - len(kept))]
    print('\n'.join(lines), flush=True)
    print('[exit code {0}: {1}]'.format(
        proc.returncode, EXIT_MEANINGS.get(proc.returncode, 'failed')), flush=True)
    if proc.returncode != expect:
        raise SystemExit('demo: `cfy {0}` exited {1}, expected {2}'.format(
            ' '.join(str(a) for a in args), proc.returncode, expect))
    return proc


def profile(workdir, name, sim, brief=False):
    cfy(workdir, 'profiles', 'use', '127.0.0.1', '--profile-name', name,
        '--rest-port', sim.rest_port, '-u', sim.admin_username,
        '-p', Secret(sim.admin_password), '-t', 'default_tenant', '--ssh-user', sim.ssh_user,
        '--ssh-key', sim.ssh_key, '--ssh-port', sim.ssh_port,
        '--skip-credentials-validation', brief=brief)


def start_pair(root, part, started):
    old = start('4.1', edition='premium', data='demo', ssh=True,
                state_dir=os.path.join(root, part, 'old'), time_scale=TIME_SCALE)
    started.append(old)
    new = start('7.0', edition='premium', data='empty', ssh=True,
                state_dir=os.path.join(root, part, 'new'), time_scale=TIME_SCALE)
    started.append(new)
    print('old manager: 4.1 premium, demo data, REST port {0}, SSH port {1}'.format(
        old.rest_port, old.ssh_port))
    print('new manager: 7.0 premium, empty, REST port {0}, SSH port {1}'.format(
        new.rest_port, new.ssh_port))
    workdir = os.path.join(root, part, 'cfy')
    os.mkdir(workdir, 0o700)
    return old, new, workdir


def fail_hosts(old, timeout=60.0):
    """The simulator's auto-heal hazard: every Compute host of a deployment with a
    `host_failure` policy on the old manager fails now.  Waits until each trigger has either
    started a heal (riemann running) or been suppressed, and the heals have ended; returns
    the ids of the heals started."""
    count = old.auto_heal.schedule_all(after=0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fired = list(old.auto_heal.fired)
        if len(fired) + len(old.auto_heal.suppressed) >= count and not _running(old, fired):
            break
        time.sleep(0.1)
    else:
        raise SystemExit('demo: the old manager\'s auto-heal triggers did not settle')
    print('{0} host(s) of the old manager failed (simulated): {1} heal(s) started there, '
          '{2} trigger(s) ignored (cloudify-riemann stopped).'.format(
              count, len(fired), len(old.auto_heal.suppressed)), flush=True)
    return fired


def _running(sim, ids):
    with sim.state.lock:
        return [e for e in sim.state.all('executions')
                if e['id'] in ids and e['status'] not in ('terminated', 'failed', 'cancelled')]


def fenced_upgrade(root, started):
    banner('Part 1: upgrade a 4.1 manager onto a new 7.0 manager',
           'Starting simulated managers (REST on 127.0.0.1, real SSH hosts)')
    old, new, workdir = start_pair(root, 'part1', started)

    banner('Profiles for both managers (cfy profiles use)',
           'Passwords are never shown: -p ******** stands for the admin password.')
    profile(workdir, 'new', new)
    profile(workdir, 'old', old)

    # the simulated hosts are new to this machine: their SSH host keys are shown and
    # trusted with --accept-new-host-keys (on a terminal the operator would be asked)
    banner('1. cfy upgrade plan: every check, the ordered steps; changes nothing')
    cfy(workdir, 'upgrade', 'plan', '--mode', 'new-host', '--target-version', TARGET,
        '--accept-new-host-keys')

    banner('2. cfy upgrade prepare: snapshot, download + verify, backups, inventory')
    cfy(workdir, 'upgrade', 'prepare', '--mode', 'new-host', '--target-version', TARGET,
        '--accept-new-host-keys')

    banner('3. cfy upgrade new-host: restore, users, reconcile, fence heals, agents')
    cfy(workdir, 'upgrade', 'new-host', '--to-profile', 'new', '--users',
        'rest-security', '--yes', '--accept-new-host-keys')

    banner('4. cfy upgrade verify-heals: heals on either manager since the cut-over',
           'Hosts of the old manager fail now. Its auto-heal (cloudify-riemann) was',
           'stopped at the cut-over, so it starts no heal: verify-heals exits 0.')
    fired = fail_hosts(old)
    if fired:
        raise SystemExit('demo: the fenced old manager started heals: {0}'.format(fired))
    cfy(workdir, 'upgrade', 'verify-heals')

    banner('5. cfy upgrade status')
    cfy(workdir, 'upgrade', 'status')


def waived_upgrade(root, started):
    banner('Part 2: the same upgrade WITHOUT the fence (--no-stop-old-healing)',
           'A second pair of managers; the commands of part 1 are shown in brief.',
           'This shows what verify-heals is for: an old manager still healing after',
           'the cut-over may duplicate VMs that the new manager now owns.')
    old, new, workdir = start_pair(root, 'part2', started)
    profile(workdir, 'new', new, brief=True)
    profile(workdir, 'old', old, brief=True)
    cfy(workdir, 'upgrade', 'prepare', '--mode', 'new-host', '--target-version', TARGET,
        '--accept-new-host-keys', brief=True)
    cfy(workdir, 'upgrade', 'new-host', '--to-profile', 'new', '--users', 'rest-security',
        '--yes', '--accept-new-host-keys', '--no-stop-old-healing', brief=True)

    banner('6. cfy upgrade verify-heals after the old manager healed',
           'Hosts of the old manager fail now; its auto-heal still runs and starts heals',
           'after the cut-over: verify-heals lists them and exits 4 (suspicious heals).')
    fired = fail_hosts(old)
    if not fired:
        raise SystemExit('demo: the old manager with auto-heal on started no heal')
    cfy(workdir, 'upgrade', 'verify-heals', expect=4)


def main(started=None):
    root = tempfile.mkdtemp(prefix='cfy-upgrade-demo-')
    started = [] if started is None else started
    first = len(started)
    try:
        fenced_upgrade(root, started)
        waived_upgrade(root, started)
        banner('Demo finished',
               'Part 1: the 4.1 manager\'s data and agents are on the 7.0 manager; its',
               'auto-heal was fenced at the cut-over and verify-heals found nothing.',
               'Part 2: with the fence waived, verify-heals caught the old manager\'s heals.')
        return 0
    finally:
        for manager in reversed(started[first:]):
            try:
                manager.stop()
            except Exception as error:  # cleanup must not hide the result
                print('demo: stopping a simulator failed: {0}'.format(error))
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
