"""The node side of a failback and of a failover's other standbys: what diverged past the
fork point (summarised, kept aside, listed, dropped), and following a primary."""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import sys
import time
from typing import Any

from drctl.node.common import (
    Config,
    controldata,
    emit,
    fail,
    now_iso,
    psql,
    run,
    write_json_atomic,
)
from drctl.node.handover import peer_connect
from drctl.rules import decide, sql

# ------------------------------------------------------------------ failback


COMMIT_TIME = re.compile(r"COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \w+)")


def summarize_waldump(lines: list[str]) -> dict[str, Any]:
    """Records, commits and their time range from pg_waldump's output."""
    records = [ln for ln in lines if ln.startswith("rmgr:")]
    commits = [ln for ln in records if "COMMIT" in ln and "Transaction" in ln]
    times = [m.group(1) for ln in commits for m in [COMMIT_TIME.search(ln)] if m]
    xids = sorted({m.group(1) for ln in records for m in [re.search(r"tx:\s+(\d+)", ln)]
                   if m and m.group(1) != "0"}, key=int)
    by_rmgr: dict[str, int] = {}
    for ln in records:
        name = ln.split()[1]
        by_rmgr[name] = by_rmgr.get(name, 0) + 1
    m = re.search(r"lsn: ([0-9A-F]+/[0-9A-F]+)", records[-1]) if records else None
    return {"records": len(records), "commits": len(commits), "xids": xids[:50],
            "by_rmgr": by_rmgr, "last_lsn": m.group(1) if m else None,
            "first_commit_at": times[0] if times else None,
            "last_commit_at": times[-1] if times else None,
            "commit_samples": [ln[:200] for ln in commits[:20]]}


def divergence(c: Config, pgdata: str, fork_lsn: str, timeline: int) -> dict[str, Any]:
    """pg_waldump's summary of PGDATA's WAL past the fork point; `known` is False when
    the commits past it could not be counted (no fork point, or no WAL readable)."""
    if fork_lsn in ("", "0/0"):
        return {**summarize_waldump([]), "known": False, "nothing": False,
                "summary": "no fork point (the primary's timeline history does not name "
                           "this node's timeline)", "waldump_error": ""}
    _, o, e = run([f"{c.bindir}/pg_waldump", "--path", os.path.join(pgdata, "pg_wal"),
                   "--start", fork_lsn, "--timeline", str(timeline)], timeout=600)
    summary = summarize_waldump(o.splitlines())
    nothing = not summary["records"] and "could not find a valid record" in e
    return {**summary, "known": nothing or bool(summary["records"]), "nothing": nothing,
            "summary": ("nothing diverged: no WAL past the fork point" if nothing else
                        f"{summary['records']} WAL records, {summary['commits']} commits "
                        "past the fork point"),
            "waldump_error": "" if nothing or summary["records"] else e[:300]}


def cmd_divergence(c: Config, a: argparse.Namespace) -> None:
    summary = divergence(c, a.pgdata or c.datadir, a.fork_lsn, a.timeline)
    emit(ok=True, host=c.name, fork_lsn=a.fork_lsn, **summary)


def dir_bytes(path: str, part: str = "") -> tuple[int, int]:
    """Bytes of the files under PATH, and of those under PATH/PART (one walk; symbolic
    links not followed)."""
    total = inside = 0
    sub = os.path.join(path, part) if part else None
    for root, _dirs, files in os.walk(path):
        in_part = sub is not None and (root == sub or root.startswith(sub + os.sep))
        for name in files:
            with contextlib.suppress(OSError):
                n = os.lstat(os.path.join(root, name)).st_size
                total += n
                inside += n if in_part else 0
    return total, inside


DIVERGED_META = "drctl-diverged.json"


