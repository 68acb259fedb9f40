"""The node-side steps of switchover, failover and failback, and fencing.

Each prints one JSON object, so a step costs one Ansible task and its result is data.

  hold-vip SECONDS        keep this node's VIP check passing while PostgreSQL stops
                          (expires by itself; a forgotten hold cannot pin the VIP)
  release-vip             drop the hold and stop keepalived: the peers take the VIP now
  stop-primary            CHECKPOINT, stop PostgreSQL cleanly, prove it (pg_controldata)
  handover --target-address A   the critical window of a switchover, run on the old
                          primary: hold VIP, stop cleanly, target replays past the
                          shutdown checkpoint, promote it, release the VIP
  promote [--after-lsn L] wait until WAL up to L is replayed, promote, wait for keepalived
                          to see this node as eligible (BACKUP/MASTER)
  take-over               a failover's node side in one process: promote (unless already
                          done), drop a gone synchronous standby, wait for the VIP, prove a
                          write (drctl failover and playbooks/failover.yml both run it)
  wait-vip                wait until this node holds the VIP
  fence --reason R        mark this node fenced and stop PostgreSQL: it must not serve
  unfence                 remove the mark (drctl failback does this after a rejoin)
  auto-pause --reason R   pause automatic failover here for an operation, as the repmgr
                          role's pause does: the marker (an existing one is kept), then
                          repmgrd stopped (bounded by its unit's stop timeout)
  fence-check             systemd ExecStartPre of PostgreSQL: refuse to start when fenced;
                          as a primary, start only when still the newest primary (a peer
                          confirms it, or it ran as primary since boot); fence itself when
                          a peer knows a newer timeline; otherwise hold (stay down). A
                          start removes a postmaster.pid that no postmaster holds
  confirm-primary         an operator's consent: start a held node as the primary once
  guard [--once]          loop: fence this node if it is a writable primary while a peer
                          is a writable primary on a newer timeline (a healed partition);
                          on a standby, record its lag behind the primary (lag file);
                          while a start is held, ask again and start when it may
  prove-write [--node N]  on a new primary: write a row, read its timeline's switch point
  divergence --fork-lsn L summary of this node's WAL past the fork point (pg_waldump)
  set-aside --fork-lsn L  before a rewind: keep a copy of diverged data, or only pg_wal
  diverged-list           the kept copies of diverged data, with what each holds
  diverged-drop NAME      delete one kept copy (drctl diverged drop asks first)
  follow --slot S ...     a node that holds this cluster's data follows the primary its
                          standby settings (on stdin, as pg_replication renders them) name:
                          settings, standby.signal, start or reload, streaming, slots
  repoint --primary-address A   a failover's other standbys: the same as follow, with the
                          node's own standby settings naming the new primary's address
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from drctl.node.common import (
    Config,
    StepFailed,
    controldata,
    emit,
    fail,
    holds_address,
    now_iso,
    psql,
    read_json,
    run,
    write_json_atomic,
)
from drctl.rules import decide, lsn, sql


def vrrp_state(c: Config) -> str | None:
    try:
        with open(c.vrrp_state_file) as fh:
            return fh.read().split()[0]
    except (OSError, IndexError):
        return None


def _pos(text: str) -> int:
    value = lsn.parse(text)
    if value is None:
        raise RuntimeError("no WAL position")
    return value


def _write_hold(c: Config, seconds: int) -> int:
    until = int(time.time()) + seconds
    os.makedirs(os.path.dirname(c.hold_file), exist_ok=True)
    with open(c.hold_file, "w") as fh:
        fh.write(str(until))
    os.chmod(c.hold_file, 0o644)
    return until


def _drop_hold(c: Config) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(c.hold_file)


# ------------------------------------------------------------------ VIP hand-over


def cmd_hold_vip(c: Config, a: argparse.Namespace) -> None:
    until = _write_hold(c, a.seconds)
    emit(ok=True, host=c.name, hold_until=until, at=now_iso())


def cmd_release_vip(c: Config, a: argparse.Namespace) -> None:
    _drop_hold(c)
    rc, _, e = run(["systemctl", "stop", "keepalived"])
    if rc != 0:
        fail(f"could not stop keepalived: {e}")
    emit(ok=True, host=c.name, released_at=now_iso())


# ------------------------------------------------------------------ switchover / promotion


def cmd_stop_primary(c: Config, a: argparse.Namespace) -> None:
    start = time.monotonic()
    if psql(c, sql.IN_RECOVERY) != "f":
        fail("this node is not a primary")
    prepared = int(psql(c, sql.PREPARED_XACTS))
    if prepared:
        fail(f"{prepared} prepared transactions would block a clean switchover")
    psql(c, "checkpoint", timeout=a.timeout)
    rc, _, e = run(["systemctl", "stop", c.unit], timeout=a.timeout)
    if rc != 0:
        fail(f"stopping PostgreSQL failed: {e}")
    cd = controldata(c)
    state = cd.get("Database cluster state")
    if state != "shut down":
        fail(f"PostgreSQL did not shut down cleanly (state: {state})", state=state)
    emit(ok=True, host=c.name, clean=True, state=state,
         checkpoint_lsn=cd["Latest checkpoint location"],
         timeline=int(cd["Latest checkpoint's TimeLineID"]),
         stopped_at=now_iso(), seconds=round(time.monotonic() - start, 3))


def current_position(c: Config) -> tuple[str, int]:
    row = psql(c, sql.CURRENT_POSITION)
    pos, _, tl = row.partition("|")
    return pos, int(tl)


def drop_standby_conf(c: Config) -> bool:
    """After a promotion: remove the standby settings, so the new primary is exactly what
    provision makes a primary (they are inert once out of recovery). Whether it removed
    them; a failure to remove is only reported (the promotion stands)."""
    try:
        os.unlink(c.standby_conf_file)
    except FileNotFoundError:
        return False
    except OSError as exc:
        print(f"drctl-node: could not remove {c.standby_conf_file}: {exc}", file=sys.stderr)
        return False
    return True


def promote_and_wait(query: Callable[[str], object], timeout: float) -> bool:
    """Signal the promotion (pg_promote without its wait, which looks only every 100 ms),
    then ask pg_is_in_recovery() every 5 ms: True as soon as the node is out of recovery,
    False if it is not after TIMEOUT seconds. QUERY runs one statement, returns its value."""
    if str(query(sql.PROMOTE_NOWAIT)) not in ("t", "True"):
        return False
    deadline = time.monotonic() + timeout
    while True:
        if str(query(sql.IN_RECOVERY)) in ("f", "False"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)


def promote(c: Config, *, after_lsn: str | None = None, catch_up: bool = False,
            timeout: float = 30, vrrp_wait: float = 0,
            relax: bool = False) -> dict[str, Any]:
    """Promote this standby: after replaying past AFTER_LSN (refused otherwise), or with
    CATCH_UP after replaying everything it received; RELAX clears a live synchronous
    standby list at once. What happened, as promote's JSON has it."""
    start = time.monotonic()
    if psql(c, sql.IN_RECOVERY) != "t":
        fail("this node is not in recovery (already a primary?)")
    deadline = time.monotonic() + timeout
    if after_lsn:
        while True:
            replay = psql(c, sql.REPLAY_LSN)
            if replay and _pos(replay) > _pos(after_lsn):
                break
            if time.monotonic() > deadline:
                fail(f"replay reached {replay}, not past {after_lsn}: refusing to promote "
                     "(an acknowledged commit could be lost)", replay_lsn=replay)
            time.sleep(0.02)
    if catch_up:
        while time.monotonic() <= deadline:
            recv, _, replay = psql(c, sql.REPLAY_POSITIONS).partition("|")
            if not recv or not replay or _pos(replay) >= _pos(recv):
                break
            time.sleep(0.02)
    replayed = time.monotonic() - start
    if not promote_and_wait(lambda q: psql(c, q), 60):
        fail("pg_promote() was signalled, but this node is still in recovery after 60 s")
    promoted_at = now_iso()
    # before anything else: a synchronous standby that is gone would make the first
    # client's commit wait (the clients reconnect through the VIP within a second)
    cleared = relax_synchronous(c) if relax else ""
    dropped = drop_standby_conf(c)
    position, tl = current_position(c)
    state = vrrp_state(c)
    vrrp_deadline = time.monotonic() + vrrp_wait
    while state not in ("BACKUP", "MASTER") and time.monotonic() < vrrp_deadline:
        time.sleep(0.02)
        state = vrrp_state(c)
    return {"promoted_at": promoted_at, "lsn": position, "timeline": tl,
            "replay_wait_s": round(replayed, 3), "vrrp_state": state,
            "standby_conf_removed": dropped, "synchronous_cleared": cleared,
            "seconds": round(time.monotonic() - start, 3)}


