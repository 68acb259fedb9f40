"""The lab's writer, for the integration tests and the benches: drctl's own
(drctl.workload.SqlWriter, which the drill uses) writing unique ids through the lab's VIP.

It reconnects on any error (the VIP moves, the server restarts) and never counts a write
whose commit was not acknowledged. After an operation, `missing_on(host)` lists the
acknowledged ids the new primary does not have: the writes lost (the RPO).
"""

from __future__ import annotations

import functools

from drctl.workload import SqlWriter
from drctl_lab.hosts import psql, vip_connect

TABLE = "app.ha_writes"


def ensure_table() -> None:
    with vip_connect() as conn:
        conn.execute(f"create table if not exists {TABLE} (id bigint primary key, "
                     "at timestamptz default now())")
        conn.commit()


class Writer(SqlWriter):
    """SqlWriter through the lab's VIP, as a context manager: started on entry (the table
    created first), stopped on exit."""

    def __init__(self, start_id: int, interval: float = 0.01, as_advised: bool = False):
        """AS_ADVISED: connect with the client settings the README gives applications
        (drctl.drill.CLIENT_SETTINGS: a server gone silent is given up within seconds)."""
        connect = vip_connect
        if as_advised:
            from drctl.drill import CLIENT_SETTINGS

            connect = functools.partial(vip_connect, **CLIENT_SETTINGS)
        super().__init__(connect, table=TABLE, rate=1.0 / interval, start_id=start_id)

    def __enter__(self) -> Writer:
        self.prepare()
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def missing_on(self, host: str) -> list[int]:
        """The acknowledged ids HOST does not have (read there directly, not through the
        VIP)."""
        ids = {i for _, i in self.acked}
        if not ids:
            return []
        lo, hi = min(ids), max(ids)
        present = psql(host, f"select id from {TABLE} where id between {lo} and {hi}", db="app")
        have = {int(x) for x in present.split()}
        return sorted(ids - have)
