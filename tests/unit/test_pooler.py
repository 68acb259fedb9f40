"""The app host's pooler (drctl.node.pooler): a pause that cannot complete is taken back, a
pause is never left behind (the guard), and every pause and resume says who and how long.
PgBouncer's admin console is faked at the command line drctl-node runs (setpriv psql)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from drctl.node import common, pooler

DATABASES = ("name,host,port,database,force_user,pool_size,min_pool_size,reserve_pool,"
             "pool_mode,max_connections,current_connections,paused,disabled")
POOLS = ("database,user,cl_active,cl_waiting,cl_active_cancel_req,cl_waiting_cancel_req,"
         "sv_active,sv_active_cancel,sv_being_canceled,sv_idle,sv_used,sv_tested,sv_login,"
         "maxwait,maxwait_us,pool_mode")


class FakeBouncer:
    """PgBouncer 1.18's admin console as psql --csv shows it."""

    def __init__(self) -> None:
        self.paused = False
        self.in_flight = False  # a transaction held open: PAUSE never completes
        self.up = True
        self.commands: list[str] = []
        self.timeline = 1  # of the primary that answers at the server address
        self.waiters: list[list[str]] = []
        self.on_standby = False  # its server connections land on a node in recovery
        self.sessions: list[FakeSession] = []  # the guard service's kept sessions

    def run(self, args: list[str], timeout: float = 60, env: object = None
            ) -> tuple[int, str, str]:
        if args[0] == "systemd-run":
            self.waiters.append(args)
            return 0, "", ""
        if args[0] == "/usr/bin/psql" and "port=6432" in args[2]:  # through the pooler
            assert isinstance(env, dict) and env["PGPASSWORD"] == 'se"cret'
            assert not self.paused, "a paused pooler holds the question"
            self.commands.append("through the pooler: " + args[-1])
            return 0, "t" if self.on_standby else "f", ""
        if args[0] == "/usr/bin/psql":  # the waiter asks the server itself
            assert isinstance(env, dict) and env["PGPASSWORD"] == 'se"cret'
            assert "target_session_attrs=read-write" in args[2]
            return 0, f"{self.timeline:08X}000000000000005A", ""
        assert args[0] == "setpriv" and "--reuid=postgres" in args
        command = args[-1]
        self.commands.append(command)
        if not self.up:
            return 2, "", 'psql: error: connection to server on socket "/run/postgresql/' \
                          '.s.PGSQL.6432" failed: No such file or directory'
        if command == "SHOW DATABASES":
            return 0, "\n".join([DATABASES, f"app,10.0.0.100,5432,app,,10,0,0,,0,2,"
                                            f"{int(self.paused)},0"]), ""
        if command == "SHOW POOLS":
            return 0, "\n".join([POOLS, f"app,app,1,{3 if self.paused else 0},0,0,0,0,0,"
                                        f"{0 if self.paused else 2},0,0,0,0,0,transaction"]), ""
        if command == "PAUSE app":
            self.paused = True  # pausing: reported paused at once, as PgBouncer does
            if self.in_flight:
                return 124, "", f"psql gave no answer within {timeout:g} s"
            return 0, "", ""
        if command == "RESUME app":
            if not self.paused:
                return 1, "", "ERROR:  database app is not paused"
            self.paused = False
            return 0, "", ""
        raise AssertionError(command)


class FakeSession:
    """The guard's kept psql session on the fake console (common.PsqlSession's interface):
    each statement is the command line the console would run; a failure raises."""

    def __init__(self, bouncer: FakeBouncer, argv: list[str], timeout: float,
                 env: dict[str, str] | None = None) -> None:
        self.bouncer, self.argv, self.timeout, self.env = bouncer, argv, timeout, env
        self.closed = False
        bouncer.sessions.append(self)

    def execute(self, sql: str) -> str:
        rc, out, err = self.bouncer.run([*self.argv, "-c", sql], timeout=self.timeout,
                                        env=self.env)
        if rc != 0:
            raise RuntimeError(err or f"psql exit {rc}")
        return out

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def bouncer(monkeypatch) -> FakeBouncer:
    fake = FakeBouncer()
    monkeypatch.setattr(common, "run", fake.run)
    return fake


def config(tmp_path: Path, **kw: object) -> pooler.PoolerConfig:
    return pooler.PoolerConfig(name="app1", paused_file=str(tmp_path / "run" / "paused.json"),
                               resumed_file=str(tmp_path / "lib" / "resumed.json"),
                               **kw)  # type: ignore[arg-type]