def cmd_promote(c: Config, a: argparse.Namespace) -> None:
    emit(ok=True, host=c.name, **promote(c, after_lsn=a.after_lsn, catch_up=a.catch_up,
                                         timeout=a.timeout, vrrp_wait=a.vrrp_wait,
                                         relax=a.relax_synchronous))


def cmd_take_over(c: Config, a: argparse.Namespace) -> None:
    """A failover's whole node side in one process, so one SSH round trip (drctl failover
    and playbooks/failover.yml both run it, after the gates chose this node):

    promote after replaying everything received, unless this node is already the primary
    (a re-run after an interruption) -> stop waiting for a synchronous standby that is
    gone -> wait until this node holds the VIP -> write a row and read the timeline
    switch point. A failure after the promotion still reports the promotion."""
    start = time.monotonic()
    promoted: dict[str, Any] | None = None
    if psql(c, sql.IN_RECOVERY) == "t":
        promoted = promote(c, catch_up=True, timeout=a.timeout, relax=True)
        cleared = promoted["synchronous_cleared"]
    else:
        cleared = relax_synchronous(c)
    try:
        vip = wait_vip(c, a.vip_timeout)
        out = psql(c, sql.failover_proof(a.node or c.name), timeout=30)
    except (StepFailed, RuntimeError) as exc:
        fail(f"promoted, then: {exc}", promote=promoted, **getattr(exc, "data", {}))
    emit(ok=True, host=c.name, promote=promoted, synchronous_cleared=cleared, vip=vip,
         written_at=now_iso(), seconds=round(time.monotonic() - start, 3),
         **parse_history(out))


