"""What switchover, failover and failback share: facts from a live probe, the rules
core's gates as a plan, confirmation, the cluster lock, the journal, the playbook run, and
the ending report.

Each verb module prepares its plan (steps, gates from drctl.rules, extravars); this module
runs it in one order:  gates -> confirm -> lock -> playbook (journal every step) ->
status -> report. Nothing here prints: results go back to the caller (drctl's CLI renders
them with drctl.views; a drill reads them), questions and progress go through the
Interaction the caller passes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from drctl import dns, sshprobe, vault
from drctl import inventory as inv_mod
from drctl import lock as lock_mod
from drctl import status as status_mod
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.journal import Journal
from drctl.lock import cluster_lock
from drctl.rules import decide as rules_decide
from drctl.rules import facts as rules_facts
from drctl.rules.decide import Gate


@dataclass
class Plan:
    operation: str
    cluster: str
    steps: list[str]
    gates: list[Gate]
    extravars: dict[str, Any]
    target: str | None = None
    notes: list[str] = field(default_factory=list)
    nothing_to_do: str = ""
    limit: str | None = None  # hosts the playbook may contact (skip known-dead ones)
    data_loss: dict[str, Any] | None = None  # the rules core's verdict, when one was made
    # the other standbys that follow the new primary (failover), decided with the gates
    followers: list[str] = field(default_factory=list)
    left_behind: list[str] = field(default_factory=list)  # why each is left behind

    @property
    def ok(self) -> bool:
        return all(g.ok for g in self.gates)

    def as_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "cluster": self.cluster, "target": self.target,
                "steps": self.steps, "gates": [g.as_dict() for g in self.gates],
                "would_proceed": self.ok and not self.nothing_to_do,
                "nothing_to_do": self.nothing_to_do or None, "notes": self.notes,
                "data_loss": self.data_loss, "followers": self.followers}


@dataclass
class Interaction:
    """How an operation reaches whoever runs it - drctl's CLI, a drill, a test: whether to
    go on without asking, how to ask, and where progress goes. Operations never print."""

    yes: bool = False
    ask: Callable[[str], bool] | None = None  # None: nobody to ask (no terminal)
    progress: Callable[[str, dict[str, Any]], None] | None = None
    asked: bool = False  # a person answered a question: time passed since the facts

    def confirm(self, question: str) -> None:
        if self.yes:
            return
        if self.ask is None:
            raise DrctlError(f"{question} - refusing without a terminal to ask on",
                             ExitCode.REFUSED, hint="pass --yes to run without a question")
        self.asked = True
        if not self.ask(question):
            raise DrctlError("not confirmed; nothing was changed", ExitCode.REFUSED)

    def step(self, name: str, host: str, state: str, msg: str = "") -> None:
        """Progress of a step drctl runs itself, shown as a playbook task's would be."""
        if self.progress is not None:
            self.progress("task", {"task": name})
            self.progress("host", {"host": host, "task": name, "state": state,
                                   **({"msg": msg} if msg else {})})


class Outcome(Protocol):
    """What ran the operation's changes: a playbook (drctl.runner.RunResult) or drctl's own
    steps over SSH (DirectRun); the report reads both alike."""

    @property
    def status(self) -> str: ...

    @property
    def exit_code(self) -> ExitCode: ...

    def failure_lines(self) -> list[str]: ...

    def as_dict(self) -> dict[str, Any]: ...


@dataclass
class DirectRun:
    """An operation's changes made by drctl itself over SSH, one node step per host (the
    same drctl-node steps its playbook runs), where a playbook run would cost seconds."""

    name: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    duration: float = 0.0

    @property
    def status(self) -> str:
        return "failed" if self.failures else "successful"

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.failures else ExitCode.OK

    def failure_lines(self) -> list[str]:
        return self.failures

    def done(self) -> DirectRun:
        self.duration = round(time.monotonic() - self.started, 3)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"direct": self.name, "status": self.status, "exit_code": int(self.exit_code),
                "duration_s": self.duration, "steps": self.steps, "failures": self.failures}


def outage_from_journal(entries: list[dict[str, Any]]) -> float | None:
    """Seconds from the old primary refusing writes to the VIP on the new one."""
    start = end = None
    for e in entries:
        if e.get("step") == "promoted" and isinstance(e.get("handover"), dict):
            times = e["handover"].get("times", {})
            start = times.get("checkpoint") or times.get("stopped")
        if e.get("step") in ("fenced", "write-stopped") and start is None:
            start = e.get("time")
        if e.get("step") == "vip-moved":
            raw = e.get("vip")
            vip: dict[str, Any] = raw if isinstance(raw, dict) else {}
            end = vip.get("master_since") or vip.get("vip_at") or e.get("time")
    if not start or not end:
        return None
    t0 = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
    t1 = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    return round((t1 - t0).total_seconds(), 3)


