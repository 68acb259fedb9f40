"""The cluster's ledger: its lock and its journal, kept on one host of the cluster.

Every run that changes the cluster, from drctl or from a plain `ansible-playbook` (an
operator's shell, an AWX job), takes the one lock here and writes who it is, so two
runs from two control machines never act at once, and the journal says who did what.

The file is self-contained (standard library only) and runs as a script on a bare host:
drctl sends it over SSH (`python3 - ARGS < ledger.py`), the playbooks with Ansible's
`script` module, so the ledger works before drctl's node programs are installed.

  ledger.py [--dir DIR] take --holder WHO --operation OP --op-id ID
  ledger.py [--dir DIR] release --op-id ID [--force] [--result R] [--entries-b64 B64]
  ledger.py [--dir DIR] show
  ledger.py [--dir DIR] read [--last N] [--op-id ID]

Each prints one JSON object. `take` by the op id that holds the lock succeeds again
(a playbook drctl runs takes the lock drctl took). A plain ansible-playbook run (op id
"ap-...") that stopped on an error keeps its lock, since a play cannot give it back on
failure; the same operator's next run from the same machine takes it over (and the
journal says so); anyone else is refused until it is cleared. Exit status: 0 done, 1 the
lock is held by someone else (the holder is printed), 2 bad input.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

DEFAULT_DIR = "/var/lib/drctl/ledger"
LOCK = "lock.json"
JOURNAL = "journal.jsonl"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _ensure(directory: str) -> None:
    os.makedirs(directory, mode=0o750, exist_ok=True)


def holder(directory: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(directory, LOCK)) as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"holder": "?", "operation": "?", "op_id": "?", "since": "?", "corrupt": True}
    return data if isinstance(data, dict) else {"holder": "?", "corrupt": True}


def append(directory: str, entries: list[dict[str, Any]]) -> None:
    """Append entries to the journal, one JSON line each, under an exclusive flock."""
    if not entries:
        return
    _ensure(directory)
    fd = os.open(os.path.join(directory, JOURNAL), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                 0o640)
    with os.fdopen(fd, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        for entry in entries:
            fh.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def take(directory: str, who: str, operation: str, op_id: str) -> tuple[bool, dict[str, Any]]:
    """(True, the lock) when this op id holds it now; (False, the other holder) if not."""
    _ensure(directory)
    record = {"holder": who, "operation": operation, "op_id": op_id, "since": _now()}
    path = os.path.join(directory, LOCK)
    step = "lock"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
    except FileExistsError:
        current = holder(directory) or {}
        if current.get("op_id") == op_id:
            return True, current
        if not left_by_own_playbook_run(current, who):
            return False, current
        # the same operator's earlier ansible-playbook run stopped without giving it back
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        step = f"lock (taken over from {current.get('op_id')})"
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)
        fh.flush()
        os.fsync(fh.fileno())
    append(directory, [{"time": record["since"], "operation": operation, "op_id": op_id,
                        "step": step, "host": None, "who": who, "result": "ok"}])
    return True, record


def left_by_own_playbook_run(lock: dict[str, Any], who: str) -> bool:
    """Whether LOCK was left by a plain ansible-playbook run (its op id "ap-...") of the
    operator WHO on the same machine: a run that stopped on an error."""
    return lock.get("holder") == who and str(lock.get("op_id", "")).startswith("ap-")


def release(directory: str, op_id: str, force: bool = False, result: str = "ok",
            entries: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """Write ENTRIES (the run's own journal) and give the lock up when OP_ID holds it
    (or any holder with FORCE). Returns the lock released, None when none was held."""
    current = holder(directory)
    who = (current or {}).get("holder", "?")
    append(directory, [{**e, "who": e.get("who") or who} for e in entries or []])
    if current is None:
        return None
    if current.get("op_id") != op_id and not force:
        raise PermissionError(f"the lock is held by {describe(current)}, not by {op_id}")
    os.unlink(os.path.join(directory, LOCK))
    append(directory, [{"time": _now(), "operation": current.get("operation"),
                        "op_id": current.get("op_id"), "step": "unlock", "host": None,
                        "who": who,
                        "result": "forced" if force and current.get("op_id") != op_id
                        else result}])
    return current


def read(directory: str, last: int | None = None, op_id: str | None = None
         ) -> list[dict[str, Any]]:
    try:
        with open(os.path.join(directory, JOURNAL)) as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):  # every entry has the journal's fields, older ones too
            entries.append({"host": None, "result": "ok", "who": "?", **entry})
    if op_id:
        entries = [e for e in entries if e.get("op_id") == op_id]
    return entries[-last:] if last else entries


def describe(lock: dict[str, Any]) -> str:
    return (f"{lock.get('operation')} by {lock.get('holder')} since {lock.get('since')} "
            f"(op {lock.get('op_id')})")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ledger")
    p.add_argument("--dir", default=DEFAULT_DIR)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("take")
    t.add_argument("--holder", required=True)
    t.add_argument("--operation", required=True)
    t.add_argument("--op-id", required=True)
    r = sub.add_parser("release")
    r.add_argument("--op-id", required=True)
    r.add_argument("--force", action="store_true")
    r.add_argument("--result", default="ok")
    r.add_argument("--entries-b64", default="",
                   help="the run's journal entries: JSON lines, base64-encoded")
    sub.add_parser("show")
    d = sub.add_parser("read")
    d.add_argument("--last", type=int)
    d.add_argument("--op-id")
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    out: dict[str, Any]
    code = 0
    if a.cmd == "take":
        ok, lock = take(a.dir, a.holder, a.operation, a.op_id)
        out, code = {"ok": ok, "lock": lock}, 0 if ok else 1
    elif a.cmd == "release":
        entries: list[dict[str, Any]] = []
        if a.entries_b64:
            try:
                text = base64.b64decode(a.entries_b64, validate=True).decode()
                entries = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
            except ValueError as exc:
                print(json.dumps({"ok": False, "error": f"bad journal entry: {exc}"}))
                return 2
        try:
            out = {"ok": True, "released": release(a.dir, a.op_id, a.force, a.result, entries)}
        except PermissionError as exc:
            out, code = {"ok": False, "error": str(exc), "lock": holder(a.dir)}, 1
    elif a.cmd == "show":
        out = {"ok": True, "lock": holder(a.dir)}
    else:
        out = {"ok": True, "entries": read(a.dir, a.last, a.op_id)}
    print(json.dumps(out, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
