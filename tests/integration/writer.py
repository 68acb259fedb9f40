"""A client that writes unique ids through the VIP and remembers every acknowledged commit.

It reconnects on any error (the VIP moves, the server restarts) and never counts a write
whose commit was not acknowledged. After an operation, `missing_on(host)` lists the
acknowledged ids the new primary does not have: the writes lost (the RPO).
"""

from __future__ import annotations

import itertools
import threading
import time

from tests.integration.conftest import psql, vip_connect

TABLE = "app.ha_writes"


def ensure_table() -> None:
    with vip_connect() as conn:
        conn.execute(f"create table if not exists {TABLE} (id bigint primary key, "
                     "at timestamptz default now())")
        conn.commit()


class Writer:
    def __init__(self, start_id: int, interval: float = 0.01):
        self.next_id = start_id
        self.interval = interval
        self.acked: list[tuple[float, int]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        ensure_table()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = vip_connect(connect_timeout=2)
                conn.execute(f"insert into {TABLE} (id) values (%s)", (self.next_id,))
                conn.commit()
                self.acked.append((time.monotonic(), self.next_id))
                self.next_id += 1
                time.sleep(self.interval)
            except Exception:
                self.errors += 1
                self.next_id += 1  # outcome unknown: never reuse the id
                try:
                    if conn is not None:
                        conn.close()
                except Exception:
                    pass
                conn = None
                time.sleep(0.05)

    def wait_for_acks(self, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.acked)
        while len(self.acked) < start + n:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {n} acknowledged writes within {timeout} s "
                                     f"({self.errors} errors)")
            time.sleep(0.05)

    def longest_gap(self) -> float:
        times = [t for t, _ in self.acked]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def missing_on(self, host: str) -> list[int]:
        ids = {i for _, i in self.acked}
        if not ids:
            return []
        lo, hi = min(ids), max(ids)
        present = psql(host, f"select id from {TABLE} where id between {lo} and {hi}", db="app")
        have = {int(x) for x in present.split()}
        return sorted(ids - have)
