"""drctl's command line: thin click commands that hand over to drctl.operations.

Heavy imports (ansible_runner, rich, psycopg) happen inside the commands so that
`drctl --help` stays fast (bench/cli_help.py measures it).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from drctl import __version__
from drctl.cli_types import FiniteFloatRange, IsoTime, Lsn, SafeName
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.output import FORMATS, choose_format, emit_error_json, json_chosen
from drctl.paths import default_inventory


def inventory_option(f):
    return click.option(
        "-i", "--inventory", "inventory", type=click.Path(path_type=Path),
        default=None, show_default="inventories/lab/hosts.yml, or $DRCTL_INVENTORY",
        help="Inventory file (validated before anything remote happens).")(f)


def format_option(f):
    # eager: processed before the command's other options, so that a usage error in one of
    # them is reported as JSON too when --format json was given
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="pretty",
                        show_default=True, help="Output for people or for programs.",
                        is_eager=True,
                        callback=lambda _ctx, _param, value: choose_format(value))(f)


def common(f):
    """-i/--inventory and --format, defined once for every command that talks to hosts."""

    @inventory_option
    @format_option
    @functools.wraps(f)
    def wrapper(*args, inventory: Path | None, fmt: str, **kwargs):
        return f(*args, inventory=inventory or default_inventory(), fmt=fmt, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="drctl")
def cli() -> None:
    """PostgreSQL disaster recovery: provision a primary and standby with a VIP,
    switch over, fail over, fail back, back up and drill, all through Ansible.

    Exit codes are listed in README.md ("Exit codes") and `drctl exit-codes`.
    """
    from drctl import lock

    lock.on_warning(_warning)


def _warning(text: str) -> None:
    from drctl.output import console

    console(stderr=True).print(f"[yellow]warning:[/yellow] {text}")


# ---------------------------------------------------------------- lab

@cli.group()
def lab() -> None:
    """The local lab of containers (the embedded default for demo and tests)."""


def _say(fmt: str):
    from drctl.output import console

    con = console(stderr=True)
    return (lambda msg: con.print(f"[dim]lab:[/dim] {msg}")) if fmt != "json" else (lambda m: None)


@lab.command("up")
@click.option("--fresh", is_flag=True, help="Recreate the containers (bare hosts again).")
@click.option("--sites", type=click.IntRange(1, 2), default=None,
              show_default="$DRCTL_LAB_SITES, else what the lab was last brought up with, else 1",
              help="1: site dc1 alone. 2: also site dc2 (pg3) on a second network, joined to "
                   "dc1 by a WAN router (`drctl lab wan cut` cuts it).")
@format_option
def lab_up(fresh: bool, sites: int | None, fmt: str) -> None:
    """Build the image (once), start the containers, write inventories/lab/."""
    from drctl import lab as labmod
    from drctl.output import console, emit

    result = labmod.up(_say(fmt), fresh=fresh, sites=sites)

    def pretty(r):
        con = console()
        where = "" if r["sites"] == 1 else f"; {r['sites']} sites"
        con.print(f"lab is up in {r['seconds']} s (image {r['image']}"
                  f"{', built now' if r['image_built'] else ', cached'}); "
                  f"{'changed' if r['changed'] else 'nothing changed'}{where}")
        for name, action in r["hosts"].items():
            con.print(f"  {name:<8} {action}")
        con.print(f"inventory: {r['inventory']}")

    emit(fmt, result.as_dict(), pretty)


@lab.command("image")
def lab_image() -> None:
    """Build the lab image if missing and print its tag (molecule uses it)."""
    from drctl import lab as labmod

    labmod.ensure_engine(lambda m: click.echo(m, err=True))
    tag, _ = labmod.ensure_image(lambda m: click.echo(m, err=True))
    click.echo(tag)


@lab.command("down")
@click.option("--purge-image", is_flag=True, help="Also remove the cached lab image.")
@format_option
def lab_down(purge_image: bool, fmt: str) -> None:
    """Remove the lab's containers, network, keys and generated inventory."""
    from drctl import lab as labmod
    from drctl.output import console, emit

    result = labmod.down(_say(fmt), purge_image=purge_image)
    emit(fmt, result, lambda r: console().print(
        f"lab removed: {r['containers_removed']} containers, "
        f"{'networks' if len(r['networks_removed']) > 1 else 'network'}, inventory and keys"))


@lab.command("snapshot")
@click.argument("name", default="provisioned")
@format_option
def lab_snapshot(name: str, fmt: str) -> None:
    """Freeze every lab host at the same instant and keep it as snapshot NAME."""
    from drctl import lab as labmod
    from drctl.output import console, emit

    result = labmod.snapshot(name, _say(fmt))
    emit(fmt, result, lambda r: console().print(
        f"snapshot {r['name']!r} of {', '.join(r['hosts'])} taken in {r['seconds']} s; "
        f"`drctl lab restore {r['name']}` brings the lab back to it"))


