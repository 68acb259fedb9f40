"""Gates, plans, confirmation, lock and journal of the HA verbs, without any host."""

import dataclasses
import json
import os
import subprocess

import pytest
from click.testing import CliRunner

from drctl import cli as cli_mod
from drctl import journal, lock
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.inventory import Inventory
from drctl.operations import failback, failover, ha, switchover


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))


def inv():
    return Inventory(path=None, hosts={}, cluster={"drctl_cluster_name": "t",
                                                   "drctl_max_lag_bytes": 1000})


def node(host, role=None, **kw):
    base = {"host": host, "address": host, "reachable": True, "role": role, "streaming": None,
            "lag_bytes": None, "fenced": False, "prepared_xacts": 0, "timeline": 1,
            "sync_state": None, "wal_log_hints": True, "data_checksums": True}
    return {**base, **{k: v for k, v in kw.items()}}


def report(*nodes, primary="pg1", holders=("pg1",)):
    from datetime import UTC, datetime

    return {"primary": primary, "vip_holders": list(holders), "problems": [],
            "nodes": list(nodes), "healthy": True,
            "checked_at": datetime.now(UTC).isoformat()}


HEALTHY = report(node("pg1", "primary"), node("pg2", "standby", streaming=True, lag_bytes=10))


def test_switchover_plan_from_the_rules():
    from tests.unit.test_rules import primary_probe, standby_probe

    plan = switchover.plan(inv(), facts({"pg1": primary_probe(), "pg2": standby_probe()}), None)
    assert plan.target == "pg2" and plan.ok and not plan.nothing_to_do
    lagging = primary_probe()
    lagging["postgres"]["replication"][0]["lag_bytes"] = 5000
    plan = switchover.plan(inv(), facts({"pg1": lagging, "pg2": standby_probe()}), "pg2")
    assert [g.name for g in plan.gates if not g.ok] == ["lag"]
    plan = switchover.plan(inv(), facts({"pg1": primary_probe(), "pg2": standby_probe()}),
                           "pg1")
    assert plan.nothing_to_do


def facts(nodes, watchers=None):
    """The rules core's facts, as ha.gather would build them from probes."""
    from tests.unit.test_rules import cluster

    return cluster(nodes, watchers)


def test_failover_plan_carries_the_rules_decision_and_skips_dead_hosts():
    from tests.unit.test_rules import standby_probe, watch

    f = facts({"pg1": None, "pg2": standby_probe("0/5000000")},
              {"backup1": watch("0/5124F80")})
    plan = failover.plan(inv(), {}, f, None, allow_data_loss=False)
    gate = next(g for g in plan.gates if g.name == "no acknowledged commit lost")
    assert not gate.ok and gate.overridable and "lacks at least 1.2 MB" in gate.detail
    assert plan.limit == "pg2,backup1", "a dead node must not be contacted again"
    assert plan.data_loss and plan.data_loss["verdict"] == "loss"
    assert plan.extravars["allow_data_loss"] is False, "the playbook decides again itself"
    plan = failover.plan(inv(), {}, f, None, allow_data_loss=True)
    assert plan.ok and plan.data_loss and plan.data_loss["accepted"]
    assert plan.extravars["allow_data_loss"] is True


def test_failover_plan_names_why_its_target():
    from tests.unit.test_rules import standby_probe, watch

    f = facts({"pg1": None, "pg2": standby_probe("0/4000000"),
               "pg3": standby_probe("0/5000000")}, {"backup1": watch("0/5000000")})
    plan = failover.plan(inv(), {}, f, None, allow_data_loss=False)
    assert plan.target == "pg3" and plan.ok
    assert plan.notes[0].startswith("target: pg3 holds the most WAL")


def test_failover_refuses_while_the_primary_lives():
    from tests.unit.test_rules import primary_probe, standby_probe

    f = facts({"pg1": primary_probe(), "pg2": standby_probe()})
    plan = failover.plan(inv(), {}, f, "pg2", allow_data_loss=True)
    gate = next(g for g in plan.gates if g.name == "no live primary elsewhere")
    assert not gate.ok and "switchover" in gate.detail


