"""The copy of the application's files (drctl.node.files): who sends, what rsync does to
the receiver's copy, and what status says about the copies (drctl.status.files_view)."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drctl import sshprobe, status
from drctl.node import common, files

pytestmark = pytest.mark.skipif(shutil.which("rsync") is None,
                                reason="rsync is installed by `make setup-test`")


class _Health(http.server.BaseHTTPRequestHandler):
    answer: tuple[int, dict] = (200, {"writable": True, "server": "10.0.0.1"})

    def do_GET(self) -> None:
        code, body = self.answer
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Handler", (_Health,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health", handler
    server.shutdown()
    server.server_close()


def test_only_a_host_whose_application_reaches_the_writable_primary_sends(health):
    url, handler = health
    assert files.serving(url)[0] is True
    handler.answer = (503, {"ok": False, "database": "unreachable", "error": "timeout"})
    active, why = files.serving(url)
    assert active is False and "does not reach the writable primary (timeout)" in why
    handler.answer = (200, {"writable": False})
    assert files.serving(url)[0] is False
    assert files.serving("")[0] is False  # a backup host only receives
    assert files.serving("http://127.0.0.1:9/health", timeout=1)[0] is False  # nothing there


def test_the_copy_is_confined_checked_and_sets_aside_what_it_replaces(tmp_path):
    c = files.FilesConfig(directory=str(tmp_path / "src"), name="app1",
                          peers=(files.Peer("app2", "10.0.1.14"),), bandwidth_kbps=500)
    cmd = files.rsync_command(c, c.peers[0], "20261203T120000Z")
    assert cmd[-2:] == [str(tmp_path / "src") + "/", "drctl-files@10.0.1.14:"]
    stamp = files.rsync_command(c, c.peers[0], "20261203T120000Z", stamp_only=True)
    assert stamp[-2:] == [str(tmp_path / "src" / files.STAMP), "drctl-files@10.0.1.14:"]
    assert "--backup" not in stamp and "--delete" not in stamp
    ssh = cmd[cmd.index("-e") + 1]
    assert "StrictHostKeyChecking=yes" in ssh and "BatchMode=yes" in ssh
    assert "--delete" in cmd and "--backup-dir=.drctl-set-aside" in cmd
    assert "--suffix=.~20261203T120000Z~" in cmd
    assert "--bwlimit=500" in cmd
    assert "--omit-dir-times" in cmd and "--perms" not in cmd  # the directory is not ours
    assert "ControlMaster" not in ssh


def test_a_runs_files_and_stamp_share_one_ssh_connection_per_peer(tmp_path, health,
                                                                  monkeypatch):
    """One login on each peer a run, not two: both rsyncs name the same control socket,
    in a directory of the run's own that is gone when the run ends."""
    url, _ = health
    src = tmp_path / "app1"
    src.mkdir()
    calls: list[list[str]] = []

    def run(args: list[str], timeout: float = 60, env=None):
        calls.append(args)
        return 0, "Number of regular files transferred: 0\n", ""

    monkeypatch.setattr(common, "run", run)
    c = files.FilesConfig(directory=str(src), name="app1", health_url=url,
                          peers=(files.Peer("app2", "10.0.1.14"),
                                 files.Peer("backup1", "10.0.0.13")))
    assert files.sync(c, now=1_800_000_000.0)["ok"]
    sockets = [re.search(r"-o ControlPath=(\S+)", a[a.index("-e") + 1]) for a in calls]
    assert len(calls) == 4 and all(sockets)
    paths = {m[1] for m in sockets if m}
    assert len(paths) == 1  # %C: one socket per peer, told apart by ssh itself
    run_dir = Path(paths.pop()).parent
    assert run_dir.name.startswith("drctl-files-ssh-") and not run_dir.exists()
    assert all("ControlMaster=auto" in a[a.index("-e") + 1] for a in calls)


