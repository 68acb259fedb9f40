"""drctl switchover: planned, zero data loss, in either direction."""

from __future__ import annotations

from pathlib import Path

from drctl import inventory as inv_mod
from drctl.operations import ha
from drctl.rules import decide
from drctl.rules.facts import ClusterFacts
from drctl.rules.policy import Policy

STEPS = [
    "gates: exactly one primary; the target streams from it; lag under the threshold; "
    "no prepared transactions",
    "when the primary changes site: the serving site's app host sends the application's "
    "files to the site about to serve (a copy that does not reach it stops here)",
    "on the old primary: hold the VIP, CHECKPOINT, stop PostgreSQL cleanly (pg_controldata "
    "must say 'shut down')",
    "on the target: wait until it has replayed past the old primary's shutdown checkpoint",
    "promote the target (pg_promote); wait for its keepalived to see it eligible",
    "on the old primary: give the VIP up (priority-0 advert); the target takes it",
    "the old primary follows the new timeline as a standby (no re-clone) and streams",
    "verify: exactly one VIP holder, the new primary; every standby streaming",
]


def plan(inv: inv_mod.Inventory, facts: ClusterFacts, target: str | None) -> ha.Plan:
    d = decide.switchover(facts, Policy.from_options(inv.cluster), target)
    notes = list(d.notes)
    return ha.Plan("switchover", inv.name, STEPS, ha.gates_from(d), {"target": d.target},
                   target=d.target, nothing_to_do=d.nothing_to_do, notes=notes)


def prepare(inventory: Path, target: str | None) -> ha.Prepared:
    inv = inv_mod.load(inventory)
    if target:  # a usage error before any host is contacted
        inv.require_pg_host(target)
    report, facts = ha.gather(inv)
    p = plan(inv, facts, target)
    if not report["healthy"] and p.nothing_to_do:
        p.nothing_to_do = ""  # an interrupted switchover: the playbook finishes the rejoin
    return ha.Prepared(inv, p, "switchover.yml",
                       f"Switch over cluster '{inv.name}' from {report['primary']} to "
                       f"{p.target}?")
