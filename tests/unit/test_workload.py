"""The one SQL writer (drctl.workload.SqlWriter): what it counts as acknowledged, and
what it does when a write fails. A fake connection stands in for PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from drctl.workload import SqlWriter


class FakeServer:
    """Rows committed, and a switch that makes the next commits fail (a VIP that moves)."""

    def __init__(self) -> None:
        self.rows: set[int] = set()
        self.failing = threading.Event()
        self.connections = 0
        self.committed = threading.Condition()

    def connect(self, **_kw: Any) -> FakeConnection:
        self.connections += 1
        return FakeConnection(self)


class FakeConnection:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.pending: int | None = None

    def __enter__(self) -> FakeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> Any:
        if statement.startswith("insert"):
            self.pending = params[0]
        elif statement.startswith("select id"):
            lo, hi = params
            rows = [(i,) for i in sorted(self.server.rows) if lo <= i <= hi]
            return type("Result", (), {"fetchall": lambda _self: rows})()
        return None

    def commit(self) -> None:
        if self.server.failing.is_set():
            raise ConnectionError("server closed the connection unexpectedly")
        if self.pending is not None:
            with self.server.committed:
                self.server.rows.add(self.pending)
                self.server.committed.notify_all()
            self.pending = None

    def close(self) -> None:
        pass


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


def test_only_commits_that_returned_count_and_a_failed_id_is_never_reused(server):
    w = SqlWriter(server.connect, table="t", rate=1000, start_id=100)
    w.start()
    try:
        w.wait_for_acks(5, timeout=10)
        server.failing.set()  # a few commits fail
        deadline = time.monotonic() + 10
        while len(w.errors) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(w.errors) >= 3, w.errors
        server.failing.clear()
        w.wait_for_acks(5, timeout=10)
    finally:
        w.stop()
    acked = [i for _, i in w.acked]
    assert acked == sorted(acked) and len(set(acked)) == len(acked)
    assert set(acked) <= server.rows, "an acknowledged id is a committed row"
    failed_ids = set(range(100, w.next_id)) - set(acked)
    assert failed_ids and not failed_ids & server.rows, "a failed write is not counted"
    assert server.connections >= 4, "it reconnects after each failure"
    assert w.missing(server.connect) == []


def test_missing_names_acknowledged_ids_the_server_does_not_have(server):
    w = SqlWriter(server.connect, table="t", rate=1000, start_id=1)
    w.start()
    try:
        w.wait_for_acks(10, timeout=10)
    finally:
        w.stop()
    lost = [i for _, i in w.acked][-2:]
    server.rows -= set(lost)  # a failover to a standby that had not received them
    assert w.missing(server.connect) == lost


def test_waiting_for_writes_that_never_come_says_so(server):
    server.failing.set()
    w = SqlWriter(server.connect, table="t", rate=1000, start_id=1)
    w.start()
    try:
        with pytest.raises(AssertionError, match=r"no 1 acknowledged writes within 0\.3 s"):
            w.wait_for_acks(1, timeout=0.3)
    finally:
        w.stop()
    assert w.acked == [] and w.longest_gap() == 0.0


@pytest.fixture
def app_server():
    """A stand-in for the application on loopback: /register answers 503, /login never
    answers (it holds the request past the probe's timeout)."""
    import http.server

    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/login"):
                release.wait(5)
                return
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"try again")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    release.set()
    server.shutdown()
    server.server_close()


def test_a_failed_request_says_which_call_failed_and_what_it_got(app_server):
    from drctl.workload import AppProbe

    probe = AppProbe(app_server, timeout=0.3)
    assert not probe.register("u1", "secret-password")
    assert not probe.login("u1", "secret-password")
    register, login = probe.results
    assert register["why"] == "GET /register: HTTP 503" and register["status"] == 503
    assert login["why"].startswith("GET /login: ") and "timed out" in login["why"], login
    assert login["status"] == 0 and login["address"] == "127.0.0.1"


def test_a_returning_user_logs_in_each_cycle_also_when_registrations_fail(monkeypatch):
    from drctl import workload

    probe = workload.AppProbe("http://127.0.0.1:9")
    clock = [100.0]
    calls: list[tuple[str, str]] = []
    registering = [True]
    monkeypatch.setattr(workload.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(probe, "register",
                        lambda user, password: calls.append(("register", user))
                        or registering[0])
    monkeypatch.setattr(probe, "login", lambda user, password, action="login":
                        calls.append((action, user)) is None)
    probe.cycle()
    clock[0] += 1
    probe.cycle()  # the first user is a second old: not yet a returning one
    assert [a for a, _ in calls] == ["register", "login", "register", "login"]
    calls.clear()
    clock[0] += 3
    registering[0] = False  # the primary is gone: registrations fail, reads go on
    probe.cycle()
    assert calls[0][0] == "register" and calls[1][0] == "return", calls
    assert calls[1][1] in probe.registered and len(calls) == 2


def test_logins_during_the_outage_count_only_returning_users_inside_it():
    from drctl.drill import _outage, returning_logins

    window = _outage([0.0, 0.1, 0.2, 2.5, 2.6])
    assert window == (0.2, 2.5)
    results = [{"t": 0.15, "action": "return", "ok": True},
               {"t": 1.0, "action": "return", "ok": True},
               {"t": 1.5, "action": "return", "ok": False},
               {"t": 1.2, "action": "login", "ok": False},
               {"t": 2.55, "action": "return", "ok": True}]
    assert returning_logins(results, window) == {"attempted": 2, "succeeded": 1}
    assert returning_logins(results, _outage([1.0])) == {"attempted": 0, "succeeded": 0}
