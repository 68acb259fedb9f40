"""drctl's command line: thin click commands that hand over to drctl.operations, one
module per command group (base: the group and the options every command shares).

Heavy imports (ansible_runner, rich, psycopg) happen inside the commands so that
`drctl --help` stays fast (bench/cli_help.py measures it).
"""

from __future__ import annotations

import sys

import click

from drctl.cli import automatic, backup, cluster, diverged, lab, records
from drctl.cli.base import cli
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.output import emit_error_json, json_chosen

__all__ = ["EXAMPLES", "cli", "main"]

# the modules that add their commands to the group when they are imported
COMMAND_GROUPS = (automatic, backup, cluster, diverged, lab, records)

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
    "rebuild": ["drctl rebuild --on cloud1 --repo 3 --plan",
                "drctl rebuild --on cloud1 --repo 3 --allow-data-loss"],
    "verify-backup": ["drctl verify-backup --sql 'select count(*) > 0 from app.users' "
                      "--database app"],
    "drill": ["drctl drill --scenario switchover --yes",
              "drctl drill --scenario failback-cycle --duration 30 --yes",
              "drctl drill --scenario cloud-restore --allow-data-loss --yes"],
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
