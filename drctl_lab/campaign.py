"""The fault campaign's clients (issue #34; docs/design-campaign.md): each inserts unique
ids through the cluster's VIP and records every attempt as the checker needs it
(drctl_lab.checker.Attempt), the timeline of the server that acknowledged it included.

The campaign's schedule of faults and its `make campaign` entry come next; the writer
and the checker are what they will be judged by.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from drctl_lab.checker import Attempt, timeline_of

# The insert returns the WAL file the server writes: its first 8 hex digits are the
# timeline, which every promotion changes (a second primary shows as a second timeline).
INSERT = "insert into {table} (id) values (%s) returning pg_walfile_name(pg_current_wal_lsn())"


class RecordingWriter:
    """One client: ids from FIRST_ID up, one at a time through CONNECT (a connection
    factory taking connect_timeout), every attempt recorded in `attempts`, successful or
    not; an id is never reused, so an attempt whose outcome is unknown stays its own.
    CLOCK: one clock for every client of a campaign."""

    def __init__(self, connect: Callable[..., Any], table: str, first_id: int,
                 clock: Callable[[], float] = time.monotonic, pause_s: float = 0.01,
                 connect_timeout: int = 2) -> None:
        self.connect = connect
        self.sql = INSERT.format(table=table)
        self.next_id = first_id
        self.clock = clock
        self.pause_s = pause_s
        self.connect_timeout = connect_timeout
        self.attempts: list[Attempt] = []
        self.errors: list[tuple[float, str]] = []
        self._conn: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="campaign-writer")

    def attempt(self) -> Attempt:
        """One insert, recorded: acknowledged once its commit returned, with the timeline
        the insert named; any failure closes the connection (the VIP may have moved)."""
        i = self.next_id
        self.next_id += 1
        began = self.clock()
        try:
            if self._conn is None:
                self._conn = self.connect(connect_timeout=self.connect_timeout)
            row = self._conn.execute(self.sql, (i,)).fetchone()
            self._conn.commit()
            done = Attempt(i, began, self.clock(), True, timeline_of(str(row[0])))
        except Exception as exc:  # the outcome is unknown: the checker sorts it out
            ended = self.clock()
            self.errors.append((ended, f"{type(exc).__name__}: {exc}"[:200]))
            self._close()
            done = Attempt(i, began, ended, False)
        self.attempts.append(done)
        return done

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a connection already broken
                conn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            done = self.attempt()
            self._stop.wait(self.pause_s if done.acked else 0.05)
        self._close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def id_range(self) -> tuple[int, int] | None:
        """The first and last id attempted (None before the first attempt)."""
        if not self.attempts:
            return None
        return self.attempts[0].id, self.attempts[-1].id
