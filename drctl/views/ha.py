"""What the CLI prints for the HA verbs: the plan before consent, the result, the
service's name, a drill's report."""

from __future__ import annotations

from typing import Any

from drctl.operations.ha import Plan
from drctl.output import console, emit_json
from drctl.views.status import render_status


def show_plan(plan: Plan, fmt: str) -> None:
    if fmt == "json":
        emit_json(plan.as_dict())
        return
    con = console()
    con.print(f"[bold]{plan.operation}[/bold] plan for cluster '{plan.cluster}'"
              + (f" -> {plan.target}" if plan.target else ""))
    con.print("gates:")
    for g in plan.gates:
        mark = "[green]pass[/green]" if g.ok else "[red]FAIL[/red]"
        con.print(f"  {mark}  {g.name}: {g.detail}")
    if plan.nothing_to_do:
        con.print(f"nothing to do: {plan.nothing_to_do}")
    con.print("steps:")
    for i, step in enumerate(plan.steps, 1):
        con.print(f"  {i}. {step}")
    for n in plan.notes:
        con.print(f"note: {n}")


def render_result(report: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        emit_json(report)
        return
    if report.get("result") == "refused":
        return  # the error names every failed gate; nothing ran, so no status to show
    if report.get("failbacks") is not None:  # failback --site: each node's, the switch
        for part in [*report["failbacks"], report.get("switchover")]:
            if part:
                render_result(part, fmt)
        return
    if "failback" in report and report.get("operation") == "failback":
        for part in ("failback", "switchover"):  # failback --switch-back: both reports
            if report.get(part):
                render_result(report[part], fmt)
        return
    render_status(report["status"], "pretty")
    con = console()
    if report.get("result") == "nothing-to-do":
        con.print(f"{report['operation']}: nothing to do ({report['detail']})")
        return
    for e in report.get("journal") or []:
        if e.get("step") != "diverged" or not e.get("sentence"):
            continue
        colour = ("red" if e.get("action") == "refuse" or "discarded" in e["sentence"]
                  else "yellow" if e.get("action") == "keep" else "green")
        where = f"; copy at {e['set_aside']}" if e.get("set_aside") else ""
        con.print(f"[{colour}]diverged data[/{colour}]: {e['sentence']}{where}")
    loss = report.get("data_loss") or {}
    if loss.get("accepted"):
        con.print(f"[red]data loss accepted[/red]: {loss['sentence']}")
    elif loss.get("sentence"):
        con.print(f"data: {loss['sentence']}")
    name = report.get("service_name") or {}
    if name.get("moved"):
        con.print(f"service name {name['name']} now points to {name['address']} "
                  f"(site {name['site']})")
    outage = report.get("write_outage_s")
    con.print(f"{report['operation']} {report['result']} in {report['duration_s']} s"
              + (f"; write outage as drctl observed it: {outage} s" if outage is not None
                 else ""))


def render_name(report: dict[str, Any], fmt: str) -> None:
    """`drctl dns publish`."""
    if fmt == "json":
        emit_json(report)
        return
    name = report["service_name"]
    if name.get("moved"):
        console().print(f"service name {name['name']} now points to {name['address']} "
                        f"(site {name['site']}; it pointed to "
                        f"{', '.join(name.get('from') or []) or 'nothing'})")
    else:
        console().print(f"service name {name['name']} already points to {name['address']} "
                        f"(site {name['site']}): nothing to do")


def render_drill(report: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        emit_json(report)
    else:
        from rich.table import Table

        from drctl.drill_html import pooled_line

        sql, app = report["sql"], report["app"]
        stated = (report.get("data_loss") or {}).get("stated") or {}
        table = Table(title=f"drill {report['scenario']} on '{report.get('cluster', '')}'",
                      title_justify="left")
        table.add_column("measure")
        table.add_column("value")
        for k, v in [
            ("write outage (longest gap between acknowledged writes)",
             f"{sql['write_outage_s']} s"),
            ("acknowledged writes lost (RPO)", str(sql["lost"])
             + (f" (the newest {report['rpo_s']} s before the cut)" if report.get("rpo_s")
                else "")),
            ("stated at consent", f"{stated.get('verdict')}: {stated.get('sentence')}"
             if stated else "no verdict"),
            ("acknowledged writes / failed attempts",
             f"{sql['acknowledged']} / {sql['errors']}"),
            ("through the pooler: acknowledged / failed attempts / longest wait",
             pooled_line(report.get("pooled"))),
            ("app requests / failed", f"{app['requests']} / {app['failed']}"),
            ("app error window", f"{app['error_window_s']} s"),
            ("returning users' logins during the write outage (in / tried)",
             "{succeeded} / {attempted}".format(**app.get("logins_during_outage")
                                                 or {"succeeded": 0, "attempted": 0})),
            ("users registered / missing after", f"{app['registered']} / "
                                                 f"{len(app['registrations_missing'])}"),
            ("primary before -> after", f"{report['topology_before']['primary']} -> "
                                        f"{report['topology_after']['primary']}"),
            ("total", f"{report['duration_s']} s"),
        ]:
            table.add_row(k, v)
        from drctl.drill_html import drill_site_line

        for name, site in (report.get("sites") or {}).items():
            if len(report["sites"]) > 1:
                table.add_row(f"site {name}", drill_site_line(site))
        if report.get("rebuild"):
            from drctl.drill_html import rebuild_line

            table.add_row("rebuilt at the cloud location", str(rebuild_line(report["rebuild"])))
        con = console()
        con.print(table)
        for o in report["operations"]:
            con.print(f"  {o['command']}: exit {o['exit_code']}, {o['duration_s']} s")
        con.print(f"report: {report['html_path']}\n        {report['json_path']}")
        judged = (report.get("data_loss") or {}).get("sentence")
        con.print(f"[green]PASSED[/green]: {judged or 'nothing acknowledged was lost'}"
                  if report["ok"] else f"[red]FAILED[/red]: "
                  f"{report['error'] or judged or 'acknowledged writes lost'}")


def render_rebuild(report: dict[str, Any], fmt: str) -> None:
    """`drctl rebuild`: where the cluster now runs, its recovery point and time."""
    if fmt == "json":
        emit_json(report)
        return
    if report.get("result") == "refused":
        return  # the error names every failed gate
    con = console()
    rebuilt = report.get("rebuilt") or {}
    rpo = report.get("rpo") or {}
    loss = report.get("data_loss") or {}
    if loss.get("sentence"):
        con.print(f"[red]data loss accepted[/red]: {loss['sentence']}")
    if report.get("result") != "ok":
        con.print(f"[red]rebuild on {report.get('target')} failed[/red] after "
                  f"{report.get('rto_s')} s: no primary was made there (why: below)")
        return
    con.print(f"rebuilt cluster on {rebuilt.get('host', report.get('target'))} "
              f"({rebuilt.get('address', '?')}) from repo{rebuilt.get('repo', '?')}: primary "
              f"on timeline {rebuilt.get('timeline', '?')}, LSN {rebuilt.get('lsn', '?')}")
    behind = rpo.get("behind_last_seen_s")
    con.print(f"recovery point: the last commit replayed was at "
              f"{rpo.get('last_replayed_commit') or 'none (no transaction in the WAL replayed)'}"
              + (f", {behind} s before the newest write a watcher saw" if behind is not None
                 else "; no watcher said when the primary last wrote"))
    con.print(f"recovery time: {report.get('rto_s')} s from the answer to a primary that "
              "takes writes")
    for note in report.get("notes") or []:
        con.print(f"  note: {note}")
