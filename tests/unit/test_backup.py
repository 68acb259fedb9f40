"""Backup state in status, and the restore refusals, without any host."""

import copy

import pytest

from drctl import inventory as inv_mod
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.operations import backup as op
from drctl.rules import repos as repos_rule
from drctl.sshprobe import ProbeResult
from drctl.status import NO_BACKUP, archive_detail, backup_state, repos_state
from tests.unit.conftest import GOOD_HOSTS

NOW = 1_800_000_000.0
REPO1, REPO2 = repos_rule.numbered(["backup1", "backup2"])


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


# ---------------------------------------------------------------- two repositories

def repo_info(segment: str | None, backups: int = 1) -> dict:
    return {**info(backups), "archive": {"last_segment": segment, "last_arrived": "t"}}


def test_every_repository_in_a_line_the_one_that_lags_is_behind():
    repos, problems, warnings = repos_state(
        [(REPO1, ProbeResult("backup1", True, repo_info("000000010000000000000012"))),
         (REPO2, ProbeResult("backup2", True, repo_info("00000001000000000000000F")))],
        NOW, 26)
    assert [(r["repo"], r["host"], r["behind"]) for r in repos] == [
        (1, "backup1", False), (2, "backup2", True)]
    assert problems == [] and warnings == []
    assert archive_detail(repos) == ("repo1 (backup1) has up to 000000010000000000000012; "
                                     "repo2 (backup2) is behind, at 00000001000000000000000F")


def test_a_repository_across_a_cut_link_is_a_problem_named_by_its_number():
    repos, problems, _ = repos_state(
        [(REPO1, ProbeResult("backup1", True, repo_info("000000010000000000000012"))),
         (REPO2, ProbeResult("backup2", False, None, "unreachable: timed out"))], NOW, 26)
    assert problems == ["repository host backup2 (repo2): unreachable: timed out"]
    assert repos[1]["behind"] and not repos[1]["reachable"]
    assert "repo2 (backup2) does not answer" in archive_detail(repos)


def test_repositories_in_step_say_nothing_and_a_second_without_backup_warns():
    repos, problems, warnings = repos_state(
        [(REPO1, ProbeResult("backup1", True, repo_info("000000010000000000000012"))),
         (REPO2, ProbeResult("backup2", True, repo_info("000000010000000000000012", 0)))],
        NOW, 26)
    assert archive_detail(repos) == "" and problems == []
    assert warnings == ["repo2 on backup2 holds no backup yet (`drctl backup --repo 2`)"]


def test_repo1_without_backup_names_the_repositories_that_hold_one():
    """'Nothing can be restored' only when no repository holds a backup."""
    _, _, warnings = backup_state("backup1", ProbeResult("backup1", True, info(0)), primary(),
                                  NOW, 26, 16, label="repo1 on backup1",
                                  restorable_from=("repo2",))
    assert warnings == [
        "repo1 on backup1 holds no backup yet (`drctl backup`); restores can come from repo2"]
    _, _, warnings = state(ProbeResult("backup1", True, info(0)), primary())
    assert warnings == [NO_BACKUP]


@pytest.fixture
def two_repos(make_inventory):
    hosts = copy.deepcopy(GOOD_HOSTS)
    hosts["all"]["children"]["backup"]["hosts"]["backup2"] = {"ansible_host": "10.9.0.23"}
    return make_inventory(hosts=hosts)


def test_repository_numbers_are_the_backup_groups_order(two_repos):
    inv = inv_mod.load(two_repos)
    assert op.repo_hosts(inv) == ["backup1", "backup2"]
    assert op.repo_host(inv, 2) == "backup2" and op.repo_of(inv, "backup2") == 2
    assert op.repo_of(inv, "pg1") == 0
    with pytest.raises(DrctlError) as exc:
        op.repo_host(inv, 3)
    assert exc.value.exit_code == ExitCode.USAGE
    assert str(exc.value) == ("there is no repo3: the inventory has repo1 on backup1, "
                              "repo2 on backup2")


def test_restore_from_one_repository_on_another_host_is_refused_before_anything(two_repos):
    with pytest.raises(DrctlError) as exc:
        op.restore(two_repos, to="backup1", target_time=None, target_lsn=None,
                   latest=True, name="restore", replace=False, drop=False, repo=2)
    assert exc.value.exit_code == ExitCode.USAGE
    assert "repo2 is on backup2, not backup1" in str(exc.value)
