"""drctl.node.common.PsqlSession: one long-lived psql for a statement every second,
against a stand-in psql that speaks the same protocol on stdin/stdout/stderr."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from drctl.node.common import PsqlSession

FAKE = textwrap.dedent("""\
    import sys, time
    print("started", file=sys.stderr, flush=True)
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("\\\\echo "):
            print(line.split(" ", 1)[1], flush=True)
        elif "boom" in line:
            print("psql:<stdin>:2: ERROR:  boom", file=sys.stderr)
            print("LINE 1: select boom", file=sys.stderr)
            print("               ^", file=sys.stderr, flush=True)
            sys.exit(3)
        elif "hang" in line:
            time.sleep(30)
        elif "noisy" in line:
            print("NOTICE:  " + "x" * 200000, file=sys.stderr, flush=True)
            print("done", flush=True)
        elif line:
            print("answer to " + line.rstrip(";"), flush=True)
""")


@pytest.fixture
def fake(tmp_path: Path) -> list[str]:
    script = tmp_path / "psql.py"
    script.write_text(FAKE)
    return [sys.executable, str(script)]


def test_one_process_answers_many_statements(fake):
    s = PsqlSession(fake, timeout=5)
    assert s.execute("select 1") == "answer to select 1"
    pid = s.proc.pid
    for i in range(50):
        assert s.execute(f"select {i};") == f"answer to select {i}"
    assert s.proc.pid == pid  # no new process per statement
    assert "-v" in s.argv and "ON_ERROR_STOP=1" in s.argv
    s.close()


def test_an_error_ends_the_session_saying_why_and_the_next_statement_starts_another(fake):
    s = PsqlSession(fake, timeout=5)
    s.execute("select 1")
    first = s.proc.pid
    with pytest.raises(RuntimeError, match="ERROR:  boom"):
        s.execute("select boom")
    assert s.proc is None
    assert s.execute("select 2") == "answer to select 2"
    assert s.proc.pid != first
    s.close()


def test_no_answer_in_time_kills_psql(fake):
    s = PsqlSession(fake, timeout=0.5)
    began = time.monotonic()
    with pytest.raises(RuntimeError, match=r"no answer within 0\.5 s"):
        s.execute("select hang")
    assert time.monotonic() - began < 3
    assert s.proc is None


def test_a_flood_of_notices_does_not_block_the_session(fake):
    """psql writes notices to stderr: unread, they would fill the pipe and stall it."""
    s = PsqlSession(fake, timeout=5)
    for _ in range(3):
        assert s.execute("select noisy") == "done"
    assert len(s.errors) <= 4000
    s.close()


def test_a_psql_that_is_gone_is_started_again(fake):
    s = PsqlSession(fake, timeout=5)
    s.execute("select 1")
    s.proc.kill()
    s.proc.wait()
    assert s.execute("select 3") == "answer to select 3"
    s.close()


def test_the_watcher_starts_no_psql_while_no_witness_runs(tmp_path, monkeypatch):
    """Without automatic failover no witness runs: no socket, no psql every second."""
    from drctl.node import watch

    cfg = watch.WatchConfig(name="backup1", nodes=(), state_file=str(tmp_path / "w.json"),
                            witness_port=5433, witness_socket_dir=str(tmp_path))
    w = watch.Watcher(cfg)
    started: list[list[str]] = []
    monkeypatch.setattr(watch.PsqlSession, "execute",
                        lambda self, sql: started.append(self.argv) or "")
    w.to_witness({"primary": None})
    assert w.witness is None and started == []
    (tmp_path / ".s.PGSQL.5433").touch()  # the witness is up
    w.to_witness({"primary": None})
    w.to_witness({"primary": None})
    assert len(started) == 2 and w.witness is not None
    assert started[0][:4] == ["runuser", "-u", "postgres", "--"] and "5433" in started[0]
