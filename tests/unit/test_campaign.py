"""The campaign's client (drctl_lab.campaign.RecordingWriter): every attempt recorded, the
acknowledging server's timeline read from the insert, ids never reused, a failure closes
the connection. A fake connection stands in for psycopg's (the lab proves the real one)."""

from __future__ import annotations

import time
from itertools import count

from drctl_lab.campaign import RecordingWriter
from drctl_lab.checker import check


class FakeServer:
    """A primary on TIMELINE that stores ids; FAIL_NEXT: the next statement fails (the VIP
    moved, the server went away), or the commit, with FAIL_COMMIT."""

    def __init__(self, timeline: int = 1) -> None:
        self.timeline = timeline
        self.rows: set[int] = set()
        self.fail_next = False
        self.fail_commit = False
        self.connections = 0
        self.closed = 0
        self.statements: list[str] = []

    def connect(self, connect_timeout: int) -> FakeConnection:
        assert connect_timeout == 2
        self.connections += 1
        return FakeConnection(self)


class FakeConnection:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.pending: int | None = None

    def execute(self, sql: str, params: tuple[int]) -> FakeConnection:
        self.server.statements.append(sql)
        if self.server.fail_next:
            self.server.fail_next = False
            raise OSError("server closed the connection unexpectedly")
        self.pending = params[0]
        return self

    def fetchone(self) -> tuple[str]:
        return (f"{self.server.timeline:08X}0000000000000005",)

    def commit(self) -> None:
        assert self.pending is not None
        # the row is durable whether or not the acknowledgement reaches the client
        self.server.rows.add(self.pending)
        if self.server.fail_commit:
            self.server.fail_commit = False
            raise OSError("connection lost during commit")

    def close(self) -> None:
        self.server.closed += 1


def test_every_attempt_is_recorded_with_its_timeline_and_ids_are_never_reused():
    server = FakeServer(timeline=3)
    ticks = count()
    w = RecordingWriter(server.connect, "app.campaign", 100, clock=lambda: float(next(ticks)))
    first = w.attempt()
    assert (first.id, first.acked, first.timeline, first.began, first.ended) == (100, True, 3,
                                                                                0.0, 1.0)
    assert "returning pg_walfile_name(pg_current_wal_lsn())" in server.statements[0]
    server.fail_next = True
    failed = w.attempt()
    assert (failed.id, failed.acked, failed.timeline) == (101, False, None)
    assert server.closed == 1 and "OSError" in w.errors[0][1]
    server.timeline = 4  # promoted elsewhere: the next connection lands on timeline 4
    again = w.attempt()
    assert (again.id, again.acked, again.timeline) == (102, True, 4)
    assert server.connections == 2, "a new connection after the failure"
    assert [a.id for a in w.attempts] == [100, 101, 102] and w.id_range() == (100, 102)


def test_a_commit_whose_acknowledgement_is_lost_is_recovered_not_lost():
    server = FakeServer()
    w = RecordingWriter(server.connect, "app.campaign", 1)
    w.attempt()
    server.fail_commit = True
    unknown = w.attempt()
    assert not unknown.acked
    v = check(w.attempts, present=server.rows)
    assert v.ok and v.recovered == (2,) and v.acknowledged == 1


def test_the_writer_thread_stops_and_closes_its_connection():
    server = FakeServer()
    w = RecordingWriter(server.connect, "app.campaign", 1, pause_s=0.001)
    w.start()
    deadline = time.monotonic() + 10
    while len(w.attempts) < 5 and time.monotonic() < deadline:
        time.sleep(0.001)
    w.stop()
    n = len(w.attempts)
    assert n >= 5 and server.closed == 1 and len(server.rows) == n
    assert check(w.attempts, present=server.rows).ok
