"""drctl_service_name: point the service's name at the serving site, from a playbook.

Runs on the control node, fed what the play read just now. Which site serves is the rules
core's (drctl.rules.service.serving_site: the single writable primary's site, when that
primary alone holds its site's VIP), where the name must point for that site is too
(drctl.rules.service.name_address), and the update is drctl.dns.publish (RFC 2136 signed
with the TSIG key, or drctl_dns_hook): the same code drctl's own operations run. When no
site serves (no single primary, or its VIP elsewhere), the name is left as it is and the
task fails saying why.

Options:
  writable     the nodes that accept writes now (one, on a sound cluster)
  vip_holders  the nodes holding a database VIP now
  options      the drctl_dns_* options
The TSIG key's secret is read from the variables (vault_dns_tsig_secret), never passed
as an argument, so no task argument or result ever holds it.
The app hosts (group app), their sites, addresses and application VIPs come from the
inventory's hostvars.
Returns changed when the name moved, with name, address, and what it pointed to before.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

try:
    from drctl import dnsupdate as dns
except ImportError:  # run from the repository without drctl installed (plain ansible)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from drctl import dnsupdate as dns
from drctl.rules import service


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: Any = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        settings = dns.NameSettings.from_options(dict(args.get("options") or {}))
        if settings is None:
            return {**result, "changed": False, "skipped": True,
                    "msg": "the service's name is not managed (no drctl_dns_name)"}
        hostvars = (task_vars or {}).get("hostvars") or {}
        writable = [str(h) for h in args.get("writable") or []]
        primary = writable[0] if len(writable) == 1 else None
        primary_site = str(self._templar.template(
            hostvars[primary].get("drctl_location", "default"))) if primary else None
        site = service.serving_site(primary, primary_site,
                                    [str(h) for h in args.get("vip_holders") or []])
        if site is None:
            return {**result, "failed": True, "changed": False,
                    "msg": f"no site serves, so {settings.name} is left as it is: "
                           + (f"{', '.join(writable) or 'no node'} accept writes"
                              if primary is None else
                              f"the primary {primary} does not hold its site's VIP alone "
                              f"(holders: {', '.join(args.get('vip_holders') or []) or 'none'})")}
        app_sites: dict[str, dict[str, Any]] = {}
        addresses: dict[str, str] = {}
        for host in ((task_vars or {}).get("groups") or {}).get("app") or []:
            hv = hostvars[host]
            where = str(self._templar.template(hv.get("drctl_location", "default")))
            entry = app_sites.setdefault(where, {"app_vip": None, "hosts": []})
            entry["hosts"].append(host)
            entry["app_vip"] = entry["app_vip"] or self._templar.template(
                hv.get("drctl_app_vip", "")) or None
            addresses[host] = str(self._templar.template(
                hv.get("drctl_address", hv.get("ansible_host", host))))
        want = service.name_address(site, app_sites, addresses)
        if want is None:
            return {**result, "failed": True,
                    "msg": f"site {site!r} has no one application address for "
                           f"{settings.name} (set drctl_app_vip for it)"}
        before, _ttl, error = dns.lookup(settings) if settings.server else ([], None, "")
        if before == [want]:
            return {**result, "changed": False, "name": settings.name, "address": want,
                    "site": site}
        if self._play_context.check_mode:
            return {**result, "changed": True, "name": settings.name, "address": want,
                    "before": before}
        try:
            secret = self._templar.template((task_vars or {}).get("vault_dns_tsig_secret", ""))
            dns.publish(settings, want, str(secret or "") or None)
        except RuntimeError as exc:
            return {**result, "failed": True, "name": settings.name, "before": before,
                    "msg": f"the service's name {settings.name} was not moved to {want}: "
                           f"{exc}; it points to {', '.join(before) or 'nothing'}"}
        return {**result, "changed": True, "name": settings.name, "address": want,
                "site": site, "before": before, "lookup_error": error or None}
