"""The watcher: every PostgreSQL node's WAL position, every second, seen from outside.

Runs on a host that is not a PostgreSQL node (the backup host; drctl_watch role), one
thread per node with its own connection (TLS client certificate, pg_monitor). It
records, in a state file that survives a restart of the watcher:
- per node: when it last answered, since when it fails, its role, timeline, position;
- the newest writable primary it saw: host, timeline, position, when, its synchronous
  standbys and synchronous_commit, and `lost_at`, its first failed check after that.
A failover reads this at decision time (`drctl-node watch --show`); automatic
failover reads the same record from the witness database, where the watcher copies it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drctl.node.common import PsqlSession, emit, read_json, write_json_atomic
from drctl.rules import sql

WITNESS_TABLE = "drctl_watch"


@dataclass(frozen=True)
class WatchConfig:
    name: str
    nodes: tuple[Mapping[str, str], ...]
    state_file: str = "/var/lib/drctl/watch.json"
    pg_port: int = 5432
    user: str = "drctl_watch"
    sslcert: str = ""
    sslkey: str = ""
    ca_file: str = ""
    interval_s: float = 1.0
    connect_timeout_s: int = 2
    witness_port: int | None = None
    witness_db: str = "repmgr"
    witness_socket_dir: str = "/var/run/postgresql"

    @classmethod
    def load(cls, path: str) -> WatchConfig:
        with open(path) as fh:
            raw = json.load(fh)
        raw["nodes"] = tuple(raw.get("nodes") or ())
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})


def record_ok(state: dict[str, Any], host: str, answer: Mapping[str, Any], at: float) -> bool:
    """A node answered: note it, and take it as the primary if it is the newest writer.
    True when a primary the record had lost answers again as a writer (a blip ended): the
    record is then published at once, so that a standby's automatic promotion, which
    asks whether the primary is still seen, does not act on a loss that is over."""
    primary = state.get("primary")
    back = bool(primary and primary.get("host") == host and primary.get("lost_at") is not None
                and not answer.get("in_recovery"))
    state["nodes"][host] = {"ok_at": at, "failed_since": None, "error": None,
                            "in_recovery": answer.get("in_recovery"),
                            "lsn": answer.get("lsn"), "timeline": answer.get("timeline")}
    primary = state.get("primary")
    if answer.get("in_recovery"):
        if primary and primary.get("host") == host and primary.get("lost_at") is None:
            primary["lost_at"] = at  # demoted: no longer a writer
        return False
    tl = int(answer.get("timeline") or 0)
    if primary and primary.get("host") != host and tl < int(primary.get("timeline") or 0):
        return False  # an old primary on an older timeline (fenced soon) is not the newest
    state["primary"] = {
        "host": host, "timeline": tl, "lsn": answer.get("lsn"), "at": at, "lost_at": None,
        "synchronous_commit": answer.get("synchronous_commit"),
        "synchronous_standby_names": answer.get("synchronous_standby_names"),
        "standbys": answer.get("standbys") or {}}
    return back


def record_failure(state: dict[str, Any], host: str, error: str, at: float) -> bool:
    """A check failed: note it. True when this is the moment the primary was lost (the
    record is then published at once: a failover waits for exactly this)."""
    node = state["nodes"].setdefault(host, {"ok_at": None, "failed_since": None})
    if node.get("failed_since") is None:
        node["failed_since"] = at
    node["error"] = error[:200]
    primary = state.get("primary")
    if primary and primary.get("host") == host and primary.get("lost_at") is None:
        primary["lost_at"] = at
        return True
    return False


def record_hangs(state: dict[str, Any], pending: Mapping[str, float], now: float,
                 limit_s: float) -> None:
    """A check still in flight after limit_s is a failed check (a frozen server's kernel
    keeps its connections open and answers keepalives: no error ever comes)."""
    for host, since in pending.items():
        if now - since > limit_s:
            record_failure(state, host, f"no answer within {limit_s:g} s", since + limit_s)


class Watcher:
    def __init__(self, cfg: WatchConfig) -> None:
        self.cfg = cfg
        self.lock = threading.Lock()
        self.pending: dict[str, float] = {}  # node -> when its check in flight started
        self.lost = threading.Event()  # the primary was just lost, or is back: publish now
        self.witness: PsqlSession | None = None
        old = read_json(cfg.state_file)
        self.state: dict[str, Any] = {
            "watcher": cfg.name, "interval_s": cfg.interval_s, "checked_at": None,
            "nodes": {}, "primary": old.get("primary") if isinstance(old, dict) else None}

    def connect(self, address: str) -> Any:
        import psycopg2  # python3-psycopg2 on the host

        conn = psycopg2.connect(
            host=address, port=self.cfg.pg_port, dbname="postgres", user=self.cfg.user,
            sslmode="verify-full", sslrootcert=self.cfg.ca_file, sslcert=self.cfg.sslcert,
            sslkey=self.cfg.sslkey, connect_timeout=self.cfg.connect_timeout_s,
            keepalives=1, keepalives_idle=1, keepalives_interval=1, keepalives_count=2,
            tcp_user_timeout=int(self.cfg.connect_timeout_s * 1000),
            application_name="drctl_watch",
            options=f"-c statement_timeout={int(self.cfg.connect_timeout_s * 1000)}")
        conn.autocommit = True
        return conn

    def watch_node(self, node: Mapping[str, str]) -> None:
        conn = None
        while True:
            started = time.time()
            with self.lock:
                self.pending[node["name"]] = started
            try:
                if conn is None:
                    conn = self.connect(node["address"])
                with conn.cursor() as cur:
                    cur.execute(sql.QUERY_WATCH)
                    answer = cur.fetchone()[0]
                if isinstance(answer, str):
                    answer = json.loads(answer)
                with self.lock:
                    if record_ok(self.state, node["name"], answer, time.time()):
                        self.lost.set()  # publish now: the loss is over
            except Exception as exc:  # any failure of a check is a failed check
                with self.lock:
                    if record_failure(self.state, node["name"], str(exc).strip(), time.time()):
                        self.lost.set()
                if conn is not None:
                    with contextlib.suppress(Exception):  # it is dead anyway
                        conn.close()
                conn = None
            with self.lock:
                self.pending.pop(node["name"], None)
            time.sleep(max(0.05, self.cfg.interval_s - (time.time() - started)))

    def publish(self) -> None:
        with self.lock:
            now = time.time()
            record_hangs(self.state, self.pending, now, self.cfg.connect_timeout_s + 1)
            self.state["checked_at"] = now
            snapshot = json.loads(json.dumps(self.state))
        write_json_atomic(self.cfg.state_file, snapshot)
        if self.cfg.witness_port:
            self.to_witness(snapshot)

    def to_witness(self, snapshot: dict[str, Any]) -> None:
        """Copy the record into the witness database, where repmgrd's validation on a
        standby reads it (best effort: the witness may not exist)."""
        text = json.dumps(snapshot).replace("$drctl$", "")
        statement = (
            f"create table if not exists {WITNESS_TABLE} (watcher text primary key, "
            "state jsonb not null, updated_at timestamptz not null default now()); "
            f"grant select on {WITNESS_TABLE} to public; "
            f"insert into {WITNESS_TABLE} (watcher, state) values "
            f"($drctl${self.cfg.name}$drctl$, $drctl${text}$drctl$) on conflict (watcher) "
            "do update set state = excluded.state, updated_at = now()")
        socket = os.path.join(self.cfg.witness_socket_dir, f".s.PGSQL.{self.cfg.witness_port}")
        if not os.path.exists(socket):  # the witness is not running here (yet): no psql
            return
        if self.witness is None:  # one psql for the watcher's life, not one a second
            self.witness = PsqlSession(["runuser", "-u", "postgres", "--", "psql", "-XAtq",
                                        "-p", str(self.cfg.witness_port),
                                        "-d", self.cfg.witness_db], timeout=5)
        with contextlib.suppress(RuntimeError):  # best effort; the next publish tries again
            self.witness.execute(statement)

    def run_forever(self) -> None:
        for node in self.cfg.nodes:
            threading.Thread(target=self.watch_node, args=(node,), daemon=True).start()
        while True:
            self.lost.wait(self.cfg.interval_s)  # every interval, or at once on a loss or return
            self.lost.clear()
            self.publish()


def witness_query() -> str:
    """What a standby asks the witness for: every watcher's record, with the witness's
    clock (the watcher's own host) so ages are measured on one clock."""
    return (f"select json_agg(state || jsonb_build_object('now', extract(epoch from now()))) "
            f"from {WITNESS_TABLE}")


def settled(state: Any) -> bool:
    """Nothing more to learn by waiting: no primary recorded, or the watcher lost it."""
    if not isinstance(state, dict) or not isinstance(state.get("primary"), dict):
        return True
    return state["primary"].get("lost_at") is not None


def show(cfg: WatchConfig, settle_s: float = 0.0) -> dict[str, Any]:
    """The record; with settle_s, wait up to that long for the watcher to conclude that
    the primary is gone (a check of a dying host may still be in flight). A primary the
    watcher has not heard from for two intervals is being checked right now: then the
    wait goes on until that check ends one way or the other (at most the watcher's own
    limit for a hanging check), so that a frozen primary is not reported as answering."""
    start = time.monotonic()
    hang_s = cfg.connect_timeout_s + 1 + 2 * cfg.interval_s  # a check in flight has ended
    state = read_json(cfg.state_file)
    while settle_s > 0 and not settled(state):
        waited = time.monotonic() - start
        if waited >= settle_s:
            silent_s = time.time() - float(state["primary"].get("at") or 0)
            checking = 2 * cfg.interval_s <= silent_s < hang_s + cfg.interval_s
            if not checking or waited >= settle_s + hang_s:
                break
        time.sleep(0.2)
        state = read_json(cfg.state_file)
    return state if isinstance(state, dict) else {"watcher": cfg.name}


def main(config_path: str, a: argparse.Namespace) -> int:
    cfg = WatchConfig.load(config_path)
    if a.show:
        emit(**show(cfg, a.settle), now=time.time())
        return 0
    Watcher(cfg).run_forever()
    return 0  # pragma: no cover - runs until stopped
