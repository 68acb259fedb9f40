"""drctl-backup (drctl.node.backup) without pgBackRest: what it reads of the repository,
the restore options it builds and the refusals that change nothing."""

import json
import os
from datetime import UTC, datetime

import pytest

from drctl.node import backup

NOW = 1_800_000_000


def cfg(tmp_path, **kw) -> backup.BackupConfig:
    values = {"stanza": "lab", "repo_user": "pgbackrest", "repo_path": str(tmp_path / "repo"),
              "scratch_dir": str(tmp_path / "scratch"), "scratch_port": 5490,
              "pg_bindir": "/usr/lib/postgresql/15/bin", **kw}
    return backup.BackupConfig(**values)


def pgbackrest_info(*stops: int) -> list[dict]:
    """What `pgbackrest info --output=json` says of a stanza with backups ending at STOPS."""
    return [{"name": "lab", "status": {"code": 0, "message": "ok"},
             "archive": [{"min": "000000010000000000000003", "max": "000000010000000000000012"}],
             "backup": [{"label": f"2026-F{i}", "type": "full", "prior": None,
                         "timestamp": {"start": stop - 30, "stop": stop},
                         "archive": {"start": "000000010000000000000004",
                                     "stop": "000000010000000000000005"},
                         "lsn": {"start": "0/4000028", "stop": "0/5000050"},
                         "info": {"size": 30_000_000, "repository": {"delta": 4_000_000}}}
                        for i, stop in enumerate(stops)]}]


def test_the_configuration_names_the_repository_and_ignores_what_it_does_not_know(tmp_path):
    path = tmp_path / "backup.json"
    path.write_text(json.dumps({"stanza": "lab", "repo": 2, "repo_user": "pgbackrest",
                                "repo_path": "/var/lib/pgbackrest", "scratch_dir": "/s",
                                "scratch_port": 5490, "pg_bindir": "/b", "pg_nodes": 3,
                                "something_new": True}))
    c = backup.BackupConfig.load(str(path))
    assert (c.repo, c.pg_nodes) == (2, 3)
    # every pgBackRest command names this host's repository
    assert backup.pgbackrest_argv(c, "info", "--output=json") == [
        "pgbackrest", "--stanza=lab", "--repo=2", "info", "--output=json"]


def test_the_listing_has_each_backup_and_the_recoverable_window(tmp_path):
    data = backup.summarize(cfg(tmp_path, repo=2), pgbackrest_info(NOW - 3600, NOW - 60),
                            ("000000010000000000000012", NOW - 5))
    assert data["exists"] and data["repo"] == 2
    assert [b["label"] for b in data["backups"]] == ["2026-F0", "2026-F1"]
    assert data["backups"][0]["duration_s"] == 30 and data["backups"][0]["repo_bytes"] == 4_000_000
    assert data["archive"]["last_segment"] == "000000010000000000000012"
    assert data["window"]["earliest_epoch"] == NOW - 3600
    assert data["window"]["latest_epoch"] == NOW - 5  # the newest WAL that arrived
    assert data["window"]["latest"] == datetime.fromtimestamp(NOW - 5, UTC).isoformat(
        timespec="seconds")


def test_a_missing_stanza_or_no_backup_is_refused(tmp_path):
    missing = backup.summarize(cfg(tmp_path), [], (None, None))
    assert not missing["exists"] and missing["window"]["earliest"] is None
    with pytest.raises(backup.Refused, match="does not exist"):
        backup.require_stanza(missing)
    with pytest.raises(backup.Refused, match="no backup yet"):
        backup.require_stanza(backup.summarize(cfg(tmp_path), pgbackrest_info(), (None, None)))


def test_the_newest_segment_is_the_last_to_arrive(tmp_path):
    c = cfg(tmp_path)
    base = tmp_path / "repo" / "archive" / "lab" / "15-1"
    for directory, name, mtime in (("0000000100000000", "000000010000000000000011-ab.zst", 10),
                                   ("0000000100000000", "000000010000000000000012-cd.zst", 30),
                                   ("0000000200000000", "000000020000000000000001-ef.zst", 20)):
        (base / directory).mkdir(parents=True, exist_ok=True)
        f = base / directory / name
        f.write_text("")
        os.utime(f, (mtime, mtime))
    assert backup.latest_archived(c) == ("000000010000000000000012", 30)
    assert backup.latest_archived(cfg(tmp_path / "none")) == (None, None)


WINDOW = {"earliest": "e", "latest": "l", "earliest_epoch": NOW - 3600, "latest_epoch": NOW}


