"""The campaign's client (drctl_lab.campaign.RecordingWriter): every attempt recorded, the
acknowledging server's timeline read from the insert, ids never reused, a failure closes
the connection. A fake connection stands in for psycopg's (the lab proves the real one)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from itertools import count

from drctl_lab.campaign import (
    RecordingWriter,
    consents_from_events,
    gaps,
    made_since,
    outage_per_fault,
    summary,
)
from drctl_lab.campaign_html import render
from drctl_lab.checker import Attempt, check
from drctl_lab.faults import Fault


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


# ------------------------------------------------------------------ judging a campaign


def test_a_promotions_consent_is_the_window_its_validation_named() -> None:
    """Only a validation that passed, named a window and was followed by a promotion on
    the same host consents; a refusal in between withdraws it."""
    events = [
        {"host": "pg2", "step": "auto-validate", "result": "passed",
         "loss_window": {"from": 100.0, "seconds": 1.5}},
        {"host": "pg2", "step": "promoted", "result": "ok"},
        {"host": "pg1", "step": "auto-validate", "result": "passed",
         "loss_window": {"from": 200.0, "seconds": 2.0}},
        {"host": "pg1", "step": "auto-validate", "result": "refused"},
        {"host": "pg1", "step": "promoted", "result": "ok"},
        {"host": "pg2", "step": "auto-validate", "result": "passed", "loss_window": None},
        {"host": "pg2", "step": "promoted", "result": "ok"},
    ]
    consents = consents_from_events(events)
    assert [(c.at, c.window_s) for c in consents] == [(101.5, 1.5)]
    assert "pg2" in consents[0].who and "standing consent" in consents[0].who
    acked = [Attempt(1, 100.0, 100.5, True, 1), Attempt(2, 101.0, 101.6, True, 1)]
    verdict = check(acked, [], consents)
    assert verdict.lost_with_consent == (1,) and verdict.lost == (2,)


def test_the_outage_of_a_fault_is_the_longest_gap_in_acknowledgements_it_began() -> None:
    attempts = [Attempt(i, t - 0.01, t, True, 1) for i, t in enumerate(
        [0.0, 0.1, 0.2, 5.2, 9.5, 20.0, 20.1, 40.0])]
    attempts.append(Attempt(99, 6.0, 8.0, False))
    applied = [{"kind": "power", "applied": 0.1, "healed": 4.0},
               {"kind": "kill-repmgrd", "applied": 12.0, "healed": 12.0},
               {"kind": "isolate", "applied": 30.0, "healed": 50.0}]
    assert gaps(attempts) == [(0.2, 5.2), (5.2, 9.5), (9.5, 20.0), (20.1, 40.0)]
    # power: the gaps from 0.2 and 5.2 began while it lasted or within 5 s of its end,
    # the longer counts; kill-repmgrd: the gap from 9.5 began before it (not its doing);
    # isolate: none began in 29.5-55 s
    assert outage_per_fault(applied, attempts) == [5.0, 0.0, 0.0]


def test_the_summary_counts_faults_outages_and_acknowledgements_per_timeline() -> None:
    sched = [Fault(1.0, "power", ("pg1",), 3.0), Fault(9.0, "switchover", (), 0.0)]
    t0 = 1000.0
    attempts = [Attempt(1, t0, t0 + 0.5, True, 1), Attempt(2, t0 + 0.6, t0 + 6.0, True, 2),
                Attempt(3, t0 + 6.1, t0 + 6.2, False)]
    applied = [{"kind": "power", "hosts": ["pg1"], "applied": t0 + 1.0, "healed": t0 + 4.0,
                "index": 0},
               {"kind": "switchover", "hosts": [], "applied": t0 + 9.0, "healed": t0 + 9.5,
                "index": 1}]
    verdict = check(attempts, [1, 2], ())
    report = summary(5, 12.0, sched, applied, verdict, attempts, (), True, "pg2", t0)
    assert report["ok"] and report["seed"] == 5 and report["final_primary"] == "pg2"
    assert report["faults_by_kind"] == {"power": 1, "switchover": 1}
    assert report["outage_s_by_kind"] == {"power": {"median": 5.5, "max": 5.5},
                                          "switchover": {"median": 0.0, "max": 0.0}}
    assert report["acknowledged_by_timeline"] == {"1": 1, "2": 1}
    assert report["acks_per_second"] == {"1": [1, 0, 0, 0, 0, 0, 0], "2": [0, 0, 0, 0, 0, 0, 1]}
    assert report["applied"][0]["applied"] == 1.0 and report["applied"][0]["outage_s"] == 5.5
    # not healthy at the end: not ok, whatever the writes say
    assert not summary(5, 12.0, sched, applied, verdict, attempts, (), False, None, t0)["ok"]


def test_the_html_timeline_is_self_contained_and_escapes_what_it_shows() -> None:
    t0 = 0.0
    attempts = [Attempt(1, 0.0, 0.5, True, 1), Attempt(2, 3.0, 3.5, True, 2)]
    applied = [{"kind": "power", "hosts": ["pg1"], "applied": 1.0, "healed": 2.0,
                "index": 0}]
    verdict = check(attempts, [2], ())
    report = summary(3, 10.0, [Fault(1.0, "power", ("pg1",), 1.0)], applied, verdict,
                     attempts, (), True, "pg2", t0)
    report["events"] = [{"at": 1.0, "what": "powered off <pg1>"},
                        {"at": 5.0, "what": "operator: failback of pg1: exit 0",
                         "kind": "failback"}]
    report["started"] = "2026-12-06T20:00:00Z"
    page = render(report)
    assert "FAILED" in page and "1 acknowledged writes lost without consent" in page
    assert "<svg" in page and "timeline 1" in page and "timeline 2" in page
    assert "powered off &lt;pg1&gt;" in page and "<pg1>" not in page
    assert "SEED=3" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in page


def test_the_campaign_drops_only_the_copies_it_caused() -> None:
    copies = [
        {"host": "pg1", "name": "main.diverged-20261206T204514Z",
         "at": "2026-12-06T20:45:14+00:00", "bytes": 5, "commits": 10, "xids": [1]},
        {"host": "pg2", "name": "main.diverged-20261206T190000Z",
         "at": "2026-12-06T19:00:00+00:00"},  # an operator's, from before the campaign
        {"host": "pg2", "name": "main.diverged-x", "at": None},  # when: unknown
    ]
    started = datetime(2026, 12, 6, 20, 44, tzinfo=UTC).timestamp()
    own = made_since(copies, started)
    assert [(c["host"], c["name"], c["commits"]) for c in own] == [
        ("pg1", "main.diverged-20261206T204514Z", 10)]
    assert "xids" not in own[0]
