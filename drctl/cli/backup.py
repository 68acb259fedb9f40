"""Backups: backup, backups, restore, verify-backup (pgBackRest)."""

from __future__ import annotations

from pathlib import Path

import click

from drctl.cli.base import (
    cli,
    common,
    operation_options,
    playbook_ui,
    run_prepared,
)
from drctl.cli_types import IsoTime, Lsn, SafeName
from drctl.errors import DrctlError


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


@cli.command()
@common
@operation_options
@click.option("--on", "on", required=True, metavar="HOST",
              help="The host to rebuild the cluster on: one of group cloud, outside the sites.")
@click.option("--repo", type=click.IntRange(min=1), required=True, metavar="N",
              help="The object-store repository to restore from (its number, e.g. 3).")
@click.option("--target-time", metavar="TIME", type=IsoTime(),
              help="Stop the replay at this time (ISO 8601; UTC if no zone is given) "
                   "instead of the end of the archived WAL.")
@click.option("--allow-data-loss", is_flag=True,
              help="Consent to losing what the object store lacks (the WAL being written "
                   "when the sites were lost; how much is never known): required.")
@click.option("--despite-primary", metavar="HOST",
              help="A node that still answers as a primary, left running (told first): "
                   "without it, such a node refuses the rebuild.")
@click.option("--replace", is_flag=True,
              help="Replace a cluster an earlier rebuild left on the host (it is lost).")
def rebuild(inventory: Path, fmt: str, yes: bool, show_plan: bool, on: str, repo: int,
            target_time: str | None, allow_data_loss: bool, despite_primary: str | None,
            replace: bool) -> None:
    """No site survives: build a new primary on a cloud host from an object store alone,
    and state its recovery point (the last commit replayed) and recovery time."""
    from drctl import views
    from drctl.operations import rebuild as op

    run_prepared(op.prepare(inventory, on, repo, target_time, allow_data_loss,
                            despite_primary, replace), fmt, yes, show_plan,
                 render=views.render_rebuild)
