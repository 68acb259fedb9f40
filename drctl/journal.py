"""Append-only JSON lines: every step of every operation (time, operation, step, host,
result, LSN, timeline, VIP holder). Kept under the state directory, one file per cluster."""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drctl.paths import state_dir

FIELDS = ("time", "operation", "op_id", "step", "host", "result", "lsn", "timeline",
          "vip_holder", "detail")


def who() -> str:
    """The operator, as the journals and the ledger record them: user@machine."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def journal_path(cluster: str) -> Path:
    d = state_dir() / "journal"
    d.mkdir(exist_ok=True, mode=0o700)
    return d / f"{cluster}.jsonl"


class Journal:
    """One operation's steps. HELD is the cluster's lock the operation holds (what
    drctl.lock.cluster_lock yields): the journal takes its op id and operator, so the
    ledger host's journal (where the lock's release copies the steps) and this one tell
    the same story. Without one, a new op id and this machine's operator."""

    def __init__(self, cluster: str, operation: str,
                 held: Mapping[str, Any] | None = None):
        self.cluster = cluster
        self.operation = operation
        self.op_id = str(held["op_id"]) if held else uuid.uuid4().hex[:12]
        self.who = str(held["who"]) if held else who()
        self.path = journal_path(cluster)

    def write(self, step: str, *, host: str | None = None, result: str = "ok",
              time: str | None = None, **extra: Any) -> dict[str, Any]:
        entry = {
            "time": time or datetime.now(UTC).isoformat(timespec="milliseconds"),
            "operation": self.operation,
            "op_id": self.op_id,
            "step": step,
            "host": host,
            "result": result,
            "who": self.who,
        }
        entry.update({k: v for k, v in extra.items() if v is not None})
        with open(self.path, "a") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")
        return entry

    def from_playbook(self, data: dict[str, Any], created: str | None) -> None:
        """A `drctl_journal` object a playbook step emitted (see EventReducer)."""
        data = dict(data)
        step = str(data.pop("step", "step"))
        host = data.pop("host", None)
        result = str(data.pop("result", "ok"))
        self.write(step, host=host, result=result, time=created, **data)


def read(cluster: str, last: int | None = None, op_id: str | None = None) -> list[dict]:
    path = journal_path(cluster)
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    if op_id:
        entries = [e for e in entries if e.get("op_id") == op_id]
    return entries[-last:] if last else entries
