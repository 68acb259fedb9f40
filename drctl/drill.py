"""drctl drill: run a workload through the VIP and the demo application while an operation
runs, then measure from the client side what the business saw: the write outage, the
application's error window, the acknowledged writes lost (RPO), each step's time, and the
topology before and after. Writes a JSON report and a self-contained HTML report.

Scenarios:
  switchover      a planned switchover to the standby
  failover        the primary loses power (lab: docker kill; elsewhere: its PostgreSQL and
                  keepalived are killed over SSH), then `drctl failover`
  failback-cycle  failover as above, the old primary powers on again, then
                  `drctl failback --switch-back`: the cluster ends where it started
  auto-failover   automatic failover armed (`drctl auto enable`): the primary loses power
                  and nobody runs a command until the standby has promoted itself and
                  holds the VIP; then the old primary powers on and `drctl failback
                  --switch-back` restores the start
  site-failover   (two sites) every host of the primary's site loses power (lab: docker
                  kill; elsewhere: PostgreSQL and keepalived of its nodes are killed), then
                  `drctl failover --site REMOTE --allow-data-loss`; the SQL workload knows
                  every site's VIP (libpq's host list, read-write), and the app load moves
                  to the remote site's app, as DNS would once the operator moves it
  site-failback-cycle
                  site-failover, then the first site powers on again and `drctl failback
                  --site SITE --switch-back` rejoins each of its nodes and brings the
                  primary (and the service's name) home
  app-host-loss   the app host that holds the primary's site's application VIP loses power
                  (lab: docker kill; elsewhere: its keepalived and application are killed);
                  no command is run: keepalived moves the VIP to another app host of the
                  site, and the service answers again through the same address
  cloud-restore   (two sites and a cloud location) every host of every site loses power
                  (lab: docker kill; elsewhere: PostgreSQL and keepalived of every node are
                  killed), then `drctl rebuild --on CLOUD_HOST --repo N --allow-data-loss`
                  from the first object-store repository (its latest backup and archived
                  WAL); the writes are then looked for on the rebuilt primary: those
                  acknowledged after the last commit it replayed are what the store
                  lacked (consented to), any acknowledged before it is a failure. The
                  drill leaves the cluster rebuilt there and every site's node fenced by
                  the store's newer timeline: the lab comes back with a fresh provision

The application load goes to the service's address: the site's application VIP where it
has one (drctl_app_vip), else its first app host.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drctl import dnsupdate, options
from drctl import inventory as inv_mod
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.operations.ha import Interaction
from drctl.rules import decide
from drctl.rules import sql as rules_sql

SCENARIOS = ("switchover", "failover", "failback-cycle", "auto-failover", "site-failover",
             "site-failback-cycle", "app-host-loss", "cloud-restore")
# The scenarios that lose a whole site; they promote an asynchronous remote standby, so
# they need the operator's consent to lose what had not reached it.
SITE_SCENARIOS = ("site-failover", "site-failback-cycle")
# The scenarios that need the operator's consent to lose acknowledged commits: the site
# scenarios, and the rebuild from an object store (which lacks the segment being written
# when the sites were lost).
CONSENT_SCENARIOS = (*SITE_SCENARIOS, "cloud-restore")


def _value(args: list[str], option: str) -> str | None:
    """The value after OPTION in an operation's arguments (as on its command line)."""
    return args[args.index(option) + 1] if option in args else None


def _switchover(inventory: Path, args: list[str], ui: Interaction) -> dict[str, Any]:
    from drctl.operations import switchover

    return switchover.prepare(inventory, _value(args, "--to")).run(ui)


def _failover(inventory: Path, args: list[str], ui: Interaction) -> dict[str, Any]:
    from drctl.operations import failover

    return failover.prepare(inventory, _value(args, "--to"),
                            allow_data_loss="--allow-data-loss" in args,
                            site=_value(args, "--site")).run(ui)


def _failback(inventory: Path, args: list[str], ui: Interaction) -> dict[str, Any]:
    from drctl.operations import failback

    switch_back = "--switch-back" in args
    site = _value(args, "--site")
    if site:
        return failback.run_site(inventory, site, ui, switch_back)
    return failback.run(failback.prepare(inventory, _value(args, "--node"), switch_back), ui,
                        switch_back)


def _rebuild(inventory: Path, args: list[str], ui: Interaction) -> dict[str, Any]:
    from drctl.operations import rebuild

    return rebuild.prepare(inventory, str(_value(args, "--on")), int(_value(args, "--repo")
                                                                     or 0),
                           allow_data_loss="--allow-data-loss" in args).run(ui)


# The operations a drill runs, called in this process with the drill's arguments.
OPERATIONS: dict[str, Callable[[Path, list[str], Interaction], dict[str, Any]]] = {
    "switchover": _switchover, "failover": _failover, "failback": _failback,
    "rebuild": _rebuild}
