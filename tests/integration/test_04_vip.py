"""The VIP sits on the writable primary and nowhere else, also under faults."""

import pytest

from drctl_lab.hosts import sh, vip_connect, vip_holders, wait_for
from tests.integration.conftest import drctl_json, holds_for
from tests.integration.test_06_failover import rejoins_as_standby

pytestmark = pytest.mark.usefixtures("clean_cluster")
# Longer than keepalived's master-down interval (3 adverts + skew: 0.6 s at the default
# advert_int of 0.2 s, 3.6 s at VRRPv2's 1 s), so a wrong takeover would be seen
MASTER_DOWN_S = 4


def test_exactly_one_holder_and_it_is_the_primary():
    assert vip_holders() == ["pg1"]


def test_standby_without_keepalived_leaves_exactly_one_holder():
    sh("pg2", "systemctl stop keepalived")
    try:
        holds_for("pg1 as the only VIP holder", lambda: vip_holders() == ["pg1"], MASTER_DOWN_S)
        code, report = drctl_json("status")
        assert code == 7
        assert any("pg2: keepalived is inactive" in p for p in report["problems"])
        assert report["vip_holders"] == ["pg1"]
    finally:
        sh("pg2", "systemctl start keepalived")
    wait_for("keepalived active on pg2", lambda: sh(
        "pg2", "systemctl is-active keepalived", check=False) == "active", timeout=20)
    holds_for("pg1 as the only VIP holder", lambda: vip_holders() == ["pg1"], MASTER_DOWN_S)


def test_vip_leaves_a_primary_whose_postgres_stops_and_comes_back():
    sh("pg1", "systemctl stop postgresql@15-main")
    try:
        wait_for("the VIP to leave pg1", lambda: vip_holders() == [], timeout=10)
        # and nobody else picks it up: the standby is read-only
        holds_for("no VIP holder", lambda: vip_holders() == [], MASTER_DOWN_S)
        code, report = drctl_json("status")
        assert code == 7
        assert report["healthy"] is False and report["primary"] is None
        assert report["vip_holders"] == []
        assert "no primary: no node accepts writes" in report["problems"]
    finally:
        sh("pg1", "systemctl start postgresql@15-main")
    wait_for("the VIP back on pg1", lambda: vip_holders() == ["pg1"], timeout=20)
    wait_for("a healthy cluster", lambda: drctl_json("status")[0] == 0, timeout=30)
    with vip_connect() as conn:
        assert conn.execute("select not pg_is_in_recovery()").fetchone()[0] is True


def keepalived_pid(host: str) -> str:
    return sh(host, "systemctl show -p MainPID --value keepalived", check=False)


def test_a_killed_keepalived_is_started_again():
    before = keepalived_pid("pg1")
    sh("pg1", "systemctl kill --signal=SIGKILL keepalived")
    wait_for("systemd to start keepalived again on pg1", lambda: (
        sh("pg1", "systemctl is-active keepalived", check=False) == "active"
        and keepalived_pid("pg1") not in ("0", before)), timeout=20)
    wait_for("the VIP on pg1 alone", lambda: vip_holders() == ["pg1"], timeout=20)
    wait_for("a healthy cluster", lambda: drctl_json("status")[0] == 0, timeout=30)


def test_failover_removes_the_vip_a_dead_keepalived_left_behind():
    """keepalived is gone on the primary but its VIP stays on the interface (as after a
    kill -9 without a restart); then PostgreSQL dies there. The standby's keepalived takes
    the VIP too: two holders until failover fences pg1, which must remove it."""
    vip = lab_vip()
    sh("pg1", "systemctl stop keepalived")
    sh("pg1", f"ip addr add {vip} dev eth0")
    sh("pg1", "systemctl stop postgresql@15-main")
    try:
        # a clean stop: pg2 holds everything, no consent needed
        code, report = drctl_json("failover", "--yes", timeout=600)
        assert code == 0, report
        fenced = next(e for e in report["journal"] if e["step"] == "fenced")
        assert fenced["host"] == "pg1"
        assert vip_holders() == ["pg2"], "exactly one holder: the new primary"
    finally:
        sh("pg1", f"ip addr del {vip} dev eth0", check=False)
        sh("pg1", "systemctl start keepalived")
    assert vip_holders() == ["pg2"], "the fenced node's keepalived takes nothing back"
    # and the node comes back into the cluster as a standby, the VIP staying on pg2 alone
    # (the module's last test: the next module restores the snapshot, pg1 primary)
    rejoins_as_standby("pg1")


def lab_vip() -> str:
    from drctl_lab.hosts import lab_vars

    return lab_vars()["drctl_vip"]
