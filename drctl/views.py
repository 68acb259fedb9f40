"""What drctl's CLI prints for the results operations return (only the CLI prints)."""

from __future__ import annotations

from typing import Any

from drctl.auto_state import describe as auto_describe
from drctl.operations.ha import Plan
from drctl.output import console, emit_json


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
        con = console()
        con.print(table)
        for o in report["operations"]:
            con.print(f"  {o['command']}: exit {o['exit_code']}, {o['duration_s']} s")
        con.print(f"report: {report['html_path']}\n        {report['json_path']}")
        judged = (report.get("data_loss") or {}).get("sentence")
        con.print(f"[green]PASSED[/green]: {judged or 'nothing acknowledged was lost'}"
                  if report["ok"] else f"[red]FAILED[/red]: "
                  f"{report['error'] or judged or 'acknowledged writes lost'}")


def render_status(report: dict[str, Any], fmt: str) -> None:
    """`drctl status`, and the status after an operation."""
    if fmt == "json":
        emit_json(report)
        return
    from rich.table import Table

    con = console()
    sites = report.get("sites") or {}
    many = len(sites) > 1
    vips = ("  VIPs " + ", ".join(f"{k} {v['vip']}" for k, v in sites.items())) if many \
        else f"  VIP {report['vip']}"
    table = Table(title=f"cluster {report['cluster']}{vips}", title_justify="left")
    for col in (("node",) + (("site",) if many else ()) + (
            "role", "TL", "LSN", "lag", "stream", "TLS", "slots", "keepalived", "VIP")):
        table.add_column(col)
    by_address = {n["address"]: n["host"] for n in report["nodes"]}
    for n in report["nodes"]:
        colour = {"primary": "green", "standby": "cyan"}.get(n["role"], "red")
        lag = "" if n["lag_bytes"] is None else f"{n['lag_bytes']} B / {n['lag_s']} s"
        stream = "" if n["streaming"] is None else ("yes" if n["streaming"] else "[red]no[/red]")
        if n["streaming"] and many:
            stream += f" from {by_address.get(n['upstream'], n['upstream'])}"
        tls = "" if n["replication_ssl"] is None else ("yes" if n["replication_ssl"] else "no")
        slots = ", ".join(f"{s['slot_name']}{'*' if s['active'] else ''}" for s in n["slots"])
        keep = f"{n['keepalived'] or '?'} {n['vrrp_state'] or ''}".strip()
        table.add_row(n["host"], *((n["site"],) if many else ()),
                      f"[{colour}]{n['role']}{' FENCED' if n['fenced'] else ''}"
                      f"{' HELD' if n.get('start_held') else ''}"
                      f"[/{colour}]", str(n["timeline"] or ""), n["lsn"] or "", lag, stream, tls,
                      slots, keep, "[bold]VIP[/bold]" if n["vip"] else "")
    con.print(table)
    b = report.get("backup")
    if b:
        arch = b.get("archiving") or {}
        last = (f"last backup {b['last_backup']} ({b['age_s'] // 60} min ago)"
                if b.get("last_backup") else "no backup yet")
        arch_text = ("archiving ok" if arch.get("ok") else "[red]archiving FAILING[/red]"
                     ) if arch else "archiving unknown (no primary)"
        if arch.get("last_archived_wal"):
            arch_text += f", last {arch['last_archived_wal']}"
        if arch.get("ready_segments"):
            arch_text += f", {arch['ready_segments']} waiting"
        con.print(f"backups on {b['repo_host']}: {last}; {arch_text}")
        for r in (b.get("repos") or [])[1:]:
            con.print(f"  repo{r['repo']} on {r['host']}: " + (
                (f"last backup {r['last_backup']} ({r['age_s'] // 60} min ago)"
                 if r["last_backup"] else "no backup yet")
                + f", WAL up to {r['last_segment'] or 'none'}"
                + (" [yellow](behind)[/yellow]" if r["behind"] else "")
                if r["reachable"] else f"[red]does not answer[/red] ({r['error']})"))
    copies = [f for f in report.get("files") or [] if f.get("files") is not None]
    if copies:
        con.print("application files: " + "; ".join(
            f"{f['host']} " + (f"sends ({f['files']} files, last sent {f['age_s']:.0f} s ago)"
                               if f["sender"] and f["age_s"] is not None else
                               f"copy {f['age_s']:.0f} s old" if f["age_s"] is not None
                               else "no copy yet") for f in copies))
    poolers = report.get("poolers") or []
    if poolers:
        con.print("poolers: " + "; ".join(
            f"{p['host']} " + ("[green]running[/green]" if p["state"] == "running" else
                               f"[yellow]paused {p['paused_s']} s[/yellow]"
                               if p["state"] == "paused" else f"[red]{p['state']}[/red]")
            for p in poolers))
    svc = report.get("service") or {}
    if svc.get("managed"):
        where = svc.get("address") or "nowhere"
        con.print(f"service name {svc['name']}: points to {where}"
                  + (f" (site {svc['site']})" if svc.get("site") else "")
                  + (f", TTL {svc['ttl']} s" if svc.get("ttl") is not None else "")
                  + f", asked {svc['dns_server']}" if svc.get("dns_server") else "")
    elif report.get("service") is not None:
        con.print("[dim]service name: not managed (no drctl_dns_name)[/dim]")
    for v in report.get("app_vips") or []:
        holders = ", ".join(v["holders"]) or "nobody"
        colour = "green" if v["ok"] else "red"
        con.print(f"application VIP of {v['site']} {v['address']}: "
                  f"[{colour}]on {holders}[/{colour}]")
    a = report.get("auto")
    if a and a["state"] != "impossible":  # impossible is listed with the warnings
        colour = {"armed": "green", "paused": "yellow"}.get(a["state"], "dim")
        con.print(f"[{colour}]{auto_describe(a)}[/{colour}]")
    for w in report.get("warnings", []):
        con.print(f"[yellow]warning[/yellow]: {w}")
    if report["healthy"]:
        con.print(f"[green]healthy[/green]: primary {report['primary']}, VIP on "
                  f"{', '.join(report['vip_holders'])} ({report['duration_s']} s)")
    else:
        con.print(f"[red]UNHEALTHY[/red] ({len(report['problems'])} problems):")
        for p in report["problems"]:
            con.print(f"  - {p}")


