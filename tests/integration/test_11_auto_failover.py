"""Automatic failover with repmgrd and the witness on backup1, against real faults.

Every test starts with pg1 primary, pg2 streaming, automatic failover armed: the module
arms it once and keeps that as the lab snapshot "auto-armed", which a test that leaves
the cluster failed over is followed by.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from drctl.rules import lsn
from drctl_lab.hosts import (
    PREFIX,
    power_off,
    power_on,
    psql,
    sh,
    vip_connect,
    vip_holders,
    wait_for,
)
from drctl_lab.writer import TABLE, Writer
from tests.integration.conftest import (
    ROOT,
    drctl,
    drctl_json,
    healthy_now,
    healthy_with,
    holds_for,
    lab_say,
    left_as_found,
    restore_snapshot,
)
from tests.integration.test_06_failover import assert_fenced_and_harmless

# repmgrd gives the primary up 2-3 s after it went, and the validation waits until nobody
# has seen it for the blip tolerance (4 s); 25 s is several elections.
NO_PROMOTION_WINDOW = 25


def auto_state() -> dict:
    code, out = drctl_json("auto", "status")
    assert code in (0, 7), out
    return out


def armed_with(primary: str) -> None:
    healthy_with(primary)
    wait_for("automatic failover to be armed", lambda: auto_state()["state"] == "armed",
             timeout=60, interval=2)


def cluster_show(host: str = "pg2") -> str:
    return sh(host, "runuser -u postgres -- env PGPASSFILE=/var/lib/postgresql/.pgpass-repmgr "
              "repmgr -f /etc/repmgr.conf cluster show --compact", check=False)


def in_recovery(host: str) -> str:
    return psql(host, "select pg_is_in_recovery()", check=False)


ARMED = "auto-armed"


def no_promotion_of(host: str) -> None:
    """HOST stays a standby for a window longer than repmgrd's elections take."""
    holds_for(f"{host} in recovery", lambda: in_recovery(host) == "t", NO_PROMOTION_WINDOW,
              interval=1)


def rearm() -> None:
    restore_snapshot(ARMED)
    armed_with("pg1")


def armed_now() -> bool:
    """The cluster is, now, healthy with pg1 and automatic failover armed."""
    return healthy_now("pg1") and auto_state()["state"] == "armed"


def rearm_unless_left_armed() -> None:
    """rearm(), unless the test before (marked leaves_cluster_as_found) passed and the
    cluster is armed_now(): the restore would change nothing."""
    if left_as_found(__name__) and armed_now():
        lab_say("the test before left the cluster armed with pg1: no restore")
        return
    rearm()


CONSENT = "drctl_auto_accept_async_loss: true"


def refused_without_consent(scratch: Path) -> None:
    """The lab replicates asynchronously: without the inventory's consent to the window,
    `drctl auto enable` arms nothing and says which two settings would."""
    from drctl import paths

    # a copy of the lab's inventory directory (its group_vars hold the consent and the
    # vault) with the consent withdrawn
    lab_inventory = paths.default_inventory()
    withdrawn = scratch / "inventory"
    shutil.copytree(lab_inventory.parent, withdrawn)
    options = withdrawn / "group_vars" / "all" / "main.yml"
    text = options.read_text()
    assert CONSENT in text, "the lab's inventory consents (drctl.lab)"
    options.write_text(text.replace(CONSENT, "drctl_auto_accept_async_loss: false"))
    proc = subprocess.run(
        [sys.executable, "-m", "drctl", "auto", "enable", "--format", "json"], cwd=ROOT,
        env={**os.environ, "DRCTL_INVENTORY": str(withdrawn / lab_inventory.name)},
        capture_output=True, stdin=subprocess.DEVNULL, text=True, timeout=600, check=False)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0, said
    assert "Automatic failover was not armed" in said, said
    assert "drctl_synchronous: true" in said and CONSENT in said, said
    st = auto_state()
    assert st["state"] == "disabled", st
    assert sh("pg2", "systemctl is-active drctl-repmgrd", check=False) != "active"


