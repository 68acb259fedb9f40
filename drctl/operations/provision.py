"""drctl provision: playbooks/provision.yml, then the cluster's status."""

from __future__ import annotations

from pathlib import Path

from drctl.operations import playbook


def provision(inventory: Path, fmt: str, *, check: bool, force_reclone: bool) -> None:
    extravars = {"pg_replication_force_reclone": True} if force_reclone else {}
    result = playbook.run("provision.yml", inventory, fmt, extravars, check=check,
                          title="provision" + (" (check mode)" if check else ""))
    playbook.raise_for(result, "provision")
