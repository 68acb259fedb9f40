"""Load and validate an inventory before anything remote happens.

The contract (README "Inventory"): groups pg_primary (exactly one host),
pg_standby (one or more), backup and app (optional); cluster options `drctl_*`
(drctl/options.py) and role options (roles/*/meta/argument_specs.yml). Every
problem found is reported at once, each with the file (and line where YAML is
malformed) so that one edit fixes them all.
"""

from __future__ import annotations

import difflib
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from drctl import options
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.options import CLUSTER_OPTIONS, option_names
from drctl.paths import project_dir

PG_GROUPS = ("pg_primary", "pg_standby")
KNOWN_GROUPS = (*PG_GROUPS, "backup", "app")
VAULT_HEADER = "$ANSIBLE_VAULT;"


class _Loader(yaml.SafeLoader):
    """SafeLoader that accepts Ansible's `!vault` and `!unsafe` tags as opaque values."""


def _opaque(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return "<vaulted>" if node.tag == "!vault" else loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("!vault", _opaque)
_Loader.add_constructor("!unsafe", _opaque)


class InventoryError(DrctlError):
    def __init__(self, path: Path, problems: list[str]):
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"inventory {path} is not valid ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n{lines}",
            ExitCode.INVALID_INVENTORY,
            hint="fix the inventory and run again; README.md 'Inventory' describes every option",
        )
        self.problems = problems


@dataclass
class Host:
    name: str
    address: str
    groups: set[str] = field(default_factory=set)
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class Inventory:
    path: Path
    hosts: dict[str, Host]
    cluster: dict[str, Any]
    group_vars: dict[str, dict[str, Any]] = field(default_factory=dict)

    def hostvars(self, name: str) -> dict[str, Any]:
        """A host's variables as written: all < its groups < the host (no templating)."""
        host = self.hosts[name]
        merged = dict(self.group_vars.get("all", {}))
        for group in sorted(host.groups - {"all"}):
            merged.update(self.group_vars.get(group, {}))
        merged.update(host.vars)
        return merged

    def group(self, name: str) -> list[Host]:
        return [h for h in self.hosts.values() if name in h.groups]

    @property
    def primary(self) -> Host:
        return self.group("pg_primary")[0]

    @property
    def pg_hosts(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.groups & set(PG_GROUPS)]

    @property
    def pg_hosts_home_first(self) -> list[Host]:
        """The PostgreSQL nodes, those of the home site (pg_primary's) first."""
        primaries = self.group("pg_primary")
        home = self.site(primaries[0].name) if primaries else None
        return sorted(self.pg_hosts, key=lambda h: self.site(h.name) != home)

    def require_pg_host(self, host: str) -> Host:
        """HOST as a PostgreSQL node, or a usage error naming the ones there are."""
        for h in self.pg_hosts:
            if h.name == host:
                return h
        raise DrctlError(f"{host} is not a PostgreSQL node of the inventory "
                         f"({', '.join(h.name for h in self.pg_hosts)})", ExitCode.USAGE)

    @property
    def vip(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        """The home site's VIP (the cluster-wide drctl_vip)."""
        return ipaddress.ip_interface(self.cluster["drctl_vip"])

    def site(self, name: str) -> str:
        """A host's site (drctl_location; one site, 'default', when none is set)."""
        return str(options.value(self.hostvars(name), "drctl_location"))

    @property
    def sites(self) -> dict[str, dict[str, Any]]:
        """Each site of the PostgreSQL nodes, in inventory order: its VIP (drctl_vip as its
        hosts see it: a site group's vars override the cluster's) and its nodes."""
        out: dict[str, dict[str, Any]] = {}
        for h in self.pg_hosts_home_first:
            site = out.setdefault(self.site(h.name), {"vip": None, "nodes": []})
            site["nodes"].append(h.name)
            site["vip"] = site["vip"] or self.hostvars(h.name).get("drctl_vip")
        return out

    @property
    def app_sites(self) -> dict[str, dict[str, Any]]:
        """Each site of the app hosts, in inventory order: its application VIP
        (drctl_app_vip as its hosts see it; None when it has none) and its app hosts."""
        out: dict[str, dict[str, Any]] = {}
        for h in self.group("app"):
            site = out.setdefault(self.site(h.name), {"app_vip": None, "hosts": []})
            site["hosts"].append(h.name)
            site["app_vip"] = site["app_vip"] or self.hostvars(h.name).get("drctl_app_vip") \
                or None
        return out

    def repositories(self) -> list[Any]:
        """The backup repositories as pgBackRest numbers them (drctl.rules.repos): the
        `backup` group's hosts, then the object stores of pgbackrest_s3_repos."""
        from drctl.rules import repos

        try:
            return repos.numbered([h.name for h in self.group("backup")],
                                  self.cluster.get("pgbackrest_s3_repos") or [])
        except repos.RepoError as exc:
            raise InventoryError(self.path, [str(exc)]) from None

    def option(self, name: str) -> Any:
        """A cluster option as the inventory sets it, else its default (drctl/options.py)."""
        from drctl.options import value

        return value(self.cluster, name)

    @property
    def name(self) -> str:
        return str(self.option("drctl_cluster_name"))


# An inventory file larger than this is not one (a log, a dump, a device): refused unread.
MAX_FILE_BYTES = 4 << 20


def _read_yaml(path: Path, problems: list[str]) -> Any:
    """The YAML document in PATH, or None with a problem named (never an exception, never
    a hang: only regular files are opened, a FIFO or a device would block or never end)."""
    try:
        if not path.is_file():
            problems.append(f"{path}: not a regular file")
            return None
        if path.stat().st_size > MAX_FILE_BYTES:
            problems.append(f"{path}: {path.stat().st_size} bytes, too large for an "
                            f"inventory file (at most {MAX_FILE_BYTES})")
            return None
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        problems.append(f"{path}: cannot read: {exc.strerror}")
        return None
    except UnicodeDecodeError as exc:
        problems.append(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})")
        return None
    if text.lstrip().startswith(VAULT_HEADER):
        return None  # an ansible-vault file: secrets only, checked by the roles
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problems.append(f"{where}: malformed YAML: {exc.problem or exc.context}")
    except yaml.YAMLError as exc:
        problems.append(f"{path}: malformed YAML: {exc}")
    except RecursionError:
        problems.append(f"{path}: nested too deeply to be an inventory")
    return None