@pytest.fixture(scope="module", autouse=True)
def enabled(clean_cluster, tmp_path_factory):
    from drctl_lab import lab as labmod

    healthy_with("pg1")
    assert auto_state()["state"] == "disabled", "the lab starts with automatic failover off"
    refused_without_consent(tmp_path_factory.mktemp("no-consent"))
    code, out = drctl_json("auto", "enable", timeout=900)
    assert code == 0, out
    armed_with("pg1")
    labmod.snapshot(ARMED, lab_say)
    armed_with("pg1")
    yield
    if not armed_now():
        rearm()  # the disable below starts from an armed cluster with pg1, whatever failed
    code, out = drctl_json("auto", "disable", "--yes", timeout=900)
    assert code == 0, out
    assert out["auto"]["state"] == "disabled"
    assert sh("backup1", "test -e /etc/postgresql/15/witness && echo left", check=False) == ""
    assert sh("pg2", "systemctl is-active drctl-repmgrd", check=False) != "active"
    healthy_with("pg1")


def test_enable_registers_the_running_cluster_and_is_idempotent():
    armed_with("pg1")
    show = cluster_show()
    assert "pg1" in show and "primary" in show and "witness" in show, show
    assert sh("pg1", "systemctl is-active drctl-repmgrd") == "active"
    assert sh("backup1", "systemctl is-active drctl-repmgrd") == "active"
    code, out = drctl_json("auto", "enable", timeout=900)
    assert code == 0, out
    assert out["playbook"]["changed"] == 0, "a second enable changes nothing"
    st = auto_state()
    assert st["state"] == "armed" and st["eligible"] == ["pg2"], st


def test_switchover_pauses_and_resumes_without_a_spurious_failover():
    promoted_before = auto_state()["last_promotion"]
    code, report = drctl_json("switchover", "--to", "pg2", "--yes", timeout=600)
    assert code == 0, report
    steps = [e["step"] for e in report["journal"]]
    assert "auto-paused" in steps and "auto-resumed" in steps, steps
    armed_with("pg2")
    # repmgrd would act within this window on a primary it thought lost
    holds_for("pg2 primary with the VIP, pg1 a standby", lambda: vip_holders() == ["pg2"]
              and in_recovery("pg1") == "t", 8)
    assert auto_state()["last_promotion"] == promoted_before, "repmgrd promoted nothing"
    code, report = drctl_json("switchover", "--to", "pg1", "--yes", timeout=600)
    assert code == 0, report
    armed_with("pg1")
    assert auto_state()["eligible"] == ["pg2"]


def test_replication_link_cut_does_not_promote():
    promoted_before = auto_state()["last_promotion"]
    pg1 = sh("pg1", "hostname -i").split()[0]
    sh("pg2", f"iptables -I INPUT -s {pg1} -j DROP && iptables -I OUTPUT -d {pg1} -j DROP")
    try:
        # a silently dropped TCP stream ends after wal_receiver_timeout (60 s, 15 s in the lab)
        wait_for("status to report the broken replication", lambda: any(
            "pg2 is not streaming" in p for p in drctl_json("status")[1]["problems"]),
            timeout=100, interval=2)
        no_promotion_of("pg2")  # the witness still sees pg1
        assert vip_holders() == ["pg1"]
        with vip_connect() as conn:
            conn.execute("select 1")
    finally:
        sh("pg2", "iptables -D INPUT 1 && iptables -D OUTPUT 1")
    armed_with("pg1")
    assert auto_state()["last_promotion"] == promoted_before


# The gates that refuse a promotion because the primary is not proven gone: a watcher
# still sees it, it answered the liveness probe (or was seen under the blip tolerance),
# or the data-loss rule cannot establish what the standby lacks while it is still seen.
NOT_PROVEN_GONE = ("the primary is gone for the watchers too",
                   "the primary is silent and ignores probes", "no acknowledged commit lost")


