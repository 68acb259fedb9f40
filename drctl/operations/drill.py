"""drctl drill: confirmation and the drill itself (drctl.drill); drctl.views shows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from drctl.lock import cluster_lock
from drctl.operations.ha import Interaction


def drill(inventory: Path, *, scenario: str, duration: float, rate: float, app_rate: float,
          out_dir: Path | None, ui: Interaction,
          say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Confirm, run the drill, return its report (drctl.views renders it)."""
    from drctl import drill as drill_mod
    from drctl import inventory as inv_mod

    inv = inv_mod.load(inventory)
    what = {"switchover": "switch the primary over to the standby",
            "failover": "POWER OFF the primary and fail over to the standby",
            "failback-cycle": "POWER OFF the primary, fail over, then fail back and switch "
                              "back",
            "auto-failover": "POWER OFF the primary and let automatic failover promote the "
                             "standby, then fail back and switch back"}[scenario]
    ui.confirm(f"Drill on cluster '{inv.name}': {what}, under a write load?")
    # the whole drill holds the cluster's lock: its switchover, failover and failback run
    # under it, and no one else acts on the cluster in between
    with cluster_lock(inv.name, f"drill-{scenario}", inv, nestable=True):
        return drill_mod.run(inv.path, scenario=scenario, duration=duration, rate=rate,
                             app_rate=app_rate, out_dir=out_dir, say=say or (lambda m: None))
