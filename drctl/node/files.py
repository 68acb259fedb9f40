"""The application's own files: copied from the serving site to the other sites and to the
backup hosts with rsync, and how old each copy is.

  drctl-node --files-config PATH files sync     (the timer's job, on every app host)
  drctl-node --files-config PATH files state    (what `drctl status` reads, on every copy)

Only the app host whose application reaches the writable primary sends (it asks its own
application's /health at that moment): that is the site that serves, and its files are
the newest; in a site with an application VIP, only the app host that holds it (the other
app hosts of the site serve nobody). The others only receive. After a site failover the
direction reverses by itself, and when the first site comes back it receives what was
uploaded meanwhile.

A copy is `rsync --recursive --times --delete` into the peer's directory as the peer's
copy user, through rrsync (the peer lets this host's key write that one directory and
nothing else). What a copy would delete or overwrite on the peer is set aside in the
peer's SET_ASIDE directory (rsync --backup; each file named with the run's time, as in
NAME.~20261203T142922Z~), never thrown away: a file that reached only the site that
failed is still on its disk. Each run first writes STAMP (when the copy started, from
which host) into the source directory and sends it after the files, so every copy carries
the time it was taken; `state` reports its age.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from drctl.node import common

STAMP = ".drctl-copied-at"
SET_ASIDE = ".drctl-set-aside"


@dataclass(frozen=True)
class Peer:
    name: str
    address: str


@dataclass(frozen=True)
class FilesConfig:
    """/etc/drctl/files.json as the app_files role writes it."""

    directory: str
    name: str = field(default_factory=socket.gethostname)
    health_url: str = ""  # empty: this host never sends (a backup host)
    peers: tuple[Peer, ...] = ()
    ssh_key: str = "/etc/drctl/files/id_ed25519"
    known_hosts: str = "/etc/drctl/files/known_hosts"
    ssh_user: str = "drctl-files"
    connect_timeout_s: int = 5
    timeout_s: float = 600
    bandwidth_kbps: int = 0  # rsync --bwlimit; 0 = no limit
    last_run: str = "/var/lib/drctl/files-sync.json"
    # held for the whole of a run: a switchover's run waits for the timer's (two rsyncs
    # into one directory delete each other's temporary files and both can fail)
    lock_file: str = "/var/lib/drctl/files-sync.lock"
    # the site's application VIP (address/prefix) and its interface, when it has one: of
    # several app hosts in a site only the one holding it serves, so only that one sends
    app_vip: str = ""
    app_vip_interface: str = ""

    @classmethod
    def load(cls, path: str) -> FilesConfig:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
        raw["peers"] = tuple(Peer(**p) for p in raw.get("peers", []))
        return cls(**raw)


def serving(health_url: str, timeout: float = 5) -> tuple[bool, str]:
    """Whether this host's application reaches the writable primary now, and why not."""
    if not health_url:
        return False, "this host only receives copies"
    try:
        with urllib.request.urlopen(health_url, timeout=timeout) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as exc:
        try:
            body = json.load(exc)
        except ValueError:
            return False, f"the application answered {exc.code}"
    except (OSError, ValueError) as exc:
        return False, f"the application does not answer: {exc}"
    if body.get("writable") is True:
        return True, f"the application reaches the writable primary {body.get('server')}"
    return False, ("this site's application does not reach the writable primary "
                   f"({body.get('error') or body.get('database') or 'read-only'})")


def rsync_command(c: FilesConfig, peer: Peer, run_id: str, stamp_only: bool = False,
                  control_path: str = "") -> list[str]:
    """The rsync that copies the directory to PEER (rrsync there names the directory);
    with STAMP_ONLY, the one that then sends the stamp alone (after the files it dates,
    and without setting the previous stamp aside). CONTROL_PATH: the run's ssh connection
    to PEER is shared by both (one login a run instead of two: on the peer, every login is
    a new sshd and its key exchange); it ends a few seconds after its last use."""
    ssh = (f"ssh -i {c.ssh_key} -o BatchMode=yes -o IdentitiesOnly=yes "
           f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={c.known_hosts} "
           f"-o ConnectTimeout={c.connect_timeout_s} -o ServerAliveInterval=5 "
           "-o ServerAliveCountMax=3")
    if control_path:
        ssh += f" -o ControlMaster=auto -o ControlPath={control_path} -o ControlPersist=2"
    # the receiver's user owns what it writes; the group (the application's, on an app
    # host) reads and replaces it: no owner, group or directory times are carried over
    # (the directory itself belongs to the application), new files get --chmod's mode
    cmd = ["rsync", "--times", "--chmod=ug=rwX,o=", "-e", ssh]
    if c.bandwidth_kbps:
        cmd.append(f"--bwlimit={c.bandwidth_kbps}")
    target = f"{c.ssh_user}@{peer.address}:"
    if stamp_only:
        return [*cmd, "--ignore-times", os.path.join(c.directory, STAMP), target]
    return [*cmd, "--recursive", "--links", "--omit-dir-times", "--delete",
            "--partial-dir=.rsync-partial", "--backup", f"--backup-dir={SET_ASIDE}",
            f"--suffix=.~{run_id}~", f"--exclude=/{SET_ASIDE}", f"--exclude=/{STAMP}",
            "--exclude=.*.tmp", "--stats", os.path.join(c.directory, ""), target]