def render_auto_change(out: dict[str, Any], fmt: str) -> None:
    """`drctl auto enable|disable|pause|resume`."""
    if fmt == "json":
        emit_json(out)
        return
    console().print(f"auto {out['action']} {out['result']} in {out['duration_s']} s; "
                    + auto_describe(out["auto"]))


def render_auto_status(out: dict[str, Any], fmt: str) -> None:
    """`drctl auto status`."""
    if fmt == "json":
        emit_json(out)
        return
    con = console()
    colour = {"armed": "green", "paused": "yellow", "impossible": "red"}.get(out["state"], "dim")
    con.print(f"automatic failover on cluster '{out['cluster']}': "
              f"[{colour}]{out['state']}[/{colour}]")
    if out.get("eligible"):
        con.print(f"  would promote: {', '.join(out['eligible'])}")
    for r in out["reasons"]:
        con.print(f"  - {r}")
    for host, n in out["nodes"].items():
        lag = n.get("lag_sample") or {}
        con.print(f"  {host:<10} repmgrd {n['repmgrd']}, location {n['location']}, "
                  f"witness {'visible' if n['witness_visible'] else 'NOT visible'}"
                  + (f", lag {lag['lag_bytes']} B ({lag['age_s']} s ago)" if lag else ""))
    lr = out.get("last_refusal")
    if lr:
        con.print(f"  last refused promotion: {lr['host']} at {lr['at']}: {lr.get('detail')}")
    lp = out.get("last_promotion")
    if lp:
        con.print(f"  last automatic promotion: {lp['host']} at {lp['at']} "
                  f"(timeline {lp.get('timeline')})")



# ---------------------------------------------------------------- backups

def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1048576:.1f} MiB"


