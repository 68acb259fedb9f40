"""The cluster's ledger: where its lock and the copy of its journal are kept.

One interface (Ledger: take, release with the steps to append, show, read), two places:
- HostLedger: the ledger host's, shared with plain `ansible-playbook` and AWX runs. drctl
  sends drctl/node/ledger.py over SSH and runs it with the host's python3, the way the
  playbooks run it with Ansible's `script` module: one implementation, no install needed
  on the ledger host. The ledger host is `drctl_ledger_host`, by default the first backup
  host.
- MachineLedger: a cluster without a ledger host keeps its lock and journal on this
  machine only (drctl.lock's lock file and drctl.journal's file): nothing more to take.
`of(inv)` gives the cluster's.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Protocol

from drctl import journal, options, sshprobe
from drctl.inventory import Inventory

SCRIPT = Path(__file__).resolve().parent / "node" / "ledger.py"


class Ledger(Protocol):
    """A cluster's ledger. Every answer is a dict with "ok"; a failed one says "error"
    (and "unreachable" when the place could not be reached, "lock" when another holds
    it), and "host" names where it was asked (None: this machine)."""

    shared: bool  # whether runs from other machines (ansible-playbook, AWX) see it

    def take(self, operation: str, op_id: str) -> dict[str, Any]: ...

    def release(self, op_id: str, entries: list[dict[str, Any]], *, force: bool = False,
                result: str = "ok") -> dict[str, Any]: ...

    def show(self) -> dict[str, Any]: ...

    def read(self, last: int | None = None, op_id: str | None = None) -> dict[str, Any]: ...


class MachineLedger:
    """This machine's only: drctl.lock's file is the whole lock, drctl.journal's file the
    whole journal."""

    shared = False

    def __init__(self, cluster: str):
        self.cluster = cluster

    def take(self, operation: str, op_id: str) -> dict[str, Any]:
        return {"ok": True, "host": None}

    def release(self, op_id: str, entries: list[dict[str, Any]], *, force: bool = False,
                result: str = "ok") -> dict[str, Any]:
        return {"ok": True, "host": None}  # the steps are in this machine's journal already

    def show(self) -> dict[str, Any]:
        return {"ok": True, "host": None, "lock": None}

    def read(self, last: int | None = None, op_id: str | None = None) -> dict[str, Any]:
        return {"ok": True, "host": None,
                "entries": journal.read(self.cluster, last=last, op_id=op_id)}


class HostLedger:
    """The ledger host's (drctl/node/ledger.py over SSH)."""

    shared = True

    def __init__(self, inv: Inventory, host: str):
        self.inv = inv
        self.host = host

    @property
    def directory(self) -> str:
        return str(options.value(self.inv.cluster, "drctl_ledger_dir"))

    def call(self, args: list[str], timeout: float = 15) -> dict[str, Any]:
        """Run the ledger script on the ledger host with ARGS; its JSON answer, or
        {"ok": False, "unreachable": True, ...} when SSH could not reach the host."""
        why = sshprobe.dead(self.inv, self.host)
        if why:  # half a second, not SSH's timeout: a failover after a site loss waits on it
            return {"ok": False, "unreachable": True, "host": self.host, "error": why}
        rc, out, err = sshprobe.run(self.inv, self.host,
                                    ["python3", "-", "--dir", self.directory, *args],
                                    timeout=timeout, stdin=SCRIPT.read_text())
        try:
            data = json.loads(out.splitlines()[-1]) if out.strip() else {}
        except ValueError:
            data = {}
        if not data:
            return {"ok": False, "unreachable": rc == 255, "host": self.host,
                    "error": ((err or out).strip().splitlines() or [f"exit {rc}"])[-1][:300]}
        data.setdefault("host", self.host)
        return data

    def take(self, operation: str, op_id: str) -> dict[str, Any]:
        return self.call(["take", "--holder", journal.who(), "--operation", operation,
                          "--op-id", op_id])

    def release(self, op_id: str, entries: list[dict[str, Any]], *, force: bool = False,
                result: str = "ok") -> dict[str, Any]:
        blob = base64.b64encode("".join(json.dumps(e, default=str) + "\n"
                                        for e in entries).encode()).decode()
        args = ["release", "--op-id", op_id, "--result", result]
        if blob:
            args += ["--entries-b64", blob]
        return self.call([*args, *(["--force"] if force else [])])

    def show(self) -> dict[str, Any]:
        return self.call(["show"])

    def read(self, last: int | None = None, op_id: str | None = None) -> dict[str, Any]:
        return self.call(["read", *(["--last", str(last)] if last else []),
                          *(["--op-id", op_id] if op_id else [])])


def host(inv: Inventory) -> str | None:
    """The inventory host that keeps the ledger, or None."""
    named = inv.cluster.get("drctl_ledger_host")
    if named:
        return str(named)
    backups = [h.name for h in inv.group("backup")]
    return backups[0] if backups else None


def of(inv: Inventory) -> Ledger:
    """The cluster's ledger: its ledger host's, else this machine's."""
    name = host(inv)
    return HostLedger(inv, name) if name else MachineLedger(inv.name)


def may_take(lock: dict[str, Any]) -> bool:
    """Whether this operator's next take would get LOCK (the ledger's own rule)."""
    from drctl.node.ledger import left_by_own_playbook_run

    return left_by_own_playbook_run(lock, journal.who())
