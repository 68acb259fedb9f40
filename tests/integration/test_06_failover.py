"""drctl failover after real faults, the returning old primary fenced, drctl failback."""

import json
import subprocess
import time

import pytest

from drctl_lab.hosts import (
    INVENTORY,
    PREFIX,
    lab_address,
    psql,
    sh,
    vip_connect,
    vip_holders,
    wait_for,
)
from drctl_lab.writer import Writer, ensure_table
from tests.integration.conftest import ansible_playbook, drctl, drctl_json, healthy_with, holds_for

MAIN_VARS = INVENTORY.parent / "group_vars" / "all" / "main.yml"
# every test starts from the provisioned snapshot (pg1 primary) and may leave pg1 fenced
pytestmark = pytest.mark.usefixtures("fresh_cluster")


def assert_failed_over_to(report: dict, target: str) -> None:
    """The report names TARGET; a row written through the VIP lands on TARGET itself."""
    st = report["status"]
    assert st["primary"] == target and st["vip_holders"] == [target], st
    marker = time.time_ns()
    with vip_connect() as conn:
        conn.execute("create table if not exists app.after_failover (x bigint)")
        conn.execute("insert into app.after_failover values (%s)", (marker,))
        conn.commit()
    assert psql(target, f"select count(*) from app.after_failover where x = {marker}",
                db="app") == "1", f"the write through the VIP did not land on {target}"
    assert psql(target, "select pg_is_in_recovery()") == "f"


def assert_fenced_and_harmless(host: str) -> None:
    wait_for(f"{host} to refuse to run PostgreSQL",
             lambda: sh(host, "systemctl is-active postgresql@15-main", check=False)
             in ("inactive", "failed"), timeout=30)
    assert sh(host, "test -e /etc/drctl/fenced && echo yes", check=False) == "yes"
    out = sh(host, "runuser -u postgres -- psql -XAtq -c 'select 1' 2>&1", check=False)
    assert "No such file" in out or "could not connect" in out or "Connection refused" in out
    # a fenced node's keepalived may not hold the VIP at any moment of 3 VRRP adverts
    holds_for(f"{host} without the VIP", lambda: host not in vip_holders(), 3)


@pytest.fixture
def synchronous(fresh_cluster):
    """The provisioned lab switched to synchronous replication the way an Ansible user
    would: drctl_synchronous: true in the inventory, then provision.yml on the PostgreSQL
    nodes (all of them: provision refuses to decide the primary without one; on mitogen's
    strategy, as drctl runs it: the set-up, not the subject). The inventory
    says so until the test ends; the next test's restore puts the asynchronous snapshot back."""
    original = MAIN_VARS.read_text()
    MAIN_VARS.write_text(original + "drctl_synchronous: true\n")
    try:
        play = ansible_playbook("provision.yml", "--limit", "pg_primary:pg_standby",
                                accelerate=True)
        assert play.returncode == 0, play.stdout[-3000:]
        healthy_with("pg1")
        yield
    finally:
        MAIN_VARS.write_text(original)
    # and back to asynchronous replication the same way, wherever the primary is now
    play = ansible_playbook("provision.yml", "--limit", "pg_primary:pg_standby",
                            accelerate=True)
    assert play.returncode == 0, play.stdout[-3000:]
    code, st = drctl_json("status")
    assert code == 0, st["problems"]
    assert psql(st["primary"], "show synchronous_standby_names") == ""
    assert {n["host"]: n["sync_state"] for n in st["nodes"]
            if n["host"] != st["primary"]} == {"pg1": "async"}, st["nodes"]