def render_backup(report: dict[str, Any], fmt: str) -> None:
    """`drctl backup`."""
    if fmt == "json":
        emit_json(report)
        return
    b = report.get("backup", {})
    con = console()
    con.print(f"[green]backup {b.get('label')}[/green] in repo{report['repo']} "
              f"({report['repo_host']}): {b.get('type')} from the "
              f"{report.get('source')}, {_mib(b.get('size_bytes'))} of data, "
              f"{_mib(b.get('repo_bytes'))} stored, {b.get('duration_s')} s "
              f"({report.get('elapsed_s')} s with the start checkpoint)")
    con.print(f"  WAL {b.get('wal_start')} .. {b.get('wal_stop')}  "
              f"(LSN {b.get('lsn_start')} .. {b.get('lsn_stop')})")
    if report.get("note"):
        con.print(f"  [yellow]note[/yellow]: {report['note']}")
    w = report.get("window") or {}
    con.print(f"  recoverable window: {w.get('earliest')} .. {w.get('latest')}")


def render_backups(data: dict[str, Any], fmt: str) -> None:
    """`drctl backups`."""
    if fmt == "json":
        emit_json(data)
        return
    from rich.table import Table

    con = console()
    where = f"repo{data['repo']} on {data['repo_host']}"
    if not data["exists"]:
        con.print(f"stanza '{data['stanza']}' does not exist in {where} (run `drctl provision`)")
        return
    table = Table(title=f"backups of '{data['stanza']}' in {where}", title_justify="left")
    for col in ("label", "type", "started", "took", "size", "stored", "WAL range"):
        table.add_column(col)
    for b in data["backups"]:
        table.add_row(b["label"], b["type"], b["start"], f"{b['duration_s']} s",
                      _mib(b["size_bytes"]), _mib(b["repo_bytes"]),
                      f"{b['wal_start']} .. {b['wal_stop']}")
    con.print(table)
    w = data["window"]
    if w["earliest"]:
        con.print(f"recoverable window: {w['earliest']} .. {w['latest']} "
                  f"(latest archived WAL {data['archive']['last_segment']} arrived "
                  f"{data['archive']['last_arrived']})")
    else:
        con.print("no backup yet: nothing can be restored (run `drctl backup`)")
    for r in data["repos"]:
        if r["repo"] != data["repo"]:
            con.print(f"repo{r['repo']} on {r['repo_host']}: {r['text']} "
                      f"(drctl backups --repo {r['repo']})")


def render_restore(report: dict[str, Any], fmt: str) -> None:
    """`drctl restore` (and its --drop)."""
    if fmt == "json":
        emit_json(report)
        return
    con = console()
    to = report["host"]
    if report.get("dropped_only"):
        con.print(f"scratch instance '{report.get('name')}' on {to}: "
                  + ("removed" if report.get("dropped") else "there was none"))
        return
    con.print(f"[green]restored[/green] from repo{report['repo']} into scratch instance "
              f"'{report['name']}' on {to} "
              f"(timeline {report['timeline']}, LSN {report['lsn']}): restore "
              f"{report['restore_s']} s, ready after {report['ready_s']} s")
    con.print(f"  databases: {', '.join(report.get('databases') or [])}")
    con.print(f"  connect on {to}: {report['connect']}")
    con.print(f"  remove it: drctl restore --to {to} --name {report['name']} --drop")


def render_verify(report: dict[str, Any], fmt: str) -> None:
    """`drctl verify-backup`, passed or failed."""
    if fmt == "json":
        emit_json(report)
        return
    con = console()
    for c in report.get("checks", []):
        mark = "[green]ok[/green]" if c["ok"] else "[red]FAILED[/red]"
        con.print(f"  {mark}  {c['check']}" + (f" ({c['tables']} tables)"
                                               if "tables" in c else ""))
    for db, counts in (report.get("row_counts") or {}).items():
        shown = ", ".join(f"{t}={n}" for t, n in list(counts.items())[:8])
        con.print(f"  rows in {db}: {shown or 'no tables'}")
    if report.get("ok"):
        con.print(f"[green]backup {report.get('backup')} of repo{report['repo']} "
                  f"({report['repo_host']}) verified[/green]: restored in "
                  f"{report.get('restore_s')} s, ready in {report.get('ready_s')} s, "
                  f"{report.get('elapsed_s')} s in all; scratch instance removed")


# ---------------------------------------------------------------- playbook runs

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