def cmd_set_aside(c: Config, a: argparse.Namespace) -> None:
    """Before pg_rewind changes a returning node: copy its data directory aside when it
    holds commits past the fork point (drctl.rules.decide.set_aside decides, from what
    is on disk now), else only its pg_wal, which pg_rewind may need to read back."""
    pgdata = a.pgdata or c.datadir
    d = divergence(c, pgdata, a.fork_lsn, a.timeline)
    commits = d["commits"] if d["known"] else None
    span = (f" (committed between {d['first_commit_at']} and {d['last_commit_at']})"
            if d["first_commit_at"] else "")
    fs = os.statvfs(os.path.dirname(pgdata.rstrip("/")) or "/")
    data_bytes, wal_bytes = dir_bytes(pgdata, "pg_wal")
    sizes = {"data_bytes": data_bytes, "wal_bytes": wal_bytes,
             "free_bytes": fs.f_bavail * fs.f_frsize}
    verdict = decide.set_aside(c.name, commits, span, discard=a.discard_diverged, **sizes)
    facts = {"action": verdict.action, "sentence": verdict.sentence, "divergence": d,
             "fork_lsn": a.fork_lsn, "timeline": a.timeline, **sizes}
    if verdict.action == "refuse":
        fail(verdict.sentence, **facts)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    if verdict.action == "keep":
        dest = f"{pgdata.rstrip('/')}.diverged-{stamp}"
        source, restore_dir = pgdata, os.path.join(dest, "pg_wal")
    else:
        dest = f"{pgdata.rstrip('/')}.rewind-wal-{stamp}"
        source, restore_dir = os.path.join(pgdata, "pg_wal"), dest
    rc, _, err = run(["cp", "-a", source, dest], timeout=a.copy_timeout)
    if rc != 0:
        fail(f"copying {source} to {dest} failed: {err[-300:]}", **facts)
    if verdict.action == "keep":
        write_json_atomic(os.path.join(dest, DIVERGED_META),
                          {"host": c.name, "at": now_iso(), **facts})
    emit(ok=True, host=c.name, set_aside=dest if verdict.action == "keep" else "",
         restore_dir=restore_dir, scratch_wal=dest if verdict.action == "wal-only" else "",
         **facts)


DIVERGED_NAME = re.compile(r"\.diverged-\d{8}T\d{6}Z$")


def diverged_copies(c: Config) -> list[dict[str, Any]]:
    """Every kept copy of this node's diverged data, oldest first, with what failback
    recorded in it (copies made before drctl recorded that say so)."""
    base = c.datadir.rstrip("/")
    out = []
    for path in sorted(glob.glob(f"{base}.diverged-*")):
        if not DIVERGED_NAME.search(path):
            continue
        try:
            with open(os.path.join(path, DIVERGED_META)) as fh:
                meta = json.load(fh)
        except (OSError, ValueError):
            meta = {}
        d = meta.get("divergence") or {}
        size = meta.get("data_bytes")
        if size is None:
            rc, o, _ = run(["du", "-sb", path], timeout=30)
            size = int(o.split()[0]) if rc == 0 and o else None
        out.append({"name": os.path.basename(path), "path": path, "bytes": size,
                    "at": meta.get("at"), "recorded": bool(meta),
                    "commits": d.get("commits") if d.get("known") else None,
                    "first_commit_at": d.get("first_commit_at"),
                    "last_commit_at": d.get("last_commit_at"),
                    "fork_lsn": meta.get("fork_lsn"), "timeline": meta.get("timeline"),
                    "sentence": meta.get("sentence", ""), "xids": d.get("xids", []),
                    "commit_samples": d.get("commit_samples", []),
                    "by_rmgr": d.get("by_rmgr", {})})
    return out


def cmd_diverged_list(c: Config, a: argparse.Namespace) -> None:
    emit(ok=True, host=c.name, data_dir=c.datadir, bin_dir=c.bindir,
         copies=diverged_copies(c))


def cmd_diverged_drop(c: Config, a: argparse.Namespace) -> None:
    known = {d["name"]: d for d in diverged_copies(c)}
    if a.name not in known:
        fail(f"{c.name} keeps no copy named {a.name!r} (it keeps: "
             f"{', '.join(known) or 'none'})")
    rc, _, err = run(["rm", "-rf", "--one-file-system", known[a.name]["path"]], timeout=3600)
    if rc != 0:
        fail(f"removing {known[a.name]['path']} failed: {err[-300:]}")
    emit(ok=True, host=c.name, dropped=known[a.name])


def _write_owned(path: str, content: str, mode: int, owner: str) -> bool:
    """Write PATH (atomically, owned by OWNER) unless it already holds CONTENT exactly;
    whether it wrote."""
    import pwd

    try:
        with open(path) as fh:
            if fh.read() == content:
                return False
    except FileNotFoundError:
        pass
    user = pwd.getpwnam(owner)
    tmp = f"{path}.drctl-tmp"
    with open(tmp, "w") as fh:
        fh.write(content)
    os.chown(tmp, user.pw_uid, user.pw_gid)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def _receiver_status(c: Config) -> str:
    try:
        return psql(c, sql.WAL_RECEIVER_STATUS, timeout=5)
    except RuntimeError:
        return ""  # still starting


def cmd_follow(c: Config, a: argparse.Namespace) -> None:
    """Make this node, which already holds this cluster's data (a switchover's old primary,
    a rewound node), a standby of the primary its new standby settings name; what
    pg_replication's standby tasks do, in one step. The settings come rendered on stdin
    (the role's own template), so that a later provision finds nothing to change."""
    conf = sys.stdin.read().rstrip("\n") + "\n"
    if "primary_conninfo" not in conf:
        fail("no standby settings on stdin (expected primary_conninfo)")
    follow(c, a, conf)


