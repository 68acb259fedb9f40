"""drctl failover: the primary is gone - gates, fencing, promotion, VIP, proof.

The decision is the rules core's (drctl.rules.decide.failover), from facts gathered
now. Two ways to act on it, with the same node steps and the same journal:
- directly (the default): drctl runs the fence and take-over node steps over SSH itself,
  seconds faster than a playbook run; when a person was asked first, the facts are
  gathered and decided again after the answer;
  where automatic failover is armed, drctl pauses repmgrd on the nodes first (the same
  marker and stop as the playbook's pause) and decides again from facts gathered in the
  same round (each paused node answers with its probe taken after its repmgrd stopped);
- through playbooks/failover.yml (drctl_failover_path: playbook), which pauses automatic
  failover and asks the same rules again from its own fresh facts before acting - the
  path AWX and `ansible-playbook` users take.
"""

from __future__ import annotations

import getpass
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from drctl import inventory as inv_mod
from drctl import sshprobe
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.journal import Journal
from drctl.operations import ha, poolers
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
    "every other standby follows the new primary (its own settings, the new address); one "
    "that cannot is a failure of the failover, named with why (the promotion stands)",
]


def plan(inv: inv_mod.Inventory, report: dict, facts: ClusterFacts, target: str | None,
         allow_data_loss: bool, site: str | None = None) -> ha.Plan:
    d = decide.failover(facts, Policy.from_options(inv.cluster), target, allow_data_loss,
                        site)
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
                "window_s": d.data_loss.window_s,
                "evidence": list(d.data_loss.evidence), "accepted": d.data_loss_accepted}
    return ha.Plan("failover", inv.name, STEPS, ha.gates_from(d), extravars, target=d.target,
                   notes=notes, nothing_to_do=nothing, data_loss=loss,
                   limit=",".join(answering + watchers) if unreachable else None,
                   followers=list(d.followers),
                   left_behind=[why for _, why in d.left_behind])


def operator() -> str:
    """Who acts, for the fence marker and the journal: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("USER") or "drctl"
    return f"{user}@{socket.gethostname()}"


def verdict(p: ha.Plan) -> tuple[Any, ...]:
    """What a person consented to: the target, every gate's outcome, the data-loss verdict."""
    loss = p.data_loss or {}
    return (p.target, tuple((g.name, g.ok) for g in p.gates), loss.get("verdict"),
            loss.get("missing_bytes"), bool(p.nothing_to_do))


def take_over(inv: inv_mod.Inventory, p: ha.Plan, facts: ClusterFacts, journal: Journal,
              ui: ha.Interaction) -> ha.DirectRun:
    """The failover's changes as drctl's own steps over SSH (the same node steps as
    playbooks/failover.yml): fence every other node that answers and is not a standby
    (all of them before anything is promoted; one that cannot be fenced stops the
    failover), record those that do not answer as unfenced, then take over on the target
    in one node step (promote, drop a gone synchronous standby, wait for the VIP, write)."""
    run = ha.DirectRun("failover: drctl-node fence and take-over over SSH")
    target = str(p.target)
    unreachable = [n.host for n in facts.nodes if not n.reachable]
    loss = p.data_loss or {}
    why = next((n.removeprefix("target: ") for n in p.notes if n.startswith("target: ")), "")
    journal.write("gates", host=target, result="passed",
                  detail=f"{why}; unreachable: {', '.join(unreachable) or 'none'}",
                  data_loss=loss.get("verdict"), data_loss_accepted=loss.get("accepted"))
    to_fence = [n.host for n in facts.nodes if n.reachable and n.host != target
                and n.role != "standby"]
    reason = f"failover to {target} by {operator()}"
    # the application's poolers hold new transactions while the old primary is fenced
    # and the target takes over (drctl.operations.poolers): paused beside the fence and
    # the take-over, never before them (the take-over does not wait for a pooler), and
    # resumed after the take-over whatever its outcome
    with ThreadPoolExecutor(max_workers=1) as background:
        pausing = background.submit(poolers.pause, inv, f"failover to {target}")
        try:
            with ThreadPoolExecutor(max_workers=max(1, len(to_fence))) as pool:
                fenced = dict(zip(to_fence, pool.map(
                    lambda h: sshprobe.node_json(inv, h, ["fence", "--reason", reason],
                                                 timeout=150), to_fence), strict=True))
            return _fence_and_take_over(inv, p, target, unreachable, fenced, journal, ui,
                                        run)
        finally:
            held = pausing.result()
            poolers.journal_paused(held, journal)
            poolers.resume(inv, held, f"failover to {target}", journal)