Act = Callable[[Journal, Interaction], Outcome | None]


def execute(plan: Plan, inventory: inv_mod.Inventory, ui: Interaction, *, question: str,
            playbook: str, ok_when: Callable[[dict[str, Any]], bool] | None = None,
            act: Act | None = None) -> dict[str, Any]:
    """Run a planned operation and return its report; DrctlError when refused or when it
    ended badly (the report then rides on the error). ACT, when given, makes the changes
    itself under the lock and journal (None from it: run the playbook after all)."""
    from drctl.runner import run_playbook

    if plan.operation != "failover":  # a failover loses no time on it: its take decides
        lock_mod.ensure_free(plan.cluster, inventory)
    failed = [g for g in plan.gates if not g.ok]
    if failed:
        raise DrctlError(f"{plan.operation} refused by its gates; nothing was changed:\n  "
                         + "\n  ".join(f"{g.name}: {g.detail}" for g in failed),
                         ExitCode.REFUSED,
                         report={**plan.as_dict(), "result": "refused"})
    if plan.nothing_to_do:
        return {"operation": plan.operation, "result": "nothing-to-do",
                "detail": plan.nothing_to_do, "status": status_mod.collect(inventory)}
    dns.check_secret(inventory)  # the name's key, before anything changes
    ui.confirm(question)
    if act is None:  # the playbook reads the vault: a bad one is named before the lock
        vault.decrypt(inventory.path)
    started = time.monotonic()
    with cluster_lock(plan.cluster, plan.operation, inventory) as held:
        journal = Journal(plan.cluster, plan.operation, held)
        journal.write("start", host=plan.target, detail=" ".join(sys.argv[1:]) or None)
        try:
            result = act(journal, ui) if act else None
            if result is None:
                # the name follows below (_follow_name), with its own exit code and
                # journal entries: the playbook's own step (includes/service-name.yml) skips
                result = run_playbook(playbook, inventory.path,
                                      {**plan.extravars, "drctl_follows_name": True},
                                      progress=ui.progress, journal=journal.from_playbook,
                                      limit=plan.limit)
        except BaseException as exc:  # every start has its end
            journal.write("end", host=plan.target, result="error", detail=str(exc)[:300])
            raise
        status = status_mod.collect(inventory)
        if result.exit_code == ExitCode.OK:
            status = _settled(status, inventory, ok_when, ui)
        name, name_error = _follow_name(inventory, status, journal, ui) \
            if result.exit_code == ExitCode.OK else (None, None)
        journal.write("end", host=status["primary"], result=result.status,
                      vip_holder=",".join(status["vip_holders"]) or None,
                      timeline=next((n["timeline"] for n in status["nodes"]
                                     if n["host"] == status["primary"]), None))
    from drctl import journal as journal_mod

    entries = journal_mod.read(plan.cluster, op_id=journal.op_id)
    report: dict[str, Any] = {
        "operation": plan.operation,
        "op_id": journal.op_id,
        "target": plan.target,
        "result": "ok" if result.exit_code == ExitCode.OK else "failed",
        "duration_s": round(time.monotonic() - started, 2),
        "write_outage_s": outage_from_journal(entries),
        "playbook": result.as_dict(),
        "journal": entries,
        "status": status,
    }
    if plan.data_loss:
        report["data_loss"] = plan.data_loss
    if name is not None:
        report["service_name"] = name
    if name_error is not None:
        report["service_name"] = {"managed": True, "moved": False, **name_error.detail}
        name_error.report = report
        raise name_error
    if result.exit_code != ExitCode.OK:
        lines = result.failure_lines()
        raise DrctlError(f"{plan.operation} {result.status}:\n  " + "\n  ".join(lines),
                         result.exit_code, hint="`drctl journal` lists every step taken",
                         report=report)
    if not _good(status, ok_when):
        raise DrctlError(f"{plan.operation} finished but the cluster is not in the expected "
                         "state:\n  " + "\n  ".join(status["problems"]), ExitCode.UNHEALTHY,
                         report=report)
    return report


# How long a finished operation's check may look again when its first look did not find
# the cluster as expected: the node just restarted as a standby can miss one probe's
# timeout on a loaded machine (seen: "pg1 is unreachable" one second after a switchover
# the playbook had verified). Each look is a new probe of that moment; past the window
# the last one is the verdict.
SETTLE_S = 10.0


