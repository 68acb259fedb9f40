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
    assert tp.yardsticks() == {"a": 270.0, "serial": 270.0, "b": 270.0, "check": 270.0}


def test_every_integration_module_has_a_budget():
    tp = phases_module()
    modules = {p.stem for p in (ROOT / "tests" / "integration").glob("test_*.py")}
    assert modules - set(tp.BUDGETS) == set(), "add the new module's line to BUDGETS"


def test_lane_b_runs_its_modules_in_the_listed_order_the_two_site_one_last():
    """test_14 turns lane b's lab into two sites; a one-site module after it would find
    the wrong lab, so the order is LANE_B's, not the file names'."""
    tp = phases_module()
    lanes = tp.plan(skip_molecule=True, serial=False)
    b = [p.name for p in lanes["b"]]
    assert b == ["lab up --fresh", *tp.LANE_B, "test_99_lab_down"]
    assert b.index("test_15_app_vip") < b.index("test_14_sites")
    a = [p.name for p in lanes["a"]]
    assert not set(a) & set(tp.LANE_B)
    modules = {m.stem for m in (ROOT / "tests" / "integration").glob("test_*.py")}
    assert set(tp.LANE_B) <= modules
    assert set(a[1:]) | set(b[1:]) == modules  # every module runs once (lab down in both)


def test_molecule_waits_in_the_check_lane_for_lane_as_provision():
    """The start of a run (both labs provisioning from bare hosts) keeps the CPU busy:
    molecule runs beside the fault modules instead, in the check lane."""
    tp = phases_module()
    lanes = tp.plan(skip_molecule=False, serial=False)
    [molecule] = [p for p in lanes["check"] if p.name == "molecule"]
    assert molecule.after == "a:test_03_provision"
    assert "test_03_provision" in [p.name for p in lanes["a"]]
    assert "molecule" not in [p.name for p in lanes["a"] + lanes["b"]]
    assert [p.name for p in tp.plan(skip_molecule=False, serial=True)["serial"]][-1] \
        == "molecule"


def test_a_phase_after_another_lanes_starts_once_it_ended_and_a_failed_lane_frees_it(
        tmp_path):
    tp = phases_module()
    mark = tmp_path / "first-ended"
    lanes = {
        "a": [tp.Phase("slow", [sys.executable, "-c",
                                "import time, pathlib; time.sleep(0.5); "
                                f"pathlib.Path({str(mark)!r}).touch()"])],
        "check": [tp.Phase("needs-slow", ["test", "-e", str(mark)], after="a:slow")],
    }
    runner = tp.Runner(keep_going=True, stream=True)
    threads = [tp.threading.Thread(target=runner.run_lane, args=item) for item in lanes.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert {r.phase: r.result for r in runner.rows} == {"slow": "ok", "needs-slow": "ok"}
    assert all(r.cpu is None or 0 <= r.cpu <= 100 for r in runner.rows)
    # a lane that stops before the phase others wait on does not hold them for ever
    failed = tp.Runner(keep_going=False, stream=True)
    waiting = tp.threading.Thread(target=failed.run_lane, args=(
        "check", [tp.Phase("waits", ["true"], after="a:never-run")]))
    waiting.start()
    failed.run_lane("a", [tp.Phase("fails", ["false"]), tp.Phase("never-run", ["true"])])
    waiting.join(timeout=30)
    assert not waiting.is_alive()