@lab.command("restore")
@click.argument("name", default="provisioned")
@format_option
def lab_restore(name: str, fmt: str) -> None:
    """Replace every lab host by its state in snapshot NAME (seconds, not a provision)."""
    from drctl import lab as labmod
    from drctl.output import console, emit

    result = labmod.restore(name, _say(fmt))
    emit(fmt, result, lambda r: console().print(
        f"lab restored from snapshot {r['name']!r} in {r['seconds']} s"))


@lab.command("snapshots")
@format_option
def lab_snapshots(fmt: str) -> None:
    """List the lab's snapshots."""
    import datetime

    from drctl import lab as labmod
    from drctl.output import console, emit

    def pretty(rows: list[dict]) -> None:
        con = console()
        if not rows:
            con.print("no snapshots (drctl lab snapshot NAME takes one)")
        for r in rows:
            when = datetime.datetime.fromtimestamp(r["created"], datetime.UTC)
            notes = [] if r["complete"] else ["incomplete"]
            notes += [] if r["current_image"] else ["older lab image"]
            con.print(f"{r['name']:<20} {when:%Y-%m-%d %H:%M:%S}Z  {' '.join(r['hosts'])}"
                      f"{'  (' + ', '.join(notes) + ')' if notes else ''}")

    emit(fmt, labmod.snapshots(), pretty)


@lab.command("status")
@format_option
def lab_status(fmt: str) -> None:
    """List the lab's hosts and whether each answers SSH."""
    from drctl import lab as labmod
    from drctl.output import console, emit

    rows = labmod.status()

    def pretty(rows):
        con = console()
        for r in rows:
            site = f"{r['site']:<4} " if "site" in r else ""
            if r["group"] == "router":
                wan = "[green]wan up[/green]" if r["wan"] == "up" else f"[red]wan {r['wan']}[/red]"
                con.print(f"{r['host']:<8} {r['address']:<31} {r['group']:<11} {site}"
                          f"{r['container']:<9} {wan}")
                continue
            ssh = "[green]ssh ok[/green]" if r["ssh"] else "[red]no ssh[/red]"
            con.print(f"{r['host']:<8} {r['address']:<15} {r['group']:<11} {site}"
                      f"{r['container']:<9} {ssh}")

    emit(fmt, rows, pretty)
    # every host answers SSH; the WAN router (no sshd) runs
    if not all(r["ssh"] if r["group"] != "router" else r["container"] == "running"
               for r in rows):
        sys.exit(int(ExitCode.UNREACHABLE))


@lab.group("wan")
def lab_wan() -> None:
    """The WAN link between the lab's two sites (`drctl lab up --sites 2`)."""


def _wan_emit(fmt: str, result: dict) -> None:
    from drctl.output import console, emit

    def pretty(r):
        state = "[red]cut[/red]" if r["wan"] == "cut" else "[green]up[/green]"
        sites = " <-> ".join(f"{s} {v['subnet']}" for s, v in r["sites"].items())
        con = console()
        con.print(f"wan {state}{'' if r['changed'] else ' (unchanged)'}: {sites} "
                  f"through {r['router']}")

    emit(fmt, result, pretty)


@lab_wan.command("cut")
@format_option
def lab_wan_cut(fmt: str) -> None:
    """Silently drop every packet between the sites (a lost WAN link)."""
    from drctl import lab as labmod

    _wan_emit(fmt, labmod.wan_cut())


@lab_wan.command("restore")
@format_option
def lab_wan_restore(fmt: str) -> None:
    """End a cut: the sites reach each other again."""
    from drctl import lab as labmod

    _wan_emit(fmt, labmod.wan_restore())


@lab_wan.command("status")
@format_option
def lab_wan_status(fmt: str) -> None:
    """Whether the WAN between the sites is up or cut."""
    from drctl import lab as labmod

    _wan_emit(fmt, labmod.wan_status())


# ---------------------------------------------------------------- cluster verbs

@cli.command()
@common
def ping(inventory: Path, fmt: str) -> None:
    """Check that every host answers over SSH through Ansible."""
    from drctl import views
    from drctl.operations import playbook

    with playbook_ui(fmt) as ui:
        result = playbook.run("ping.yml", inventory, title="ping", read_only=True, **ui)
    views.render_playbook(result.as_dict(), fmt)
    playbook.raise_for(result, "ping")


@cli.command()
@common
@click.option("--check", "check", is_flag=True,
              help="Show what would change without changing anything.")
@click.option("--force-reclone", is_flag=True,
              help="Wipe a standby whose data directory holds a different cluster and clone "
                   "it again from the primary.")
