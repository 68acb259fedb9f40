"""The fault campaign (issue #34; docs/design-campaign.md): `make campaign DURATION=S
SEED=N` runs `python -m drctl_lab.campaign` on the provisioned lab with automatic
failover armed.

Its clients (RecordingWriter) insert unique ids through the cluster's VIP and record
every attempt as the checker needs it (drctl_lab.checker.Attempt), the timeline of the
server that acknowledged it included. Meanwhile the seed's schedule of faults
(drctl_lab.faults) is applied and healed; an operator (this program) fails back a node
left fenced or stopped once its fault healed. At the end every fault is healed, the
cluster is given time to become healthy, the final primary's ids are read and the
checker judges: the JSON and an HTML timeline go to .drctl/campaigns/, and the exit code
is 0 only when nothing was lost without consent, nothing unexpected appeared, no two
timelines acknowledged writes at once and the cluster came back healthy.
"""

from __future__ import annotations

import contextlib
import itertools
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from drctl_lab.checker import Attempt, Consent, Verdict, timeline_of
from drctl_lab.faults import Fault, by_kind

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


# ------------------------------------------------------------------ judging helpers


def consents_from_events(events: Iterable[Mapping[str, Any]]) -> list[Consent]:
    """The standing consents automatic promotions used (asynchronous replication with
    drctl_auto_accept_async_loss): each validation that passed and named a loss window,
    followed by a promotion on the same host. The consent covers commits acknowledged
    from the watcher's last sighting for the window's length (the rules core's
    statement), no more."""
    out: list[Consent] = []
    pending: dict[str, Mapping[str, Any]] = {}
    for e in events:
        host = str(e.get("host"))
        if e.get("step") == "auto-validate":
            if e.get("result") == "passed" and isinstance(e.get("loss_window"), Mapping):
                pending[host] = e["loss_window"]
            else:
                pending.pop(host, None)
        elif e.get("step") == "promoted" and host in pending:
            w = pending.pop(host)
            out.append(Consent(at=float(w["from"]) + float(w["seconds"]),
                               window_s=float(w["seconds"]),
                               who=f"automatic promotion of {host} (standing consent)"))
    return out


def gaps(attempts: Sequence[Attempt], min_s: float = 0.5) -> list[tuple[float, float]]:
    """The stretches without an acknowledged write longer than MIN_S: (last ack before,
    next ack after), on the clients' clock."""
    acks = sorted(a.ended for a in attempts if a.acked)
    return [(a, b) for a, b in itertools.pairwise(acks) if b - a > min_s]


def outage_per_fault(faults: Sequence[Mapping[str, Any]], attempts: Sequence[Attempt]
                     ) -> list[float]:
    """For each applied fault (its 'applied' and 'healed' times on the clients' clock),
    the longest stretch without an acknowledged write that began while it was in force
    (or within 5 s of its end); 0 when writes went on."""
    found = gaps(attempts)
    out = []
    for f in faults:
        start, end = float(f["applied"]), float(f.get("healed") or f["applied"]) + 5.0
        out.append(round(max((b - a for a, b in found if start - 0.5 <= a <= end),
                             default=0.0), 3))
    return out


def spread(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"median": 0.0, "max": 0.0}
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def summary(seed: int, duration_s: float, schedule: Sequence[Fault],
            applied: Sequence[Mapping[str, Any]], verdict: Verdict,
            attempts: Sequence[Attempt], consents: Sequence[Consent],
            healthy: bool, final_primary: str | None, t0: float) -> dict[str, Any]:
    """The campaign's JSON: the verdict, the seed and schedule, and per fault kind how
    many were applied and the write outage they caused (median and maximum)."""
    outage = outage_per_fault(applied, attempts)
    per_kind: dict[str, list[float]] = {}
    for f, o in zip(applied, outage, strict=True):
        per_kind.setdefault(str(f["kind"]), []).append(o)
    acked_by_timeline: dict[str, int] = {}
    for a in attempts:
        if a.acked:
            key = str(a.timeline)
            acked_by_timeline[key] = acked_by_timeline.get(key, 0) + 1
    return {
        **verdict.as_dict(), "ok": verdict.ok and healthy, "healthy_at_end": healthy,
        "final_primary": final_primary, "seed": seed, "duration_s": duration_s,
        "faults_by_kind": by_kind(schedule),
        "outage_s_by_kind": {k: spread(v) for k, v in sorted(per_kind.items())},
        "acknowledged_by_timeline": acked_by_timeline,
        "consents": [{"at": round(c.at - t0, 3), "window_s": c.window_s, "who": c.who}
                     for c in consents],
        "schedule": [f.as_dict() for f in schedule],
        "applied": [{**f, "applied": round(float(f["applied"]) - t0, 3),
                     "healed": (round(float(f["healed"]) - t0, 3) if f.get("healed")
                                else None), "outage_s": o}
                    for f, o in zip(applied, outage, strict=True)],
        "acks_per_second": acks_per_second(attempts, t0),
    }


def acks_per_second(attempts: Sequence[Attempt], t0: float) -> dict[str, list[int]]:
    """Acknowledged writes per second since T0, one series per timeline (the timeline
    drawing's rows)."""
    end = max((a.ended for a in attempts), default=t0)
    n = int(end - t0) + 1
    series: dict[str, list[int]] = {}
    for a in attempts:
        if a.acked:
            row = series.setdefault(str(a.timeline), [0] * n)
            row[min(n - 1, max(0, int(a.ended - t0)))] += 1
    return series


def made_since(copies: Iterable[Mapping[str, Any]], started: float) -> list[dict[str, Any]]:
    """The kept copies of diverged data (`drctl diverged list`'s `copies`) that failback
    set aside at or after STARTED (seconds since the epoch): the campaign's own, which it
    records and then drops (an hour of faults would fill the lab's disks). A copy whose
    time is unknown is not the campaign's to drop."""
    out = []
    for c in copies:
        try:
            at = datetime.fromisoformat(str(c.get("at"))).timestamp()
        except ValueError:
            continue
        if at >= started:
            out.append({k: c.get(k) for k in ("host", "name", "at", "bytes", "commits",
                                               "first_commit_at", "last_commit_at",
                                               "sentence")})
    return out
