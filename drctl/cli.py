"""drctl's command line: thin click commands that hand over to drctl.operations.

Heavy imports (ansible_runner, rich, psycopg) happen inside the commands so that
`drctl --help` stays fast (bench/cli_help.py measures it).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from drctl import __version__
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.output import FORMATS
from drctl.paths import default_inventory


def inventory_option(f):
    return click.option(
        "-i", "--inventory", "inventory", type=click.Path(path_type=Path),
        default=None, show_default="inventories/lab/hosts.yml, or $DRCTL_INVENTORY",
        help="Inventory file (validated before anything remote happens).")(f)


def format_option(f):
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="pretty",
                        show_default=True, help="Output for people or for programs.")(f)


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
@format_option
def lab_up(fresh: bool, fmt: str) -> None:
    """Build the image (once), start the containers, write inventories/lab/."""
    from drctl import lab as labmod
    from drctl.output import console, emit

    result = labmod.up(_say(fmt), fresh=fresh)

    def pretty(r):
        con = console()
        con.print(f"lab is up in {r['seconds']} s (image {r['image']}"
                  f"{', built now' if r['image_built'] else ', cached'}); "
                  f"{'changed' if r['changed'] else 'nothing changed'}")
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
        f"lab removed: {r['containers_removed']} containers, network, inventory and keys"))


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
            ssh = "[green]ssh ok[/green]" if r["ssh"] else "[red]no ssh[/red]"
            con.print(f"{r['host']:<8} {r['address']:<15} {r['group']:<11} "
                      f"{r['container']:<9} {ssh}")

    emit(fmt, rows, pretty)
    if not all(r["ssh"] for r in rows):
        sys.exit(int(ExitCode.UNREACHABLE))


# ---------------------------------------------------------------- cluster verbs

@cli.command()
@common
def ping(inventory: Path, fmt: str) -> None:
    """Check that every host answers over SSH through Ansible."""
    from drctl.operations import playbook

    result = playbook.run("ping.yml", inventory, fmt, title="ping")
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
    from drctl.operations import provision as op

    op.provision(inventory, fmt, check=check, force_reclone=force_reclone)


@cli.command()
@common
def status(inventory: Path, fmt: str) -> None:
    """Roles, timelines, LSNs, lag, slots and VIP holders; exits 7 when unhealthy."""
    from drctl import status as st

    report = st.collect(inventory)
    st.render(report, fmt)
    if not report["healthy"]:
        sys.exit(int(ExitCode.UNHEALTHY))


@cli.command("exit-codes")
@format_option
def exit_codes(fmt: str) -> None:
    """List drctl's exit codes and what each means."""
    from drctl.exitcodes import describe
    from drctl.output import emit

    rows = describe()
    emit(fmt, [{"code": c, "name": n, "meaning": m} for c, n, m in rows],
         lambda _: click.echo("\n".join(f"{c:>3}  {n:<18} {m}" for c, n, m in rows)))


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except DrctlError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(int(ExitCode.REFUSED))
    except click.ClickException as exc:
        exc.show()
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
