"""The set-workload checker of the fault campaign (issue #34), in the Jepsen sense.

Clients insert unique ids and record every attempt: when it began and ended, whether its
commit was acknowledged, and the timeline of the server that acknowledged it (the
insert returns it: `pg_walfile_name(pg_current_wal_lsn())` names the timeline being
written). After the campaign the final primary's ids are read. From those alone:

- **lost**: acknowledged, absent from the final primary. Zero in synchronous mode; in
  asynchronous mode each must fall inside a loss an operator consented to (a failover
  with `--allow-data-loss`, whose prompt stated the window): acknowledged at most that
  window before the consent, and not after it.
- **unexpected**: present, never attempted. Always zero.
- **recovered**: attempted, not acknowledged (an error, a timeout: the outcome was
  unknown to the client), present. Reported, not a failure: an ambiguous commit may land.
- **overlap**: two timelines acknowledging writes at the same time, the mark of two
  primaries: each timeline's acknowledgements span [first, last]; an older timeline
  that still acknowledges after a newer one began to is an overlap (its length in
  seconds). Always zero.

Pure functions of the records: no lab, no clock; the campaign gathers, this judges.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Attempt:
    """One insert as its client saw it. BEGAN/ENDED: the client's clock (one clock for
    every client of a campaign). TIMELINE: of the server that acknowledged it (None when
    not acknowledged)."""

    id: int
    began: float
    ended: float
    acked: bool
    timeline: int | None = None


@dataclass(frozen=True)
class Consent:
    """An operator's consent to lose writes: given AT (the client's clock), for the
    window of WINDOW_S seconds before it that the consent prompt named (the rules core's
    data-loss statement), by WHO (the operation)."""

    at: float
    window_s: float
    who: str = ""


@dataclass(frozen=True)
class Verdict:
    attempted: int
    acknowledged: int
    lost: tuple[int, ...]
    lost_with_consent: tuple[int, ...]
    unexpected: tuple[int, ...]
    recovered: tuple[int, ...]
    overlap_s: float
    overlaps: tuple[dict[str, Any], ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Nothing lost without consent, nothing unexpected, no two writers at once."""
        return not self.lost and not self.unexpected and self.overlap_s == 0

    def problems(self) -> list[str]:
        """Why not ok, one sentence each."""
        out = []
        if self.lost:
            out.append(f"{len(self.lost)} acknowledged writes lost without consent "
                       f"(ids {_sample(self.lost)})")
        if self.unexpected:
            out.append(f"{len(self.unexpected)} writes present that no client attempted "
                       f"(ids {_sample(self.unexpected)})")
        for o in self.overlaps:
            out.append(f"timelines {o['older']} and {o['newer']} both acknowledged writes "
                       f"for {o['seconds']:.3f} s")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "attempted": self.attempted,
                "acknowledged": self.acknowledged, "lost": len(self.lost),
                "lost_ids": list(self.lost), "lost_with_consent": len(self.lost_with_consent),
                "unexpected": len(self.unexpected), "unexpected_ids": list(self.unexpected),
                "recovered": len(self.recovered), "overlap_s": round(self.overlap_s, 3),
                "overlaps": list(self.overlaps), "problems": self.problems()}


def _sample(ids: Sequence[int], n: int = 5) -> str:
    shown = ", ".join(str(i) for i in ids[:n])
    return shown + (f" and {len(ids) - n} more" if len(ids) > n else "")


def consented(attempt: Attempt, consents: Iterable[Consent]) -> Consent | None:
    """The consent that covers losing ATTEMPT: acknowledged within a consent's window
    before it (never after: a write acknowledged after the consent was not at stake)."""
    return next((c for c in consents
                 if c.at - c.window_s <= attempt.ended <= c.at), None)


def overlaps(attempts: Iterable[Attempt]) -> list[dict[str, Any]]:
    """Each pair of timelines whose acknowledgements overlap in time, the older first."""
    spans: dict[int, tuple[float, float]] = {}
    for a in attempts:
        if a.acked and a.timeline is not None:
            first, last = spans.get(a.timeline, (a.ended, a.ended))
            spans[a.timeline] = (min(first, a.ended), max(last, a.ended))
    found = []
    lines = sorted(spans)
    for i, older in enumerate(lines):
        for newer in lines[i + 1:]:
            seconds = spans[older][1] - spans[newer][0]
            if seconds > 0:
                found.append({"older": older, "newer": newer, "seconds": round(seconds, 3),
                              "older_last_ack": spans[older][1],
                              "newer_first_ack": spans[newer][0]})
    return found


def check(attempts: Sequence[Attempt], present: Iterable[int],
          consents: Sequence[Consent] = ()) -> Verdict:
    """Judge a campaign's ATTEMPTS against the ids PRESENT on the final primary (read in
    the id range the clients used), with the operators' CONSENTS to losses."""
    have = set(present)
    tried = {a.id for a in attempts}
    lost: list[int] = []
    lost_ok: list[int] = []
    recovered: list[int] = []
    for a in sorted(attempts, key=lambda x: x.id):
        if a.acked and a.id not in have:
            (lost_ok if consented(a, consents) else lost).append(a.id)
        elif not a.acked and a.id in have:
            recovered.append(a.id)
    found = overlaps(attempts)
    return Verdict(attempted=len(attempts),
                   acknowledged=sum(1 for a in attempts if a.acked),
                   lost=tuple(lost), lost_with_consent=tuple(lost_ok),
                   unexpected=tuple(sorted(have - tried)), recovered=tuple(recovered),
                   overlap_s=max((o["seconds"] for o in found), default=0.0),
                   overlaps=tuple(found))


def timeline_of(walfile: str) -> int:
    """The timeline in a WAL file name (its first 8 hex digits), as the insert returns
    `pg_walfile_name(pg_current_wal_lsn())`."""
    if len(walfile) != 24:
        raise ValueError(f"not a WAL file name: {walfile!r}")
    return int(walfile[:8], 16)
