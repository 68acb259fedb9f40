"""The application's connection pooler (PgBouncer) on an app host: paused around a
switchover's handover so that clients wait instead of failing, resumed after it, never
left paused.

  drctl-node [--pooler-config PATH] pooler pause --by WHO [--timeout S] [--keep-pausing]
  drctl-node [--pooler-config PATH] pooler resume --by WHO [--taking-back WHO_PAUSED]
  drctl-node [--pooler-config PATH] pooler state
  drctl-node [--pooler-config PATH] pooler guard [--every S]   (the guard's service: a
                                                          look every S seconds)
  drctl-node [--pooler-config PATH] pooler await --timeline-above N --max S --by WHO
                                                          (the waiter a pause starts)
  drctl-node [--pooler-config PATH] pooler arm --token T --primary-address A --max S --by WHO
                                                          (a switchover: pause on the
                                                          hand-over's word, see below)
  drctl-node [--pooler-config PATH] pooler listen --token T --primary-address A --max S --by WHO
                                                          (the armed waiter arm starts)

A switchover arms the poolers instead of pausing them: the armed waiter holds a
connection to the old primary and LISTENs on the switchover's channel; the hand-over, on
the old primary, after its checks and its checkpoint and just before the clean stop,
NOTIFYs 'pause' and waits for every armed waiter's answer (drctl.node.handover). Each
waiter PAUSEs its pooler, answers on the acknowledgement channel, and resumes the pooler
as soon as the new primary answers at the server address. Clients wait from that last
moment only, not through the playbook's turns. 'resume' on the channel (the hand-over
gave up) and the end of the connection before any 'pause' end the waiter with nothing
paused.

PgBouncer's PAUSE waits for every transaction in flight to end, then closes its server
connections; transactions that start meanwhile wait in the pooler. A pause that does not
complete within its timeout (a transaction held open) is taken back with RESUME and
reported failed, so that the switchover that asked for it stops with nothing changed.

Every pause is recorded in PAUSED_FILE (who paused, when) and every resume in
RESUMED_FILE (who resumed, after how long). The guard resumes a pooler whose pause is
older than guard_limit_s, whoever paused it (drctl killed, a playbook stopped half-way),
and a pooler found paused with no record at all: a paused pooler makes every client wait,
which is an outage of its own.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import socket
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from drctl.node import common


@dataclass(frozen=True)
class PoolerConfig:
    """/etc/drctl/pooler.json, written by roles/pgbouncer."""

    database: str = "app"  # the pooler's database entry that is paused and resumed
    name: str = field(default_factory=socket.gethostname)
    socket_dir: str = "/run/postgresql"
    port: int = 6432
    run_as: str = "postgres"  # PgBouncer's user: its admin console lets it in by the socket
    psql: str = "/usr/bin/psql"
    paused_file: str = "/run/drctl/pooler-paused.json"
    resumed_file: str = "/var/lib/drctl/pooler-resumed.json"
    pause_timeout_s: float = 5.0
    guard_limit_s: float = 30.0
    admin_timeout_s: float = 5.0
    # the server behind the pooler, as the waiter asks it (switchover: resume as soon as a
    # new primary answers there): its address, and the pooler's own CA and auth file
    server_host: str = ""
    server_port: int = 5432
    server_user: str = "app"
    auth_file: str = "/etc/pgbouncer/userlist.txt"
    ca_file: str = "/etc/pgbouncer/ca.crt"
    sslmode: str = "verify-full"
    poll_s: float = 0.1
    probes_in_flight: int = 4  # the waiter's questions out at once (await_new_primary)
    node_command: str = "/usr/local/libexec/drctl/drctl-node"
    config_path: str = ""  # where this configuration was read (the waiter reads it again)

    @classmethod
    def load(cls, path: str) -> PoolerConfig:
        with open(path, encoding="utf-8") as fh:
            return cls(**{**json.load(fh), "config_path": path})


class AdminError(RuntimeError):
    """The admin console refused a command, or gave no answer in time."""


# A kept session on the admin console: its execute(COMMAND) returns what psql printed and
# raises RuntimeError when the session failed (common.PsqlSession).
Ask = Callable[[str], str]


def admin_argv(c: PoolerConfig) -> list[str]:
    """psql on PgBouncer's admin console (its unix socket, as its own user)."""
    # setpriv execs psql as PgBouncer's user (no intermediate process: a psql that hangs
    # past the timeout is the process that is killed)
    return ["setpriv", f"--reuid={c.run_as}", f"--regid={c.run_as}", "--init-groups", "--",
            c.psql, "-X", "-q", "--csv", "-h", c.socket_dir, "-p", str(c.port),
            "-U", "pgbouncer", "-d", "pgbouncer"]