def _vars_dir(base: Path, name: str, problems: list[str]) -> dict[str, Any]:
    """group_vars/NAME.yml, group_vars/NAME.yaml, group_vars/NAME/*.yml merged."""
    merged: dict[str, Any] = {}
    candidates = [base / f"{name}.yml", base / f"{name}.yaml", base / name]
    for cand in candidates:
        files = sorted(cand.glob("*.y*ml")) if cand.is_dir() else [cand] if cand.is_file() else []
        for f in files:
            data = _read_yaml(f, problems)
            if data is None:
                continue
            if not isinstance(data, dict):
                problems.append(f"{f}: expected a mapping of variables, got {type(data).__name__}")
                continue
            merged.update(data)
    return merged


def role_option_names(root: Path | None = None) -> tuple[set[str], set[str]]:
    """(known option names, role prefixes) from roles/*/meta/argument_specs.yml."""
    root = root or project_dir()
    names: set[str] = set()
    prefixes: set[str] = set()
    for spec in sorted((root / "roles").glob("*/meta/argument_specs.yml")):
        prefixes.add(spec.parent.parent.name + "_")
        data = yaml.safe_load(spec.read_text()) or {}
        for entry in (data.get("argument_specs") or {}).values():
            names.update((entry.get("options") or {}).keys())
    return names, prefixes


def role_value(inv: Inventory, role: str, name: str, root: Path | None = None) -> Any:
    """A role's variable NAME as the inventory sets it for the cluster, else the role's own
    default (roles/ROLE/defaults/main.yml): the one home of that default, which Python
    reads instead of writing the number again."""
    given = inv.cluster.get(name)
    if given is not None:
        return given
    defaults = (root or project_dir()) / "roles" / role / "defaults" / "main.yml"
    return (yaml.safe_load(defaults.read_text()) or {})[name]


