"""drctl rebuild: no site of the cluster survives; a new primary from an object store.

On a host of the cloud location (group cloud, prepared by provision with PostgreSQL,
the cluster's configuration and pgBackRest pointed at the object stores only), the
latest backup of an object-store repository is restored and its archived WAL replayed to
the end (or to a target time); PostgreSQL then promotes itself on a new timeline.

The decision is the rules core's (drctl.rules.decide.rebuild) from facts gathered now:
no node of the cluster may answer as a primary, and the loss is never known (the store
lacks the segment being written when the sites were lost), so the operator's consent
is always asked for, with what the watchers last saw. playbooks/rebuild.yml gathers
its own facts and asks the same rule again before it changes anything.

The report states the recovery point (the commit time of the last transaction replayed,
and how long before the newest write a watcher saw, when one answered) and the recovery
time (from the operator's answer until the new primary took writes).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from drctl import inventory as inv_mod
from drctl import vault
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.journal import Journal
from drctl.lock import cluster_lock
from drctl.operations import ha
from drctl.operations.backup import repository
from drctl.rules import decide
from drctl.rules.facts import ClusterFacts

STEPS = [
    "gates: no node of the cluster answers as a primary (or the one named with "
    "--despite-primary); the host is of group cloud; the repository is an object store; "
    "the operator consents to losing what the store lacks (never known: --allow-data-loss)",
    "stop PostgreSQL on the host and empty its data directory (the placeholder provision "
    "left, or with --replace an earlier rebuild)",
    "restore the repository's latest backup (pgBackRest, from the object store alone)",
    "start PostgreSQL: it replays every archived WAL segment (or up to --target-time), "
    "then promotes itself on a new timeline",
    "wait until it takes writes; report the last commit replayed (the recovery point) and "
    "the time taken (the recovery time)",
]


def newest_sighting_at(facts: ClusterFacts) -> float | None:
    """When a watcher last saw the primary write (seconds since the epoch), if one said."""
    times = [w.sighting.at for w in facts.watchers if w.sighting and w.sighting.at]
    return max(times) if times else None


def recovery_point(last_commit: str | None, seen_at: float | None) -> dict[str, Any]:
    """The recovery point: the last commit replayed, and how long before the newest write a
    watcher saw it lies (None: no watcher said when the primary last wrote)."""
    out: dict[str, Any] = {"last_replayed_commit": last_commit, "behind_last_seen_s": None}
    if last_commit and seen_at is not None:
        commit = datetime.fromisoformat(last_commit.replace("Z", "+00:00")).timestamp()
        out["behind_last_seen_s"] = round(max(0.0, seen_at - commit), 3)
    return out


@dataclass
class Rebuild(ha.Prepared):
    """A planned rebuild; run() asks, then runs playbooks/rebuild.yml under the lock."""

    facts: ClusterFacts | None = None

    def run(self, ui: ha.Interaction) -> dict[str, Any]:
        from drctl.runner import run_playbook

        p, inv = self.plan, self.inventory
        failed = [g for g in p.gates if not g.ok]
        if failed:
            raise DrctlError("rebuild refused by its gates; nothing was changed:\n  "
                             + "\n  ".join(f"{g.name}: {g.detail}" for g in failed),
                             ExitCode.REFUSED, report={**p.as_dict(), "result": "refused"})
        ui.confirm(self.question)
        vault.decrypt(inv.path)
        started = time.monotonic()
        with cluster_lock(p.cluster, "rebuild", inv) as held:
            journal = Journal(p.cluster, "rebuild", held)
            journal.write("start", host=p.target, detail=" ".join(sys.argv[1:]) or None,
                          data_loss="unknown", data_loss_accepted=True)
            try:
                result = run_playbook("rebuild.yml", inv.path, p.extravars,
                                      progress=ui.progress, journal=journal.from_playbook)
            except BaseException as exc:  # every start has its end
                journal.write("end", host=p.target, result="error", detail=str(exc)[:300])
                raise
            rebuilt = result.data.get("rebuild") or {}
            journal.write("end", host=p.target, result=result.status,
                          timeline=rebuilt.get("timeline"),
                          detail=f"last commit replayed {rebuilt.get('last_replayed_commit')}"
                          if rebuilt else None)
        report: dict[str, Any] = {
            "operation": "rebuild", "op_id": journal.op_id, "target": p.target,
            "result": "ok" if result.exit_code == ExitCode.OK else "failed",
            "rto_s": round(time.monotonic() - started, 2),
            "rpo": recovery_point(rebuilt.get("last_replayed_commit"),
                                  newest_sighting_at(self.facts) if self.facts else None),
            "rebuilt": rebuilt, "data_loss": p.data_loss, "notes": p.notes,
            "playbook": result.as_dict(),
        }
        if result.exit_code != ExitCode.OK:
            # the cluster's hosts that do not answer are expected (the facts play): the
            # failure is what went wrong on the host being rebuilt, when anything did
            lines = result.failure_lines()
            mine = [line for line in lines if line.startswith(f"{p.target}: ")] or lines
            raise DrctlError("rebuild " + result.status + ":\n  " + "\n  ".join(mine),
                             result.exit_code, hint="`drctl journal` lists every step taken",
                             report=report)
        return report


def prepare(inventory: Path, on: str, repo: int, target_time: str | None = None,
            allow_data_loss: bool = False, despite_primary: str | None = None,
            replace: bool = False) -> Rebuild:
    """Facts gathered now, decided by the rules: the plan, and the question that states
    what is at stake. Usage errors (a host or repository that cannot be meant) come first,
    before any host is contacted."""
    inv = inv_mod.load(inventory)
    cloud = [h.name for h in inv.group("cloud")]
    if on not in cloud:
        raise DrctlError(f"{on} is not a host of group cloud (the inventory's: "
                         f"{', '.join(cloud) or 'none'})", ExitCode.USAGE,
                         hint="a rebuild builds the cluster on a host outside its sites, "
                              "prepared by `drctl provision` (group cloud)")
    r = repository(inv, repo)
    if r.type != "s3":
        raise DrctlError(f"repo{repo} ({r.name}) is a repository host's, not an object "
                         "store: a rebuild restores from an object store alone",
                         ExitCode.USAGE)
    _report, facts = ha.gather(inv, repos=False)
    d = decide.rebuild(facts, on, allow_data_loss, despite_primary)
    loss = d.data_loss
    data_loss = {"verdict": loss.verdict, "sentence": loss.sentence,
                 "evidence": list(loss.evidence), "accepted": d.data_loss_accepted} \
        if loss else None
    notes = ["the service's clients must be pointed at the rebuilt primary "
             f"({inv.hosts[on].address}): no VIP or name follows it yet",
             "a node of the old cluster that comes back is still a primary of the old "
             "timeline: keep it powered off, or fence it, before it takes writes"]
    extravars: dict[str, Any] = {"rebuild_on": on, "rebuild_repo": repo,
                                 "allow_data_loss": allow_data_loss,
                                 "rebuild_replace": replace}
    if target_time:
        extravars["rebuild_target_time"] = target_time
    if despite_primary:
        extravars["despite_primary"] = despite_primary
    plan = ha.Plan("rebuild", inv.name, STEPS, ha.gates_from(d), extravars, target=on,
                   notes=notes, data_loss=data_loss)
    stake = f" {loss.sentence}." if loss else ""
    if replace:
        stake += (f" A cluster an earlier rebuild left on {on} is replaced: whatever it "
                  "took since is lost.")
    question = (f"Rebuild cluster '{inv.name}' on {on} from repo{repo} ({r.name}), "
                f"{'to ' + target_time if target_time else 'to the end of its WAL'}?{stake}")
    return Rebuild(inv, plan, "rebuild.yml", question, facts=facts)