def test_restore_options_for_each_kind_of_target():
    inside = datetime.fromtimestamp(NOW - 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    opts = backup.restore_options(("time", inside), WINDOW)
    assert "--type=time" in opts and "--target-action=promote" in opts
    assert any(o.startswith("--target=") and o.endswith("+0000") for o in opts)
    assert backup.restore_options(("lsn", "0/3000060"), WINDOW)[-2:] == [
        "--type=lsn", "--target=0/3000060"]
    assert backup.restore_options(("immediate", "2026-F1"), WINDOW) == [
        "--archive-mode=off", "--type=immediate", "--target-action=promote", "--set=2026-F1"]
    assert backup.restore_options(("latest", ""), WINDOW) == [
        "--archive-mode=off", "--type=default"]


@pytest.mark.parametrize(("target", "says"), [
    (("time", "2001-01-01T00:00:00Z"), "outside the recoverable window e .. l"),
    (("time", "yesterday"), "cannot read 'yesterday' as a time"),
    (("lsn", "0/3000060; drop table x"), "is not an LSN"),
])
def test_restore_targets_that_cannot_be_are_refused_before_anything(target, says):
    with pytest.raises(backup.Refused, match=says):
        backup.restore_options(target, WINDOW)


def test_times_without_a_zone_are_utc():
    assert backup.parse_time("2026-11-26 13:05") == datetime(2026, 11, 26, 13, 5, tzinfo=UTC)
    assert backup.parse_time("2026-11-26T13:05:00.5+02:00").utcoffset().total_seconds() == 7200


def test_a_restored_member_is_nobodys_standby(tmp_path):
    s = backup.Scratch.of(cfg(tmp_path), "restore")
    os.makedirs(s.data)
    with open(os.path.join(s.data, "postgresql.auto.conf"), "w") as fh:
        fh.write("work_mem = '8MB'\nprimary_conninfo = 'host=pg1'\n"
                 "synchronous_standby_names = 'pg2'\nprimary_slot_name = 'pg2'\n")
    open(os.path.join(s.data, "standby.signal"), "w").close()
    backup.clean_auto_conf(s)
    with open(os.path.join(s.data, "postgresql.auto.conf")) as fh:
        assert fh.read() == "work_mem = '8MB'\n"
    assert not os.path.exists(os.path.join(s.data, "standby.signal"))
    backup.clean_auto_conf(s)  # twice: nothing left to remove, no error


def test_scratch_instances_are_private_and_verify_has_its_own_port(tmp_path):
    c = cfg(tmp_path)
    r, v = backup.Scratch.of(c, "restore"), backup.Scratch.of(c, "verify")
    assert (r.port, v.port) == (5490, 5491) and r.unit == "drctl-scratch@restore.service"
    text = backup.scratch_conf(r)
    assert "listen_addresses = ''" in text and "archive_mode = off" in text
    assert f"unix_socket_directories = '{r.dir}'" in text and "port = 5490" in text


def test_a_check_query_passes_unless_its_answer_is_false_zero_or_empty():
    assert backup.check_passes("t") and backup.check_passes("42")
    assert not any(backup.check_passes(x) for x in ("", "f", "false", "0"))


def test_without_its_configuration_it_says_so_and_changes_nothing(tmp_path, capsys):
    assert backup.main(str(tmp_path / "missing.json"), ["info"]) == 1
    assert "missing.json" in capsys.readouterr().err


def test_a_bad_scratch_name_is_refused_with_exit_2(tmp_path, capsys):
    path = tmp_path / "backup.json"
    path.write_text(json.dumps({"stanza": "lab", "repo_user": "pgbackrest",
                                "repo_path": str(tmp_path), "scratch_dir": str(tmp_path),
                                "scratch_port": 5490, "pg_bindir": "/b"}))
    # refused before pgBackRest is asked anything (there is none here)
    assert backup.main(str(path), ["restore", "--name", "../etc", "--latest"]) == 2
    assert "scratch name '../etc' must match" in capsys.readouterr().err


def test_an_object_store_this_host_backs_up_into_is_asked_with_its_number(tmp_path):
    """A repository host that is the backup host of an object store (repo3) answers for it
    too: --repo=3 names it in every pgBackRest command; a repository it does not back up
    into is refused, nothing run."""
    path = tmp_path / "backup.json"
    path.write_text(json.dumps({"stanza": "lab", "repo": 1, "repos": [1, 3],
                                "repo_types": {"1": "posix", "3": "s3"},
                                "repo_user": "pgbackrest", "repo_path": "/var/lib/pgbackrest",
                                "scratch_dir": "/s", "scratch_port": 5490, "pg_bindir": "/b"}))
    own = backup.BackupConfig.load(str(path))
    assert own.on(None) is own and own.repo_type == "posix"
    s3 = own.on(3)
    assert (s3.repo, s3.repo_type) == (3, "s3")
    assert backup.pgbackrest_argv(s3, "info") == ["pgbackrest", "--stanza=lab", "--repo=3",
                                                   "info"]
    with pytest.raises(backup.Refused, match="backs up into repo1, repo3, not repo2"):
        own.on(2)
    # an older configuration (no list) serves its own repository only
    old = cfg(tmp_path, repo=2)
    assert old.on(2) is old
    with pytest.raises(backup.Refused, match="backs up into repo2, not repo3"):
        old.on(3)


def test_the_newest_segment_of_an_object_store_comes_from_pgbackrests_listing(
        tmp_path, monkeypatch):
    """An object store has no directory to scan: the archive ids, then the last two WAL
    directories of each, as `pgbackrest repo-ls` lists them; the newest file wins."""
    c = cfg(tmp_path, repo=3, repos=(1, 3), repo_types={"3": "s3"})
    listings = {
        "archive/lab": {".": {"type": "path"}, "15-1": {"type": "path"},
                        "archive.info": {"type": "file", "time": NOW - 900}},
        "archive/lab/15-1": {"0000000100000000": {"type": "path"},
                             "0000000200000000": {"type": "path"},
                             "0000000200000001": {"type": "path"},
                             "00000002.history": {"type": "file", "time": NOW - 800}},
        "archive/lab/15-1/0000000200000000": {
            "0000000200000000000000FF-aa.zst": {"type": "file", "time": NOW - 60}},
        "archive/lab/15-1/0000000200000001": {
            "000000020000000100000000-bb.zst": {"type": "file", "time": NOW - 30},
            "000000020000000100000001-cc.zst": {"type": "file", "time": NOW - 5}},
    }
    asked: list[str] = []

    def fake(cfg_: backup.BackupConfig, args: list[str], timeout=None, check=True):
        assert args[:4] == ["pgbackrest", "--stanza=lab", "--repo=3", "repo-ls"]
        asked.append(args[-1])
        return backup.subprocess.CompletedProcess(args, 0, json.dumps(listings[args[-1]]), "")

    monkeypatch.setattr(backup, "run", fake)
    assert backup.latest_archived(c) == ("000000020000000100000001", float(NOW - 5))
    assert "archive/lab/15-1/0000000100000000" not in asked  # only the last two


def test_an_object_stores_info_names_its_newest_segment_and_one_listing_dates_it(
        tmp_path, monkeypatch):
    """`pgbackrest info` already names the newest segment (the archive's max): one
    listing of its directory gives its arrival time. When info names none, or the listing
    does not hold it, drctl lists the archive as before."""
    c = cfg(tmp_path, repo=3, repos=(1, 3), repo_types={"3": "s3"})
    newest = "000000020000000100000001"
    info_out = [{"name": "lab", "status": {"code": 0, "message": "ok"}, "backup": [],
                 "archive": [{"id": "15-1", "min": "000000010000000000000001",
                              "max": newest}]}]
    listing = {"000000020000000100000000-bb.zst": {"type": "file", "time": NOW - 30},
               f"{newest}-cc.zst": {"type": "file", "time": NOW - 5}}
    asked: list[list[str]] = []

    def fake(cfg_: backup.BackupConfig, args: list[str], timeout=None, check=True):
        asked.append(args[3:])
        out = info_out if args[3] == "info" else listing
        return backup.subprocess.CompletedProcess(args, 0, json.dumps(out), "")

    monkeypatch.setattr(backup, "run", fake)
    data = backup.info(c)
    assert data["archive"]["last_segment"] == newest
    assert asked == [["info", "--output=json"],
                     ["repo-ls", "--output=json", "archive/lab/15-1/0000000200000001"]]
    assert backup.latest_archived_named(c, info_out) == (newest, float(NOW - 5))
    assert backup.latest_archived_named(c, [{"archive": []}]) is None
    listing.pop(f"{newest}-cc.zst")
    assert backup.latest_archived_named(c, info_out) is None


def test_repo_comes_after_the_command_through_drctl_node():
    """drctl-backup's words reach it through drctl-node, whose parser would keep an option
    in front of them for itself: every command takes --repo after its name."""
    from drctl.node import cli

    a = cli.parser().parse_args(["--backup-config", "/b.json", "backup", "info", "--repo=3"])
    assert a.cmd == "backup" and a.args == ["info", "--repo=3"]
    assert backup.parser().parse_args(a.args).repo == 3
    assert backup.parser().parse_args(["backup", "--repo", "2", "--type=full"]).repo == 2
    assert backup.parser().parse_args(["verify"]).repo is None
