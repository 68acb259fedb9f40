"""What every drctl command shares: the `drctl` group, the -i/--inventory and --format
options, and how an operation reaches the terminal (progress, questions, plans).

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
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.output import FORMATS, choose_format
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
                 run: Callable[[Any], dict[str, Any]] | None = None,
                 render: Callable[[dict[str, Any], str], None] | None = None) -> None:
    """--plan, or run the prepared operation and render what it returns (also when it
    ended badly: the report rides on the error) with RENDER (default: an operation's
    result, views.render_result)."""
    from drctl import views

    if show_plan:
        views.show_plan(prepared.plan, fmt)
        if not prepared.plan.ok:
            sys.exit(int(ExitCode.REFUSED))
        return
    run_and_render(interaction(yes, fmt), run or prepared.run,
                   render or views.render_result, fmt)


def run_and_render(ui: Any, run: Callable[[Any], dict[str, Any]],
                   render: Callable[[dict[str, Any], str], None], fmt: str) -> None:
    """Run an operation with the terminal's interaction and render what it returns, also
    when it ended badly (the report rides on the error); its progress lines end first."""
    try:
        report = run(ui)
    except DrctlError as exc:
        if exc.report:
            render(exc.report, fmt)
        raise
    finally:
        if ui.progress is not None:
            ui.progress.close()
    render(report, fmt)
