"""The cluster's state as the rules see it, parsed once from JSON.

Two sources, both read at the moment of a decision:
- the node probe (`drctl-node probe` on each PostgreSQL node): role, timeline, how much
  WAL the node holds, its receiver, the primary's view of its standbys;
- the watchers (`drctl-node watch` on the backup host): the last position each saw a
  writable primary reach, when, with which synchronous standbys, and when they lost it.

Times a watcher reports are turned into ages on the watcher's own clock, so no rule
compares clocks of two machines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from drctl.rules import lsn


def app_name(host: str) -> str:
    """The application_name a node streams under (drctl's standby.conf sets it)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", host)


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _pos(value: Any) -> int | None:
    try:
        return lsn.parse(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Replica:
    """A standby as its primary sees it (pg_stat_replication)."""

    state: str | None
    sync_state: str | None
    lag_bytes: int | None
    ssl: bool | None


@dataclass(frozen=True)
class ArchiveAnswer:
    """What one repository's WAL archive said when asked for the newest timeline it holds
    (the highest-numbered timeline history file: every promotion archives one, drctl's,
    the failover manager's, or a rebuild's from the object store). timeline None: the
    archive did not answer (error says why) or holds no history (timeline 1 only, then 1).
    """

    repo: str
    timeline: int | None
    error: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ArchiveAnswer:
        tl = d.get("timeline")
        return cls(str(d.get("repo") or "?"), tl if isinstance(tl, int) else None,
                   str(d.get("error") or ""))


@dataclass(frozen=True)
class NodeFacts:
    host: str
    reachable: bool
    role: str  # primary | standby | down | unknown
    fenced: bool = False
    holds_vip: bool = False
    timeline: int | None = None
    position: int | None = None  # primary: current WAL; standby: max(received, replayed)
    receiver_status: str | None = None
    upstream: str | None = None
    last_msg_age_s: float | None = None
    prepared_xacts: int | None = None
    rewind_possible: bool | None = None
    replicas: Mapping[str, Replica] = field(default_factory=dict)
    error: str = ""
    # automatic failover on this node: "off" (never enabled here), "paused" (the pause
    # marker is there), "on" (enabled, not paused); None: not known (it did not answer)
    auto: str | None = None
    # the newest timeline each object store's archive holds, as this node asked it with
    # its probe (drctl.node.archive); empty: none configured, or not asked
    archives: tuple[ArchiveAnswer, ...] = ()

    @property
    def streaming(self) -> bool:
        return self.receiver_status == "streaming"

    @classmethod
    def from_probe(cls, host: str, data: Mapping[str, Any] | None, reachable: bool = True,
                   error: str = "") -> NodeFacts:
        if not reachable:
            return cls(host, False, "unknown", error=error)
        d = data or {}
        archives = tuple(ArchiveAnswer.from_json(a) for a in d.get("archives") or ()
                         if isinstance(a, Mapping))
        raw_auto = d.get("auto")
        auto = ("off" if not isinstance(raw_auto, Mapping) else
                "paused" if raw_auto.get("paused") else "on")
        pg = d.get("postgres")
        if not isinstance(pg, Mapping):
            return cls(host, True, "down", fenced=bool(d.get("fenced")),
                       holds_vip=bool(d.get("holds_vip")),
                       error=error or str(d.get("postgres_error") or ""), auto=auto,
                       archives=archives)
        standby = bool(pg.get("in_recovery"))
        raw_receiver = pg.get("receiver")
        receiver: Mapping[str, Any] = raw_receiver if isinstance(raw_receiver, Mapping) else {}
        if standby:
            held = [p for p in (_pos(pg.get("receive_lsn")), _pos(receiver.get("flushed_lsn")),
                                _pos(pg.get("lsn"))) if p is not None]
            position = max(held) if held else None
        else:
            position = _pos(pg.get("lsn"))
        replicas = {}
        for r in pg.get("replication") or []:
            replicas[str(r.get("application_name"))] = Replica(
                r.get("state"), r.get("sync_state"), _int(r.get("lag_bytes")), r.get("ssl"))
        checks = (pg.get("wal_log_hints"), pg.get("data_checksums"))
        return cls(
            host=host, reachable=True, role="standby" if standby else "primary",
            fenced=bool(d.get("fenced")), holds_vip=bool(d.get("holds_vip")),
            timeline=_int(pg.get("timeline")), position=position,
            receiver_status=receiver.get("status"), upstream=receiver.get("sender_host"),
            last_msg_age_s=_float(receiver.get("last_msg_age_s")),
            prepared_xacts=_int(pg.get("prepared_xacts")),
            rewind_possible=None if checks == (None, None) else any(bool(c) for c in checks),
            replicas=replicas, error=error, auto=auto, archives=archives)


@dataclass(frozen=True)
class Sighting:
    """What one watcher last saw of a writable primary."""

    watcher: str
    primary: str
    timeline: int
    position: int
    seen_at: str  # when, as the watcher's clock put it (UTC, for people)
    age_s: float  # how long ago, on the watcher's clock
    lost_after_s: float | None  # from that sighting to the watcher's first failure; None: not lost
    watcher_age_s: float  # since the watcher last tried (its liveness)
    synchronous_commit: str = ""
    synchronous_standby_names: str = ""
    sync_states: Mapping[str, str] = field(default_factory=dict)  # application_name -> state
    at: float | None = None  # the sighting's time, seconds since the epoch (watcher's clock)

    @property
    def still_seen(self) -> bool:
        return self.lost_after_s is None


@dataclass(frozen=True)
class WatcherFacts:
    watcher: str
    reachable: bool
    sighting: Sighting | None = None
    error: str = ""

    @classmethod
    def from_json(cls, watcher: str, data: Mapping[str, Any] | None, reachable: bool = True,
                  error: str = "") -> WatcherFacts:
        """Parse `drctl-node watch --show` output (the watcher's state file + its clock)."""
        if not reachable or not isinstance(data, Mapping):
            return cls(watcher, False, None, error or "no answer")
        now = _float(data.get("now"))
        checked = _float(data.get("checked_at"))
        if now is None or checked is None:
            return cls(watcher, True, None, "the watcher has recorded nothing yet")
        p = data.get("primary")
        if not isinstance(p, Mapping):
            return cls(watcher, True, None, "the watcher has never seen a writable primary")
        at = _float(p.get("at"))
        tl = _int(p.get("timeline"))
        pos = _pos(p.get("lsn"))
        if at is None or tl is None or pos is None:
            return cls(watcher, True, None, "the watcher's record of the primary is incomplete")
        lost = _float(p.get("lost_at"))
        return cls(watcher, True, Sighting(
            watcher=watcher, primary=str(p.get("host")), timeline=tl, position=pos,
            seen_at=datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S"),
            age_s=max(0.0, now - at), lost_after_s=None if lost is None else lost - at,
            watcher_age_s=max(0.0, now - checked),
            synchronous_commit=str(p.get("synchronous_commit") or ""),
            synchronous_standby_names=str(p.get("synchronous_standby_names") or ""),
            sync_states={str(k): str((v or {}).get("sync_state"))
                         for k, v in (p.get("standbys") or {}).items()}, at=at))


@dataclass(frozen=True)
class Liveness:
    """The primary probed at the moment of an automatic promotion: new TCP connections,
    one every few milliseconds, each asking PostgreSQL a question only a running server
    answers (an SSLRequest). A frozen host's kernel still completes the handshake, so a
    connection alone is not an answer."""

    host: str
    probed_s: float  # how long the probe ran
    attempts: int  # connections opened
    answered_after_s: float | None  # when the first answer came; None: none came
    error: str = ""  # why it could not be probed (then nothing is known)


@dataclass(frozen=True)
class ClusterFacts:
    nodes: tuple[NodeFacts, ...]
    watchers: tuple[WatcherFacts, ...] = ()
    # each node's and watcher's site (the inventory's drctl_location); empty: one site
    sites: Mapping[str, str] = field(default_factory=dict)
    # each site's VIP address (where its clients connect); empty: not known here
    site_vips: Mapping[str, str] = field(default_factory=dict)

    def site(self, host: str | None) -> str:
        return self.sites.get(host or "", "default")

    def node(self, host: str | None) -> NodeFacts | None:
        return next((n for n in self.nodes if n.host == host), None)

    @property
    def primaries(self) -> list[NodeFacts]:
        return [n for n in self.nodes if n.role == "primary"]

    def replica(self, host: str) -> Replica | None:
        """The one live primary's view of a standby."""
        if len(self.primaries) != 1:
            return None
        return self.primaries[0].replicas.get(app_name(host))
