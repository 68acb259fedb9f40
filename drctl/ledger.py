"""The cluster's ledger (lock and journal on the ledger host), seen from drctl.

drctl sends drctl/node/ledger.py over SSH and runs it with the host's python3, the way
the playbooks run it with Ansible's `script` module: one implementation, no install
needed on the ledger host. The ledger host is `drctl_ledger_host`, by default the first
backup host; a cluster without one keeps its lock and journal on this machine only.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import socket
from pathlib import Path
from typing import Any

from drctl import sshprobe
from drctl.inventory import Inventory

SCRIPT = Path(__file__).resolve().parent / "node" / "ledger.py"
DEFAULT_DIR = "/var/lib/drctl/ledger"


def host(inv: Inventory) -> str | None:
    """The inventory host that keeps the ledger, or None."""
    named = inv.cluster.get("drctl_ledger_host")
    if named:
        return str(named)
    backups = [h.name for h in inv.group("backup")]
    return backups[0] if backups else None


def directory(inv: Inventory) -> str:
    return str(inv.cluster.get("drctl_ledger_dir") or DEFAULT_DIR)


def who() -> str:
    """The operator, as the ledger records them: user@machine."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def call(inv: Inventory, args: list[str], timeout: float = 15) -> dict[str, Any]:
    """Run the ledger script on the ledger host with ARGS; its JSON answer, or
    {"ok": False, "unreachable": True, ...} when SSH could not reach the host."""
    ledger_host = host(inv)
    if ledger_host is None:
        return {"ok": False, "error": "this cluster has no ledger host"}
    why = sshprobe.dead(inv, ledger_host)
    if why:  # half a second, not SSH's timeout: a failover after a site loss waits on it
        return {"ok": False, "unreachable": True, "host": ledger_host, "error": why}
    rc, out, err = sshprobe.run(inv, ledger_host,
                                ["python3", "-", "--dir", directory(inv), *args],
                                timeout=timeout, stdin=SCRIPT.read_text())
    try:
        data = json.loads(out.splitlines()[-1]) if out.strip() else {}
    except ValueError:
        data = {}
    if not data:
        return {"ok": False, "unreachable": rc == 255, "host": ledger_host,
                "error": ((err or out).strip().splitlines() or [f"exit {rc}"])[-1][:300]}
    data.setdefault("host", ledger_host)
    return data


def may_take(lock: dict[str, Any]) -> bool:
    """Whether this operator's next take would get LOCK (the ledger's own rule)."""
    from drctl.node.ledger import left_by_own_playbook_run

    return left_by_own_playbook_run(lock, who())


def take(inv: Inventory, operation: str, op_id: str) -> dict[str, Any]:
    return call(inv, ["take", "--holder", who(), "--operation", operation, "--op-id", op_id])


def release(inv: Inventory, op_id: str, entries: list[dict[str, Any]],
            force: bool = False, result: str = "ok") -> dict[str, Any]:
    blob = base64.b64encode("".join(json.dumps(e, default=str) + "\n"
                                    for e in entries).encode()).decode()
    args = ["release", "--op-id", op_id, "--result", result]
    if blob:
        args += ["--entries-b64", blob]
    return call(inv, [*args, *(["--force"] if force else [])])


def show(inv: Inventory) -> dict[str, Any]:
    return call(inv, ["show"])


def read(inv: Inventory, last: int | None = None, op_id: str | None = None
         ) -> dict[str, Any]:
    args = ["read", *(["--last", str(last)] if last else []),
            *(["--op-id", op_id] if op_id else [])]
    return call(inv, args)