def provision(inventory: Path, fmt: str, check: bool, force_reclone: bool) -> None:
    """Turn the inventory's hosts into a primary, streaming standby(s) and a VIP."""
    from drctl import views
    from drctl.operations import provision as op

    try:
        with playbook_ui(fmt) as ui:
            result = op.provision(inventory, check=check, force_reclone=force_reclone, **ui)
    except DrctlError as exc:
        if exc.report and fmt != "json" and views.is_playbook_result(exc.report):
            views.render_playbook(exc.report, fmt)  # the recap of the run that failed
        raise
    views.render_playbook(result.as_dict(), fmt)


@cli.command()
@common
def status(inventory: Path, fmt: str) -> None:
    """Roles, timelines, LSNs, lag, slots and VIP holders; exits 7 when unhealthy, 4 when
    no PostgreSQL node answers (nothing can be said of the cluster)."""
    from drctl import status as st
    from drctl import views

    report = st.collect(inventory, files=True)
    views.render_status(report, fmt)
    if report["nodes"] and not any(n.get("reachable") for n in report["nodes"]):
        sys.exit(int(ExitCode.UNREACHABLE))
    if not report["healthy"]:
        sys.exit(int(ExitCode.UNHEALTHY))


def operation_options(f):
    """--yes and --plan, shared by every operation that changes roles."""
    f = click.option("--plan", "show_plan", is_flag=True,
                     help="Print the ordered steps and every gate's result; change nothing.")(f)
    return click.option("--yes", "-y", is_flag=True,
                        help="Do not ask for confirmation (required without a terminal).")(f)


@contextmanager
def playbook_ui(fmt: str) -> Iterator[dict[str, Any]]:
    """progress and say for a command that runs one playbook: a line per finished task and
    a line naming the run, on stderr, unless the output is JSON. A failure's playbook
    result rides on the error: with --format json it is the document printed."""
    from drctl import views
    from drctl.output import Progress, console

    progress = Progress(enabled=fmt != "json")
    say = console(stderr=True).print if fmt != "json" else None
    try:
        yield {"progress": progress, "say": say}
    except DrctlError as exc:
        if exc.report and fmt == "json" and views.is_playbook_result(exc.report):
            views.render_playbook(exc.report, fmt)
        raise
    finally:
        progress.close()


def interaction(yes: bool, fmt: str) -> Any:
    """How operations reach the person at the terminal: a question when there is a
    terminal to ask on, progress on stderr unless the output is JSON."""
    from drctl.operations.ha import Interaction
    from drctl.output import Progress

    ask = ((lambda q: click.confirm(q, default=False, err=True))
           if sys.stdin.isatty() else None)
    return Interaction(yes=yes, ask=ask, progress=Progress() if fmt != "json" else None)


def run_prepared(prepared: Any, fmt: str, yes: bool, show_plan: bool,
                 run: Callable[[Any], dict[str, Any]] | None = None) -> None:
    """--plan, or run the prepared operation and render what it returns (also when it
    ended badly: the report rides on the error)."""
    from drctl import views

    if show_plan:
        views.show_plan(prepared.plan, fmt)
        if not prepared.plan.ok:
            sys.exit(int(ExitCode.REFUSED))
        return
    ui = interaction(yes, fmt)
    try:
        report = (run or prepared.run)(ui)
    except DrctlError as exc:
        if exc.report:
            views.render_result(exc.report, fmt)
        raise
    finally:
        if ui.progress is not None:
            ui.progress.close()
    views.render_result(report, fmt)


@cli.command()
@common
@operation_options
@click.option("--to", "target", metavar="HOST", help="The standby to promote (default: the "
              "first standby).")
def switchover(inventory: Path, fmt: str, yes: bool, show_plan: bool, target: str | None) -> None:
    """Planned switchover with zero data loss: the primary hands over to a standby."""
    from drctl.operations import switchover as op

    run_prepared(op.prepare(inventory, target), fmt, yes, show_plan)


@cli.command()
@common
@operation_options
@click.option("--to", "target", metavar="HOST",
              help="The standby to promote (default: the one holding the most WAL in the "
                   "lost primary's site).")
@click.option("--site", metavar="SITE",
              help="Fail over to this site (drctl_location): its standby holding the most "
                   "WAL. Moving the primary to another site is never a default.")
@click.option("--allow-data-loss", is_flag=True,
              help="Promote even when the standby lacks WAL a watcher saw the primary write, "
                   "or nobody can tell what it lacks: those commits are lost (drctl says how "
                   "much before it asks).")
def failover(inventory: Path, fmt: str, yes: bool, show_plan: bool, target: str | None,
             site: str | None, allow_data_loss: bool) -> None:
    """The primary is gone: fence it, promote a standby, move the VIP."""
    from drctl.operations import failover as op

    run_prepared(op.prepare(inventory, target, allow_data_loss, site), fmt, yes, show_plan)


