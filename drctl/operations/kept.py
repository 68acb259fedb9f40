"""Two changes an operator makes on their own word, under the cluster's lock and in the
journal like every operation: deleting a kept copy of diverged data, and starting a held
node as the primary. The question before each is the CLI's; what is at stake is said
by drctl.diverged and drctl.held."""

from __future__ import annotations

from typing import Any

from drctl import diverged as dv
from drctl import held as held_mod
from drctl.inventory import Inventory
from drctl.journal import Journal
from drctl.lock import cluster_lock


def drop_copy(inv: Inventory, host: str, name: str, copy: dict[str, Any]) -> dict[str, Any]:
    """Delete the kept copy NAME on HOST (COPY: what dv.find said of it, which the
    operator was shown), journalled with what it held."""
    with cluster_lock(inv.name, "diverged-drop", inv) as held:
        journal = Journal(inv.name, "diverged-drop", held)
        journal.write("start", host=host, detail=f"{copy['path']}: {dv.at_stake(copy)}")
        result = dv.drop(inv, host, name)
        journal.write("dropped", host=host, detail=copy["path"])
    return result


def confirm_primary(inv: Inventory, host: str) -> dict[str, Any]:
    """Start the held node HOST as the primary, on the operator's word."""
    with cluster_lock(inv.name, "confirm-primary", inv):
        return held_mod.confirm(inv, host)
