"""The application's poolers (PgBouncer on the app hosts) around a failover's take-over,
on drctl's direct path: paused once the gates have passed, so that transactions started
during the take-over wait for the new primary instead of failing, and resumed after it,
whatever its outcome. The same node steps as playbooks/failover.yml's Poolers play and
roles/pgbouncer/tasks/resume.yml (drctl.node.pooler on each app host).

An app host that does not answer is left out (its clients are gone with it); a pooler
that cannot be paused does not stop a failover (its clients get errors until the new
primary serves, as without a pooler); one left paused is resumed by its own guard.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from drctl import inventory as inv_mod
from drctl import sshprobe
from drctl.journal import Journal

Answers = dict[str, dict[str, Any]]


def _on_each(inv: inv_mod.Inventory, args: list[str], timeout: float) -> Answers:
    hosts = [h.name for h in inv.group("app")]

    def one(host: str) -> dict[str, Any]:
        why = sshprobe.dead(inv, host)  # half a second for a host that is gone
        if why:
            return {"ok": False, "host": host, "unreachable": True, "error": why}
        return sshprobe.node_json(inv, host, args, timeout=timeout)

    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        return dict(zip(hosts, pool.map(one, hosts), strict=True))


def pause(inv: inv_mod.Inventory, by: str) -> Answers:
    """Pause every app host's pooler that answers, without waiting for the transactions in
    flight on the lost primary (they end when their connections give up)."""
    return _on_each(inv, ["pooler", "pause", "--keep-pausing", "--timeout", "1", "--by", by],
                    timeout=15)


def paused(answers: Answers) -> list[str]:
    return [h for h, a in answers.items() if a.get("paused")]


def journal_paused(answers: Answers, journal: Journal) -> None:
    """The poolers-paused step, at the time the first pooler paused (the take-over does
    not wait for the pauses, so their answers may arrive after it)."""
    hosts = paused(answers)
    if hosts:
        stamps = [str(answers[h]["at"]) for h in hosts if answers[h].get("at")]
        journal.write("poolers-paused", host=",".join(hosts),
                      time=min(stamps) if stamps else None)


def resume(inv: inv_mod.Inventory, answers: Answers, by: str, journal: Journal) -> None:
    """Resume the poolers PAUSE reached (answers of pause()), and journal it."""
    hosts = paused(answers)
    if not hosts:
        return
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        done = dict(zip(hosts, pool.map(
            lambda h: sshprobe.node_json(inv, h, ["pooler", "resume", "--by", by],
                                         timeout=15), hosts), strict=True))
    failed = [h for h, a in done.items() if not a.get("ok")]
    journal.write("poolers-resumed", host=",".join(h for h in hosts if h not in failed),
                  result="failed" if failed else "ok",
                  detail=(f"{', '.join(failed)} could not be resumed (its guard resumes it)"
                          if failed else None))