def wait_vip(c: Config, timeout: float, drop_conf: bool = False) -> dict[str, Any]:
    """Wait until this node holds the VIP; when it became MASTER, and how long it took."""
    start = time.monotonic()
    dropped = drop_standby_conf(c) if drop_conf else False
    while not holds_address(c.vip_interface, c.vip):
        if time.monotonic() - start > timeout:
            fail(f"this node did not get the VIP within {timeout:g} s",
                 vrrp_state=vrrp_state(c))
        time.sleep(0.02)
    since = None
    try:
        with open(c.vrrp_state_file) as fh:
            parts = fh.read().split()
            if parts and parts[0] == "MASTER" and len(parts) > 1:
                since = parts[1]
    except OSError:
        pass
    return {"vip_at": now_iso(), "master_since": since,
            "waited_s": round(time.monotonic() - start, 3), "standby_conf_removed": dropped}


def cmd_wait_vip(c: Config, a: argparse.Namespace) -> None:
    emit(ok=True, host=c.name, **wait_vip(c, a.timeout, a.drop_standby_conf))


def peer_connect(c: Config, address: str) -> Any:
    import psycopg2  # python3-psycopg2 on every node

    return psycopg2.connect(host=address, port=c.pg_port, dbname="postgres",
                            user=c.rewind_user, sslmode="verify-full",
                            sslrootcert=c.ca_file, connect_timeout=3, passfile=c.passfile)


def stop_fast(c: Config, timeout: float = 120) -> tuple[int, str]:
    """A fast shutdown watched from here: SIGINT to the postmaster (what `pg_ctl stop -m
    fast` sends), then its exit seen within 5 ms; under `systemctl stop`, pg_ctl looks only
    every 100 ms. The unit has no Restart=, so systemd records it as stopped. Without a
    postmaster.pid to read, or if it does not exit in time, `systemctl stop` does it.
    (exit code, error text)."""
    try:
        with open(os.path.join(c.datadir, "postmaster.pid")) as fh:
            pid = int(fh.readline())
        os.kill(pid, signal.SIGINT)
    except (OSError, ValueError):
        rc, _, err = run(["systemctl", "stop", c.unit], timeout=timeout)
        return rc, err
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return 0, ""
        time.sleep(0.005)
    rc, _, err = run(["systemctl", "stop", c.unit], timeout=timeout)
    return rc, err


