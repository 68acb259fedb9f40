"""The hand-over tells the armed poolers to pause, just before the clean stop
(drctl.node.handover._tell_poolers): every waiter must answer 'ok' within the time; a
refusal or silence sends 'resume' and fails, so the hand-over aborts with nothing
changed. psycopg2's connection is faked; LISTEN/NOTIFY are PostgreSQL's own."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest

from drctl.node import common, handover

TOKEN = "tok3n0switchover"
WORD, ACK = f"drctl_pool_{TOKEN}", f"drctl_pool_{TOKEN}_ack"


class FakeOldPrimary:
    """The old primary as the notifier sees it: a 'pause' on WORD reaches the armed
    waiters, whose answers come back on ACK."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers  # what the waiters will say, one notification each
        self.notifies: list[Any] = []
        self.said: list[tuple[str, str]] = []
        self.listening: list[str] = []
        self.autocommit = False
        self.closed = False
        self.kw: dict[str, Any] = {}

    def cursor(self) -> FakeOldPrimary:
        return self

    def execute(self, statement: str, params: tuple[str] | None = None) -> None:
        if statement.startswith("LISTEN "):
            self.listening.append(statement.split()[1])
            return
        assert statement == "select pg_notify(%s, 'pause')" or \
            statement == "select pg_notify(%s, 'resume')", statement
        assert params is not None
        word = statement.split("'")[1]
        self.said.append((params[0], word))
        if word == "pause":
            # a notification from another session on the same channel is counted by host
            self.notifies += [SimpleNamespace(channel=ACK, payload=a) for a in self.answers]
            self.notifies.append(SimpleNamespace(channel="someone_else", payload="x ok"))

    def poll(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def old_primary(monkeypatch: pytest.MonkeyPatch):
    made: list[FakeOldPrimary] = []

    def with_answers(answers: list[str]) -> list[FakeOldPrimary]:
        def connect(**kw: Any) -> FakeOldPrimary:
            conn = FakeOldPrimary(answers)
            conn.kw = kw
            made.append(conn)
            return conn

        monkeypatch.setitem(sys.modules, "psycopg2", SimpleNamespace(connect=connect))
        monkeypatch.setattr(handover, "select",
                            SimpleNamespace(select=lambda r, w, x, t: (r, w, x)))
        return made

    return with_answers


def tell(hosts: list[str], timeout: float = 0.3) -> dict[str, Any]:
    return handover._tell_poolers(common.Config(name="pg1"), TOKEN, hosts, "app", timeout)


def test_every_armed_pooler_answers_ok(old_primary) -> None:
    made = old_primary(["app1 ok", "app9 ok", "app3 ok"])  # app9 is not armed: not counted
    answer = tell(["app1", "app3"])
    assert answer == {"ok": True, "answers": {"app1": "ok", "app3": "ok"}}
    [conn] = made
    assert conn.kw["user"] == "postgres" and conn.kw["dbname"] == "app"  # the socket, peer
    assert conn.listening == [ACK] and conn.said == [(WORD, "pause")] and conn.closed


def test_a_pooler_that_could_not_pause_makes_the_others_stand_down(old_primary) -> None:
    made = old_primary(["app1 failed: the pooler could not pause app within 5 s",
                        "app3 ok"])
    answer = tell(["app1", "app3"])
    assert not answer["ok"]
    assert answer["error"] == "app1: failed: the pooler could not pause app within 5 s"
    assert made[0].said == [(WORD, "pause"), (WORD, "resume")]


def test_a_silent_pooler_fails_the_hand_over_in_time(old_primary) -> None:
    made = old_primary(["app1 ok"])
    answer = tell(["app1", "app3"], timeout=0.2)
    assert not answer["ok"]
    assert answer["error"] == "app3 did not answer within 0.2 s"
    assert made[0].said[-1] == (WORD, "resume")