BIN_S = 0.1


def _secrets(inv: inv_mod.Inventory) -> dict[str, Any]:
    """The vault's secrets, decrypted in memory with ansible.cfg's vault password client."""
    from drctl import vault

    return vault.decrypt(inv.path)


def _connector(inv: inv_mod.Inventory, only: str | None = None):
    """A connection factory for the app's database through every site's VIP (the home
    site's first), or straight to host ONLY (a rebuilt primary, which no VIP follows)."""
    import psycopg

    from drctl.paths import project_dir

    password = _secrets(inv).get("vault_pg_app_password")
    if not password:
        raise DrctlError("the vault holds no vault_pg_app_password", ExitCode.INVALID_INVENTORY)
    ca_dir = inv.cluster.get("drctl_tls_ca_dir") or project_dir() / ".drctl" / "ca" / inv.name
    port = int(inv.option("drctl_pg_port"))

    # every site's VIP, the home site's first: libpq tries them in turn and keeps the
    # writable one (target_session_attrs), so the workload follows a site failover
    hosts = inv.hosts[only].address if only else ",".join(dict.fromkeys(
        [str(inv.vip.ip)] + [str(ipaddress.ip_interface(s["vip"]).ip)
                             for s in inv.sites.values() if s.get("vip")]))

    def connect(connect_timeout: int = 5):
        return psycopg.connect(host=hosts, port=port, dbname="app", user="app",
                               password=password, sslmode="verify-full",
                               sslrootcert=str(Path(ca_dir) / "ca.crt"),
                               connect_timeout=connect_timeout, application_name="drctl-drill",
                               **CLIENT_SETTINGS)
    return connect


# libpq settings for a client of a drctl VIP: a frozen or vanished server is noticed
# within about 3 s (README: "Connecting applications to a drctl VIP").
CLIENT_SETTINGS: dict[str, Any] = {
    "keepalives": 1, "keepalives_idle": 2, "keepalives_interval": 1, "keepalives_count": 2,
    "tcp_user_timeout": 3000, "target_session_attrs": "read-write",
    "options": "-c statement_timeout=5000"}