def test_a_pause_and_its_resume_are_recorded_with_who_and_how_long(tmp_path, bouncer):
    c = config(tmp_path)
    assert pooler.pause(c, "switchover 1a2b", now=1000.0)["ok"]
    seen = pooler.state(c, now=1001.5)
    assert seen["state"] == "paused" and seen["paused_s"] == 1.5
    assert seen["paused_by"] == "switchover 1a2b" and seen["waiting"] == 3
    assert seen["server"] == "10.0.0.100" and seen["server_connections"] == 0
    done = pooler.resume(c, "switchover 1a2b", now=1002.0)
    assert done == {**done, "ok": True, "resumed": True, "paused_s": 2.0,
                    "paused_by": "switchover 1a2b"}
    assert json.loads(Path(c.resumed_file).read_text())["by"] == "switchover 1a2b"
    assert not Path(c.paused_file).exists()
    assert pooler.state(c)["state"] == "running" and pooler.state(c)["server_connections"] == 2


def test_a_pause_that_cannot_complete_is_taken_back_and_fails(tmp_path, bouncer):
    bouncer.in_flight = True
    c = config(tmp_path)
    result = pooler.pause(c, "switchover 1a2b", timeout=2)
    assert result["ok"] is False and result["resumed"] is True
    assert "could not pause app within 2 s" in result["error"]
    assert bouncer.paused is False, "a pause that timed out was left in place"
    assert bouncer.commands[-1] == "RESUME app" and not Path(c.paused_file).exists()
    assert "its pause timed out" in json.loads(Path(c.resumed_file).read_text())["by"]


def test_resuming_a_running_pooler_changes_nothing_and_records_nothing(tmp_path, bouncer):
    c = config(tmp_path)
    assert pooler.resume(c, "an operator") == {"ok": True, "host": "app1", "resumed": False,
                                               "last_resume": None}
    assert not Path(c.resumed_file).exists()


def test_the_guard_resumes_a_pause_past_its_limit_and_only_then(tmp_path, bouncer):
    c = config(tmp_path, guard_limit_s=30.0)
    pooler.pause(c, "switchover 1a2b (drctl killed after this)", now=1000.0)
    assert pooler.guard(c, now=1010.0)["action"] == "none" and bouncer.paused
    result = pooler.guard(c, now=1031.0)
    assert result["action"] == "resumed" and not bouncer.paused
    kept = json.loads(Path(c.resumed_file).read_text())
    assert kept["by"].startswith("the pooler guard (paused 31 s by switchover 1a2b")
    assert kept["paused_by"].startswith("switchover 1a2b")
    assert pooler.guard(c, now=1032.0)["action"] == "none"


def test_the_guard_resumes_a_pause_nobody_recorded_at_once(tmp_path, bouncer):
    bouncer.paused = True  # someone ran PAUSE on the console by hand
    c = config(tmp_path)
    result = pooler.guard(c, now=5.0)
    assert result["action"] == "resumed" and "no record of who paused it" in result["why"]
    assert not bouncer.paused


def test_a_record_left_by_a_pause_taken_back_elsewhere_is_cleared(tmp_path, bouncer):
    c = config(tmp_path)
    pooler.pause(c, "switchover 1a2b", now=1000.0)
    bouncer.paused = False  # resumed on the console by hand
    # within the pause's 5 s and a moment, it could still be a pause on its way
    assert pooler.guard(c, now=1006.9)["action"] == "none"
    assert Path(c.paused_file).exists()
    assert pooler.guard(c, now=1007.1)["action"] == "none"
    assert not Path(c.paused_file).exists()


def test_the_guard_leaves_the_record_of_a_pause_on_its_way(tmp_path, bouncer):
    """pause() writes its record, then sends PAUSE: a guard that looks in between sees a
    running pooler and a record. The record stays, so that the pause, once there, is known
    by whom (CI stop 56's test_16 saw `paused_by` None: the guard had removed it, and
    would then have resumed the pause at once as one nobody recorded)."""
    c = config(tmp_path)
    real_admin = pooler.admin

    def guard_looks_first(cfg, command, timeout=None, ask=None):
        if command.startswith("PAUSE"):
            assert pooler.guard(cfg, now=1000.4)["action"] == "none"
        return real_admin(cfg, command, timeout=timeout, ask=ask)

    pooler.admin = guard_looks_first  # type: ignore[assignment]
    try:
        assert pooler.pause(c, "switchover 1a2b", now=1000.0)["ok"]
    finally:
        pooler.admin = real_admin  # type: ignore[assignment]
    seen = pooler.state(c, now=1001.0)
    assert seen["state"] == "paused" and seen["paused_by"] == "switchover 1a2b"
    assert pooler.guard(c, now=1001.0)["action"] == "none" and bouncer.paused
    # a record that names its own timeout is kept that long
    assert pooler.pause_on_its_way(c, {"epoch": 1000.0, "timeout_s": 30}, now=1031.0)
    assert not pooler.pause_on_its_way(c, {"epoch": 1000.0, "timeout_s": 30}, now=1032.5)
    assert not pooler.pause_on_its_way(c, {"by": "no time"}, now=1000.0)


