"""What `drctl status` prints."""

from __future__ import annotations

from typing import Any

from drctl.auto_state import describe as auto_describe
from drctl.output import console, emit_json
from drctl.rules import repos as repos_rule


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
        check = n.get("vip_check") or {}
        if check.get("eligible") is False and n["role"] == "primary":
            keep += f" [red](check: {check.get('reason')})[/red]"
        table.add_row(n["host"], *((n["site"],) if many else ()),
                      f"[{colour}]{n['role']}{' FENCED' if n['fenced'] else ''}"
                      f"{' HELD' if n.get('start_held') else ''}"
                      f"[/{colour}]", str(n["timeline"] or ""), n["lsn"] or "", lag, stream, tls,
                      slots, keep, "[bold]VIP[/bold]" if n["vip"] else "")
    con.print(table)
    cloud = report.get("cloud") or []
    if cloud:
        con.print("cloud location: " + "; ".join(
            f"{c['host']} " + (
                f"[red]does not answer[/red] ({c['error'] or 'no state'})" if not c["reachable"]
                else "[dim]standing by (nothing runs: `drctl rebuild` builds the cluster "
                     "here)[/dim]" if not c["running"]
                else f"[green]{c['role']}[/green] on timeline {c['timeline']} at {c['lsn']} "
                     "(rebuilt from the object store)") for c in cloud))
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
            where = repos_rule.label(repos_rule.Repo(
                r["repo"], r.get("type", "posix"), r["host"], r.get("name", r["host"])))
            con.print(f"  {where}: " + (
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
