"""drctl's view of this node for Prometheus, through node_exporter's textfile collector.

`drctl-node metrics` runs the node probe (the same facts `drctl status` reads), asks
pgBackRest for the newest backup, and writes one file in the Prometheus text format
(`metrics_file` in node.json, in node_exporter's textfile directory) atomically, so
node_exporter never serves half a file. Its service runs it with `--every S`: one
process that stays and writes every S seconds (a new Python and a new unit every 15 s
cost each node more CPU than the writing), and that ends, for systemd to start the new
code, when provisioning replaced the programs it was loaded from.

Every series carries `cluster` and `node` labels; the alerting rules in prometheus/
count primaries and VIP holders per cluster from them. `render()` is pure: probe and
backup facts in, text out.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from drctl.node.common import Config, KeptSessions, mtime, run

PREFIX = "drctl_"


@dataclass
class Family:
    """One metric family: its help line, type and samples (labels, value)."""

    name: str
    help: str
    kind: str = "gauge"
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def format_families(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for fam in families:
        if not fam.samples:
            continue
        name = PREFIX + fam.name
        lines.append(f"# HELP {name} {fam.help}")
        lines.append(f"# TYPE {name} {fam.kind}")
        for labels, value in fam.samples:
            inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{inner}}} {_number(value)}")
    return "\n".join(lines) + "\n"


def _epoch(value: Any) -> float | None:
    """A PostgreSQL timestamptz as JSON text ('2026-12-03T03:40:01.5+00:00') -> epoch."""
    if not isinstance(value, str) or not value:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


Put = Callable[..., None]


def _collector(cluster: str, node: str) -> tuple[dict[str, Family], Put]:
    """The families of one scrape, and put(): one sample (skipped when its value is None),
    with the cluster and node labels and any others given."""
    base = {"cluster": cluster, "node": node}
    fams: dict[str, Family] = {}

    def put(name: str, value: float | bool | None, help: str, kind: str = "gauge",
            **labels: str) -> None:
        if value is not None:
            fam = fams.setdefault(name, Family(name, help, kind))
            fam.samples.append(({**base, **labels}, float(value)))

    return fams, put


def _write(out: str, text: str) -> None:
    """To OUT atomically, or to stdout for '-'."""
    if out == "-":
        print(text, end="")
    else:
        write_atomic(out, text)


def render(probe: Mapping[str, Any], backup: Mapping[str, Any] | None, cluster: str,
           now: float) -> str:
    """The text a scrape serves, from the probe's JSON and pgBackRest's newest backups
    (None: pgBackRest is not set up here; {"ok": False}: it could not be asked)."""
    fams, put = _collector(cluster, str(probe.get("host", "")))
    pg = probe.get("postgres") or None
    put("metrics_timestamp_seconds", now, "When drctl last wrote these metrics (epoch).")
    put("pg_up", pg is not None, "1 when PostgreSQL answered the probe.")
    put("pg_fenced", bool(probe.get("fenced")),
        "1 when this node is fenced (PostgreSQL and the VIP refused here).")
    put("pg_start_held", bool(probe.get("start_held")),
        "1 when fence-check holds this node down: it would start as a primary unconfirmed.")
    put("vip_held", bool(probe.get("holds_vip")), "1 when this node holds the VIP.")
    put("keepalived_up", probe.get("keepalived_service") == "active",
        "1 when keepalived runs here.")
    put("set_aside_directories", len(probe.get("set_aside") or []),
        "Data directories failback set aside here, waiting for an operator's review.")
    if pg is not None:
        primary = not pg.get("in_recovery")
        put("pg_primary", primary, "1 when this node is a writable primary.")
        put("pg_timeline", pg.get("timeline"), "The timeline this node is on.")
        if primary:
            _primary(pg, put)
        else:
            _standby(pg, put)
    auto = probe.get("auto")
    put("auto_failover_enabled", auto is not None,
        "1 when automatic failover (repmgrd) is set up on this node.")
    if auto is not None:
        put("auto_failover_paused", bool(auto.get("paused")),
            "1 while automatic failover is paused (an operation or an operator).")
        put("auto_repmgrd_up", auto.get("repmgrd") == "active", "1 when repmgrd runs here.")
        put("auto_witness_visible", auto.get("witness_visible"),
            "1 when this node reaches the witness.")
    if backup is not None:
        put("backup_info_ok", bool(backup.get("ok")),
            "1 when pgBackRest answered with the repository's backups.")
        for kind, stamp in sorted((backup.get("last") or {}).items()):
            put("backup_last_completion_timestamp_seconds", stamp,
                "When the newest backup of each type finished (epoch).", type=kind)
    return format_families(fams.values())



def render_pooler(state: Mapping[str, Any], served_by_standby: bool | None, cluster: str,
                  now: float) -> str:
    """An app host's pooler (drctl.node.pooler.state), for the alerts on a pooler paused
    too long, down, or serving from a node in recovery."""
    fams, put = _collector(cluster, str(state.get("host", "")))
    running = state.get("state") in ("running", "paused")
    paused = state.get("state") == "paused"
    put("metrics_timestamp_seconds", now, "When drctl last wrote these metrics (epoch).")
    put("pooler_up", running, "1 when the pooler's admin console answered.")
    if running:
        put("pooler_paused", paused, "1 while the pooler is paused: its clients wait.")
        # a pause with no record of when it began has no age: absent, not 0
        put("pooler_paused_seconds", state.get("paused_s") if paused else 0,
            "How long the pooler has been paused (0: running; absent: paused, since when "
            "unknown).")
        put("pooler_clients_waiting", state.get("waiting"),
            "Clients waiting for a server connection.")
        put("pooler_server_connections", state.get("server_connections"),
            "Server connections the pooler holds open.")
        put("pooler_served_by_standby", served_by_standby,
            "1 when a transaction through the pooler lands on a node in recovery.")
    return format_families(fams.values())


def _primary(pg: Mapping[str, Any], put: Put) -> None:
    put("pg_standbys_connected", len(pg.get("replication") or []),
        "Standbys streaming from this primary.")
    for r in pg.get("replication") or []:
        name = str(r.get("application_name") or r.get("client_addr") or "?")
        put("replication_lag_bytes", r.get("lag_bytes"),
            "Bytes of WAL the standby has not replayed yet, seen from the primary.",
            standby=name)
        put("replication_lag_seconds", r.get("replay_lag_s") or 0.0,
            "The standby's replay lag, seen from the primary (0 when idle).", standby=name)
        put("replication_sync", r.get("sync_state") in ("sync", "quorum"),
            "1 when the standby is synchronous.", standby=name)
    for s in pg.get("slots") or []:
        put("replication_slot_active", bool(s.get("active")),
            "1 when a standby uses the slot.", slot=str(s.get("slot_name")))
        put("replication_slot_retained_bytes", s.get("retained_bytes"),
            "WAL the slot holds back on this primary.", slot=str(s.get("slot_name")))
    arch = pg.get("archiver") or {}
    put("archive_failed_total", arch.get("failed_count"),
        "WAL segments the archive_command failed on, since the statistics were reset.",
        kind="counter")
    put("archive_archived_total", arch.get("archived_count"),
        "WAL segments archived, since the statistics were reset.", kind="counter")
    put("archive_last_archived_timestamp_seconds", _epoch(arch.get("last_archived_time")),
        "When the last WAL segment was archived (epoch).")
    put("archive_last_failed_timestamp_seconds", _epoch(arch.get("last_failed_time")),
        "When archiving last failed (epoch).")
    put("archive_ready_segments", pg.get("archive_ready"),
        "WAL segments waiting to be archived.")
    put("archive_oldest_ready_seconds", pg.get("archive_oldest_ready_s") or 0.0,
        "Age of the oldest WAL segment waiting to be archived (0: none waits).")


def _standby(pg: Mapping[str, Any], put: Put) -> None:
    receiver = pg.get("receiver") or {}
    put("standby_streaming", receiver.get("status") == "streaming",
        "1 when this standby streams WAL from an upstream.")
    put("standby_last_message_seconds", receiver.get("last_msg_age_s"),
        "Seconds since the upstream's last message (streaming standbys).")
    put("standby_replay_paused", bool(pg.get("replay_paused")),
        "1 when WAL replay is paused here.")
    put("standby_replay_age_seconds", pg.get("last_replay_age_s"),
        "Seconds since the last replayed transaction committed on the primary.")


def backup_facts(c: Config, stanza: str) -> dict[str, Any]:
    """The newest backup of each type in the repository, as epochs."""
    rc, out, err = run(["runuser", "-u", "postgres", "--", "pgbackrest", f"--stanza={stanza}",
                        "--output=json", "info"], timeout=30)
    if rc != 0:
        return {"ok": False, "error": (err.splitlines() or [""])[-1][:200]}
    try:
        stanzas = json.loads(out)
    except ValueError:
        return {"ok": False, "error": "pgbackrest printed no JSON"}
    last: dict[str, float] = {}
    for entry in stanzas:
        for b in entry.get("backup") or []:
            stop = (b.get("timestamp") or {}).get("stop")
            kind = str(b.get("type") or "?")
            if isinstance(stop, int | float) and stop > last.get(kind, 0):
                last[kind] = float(stop)
    return {"ok": True, "last": last}


def write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def cached_backup_facts(c: Config, stanza: str, cache: str, max_age_s: float,
                        now: float) -> dict[str, Any]:
    """backup_facts(), reused from CACHE while it is younger than MAX_AGE_S."""
    try:
        with open(cache) as fh:
            kept = json.load(fh)
        if isinstance(kept, dict) and 0 <= now - float(kept.get("asked_at", 0)) < max_age_s:
            return dict(kept.get("facts") or {})
    except (OSError, ValueError, TypeError):
        pass
    facts = backup_facts(c, stanza)
    write_atomic(cache, json.dumps({"asked_at": now, "facts": facts}))
    return facts


def main_pooler(config_path: str, out: str, cluster: str = "",
                kept: KeptSessions | None = None) -> int:
    """An app host: the pooler's series only (no PostgreSQL, no node.json here). KEPT: the
    service's psql sessions, kept from one round to the next (three psqls a round cost
    more than the round's questions)."""
    from drctl.node import pooler

    now = time.time()
    c = pooler.PoolerConfig.load(config_path)
    ask = (kept.ask("admin", pooler.admin_argv(c), c.admin_timeout_s)
           if kept is not None else None)
    state = pooler.state(c, now, ask=ask)
    # a paused pooler would hold the question until it resumes
    asked = (pooler.served_by_standby(c, kept=kept) if state.get("state") == "running"
             else None)
    _write(out, render_pooler(state, asked, cluster, now))
    return 0