def test_a_pooler_that_does_not_answer_is_down_and_says_why(tmp_path, bouncer):
    bouncer.up = False
    seen = pooler.state(config(tmp_path))
    assert seen["state"] == "down" and "No such file" in seen["error"]
    assert pooler.guard(config(tmp_path))["action"] == "none"


def test_main_on_a_host_without_a_pooler_and_with_one(tmp_path, bouncer, capsys):
    assert pooler.main(str(tmp_path / "none.json"), "state") == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "configured": False}
    cfg = tmp_path / "pooler.json"
    cfg.write_text(json.dumps({"name": "app1", "paused_file": str(tmp_path / "p.json"),
                               "resumed_file": str(tmp_path / "r.json")}))
    assert pooler.main(str(cfg), "pause", by="switchover 1a2b") == 0
    assert json.loads(capsys.readouterr().out)["paused"] is True
    bouncer.in_flight = True
    bouncer.paused = False
    assert pooler.main(str(cfg), "pause", by="switchover 1a2b", timeout=1) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False
    assert pooler.main(str(cfg), "state") == 0
    assert json.loads(capsys.readouterr().out)["state"] == "running"


def _app(host: str, pooler_state: dict | None, ok: bool = True, error: str = ""):
    from drctl import sshprobe

    data = None if not ok else {"ok": True, "app_vip": {"configured": False},
                                "files": {"configured": False},
                                "pooler": pooler_state or {"configured": False}}
    return sshprobe.ProbeResult(host, ok, data, error)


def test_status_reports_each_pooler_and_a_pause_past_the_limit_is_a_problem():
    from drctl import status

    running = {"configured": True, "state": "running", "server": "10.0.0.100", "waiting": 0,
               "paused_s": None, "server_connections": 2}
    results = {
        "app1": _app("app1", running),
        "app2": _app("app2", {**running, "state": "paused", "paused_s": 3.2,
                              "paused_by": "switchover pg1 -> pg2", "waiting": 4}),
        "app3": _app("app3", {**running, "state": "paused", "paused_s": 45.0,
                              "paused_by": "switchover pg1 -> pg2"}),
        "app4": _app("app4", {"configured": True, "state": "down", "error": "no socket"}),
        "app5": _app("app5", None),  # no pooler: left out
        "app6": _app("app6", None, ok=False, error="no route to host"),
    }
    view, problems, warnings = status.poolers_view(results, paused_max_s=10)
    assert [(p["host"], p["state"]) for p in view] == [
        ("app1", "running"), ("app2", "paused"), ("app3", "paused"), ("app4", "down"),
        ("app6", "unknown")]
    assert view[1]["paused_s"] == 3.2 and view[1]["waiting"] == 4
    assert problems == [
        "app3's pooler has been paused for 45 s by switchover pg1 -> pg2: every client of "
        "app3 waits (its guard resumes it; or run drctl-node pooler resume there)",
        "app4's pooler does not answer (no socket): its application cannot reach the database"]
    assert warnings == [
        "app2's pooler has been paused for 3.2 s by switchover pg1 -> pg2 (4 clients waiting)",
        "app6: its pooler's state is unknown (no route to host)"]


def test_a_failovers_pause_stays_in_place_while_transactions_on_the_lost_primary_hang(
        tmp_path, bouncer):
    bouncer.in_flight = True  # their server is gone: they end when TCP gives up
    c = config(tmp_path)
    result = pooler.pause(c, "failover to pg2", timeout=1, keep_pausing=True)
    assert result["ok"] and result["paused"] and result["pausing"], result
    assert bouncer.paused and "RESUME app" not in bouncer.commands
    assert pooler.state(c)["paused_by"] == "failover to pg2"
    assert pooler.resume(c, "failover to pg2")["resumed"] is True


