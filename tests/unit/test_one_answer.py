"""One answer whichever way an operation starts: `drctl VERB` and `ansible-playbook
playbooks/VERB.yml` (or the collection from AWX) choose the same node in the same situation.

The playbooks pass the gate plugin only what the operator said (-e target / -e node, empty
when nothing was said) and act on the target the plugin returns, which is the rules core's
choice; drctl's operations ask the same rules core and hand their choice to the playbook.
These tests run the real gate plugin with the target argument the playbook's own template
gives, on the same facts as drctl's plan, and compare the two answers.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest
import yaml

from drctl.inventory import Inventory
from drctl.operations import failback, failover, switchover
from tests.unit.plugins import action_plugin
from tests.unit.test_rules import cluster, primary_probe, standby_probe, watch

ROOT = Path(__file__).resolve().parents[2]


def gate_plugin() -> Any:
    return action_plugin("drctl_gate")


def gate_tasks(playbook: str) -> list[dict[str, Any]]:
    """Every drctl_gate task of a playbook that decides its operation, as written."""
    found: list[dict[str, Any]] = []

    def walk(items: list[Any]) -> None:
        for item in items or []:
            if not isinstance(item, dict):
                continue
            if "drctl_gate" in item and item["drctl_gate"]["operation"] != "auto-pause":
                found.append(item)
            for key in ("tasks", "block", "rescue", "always"):
                walk(item.get(key) or [])

    walk(yaml.safe_load((ROOT / "playbooks" / playbook).read_text()))
    return found


def rendered(template: str, extravars: dict[str, Any]) -> str:
    return jinja2.Environment(undefined=jinja2.Undefined).from_string(template).render(
        **extravars)


def as_hostvars(probes: dict[str, dict | None], watchers: dict[str, dict] | None = None
                ) -> dict[str, Any]:
    """What the playbook registers: each node's probe (an unreachable one as Ansible
    records it) and each watcher's record, under the names the gate task reads."""
    import json

    hv: dict[str, Any] = {}
    for host, probe in probes.items():
        hv[host] = {"probe": {"unreachable": True, "msg": "no route to host"}
                    if probe is None else {"rc": 0, "stdout": json.dumps(probe)}}
    for host, record in (watchers or {}).items():
        hv[host] = {"watch": {"rc": 0, "stdout": json.dumps(record)}}
    return hv


def playbook_choice(playbook: str, probes: dict[str, dict | None], extravars: dict[str, Any],
                    watchers: dict[str, dict] | None = None) -> str | None:
    """The target the playbook acts on: its gate task's arguments (the target rendered
    from the operator's extra vars), run through the real plugin on these facts."""
    [task] = gate_tasks(playbook)
    args = dict(task["drctl_gate"])
    args.update(nodes=list(probes), watchers=list(watchers or {}), probe_var="probe",
                watch_var="watch", target=rendered(str(args.get("target", "")), extravars),
                policy={}, site="", allow_data_loss=False)
    action = gate_plugin().ActionModule(
        SimpleNamespace(args=args, async_val=0, check_mode=False, action="drctl_gate"),
        SimpleNamespace(_shell=SimpleNamespace(tmpdir="/tmp")), SimpleNamespace(), None,
        None, None)
    return action.run(task_vars={"hostvars": as_hostvars(probes, watchers)})["target"]


def inv() -> Inventory:
    return Inventory(path=None, hosts={}, cluster={"drctl_cluster_name": "t"})


@pytest.mark.parametrize("playbook, var", [("failback.yml", "node"),
                                           ("switchover.yml", "target"),
                                           ("failover.yml", "target"),
                                           ("rebuild.yml", "rebuild_on")])
def test_the_playbooks_pass_only_the_operators_words_as_the_target(playbook, var):
    """No choice in Jinja before the rules core is asked: the target argument is the
    operator's extra var or empty, and what follows acts on the plugin's answer."""
    [task] = gate_tasks(playbook)
    template = str(task["drctl_gate"]["target"])
    assert rendered(template, {}) == "", template
    assert rendered(template, {var: "pg2"}) == "pg2", template
    text = (ROOT / "playbooks" / playbook).read_text()
    assert f"{task['register']}.target" in text, "the plays act on the plugin's choice"


