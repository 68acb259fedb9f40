"""drctl dns publish: point the service's name at the serving site now (the retry after
an operation that could not move it, or after a DNS outage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drctl import dns
from drctl import inventory as inv_mod
from drctl import status as status_mod
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.journal import Journal
from drctl.lock import cluster_lock


def publish(inventory: Path) -> dict[str, Any]:
    """Under the cluster's lock: gather the cluster's state now and point the name at the
    site that serves; the journal records it."""
    inv = inv_mod.load(inventory)
    if dns.settings(inv) is None:
        raise DrctlError("the service's name is not managed: the inventory sets no "
                         "drctl_dns_name", ExitCode.USAGE,
                         hint="set drctl_dns_name and its zone, server and key (README: "
                              "the service's name)")
    with cluster_lock(inv.name, "dns-publish", inv) as held:
        journal = Journal(inv.name, "dns-publish", held)
        journal.write("start")
        try:
            report = status_mod.collect(inv)
            done = dns.follow(inv, report)
        except dns.NameNotMoved as exc:
            journal.write("name-not-moved", result="error", detail=str(exc)[:300])
            journal.write("end", result="failed")
            exc.report = {"operation": "dns-publish", "result": "failed",
                          "service_name": {"managed": True, "moved": False, **exc.detail}}
            raise
        except BaseException as exc:
            journal.write("end", result="error", detail=str(exc)[:300])
            raise
        if done.get("moved"):
            journal.write("name-moved", detail=f"{done['name']} -> {done['address']} "
                                               f"(site {done['site']})")
        journal.write("end", result="ok")
    return {"operation": "dns-publish", "result": "ok", "service_name": done}
