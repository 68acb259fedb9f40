"""What an operator reads afterwards: drills and their reports, the journal, the lock,
the exit codes."""

from __future__ import annotations

from pathlib import Path

import click

from drctl.cli.base import (
    cli,
    common,
    format_option,
    interaction,
)
from drctl.cli_types import FiniteFloatRange
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode


@cli.command()
@common
@click.option("--scenario", type=click.Choice(["switchover", "failover", "failback-cycle",
                                                 "auto-failover", "site-failover",
                                                 "site-failback-cycle", "app-host-loss",
                                                 "cloud-restore"]),
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
              help="The site scenarios promote an asynchronous remote standby, and "
                   "cloud-restore rebuilds from an object store: consent to lose the "
                   "acknowledged commits that had not reached it (counted in the report). "
                   "Required for them.")
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
    from drctl import ledger, views
    from drctl.output import console

    inv = inv_mod.load(inventory)
    where = "local"
    entries = []
    book = ledger.of(inv)
    if not local and book.shared:
        answer = book.read(last=last, op_id=op_id)
        if answer.get("ok"):
            entries, where = answer["entries"], str(answer.get("host"))
        else:
            console(stderr=True).print(
                f"[yellow]warning:[/yellow] the cluster's journal on {answer.get('host')} "
                f"cannot be read ({answer.get('error')}); showing this machine's")
    if where == "local":
        entries = journal_mod.read(inv.name, last=last, op_id=op_id)

    views.render_journal(entries, fmt)


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