def test_a_failed_copy_says_why_not_rsyncs_summary():
    err = ('rsync: [generator] failed to set times on "/x/.": Operation not permitted (1)\n'
           "rsync error: some files/attrs were not transferred (code 23) at main.c(1394)\n")
    assert files.why_failed(23, err).startswith("rsync: [generator] failed to set times")
    assert files.why_failed(12, "rsync error: protocol (code 12)\n").startswith("rsync error")
    assert files.why_failed(255, "") == "rsync exit 255"


def _local(monkeypatch: pytest.MonkeyPatch, dest: dict[str, Path]) -> None:
    """Run the real rsync, with each peer's address mapped to a local directory."""
    real = common.run

    def run(args: list[str], timeout: float = 60, env=None):
        i = args.index("-e")
        host = args[-1].split("@", 1)[1].rstrip(":")
        if host not in dest:
            return 255, "", f"ssh: connect to host {host} port 22: No route to host"
        local = [*args[:i], *args[i + 2:-1], str(dest[host]) + "/"]
        return real(local, timeout=timeout, env=env)

    monkeypatch.setattr(common, "run", run)


def test_a_sync_copies_stamps_and_sets_aside_instead_of_deleting(tmp_path, health, monkeypatch):
    url, _ = health
    src, app2, backup = tmp_path / "app1", tmp_path / "app2", tmp_path / "backup1"
    for d in (src, app2, backup):
        d.mkdir()
    (src / "ann.picture").write_bytes(b"\x89PNG\r\n\x1a\nann")
    (src / ".ann.0a1b.tmp").write_bytes(b"half")  # an upload being written: not copied
    (app2 / "bob.picture").write_bytes(b"only at dc2")  # e.g. uploaded there before failback
    _local(monkeypatch, {"10.0.1.14": app2, "10.0.0.13": backup})
    c = files.FilesConfig(directory=str(src), name="app1", health_url=url,
                          peers=(files.Peer("app2", "10.0.1.14"),
                                 files.Peer("backup1", "10.0.0.13"),
                                 files.Peer("app3", "10.0.2.14")))
    record = files.sync(c, now=1_800_000_000.0)
    assert record["sent"] is True and record["ok"] is False  # app3 is unreachable
    by_peer = {p["peer"]: p for p in record["peers"]}
    assert by_peer["app2"]["ok"] and by_peer["backup1"]["ok"]
    assert by_peer["app2"]["files"] == 1  # the picture (the stamp follows on its own)
    assert "No route to host" in by_peer["app3"]["error"]
    assert (app2 / "ann.picture").read_bytes() == b"\x89PNG\r\n\x1a\nann"
    assert not (app2 / ".ann.0a1b.tmp").exists()
    # what the copy replaced is kept on the receiver, not thrown away
    assert not (app2 / "bob.picture").exists()
    aside = app2 / files.SET_ASIDE / "bob.picture.~20270115T080000Z~"
    assert aside.read_bytes() == b"only at dc2"
    copy = files.state(files.FilesConfig(directory=str(app2), name="app2",
                                         last_run=str(tmp_path / "none.json")),
                       now=1_800_000_042.0)
    assert copy["copied_from"] == "app1" and copy["age_s"] == 42.0 and copy["files"] == 1
    assert copy["set_aside"] == ["bob.picture.~20270115T080000Z~"]
    # the next sync from app1 leaves app2's set-aside directory alone, and sets nothing
    # aside when nothing changed (a new stamp replaces the old one)
    assert files.sync(c, now=1_800_000_060.0)["peers"][0]["ok"]
    assert os.listdir(app2 / files.SET_ASIDE) == [aside.name]
    assert json.loads((app2 / files.STAMP).read_text())["epoch"] == 1_800_000_060.0