def test_a_three_second_isolation_of_the_primary_promotes_nothing():
    """Every packet of pg1's dropped for 3 s: repmgrd, the witness and the watcher can all
    lose it. drctl-auto's validation (run here as repmgrd runs it, at the start of the cut,
    since whether repmgrd's own election gets that far depends on its timers) refuses: pg1
    keeps the VIP and takes writes.

    Which gate refuses first is timing, and every one is correct: the watcher's sighting
    may still be under the blip tolerance when the facts are read, or the liveness probe
    may outlast the cut and get pg1's answer. What an operator relies on is the class of
    the reason (pg1 not proven gone, named in each failed gate), not its wording."""
    sh("pg1", "iptables -I INPUT -i eth0 -j DROP && iptables -I OUTPUT -o eth0 -j DROP")
    cut = subprocess.Popen(["docker", "exec", PREFIX + "pg1", "sh", "-c",
                            "sleep 3; iptables -D INPUT 1; iptables -D OUTPUT 1"])
    try:
        started = time.monotonic()
        out = subprocess.run(
            ["docker", "exec", PREFIX + "pg2", "runuser", "-u", "postgres", "--",
             "/usr/local/libexec/drctl/drctl-auto", "validate", "2", "2", "3"],
            capture_output=True, text=True, timeout=60, check=False)
        took = time.monotonic() - started
    finally:
        assert cut.wait(timeout=30) == 0
    assert out.returncode == 1, out.stdout + out.stderr
    event = json.loads(out.stdout.strip().splitlines()[-1])
    assert event["result"] == "refused", event
    failed = [g for g in event["gates"] if not g["ok"]]
    assert failed, event
    assert all(g["name"] in NOT_PROVEN_GONE and "pg1" in g["detail"] for g in failed), failed
    # pg1 itself is named alive (the watchers or the probe), not only the loss unknown
    assert any(g["name"] != "no acknowledged commit lost" for g in failed), failed
    print(f"refused after {took:.1f} s by: " + "; ".join(g["name"] for g in failed))
    no_promotion_of("pg2")
    assert vip_holders() == ["pg1"]
    with vip_connect() as conn:
        assert conn.execute("select not pg_is_in_recovery()").fetchone()[0] is True
    armed_with("pg1")


