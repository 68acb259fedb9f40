"""drctl failover: the primary is gone - gates, fencing, promotion, VIP, proof.

The decision is the rules core's (drctl.rules.decide.failover), from facts gathered
now; the playbook asks the same rules again, from its own fresh facts, before acting.
"""

from __future__ import annotations

from pathlib import Path

from drctl import inventory as inv_mod
from drctl.operations import ha
from drctl.rules import decide
from drctl.rules.facts import ClusterFacts
from drctl.rules.policy import Policy

STEPS = [
    "gates: the target answers and is a standby; no other node accepts writes; the "
    "watchers have lost the primary too; the target holds every commit a watcher saw "
    "the primary write (or was its synchronous standby), else --allow-data-loss",
    "fence the old primary if it answers: /etc/drctl/fenced + stop PostgreSQL; PostgreSQL "
    "refuses to start and keepalived refuses the VIP while the marker exists",
    "an old primary that does not answer is recorded as unfenced: it fences itself when it "
    "returns (fence-check before PostgreSQL starts; the drctl-guard service)",
    "promote the target after it has replayed all WAL it received",
    "wait until the VIP is on the new primary (keepalived's check passes there only)",
    "write a row on the new primary and record the timeline switch point",
]


def plan(inv: inv_mod.Inventory, report: dict, facts: ClusterFacts, target: str | None,
         allow_data_loss: bool) -> ha.Plan:
    d = decide.failover(facts, Policy.from_options(inv.cluster), target, allow_data_loss)
    unreachable = [n.host for n in facts.nodes if not n.reachable]
    notes = list(d.notes)
    if d.why_target:
        notes.insert(0, f"target: {d.why_target}")
    nothing = d.nothing_to_do
    if nothing:
        auto = (report.get("auto") or {}).get("last_promotion") or {}
        if auto.get("host") == d.target:
            nothing += (f": automatic failover promoted it at {auto.get('at')} (timeline "
                        f"{auto.get('timeline')}); the old primary stays fenced until "
                        "`drctl failback`")
    answering = [n.host for n in facts.nodes if n.reachable]
    watchers = [w.watcher for w in facts.watchers if w.reachable]
    extravars = {"target": d.target, "allow_data_loss": allow_data_loss,
                 "failover_unreachable": unreachable}
    loss = None
    if d.data_loss:
        loss = {"verdict": d.data_loss.verdict, "sentence": d.data_loss.sentence,
                "missing_bytes": d.data_loss.missing_bytes,
                "evidence": list(d.data_loss.evidence), "accepted": d.data_loss_accepted}
    return ha.Plan("failover", inv.name, STEPS, ha.gates_from(d), extravars, target=d.target,
                   notes=notes, nothing_to_do=nothing, data_loss=loss,
                   limit=",".join(answering + watchers) if unreachable else None)


def prepare(inventory: Path, target: str | None, allow_data_loss: bool) -> ha.Prepared:
    """Facts gathered now, decided by the rules: the plan, and the question that states
    what is at stake."""
    inv = inv_mod.load(inventory)
    settle = float(inv.cluster.get("drctl_watch_settle_s") or 4)
    report, facts = ha.gather(inv, settle_s=settle)
    p = plan(inv, report, facts, target, allow_data_loss)
    stake = ""
    if p.data_loss and p.data_loss["accepted"]:
        stake = f" {p.data_loss['sentence']}: those commits will be lost."
    target_name = p.target

    def ok_when(st: dict) -> bool:
        return bool(st["primary"] == target_name and st["vip_holders"] == [target_name])

    return ha.Prepared(inv, p, "failover.yml",
                       f"Fail over cluster '{inv.name}' to {p.target}? The old primary will "
                       f"be fenced until `drctl failback`.{stake}", ok_when)
