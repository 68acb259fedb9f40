"""drctl failover: the primary is gone - gates, fencing, promotion, VIP, proof."""

from __future__ import annotations

from pathlib import Path

from drctl import status as status_mod
from drctl.operations import ha

STEPS = [
    "gates: the target answers and is a standby; no other node accepts writes; its last "
    "known lag is at most drctl_max_lag_bytes (or --allow-data-loss)",
    "fence the old primary if it answers: /etc/drctl/fenced + stop PostgreSQL; PostgreSQL "
    "refuses to start and keepalived refuses the VIP while the marker exists",
    "an old primary that does not answer is recorded as unfenced: it fences itself when it "
    "returns (fence-check before PostgreSQL starts; the drctl-guard service)",
    "promote the target after it has replayed all WAL it received",
    "wait until the VIP is on the new primary (keepalived's check passes there only)",
    "write a row on the new primary and record the timeline switch point",
]


def plan(inv, report, target: str | None, allow_data_loss: bool) -> ha.Plan:
    max_lag = int(inv.cluster.get("drctl_max_lag_bytes") or 16 * 1024 * 1024)
    nodes = report["nodes"]
    standbys = [n["host"] for n in nodes if n["role"] == "standby" and not n["fenced"]]
    live_primaries = [n["host"] for n in nodes if n["role"] == "primary"]
    # no standby left but one live primary (e.g. automatic failover already promoted it)
    target = target or (standbys[0] if standbys else
                        live_primaries[0] if len(live_primaries) == 1 else None)
    t = ha.node(report, target)
    others_writable = [h for h in live_primaries if h != target]
    unreachable = [n["host"] for n in nodes if not n["reachable"]]

    last = status_mod.last_known(inv.name) or {}
    last_node = ha.node(last, target) if last.get("nodes") else None
    last_lag = last_node.get("lag_bytes") if last_node else None
    sync = bool(last_node and last_node.get("sync_state") in ("sync", "quorum"))
    max_age = int(inv.cluster.get("drctl_lag_max_age_s") or 60)
    age = ha.age_s(last.get("checked_at"))
    if last_lag is not None and (age is None or age > max_age):
        last_lag = None
        stale = f"the last recorded lag is {age:.0f} s old (limit {max_age} s)" if age else ""
    else:
        stale = ""
    if sync:
        lag_ok, lag_detail = True, (f"synchronous standby at {last.get('checked_at')}: "
                                    "every acknowledged commit is on it")
    elif last_lag is None:
        lag_ok, lag_detail = False, ("unknown: " + (stale or "no status of a healthy primary "
                                                    "was recorded"))
    else:
        lag_ok = last_lag <= max_lag
        lag_detail = f"{last_lag} bytes at {last.get('checked_at')} (limit {max_lag})"
    if not lag_ok and allow_data_loss:
        lag_detail += "; accepted with --allow-data-loss: commits the standby lacks are lost"
        lag_ok = True
    elif not lag_ok:
        lag_detail += ("; pass --allow-data-loss to promote anyway, losing every commit the "
                       "standby never received")

    gates = [
        ha.Gate("target answers and is a standby", bool(t and t["role"] == "standby"),
                f"{target}: {t['role'] if t else 'no such PostgreSQL node'}"),
        ha.Gate("target not fenced", bool(t and not t["fenced"]), f"{target}"),
        ha.Gate("no live primary elsewhere", not others_writable,
                f"{', '.join(others_writable)} still accepts writes: use `drctl switchover`"
                if others_writable else
                f"primary down or unreachable ({', '.join(unreachable) or 'stopped'})"),
        ha.Gate("last known lag", lag_ok, lag_detail, overridable=True),
    ]
    nothing = ""
    if live_primaries == [target] and target in report["vip_holders"]:
        nothing = f"{target} is already the primary and holds the VIP"
        auto = (report.get("auto") or {}).get("last_promotion") or {}
        if auto.get("host") == target:
            nothing += (f": automatic failover promoted it at {auto.get('at')} (timeline "
                        f"{auto.get('timeline')}); the old primary stays fenced until "
                        "`drctl failback`")
        gates = []
    extravars = {"target": target, "allow_data_loss": True}  # drctl's gates decided above
    if last_lag is not None:
        extravars["last_lag_bytes"] = last_lag
    notes = [f"{h} does not answer: it will be recorded as unfenced" for h in unreachable]
    extravars["failover_unreachable"] = unreachable
    answering = [n["host"] for n in nodes if n["reachable"]]
    return ha.Plan("failover", inv.name, STEPS, gates, extravars, target=target, notes=notes,
                   nothing_to_do=nothing, limit=",".join(answering) if unreachable else None)


def failover(inventory: Path, fmt: str, *, target: str | None, yes: bool, show: bool,
             allow_data_loss: bool) -> None:
    inv, report = ha.load(inventory)
    p = plan(inv, report, target, allow_data_loss)
    ha.execute(p, inv, fmt, yes=yes, show=show, playbook="failover.yml",
               question=f"Fail over cluster '{inv.name}' to {p.target}? The old primary "
                        "will be fenced until `drctl failback`.",
               ok_when=lambda st: st["primary"] == p.target and st["vip_holders"] == [p.target])