def cmd_handover(c: Config, a: argparse.Namespace) -> None:
    """The whole critical window of a switchover, driven from the old primary.

    hold the VIP -> stop cleanly -> target replays past the shutdown checkpoint ->
    promote the target -> wait for its keepalived to be eligible -> give the VIP up.
    Any failure before the promotion restarts this node as primary and releases the hold.
    """
    t: dict[str, str] = {}
    start = time.monotonic()

    def mark(name: str) -> None:
        t[name] = now_iso()

    peer = peer_connect(c, a.target_address)
    peer.autocommit = True
    cur = peer.cursor()
    cur.execute(sql.IN_RECOVERY)
    if cur.fetchone()[0] is not True:
        fail(f"target {a.target_address} is not a standby")
    if psql(c, sql.IN_RECOVERY) != "f":
        fail("this node is not a primary")
    prepared = int(psql(c, sql.PREPARED_XACTS))
    if prepared:
        fail(f"{prepared} prepared transactions would block a clean switchover")
    _write_hold(c, 60)
    mark("hold")

    def abort(msg: str) -> None:
        run(["systemctl", "start", c.unit], timeout=120)
        _drop_hold(c)
        fail(f"switchover aborted, this node is primary again: {msg}", times=t)

    psql(c, "checkpoint", timeout=120)
    mark("checkpoint")
    rc, e = stop_fast(c, timeout=120)
    mark("stopped")
    cd = controldata(c)
    if rc != 0 or cd.get("Database cluster state") != "shut down":
        abort(f"no clean shutdown ({cd.get('Database cluster state')}; {e})")
    ckpt = cd["Latest checkpoint location"]
    deadline = time.monotonic() + a.timeout
    while True:
        cur.execute(sql.REPLAY_LSN)
        replay = cur.fetchone()[0]
        if replay and _pos(replay) > _pos(ckpt):
            break
        if time.monotonic() > deadline:
            abort(f"target replayed only up to {replay}, not past {ckpt}")
        time.sleep(0.01)
    mark("replayed")
    def ask(statement: str) -> object:
        cur.execute(statement)
        return cur.fetchone()[0]

    if not promote_and_wait(ask, 30):
        abort("pg_promote on the target did not finish")
    mark("promoted")
    cur.execute("listen drctl_vrrp")
    state = None
    wait_until = time.monotonic() + a.vrrp_wait
    while state is None and time.monotonic() < wait_until:
        if select.select([peer], [], [], 0.05) != ([], [], []):
            peer.poll()
            for note in peer.notifies:
                if note.payload in ("BACKUP", "MASTER"):
                    state = note.payload
            peer.notifies.clear()
    mark("target_eligible")
    _drop_hold(c)
    run(["systemctl", "stop", "keepalived"])
    mark("released")
    run(["systemctl", "stop", c.unit], timeout=120)  # already down: systemd agrees
    cur.execute(sql.CURRENT_POSITION)
    position, tl = cur.fetchone()
    emit(ok=True, host=c.name, target=a.target_address, checkpoint_lsn=ckpt,
         target_lsn=position, timeline=tl, target_vrrp=state or "unconfirmed", times=t,
         seconds=round(time.monotonic() - start, 3))


