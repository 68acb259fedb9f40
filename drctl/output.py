"""One renderer for every command: pretty (rich) for people, json for programs.

Progress goes to stderr so that stdout stays clean for results; with
`--format json` there is no progress at all and stdout holds one JSON document.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable
from typing import Any

FORMATS = ("pretty", "json")
_MARK = {"ok": "ok", "changed": "changed", "skipped": "skipped", "failed": "FAILED",
         "unreachable": "UNREACHABLE"}


def console(stderr: bool = False) -> Any:  # a rich.console.Console, imported lazily
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 160  # pipes and CI logs: no wrapping at 80
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


_EMITTED: list[bool] = []  # whether this process wrote its JSON document yet


def emit_json(data: Any) -> None:
    _EMITTED.append(True)
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


_CHOSEN: list[str] = []  # the --format click parsed for this process's command


def choose_format(value: str) -> str:
    """Record the command's --format as click parses it (the option's callback)."""
    _CHOSEN.append(value)
    return value


def json_chosen(argv: list[str] | None = None) -> bool:
    """Whether this process's command asked for --format json. Before click parsed it (a
    usage error: an unknown option or verb, a bad value), the words themselves are read:
    a script that asked for JSON gets its error as JSON too."""
    if _CHOSEN:
        return _CHOSEN[-1] == "json"
    words = list(sys.argv[1:] if argv is None else argv)
    if "--" in words:
        words = words[:words.index("--")]
    asked = [w.split("=", 1)[1] if w.startswith("--format=") else nxt
             for w, nxt in itertools.pairwise([*words, ""])
             if w == "--format" or w.startswith("--format=")]
    return bool(asked) and asked[-1] == "json"


def emit_error_json(message: str, code: int, name: str, hint: str | None) -> None:
    """With --format json, stdout holds one JSON document even when a command fails
    before it has a report: the error, its exit code and the hint. Nothing when the
    command already wrote its document (a report of what it got to)."""
    if not _EMITTED:
        emit_json({"ok": False, "error": message, "exit_code": code, "exit_name": name,
                   "hint": hint})


def emit(fmt: str, data: Any, pretty: Callable[[Any], None]) -> None:
    if fmt == "json":
        emit_json(data)
    else:
        pretty(data)


class _Silent:
    """Where progress goes when it is off."""

    def print(self, *args: Any, **kwargs: Any) -> None:
        pass


class Progress:
    """Turns runner progress callbacks into one line per finished task.

    A task's line lists each host's outcome; failures carry their message.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.con = console(stderr=True) if enabled else _Silent()
        self.task: str | None = None
        self.hosts: dict[str, str] = {}
        self.msgs: list[str] = []
        self.count = 0

    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if kind == "play":
            self._flush()
            self.con.print(f"[bold]PLAY[/bold] {info['play']}")
        elif kind == "task":
            self._flush()
            self.task = info["task"]
        elif kind == "host":
            self.hosts[info["host"]] = info["state"]
            if info.get("msg"):
                self.msgs.append(f"{info['host']}: {info['msg']}")

    def _flush(self) -> None:
        if self.task is None:
            return
        states = set(self.hosts.values())
        if self.hosts and states <= {"skipped"}:
            self.task, self.hosts, self.msgs = None, {}, []
            return
        self.count += 1
        bad = states & {"failed", "unreachable"}
        colour = "red" if bad else "yellow" if "changed" in states else "green"
        hosts = ", ".join(f"{h} {_MARK.get(s, s)}" for h, s in sorted(self.hosts.items()))
        self.con.print(f"  [{colour}]{'x' if bad else '-'}[/{colour}] {self.task}"
                       + (f"  [dim]({hosts})[/dim]" if hosts else ""))
        for m in self.msgs:
            self.con.print(f"      [red]{m}[/red]")
        self.task, self.hosts, self.msgs = None, {}, []

    def close(self) -> None:
        if self.enabled:
            self._flush()
