"""The application's pooler (PgBouncer on app1), as a user and an operator meet it: the
application's only path to the database, paused by a switchover so that requests wait
instead of failing, a switchover refused when a pause cannot complete, and a pause nobody
took back resumed by the guard. (A drill under load through the pooler: test_09.)"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from drctl.exitcodes import ExitCode
from drctl_lab.hosts import lab_secrets, lab_vars, psql, sh, wait_for
from tests.integration.conftest import drctl_json, healthy_with, scrape, series
from tests.integration.test_09_app_drill import APP, Browser

pytestmark = pytest.mark.usefixtures("clean_cluster")

NODE = "/usr/local/libexec/drctl/drctl-node"


def pooler(action: str, *args: str, check: bool = True) -> dict:
    out = sh("app1", " ".join([NODE, "pooler", action, *map(shlex.quote, args)]), check=check)
    return json.loads(out)


def health() -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(APP + "/health", timeout=20) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def app_pooler(report: dict) -> dict:
    return next(p for p in report["poolers"] if p["host"] == "app1")


def test_the_application_reaches_the_database_only_through_its_pooler():
    code, st = drctl_json("status")
    assert code == ExitCode.OK, st
    seen = app_pooler(st)
    vip = lab_vars()["drctl_vip"].split("/")[0]
    assert seen["state"] == "running" and seen["server"] == vip, seen
    status, body = health()
    assert status == 200 and body["writable"] and body["server"] == vip, body
    # its metrics: up, running, and a transaction through it lands on the primary
    wait_for("app1's pooler metrics", lambda: series(
        scrape("app1"), "drctl_pooler_served_by_standby") is not None, timeout=40, interval=1)
    m = scrape("app1")
    assert series(m, "drctl_pooler_up") == 1 and series(m, "drctl_pooler_paused") == 0, m
    assert series(m, "drctl_pooler_served_by_standby") == 0, m
    sh("app1", "systemctl stop pgbouncer")
    try:
        status, body = health()
        assert status == 503 and body["database"] == "unreachable", body
        code, st = drctl_json("status")
        assert code != ExitCode.OK
        assert any(p.startswith("app1's pooler does not answer") for p in st["problems"]), st
    finally:
        sh("app1", "systemctl start pgbouncer")
    wait_for("the application to reach the primary through its pooler again",
             lambda: health()[0] == 200, timeout=30, interval=1)


def test_a_switchover_pauses_the_pooler_and_resumes_it_after_the_vip_moved():
    code, report = drctl_json("switchover", "--to", "pg2", "--yes", timeout=600)
    assert code == ExitCode.OK, report
    steps = [e["step"] for e in report["journal"]]
    assert steps.index("poolers-armed") < steps.index("poolers-paused") \
        < steps.index("promoted") < steps.index("vip-moved") \
        < steps.index("poolers-resumed"), steps
    # armed, not paused, through the playbook's turns: the hand-over told both poolers to
    # pause after its checkpoint, just before the clean stop
    paused = next(e for e in report["journal"] if e["step"] == "poolers-paused")
    assert set(paused["host"].split(",")) == {"app1", "app3"}, paused
    times = next(e for e in report["journal"] if e["step"] == "promoted")["handover"]["times"]
    assert times["checkpoint"] < times["poolers_paused"] < times["stopped"], times
    # resumed by the waiter its pause started, as soon as pg2 answered at the VIP (or,
    # behind it, by the switchover's own resume)
    resumed = next(e for e in report["journal"] if e["step"] == "poolers-resumed")
    assert resumed["result"] == "ok" and set(resumed["host"].split(",")) == {"app1", "app3"}, \
        resumed
    last = pooler("state")["last_resume"]
    assert last["paused_by"] == "switchover pg1 -> pg2", last
    assert last["by"].startswith("switchover pg1 -> pg2"), last
    assert 0 < last["paused_s"] < 30, last
    healthy_with("pg2")
    name = "p" + uuid.uuid4().hex[:12]
    assert Browser().register(name, "after the pause")[0] == 200
    assert psql("pg2", f"select count(*) from app.users where username = '{name}'",
                db="app") == "1"
    code, report = drctl_json("switchover", "--to", "pg1", "--yes", timeout=600)
    assert code == ExitCode.OK, report


def test_a_transaction_held_open_stops_the_switchover_with_the_pooler_running():
    """PAUSE waits for the transactions in flight: one that stays open past the pause's
    timeout (5 s) makes the pooler take its pause back and the hand-over stop before the
    clean stop, with nothing changed."""
    password = lab_secrets()["vault_pg_app_password"]
    marker = "held_" + uuid.uuid4().hex[:8]
    # idle in its transaction (a statement would meet the pooler's 5 s statement timeout)
    session = (f"(echo \"begin; select '{marker}';\"; sleep 90) | PGPASSWORD="
               f"{shlex.quote(password)} psql -h 127.0.0.1 -p 6432 -U app -d app")
    sh("app1", f"setsid sh -c {shlex.quote(session)} </dev/null >/dev/null 2>&1 &")
    try:
        wait_for("the held transaction on pg1", lambda: psql(
            "pg1", f"select count(*) from pg_stat_activity where query like '%{marker}%' "
                   "and pid <> pg_backend_pid()") == "1", timeout=20, interval=0.5)
        code, report = drctl_json("switchover", "--to", "pg2", "--yes", timeout=600)
        assert code != ExitCode.OK, report
        # the hand-over told the armed poolers to pause after its checkpoint; app1's
        # answer was that it could not, so it aborted before the clean stop
        assert "the armed poolers did not all pause: app1: failed: the pooler could " \
               "not pause app within 5 s" in report["_stderr"], report["_stderr"]
        seen = pooler("state")
        assert seen["state"] == "running", seen
        assert "its pause timed out" in seen["last_resume"]["by"], seen
        assert psql("pg1", "select pg_is_in_recovery()") == "f"
        healthy_with("pg1")
    finally:
        psql("pg1", "select pg_terminate_backend(pid) from pg_stat_activity "
                    f"where query like '%{marker}%' and pid <> pg_backend_pid()")
    name = "p" + uuid.uuid4().hex[:12]
    assert Browser().register(name, "the pooler runs")[0] == 200


def test_a_pause_nobody_takes_back_is_resumed_by_the_guard():
    """As drctl killed between the pause and the resume leaves it: the pooler paused,
    its record naming the switchover. Status shows it paused, and the guard resumes it
    once past its limit (30 s) and says so."""
    paused = pooler("pause", "--by", "a switchover whose drctl was killed")
    assert paused["ok"] and paused["paused"], paused
    _, st = drctl_json("status")
    seen = app_pooler(st)
    assert seen["state"] == "paused" and seen["paused_by"] == "a switchover whose drctl " \
                                                              "was killed", seen
    # Prometheus sees it too (DrctlPoolerPausedTooLong past 10 s): the metrics service
    # writes every 15 s
    wait_for("app1's metrics to show its pooler paused", lambda: (series(
        scrape("app1"), "drctl_pooler_paused_seconds") or 0) > 0, timeout=40, interval=1)
    assert series(scrape("app1"), "drctl_pooler_paused") == 1
    wait_for("the guard to resume the pooler", lambda: pooler("state")["state"] == "running",
             timeout=75, interval=1)
    last = pooler("state")["last_resume"]
    assert last["by"].startswith("the pooler guard (paused "), last
    assert last["paused_by"] == "a switchover whose drctl was killed" and \
        last["paused_s"] >= 30, last
    wait_for("the application to answer through its pooler", lambda: health()[0] == 200,
             timeout=30, interval=1)


def test_a_new_listen_port_restarts_the_pooler(tmp_path):
    """PgBouncer reads its listen address, port and socket directory only when it starts
    (a reload keeps the old socket): the role restarts it when one of them changes, and
    reloads it otherwise. On app3, the spare of dc1's application VIP (app1 serves)."""
    from drctl.runner import accelerator_env
    from drctl_lab.hosts import INVENTORY
    from tests.integration.conftest import ROOT

    play = tmp_path / "pooler.yml"
    play.write_text("- name: The pooler alone\n  hosts: app3\n  gather_facts: false\n"
                    "  roles:\n    - role: drctl\n    - role: pgbouncer\n")

    def apply(port: int) -> None:
        run = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
             str(play), "-e", f"pgbouncer_port={port}"],
            cwd=ROOT, env={**os.environ, **accelerator_env()}, capture_output=True,
            text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]

    def listening() -> str:
        return sh("app3", "ss -ltnH")

    try:
        apply(6439)
        assert "127.0.0.1:6439 " in listening() and "127.0.0.1:6432 " not in listening(), \
            listening()
    finally:
        apply(6432)
    assert "127.0.0.1:6432 " in listening() and "127.0.0.1:6439 " not in listening(), \
        listening()
    state = json.loads(sh("app3", f"{NODE} pooler state"))
    assert state["state"] == "running", state
