"""A node that would start as the primary confirms that it still is one.

Power losses as they happen: the whole cluster at once (it comes back by itself, with the
same primary, whichever node boots first), an old primary that boots after a failover
while it cannot reach its peers (it stays down, then fences itself when they answer), and
an operator who starts a held primary on their word when its peer is gone for good.
"""

import time

import pytest

from drctl_lab.hosts import (
    lab_address,
    power_off,
    power_on,
    psql,
    sh,
    vip_connect,
    vip_holders,
    wait_for,
)
from tests.integration.conftest import drctl, drctl_json, healthy_with, holds_for
from tests.integration.test_06_failover import assert_failed_over_to, assert_fenced_and_harmless

pytestmark = pytest.mark.usefixtures("fresh_cluster")


def write_marker() -> int:
    """A row committed through the VIP, and on the standby too (so the test is about the
    start, not about asynchronous replication)."""
    marker = time.time_ns()
    with vip_connect() as conn:
        conn.execute("create table if not exists app.boot (x bigint)")
        conn.execute("insert into app.boot values (%s)", (marker,))
        conn.commit()
        lsn = conn.execute("select pg_current_wal_lsn()").fetchone()[0]
    wait_for("pg2 to replay the marker", lambda: psql(
        "pg2", f"select pg_last_wal_replay_lsn() >= '{lsn}'") == "t", timeout=30)
    return marker


def node(host: str) -> dict:
    st = drctl_json("status")[1]
    return next(n for n in st["nodes"] if n["host"] == host)


def postgres_down(host: str) -> bool:
    return sh(host, "runuser -u postgres -- pg_isready -q; echo $?", check=False) != "0"


def wait_held(host: str) -> dict:
    """Until `drctl status` shows HOST held (its PostgreSQL down, waiting for a peer)."""
    return wait_for(f"{host} to be held", lambda: node(host).get("start_held"), timeout=60,
                    interval=1)


@pytest.mark.leaves_cluster_as_found  # rebooted, as a restore would leave it
@pytest.mark.parametrize("first", ["pg1", "pg2"])
def test_a_whole_cluster_power_cycle_comes_back_with_the_same_primary(first):
    marker = write_marker()
    power_off("pg1", "pg2", "backup1")
    second = "pg2" if first == "pg1" else "pg1"
    power_on(first)
    if first == "pg1":  # alone, the old primary cannot know that nobody replaced it
        held = wait_held("pg1")
        assert "pg2 did not answer" in held["reason"] and held["liftable"], held
        assert postgres_down("pg1") and vip_holders() == []
        code, st = drctl_json("status")
        assert code != 0 and any("pg1: PostgreSQL is held down" in p and "confirm-primary"
                                 in p for p in st["problems"]), st["problems"]
    power_on(second)
    power_on("backup1")
    healthy_with("pg1", timeout=90)  # by itself: nobody typed anything
    assert node("pg1")["start_held"] is None
    with vip_connect() as conn:
        assert conn.execute("select count(*) from app.boot where x = %s",
                            (marker,)).fetchone()[0] == 1
    assert psql("pg2", "select pg_is_in_recovery()") == "t"


def test_a_lock_file_naming_a_process_of_the_new_boot_does_not_keep_postgresql_down():
    """A power loss leaves postmaster.pid naming a PID of the last boot, which the new
    boot can give to another process: drctl-guard's `runuser -u postgres -- psql -d
    postgres` every 2 s from boot on, the metrics' `runuser -u postgres -- pgbackrest`,
    keepalived's check (`psql -d postgres`). Debian's pg_ctlcluster takes any process with
    the word postgres in its command line for the running server: "Cluster is already
    running.", then the unit fails (no PID file) and nothing starts it again (pg2 after a
    restore of the two-site snapshot, down for the whole wait). Here such a process holds
    the PID on purpose."""
    lock = "/var/lib/postgresql/15/main/postmaster.pid"
    sh("pg2", f"cp {lock} /root/postmaster.pid && systemctl stop postgresql@15-main")
    sh("pg2", "systemd-run --unit drctl-test-pid-holder runuser -u postgres -- sleep 600")
    try:
        pid = sh("pg2", "systemctl show -p MainPID --value drctl-test-pid-holder")
        sh("pg2", f"sed '1s/.*/{pid}/' /root/postmaster.pid > /root/stale.pid && "
                  f"install -o postgres -g postgres -m 0600 /root/stale.pid {lock}")
        sh("pg2", "systemctl start postgresql@15-main")
    finally:
        sh("pg2", "systemctl stop drctl-test-pid-holder", check=False)
    healthy_with("pg1")


def primary_timeline() -> int:
    """pg1's timeline now (1 on a freshly provisioned lab; later after make demo's drills)."""
    return int(psql("pg1", "select timeline_id from pg_control_checkpoint()"))


def test_an_old_primary_cut_off_at_boot_stays_down_then_fences_itself():
    write_marker()
    timeline = primary_timeline()
    power_off("pg1")
    code, report = drctl_json("failover", "--yes", timeout=600)
    assert code == 0, report
    assert_failed_over_to(report, "pg2")
    # pg1 powers on while pg2 drops everything it sends (a partition, a late network)
    sh("pg2", f"iptables -I INPUT -s {lab_address('pg1')} -j DROP")
    try:
        power_on("pg1")
        held = wait_held("pg1")
        assert held["timeline"] == timeline and "pg2 did not answer" in held["reason"], held
        # held: no writable server on the old timeline, and the VIP stays on pg2, for a
        # whole confirmation window and more
        holds_for("pg1 down and the VIP on pg2 alone",
                  lambda: postgres_down("pg1") and vip_holders() == ["pg2"], 8)
    finally:
        sh("pg2", "iptables -D INPUT -s " + lab_address("pg1") + " -j DROP")
    # the partition heals: pg1 hears of pg2's newer timeline and fences itself, still without
    # having accepted a single write
    wait_for("pg1 to fence itself", lambda: sh(
        "pg1", "test -e /etc/drctl/fenced && echo yes", check=False) == "yes", timeout=60)
    assert_fenced_and_harmless("pg1")
    n = node("pg1")
    assert n["fenced"] and n["start_held"] is None, n
    healthy = drctl_json("status")[1]
    assert healthy["primary"] == "pg2" and healthy["vip_holders"] == ["pg2"]


def test_an_operator_starts_a_held_primary_on_their_word():
    marker = write_marker()
    timeline = primary_timeline()
    power_off("pg1", "pg2")
    power_on("pg1")  # pg2 is gone for good
    wait_held("pg1")
    refused = drctl("confirm-primary", "pg1")  # no terminal, no --yes: says what is at stake
    assert refused.returncode == 8, refused.stderr
    assert f"timeline {timeline}" in refused.stderr and "pg2" in refused.stderr, refused.stderr
    assert postgres_down("pg1")
    code, out = drctl_json("confirm-primary", "pg1", "--yes", timeout=400)
    assert code == 0 and out["started"], out
    wait_for("the VIP on pg1", lambda: vip_holders() == ["pg1"], timeout=30)
    with vip_connect() as conn:
        assert conn.execute("select count(*) from app.boot where x = %s",
                            (marker,)).fetchone()[0] == 1
        conn.execute("insert into app.boot values (1)")
        conn.commit()
    assert psql("pg1", "select count(*) from app.boot where x = 1", db="app") == "1"
    # the lift was for that start only; a node with nothing held says so
    again = drctl("confirm-primary", "pg1", "--yes")
    assert again.returncode == 8 and "holds no start" in again.stderr, again.stderr
    power_on("pg2")
    healthy_with("pg1", timeout=90)