MAX_GROUP_DEPTH = 20


def _walk(group: str, node: Any, parents: list[str], path: Path, problems: list[str],
          hosts: dict[str, Host], gvars: dict[str, dict[str, Any]]) -> None:
    if node is None:
        return
    if not isinstance(node, dict):
        problems.append(f"{path}: group '{group}' must be a mapping, got {type(node).__name__}")
        return
    unknown = set(node) - {"hosts", "children", "vars"}
    for key in sorted(unknown, key=str):
        problems.append(f"{path}: group '{group}' has unknown key '{key}' "
                        "(a group holds hosts, children and vars)")
    for key in ("hosts", "children", "vars"):
        if node.get(key) is not None and not isinstance(node[key], dict):
            problems.append(f"{path}: group '{group}': '{key}' must be a mapping, got "
                            f"{type(node[key]).__name__}")
            return
    if len(parents) > MAX_GROUP_DEPTH:
        problems.append(f"{path}: group '{group}' is nested {len(parents)} groups deep "
                        f"(at most {MAX_GROUP_DEPTH})")
        return
    gvars.setdefault(group, {}).update(node.get("vars") or {})
    chain = [*parents, group]
    for hname, hvars in (node.get("hosts") or {}).items():
        host = hosts.setdefault(str(hname), Host(name=str(hname), address=str(hname)))
        host.groups.update(chain)
        if isinstance(hvars, dict):
            host.vars.update(hvars)
        elif hvars is not None:
            problems.append(f"{path}: host '{hname}' must map to variables, got {hvars!r}")
    for child, cnode in (node.get("children") or {}).items():
        _walk(str(child), cnode, chain, path, problems, hosts, gvars)


def load(path: Path | str) -> Inventory:
    """Read and validate; raise InventoryError listing every problem found."""
    path = Path(path)
    problems: list[str] = []
    if not path.exists():
        raise InventoryError(path, [f"{path}: no such file (for the lab, run `drctl lab up`)"])
    if path.is_dir():
        path = next((p for p in (path / "hosts.yml", path / "hosts.yaml") if p.exists()),
                    path / "hosts.yml")
    data = _read_yaml(path, problems)
    if problems:
        raise InventoryError(path, problems)
    if not isinstance(data, dict) or not data:
        raise InventoryError(path, [f"{path}: expected a YAML inventory with groups"])

    hosts: dict[str, Host] = {}
    gvars: dict[str, dict[str, Any]] = {}
    top = data["all"] if set(data) == {"all"} else {"children": data}
    _walk("all", top, [], path, problems, hosts, gvars)

    base = path.parent
    for group in list(gvars):
        gvars[group].update(_vars_dir(base / "group_vars", group, problems))
    for host in hosts.values():
        host.vars = {**host.vars, **_vars_dir(base / "host_vars", host.name, problems)}
        host.address = str(host.vars.get("drctl_address")
                           or host.vars.get("ansible_host", host.name))

    cluster = {o.name: o.default for o in CLUSTER_OPTIONS}
    cluster.update(gvars.get("all", {}))
    inv = Inventory(path=path, hosts=hosts, cluster=cluster, group_vars=gvars)
    problems += _check_groups(inv, gvars)
    problems += _check_addresses(inv)
    problems += _check_app_vips(inv)
    problems += _check_dns(inv)
    problems += _check_options(inv, gvars)
    if problems:
        raise InventoryError(path, problems)
    return inv


