"""Cluster-wide options: the `drctl_*` variables an inventory may set.

Role options are documented by each role's meta/argument_specs.yml; these are the
few values that several roles and drctl itself read. inventories/example documents
each one again for people who start from there.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    name: str
    type: str  # str, int, bool or list: what the value must be (Jinja text is left alone)
    default: Any
    description: str
    required: bool = False
    minimum: int | None = None  # int options: the range a value must lie in
    maximum: int | None = None

    def problem(self, value: Any) -> str:
        """Why VALUE cannot be this option's value; empty when it can. A templated string
        ('{{ ... }}') is Ansible's to resolve and is not judged here."""
        if isinstance(value, str) and "{{" in value:
            return ""
        if self.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return f"must be a whole number, not {_shown(value)}"
            low = 0 if self.minimum is None else self.minimum
            if value < low or (self.maximum is not None and value > self.maximum):
                top = f" to {self.maximum}" if self.maximum is not None else " or more"
                return f"must be {low}{top}, not {value}"
        elif self.type == "bool" and not isinstance(value, bool):
            return f"must be true or false, not {_shown(value)}"
        elif self.type == "str" and not isinstance(value, str):
            return f"must be text, not {_shown(value)}"
        elif self.type == "list" and not isinstance(value, list):
            return f"must be a list, not {_shown(value)}"
        return ""


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


