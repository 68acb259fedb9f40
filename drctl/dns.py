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
import shlex
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from drctl import inventory as inv_mod
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.rules import service

RETRY = "drctl dns publish"
# Seconds the new site's application gets to answer through its address before the name
# moves there (its application VIP is held already; its database VIP was just proven).
APP_WAIT_S = 20.0


@dataclass(frozen=True)
class NameSettings:
    name: str
    zone: str
    server: str
    ttl: int
    key_name: str
    key_algorithm: str
    hook: str
    timeout_s: float

    @classmethod
    def from_inventory(cls, inv: inv_mod.Inventory) -> NameSettings | None:
        """The inventory's DNS settings; None when the name is not managed."""
        c = inv.cluster
        if not c.get("drctl_dns_name"):
            return None
        return cls(name=_fqdn(str(c["drctl_dns_name"])), zone=_fqdn(str(c["drctl_dns_zone"])),
                   server=str(c.get("drctl_dns_server") or ""),
                   ttl=int(c.get("drctl_dns_ttl") or 30),
                   key_name=str(c.get("drctl_dns_key_name") or "drctl-update"),
                   key_algorithm=str(c.get("drctl_dns_key_algorithm") or "hmac-sha256"),
                   hook=str(c.get("drctl_dns_hook") or ""),
                   timeout_s=float(c.get("drctl_dns_timeout_s") or 5))


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


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


def lookup(s: NameSettings) -> tuple[list[str], int | None, str]:
    """(addresses, TTL, error) the zone's server answers for the name now."""
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    if not s.server:
        return [], None, "no drctl_dns_server to ask"
    query = dns.message.make_query(s.name, dns.rdatatype.A)
    try:
        answer = dns.query.udp(query, s.server, timeout=s.timeout_s)
    except (dns.exception.DNSException, OSError) as exc:
        return [], None, f"{s.server} did not answer: {exc or type(exc).__name__}"
    if answer.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return [], None, f"{s.server} answered {dns.rcode.to_text(answer.rcode())}"
    addresses: list[str] = []
    ttl = None
    for rrset in answer.answer:
        if rrset.rdtype == dns.rdatatype.A:
            addresses += sorted(r.address for r in rrset)
            ttl = rrset.ttl
    return addresses, ttl, ""


def publish(s: NameSettings, address: str, secret: str | None) -> None:
    """Point the name at ADDRESS (replacing every A record it has); RuntimeError saying why
    not."""
    if s.hook:
        _run_hook(s, address)
        return
    import dns.exception
    import dns.name
    import dns.query
    import dns.rcode
    import dns.tsig
    import dns.tsigkeyring
    import dns.update

    if not secret:
        raise RuntimeError("the vault holds no vault_dns_tsig_secret (the TSIG key's secret)")
    try:
        keyring = dns.tsigkeyring.from_text({s.key_name: secret})
    except (ValueError, dns.exception.DNSException) as exc:
        raise RuntimeError(f"vault_dns_tsig_secret is not a base64 TSIG secret: {exc}") \
            from exc
    zone = dns.name.from_text(s.zone)
    update = dns.update.UpdateMessage(zone, keyring=keyring,
                                      keyalgorithm=dns.name.from_text(s.key_algorithm))
    update.replace(dns.name.from_text(s.name).relativize(zone), s.ttl, "A", address)
    try:
        response = dns.query.tcp(update, s.server, timeout=s.timeout_s)
    except dns.tsig.PeerError as exc:  # BADKEY, BADSIG, BADTIME: the server refused the key
        raise RuntimeError(f"{s.server} refused the TSIG key {s.key_name!r}: "
                           f"{type(exc).__name__}") from exc
    except (dns.exception.DNSException, OSError) as exc:
        raise RuntimeError(f"the update to {s.server} failed: "
                           f"{exc or type(exc).__name__}") from exc
    if response.rcode() != dns.rcode.NOERROR:
        raise RuntimeError(f"{s.server} refused the update: "
                           f"{dns.rcode.to_text(response.rcode())}")


def _run_hook(s: NameSettings, address: str) -> None:
    cmd = [*shlex.split(s.hook), s.name, address, str(s.ttl)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=s.timeout_s,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"the hook {cmd[0]} gave no answer within {s.timeout_s:g} s") \
            from exc
    except OSError as exc:
        raise RuntimeError(f"the hook {cmd[0]} cannot run: {exc}") from exc
    if proc.returncode != 0:
        said = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f"the hook {cmd[0]} exited {proc.returncode}"
                           + (f": {said[-1][:200]}" if said else ""))


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
    s = NameSettings.from_inventory(inv)
    if s is None:
        return {"managed": False, "name": None}, []
    resolved, ttl, error = lookup(s)
    addresses = _addresses(inv)
    primary = report.get("primary")
    site = inv.site(primary) if primary else None
    holders = (report.get("sites") or {}).get(site, {}).get("vip_holders") or []
    serving = service.serving_site(primary, site, holders)
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
    s = NameSettings.from_inventory(inv)
    if s is None:
        return {"managed": False}
    start = time.monotonic()
    addresses = _addresses(inv)
    primary = report.get("primary")
    site = inv.site(primary) if primary else None
    holders = (report.get("sites") or {}).get(site, {}).get("vip_holders") or []
    serving = service.serving_site(primary, site, holders)
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
    port = int(inv.cluster.get("drctl_demo_app_port") or 8080)
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