def test_the_auth_file_password_is_read_as_pgbouncer_writes_it(tmp_path):
    auth = tmp_path / "userlist.txt"
    auth.write_text('"other" "x"\n"app" "se""cret"\n')
    assert pooler.auth_password(str(auth), "app") == 'se"cret'
    assert pooler.auth_password(str(auth), "nobody") is None
    assert pooler.auth_password(str(tmp_path / "none"), "app") is None


def _with_server(tmp_path: Path) -> pooler.PoolerConfig:
    auth = tmp_path / "userlist.txt"
    auth.write_text('"app" "se""cret"\n')
    return config(tmp_path, server_host="10.0.0.100", auth_file=str(auth),
                  config_path="/etc/drctl/pooler.json")


def test_a_switchovers_pause_starts_a_waiter_that_resumes_on_the_new_timeline(
        tmp_path, bouncer):
    c = _with_server(tmp_path)
    result = pooler.pause(c, "switchover pg1 -> pg2", until_new_primary_s=60)
    assert result["paused"] and result["waiter"] and result["timeline"] == 1
    [waiter] = bouncer.waiters
    assert waiter[-8:] == ["pooler", "await", "--timeline-above", "1", "--max", "60",
                           "--by", "switchover pg1 -> pg2"]
    # the old primary still answers on timeline 1: the waiter keeps waiting
    ticks = iter(range(100))
    answers: list[int] = []

    def sleep(s: float) -> None:
        answers.append(bouncer.timeline)
        if len(answers) == 3:
            bouncer.timeline = 2  # pg2 promoted, holds the VIP

    done = pooler.await_new_primary(c, 1, 60, "switchover pg1 -> pg2",
                                    clock=lambda: float(next(ticks)), sleep=sleep)
    assert done["resumed"] is True and not bouncer.paused and answers == [1, 1, 1]
    kept = json.loads(Path(c.resumed_file).read_text())
    assert kept["by"] == ("switchover pg1 -> pg2 (its waiter: the new primary on timeline 2 "
                          "answers)") and kept["paused_by"] == "switchover pg1 -> pg2"


def test_a_question_that_hangs_does_not_hold_the_waiter(tmp_path, bouncer, monkeypatch):
    """The first question to the server address hangs (a connection attempt to the node
    that let the VIP go); the next, asked POLL_S later, finds the new primary and the
    pooler resumes while the first is still out."""
    import threading

    c = dataclasses.replace(_with_server(tmp_path), poll_s=0.01)
    pooler.pause(c, "switchover pg1 -> pg2", until_new_primary_s=60)
    release = threading.Event()
    asked: list[str] = []

    def timeline(_c: pooler.PoolerConfig, timeout: float = 2) -> int | None:
        asked.append("asked")
        if len(asked) == 1:
            release.wait(10)  # the hanging one: answers only once the test lets it
            return None
        return 2

    monkeypatch.setattr(pooler, "server_timeline", timeline)
    try:
        done = pooler.await_new_primary(c, 1, 60, "switchover pg1 -> pg2")
        assert done["resumed"] is True and not bouncer.paused
        assert not release.is_set() and len(asked) == 2, "the second question ended it"
    finally:
        release.set()
    # never more questions out at once than PROBES_IN_FLIGHT: all hang, none answers
    release.clear()
    hung: list[str] = []

    def hangs(_c: pooler.PoolerConfig, timeout: float = 2) -> int | None:
        hung.append("asked")
        release.wait(10)
        return None

    pooler.pause(c, "switchover pg2 -> pg1")
    monkeypatch.setattr(pooler, "server_timeline", hangs)
    try:
        done = pooler.await_new_primary(dataclasses.replace(c, probes_in_flight=3), 1,
                                        0.3, "x")
        assert done["resumed"] is False and len(hung) == 3 and bouncer.paused
    finally:
        release.set()


def test_the_waiter_gives_up_in_time_and_leaves_a_pooler_someone_resumed(tmp_path, bouncer):
    c = _with_server(tmp_path)
    pooler.pause(c, "switchover pg1 -> pg2", until_new_primary_s=5)
    ticks = iter(range(100))
    done = pooler.await_new_primary(c, 1, 5, "x", clock=lambda: float(next(ticks)),
                                    sleep=lambda s: None)
    assert done["resumed"] is False and "no new primary within 5 s" in done["detail"]
    assert bouncer.paused, "giving up is not resuming: the switchover's resume or the guard do"
    pooler.resume(c, "the switchover's own resume")
    done = pooler.await_new_primary(c, 1, 5, "x", clock=lambda: 0.0, sleep=lambda s: None)
    assert done == {**done, "resumed": False, "detail": "resumed by someone else"}


