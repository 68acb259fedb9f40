"""drctl backup / backups / restore / verify-backup: pgBackRest on the repository hosts.

Each host of the `backup` group holds one repository: the first repo1, the second repo2
(e.g. one per site). Every node archives WAL to all of them; `--repo N` backs up into,
lists, verifies or restores from repository N, on its own host.

Changes go through playbooks (backup.yml, restore.yml, verify_backup.yml) so that they run
from AWX too; the read-only listing asks the repository host's drctl-backup over SSH,
like `drctl status`. Every refusal happens before anything is changed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drctl import inventory as inv_mod
from drctl import sshprobe
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.operations import playbook

TOOL = "/usr/local/libexec/drctl/drctl-backup"


def repo_hosts(inv: inv_mod.Inventory) -> list[str]:
    """The repository hosts in repository order: the first host of `backup` holds repo1,
    the second repo2 (the pgbackrest role's pgbackrest_repos)."""
    hosts = [h.name for h in inv.group("backup")]
    if not hosts:
        raise DrctlError(f"the inventory {inv.path} has no `backup` group: backups need a "
                         "pgBackRest repository host", ExitCode.INVALID_INVENTORY,
                         hint="add a host to the `backup` group and run `drctl provision`")
    return hosts


def repo_host(inv: inv_mod.Inventory, repo: int = 1) -> str:
    """The host that holds repository REPO (1-based)."""
    hosts = repo_hosts(inv)
    if not 1 <= repo <= len(hosts):
        raise DrctlError(f"there is no repo{repo}: the inventory has {len(hosts)} repository "
                         f"host{'s' if len(hosts) > 1 else ''} ("
                         + ", ".join(f"repo{i} on {h}" for i, h in enumerate(hosts, 1)) + ")",
                         ExitCode.USAGE)
    return hosts[repo - 1]


def repo_of(inv: inv_mod.Inventory, host: str) -> int:
    """The repository a repository host holds (0: HOST is not one)."""
    hosts = repo_hosts(inv)
    return hosts.index(host) + 1 if host in hosts else 0


def repo_info(inv: inv_mod.Inventory, repo: int = 1) -> dict[str, Any]:
    host = repo_host(inv, repo)
    rc, out, err = sshprobe.run(inv, host, [TOOL, "info"], timeout=30)
    if rc == 255:
        raise DrctlError(f"the repository host {host} (repo{repo}) does not answer: "
                         f"{err.strip()}", ExitCode.UNREACHABLE)
    if rc != 0:
        raise DrctlError(f"cannot read repo{repo} on {host}: {err.strip() or out.strip()}",
                         ExitCode.FAILED,
                         hint="was the cluster provisioned with the backup host?")
    data = json.loads(out)
    data["repo_host"] = host
    data["repo"] = repo
    return data


def all_repo_info(inv: inv_mod.Inventory) -> list[dict[str, Any]]:
    """Every repository's listing, asked at once; one that does not answer is listed with
    its error (a cut WAN link leaves the other site's repository unread, not the rest)."""
    hosts = repo_hosts(inv)
    results = sshprobe.probe_all(inv, hosts, {h: [TOOL, "info"] for h in hosts})
    out: list[dict[str, Any]] = []
    for i, host in enumerate(hosts, 1):
        res = results[host]
        if res.ok and isinstance(res.data, dict):
            out.append({**res.data, "repo_host": host, "repo": i, "reachable": True})
        else:
            out.append({"repo_host": host, "repo": i, "reachable": False,
                        "error": res.error or "no answer", "exists": False, "backups": []})
    return out


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1048576:.1f} MiB"


