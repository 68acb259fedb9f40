"""drctl failback: the old primary rejoins with pg_rewind (else a fresh clone); optionally
the switchover back so that it serves again."""

from __future__ import annotations

from pathlib import Path

from drctl import inventory as inv_mod
from drctl.operations import ha
from drctl.operations import switchover as switchover_op
from drctl.rules import decide
from drctl.rules.facts import ClusterFacts

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


def plan(inv: inv_mod.Inventory, facts: ClusterFacts, node: str | None, switch_back: bool,
         reclone: bool = False) -> ha.Plan:
    d = decide.failback(facts, node)
    steps = list(STEPS)
    if switch_back:
        steps.append(f"switch over to {d.target} (a planned switchover, zero data loss)")
    return ha.Plan("failback", inv.name, steps, ha.gates_from(d),
                   {"node": d.target, "reclone": reclone}, target=d.target,
                   nothing_to_do=d.nothing_to_do)


def failback(inventory: Path, fmt: str, *, node: str | None, yes: bool, show: bool,
             switch_back: bool, reclone: bool = False) -> None:
    """With --format json and --switch-back, stdout holds one document with both reports."""
    from drctl.output import emit_json

    inv = inv_mod.load(inventory)
    report, facts = ha.gather(inv)
    p = plan(inv, facts, node, switch_back, reclone)
    combined: dict = {"operation": "failback", "node": p.target}
    try:
        combined["failback"] = ha.execute(
            p, inv, fmt, yes=yes, show=show, playbook="failback.yml", render=not switch_back,
            question=f"Rejoin {p.target} to cluster '{inv.name}' as a standby of "
                     f"{report['primary']} (its data is copied aside, then rewound)?")
        if show or not switch_back:
            return
        report, facts = ha.gather(inv)
        sp = switchover_op.plan(inv, facts, p.target)
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
