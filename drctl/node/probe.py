"""The node probe: one JSON object describing this PostgreSQL node. Changes nothing.

`drctl status` runs it over SSH; the playbooks run it before every decision; the rules
core (drctl.rules.facts.NodeFacts.from_probe) parses what it prints.
"""

from __future__ import annotations

import glob
import os
import time
from typing import Any

from drctl.node.common import Config, emit, holds_address, psql, psql_json, read_json, run
from drctl.rules import sql


def _service(name: str) -> str:
    return run(["systemctl", "is-active", name], timeout=5)[1] or "unknown"


def auto_state(c: Config) -> dict[str, Any] | None:
    """Automatic failover on this node (repmgr role): None when it was never enabled."""
    settings = read_json(c.auto_settings)
    if not isinstance(settings, dict):
        return None
    state: dict[str, Any] = {
        "repmgrd": _service(c.repmgrd_unit), "paused": read_json(c.auto_paused),
        "location": settings.get("location"),
        "primary_location": settings.get("primary_location"),
        "max_lag_bytes": settings.get("max_lag_bytes"), "lag_sample": None,
        "policy": settings.get("policy"),
        "witness_visible": None, "events": []}
    sample = read_json(c.lag_file)
    if isinstance(sample, dict) and "at" in sample:
        sample["age_s"] = round(time.time() - sample["at"], 1)
        state["lag_sample"] = sample
    env_pass = f"PGPASSFILE={settings.get('passfile', '')}"
    rc, _, err = run(["runuser", "-u", "postgres", "--", "env", env_pass, c.psql, "-XAtq",
                      settings["witness_conninfo"], "-c", "select 1"], timeout=5)
    state["witness_visible"] = rc == 0
    if rc != 0:
        state["witness_error"] = (err.splitlines() or [""])[-1][:200]
    # repmgrd's own view on a standby: seconds since it last saw its upstream (a repmgrd
    # left in degraded monitoring after a cancelled election shows here, not elsewhere)
    try:
        seen = psql(c, "select case when pg_is_in_recovery() then "
                    "repmgr.get_upstream_last_seen() end", db="repmgr", timeout=5,
                    port=int(settings.get("pg_port", c.pg_port)))
        state["upstream_last_seen_s"] = int(seen) if seen.lstrip("-").isdigit() else None
    except RuntimeError:
        state["upstream_last_seen_s"] = None
    events: list[dict[str, Any]] = []
    try:
        with open(settings["event_log"]) as fh:
            import json

            events = [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError, KeyError):
        pass
    state["events"] = events[-20:]
    # the newest promotion and refusal ever, however many events came after them
    for e in events:
        if e.get("step") == "promoted":
            state["last_promoted"] = e
        elif e.get("step") == "auto-validate" and e.get("result") == "refused":
            state["last_refused"] = e
    return state


def postgres_state(c: Config, as_user: str | None = "postgres") -> dict[str, Any]:
    """The local server's answers to the probe's queries (RuntimeError when it is down).
    as_user=None when already running as postgres (under repmgrd)."""
    pg = psql_json(c, sql.QUERY_COMMON, as_user=as_user)
    pg.update(psql_json(c, sql.QUERY_STANDBY if pg["in_recovery"]
                        else sql.QUERY_PRIMARY, as_user=as_user))
    return pg


def collect(c: Config) -> dict[str, Any]:
    start = time.monotonic()
    out: dict[str, Any] = {"host": c.name, "address": c.address, "probe_version": 2,
                           "fenced": os.path.exists(c.fence_file),
                           "start_held": read_json(c.start_held_file)}
    out["postgres_service"] = _service(c.unit)
    out["postgres"] = None
    try:
        out["postgres"] = postgres_state(c)
    except (RuntimeError, ValueError) as exc:
        out["postgres_error"] = str(exc)[:300]
    out["keepalived_service"] = _service("keepalived")
    state = None
    try:
        with open(c.vrrp_state_file) as fh:
            parts = fh.read().split()
            state = {"state": parts[0], "since": parts[1] if len(parts) > 1 else None}
    except (OSError, IndexError):
        pass
    out["vrrp"] = state
    out["holds_vip"] = holds_address(c.vip_interface, c.vip)
    out["vip_check"] = vip_check(c.vip_track_config)
    # data directories failback set aside (copied, never deleted): an operator reviews them
    out["set_aside"] = sorted(os.path.basename(p) for p in glob.glob(f"{c.datadir}.diverged-*"))
    out["auto"] = auto_state(c)
    out["probe_ms"] = round((time.monotonic() - start) * 1000)
    return out


def vip_check(config_path: str) -> dict[str, Any] | None:
    """The VIP check's last verdict on this node (drctl-vip-track keeps it): whether this
    node may hold the VIP, why, and since when (epoch seconds); None where no check runs
    or it has not decided yet."""
    config = read_json(config_path)
    path = config.get("verdict_file") if isinstance(config, dict) else None
    verdict = read_json(path) if isinstance(path, str) else None
    if not isinstance(verdict, dict) or not isinstance(verdict.get("eligible"), bool):
        return None
    return {"eligible": verdict["eligible"], "reason": str(verdict.get("reason") or ""),
            "since": verdict.get("since")}


# The probe's bound on asking the object stores' archives: drctl status gives a probe
# 6 s in all, and a store that does not answer must not make the node look unreachable.
ARCHIVE_PROBE_TIMEOUT_S = 2.0


def archives(c: Config) -> list[dict[str, Any]]:
    """The newest timeline each object store's archive holds ([] where none is set up),
    for status and a failover's gates (decide.superseded, decide.no_unseen_promotion)."""
    if not c.archive_repos:
        return []
    from dataclasses import asdict

    from drctl.node import archive

    return [asdict(a) for a in archive.answers(
        c, min(c.archive_check_timeout_s, ARCHIVE_PROBE_TIMEOUT_S))]


def main(c: Config) -> int:
    emit(**collect(c), archives=archives(c))
    return 0
