"""One lock per cluster: a second operation refuses while one runs.

Two layers. On this machine, a file created with O_EXCL under the state directory holds
who took it (host, pid, operation, since); a lock whose process is gone (same host, pid
not alive) is reported as stale and `drctl unlock` clears it. On the cluster, the ledger
host's lock (drctl.ledger) is shared with plain `ansible-playbook` and AWX runs of the
playbooks: held by someone else, the operation is refused naming them. Its journal gets
this operation's steps when the lock is given back.

Only a failover may go on without the cluster's lock, when the ledger host cannot be
reached: that host may be gone with the primary's site, and refusing would keep the
business down. It says so, and the local journal records it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from drctl import journal, ledger
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.paths import state_dir

if TYPE_CHECKING:
    from drctl.inventory import Inventory

# Operations that go on without the cluster's lock when the ledger host cannot be reached.
WITHOUT_LEDGER_IF_UNREACHABLE = frozenset({"failover", "rebuild"})
# cluster -> the lock this process holds (an operation inside another, as a drill's
# switchover, runs under its lock)
_HELD: dict[str, dict] = {}


def _stderr(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


# Where the lock's warnings go (the CLI shows them its own way: on_warning); the lock
# itself prints nothing.
_warn: Callable[[str], None] = _stderr


def on_warning(callback: Callable[[str], None]) -> None:
    """Send the lock's warnings (a ledger host that cannot be reached or released) to
    CALLBACK."""
    global _warn
    _warn = callback


def _ledger(cluster: str, inv: Inventory | None) -> ledger.Ledger:
    """The cluster's ledger; this machine's when no inventory is given."""
    return ledger.of(inv) if inv is not None else ledger.MachineLedger(cluster)


def current(cluster: str | None = None) -> dict | None:
    """The lock this process holds (for CLUSTER, or any), else None."""
    if cluster is not None:
        return _HELD.get(cluster)
    return next(iter(_HELD.values()), None)


def playbook_vars() -> dict[str, str]:
    """Extra variables telling a playbook that this run holds the cluster's lock (its
    own take is then the same lock again, and it leaves the release to drctl)."""
    held = current()
    if not held or not held.get("ledger"):
        return {}
    return {"drctl_ledger_op_id": held["op_id"], "drctl_ledger_holder": held["who"]}


def lock_path(cluster: str) -> Path:
    d = state_dir() / "locks"
    d.mkdir(exist_ok=True, mode=0o700)
    return d / f"{cluster}.lock"


def holder(cluster: str) -> dict | None:
    try:
        return json.loads(lock_path(cluster).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"host": "?", "pid": -1, "operation": "?", "since": "?", "corrupt": True}


def is_stale(info: dict) -> bool:
    if info.get("corrupt"):
        return True
    if info.get("host") != socket.gethostname():
        return False  # another machine's process: cannot tell, never call it stale
    try:
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def describe(info: dict) -> str:
    return (f"{info.get('operation')} by pid {info.get('pid')} on {info.get('host')} "
            f"since {info.get('since')}")


@contextmanager
def cluster_lock(cluster: str, operation: str, inv: Inventory | None = None, *,
                 nestable: bool = False, ledger_per_operation: bool = False) -> Iterator[dict]:
    """Hold the cluster's lock for OPERATION: this machine's, and the ledger host's when
    INV (the inventory) names one. A NESTABLE lock (a drill's) lets the operations it
    runs in this process go on under it; any other second taker is refused. With
    LEDGER_PER_OPERATION the nestable lock is this machine's only, and each operation run
    under it takes (and gives back) the ledger host's lock for itself."""
    book = _ledger(cluster, inv)
    held = _HELD.get(cluster)
    if held is not None and held.get("nestable"):
        if not held.get("ledger_per_operation") or not book.shared:
            yield held
            return
        inner = {**held, "operation": operation, "op_id": uuid.uuid4().hex[:12],
                 "ledger": None, "nestable": False}
        _take_ledger(cluster, operation, book, inner)
        _HELD[cluster] = inner  # its journal and playbooks carry its own op id
        try:
            yield inner
        finally:
            _HELD[cluster] = held
            if inner.get("ledger"):
                _release_ledger(cluster, book, inner)
        return

    path = lock_path(cluster)
    info = {"host": socket.gethostname(), "pid": os.getpid(), "operation": operation,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
            "op_id": uuid.uuid4().hex[:12], "who": journal.who(), "ledger": None,
            "nestable": nestable, "ledger_per_operation": nestable and ledger_per_operation}
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        _refuse_local(cluster, holder(cluster) or {})
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)
    try:
        if book.shared and not info["ledger_per_operation"]:
            _take_ledger(cluster, operation, book, info)
        _HELD[cluster] = info
        yield info
    finally:
        _HELD.pop(cluster, None)
        if info.get("ledger"):
            _release_ledger(cluster, book, info)
        current_holder = holder(cluster)
        if current_holder and current_holder.get("pid") == os.getpid():
            path.unlink(missing_ok=True)