def admin(c: PoolerConfig, command: str, timeout: float | None = None,
          ask: Ask | None = None) -> list[dict[str, str]]:
    """One command on PgBouncer's admin console; the rows it returned. ASK: a kept
    session's (the guard's), instead of a psql of its own."""
    if ask is not None:
        try:
            out = ask(command)
        except RuntimeError as exc:
            raise AdminError(str(exc)) from exc
        return list(csv.DictReader(io.StringIO(out)))
    rc, out, err = common.run([*admin_argv(c), "-c", command],
                              timeout=c.admin_timeout_s if timeout is None else timeout)
    if rc != 0:
        raise AdminError(err.splitlines()[-1] if err else f"psql exit {rc}")
    return list(csv.DictReader(io.StringIO(out)))


def _row(rows: list[dict[str, str]], key: str, value: str) -> dict[str, str]:
    return next((r for r in rows if r.get(key) == value), {})


def _database(c: PoolerConfig, ask: Ask | None = None) -> dict[str, str]:
    """The pooler's row for its database in SHOW DATABASES ({} when it has none)."""
    return _row(admin(c, "SHOW DATABASES", ask=ask), "name", c.database)


def _paused_for(record: dict[str, Any] | None, now: float) -> float | None:
    """Seconds since the pause RECORD was written; None without one."""
    return round(now - float(record["epoch"]), 1) if record else None


def _now_iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")


def state(c: PoolerConfig, now: float | None = None, ask: Ask | None = None
          ) -> dict[str, Any]:
    """What `drctl status` shows of this pooler: running or paused (and since when, by
    whom), the server it connects to, clients waiting, server connections open. ASK: a
    kept session on the admin console (the metrics service's), instead of psqls of its
    own."""
    now = time.time() if now is None else now
    record = common.read_json(c.paused_file)
    out: dict[str, Any] = {"host": c.name, "database": c.database, "state": "down",
                           "server": None, "waiting": None, "server_connections": None,
                           "paused_s": None, "paused_by": None,
                           "last_resume": common.read_json(c.resumed_file)}
    try:
        db = _database(c, ask=ask)
        pool = _row(admin(c, "SHOW POOLS", ask=ask), "database", c.database)
    except AdminError as exc:
        out["error"] = str(exc)
        return out
    if not db:
        out["error"] = f"the pooler has no database {c.database}"
        return out
    paused = db.get("paused") == "1"
    out.update(state="paused" if paused else "running", server=db.get("host"),
               waiting=int(pool.get("cl_waiting") or 0),
               server_connections=sum(int(pool.get(k) or 0) for k in
                                      ("sv_active", "sv_idle", "sv_used", "sv_tested",
                                       "sv_login")))
    if paused:
        out["paused_s"] = _paused_for(record, now)
        out["paused_by"] = (record or {}).get("by")
    return out