def test_power_loss_failover_in_synchronous_mode_loses_nothing(synchronous):
    _, st = drctl_json("status")
    assert {n["host"]: n["sync_state"] for n in st["nodes"]}["pg2"] == "quorum"
    with Writer(start_id=3_000_000) as w:
        w.wait_for_acks(100)
        # the replication link breaks first: commits wait for pg2 and none is acknowledged,
        # while pg1's WAL grows past what pg2 holds (the watcher sees that)
        cut_replication()
        time.sleep(2)  # writes keep being attempted (and stall) for two seconds
        subprocess.run(["docker", "kill", PREFIX + "pg1"], check=True, capture_output=True)
        restore_replication()
        start = time.monotonic()
        code, report = drctl_json("failover", "--yes", timeout=600)
        assert code == 0, report
        loss = report["data_loss"]
        assert loss["verdict"] == "none" and "synchronous standby" in loss["sentence"], loss
        w.wait_for_acks(50)
        w.stop()
        assert_failed_over_to(report, "pg2")
        assert w.missing_on("pg2") == [], "synchronous mode: no acknowledged write may be lost"
        steps = [e["step"] for e in report["journal"]]
        assert "unfenced" in steps and "promoted" in steps and "write-proved" in steps
        print(f"power-loss failover: command {time.monotonic() - start:.1f} s, client gap "
              f"{w.longest_gap():.2f} s, {len(w.errors)} errors")
    subprocess.run(["docker", "start", PREFIX + "pg1"], check=True, capture_output=True)
    wait_for("pg1 to boot", lambda: sh("pg1", "systemctl is-system-running", check=False)
             in ("running", "degraded"), timeout=60)
    assert_fenced_and_harmless("pg1")
    code, st = drctl_json("status")
    assert st["primary"] == "pg2" and st["vip_holders"] == ["pg2"]
    assert any("pg1 is fenced" in p for p in st["problems"])
    code, report = drctl_json("failback", "--node", "pg1", "--yes", timeout=900)
    assert code == 0, report
    assert any(e["step"] in ("rewound", "rejoined") for e in report["journal"])
    healthy_with("pg2")
    assert psql("pg1", "select pg_is_in_recovery()") == "t"


def rejoins_as_standby(host: str, primary: str = "pg2") -> None:
    """HOST, fenced after a failover, rejoins as a standby of PRIMARY (failback without
    --switch-back: the switch back is a switchover, test_05's and test_11's subject; the
    next test's restore puts pg1 back)."""
    code, report = drctl_json("failback", "--node", host, "--yes", timeout=900)
    assert code == 0, report
    assert any(e["step"] in ("rewound", "rejoined") for e in report["journal"]), report
    healthy_with(primary)
    assert psql(host, "select pg_is_in_recovery()") == "t"


def switch_back_to_pg1() -> None:
    code, report = drctl_json("switchover", "--to", "pg1", "--yes", timeout=600)
    assert code == 0, report
    healthy_with("pg1")


def cut_replication() -> None:
    """On pg2, drop everything pg1's PostgreSQL sends: the stream (and the guard) go silent."""
    sh("pg2", f"iptables -I INPUT -s {lab_address('pg1')} -p tcp --sport 5432 -j DROP")


def restore_replication() -> None:
    sh("pg2", "iptables -F INPUT")


def watcher_sees(host: str) -> bool:
    record = json.loads(sh("backup1", "/usr/local/libexec/drctl/drctl-node watch --show"))
    p = record.get("primary") or {}
    return p.get("host") == host and p.get("lost_at") is None