def _good(status: dict[str, Any], ok_when: Callable[[dict[str, Any]], bool] | None) -> bool:
    return bool(ok_when(status) if ok_when else status["healthy"])


def _settled(status: dict[str, Any], inventory: inv_mod.Inventory,
             ok_when: Callable[[dict[str, Any]], bool] | None, ui: Interaction,
             window_s: float = SETTLE_S) -> dict[str, Any]:
    """STATUS, or a newer look once the cluster is as expected, within WINDOW_S."""
    deadline = time.monotonic() + window_s
    while not _good(status, ok_when) and time.monotonic() < deadline:
        ui.step("Look again at the cluster (the last look found it not as expected)",
                "localhost", "ok", "; ".join(status["problems"])[:200])
        time.sleep(1.0)
        status = status_mod.collect(inventory)
    return status


def _follow_name(inventory: inv_mod.Inventory, status: dict[str, Any], journal: Journal,
                 ui: Interaction) -> tuple[dict[str, Any] | None, dns.NameNotMoved | None]:
    """Point the service's name at the serving site (a step of its own, journaled), after
    the operation proved the database there. A failure here leaves the database where it
    moved: it is returned, for the caller to report after everything else."""
    if dns.settings(inventory) is None:
        return None, None
    try:
        done = dns.follow(inventory, status,
                          say=lambda m: ui.step("move the service's name", "localhost", "ok", m))
    except dns.NameNotMoved as exc:
        journal.write("name-not-moved", result="error", detail=str(exc)[:300])
        return None, exc
    if done.get("moved"):
        journal.write("name-moved", detail=f"{done['name']} -> {done['address']} "
                                           f"(site {done['site']})")
    return done, None


NODE_COMMAND = sshprobe.NODE_COMMAND


def gather(inv: inv_mod.Inventory, settle_s: float = 0.0,
           commands: dict[str, list[str]] | None = None, command_timeout: float = 6,
           raw: dict[str, sshprobe.ProbeResult] | None = None, repos: bool = True,
           ) -> tuple[dict[str, Any], rules_facts.ClusterFacts]:
    """The status report and the rules core's facts, both from probes made now: every
    PostgreSQL node's probe and every watcher's record (waiting up to settle_s for the
    watchers to conclude that a dying primary is gone). COMMANDS: a node command run
    instead of the probe on some nodes, answering with the probe (status.collect); RAW
    receives each node's result as it came. REPOS: False for a decision's second look
    (status.collect)."""
    from concurrent.futures import ThreadPoolExecutor

    watchers = [h.name for h in inv.group("backup")]
    command = [NODE_COMMAND, "watch", "--show", "--settle", f"{settle_s:g}"]
    raw = {} if raw is None else raw
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(sshprobe.probe_all, inv, watchers,
                              dict.fromkeys(watchers, command))
        report = status_mod.collect(inv, raw=raw, commands=commands,
                                    command_timeout=command_timeout, repos=repos)
        seen = pending.result() if watchers else {}
    nodes = tuple(rules_facts.NodeFacts.from_probe(
        h.name, raw[h.name].data, raw[h.name].ok and raw[h.name].data is not None,
        raw[h.name].error) for h in inv.pg_hosts)
    watching = tuple(rules_facts.WatcherFacts.from_json(
        w, seen[w].data, seen[w].ok and seen[w].data is not None, seen[w].error)
        for w in watchers)
    # the watchers' sites too: a watcher's "lost" counts only in the primary's own site
    sites = {name: inv.site(name) for name in [h.name for h in inv.pg_hosts] + watchers}
    return report, rules_facts.ClusterFacts(nodes, watching, sites, site_vips(inv))


def site_vips(inv: inv_mod.Inventory) -> dict[str, str]:
    """Each site's VIP address, as the inventory gives it (a fact the rules name)."""
    return {name: str(site.get("vip") or "").split("/")[0]
            for name, site in inv.sites.items() if site.get("vip")}


@dataclass
class Prepared:
    """An operation planned from facts gathered now, ready to run."""

    inventory: inv_mod.Inventory
    plan: Plan
    playbook: str
    question: str
    ok_when: Callable[[dict[str, Any]], bool] | None = None
    act: Act | None = None  # drctl's own steps instead of the playbook, where they apply

    def run(self, ui: Interaction) -> dict[str, Any]:
        return execute(self.plan, self.inventory, ui, question=self.question,
                       playbook=self.playbook, ok_when=self.ok_when, act=self.act)


def gates_from(decision: rules_decide.Decision) -> list[Gate]:
    """A plan's gates: the rules core's own (one Gate class, drctl.rules.decide's)."""
    return list(decision.gates)