def test_failback_chooses_the_same_node_both_ways():
    """pg3 is the primary, pg1's PostgreSQL is down, pg2 is fenced: `drctl failback` and
    `ansible-playbook failback.yml` rejoin the same node (they did not: the playbook
    preferred a fenced node in Jinja)."""
    probes = {"pg1": {"fenced": False, "postgres": None},
              "pg2": standby_probe(fenced=True, status=None),
              "pg3": primary_probe(standbys={})}
    ours = failback.plan(inv(), cluster(probes), None, switch_back=False)
    assert ours.target is not None
    assert playbook_choice("failback.yml", probes, {}) == ours.target
    # and drctl hands its choice to the playbook, which keeps it
    assert ours.extravars["node"] == ours.target
    assert playbook_choice("failback.yml", probes, {"node": ours.extravars["node"]}) \
        == ours.target


def test_switchover_chooses_the_same_standby_both_ways():
    """pg2 is fenced: the default target is the rules core's (an unfenced standby), on
    both paths; the playbook used to take the first standby in Jinja, fenced or not."""
    probes = {"pg1": primary_probe(standbys={"pg2": "async", "pg3": "async"}),
              "pg2": standby_probe(fenced=True), "pg3": standby_probe()}
    ours = switchover.plan(inv(), cluster(probes), None)
    assert ours.target == "pg3"
    assert playbook_choice("switchover.yml", probes, {}) == "pg3"
    assert playbook_choice("switchover.yml", probes, {"target": "pg3"}) == "pg3"


def test_failover_chooses_the_same_standby_both_ways():
    probes = {"pg1": None, "pg2": standby_probe("0/4000000"),
              "pg3": standby_probe("0/5000000")}
    watchers = {"backup1": watch("0/5000000")}
    ours = failover.plan(inv(), {}, cluster(probes, watchers), None, allow_data_loss=False)
    assert ours.target == "pg3"
    assert playbook_choice("failover.yml", probes, {}, watchers) == "pg3"


def test_whether_to_pause_automatic_failover_is_the_rules_cores_answer():
    """failover.yml pauses repmgrd where a node that answered has automatic failover
    enabled and not paused; the answer comes from drctl.rules.decide.auto_pause through
    the gate plugin, not from a filter chain in the playbook."""
    from drctl.rules import decide

    armed = {**standby_probe(), "auto": {"paused": None, "repmgrd": "active"}}
    paused = {**standby_probe(), "auto": {"paused": {"by": "operator"}}}
    assert decide.auto_pause(cluster({"pg1": None, "pg2": armed}))[0] is True
    assert decide.auto_pause(cluster({"pg1": None, "pg2": paused})) == (
        False, "automatic failover is paused already (pg2)")
    assert decide.auto_pause(cluster({"pg1": None, "pg2": standby_probe()}))[0] is False
    needed, why = decide.auto_pause(cluster({"pg1": None, "pg2": None}))
    assert needed and "no PostgreSQL node answered" in why, "unknown is not off"
    text = (ROOT / "playbooks" / "failover.yml").read_text()
    assert "operation: auto-pause" in text and "rejectattr('auto.paused')" not in text
    action = gate_plugin().ActionModule(
        SimpleNamespace(args={"operation": "auto-pause", "nodes": ["pg1", "pg2"],
                              "probe_var": "probe"}, async_val=0, check_mode=False,
                        action="drctl_gate"),
        SimpleNamespace(_shell=SimpleNamespace(tmpdir="/tmp")), SimpleNamespace(), None,
        None, None)
    out = action.run(task_vars={"hostvars": as_hostvars({"pg1": None, "pg2": armed})})
    assert out["needed"] is True and not out.get("failed"), out


def test_plans_print_no_python_none():
    """A switchover with no standby to hand over to, and a failback with nothing to
    rejoin, say so in words (they printed `target not fenced: None` and `? on ?`)."""
    from drctl.rules import decide
    from drctl.rules.policy import Policy

    only_primary = cluster({"pg1": primary_probe(standbys={}),
                            "pg2": standby_probe(fenced=True)})
    for d in (decide.switchover(only_primary, Policy()),
              decide.failback(cluster({"pg1": primary_probe(standbys={}),
                                       "pg2": standby_probe()}), None)):
        text = " ".join(f"{g.name}: {g.detail}" for g in d.gates)
        assert not d.proceed and "None" not in text and "?" not in text, text