def parse_history(text: str) -> dict[str, Any]:
    """'TL' then a timeline history file -> the timeline and where it forked off."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    timeline = int(lines[0][0]) if lines else None
    forks = [ln for ln in lines[1:] if len(ln) >= 2 and ln[0].isdigit()]
    return {"timeline": timeline, "parent_timeline": int(forks[-1][0]) if forks else None,
            "switch_point": forks[-1][1] if forks else None}


def relax_synchronous(c: Config, as_user: str | None = "postgres") -> str:
    """On a node just promoted: when its live synchronous_standby_names is set, clear it
    (a synchronous standby that is gone would make every commit wait; failback restores
    the configured value). Decided from the server's own setting, not the inventory's.
    Returns the value cleared, or "" when there was none."""
    names = psql(c, "show synchronous_standby_names", as_user=as_user)
    if names:
        for statement in sql.relax_synchronous():
            psql(c, statement, as_user=as_user)
    return names


def cmd_relax_synchronous(c: Config, a: argparse.Namespace) -> None:
    names = relax_synchronous(c)
    emit(ok=True, host=c.name, changed=bool(names), cleared=names)


def cmd_prove_write(c: Config, a: argparse.Namespace) -> None:
    """Write a row and read the timeline switch point."""
    out = psql(c, sql.failover_proof(a.node or c.name), timeout=30)
    emit(ok=True, host=c.name, written_at=now_iso(), **parse_history(out))


# ------------------------------------------------------------------ fencing


def fence(c: Config, reason: str, by: str | None = None) -> bool:
    """Mark this node fenced, stop PostgreSQL, and make sure it holds no VIP: keepalived
    drops it once the check fails, but a keepalived that is dead cannot, so the address
    is removed by hand if it is still there. Returns whether it had to be removed."""
    os.makedirs(os.path.dirname(c.fence_file), exist_ok=True)
    with open(c.fence_file, "w") as fh:
        json.dump({"reason": reason, "since": now_iso(), **({"by": by} if by else {})}, fh)
    run(["systemctl", "stop", c.unit], timeout=120)
    deadline = time.monotonic() + 3
    while holds_address(c.vip_interface, c.vip) and time.monotonic() < deadline:
        time.sleep(0.1)
    if holds_address(c.vip_interface, c.vip):
        run(["ip", "addr", "del", c.vip, "dev", c.vip_interface], timeout=5)
        return True
    return False


def cmd_fence(c: Config, a: argparse.Namespace) -> None:
    removed = fence(c, a.reason)
    emit(ok=True, host=c.name, fenced=True, reason=a.reason, at=now_iso(),
         vip_removed_by_hand=removed)


def cmd_auto_pause(c: Config, a: argparse.Namespace) -> None:
    """Pause automatic failover on this node before an operation changes roles: the marker
    that makes drctl-auto refuse (left as it is when one is there: an operator's pause is
    never turned into an operation's), then repmgrd stopped. Nothing to do where automatic
    failover was never set up."""
    if not os.path.exists(c.auto_settings):
        emit(ok=True, host=c.name, paused=False,
             detail="automatic failover is not set up on this node")
        return
    existed = os.path.exists(c.auto_paused)
    if not existed:
        write_json_atomic(c.auto_paused, {"since": now_iso(), "reason": a.reason,
                                          "by": a.by})
    rc, _, err = run(["systemctl", "stop", c.repmgrd_unit], timeout=a.timeout)
    if rc != 0:
        fail(f"the pause marker is set, but repmgrd did not stop: {err.strip()[-200:]}",
             marker_existed=existed)
    emit(ok=True, host=c.name, paused=True, marker_existed=existed, at=now_iso())


def cmd_unfence(c: Config, a: argparse.Namespace) -> None:
    existed = os.path.exists(c.fence_file)
    if existed:
        os.unlink(c.fence_file)
    emit(ok=True, host=c.name, was_fenced=existed)


def peer_role(c: Config, peer: dict[str, str]) -> tuple[str, int | None, str | None] | None:
    """(role, timeline, lsn) of a peer: role 'primary' or 'standby', the newest timeline
    it knows (None: unknown) and a primary's WAL position; None when it does not answer."""
    conninfo = (f"host={peer['address']} port={c.pg_port} dbname=postgres "
                f"user={c.rewind_user} sslmode=verify-full sslrootcert={c.ca_file} "
                "connect_timeout=2")
    env = {**os.environ, "PGPASSFILE": c.passfile}
    rc, o, _ = run([c.psql, "-XAtq", conninfo, "-c", sql.QUERY_PEER_ROLE], timeout=5, env=env)
    if rc != 0 or not o:
        return None
    parts = o.split("|")
    timeline = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    if parts[0] == "primary":
        return "primary", timeline, parts[2] if len(parts) > 2 else None
    return "standby", timeline, None


def sample_lag(c: Config) -> None:
    """On a standby: how far behind the primary's WAL it is, written to the lag file
    (status shows it; the watcher on another host is what decisions rely on)."""
    recv = psql(c, "select coalesce(pg_last_wal_receive_lsn(), "
                           "pg_last_wal_replay_lsn())")
    for peer in c.peers:
        answer = peer_role(c, dict(peer))
        if answer and answer[0] == "primary" and answer[2] and recv:
            write_json_atomic(c.lag_file, {
                "at": time.time(), "primary": peer["name"], "primary_lsn": answer[2],
                "receive_lsn": recv, "lag_bytes": max(0, _pos(answer[2]) - _pos(recv))})
            return


def ask_peers(c: Config) -> list[decide.PeerAnswer]:
    """Every peer's answer at this moment: its role and the newest timeline it knows
    (role None: it did not answer)."""
    peers: list[decide.PeerAnswer] = []
    for peer in c.peers:
        answer = peer_role(c, dict(peer))
        peers.append(decide.PeerAnswer(peer["name"], answer[0] if answer else None,
                                       answer[1] if answer else None))
    return peers


def _read_text(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def start_verdict(c: Config) -> tuple[decide.StartVerdict, int | None,
                                      list[decide.PeerAnswer]]:
    """The facts of this moment (fence mark, standby.signal, own timeline, every peer's
    answer, a lift, a start as primary since boot) and decide.startup's verdict on them."""
    fenced = _read_text(c.fence_file)
    standby = os.path.exists(os.path.join(c.datadir, "standby.signal"))
    my_tl: int | None = None
    peers: list[decide.PeerAnswer] = []
    if fenced is None and not standby:
        try:
            my_tl = int(controldata(c)["Latest checkpoint's TimeLineID"])
        except (RuntimeError, KeyError, ValueError):
            my_tl = None
        peers = ask_peers(c)
    verdict = decide.startup(fenced=fenced, standby=standby, my_timeline=my_tl,
                             peers=peers, lifted=os.path.exists(c.start_lift_file),
                             primary_this_boot=os.path.exists(c.primary_boot_file))
    return verdict, my_tl, peers


def _mark(path: str, data: dict[str, Any] | None = None) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json_atomic(path, data or {"at": now_iso()})


def stale_lock_file(c: Config) -> str | None:
    """Why the data directory's postmaster.pid is stale, or None when there is none or a
    postmaster of this data directory may hold it (its PID is a postgres program whose
    working directory is the data directory, as every postmaster's is).

    A power loss (or a lab snapshot, the same cut) leaves the file naming a PID of the
    last boot, and PIDs of a boot repeat: the next boot can give it to another process.
    Debian's pg_ctlcluster takes the file for a running cluster when that process has the
    word postgres anywhere in its command line, as drctl-guard's `runuser -u postgres --
    psql -d postgres` has every 2 s from boot on: it says "Cluster is already running.",
    the unit ignores its exit code, finds no PID file and fails, and nothing starts it
    again. The unit starts only when systemd runs no server of it, so the file is removed
    here unless a postmaster of this directory could be running outside the unit."""
    path = os.path.join(c.datadir, "postmaster.pid")
    try:
        with open(path) as fh:
            pid = int(fh.readline())
    except (OSError, ValueError):
        return None  # none, or none to read: pg_ctlcluster and PostgreSQL decide
    try:
        exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except FileNotFoundError:  # no such process, or one without a program (a zombie)
        return f"no process with PID {pid} runs a program"
    except OSError:
        return None  # cannot tell: leave the file to pg_ctlcluster and PostgreSQL
    if os.path.basename(exe) == "postgres" and cwd == os.path.realpath(c.datadir):
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmdline = exe
    return f"PID {pid} is `{cmdline[:120]}`, no postmaster of {c.datadir}"


def cmd_fence_check(c: Config, a: argparse.Namespace) -> None:
    """Before every start of PostgreSQL: start, fence, or hold (asking the peers again
    for up to start_confirm_wait_s, since peers that boot with this node answer late)."""
    deadline = time.monotonic() + (a.wait if a.wait is not None else c.start_confirm_wait_s)
    while True:
        verdict, my_tl, peers = start_verdict(c)
        if verdict.action != "hold" or time.monotonic() >= deadline:
            break
        time.sleep(1)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(c.start_lift_file)  # one-shot: it lifts this start only
    if verdict.action == "start":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(c.start_held_file)
        if my_tl is not None:
            _mark(c.primary_boot_file)
        stale = stale_lock_file(c)
        if stale:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(c.datadir, "postmaster.pid"))
            print(f"drctl: removed a stale postmaster.pid: {stale}", file=sys.stderr)
        print(f"drctl: starting: {verdict.reason}", file=sys.stderr)
        sys.exit(0)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(c.start_held_file)
    if verdict.action == "fence":
        os.makedirs(os.path.dirname(c.fence_file), exist_ok=True)
        with open(c.fence_file, "w") as fh:
            json.dump({"reason": verdict.reason, "since": now_iso(), "by": "fence-check"}, fh)
    elif verdict.action == "hold":
        _mark(c.start_held_file, {
            "since": now_iso(), "reason": verdict.reason, "liftable": verdict.liftable,
            "timeline": my_tl, "peers": [p.__dict__ for p in peers]})
    print(f"drctl: refusing to start ({verdict.action}): {verdict.reason}", file=sys.stderr)
    sys.exit(1)


def unit_active(c: Config) -> bool:
    return run(["systemctl", "is-active", "--quiet", c.unit], timeout=10)[0] == 0


def retry_held_start(c: Config) -> str | None:
    """While fence-check holds PostgreSQL down: ask again; when the verdict is no longer
    'hold', start the unit (fence-check decides again at that moment). Returns what it
    did, or None when nothing is held."""
    if not os.path.exists(c.start_held_file) or unit_active(c):
        return None
    verdict = start_verdict(c)[0]
    if verdict.action == "hold":
        return None
    run(["systemctl", "reset-failed", c.unit], timeout=10)
    rc, _, err = run(["systemctl", "start", c.unit], timeout=300)
    return f"start after hold ({verdict.action}: {verdict.reason}): exit {rc} {err[-200:]}"


def cmd_confirm_primary(c: Config, a: argparse.Namespace) -> None:
    """An operator's consent: start this held node as the primary once, although no peer
    confirmed it. Never overrides a peer on a newer timeline (that still fences)."""
    held = read_json(c.start_held_file)
    if not held:
        fail(f"{c.name} holds no start: nothing to confirm",
             running=unit_active(c))
    if not held.get("liftable"):
        fail(f"{c.name}'s hold cannot be lifted: {held.get('reason')}", held=held)
    _mark(c.start_lift_file, {"at": now_iso(), "by": a.by})
    run(["systemctl", "reset-failed", c.unit], timeout=10)
    rc, _, err = run(["systemctl", "start", c.unit], timeout=300)
    fenced = _read_text(c.fence_file)
    if rc != 0 or not unit_active(c):
        fail(f"PostgreSQL did not start on {c.name}: "
             f"{('fenced: ' + fenced) if fenced else err[-300:] or 'the unit is not active'}",
             held=held)
    emit(ok=True, host=c.name, started=True, held=held)


def guard_running_primary(c: Config) -> decide.StartVerdict:
    """A running primary asks the rule every start asks (decide.startup, as a node that
    has run as the primary since this boot), on its peers' answers of this moment: a peer
    on a newer timeline (a failover happened while it was cut off) fences it now.
    Other verdicts change nothing on a running server: a twin primary on the same
    timeline is reported by drctl status, where an operator decides which one keeps its
    writes. Marks the node as having run as the primary since boot (e.g. promoted)."""
    my_tl = current_position(c)[1]
    verdict = decide.startup(fenced=None, standby=False, my_timeline=my_tl,
                             peers=ask_peers(c), lifted=False, primary_this_boot=True)
    if verdict.action == "fence":
        fence(c, verdict.reason)
        print(f"drctl-guard: fenced this node: {verdict.reason}", flush=True)
    elif not os.path.exists(c.primary_boot_file):
        _mark(c.primary_boot_file)
    return verdict


def cmd_guard(c: Config, a: argparse.Namespace) -> None:
    while True:
        try:
            in_recovery = psql(c, sql.IN_RECOVERY)
            if in_recovery == "t":
                sample_lag(c)
            if not os.path.exists(c.fence_file) and in_recovery == "f":
                guard_running_primary(c)
        except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError):
            try:
                done = retry_held_start(c)
                if done:
                    print(f"drctl-guard: {done}", flush=True)
            except (subprocess.TimeoutExpired, OSError) as exc:
                print(f"drctl-guard: retrying a held start failed: {exc}", flush=True)
        if a.once:
            return
        time.sleep(a.interval)


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


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("hold-vip")
    s.add_argument("seconds", type=int)
    sub.add_parser("release-vip")
    s = sub.add_parser("stop-primary")
    s.add_argument("--timeout", type=int, default=120)
    s = sub.add_parser("promote")
    s.add_argument("--after-lsn")
    s.add_argument("--catch-up", action="store_true")
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--vrrp-wait", type=float, default=3)
    # clear a live synchronous_standby_names right after the promotion (failover: the
    # synchronous standby may be the node that is gone)
    s.add_argument("--relax-synchronous", action="store_true")
    s = sub.add_parser("take-over")
    s.add_argument("--node", help="the name the proving row records (default: this node)")
    s.add_argument("--timeout", type=float, default=10,
                   help="seconds to replay what was received before promoting anyway")
    s.add_argument("--vip-timeout", type=float, default=15)
    s = sub.add_parser("handover")
    s.add_argument("--target-address", required=True)
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--vrrp-wait", type=float, default=2.5)
    s = sub.add_parser("wait-vip")
    s.add_argument("--timeout", type=float, default=15)
    # on a target promoted from the old primary (handover promotes it over SQL): remove its
    # standby settings first, as promote does, so it is exactly what provision makes a primary
    s.add_argument("--drop-standby-conf", action="store_true")
    s = sub.add_parser("fence")
    s.add_argument("--reason", required=True)
    sub.add_parser("unfence")
    s = sub.add_parser("auto-pause")
    s.add_argument("--reason", required=True)
    s.add_argument("--by", default="operation")
    s.add_argument("--timeout", type=float, default=30)
    s = sub.add_parser("fence-check")
    s.add_argument("--wait", type=float, help="seconds to ask the peers before holding")
    s = sub.add_parser("confirm-primary")
    s.add_argument("--by", default="operator")
    s = sub.add_parser("guard")
    s.add_argument("--once", action="store_true")
    s.add_argument("--interval", type=float, default=2)
    sub.add_parser("relax-synchronous")
    s = sub.add_parser("prove-write")
    s.add_argument("--node")
    s = sub.add_parser("divergence")
    s.add_argument("--fork-lsn", required=True)
    s.add_argument("--timeline", type=int, required=True)
    s.add_argument("--pgdata")
    s = sub.add_parser("set-aside")
    s.add_argument("--fork-lsn", required=True)
    s.add_argument("--timeline", type=int, required=True)
    s.add_argument("--pgdata")
    s.add_argument("--discard-diverged", action="store_true")
    s.add_argument("--copy-timeout", type=float, default=3600)
    sub.add_parser("diverged-list")
    s = sub.add_parser("diverged-drop")
    s.add_argument("name")
    for name, address in (("follow", "check that this node holds the primary's cluster"),
                          ("repoint", "the new primary's address (required)")):
        s = sub.add_parser(name)  # repoint is follow with the node's own settings
        s.add_argument("--primary-address", help=address)
        s.add_argument("--slot", action="append", default=[],
                       help="a slot this node keeps for another node (repeat)")
        s.add_argument("--stream-timeout", type=float, default=60)
        s.add_argument("--start-timeout", type=float, default=300)
        s.add_argument("--owner", default="postgres", help="who owns the files it writes")


COMMANDS = {name.removeprefix("cmd_").replace("_", "-"): fn
            for name, fn in dict(globals()).items() if name.startswith("cmd_")}