def test_the_waiter_starts_before_the_pause_and_waits_for_it(tmp_path, bouncer, monkeypatch):
    """Its unit's start is no part of the clients' wait: the pause's record is written,
    the waiter started, then PAUSE; until the pooler pauses, the waiter waits for it."""
    c = _with_server(tmp_path)
    order: list[str] = []
    run = bouncer.run

    def recording(args, timeout=60, env=None):
        order.append("waiter" if args[0] == "systemd-run" else args[-1])
        return run(args, timeout=timeout, env=env)

    monkeypatch.setattr(common, "run", recording)
    assert pooler.pause(c, "switchover pg1 -> pg2", until_new_primary_s=60)["waiter"]
    assert order.index("waiter") < order.index("PAUSE app")
    # the waiter's view in the moment between the two: no PAUSE yet, its record there
    bouncer.paused = False
    looks = iter([False, False, True])

    def sleep(s: float) -> None:
        bouncer.paused = next(looks)
        bouncer.timeline = 2 if bouncer.paused else 1

    done = pooler.await_new_primary(c, 1, 60, "switchover pg1 -> pg2",
                                    clock=lambda: 0.0, sleep=sleep)
    assert done["resumed"] is True, done
    # a pause taken back (its record removed) ends the waiter without a resume
    pooler.pause(c, "switchover pg2 -> pg1", until_new_primary_s=60)
    pooler.resume(c, "switchover pg2 -> pg1 (its pause timed out)")
    done = pooler.await_new_primary(c, 2, 60, "x", clock=lambda: 0.0, sleep=lambda s: None)
    assert done["detail"] == "resumed by someone else"


def test_no_waiter_without_a_primary_to_compare_with(tmp_path, bouncer):
    c = config(tmp_path)  # no server address configured
    result = pooler.pause(c, "switchover pg1 -> pg2", until_new_primary_s=60)
    assert result["paused"] and "waiter" not in result and bouncer.waiters == []


def test_a_resume_that_finds_its_pause_ended_by_the_waiter_says_so(tmp_path, bouncer):
    c = _with_server(tmp_path)
    pooler.pause(c, "switchover pg1 -> pg2", until_new_primary_s=60)
    bouncer.timeline = 2
    pooler.await_new_primary(c, 1, 60, "switchover pg1 -> pg2", clock=lambda: 0.0,
                             sleep=lambda s: None)
    late = pooler.resume(c, "switchover pg1 -> pg2", taking_back="switchover pg1 -> pg2")
    assert late["resumed"] is False and late["resumed_before"] is True
    assert "its waiter" in late["resumed_before_by"]
    # another pause's resume (or none named) is not this one's
    other = pooler.resume(c, "failover to pg3", taking_back="failover to pg3")
    assert "resumed_before" not in other
    assert "resumed_before" not in pooler.resume(c, "an operator")


def test_the_guard_asks_the_console_one_question_a_round(tmp_path, bouncer):
    c = config(tmp_path)
    pooler.guard(c, now=1.0)
    assert bouncer.commands == ["SHOW DATABASES"]
    bouncer.up = False
    assert pooler.guard(c, now=2.0)["state"] == "down"


def test_the_guard_service_looks_every_round_and_speaks_only_of_changes(
        tmp_path, bouncer, capsys, monkeypatch):
    c = config(tmp_path, guard_limit_s=30.0)
    path = tmp_path / "pooler.json"
    path.write_text(json.dumps({"name": "app1", "paused_file": c.paused_file,
                                "resumed_file": c.resumed_file, "guard_limit_s": 30.0}))
    slept: list[float] = []

    def session(argv: list[str], timeout: float) -> FakeSession:
        return FakeSession(bouncer, argv, timeout)
    pooler.guard_loop(str(path), 5, sleep=slept.append, rounds=3, session=session)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert slept == [5, 5, 5] and bouncer.commands == ["SHOW DATABASES"] * 3
    assert [x["state"] for x in lines] == ["running"], "one line: what it saw first"
    # one kept session on the console for every look, closed when the service ends
    [kept] = bouncer.sessions
    assert kept.argv[:5] == ["setpriv", "--reuid=postgres", "--regid=postgres",
                             "--init-groups", "--"] and kept.timeout == 5.0 and kept.closed
    bouncer.paused = True  # paused by hand, no record: resumed at the next look
    pooler.guard_loop(str(path), 5, sleep=slept.append, rounds=1, session=session)
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["action"] == "resumed" and not bouncer.paused
    # the console gone (a session that fails): down that look, running again after
    bouncer.up = False
    pooler.guard_loop(str(path), 5, sleep=slept.append, rounds=1, session=session)
    assert [json.loads(x)["state"] for x in capsys.readouterr().out.splitlines()] == ["down"]
    # a configuration that names another console port: a session for it
    path.write_text(json.dumps({**json.loads(path.read_text()), "port": 6433}))
    bouncer.up = True
    pooler.guard_loop(str(path), 5, sleep=slept.append, rounds=2, session=session)
    assert "6433" in bouncer.sessions[-1].argv and len(bouncer.sessions) == 4
    capsys.readouterr()
    # new programs installed under it: the service exits, systemd starts the new ones
    versions = iter([(1, 1), (2, 2)])
    monkeypatch.setattr(pooler, "_code_version", lambda: next(versions))
    pooler.guard_loop(str(path), 5, sleep=slept.append, rounds=5, session=session)
    assert json.loads(capsys.readouterr().out)["action"] == "exit"


