"""drctl's programs on the nodes: one package, one entry point (`drctl-node SUBCOMMAND`).

Shipped to every host by the drctl_node role (the standard library, python3-psycopg2
and drctl.rules are all it needs) and run as root by the playbooks, systemd and
repmgrd. Every path comes from the node's configuration file, which the role writes
from its variables.

  probe            one JSON object describing this PostgreSQL node (drctl status)
  steps            the steps of switchover, failover, failback, and fencing
  watch            the watcher: the primary's WAL position, every second, from outside
  auto             repmgrd's validate/promote/follow/event commands
"""
