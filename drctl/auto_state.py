"""Automatic failover's state, from the node probes: armed, paused, disabled or impossible.

Pure functions over the probe data (drctl-probe's `auto` section on each PostgreSQL node),
so the rules are unit-tested without a cluster:

- disabled:   no node has repmgr configured (`drctl auto enable` was never run, or undone);
- paused:     a node carries the pause marker (`drctl auto pause`, or an operation running);
- impossible: armed, but no standby could promote itself now, with every reason: repmgrd
              not running, a node unreachable, no primary, or each standby's reasons from
              the rules core (drctl.rules.decide.auto_readiness: fenced, another location,
              no quorum, not streaming, repmgrd not watching, lagging above the limit);
- armed:      otherwise.
"""

from __future__ import annotations

from typing import Any

from drctl.rules import decide
from drctl.rules.policy import Policy

STATES = ("armed", "paused", "disabled", "impossible")
# A standby's guard writes its lag sample every couple of seconds; an older one (a guard
# stopped, or a node promoted since: its last sample as a standby stays in /run) says
# nothing about now.
LAG_SAMPLE_FRESH_S = 10.0


def fresh_lag_sample(n: dict[str, Any]) -> dict[str, Any] | None:
    """A standby's own lag sample, when it was taken within LAG_SAMPLE_FRESH_S; else
    None (a primary's is the one it left as a standby)."""
    sample = (n.get("_auto") or {}).get("lag_sample")
    if n.get("role") != "standby" or not isinstance(sample, dict):
        return None
    age = sample.get("age_s")
    return sample if isinstance(age, (int, float)) and 0 <= age <= LAG_SAMPLE_FRESH_S else None


def last_promotion(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest promotion repmgrd made through drctl-auto, on any node."""
    found = [e for n in nodes for e in _events(n, "last_promoted")
             if e.get("step") == "promoted" and e.get("by") == "repmgrd"]
    return max(found, key=lambda e: e.get("at", "")) if found else None


def _events(n: dict[str, Any], newest: str) -> list[dict[str, Any]]:
    """A node's recent events plus the newest event of one kind, however old."""
    a = n.get("_auto") or {}
    return list(a.get("events") or []) + ([a[newest]] if a.get(newest) else [])


def last_refusal(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest promotion drctl-auto refused (why a standby did not take over)."""
    found = [e for n in nodes for e in _events(n, "last_refused")
             if e.get("step") == "auto-validate" and e.get("result") == "refused"]
    return max(found, key=lambda e: e.get("at", "")) if found else None


def summarize(nodes: list[dict[str, Any]], primary: str | None) -> dict[str, Any]:
    configured = [n for n in nodes if n.get("_auto")]
    result: dict[str, Any] = {"state": "disabled", "reasons": [], "nodes": {},
                              "last_promotion": last_promotion(nodes),
                              "last_refusal": last_refusal(nodes)}
    if not configured:
        result["reasons"] = ["automatic failover is not enabled (`drctl auto enable`)"]
        return result
    for n in configured:
        a = n["_auto"]
        result["nodes"][n["host"]] = {
            "repmgrd": a.get("repmgrd"), "paused": bool(a.get("paused")),
            "location": a.get("location"), "witness_visible": a.get("witness_visible"),
            "lag_sample": fresh_lag_sample(n)}
    paused = [n for n in configured if n["_auto"].get("paused")]
    if paused:
        result["state"] = "paused"
        for n in paused:
            p = n["_auto"]["paused"]
            result["reasons"].append(f"{n['host']}: paused since {p.get('since', '?')} "
                                     f"({p.get('reason', 'no reason given')})")
        return result
    reasons: list[str] = []
    for n in nodes:
        if not n.get("reachable"):
            reasons.append(f"{n['host']} is unreachable")
        elif not n.get("_auto") and n.get("role") in ("primary", "standby"):
            reasons.append(f"{n['host']} has no repmgr configuration (`drctl auto enable`)")
        elif n.get("_auto") and n["_auto"].get("repmgrd") != "active" and n["role"] != "down":
            reasons.append(f"repmgrd is {n['_auto'].get('repmgrd')} on {n['host']}")
    if primary is None:
        reasons.append("no primary: nothing to fail over from")
    standbys = [n for n in configured if n.get("role") == "standby"]
    if primary is not None and not standbys:
        reasons.append("no standby to promote")
    eligible = []
    settings = next((n.get("_sync_settings") or {} for n in nodes if n["host"] == primary),
                    {})
    for n in standbys:
        a = n["_auto"]
        lag = n.get("lag_bytes")  # the primary's view, at this probe
        sample = fresh_lag_sample(n)
        if lag is None and sample:
            lag = sample.get("lag_bytes")
        local = decide.LocalAuto(
            fenced=bool(n.get("fenced")), paused=False, location=str(a.get("location")),
            primary_location=str(a.get("primary_location")),
            witness_error="" if a.get("witness_visible") is not False
            else (a.get("witness_error") or "no answer"))
        holds = None if primary is None or n.get("sync_state") is None else \
            decide.commits_wait_for(n["sync_state"], settings.get("synchronous_commit", ""),
                                    settings.get("synchronous_standby_names", ""), primary)
        # each node's own policy file: the one its repmgrd's promote hook would apply
        policy = a.get("policy")
        accepts = Policy.from_options(policy).auto_accept_async_loss \
            if isinstance(policy, dict) else None
        why = decide.auto_readiness(local, n.get("streaming"), a.get("upstream_last_seen_s"),
                                    lag, a.get("max_lag_bytes"), holds, accepts)
        if why:
            reasons.append(f"{n['host']} cannot promote itself: " + "; ".join(why))
        else:
            eligible.append(n["host"])
    result["eligible"] = eligible
    blocking = [r for r in reasons if "cannot promote itself" not in r]
    result["state"] = "armed" if eligible and not blocking else "impossible"
    result["reasons"] = reasons
    return result


def describe(summary: dict[str, Any]) -> str:
    """One line for `drctl status`."""
    state = summary["state"]
    text = f"automatic failover: {state}"
    if state == "armed":
        text += f" (would promote {', '.join(summary.get('eligible') or [])})"
    if summary["reasons"] and state != "disabled":
        text += ": " + "; ".join(summary["reasons"])
    lr = summary.get("last_refusal")
    if lr and state != "armed":
        text += f"; last refused promotion: {lr.get('host')} at {lr.get('at')}: {lr.get('detail')}"
    lp = summary.get("last_promotion")
    if lp:
        text += f"; last automatic promotion: {lp.get('host')} at {lp.get('at')}"
    return text
