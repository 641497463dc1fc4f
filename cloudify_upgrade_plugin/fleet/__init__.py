"""Fleet upgrades from Cloudify itself: the plugin's node type, operations and workflows.

``plugin.yaml`` maps the ``cloudify.nodes.upgrade.ManagedUpgrade`` lifecycle and its
``cloudify.interfaces.upgrade`` operations to ``fleet.operations``, and the ``upgrade_*``
workflows to ``fleet.workflows``.  Operations turn node properties into a ``FleetUpgrade``
(``fleet.connection``) and call one ``fleet.adapter`` function per command; what a node
instance's runtime properties say about its upgrade lives in ``fleet.runtime``.

Nothing here is imported by the ``cfy upgrade`` CLI; it runs inside a Cloudify workflow
(a manager's mgmtworker, or ``cloudify.workflows.local`` in the tests).  The design,
with the cloudify-common behaviour it relies on, is in docs/fleet-design.md.
"""
