"""Nodes whose PostgreSQL start is held: they would start as a primary and no peer has
confirmed that they still are one (drctl-node fence-check). They start by themselves
once a peer answers; `drctl confirm-primary` starts one on an operator's word."""

from __future__ import annotations

from typing import Any

from drctl import inventory as inv_mod
from drctl import sshprobe
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode


def held_state(inv: inv_mod.Inventory, host: str) -> dict[str, Any]:
    """What HOST's probe says of its held start (DrctlError when it is not held)."""
    inv.require_pg_host(host)
    res = sshprobe.probe(inv, host)
    if not res.ok or res.data is None:
        raise DrctlError(f"{host} does not answer: {res.error}", ExitCode.UNREACHABLE)
    held = res.data.get("start_held")
    if not held:
        running = bool(res.data.get("postgres"))
        raise DrctlError(f"{host} holds no start: nothing to confirm "
                         f"(PostgreSQL is {'running' if running else 'down for another reason'})",
                         ExitCode.REFUSED,
                         hint=None if running else "drctl status says why a node is down")
    return dict(held)


def at_stake(host: str, held: dict[str, Any]) -> str:
    """What starting HOST without a peer's confirmation risks, in words."""
    silent = [p["name"] for p in held.get("peers") or [] if not p.get("role")]
    return (f"{host} would start as a writable primary on timeline {held.get('timeline')}. "
            f"If another node was promoted while {host} was away "
            f"({', '.join(silent) or 'no peer'} did not answer), both accept writes and the "
            f"writes of one of them are set aside when it rejoins. Held because: "
            f"{held.get('reason')}")


def confirm(inv: inv_mod.Inventory, host: str) -> dict[str, Any]:
    """Lift HOST's hold once and start PostgreSQL there (a peer on a newer timeline still
    fences it: the node decides again at the start)."""
    answer = sshprobe.node_json(inv, host, ["confirm-primary", "--by", "drctl confirm-primary"],
                        timeout=330)
    if not answer.get("ok"):
        raise DrctlError(f"{host}: {answer.get('error')}", ExitCode.UNREACHABLE
                         if answer.get("unreachable") else ExitCode.FAILED)
    return answer