@cli.command()
@common
@operation_options
@click.option("--node", "node", metavar="HOST",
              help="The old primary to rejoin (default: the fenced or stopped node).")
@click.option("--site", "site", metavar="SITE",
              help="A site that comes back: rejoin each of its fenced or stopped nodes, in "
                   "turn (with --switch-back, then its first node becomes primary again and "
                   "the service's name comes home).")
@click.option("--switch-back", is_flag=True,
              help="After the rejoin, switch over so that the rejoined node is primary again.")
@click.option("--reclone", is_flag=True,
              help="Skip pg_rewind and clone the node afresh (diverged data is still kept).")
@click.option("--discard-diverged", is_flag=True,
              help="Do not keep a copy of what the node committed past the fork point (when "
                   "there is no room for it): those commits are lost.")
def failback(inventory: Path, fmt: str, yes: bool, show_plan: bool, node: str | None,
             site: str | None, switch_back: bool, reclone: bool,
             discard_diverged: bool) -> None:
    """The old primary returns: set its diverged data aside, pg_rewind, rejoin, switch back.

    With --format json and --switch-back (or --site), stdout holds one document with every
    report."""
    from drctl import inventory as inv_mod
    from drctl.operations import failback as op

    if site is not None:
        if node is not None:
            raise DrctlError("--node and --site name what comes back twice: give one",
                             ExitCode.USAGE)
        nodes = op.site_nodes(inv_mod.load(inventory), site)  # a usage error before SSH
        if show_plan:
            for n in nodes:
                run_prepared(op.prepare(inventory, n, False, reclone, discard_diverged), fmt,
                             yes, True)
            return
        run_prepared(op.prepare(inventory, nodes[0], switch_back, reclone, discard_diverged),
                     fmt, yes, False, run=lambda ui: op.run_site(
                         inventory, site, ui, switch_back, reclone, discard_diverged))
        return
    prepared = op.prepare(inventory, node, switch_back, reclone, discard_diverged)
    run_prepared(prepared, fmt, yes, show_plan,
                 run=lambda ui: op.run(prepared, ui, switch_back))


@cli.group()
def diverged() -> None:
    """Kept copies of diverged data: what failback set aside (commits the cluster does
    not have). drctl never deletes one by itself."""


def _copy_size(n: int | None) -> str:
    from drctl.rules.lsn import binary_size

    return "?" if n is None else binary_size(n)


@diverged.command("list")
@common
def diverged_list(inventory: Path, fmt: str) -> None:
    """Every kept copy on every PostgreSQL node, with what it holds."""
    from drctl import diverged as dv
    from drctl import inventory as inv_mod
    from drctl.output import console, emit

    result = dv.collect(inv_mod.load(inventory))

    def pretty(r: dict[str, Any]) -> None:
        con = console()
        if not r["copies"]:
            con.print("no kept copies of diverged data")
        for c in r["copies"]:
            con.print(f"{c['host']:<8} {c['name']:<32} {_copy_size(c['bytes']):>9}  "
                      f"{dv.at_stake(c)}")
        for u in r["unanswered"]:
            con.print(f"[red]{u['host']}: did not answer ({u['error']}); its copies are "
                      "unknown[/red]")

    emit(fmt, result, pretty)
    if result["unanswered"]:
        sys.exit(int(ExitCode.UNREACHABLE))


@diverged.command("show")
@common
@click.argument("host")
@click.argument("name")
def diverged_show(inventory: Path, fmt: str, host: str, name: str) -> None:
    """What one copy holds (commits, time range, transactions) and how to read its rows."""
    from drctl import diverged as dv
    from drctl import inventory as inv_mod
    from drctl.output import console, emit

    copy = dv.find(inv_mod.load(inventory), host, name)

    def pretty(c: dict[str, Any]) -> None:
        con = console()
        con.print(f"{c['host']}:{c['path']} ({_copy_size(c['bytes'])}, set aside "
                  f"{c.get('at') or '?'})")
        con.print(f"holds: {dv.at_stake(c)}")
        if c.get("fork_lsn"):
            con.print(f"fork point: {c['fork_lsn']} on timeline {c.get('timeline')}")
        if c.get("xids"):
            con.print(f"transactions: {', '.join(map(str, c['xids'][:20]))}")
        for line in c.get("commit_samples") or []:
            con.print(f"  {line}", markup=False)
        con.print(f"\nTo read its rows, as root on {c['host']} (a scratch copy on a private "
                  "socket; the kept copy stays as it is):")
        for cmd in c["look"]:
            con.print(f"  {cmd}", markup=False)

    emit(fmt, copy, pretty)


