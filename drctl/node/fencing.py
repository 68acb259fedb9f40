"""Fencing and the boot guard: a node that must not serve stops and says why; a primary
starts only when still the newest one; the guard loop fences a writable primary that a
newer one has replaced, records a standby's lag, and retries a held start."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

from drctl.node import archive, probe, repmgr_hooks, standin
from drctl.node.common import (
    Config,
    PsqlSession,
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
from drctl.node.handover import parse_position, wal_position
from drctl.rules import decide, sql
from drctl.rules.facts import ArchiveAnswer, WatcherFacts
from drctl.rules.policy import Policy

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


def auto_pause(c: Config, reason: str, by: str, timeout: float) -> dict[str, Any]:
    """Pause automatic failover on this node before an operation changes roles: the marker
    that makes drctl-auto refuse (left as it is when one is there: an operator's pause is
    never turned into an operation's), then repmgrd stopped. Nothing to do where automatic
    failover was never set up. The answer, {"ok": False, "error": ...} when repmgrd did
    not stop."""
    if not os.path.exists(c.auto_settings):
        return {"ok": True, "host": c.name, "paused": False,
                "detail": "automatic failover is not set up on this node"}
    existed = os.path.exists(c.auto_paused)
    if not existed:
        write_json_atomic(c.auto_paused, {"since": now_iso(), "reason": reason, "by": by})
    rc, _, err = run(["systemctl", "stop", c.repmgrd_unit], timeout=timeout)
    if rc != 0:
        return {"ok": False, "host": c.name, "marker_existed": existed,
                "error": f"the pause marker is set, but repmgrd did not stop: "
                         f"{err.strip()[-200:]}"}
    return {"ok": True, "host": c.name, "paused": True, "marker_existed": existed,
            "at": now_iso()}


def cmd_auto_pause(c: Config, a: argparse.Namespace) -> None:
    """auto-pause; with --probe, the node's probe taken once repmgrd has stopped (what a
    failover decides from: nothing here can change roles after it), the pause's answer
    under "auto_pause"."""
    answer = auto_pause(c, a.reason, a.by, a.timeout)
    if a.probe:
        emit(**probe.collect(c), archives=probe.archives(c), auto_pause=answer)
        return
    if not answer["ok"]:
        fail(answer["error"], marker_existed=answer["marker_existed"])
    emit(**answer)


def cmd_unfence(c: Config, a: argparse.Namespace) -> None:
    existed = os.path.exists(c.fence_file)
    if existed:
        os.unlink(c.fence_file)
    emit(ok=True, host=c.name, was_fenced=existed)


def _peer_conninfo(c: Config, peer: dict[str, str]) -> str:
    return (f"host={peer['address']} port={c.pg_port} dbname=postgres "
            f"user={c.rewind_user} sslmode=verify-full sslrootcert={c.ca_file} "
            "connect_timeout=2")


class OneShot:
    """Questions over a new connection each (what fence-check and confirm-primary ask,
    once): the same interface as Looks. RuntimeError when there is no answer."""

    def __init__(self, c: Config) -> None:
        self.c = c

    def local(self, statement: str) -> str:
        return psql(self.c, statement)

    def peer(self, peer: dict[str, str], statement: str) -> str:
        env = {**os.environ, "PGPASSFILE": self.c.passfile}
        rc, o, err = run([self.c.psql, "-XAtq", _peer_conninfo(self.c, peer), "-c", statement],
                         timeout=5, env=env)
        if rc != 0:
            raise RuntimeError(err or f"psql exited {rc}")
        return o


class Looks:
    """The guard's connections, kept open from one look to the next: its local
    PostgreSQL's (one psql as postgres over the socket) and each peer's (one psql over
    TLS as the rewind user). A look every 2 s then costs a query on each, not a new
    process, a PAM session, a TLS handshake and a scram exchange on both sides (measured
    by bench/lab_idle.py). A session that fails (an error, no answer within
    PEER_TIMEOUT_S, the server restarted) ends, and that look has no answer from it, as
    a failed connection had; the next look opens a new one."""

    PEER_TIMEOUT_S = 5

    def __init__(self, c: Config) -> None:
        self.c = c
        self._archive_asked_at: float | None = None
        self._local = PsqlSession(["runuser", "-u", "postgres", "--", c.psql, "-XAtq",
                                   "-p", str(c.pg_port), "-d", "postgres"], timeout=10)
        self._peers: dict[str, PsqlSession] = {}

    def local(self, statement: str) -> str:
        """STATEMENT's answer from the local server; RuntimeError when there is none."""
        return self._local.execute(statement)

    def peer(self, peer: dict[str, str], statement: str) -> str:
        """STATEMENT's answer from PEER; RuntimeError when there is none."""
        session = self._peers.get(peer["name"])
        if session is None:
            session = self._peers[peer["name"]] = PsqlSession(
                [self.c.psql, "-XAtq", _peer_conninfo(self.c, peer)],
                timeout=self.PEER_TIMEOUT_S, env={**os.environ, "PGPASSFILE": self.c.passfile})
        return session.execute(statement)

    def archive_due(self) -> bool:
        """Whether the repositories' archives are to be asked at this look: every
        archive_check_interval_s (a pgBackRest process each, where a look costs a query),
        the first look included. Marks them asked."""
        now = time.monotonic()
        if (self._archive_asked_at is not None
                and now - self._archive_asked_at < self.c.archive_check_interval_s):
            return False
        self._archive_asked_at = now
        return True

    def close(self) -> None:
        self._local.close()
        for session in self._peers.values():
            session.close()


