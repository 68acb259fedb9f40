"""drctl failback: the old primary rejoins with pg_rewind (else a fresh clone); optionally
the switchover back so that it serves again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drctl import inventory as inv_mod
from drctl.errors import DrctlError
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


def prepare(inventory: Path, node: str | None, switch_back: bool,
            reclone: bool = False) -> ha.Prepared:
    inv = inv_mod.load(inventory)
    report, facts = ha.gather(inv)
    p = plan(inv, facts, node, switch_back, reclone)
    return ha.Prepared(inv, p, "failback.yml",
                       f"Rejoin {p.target} to cluster '{inv.name}' as a standby of "
                       f"{report['primary']} (its data is copied aside, then rewound)?")


def run(prepared: ha.Prepared, ui: ha.Interaction, switch_back: bool) -> dict[str, Any]:
    """The failback; with switch_back, then a switchover to the rejoined node: one report
    holding both (keys failback, switchover; status, journal and result of the whole)."""
    first = prepared.run(ui)
    if not switch_back:
        return first
    combined: dict[str, Any] = {"operation": "failback", "node": prepared.plan.target,
                                "failback": first, "result": first.get("result"),
                                "status": first.get("status"),
                                "journal": list(first.get("journal", []))}
    _, facts = ha.gather(prepared.inventory)
    sp = switchover_op.plan(prepared.inventory, facts, prepared.plan.target)
    try:
        second = ha.execute(sp, prepared.inventory, ha.Interaction(yes=True,
                                                                   progress=ui.progress),
                            question="", playbook="switchover.yml")
    except DrctlError as exc:
        if exc.report:
            combined.update(switchover=exc.report, result=exc.report.get("result"),
                            status=exc.report.get("status"))
            combined["journal"] += exc.report.get("journal", [])
        exc.report = combined
        raise
    combined.update(switchover=second, result=second.get("result"),
                    status=second.get("status"))
    combined["journal"] += second.get("journal", [])
    return combined
