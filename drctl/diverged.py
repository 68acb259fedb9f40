"""Kept copies of diverged data: what failback set aside on each PostgreSQL node.

A copy holds commits that the cluster does not have (an old primary's writes past the
fork point). drctl never deletes one by itself; `drctl diverged` lists them, shows what
one holds and how to read its rows, and drops one when an operator says so.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from drctl import inventory as inv_mod
from drctl import sshprobe
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode

# Where `show` suggests starting a scratch copy (its own port, no TCP listener).
SCRATCH_DIR = "/var/tmp/drctl-diverged"
SCRATCH_PORT = 5499


def collect(inv: inv_mod.Inventory) -> dict[str, Any]:
    """Every PostgreSQL node's kept copies; nodes that do not answer are listed as such
    (their copies are unknown, not absent)."""
    hosts = [h.name for h in inv.pg_hosts]
    with ThreadPoolExecutor(max_workers=len(hosts) or 1) as pool:
        answers = list(pool.map(lambda h: sshprobe.node_json(inv, h, ["diverged-list"]), hosts))
    copies = [{"host": a["host"], **c} for a in answers if a.get("ok") for c in a["copies"]]
    unknown = [{"host": a.get("host", h), "error": a.get("error", "")}
               for h, a in zip(hosts, answers, strict=True) if not a.get("ok")]
    return {"cluster": inv.name, "copies": copies, "unanswered": unknown,
            "nodes": {a["host"]: {"data_dir": a.get("data_dir"), "bin_dir": a.get("bin_dir")}
                      for a in answers if a.get("ok")}}


def find(inv: inv_mod.Inventory, host: str, name: str) -> dict[str, Any]:
    """One copy, with the commands that let an operator read its rows."""
    inv.require_pg_host(host)
    answer = sshprobe.node_json(inv, host, ["diverged-list"])
    if not answer.get("ok"):
        raise DrctlError(f"{host}: {answer.get('error')}", ExitCode.UNREACHABLE
                         if answer.get("unreachable") else ExitCode.FAILED)
    by_name = {c["name"]: c for c in answer["copies"]}
    if name not in by_name:
        raise DrctlError(f"{host} keeps no copy named {name!r}",
                         hint="drctl diverged list shows them: "
                              + (", ".join(by_name) or "there are none"))
    copy = by_name[name]
    return {"host": host, **copy, "look": look_commands(copy["path"], answer["bin_dir"])}


def look_commands(path: str, bin_dir: str) -> list[str]:
    """Shell commands (as root on the node) that start a scratch copy of PATH on a private
    socket, so that its rows can be read; the kept copy itself stays untouched."""
    scratch = f"{SCRATCH_DIR}/{path.rsplit('/', 1)[-1]}"
    settings = " ".join(f"-c {s}" for s in (
        "config_file=/dev/null", "hba_file=" + scratch + "/drctl-hba.conf",
        "ident_file=/dev/null",
        f"port={SCRATCH_PORT}", "listen_addresses=''", f"unix_socket_directories={SCRATCH_DIR}",
        "archive_mode=off", "max_wal_senders=0", "hot_standby=off"))
    return [
        f"install -d -o postgres -g postgres -m 0700 {SCRATCH_DIR}",
        f"cp -a {path} {scratch}",
        f"rm -f {scratch}/standby.signal {scratch}/recovery.signal {scratch}/postmaster.pid",
        f"echo 'local all postgres peer' > {scratch}/drctl-hba.conf && "
        f"chown postgres: {scratch}/drctl-hba.conf",
        f"runuser -u postgres -- {bin_dir}/pg_ctl -D {scratch} -w -l {scratch}.log "
        f"-o \"{settings}\" start",
        f"runuser -u postgres -- psql -h {SCRATCH_DIR} -p {SCRATCH_PORT} -d app",
        f"runuser -u postgres -- {bin_dir}/pg_ctl -D {scratch} -m fast stop && "
        f"rm -rf {scratch} {scratch}.log",
    ]


def drop(inv: inv_mod.Inventory, host: str, name: str) -> dict[str, Any]:
    answer = sshprobe.node_json(inv, host, ["diverged-drop", name], timeout=3600)
    if not answer.get("ok"):
        raise DrctlError(f"{host}: {answer.get('error')}", ExitCode.FAILED)
    return answer


def at_stake(copy: dict[str, Any]) -> str:
    """What dropping COPY loses, in words."""
    if copy.get("commits") is None:
        what = "commits that were never counted (copy made before drctl recorded them)" \
            if not copy.get("recorded") else "commits that could not be counted"
    elif copy["commits"] == 0:
        what = "no commit (nothing past the fork point)"
    else:
        span = (f" committed between {copy['first_commit_at']} and {copy['last_commit_at']}"
                if copy.get("first_commit_at") else "")
        what = f"{copy['commits']} commit{'s' if copy['commits'] != 1 else ''}{span}"
    return f"{what}, which the cluster does not have"