def test_a_standby_that_missed_acknowledged_commits_is_refused_then_promoted_by_consent():
    """The issue's scenario: asynchronous replication, the link to the standby breaks,
    the primary acknowledges commits the standby never gets, then loses power."""
    healthy_with("pg1")
    ensure_table()
    wait_for("the table on pg2", lambda: psql(
        "pg2", "select to_regclass('app.ha_writes') is not null", db="app") == "t")
    wait_for("the watcher to see pg1", lambda: watcher_sees("pg1"), timeout=20)
    cut_replication()
    try:
        # ids above any earlier run's (the table outlives a run that stopped halfway)
        start = int(psql("pg1", "select coalesce(max(id), 0) + 1000 from app.ha_writes",
                         db="app"))
        with Writer(start_id=max(start, 5_000_000)) as w:
            w.wait_for_acks(300)
            subprocess.run(["docker", "kill", PREFIX + "pg1"], check=True, capture_output=True)
            acked = {i for _, i in w.acked}
    finally:
        restore_replication()
    lost_ids = sorted(acked - {int(x) for x in psql(
        "pg2", f"select id from app.ha_writes where id >= {min(acked)}", db="app").split()})
    assert len(lost_ids) >= 300, "the cut kept the standby from receiving the writes"

    # drctl refuses and names what would be lost
    proc = drctl("failover", "--yes")
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert "pg2 lacks at least" in proc.stderr and "seen by backup1" in proc.stderr, proc.stderr
    assert "--allow-data-loss promotes anyway" in proc.stderr
    assert psql("pg2", "select pg_is_in_recovery()") == "t", "nothing may change"

    # the playbook alone (ansible-playbook, AWX) refuses with the same rule
    play = ansible_playbook("failover.yml")
    assert play.returncode != 0, play.stdout[-3000:]
    assert "pg2 lacks at least" in play.stdout, play.stdout[-3000:]
    assert psql("pg2", "select pg_is_in_recovery()") == "t", "nothing may change"

    # with consent it proceeds, and says what is lost
    code, report = drctl_json("failover", "--yes", "--allow-data-loss", timeout=600)
    assert code == 0, report
    assert report["data_loss"]["accepted"] and "lacks at least" in report["data_loss"]["sentence"]
    gates = next(e for e in report["journal"] if e["step"] == "gates")
    assert gates["data_loss_accepted"] in (True, "True"), gates
    assert_failed_over_to(report, "pg2")

    # the old primary returns; failback sets its commits aside and counts them
    subprocess.run(["docker", "start", PREFIX + "pg1"], check=True, capture_output=True)
    wait_for("pg1 to boot", lambda: sh("pg1", "systemctl is-system-running", check=False)
             in ("running", "degraded"), timeout=60)
    code, report = drctl_json("failback", "--node", "pg1", "--yes", timeout=900)
    assert code == 0, report
    diverged = next(e for e in report["journal"] if e["step"] == "diverged")
    commits = diverged["divergence"]["commits"]
    # every lost acknowledged write is a commit past the fork point; a few more may be
    # commits in flight when the power went (attempted, never acknowledged)
    assert len(lost_ids) <= commits <= len(lost_ids) + 10, (commits, len(lost_ids))
    assert diverged["divergence"]["first_commit_at"], diverged
    healthy_with("pg2")
    switch_back_to_pg1()  # the rejoined node, its commits set aside, takes the primary back


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
    rejoins_as_standby("pg1")  # a crashed (not cleanly stopped) old primary rejoins


@pytest.mark.leaves_cluster_as_found  # switched back to pg1, its copy dropped
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
    assert diverged["action"] == "keep" and "past the fork point" in diverged["sentence"]
    aside = diverged["set_aside"]
    assert sh("pg1", f"test -f {aside}/PG_VERSION && echo kept") == "kept"
    assert any(e["step"] == "rewound" and e["result"] == "ok" for e in report["journal"]), \
        json.dumps(report["journal"], indent=1)[:3000]
    healthy_with("pg2")
    assert psql("pg1", "select to_regclass('app.diverged') is null", db="app") == "t"
    code, st = drctl_json("status")
    name = aside.rsplit("/", 1)[-1]
    assert any("pg1 keeps" in w and name in w for w in st["warnings"]), \
        "status reminds the operator of the set-aside directory"

    # drctl diverged: the copy is listed with what it holds, its rows can be read the way
    # `show` says, and it is dropped only with consent
    code, listed = drctl_json("diverged", "list")
    assert code == 0 and [(c["host"], c["name"]) for c in listed["copies"]] == [("pg1", name)]
    assert listed["copies"][0]["commits"] >= 1
    code, shown = drctl_json("diverged", "show", "pg1", name)
    assert code == 0, shown
    for command in shown["look"][:-2]:  # up to the scratch server's start
        sh("pg1", command, timeout=120)
    psql_scratch = shown["look"][-2]
    rows = sh("pg1", f"{psql_scratch} -XAtq -c 'select count(*) from app.diverged'")
    assert rows == "10", "the diverged rows are readable in the scratch copy"
    sh("pg1", shown["look"][-1], timeout=120)  # stop and remove the scratch copy
    assert sh("pg1", f"test -f {aside}/PG_VERSION && echo kept") == "kept"
    refused = drctl("diverged", "drop", "pg1", name)
    assert refused.returncode == 8 and "commit" in refused.stderr, refused.stderr
    proc = drctl("diverged", "drop", "pg1", name, "--yes")
    assert proc.returncode == 0, proc.stderr
    code, st = drctl_json("status")
    assert not any("pg1 keeps" in w for w in st["warnings"])
    assert sh("pg1", "ls -d /var/lib/postgresql/15/main.* 2>/dev/null", check=False) == ""
    switch_back_to_pg1()