def test_failback_picks_the_fenced_node():
    from tests.unit.test_rules import primary_probe

    f = facts({"pg1": {"fenced": True, "postgres": None}, "pg2": primary_probe(standbys={})})
    plan = failback.plan(inv(), f, None, switch_back=True)
    assert plan.target == "pg1" and plan.ok
    assert "switch over to pg1" in plan.steps[-1]


def test_confirm_without_a_terminal_refuses():
    with pytest.raises(DrctlError) as exc:
        ha.Interaction(yes=False, ask=None).confirm("Switch over?")
    assert exc.value.exit_code == ExitCode.REFUSED and "--yes" in exc.value.format_message()
    ha.Interaction(yes=True).confirm("Switch over?")  # --yes: no question
    asked = []
    with pytest.raises(DrctlError) as exc:
        ha.Interaction(ask=lambda q: asked.append(q) or False).confirm("Switch over?")
    assert asked == ["Switch over?"] and "not confirmed" in exc.value.message
    ha.Interaction(ask=lambda q: True).confirm("Switch over?")


def test_a_refused_plan_raises_before_anything_runs(monkeypatch):
    from tests.unit.test_rules import standby_probe, watch

    f = facts({"pg1": None, "pg2": standby_probe("0/5000000")},
              {"backup1": watch("0/5124F80")})
    plan = failover.plan(inv(), {}, f, None, allow_data_loss=False)

    def no_playbook(*a, **k):
        raise AssertionError("nothing may run")

    monkeypatch.setattr("drctl.runner.run_playbook", no_playbook)
    with pytest.raises(DrctlError) as exc:
        ha.execute(plan, inv(), ha.Interaction(yes=True), question="?",
                   playbook="failover.yml")
    assert exc.value.exit_code == ExitCode.REFUSED
    assert "pg2 lacks at least 1.2 MB" in exc.value.message
    # --format json prints this report: the gates and the verdict, not an empty stdout
    report = exc.value.report
    assert report is not None and report["result"] == "refused"
    assert report["would_proceed"] is False and report["data_loss"]["verdict"] == "loss"
    assert any(not g["ok"] for g in report["gates"])
    json.dumps(report)


def test_the_drill_runs_operations_in_process(monkeypatch):
    from drctl import drill

    seen = []

    def fake_switchover(inventory, args, ui):
        seen.append((args, ui.yes))
        return {"journal": [], "write_outage_s": 0.5}

    def refusing(inventory, args, ui):
        raise DrctlError("failover refused", ExitCode.REFUSED)

    monkeypatch.setitem(drill.OPERATIONS, "switchover", fake_switchover)
    monkeypatch.setitem(drill.OPERATIONS, "failover", refusing)
    assert drill._in_process(lambda: drill.OPERATIONS["switchover"](
        None, ["--to", "pg2"], ha.Interaction(yes=True))) == (
        0, {"journal": [], "write_outage_s": 0.5})
    assert seen == [(["--to", "pg2"], True)]
    code, report = drill._in_process(lambda: drill.OPERATIONS["failover"](None, [], None))
    assert code == ExitCode.REFUSED and "refused" in report["error"]


def test_outage_from_journal():
    entries = [
        {"step": "promoted",
         "handover": {"times": {"checkpoint": "2026-01-01T00:00:00.100+00:00"}}},
        {"step": "vip-moved", "vip": {"master_since": "2026-01-01T00:00:00.900Z"}},
    ]
    assert ha.outage_from_journal(entries) == 0.8
    assert ha.outage_from_journal([]) is None


def test_lock_refuses_a_second_holder_and_reports_a_stale_one():
    with lock.cluster_lock("t", "switchover"):
        with pytest.raises(DrctlError) as exc, lock.cluster_lock("t", "failover"):
            pass
        assert exc.value.exit_code == ExitCode.LOCKED
        assert f"pid {os.getpid()}" in exc.value.message
        with pytest.raises(DrctlError):
            lock.unlock("t")  # the holder is alive
    assert lock.holder("t") is None
    dead = subprocess.Popen(["true"])
    dead.wait()
    import socket

    lock.lock_path("t").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid,
                                               "operation": "failover", "since": "x"}))
    with pytest.raises(DrctlError) as exc, lock.cluster_lock("t", "switchover"):
        pass
    assert "stale" in exc.value.message
    assert lock.unlock("t")["local"]["pid"] == dead.pid
    assert lock.holder("t") is None


