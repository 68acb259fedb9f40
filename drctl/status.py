"""drctl status: probe every PostgreSQL node in parallel and check the cluster's invariants.

Invariants (each broken one is a line in `problems`, and the exit code is 7):
- exactly one primary;
- exactly one VIP holder, and it is the primary;
- every standby streams from the primary (over TLS);
- no inactive replication slot retains more WAL than drctl_slot_warn_bytes;
- every node answers and runs keepalived.
The JSON keys primary, vip_holders, healthy, problems and nodes[].host/role/timeline/
lsn/lag_bytes/vip are a contract other commands and scripts rely on.
"""

from __future__ import annotations

import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drctl import auto_state as auto_mod
from drctl import dns, sshprobe
from drctl import inventory as inv_mod
from drctl.rules import decide, service, sql
from drctl.rules import facts as rules_facts
from drctl.rules import repos as repos_rule
from drctl.rules.facts import app_name

BACKUP_TOOL = "/usr/local/libexec/drctl/drctl-backup"
FILES_STATE = [sshprobe.NODE_COMMAND, "files", "state"]
APP_STATE = [sshprobe.NODE_COMMAND, "app", "state"]  # an app host: its VIP and its files
NO_BACKUP = "no backup yet: nothing can be restored (run `drctl backup`)"


def _node(host: str, address: str, res: sshprobe.ProbeResult) -> dict[str, Any]:
    d = res.data or {}
    pg = d.get("postgres") or None
    if not res.ok:
        role = "unknown"
    elif pg is None:
        role = "down"
    else:
        role = "standby" if pg.get("in_recovery") else "primary"
    vrrp = d.get("vrrp") or {}
    receiver = (pg or {}).get("receiver") or {}
    return {
        "host": host,
        "address": address,
        "reachable": res.ok,
        "error": res.error or d.get("postgres_error") or "",
        "role": role,
        "postgres_service": d.get("postgres_service"),
        "timeline": (pg or {}).get("timeline"),
        "lsn": (pg or {}).get("lsn"),
        "receive_lsn": (pg or {}).get("receive_lsn"),
        "lag_bytes": None,
        "lag_s": None,
        "streaming": receiver.get("status") == "streaming" if role == "standby" else None,
        "upstream": receiver.get("sender_host"),
        "replication_ssl": None,
        "sync_state": None,
        "replay_paused": (pg or {}).get("replay_paused"),
        "slots": (pg or {}).get("slots", []),
        "keepalived": d.get("keepalived_service"),
        "vrrp_state": vrrp.get("state"),
        "vrrp_since": vrrp.get("since"),
        "vip": bool(d.get("holds_vip")),
        "vip_check": d.get("vip_check"),
        "fenced": bool(d.get("fenced")),
        "start_held": d.get("start_held"),
        "set_aside": d.get("set_aside") or [],
        "prepared_xacts": (pg or {}).get("prepared_xacts"),
        "data_checksums": (pg or {}).get("data_checksums"),
        "wal_log_hints": (pg or {}).get("wal_log_hints"),
        "_replication": (pg or {}).get("replication", []),
        "_sync_settings": {k: str((pg or {}).get(k) or "") for k in
                           ("synchronous_commit", "synchronous_standby_names")},
        "_auto": d.get("auto"),
        "_archiver": {"mode": (pg or {}).get("archive_mode"),
                      "ready": (pg or {}).get("archive_ready"),
                      "oldest_ready_s": (pg or {}).get("archive_oldest_ready_s"),
                      **((pg or {}).get("archiver") or {})},
    }


def _why_not_held(primary: dict[str, Any] | None) -> str:
    """What the primary's own VIP check says, when it keeps the primary from the VIP."""
    check = (primary or {}).get("vip_check") or {}
    if not primary or check.get("eligible") is not False:
        return ""
    return f" (the VIP check on {primary['host']} refuses it: {check.get('reason')})"


