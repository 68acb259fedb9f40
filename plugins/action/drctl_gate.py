"""drctl_gate: the rules core's gates, for playbooks run by drctl, ansible-playbook or AWX.

Runs on the control node and touches no host: it parses the facts the play gathered
moments before (each node's `drctl-probe`, each watcher's `drctl-node watch --show`,
registered under the names given) and asks drctl.rules.decide, the one place drctl's
decisions are written. It fails, naming every failed gate, when the operation must not
go on; otherwise it returns the decision (target, data-loss verdict, notes).

Options:
  operation        failover, switchover or failback; rebuild (a new primary on target,
                   a host outside the cluster, from an object store); or auto-pause:
                   must automatic failover be paused before the operation (returns
                   needed and why; never fails)
  nodes            the PostgreSQL hosts (inventory names)
  watchers         the hosts that run a watcher
  probe_var        the variable each node's probe was registered in
  watch_var        the variable each watcher's record was registered in
  target           failover/switchover: the standby to promote (failover's default: the
                   one holding the most WAL in the lost primary's site); failback: the
                   node to rejoin
  site             failover: the site to fail over to (its standby holding the most WAL)
  allow_data_loss  the operator's consent to lose what the candidate lacks
  despite_primary  rebuild: the primary the operator was told of and leaves running
  policy           the drctl_* options of drctl.rules.policy.Policy
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ansible.plugins.action import ActionBase

try:
    from drctl.rules import decide
except ImportError:  # run from the repository without drctl installed (plain ansible)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from drctl.rules import decide
from drctl import options
from drctl.rules.facts import ClusterFacts, NodeFacts, WatcherFacts
from drctl.rules.policy import Policy

OPERATIONS = ("failover", "switchover", "failback", "rebuild", "auto-pause")


def _parsed(result: Any) -> tuple[bool, dict[str, Any] | None, str]:
    """(reachable, JSON it printed, error) of a registered command result."""
    if not isinstance(result, dict) or result.get("skipped"):
        return False, None, "not contacted (left out or unreachable)"
    if result.get("unreachable"):
        return False, None, str(result.get("msg") or "unreachable")[:200]
    try:
        data = json.loads(result.get("stdout") or "")
    except ValueError:
        return True, None, (result.get("stderr") or result.get("msg") or "no JSON")[:200]
    return True, data if isinstance(data, dict) else None, ""


def gather(hostvars: Any, nodes: list[str], watchers: list[str], probe_var: str,
           watch_var: str, sites: dict[str, str] | None = None,
           site_vips: dict[str, str] | None = None) -> ClusterFacts:
    node_facts = []
    for host in nodes:
        reachable, data, error = _parsed(hostvars.get(host, {}).get(probe_var))
        node_facts.append(NodeFacts.from_probe(host, data, reachable and data is not None,
                                               error))
    watcher_facts = []
    for host in watchers:
        reachable, data, error = _parsed(hostvars.get(host, {}).get(watch_var))
        watcher_facts.append(WatcherFacts.from_json(host, data, reachable, error))
    return ClusterFacts(tuple(node_facts), tuple(watcher_facts), sites or {},
                        site_vips or {})


def locations(hostvars: Any, hosts: list[str]) -> dict[str, str]:
    """Each host's site, as the inventory gives it (drctl_location; 'default' without).
    The watchers' too: the rules count a watcher's loss of the primary only in the
    primary's own site."""
    return {h: str(options.value(hostvars.get(h, {}), "drctl_location")) for h in hosts}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        operation = args.get("operation")
        if operation not in OPERATIONS:
            return {**result, "failed": True,
                    "msg": f"drctl_gate: operation must be one of {', '.join(OPERATIONS)}"}
        hostvars = task_vars.get("hostvars", {})
        nodes = list(args.get("nodes") or [])
        watchers = list(args.get("watchers") or [])
        sites = locations(hostvars, nodes + watchers)
        # each site's VIP address, from its nodes' drctl_vip (the plans name it)
        site_vips = {sites[h]: str(hostvars.get(h, {}).get("drctl_vip") or "").split("/")[0]
                     for h in nodes if hostvars.get(h, {}).get("drctl_vip")}
        facts = gather(hostvars, nodes, watchers,
                       args.get("probe_var", "drctl_probe"), args.get("watch_var", "drctl_watch"),
                       sites, site_vips)
        if operation == "auto-pause":
            needed, why = decide.auto_pause(facts)
            return {**result, "changed": False, "needed": needed, "why": why}
        policy = Policy.from_options(args.get("policy") or {})
        target = args.get("target") or None
        if operation == "failover":
            d = decide.failover(facts, policy, target, bool(args.get("allow_data_loss")),
                                args.get("site") or None)
        elif operation == "switchover":
            d = decide.switchover(facts, policy, target)
        elif operation == "rebuild":
            d = decide.rebuild(facts, str(target or ""), bool(args.get("allow_data_loss")),
                               args.get("despite_primary") or None)
        else:
            d = decide.failback(facts, target)
        result.update(changed=False, decision=d.as_dict(), target=d.target,
                      nothing_to_do=d.nothing_to_do,
                      answering=[n.host for n in facts.nodes if n.reachable],
                      writable=[n.host for n in facts.primaries])
        if not d.proceed:
            lines = "\n  ".join(f"{g.name}: {g.detail}" for g in d.failed)
            hint = ("\n  (-e allow_data_loss=true accepts the loss stated above)"
                    if any(g.overridable for g in d.failed) else "")
            result.update(failed=True, msg=f"refusing to {operation} to "
                          f"'{d.target or 'no candidate'}'; nothing was changed:\n  {lines}{hint}")
        return result