Asker = OneShot | Looks


def peer_role(c: Config, peer: dict[str, str], ask: Asker | None = None
              ) -> tuple[str, int | None, str | None] | None:
    """(role, timeline, lsn) of a peer: role 'primary' or 'standby', the newest timeline
    it knows (None: unknown) and a primary's WAL position; None when it does not answer.
    Asked over ASK (the guard's open sessions), else over a new connection."""
    try:
        o = (ask or OneShot(c)).peer(peer, sql.QUERY_PEER_ROLE)
    except RuntimeError:
        return None
    if not o:
        return None
    parts = o.split("|")
    timeline = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    if parts[0] == "primary":
        return "primary", timeline, parts[2] if len(parts) > 2 else None
    return "standby", timeline, None


def sample_lag(c: Config, ask: Asker | None = None) -> None:
    """On a standby: how far behind the primary's WAL it is, written to the lag file
    (status shows it; the watcher on another host is what decisions rely on)."""
    ask = ask or OneShot(c)
    recv = ask.local("select coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())")
    for peer in c.peers:
        answer = peer_role(c, dict(peer), ask)
        if answer and answer[0] == "primary" and answer[2] and recv:
            write_json_atomic(c.lag_file, {
                "at": time.time(), "primary": peer["name"], "primary_lsn": answer[2],
                "receive_lsn": recv,
                "lag_bytes": max(0, wal_position(answer[2]) - wal_position(recv))})
            return


def ask_peers(c: Config, ask: Asker | None = None) -> list[decide.PeerAnswer]:
    """Every peer's answer at this moment: its role and the newest timeline it knows
    (role None: it did not answer)."""
    peers: list[decide.PeerAnswer] = []
    for peer in c.peers:
        answer = peer_role(c, dict(peer), ask)
        peers.append(decide.PeerAnswer(peer["name"], answer[0] if answer else None,
                                       answer[1] if answer else None))
    return peers


