"""drctl's rules core: every decision drctl takes about a cluster, and nothing else.

Pure and typed: no I/O, no clock of its own, standard library only, so the same code
runs on the control machine (drctl's operations), inside Ansible (the `drctl_gate`
action plugin) and on the nodes (automatic failover's validation under repmgrd).

  lsn       WAL positions and byte sizes in words
  sql       the SQL the probes, the watcher and the node steps run
  facts     the cluster's state, parsed once from the probe's and the watcher's JSON
  policy    the limits the rules apply (from the inventory's drctl_* options)
  decide    the gates of failover, switchover, failback and automatic promotion, the
            data-loss decision and the choice of candidate
  vip       who may hold a site's database VIP (the verdict drctl-vip-track writes for
            keepalived)
  service   who may hold a site's application VIP, and whether a site serves
  repos     the pgBackRest repositories, numbered as everywhere
"""
