"""drctl provision: playbooks/provision.yml (the CLI renders its result)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from drctl.operations import playbook
from drctl.runner import RunResult


def provision(inventory: Path, *, check: bool, force_reclone: bool, progress: Any = None,
              say: Callable[[str], None] | None = None) -> RunResult:
    """Run the playbook; its result, or DrctlError carrying it when the run failed."""
    extravars = {"pg_replication_force_reclone": True} if force_reclone else {}
    result = playbook.run("provision.yml", inventory, extravars, check=check,
                          title="provision" + (" (check mode)" if check else ""),
                          progress=progress, say=say, accelerate=True)
    playbook.raise_for(result, "provision")
    return result