def backup(inventory: Path, fmt: str, kind: str, source: str, repo: int = 1
           ) -> dict[str, Any]:
    inv = inv_mod.load(inventory)
    host = repo_host(inv, repo)
    result = playbook.run("backup.yml", inventory, fmt,
                          {"backup_type": kind, "backup_source": source, "backup_repo": repo},
                          title=f"backup ({kind}) into repo{repo} on {host}", render=False)
    if result.exit_code != ExitCode.OK:
        if fmt == "json":
            playbook.show(result, fmt)
        playbook.raise_for(result, "backup")
    report = {**(result.data.get("backup") or {}), "repo": repo, "repo_host": host}
    if fmt == "json":
        from drctl.output import emit_json

        emit_json(report)
        return report
    from drctl.output import console

    b = report.get("backup", {})
    con = console()
    con.print(f"[green]backup {b.get('label')}[/green] in repo{repo} ({host}): "
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
    return report


def backups(inventory: Path, fmt: str, repo: int | None = None) -> dict[str, Any]:
    """The backups of repository REPO (default: the first), and every repository's summary
    in `repos` (all of them are asked at once)."""
    inv = inv_mod.load(inventory)
    if repo is not None:
        repo_host(inv, repo)
    every = all_repo_info(inv)
    chosen = every[(repo or 1) - 1]
    if not chosen["reachable"]:
        raise DrctlError(f"the repository host {chosen['repo_host']} (repo{chosen['repo']}) "
                         f"does not answer: {chosen['error']}", ExitCode.UNREACHABLE,
                         hint=None if len(every) == 1 else
                         "another repository: --repo " + ", --repo ".join(
                             str(r["repo"]) for r in every if r is not chosen))
    data = {**chosen, "repos": [_summary(r) for r in every]}
    if fmt == "json":
        from drctl.output import emit_json

        emit_json(data)
        return data
    from rich.table import Table

    from drctl.output import console

    con = console()
    where = f"repo{data['repo']} on {data['repo_host']}"
    if not data["exists"]:
        con.print(f"stanza '{data['stanza']}' does not exist in {where} (run `drctl provision`)")
        return data
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
    return data


def _summary(r: dict[str, Any]) -> dict[str, Any]:
    """One repository in a line: how many backups, the last, the newest archived WAL."""
    if not r.get("reachable"):
        return {"repo": r["repo"], "repo_host": r["repo_host"], "reachable": False,
                "error": r.get("error"), "text": f"does not answer ({r.get('error')})"}
    good = [b for b in r.get("backups", []) if not b.get("error")]
    arch = r.get("archive") or {}
    out = {"repo": r["repo"], "repo_host": r["repo_host"], "reachable": True,
           "backups": len(good), "last_backup": good[-1]["label"] if good else None,
           "window": {k: v for k, v in (r.get("window") or {}).items()
                      if not k.endswith("_epoch")},
           "last_segment": arch.get("last_segment"), "last_arrived": arch.get("last_arrived")}
    out["text"] = (f"{len(good)} backup{'s' if len(good) != 1 else ''}"
                   + (f", the last {out['last_backup']}" if good else "")
                   + (f"; latest archived WAL {out['last_segment']} arrived "
                      f"{out['last_arrived']}" if out["last_segment"] else "; no WAL archived"))
    return out


def parse_time(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DrctlError(f"cannot read '{text}' as a time", ExitCode.USAGE,
                         hint="use ISO 8601, e.g. 2026-11-26T13:05:00Z (no zone means UTC)"
                         ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def check_restore(inv: inv_mod.Inventory, to: str, target_time: str | None,
                  info: dict[str, Any]) -> None:
    """Refusals that need no change: the target host, the stanza, the window."""
    if to not in inv.hosts:
        raise DrctlError(f"{to} is not in the inventory {inv.path}", ExitCode.USAGE)
    if to in {h.name for h in inv.pg_hosts}:
        raise DrctlError(f"{to} is a cluster member: drctl never restores over a primary or "
                         "standby", ExitCode.REFUSED,
                         hint=f"restore into a scratch instance: --to {repo_host(inv)}; a "
                              "member that lost its data rejoins with `drctl failback "
                              "--reclone` or `drctl provision`")
    if to not in {h.name for h in inv.group("backup")}:
        raise DrctlError(f"{to} is not a repository host (group `backup`): scratch restores "
                         "run where the repository is", ExitCode.REFUSED)
    if not info["exists"]:
        raise DrctlError(f"stanza '{info['stanza']}' does not exist in the repository",
                         ExitCode.REFUSED, hint="run `drctl provision` with the backup host")
    w = info["window"]
    if not w["earliest_epoch"]:
        raise DrctlError("the repository holds no backup yet: nothing can be restored",
                         ExitCode.REFUSED, hint="run `drctl backup --type full`")
    if target_time:
        t = parse_time(target_time).timestamp()
        if not (w["earliest_epoch"] <= t <= w["latest_epoch"]):
            raise DrctlError(f"target time {target_time} is outside the recoverable window "
                             f"{w['earliest']} .. {w['latest']}", ExitCode.REFUSED,
                             hint="choose a time inside the window (`drctl backups` shows it)")


def restore(inventory: Path, fmt: str, *, to: str | None, target_time: str | None,
            target_lsn: str | None, latest: bool, name: str, replace: bool,
            drop: bool, repo: int | None = None) -> dict[str, Any]:
    inv = inv_mod.load(inventory)
    if repo is not None and to is not None and to != repo_host(inv, repo):
        raise DrctlError(f"repo{repo} is on {repo_host(inv, repo)}, not {to}: a scratch "
                         "restore runs on the host of the repository it restores from",
                         ExitCode.USAGE, hint="give --repo or --to, not both")
    to = to or repo_host(inv, repo or 1)
    extravars: dict[str, Any] = {"restore_to": to, "restore_name": name}
    if drop:
        extravars["restore_drop"] = True
    else:
        chosen = [x for x in (target_time, target_lsn, latest) if x]
        if len(chosen) != 1:
            raise DrctlError("give exactly one of --target-time, --target-lsn, --latest",
                             ExitCode.USAGE)
        n = repo_of(inv, to)
        info = repo_info(inv, n) if n else {}  # not a repository host: refused below
        check_restore(inv, to, target_time, info)
        if target_time:
            extravars["restore_target_time"] = parse_time(target_time).isoformat()
        if target_lsn:
            extravars["restore_target_lsn"] = target_lsn
        if latest:
            extravars["restore_latest"] = True
        if replace:
            extravars["restore_replace"] = True
    result = playbook.run("restore.yml", inventory, fmt, extravars,
                          title="restore" if not drop else "drop scratch instance",
                          render=False)
    if result.exit_code != ExitCode.OK:
        if fmt == "json":
            playbook.show(result, fmt)
        playbook.raise_for(result, "restore")
    report = result.data.get("restore") or {}
    report["host"] = to
    report["repo"] = repo_of(inv, to)
    if fmt == "json":
        from drctl.output import emit_json

        emit_json(report)
        return report
    from drctl.output import console

    con = console()
    if drop:
        con.print(f"scratch instance '{name}' on {to}: "
                  + ("removed" if report.get("dropped") else "there was none"))
        return report
    con.print(f"[green]restored[/green] from repo{report['repo']} into scratch instance "
              f"'{report['name']}' on {to} "
              f"(timeline {report['timeline']}, LSN {report['lsn']}): restore "
              f"{report['restore_s']} s, ready after {report['ready_s']} s")
    con.print(f"  databases: {', '.join(report.get('databases') or [])}")
    con.print(f"  connect on {to}: {report['connect']}")
    con.print(f"  remove it: drctl restore --to {to} --name {report['name']} --drop")
    return report


def verify(inventory: Path, fmt: str, *, sql: str, database: str, repo: int = 1
           ) -> dict[str, Any]:
    inv = inv_mod.load(inventory)
    host = repo_host(inv, repo)
    result = playbook.run("verify_backup.yml", inventory, fmt,
                          {"verify_sql": sql, "verify_database": database, "backup_repo": repo},
                          title=f"verify-backup of repo{repo} on {host}", render=False)
    report = {**(result.data.get("verify") or {}), "repo": repo, "repo_host": host}
    if fmt == "json":
        from drctl.output import emit_json

        emit_json({**report, "exit_code": int(result.exit_code)})
    else:
        from drctl.output import console

        con = console()
        for c in report.get("checks", []):
            mark = "[green]ok[/green]" if c["ok"] else "[red]FAILED[/red]"
            con.print(f"  {mark}  {c['check']}" + (f" ({c['tables']} tables)"
                                                   if "tables" in c else ""))
        for db, counts in (report.get("row_counts") or {}).items():
            shown = ", ".join(f"{t}={n}" for t, n in list(counts.items())[:8])
            con.print(f"  rows in {db}: {shown or 'no tables'}")
        if report.get("ok"):
            con.print(f"[green]backup {report.get('backup')} of repo{repo} ({host}) "
                      "verified[/green]: restored in "
                      f"{report.get('restore_s')} s, ready in {report.get('ready_s')} s, "
                      f"{report.get('elapsed_s')} s in all; scratch instance removed")
    if result.exit_code != ExitCode.OK or not report.get("ok"):
        detail = report.get("error") or "; ".join(f.message for f in result.failures)
        raise DrctlError(f"verify-backup FAILED: {detail}",
                         result.exit_code if result.exit_code != ExitCode.OK
                         else ExitCode.FAILED)
    return report
