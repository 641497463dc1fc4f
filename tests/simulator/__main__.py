"""`python -m tests.simulator`: run one simulated manager (and its SSH host) until SIGTERM or
SIGINT.  Prints exactly one JSON line with rest_port, ssh_port, ssh_user, ssh_key,
admin_username and admin_password (ssh fields null when no host is available).

With `--cluster-managers N`: a simulated cluster (tests/simulator/cluster.py) instead; the
JSON line then lists every node (README 'Clusters').
"""
import argparse
import json
import signal
import sys
import threading

from tests.simulator.agents import set_install_method
from tests.simulator.cluster import start_cluster
from tests.simulator.data import DATA_SETS
from tests.simulator.manager import start
from tests.simulator.rules import VERSIONS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.simulator',
                                     description='Run a simulated Cloudify Manager.')
    parser.add_argument('--manager-version', required=True,
                        help='one of {0} (4.0.1+update3, 4.0.0+patch1 accepted)'.format(
                            ', '.join(VERSIONS)))
    parser.add_argument('--edition', choices=('premium', 'community'), default='premium')
    parser.add_argument('--port', type=int, default=0, help='REST port (0 = ephemeral)')
    parser.add_argument('--ssh-port', type=int, default=0, help='SSH port (0 = ephemeral)')
    parser.add_argument('--no-ssh', action='store_true', help='no simulated SSH host')
    parser.add_argument('--data', choices=DATA_SETS, default='empty')
    parser.add_argument('--state-dir', default=None,
                        help='keep the host directory here (in-place upgrades)')
    parser.add_argument('--time-scale', type=float, default=1.0,
                        help='multiplier of every simulated duration (default 1.0)')
    parser.add_argument('--update-3', action='store_true', help='4.0.1 with update-3')
    parser.add_argument('--admin-password', default=None)
    parser.add_argument('--ssl', action='store_true',
                        help='serve the REST API over https (CA file in the JSON line)')
    parser.add_argument('--security', action='store_true',
                        help='3.4.2: enable security (off by default, behaviour §2.4)')
    parser.add_argument('--teardown-on-exit', action='store_true',
                        help='delete opt/manager and etc/cloudify of the host dir on exit')
    facts12 = parser.add_argument_group('behaviour §12 options (README "Options")')
    facts12.add_argument('--unlicensed', action='store_true',
                         help='premium 4.6+: no licence (the licence gate refuses most '
                              'endpoints)')
    facts12.add_argument('--licence-expired', action='store_true',
                         help='premium 4.6+: the licence has expired')
    facts12.add_argument('--licence-trial', action='store_true',
                         help='premium 4.6+: a trial licence (expired: the gate closes)')
    facts12.add_argument('--licence-version', default=None,
                         help="the licence's cloudify_version (default: the manager's)")
    facts12.add_argument('--distributed', action='store_true',
                         help='7.0 on Kubernetes: legacy snapshots are refused at restore')
    facts12.add_argument('--failed-logins-before-account-lock', type=int, default=None,
                         help='4.4+: failed logins allowed before the lock (default 4)')
    facts12.add_argument('--account-lock-period', type=float, default=None,
                         help='4.4+: lock period in minutes (default -1: no lockout)')
    facts12.add_argument('--legacy-stage-restore', choices=('source', 'lenient'),
                         default='source',
                         help="7.0 legacy route's Stage/Composer steps (default: as the "
                              "source does)")
    facts12.add_argument('--ok-fail-delay', type=float, default=None,
                         help='real seconds before /ok answers FAIL (default 3 x time scale)')
    facts12.add_argument('--db-swap-seconds', type=float, default=None,
                         help='5.0.5-6.1: real seconds the restore swaps its database '
                              '(behaviour §12.7; default 2 manager-seconds)')
    facts12.add_argument('--deadlock-on-db-swap-traffic', action='store_true',
                         help='5.0.5-6.1: a REST request during the database swap fails '
                              'the restore (deadlock, behaviour §12.7)')
    clusters = parser.add_argument_group('clusters (README "Clusters")')
    clusters.add_argument('--cluster-managers', type=int, default=None, metavar='N',
                          help='run a cluster of N managers (premium 4.0-4.6: HA, 5.0.5+: '
                               'nodes); --port/--ssh-port are then chosen by the cluster')
    clusters.add_argument('--cluster-brokers', type=int, default=3, metavar='N')
    clusters.add_argument('--cluster-db-nodes', type=int, default=3, metavar='N')
    clusters.add_argument('--cluster-colocated', action='store_true',
                          help='brokers and DB nodes run on the managers')
    clusters.add_argument('--fail-over-after', default=None, metavar='COUNT[:METHOD[:REGEX]]',
                          help='the first manager goes down after COUNT matching requests')
    parser.add_argument('--auto-heal-after', type=float, default=None,
                        help='old managers: start heals for every auto-heal deployment '
                             'after N seconds while cloudify-riemann runs')
    faults = parser.add_argument_group('fault injection (see tests/simulator/faults.py)')
    faults.add_argument('--fail-requests', action='append', default=[],
                        metavar='REGEX:COUNT[:STATUS]', help='COUNT 5xx answers (503)')
    faults.add_argument('--drop-download', action='append', default=[],
                        metavar='BYTES[:TIMES]', help='cut archive downloads after BYTES')
    faults.add_argument('--delay', action='append', default=[], metavar='REGEX:SECONDS',
                        help='slow responses')
    faults.add_argument('--fail-execution', action='append', default=[],
                        metavar='WORKFLOW[:DEPLOYMENT]', help='such executions fail')
    faults.add_argument('--hang-execution', action='append', default=[],
                        metavar='WORKFLOW[:DEPLOYMENT]', help='such executions hang')
    faults.add_argument('--fail-plugin-install', action='append', default=[],
                        metavar='DEPLOYMENT[:TENANT]',
                        help="its wagon does not install here (4.x-5.0.x restores, "
                             "behaviour §12.4)")
    faults.add_argument('--no-content-length', action='store_true',
                        help='downloads are chunked, without Content-Length')
    faults.add_argument('--download-headers', choices=('nginx', 'rest'), default='nginx',
                        help="'rest': no Content-Length from 5.1 (behaviour §3.3, README)")
    faults.add_argument('--agent-install-method', action='append', default=[],
                        metavar='[TENANT/]DEPLOYMENT=METHOD',
                        help="the deployment's hosts were installed with METHOD (remote, "
                             "init_script, plugin, provided, none; agents.py)")
    faults.add_argument('--agent-stays-old', action='append', default=[],
                        metavar='[TENANT/]NODE_INSTANCE',
                        help='install_new_agents leaves that host on its old agent and '
                             'still ends terminated')
    faults.add_argument('--ldap-unreachable', action='store_true',
                        help="POST /ldap's validating bind fails (ldap.py)")
    return parser.parse_args(argv)


