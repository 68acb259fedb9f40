"""The node side of a role change: the VIP held and released, a clean stop, the
hand-over of a switchover, promotion, the take-over of a failover, the proof of a write."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import select
import signal
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
    run,
)
from drctl.node.pooler import channels
from drctl.rules import lsn, sql


def vrrp_state(c: Config) -> str | None:
    try:
        with open(c.vrrp_state_file) as fh:
            return fh.read().split()[0]
    except (OSError, IndexError):
        return None


def wal_position(text: str) -> int:
    value = lsn.parse(text)
    if value is None:
        raise RuntimeError("no WAL position")
    return value


def write_hold(c: Config, seconds: int) -> int:
    until = int(time.time()) + seconds
    os.makedirs(os.path.dirname(c.hold_file), exist_ok=True)
    with open(c.hold_file, "w") as fh:
        fh.write(str(until))
    os.chmod(c.hold_file, 0o644)
    return until


def drop_hold(c: Config) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(c.hold_file)




# ------------------------------------------------------------------ VIP hand-over


def cmd_hold_vip(c: Config, a: argparse.Namespace) -> None:
    until = write_hold(c, a.seconds)
    emit(ok=True, host=c.name, hold_until=until, at=now_iso())


def cmd_release_vip(c: Config, a: argparse.Namespace) -> None:
    drop_hold(c)
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


def parse_position(row: str) -> tuple[str, int]:
    """CURRENT_POSITION's answer (LSN|timeline) as (LSN, timeline)."""
    pos, _, tl = row.partition("|")
    return pos, int(tl)


def current_position(c: Config) -> tuple[str, int]:
    return parse_position(psql(c, sql.CURRENT_POSITION))


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


def promote_and_wait(query: Callable[[str], object], timeout: float,
                     resignal_s: float = 0.3) -> bool:
    """Signal the promotion (pg_promote without its wait, which looks only every 100 ms),
    then ask pg_is_in_recovery() every 5 ms: True as soon as the node is out of recovery,
    False if it is not after TIMEOUT seconds. QUERY runs one statement, returns its value.

    A node still in recovery RESIGNAL_S after a signal is signalled again: once in ten
    switchovers measured on 2026-12-05, a standby whose stream had just ended noticed the
    promotion only when its wal_retrieve_retry_interval (5 s) ran out (why the first
    signal did not end that wait is not established). Signalling again costs one
    statement; one that comes too late (the node left recovery meanwhile, and pg_promote
    refuses) is of no consequence."""
    if str(query(sql.PROMOTE_NOWAIT)) not in ("t", "True"):
        return False
    now = time.monotonic()
    deadline = now + timeout
    resignal_at = now + resignal_s
    while True:
        if str(query(sql.IN_RECOVERY)) in ("f", "False"):
            return True
        now = time.monotonic()
        if now > deadline:
            return False
        if now >= resignal_at:
            resignal_at = now + resignal_s
            with contextlib.suppress(Exception):
                query(sql.PROMOTE_NOWAIT)
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
            if replay and wal_position(replay) > wal_position(after_lsn):
                break
            if time.monotonic() > deadline:
                fail(f"replay reached {replay}, not past {after_lsn}: refusing to promote "
                     "(an acknowledged commit could be lost)", replay_lsn=replay)
            time.sleep(0.02)
    if catch_up:
        while time.monotonic() <= deadline:
            recv, _, replay = psql(c, sql.REPLAY_POSITIONS).partition("|")
            if not recv or not replay or wal_position(replay) >= wal_position(recv):
                break
            time.sleep(0.02)
    replayed = time.monotonic() - start
    # A synchronous standby that is gone would make the first client's commit wait (the
    # clients reconnect through the VIP within a second). A server applies a cleared list
    # when its checkpointer reloads, and right after a promotion the checkpointer is busy
    # with the end-of-recovery checkpoint, which under load kept commits waiting for over
    # 30 s: so the list is cleared while this node is still a standby (the setting means
    # nothing there, and its checkpointer is idle), then once more after the promotion.
    cleared = relax_synchronous(c) if relax else ""
    if not promote_and_wait(lambda q: psql(c, q), 60):
        fail("pg_promote() was signalled, but this node is still in recovery after 60 s")
    promoted_at = now_iso()
    if relax:
        cleared = relax_synchronous(c) or cleared
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


