"""Backup state in status, and the restore refusals, without any host."""

import pytest

from drctl import inventory as inv_mod
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.operations import backup as op
from drctl.sshprobe import ProbeResult
from drctl.status import backup_state

NOW = 1_800_000_000.0


def info(backups=1, exists=True, stop=NOW - 3600):
    bs = [{"label": f"L{i}", "stop": "t", "stop_epoch": stop, "error": False}
          for i in range(backups)]
    return {"stanza": "lab", "exists": exists, "backups": bs,
            "window": {"earliest": "a", "latest": "b", "earliest_epoch": stop - 10,
                       "latest_epoch": stop + 100}}


def primary(**archiver):
    base = {"mode": "on", "ready": 0, "failed_count": 0, "last_archived_wal": "0001",
            "last_archived_time": "2026-11-26T10:00:00+00:00", "last_failed_time": None}
    return {"host": "pg1", "_archiver": {**base, **archiver}}


def state(res, prim=None, max_age_h=26):
    return backup_state("backup1", res, prim, NOW, max_age_h, 16)


def test_no_backup_group_means_no_backup_section():
    assert backup_state(None, None, primary(), NOW, 26, 16) == (None, [], [])


def test_healthy_repository_and_archiving():
    s, problems, warnings = state(ProbeResult("backup1", True, info()), primary())
    assert problems == [] and warnings == []
    assert s["last_backup"] == "L0" and s["age_s"] == 3600 and s["archiving"]["ok"]


def test_unreachable_repository_is_a_problem():
    s, problems, _ = state(ProbeResult("backup1", False, None, "unreachable: nothing answers"),
                           primary())
    assert not s["reachable"]
    assert problems == ["repository host backup1: unreachable: nothing answers"]


def test_archiving_failing_since_the_last_success_is_a_problem():
    prim = primary(failed_count=3, last_failed_time="2026-11-26T10:05:00+00:00", ready=5)
    s, problems, _ = state(ProbeResult("backup1", True, info()), prim)
    assert not s["archiving"]["ok"]
    assert any("archiving FAILS on the primary pg1" in p and "5 segments" in p
               for p in problems)


def test_old_failures_followed_by_success_are_fine():
    prim = primary(failed_count=3, last_failed_time="2026-11-26T09:00:00+00:00")
    s, problems, _ = state(ProbeResult("backup1", True, info()), prim)
    assert s["archiving"]["ok"] and problems == []


def test_a_hung_archive_command_is_reported_as_stuck():
    s, problems, _ = state(ProbeResult("backup1", True, info()),
                           primary(ready=1, oldest_ready_s=300.0))
    assert not s["archiving"]["ok"]
    assert problems == ["WAL archiving is stuck on the primary pg1: the oldest of 1 waiting "
                        "segments has waited 300 s"]


def test_wal_piling_up_is_a_problem():
    _, problems, _ = state(ProbeResult("backup1", True, info()), primary(ready=40))
    assert problems == ["40 WAL segments wait to be archived on pg1 (archiving falls behind)"]


def test_no_backup_and_old_backup_are_warnings_not_problems():
    _, problems, warnings = state(ProbeResult("backup1", True, info(backups=0)), primary())
    assert problems == [] and "no backup yet" in warnings[0]
    _, problems, warnings = state(ProbeResult("backup1", True, info(stop=NOW - 30 * 3600)),
                                  primary())
    assert problems == [] and "30 h old" in warnings[0]


def test_missing_stanza_and_archiving_off_are_problems():
    _, problems, _ = state(ProbeResult("backup1", True, info(exists=False)), primary(mode="off"))
    assert any("does not exist" in p for p in problems)
    assert any("archiving is off" in p for p in problems)


@pytest.fixture
def inventory(make_inventory):
    return inv_mod.load(make_inventory())


def refusal(inventory, to, when=None, data=None):
    with pytest.raises(DrctlError) as exc:
        op.check_restore(inventory, to, when, data or info())
    return exc.value


def test_restore_over_a_cluster_member_is_refused(inventory):
    err = refusal(inventory, "pg1")
    assert err.exit_code == ExitCode.REFUSED and "cluster member" in str(err)


def test_restore_to_a_non_repository_host_is_refused(inventory):
    assert refusal(inventory, "app1").exit_code == ExitCode.REFUSED
    assert refusal(inventory, "nowhere").exit_code == ExitCode.USAGE


def test_restore_outside_the_window_names_the_window(inventory):
    err = refusal(inventory, "backup1", "2001-01-01T00:00:00Z")
    assert err.exit_code == ExitCode.REFUSED and "a .. b" in str(err)


def test_restore_without_stanza_or_backup_is_refused(inventory):
    assert "does not exist" in str(refusal(inventory, "backup1", data=info(exists=False)))
    assert "no backup" in str(refusal(inventory, "backup1", data={**info(), "window": {
        "earliest": None, "latest": None, "earliest_epoch": None, "latest_epoch": None}}))


def test_restore_inside_the_window_passes(inventory):
    from datetime import UTC, datetime

    inside = datetime.fromtimestamp(NOW - 3600, UTC).isoformat()
    op.check_restore(inventory, "backup1", inside, info())


def test_unreadable_time_is_a_usage_error(inventory):
    assert refusal(inventory, "backup1", "yesterday").exit_code == ExitCode.USAGE