@diverged.command("drop")
@common
@click.argument("host")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def diverged_drop(inventory: Path, fmt: str, host: str, name: str, yes: bool) -> None:
    """Delete one kept copy, after saying what it holds."""
    from drctl import diverged as dv
    from drctl import inventory as inv_mod
    from drctl.output import console, emit

    inv = inv_mod.load(inventory)
    copy = dv.find(inv, host, name)
    question = (f"Delete {host}:{copy['path']} ({_copy_size(copy['bytes'])})? It holds "
                f"{dv.at_stake(copy)}: they are lost for good.")
    if not yes:
        if not sys.stdin.isatty():
            raise DrctlError(f"deleting {host}:{copy['path']} needs --yes without a "
                             "terminal; nothing was deleted", ExitCode.REFUSED,
                             hint=f"it holds {dv.at_stake(copy)}")
        if not click.confirm(question, default=False, err=True):
            raise DrctlError("nothing was deleted", ExitCode.REFUSED)
    from drctl.journal import Journal
    from drctl.lock import cluster_lock

    with cluster_lock(inv.name, "diverged-drop", inv) as held:
        journal = Journal(inv.name, "diverged-drop", held)
        journal.write("start", host=host, detail=f"{copy['path']}: {dv.at_stake(copy)}")
        result = dv.drop(inv, host, name)
        journal.write("dropped", host=host, detail=copy["path"])
    emit(fmt, result, lambda r: console().print(f"deleted {host}:{copy['path']}"))


@cli.command("confirm-primary")
@common
@click.argument("host")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def confirm_primary(inventory: Path, fmt: str, host: str, yes: bool) -> None:
    """Start a held node as the primary now, on your word.

    A node that would start as a primary stays down until a peer confirms that no
    failover happened while it was away (`drctl status` shows it HELD, and why). When no
    peer can answer and you know it is still the primary, this starts it once. A peer on
    a newer timeline still fences it.
    """
    from drctl import held as held_mod
    from drctl import inventory as inv_mod
    from drctl.lock import cluster_lock
    from drctl.output import console, emit

    inv = inv_mod.load(inventory)
    held = held_mod.held_state(inv, host)
    if not held.get("liftable"):
        raise DrctlError(f"{host}'s hold cannot be lifted: {held.get('reason')}",
                         ExitCode.REFUSED)
    stake = held_mod.at_stake(host, held)
    if not yes:
        if not sys.stdin.isatty():
            raise DrctlError(f"starting {host} as the primary needs --yes without a "
                             "terminal; nothing was started", ExitCode.REFUSED, hint=stake)
        if not click.confirm(f"{stake}\nStart {host} as the primary?", default=False,
                             err=True):
            raise DrctlError("nothing was started", ExitCode.REFUSED)
    with cluster_lock(inv.name, "confirm-primary", inv):
        result = held_mod.confirm(inv, host)
    emit(fmt, result, lambda r: console().print(
        f"{host}: PostgreSQL started as the primary (on the operator's word)"))


# ---------------------------------------------------------------- automatic failover

@cli.group()
def auto() -> None:
    """Automatic failover with repmgrd and a witness: enable, disable, pause, resume, status.

    Armed, a standby promotes itself about 4 s after it and the witness (on the backup
    host) have both lost the primary, through drctl's checks: not fenced, same location
    as the primary, and it holds every commit the watcher saw the primary write (the same
    data-loss rule as `drctl failover`). switchover and failback
    pause it while they run; failover pauses it first.
    """


AUTO_HELP = {
    "enable": "Arm automatic failover: repmgr on every node (registered as they are, no "
              "restart), a witness instance on the backup host, repmgrd under systemd.",
    "disable": "Disarm and remove automatic failover: repmgrd, the witness, the metadata.",
    "pause": "Pause automatic failover (maintenance): repmgrd stops everywhere until resume.",
    "resume": "Resume automatic failover: repmgr's records follow the live roles, repmgrd "
              "starts again.",
}


def _auto_change(action: str):
    @auto.command(action, help=AUTO_HELP[action])
    @common
    @click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
    def command(inventory: Path, fmt: str, yes: bool) -> None:
        from drctl import views
        from drctl.operations import auto as op
        from drctl.output import console

        ui = interaction(yes, fmt)
        if fmt != "json":
            console(stderr=True).print(f"[bold]auto {action}[/bold]: {op.WHAT[action]}")
        try:
            out = op.change(inventory, action, ui)
        except DrctlError as exc:
            if exc.report:
                views.render_auto_change(exc.report, fmt)
            raise
        finally:
            if ui.progress is not None:
                ui.progress.close()
        views.render_auto_change(out, fmt)

    return command


for _action in ("enable", "disable", "pause", "resume"):
    _auto_change(_action)


@cli.group()
def dns() -> None:
    """The service's name (drctl_dns_name): status shows where it points."""