def auth_password(path: str, user: str) -> str | None:
    """USER's password in PgBouncer's auth file ("user" "password" lines, a double quote
    written twice)."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = re.findall(r'"((?:[^"]|"")*)"', line)
        if len(fields) >= 2 and fields[0].replace('""', '"') == user:
            return str(fields[1]).replace('""', '"')
    return None


def server_timeline(c: PoolerConfig, timeout: float = 2) -> int | None:
    """The timeline of the primary that answers at the pooler's server address now (read
    and write, straight, not through the pooler); None when none answers."""
    password = auth_password(c.auth_file, c.server_user)
    if not c.server_host or password is None:
        return None
    dsn = (f"host={c.server_host} port={c.server_port} dbname={c.database} "
           f"user={c.server_user} sslmode={c.sslmode} sslrootcert={c.ca_file} "
           f"target_session_attrs=read-write connect_timeout=1 "
           f"application_name=drctl-pooler-waiter")
    rc, out, _ = common.run([c.psql, "-XAtq", dsn, "-c",
                             "select pg_walfile_name(pg_current_wal_lsn())"],
                            timeout=timeout, env={**os.environ, "PGPASSWORD": password})
    if rc != 0 or not re.fullmatch(r"[0-9A-F]{24}", out):
        return None
    return int(out[:8], 16)


def served_by_standby(c: PoolerConfig, timeout: float = 3,
                      kept: common.KeptSessions | None = None) -> bool | None:
    """Through the pooler itself, as the application connects: does a transaction land on
    a node in recovery (a server connection left on a demoted node)? None: it could not
    be asked (no password, no answer, the pooler paused). KEPT: ask over a client session
    kept there (the metrics service's: with transaction pooling, each transaction of a
    kept client takes a server connection from the pool as a new client's would)."""
    password = auth_password(c.auth_file, c.server_user)
    if password is None:
        return None
    dsn = (f"host={c.socket_dir} port={c.port} dbname={c.database} user={c.server_user} "
           "connect_timeout=2 application_name=drctl-metrics")
    env = {**os.environ, "PGPASSWORD": password}
    question = "select pg_is_in_recovery()"
    if kept is not None:
        try:
            out = kept.ask("client", [c.psql, "-XAtq", dsn], timeout, env)(question)
        except RuntimeError:
            return None
        return {"t": True, "f": False}.get(out)
    rc, out, _ = common.run([c.psql, "-XAtq", dsn, "-c", question], timeout=timeout, env=env)
    return {"t": True, "f": False}.get(out) if rc == 0 else None


def await_new_primary(c: PoolerConfig, above: int, max_s: float, by: str,
                      clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """The waiter a switchover's pause starts: resume the pooler as soon as a primary on a
    timeline above ABOVE answers at its server address (the promoted standby, once it
    holds the VIP), not when the playbook's resume gets there seconds later. It gives up
    after MAX_S, or as soon as somebody else resumed the pooler; the playbook's resume and
    the guard stay behind it.

    A question asked while the address moves can hang (a connection attempt to the node
    that just let the VIP go waits for its SYN's retransmission), so the questions
    overlap: a new one every POLL_S while earlier ones are still out (at most
    PROBES_IN_FLIGHT), and the first that finds the new primary ends the wait."""
    deadline = clock() + max_s
    pool = ThreadPoolExecutor(max_workers=max(1, c.probes_in_flight),
                              thread_name_prefix="drctl-pooler-probe")
    out: set[Future[int | None]] = set()
    try:
        while clock() < deadline:
            if not _paused_now(c):
                # started before the PAUSE (so that its start is no part of the pause):
                # the pause's record is there until somebody resumes or the pause is
                # taken back
                if not os.path.exists(c.paused_file):
                    return {"ok": True, "host": c.name, "resumed": False,
                            "detail": "resumed by someone else"}
                sleep(c.poll_s)
                continue
            if len(out) < max(1, c.probes_in_flight):
                out.add(pool.submit(server_timeline, c))
            done, out = futures.wait(out, timeout=c.poll_s,
                                     return_when=futures.FIRST_COMPLETED)
            for answered in done:
                timeline = answered.result()
                if timeline is not None and timeline > above:
                    return resume(c, by=f"{by} (its waiter: the new primary on timeline "
                                        f"{timeline} answers)")
            if done:  # no question hangs: the next after POLL_S (else it waited that)
                sleep(c.poll_s)
        return {"ok": True, "host": c.name, "resumed": False,
                "detail": f"no new primary within {max_s:g} s"}
    finally:
        # questions still out end by their own timeout; nobody waits for them
        pool.shutdown(wait=False, cancel_futures=True)


def start_waiter(c: PoolerConfig, above: int, max_s: float, by: str) -> bool:
    """Start await_new_primary in a transient systemd unit of its own (it outlives the
    command that paused the pooler)."""
    unit = f"drctl-pooler-waiter-{int(time.time() * 1000)}"
    rc, _, _ = common.run(["systemd-run", f"--unit={unit}", "--collect", "--quiet", "--",
                           c.node_command, "--pooler-config", c.config_path, "pooler",
                           "await", "--timeline-above", str(above), "--max", f"{max_s:g}",
                           "--by", by], timeout=10)
    return rc == 0


TOKEN = re.compile(r"[a-z0-9]{8,32}")


def channels(token: str) -> tuple[str, str]:
    """The switchover's channels: the hand-over's word, and the waiters' answers."""
    if not TOKEN.fullmatch(token):
        raise ValueError(f"not a switchover token: {token!r}")
    return f"drctl_pool_{token}", f"drctl_pool_{token}_ack"


def ready_file(c: PoolerConfig, token: str) -> str:
    return os.path.join(os.path.dirname(c.paused_file), f"pooler-armed-{token}.json")


def connect_primary(c: PoolerConfig, address: str) -> Any:
    """A connection to the old primary as the application's role (TLS, verify-full), not
    through the pooler: the channel the hand-over speaks on."""
    import psycopg2  # python3-psycopg2, installed by the pgbouncer role

    password = auth_password(c.auth_file, c.server_user)
    if password is None:
        raise RuntimeError(f"no password for {c.server_user} in {c.auth_file}")
    conn = psycopg2.connect(host=address, port=c.server_port, dbname=c.database,
                            user=c.server_user, password=password, sslmode=c.sslmode,
                            sslrootcert=c.ca_file, connect_timeout=3,
                            application_name=f"drctl-pooler-armed-{c.name}"[:63])
    conn.autocommit = True
    return conn


def next_word(conn: Any, channel: str, timeout: float) -> str | None:
    """The next payload on CHANNEL within TIMEOUT seconds (None: nothing came). Raises
    psycopg2's OperationalError when the connection ends."""
    import select

    deadline = time.monotonic() + timeout
    while True:
        conn.poll()
        while conn.notifies:
            note = conn.notifies.pop(0)
            if note.channel == channel:
                return str(note.payload)
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        select.select([conn], [], [], min(left, 0.5))


def listen(c: PoolerConfig, token: str, address: str, max_s: float, by: str,
           connect: Callable[[PoolerConfig, str], Any] = connect_primary,
           clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """The armed waiter: LISTEN on the switchover's channel at the old primary (ADDRESS),
    say it is ready (ready_file), and on 'pause' pause the pooler, answer on the
    acknowledgement channel, then resume the pooler once a newer timeline answers at the
    server address. Ends with nothing paused on 'resume', at the end of the connection
    before any 'pause', or after MAX_S."""
    word, ack = channels(token)
    ready = ready_file(c, token)
    deadline = clock() + max_s
    try:
        conn = connect(c, address)
        cur = conn.cursor()
        cur.execute(f"LISTEN {word}")
        cur.execute("select pg_walfile_name(pg_current_wal_lsn())")
        timeline = int(str(cur.fetchone()[0])[:8], 16)
    except Exception as exc:  # no channel: arm reports it and pauses the usual way
        common.write_json_atomic(ready, {"ready": False, "error": f"{exc}".strip()[:300]})
        return {"ok": False, "host": c.name, "error": f"cannot listen at {address}: {exc}"}
    common.write_json_atomic(ready, {"ready": True, "timeline": timeline,
                                     "at": _now_iso(time.time())})
    try:
        while True:
            left = deadline - clock()
            if left <= 0:
                return {"ok": True, "host": c.name, "paused": False,
                        "detail": f"no word within {max_s:g} s"}
            try:
                said = next_word(conn, word, left)
            except Exception as exc:  # the old primary went away before any 'pause'
                return {"ok": True, "host": c.name, "paused": False,
                        "detail": "the primary's connection ended first"
                                  + (f" ({str(exc).strip()})" if str(exc).strip() else "")}
            if said == "resume":
                return {"ok": True, "host": c.name, "paused": False,
                        "detail": "the hand-over gave up"}
            if said != "pause":
                continue
            paused = pause(c, by)
            answer = f"{c.name} ok" if paused["ok"] else f"{c.name} failed: {paused['error']}"
            try:
                cur.execute("select pg_notify(%s, %s)", (ack, answer[:7000]))
            except Exception as exc:  # nobody to tell: the guard ends a pause left behind
                paused.setdefault("warning", f"the answer could not be sent: {exc}")
            if not paused["ok"]:
                return paused
            waited = await_new_primary(c, timeline, max(deadline - clock(), 1.0), by,
                                       clock=clock)
            return {**paused, "waiter": waited}
    finally:
        with contextlib.suppress(Exception):
            conn.close()
        if os.path.exists(ready):
            os.remove(ready)


def arm(c: PoolerConfig, token: str, address: str, max_s: float, by: str,
        ready_within_s: float = 10, sleep: Callable[[float], None] = time.sleep
        ) -> dict[str, Any]:
    """Start the armed waiter (a transient unit: it outlives this command) and return once
    it listens. Where it cannot listen, pause the usual way now (a waiter on the new
    timeline resumes it): that pooler's clients wait through the hand-over's turns, as
    before, and the switchover goes on."""
    channels(token)
    ready = ready_file(c, token)
    if os.path.exists(ready):
        os.remove(ready)
    unit = f"drctl-pooler-armed-{token}"
    rc, _, err = common.run(["systemd-run", f"--unit={unit}", "--collect", "--quiet", "--",
                             c.node_command, "--pooler-config", c.config_path, "pooler",
                             "listen", "--token", token, "--primary-address", address,
                             "--max", f"{max_s:g}", "--by", by], timeout=10)
    state = None
    give_up = time.monotonic() + ready_within_s
    while rc == 0 and state is None and time.monotonic() < give_up:
        state = common.read_json(ready)
        if state is None:
            sleep(0.02)
    if state is not None and state.get("ready"):
        return {"ok": True, "host": c.name, "armed": True, "paused": False,
                "database": c.database, "pause_timeout_s": c.pause_timeout_s,
                "timeline": state.get("timeline")}
    why = (state or {}).get("error") or (err.strip() if rc else "no answer in time")
    common.run(["systemctl", "stop", unit], timeout=10)
    result = pause(c, by, until_new_primary_s=max_s)
    return {**result, "armed": False, "why_not_armed": why}


def _paused_now(c: PoolerConfig) -> bool:
    try:
        return _database(c).get("paused") == "1"
    except AdminError:
        return False


def pause(c: PoolerConfig, by: str, timeout: float | None = None,
          now: float | None = None, keep_pausing: bool = False,
          until_new_primary_s: float = 0) -> dict[str, Any]:
    """PAUSE the database: wait (up to TIMEOUT) for the transactions in flight; past it,
    take the pause back and fail. With KEEP_PAUSING (a failover: the transactions in
    flight are on a primary that is gone, and end when their connections give up), leave
    the pooler pausing past the timeout: new transactions wait for the new primary. With
    UNTIL_NEW_PRIMARY_S (a switchover), start a waiter that resumes the pooler as soon as
    a primary on a newer timeline answers at the server address (at most that long)."""
    timeout = c.pause_timeout_s if timeout is None else timeout
    started = time.time() if now is None else now
    before = server_timeline(c) if until_new_primary_s > 0 else None
    # the record comes first: if this process dies while PgBouncer pauses, the guard
    # knows who paused it and since when
    common.write_json_atomic(c.paused_file, {"by": by, "epoch": started,
                                             "at": _now_iso(started), "timeout_s": timeout})
    # the waiter starts before the PAUSE: starting a unit takes a while, and clients
    # should not wait for it
    waiter = start_waiter(c, before, until_new_primary_s, by) if before is not None else None
    t0 = time.monotonic()
    try:
        admin(c, f"PAUSE {c.database}", timeout=timeout)
    except AdminError as exc:
        if keep_pausing and _paused_now(c):
            return {"ok": True, "host": c.name, "paused": True, "pausing": True,
                    "at": _now_iso(started),
                    "seconds": round(time.monotonic() - t0, 3),
                    "detail": f"transactions in flight have not ended yet: {exc}"}
        taken_back = resume(c, by=f"{by} (its pause timed out)")
        return {"ok": False, "host": c.name, "paused": False, "resumed": taken_back["ok"],
                "error": (f"the pooler could not pause {c.database} within {timeout:g} s "
                          f"(a transaction in flight did not end: {exc}); resumed it")}
    result: dict[str, Any] = {"ok": True, "host": c.name, "paused": True,
                              "at": _now_iso(started),
                              "seconds": round(time.monotonic() - t0, 3)}
    if before is not None:
        result["waiter"] = waiter
        result["timeline"] = before
    return result


def resume(c: PoolerConfig, by: str, now: float | None = None,
           taking_back: str = "") -> dict[str, Any]:
    """RESUME the database (a pooler that is not paused is left as it is) and record it.
    TAKING_BACK names the pause this resume ends (who paused): when the pooler is already
    running and its last resume ended that very pause, the result says so
    (resumed_before, and by whom), so that the caller reports who resumed it."""
    now = time.time() if now is None else now
    record = common.read_json(c.paused_file)
    try:
        admin(c, f"RESUME {c.database}")
        was_paused = True
    except AdminError as exc:
        if "is not paused" not in str(exc):
            return {"ok": False, "host": c.name, "error": f"RESUME failed: {exc}"}
        was_paused = False
    result: dict[str, Any] = {"ok": True, "host": c.name, "resumed": was_paused}
    if record is not None or was_paused:
        result.update(by=by, paused_by=(record or {}).get("by"),
                      paused_s=_paused_for(record, now),
                      at=_now_iso(now))
        common.write_json_atomic(c.resumed_file, result)
    if record is not None:
        os.remove(c.paused_file)
    elif not was_paused:  # say who resumed it last (a switchover's waiter, the guard)
        last = common.read_json(c.resumed_file)
        result["last_resume"] = last
        if taking_back and last is not None and last.get("paused_by") == taking_back:
            result["resumed_before"] = True
            result["resumed_before_by"] = last.get("by")
    return result


# a record is written before its PAUSE reaches the console (so that a pause whose
# command dies is known): for the pause's timeout and this much more, a record whose
# pooler is not paused yet is a pause on its way, not one taken back
PAUSE_ON_ITS_WAY_S = 2.0


def pause_on_its_way(c: PoolerConfig, record: dict[str, Any], now: float) -> bool:
    """Whether RECORD names a pause that may not have reached PgBouncer yet: younger than
    its timeout (the configured one for a record that does not say) and a moment."""
    try:
        age = now - float(record["epoch"])
        limit = float(record.get("timeout_s") or c.pause_timeout_s) + PAUSE_ON_ITS_WAY_S
    except (KeyError, TypeError, ValueError):
        return False
    return 0 <= age < limit


def guard(c: PoolerConfig, now: float | None = None, ask: Ask | None = None
          ) -> dict[str, Any]:
    """Resume a pooler paused longer than the limit (or paused with no record of who
    paused it); a pooler paused within the limit is left to whoever paused it. ASK: the
    guard service's kept session on the console."""
    now = time.time() if now is None else now
    # one question to the console (the guard looks every few seconds on every app host)
    try:
        db = _database(c, ask)
    except AdminError:
        return {"ok": True, "host": c.name, "action": "none", "state": "down"}
    if db.get("paused") != "1":
        record = common.read_json(c.paused_file) if db else None
        if record is not None and not pause_on_its_way(c, record, now):
            os.remove(c.paused_file)  # a pause that was taken back without its record
        return {"ok": True, "host": c.name, "action": "none",
                "state": "running" if db else "down"}
    record = common.read_json(c.paused_file)
    paused_s = _paused_for(record, now)
    if paused_s is not None and paused_s < c.guard_limit_s:
        return {"ok": True, "host": c.name, "action": "none", "state": "paused",
                "paused_s": paused_s}
    why = (f"paused {paused_s:g} s by {(record or {}).get('by')}, past the limit of "
           f"{c.guard_limit_s:g} s" if paused_s is not None
           else "paused with no record of who paused it")
    result = resume(c, by=f"the pooler guard ({why})", now=now)
    return {**result, "action": "resumed", "why": why}


def _code_version() -> tuple[int, int] | None:
    """The archive this code was imported from (inode, modification time); None when
    it was not imported from one."""
    archive = getattr(globals().get("__loader__"), "archive", None)  # zipimport's loader
    try:
        st = os.stat(archive) if archive else None
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns) if st else None


def guard_loop(config_path: str, every_s: float, sleep: Callable[[float], None] = time.sleep,
               rounds: int | None = None,
               session: Callable[[list[str], float], Any] = common.PsqlSession) -> None:
    """The guard as a service: one look every EVERY_S seconds, in one process (a timer
    started a Python process a round), asking the console over one kept psql session (a
    psql started a look cost more than the look; a session that fails is a console that
    did not answer, that look, and the next look opens a new one). Prints a line when it
    resumed a pooler or when what it sees changes, not every round. SESSION makes the
    session from psql's arguments and its timeout."""
    seen = None
    done = 0
    code = _code_version()
    kept: Any = None
    kept_for: tuple[list[str], float] | None = None
    try:
        while rounds is None or done < rounds:
            done += 1
            if _code_version() != code:  # a provision installed new programs: run those
                print(json.dumps({"ok": True, "action": "exit", "why": "drctl-node was "
                                  "replaced; systemd starts the new one"}), flush=True)
                return
            if os.path.exists(config_path):
                try:
                    c = PoolerConfig.load(config_path)
                    if kept_for != (admin_argv(c), c.admin_timeout_s):  # (re)configured
                        if kept is not None:
                            kept.close()
                        kept_for = (admin_argv(c), c.admin_timeout_s)
                        kept = session(*kept_for)
                    result = guard(c, ask=kept.execute)
                except (OSError, ValueError, TypeError) as exc:  # a configuration half-written
                    result = {"ok": False, "action": "none", "state": "unknown",
                              "error": str(exc)}
                if result["action"] != "none" or result.get("state") != seen:
                    print(json.dumps(result, sort_keys=True), flush=True)
                seen = result.get("state")
            sleep(every_s)
    finally:
        if kept is not None:
            kept.close()


def main(config_path: str, action: str, by: str = "", timeout: float | None = None,
         keep_pausing: bool = False, until_new_primary_s: float = 0,
         timeline_above: int = 0, max_s: float = 60, taking_back: str = "",
         every_s: float = 0, token: str = "", primary_address: str = "") -> int:
    if action == "guard" and every_s > 0:
        guard_loop(config_path, every_s)
        return 0
    if not os.path.exists(config_path):  # a host without a pooler
        common.emit(ok=True, configured=False)
        return 0
    c = PoolerConfig.load(config_path)
    if action == "state":
        common.emit(ok=True, configured=True, **state(c))
        return 0
    who = by or "an operator on the host"
    result = {"pause": lambda: pause(c, who, timeout, keep_pausing=keep_pausing,
                                     until_new_primary_s=until_new_primary_s),
              "resume": lambda: resume(c, who, taking_back=taking_back),
              "await": lambda: await_new_primary(c, timeline_above, max_s, who),
              "arm": lambda: arm(c, token, primary_address, max_s, who),
              "listen": lambda: listen(c, token, primary_address, max_s, who),
              "guard": lambda: guard(c)}[action]()
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0 if result["ok"] else 1