def _check_groups(inv: Inventory, gvars: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for group in PG_GROUPS:
        if group not in gvars:
            problems.append(f"missing group '{group}' (required: {', '.join(PG_GROUPS)})")
    primaries = inv.group("pg_primary")
    if "pg_primary" in gvars and len(primaries) != 1:
        names = ", ".join(h.name for h in primaries) or "none"
        problems.append(f"group 'pg_primary' must hold exactly one host, it holds {names}")
    if "pg_standby" in gvars and not inv.group("pg_standby"):
        problems.append("group 'pg_standby' must hold at least one host")
    for host in primaries:
        if "pg_standby" in host.groups:
            problems.append(f"host '{host.name}' is in both pg_primary and pg_standby")
    return problems


def _check_addresses(inv: Inventory) -> list[str]:
    problems = []
    seen: dict[str, str] = {}
    for host in inv.hosts.values():
        other = seen.get(host.address)
        if other:
            problems.append(f"hosts '{other}' and '{host.name}' have the same address "
                            f"{host.address}")
        seen.setdefault(host.address, host.name)

    for name in ("drctl_vip", "drctl_vip_interface"):
        if not inv.cluster.get(name):
            problems.append(f"missing option '{name}' (set it in group_vars/all)")
    if not inv.cluster.get("drctl_tls_ca_dir"):
        problems.append("missing option 'drctl_tls_ca_dir' (set it in group_vars/all): a "
                        "directory on this machine that outlives every run, for the cluster "
                        "CA (see inventories/example/group_vars/all/main.yml)")
    if not inv.cluster.get("drctl_vip"):
        return problems
    # Each site's VIP is drctl_vip as its hosts see it (a site group may override the
    # cluster's); it must sit in the subnet of every PostgreSQL node of that site, one VIP
    # per site, no VIP shared by two sites.
    site_vips: dict[str, dict[str, list[str]]] = {}
    for host in inv.pg_hosts_home_first:
        raw = inv.hostvars(host.name).get("drctl_vip")
        site_vips.setdefault(inv.site(host.name), {}).setdefault(str(raw), []).append(host.name)
    if len(site_vips) > 1:
        # the rules weigh a watcher by its site, and the files follow the serving site:
        # with several sites, every backup and app host says which one it is in
        for group in ("backup", "app"):
            for h in inv.group(group):
                where = inv.hostvars(h.name).get("drctl_location")
                if where not in site_vips:
                    problems.append(f"{group} host '{h.name}' needs drctl_location, one of "
                                    f"the sites {', '.join(site_vips)} (it has {where!r})")
    owners: dict[str, str] = {}
    for site, vips in site_vips.items():
        if len(vips) > 1:
            detail = "; ".join(f"{v} for {', '.join(hs)}" for v, hs in vips.items())
            problems.append(f"site '{site}' has more than one drctl_vip ({detail}): set it "
                            "once for the site (a group of its hosts)")
        for raw, names in vips.items():
            if raw in owners and owners[raw] != site:
                problems.append(f"drctl_vip {raw} is used by sites '{owners[raw]}' and "
                                f"'{site}': each site needs its own")
            owners.setdefault(raw, site)
            problems += _check_vip(inv, raw, names, site if len(site_vips) > 1 else "")
    return problems


def _check_dns(inv: Inventory) -> list[str]:
    """The service's name (drctl_dns_*): a zone that contains it, a server to update (or a
    hook that stands in for it) and a key to sign the updates with."""
    c = inv.cluster
    name = str(c.get("drctl_dns_name") or "")
    if not name:
        return []
    problems: list[str] = []
    zone = str(c.get("drctl_dns_zone") or "")
    fqdn = name.rstrip(".").lower()
    if not zone:
        problems.append("drctl_dns_name is set but drctl_dns_zone is not: name the zone that "
                        "holds it")
    elif not (fqdn == zone.rstrip(".").lower()
              or fqdn.endswith("." + zone.rstrip(".").lower())):
        problems.append(f"drctl_dns_zone '{zone}' does not contain drctl_dns_name '{name}'")
    hook = str(c.get("drctl_dns_hook") or "")
    server = str(c.get("drctl_dns_server") or "")
    if not hook and not server:
        problems.append("drctl_dns_name is set but neither drctl_dns_server (RFC 2136) nor "
                        "drctl_dns_hook says how to move it")
    if not hook and not str(c.get("drctl_dns_key_name") or ""):
        problems.append("drctl_dns_key_name is empty: RFC 2136 updates are signed with a "
                        "TSIG key (its secret: vault_dns_tsig_secret)")
    if server:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            problems.append(f"drctl_dns_server '{server}' is not an IP address (the server "
                            "is asked by address: its own name may be what is down)")
    if not any(e.get("app_vip") or len(e["hosts"]) == 1 for e in inv.app_sites.values()):
        problems.append("drctl_dns_name is set but no site has one application address "
                        "(drctl_app_vip, or a single app host) for it to point to")
    return problems


def _check_vip(inv: Inventory, raw: str, names: list[str], site: str,
               option: str = "drctl_vip") -> list[str]:
    problems: list[str] = []
    where = f" (site '{site}')" if site else ""
    if "/" not in raw:
        return [f"{option} '{raw}'{where} needs a prefix length, e.g. {raw}/24"]
    try:
        vip = ipaddress.ip_interface(raw)
    except ValueError:
        return [f"{option} '{raw}'{where} is not a valid address/prefix"]
    for name in names:
        host = inv.hosts[name]
        try:
            addr = ipaddress.ip_address(host.address)
        except ValueError:
            continue  # a DNS name: the playbook's preflight checks it on the host
        if addr == vip.ip:
            problems.append(f"{option} {vip.ip}{where} equals the address of host "
                            f"'{host.name}'")
        elif addr not in vip.network:
            problems.append(f"{option} {vip}{where} is outside host '{host.name}''s subnet "
                            f"({host.address} is not in {vip.network})")
    return problems


def _check_app_vips(inv: Inventory) -> list[str]:
    """Each site's application VIP (drctl_app_vip as its app hosts see it; optional): one
    per site, inside the subnet of every app host of the site, no host's address, and
    neither another site's application VIP nor any database VIP."""
    problems: list[str] = []
    db_vips = {str(inv.hostvars(h.name).get("drctl_vip")).split("/")[0] for h in inv.pg_hosts}
    owners: dict[str, str] = {}
    several = len(inv.app_sites) > 1
    for site, entry in inv.app_sites.items():
        seen = {str(inv.hostvars(h).get("drctl_app_vip") or "") for h in entry["hosts"]}
        if len(seen) > 1:
            problems.append(f"site '{site}' has more than one drctl_app_vip "
                            f"({', '.join(sorted(v or '(none)' for v in seen))}): set it once "
                            "for the site (a group of its hosts)")
            continue
        raw = seen.pop()
        if not raw:
            continue
        where = f" (site '{site}')" if several else ""
        if raw.split("/")[0] in db_vips:
            problems.append(f"drctl_app_vip {raw}{where} is a database VIP: the application "
                            "needs an address of its own")
        if raw in owners and owners[raw] != site:
            problems.append(f"drctl_app_vip {raw} is used by sites '{owners[raw]}' and "
                            f"'{site}': each site needs its own")
        owners.setdefault(raw, site)
        problems += _check_vip(inv, raw, entry["hosts"], site if several else "",
                               option="drctl_app_vip")
    return problems


def _check_options(inv: Inventory, gvars: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    role_names, prefixes = role_option_names()
    known = option_names() | role_names
    prefixes |= {"drctl_"}
    where: list[tuple[str, dict[str, Any]]] = [(f"group '{g}'", v) for g, v in gvars.items()]
    where += [(f"host '{h.name}'", h.vars) for h in inv.hosts.values()]
    for place, variables in where:
        for var in variables:
            if var in known or not any(var.startswith(p) for p in prefixes):
                continue
            close = difflib.get_close_matches(var, sorted(known), n=1)
            tip = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"unknown option '{var}' in {place}{tip}")
    typed = {o.name: o for o in CLUSTER_OPTIONS}
    for place, variables in where:
        for var, value in variables.items():
            option = typed.get(var)
            why = option.problem(value) if option else ""
            if why:
                problems.append(f"option '{var}' in {place} {why}")
    return problems
