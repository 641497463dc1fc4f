"""The restore side of an upgrade, shared by new-host and in-place (issues 6 and 7).

Steps, in order (ids are stable; ``command.describe`` lists them for ``plan``):
check-target, route-copy (a 7.0 target whose restore route needs a copy of the snapshot
with the missing schema revisions), upload-snapshot, start-restore, wait-restore,
restore-ssl (in place, for sources whose snapshots carry no certificates),
follow-credentials (snapshots that carry the passwords) or restore-users (older ones),
reconcile, cut-over (the point of no return:
fence the old manager's auto-heal, record the time), install-agents, finish.

- ``base``: ``RestoreStep``, ``RestoreMode`` (what the two modes do differently) and the
  prepared snapshot;
- ``checks``: the check-target step and the checks on the target (``plan``'s subset too);
- ``gates``: the target checks that say what it refuses or cannot hold (licence, edition,
  restore route, Kubernetes, old agents);
- ``route``: the route-copy step;
- ``execute``: upload, start and wait for the restore (failure, adoption, outage);
- ``cutover``: credentials, reconciliation, the cut-over, agents, the active profile;
- ``command``: the `new-host` / `in-place` command (checks -> runner -> report -> render).

The modes themselves are ``runbooks/new_host.py`` and ``runbooks/in_place.py``.
"""