def _fence_and_take_over(inv: inv_mod.Inventory, p: ha.Plan, target: str,
                         unreachable: list[str], fenced: dict[str, dict[str, Any]],
                         journal: Journal, ui: ha.Interaction, run: ha.DirectRun
                         ) -> ha.DirectRun:
    for host, answer in fenced.items():
        run.steps.append({"step": "fence", "host": host, "answer": answer})
        if answer.get("ok"):
            journal.write("fenced", host=host)
            ui.step("Fence the old primary (marker + stop PostgreSQL)", host, "changed")
        else:
            run.failures.append(f"{host}: fence: {answer.get('error')}")
            journal.write("fenced", host=host, result="failed", detail=answer.get("error"))
            ui.step("Fence the old primary (marker + stop PostgreSQL)", host, "failed",
                    str(answer.get("error")))
    for host in unreachable:
        journal.write("unfenced", host=host,
                      result="not reached: it fences itself when it returns")
    if run.failures:
        run.failures.append(f"nothing was promoted: a node that answers could not be "
                            f"fenced; {target} is still a standby")
        return run.done()
    answer = sshprobe.node_json(inv, target, ["take-over", "--node", target, "--timeout",
                                              "10", "--vip-timeout", "15"], timeout=90)
    run.steps.append({"step": "take-over", "host": target, "answer": answer})
    promoted = answer.get("promote")
    if isinstance(promoted, dict):
        journal.write("promoted", host=target, time=promoted.get("promoted_at"),
                      lsn=promoted.get("lsn"), timeline=promoted.get("timeline"),
                      promote=promoted)
    if not answer.get("ok"):
        run.failures.append(f"{target}: take-over: {answer.get('error')}")
        ui.step("Take over (promote, VIP, write)", target, "failed", str(answer.get("error")))
        return run.done()
    ui.step("Take over (promote, VIP, write)", target, "changed")
    vip = answer.get("vip") or {}
    # each step at the time the node saw it happen, not when its answer arrived
    journal.write("vip-moved", host=target, time=vip.get("vip_at"), vip=vip)
    journal.write("write-proved", host=target, time=answer.get("written_at"),
                  timeline=answer.get("timeline"), switch_point=answer.get("switch_point"))
    repoint(inv, p, target, journal, ui, run)
    return run.done()


def repoint(inv: inv_mod.Inventory, p: ha.Plan, target: str, journal: Journal,
            ui: ha.Interaction, run: ha.DirectRun) -> None:
    """The other standbys follow the new primary, all at once; one that cannot is a
    failure of the failover (the promotion stands), and so is one the rules left behind."""
    address = inv.hosts[target].address if p.followers else ""
    with ThreadPoolExecutor(max_workers=max(1, len(p.followers))) as pool:
        answers = dict(zip(p.followers, pool.map(
            lambda h: sshprobe.node_json(inv, h, ["repoint", "--primary-address", address,
                                                  "--stream-timeout", "30"], timeout=120),
            p.followers), strict=True))
    for host, answer in answers.items():
        run.steps.append({"step": "repoint", "host": host, "answer": answer})
        if answer.get("ok"):
            journal.write("followed", host=host, detail=f"streams from {target}")
            ui.step(f"Follow the new primary {target}", host, "changed")
        else:
            run.failures.append(f"{host} does not follow the new primary {target}: "
                                f"{answer.get('error')}")
            journal.write("followed", host=host, result="failed", detail=answer.get("error"))
            ui.step(f"Follow the new primary {target}", host, "failed",
                    str(answer.get("error")))
    run.failures += [f"left behind: {why}" for why in p.left_behind]


def armed_nodes(facts: ClusterFacts) -> list[str]:
    """The nodes that answered with automatic failover enabled and not paused."""
    return [n.host for n in facts.nodes if n.reachable and n.auto == "on"]


def pause_and_gather(inv: inv_mod.Inventory, hosts: list[str], journal: Journal,
                     ui: ha.Interaction, run: ha.DirectRun
                     ) -> tuple[dict[str, Any], ClusterFacts] | None:
    """Pause repmgrd on HOSTS (drctl-node auto-pause: the marker, then repmgrd stopped), as
    playbooks/includes/auto-pause.yml does, and gather the facts in the same round: each
    paused node answers with its probe taken after its repmgrd stopped (nothing there can
    change its role after it), the other nodes and the watchers are probed meanwhile. A
    node that cannot be paused is a failure (None: nothing is promoted). The witness on the
    backup host promotes nothing and is left running."""
    command = [sshprobe.NODE_COMMAND, "auto-pause", "--reason", f"drctl failover by "
               f"{operator()}", "--probe"]
    raw: dict[str, sshprobe.ProbeResult] = {}
    # repmgrd's stop is bounded by its unit's stop timeout (playbooks/includes: 60 s)
    report, facts = ha.gather(inv, settle_s=float(inv.option("drctl_watch_settle_s")),
                              commands=dict.fromkeys(hosts, command), command_timeout=60,
                              raw=raw, repos=False)
    paused = []
    for host in hosts:
        result = raw[host]
        answer = ((result.data or {}).get("auto_pause") or
                  {"ok": False, "error": result.error or "no answer"})
        run.steps.append({"step": "auto-pause", "host": host, "answer": answer})
        if answer.get("ok"):
            paused.append(host)
            ui.step("Pause automatic failover", host, "changed")
        else:
            run.failures.append(f"{host}: automatic failover could not be paused: "
                                f"{answer.get('error')}; nothing was promoted")
            ui.step("Pause automatic failover", host, "failed", str(answer.get("error")))
    if paused:
        journal.write("auto-paused", host=",".join(paused))
    return None if run.failures else (report, facts)


