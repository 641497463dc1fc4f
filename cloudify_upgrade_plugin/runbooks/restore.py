"""The restore side shared by new-host and in-place (issues 6 and 7).

For now: ``describe(mode, source, target)``, the steps each mode will run with what they
change, used by ``plan``.  The steps themselves land with the new-host / in-place issues
and must keep these ids.
"""
from cloudify_upgrade_plugin import versions

V4_2 = versions.Version.parse('4.2.0')


def describe(mode, source, target):
    """[{'id', 'title', 'changes'}] in order, for this mode and version pair."""
    source = versions.as_version(source)
    in_place = mode == versions.MODE_IN_PLACE
    steps = []
    if in_place:
        steps.append(('check-target', 'Check the rebuilt manager is a fresh install of the '
                      'target version', 'nothing'))
    else:
        steps.append(('check-target', 'Check the new manager (version, clean, bootstrap '
                      'admin, agent networks, snapshot checksum)', 'nothing'))
    steps.append(('upload-snapshot', 'Upload the snapshot', 'adds the snapshot to the '
                  '{0} manager'.format('rebuilt' if in_place else 'new')))
    steps.append(('restore-snapshot', 'Restore the snapshot{0} and wait for it'.format(
        ' with its certificates' if in_place else ''), 'replaces the {0} manager\'s data'
        '{1}'.format('rebuilt' if in_place else 'new', '; the host reboots'
                     if in_place else '')))
    if in_place and source.base < versions.Version.parse('4.0.1'):
        steps.append(('restore-ssl', 'Put /etc/cloudify/ssl back from the backup (4.0.0 '
                      'snapshots carry no certificates)', 'replaces the certificates on '
                      'the host'))
    if source.base >= V4_2:
        steps.append(('follow-credentials', 'Re-authenticate with the old admin password '
                      'the restore installed', 'updates the profile\'s password'))
    else:
        steps.append(('restore-users', 'Restore old users (--users rest-security | '
                      'reset-passwords | skip)', 'rest-security.conf on the host, or user '
                      'passwords'))
    steps.append(('reconcile', 'Compare the restored data with the source inventory',
                  'writes inventory/target.json'))
    if not in_place and source.major < 5:
        steps.append(('fence-healing', 'Stop cloudify-riemann on the old manager (point of '
                      'no return)', 'stops auto-heal on the old manager'))
    steps.append(('install-agents', 'Install new agents in every tenant', 'moves every '
                  'agent to the {0} manager'.format('rebuilt' if in_place else 'new')))
    steps.append(('finish', 'Make the new manager the active profile and write the report',
                  'the active cfy profile'))
    return [{'id': i, 'title': t, 'changes': c} for i, t, c in steps]
