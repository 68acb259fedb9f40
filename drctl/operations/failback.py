"""drctl failback: the old primary rejoins with pg_rewind (else a fresh clone); optionally
the switchover back so that it serves again."""

from __future__ import annotations

from pathlib import Path

from drctl.operations import ha
from drctl.operations import switchover as switchover_op

STEPS = [
    "gates: exactly one running primary; the node to rejoin is not it and takes no writes; "
    "wal_log_hints or data checksums on",
    "stop PostgreSQL on the node (it is fenced) and read its control data",
    "find the fork point in the primary's timeline history",
    "copy the node's data directory aside (<datadir>.diverged-<time>; never deleted)",
    "report what diverged: pg_waldump of the node's WAL past the fork point",
    "pg_rewind from the primary under a time limit; if it fails, clone afresh",
    "mark it a standby, lift the fence, start it, confirm it streams",
]


def plan(inv, report, node: str | None, switch_back: bool, reclone: bool = False) -> ha.Plan:
    primary = report["primary"]
    candidates = [n["host"] for n in report["nodes"]
                  if n["host"] != primary and (n["fenced"] or n["role"] in ("down",))]
    node = node or (candidates[0] if candidates else None)
    n = ha.node(report, node)
    p = ha.node(report, primary)
    gates = [
        ha.one_primary_gate(report),
        ha.Gate("node answers", bool(n and n["reachable"]),
                f"{node}: {'answers' if n and n['reachable'] else 'does not answer'}"),
        ha.Gate("node is not the primary", bool(n and n["role"] != "primary"),
                f"{node}: {n['role'] if n else 'no such PostgreSQL node'}"),
        ha.Gate("rewind possible", bool(p and (p.get("wal_log_hints") or p.get("data_checksums"))),
                f"wal_log_hints={p.get('wal_log_hints') if p else '?'}, "
                f"data_checksums={p.get('data_checksums') if p else '?'}"),
    ]
    steps = list(STEPS)
    if switch_back:
        steps.append(f"switch over to {node} (a planned switchover, zero data loss)")
    nothing = ""
    if n and n["role"] == "standby" and n["streaming"] and not n["fenced"]:
        nothing = f"{node} already streams from {primary}"
        gates = gates[:1]
    return ha.Plan("failback", inv.name, steps, gates, {"node": node, "reclone": reclone},
                   target=node, nothing_to_do=nothing)


def failback(inventory: Path, fmt: str, *, node: str | None, yes: bool, show: bool,
             switch_back: bool, reclone: bool = False) -> None:
    """With --format json and --switch-back, stdout holds one document with both reports."""
    from drctl.output import emit_json

    inv, report = ha.load(inventory)
    p = plan(inv, report, node, switch_back, reclone)
    combined: dict = {"operation": "failback", "node": p.target}
    try:
        combined["failback"] = ha.execute(
            p, inv, fmt, yes=yes, show=show, playbook="failback.yml", render=not switch_back,
            question=f"Rejoin {p.target} to cluster '{inv.name}' as a standby of "
                     f"{report['primary']} (its data is copied aside, then rewound)?")
        if show or not switch_back:
            return
        inv, report = ha.load(inventory)
        sp = switchover_op.plan(inv, report, p.target)
        combined["switchover"] = ha.execute(sp, inv, fmt, yes=True, show=False,
                                            playbook="switchover.yml", question="",
                                            render=False)
    finally:
        if switch_back and not show and fmt == "json" and "failback" in combined:
            last = combined.get("switchover") or combined["failback"]
            combined["status"] = last.get("status")
            combined["journal"] = (combined["failback"].get("journal", [])
                                   + (combined.get("switchover") or {}).get("journal", []))
            combined["result"] = last.get("result")
            emit_json(combined)