CLUSTER_OPTIONS: tuple[Option, ...] = (
    Option("drctl_cluster_name", "str", "main",
           "Name of the cluster; used for the lock, journal and keepalived instance."),
    Option("drctl_vip", "str", None,
           "The virtual IP with its prefix (address/prefix), e.g. 10.0.0.100/24. It must lie in "
           "the PostgreSQL hosts' subnet and differ from every host address.", required=True),
    Option("drctl_vip_interface", "str", None,
           "Network interface on the PostgreSQL hosts that carries the VIP, e.g. eth0.",
           required=True),
    Option("drctl_address", "str", None,
           "Per host: the address other hosts and clients use to reach it (default: "
           "ansible_host). Set it when Ansible connects some other way."),
    Option("drctl_vrrp_router_id", "int", 51,
           "VRRP virtual_router_id (1-255), unique per broadcast domain.", minimum=1,
           maximum=255),
    Option("drctl_app_vip", "str", "",
           "Per site: the application's virtual IP with its prefix (address/prefix), held by "
           "exactly one app host of the site whose application answers its check; empty: no "
           "application VIP. It must lie in the site's app hosts' subnet."),
    Option("drctl_app_vrrp_router_id", "int", 52,
           "VRRP virtual_router_id (1-255) of the application VIP; not the database VIP's.",
           minimum=1, maximum=255),
    Option("drctl_dns_name", "str", "",
           "The service's name (a fully qualified name, e.g. app.example.com.) that drctl "
           "points at the serving site's application VIP; empty: the name is not managed."),
    Option("drctl_dns_zone", "str", "",
           "The DNS zone that holds drctl_dns_name (e.g. example.com.)."),
    Option("drctl_dns_server", "str", "",
           "Address of the zone's authoritative server: RFC 2136 updates go to it (signed with "
           "the TSIG key vault_dns_tsig_secret) and status asks it where the name points."),
    Option("drctl_dns_ttl", "int", 30,
           "TTL of the name's record, in seconds: how long resolvers may keep sending clients "
           "to a site that is gone. Shorter moves clients sooner and costs more queries.",
           minimum=1, maximum=86400),
    Option("drctl_dns_key_name", "str", "drctl-update",
           "Name of the TSIG key the updates are signed with (its secret: "
           "vault_dns_tsig_secret, base64)."),
    Option("drctl_dns_key_algorithm", "str", "hmac-sha256", "Algorithm of the TSIG key."),
    Option("drctl_dns_hook", "str", "",
           "A command that moves the name instead of an RFC 2136 update (a cloud DNS API, a "
           "GSLB): called as HOOK NAME ADDRESS TTL, exit 0 when the name points there; "
           "killed after drctl_dns_timeout_s."),
    Option("drctl_dns_timeout_s", "int", 5,
           "Seconds an update, a lookup or the hook may take.", minimum=1, maximum=300),
    Option("drctl_pg_version", "int", 15, "PostgreSQL major version (Debian's package).",
           minimum=10, maximum=99),
    Option("drctl_pg_port", "int", 5432, "PostgreSQL TCP port.", minimum=1, maximum=65535),
    Option("drctl_synchronous", "bool", False,
           "Synchronous replication: commits wait for a standby (zero data loss on failover, "
           "writes stall while no standby is connected)."),
    Option("drctl_app_networks", "list", [],
           "Extra CIDRs (besides the app hosts) allowed to reach the application database."),
    Option("drctl_max_lag_bytes", "int", 16 * 1024 * 1024,
           "Replication lag above which a switchover refuses."),
    Option("drctl_max_loss_bytes", "int", 0,
           "WAL (bytes) a failover's candidate may lack of what a watcher saw the primary "
           "write and still be promoted without --allow-data-loss. 0: not one commit."),
    Option("drctl_watch_max_age_s", "int", 10,
           "A watcher that has not checked the nodes for longer than this (seconds) is stale: "
           "it can no longer prove that a standby holds everything."),
    Option("drctl_watch_gap_s", "int", 5,
           "A watcher's record covers the primary's end only if it lost the primary at most "
           "this many seconds after it last saw it (it was watching when the primary went)."),
    Option("drctl_blip_tolerance_s", "int", 4,
           "Automatic failover gives the primary up only once no watcher has seen it for "
           "this many seconds and it ignored a burst of connections made at that moment: "
           "blips up to this, less the watcher's interval, never promote anything."),
    Option("drctl_auto_accept_async_loss", "bool", False,
           "Automatic failover with asynchronous replication can lose the commits the "
           "primary acknowledged in its last moments (after the watcher's last sighting) "
           "that never reached the standby, and no operator is there to consent. false: a "
           "standby promotes itself only if it was the synchronous standby "
           "(drctl_synchronous: true); true: a standing consent to lose that window."),
    Option("drctl_watch_settle_s", "int", 4,
           "At a failover, wait up to this long for the watchers to conclude that the "
           "primary is gone (a check of a dying host may still be in flight)."),
    Option("drctl_failover_path", "str", "direct",
           "How `drctl failover` makes its changes where automatic failover is not set up: "
           "'direct' (drctl runs the node steps over SSH itself, seconds faster) or 'playbook' "
           "(playbooks/failover.yml, as AWX runs it). Both ask the same rules."),
    Option("drctl_slot_warn_bytes", "int", 512 * 1024 * 1024,
           "An inactive replication slot retaining more WAL than this is reported as a problem."),
    Option("drctl_isolation_check_address", "str", "",
           "An address (e.g. the gateway) a node must reach to hold the VIP; empty: no check."),
    Option("drctl_backup_max_age_h", "int", 26,
           "`drctl status` warns when the last backup is older than this many hours (the "
           "default schedule backs up every night)."),
    Option("drctl_files_max_age_s", "int", 300,
           "`drctl status` warns when a copy of the application's files (app_files) is older "
           "than this many seconds: what a site failover would lose of them."),
    Option("drctl_pooler", "bool", True,
           "A PgBouncer on every app host as the application's path to its site's VIP, paused "
           "by a switchover around its hand-over (role pgbouncer); false: the application "
           "connects straight to the VIP."),
    Option("drctl_pooler_paused_max_s", "int", 10,
           "`drctl status` reports a pooler paused longer than this many seconds as a problem "
           "(every client of its host waits); a shorter pause is a switchover's, a warning."),
    Option("drctl_archive_ready_warn", "int", 16,
           "WAL segments waiting to be archived on the primary above which status reports "
           "archiving falling behind."),
    Option("drctl_archive_stall_s", "int", 120,
           "A WAL segment waiting longer than this many seconds to be archived makes status "
           "report archiving as stuck (a hung archive_command records no failure)."),
    Option("drctl_auto_failover", "bool", False,
           "Automatic failover with repmgrd and a witness on the backup host (provision arms "
           "it; `drctl auto enable` does the same on a running cluster). Off by default: an "
           "automatic promotion is a decision taken without a human, see the README."),
    Option("drctl_location", "str", "default",
           "Per host: its site. A standby in another site than the first primary is never "
           "promoted automatically, only by `drctl failover`."),
    Option("drctl_ledger_host", "str", "",
           "The host that keeps the cluster's lock and journal, shared by drctl, "
           "ansible-playbook and AWX runs; empty: the first backup host (none: no shared "
           "lock)."),
    Option("drctl_ledger_dir", "str", "/var/lib/drctl/ledger",
           "Directory on the ledger host for the lock and the journal."),
    Option("drctl_lab_containers", "str", "",
           "Set by `drctl lab up` in the lab's inventory only: the prefix of the container "
           "names of its hosts, so a drill cuts a host's power (docker kill) instead of "
           "killing its services. Empty on real hosts."),
    Option("drctl_tls_ca_dir", "str", "",
           "Required. Directory on the control machine for the cluster CA (ca.crt, ca.key): "
           "your own CA, or empty for a new cluster (provision generates one there once). It "
           "must outlive the run; provision refuses a CA the nodes do not trust."),
)