def apply_faults(mgr, args):
    for spec in args.fail_requests:
        parts = spec.rsplit(':', 2) if spec.count(':') >= 2 else spec.rsplit(':', 1)
        status = int(parts[2]) if len(parts) == 3 else 503
        mgr.faults.fail_requests(parts[0], count=int(parts[1]), status=status)
    for spec in args.drop_download:
        size, _, times = spec.partition(':')
        mgr.faults.drop_download(int(size), times=int(times) if times else 1)
    for spec in args.delay:
        pattern, _, seconds = spec.rpartition(':')
        mgr.faults.delay(pattern, float(seconds))
    for spec in args.fail_execution:
        workflow, _, deployment = spec.partition(':')
        mgr.faults.fail_execution(workflow_id=workflow, deployment_id=deployment or None)
    for spec in args.hang_execution:
        workflow, _, deployment = spec.partition(':')
        mgr.faults.hang_execution(workflow_id=workflow, deployment_id=deployment or None)
    for spec in args.fail_plugin_install:
        deployment, _, tenant = spec.partition(':')
        mgr.faults.fail_plugin_install(deployment, tenant=tenant or None)
    mgr.faults.no_content_length = args.no_content_length
    for spec in args.agent_install_method:
        target, _, method = spec.partition('=')
        tenant, _, deployment = target.rpartition('/')
        set_install_method(mgr, deployment, method, tenant=tenant or 'default_tenant')
    for spec in args.agent_stays_old:
        tenant, _, instance = spec.rpartition('/')
        mgr.faults.agent_stays_old(instance, tenant=tenant or None)
    mgr.ldap_reachable = not args.ldap_unreachable


