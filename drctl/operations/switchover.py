"""drctl switchover: planned, zero data loss, in either direction."""

from __future__ import annotations

from pathlib import Path

from drctl.operations import ha

STEPS = [
    "gates: exactly one primary; the target streams from it; lag under the threshold; "
    "no prepared transactions",
    "on the old primary: hold the VIP, CHECKPOINT, stop PostgreSQL cleanly (pg_controldata "
    "must say 'shut down')",
    "on the target: wait until it has replayed past the old primary's shutdown checkpoint",
    "promote the target (pg_promote); wait for its keepalived to see it eligible",
    "on the old primary: give the VIP up (priority-0 advert); the target takes it",
    "the old primary follows the new timeline as a standby (no re-clone) and streams",
    "verify: exactly one VIP holder, the new primary; every standby streaming",
]


def plan(inv, report, target: str | None) -> ha.Plan:
    max_lag = int(inv.cluster.get("drctl_max_lag_bytes") or 16 * 1024 * 1024)
    primary = report["primary"]
    standbys = [n["host"] for n in report["nodes"] if n["role"] == "standby"]
    target = target or (standbys[0] if standbys else None)
    t = ha.node(report, target)
    p = ha.node(report, primary)
    gates = [
        ha.one_primary_gate(report),
        ha.Gate("target is a standby", bool(t and t["role"] == "standby"),
                f"{target}: {t['role'] if t else 'not a PostgreSQL node of the inventory'}"),
        ha.Gate("target streams", bool(t and t["streaming"]),
                f"{target} streaming: {t['streaming'] if t else None}"),
        ha.Gate("lag", bool(t and t["lag_bytes"] is not None and t["lag_bytes"] <= max_lag),
                f"{t['lag_bytes'] if t else None} bytes (limit {max_lag})"),
        ha.Gate("no prepared transactions", bool(p and not p.get("prepared_xacts")),
                f"{p.get('prepared_xacts') if p else '?'} on {primary}"),
        ha.Gate("target not fenced", bool(t and not t["fenced"]), f"{target}"),
    ]
    nothing = ""
    if primary and primary == target:
        gates = [g for g in gates if g.name == "one primary"]
        if report["healthy"]:
            nothing = f"{target} is already the primary"
        # else: an interrupted switchover; the playbook finishes the rejoin
    return ha.Plan("switchover", inv.name, STEPS, gates, {"target": target}, target=target,
                   nothing_to_do=nothing)


def switchover(inventory: Path, fmt: str, *, target: str | None, yes: bool, show: bool) -> None:
    inv, report = ha.load(inventory)
    p = plan(inv, report, target)
    ha.execute(p, inv, fmt, yes=yes, show=show, playbook="switchover.yml",
               question=f"Switch over cluster '{inv.name}' from {report['primary']} to "
                        f"{p.target}?")
