"""`drctl lab`: the local lab of containers (up, down, snapshots, the WAN link)."""

from __future__ import annotations

import sys
from typing import Any

import click

from drctl.cli.base import (
    cli,
    format_option,
)
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode


@cli.group()
def lab() -> None:
    """The local lab of containers (the embedded default for demo and tests)."""


def _lab() -> Any:
    """The development lab (the package drctl_lab, beside drctl in this repository); a
    clear error where drctl was installed without it."""
    try:
        from drctl_lab import lab as labmod
    except ImportError as exc:
        raise DrctlError("the lab is drctl's development tool and is not installed here "
                         f"({exc})", ExitCode.USAGE,
                         hint="run `drctl lab` from a checkout of drctl's repository "
                              "(`make setup` installs it)") from None
    return labmod


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
    from drctl.output import console, emit
    labmod = _lab()

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
    labmod = _lab()

    labmod.ensure_engine(lambda m: click.echo(m, err=True))
    tag, _ = labmod.ensure_image(lambda m: click.echo(m, err=True))
    click.echo(tag)


@lab.command("down")
@click.option("--purge-image", is_flag=True, help="Also remove the cached lab image.")
@format_option
def lab_down(purge_image: bool, fmt: str) -> None:
    """Remove the lab's containers, network, keys and generated inventory."""
    from drctl.output import console, emit
    labmod = _lab()

    result = labmod.down(_say(fmt), purge_image=purge_image)
    emit(fmt, result, lambda r: console().print(
        f"lab removed: {r['containers_removed']} containers, "
        f"{'networks' if len(r['networks_removed']) > 1 else 'network'}, inventory and keys"))


@lab.command("snapshot")
@click.argument("name", default="provisioned")
@format_option
def lab_snapshot(name: str, fmt: str) -> None:
    """Freeze every lab host at the same instant and keep it as snapshot NAME."""
    from drctl.output import console, emit
    labmod = _lab()

    result = labmod.snapshot(name, _say(fmt))
    emit(fmt, result, lambda r: console().print(
        f"snapshot {r['name']!r} of {', '.join(r['hosts'])} taken in {r['seconds']} s; "
        f"`drctl lab restore {r['name']}` brings the lab back to it"))


@lab.command("restore")
@click.argument("name", default="provisioned")
@format_option
def lab_restore(name: str, fmt: str) -> None:
    """Replace every lab host by its state in snapshot NAME (seconds, not a provision)."""
    from drctl.output import console, emit
    labmod = _lab()

    result = labmod.restore(name, _say(fmt))
    emit(fmt, result, lambda r: console().print(
        f"lab restored from snapshot {r['name']!r} in {r['seconds']} s"))


@lab.command("snapshots")
@format_option
def lab_snapshots(fmt: str) -> None:
    """List the lab's snapshots."""
    import datetime

    from drctl.output import console, emit
    labmod = _lab()

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
    from drctl.output import console, emit
    labmod = _lab()

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
    labmod = _lab()

    _wan_emit(fmt, labmod.wan_cut())


@lab_wan.command("restore")
@format_option
def lab_wan_restore(fmt: str) -> None:
    """End a cut: the sites reach each other again."""
    labmod = _lab()

    _wan_emit(fmt, labmod.wan_restore())


@lab_wan.command("status")
@format_option
def lab_wan_status(fmt: str) -> None:
    """Whether the WAN between the sites is up or cut."""
    labmod = _lab()

    _wan_emit(fmt, labmod.wan_status())
