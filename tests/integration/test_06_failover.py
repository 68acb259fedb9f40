"""drctl failover after real faults, the returning old primary fenced, drctl failback."""

import json
import subprocess
import time

import pytest

from tests.integration.conftest import (
    INVENTORY,
    PREFIX,
    drctl,
    drctl_json,
    psql,
    sh,
    vip_connect,
    vip_holders,
    wait_for,
)
from tests.integration.writer import Writer

MAIN_VARS = INVENTORY.parent / "group_vars" / "all" / "main.yml"


def healthy_with(primary: str) -> None:
    def check():
        code, st = drctl_json("status")
        return code == 0 and st["primary"] == primary and st["vip_holders"] == [primary]
    wait_for(f"a healthy cluster with primary {primary}", check, timeout=60, interval=1)


def assert_failed_over_to(report: dict, target: str) -> None:
    st = report["status"]
    assert st["primary"] == target and st["vip_holders"] == [target], st
    with vip_connect() as conn:
        assert conn.execute("select inet_server_addr()").fetchone() is not None
        conn.execute("create table if not exists app.after_failover (x int)")
        conn.execute("insert into app.after_failover values (1)")
        conn.commit()


def assert_fenced_and_harmless(host: str) -> None:
    wait_for(f"{host} to refuse to run PostgreSQL",
             lambda: sh(host, "systemctl is-active postgresql@15-main", check=False) != "active",
             timeout=30)
    assert sh(host, "test -e /etc/drctl/fenced && echo yes", check=False) == "yes"
    out = sh(host, "runuser -u postgres -- psql -XAtq -c 'select 1' 2>&1", check=False)
    assert "No such file" in out or "could not connect" in out or "Connection refused" in out
    time.sleep(3)
    assert host not in vip_holders()


def failback_and_switch_back(host: str) -> dict:
    code, report = drctl_json("failback", "--node", host, "--switch-back", "--yes", timeout=900)
    assert code == 0, report
    healthy_with(host)
    return report


@pytest.fixture
def synchronous():
    original = MAIN_VARS.read_text()
    MAIN_VARS.write_text(original + "drctl_synchronous: true\n")
    try:
        code, result = drctl_json("provision", timeout=900)
        assert code == 0, result["failures"]
        healthy_with("pg1")
        yield
    finally:
        MAIN_VARS.write_text(original)
        code, result = drctl_json("provision", timeout=900)
        assert code == 0, result["failures"]


def test_power_loss_failover_in_synchronous_mode_loses_nothing(synchronous):
    _, st = drctl_json("status")
    assert {n["host"]: n["sync_state"] for n in st["nodes"]}["pg2"] == "quorum"
    with Writer(start_id=3_000_000) as w:
        w.wait_for_acks(100)
        subprocess.run(["docker", "kill", PREFIX + "pg1"], check=True, capture_output=True)
        start = time.monotonic()
        code, report = drctl_json("failover", "--yes", timeout=600)
        assert code == 0, report
        w.wait_for_acks(50)
        w.stop()
        assert_failed_over_to(report, "pg2")
        assert w.missing_on("pg2") == [], "synchronous mode: no acknowledged write may be lost"
        steps = [e["step"] for e in report["journal"]]
        assert "unfenced" in steps and "promoted" in steps and "write-proved" in steps
        print(f"power-loss failover: command {time.monotonic() - start:.1f} s, client gap "
              f"{w.longest_gap():.2f} s, {w.errors} errors")
    subprocess.run(["docker", "start", PREFIX + "pg1"], check=True, capture_output=True)
    wait_for("pg1 to boot", lambda: sh("pg1", "systemctl is-system-running", check=False)
             in ("running", "degraded"), timeout=60)
    assert_fenced_and_harmless("pg1")
    code, st = drctl_json("status")
    assert st["primary"] == "pg2" and st["vip_holders"] == ["pg2"]
    assert any("pg1 is fenced" in p for p in st["problems"])
    report = failback_and_switch_back("pg1")
    assert any(e["step"] in ("rewound", "rejoined") for e in report["journal"])


