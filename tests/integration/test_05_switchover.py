"""drctl switchover both ways under a steady write load, its gates, plan, lock and prompts."""

import json
import os
import subprocess
import sys

import pytest

from drctl_lab.hosts import psql, sh, vip_holders, wait_for
from drctl_lab.writer import Writer
from tests.integration.conftest import ROOT, drctl, drctl_json, healthy_with

pytestmark = pytest.mark.usefixtures("clean_cluster")


def test_plan_shows_steps_and_gates_and_changes_nothing():
    code, plan = drctl_json("switchover", "--plan", "--to", "pg2")
    assert code == 0
    assert plan["would_proceed"] is True
    assert len(plan["steps"]) >= 5 and all(g["ok"] for g in plan["gates"])
    assert vip_holders() == ["pg1"]
    assert psql("pg1", "select pg_is_in_recovery()") == "f"


def test_without_terminal_or_yes_it_refuses():
    proc = drctl("switchover", "--to", "pg2")
    assert proc.returncode == 8
    assert "--yes" in proc.stderr
    assert vip_holders() == ["pg1"]


def test_switchover_round_trip_loses_nothing():
    with Writer(start_id=1_000_000) as w:
        w.wait_for_acks(50)
        code, report = drctl_json("switchover", "--to", "pg2", "--yes", timeout=600)
        assert code == 0, report
        w.wait_for_acks(50)
        status = report["status"]
        assert status["primary"] == "pg2" and status["vip_holders"] == ["pg2"]
        assert status["healthy"], status["problems"]
        assert report["write_outage_s"] is not None
        w.stop()
        assert w.missing_on("pg2") == [], "an acknowledged write is missing on the new primary"
        out = sh("pg1", "runuser -u postgres -- psql -XAtq -d app -c "
                        "\"insert into app.ha_writes (id) values (-1)\" 2>&1", check=False)
        assert "read-only transaction" in out, "the old primary must refuse writes"
        print(f"switchover pg1->pg2: outage {report['write_outage_s']} s (drctl), longest gap "
              f"{w.longest_gap():.3f} s (client), {len(w.acked)} acked, {len(w.errors)} errors")

    with Writer(start_id=2_000_000) as w:
        w.wait_for_acks(50)
        code, report = drctl_json("switchover", "--to", "pg1", "--yes", timeout=600)
        assert code == 0, report
        w.wait_for_acks(50)
        w.stop()
        assert w.missing_on("pg1") == []
    code, status = drctl_json("status")
    assert code == 0 and status["primary"] == "pg1" and status["vip_holders"] == ["pg1"]
    nodes = {n["host"]: n for n in status["nodes"]}
    assert nodes["pg2"]["role"] == "standby" and nodes["pg2"]["streaming"]


def test_switchover_to_the_primary_is_nothing_to_do():
    code, report = drctl_json("switchover", "--to", "pg1", "--yes")
    assert code == 0 and report["result"] == "nothing-to-do"


def test_gate_refuses_a_stopped_standby():
    sh("pg2", "systemctl stop postgresql@15-main")
    try:
        proc = drctl("switchover", "--to", "pg2", "--yes")
        assert proc.returncode == 8
        assert "refused by its gates" in proc.stderr and "target" in proc.stderr
        assert vip_holders() == ["pg1"]
    finally:
        sh("pg2", "systemctl start postgresql@15-main")
    wait_for("a healthy cluster", lambda: drctl_json("status")[0] == 0, timeout=60)


def test_lock_refuses_a_concurrent_operation_and_a_stale_one():
    lock = ROOT / ".drctl" / "locks" / "lab.lock"
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        import socket

        lock.write_text(json.dumps({"host": socket.gethostname(), "pid": sleeper.pid,
                                    "operation": "switchover", "since": "test"}))
        proc = drctl("switchover", "--to", "pg2", "--yes")
        assert proc.returncode == 9
        assert f"pid {sleeper.pid}" in proc.stderr and "switchover" in proc.stderr
        assert drctl("unlock").returncode == 9, "a live holder's lock needs --force"
    finally:
        sleeper.kill()
        sleeper.wait()
    proc = drctl("switchover", "--to", "pg2", "--yes")
    assert proc.returncode == 9 and "stale lock" in proc.stderr
    assert drctl("unlock").returncode == 0
    assert not lock.exists()
    assert vip_holders() == ["pg1"]


def test_journal_lists_the_steps():
    code, entries = drctl_json("journal", "--last", "200")
    assert code == 0
    steps = [(e["operation"], e["step"]) for e in entries]
    for step in ("gates", "promoted", "vip-moved", "rejoined", "end"):
        assert ("switchover", step) in steps
    assert all({"time", "op_id", "host", "result"} <= set(e) for e in entries)


def test_pretty_output_prints_status_and_outage():
    env = {**os.environ}
    proc = subprocess.run([sys.executable, "-m", "drctl", "switchover", "--to", "pg2", "--yes"],
                          cwd=ROOT, capture_output=True, text=True, env=env, check=False,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "write outage as drctl observed it" in proc.stdout
    assert "pg2" in proc.stdout
    healthy_with("pg2")
