"""bin/test-phases' time budgets: each phase against a multiple of its lane's own
provisioning time, so that a slower machine does not fail the suite and a slower module
does."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
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
            # past MARGIN times its budget in lane b's yardstick (212 s), by 100 s
            tp.Row("b", "test_14_sites", "ok",
                   tp.BUDGETS["test_14_sites"] * tp.MARGIN * 212.0 + 100.0, 200.0),
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
    assert tp.yardsticks() == {"a": 270.0, "serial": 270.0, "b": 270.0}


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
    assert tp.LANE_B[-1] == "test_14_sites"  # every one-site module of lane b before it
    a = [p.name for p in lanes["a"]]
    assert not set(a) & set(tp.LANE_B)
    modules = {m.stem for m in (ROOT / "tests" / "integration").glob("test_*.py")}
    assert set(tp.LANE_B) <= modules
    assert set(a[1:]) | set(b[1:]) == modules  # every module runs once (lab down in both)


def test_molecule_runs_in_the_check_lane_and_each_phase_says_its_cpu_share():
    """molecule (its own containers) runs after lint and unit, beside the labs' modules,
    which leave part of the cores idle; lane a ends with its lab's removal."""
    tp = phases_module()
    lanes = tp.plan(skip_molecule=False, serial=False)
    assert [p.name for p in lanes["a"]][-1] == "test_99_lab_down"
    assert [p.name for p in lanes["check"]] == ["lint", "unit", "molecule"]
    assert "molecule" not in [p.name for p in lanes["a"] + lanes["b"]]
    runner = tp.Runner(keep_going=True, stream=True)
    runner.run_lane("a", [tp.Phase("quick", ["true"])])
    [row] = runner.rows
    assert row.result == "ok" and (row.cpu is None or 0 <= row.cpu <= 100)
    assert tp.busy_percent((10, 100), (60, 200)) == 50
    assert tp.busy_percent(None, (60, 200)) is None
    assert "CPU" in tp.table(runner.rows, 1.0)


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


def test_the_check_lane_starts_after_lane_a_s_check_after_phase(tmp_path, monkeypatch):
    """The check lane waits for lane a's CHECK_AFTER (the cores are busy until then), and
    for the end of a lane a that stopped before it."""
    import threading

    tp = phases_module()
    monkeypatch.setattr(tp, "LOGS", tmp_path)
    assert tp.CHECK_AFTER in [p.name for p in tp.plan(skip_molecule=True, serial=False)["a"]]
    runner = tp.Runner(keep_going=True, stream=False)
    monkeypatch.setattr(runner, "say", lambda text: None)
    check = threading.Thread(target=runner.run_lane, args=("check", [tp.Phase("lint", ["true"])]))
    check.start()
    runner.run_lane("a", [tp.Phase("lab up --fresh", ["true"]), tp.Phase("test_01_lab", ["true"])])
    check.join(timeout=10)
    assert [r.phase for r in runner.rows] == ["lab up --fresh", "test_01_lab", "lint"]

    runner = tp.Runner(keep_going=True, stream=False)
    monkeypatch.setattr(runner, "say", lambda text: None)
    check = threading.Thread(target=runner.run_lane, args=("check", [tp.Phase("lint", ["true"])]))
    check.start()
    runner.run_lane("a", [tp.Phase(tp.CHECK_AFTER, ["true"]), tp.Phase("later", ["true"])])
    check.join(timeout=10)
    rows = {r.phase: r for r in runner.rows}
    after = rows[tp.CHECK_AFTER]
    # the rows keep tenths of a second: two roundings apart by at most 0.1 s
    assert rows["lint"].started >= after.started + after.seconds - 0.1


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


def test_lane_bs_copy_skips_a_file_that_went_between_the_listing_and_the_copy(tmp_path,
                                                                            monkeypatch):
    """The check lane's lint runs beside the copy: mypy's cache journal listed as an
    untracked file and removed before its copy is no failure (a fresh-clone run on
    2026-12-07 stopped there)."""
    import subprocess

    tp = phases_module()
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "kept.txt").write_text("kept")
    listing = b"kept.txt\0.mypy_cache/3.11/cache.9.db-wal\0"
    monkeypatch.setattr(tp, "ROOT", tree)
    monkeypatch.setattr(tp, "LANE_B_TREE", tmp_path / "lane-b")
    monkeypatch.setattr(tp, "BIN", tmp_path / "venv" / "bin")
    monkeypatch.setattr(tp.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 0, stdout=listing, stderr=b""))
    real_is_file = Path.is_file
    monkeypatch.setattr(Path, "is_file", lambda p: p.name.endswith("-wal") or real_is_file(p))
    tp.copy_tree_for_lane_b()
    assert (tmp_path / "lane-b" / "kept.txt").read_text() == "kept"
    assert not (tmp_path / "lane-b" / ".mypy_cache" / "3.11" / "cache.9.db-wal").exists()


def test_lane_b_has_a_lab_of_its_own_warm_and_without_the_application_until_two_sites(
        monkeypatch):
    """Lane b's one-site modules run on a lab without app hosts (drctl_lab.lab.APP_ENV):
    a module that names one belongs in lane a, or after test_14."""
    for var in ("DRCTL_LAB_NAME", "DRCTL_LAB_SUBNET", "DRCTL_LAB_SUBNET_B"):
        monkeypatch.delenv(var, raising=False)
    tp = phases_module()
    env = tp.lane_b_env()
    assert env["DRCTL_LAB_NAME"] == "drctl-lab-b" and env["DRCTL_LAB_WARM"] == "1"
    assert env["DRCTL_LAB_APP"] == "0"
    for module in tp.LANE_B[:-1]:
        text = (ROOT / "tests" / "integration" / f"{module}.py").read_text()
        assert not re.search(r"\bapp[0-9]\b|app_vip", text), module
