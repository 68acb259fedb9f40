"""drctl drill: confirmation and the drill itself (drctl.drill); drctl.views shows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.lock import cluster_lock
from drctl.operations.ha import Interaction

# What each scenario does, as the confirmation question says it (one per drill scenario:
# a unit test holds the two lists equal).
WHAT: dict[str, str] = {
    "switchover": "switch the primary over to the standby",
    "failover": "POWER OFF the primary and fail over to the standby",
    "failback-cycle": "POWER OFF the primary, fail over, then fail back and switch back",
    "auto-failover": "POWER OFF the primary and let automatic failover promote the standby, "
                     "then fail back and switch back",
    "site-failover": "POWER OFF every host of the primary's site and promote the remote "
                     "site's standby, LOSING whatever acknowledged commits had not reached it "
                     "(the report counts them)",
    "site-failback-cycle": "POWER OFF every host of the primary's site, promote the remote "
                           "site's standby, LOSING whatever acknowledged commits had not "
                           "reached it, then bring the site back, fail its nodes back and "
                           "switch the primary home",
    "app-host-loss": "POWER OFF the app host that holds the primary site's application VIP "
                     "and let keepalived move the VIP to another app host",
    "cloud-restore": "POWER OFF every host of every site and rebuild the cluster at the "
                     "cloud location from the object store, LOSING whatever acknowledged "
                     "commits the store had not received (the report counts them); the "
                     "sites' nodes then fence themselves and need a fresh provision",
}


def drill(inventory: Path, *, scenario: str, duration: float, rate: float, app_rate: float,
          out_dir: Path | None, ui: Interaction,
          say: Callable[[str], None] | None = None,
          allow_data_loss: bool = False) -> dict[str, Any]:
    """Confirm, run the drill, return its report (drctl.views renders it)."""
    from drctl import drill as drill_mod
    from drctl import inventory as inv_mod

    inv = inv_mod.load(inventory)
    if scenario == "cloud-restore" and not allow_data_loss:
        raise DrctlError(
            "the cloud-restore drill rebuilds the cluster from the object store, which "
            "lacks the WAL segment being written when the sites went dark: the commits "
            "acknowledged since the last archived segment are lost, and nobody can tell "
            "beforehand how many", ExitCode.REFUSED,
            hint="run it with --allow-data-loss to consent (the report counts the "
                 "acknowledged writes lost against the last commit the rebuild replayed)")
    if scenario in drill_mod.SITE_SCENARIOS and not allow_data_loss:
        raise DrctlError(
            f"the {scenario} drill promotes the remote site's standby, which replicates "
            "asynchronously: the commits acknowledged in the last moments before the power "
            "cut that had not reached it are lost, and nobody can tell beforehand how many",
            ExitCode.REFUSED, hint="run it with --allow-data-loss to consent (the report "
                                   "counts the acknowledged writes lost: the RPO)")
    what = WHAT[scenario]
    ui.confirm(f"Drill on cluster '{inv.name}': {what}, under a write load?")
    # the whole drill holds the cluster's lock: its switchover, failover and failback run
    # under it, and no one else acts on the cluster in between. A site drill (and the
    # cloud-restore drill) powers off the ledger host's site, so there each operation
    # holds the ledger's lock for itself (a failover or a rebuild goes on without it, as
    # it would after a real site loss).
    with cluster_lock(inv.name, f"drill-{scenario}", inv, nestable=True,
                      ledger_per_operation=scenario in drill_mod.CONSENT_SCENARIOS):
        return drill_mod.run(inv.path, scenario=scenario, duration=duration, rate=rate,
                             app_rate=app_rate, out_dir=out_dir, say=say or (lambda m: None))
