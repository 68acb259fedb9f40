"""bin/test-phases' time budgets: each phase against a multiple of its lane's own
provisioning time, so that a slower machine does not fail the suite and a slower module
does."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def phases_module() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("test_phases_script",
                                                  str(ROOT / "bin" / "test-phases"))
    spec = importlib.util.spec_from_loader("test_phases_script", loader)
    assert spec
    module = importlib.util.module_from_spec(spec)
    sys.modules["test_phases_script"] = module  # dataclasses look their module up
    loader.exec_module(module)
    return module


def test_a_phase_far_over_its_budget_is_flagged_and_a_slow_machine_is_not():
    tp = phases_module()
    rows = [tp.Row("a", "test_06_failover", "ok", 480.0, 100.0),
            tp.Row("b", "test_14_sites", "ok", 2000.0, 200.0),
            tp.Row("check", "unit", "ok", 40.0, 0.0),
            tp.Row("a", "lab up --fresh", "ok", 300.0, 0.0)]
    budgets, report = tp.budget_check(rows, {"a": 184.0, "b": 212.0})
    assert [(b["phase"], b["over"]) for b in budgets] == [("test_06_failover", False),
                                                         ("test_14_sites", True)]
    assert "OVER" in report and "lane a 184 s" in report
    # the same run on a machine twice as slow: every ratio is the same, nothing is over
    slow = [tp.Row(r.lane, r.phase, r.result, r.seconds * 2, r.started) for r in rows[:1]]
    assert not any(b["over"] for b in tp.budget_check(slow, {"a": 368.0})[0])
    assert tp.budget_check(rows, {})[0] == []


def test_the_yardstick_is_the_first_provision_from_bare_hosts(tmp_path, monkeypatch):
    tp = phases_module()
    art = tmp_path / "test-artifacts"
    art.mkdir()
    (art / "provision.json").write_text(json.dumps([
        {"seconds": 80.0, "from_bare": False, "sites": "provisioned"},
        {"seconds": 270.0, "from_bare": True, "sites": "provisioned"},
        {"seconds": 300.0, "from_bare": True, "sites": "provisioned-2sites"}]))
    assert tp.provision_seconds(tmp_path) == 270.0
    assert tp.provision_seconds(tmp_path / "none") is None
    monkeypatch.setattr(tp, "ROOT", tmp_path)
    monkeypatch.setattr(tp, "LANE_B_TREE", tmp_path / "none")
    monkeypatch.setattr(tp, "LANE_C_TREE", tmp_path / "none")
    assert tp.yardsticks() == {"a": 270.0, "serial": 270.0, "b": 270.0, "c": 270.0}


def test_every_integration_module_has_a_budget():
    tp = phases_module()
    modules = {p.stem for p in (ROOT / "tests" / "integration").glob("test_*.py")}
    assert modules - set(tp.BUDGETS) == set(), "add the new module's line to BUDGETS"


def test_each_lab_lane_runs_its_listed_modules_in_order_every_module_once():
    """Lane b's lab is one site, lane c's two sites from the start: a one-site module in
    lane c (or a two-site one in lane b) would find the wrong lab, so each lane runs the
    modules its list names, in that order, and lane a every other one."""
    tp = phases_module()
    lanes = tp.plan(skip_molecule=True, serial=False)
    b = [p.name for p in lanes["b"]]
    c = [p.name for p in lanes["c"]]
    assert b == ["lab up --fresh", *tp.LANE_B, "test_99_lab_down"]
    assert c == ["lab up --fresh", *tp.LANE_C, "test_99_lab_down"]
    assert lanes["c"][0].cmd[-2:] == ["--sites", "2"]
    assert "--sites" not in lanes["b"][0].cmd
    a = [p.name for p in lanes["a"]]
    assert not set(a) & (set(tp.LANE_B) | set(tp.LANE_C))
    modules = {m.stem for m in (ROOT / "tests" / "integration").glob("test_*.py")}
    assert set(tp.LANE_B) | set(tp.LANE_C) <= modules
    assert not set(tp.LANE_B) & set(tp.LANE_C)
    assert set(a[1:]) | set(b[1:]) | set(c[1:]) == modules  # once each (lab down in all)
    # the modules that ask for two sites are lane c's, and no other
    two_site = {m.stem for m in (ROOT / "tests" / "integration").glob("test_*.py")
                if "lab_sites(2)" in m.read_text()}
    assert two_site == set(tp.LANE_C)


def test_the_lanes_labs_have_names_subnets_and_trees_of_their_own(monkeypatch):
    """Three labs side by side: no two share a name, a tree, or any subnet (dc1, dc2 or
    the WAN side), and none takes molecule's."""
    import ipaddress

    from drctl_lab import lab as labmod

    tp = phases_module()
    for var in ("DRCTL_LAB_SUBNET", "DRCTL_LAB_SUBNET_B", "DRCTL_LAB_SUBNET_C",
                "DRCTL_LAB_DC2_SUBNET", "DRCTL_LAB_WAN_SUBNET", "DRCTL_LAB_NAME"):
        monkeypatch.delenv(var, raising=False)
    envs = {"a": {}, "b": tp.lane_env("b"), "c": tp.lane_env("c")}
    assert len({e.get("DRCTL_LAB_NAME", "drctl-lab") for e in envs.values()}) == 3
    assert len({e.get("DRCTL_HOME", "") for e in envs.values()}) == 3
    nets = []
    for env in envs.values():
        monkeypatch.delenv("DRCTL_LAB_SUBNET", raising=False)
        if "DRCTL_LAB_SUBNET" in env:
            monkeypatch.setenv("DRCTL_LAB_SUBNET", env["DRCTL_LAB_SUBNET"])
        nets += [labmod.subnet(), labmod.dc2_subnet(), labmod.wan_subnet()]
    nets.append(tp.MOLECULE_SUBNET)
    for i, one in enumerate(nets):
        for other in nets[i + 1:]:
            assert not one.overlaps(other), (one, other)
    assert tp.next_subnet(ipaddress.IPv4Network("172.29.54.0/24")) == \
        ipaddress.IPv4Network("172.29.56.0/24")


