"""The service's name: where it points now, and moving it to the serving site.

People reach the service by its name (drctl_dns_name). After an operation that moved the
primary to another site, drctl points the name at that site's application address: an
RFC 2136 dynamic update to the zone's authoritative server, signed with the TSIG key the
vault holds (vault_dns_tsig_secret), or the inventory's hook command where the provider
offers no RFC 2136 (drctl_dns_hook: called as HOOK NAME ADDRESS TTL, exit 0 when the name
points there, killed after drctl_dns_timeout_s).

Which site serves and where the name must point are the rules core's
(drctl.rules.service); this module asks the DNS server and sends the update. A name that
could not be moved is never a silent success: NameNotMoved says which step failed, where
the name still points and the command that retries.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from drctl import inventory as inv_mod
from drctl.dnsupdate import NameSettings, lookup, publish
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.rules import service

__all__ = ["NameNotMoved", "NameSettings", "check_secret", "follow", "lookup", "publish",
           "settings", "view"]

RETRY = "drctl dns publish"
# Seconds the new site's application gets to answer through its address before the name
# moves there (its application VIP is held already; its database VIP was just proven).
APP_WAIT_S = 20.0


def serving_site(inv: inv_mod.Inventory, report: dict[str, Any]) -> str | None:
    """The rules' serving site, from REPORT (a status gathered just now)."""
    primary = report.get("primary")
    site = inv.site(primary) if primary else None
    holders = (report.get("sites") or {}).get(site, {}).get("vip_holders") or []
    return service.serving_site(primary, site, holders)


def settings(inv: inv_mod.Inventory) -> NameSettings | None:
    """The inventory's DNS settings; None when the name is not managed."""
    return NameSettings.from_options(inv.cluster)


class NameNotMoved(DrctlError):
    """The database moved (or nothing was asked of it) but the name still points elsewhere."""

    def __init__(self, step: str, why: str, name: str, points_to: list[str],
                 want: str | None, site: str | None) -> None:
        where = ", ".join(points_to) or "nowhere"
        super().__init__(
            f"the service's name {name} was NOT moved: {step} failed: {why}. It still "
            f"points to {where}" + (f"; it must point to {want} (site {site})" if want else ""),
            ExitCode.NAME_NOT_MOVED, hint=f"fix the cause, then `{RETRY}` moves it")
        self.detail = {"step": step, "error": why, "name": name, "points_to": points_to,
                       "want": want, "site": site, "retry": RETRY}


def check_secret(inv: inv_mod.Inventory) -> None:
    """Before an operation changes anything: a managed name (RFC 2136) needs its TSIG
    secret in the vault, as base64. DrctlError naming the field otherwise."""
    s = settings(inv)
    if s is None or s.hook:
        return
    import base64
    import binascii

    from drctl import vault

    secret = vault.decrypt(inv.path).get("vault_dns_tsig_secret")
    why = "" if secret else "the vault holds no vault_dns_tsig_secret"
    if secret:
        try:
            base64.b64decode(str(secret), validate=True)
        except (binascii.Error, ValueError):
            why = "vault_dns_tsig_secret is not base64"
    if why:
        raise DrctlError(f"{why}: the service's name {s.name} could not be moved; nothing "
                         "was changed", ExitCode.INVALID_INVENTORY,
                         hint="put the TSIG key's secret (base64) in the vault as "
                              "vault_dns_tsig_secret")


def _answers(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return bool(json.loads(r.read()).get("writable"))
    except (OSError, ValueError):
        return False


def _addresses(inv: inv_mod.Inventory) -> dict[str, str]:
    return {h.name: h.address for h in inv.hosts.values()}


def view(inv: inv_mod.Inventory, report: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Status's `service`: the name, the server, where it points now and which site that
    is; and the problems the rules find with it. Not managed: {"managed": False}."""
    s = settings(inv)
    if s is None:
        return {"managed": False, "name": None}, []
    resolved, ttl, error = lookup(s)
    addresses = _addresses(inv)
    serving = serving_site(inv, report)
    out = {"managed": True, "name": s.name, "dns_server": s.server or None,
           "address": resolved[0] if len(resolved) == 1 else (resolved or None),
           "ttl": ttl, "site": service.site_of_address(resolved[0], inv.app_sites, addresses)
           if len(resolved) == 1 else None, "serving_site": serving,
           "error": error or None}
    if s.hook and not s.server:  # nothing to ask: the hook's provider is the truth
        return out, []
    return out, service.name_problems(s.name, resolved, serving, inv.app_sites, addresses,
                                      error)


def follow(inv: inv_mod.Inventory, report: dict[str, Any],
           say=lambda m: None) -> dict[str, Any]:
    """Point the name at the serving site (as REPORT, a status gathered just now, shows it),
    once that site's application answers through its address. Returns what was done;
    NameNotMoved when the name could not be moved."""
    s = settings(inv)
    if s is None:
        return {"managed": False}
    start = time.monotonic()
    addresses = _addresses(inv)
    serving = serving_site(inv, report)
    before, _ttl, error = lookup(s) if s.server else ([], None, "")
    if serving is None:
        raise NameNotMoved("choosing the site", "no site serves (no writable primary holding "
                           "its site's VIP)", s.name, before, None, None)
    want = service.name_address(serving, inv.app_sites, addresses)
    if want is None:
        raise NameNotMoved("choosing the address", f"site {serving} has no one application "
                           "address (set drctl_app_vip for it)", s.name, before, None, serving)
    if before == [want]:
        return {"managed": True, "moved": False, "name": s.name, "address": want,
                "site": serving}
    port = int(inv_mod.role_value(inv, "demo_app", "demo_app_port"))
    url = f"http://{want}:{port}"
    say(f"waiting for the application of {serving} to answer through {want}")
    deadline = time.monotonic() + APP_WAIT_S
    while not _answers(url, 2):
        if time.monotonic() > deadline:
            raise NameNotMoved("proving the application", f"{url}/health did not report the "
                               f"database writable within {APP_WAIT_S:g} s", s.name, before,
                               want, serving)
        time.sleep(0.2)
    secret = None
    if not s.hook:
        from drctl import vault

        secret = vault.decrypt(inv.path).get("vault_dns_tsig_secret")
    try:
        publish(s, want, secret)
    except RuntimeError as exc:
        raise NameNotMoved("the DNS update", str(exc), s.name, before, want, serving) from exc
    if s.server and not s.hook:
        after, _ttl, error = lookup(s)
        if after != [want]:
            raise NameNotMoved("checking the update", error or f"the server answers "
                               f"{', '.join(after) or 'nothing'}", s.name, after, want, serving)
    return {"managed": True, "moved": True, "name": s.name, "from": before, "address": want,
            "site": serving, "seconds": round(time.monotonic() - start, 3)}
