"""What `drctl auto` prints: a change, and the state of automatic failover."""

from __future__ import annotations

from typing import Any

from drctl.auto_state import describe as auto_describe
from drctl.output import console, emit_json


def render_auto_change(out: dict[str, Any], fmt: str) -> None:
    """`drctl auto enable|disable|pause|resume`."""
    if fmt == "json":
        emit_json(out)
        return
    console().print(f"auto {out['action']} {out['result']} in {out['duration_s']} s; "
                    + auto_describe(out["auto"]))


def render_auto_status(out: dict[str, Any], fmt: str) -> None:
    """`drctl auto status`."""
    if fmt == "json":
        emit_json(out)
        return
    con = console()
    colour = {"armed": "green", "paused": "yellow", "impossible": "red"}.get(out["state"], "dim")
    con.print(f"automatic failover on cluster '{out['cluster']}': "
              f"[{colour}]{out['state']}[/{colour}]")
    if out.get("eligible"):
        con.print(f"  would promote: {', '.join(out['eligible'])}")
    for r in out["reasons"]:
        con.print(f"  - {r}")
    for host, n in out["nodes"].items():
        lag = n.get("lag_sample") or {}
        con.print(f"  {host:<10} repmgrd {n['repmgrd']}, location {n['location']}, "
                  f"witness {'visible' if n['witness_visible'] else 'NOT visible'}"
                  + (f", lag {lag['lag_bytes']} B ({lag['age_s']} s ago)" if lag else ""))
    lr = out.get("last_refusal")
    if lr:
        con.print(f"  last refused promotion: {lr['host']} at {lr['at']}: {lr.get('detail')}")
    lp = out.get("last_promotion")
    if lp:
        con.print(f"  last automatic promotion: {lp['host']} at {lp['at']} "
                  f"(timeline {lp.get('timeline')})")
