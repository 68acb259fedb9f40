"""Run one playbook for a command: validate the inventory, take the lock and journal, report
progress through the callbacks given; the result is the caller's to render (drctl.views)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from drctl import inventory as inv_mod
from drctl import vault
from drctl.errors import DrctlError
from drctl.journal import Journal
from drctl.lock import cluster_lock
from drctl.runner import RunResult, run_playbook


def run(playbook: str, inventory: Path, extravars: dict[str, Any] | None = None,
        *, check: bool = False, limit: str | None = None, title: str = "",
        job_timeout: int | None = None, read_only: bool = False, progress: Any = None,
        say: Callable[[str], None] | None = None, accelerate: bool = False) -> RunResult:
    """PROGRESS receives the runner's callbacks (drctl.output.Progress on a terminal); SAY,
    when given, one line naming what runs where."""
    inv = inv_mod.load(inventory)
    if say is not None:
        say(f"[bold]{title or playbook}[/bold] on cluster '{inv.name}' "
            f"({len(inv.hosts)} hosts, inventory {inv.path})" + (" [check mode]" if check else ""))
    kwargs: dict[str, Any] = {}
    if job_timeout:
        kwargs["job_timeout"] = job_timeout
    operation = title or Path(playbook).stem
    # the vault first: a wrong password or path is named as such, before the lock is taken
    # (behind an unreachable ledger host it was reported as a lock failure)
    vault.decrypt(inv.path)
    # a check run and a read-only verb (ping) change nothing: no lock, no journal
    quiet = check or read_only
    guard = nullcontext() if quiet else cluster_lock(inv.name, operation, inv)
    with guard as held:
        journal = None if quiet else Journal(inv.name, operation, held)
        if journal:
            journal.write("start", detail=playbook)
        try:
            result = run_playbook(playbook, inv.path, extravars, check=check, limit=limit,
                                  progress=progress, accelerate=accelerate,
                                  journal=journal.from_playbook if journal else None,
                                  **kwargs)
        except BaseException as exc:
            if journal:  # every start has its end, also when the run could not start
                journal.write("end", result="error", detail=str(exc)[:300])
            raise
        if journal:
            journal.write("end", result=result.status)
    return result


def raise_for(result: RunResult, what: str) -> None:
    code = result.exit_code
    if int(code) == 0:
        return
    lines = result.failure_lines()
    detail = ("\n  " + "\n  ".join(lines)) if lines else ""
    hint = None
    if result.unreachable_hosts:
        hint = ("check that the host is up and answers SSH with the inventory's user and key "
                f"({', '.join(result.unreachable_hosts)})")
    raise DrctlError(f"{what} {result.status}{detail}", code, hint=hint,
                     report=result.as_dict())
