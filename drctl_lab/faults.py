"""The fault campaign's faults (issue #34; docs/design-campaign.md): what may be injected,
the schedule a seed draws, and how each fault is applied to the lab and healed.

The schedule is a pure function of the seed, the campaign's length and the lab's hosts,
so a seed reproduces a campaign's faults exactly (their effects depend on the cluster).
Faults overlap in time but never share a host: a host is free again a moment after its
fault healed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    """A kind of fault: how many hosts it takes from which POOL ("db": the PostgreSQL
    nodes, "any": those and the witness's host, "witness": the witness's host only,
    "none": an operator's action), how long it lasts before it heals (seconds; (0, 0):
    it heals itself or is an action done when it returns), and how often it is drawn
    (WEIGHT, relative)."""

    name: str
    pool: str
    targets: int
    lasts: tuple[float, float]
    weight: float
    what: str


KINDS: tuple[Kind, ...] = (
    Kind("power", "any", 1, (5, 60), 3, "the host loses power; powered on when it heals"),
    Kind("power-two", "any", 2, (5, 45), 1, "two hosts lose power one after the other"),
    Kind("isolate", "any", 1, (3, 40), 2,
         "every packet in and out of the host dropped (a partition of one)"),
    Kind("drop-out", "any", 1, (3, 30), 1,
         "every packet the host sends dropped: it hears the others, nobody hears it"),
    Kind("drop-in", "any", 1, (3, 30), 1,
         "every packet sent to the host dropped: it is heard (its VRRP adverts too), it "
         "hears nobody"),
    Kind("freeze", "any", 1, (2, 30), 1, "every process of the host stopped (docker pause)"),
    Kind("kill-postgres", "db", 1, (5, 40), 2,
         "SIGKILL of the postmaster; an administrator starts it again when it heals "
         "(through drctl's start gate)"),
    Kind("kill-keepalived", "db", 1, (0, 0), 1, "SIGKILL of keepalived (systemd restarts it)"),
    Kind("kill-repmgrd", "db", 1, (0, 0), 1, "SIGKILL of repmgrd (systemd restarts it)"),
    Kind("kill-watcher", "witness", 1, (0, 0), 1,
         "SIGKILL of the watcher on the backup host (systemd restarts it)"),
    Kind("switchover", "none", 0, (0, 0), 1,
         "an operator's planned switchover (`drctl switchover --yes`)"),
    Kind("backup", "none", 0, (0, 0), 1,
         "an operator's incremental backup (`drctl backup`, from the standby when one is "
         "healthy)"),
)

BY_NAME = {k.name: k for k in KINDS}

# a host is not faulted again until this long after its last fault healed
SETTLE_S = 5.0
# no fault starts in the campaign's last seconds: each heals before the end
TAIL_S = 10.0


@dataclass(frozen=True)
class Fault:
    """One fault: AT seconds after the campaign's start, on HOSTS, healed LASTS seconds
    later (0: nothing to heal)."""

    at: float
    kind: str
    hosts: tuple[str, ...]
    lasts: float

    @property
    def heals_at(self) -> float:
        return self.at + self.lasts

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hosts"] = list(self.hosts)
        return d


def draw(seed: int, duration_s: float, pools: Mapping[str, Sequence[str]],
         kinds: Sequence[Kind] = KINDS, gap_s: tuple[float, float] = (10.0, 40.0)
         ) -> list[Fault]:
    """The schedule SEED gives: a fault every GAP_S (drawn uniformly), its kind drawn by
    weight, its hosts among POOLS[kind.pool] that no fault holds then, its length from the
    kind's range, cut so that it heals by DURATION_S. A kind with no free host is skipped
    at that moment."""
    rng = random.Random(seed)
    free_at: dict[str, float] = {}
    out: list[Fault] = []
    t = rng.uniform(*gap_s)
    weights = [k.weight for k in kinds]
    while t < duration_s - TAIL_S:
        kind = rng.choices(list(kinds), weights=weights)[0]
        pool = sorted(h for h in pools.get(kind.pool, ()) if free_at.get(h, 0.0) <= t)
        if len(pool) >= kind.targets:
            hosts = tuple(sorted(rng.sample(pool, kind.targets)))
            lasts = rng.uniform(*kind.lasts) if kind.lasts[1] > 0 else 0.0
            lasts = round(min(lasts, duration_s - TAIL_S - t), 1)
            for h in hosts:
                free_at[h] = t + lasts + SETTLE_S
            out.append(Fault(round(t, 1), kind.name, hosts, lasts))
        t += rng.uniform(*gap_s)
    return out


def by_kind(faults: Sequence[Fault]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in faults:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return dict(sorted(counts.items()))


@dataclass
class Lab:
    """What the injector does to the lab's hosts (drctl_lab.hosts in a campaign, a
    recorder in the unit tests): SH(host, command) runs a shell command as root inside a
    host (raises when it fails), POWER_OFF(hosts), POWER_ON(host) (waits for the boot),
    DOCKER(args) runs the docker CLI, DRCTL(args) runs drctl and returns (exit code,
    JSON document)."""

    sh: Callable[[str, str], str]
    power_off: Callable[[Sequence[str]], None]
    power_on: Callable[[str], None]
    docker: Callable[[Sequence[str]], None]
    drctl: Callable[[Sequence[str]], tuple[int, dict[str, Any]]]
    postgres_unit: str = "postgresql@15-main"
    data_dir: str = "/var/lib/postgresql/15/main"
    container_prefix: str = "drctl-lab-"


ISOLATE = "iptables -I INPUT -i eth0 -j DROP && iptables -I OUTPUT -o eth0 -j DROP"
UNISOLATE = "iptables -D INPUT -i eth0 -j DROP; iptables -D OUTPUT -o eth0 -j DROP; true"
# one way only: (apply, heal) by kind
ONE_WAY = {"drop-out": ("iptables -I OUTPUT -o eth0 -j DROP",
                        "iptables -D OUTPUT -o eth0 -j DROP; true"),
           "drop-in": ("iptables -I INPUT -i eth0 -j DROP",
                       "iptables -D INPUT -i eth0 -j DROP; true")}


def apply(lab: Lab, fault: Fault) -> str:
    """Inject FAULT; what was done, for the campaign's timeline."""
    k, hosts = fault.kind, fault.hosts
    if k in ("power", "power-two"):
        lab.power_off(hosts)
        return "powered off " + ", ".join(hosts)
    if k == "isolate":
        lab.sh(hosts[0], ISOLATE)
        return f"isolated {hosts[0]}"
    if k in ONE_WAY:
        lab.sh(hosts[0], ONE_WAY[k][0])
        return (f"dropped what {hosts[0]} sends" if k == "drop-out" else
                f"dropped what is sent to {hosts[0]}")
    if k == "freeze":
        lab.docker(["pause", lab.container_prefix + hosts[0]])
        return f"froze {hosts[0]}"
    if k == "kill-postgres":
        lab.sh(hosts[0], f"kill -KILL $(head -1 {lab.data_dir}/postmaster.pid)")
        return f"killed PostgreSQL's postmaster on {hosts[0]}"
    if k in ("kill-keepalived", "kill-repmgrd", "kill-watcher"):
        unit = {"kill-keepalived": "keepalived", "kill-repmgrd": "drctl-repmgrd",
                "kill-watcher": "drctl-watch"}[k]
        lab.sh(hosts[0], f"systemctl kill --signal=SIGKILL {unit}")
        return f"killed {unit} on {hosts[0]}"
    if k == "switchover":
        code, out = lab.drctl(["switchover", "--yes"])
        return f"switchover: exit {code}" + (f" ({_why(out)})" if code else
                                              f" (to {out.get('to') or out.get('target')})")
    if k == "backup":
        code, out = lab.drctl(["backup"])
        raw = out.get("backup")
        b: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        return f"backup: exit {code}" + (f" ({_why(out)})" if code else
                                          f" ({b.get('label')} from the {out.get('source')})")
    raise ValueError(f"unknown fault kind {k!r}")