def pooler_json(tmp_path: Path) -> Path:
    """An app host's pooler.json, with the application's password in its auth file."""
    auth = tmp_path / "userlist.txt"
    auth.write_text('"app" "se""cret"\n')
    path = tmp_path / "pooler.json"
    path.write_text(json.dumps({"name": "app1", "auth_file": str(auth),
                                "paused_file": str(tmp_path / "paused.json"),
                                "resumed_file": str(tmp_path / "resumed.json")}))
    return path


def test_the_metrics_of_a_pooler_running_paused_and_down(tmp_path, bouncer, capsys):
    from drctl.node import metrics

    path = pooler_json(tmp_path)

    def scraped() -> dict[str, float]:
        assert metrics.main_pooler(str(path), "-", cluster="lab") == 0
        return {line.split("{")[0]: float(line.rsplit(" ", 1)[1])
                for line in capsys.readouterr().out.splitlines() if line.startswith("drctl_")}

    m = scraped()
    assert m["drctl_pooler_up"] == 1 and m["drctl_pooler_paused"] == 0
    assert m["drctl_pooler_paused_seconds"] == 0 and m["drctl_pooler_served_by_standby"] == 0
    assert m["drctl_pooler_server_connections"] == 2
    bouncer.on_standby = True
    assert scraped()["drctl_pooler_served_by_standby"] == 1
    # paused: the question would wait for the resume, so it is not asked
    asked = len(bouncer.commands)
    pooler.pause(pooler.PoolerConfig.load(str(path)), by="a test")
    m = scraped()
    assert m["drctl_pooler_paused"] == 1 and m["drctl_pooler_clients_waiting"] == 3
    assert "drctl_pooler_served_by_standby" not in m
    assert not any(c.startswith("through") for c in bouncer.commands[asked:])
    bouncer.up = False
    m = scraped()
    assert m == {"drctl_metrics_timestamp_seconds": m["drctl_metrics_timestamp_seconds"],
                 "drctl_pooler_up": 0}


def unlabelled(text: str) -> str:
    """Prometheus' text without the labels: `name value` lines."""
    return "\n".join(re.sub(r"\{[^}]*\}", "", line) for line in text.splitlines())