def backup_state(repo: str | None, res: sshprobe.ProbeResult | None,
                 primary: dict[str, Any] | None, now: float, max_age_h: float,
                 ready_warn: int, stall_s: float = 120, label: str = "",
                 restorable_from: tuple[str, ...] = (),
                 ) -> tuple[dict[str, Any] | None, list[str], list[str]]:
    """The backup part of the report: (state, problems, warnings). LABEL names this
    repository; RESTORABLE_FROM, the other repositories that hold a backup: without a
    backup here, nothing can be restored only when there are none."""
    if repo is None or res is None:
        return None, [], []
    problems: list[str] = []
    warnings: list[str] = []
    state: dict[str, Any] = {"repo_host": repo, "reachable": res.ok and res.data is not None,
                             "error": res.error, "last_backup": None, "last_backup_time": None,
                             "age_s": None, "backups": 0, "window": None, "archiving": None}
    if not state["reachable"]:
        problems.append(f"repository host {repo}: {res.error or 'no answer'}")
    else:
        d = res.data or {}
        good = [b for b in d.get("backups", []) if not b.get("error")]
        state["backups"] = len(good)
        state["window"] = {k: v for k, v in (d.get("window") or {}).items()
                           if not k.endswith("_epoch")}
        if not d.get("exists", False):
            problems.append(f"stanza '{d.get('stanza')}' does not exist on {repo}")
        elif not good:
            warnings.append(NO_BACKUP if not restorable_from else (
                f"{label} holds no backup yet (`drctl backup`); restores can come from "
                f"{', '.join(restorable_from)}"))
        else:
            last = good[-1]
            state.update(last_backup=last["label"], last_backup_time=last["stop"],
                         age_s=round(now - last["stop_epoch"]))
            if state["age_s"] > max_age_h * 3600:
                warnings.append(f"the last backup ({last['label']}) is "
                                f"{state['age_s'] / 3600:.0f} h old (more than {max_age_h:g} h)")
    if primary is not None:
        a = primary.get("_archiver") or {}
        failing = bool(a.get("failed_count")) and (
            not a.get("last_archived_time")
            or (a.get("last_failed_time") or "") > (a.get("last_archived_time") or ""))
        state["archiving"] = {
            "node": primary["host"], "mode": a.get("mode"), "ok": not failing,
            "last_archived_wal": a.get("last_archived_wal"),
            "last_archived_time": a.get("last_archived_time"),
            "failed_count": a.get("failed_count"), "last_failed_wal": a.get("last_failed_wal"),
            "last_failed_time": a.get("last_failed_time"), "ready_segments": a.get("ready"),
            "oldest_waiting_s": a.get("oldest_ready_s")}
        stalled = (a.get("oldest_ready_s") or 0) > stall_s
        state["archiving"]["ok"] = not failing and not stalled
        if a.get("mode") == "off":
            problems.append(f"WAL archiving is off on the primary {primary['host']} "
                            "(re-run `drctl provision`)")
        elif failing:
            problems.append(f"WAL archiving FAILS on the primary {primary['host']} since "
                            f"{a.get('last_failed_time')} (last archived "
                            f"{a.get('last_archived_wal') or 'none'}); {a.get('ready') or 0} "
                            "segments wait in pg_wal")
        elif stalled:
            # an archive_command that hangs (a repository host gone without a reset) records
            # no failure until it times out: the age of the oldest waiting segment shows it
            problems.append(f"WAL archiving is stuck on the primary {primary['host']}: the "
                            f"oldest of {a.get('ready')} waiting segments has waited "
                            f"{a['oldest_ready_s']:.0f} s")
        elif (a.get("ready") or 0) > ready_warn:
            problems.append(f"{a.get('ready')} WAL segments wait to be archived on "
                            f"{primary['host']} (archiving falls behind)")
    return state, problems, warnings