def test_failover_refused_when_lag_is_above_the_threshold():
    psql("pg2", "select pg_wal_replay_pause()")
    try:
        psql("pg1", "create table lagging as select generate_series(1, 600000) as x", db="app")
        wait_for("lag above 16 MiB in status", lambda: (
            (drctl_json("status")[1]["nodes"][1].get("lag_bytes") or 0) > 16 * 1024 * 1024),
            timeout=30)
        sh("pg1", "systemctl stop postgresql@15-main")
        proc = drctl("failover", "--yes")
        assert proc.returncode == 8, proc.stdout + proc.stderr
        assert "--allow-data-loss" in proc.stderr and "last known lag" in proc.stderr
        assert psql("pg2", "select pg_is_in_recovery()") == "t", "nothing may change"
    finally:
        psql("pg2", "select pg_wal_replay_resume()")
        sh("pg1", "systemctl start postgresql@15-main")
        psql("pg1", "drop table if exists lagging", db="app")
    healthy_with("pg1")


def test_kill_9_of_the_postmaster_then_failover():
    pid = sh("pg1", "head -1 /var/lib/postgresql/15/main/postmaster.pid")
    sh("pg1", f"kill -9 {pid}")
    wait_for("pg1 to stop accepting connections",
             lambda: sh("pg1", "runuser -u postgres -- pg_isready -q; echo $?",
                        check=False) != "0", timeout=15)
    code, report = drctl_json("failover", "--yes", timeout=600)
    assert code == 0, report
    assert_failed_over_to(report, "pg2")
    assert any(e["step"] == "fenced" and e["host"] == "pg1" for e in report["journal"])
    assert_fenced_and_harmless("pg1")
    sh("pg1", "systemctl start postgresql@15-main", check=False)
    assert_fenced_and_harmless("pg1")
    failback_and_switch_back("pg1")


def test_partition_then_failback_reports_and_keeps_the_diverged_writes():
    sh("pg1", "iptables -I INPUT -i eth0 -j DROP && iptables -I OUTPUT -o eth0 -j DROP")
    try:
        wait_for("the isolated primary to give the VIP up", lambda: "pg1" not in vip_holders(),
                 timeout=15)
        psql("pg1", "create table if not exists app.diverged (x int)", db="app")
        psql("pg1", "insert into app.diverged select generate_series(1, 10)", db="app")
        code, report = drctl_json("failover", "--yes", timeout=600)
        assert code == 0, report
        assert_failed_over_to(report, "pg2")
        assert any(e["step"] == "unfenced" and e["host"] == "pg1" for e in report["journal"])
        assert vip_holders() == ["pg2"]
    finally:
        sh("pg1", "iptables -F INPUT && iptables -F OUTPUT")
    assert_fenced_and_harmless("pg1")
    assert vip_holders() == ["pg2"]

    code, report = drctl_json("failback", "--yes", timeout=900)
    assert code == 0, report
    diverged = next(e for e in report["journal"] if e["step"] == "diverged")
    assert diverged["divergence"]["commits"] >= 1, diverged
    aside = diverged["set_aside"]
    assert sh("pg1", f"test -f {aside}/PG_VERSION && echo kept") == "kept"
    assert any(e["step"] == "rewound" and e["result"] == "ok" for e in report["journal"]), \
        json.dumps(report["journal"], indent=1)[:3000]
    healthy_with("pg2")
    assert psql("pg1", "select to_regclass('app.diverged') is null", db="app") == "t"
    code, report = drctl_json("switchover", "--to", "pg1", "--yes", timeout=600)
    assert code == 0, report
    healthy_with("pg1")
    code, st = drctl_json("status")
    assert any("pg1 keeps" in w and aside.rsplit("/", 1)[-1] in w for w in st["warnings"]), \
        "status reminds the operator of the set-aside directory"
    sh("pg1", "rm -rf /var/lib/postgresql/15/main.diverged-*")  # every failback's copy
    code, st = drctl_json("status")
    assert not any("pg1 keeps" in w for w in st["warnings"])
