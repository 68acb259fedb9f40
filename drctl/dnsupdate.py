"""The wire side of the service's name, for drctl and for the collection's plugin alike:
ask the zone's server where the name points, and point it elsewhere with an RFC 2136
update signed with a TSIG key (or the inventory's hook). Nothing here decides where: that
is drctl.rules.service's. Needs only dnspython (the collection's plugin imports it on a
controller without drctl's other dependencies)."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from typing import Any


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
    def from_options(cls, c: dict[str, Any]) -> NameSettings | None:
        """From the drctl_dns_* options (a playbook's variables too)."""
        if not c.get("drctl_dns_name"):
            return None
        from drctl.options import value

        return cls(name=_fqdn(str(c["drctl_dns_name"])), zone=_fqdn(str(c["drctl_dns_zone"])),
                   server=str(value(c, "drctl_dns_server")),
                   ttl=int(value(c, "drctl_dns_ttl")),
                   key_name=str(value(c, "drctl_dns_key_name")),
                   key_algorithm=str(value(c, "drctl_dns_key_algorithm")),
                   hook=str(value(c, "drctl_dns_hook")),
                   timeout_s=float(value(c, "drctl_dns_timeout_s")))


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


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