_BY_NAME = {o.name: o for o in CLUSTER_OPTIONS}


def value(options: Mapping[str, Any], name: str) -> Any:
    """Option NAME as OPTIONS (an inventory's cluster variables, a play's variables) set
    it, else its default from the table: the one place Python gets a default from. A
    value that is set is kept as it is (a configured 0 stays 0)."""
    given = options.get(name)
    return _BY_NAME[name].default if given is None else given


def option_names() -> set[str]:
    return {o.name for o in CLUSTER_OPTIONS}


def markdown_table() -> str:
    """README.md's table of the cluster options (between its `options` markers; a unit
    test keeps it equal to this). `python -m drctl.options` prints it."""
    rows = ["| option | type | default | what it is |", "| --- | --- | --- | --- |"]
    for o in CLUSTER_OPTIONS:
        default = "(required)" if o.required else f"`{o.default!r}`".replace("'", '"')
        span = ""
        if o.minimum is not None or o.maximum is not None:
            span = f" {o.minimum if o.minimum is not None else 0}-{o.maximum or ''}"
        rows.append(f"| `{o.name}` | {o.type}{span} | {default} | "
                    f"{o.description.replace('|', '/')} |")
    return "\n".join(rows)


ROLE_DEFAULTS = "roles/drctl/defaults/main.yml"


def role_defaults() -> str:
    """roles/drctl/defaults/main.yml: every option that has a default, with it, for
    the roles and plays that read the options (role defaults: the inventory's values win).
    The one place the playbooks get a default from; a unit test keeps the file equal to
    this. `python -m drctl.options --role-defaults` prints it."""
    import json

    lines = ["---",
             "# Generated from drctl/options.py by `python -m drctl.options --role-defaults`:",
             "# edit the table there, not this file. The cluster-wide drctl_* options' defaults",
             "# (an inventory's group_vars override them). An option without a default (the",
             "# VIP, per-host values such as drctl_location) is not here: its readers say what",
             "# an absent value means."]
    for o in CLUSTER_OPTIONS:
        if o.default is None or o.name in PER_HOST:
            continue
        lines.append("")
        words = o.description.split()
        line = "#"
        for word in words:
            if len(line) + 1 + len(word) > 88:
                lines.append(line)
                line = "#"
            line += " " + word
        lines.append(line)
        lines.append(f"{o.name}: {json.dumps(o.default)}")
    return "\n".join(lines) + "\n"


# Options a play reads from other hosts too (hostvars[...]): role defaults do not reach
# another host's variables, so their readers keep their own fallback.
PER_HOST = frozenset({"drctl_location", "drctl_address"})


if __name__ == "__main__":
    import sys

    print(role_defaults() if sys.argv[1:] == ["--role-defaults"] else markdown_table(),
          end="" if sys.argv[1:] == ["--role-defaults"] else "\n")