def _tell_poolers(c: Config, token: str, hosts: list[str], database: str, timeout: float
                  ) -> dict[str, Any]:
    """As the postgres user (peer authentication on the socket): NOTIFY the armed
    poolers' waiters 'pause' and collect the answers of HOSTS (another name is not
    counted); any failure or silence within TIMEOUT: NOTIFY 'resume' (those that have not
    paused stand down)."""
    import psycopg2

    word, ack = channels(token)
    conn = psycopg2.connect(port=c.pg_port, dbname=database, user="postgres",
                            connect_timeout=3, application_name="drctl-handover")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(f"LISTEN {ack}")
    cur.execute("select pg_notify(%s, 'pause')", (word,))
    answers: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while set(hosts) - set(answers) and time.monotonic() < deadline:
        select.select([conn], [], [], min(0.05, max(deadline - time.monotonic(), 0)))
        conn.poll()
        while conn.notifies:
            note = conn.notifies.pop(0)
            host, _, said = str(note.payload).partition(" ")
            if note.channel == ack and host in hosts:
                answers[host] = said
    refused = [f"{h}: {said}" for h, said in sorted(answers.items()) if said != "ok"]
    silent = [h for h in hosts if h not in answers]
    if refused or silent:
        cur.execute("select pg_notify(%s, 'resume')", (word,))
        conn.close()
        if silent:
            refused.append(f"{', '.join(silent)} did not answer within {timeout:g} s")
        return {"ok": False, "answers": answers, "error": "; ".join(refused)}
    conn.close()
    return {"ok": True, "answers": answers}


def tell_poolers(c: Config, token: str, hosts: list[str], database: str, timeout: float
                 ) -> dict[str, Any]:
    """_tell_poolers in a child process that has become the postgres user (this one is
    root and stays so); its answer comes back through a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns, never runs the parent's finalizers
        os.close(read_end)
        try:
            user = pwd.getpwnam("postgres")
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            answer = _tell_poolers(c, token, hosts, database, timeout)
        except BaseException as exc:
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()}
        os.write(write_end, json.dumps(answer).encode())
        os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    try:
        return dict(json.loads(b"".join(chunks)))
    except ValueError:
        return {"ok": False, "error": "the notifier gave no answer"}


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
    write_hold(c, 60)
    mark("hold")

    def abort(msg: str) -> None:
        run(["systemctl", "start", c.unit], timeout=120)
        drop_hold(c)
        fail(f"switchover aborted, this node is primary again: {msg}", times=t)

    psql(c, "checkpoint", timeout=120)
    mark("checkpoint")
    poolers: dict[str, Any] = {}
    armed = [h for h in a.poolers.split(",") if h]
    if a.pooler_token and armed:
        # the poolers pause now, at the last moment: their clients wait from here only
        poolers = tell_poolers(c, a.pooler_token, armed, a.pooler_database, a.pooler_timeout)
        mark("poolers_paused")
        if not poolers["ok"]:
            abort(f"the armed poolers did not all pause: {poolers['error']}")
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
        if replay and wal_position(replay) > wal_position(ckpt):
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
    drop_hold(c)
    run(["systemctl", "stop", "keepalived"])
    mark("released")
    run(["systemctl", "stop", c.unit], timeout=120)  # already down: systemd agrees
    cur.execute(sql.CURRENT_POSITION)
    position, tl = cur.fetchone()
    emit(ok=True, host=c.name, target=a.target_address, checkpoint_lsn=ckpt,
         target_lsn=position, timeline=tl, target_vrrp=state or "unconfirmed", times=t,
         poolers=sorted(poolers.get("answers") or []),
         seconds=round(time.monotonic() - start, 3))


def parse_history(text: str) -> dict[str, Any]:
    """'TL' then a timeline history file -> the timeline and where it forked off."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    timeline = int(lines[0][0]) if lines else None
    forks = [ln for ln in lines[1:] if len(ln) >= 2 and ln[0].isdigit()]
    return {"timeline": timeline, "parent_timeline": int(forks[-1][0]) if forks else None,
            "switch_point": forks[-1][1] if forks else None}


def relax_synchronous(c: Config, as_user: str | None = "postgres") -> str:
    """On a node about to be or just promoted: when its live synchronous_standby_names
    is set, clear it (a synchronous standby that is gone would make every commit wait;
    failback restores the configured value). Decided from the server's own setting, not
    the inventory's. Returns the value cleared, or "" when there was none."""
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