def _in_process(run: Callable[[], dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """An operation called in this process: (exit code, its report)."""
    try:
        return 0, run()
    except DrctlError as exc:
        return exc.exit_code, {**(exc.report or {}), "error": exc.format_message()}


def _power_off(inv: inv_mod.Inventory, host: str, lab: str) -> str:
    """LAB: the lab's container prefix (drctl_lab_containers), empty on real hosts."""
    if lab:
        subprocess.run(["docker", "kill", lab + host], check=True, capture_output=True)
        # until docker has handled the exit: a site's hosts lose power one after the
        # other, never two leaving their network at once (docker 20.10's deadlock,
        # drctl_lab.lab.kill_one_at_a_time)
        subprocess.run(["docker", "wait", lab + host], check=False, capture_output=True)
        return f"docker kill {host} (power loss)"
    from drctl import sshprobe

    sshprobe.run(inv, host, ["sh", "-c", "systemctl kill -s SIGKILL keepalived; "
                             "systemctl kill -s SIGKILL 'postgresql@*'"], timeout=20)
    return f"kill -9 of PostgreSQL and keepalived on {host}"


def _app_host_off(inv: inv_mod.Inventory, host: str, lab: str) -> str:
    """An app host loses its power (lab), or its keepalived and application die at once."""
    if lab:
        return _power_off(inv, host, lab)
    from drctl import sshprobe

    sshprobe.run(inv, host, ["sh", "-c", "systemctl kill -s SIGKILL keepalived "
                             "drctl-demo-app"], timeout=20)
    return f"kill -9 of keepalived and the application on {host}"


def _app_host_on(inv: inv_mod.Inventory, host: str, lab: str) -> None:
    if lab:
        _power_on(inv, host, lab)
        _wait_ssh(inv, host)
        return
    from drctl import sshprobe

    sshprobe.run(inv, host, ["systemctl", "start", "keepalived", "drctl-demo-app"],
                 timeout=60)


def service_url(inv: inv_mod.Inventory, site: str) -> str | None:
    """Where a user of SITE reaches the application: its application VIP, else its first
    app host; None when the site has no app host."""
    port = int(inv_mod.role_value(inv, "demo_app", "demo_app_port"))
    entry = inv.app_sites.get(site)
    if not entry:
        return None
    if entry.get("app_vip"):
        return f"http://{str(entry['app_vip']).split('/')[0]}:{port}"
    return f"http://{inv.hosts[entry['hosts'][0]].address}:{port}"


def pooler_host(inv: inv_mod.Inventory, site: str, scenario: str,
                avoid: str | None) -> str | None:
    """The app host whose pooler the drill's second writer goes through: one of SITE that
    the scenario keeps powered (not AVOID, the app host it powers off); None without
    poolers, and in a site or cloud scenario (every app host of the site loses power)."""
    if scenario in CONSENT_SCENARIOS or not inv.option("drctl_pooler"):
        return None
    hosts = (inv.app_sites.get(site) or {}).get("hosts") or []
    return next((h for h in hosts if h != avoid), None)


def pooled_connector(inv: inv_mod.Inventory, port: int):
    """Connections to a pooler through an SSH forward on this machine's PORT: no TLS on
    the pooler's loopback (the forward is SSH's), and the patience an application of the
    pooler has (a switchover's pause holds new transactions, and the login's check)."""
    import psycopg

    password = _secrets(inv).get("vault_pg_app_password")

    def connect(connect_timeout: int = 15):
        return psycopg.connect(host="127.0.0.1", port=port, dbname="app", user="app",
                               password=password, sslmode="disable",
                               connect_timeout=max(connect_timeout, 15),
                               application_name="drctl-drill-pooled", prepare_threshold=None,
                               keepalives=1, keepalives_idle=2, keepalives_interval=1,
                               keepalives_count=2)
    return connect


def _app_vip_holder(inv: inv_mod.Inventory, site: str) -> str:
    """The app host of SITE that holds its application VIP now (asked at this moment)."""
    from drctl import status as st_mod

    entry = inv.app_sites.get(site) or {}
    if not entry.get("app_vip") or len(entry.get("hosts", [])) < 2:
        raise DrctlError(f"the app-host-loss drill needs an application VIP and two app hosts "
                         f"in site {site}", ExitCode.USAGE,
                         hint="set drctl_app_vip for the site and add a second app host, then "
                              "provision")
    views = st_mod.collect(inv, files=True).get("app_vips") or []
    mine = next((v for v in views if v["site"] == site), None)
    if mine is None or len(mine["holders"]) != 1:
        raise DrctlError(f"site {site}'s application VIP is held by "
                         f"{', '.join((mine or {}).get('holders') or []) or 'nobody'}: the "
                         "drill starts from exactly one holder", ExitCode.UNHEALTHY,
                         hint="`drctl status` shows what to fix")
    return str(mine["holders"][0])


def _app_vip_holders(inv: inv_mod.Inventory, site: str) -> str:
    """Who holds SITE's application VIP now, as its app hosts answer."""
    from drctl import status as st_mod

    views = st_mod.collect(inv, files=True).get("app_vips") or []
    return ", ".join(next((v["holders"] for v in views if v["site"] == site), []))


def _wait_service(url: str, since: float, timeout: float = 60) -> float:
    """Seconds from SINCE until URL's /health reports the database writable."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                if json.loads(r.read()).get("writable"):
                    return time.monotonic() - since
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise DrctlError(f"the service did not answer through {url} within {timeout:g} s",
                     ExitCode.FAILED)


def _power_on(inv: inv_mod.Inventory, host: str, lab: str) -> None:
    if lab:
        subprocess.run(["docker", "start", lab + host], check=True, capture_output=True)
    # elsewhere the node's services come back through failback (it is fenced meanwhile)


def _wait_ssh(inv: inv_mod.Inventory, host: str, timeout: float = 120) -> None:
    from drctl import sshprobe

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sshprobe.forget_connection(inv, host)
        _rc, out, _ = sshprobe.run(inv, host, ["systemctl", "is-system-running"], timeout=5)
        if out.strip() in ("running", "degraded"):
            return
        time.sleep(1)
    raise DrctlError(f"{host} did not come back within {timeout:.0f} s", ExitCode.TIMEOUT)


TIMELINE_SQL = f"select {rules_sql.TIMELINE}"


def _timeline(connect) -> int:
    with connect(connect_timeout=5) as conn:
        return conn.execute(TIMELINE_SQL).fetchone()[0]


def _wait_new_timeline(connect, before: int, host: str, timeout: float) -> None:
    """Until the VIP leads to a writable primary on a newer timeline (nothing is run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with connect(connect_timeout=2) as conn:
                if conn.execute(TIMELINE_SQL).fetchone()[0] > before:
                    return
        except Exception:  # any failure means "not yet"
            pass
        time.sleep(0.2)
    raise DrctlError(f"no automatic promotion of {host} within {timeout:.0f} s",
                     ExitCode.FAILED, hint="`drctl auto status` says why")


def _auto_events(inv: inv_mod.Inventory, host: str, since: datetime) -> list[dict[str, Any]]:
    """drctl-auto's decisions on `host` during the drill, on the report's time axis."""
    from drctl import sshprobe

    res = sshprobe.probe_all(inv, [host]).get(host)
    found = []
    for e in (((res.data or {}).get("auto") or {}).get("events") or []) if res else []:
        try:
            when = datetime.fromisoformat(e["at"].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            continue
        if when >= since and e.get("step") in ("auto-validate", "promoted"):
            found.append({"t": round((when - since).total_seconds(), 3),
                          "label": f"{e['step']} {host} (repmgrd)", "journal": True})
    return found


def _topology(st: dict[str, Any]) -> dict[str, Any]:
    return {"primary": st.get("primary"), "vip_holders": st.get("vip_holders"),
            "healthy": st.get("healthy"), "problems": st.get("problems", []),
            "nodes": {n["host"]: n["role"] + (" fenced" if n.get("fenced") else "")
                      for n in st.get("nodes", [])}}


def _sites(inv: inv_mod.Inventory, before: dict[str, Any], after: dict[str, Any],
           plan: dict[str, Any] | None) -> dict[str, Any]:
    """Each site: its VIP and nodes, where the primary was before and after, and in a site
    drill which site was lost and which took over."""
    out: dict[str, Any] = {}
    for name, site in inv.sites.items():
        out[name] = {"vip": site.get("vip"), "nodes": site["nodes"],
                     "primary_before": before.get("primary") in site["nodes"],
                     "primary_after": after.get("primary") in site["nodes"],
                     "role": ("lost" if plan and plan["from"] == name else
                              "took over" if plan and plan["to"] == name else None)}
    return out


def _gaps(times: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def _outage(times: list[float]) -> tuple[float, float] | None:
    """The write outage: the longest gap between two acknowledged writes (None: fewer
    than two)."""
    return max(itertools.pairwise(times), key=lambda ab: ab[1] - ab[0], default=None)


def returning_logins(results: list[dict[str, Any]], window: tuple[float, float] | None
                     ) -> dict[str, int]:
    """The returning users' logins (reads only) that started within WINDOW, the write
    outage (times as in RESULTS): how many were tried and how many got in."""
    inside = [r for r in results if r["action"] == "return" and window is not None
              and window[0] < r["t"] < window[1]]
    return {"attempted": len(inside), "succeeded": sum(1 for r in inside if r["ok"])}


def site_plan(inv: inv_mod.Inventory, primary: str) -> dict[str, Any]:
    """For a site drill: the primary's site (lost) and the one that takes over (the first
    other site with a PostgreSQL node), each with its hosts and its app hosts."""
    sites = inv.sites
    home = inv.site(primary)
    remote = next((name for name in sites if name != home), None)
    if remote is None:
        raise DrctlError("a site drill needs a second site: every PostgreSQL node is in "
                         f"{home}", ExitCode.USAGE,
                         hint="set drctl_location per host (inventories/example/two-sites.yml)"
                              "; in the lab: `drctl lab up --sites 2`, then provision")

    def hosts_of(site: str, group: str | None = None) -> list[str]:
        names = [h.name for h in (inv.group(group) if group else inv.hosts.values())]
        return [n for n in names if inv.site(n) == site]
    nodes = list(sites[home]["nodes"])  # its PostgreSQL nodes first, then its other hosts
    return {"from": home, "to": remote,
            "lost_hosts": nodes + [n for n in hosts_of(home) if n not in nodes],
            "lost_nodes": nodes,
            "from_apps": hosts_of(home, "app"), "to_apps": hosts_of(remote, "app")}


def cloud_plan(inv: inv_mod.Inventory) -> dict[str, Any]:
    """For the cloud-restore drill: the host the cluster is rebuilt on (the first of group
    cloud), the object-store repository it is rebuilt from (the first), and every host of
    every site of the PostgreSQL nodes (lost; the WAN side's and the cloud's stay)."""
    from drctl.operations.backup import repositories

    cloud = [h.name for h in inv.group("cloud")]
    stores = [r for r in repositories(inv) if r.type == "s3"]
    if not cloud or not stores:
        raise DrctlError("the cloud-restore drill needs a host of group cloud and an "
                         "object-store repository (pgbackrest_s3_repos)", ExitCode.USAGE,
                         hint="in the lab: `drctl lab up --sites 2`, then provision "
                              "(README: rebuilding from the object store)")
    sites = list(inv.sites)
    nodes = [n for site in sites for n in inv.sites[site]["nodes"]]
    return {"on": cloud[0], "repo": stores[0].number, "repo_name": stores[0].name,
            "sites": sites, "lost_nodes": nodes,
            "lost_hosts": nodes + [h for h in inv.hosts if h not in nodes
                                   and inv.site(h) in sites]}


def _epoch(iso: str | None) -> float | None:
    """Seconds since the epoch of an ISO 8601 time (PostgreSQL's, or with a Z); None for
    none."""
    if not iso:
        return None
    return datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp()


def _rebuild_summary(cloud: dict[str, Any], rebuilt: dict[str, Any] | None,
                     cut: float | None, ops: list[dict[str, Any]], writer, t0: float,
                     started_at: datetime, probe, registered_missing: list[str]
                     ) -> dict[str, Any]:
    """The cloud-restore drill's own figures: where, from which repository, the recovery
    point (the last commit replayed, and how long before the newest write acknowledged
    before the cut it lies) and the recovery time (from the power cut until the rebuilt
    primary took writes: the end of the rebuild, whose last step waits for that)."""
    got = rebuilt or {}
    done = next((o for o in reversed(ops) if o["command"].startswith("drctl rebuild")), None)
    last = _epoch(got.get("rpo", {}).get("last_replayed_commit"))
    before_cut = [t for t, _ in writer.acked if cut is None or t - t0 <= cut]
    newest = started_at.timestamp() + (max(before_cut) - t0) if before_cut else None
    registered = len(probe.registered) if probe else 0
    return {"on": cloud["on"], "repo": cloud["repo"], "repo_name": cloud["repo_name"],
            "timeline": (got.get("rebuilt") or {}).get("timeline"),
            "last_replayed_commit": got.get("rpo", {}).get("last_replayed_commit"),
            "rpo_behind_newest_ack_s": round(max(0.0, newest - last), 3)
            if newest is not None and last is not None else None,
            "rebuild_rto_s": got.get("rto_s"),
            "recovery_s": round(done["start_s"] + done["duration_s"] - cut, 3)
            if done and cut is not None and done["exit_code"] == 0 else None,
            "users_registered": registered,
            "users_present": registered - len(registered_missing)}


def rpo_seconds(acked: list[tuple[float, int]], lost: list[int], cut: float | None) -> float:
    """The RPO in time: from the newest acknowledged write that survived to the newest
    acknowledged before the cut (0 when nothing acknowledged was lost)."""
    if not lost or cut is None:
        return 0.0
    gone = set(lost)
    before = [(t, i) for t, i in acked if t <= cut]
    newest = max((t for t, _ in before), default=cut)
    kept = max((t for t, i in before if i not in gone), default=None)
    return round(newest - kept, 3) if kept is not None else round(newest - before[0][0], 3)


def run(inventory: Path, *, scenario: str, duration: float, rate: float, app_rate: float,
        out_dir: Path | None, say) -> dict[str, Any]:
    from drctl import status as st_mod
    from drctl.paths import state_dir
    from drctl.workload import AppProbe, NameResolver, SqlWriter

    inv = inv_mod.load(inventory)
    # the lab's hosts are containers whose power a drill cuts; elsewhere it kills services
    lab = str(options.value(inv.cluster, "drctl_lab_containers") or "")
    before = st_mod.collect(inv)
    if not before["healthy"]:
        raise DrctlError("the cluster is not healthy: a drill starts from a healthy cluster\n  - "
                         + "\n  - ".join(before["problems"]), ExitCode.UNHEALTHY,
                         hint="`drctl status` shows what to fix")
    if scenario == "auto-failover" and (before.get("auto") or {}).get("state") != "armed":
        auto = before.get("auto") or {"state": "unknown", "reasons": []}
        raise DrctlError(f"automatic failover is {auto['state']}: "
                         + ("; ".join(auto["reasons"]) or "it must be armed for this drill"),
                         ExitCode.REFUSED, hint="`drctl auto enable`, then `drctl auto status`")
    primary = before["primary"]
    standby = next(n["host"] for n in before["nodes"] if n["role"] == "standby")
    sites = site_plan(inv, primary) if scenario in SITE_SCENARIOS else None
    cloud = cloud_plan(inv) if scenario == "cloud-restore" else None
    home = inv.site(primary)
    holder = _app_vip_holder(inv, home) if scenario == "app-host-loss" else None
    start_url = service_url(inv, home)
    connect = _connector(inv)
    writer = SqlWriter(connect, rate=rate)
    writer.prepare()
    # the same writes through an application's pooler, as its clients meet a handover
    pooled_via = pooler_host(inv, home, scenario, holder)
    forward = None
    pooled: SqlWriter | None = None
    pooled_error = "" if pooled_via else "no pooler the scenario keeps running"
    if pooled_via:
        from drctl import sshprobe

        try:
            forward, port = sshprobe.tunnel(inv, pooled_via, int(
                inv.hostvars(pooled_via).get("pgbouncer_port") or 6432))
            pooled = SqlWriter(pooled_connector(inv, port), table="app.drill_writes_pooled",
                               rate=rate)
            pooled.prepare()
        except Exception as exc:  # the drill goes on with the direct writer; said below
            pooled, pooled_error = None, f"{type(exc).__name__}: {str(exc)[:300]}"
            if forward:
                forward.terminate()
                forward = None
    # where the service's name is managed, users know only it: they resolve it through its
    # DNS server (keeping each answer for its TTL) and follow it wherever drctl points it
    name = dnsupdate.NameSettings.from_options(inv.cluster)
    resolver = NameResolver(lambda: dnsupdate.lookup(name)) if name and name.server else None
    if resolver and name and start_url:
        start_url = f"http://{name.name.rstrip('.')}:{start_url.rsplit(':', 1)[1]}"
    probe = AppProbe(start_url, rate=app_rate, resolver=resolver) if start_url else None
    cut: float | None = None
    t0 = time.monotonic()
    started_at = datetime.now(UTC)
    writer.start()
    if pooled:
        pooled.start()
    if probe:
        probe.start()
    ops: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []

    def mark(label: str) -> None:
        events.append({"t": round(time.monotonic() - t0, 3), "label": label})
        say(f"{time.monotonic() - t0:6.1f} s  {label}")

    ui = Interaction(yes=True)
    stated: dict[str, Any] | None = None

    def op(args: list[str]) -> dict[str, Any]:
        nonlocal stated
        mark("drctl " + " ".join(args) + " starts")
        t = time.monotonic()
        code, report = _in_process(lambda: OPERATIONS[args[0]](inv.path, args[1:], ui))
        if report.get("data_loss") and stated is None:
            stated = report["data_loss"]  # the first failover's statement, consented to
        ops.append({"command": "drctl " + " ".join(args), "exit_code": code,
                    "start_s": round(t - t0, 3), "duration_s": round(time.monotonic() - t, 3),
                    "write_outage_s": report.get("write_outage_s"),
                    "data_loss": report.get("data_loss"),
                    "error": report.get("error") or report.get("message"),
                    "journal": [{"step": e.get("step"), "host": e.get("host"),
                                 "result": e.get("result"), "time": e.get("time")}
                                for e in report.get("journal", [])]})
        for e in report.get("journal", []):
            try:
                when = datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
            except (KeyError, ValueError):
                continue
            events.append({"t": round((when - started_at).total_seconds(), 3),
                           "label": f"{e.get('step')} {e.get('host') or ''}".strip(),
                           "journal": True})
        mark("drctl " + " ".join(args) + f" exits {code}")
        if code != 0:
            raise DrctlError(f"drill: drctl {' '.join(args)} exited {code}: "
                             f"{report.get('error') or ''}", ExitCode(code)
                             if code in {int(c) for c in ExitCode} else ExitCode.FAILED)
        return report

    failure: DrctlError | None = None
    rebuilt: dict[str, Any] | None = None
    redirected = False  # cloud-restore: the writer now writes to the rebuilt primary
    try:
        time.sleep(3)
        mark("steady state measured")
        if scenario == "switchover":
            op(["switchover", "--to", standby])
        elif scenario == "auto-failover":
            timeline = _timeline(connect)
            mark(_power_off(inv, primary, lab))
            cut = time.monotonic() - t0
            t = time.monotonic()
            _wait_new_timeline(connect, timeline, standby, timeout=120)
            mark(f"{standby} promoted by itself and holds the VIP (no command run)")
            ops.append({"command": "(none: repmgrd promoted the standby)", "exit_code": 0,
                        "start_s": round(t - t0, 3),
                        "duration_s": round(time.monotonic() - t, 3),
                        "write_outage_s": None, "error": None, "journal": []})
            for e in _auto_events(inv, standby, started_at):
                events.append(e)
            _power_on(inv, primary, lab)
            _wait_ssh(inv, primary)
            mark(f"{primary} is back (fenced)")
            op(["failback", "--node", primary, "--switch-back"])
        elif sites:
            targets = sites["lost_hosts"] if lab else sites["lost_nodes"]
            for host in targets:
                _power_off(inv, host, lab)
            cut = time.monotonic() - t0
            mark(f"site {sites['from']} loses power: {', '.join(targets)}")
            op(["failover", "--site", sites["to"], "--allow-data-loss"])
            remote_url = service_url(inv, sites["to"])
            if probe and remote_url and not resolver:
                probe.move(remote_url)
                mark(f"the app's users move to {remote_url} (the DNS step the plan names)")
            if scenario == "site-failback-cycle":
                for host in targets:
                    _power_on(inv, host, lab)
                for host in targets:
                    _wait_ssh(inv, host)
                mark(f"site {sites['from']} is back (its nodes fenced)")
                op(["failback", "--site", sites["from"], "--switch-back"])
                if probe and start_url and not resolver:
                    probe.move(start_url)
                    mark(f"the app's users move back to {start_url}")
        elif cloud:
            targets = cloud["lost_hosts"] if lab else cloud["lost_nodes"]
            for host in targets:
                _power_off(inv, host, lab)
            cut = time.monotonic() - t0
            mark(f"every site loses power ({', '.join(cloud['sites'])}): "
                 f"{', '.join(targets)}")
            rebuilt = op(["rebuild", "--on", cloud["on"], "--repo", str(cloud["repo"]),
                          "--allow-data-loss"])
            # no VIP or name follows a rebuilt primary yet: its clients are pointed at it,
            # as the rebuild's report says, and the writes are looked for there
            there = _connector(inv, cloud["on"])
            try:  # the writer's table, where the store held none of it
                writer.prepare(there)
            except Exception as exc:
                raise DrctlError(f"drill: the rebuilt primary on {cloud['on']} does not take "
                                 f"the drill's connection: {type(exc).__name__}: "
                                 f"{str(exc)[:300]}", ExitCode.FAILED) from None
            connect = writer.connect = there
            redirected = True
            mark(f"the writer is pointed at {cloud['on']} (the rebuild's note)")
            try:  # its attempt at the dark sites' VIPs ends first
                writer.wait_for_acks(1, timeout=60)
            except AssertionError as exc:
                raise DrctlError(f"drill: {cloud['on']} acknowledged no write of the "
                                 f"drill's writer: {exc}", ExitCode.FAILED) from None
            mark(f"{cloud['on']} acknowledges the writer's writes")
        elif scenario == "app-host-loss" and holder and start_url:
            mark(_app_host_off(inv, holder, lab))
            cut = time.monotonic() - t0
            took = _wait_service(start_url, t0 + cut)
            mark(f"the service answers again through {start_url} ({took:.2f} s after the "
                 "cut, no command run)")
            mark(f"the application VIP moved from {holder} to "
                 f"{_app_vip_holders(inv, home) or 'nobody'}")
            _app_host_on(inv, holder, lab)
            mark(f"{holder} is back")
        else:
            mark(_power_off(inv, primary, lab))
            cut = time.monotonic() - t0
            op(["failover", "--to", standby])
            if scenario == "failback-cycle":
                _power_on(inv, primary, lab)
                _wait_ssh(inv, primary)
                mark(f"{primary} is back (fenced)")
                op(["failback", "--node", primary, "--switch-back"])
        remaining = duration - (time.monotonic() - t0)
        time.sleep(max(3.0, remaining))
    except DrctlError as exc:
        failure = exc
    finally:
        writer.stop()
        if pooled:
            pooled.stop()
        if forward:
            forward.terminate()
            forward.wait(timeout=10)
        if probe:
            probe.stop()
    total = time.monotonic() - t0
    for move in resolver.moves[1:] if resolver else []:  # the first is the name's start
        events.append({"t": round(move["t"] - t0, 3),
                       "label": f"the name resolves to {move['address'] or 'nothing'}"})
    after = st_mod.collect(inv)
    # a cloud-restore whose rebuild failed has no primary to look in: nothing acknowledged
    # is known to have survived (unknown is not zero), and the drill has failed already
    nowhere = cloud is not None and not redirected
    lost = [i for _t, i in writer.acked] if nowhere else writer.missing(connect)
    acked_times = [t - t0 for t, _ in writer.acked]
    registered_missing: list[str] = list(probe.registered) if probe and nowhere else []
    if probe and probe.registered and not nowhere:
        with connect() as conn:
            # no table: the application made it at its first registration, which the
            # database looked in never received (a rebuild from what the store held)
            have = {r[0] for r in conn.execute(
                "select username from app.users where username = any(%s)",
                (probe.registered,)).fetchall()} if conn.execute(
                    "select to_regclass('app.users') is not null").fetchone()[0] else set()
        registered_missing = sorted(set(probe.registered) - have)
    app_results = probe.results if probe else []
    failed = [r for r in app_results if not r["ok"]]
    pooled_lost = pooled.missing(connect) if pooled else []
    bins = int(total / BIN_S) + 1
    series = {"writes": [0] * bins, "write_errors": [0] * bins, "app_ok": [0] * bins,
              "app_errors": [0] * bins}
    for t in acked_times:
        series["writes"][min(bins - 1, int(t / BIN_S))] += 1
    for t, _ in writer.errors:
        series["write_errors"][min(bins - 1, int((t - t0) / BIN_S))] += 1
    for r in app_results:
        key = "app_ok" if r["ok"] else "app_errors"
        series[key][min(bins - 1, int((r["t"] - t0) / BIN_S))] += 1
    rpo = rpo_seconds([(t - t0, i) for t, i in writer.acked], lost, cut)
    summary = _rebuild_summary(cloud, rebuilt, cut, ops, writer, t0, started_at, probe,
                               registered_missing) if cloud else None
    if summary and summary["rpo_behind_newest_ack_s"] is not None:
        # the rebuild's own recovery point: the last commit it replayed, which a drill
        # whose writes all came after it would otherwise date by its first write
        rpo = summary["rpo_behind_newest_ack_s"]
    if cloud:
        # the rebuild's recovery point splits the writes: what the store held must all be
        # there, what it lacked is the loss consented to
        def wall(t: float) -> float:
            return started_at.timestamp() + (t - t0)
        last = _epoch(summary["last_replayed_commit"]) if summary else None
        judged = decide.restore_loss(stated, last, [(wall(t), i) for t, i in writer.acked],
                                     lost)
        made = probe.registrations() if probe else []
        number = {user: n for n, (_t, user) in enumerate(made)}
        judged_users = decide.restore_loss(stated, last,
                                           [(wall(t), number[u]) for t, u in made],
                                           [number[u] for u in registered_missing
                                            if u in number])
    else:
        judged = decide.drill_loss(stated, len(lost), rpo)
        # registrations are acknowledged writes too: lost ones count as the writer's do
        judged_users = decide.drill_loss(stated, len(registered_missing), rpo)
    judged_pooled = decide.drill_loss(stated, len(pooled_lost), rpo)
    report: dict[str, Any] = {
        "scenario": scenario,
        "cluster": inv.name,
        "started_at": started_at.isoformat(timespec="milliseconds"),
        "duration_s": round(total, 3),
        "ok": failure is None and judged.within and judged_users.within
        and judged_pooled.within,
        "rto_s": round(_gaps(acked_times), 3),
        "rpo_s": rpo,
        # what the rules stated when the operator consented, beside what was lost
        "data_loss": {"stated": stated, "lost": len(lost), "rpo_s": rpo,
                      "within": judged.within and judged_users.within
                      and judged_pooled.within,
                      "sentence": judged.sentence
                      + ("" if not registered_missing else
                         f"; registrations: {judged_users.sentence}")
                      + ("" if not pooled_lost else
                         f"; through the pooler: {judged_pooled.sentence}")},
        "sites": _sites(inv, before, after, sites),
        "rebuild": summary,
        "error": str(failure) if failure else None,
        "sql": {"rate": rate, "acknowledged": len(writer.acked), "errors": len(writer.errors),
                "max_wait_s": round(writer.max_wait_s, 3),
                "write_outage_s": round(_gaps(acked_times), 3), "lost": len(lost),
                "lost_ids": lost[:100]},
        # the same writer through an app host's pooler, and the app (which uses it)
        "pooled": {"host": pooled_via, "acknowledged": len(pooled.acked),
                   "failed_attempts": len(pooled.errors),
                   "max_wait_s": round(pooled.max_wait_s, 3),
                   "write_outage_s": round(pooled.longest_gap(), 3),
                   "lost": len(pooled_lost), "lost_ids": pooled_lost[:100],
                   "app_requests": len(app_results), "app_failed": len(failed)}
        if pooled else {"host": pooled_via, "error": pooled_error},
        "app": {"url": probe.bases[0] if probe else None,
                "name_moves": [{"t": round(m["t"] - t0, 3), "address": m["address"]}
                               for m in resolver.moves] if resolver else [],
                # the addresses that answered a request well
                "served_by": sorted({str(r["address"]) for r in app_results
                                     if r.get("address") and r["ok"]}),
                "urls": probe.bases if probe else [], "rate": app_rate,
                "requests": len(app_results), "failed": len(failed),
                "error_window_s": round(failed[-1]["t"] - failed[0]["t"], 3) if failed else 0.0,
                "first_error_s": round(failed[0]["t"] - t0, 3) if failed else None,
                # returning users logging in while writes were failing (pages that only
                # read ask any node of the site)
                "logins_during_outage": returning_logins(
                    [{**r, "t": r["t"] - t0} for r in app_results], _outage(acked_times)),
                "registered": len(probe.registered) if probe else 0,
                "registrations_missing": registered_missing,
                "max_latency_ms": max((r["ms"] for r in app_results), default=None),
                # the first failed requests, each with what it got (which call, the client's
                # error or the HTTP status), where it went and how long it took
                "failures": [{"t": round(r["t"] - t0, 3), "action": r["action"],
                              "status": r["status"], "ms": r["ms"],
                              "address": r.get("address"), "why": r.get("why", "")}
                             for r in failed[:20]]},
        "operations": ops,
        "events": sorted(events, key=lambda e: e["t"]),
        "topology_before": _topology(before),
        "topology_after": _topology(after),
        "series": {"bin_s": BIN_S, **series},
    }
    out_dir = out_dir or state_dir() / "drills"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{inv.name}-{scenario}-{started_at.strftime('%Y%m%dT%H%M%SZ')}"
    report["json_path"] = str((out_dir / f"{stem}.json").resolve())
    report["html_path"] = str((out_dir / f"{stem}.html").resolve())
    Path(report["json_path"]).write_text(json.dumps(report, indent=1))
    from drctl.drill_html import render

    Path(report["html_path"]).write_text(render(report))
    return report
