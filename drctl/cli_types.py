"""click parameter types that refuse bad values while the command line is parsed: a
usage error (exit 2) naming the option, before any file is read or host is asked."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

import click

from drctl.rules import lsn


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses NaN and infinity (NaN passes every comparison)."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if isinstance(number, float) and not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class IsoTime(click.ParamType):
    """An ISO 8601 time (UTC when no zone is given); the text is kept as given."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        text = str(value).strip()
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"cannot read {value!r} as a time: use ISO 8601, e.g. "
                      "2026-11-26T13:05:00Z (no zone means UTC).", param, ctx)
        return text


class Lsn(click.ParamType):
    """A PostgreSQL WAL position, e.g. 0/3000060."""

    name = "lsn"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        try:
            lsn.parse(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a WAL position (e.g. 0/3000060).", param, ctx)
        return str(value)


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


class SafeName(click.ParamType):
    """A name that becomes part of a path on a host: letters, digits, '_', '.', '-' (no
    separators, no '..'), at most 63 characters."""

    name = "name"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        text = str(value)
        if not NAME.fullmatch(text) or ".." in text:
            self.fail(f"{value!r} cannot be a name here: use letters, digits, '_', '.' and "
                      "'-' (no '/', no '..'), at most 63 characters.", param, ctx)
        return text
