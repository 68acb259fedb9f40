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
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drctl import inventory as inv_mod
from drctl import sshprobe
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.operations import playbook
from drctl.rules import repos as repos_rule

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


def repositories(inv: inv_mod.Inventory) -> list[repos_rule.Repo]:
    """Every repository, numbered as pgBackRest numbers them: the repository hosts', then
    the object stores' (pgbackrest_s3_repos), each with the host that backs up into it."""
    repo_hosts(inv)  # none at all: say so
    return list(inv.repositories())


def repository(inv: inv_mod.Inventory, repo: int = 1) -> repos_rule.Repo:
    """Repository REPO (1-based), or a usage error naming the ones there are."""
    try:
        return repos_rule.by_number(repositories(inv), repo)
    except repos_rule.RepoError as exc:
        raise DrctlError(str(exc), ExitCode.USAGE) from None


def repo_host(inv: inv_mod.Inventory, repo: int = 1) -> str:
    """The host that holds repository REPO, or backs up into it (an object store)."""
    return repository(inv, repo).host


def repo_of(inv: inv_mod.Inventory, host: str) -> int:
    """The repository a repository host holds (0: HOST is not one)."""
    hosts = repo_hosts(inv)
    return hosts.index(host) + 1 if host in hosts else 0


def repo_info(inv: inv_mod.Inventory, repo: int = 1) -> dict[str, Any]:
    r = repository(inv, repo)
    host = r.host
    rc, out, err = sshprobe.run(inv, host, repos_rule.info_command(r, TOOL), timeout=60)
    if rc == 255:
        raise DrctlError(f"the repository host {host} (repo{repo}) does not answer: "
                         f"{err.strip()}", ExitCode.UNREACHABLE)
    if rc != 0:
        raise DrctlError(f"cannot read repo{repo} ({r.type}, {r.name}) through {host}: "
                         f"{err.strip() or out.strip()}", ExitCode.FAILED,
                         hint="was the cluster provisioned with the backup host?")
    data = json.loads(out)
    data.update(repo_host=host, repo=repo, type=r.type, name=r.name)
    return data


def all_repo_info(inv: inv_mod.Inventory) -> list[dict[str, Any]]:
    """Every repository's listing, asked at once; one that does not answer is listed with
    its error (a cut WAN link leaves the other site's repository unread, not the rest)."""
    every = repositories(inv)
    results = sshprobe.probe_each(inv, [(r.host, repos_rule.info_command(r, TOOL)) for r in every])
    out: list[dict[str, Any]] = []
    for r, res in zip(every, results, strict=True):
        where = {"repo_host": r.host, "repo": r.number, "type": r.type, "name": r.name}
        if res.ok and isinstance(res.data, dict):
            out.append({**res.data, **where, "reachable": True})
        else:
            out.append({**where, "reachable": False, "error": res.error or "no answer",
                        "exists": False, "backups": []})
    return out


def backup(inventory: Path, kind: str, source: str, repo: int = 1, *, progress: Any = None,
           say: Callable[[str], None] | None = None) -> dict[str, Any]:
    inv = inv_mod.load(inventory)
    r = repository(inv, repo)
    host = r.host
    result = playbook.run("backup.yml", inventory,
                          {"backup_type": kind, "backup_source": source, "backup_repo": repo},
                          title=f"backup ({kind}) into repo{repo} on {host}",
                          progress=progress, say=say)
    playbook.raise_for(result, "backup")
    report = {**(result.data.get("backup") or {}), "repo": repo, "repo_host": host,
              "type": r.type, "name": r.name}
    return report


def backups(inventory: Path, repo: int | None = None) -> dict[str, Any]:
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
    return data


def _summary(r: dict[str, Any]) -> dict[str, Any]:
    """One repository in a line: how many backups, the last, the newest archived WAL."""
    if not r.get("reachable"):
        return {"repo": r["repo"], "repo_host": r["repo_host"], "type": r.get("type", "posix"),
                "name": r.get("name", r["repo_host"]), "reachable": False,
                "error": r.get("error"), "text": f"does not answer ({r.get('error')})"}
    good = [b for b in r.get("backups", []) if not b.get("error")]
    arch = r.get("archive") or {}
    out = {"repo": r["repo"], "repo_host": r["repo_host"], "type": r.get("type", "posix"),
           "name": r.get("name", r["repo_host"]), "reachable": True,
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


def restore(inventory: Path, *, to: str | None, target_time: str | None,
            target_lsn: str | None, latest: bool, name: str, replace: bool,
            drop: bool, repo: int | None = None, progress: Any = None,
            say: Callable[[str], None] | None = None) -> dict[str, Any]:
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
        n = repo if repo is not None else repo_of(inv, to)
        info = repo_info(inv, n) if n else {}  # not a repository host: refused below
        if repo is not None:
            extravars["restore_repo"] = repo
        check_restore(inv, to, target_time, info)
        if target_time:
            extravars["restore_target_time"] = parse_time(target_time).isoformat()
        if target_lsn:
            extravars["restore_target_lsn"] = target_lsn
        if latest:
            extravars["restore_latest"] = True
        if replace:
            extravars["restore_replace"] = True
    result = playbook.run("restore.yml", inventory, extravars,
                          title="restore" if not drop else "drop scratch instance",
                          progress=progress, say=say)
    playbook.raise_for(result, "restore")
    report = result.data.get("restore") or {}
    report["host"] = to
    report["repo"] = repo if repo is not None else repo_of(inv, to)
    report.setdefault("name", name)
    report["dropped_only"] = drop
    return report


def verify(inventory: Path, *, sql: str, database: str, repo: int = 1, progress: Any = None,
           say: Callable[[str], None] | None = None) -> dict[str, Any]:
    inv = inv_mod.load(inventory)
    r = repository(inv, repo)
    host = r.host
    result = playbook.run("verify_backup.yml", inventory,
                          {"verify_sql": sql, "verify_database": database, "backup_repo": repo},
                          title=f"verify-backup of repo{repo} on {host}",
                          progress=progress, say=say)
    report = {**(result.data.get("verify") or {}), "repo": repo, "repo_host": host,
              "type": r.type, "name": r.name, "exit_code": int(result.exit_code)}
    if result.exit_code != ExitCode.OK or not report.get("ok"):
        detail = report.get("error") or "; ".join(f.message for f in result.failures)
        raise DrctlError(f"verify-backup FAILED: {detail}",
                         result.exit_code if result.exit_code != ExitCode.OK
                         else ExitCode.FAILED, report=report)
    return report