def test_the_metrics_service_keeps_its_two_sessions_from_round_to_round(tmp_path, bouncer,
                                                                       capsys):
    """Every 15 s, the same questions over the same two psqls (the console's and a client's
    of the pooler), not three new psqls a round; a session that fails is asked again on a
    new one, once."""
    from drctl.node import metrics

    path = pooler_json(tmp_path)
    kept = common.KeptSessions(
        session=lambda argv, timeout, env=None: FakeSession(bouncer, argv, timeout, env))
    for _ in range(3):
        assert metrics.main_pooler(str(path), "-", cluster="lab", kept=kept) == 0
    out = capsys.readouterr().out
    assert "drctl_pooler_up{" in out and 'drctl_pooler_served_by_standby{' in out
    assert len(bouncer.sessions) == 2 and not any(x.closed for x in bouncer.sessions)
    assert bouncer.commands.count("SHOW DATABASES") == 3
    assert bouncer.commands.count("through the pooler: select pg_is_in_recovery()") == 3
    # the pooler restarted under the kept sessions: the next round's question fails once
    # and is asked again on a new session
    admin = bouncer.sessions[0]
    failing = iter([RuntimeError("server closed the connection unexpectedly")])

    def once(sql: str, real=admin.execute) -> str:
        for exc in failing:
            raise exc
        return real(sql)
    admin.execute = once  # type: ignore[method-assign]
    assert metrics.main_pooler(str(path), "-", cluster="lab", kept=kept) == 0
    assert "drctl_pooler_up 1" in unlabelled(capsys.readouterr().out)
    assert len(bouncer.sessions) == 2
    # a question that got no answer in time (no server behind the pooler) is not asked
    # again: it would wait as long
    client = bouncer.sessions[1]
    timeouts: list[str] = []

    def hangs(sql: str) -> str:
        timeouts.append(sql)
        raise common.PsqlTimeout("psql gave no answer within 3 s")
    client.execute = hangs  # type: ignore[method-assign]
    assert metrics.main_pooler(str(path), "-", cluster="lab", kept=kept) == 0
    out = unlabelled(capsys.readouterr().out)
    assert len(timeouts) == 1 and "drctl_pooler_served_by_standby" not in out
    assert "drctl_pooler_up 1" in out
    # other arguments (a new password in the auth file, another port): a new session, the
    # old one closed; and all closed when the service ends
    kept.ask("client", ["/usr/bin/psql", "-XAtq", "port=6433"], 3, {"PGPASSWORD": "new"})
    assert bouncer.sessions[1].closed and len(bouncer.sessions) == 3
    kept.close()
    assert all(x.closed for x in bouncer.sessions)


def test_a_pause_of_unknown_age_has_no_age_series():
    from drctl.node import metrics

    text = metrics.render_pooler({"host": "app1", "state": "paused", "paused_s": None,
                                  "waiting": 0, "server_connections": 0}, None, "lab", 1.0)
    assert "drctl_pooler_paused{" in text and "drctl_pooler_paused_seconds" not in text


def test_the_metrics_command_of_an_app_host_parses_as_its_unit_writes_it(
        tmp_path, bouncer, capsys):
    """`--pooler` after `metrics`, with --pooler-config before it (the unit's command
    line): not an abbreviation of --pooler-config."""
    from drctl.node import cli

    path = pooler_json(tmp_path)
    out = tmp_path / "drctl.prom"
    assert cli.main(["--config", str(tmp_path / "node.json"), "--pooler-config", str(path),
                     "metrics", "--pooler", "--out", str(out), "--cluster", "lab"]) == 0
    assert 'drctl_pooler_up{cluster="lab",node="app1"} 1' in out.read_text()


# --- a switchover's armed poolers: paused on the hand-over's word --------------------

TOKEN = "tok3n0switchover"


class FakeChannel:
    """The waiter's connection to the old primary: LISTEN, the WAL position, pg_notify."""

    def __init__(self) -> None:
        self.executed: list[str] = []
        self.notified: list[tuple[str, str]] = []
        self.closed = False

    def cursor(self) -> FakeChannel:
        return self

    def execute(self, statement: str, params: tuple[str, str] | None = None) -> None:
        self.executed.append(statement)
        if params:
            self.notified.append(params)

    def fetchone(self) -> tuple[str]:
        return ("00000001000000000000005A",)

    def close(self) -> None:
        self.closed = True


def _armed(tmp_path: Path, monkeypatch, words: list[object], bouncer: FakeBouncer,
           clock=None) -> tuple[dict, FakeChannel]:
    c = _with_server(tmp_path)
    channel = FakeChannel()
    heard = iter(words)

    def next_word(conn: object, name: str, timeout: float) -> str | None:
        assert name == f"drctl_pool_{TOKEN}"
        word = next(heard)
        if isinstance(word, Exception):
            raise word
        return word  # type: ignore[return-value]

    monkeypatch.setattr(pooler, "next_word", next_word)
    monkeypatch.setattr(pooler.time, "sleep", lambda s: None)
    ready = Path(pooler.ready_file(c, TOKEN))
    result = pooler.listen(c, TOKEN, "10.0.0.11", 60, "switchover pg1 -> pg2",
                           connect=lambda cfg, address: channel,
                           **({"clock": clock} if clock else {}))
    assert not ready.exists(), "the ready file goes with the waiter"
    assert channel.executed[0] == f"LISTEN drctl_pool_{TOKEN}" and channel.closed
    return result, channel