@dns.command("publish")
@common
def dns_publish(inventory: Path, fmt: str) -> None:
    """Point the service's name at the site that serves now (its application VIP): the
    retry after an operation that could not move it. Exits 12 when it still cannot."""
    from drctl import views
    from drctl.operations import dns as op

    views.render_name(op.publish(inventory), fmt)


@auto.command("status")
@common
def auto_status(inventory: Path, fmt: str) -> None:
    """armed, paused, disabled or impossible, and why; exits 7 when impossible."""
    from drctl import views
    from drctl.operations import auto as op

    out = op.status(inventory)
    views.render_auto_status(out, fmt)
    if out["state"] == "impossible":
        sys.exit(int(ExitCode.UNHEALTHY))


# ---------------------------------------------------------------- backups

@cli.command()
@common
@click.option("--type", "kind", type=click.Choice(["full", "diff", "incr"]), default="incr",
              show_default=True, help="Backup type (the first backup is always full).")
@click.option("--from", "source", type=click.Choice(["auto", "standby", "primary"]),
              default="auto", show_default=True,
              help="Copy from the standby (auto: when one is healthy) or the primary.")
@click.option("--repo", type=click.IntRange(min=1), default=None, metavar="N",
              help="Repository N (the Nth host of group backup; default 1).")
def backup(inventory: Path, fmt: str, kind: str, source: str, repo: int | None) -> None:
    """Take a pgBackRest backup and print what it took (type, size, time, WAL range)."""
    from drctl import views
    from drctl.operations import backup as op

    with playbook_ui(fmt) as ui:
        report = op.backup(inventory, kind, source, repo or 1, **ui)
    views.render_backup(report, fmt)


@cli.command()
@common
@click.option("--repo", type=click.IntRange(min=1), default=None, metavar="N",
              help="Repository N (the Nth host of group backup; default 1).")
def backups(inventory: Path, fmt: str, repo: int | None) -> None:
    """List the backups and the recoverable window (earliest and latest restorable time),
    and a line for each other repository."""
    from drctl import views
    from drctl.operations import backup as op

    views.render_backups(op.backups(inventory, repo), fmt)


@cli.command()
@common
@click.option("--to", "to", metavar="HOST",
              help="Where to restore: a repository host (default: the first of group backup); "
                   "cluster members are refused.")
@click.option("--target-time", metavar="TIME", type=IsoTime(),
              help="Recover to this time (ISO 8601; UTC if no zone is given).")
@click.option("--target-lsn", metavar="LSN", type=Lsn(),
              help="Recover to this LSN (e.g. 0/3000060).")
@click.option("--latest", is_flag=True, help="Recover to the end of the archived WAL.")
@click.option("--name", default="restore", show_default=True, type=SafeName(),
              help="Name of the scratch instance.")
@click.option("--replace", is_flag=True, help="Replace a scratch instance of the same name.")
@click.option("--drop", is_flag=True, help="Stop and remove the scratch instance instead.")
@click.option("--repo", type=click.IntRange(min=1), default=None, metavar="N",
              help="Restore from repository N, on its host (the Nth of group backup).")
def restore(inventory: Path, fmt: str, to: str | None, target_time: str | None,
            target_lsn: str | None, latest: bool, name: str, replace: bool,
            drop: bool, repo: int | None) -> None:
    """Point-in-time restore into a scratch instance, started so that it can be checked."""
    from drctl import views
    from drctl.operations import backup as op

    with playbook_ui(fmt) as ui:
        report = op.restore(inventory, to=to, target_time=target_time, target_lsn=target_lsn,
                            latest=latest, name=name, replace=replace, drop=drop, repo=repo,
                            **ui)
    views.render_restore(report, fmt)


@cli.command("verify-backup")
@common
@click.option("--sql", default="", help="A check query: it passes when its first value is "
              "not false, 0 or empty.")
@click.option("--database", default="postgres", show_default=True,
              help="Database the --sql check runs in.")
@click.option("--repo", type=click.IntRange(min=1), default=None, metavar="N",
              help="Repository N (the Nth host of group backup; default 1).")
def verify_backup(inventory: Path, fmt: str, sql: str, database: str,
                  repo: int | None) -> None:
    """Prove the latest backup: restore it into a scratch instance, start it, read every
    table, run the --sql check, remove it."""
    from drctl import views
    from drctl.operations import backup as op

    try:
        with playbook_ui(fmt) as ui:
            report = op.verify(inventory, sql=sql, database=database, repo=repo or 1, **ui)
    except DrctlError as exc:
        if exc.report:
            views.render_verify(exc.report, fmt)
        raise
    views.render_verify(report, fmt)


# ---------------------------------------------------------------- drill

