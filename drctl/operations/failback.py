"""drctl failback: the old primary rejoins with pg_rewind (else a fresh clone); optionally
the switchover back so that it serves again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from drctl import inventory as inv_mod
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.operations import ha
from drctl.operations import switchover as switchover_op
from drctl.rules import decide
from drctl.rules.facts import ClusterFacts

STEPS = [
    "gates: exactly one running primary; the node to rejoin is not it and takes no writes; "
    "wal_log_hints or data checksums on",
    "stop PostgreSQL on the node (it is fenced) and read its control data",
    "find the fork point in the primary's timeline history",
    "count what the node committed past the fork point (pg_waldump of its WAL)",
    "commits past it: copy its data directory aside (<datadir>.diverged-<time>; kept) if it "
    "fits, else stop and say so; none: copy only its WAL, for pg_rewind",
    "pg_rewind from the primary under a time limit; if it fails, clone afresh",
    "mark it a standby, lift the fence, start it, confirm it streams",
]


def plan(inv: inv_mod.Inventory, facts: ClusterFacts, node: str | None, switch_back: bool,
         reclone: bool = False, discard_diverged: bool = False) -> ha.Plan:
    d = decide.failback(facts, node)
    steps = list(STEPS)
    if discard_diverged:
        steps[3] = ("commits past the fork point are DISCARDED (--discard-diverged): only the "
                    "node's WAL is copied, for pg_rewind")
    if switch_back:
        steps.append(f"switch over to {d.target} (a planned switchover, zero data loss)")
    return ha.Plan("failback", inv.name, steps, ha.gates_from(d),
                   {"node": d.target, "reclone": reclone,
                    "discard_diverged": discard_diverged}, target=d.target,
                   nothing_to_do=d.nothing_to_do)


def prepare(inventory: Path, node: str | None, switch_back: bool,
            reclone: bool = False, discard_diverged: bool = False) -> ha.Prepared:
    inv = inv_mod.load(inventory)
    if node:  # a usage error before any host is contacted
        inv.require_pg_host(node)
    report, facts = ha.gather(inv)
    p = plan(inv, facts, node, switch_back, reclone, discard_diverged)
    kept = ("whatever it committed after the failover is DISCARDED (--discard-diverged), "
            "not kept" if discard_diverged else
            "what it committed after the failover, if anything, is copied aside first")
    return ha.Prepared(inv, p, "failback.yml",
                       f"Rejoin {p.target} to cluster '{inv.name}' as a standby of "
                       f"{report['primary']}, rewound onto its timeline ({kept})?",
                       ok_when=rejoined(p.target))


def rejoined(node: str | None) -> Callable[[dict[str, Any]], bool]:
    """What a failback must leave: NODE a standby streaming from the one primary, which
    alone holds a VIP. Other nodes' problems (a second node of a returning site still to
    rejoin, an old backup) are reported with the status, not this failback's failure."""
    def ok(st: dict[str, Any]) -> bool:
        n = next((x for x in st["nodes"] if x["host"] == node), None)
        return bool(n and n["role"] == "standby" and n["streaming"] and not n["fenced"]
                    and st["primary"] and st["vip_holders"] == [st["primary"]])
    return ok


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
    return switch_back_to(prepared.inventory, prepared.plan.target, ui, combined)


def site_nodes(inv: inv_mod.Inventory, site: str) -> list[str]:
    """SITE's PostgreSQL nodes, the inventory's first primary first; a usage error naming
    the sites there are when SITE has none."""
    nodes = [h.name for h in inv.pg_hosts_home_first if inv.site(h.name) == site]
    if not nodes:
        raise DrctlError(f"site {site!r} has no PostgreSQL node (sites: "
                         f"{', '.join(inv.sites)})", ExitCode.USAGE)
    return nodes


def run_site(inventory: Path, site: str, ui: ha.Interaction, switch_back: bool,
             reclone: bool = False, discard_diverged: bool = False) -> dict[str, Any]:
    """A site comes back: each of its nodes that is fenced or stopped is failed back (a node
    that already streams is left alone), planned from facts gathered just before it; with
    switch_back, then a switchover to the site's first node, which moves the service's
    name home too. One report: failbacks (each node's), switchover, status, journal."""
    inv = inv_mod.load(inventory)
    nodes = site_nodes(inv, site)
    combined: dict[str, Any] = {"operation": "failback", "site": site, "failbacks": [],
                                "result": "ok", "journal": []}

    def add(part: dict[str, Any]) -> None:
        combined["failbacks"].append(part)
        combined["journal"] += part.get("journal", [])
        combined.update(status=part.get("status"), result=part.get("result"))

    for node in nodes:
        prepared = prepare(inventory, node, False, reclone, discard_diverged)
        try:
            add(prepared.run(ui))
        except DrctlError as exc:
            if exc.report:
                add(exc.report)
            exc.report = combined
            raise
    if not switch_back:
        return combined
    return switch_back_to(inv, nodes[0], ui, combined)


def switch_back_to(inv: inv_mod.Inventory, target: str | None, ui: ha.Interaction,
                   combined: dict[str, Any]) -> dict[str, Any]:
    """After the rejoin(s): a switchover to TARGET, planned from facts gathered now, added
    to COMBINED (its switchover, result, status and journal), which rides on the error
    when the switchover fails."""
    _, facts = ha.gather(inv)
    sp = switchover_op.plan(inv, facts, target)
    try:
        second = ha.execute(sp, inv, ha.Interaction(yes=True, progress=ui.progress),
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