def test_an_armed_pooler_pauses_on_the_handovers_word_and_resumes_on_the_new_timeline(
        tmp_path, bouncer, monkeypatch):
    bouncer.timeline = 2  # by the time it looks, pg2 answers at the VIP
    result, channel = _armed(tmp_path, monkeypatch, ["something else", "pause"], bouncer)
    assert result["paused"] and result["waiter"]["resumed"], result
    assert channel.notified == [(f"drctl_pool_{TOKEN}_ack", "app1 ok")]
    assert bouncer.commands.count("PAUSE app") == 1 and not bouncer.paused
    kept = json.loads(Path(_with_server(tmp_path).resumed_file).read_text())
    assert kept["paused_by"] == "switchover pg1 -> pg2" and "timeline 2" in kept["by"]


def test_an_armed_pooler_stands_down_on_resume_on_the_end_of_its_connection_or_in_time(
        tmp_path, bouncer, monkeypatch):
    for words, why in ((["resume"], "the hand-over gave up"),
                       ([OSError("server closed the connection unexpectedly")],
                        "the primary's connection ended first"),
                       ([None], "no word within 60 s")):
        # the deadline, a first look, past the deadline
        clock = iter([0.0, 0.0, 61.0]).__next__ if words == [None] else None
        result, channel = _armed(tmp_path, monkeypatch, words, bouncer, clock=clock)
        assert result["ok"] and not result["paused"] and why in result["detail"], result
        assert "PAUSE app" not in bouncer.commands and channel.notified == []


def test_an_armed_pooler_that_cannot_pause_says_so_and_runs_on(tmp_path, bouncer,
                                                               monkeypatch):
    bouncer.in_flight = True  # a transaction held open: PAUSE does not complete
    result, channel = _armed(tmp_path, monkeypatch, ["pause"], bouncer)
    assert not result["ok"] and not bouncer.paused, result
    [(ack, said)] = channel.notified
    assert ack == f"drctl_pool_{TOKEN}_ack"
    assert said.startswith("app1 failed: the pooler could not pause app within 5 s"), said


def test_a_waiter_that_cannot_listen_says_why_in_its_ready_file(tmp_path, bouncer):
    c = _with_server(tmp_path)

    def refuse(cfg: object, address: str) -> object:
        raise OSError("could not connect to server: Connection refused")

    result = pooler.listen(c, TOKEN, "10.0.0.11", 60, "s", connect=refuse)
    assert not result["ok"] and "Connection refused" in result["error"]
    state = json.loads(Path(pooler.ready_file(c, TOKEN)).read_text())
    assert state["ready"] is False and "Connection refused" in state["error"]


def test_arm_returns_once_its_waiter_listens_else_pauses_as_before(tmp_path, bouncer,
                                                                   monkeypatch):
    c = _with_server(tmp_path)
    ready = Path(pooler.ready_file(c, TOKEN))
    stopped: list[list[str]] = []
    listening = {"ok": True}

    def run(args: list[str], timeout: float = 60, env: object = None) -> tuple[int, str, str]:
        if args[0] == "systemd-run" and "listen" in args:
            assert args[args.index("--token") + 1] == TOKEN
            assert args[args.index("--primary-address") + 1] == "10.0.0.11"
            ready.parent.mkdir(parents=True, exist_ok=True)
            ready.write_text(json.dumps({"ready": True, "timeline": 1}) if listening["ok"]
                             else json.dumps({"ready": False, "error": "no route"}))
            return 0, "", ""
        if args[0] == "systemctl":
            stopped.append(args)
            return 0, "", ""
        return bouncer.run(args, timeout, env)

    monkeypatch.setattr(common, "run", run)
    armed = pooler.arm(c, TOKEN, "10.0.0.11", 60, "switchover pg1 -> pg2",
                       sleep=lambda s: None)
    assert armed["armed"] and not armed["paused"] and not bouncer.paused, armed
    assert armed["database"] == "app" and armed["pause_timeout_s"] == 5.0
    listening["ok"] = False
    fallback = pooler.arm(c, TOKEN, "10.0.0.11", 60, "switchover pg1 -> pg2",
                          sleep=lambda s: None)
    assert not fallback["armed"] and fallback["paused"] and bouncer.paused, fallback
    assert fallback["why_not_armed"] == "no route"
    assert stopped == [["systemctl", "stop", f"drctl-pooler-armed-{TOKEN}"]]


def test_a_switchover_token_is_letters_and_digits_only():
    assert pooler.channels(TOKEN) == (f"drctl_pool_{TOKEN}", f"drctl_pool_{TOKEN}_ack")
    for bad in ("", "short", "x; drop table users", "UPPERCASE123"):
        with pytest.raises(ValueError):
            pooler.channels(bad)