def test_journal_appends_and_filters():
    j = journal.Journal("t", "switchover")
    j.write("start", host="pg2")
    j.from_playbook({"step": "promoted", "host": "pg2", "lsn": "0/1", "timeline": 2},
                    "2026-01-01T00:00:00")
    other = journal.Journal("t", "failover")
    other.write("start")
    entries = journal.read("t", op_id=j.op_id)
    assert [e["step"] for e in entries] == ["start", "promoted"]
    assert entries[1]["lsn"] == "0/1" and entries[1]["time"] == "2026-01-01T00:00:00"
    assert len(journal.read("t")) == 3 and len(journal.read("t", last=1)) == 1


def test_cli_plan_and_refusal_without_yes(monkeypatch, make_inventory):
    path = make_inventory()
    from tests.unit.test_rules import primary_probe, standby_probe

    healthy = facts({"pg1": primary_probe(), "pg2": standby_probe()})
    monkeypatch.setattr(ha, "gather", lambda i, settle_s=0: ({**HEALTHY, "healthy": True},
                                                             healthy))

    def no_playbook(*a, **k):
        raise AssertionError("nothing may run")

    monkeypatch.setattr("drctl.runner.run_playbook", no_playbook)
    runner = CliRunner()
    result = runner.invoke(cli_mod.cli, ["switchover", "-i", str(path), "--plan",
                                         "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["would_proceed"] is True
    result = runner.invoke(cli_mod.cli, ["switchover", "-i", str(path)])
    assert result.exit_code == ExitCode.REFUSED
    assert "--yes" in result.output


def _direct_setup(monkeypatch, nodes, watchers, answers, regathered=None):
    """A failover planned from NODES' probes, run by drctl's own steps with sshprobe's
    node calls answered from ANSWERS (host -> list of answers) and recorded."""
    calls = []

    def node_json(inventory, host, args, timeout=60):
        calls.append((host, args[0]))
        return answers[host].pop(0)

    monkeypatch.setattr("drctl.sshprobe.node_json", node_json)
    monkeypatch.setattr("drctl.runner.run_playbook", lambda *a, **k: pytest.fail("playbook"))
    if regathered is not None:
        monkeypatch.setattr(ha, "gather", lambda inventory, settle_s=0, **kw: ({}, regathered))
    f = facts(nodes, watchers)
    p = failover.plan(inv(), {}, f, None, allow_data_loss=False)
    act = failover.direct(inv(), p, f, {"auto": {"state": "disabled"}}, None, False)
    assert act is not None
    return p, act, calls


TAKE_OVER = {"ok": True, "host": "pg2", "timeline": 2, "switch_point": "0/5000000",
             "written_at": "2026-12-02T10:00:01.300+00:00",
             "promote": {"promoted_at": "2026-12-02T10:00:01.000+00:00", "lsn": "0/5000100",
                         "timeline": 2},
             "vip": {"vip_at": "2026-12-02T10:00:01.250+00:00", "master_since": None}}


def test_direct_failover_fences_what_answers_then_takes_over(monkeypatch):
    """The old primary's host answers with PostgreSQL down: fenced first, then the target
    takes over in one node step; the journal has each step at the node's own time."""
    from tests.unit.test_rules import standby_probe, watch

    p, act, calls = _direct_setup(
        monkeypatch, {"pg1": {"fenced": False, "postgres": None},
                      "pg2": standby_probe("0/5000000")}, {"backup1": watch("0/5000000")},
        {"pg1": [{"ok": True}], "pg2": [dict(TAKE_OVER)]})
    assert p.ok and p.target == "pg2"
    j = journal.Journal("t", "failover")
    run = act(j, ha.Interaction(yes=True))
    assert run.status == "successful" and run.exit_code == ExitCode.OK
    assert calls == [("pg1", "fence"), ("pg2", "take-over")]
    steps = [(e["step"], e["host"]) for e in journal.read("t", op_id=j.op_id)]
    assert steps == [("gates", "pg2"), ("fenced", "pg1"), ("promoted", "pg2"),
                     ("vip-moved", "pg2"), ("write-proved", "pg2")]
    entries = {e["step"]: e for e in journal.read("t", op_id=j.op_id)}
    assert entries["promoted"]["time"] == "2026-12-02T10:00:01.000+00:00"
    assert entries["vip-moved"]["time"] == "2026-12-02T10:00:01.250+00:00"


def _three_node_plan(monkeypatch):
    """pg1 gone; pg2 holds the most WAL; pg3 is a second standby behind it."""
    from tests.unit.test_rules import standby_probe, watch

    p, _, _ = _direct_setup(
        monkeypatch, {"pg1": None, "pg2": standby_probe("0/5000000"),
                      "pg3": standby_probe("0/4F00000")},
        {"backup1": watch("0/5000000")}, {})
    return p


def test_direct_failover_repoints_the_other_standby_at_the_new_primary(monkeypatch):
    """Two standbys: the one holding the most WAL is promoted, the other follows it at the
    new primary's address; the journal says so."""
    from drctl.inventory import Host

    p = _three_node_plan(monkeypatch)
    assert p.target == "pg2" and p.followers == ["pg3"]
    assert any("pg3 will follow pg2" in n for n in p.notes)
    sent = []
    answers = {"pg2": [dict(TAKE_OVER)], "pg3": [{"ok": True, "changed": ["reloaded"]}]}
    monkeypatch.setattr("drctl.sshprobe.node_json", lambda i, host, args, timeout=60: (
        sent.append((host, args)) or answers[host].pop(0)))
    the_inv = inv()
    the_inv.hosts = {"pg2": Host("pg2", "10.0.0.12"), "pg3": Host("pg3", "10.0.1.11")}
    act = failover.direct(the_inv, p, facts({"pg1": None}), {"auto": {"state": "disabled"}},
                          None, False)
    j = journal.Journal("t", "failover")
    run = act(j, ha.Interaction(yes=True))
    assert run.exit_code == ExitCode.OK, run.failures
    assert [h for h, _ in sent] == ["pg2", "pg3"]
    assert sent[1] == ("pg3", ["repoint", "--primary-address", "10.0.0.12",
                               "--stream-timeout", "30"])
    assert [(e["step"], e["host"]) for e in journal.read("t", op_id=j.op_id)][-1] == (
        "followed", "pg3")


def test_direct_failover_that_leaves_a_standby_behind_fails_and_says_which(monkeypatch):
    """The other standby cannot follow: the promotion stands (journalled), the failover
    fails naming the standby and why."""
    from drctl.inventory import Host

    p = _three_node_plan(monkeypatch)
    the_inv = inv()
    the_inv.hosts = {"pg2": Host("pg2", "10.0.0.12"), "pg3": Host("pg3", "10.0.1.11")}
    answers = {"pg2": [dict(TAKE_OVER)],
               "pg3": [{"ok": False, "error": "not streaming from the primary after 30 s"}]}
    monkeypatch.setattr("drctl.sshprobe.node_json",
                        lambda i, host, args, timeout=60: answers[host].pop(0))
    act = failover.direct(the_inv, p, facts({"pg1": None}), {"auto": {"state": "disabled"}},
                          None, False)
    j = journal.Journal("t", "failover")
    run = act(j, ha.Interaction(yes=True))
    assert run.exit_code == ExitCode.FAILED
    assert run.failures == ["pg3 does not follow the new primary pg2: not streaming from "
                            "the primary after 30 s"]
    steps = [(e["step"], e["host"], e.get("result")) for e in journal.read("t", op_id=j.op_id)]
    assert ("promoted", "pg2", "ok") in steps and ("followed", "pg3", "failed") in steps


def test_direct_failover_promotes_nothing_when_a_node_that_answers_cannot_be_fenced(
        monkeypatch):
    from tests.unit.test_rules import standby_probe, watch

    _, act, calls = _direct_setup(
        monkeypatch, {"pg1": {"fenced": False, "postgres": None},
                      "pg2": standby_probe("0/5000000")}, {"backup1": watch("0/5000000")},
        {"pg1": [{"ok": False, "error": "systemctl stop timed out"}], "pg2": []})
    run = act(journal.Journal("t", "failover"), ha.Interaction(yes=True))
    assert run.exit_code == ExitCode.FAILED and calls == [("pg1", "fence")]
    assert any("nothing was promoted" in f for f in run.failure_lines())


def test_direct_failover_records_a_promotion_that_then_failed(monkeypatch):
    """The VIP never came: the failover failed, and the journal still says pg2 was
    promoted (an operator must know there is a new primary)."""
    from tests.unit.test_rules import standby_probe, watch

    failed = {"ok": False, "error": "promoted, then: this node did not get the VIP within 15 s",
              "promote": TAKE_OVER["promote"]}
    _, act, _ = _direct_setup(
        monkeypatch, {"pg1": None, "pg2": standby_probe("0/5000000")},
        {"backup1": watch("0/5000000")}, {"pg2": [failed]})
    j = journal.Journal("t", "failover")
    run = act(j, ha.Interaction(yes=True))
    assert run.exit_code == ExitCode.FAILED and "did not get the VIP" in run.failures[0]
    assert [e["step"] for e in journal.read("t", op_id=j.op_id)] == [
        "gates", "unfenced", "promoted"]


def test_direct_failover_decides_again_after_a_person_answered(monkeypatch):
    """The question took time: facts are gathered again, and a different verdict (here a
    watcher that now saw more WAL than the standby holds) stops it before any change."""
    from tests.unit.test_rules import standby_probe, watch

    later = facts({"pg1": None, "pg2": standby_probe("0/5000000")},
                  {"backup1": watch("0/5124F80")})
    _, act, calls = _direct_setup(
        monkeypatch, {"pg1": None, "pg2": standby_probe("0/5000000")},
        {"backup1": watch("0/5000000")}, {"pg2": [dict(TAKE_OVER)]}, regathered=later)
    ui = ha.Interaction(ask=lambda q: True)
    ui.confirm("Fail over?")
    run = act(journal.Journal("t", "failover"), ui)
    assert run.exit_code == ExitCode.FAILED and calls == []
    assert "changed while you were asked" in run.failures[0]
    assert "lacks at least 1.2 MB" in run.failures[0]


def test_failover_pauses_automatic_failover_itself_then_decides_again(monkeypatch):
    """Where automatic failover is armed, drctl's own failover pauses repmgrd on the nodes
    that have it (the marker, then the stop: drctl-node auto-pause), journals it, and
    decides again from facts gathered in the same round (each paused node answers with
    its probe taken after its repmgrd stopped: repmgrd could have acted before the pause)
    and only then takes over; an inventory can ask for the playbook always
    (drctl_failover_path: playbook)."""
    from drctl import sshprobe
    from tests.unit.test_rules import standby_probe, watch

    armed = {**standby_probe("0/5000000"), "auto": {"paused": None}}
    f = facts({"pg1": None, "pg2": armed}, {"backup1": watch()})
    p = failover.plan(inv(), {}, f, None, allow_data_loss=False)
    sent: list[tuple[str, list[str]]] = []
    answers = {"auto-pause": {"ok": True, "paused": True}, "take-over": dict(TAKE_OVER)}
    monkeypatch.setattr("drctl.sshprobe.node_json", lambda i, host, args, timeout=60: (
        sent.append((host, args)) or answers[args[0]]))
    gathered: list[tuple[float, dict | None]] = []
    after = {"now": f}

    def gather(i, settle_s=0.0, commands=None, command_timeout=6, raw=None, repos=True):
        assert not repos, "a second look asks no repository (pgbackrest info is the slowest)"
        gathered.append((settle_s, commands))
        for host, command in (commands or {}).items():
            sent.append((host, command[1:]))
            raw[host] = sshprobe.ProbeResult(host, True, {**armed,
                                                          "auto_pause": answers["auto-pause"]})
        return {}, after["now"]

    monkeypatch.setattr(ha, "gather", gather)
    act = failover.direct(inv(), p, f, {"auto": {"state": "armed"}}, None, False)
    j = journal.Journal("t", "failover")
    run = act(j, ha.Interaction(yes=True))
    assert run.exit_code == ExitCode.OK, run.failures
    assert [(h, a[0]) for h, a in sent] == [("pg2", "auto-pause"), ("pg2", "take-over")]
    assert "--probe" in sent[0][1], "the pause answers with the node's probe after it"
    assert len(gathered) == 1 and list(gathered[0][1] or {}) == ["pg2"], \
        "one round: the pause and the facts together"
    steps = [e["step"] for e in journal.read("t", op_id=j.op_id)]
    assert steps.index("auto-paused") < steps.index("gates"), steps
    # repmgrd acted before it stopped (here: a watcher now knows more WAL than pg2 holds):
    # the verdict changed, nothing is promoted
    sent.clear()
    after["now"] = facts({"pg1": None, "pg2": armed}, {"backup1": watch("0/5124F80")})
    run = failover.direct(inv(), p, f, {}, None, False)(journal.Journal("t", "failover"),
                                                         ha.Interaction(yes=True))
    assert run.exit_code == ExitCode.FAILED, run.failures
    assert "changed while automatic failover was paused" in run.failures[0]
    assert [a[0] for _, a in sent] == ["auto-pause"]
    after["now"] = f
    # a node that cannot be paused: nothing is promoted
    sent.clear()
    answers["auto-pause"] = {"ok": False, "error": "repmgrd did not stop"}
    run = failover.direct(inv(), p, f, {}, None, False)(journal.Journal("t", "failover"),
                                                         ha.Interaction(yes=True))
    assert run.exit_code == ExitCode.FAILED and "nothing was promoted" in run.failures[0]
    assert [a[0] for _, a in sent] == ["auto-pause"]
    # not armed: no pause, no second look
    plain = facts({"pg1": None, "pg2": standby_probe("0/5000000")}, {"backup1": watch()})
    sent.clear()
    gathered.clear()
    act = failover.direct(inv(), p, plain, {"auto": {"state": "disabled"}}, None, False)
    assert act(journal.Journal("t", "failover"), ha.Interaction(yes=True)).exit_code == 0
    assert [a[0] for _, a in sent] == ["take-over"] and gathered == []
    playbook_inv = inv()
    playbook_inv.cluster["drctl_failover_path"] = "playbook"
    assert failover.direct(playbook_inv, p, f, {"auto": {"state": "disabled"}}, None,
                           False) is None
    playbook_inv.cluster["drctl_failover_path"] = "fast"
    with pytest.raises(DrctlError) as exc:
        failover.direct(playbook_inv, p, f, {"auto": {"state": "disabled"}}, None, False)
    assert exc.value.exit_code == ExitCode.INVALID_INVENTORY and "'fast'" in exc.value.message


def test_a_site_failover_plan_names_the_new_sites_vip():
    from drctl.inventory import Host, Inventory
    from tests.unit.test_rules import TWO_SITES, cluster, standby_probe, watch

    hosts = {h: Host(h, f"10.0.{16 if s == 'dc2' else 0}.1{i}", {"pg_standby"},
                     {"drctl_location": s}) for i, (h, s) in enumerate(TWO_SITES.items())}
    hosts["pg1"].groups = {"pg_primary"}
    the_inv = Inventory(path=None, hosts=hosts,
                        cluster={"drctl_cluster_name": "t", "drctl_vip": "10.0.0.100/24"},
                        group_vars={"all": {"drctl_vip": "10.0.0.100/24"},
                                    "pg_standby": {}, "pg_primary": {}})
    hosts["pg3"].vars["drctl_vip"] = "10.0.16.100/24"
    f = dataclasses.replace(
        cluster({"pg1": None, "pg2": None, "pg3": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000")}, TWO_SITES), site_vips=ha.site_vips(the_inv))
    assert f.site_vips == {"dc1": "10.0.0.100", "dc2": "10.0.16.100"}
    p = failover.plan(the_inv, {}, f, None, allow_data_loss=False, site="dc2")
    assert p.ok and p.target == "pg3"
    assert any(n.startswith("the primary moves from site dc1 to site dc2: clients must reach "
                            "dc2's VIP (10.0.16.100) from now on") for n in p.notes), p.notes


def test_a_failback_succeeds_when_its_node_streams_whatever_else_is_still_wrong():
    from drctl.operations import failback as fb

    def st(pg1: dict, holders=("pg3",)) -> dict:
        return {"primary": "pg3", "vip_holders": list(holders), "healthy": False,
                "nodes": [{"host": "pg1", "role": "standby", "streaming": True,
                           "fenced": False, **pg1},
                          {"host": "pg2", "role": "standby", "streaming": False,
                           "fenced": False}]}

    ok = fb.rejoined("pg1")
    assert ok(st({}))  # pg2 still to rejoin: reported, not this failback's failure
    assert not ok(st({"streaming": False}))
    assert not ok(st({"fenced": True}))
    assert not ok(st({}, holders=("pg3", "pg1")))
    assert not fb.rejoined("pg2")(st({}))


def test_direct_failover_holds_the_poolers_beside_the_take_over_and_resumes_them(monkeypatch):
    """The app hosts' poolers are paused (without waiting for the lost primary's
    transactions) while the target takes over, and resumed after it, success or not; an
    app host that is gone is left out and does not hold the failover up."""
    from drctl.inventory import Host
    from tests.unit.test_rules import standby_probe, watch

    for outcome in (dict(TAKE_OVER), {"ok": False, "host": "pg2", "error": "no VIP"}):
        sent: list[tuple[str, list[str]]] = []
        answers = {"pg2": [outcome],
                   "app1": [{"ok": True, "paused": True, "pausing": True,
                             "at": "2026-12-02T10:00:00.900+00:00"},
                            {"ok": True, "resumed": True}]}
        monkeypatch.setattr("drctl.sshprobe.node_json", lambda i, host, args, timeout=60,
                            sent=sent, answers=answers: (
                                sent.append((host, args)) or answers[host].pop(0)))
        monkeypatch.setattr("drctl.sshprobe.dead", lambda i, host: (
            "unreachable: nothing answers" if host == "app2" else None))
        the_inv = inv()
        the_inv.hosts = {"pg2": Host("pg2", "10.0.0.12"),
                         "app1": Host("app1", "10.0.0.14", groups={"app"}),
                         "app2": Host("app2", "10.0.1.14", groups={"app"})}
        f = facts({"pg1": None, "pg2": standby_probe("0/5000000")},
                  {"backup1": watch("0/5000000")})
        p = failover.plan(the_inv, {}, f, None, allow_data_loss=False)
        act = failover.direct(the_inv, p, f, {"auto": {"state": "disabled"}}, None, False)
        j = journal.Journal("t", "failover")
        run = act(j, ha.Interaction(yes=True))
        assert (run.exit_code == ExitCode.OK) is outcome["ok"], run.failures
        assert ("app1", ["pooler", "pause", "--keep-pausing", "--timeout", "1", "--by",
                         "failover to pg2"]) in sent
        assert sent[-1] == ("app1", ["pooler", "resume", "--by", "failover to pg2"])
        assert not any(h == "app2" for h, _ in sent), "a host that is gone is not asked"
        entries = {e["step"]: e for e in journal.read("t", op_id=j.op_id)}
        assert entries["poolers-paused"]["host"] == "app1"
        assert entries["poolers-paused"]["time"] == "2026-12-02T10:00:00.900+00:00"
        assert entries["poolers-resumed"] == {**entries["poolers-resumed"], "host": "app1",
                                              "result": "ok"}


def test_a_finished_operation_looks_again_before_calling_the_cluster_unhealthy(monkeypatch):
    """One probe that missed a node just restarted as a standby is not the verdict: the
    check looks again (each look a new probe) and the last look within the window is."""
    unreachable = {"healthy": False, "problems": ["pg1 is unreachable: timeout"]}
    healthy = {"healthy": True, "problems": []}
    looks = [unreachable, healthy]
    monkeypatch.setattr(ha.status_mod, "collect", lambda _inv: looks.pop(0))
    monkeypatch.setattr(ha.time, "sleep", lambda _s: None)
    steps = []
    ui = ha.Interaction(yes=True, progress=lambda kind, data: steps.append((kind, data)))
    assert ha._settled(dict(unreachable), inv(), None, ui) == healthy
    assert any("pg1 is unreachable" in d.get("msg", "") for _, d in steps)
    # still not as expected when the window ends: the last look stands
    monkeypatch.setattr(ha.status_mod, "collect", lambda _inv: dict(unreachable))
    assert ha._settled(dict(unreachable), inv(), None, ui, window_s=0.05) == unreachable
    # as expected at once: no second look
    monkeypatch.setattr(ha.status_mod, "collect", lambda _inv: pytest.fail("looked again"))
    assert ha._settled(healthy, inv(), None, ui) == healthy
    # the operation's own expectation decides, not only "healthy"
    assert ha._settled(unreachable, inv(), lambda st: True, ui) == unreachable
