"""`make demo`: a whole upgrade on simulated managers, through the real `cfy`.

Starts a simulated Cloudify Manager 4.1 premium with the `demo` data (two tenants,
deployments with agents, users, auto-heal on) and its SSH host, and an empty simulated
7.0 manager with its host; creates cfy profiles in a temporary cfy workdir; runs
`cfy upgrade plan`, `prepare`, `new-host --yes`, `verify-heals` and `status`, printing
what each did; then stops everything and removes the temporary files.

Exit code: 0 when every command did what it should, 1 otherwise.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from tests.simulator import start

CFY = os.path.join(os.path.dirname(sys.executable), 'cfy')
TIME_SCALE = 0.2


def banner(text):
    print('\n' + '=' * 78 + '\n== ' + text + '\n' + '=' * 78, flush=True)


def cfy(workdir, *args, expect=0):
    env = dict(os.environ, CFY_WORKDIR=workdir, PYTHONWARNINGS='ignore')
    print('$ cfy ' + ' '.join(str(a) for a in args), flush=True)
    proc = subprocess.run([CFY] + [str(a) for a in args], env=env, cwd=workdir,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(proc.stdout.rstrip(), flush=True)
    if proc.returncode != expect:
        raise SystemExit('demo: `cfy {0}` exited {1}, expected {2}'.format(
            ' '.join(str(a) for a in args), proc.returncode, expect))
    return proc


def profile(workdir, name, sim):
    cfy(workdir, 'profiles', 'use', '127.0.0.1', '--profile-name', name,
        '--rest-port', sim.rest_port, '-u', sim.admin_username, '-p', sim.admin_password,
        '-t', 'default_tenant', '--ssh-user', sim.ssh_user, '--ssh-key', sim.ssh_key,
        '--ssh-port', sim.ssh_port, '--skip-credentials-validation')


def main():
    root = tempfile.mkdtemp(prefix='cfy-upgrade-demo-')
    workdir = os.path.join(root, 'cfy')
    os.mkdir(workdir, 0o700)
    managers = []
    try:
        banner('Starting simulated managers (REST on 127.0.0.1, real SSH hosts)')
        old = start('4.1', edition='premium', data='demo', ssh=True,
                    state_dir=os.path.join(root, 'old'), time_scale=TIME_SCALE)
        managers.append(old)
        new = start('7.0', edition='premium', data='empty', ssh=True,
                    state_dir=os.path.join(root, 'new'), time_scale=TIME_SCALE)
        managers.append(new)
        print('old manager: 4.1 premium, demo data, REST port {0}, SSH port {1}'.format(
            old.rest_port, old.ssh_port))
        print('new manager: 7.0 premium, empty, REST port {0}, SSH port {1}'.format(
            new.rest_port, new.ssh_port))

        banner('Profiles for both managers (cfy profiles use)')
        profile(workdir, 'new', new)
        profile(workdir, 'old', old)

        # the simulated hosts are new to this machine: their SSH host keys are shown and
        # trusted with --accept-new-host-keys (on a terminal the operator would be asked)
        banner('1. cfy upgrade plan: every check, the ordered steps; changes nothing')
        cfy(workdir, 'upgrade', 'plan', '--mode', 'new-host', '--target-version', '7.0.4',
            '--accept-new-host-keys')

        banner('2. cfy upgrade prepare: snapshot, download + verify, backups, inventory')
        cfy(workdir, 'upgrade', 'prepare', '--mode', 'new-host', '--target-version', '7.0.4',
            '--accept-new-host-keys')

        banner('3. cfy upgrade new-host: restore, users, reconcile, fence heals, agents')
        cfy(workdir, 'upgrade', 'new-host', '--to-profile', 'new', '--users',
            'rest-security', '--yes', '--accept-new-host-keys')

        banner('4. cfy upgrade verify-heals: heals on either manager since the cut-over')
        cfy(workdir, 'upgrade', 'verify-heals')

        banner('5. cfy upgrade status')
        cfy(workdir, 'upgrade', 'status')
        banner('Demo finished: the 4.1 manager\'s data and agents are on the 7.0 manager')
        return 0
    finally:
        for manager in reversed(managers):
            try:
                manager.stop()
            except Exception as error:  # cleanup must not hide the result
                print('demo: stopping a simulator failed: {0}'.format(error))
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