def write_stamp(c: FilesConfig, now: float) -> dict[str, Any]:
    stamp = {"source": c.name, "epoch": now,
             "at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")}
    common.write_json_atomic(os.path.join(c.directory, STAMP), stamp)
    return stamp


def _transferred(stats: str) -> int | None:
    for line in stats.splitlines():
        if line.startswith("Number of regular files transferred:"):
            return int(line.split(":", 1)[1].strip().replace(",", ""))
    return None


def why_failed(rc: int, stderr: str) -> str:
    """The line of rsync's (or ssh's) complaint that says why, not its generic summary."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    cause = [ln for ln in lines if not ln.startswith("rsync error:")]
    return ((cause or lines or [f"rsync exit {rc}"])[0])[:300]


def sync(c: FilesConfig, now: float | None = None) -> dict[str, Any]:
    """Send the directory to every peer when this site serves; the run's record."""
    started = time.time() if now is None else now
    # the VIP first: the app host without it (every other run in a site of two) does not
    # ask its application, and through it the database, every time the timer fires
    if c.app_vip and not common.holds_address(c.app_vip_interface, c.app_vip):
        active, why = False, (f"the site's application VIP {c.app_vip.split('/')[0]} is on "
                              "another app host: that one serves and sends")
    else:
        active, why = serving(c.health_url)
    record: dict[str, Any] = {"ok": True, "host": c.name, "sent": active, "reason": why,
                              "at": datetime.fromtimestamp(started, UTC).isoformat(
                                  timespec="seconds"), "peers": []}
    if not active:
        return record
    record["stamp"] = write_stamp(c, started)
    run_id = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%SZ")
    # the run's ssh connections' sockets, private to this run (root's, mode 0700)
    with tempfile.TemporaryDirectory(prefix="drctl-files-ssh-") as sockets:
        for peer in c.peers:
            record["peers"].append(_send(c, peer, run_id, os.path.join(sockets, "%C")))
    record["ok"] = all(p["ok"] for p in record["peers"])
    return record


def _send(c: FilesConfig, peer: Peer, run_id: str, control_path: str) -> dict[str, Any]:
    """The files to PEER, then the stamp that dates them; PEER's entry of the record."""
    t0 = time.monotonic()
    rc, out, err = common.run(rsync_command(c, peer, run_id, control_path=control_path),
                              timeout=c.timeout_s)
    if rc == 0:
        rc, _, err = common.run(rsync_command(c, peer, run_id, stamp_only=True,
                                              control_path=control_path),
                                timeout=c.timeout_s)
    entry: dict[str, Any] = {"peer": peer.name, "ok": rc == 0, "rc": rc,
                             "seconds": round(time.monotonic() - t0, 2),
                             "files": _transferred(out)}
    if rc != 0:
        entry["error"] = why_failed(rc, err)
    return entry


def state(c: FilesConfig, now: float | None = None) -> dict[str, Any]:
    """This host's copy: the stamp it carries and its age, and its own last run."""
    now = time.time() if now is None else now
    stamp = common.read_json(os.path.join(c.directory, STAMP))
    files = 0
    if os.path.isdir(c.directory):
        files = sum(1 for e in os.scandir(c.directory)
                    if e.is_file() and not e.name.startswith("."))
    aside = os.path.join(c.directory, SET_ASIDE)
    return {"host": c.name, "directory": c.directory, "files": files,
            "copied_from": (stamp or {}).get("source"),
            "copied_at": (stamp or {}).get("at"),
            "age_s": round(now - float(stamp["epoch"]), 1) if stamp else None,
            "set_aside": sorted(os.listdir(aside)) if os.path.isdir(aside) else [],
            "last_run": common.read_json(c.last_run)}


def main(config_path: str, command: str) -> int:
    if not os.path.exists(config_path):  # a host the copy does not include
        common.emit(ok=True, configured=False, sent=False)
        return 0
    c = FilesConfig.load(config_path)
    if command == "state":
        common.emit(ok=True, configured=True, **state(c))
        return 0
    # the longest a run can take (every peer's rsync and its stamp at their timeout)
    wait_s = 2 * c.timeout_s * (len(c.peers) or 1) + 10
    try:
        with common.exclusive(c.lock_file, wait_s):
            record = sync(c)
    except common.Busy as exc:
        record = {"ok": False, "host": c.name, "sent": False, "peers": [],
                  "reason": f"another copy is still running: {exc}", "at": common.now_iso()}
    common.write_json_atomic(c.last_run, record)  # creates its directory
    print(json.dumps(record, sort_keys=True), flush=True)
    return 0 if record["ok"] else 1