def repos_state(repos: list[tuple[repos_rule.Repo, sshprobe.ProbeResult | None]], now: float,
                max_age_h: float) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Every repository in a line (repo1 first, as backup_state sees it in detail): can it
    be read, its last backup and the newest WAL segment it holds. A repository holding an
    older segment than another is behind (a cut WAN, a repository host down): archiving
    to the others goes on, PostgreSQL keeps the WAL it lacks until it has it. Problems and
    warnings are those of repo2 and later (backup_state reports repo1's)."""
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    warnings: list[str] = []
    for r, res in repos:
        i, host = r.number, r.host
        entry: dict[str, Any] = {"repo": i, "host": host, "type": r.type, "name": r.name,
                                 "reachable": bool(res and res.ok and res.data is not None),
                                 "error": res.error if res else "not asked",
                                 "backups": 0, "last_backup": None, "age_s": None,
                                 "last_segment": None, "last_arrived": None, "behind": False}
        if entry["reachable"] and res is not None:
            d = res.data or {}
            good = [b for b in d.get("backups", []) if not b.get("error")]
            arch = d.get("archive") or {}
            entry.update(backups=len(good), last_segment=arch.get("last_segment"),
                         last_arrived=arch.get("last_arrived"))
            if good:
                entry.update(last_backup=good[-1]["label"],
                             age_s=round(now - good[-1]["stop_epoch"]))
            if i > 1 and not good:
                warnings.append(f"{repos_rule.label(r)} holds no backup yet (`drctl backup "
                                f"--repo {i}`)")
            elif i > 1 and entry["age_s"] is not None and entry["age_s"] > max_age_h * 3600:
                warnings.append(f"the last backup in {repos_rule.label(r)} is "
                                f"{entry['age_s'] / 3600:.0f} h old (more than {max_age_h:g} h)")
        elif i > 1:
            problems.append(f"{repos_rule.where(r)}: {entry['error'] or 'no answer'}")
        out.append(entry)
    newest: str = max((str(e["last_segment"]) for e in out if e["last_segment"]), default="")
    for e in out:
        e["behind"] = bool(newest) and (not e["reachable"] or (e["last_segment"] or "") < newest)
    return out, problems, warnings


def archive_detail(repos: list[dict[str, Any]]) -> str:
    """Which repositories hold the newest archived WAL and which lag, in words ('' when
    there is only one repository or none lags)."""
    if len(repos) < 2 or not any(r["behind"] for r in repos):
        return ""
    parts = []
    for r in repos:
        where = f"repo{r['repo']} ({r.get('name', r['host'])})"
        if not r["reachable"]:
            parts.append(f"{where} does not answer")
        elif r["behind"]:
            parts.append(f"{where} is behind, at {r['last_segment'] or 'no segment'}")
        else:
            parts.append(f"{where} has up to {r['last_segment']}")
    return "; ".join(parts)


def evaluate(nodes: list[dict[str, Any]], slot_warn_bytes: int) -> tuple[str | None, list[str]]:
    """Fill in lag from the primary's view; return (primary, problems)."""
    problems: list[str] = []
    primaries = [n for n in nodes if n["role"] == "primary"]
    for n in nodes:
        if not n["reachable"]:
            problems.append(f"{n['host']} is unreachable: {n['error']}")
        elif n["role"] == "down" and n.get("start_held"):
            held = n["start_held"]
            problems.append(
                f"{n['host']}: PostgreSQL is held down since {held.get('since')}: "
                f"{held.get('reason')}" + (
                    f" (it starts by itself once a peer confirms; `drctl confirm-primary "
                    f"{n['host']}` starts it now, on an operator's word)"
                    if held.get("liftable") else ""))
        elif n["role"] == "down" and n.get("postgres_service") == "activating":
            problems.append(f"{n['host']}: PostgreSQL is starting (before it starts as a "
                            "primary, it asks its peers whether it still is one)")
        elif n["role"] == "down" and not n["fenced"]:
            problems.append(f"{n['host']}: PostgreSQL is down ({n['error'] or 'no answer'})")
        if n["reachable"] and n["keepalived"] not in (None, "active"):
            problems.append(f"{n['host']}: keepalived is {n['keepalived']}; it cannot take over "
                            "the VIP")
    if not primaries:
        problems.append("no primary: no node accepts writes")
    elif len(primaries) > 1:
        problems.append("SPLIT BRAIN: " + " and ".join(p["host"] for p in primaries)
                        + " all accept writes")
    primary = primaries[0] if len(primaries) == 1 else None

    holders = [n["host"] for n in nodes if n["vip"]]
    if len(holders) != 1:
        problems.append(f"{len(holders)} nodes hold the VIP ({', '.join(holders) or 'none'}); "
                        "exactly one must" + (_why_not_held(primary) if not holders else ""))
    elif primary and holders[0] != primary["host"]:
        problems.append(f"the VIP is on {holders[0]}, not on the primary {primary['host']}")
    elif not primary:
        problems.append(f"the VIP is on {holders[0]}, which is not a single writable primary")

    if primary:
        by_name = {r.get("application_name"): r for r in primary["_replication"]}
        for n in nodes:
            if n["role"] != "standby":
                continue
            r = by_name.get(app_name(n["host"]))
            if r:
                n["lag_bytes"] = r.get("lag_bytes")
                n["lag_s"] = round(r["replay_lag_s"], 3) if r.get("replay_lag_s") else 0.0
                n["replication_ssl"] = r.get("ssl")
                n["sync_state"] = r.get("sync_state")
            if not n["streaming"] or not r or r.get("state") != "streaming":
                problems.append(f"{n['host']} is not streaming from the primary "
                                f"{primary['host']}")
            elif n["upstream"] and n["upstream"] != primary["address"]:
                problems.append(f"{n['host']} streams from {n['upstream']}, not from the "
                                f"primary {primary['host']}")
            elif r.get("ssl") is False:
                problems.append(f"{n['host']} replicates without TLS")
        for slot in primary["slots"]:
            if not slot.get("active") and (slot.get("retained_bytes") or 0) > slot_warn_bytes:
                mib = slot["retained_bytes"] // (1024 * 1024)
                problems.append(f"inactive slot {slot['slot_name']} on {primary['host']} retains "
                                f"{mib} MiB of WAL")
            if slot.get("wal_status") == "lost":
                problems.append(f"slot {slot['slot_name']} on {primary['host']} lost WAL its "
                                "standby needs: re-clone that standby")
    for n in nodes:
        if n["fenced"]:
            problems.append(f"{n['host']} is fenced (it must rejoin with `drctl failback`)")
    return (primary["host"] if primary else None), problems


def files_view(results: dict[str, sshprobe.ProbeResult], sites: dict[str, str],
               max_age_s: float) -> tuple[list[dict[str, Any]], list[str]]:
    """The copies of the application's files (app_files): one entry per app and backup
    host, and a warning for each copy that is missing, old or unknown, or whose last send
    failed. The sender is the host whose copy carries its own name (it wrote the stamp)."""
    view: list[dict[str, Any]] = []
    warnings: list[str] = []
    for host, res in results.items():
        d = res.data if res.ok and isinstance(res.data, dict) else None
        entry: dict[str, Any] = {"host": host, "site": sites.get(host), "reachable": res.ok,
                                 "error": res.error, "sender": False, "age_s": None,
                                 "copied_from": None, "files": None, "last_send_ok": None}
        view.append(entry)
        if d is None or d.get("configured") is False:
            if d is not None or (res.ok and "not provisioned" in (res.error or "")):
                entry["error"] = "no copy of the application's files configured"
                continue
            warnings.append(f"{host}: the age of its copy of the application's files is "
                            f"unknown ({res.error or 'no answer'})")
            continue
        last = d.get("last_run") or {}
        entry.update(age_s=d.get("age_s"), copied_from=d.get("copied_from"),
                     files=d.get("files"), set_aside=d.get("set_aside") or [],
                     sender=d.get("copied_from") == host)
        if last.get("sent"):
            entry["last_send_ok"] = bool(last.get("ok"))
            for peer in last.get("peers") or []:
                if not peer.get("ok"):
                    warnings.append(f"{host} could not copy the application's files to "
                                    f"{peer.get('peer')}: {peer.get('error')}")
    senders = [e for e in view if e["sender"]]
    for e in view:
        if e["sender"] or not e["reachable"] or e["files"] is None:
            continue
        if e["age_s"] is None:
            warnings.append(f"{e['host']} holds no copy of the application's files yet")
        elif e["age_s"] > max_age_s:
            warnings.append(
                f"{e['host']}'s copy of the application's files is {int(e['age_s'])} s old "
                f"(from {e['copied_from']}): files uploaded since then exist only at "
                f"{', '.join(s['host'] for s in senders) or 'the serving site'}")
    return view, warnings


def poolers_view(results: dict[str, sshprobe.ProbeResult], paused_max_s: float
                 ) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Each app host's pooler (PgBouncer, from its `app state` answer); a problem for a
    pooler that does not answer (its application cannot reach the database) and for one
    paused longer than PAUSED_MAX_S (every client of that host waits); a warning for one
    paused within it (a switchover's handover in progress) and for a host that did not
    answer. Hosts without a pooler are left out."""
    view: list[dict[str, Any]] = []
    problems: list[str] = []
    warnings: list[str] = []
    for host, res in results.items():
        if not res.ok or not isinstance(res.data, dict):
            warnings.append(f"{host}: its pooler's state is unknown ({res.error or 'no answer'})")
            view.append({"host": host, "state": "unknown", "error": res.error})
            continue
        d = res.data.get("pooler") or {}
        if not d.get("configured"):
            continue
        entry = {k: d.get(k) for k in ("host", "state", "server", "waiting", "paused_s",
                                       "paused_by", "server_connections", "last_resume",
                                       "error")}
        entry["host"] = host
        view.append(entry)
        if d.get("state") == "down":
            problems.append(f"{host}'s pooler does not answer ({d.get('error')}): its "
                            "application cannot reach the database")
        elif d.get("state") == "paused":
            age = d.get("paused_s")
            what = (f"{host}'s pooler has been paused for {age:g} s by {d.get('paused_by')}"
                    if age is not None else f"{host}'s pooler is paused (by whom, unknown)")
            if age is None or age > paused_max_s:
                problems.append(f"{what}: every client of {host} waits (its guard resumes it; "
                                "or run drctl-node pooler resume there)")
            else:
                warnings.append(f"{what} ({d.get('waiting')} clients waiting)")
    return view, problems, warnings


def _files_part(res: sshprobe.ProbeResult) -> sshprobe.ProbeResult:
    """An app host's `app state` answer, as `files state` would have given it."""
    if res.data is None:
        return res
    return sshprobe.ProbeResult(res.host, res.ok, {"ok": True, **(res.data.get("files") or {})},
                                res.error)


def site_view(nodes: list[dict[str, Any]], sites: dict[str, dict[str, Any]]
              ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each site with its VIP, its nodes and who holds its VIP; a problem for each site
    whose VIP more than one node holds (each node reports its own site's VIP). The
    cluster-wide rule (exactly one holder, the primary) is evaluate()'s."""
    view: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for name, site in sites.items():
        members = [n for n in nodes if n["host"] in site["nodes"]]
        holders = [n["host"] for n in members if n["vip"]]
        view[name] = {"vip": str(site["vip"]).split("/")[0], "nodes": site["nodes"],
                      "vip_holders": holders,
                      "primary": next((n["host"] for n in members if n["role"] == "primary"),
                                      None)}
        if len(holders) > 1:
            problems.append(f"site {name}: {len(holders)} nodes hold its VIP "
                            f"{view[name]['vip']} ({', '.join(holders)}); at most one may")
    return view, problems


def cloud_command(inv: inv_mod.Inventory) -> list[str]:
    """What status runs on a host of the cloud location: its PostgreSQL's state as JSON
    (sql.CLOUD_STATE) when the service runs, else {"running": false}."""
    version = int(inv.option("drctl_pg_version"))
    port = int(inv.option("drctl_pg_port"))
    unit = f"postgresql@{version}-main"
    psql = f"/usr/lib/postgresql/{version}/bin/psql"
    query = " ".join(sql.CLOUD_STATE.split())
    return ["sh", "-c", f"if systemctl -q is-active {unit}; then exec runuser -u postgres "
                        f"-- {psql} -XAtq -p {port} -d postgres -c {shlex.quote(query)}; "
                        "else echo '{\"running\": false}'; fi"]


def cloud_view(inv: inv_mod.Inventory) -> list[dict[str, Any]]:
    """Each host of group cloud as it answers now: whether its PostgreSQL runs (a
    placeholder does not; a cluster rebuilt there does), as a primary or a standby, on
    which timeline. [] where the inventory has no cloud location."""
    hosts = [h.name for h in inv.group("cloud")]
    command = cloud_command(inv)
    results = sshprobe.probe_each(inv, [(h, command) for h in hosts])
    view = []
    for h, r in zip(hosts, results, strict=True):
        d = r.data if r.ok and isinstance(r.data, dict) else {}
        running = bool(d.get("running"))
        view.append({
            "host": h, "site": "cloud", "reachable": r.ok and bool(d),
            "running": running,
            "role": None if not d else
            ("standby" if d.get("in_recovery") else "primary") if running else "stopped",
            "in_recovery": d.get("in_recovery"), "timeline": d.get("timeline"),
            "lsn": d.get("lsn"), "error": r.error or ""})
    return view


def collect(inventory: Path | inv_mod.Inventory,
            raw: dict[str, sshprobe.ProbeResult] | None = None,
            files: bool = False, commands: dict[str, list[str]] | None = None,
            command_timeout: float = 6, repos: bool = True) -> dict[str, Any]:
    """Probe every node now and check the invariants. `raw`, when given, receives each
    host's probe result as it came (the rules core parses those for decisions). With
    FILES, also the app and backup hosts' copies of the application's files (`drctl
    status` shows them; a failover's facts and checks have no use for them). COMMANDS:
    a node command that answers with the probe in its stead, for some nodes (a failover's
    pause of repmgrd, whose answer is the node's probe once it stopped). Without REPOS,
    the repositories are not asked (a decision's second look: its facts have no use for
    them, and `pgbackrest info` is the slowest answer); the report then has no backup."""
    start = time.monotonic()
    inv = inventory if isinstance(inventory, inv_mod.Inventory) else inv_mod.load(inventory)
    hosts = [h.name for h in inv.pg_hosts]
    every_repo = inv.repositories() if repos else []
    repo = every_repo[0].host if every_repo else None  # repo1's host
    apps = [h.name for h in inv.group("app")] if files else []
    copies = apps + [h.name for h in inv.group("backup")] if files else []
    with ThreadPoolExecutor(max_workers=3) as pool:
        # the cloud location's hosts: drctl status asks, a failover does not
        cloud_future = pool.submit(cloud_view, inv) if files and inv.group("cloud") else None
        copies_future = pool.submit(
            sshprobe.probe_all, inv, copies,
            {**dict.fromkeys(copies, FILES_STATE), **dict.fromkeys(apps, APP_STATE)}
        ) if copies else None
        repos_future = pool.submit(sshprobe.probe_each, inv, [
            (r.host, repos_rule.info_command(r, BACKUP_TOOL)) for r in every_repo])
        results = sshprobe.probe_all(inv, hosts, commands, command_timeout)
        repo_results = repos_future.result()
        cloud = cloud_future.result() if cloud_future else []
        service_results = copies_future.result() if copies_future else {}
    files_results = {h: _files_part(r) if h in apps else r for h, r in service_results.items()}
    # judged only where they were asked (drctl status): a failover's facts leave them out
    app_verdicts = service.app_vips(inv.app_sites, {
        h: service.AppHost.parse(h, service_results[h].ok, service_results[h].data,
                                 service_results[h].error) for h in apps}) if files else []
    if raw is not None:
        raw.update(results)
    nodes = [_node(h, inv.hosts[h].address, results[h]) for h in hosts]
    for n in nodes:
        n["site"] = inv.site(n["host"])
    warn = int(inv.option("drctl_slot_warn_bytes"))
    primary, problems = evaluate(nodes, warn)
    gone = decide.superseded(rules_facts.ClusterFacts(tuple(
        rules_facts.NodeFacts.from_probe(h, results[h].data,
                                         results[h].ok and results[h].data is not None,
                                         results[h].error) for h in hosts)))
    if gone:
        problems.insert(0, gone)
    sites, s_problems = site_view(nodes, inv.sites)
    problems += s_problems
    for verdict in app_verdicts:
        problems += verdict.problems
    repos_view, r_problems, r_warnings = repos_state(
        list(zip(every_repo, repo_results, strict=True)), time.time(),
        float(inv.option("drctl_backup_max_age_h")))
    backup, b_problems, warnings = backup_state(
        repo, repo_results[0] if repo else None,
        next((n for n in nodes if n["host"] == primary), None), time.time(),
        float(inv.option("drctl_backup_max_age_h")),
        int(inv.option("drctl_archive_ready_warn")),
        float(inv.option("drctl_archive_stall_s")),
        label=repos_rule.label(every_repo[0]) if every_repo else "",
        restorable_from=tuple(f"repo{e['repo']}" for e in repos_view[1:] if e["backups"]))
    problems += b_problems
    if backup is not None:
        backup["repos"] = repos_view
        problems += r_problems
        warnings += r_warnings
        detail = archive_detail(repos_view)
        if backup.get("archiving") is not None:
            backup["archiving"]["repos"] = detail
        # PostgreSQL counts a segment archived only once every repository has it: say
        # which one holds archiving back
        problems = [f"{p}: {detail}" if detail and p.startswith(
            ("WAL archiving FAILS", "WAL archiving is stuck")) else p for p in problems]
    for n in nodes:
        if n["set_aside"]:
            warnings.append(f"{n['host']} keeps {len(n['set_aside'])} diverged data "
                            f"director{'ies' if len(n['set_aside']) > 1 else 'y'} set aside by "
                            f"failback ({', '.join(n['set_aside'][-3:])}): review and remove "
                            "them, they use disk")
    poolers, p_problems, p_warnings = poolers_view(
        {h: service_results[h] for h in apps},
        float(inv.option("drctl_pooler_paused_max_s")))
    problems += p_problems
    warnings += p_warnings
    copies_view, f_warnings = files_view(
        files_results, {h: inv.site(h) for h in copies},
        float(inv.option("drctl_files_max_age_s")))
    warnings += f_warnings
    auto = auto_mod.summarize(nodes, primary)
    if auto["state"] == "impossible":
        warnings.append(auto_mod.describe(auto))
    for n in nodes:
        n.pop("_replication", None)
        n.pop("_sync_settings", None)
        n.pop("_archiver", None)
        n.pop("_auto", None)
    report = {
        "cluster": inv.name,
        "checked_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "primary": primary,
        "vip": str(inv.vip.ip),
        "vip_holders": [n["host"] for n in nodes if n["vip"]],
        "sites": sites,
        "healthy": not problems,
        "problems": problems,
        "warnings": warnings,
        "nodes": nodes,
        "backup": backup,
        "files": copies_view if files else None,
        "app_vips": [v.as_dict() for v in app_verdicts] if files else None,
        "poolers": poolers if files else None,
        "auto": auto,
        "duration_s": round(time.monotonic() - start, 3),
    }
    if files:  # the cloud location, and where the service's name points: drctl status
        # asks, a failover does not
        report["cloud"] = cloud
        problems += decide.cloud_problems(primary, {
            c["host"]: c if c["reachable"] else None for c in cloud})
        report["service"], n_problems = dns.view(inv, report)
        problems += n_problems  # the same list the report holds
        report["healthy"] = not problems
        report["duration_s"] = round(time.monotonic() - start, 3)
    return report
