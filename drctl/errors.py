"""drctl's exception: a message a person can act on, and the exit code that goes with it."""

from typing import Any

import click

from drctl.exitcodes import ExitCode


class DrctlError(click.ClickException):
    """An error that ends the command with a specific exit code.

    `hint` is printed on its own line as what to do next; `report`, when set, is the
    result of an operation that ran and ended badly (the CLI renders it first).
    """

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED, hint: str | None = None,
                 report: dict[str, Any] | None = None):
        super().__init__(message)
        self.report = report  # what the operation got to, for the caller to show
        # click declares exit_code on the class; each error carries its own
        self.exit_code = int(code)  # type: ignore[misc]
        self.code = code
        self.hint = hint

    def format_message(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message
