"""What the CLI prints for a plain playbook run (provision, ping): its recap."""

from __future__ import annotations

from typing import Any

from drctl.output import console, emit_json


def is_playbook_result(report: dict[str, Any]) -> bool:
    """A playbook run's result (drctl.runner.RunResult.as_dict), not an operation's report."""
    return "playbook" in report and "stats" in report and "checks" not in report


def render_playbook(result: dict[str, Any], fmt: str) -> None:
    """A playbook run's result: its recap, or the whole result as JSON."""
    if fmt == "json":
        emit_json(result)
        return
    con = console()
    word = {"successful": "[green]succeeded[/green]"}.get(result["status"],
                                                          f"[red]{result['status']}[/red]")
    con.print(f"{result['playbook']} {word} in {result['duration_s']:.1f} s, "
              f"{result['changed']} change{'s' if result['changed'] != 1 else ''}")
    for host, s in sorted(result["stats"].items()):
        con.print(f"  {host:<10} ok={s.get('ok', 0)} changed={s.get('changed', 0)} "
                  f"failed={s.get('failures', 0)} unreachable={s.get('dark', 0)}")
