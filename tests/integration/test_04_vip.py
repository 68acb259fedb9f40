"""The VIP sits on the writable primary and nowhere else, also under faults."""

import time

from tests.integration.conftest import drctl_json, sh, vip_connect, vip_holders, wait_for


def test_exactly_one_holder_and_it_is_the_primary():
    assert vip_holders() == ["pg1"]


def test_standby_without_keepalived_leaves_exactly_one_holder():
    sh("pg2", "systemctl stop keepalived")
    try:
        time.sleep(4)  # longer than a VRRP master-down interval
        assert vip_holders() == ["pg1"]
        code, report = drctl_json("status")
        assert code == 7
        assert any("pg2: keepalived is inactive" in p for p in report["problems"])
        assert report["vip_holders"] == ["pg1"]
    finally:
        sh("pg2", "systemctl start keepalived")
    time.sleep(3)
    assert vip_holders() == ["pg1"]


def test_vip_leaves_a_primary_whose_postgres_stops_and_comes_back():
    sh("pg1", "systemctl stop postgresql@15-main")
    try:
        wait_for("the VIP to leave pg1", lambda: vip_holders() == [], timeout=10)
        time.sleep(4)  # and nobody else picks it up: the standby is read-only
        assert vip_holders() == []
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