def test_an_app_host_without_its_sites_vip_neither_sends_nor_asks_its_application(
        tmp_path, health, monkeypatch):
    url, handler = health
    asked: list[str] = []
    handler.do_GET = lambda self: asked.append(self.path)  # type: ignore[method-assign]
    src = tmp_path / "app3"
    src.mkdir()
    calls: list[list[str]] = []

    def run(args: list[str], **kw: object) -> tuple[int, str, str]:
        calls.append(args)
        return 0, "2: eth0    inet 10.0.0.50/24 scope global eth0", ""  # another address
    monkeypatch.setattr(common, "run", run)
    record = files.sync(files.FilesConfig(directory=str(src), name="app3", health_url=url,
                                          app_vip="10.0.0.101/24",
                                          peers=(files.Peer("backup1", "10.0.0.13"),)))
    assert record == {**record, "ok": True, "sent": False, "peers": []}
    assert "10.0.0.101 is on another app host" in record["reason"]
    assert asked == [], "the application was asked although this host cannot send"
    assert [a[0] for a in calls] == ["ip"] and os.listdir(src) == []


def test_a_host_that_does_not_serve_sends_nothing_and_changes_nothing(tmp_path, health,
                                                                       monkeypatch):
    url, handler = health
    handler.answer = (503, {"database": "unreachable", "error": "no route"})
    src = tmp_path / "app2"
    src.mkdir()
    calls: list[list[str]] = []
    monkeypatch.setattr(common, "run", lambda args, **kw: calls.append(args) or (0, "", ""))
    record = files.sync(files.FilesConfig(directory=str(src), name="app2", health_url=url,
                                          peers=(files.Peer("app1", "10.0.0.14"),)))
    assert record == {**record, "ok": True, "sent": False, "peers": []}
    assert calls == [] and os.listdir(src) == []


def test_main_keeps_the_record_and_fails_when_a_peer_was_not_reached(tmp_path, health,
                                                                     monkeypatch, capsys):
    url, _ = health
    src = tmp_path / "app1"
    src.mkdir()
    cfg = tmp_path / "files.json"
    cfg.write_text(json.dumps({"directory": str(src), "name": "app1", "health_url": url,
                               "peers": [{"name": "app2", "address": "10.0.1.14"}],
                               "last_run": str(tmp_path / "run" / "last.json")}))
    _local(monkeypatch, {})
    assert files.main(str(cfg), "sync") == 1
    kept = json.loads((tmp_path / "run" / "last.json").read_text())
    assert kept["peers"][0]["peer"] == "app2" and not kept["peers"][0]["ok"]
    capsys.readouterr()
    assert files.main(str(cfg), "state") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["copied_from"] == "app1" and shown["last_run"]["ok"] is False


def test_a_run_waits_for_the_run_before_it_and_says_so_when_that_one_never_ends(
        tmp_path, monkeypatch, capsys):
    # two rsyncs into one directory delete each other's temporary files and fail: a run
    # started by a switchover must wait for the timer's, then copy
    lock = tmp_path / "run" / "sync.lock"
    cfg = tmp_path / "files.json"
    cfg.write_text(json.dumps({"directory": str(tmp_path), "name": "app1",
                               "last_run": str(tmp_path / "run" / "last.json"),
                               "lock_file": str(lock)}))
    started = threading.Event()

    def fake_sync(c: files.FilesConfig, now: float | None = None) -> dict:
        started.set()
        return {"ok": True, "host": c.name, "sent": False, "peers": []}

    monkeypatch.setattr(files, "sync", fake_sync)
    results: list[int] = []
    with common.exclusive(str(lock), wait_s=1):
        second = threading.Thread(target=lambda: results.append(files.main(str(cfg), "sync")))
        second.start()
        assert not started.wait(0.5), "the second run copied while the first held the lock"
    assert started.wait(10), "the second run never started after the first let go"
    second.join(10)
    assert results == [0]
    # a holder that does not let go in time: Busy, and main keeps a failed record
    with (common.exclusive(str(lock), wait_s=1), pytest.raises(common.Busy, match="held by"),
          common.exclusive(str(lock), wait_s=0.3)):
        pass

    @contextlib.contextmanager
    def busy(path: str, wait_s: float) -> Iterator[None]:
        raise common.Busy(f"{path} is held by another run (waited {wait_s:g} s)")
        yield

    monkeypatch.setattr(common, "exclusive", busy)
    capsys.readouterr()
    assert files.main(str(cfg), "sync") == 1
    kept = json.loads((tmp_path / "run" / "last.json").read_text())
    assert kept["ok"] is False and kept["sent"] is False
    assert kept["reason"].startswith("another copy is still running")