def direct(inv: inv_mod.Inventory, p: ha.Plan, facts: ClusterFacts, report: dict[str, Any],
           target: str | None, allow_data_loss: bool, site: str | None = None
           ) -> ha.Act | None:
    """drctl's own steps, or None where the playbook must run (drctl_failover_path:
    playbook). Where automatic failover is armed it is paused first (the rules core's
    decide.auto_pause), as the playbook does, and decided again from facts gathered with
    the pause (pause_and_gather): repmgrd may have acted before it."""
    path = str(inv.option("drctl_failover_path"))
    if path not in ("direct", "playbook"):
        raise DrctlError(f"drctl_failover_path is '{path}': it must be 'direct' or 'playbook'",
                         ExitCode.INVALID_INVENTORY, hint=f"fix it in {inv.path}")
    if path == "playbook":
        return None
    # the rules core says whether to pause; the nodes to pause are those that answered
    # with it enabled and not paused (none answered: the gates refused already)
    to_pause = armed_nodes(facts) if decide.auto_pause(facts)[0] else []

    def act(journal: Journal, ui: ha.Interaction) -> ha.DirectRun:
        now_plan, now_facts = p, facts
        gathered: tuple[dict[str, Any], ClusterFacts] | None = None
        if to_pause:  # repmgrd could act until it stops: the facts from after the pause
            run = ha.DirectRun("failover: drctl-node auto-pause over SSH")
            gathered = pause_and_gather(inv, to_pause, journal, ui, run)
            if gathered is None:
                return run.done()
        elif ui.asked:  # time passed while the operator was asked
            gathered = ha.gather(inv, settle_s=float(inv.option("drctl_watch_settle_s")),
                                 repos=False)
        if gathered is not None:  # decide again, from facts gathered now
            now_report, now_facts = gathered
            now_plan = plan(inv, now_report, now_facts, target, allow_data_loss, site)
            if now_plan.nothing_to_do and now_plan.target == p.target:
                journal.write("gates", host=now_plan.target, result="already-primary",
                              detail=now_plan.nothing_to_do)
                return ha.DirectRun("failover: already done").done()
            if verdict(now_plan) != verdict(p):
                run = ha.DirectRun("failover")
                run.failures.append(
                    ("the cluster changed while you were asked" if ui.asked else
                     "the cluster changed while automatic failover was paused")
                    + "; nothing was promoted: "
                    + "; ".join(f"{g.name}: {g.detail}" for g in now_plan.gates
                                if not g.ok) + " (run drctl failover again)")
                return run.done()
        return take_over(inv, now_plan, now_facts, journal, ui)
    return act


def prepare(inventory: Path, target: str | None, allow_data_loss: bool,
            site: str | None = None) -> ha.Prepared:
    """Facts gathered now, decided by the rules: the plan, and the question that states
    what is at stake."""
    inv = inv_mod.load(inventory)
    if target:  # a usage error before any host is contacted
        inv.require_pg_host(target)
    if site is not None and site not in inv.sites:
        raise DrctlError(f"there is no site '{site}' in the inventory (sites: "
                         f"{', '.join(inv.sites) or 'none'})", ExitCode.USAGE)
    settle = float(inv.option("drctl_watch_settle_s"))
    report, facts = ha.gather(inv, settle_s=settle)
    p = plan(inv, report, facts, target, allow_data_loss, site)
    stake = ""
    if p.data_loss and p.data_loss["accepted"]:
        stake = f" {p.data_loss['sentence']}: those commits will be lost."
    target_name = p.target

    def ok_when(st: dict) -> bool:
        return bool(st["primary"] == target_name and st["vip_holders"] == [target_name])

    return ha.Prepared(inv, p, "failover.yml",
                       f"Fail over cluster '{inv.name}' to {p.target}? The old primary will "
                       f"be fenced until `drctl failback`.{stake}", ok_when,
                       act=direct(inv, p, facts, report, target, allow_data_loss, site))