CONNINFO_HOST = re.compile(r"(primary_conninfo\s*=\s*'(?:[^']*\s)?host=)([^\s']+)")


def repointed(conf: str, address: str) -> str:
    """Standby settings CONF with the primary's address in primary_conninfo replaced by
    ADDRESS, everything else (port, user, TLS, slot) kept as the role rendered it."""
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", address):
        raise ValueError(f"not an address: {address!r}")
    new, count = CONNINFO_HOST.subn(lambda m: m.group(1) + address, conf)
    if count != 1:
        raise ValueError("the standby settings hold no primary_conninfo with a host")
    return new


def cmd_repoint(c: Config, a: argparse.Namespace) -> None:
    """A standby of a primary that is gone follows the new primary at --primary-address
    (a failover's other standbys): its own standby settings with only the primary's address
    changed, then what follow does (reload, streaming, slots). Nothing is read from stdin:
    the node keeps the role's rendering, so a later provision (which renders the same
    address for the new primary) changes nothing."""
    if not a.primary_address:
        fail("--primary-address is required")
    try:
        with open(c.standby_conf_file) as fh:
            current = fh.read()
    except FileNotFoundError:
        fail(f"{c.standby_conf_file} is missing: this node is not set up as a standby")
    try:
        conf = repointed(current, a.primary_address)
    except ValueError as exc:
        fail(f"{c.standby_conf_file}: {exc}")
    follow(c, a, conf)


def follow(c: Config, a: argparse.Namespace, conf: str) -> None:
    """Write CONF as this node's standby settings and follow the primary they name."""
    start = time.monotonic()
    if not os.path.exists(os.path.join(c.datadir, "PG_VERSION")):
        fail(f"{c.datadir} holds no cluster: a node without data is cloned by provision")
    if a.primary_address:
        ours = controldata(c).get("Database system identifier", "")
        cur = peer_connect(c, a.primary_address).cursor()
        cur.execute(sql.SYSTEM_IDENTIFIER)
        theirs = str(cur.fetchone()[0])
        if ours != theirs:
            fail(f"this node holds another cluster (system identifier {ours or 'unknown'}, "
                 f"the primary's {theirs}): provision decides what to do with it")
    running = run(["systemctl", "is-active", "--quiet", c.unit])[0] == 0
    if running and psql(c, sql.IN_RECOVERY) != "t":
        fail("this node is a running primary: it cannot follow another one")
    changed: list[str] = []
    bad = [n for n in a.slot if not re.fullmatch(sql.SLOT_NAME, n)]
    if bad:
        fail(f"not replication slot names: {', '.join(bad)}")
    if _write_owned(c.standby_conf_file, conf, 0o644, a.owner):
        changed.append("standby settings")
    signal = os.path.join(c.datadir, "standby.signal")
    if not os.path.exists(signal):
        _write_owned(signal, "", 0o600, a.owner)
        changed.append("standby.signal")
    if not running:
        rc, _, err = run(["systemctl", "start", c.unit], timeout=a.start_timeout)
        if rc != 0:
            fail(f"PostgreSQL did not start as a standby: {err}", changed=changed)
        changed.append("started")
    elif "standby settings" in changed:
        rc, _, err = run(["systemctl", "reload", c.unit], timeout=60)
        if rc != 0:
            fail(f"reloading PostgreSQL failed: {err}", changed=changed)
        changed.append("reloaded")
    if run(["systemctl", "is-enabled", "--quiet", c.unit])[0] != 0:
        run(["systemctl", "enable", c.unit], timeout=60)
        changed.append("enabled")
    deadline = time.monotonic() + a.stream_timeout
    while (status := _receiver_status(c)) != "streaming":
        if time.monotonic() > deadline:
            fail(f"not streaming from the primary after {a.stream_timeout:g} s "
                 f"(wal receiver: {status or 'none'})", changed=changed)
        time.sleep(0.1)
    streaming_s = time.monotonic() - start
    stale = [n for n in psql(c, sql.STALE_SLOTS).splitlines() if n]
    for name in stale:
        psql(c, sql.drop_slot(name))
    have = set(psql(c, sql.SLOT_NAMES).splitlines())
    created = [n for n in a.slot if n not in have]
    for name in created:
        psql(c, sql.create_slot(name))
    if stale:
        changed.append("dropped slots " + ",".join(stale))
    if created:
        changed.append("created slots " + ",".join(created))
    emit(ok=True, host=c.name, changed=changed, streaming_after_s=round(streaming_s, 3),
         seconds=round(time.monotonic() - start, 3))
