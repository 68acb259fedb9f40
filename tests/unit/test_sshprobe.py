"""drctl.sshprobe.port_answers on loopback: a listener, a closed port, a host that never
answers (a listener whose backlog is full: Linux drops the SYNs, as for a powered-off host);
drctl.sshprobe.probe's second try after SSH itself failed."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from drctl.sshprobe import port_answers


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def test_a_listening_port_answers(listener: socket.socket) -> None:
    assert port_answers("127.0.0.1", listener.getsockname()[1])


def test_a_refused_connection_is_an_answer_at_once(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now: the kernel refuses
    start = time.monotonic()
    assert not port_answers("127.0.0.1", port, timeout=5)
    assert time.monotonic() - start < 4  # not its 5-s timeout


def test_silence_costs_the_timeout_and_no_more() -> None:
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    queued = []
    try:
        # fill the accept queue (never accepted); from then on the SYNs go unanswered
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            queued.append(c)
        start = time.monotonic()
        assert not port_answers("127.0.0.1", port, timeout=0.5)
        took = time.monotonic() - start
        # it waited for its timeout and then gave up: not at once (an answer it did not
        # get), nor at ssh's ConnectTimeout (3 s) or the kernel's connect timeout (over a
        # minute); the upper bound leaves room for a loaded machine's scheduling
        assert 0.45 <= took < 2.5, took
    finally:
        for c in queued:
            c.close()
        full.close()



def test_an_answer_that_arrived_while_this_process_was_not_running_counts(
        listener: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a loaded machine the prober may not run for the whole timeout: its wait sees
    nothing, the clock is past the deadline when it looks again, and the host's answer
    is sitting in the socket. That is an answer, not a dead host."""
    import select as select_mod

    from drctl import sshprobe

    real = select_mod.select
    calls: list[float] = []

    def starved(r, w, x, timeout=None):
        calls.append(timeout)
        if len(calls) == 1:  # the waiting select: descheduled, it saw nothing in time
            time.sleep(0.3)
            return [], [], []
        return real(r, w, x, timeout)

    monkeypatch.setattr(sshprobe.select, "select", starved)
    assert port_answers("127.0.0.1", listener.getsockname()[1], timeout=0.2, stagger=10)
    assert calls[-1] == 0  # the last look, after the deadline, did not wait


class _Calls:
    """sshprobe.run, dead and forget_connection replaced, on a clock of their own: RUNS are
    run's answers in turn, each after the seconds it names; DEAD dead()'s (None: the port
    answers). LOG: what was called, run with the timeout it was given."""

    def __init__(self, runs: list[tuple[float, int, str, str]], dead: list[str | None]
                 ) -> None:
        self.runs, self.dead, self.log = list(runs), list(dead), []
        self.now = 100.0

    def run(self, inv, host, cmd, timeout=8):
        took, *answer = self.runs.pop(0)
        self.now += min(took, timeout)
        self.log.append(f"run {timeout:g}")
        return tuple(answer)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from drctl import sshprobe

        monkeypatch.setattr(sshprobe, "run", self.run)
        monkeypatch.setattr(sshprobe, "time", SimpleNamespace(monotonic=lambda: self.now))
        monkeypatch.setattr(sshprobe, "dead", lambda inv, host:
                            (self.log.append("dead"), self.dead.pop(0))[1])
        monkeypatch.setattr(sshprobe, "forget_connection", lambda inv, host:
                            self.log.append("forget"))


def test_a_broken_shared_connection_is_asked_again_on_a_new_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from drctl.sshprobe import probe

    calls = _Calls([(3, 255, "", "Timeout, server 10.0.0.1 not responding."),
                    (0.4, 0, '{"host": "pg1"}', "")], [None, None])
    calls.install(monkeypatch)
    result = probe(None, "pg1")  # type: ignore[arg-type]
    assert result.ok and result.data == {"host": "pg1"}
    # the second try has what is left of the probe's 6 s
    assert calls.log == ["dead", "run 6", "forget", "dead", "run 3"]


def test_a_host_gone_since_the_first_look_is_not_asked_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from drctl.sshprobe import probe

    calls = _Calls([(0.1, 255, "", "Connection reset by peer")],
                   [None, "unreachable: nothing answers on 10.0.0.1:22"])
    calls.install(monkeypatch)
    result = probe(None, "pg1")  # type: ignore[arg-type]
    assert not result.ok and result.error.startswith("unreachable: nothing answers")
    assert calls.log == ["dead", "run 6", "forget", "dead"]


def test_a_silent_host_costs_one_timeout_not_two(monkeypatch: pytest.MonkeyPatch) -> None:
    from drctl.sshprobe import probe

    calls = _Calls([(6, 255, "", "no answer within 6 s")], [None])
    calls.install(monkeypatch)
    result = probe(None, "pg1")  # type: ignore[arg-type]
    assert not result.ok and "no answer within 6 s" in result.error
    assert calls.log == ["dead", "run 6"]


def test_a_failure_at_the_end_of_the_timeout_is_not_asked_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from drctl.sshprobe import probe

    calls = _Calls([(5.5, 255, "", "Timeout, server 10.0.0.1 not responding.")], [None])
    calls.install(monkeypatch)
    result = probe(None, "pg1")  # type: ignore[arg-type]
    assert not result.ok and "not responding" in result.error
    assert calls.log == ["dead", "run 6"]


def test_a_second_failure_is_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from drctl.sshprobe import probe

    calls = _Calls([(0.2, 255, "", "broken pipe"),
                    (0.2, 255, "", "Permission denied (publickey).")],
                   [None, None])
    calls.install(monkeypatch)
    result = probe(None, "pg1")  # type: ignore[arg-type]
    assert not result.ok and "Permission denied" in result.error
    assert calls.log == ["dead", "run 6", "forget", "dead", "run 5.8"]