def heal(lab: Lab, fault: Fault) -> str:
    """Undo FAULT (a host that lost power is powered on; a killed postmaster is started
    again, as an administrator would, through drctl's start gate, which keeps a node that
    must not serve down); what was done."""
    k, hosts = fault.kind, fault.hosts
    if k in ("power", "power-two"):
        for h in hosts:
            lab.power_on(h)
        return "powered on " + ", ".join(hosts)
    if k == "isolate":
        lab.sh(hosts[0], UNISOLATE)
        return f"reconnected {hosts[0]}"
    if k in ONE_WAY:
        lab.sh(hosts[0], ONE_WAY[k][1])
        return f"reconnected {hosts[0]} both ways"
    if k == "freeze":
        lab.docker(["unpause", lab.container_prefix + hosts[0]])
        return f"thawed {hosts[0]}"
    if k == "kill-postgres":
        state = lab.sh(hosts[0], f"systemctl start {lab.postgres_unit} >/dev/null 2>&1; "
                                 f"systemctl is-active {lab.postgres_unit}; true")
        return f"started PostgreSQL on {hosts[0]}: {state.strip() or '?'}"
    return ""


def _why(out: Mapping[str, Any]) -> str:
    """The first reason a drctl JSON document gives for a refusal or failure."""
    for key in ("error", "reason", "detail"):
        if out.get(key):
            return str(out[key])[:160]
    failed = [g for g in out.get("gates") or [] if isinstance(g, Mapping) and not g.get("ok")]
    if failed:
        return str(failed[0].get("detail", ""))[:160]
    return str(out.get("_stderr", ""))[-160:]