def _read_text(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def witness_answers(c: Config) -> tuple[list[WatcherFacts], float]:
    """The watchers' records as the witness on the backup host holds them now, where this
    node has automatic failover set up (its settings name the witness; [] elsewhere, and
    when the witness does not answer), and the policy's age past which a record is stale
    (drctl_watch_max_age_s, from the same settings)."""
    s = read_json(c.auto_settings)
    if not isinstance(s, dict) or not s.get("witness_conninfo") or not s.get("passfile"):
        return [], Policy.watch_max_age_s
    max_age = Policy.from_options(s.get("policy") or {}).watch_max_age_s
    return repmgr_hooks.witness_records(c, s)[0], max_age


def start_verdict(c: Config) -> tuple[decide.StartVerdict, int | None,
                                      list[decide.PeerAnswer]]:
    """The facts of this moment (fence mark, standby.signal, own timeline, every peer's
    answer, the watchers' records, a lift, a start as primary since boot) and
    decide.startup's verdict on them."""
    fenced = _read_text(c.fence_file)
    standby = os.path.exists(os.path.join(c.datadir, "standby.signal"))
    my_tl: int | None = None
    peers: list[decide.PeerAnswer] = []
    witnesses: list[WatcherFacts] = []
    archives: list[ArchiveAnswer] = []
    max_age = Policy.watch_max_age_s
    if fenced is None and not standby:
        try:
            my_tl = int(controldata(c)["Latest checkpoint's TimeLineID"])
        except (RuntimeError, KeyError, ValueError):
            my_tl = None
        peers = ask_peers(c)
        witnesses, max_age = witness_answers(c)
        archives = archive.answers(c)
    verdict = decide.startup(fenced=fenced, standby=standby, my_timeline=my_tl,
                             peers=peers, lifted=os.path.exists(c.start_lift_file),
                             primary_this_boot=os.path.exists(c.primary_boot_file),
                             me=c.name, witnesses=witnesses, watch_max_age_s=max_age,
                             archives=archives)
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


def cmd_archive_timelines(c: Config, a: argparse.Namespace) -> None:
    """What fence-check and the guard would hear from the object stores now (why a node
    was fenced on an archive's word, or whether it would be)."""
    emit(ok=True, host=c.name, repos=list(c.archive_repos), stanza=c.stanza,
         archives=[asdict(x) for x in archive.answers(c)])


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


def guard_running_primary(c: Config, ask: Asker | None = None) -> decide.StartVerdict:
    """A running primary asks the rule every start asks (decide.startup, as a node that
    has run as the primary since this boot), on its peers' answers of this moment, and
    the watchers' records when a peer is silent: a peer on a newer timeline, or a watcher
    that saw another node write on one (a failover happened while it was cut off), fences
    it now, and so does an object store's archive that holds a newer timeline (asked
    every archive_check_interval_s: the cluster was rebuilt from it meanwhile).
    Other verdicts change nothing on a running server: a twin primary on the same
    timeline is reported by drctl status, where an operator decides which one keeps its
    writes. Marks the node as having run as the primary since boot (e.g. promoted)."""
    ask = ask or OneShot(c)
    my_tl = parse_position(ask.local(sql.CURRENT_POSITION))[1]
    peers = ask_peers(c, ask)
    doubt = os.path.exists(c.doubt_file)
    # A peer that does not answer may have been promoted while this node was cut off from
    # it, and may still be cut off from it: the watchers' records (the witness holds
    # them) say whether another node wrote on a newer timeline. Asked only then, or in
    # doubt: when every peer answers, a promotion among them shows in their answers.
    witnesses: list[WatcherFacts] = []
    max_age = Policy.watch_max_age_s
    if doubt or any(p.role is None for p in peers):
        witnesses, max_age = witness_answers(c)
    # The archives (the object stores) know of a rebuild from them that no peer or
    # watcher may be left to report, e.g. after a partition that looked like the loss of
    # both sites: asked every archive_check_interval_s by the guard, at every one-shot ask.
    archives = archive.answers(c) if c.archive_repos and (
        not isinstance(ask, Looks) or ask.archive_due()) else []
    # In doubt (keepalived's check found this node cut off from the network, and keeps
    # the VIP away until this is settled), having run as the primary since boot proves
    # nothing: a peer or a watcher must confirm it, as at a start.
    verdict = decide.startup(fenced=None, standby=False, my_timeline=my_tl, peers=peers,
                             lifted=False, primary_this_boot=not doubt, me=c.name,
                             witnesses=witnesses, watch_max_age_s=max_age,
                             archives=archives)
    if verdict.action == "fence":
        # said first: fence() marks the node at once but then waits for PostgreSQL to
        # stop (seconds on a loaded machine), and the journal must say why meanwhile
        print(f"drctl-guard: fenced this node: {verdict.reason}", flush=True)
        fence(c, verdict.reason)
        return verdict
    if not os.path.exists(c.primary_boot_file):
        _mark(c.primary_boot_file)
    if doubt and verdict.action == "start":
        clear_doubt(c, f"still the newest primary: {verdict.reason}")
    return verdict


def clear_doubt(c: Config, why: str) -> None:
    """Remove keepalived's doubt marker (the VIP may come back here), saying why."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(c.doubt_file)
        print(f"drctl-guard: the VIP may return to this node: {why}", flush=True)


def cmd_guard(c: Config, a: argparse.Namespace) -> None:
    looks = Looks(c)
    stand_in = standin.StandIn(c)
    try:
        while True:
            look(c, looks, stand_in)
            if a.once:
                return
            time.sleep(a.interval)
    finally:
        looks.close()


def look(c: Config, looks: Looks, stand_in: standin.StandIn | None = None) -> None:
    """One look of the guard: a standby records its lag, and stands in for repmgrd's
    election where repmgrd cannot start (drctl.node.standin); a writable primary that is
    not fenced asks its peers whether it was replaced; a server that does not answer may
    be held down by fence-check, whose start is retried."""
    try:
        in_recovery = looks.local(sql.IN_RECOVERY)
        if in_recovery == "t":
            if os.path.exists(c.doubt_file):  # a standby's VIP check fails anyway
                clear_doubt(c, "it is a standby")
            sample_lag(c, looks)
        if stand_in is not None:
            done = stand_in.look(standby=in_recovery == "t")
            if done:
                print(f"drctl-guard: {done}", flush=True)
        if not os.path.exists(c.fence_file) and in_recovery == "f":
            guard_running_primary(c, looks)
    except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError):
        try:
            done = retry_held_start(c)
            if done:
                print(f"drctl-guard: {done}", flush=True)
        except (subprocess.TimeoutExpired, OSError) as exc:
            print(f"drctl-guard: retrying a held start failed: {exc}", flush=True)
