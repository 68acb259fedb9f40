"""drctl drill: confirmation, the drill itself (drctl.drill), the summary."""

from __future__ import annotations

from pathlib import Path

from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.operations.ha import confirm


def drill(inventory: Path, fmt: str, *, scenario: str, duration: float, rate: float,
          app_rate: float, out_dir: Path | None, yes: bool) -> None:
    from drctl import drill as drill_mod
    from drctl import inventory as inv_mod
    from drctl.output import console, emit_json

    inv = inv_mod.load(inventory)
    what = {"switchover": "switch the primary over to the standby",
            "failover": "POWER OFF the primary and fail over to the standby",
            "failback-cycle": "POWER OFF the primary, fail over, then fail back and switch "
                              "back",
            "auto-failover": "POWER OFF the primary and let automatic failover promote the "
                             "standby, then fail back and switch back"}[scenario]
    confirm(yes, f"Drill on cluster '{inv.name}': {what}, under a write load?")
    err = console(stderr=True)
    say = (lambda m: err.print(f"[dim]drill:[/dim] {m}")) if fmt != "json" else (lambda m: None)
    report = drill_mod.run(inv.path, scenario=scenario, duration=duration, rate=rate,
                           app_rate=app_rate, out_dir=out_dir, say=say)
    if fmt == "json":
        emit_json(report)
    else:
        from rich.table import Table

        sql, app = report["sql"], report["app"]
        table = Table(title=f"drill {scenario} on '{inv.name}'", title_justify="left")
        table.add_column("measure")
        table.add_column("value")
        for k, v in [
            ("write outage (longest gap between acknowledged writes)",
             f"{sql['write_outage_s']} s"),
            ("acknowledged writes lost (RPO)", str(sql["lost"])),
            ("acknowledged writes / failed attempts",
             f"{sql['acknowledged']} / {sql['errors']}"),
            ("app requests / failed", f"{app['requests']} / {app['failed']}"),
            ("app error window", f"{app['error_window_s']} s"),
            ("users registered / missing after", f"{app['registered']} / "
                                                 f"{len(app['registrations_missing'])}"),
            ("primary before -> after", f"{report['topology_before']['primary']} -> "
                                        f"{report['topology_after']['primary']}"),
            ("total", f"{report['duration_s']} s"),
        ]:
            table.add_row(k, v)
        con = console()
        con.print(table)
        for o in report["operations"]:
            con.print(f"  {o['command']}: exit {o['exit_code']}, {o['duration_s']} s")
        con.print(f"report: {report['html_path']}\n        {report['json_path']}")
        con.print("[green]PASSED[/green]" if report["ok"] else
                  f"[red]FAILED[/red]: {report['error'] or 'acknowledged writes lost'}")
    if not report["ok"]:
        raise DrctlError(f"drill {scenario} failed: "
                         f"{report['error'] or str(report['sql']['lost']) + ' writes lost'}",
                         ExitCode.FAILED, hint=f"see {report['html_path']}")