@cli.command()
@common
@click.option("--scenario", type=click.Choice(["switchover", "failover", "failback-cycle",
                                                 "auto-failover", "site-failover",
                                                 "site-failback-cycle", "app-host-loss"]),
              default="switchover", show_default=True, help="What happens during the drill.")
@click.option("--duration", type=FiniteFloatRange(5, 3600), default=20, show_default=True,
              help="Seconds the workload runs at least (longer if the operation takes longer).")
@click.option("--rate", type=FiniteFloatRange(1, 5000), default=100, show_default=True,
              help="SQL writes per second through the VIP.")
@click.option("--app-rate", type=FiniteFloatRange(0, 100), default=2, show_default=True,
              help="Registrations (each followed by a login) per second through the app "
                   "(0: no app load).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Directory for the JSON and HTML reports (default: the state directory's "
                   "drills/).")
@click.option("--allow-data-loss", is_flag=True,
              help="The site scenarios promote an asynchronous remote standby: consent to "
                   "lose the acknowledged commits that had not reached it (counted in the "
                   "report). Required for them.")
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask for confirmation (required without a terminal).")
def drill(inventory: Path, fmt: str, scenario: str, duration: float, rate: float,
          app_rate: float, out_dir: Path | None, allow_data_loss: bool, yes: bool) -> None:
    """Measure what the business sees during an operation: write outage, app errors,
    writes lost; writes a JSON and a self-contained HTML report."""
    from drctl import views
    from drctl.operations import drill as op
    from drctl.output import console

    err = console(stderr=True)
    report = op.drill(inventory, scenario=scenario, duration=duration, rate=rate,
                      app_rate=app_rate, out_dir=out_dir, ui=interaction(yes, "json"),
                      allow_data_loss=allow_data_loss,
                      say=(lambda m: err.print(f"[dim]drill:[/dim] {m}")) if fmt != "json"
                      else None)
    views.render_drill(report, fmt)
    if not report["ok"]:
        raise DrctlError(f"drill {scenario} failed: "
                         f"{report['error'] or str(report['sql']['lost']) + ' writes lost'}",
                         ExitCode.FAILED, hint=f"see {report['html_path']}")


@cli.command()
@common
@click.option("--last", type=click.IntRange(min=1), default=50, show_default=True,
              help="How many entries.")
@click.option("--op", "op_id", help="Only the steps of one operation (its op_id).")
@click.option("--local", is_flag=True,
              help="This machine's journal (drctl's runs from here) instead of the cluster's.")
def journal(inventory: Path, fmt: str, last: int, op_id: str | None, local: bool) -> None:
    """Show the journal: every step of every operation, and who ran it.

    The cluster's journal is kept on the ledger host (drctl_ledger_host, by default the
    first backup host) and holds every run: drctl's from any machine, ansible-playbook's
    and AWX's. Without a ledger host, or with --local, this machine's journal is shown."""
    from drctl import inventory as inv_mod
    from drctl import journal as journal_mod
    from drctl import ledger
    from drctl.output import console, emit

    inv = inv_mod.load(inventory)
    where = "local"
    entries = []
    if not local and ledger.host(inv):
        answer = ledger.read(inv, last=last, op_id=op_id)
        if answer.get("ok"):
            entries, where = answer["entries"], str(answer.get("host"))
        else:
            console(stderr=True).print(
                f"[yellow]warning:[/yellow] the cluster's journal on {answer.get('host')} "
                f"cannot be read ({answer.get('error')}); showing this machine's")
    if where == "local":
        entries = journal_mod.read(inv.name, last=last, op_id=op_id)

    def pretty(rows):
        for e in rows:
            extra = " ".join(f"{k}={e[k]}" for k in ("lsn", "timeline", "vip_holder")
                             if e.get(k) is not None)
            click.echo(f"{e.get('time')}  {e.get('operation') or '-':<12} {e.get('op_id')}  "
                       f"{e.get('step') or '-':<14} {e.get('host') or '-':<8} "
                       f"{e.get('result') or '-':<8} {e.get('who') or '-'}  {extra}".rstrip())

    emit(fmt, entries, pretty)


@cli.command()
@common
@click.option("--force", is_flag=True,
              help="Clear the lock even if its holder may still run (this machine's live "
                   "process, or any holder of the cluster's lock on the ledger host).")
def unlock(inventory: Path, fmt: str, force: bool) -> None:
    """Clear the cluster lock left by a run that died mid-operation."""
    from drctl import inventory as inv_mod
    from drctl import lock
    from drctl.output import emit

    inv = inv_mod.load(inventory)
    cleared = lock.unlock(inv.name, force=force, inv=inv)

    def pretty(d: dict) -> None:
        if cleared["local"]:
            click.echo(f"cleared this machine's lock: {lock.describe(cleared['local'])}")
        if cleared["cluster"]:
            click.echo(f"cleared the cluster's lock: {lock.ledger_describe(cleared['cluster'])}")
        if not any(cleared.values()):
            click.echo("no lock was held")

    emit(fmt, {"cleared": cleared}, pretty)


