"""The service's rules: who may hold a site's application VIP, and whether a site serves.

The database rules (decide.py) say which node may be primary; these say whether the
service people use answers there. They read facts gathered at the moment they are asked
(`drctl-node app state` on each app host), never a record of an earlier moment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from drctl.rules.vip import VipVerdict


@dataclass(frozen=True)
class AppHost:
    """One app host as its own state report describes it (None: it did not answer)."""

    host: str
    reachable: bool
    configured: bool = True  # an application VIP is set up on it
    holds_vip: bool = False
    app_answers: bool = False  # its application served /health (any database state)
    keepalived: str | None = None
    error: str = ""

    @classmethod
    def parse(cls, host: str, reachable: bool, data: Mapping[str, Any] | None,
              error: str = "") -> AppHost:
        vip = (data or {}).get("app_vip") or {}
        if not reachable:
            return cls(host, False, error=error or "no answer")
        if data is None:  # it answered, but not with its state (not provisioned for it)
            return cls(host, True, configured=False, error=error)
        return cls(host, True, configured=bool(vip.get("configured")),
                   holds_vip=bool(vip.get("holds")),
                   app_answers=bool((vip.get("app") or {}).get("answers")),
                   keepalived=vip.get("keepalived"), error=error)


@dataclass(frozen=True)
class AppVipVerdict:
    site: str
    address: str
    holders: tuple[str, ...]
    problems: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {"site": self.site, "address": self.address, "holders": list(self.holders),
                "ok": not self.problems, "problems": list(self.problems)}


def app_vip(site: str, address: str, hosts: Sequence[AppHost]) -> AppVipVerdict:
    """A site's application VIP must sit on exactly one of its app hosts, one whose
    application answers. None or two holders is a problem: nobody reaches the service
    there, or two hosts answer for one address. A host that cannot be asked is not counted
    as a holder, and is a problem of its own (a second holder cannot be ruled out there).
    """
    holders = tuple(h.host for h in hosts if h.holds_vip)
    problems: list[str] = []
    if not holders:
        answering = [h.host for h in hosts if h.app_answers]
        why = (f"the application answers on {', '.join(answering)}, so keepalived should "
               "have moved it there" if answering else "no app host's application answers")
        problems.append(f"site {site}: nobody holds the application VIP {address} ({why})")
    elif len(holders) > 1:
        problems.append(f"site {site}: {len(holders)} app hosts hold the application VIP "
                        f"{address} ({', '.join(holders)}); exactly one may")
    for h in hosts:
        if h.holds_vip and not h.app_answers:
            problems.append(f"site {site}: {h.host} holds the application VIP {address} but "
                            "its application does not answer /health")
        if h.reachable and not h.configured:
            problems.append(f"site {site}: {h.host} has no application VIP set up "
                            "(run provision)")
        if h.reachable and h.configured and h.keepalived not in (None, "active"):
            problems.append(f"site {site}: keepalived is {h.keepalived} on {h.host}; it "
                            "cannot take the application VIP over")
    for h in hosts:
        if not h.reachable:
            problems.append(f"site {site}: app host {h.host} is unreachable ({h.error}): "
                            "it cannot be asked whether it holds the application VIP")
    return AppVipVerdict(site, address, holders, tuple(problems))


def app_vips(sites: Mapping[str, Mapping[str, Any]],
             hosts: Mapping[str, AppHost]) -> list[AppVipVerdict]:
    """Every site that has an application VIP (the inventory's app_sites), judged."""
    return [app_vip(site, str(entry["app_vip"]).split("/")[0],
                    [hosts[h] for h in entry["hosts"] if h in hosts])
            for site, entry in sites.items() if entry.get("app_vip")]


# ---------------------------------------------------------------- the service's name

def serving_site(primary: str | None, primary_site: str | None,
                 vip_holders: Sequence[str]) -> str | None:
    """The site that serves now: the writable primary's, when that primary holds its
    site's database VIP (so the site's application reaches it). None while no site
    serves (no primary, or its VIP held by nobody or by another node)."""
    if primary is None or primary_site is None:
        return None
    return primary_site if list(vip_holders) == [primary] else None


def name_address(site: str, app_sites: Mapping[str, Mapping[str, Any]],
                 addresses: Mapping[str, str]) -> str | None:
    """Where the service's name must point for SITE: its application VIP, else its only
    app host (a site with several app hosts and no VIP has no one address); None when the
    site has no application to send anyone to."""
    entry = app_sites.get(site)
    if not entry:
        return None
    if entry.get("app_vip"):
        return str(entry["app_vip"]).split("/")[0]
    hosts = list(entry.get("hosts") or [])
    return addresses.get(hosts[0]) if len(hosts) == 1 else None


def site_of_address(address: str | None, app_sites: Mapping[str, Mapping[str, Any]],
                    addresses: Mapping[str, str]) -> str | None:
    """The site whose service address (its application VIP or one of its app hosts) ADDRESS
    is; None for an address of no site."""
    if not address:
        return None
    for site, entry in app_sites.items():
        if entry.get("app_vip") and str(entry["app_vip"]).split("/")[0] == address:
            return site
        if any(addresses.get(h) == address for h in entry.get("hosts") or []):
            return site
    return None


def name_problems(name: str, resolved: Sequence[str], serving: str | None,
                  app_sites: Mapping[str, Mapping[str, Any]],
                  addresses: Mapping[str, str], error: str = "") -> list[str]:
    """What is wrong with where the name points now: it must point to the serving site's
    address, and to nothing else."""
    if error:
        return [f"the service's name {name} cannot be looked up: {error}"]
    if not resolved:
        return [f"the service's name {name} points nowhere"]
    if serving is None:
        return [f"the service's name {name} points to {', '.join(resolved)}, but no site "
                "serves (no writable primary holding its site's VIP)"]
    want = name_address(serving, app_sites, addresses)
    if want is None:
        return [f"site {serving} serves but has no one application address for the name "
                f"{name} (set drctl_app_vip for the site)"]
    if list(resolved) != [want]:
        sites = [site_of_address(a, app_sites, addresses) or "no site" for a in resolved]
        return [f"the service's name {name} points to {', '.join(resolved)} "
                f"({', '.join(sites)}), not to {want}, the address of the serving site "
                f"{serving}: `drctl dns publish` moves it"]
    return []


def app_vip_verdict(answers: bool, error: str = "") -> VipVerdict:
    """Whether an app host may hold its site's application VIP now: only while its
    application itself serves its liveness page (the database is the database VIP's
    concern, the same for every app host of a site)."""
    if answers:
        return VipVerdict(True, "the application answers")
    return VipVerdict(False, "the application does not answer"
                      + (f": {error}" if error else ""))
