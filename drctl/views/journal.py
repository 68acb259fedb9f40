"""What `drctl journal` prints: one line a step (time, operation, op id, step, host,
result, who, and the LSN, timeline and VIP holder where the step recorded them)."""

from __future__ import annotations

from typing import Any

import click

from drctl.output import emit_json


def render_journal(entries: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        emit_json(entries)
        return
    for e in entries:
        extra = " ".join(f"{k}={e[k]}" for k in ("lsn", "timeline", "vip_holder")
                         if e.get(k) is not None)
        click.echo(f"{e.get('time')}  {e.get('operation') or '-':<12} {e.get('op_id')}  "
                   f"{e.get('step') or '-':<14} {e.get('host') or '-':<8} "
                   f"{e.get('result') or '-':<8} {e.get('who') or '-'}  {extra}".rstrip())
