"""`drctl diverged`: the kept copies of diverged data that failback set aside."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from drctl.cli.base import (
    cli,
    common,
)
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode


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
    from drctl.operations import kept

    result = kept.drop_copy(inv, host, name, copy)
    emit(fmt, result, lambda r: console().print(f"deleted {host}:{copy['path']}"))