def test_power_loss_promotes_the_standby_by_itself_losing_nothing():
    promoted_before = auto_state()["last_promotion"]
    # synchronous for this test: every acknowledged commit is on pg2 before it returns
    psql("pg1", "alter system set synchronous_standby_names = 'pg2'")
    psql("pg1", "alter system set synchronous_commit = 'on'")
    psql("pg1", "select pg_reload_conf()")
    wait_for("pg2 to be the synchronous standby", lambda: psql(
        "pg1", "select sync_state from pg_stat_replication") == "sync", timeout=20)
    with Writer(start_id=7_000_000) as w:
        w.wait_for_acks(100)
        outage = seconds_to_first_ack_after_power_loss(w, "pg1")
        w.wait_for_acks(50)
        w.stop()
    print(f"automatic failover: power loss to first acknowledged write "
          f"{outage:.2f} s, {len(w.errors)} client errors")
    assert in_recovery("pg2") == "f"
    assert vip_holders(("pg2",)) == ["pg2"]
    assert w.missing_on("pg2") == [], "no acknowledged commit may be lost"
    st = auto_state()
    assert st["last_promotion"] != promoted_before and st["last_promotion"]["host"] == "pg2", st
    # the operator arrives late: drctl failover sees the job done and changes nothing
    proc = drctl("failover", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "automatic failover promoted it" in proc.stdout + proc.stderr
    power_on("pg1")
    assert_fenced_and_harmless("pg1")
    code, report = drctl_json("failback", "--node", "pg1", "--switch-back", "--yes", timeout=900)
    assert code == 0, report
    for host in ("pg1", "pg2"):
        psql(host, "alter system reset synchronous_standby_names")
        psql(host, "alter system reset synchronous_commit")
        psql(host, "select pg_reload_conf()")
    armed_with("pg1")
    show = cluster_show("pg1")
    assert "pg1" in show and "pg2" in show, show


def seconds_to_first_ack_after_power_loss(w: Writer, primary: str) -> float:
    """Cut the primary's power while w writes through the VIP; the seconds from the cut to
    the first write acknowledged after it (by whichever node took over)."""
    power_off(primary)
    cut_at = time.monotonic()
    before = len(w.acked)
    wait_for("an acknowledged write after the power loss",
             lambda: len(w.acked) > before + 5, timeout=90, interval=0.1)
    return next(t for t, _ in w.acked[before:] if t > cut_at) - cut_at


def seconds_between(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


@pytest.mark.leaves_cluster_as_found  # failed back and switched back, armed with pg1
def test_no_quorum_without_the_witness_but_manual_failover_works():
    sh("backup1", "systemctl stop postgresql@15-witness")
    try:
        wait_for("status to say the witness is gone", lambda: auto_state()["state"]
                 == "impossible", timeout=30, interval=2)
        assert any("no quorum" in r for r in auto_state()["reasons"])
        subprocess.run(["docker", "kill", PREFIX + "pg1"], check=True, capture_output=True)
        no_promotion_of("pg2")  # no witness, no quorum
        assert vip_holders(("pg2",)) == []
        code, report = drctl_json("failover", "--yes", timeout=600)
        assert code == 0, report
        assert report["status"]["primary"] == "pg2"
        # armed automatic failover is paused on the hosts that answer only: the dead
        # primary costs its probe's timeout, not an SSH timeout per step
        paused = next(e for e in report["journal"] if e["step"] == "auto-paused")
        assert "pg2" in paused["host"].split(",") and "pg1" not in paused["host"], paused
        start = next(e for e in report["journal"] if e["step"] == "start")
        print(f"failover with automatic failover armed, primary dead: auto-paused "
              f"{seconds_between(start['time'], paused['time']):.1f} s after the start, "
              f"done in {report['duration_s']} s")
    finally:
        sh("backup1", "systemctl start postgresql@15-witness")
    power_on("pg1")
    assert_fenced_and_harmless("pg1")
    # after a failover drctl made (not repmgrd), failback re-registers the old primary and
    # automatic failover is armed again around the primary it switched back to
    code, report = drctl_json("failback", "--node", "pg1", "--switch-back", "--yes", timeout=900)
    assert code == 0, report
    armed_with("pg1")


def test_an_operators_failover_after_a_link_cut_is_not_held_by_repmgrd():
    """The replication link cut on pg2's side for 10 s, then pg1 powered off and the link
    restored (issue #34: `drctl failover` took 99 s, 94 of them in the pause): repmgrd on
    pg2, stopped by the pause while it still held a connection to the dead pg1, ignored
    SIGTERM until systemd's default 90-s stop timeout. The stop is bounded by the role
    (repmgr_stop_timeout_s) on every host that runs repmgrd; the failover promotes pg2,
    which takes a write through the VIP. (The next test starts from the armed snapshot.)"""
    rearm_unless_left_armed()
    defaults = yaml.safe_load((ROOT / "roles" / "repmgr" / "defaults" / "main.yml").read_text())
    for host in ("pg1", "pg2", "backup1"):
        bound = sh(host, "systemctl show -p TimeoutStopUSec --value drctl-repmgrd")
        assert bound == f"{defaults['repmgr_stop_timeout_s']}s", \
            f"{host}: repmgrd's stop waits {bound}"
    pg1 = sh("pg1", "hostname -i").split()[0]
    since = sh("pg2", "date '+%Y-%m-%d %H:%M:%S'")
    sh("pg2", f"iptables -I INPUT -s {pg1} -j DROP && iptables -I OUTPUT -d {pg1} -j DROP")
    try:
        # repmgrd on pg2 loses its upstream and holds an election that is refused (the
        # watcher still sees pg1): the state the pause used to hang in
        def lost_and_elected() -> bool:
            log = sh("pg2", f"journalctl -u drctl-repmgrd --since '{since}' --no-pager",
                     check=False)
            return "unable to connect to upstream node" in log and "election" in log
        wait_for("repmgrd on pg2 to lose pg1 and hold an election", lost_and_elected,
                 timeout=60, interval=1)
        # pg1 writes what pg2 cannot receive, and the watcher sees it: pg2 may not promote
        # itself, so the operator's failover (which accepts the loss) is the one that acts
        psql("pg1", "create table cut_off as select 1 as x", db="app")
        written = lsn.parse(psql("pg1", "select pg_current_wal_lsn()"))
        wait_for("the watcher to see pg1's write", lambda: (watched_position() or 0)
                 >= (written or 0), timeout=20, interval=0.5)
        power_off("pg1")
    finally:
        sh("pg2", "iptables -D INPUT 1 && iptables -D OUTPUT 1")
    code, report = drctl_json("failover", "--yes", "--allow-data-loss", timeout=600)
    assert code == 0, report
    assert report["status"]["primary"] == "pg2" and vip_holders(("pg2",)) == ["pg2"]
    steps = {e["step"]: e for e in report["journal"]}
    assert "pg2" in steps["auto-paused"]["host"].split(","), steps["auto-paused"]
    print(f"failover after a link cut, automatic failover armed: auto-paused "
          f"{seconds_between(steps['start']['time'], steps['auto-paused']['time']):.1f} s "
          f"after the start, done in {report['duration_s']} s")
    with vip_connect() as conn:
        conn.execute("create table if not exists app.after_cut (x int)")
        conn.execute("insert into app.after_cut values (1)")
    assert psql("pg2", "select count(*) from app.after_cut", db="app") == "1"


def watched_position() -> int | None:
    """The newest position of the primary the watcher on backup1 has recorded."""
    record = json.loads(sh("backup1", "cat /var/lib/drctl/watch.json", check=False) or "{}")
    return lsn.parse((record.get("primary") or {}).get("lsn"))


def test_a_primary_lost_after_a_cancelled_election_is_still_replaced():
    """pg2 loses its checks of pg1 while the witness's host still sees pg1 (new connections
    from pg2 to pg1 dropped; the replication stream, already open, goes on): repmgrd holds
    an election and drctl-auto refuses it. Then pg1 loses power. repmgrd must hold the
    election again and promote pg2, losing nothing. (With repmgr's own
    primary_visibility_consensus, that first election was cancelled for good: repmgrd
    waited in degraded monitoring for pg1 to return, and nothing was ever promoted.)"""
    rearm()
    promoted_before = auto_state()["last_promotion"]
    pg1 = sh("pg1", "hostname -i").split()[0]
    # synchronous for this test: every acknowledged commit is on pg2 before it returns
    # (the lab's synchronous_commit is 'local': both settings are needed)
    psql("pg1", "alter system set synchronous_standby_names = 'pg2'")
    psql("pg1", "alter system set synchronous_commit = 'on'")
    psql("pg1", "select pg_reload_conf()")
    wait_for("pg2 to be the synchronous standby", lambda: psql(
        "pg1", "select sync_state from pg_stat_replication") == "sync", timeout=20)
    assert psql("pg1", "show synchronous_commit") == "on"
    new_to_pg1 = f"-d {pg1} -p tcp --dport 5432 -m conntrack --ctstate NEW -j DROP"
    sh("pg2", f"iptables -I OUTPUT {new_to_pg1}")
    try:
        with Writer(start_id=8_000_000) as w:
            wait_for("drctl-auto to refuse an election while pg1 is seen",
                     lambda: auto_state()["last_refusal"], timeout=60, interval=1)
            refusal = auto_state()["last_refusal"]
            assert any(not g["ok"] and g["name"] == "the primary is gone for the watchers too"
                       for g in refusal["gates"]), refusal
            assert in_recovery("pg2") == "t"
            w.wait_for_acks(50)
            outage = seconds_to_first_ack_after_power_loss(w, "pg1")
            w.stop()
    finally:
        sh("pg2", f"iptables -D OUTPUT {new_to_pg1}")
    print(f"automatic failover after a refused election: power loss to first acknowledged "
          f"write {outage:.2f} s")
    assert in_recovery("pg2") == "f"
    assert vip_holders(("pg2",)) == ["pg2"]
    assert w.missing_on("pg2") == [], "no acknowledged commit may be lost"
    st = auto_state()
    assert st["last_promotion"] != promoted_before and st["last_promotion"]["host"] == "pg2", st
    # the next test starts from the armed snapshot (pg1's settings with it)


@pytest.mark.leaves_cluster_as_found  # pg2's settings put back, pg1 armed again
def test_a_lagging_standby_does_not_promote_itself():
    rearm()
    # the standby stops receiving (its walreceiver points at a closed local port) while
    # the primary keeps writing: drctl-guard's samples show the lag growing
    psql("pg2", "alter system set primary_conninfo = 'host=127.0.0.1 port=1'")
    psql("pg2", "select pg_reload_conf()")
    try:
        psql("pg1", "create table lagging as select generate_series(1, 600000) as x", db="app")
        wait_for("pg2's lag sample above 16 MiB", lambda: (
            (auto_state()["nodes"]["pg2"].get("lag_sample") or {}).get("lag_bytes", 0)
            > 16 * 1024 * 1024), timeout=30, interval=1)
        st = auto_state()
        assert st["state"] == "impossible" and any("pg2" in r for r in st["reasons"]), st
        subprocess.run(["docker", "kill", PREFIX + "pg1"], check=True, capture_output=True)
        # repmgrd asks drctl-auto, which refuses: wait for a refusal that names what pg2
        # lacks (an earlier one may name pg1 as still seen: the elections run again every
        # repmgr_election_rerun_interval), then make sure nothing promotes pg2 afterwards
        # (seconds when the machine is quiet; the bound is for a loaded one, and a miss
        # shows what repmgrd did)
        def refused_for_the_lag() -> bool:
            refusal = auto_state()["last_refusal"]
            return bool(refusal) and "pg2 lacks at least" in refusal["detail"]
        try:
            wait_for("drctl-auto's refusal for pg2's lag", refused_for_the_lag,
                     timeout=120, interval=1)
        except AssertionError as exc:
            # what repmgrd did, without its once-a-second ping of the dead primary (a tail
            # of 40 lines held nothing else: the election, if any, came before it)
            log = sh("pg2", "journalctl -u drctl-repmgrd --since '-5min' --no-pager | grep -v "
                            "-e 'unable to ping' -e PQPING_NO_RESPONSE | tail -60", check=False)
            raise AssertionError(f"{exc}\nrepmgrd on pg2:\n{log}") from None
        no_promotion_of("pg2")  # too far behind
        refusal = auto_state()["last_refusal"]
        # the same rule as `drctl failover`, from the watcher's record in the witness
        assert refusal and "pg2 lacks at least" in refusal["detail"], refusal
        assert "seen by backup1" in refusal["detail"], refusal
    finally:
        psql("pg2", "alter system reset primary_conninfo")
        psql("pg2", "select pg_reload_conf()")
        power_on("pg1")
    healthy_with("pg1")
    psql("pg1", "drop table if exists lagging", db="app")
    armed_with("pg1")


@pytest.mark.leaves_cluster_as_found  # power-cycled, armed with pg1: as a restore leaves it
def test_a_site_power_cut_keeps_the_primary_when_the_standby_boots_first():
    """The whole site loses power; the standby and the witness boot first, the primary
    some seconds later (it also waits for a peer to confirm it is still the primary).
    Nothing is failed over: repmgrd does not start monitoring while its upstream has not
    come back, so the booting primary is not mistaken for a dead one."""
    rearm_unless_left_armed()
    promoted_before = auto_state()["last_promotion"]
    power_off("pg1", "pg2", "backup1")
    power_on("pg2")
    power_on("backup1")
    # the primary is still off while repmgrd on pg2 runs, loses it and may hold an
    # election; pg2 must stay a standby all along
    holds_for("pg2 in recovery while pg1 is off", lambda: in_recovery("pg2") == "t", 10,
              interval=1)
    power_on("pg1")
    armed_with("pg1")
    assert in_recovery("pg2") == "t"
    st = auto_state()
    assert st["last_promotion"] == promoted_before, st


def test_a_site_power_cut_whose_primary_never_returns_is_replaced_by_the_standby():
    """The whole site loses power; the standby and the witness boot, the primary never
    does. repmgrd cannot start on pg2 (its upstream is not running), so it holds no
    election: drctl's guard holds it (decide.stand_in) once repmgrd has been absent for
    60 s, the grace in which a primary that boots late is kept (the test before). The
    election's own validation passes (pg1 silent, the witness answers, pg2 holds what the
    watcher saw pg1 write): pg2 promotes itself, takes the VIP and the writes, the row
    written before the cut there; pg1, powered on at last, fences itself."""
    rearm_unless_left_armed()
    with vip_connect() as conn:
        conn.execute("create table if not exists app.cut_marks (mark int)")
        conn.execute("insert into app.cut_marks values (1)")
    wait_for("pg2 to replay the row", lambda: psql(
        "pg2", "select count(*) from app.cut_marks", db="app", check=False) == "1",
        timeout=20)
    power_off("pg1", "pg2", "backup1")
    power_on("backup1")
    power_on("pg2")
    holds_for("pg2 in recovery while pg1 may still boot", lambda: in_recovery("pg2") == "t",
              30, interval=1)

    def serves() -> bool:
        try:
            with vip_connect(connect_timeout=2) as conn:
                conn.execute("insert into app.cut_marks values (2)")
                return conn.execute("select count(*) from app.cut_marks").fetchone()[0] == 2
        except Exception:  # not promoted yet: no VIP, or read-only
            return False

    wait_for("pg2 to take over by itself", serves, timeout=120, interval=1)
    assert in_recovery("pg2") == "f" and vip_holders(("pg2",)) == ["pg2"]
    promoted = auto_state()["last_promotion"]
    assert promoted["host"] == "pg2", promoted
    said = sh("pg2", "journalctl -b -u drctl-guard --no-pager", check=False)
    assert "stood in for repmgrd" in said, said[-2000:]
    power_on("pg1")
    assert_fenced_and_harmless("pg1")


def test_a_lone_primary_that_reboots_starts_when_the_witness_saw_no_promotion():
    """pg2, the only standby, loses power; then pg1 reboots. No peer answers to confirm
    that pg1 is still the newest primary, but the watcher on backup1 (its record, as the
    witness holds it) saw no promotion since it last saw pg1 write: pg1 starts by itself
    and serves through the VIP, its writes from before there. (Where no witness answers
    it holds: test_12's primary cut off at boot.)"""
    rearm_unless_left_armed()
    with vip_connect() as conn:
        conn.execute("create table if not exists app.lone_marks (mark int)")
        conn.execute("insert into app.lone_marks values (1)")
    power_off("pg2")
    power_off("pg1")
    power_on("pg1")

    def serves() -> bool:
        try:
            with vip_connect(connect_timeout=2) as conn:
                conn.execute("insert into app.lone_marks values (2)")
                return conn.execute("select count(*) from app.lone_marks").fetchone()[0] == 2
        except Exception:  # not up yet: connection refused, no VIP, read-only
            return False

    wait_for("pg1 to serve writes through the VIP by itself", serves, timeout=90, interval=1)
    assert vip_holders() == ["pg1"]
    said = sh("pg1", "journalctl -b -u postgresql@15-main --no-pager | grep 'drctl: '",
              check=False)
    assert "the watcher on backup1 saw no promotion" in said, said
    power_on("pg2")
    armed_with("pg1")  # the standby boots, follows pg1, and automatic failover re-arms


def test_a_primary_back_from_a_partition_while_its_replacement_is_cut_off_stays_out():
    """Found by the fault campaign (seed 2): pg1 is cut off from the network and repmgrd
    promotes pg2; then pg2 is cut off just as pg1 comes back. No peer answers pg1, so only
    the watcher's record (through the witness) can tell it that it was replaced. pg1 must
    not take the VIP back nor acknowledge a write on its old timeline: it is fenced, and
    every write acknowledged through the VIP after its return is on pg2. (Before the fix
    pg1 took the VIP within a second and served until pg2 came back.) The watcher has
    seen pg2 write before pg2 is cut off, as in the campaign."""
    rearm_unless_left_armed()
    from drctl_lab.faults import ISOLATE as cut
    from drctl_lab.faults import UNISOLATE as mend

    with Writer(start_id=9_000_000, as_advised=True) as w:
        w.wait_for_acks(50)
        sh("pg1", cut)
        try:
            wait_for("repmgrd to promote pg2", lambda: in_recovery("pg2") == "f", timeout=90,
                     interval=0.5)
            # the watcher sees the promotion (its record names pg2) before pg2 is cut off;
            # a promotion it never saw is what a promotion announced at the witness will
            # cover (docs/design-campaign.md)
            wait_for("the watcher to see pg2 write", lambda: json.loads(sh(
                "backup1", "/usr/local/libexec/drctl/drctl-node watch --show"))
                .get("primary", {}).get("host") == "pg2", timeout=30, interval=0.5)
            sh("pg2", cut)
            sh("pg1", mend)
            returned = time.monotonic()
            try:
                holds_for("pg1 without the VIP", lambda: "pg1" not in vip_holders(), 8,
                          interval=0.3)
                wait_for("pg1's guard to fence it", lambda: sh(
                    "pg1", "test -e /etc/drctl/fenced && echo fenced", check=False) == "fenced",
                    timeout=30)
                assert "pg1" not in vip_holders()
            finally:
                sh("pg2", mend)
        finally:
            sh("pg1", mend)
        wait_for("the VIP on pg2", lambda: vip_holders() == ["pg2"], timeout=30)
        w.wait_for_acks(20)
        w.stop()
    late = sorted(i for t, i in w.acked if t > returned)
    assert late, "writes were acknowledged after pg1's return"
    have = {int(x) for x in psql("pg2", f"select id from {TABLE} where id between "
                                        f"{late[0]} and {late[-1]}", db="app").split()}
    assert set(late) <= have, f"acknowledged after pg1's return, not on pg2: " \
        f"{sorted(set(late) - have)[:10]}"
    # why, as the fence mark and the guard's journal say it (journald writes a service's
    # lines a moment after it prints them)
    why = "the watcher on backup1 saw pg2 write on timeline"
    mark = json.loads(sh("pg1", "cat /etc/drctl/fenced"))
    assert why in mark["reason"], mark
    wait_for("the guard's journal to say why it fenced pg1", lambda: why in sh(
        "pg1", "journalctl -u drctl-guard --no-pager | grep 'fenced this node'",
        check=False), timeout=30)
    assert_fenced_and_harmless("pg1")
