"""`drctl auto`: automatic failover with repmgrd and a witness."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from drctl.cli.base import (
    cli,
    common,
    interaction,
    run_and_render,
)
from drctl.exitcodes import ExitCode


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
        from drctl.operations import automatic as op
        from drctl.output import console

        ui = interaction(yes, fmt)
        if fmt != "json":
            console(stderr=True).print(f"[bold]auto {action}[/bold]: {op.WHAT[action]}")
        run_and_render(ui, lambda ui: op.change(inventory, action, ui),
                       views.render_auto_change, fmt)

    return command


for _action in ("enable", "disable", "pause", "resume"):
    _auto_change(_action)


@auto.command("status")
@common
def auto_status(inventory: Path, fmt: str) -> None:
    """armed, paused, disabled or impossible, and why; exits 7 when impossible."""
    from drctl import views
    from drctl.operations import automatic as op

    out = op.status(inventory)
    views.render_auto_status(out, fmt)
    if out["state"] == "impossible":
        sys.exit(int(ExitCode.UNHEALTHY))