def test_molecule_runs_last_in_lane_c_and_each_phase_says_its_cpu_share():
    """molecule waits for lane c's lab to be down instead of running beside three labs."""
    tp = phases_module()
    lanes = tp.plan(skip_molecule=False, serial=False)
    assert [p.name for p in lanes["c"]][-2:] == ["test_99_lab_down", "molecule"]
    assert "molecule" not in [p.name for p in lanes["a"] + lanes["b"]]
    assert [p.name for p in lanes["check"]] == ["lint", "unit"]
    runner = tp.Runner(keep_going=True, stream=True)
    runner.run_lane("a", [tp.Phase("quick", ["true"])])
    [row] = runner.rows
    assert row.result == "ok" and (row.cpu is None or 0 <= row.cpu <= 100)
    assert tp.busy_percent((10, 100), (60, 200)) == 50
    assert tp.busy_percent(None, (60, 200)) is None
    assert "CPU" in tp.table(runner.rows, 1.0)


def test_a_lane_waiting_on_a_failed_lane_is_released(monkeypatch):
    """Lane c waits for lane b's lab (the warm image), lane b for lane a's (the bare one):
    a lane that fails before its lab is up must not leave the next waiting for ever."""
    tp = phases_module()
    runner = tp.Runner(keep_going=False, stream=True)
    runner.run_lane("a", [tp.Phase("lab up --fresh", ["false"])])
    assert runner.image_ready.is_set()
    runner.run_lane("b", [tp.Phase("lab up --fresh", ["true"])])
    assert runner.warm_ready.is_set()
    runner.run_lane("c", [tp.Phase("lab up --fresh", ["true"])])
    assert [r.lane for r in runner.rows] == ["a"]  # b and c stopped: a lane failed


def test_a_failed_phase_is_summed_up_by_its_error_lines_then_its_summary():
    tp = phases_module()
    log = "\n".join([
        "....E", "==== ERRORS ====", "___ ERROR at setup of test_three_nodes ___",
        "    def provisioned_lab(lab):", ">       assert code == 0, result['failures']",
        "E       AssertionError: [{'host': 'backup2', 'task': 'Create the stanza (once)', "
        "'msg': 'unable to acquire lock'}]" + "x" * 500,
        "E       assert 2 == 0", "", "tests/integration/conftest.py:190: AssertionError",
        "E       a later failure's line", "==== short test summary info ====",
        "ERROR tests/integration/test_14_sites.py::test_three_nodes - AssertionError: [{'host'",
        "1 passed, 1 error in 205.40s"])
    digest = tp.failure_digest(log)
    assert digest[0].startswith("E       AssertionError: [{'host': 'backup2'")
    assert len(digest[0]) == 400 and digest[0].endswith("...")
    assert digest[1] == "E       assert 2 == 0"
    assert digest[2].startswith("ERROR tests/integration/test_14_sites.py::test_three_nodes")
    assert len(digest) == 3


def test_a_failed_phase_that_is_not_pytest_is_summed_up_by_its_last_lines():
    tp = phases_module()
    log = "\n".join(f"line {i}" for i in range(40)) + "\nmake: *** [Makefile:90: lint] Error 1"
    digest = tp.failure_digest(log, limit=5)
    assert digest == ["line 36", "line 37", "line 38", "line 39",
                      "make: *** [Makefile:90: lint] Error 1"]


def test_the_runner_keeps_the_first_failing_phase_and_its_log(tmp_path, monkeypatch):
    tp = phases_module()
    monkeypatch.setattr(tp, "LOGS", tmp_path)
    runner = tp.Runner(keep_going=True, stream=False)
    monkeypatch.setattr(runner, "say", lambda text: None)
    assert runner.run_phase("a", tp.Phase("fine", ["true"])) == 0
    assert runner.run_phase("b", tp.Phase("broken", ["sh", "-c", "echo 'E   why'; exit 3"])) == 3
    assert runner.run_phase("a", tp.Phase("later", ["false"])) == 1
    what, log = runner.failed_log
    assert what == "[b] broken (exit 3)" and log == tmp_path / "b.broken.log"
    assert tp.failure_digest(log.read_text()) == ["E   why"]
