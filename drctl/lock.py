"""One lock per cluster: a second drctl operation refuses while one runs.

The lock is a file created with O_EXCL under the state directory, holding who took it
(host, pid, operation, since). A lock whose process is gone (same host, pid not alive)
is reported as stale; `drctl unlock` clears it explicitly.
"""

from __future__ import annotations

import json
import os
import socket
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.paths import state_dir


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
def cluster_lock(cluster: str, operation: str):
    path = lock_path(cluster)
    info = {"host": socket.gethostname(), "pid": os.getpid(), "operation": operation,
            "since": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        other = holder(cluster) or {}
        if is_stale(other):
            raise DrctlError(
                f"cluster '{cluster}' has a stale lock: {describe(other)} (that process is "
                "gone; it may have been killed mid-operation)", ExitCode.LOCKED,
                hint="check `drctl status`, then `drctl unlock` and run the operation again"
            ) from None
        raise DrctlError(f"cluster '{cluster}' is locked: {describe(other)}", ExitCode.LOCKED,
                         hint="wait for it to finish; `drctl journal` shows its steps") from None
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)
    try:
        yield info
    finally:
        current = holder(cluster)
        if current and current.get("pid") == os.getpid():
            path.unlink(missing_ok=True)


def unlock(cluster: str, force: bool = False) -> dict | None:
    info = holder(cluster)
    if info is None:
        return None
    if not force and not is_stale(info):
        raise DrctlError(f"the lock of cluster '{cluster}' is held by a live process: "
                         f"{describe(info)}", ExitCode.LOCKED,
                         hint="use --force only if you are sure that operation is not running")
    lock_path(cluster).unlink(missing_ok=True)
    return info