def _res(host: str, data: dict | None, ok: bool = True, error: str = ""):
    return sshprobe.ProbeResult(host, ok, data, error)


def test_status_names_the_sender_and_warns_of_old_missing_and_unknown_copies():
    last_ok = {"sent": True, "ok": False,
               "peers": [{"peer": "app2", "ok": True},
                         {"peer": "backup1", "ok": False, "error": "Connection timed out"}]}
    results = {
        "app1": _res("app1", {"copied_from": "app1", "age_s": 20.0, "files": 3,
                              "last_run": last_ok}),
        "app2": _res("app2", {"copied_from": "app1", "age_s": 20.0, "files": 3}),
        "backup1": _res("backup1", {"copied_from": "app1", "age_s": 900.0, "files": 3}),
        "backup2": _res("backup2", {"copied_from": None, "age_s": None, "files": 0}),
        "app3": _res("app3", None, ok=False, error="unreachable: nothing answers"),
    }
    view, warnings = status.files_view(results, {"app1": "dc1", "app2": "dc2"}, 300)
    by_host = {v["host"]: v for v in view}
    assert by_host["app1"]["sender"] and not by_host["app2"]["sender"]
    assert by_host["app1"]["last_send_ok"] is False and by_host["app1"]["site"] == "dc1"
    assert any("app1 could not copy" in w and "backup1" in w for w in warnings)
    assert any("backup1's copy" in w and "900 s old" in w and "only at app1" in w
               for w in warnings)
    assert any("backup2 holds no copy" in w for w in warnings)
    assert any(w.startswith("app3: the age of its copy") for w in warnings)
    assert not any(w.startswith("app2") for w in warnings)  # 20 s is within 300


def test_status_says_nothing_about_hosts_without_the_copy_configured(tmp_path, capsys):
    assert files.main(str(tmp_path / "absent.json"), "state") == 0
    answer = json.loads(capsys.readouterr().out)
    view, warnings = status.files_view(
        {"backup1": _res("backup1", None, error="not provisioned (no drctl probe on the host)"),
         "backup2": _res("backup2", answer)}, {}, 300)
    assert warnings == [] and [v["files"] for v in view] == [None, None]


def test_a_sync_on_a_host_without_the_copy_configured_sends_nothing_and_succeeds(
        tmp_path, capsys):
    """switchover.yml runs `files sync` on every app host of the serving site: one the
    copy does not include answers, in JSON, that it sent nothing."""
    assert files.main(str(tmp_path / "absent.json"), "sync") == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer == {"ok": True, "configured": False, "sent": False}
    assert not (tmp_path / "absent.json").exists()


def test_only_drctl_status_asks_the_app_and_backup_hosts_for_their_copies(make_inventory,
                                                                          monkeypatch):
    """A failover gathers its facts through status.collect: it must not wait on the
    copies of the application's files, which decide nothing there."""
    asked: list[tuple[str, tuple[str, ...]]] = []

    def probe(inv, host, command=None, timeout=6):
        asked.append((host, tuple(command or ())))
        return sshprobe.ProbeResult(host, False, None, "unreachable: test")

    monkeypatch.setattr(sshprobe, "probe", probe)
    path = make_inventory()
    report = status.collect(path)
    assert report["files"] is None
    assert not any(cmd == tuple(status.FILES_STATE) for _, cmd in asked)
    asked.clear()
    report = status.collect(path, files=True)
    # an app host answers for its application VIP and its copy at once
    assert {h for h, cmd in asked if cmd == tuple(status.FILES_STATE)} == {"backup1"}
    assert {h for h, cmd in asked if cmd == tuple(status.APP_STATE)} == {"app1"}
    assert {f["host"] for f in report["files"]} == {"app1", "backup1"}
