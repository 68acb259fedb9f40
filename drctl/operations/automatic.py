"""drctl auto enable|disable|pause|resume|status: automatic failover (repmgrd + witness).

The changes run playbooks/auto.yml (-e auto=ACTION) under the cluster lock and are
journalled; status reads the node probes (drctl/auto_state.py decides the state).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from drctl import inventory as inv_mod
from drctl import status as status_mod
from drctl import vault
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.journal import Journal
from drctl.lock import cluster_lock
from drctl.operations.ha import Interaction

WHAT = {
    "enable": "arm automatic failover (repmgr on every node, a witness on the backup host, "
              "repmgrd under systemd)",
    "disable": "disarm and remove automatic failover (repmgrd, witness, metadata)",
    "pause": "pause automatic failover (repmgrd stopped everywhere until resume)",
    "resume": "resume automatic failover (records corrected to the live roles, repmgrd "
              "started)",
}
EXPECTED = {"enable": ("armed",), "resume": ("armed",), "pause": ("paused",),
            "disable": ("disabled",)}


def change(inventory: Path, action: str, ui: Interaction) -> dict[str, Any]:
    """Run the change; its report (drctl.views renders it). DrctlError, with the report on
    it, when the playbook failed or the state is not the one asked for."""
    from drctl.runner import run_playbook

    inv = inv_mod.load(inventory)
    if not inv.group("backup"):
        raise DrctlError("automatic failover needs a witness: the inventory has no `backup` "
                         "host", ExitCode.INVALID_INVENTORY,
                         hint="add a host to the backup group (it also holds the backups)")
    if action in ("disable",):
        ui.confirm(f"{WHAT[action].capitalize()} on cluster '{inv.name}'?")
    vault.decrypt(inv.path)  # a bad vault is named as such, before the lock is taken
    started = time.monotonic()
    with cluster_lock(inv.name, f"auto-{action}", inv) as held:
        journal = Journal(inv.name, f"auto-{action}", held)
        journal.write("start", detail=WHAT[action])
        try:
            result = run_playbook("auto.yml", inv.path, {"auto": action},
                                  progress=ui.progress, journal=journal.from_playbook)
        except BaseException as exc:  # every start has its end
            journal.write("end", result="error", detail=str(exc)[:300])
            raise
        report = status_mod.collect(inv)
        journal.write("end", result=result.status, detail=report["auto"]["state"])
    out = {"action": action, "result": "ok" if result.exit_code == ExitCode.OK else "failed",
           "duration_s": round(time.monotonic() - started, 2), "auto": report["auto"],
           "playbook": result.as_dict()}
    if result.exit_code != ExitCode.OK:
        lines = [f"{f.host}: {f.task}: {f.message}" for f in result.failures]
        raise DrctlError(f"auto {action} {result.status}:\n  " + "\n  ".join(lines),
                         result.exit_code, hint="`drctl auto status` says where it stands",
                         report=out)
    if report["auto"]["state"] not in EXPECTED[action]:
        raise DrctlError(f"auto {action} finished but automatic failover is "
                         f"{report['auto']['state']}: " + "; ".join(report["auto"]["reasons"]),
                         ExitCode.UNHEALTHY, report=out)
    return out


def status(inventory: Path) -> dict[str, Any]:
    """armed, paused, disabled or impossible, and why (drctl.views renders it)."""
    report = status_mod.collect(inventory)
    return {"cluster": report["cluster"], "primary": report["primary"], **report["auto"]}
