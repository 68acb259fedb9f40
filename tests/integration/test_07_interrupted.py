"""A drctl killed mid-switchover (SIGKILL) leaves a cluster that a re-run brings to a
consistent state, never two primaries."""

import json
import os
import signal
import subprocess
import sys

import pytest

from drctl_lab.hosts import vip_holders, wait_for
from tests.integration.conftest import ROOT, drctl, drctl_json

pytestmark = pytest.mark.usefixtures("clean_cluster")

JOURNAL = ROOT / ".drctl" / "journal" / "lab.jsonl"


def steps_since(offset: int) -> list[dict]:
    text = JOURNAL.read_text()[offset:] if JOURNAL.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_sigkill_after_the_promotion_then_rerun():
    offset = len(JOURNAL.read_text()) if JOURNAL.exists() else 0
    proc = subprocess.Popen([sys.executable, "-m", "drctl", "switchover", "--to", "pg2",
                             "--yes"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for("the promotion step in the journal",
             lambda: any(e["step"] == "promoted" for e in steps_since(offset)), timeout=120,
             interval=0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # drctl and the ansible-playbook it runs
    proc.wait()

    # pg1 was stopped before pg2 was promoted: keepalived alone puts the VIP on pg2,
    # never on both at any moment
    seen: list[list[str]] = []

    def settled_on_pg2() -> bool:
        seen.append(vip_holders())
        assert len(seen[-1]) <= 1, f"two VIP holders after the kill: {seen[-1]}"
        return seen[-1] == ["pg2"]
    wait_for("the VIP on the promoted pg2 alone", settled_on_pg2, timeout=30, interval=0.2)
    rerun = drctl("switchover", "--to", "pg2", "--yes")
    assert rerun.returncode == 9 and "stale lock" in rerun.stderr
    assert drctl("unlock").returncode == 0
    code, report = drctl_json("switchover", "--to", "pg2", "--yes", timeout=600)
    assert code == 0, report
    status = report["status"]
    assert status["primary"] == "pg2" and status["vip_holders"] == ["pg2"]
    assert status["healthy"], status["problems"]
    # and the cluster the rerun left is an ordinary one: it switches back like any other
    code, report = drctl_json("switchover", "--to", "pg1", "--yes", timeout=600)
    assert code == 0, report
    assert report["status"]["primary"] == "pg1" and report["status"]["vip_holders"] == ["pg1"]
    assert report["status"]["healthy"], report["status"]["problems"]
