"""What the backup verbs print: a backup, the repositories' backups, a restore, a verification."""

from __future__ import annotations

from typing import Any

from drctl.output import console, emit_json


def repo_phrase(r: dict[str, Any]) -> str:
    """repo2 on backup2; repo3 (object store cloud, through backup1)."""
    if r.get("type", "posix") == "posix":
        return f"repo{r['repo']} on {r['repo_host']}"
    return f"repo{r['repo']} (object store {r.get('name')}, through {r['repo_host']})"


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1048576:.1f} MiB"


def render_backup(report: dict[str, Any], fmt: str) -> None:
    """`drctl backup`."""
    if fmt == "json":
        emit_json(report)
        return
    b = report.get("backup", {})
    con = console()
    con.print(f"[green]backup {b.get('label')}[/green] in {repo_phrase(report)}: "
              f"{b.get('type')} from the "
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
    where = repo_phrase(data)
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
            con.print(f"{repo_phrase(r)}: {r['text']} "
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
        con.print(f"[green]backup {report.get('backup')} of {repo_phrase(report)} "
                  f"verified[/green]: restored in "
                  f"{report.get('restore_s')} s, ready in {report.get('ready_s')} s, "
                  f"{report.get('elapsed_s')} s in all; scratch instance removed")