@cli.command("exit-codes")
@format_option
def exit_codes(fmt: str) -> None:
    """List drctl's exit codes and what each means."""
    from drctl.exitcodes import describe
    from drctl.output import emit

    rows = describe()
    emit(fmt, [{"code": c, "name": n, "meaning": m} for c, n, m in rows],
         lambda _: click.echo("\n".join(f"{c:>3}  {n:<18} {m}" for c, n, m in rows)))


# An example for every command, shown at the end of its --help (a unit test holds every
# command to having one).
EXAMPLES: dict[str, list[str]] = {
    "lab up": ["drctl lab up", "drctl lab up --sites 2 --fresh"],
    "lab image": ["drctl lab image"],
    "lab down": ["drctl lab down --purge-image"],
    "lab snapshot": ["drctl lab snapshot before-upgrade"],
    "lab restore": ["drctl lab restore before-upgrade"],
    "lab snapshots": ["drctl lab snapshots --format json"],
    "lab status": ["drctl lab status"],
    "lab wan cut": ["drctl lab wan cut"],
    "lab wan restore": ["drctl lab wan restore"],
    "lab wan status": ["drctl lab wan status"],
    "ping": ["drctl ping -i inventories/prod/hosts.yml"],
    "provision": ["drctl provision --check", "drctl provision"],
    "status": ["drctl status", "drctl status --format json | jq .vip_holders"],
    "switchover": ["drctl switchover --plan", "drctl switchover --to pg2 --yes"],
    "failover": ["drctl failover --plan", "drctl failover --to pg2",
                 "drctl failover --site dc2 --allow-data-loss"],
    "failback": ["drctl failback --plan", "drctl failback --node pg1 --switch-back",
                 "drctl failback --site dc1 --switch-back"],
    "diverged list": ["drctl diverged list"],
    "diverged show": ["drctl diverged show pg1 main.diverged-20261204T120000Z"],
    "diverged drop": ["drctl diverged drop pg1 main.diverged-20261204T120000Z"],
    "confirm-primary": ["drctl confirm-primary pg1"],
    "auto enable": ["drctl auto enable"],
    "auto disable": ["drctl auto disable --yes"],
    "auto pause": ["drctl auto pause"],
    "auto resume": ["drctl auto resume"],
    "auto status": ["drctl auto status --format json"],
    "dns publish": ["drctl dns publish", "drctl dns publish -i inventories/prod --format json"],
    "backup": ["drctl backup --type full", "drctl backup --repo 2 --type incr"],
    "backups": ["drctl backups", "drctl backups --repo 2 --format json"],
    "restore": ["drctl restore --latest", "drctl restore --target-time 2026-12-04T09:30:00Z",
                "drctl restore --name restore --drop"],
    "verify-backup": ["drctl verify-backup --sql 'select count(*) > 0 from app.users' "
                      "--database app"],
    "drill": ["drctl drill --scenario switchover --yes",
              "drctl drill --scenario failback-cycle --duration 30 --yes"],
    "journal": ["drctl journal --last 20", "drctl journal --op OP_ID --format json"],
    "unlock": ["drctl unlock", "drctl unlock --force"],
    "exit-codes": ["drctl exit-codes --format json"],
}


def _leaf_commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found.update(_leaf_commands(command, path + " "))
        else:
            found[path] = command
    return found


for _path, _command in _leaf_commands(cli).items():
    if _path in EXAMPLES:
        _command.epilog = "\b\nExamples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[_path])


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except DrctlError as exc:
        exc.show()
        if json_chosen():
            emit_error_json(exc.message, exc.exit_code, exc.code.name, exc.hint)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(int(ExitCode.REFUSED))
    except click.UsageError as exc:  # one line, as drctl's own usage errors
        where = exc.ctx.command_path if exc.ctx is not None else "drctl"
        click.echo(f"Error: {exc.format_message()} (see `{where} --help`)", err=True)
        if json_chosen():
            emit_error_json(exc.format_message(), exc.exit_code, ExitCode.USAGE.name,
                            f"see `{where} --help`")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        if json_chosen():
            names = {int(c): c.name for c in ExitCode}
            emit_error_json(exc.format_message(), exc.exit_code,
                            names.get(exc.exit_code, "FAILED"), "see the command's --help")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(int(ExitCode.CANCELED))
    except SystemExit:
        raise
    except Exception as exc:  # a bug: say so, with the exit code for bugs
        import traceback

        traceback.print_exc()
        click.echo(f"drctl: internal error: {exc}", err=True)
        sys.exit(int(ExitCode.INTERNAL))