def test_a_cleanly_stopped_primary_rejoins_without_a_copy_of_its_data():
    """A clean shutdown sends every WAL record to the standby before the server exits:
    after a failover the old primary has committed nothing past the fork point, so its
    failback keeps no copy of the data directory (only its WAL, for pg_rewind, removed
    afterwards)."""
    sh("pg1", "systemctl stop postgresql@15-main")
    code, report = drctl_json("failover", "--yes", timeout=600)
    assert code == 0, report
    assert report["data_loss"]["verdict"] == "none", report["data_loss"]
    assert_failed_over_to(report, "pg2")
    code, report = drctl_json("failback", "--node", "pg1", "--yes", timeout=900)
    assert code == 0, report
    diverged = next(e for e in report["journal"] if e["step"] == "diverged")
    assert diverged["action"] == "wal-only" and diverged["set_aside"] == "", diverged
    assert "no commit past the fork point" in diverged["sentence"]
    assert sh("pg1", "ls -d /var/lib/postgresql/15/main.* 2>/dev/null", check=False) == ""
    healthy_with("pg2")
    code, st = drctl_json("status")
    assert not any("pg1 keeps" in w for w in st["warnings"])


def test_a_frozen_primary_client_notices_and_failover_proceeds():
    """docker pause freezes pg1 with a statement in flight through the VIP: its kernel
    keeps the connections open, so nothing errors by itself. drctl fails over (the watcher
    takes its hanging check for a failure); the VIP moves; the client, connected with the
    settings the README gives, gets an error within seconds and reconnects to pg2."""
    import threading

    from drctl.drill import CLIENT_SETTINGS

    healthy_with("pg1")
    conn = vip_connect(**CLIENT_SETTINGS)
    outcome: dict = {}

    def in_flight() -> None:
        start = time.monotonic()
        try:
            conn.execute("select pg_sleep(2)")
            outcome["result"] = "returned"
        except Exception as exc:  # what the application sees
            outcome["result"] = type(exc).__name__
        outcome["after_s"] = time.monotonic() - start

    from drctl_lab import lab as labmod

    labmod.pause(PREFIX + "pg1", print)
    thread = threading.Thread(target=in_flight, daemon=True)
    thread.start()
    try:
        code, report = drctl_json("failover", "--yes", timeout=600)
        assert code == 0, report
        assert report["status"]["primary"] == "pg2"
        thread.join(timeout=30)
        assert not thread.is_alive(), "the client's statement must not hang forever"
        assert outcome["result"] != "returned", outcome
        with vip_connect(**CLIENT_SETTINGS) as again:
            assert again.execute("select pg_is_in_recovery()").fetchone()[0] is False
    finally:
        subprocess.run(["docker", "unpause", PREFIX + "pg1"], check=True, capture_output=True)
    assert_fenced_and_harmless("pg1")
    rejoins_as_standby("pg1")  # it woke up still thinking it was the primary