def main(c: Config, out: str, cluster: str = "", stanza: str = "",
         backup_cache: str = "/run/drctl/backup-info.json", backup_every_s: float = 300) -> int:
    """Write the metrics to OUT ('-': print them). STANZA empty: no pgBackRest here."""
    from drctl.node import probe

    now = time.time()
    facts = probe.collect(c)
    backup = (cached_backup_facts(c, stanza, backup_cache, backup_every_s, now)
              if stanza else None)
    _write(out, render(facts, backup, cluster, now))
    return 0


def every(seconds: float, write: Callable[[], object], code: str | None,
          sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> int:
    """WRITE every SECONDS (on a fixed beat: a slow round does not push the next ones
    back, and one that took longer than the beat is not followed by a burst), for ever; a
    round that fails is said on stderr (the journal) and the next one tries again. Returns
    0 once CODE, the programs' archive, has changed since the start, so that systemd
    starts the new code (Restart=always)."""
    loaded = mtime(code)
    beat = clock()
    while True:
        try:
            write()
        except Exception as exc:  # the next round tries again; the journal says why
            print(f"drctl-node metrics: this round failed: {type(exc).__name__}: {exc}",
                  file=sys.stderr, flush=True)
        if code is not None and mtime(code) != loaded:
            print(f"drctl-node metrics: {code} changed: ending for the new code",
                  file=sys.stderr, flush=True)
            return 0
        beat += seconds
        now = clock()
        if beat < now:  # a round longer than the beat: start the next one now
            beat = now
        sleep(beat - now)
