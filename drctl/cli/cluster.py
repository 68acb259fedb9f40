"""The cluster's verbs: ping, provision, status, switchover, failover, failback,
confirm-primary, and the service's name (`drctl dns`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from drctl.cli.base import (
    cli,
    common,
    operation_options,
    playbook_ui,
    run_prepared,
)
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode


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
    from drctl.operations import kept

    result = kept.confirm_primary(inv, host)
    emit(fmt, result, lambda r: console().print(
        f"{host}: PostgreSQL started as the primary (on the operator's word)"))



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
