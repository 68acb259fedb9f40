"""drctl's development lab: a package of its own, beside the product (drctl), not in the
collection built for AWX or production control machines and never sent to the nodes.

- drctl_lab.lab: the containers, sites, WAN, generated inventory and snapshots that
  `drctl lab` drives (`drctl lab` is there only where this package is installed);
- drctl_lab.hosts: what the integration tests and the benches do to the lab's hosts
  from this machine (commands inside a container, power off and on, the VIP's
  connection, the lab's variables and secrets);
- build-rootfs.sh: the lab image's recipe.
"""