def main(argv=None):
    args = parse_args(argv)
    stop = threading.Event()

    def _stop(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    kwargs = {}
    if args.admin_password:
        kwargs['admin_password'] = args.admin_password
    if args.security:
        kwargs['security_enabled'] = True
    kwargs.update(licensed=not args.unlicensed, licence_expired=args.licence_expired,
                  licence_trial=args.licence_trial,
                  licence_version=args.licence_version, distributed=args.distributed,
                  failed_logins_before_account_lock=args.failed_logins_before_account_lock,
                  account_lock_period=args.account_lock_period,
                  legacy_stage_restore=args.legacy_stage_restore,
                  ok_fail_delay=args.ok_fail_delay, db_swap_seconds=args.db_swap_seconds,
                  deadlock_on_db_swap_traffic=args.deadlock_on_db_swap_traffic)
    if args.cluster_managers is not None:
        return run_cluster(args, kwargs, stop)
    try:
        mgr = start(args.manager_version, edition=args.edition, data=args.data,
                    state_dir=args.state_dir, ssh=not args.no_ssh, port=args.port,
                    ssh_port=args.ssh_port, time_scale=args.time_scale,
                    update_3=args.update_3, download_headers=args.download_headers,
                    ssl=args.ssl, **kwargs)
    except (ValueError, OSError) as e:
        sys.stderr.write('simulator: {0}\n'.format(e))
        return 2
    try:
        try:
            apply_faults(mgr, args)
        except (ValueError, IndexError) as e:
            sys.stderr.write('simulator: bad fault option: {0}\n'.format(e))
            return 2
        if args.auto_heal_after is not None:
            mgr.auto_heal.schedule_all(args.auto_heal_after)
        sys.stdout.write(json.dumps(mgr.info()) + '\n')
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        if args.teardown_on_exit:
            mgr.teardown()
        mgr.stop()
    return 0


def run_cluster(args, kwargs, stop):
    if args.port or args.ssh_port:
        sys.stderr.write('simulator: a cluster chooses its ports (no --port / --ssh-port)\n')
        return 2
    try:
        cluster = start_cluster(args.manager_version, managers=args.cluster_managers,
                                brokers=args.cluster_brokers, db_nodes=args.cluster_db_nodes,
                                colocated=args.cluster_colocated, edition=args.edition,
                                data=args.data, state_dir=args.state_dir, ssh=not args.no_ssh,
                                time_scale=args.time_scale, update_3=args.update_3,
                                download_headers=args.download_headers, ssl=args.ssl,
                                **kwargs)
    except (ValueError, OSError) as e:
        sys.stderr.write('simulator: {0}\n'.format(e))
        return 2
    try:
        first = cluster.nodes[0]
        try:
            apply_faults(first, args)
            for node in cluster.nodes[1:]:      # the LDAP server is out of every node's reach
                node.ldap_reachable = first.ldap_reachable
            if args.fail_over_after:
                count, _, rest = args.fail_over_after.partition(':')
                method, _, regex = rest.partition(':')
                first.fail_after(int(count), method=method or None, path=regex or None)
        except (ValueError, IndexError) as e:
            sys.stderr.write('simulator: bad fault option: {0}\n'.format(e))
            return 2
        if args.auto_heal_after is not None:
            first.auto_heal.schedule_all(args.auto_heal_after)
        sys.stdout.write(json.dumps(cluster.info()) + '\n')
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        if args.teardown_on_exit:
            cluster.teardown()
        cluster.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