def _refuse_local(cluster: str, other: dict) -> NoReturn:
    if is_stale(other):
        raise DrctlError(
            f"cluster '{cluster}' has a stale lock: {describe(other)} (that process is "
            "gone; it may have been killed mid-operation)", ExitCode.LOCKED,
            hint="check `drctl status`, then `drctl unlock` and run the operation again")
    raise DrctlError(f"cluster '{cluster}' is locked: {describe(other)}", ExitCode.LOCKED,
                     hint="wait for it to finish; `drctl journal` shows its steps")


def ensure_free(cluster: str, inv: Inventory | None) -> None:
    """Refuse now, naming the holder, when another run holds the cluster's lock: its work
    in progress would otherwise show up as failed gates. (The lock itself is taken later,
    after the operator's confirmation; this only reads it.)"""
    mine = holder(cluster)
    if mine and mine.get("pid") != os.getpid():
        _refuse_local(cluster, mine)
    book = _ledger(cluster, inv)
    if not book.shared or cluster in _HELD:
        return
    shown = book.show()
    held = shown.get("lock") if shown.get("ok") else None
    if held and not ledger.may_take(held):
        raise DrctlError(f"cluster '{cluster}' is locked on {shown.get('host')}: "
                         f"{ledger_describe(held)}", ExitCode.LOCKED,
                         hint="wait for that run to finish; if it died, `drctl unlock "
                              "--force` clears it (`drctl journal` shows what it did)")


def _take_ledger(cluster: str, operation: str, book: ledger.Ledger, info: dict) -> None:
    answer = book.take(operation, info["op_id"])
    if answer.get("ok"):
        info["ledger"] = answer["host"]
        return
    if answer.get("lock"):
        raise DrctlError(
            f"cluster '{cluster}' is locked on {answer['host']}: "
            f"{ledger_describe(answer['lock'])}", ExitCode.LOCKED,
            hint="wait for that run to finish; if it died, `drctl unlock --force` clears it "
                 "(`drctl journal` shows what it did)")
    problem = answer.get("error") or "no answer"
    if operation in WITHOUT_LEDGER_IF_UNREACHABLE and answer.get("unreachable"):
        info["ledger_error"] = problem
        _warn(f"the cluster's lock on {answer.get('host')} cannot be taken ({problem}); "
              f"{operation} goes on without it: make sure no one else is acting on this "
              "cluster")
        return
    raise DrctlError(f"cannot take the cluster's lock on {answer.get('host')}: {problem}",
                     ExitCode.UNREACHABLE if answer.get("unreachable") else ExitCode.LOCKED,
                     hint="the ledger host (drctl_ledger_host, by default the first backup "
                          "host) must answer SSH; only a failover goes on without it")


def _release_ledger(cluster: str, book: ledger.Ledger, info: dict) -> None:
    entries = journal.read(cluster, op_id=info["op_id"])
    answer = book.release(info["op_id"], entries)
    if not answer.get("ok"):
        _warn(f"could not give the cluster's lock back on {info['ledger']}: "
              f"{answer.get('error')}; `drctl unlock --force` clears it")


def ledger_describe(lock: dict) -> str:
    return (f"{lock.get('operation')} by {lock.get('holder')} since {lock.get('since')} "
            f"(op {lock.get('op_id')})")


def unlock(cluster: str, force: bool = False, inv: Inventory | None = None
           ) -> dict[str, dict | None]:
    """Clear this machine's lock (stale, or any with FORCE) and the ledger host's: the one
    this machine's dead run held (its op id), or with FORCE any (whose holder may be
    another machine's live run: drctl cannot tell)."""
    cleared: dict[str, dict | None] = {"local": None, "cluster": None}
    info = holder(cluster)
    if info is not None:
        if not force and not is_stale(info):
            raise DrctlError(f"the lock of cluster '{cluster}' is held by a live process: "
                             f"{describe(info)}", ExitCode.LOCKED,
                             hint="use --force only if you are sure that operation is not "
                                  "running")
        lock_path(cluster).unlink(missing_ok=True)
        cleared["local"] = info
    book = _ledger(cluster, inv)
    if not book.shared:
        return cleared
    shown = book.show()
    if not shown.get("ok"):
        if not force and info is None:
            return cleared
        raise DrctlError(f"cannot read the cluster's lock on {shown.get('host')}: "
                         f"{shown.get('error')}", ExitCode.LOCKED)
    held = shown.get("lock")
    ours = info is not None and held is not None and held.get("op_id") == info.get("op_id")
    if held and not force and not ours:
        raise DrctlError(f"the cluster's lock on {shown['host']} is held: "
                         f"{ledger_describe(held)}", ExitCode.LOCKED,
                         hint="use --force only if you are sure that run is over (an AWX "
                              "job's status, or the operator who ran it)")
    if held:
        answer = book.release(str(held.get("op_id")), [], force=True)
        if not answer.get("ok"):
            raise DrctlError(f"could not clear the cluster's lock on {shown['host']}: "
                             f"{answer.get('error')}", ExitCode.LOCKED)
        cleared["cluster"] = held
    return cleared
