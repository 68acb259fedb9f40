"""Every HA decision drctl takes, as functions of the facts and the policy.

- assess_data_loss: may this standby be promoted without losing acknowledged work?
- choose_candidate: which standby a failover promotes when none is named.
- followers: which of the other standbys follow the new primary, and which are left behind.
- failover, switchover, failback, auto_promotion: the gates of each operation.
- set_aside: whether failback keeps a copy of a returning node's diverged data.
- startup: whether a node may start PostgreSQL (fence-check, before every start).
- stand_in: whether drctl's guard holds a standby's election where repmgrd cannot start.

Each returns a verdict with its reasons in words; callers act on it and print it.
Unknown is never taken for zero: a candidate that cannot be compared with anything
another host saw the primary write is refused unless the operator accepts the loss.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from drctl.rules import lsn
from drctl.rules.facts import (
    ArchiveAnswer,
    ClusterFacts,
    Liveness,
    NodeFacts,
    Sighting,
    WatcherFacts,
    app_name,
)
from drctl.rules.policy import Policy

SYNC_COMMIT_WAITS = ("on", "remote_write", "remote_apply")


@dataclass(frozen=True)
class Gate:
    """One condition of an operation: its name, whether it holds, and why."""

    name: str
    ok: bool
    detail: str
    overridable: bool = False  # by --allow-data-loss (and only that)

    def as_dict(self) -> dict[str, Any]:
        """A plan's gate as `--plan --format json` prints it."""
        return {"gate": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class DataLoss:
    verdict: Literal["none", "within-limit", "loss", "unknown"]
    sentence: str
    missing_bytes: int | None = None  # a lower bound; None when it cannot be measured
    evidence: tuple[str, ...] = ()
    # asynchronous replication: commits acknowledged in this many seconds before the
    # watcher lost the primary may be on no other host (None: no such window was stated)
    window_s: float | None = None
    # where that window begins: the watcher's last sighting, seconds since the epoch
    window_from: float | None = None

    @property
    def safe(self) -> bool:
        return self.verdict in ("none", "within-limit")


@dataclass(frozen=True)
class Decision:
    operation: str
    target: str | None
    gates: tuple[Gate, ...]
    why_target: str = ""
    data_loss: DataLoss | None = None
    data_loss_accepted: bool = False
    nothing_to_do: str = ""
    notes: tuple[str, ...] = ()
    # the other standbys that follow the new primary, and those left behind with why
    followers: tuple[str, ...] = ()
    left_behind: tuple[tuple[str, str], ...] = ()

    @property
    def proceed(self) -> bool:
        return all(g.ok for g in self.gates)

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if not g.ok]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["proceed"] = self.proceed
        return d


# ------------------------------------------------------------------ data loss


def quorum_needs_every_name(names: str, primary: str = "") -> bool:
    """synchronous_standby_names 'ANY k (a, b, ...)' where k is at least the number of
    names that can confirm a commit - every listed node but the primary itself (drctl
    lists every node, so that the setting does not change with the roles): then every
    such standby confirms every commit."""
    m = re.fullmatch(r"\s*ANY\s+(\d+)\s*\((.*)\)\s*", names, re.IGNORECASE)
    if not m:
        return False
    listed = [n.strip().strip('"') for n in m.group(2).split(",") if n.strip()]
    confirmers = [n for n in listed if n != app_name(primary)] if primary else listed
    return "*" not in listed and bool(confirmers) and int(m.group(1)) >= len(confirmers)


def commits_wait_for(sync_state: str | None, synchronous_commit: str,
                     synchronous_standby_names: str, primary: str) -> bool:
    """Every commit the primary acknowledges waits for the standby that its
    pg_stat_replication lists with SYNC_STATE, under the primary's two settings."""
    if synchronous_commit not in SYNC_COMMIT_WAITS:
        return False
    return sync_state == "sync" or (sync_state == "quorum" and quorum_needs_every_name(
        synchronous_standby_names, primary))


def holds_every_commit(s: Sighting, host: str) -> bool:
    """At that sighting, every commit the primary acknowledged waited for `host`."""
    return commits_wait_for(s.sync_states.get(app_name(host)), s.synchronous_commit,
                            s.synchronous_standby_names, s.primary)


def _covers_the_end(s: Sighting, policy: Policy, cluster: ClusterFacts) -> bool:
    """The watcher was watching when the primary went: alive now, it lost the primary
    within watch_gap_s of its last sighting (no gap in which more could be written), and
    it sits in the primary's own site. A watcher across the WAN cannot tell the loss of
    the primary's site from the loss of the link to it: behind a cut link the primary may
    still be acknowledging commits, so that watcher's "lost" proves nothing about the end
    (its sightings still prove what was written up to them)."""
    return (s.watcher_age_s <= policy.watch_max_age_s and s.lost_after_s is not None
            and s.lost_after_s <= policy.watch_gap_s
            and cluster.site(s.watcher) == cluster.site(s.primary))


def assess_data_loss(cluster: ClusterFacts, candidate: NodeFacts, policy: Policy) -> DataLoss:
    """Does `candidate` hold every acknowledged commit? From what the watchers saw the
    primary write and what the other standbys hold, compared with what it holds now."""
    name = candidate.host
    if candidate.position is None or candidate.timeline is None:
        return DataLoss("unknown", f"{name} does not report how much WAL it holds "
                        f"({candidate.error or 'no position'}): unknown is not zero")
    sightings = [w.sighting for w in cluster.watchers
                 if w.sighting and w.sighting.primary != candidate.host]
    evidence: list[str] = []
    newer = [s for s in sightings if s.timeline > candidate.timeline]
    if newer:
        s = max(newer, key=lambda x: x.timeline)
        return DataLoss("loss", f"{name} follows timeline {candidate.timeline}, but "
                        f"{s.watcher} saw {s.primary} writing on timeline {s.timeline} at "
                        f"{s.seen_at}: {name} lacks everything written on timeline "
                        f"{s.timeline}", None, (f"{s.watcher}: {s.primary} timeline "
                                               f"{s.timeline} at {s.seen_at}",))
    same = [s for s in sightings if s.timeline == candidate.timeline]
    # (position, where it was seen, when) of every copy of the primary's WAL we know of
    known: list[tuple[int, str, str]] = [
        (s.position, f"seen by {s.watcher}", f"written up to {s.seen_at}") for s in same]
    for other in cluster.nodes:
        if (other.host != name and other.role == "standby" and other.position is not None
                and other.timeline == candidate.timeline):
            known.append((other.position, f"held by {other.host}", "received"))
    for s in same:
        evidence.append(f"{s.watcher} saw {s.primary} at {lsn.fmt(s.position)} "
                        f"({s.seen_at}, {s.age_s:.0f} s ago"
                        + (f", lost {s.lost_after_s:.1f} s later" if s.lost_after_s is not None
                           else ", still answering") + ")")
    evidence.append(f"{name} holds {lsn.fmt(candidate.position)} on timeline "
                    f"{candidate.timeline}")
    covering = [s for s in same if _covers_the_end(s, policy, cluster)]
    sync = next((s for s in covering if holds_every_commit(s, name)), None)
    if sync:
        return DataLoss("none", f"{name} was the synchronous standby of {sync.primary} when "
                        f"{sync.watcher} last saw it ({sync.seen_at}): every acknowledged "
                        "commit is on it", 0, tuple(evidence))
    ahead = max(known, default=None)
    missing = (ahead[0] - candidate.position) if ahead else 0
    if ahead and missing > policy.max_loss_bytes:
        return DataLoss("loss", f"{name} lacks at least {lsn.size(missing)} of WAL "
                        f"{ahead[2]} ({ahead[1]})", missing, tuple(evidence))
    if not covering:
        if not cluster.watchers:
            why = "no watcher observes the primary (a backup host runs one)"
        elif not same:
            why = "; ".join(w.error or (f"{w.watcher} saw no primary on timeline "
                                        f"{candidate.timeline}") for w in cluster.watchers)
        else:
            why = "; ".join(_why_not_covering(s, policy, cluster) for s in same)
        return DataLoss("unknown", f"cannot establish what {name} is missing: {why}; "
                        "unknown is not zero", None, tuple(evidence))
    best = max(covering, key=lambda s: s.position)
    # What no rule can see: commits acknowledged between the watcher's last sighting and
    # the primary's end that never reached the candidate. Asynchronous replication leaves
    # that window open; say so rather than call it zero.
    window = (f"; asynchronous replication: a commit acknowledged in the last "
              f"{best.lost_after_s or 0:.1f} s before {best.watcher} lost {best.primary} "
              f"is on no other host unless {name} has it")
    if ahead is None or missing <= 0:
        return DataLoss("none", f"{name} holds all the WAL {best.watcher} saw "
                        f"{best.primary} write (up to {best.seen_at}){window}", 0,
                        tuple(evidence), best.lost_after_s or 0.0, best.at)
    return DataLoss("within-limit", f"{name} lacks {lsn.size(missing)} of WAL {ahead[2]} "
                    f"({ahead[1]}), within drctl_max_loss_bytes "
                    f"({lsn.size(policy.max_loss_bytes)}): commits in it are lost{window}",
                    missing, tuple(evidence), best.lost_after_s or 0.0, best.at)


def _why_not_covering(s: Sighting, policy: Policy, cluster: ClusterFacts) -> str:
    if cluster.site(s.watcher) != cluster.site(s.primary):
        return (f"{s.watcher} is in site {cluster.site(s.watcher)}, not in {s.primary}'s "
                f"site {cluster.site(s.primary)}: it cannot tell the loss of that site from "
                "the loss of the link to it")
    if s.watcher_age_s > policy.watch_max_age_s:
        return (f"{s.watcher}'s watcher has not checked for {s.watcher_age_s:.0f} s "
                f"(limit {policy.watch_max_age_s:g} s)")
    if s.lost_after_s is None:
        return f"{s.watcher} still sees {s.primary} writing"
    return (f"{s.watcher} lost {s.primary} {s.lost_after_s:.0f} s after it last saw it "
            f"(limit {policy.watch_gap_s:g} s): it was not watching when {s.primary} went")


# ------------------------------------------------------------------ candidate choice


def lost_primary(cluster: ClusterFacts) -> str | None:
    """The primary the watchers saw last (the newest timeline, then the latest sighting)."""
    seen = [w.sighting for w in cluster.watchers if w.sighting]
    if not seen:
        return None
    return max(seen, key=lambda s: (s.timeline, -s.age_s)).primary


def choose_candidate(cluster: ClusterFacts, site: str | None = None
                     ) -> tuple[str | None, str]:
    """The standby a failover promotes when none is named: the one holding the most WAL
    on the newest timeline (inventory order breaks ties), among the standbys of the site
    the lost primary was in. A standby in another site is promoted only when named: that
    moves the primary to another site, which its clients must follow (DNS, connection
    strings), so it is an operator's choice, never a default: SITE names it (a site
    failover), and the candidate is then the best standby of that site."""
    eligible = [n for n in cluster.nodes
                if n.reachable and n.role == "standby" and not n.fenced]
    if site is not None:
        eligible = [n for n in eligible if cluster.site(n.host) == site]
        if not eligible:
            return None, f"no reachable, unfenced standby in site {site}"
    if not eligible:
        return None, "no reachable, unfenced standby"
    old = lost_primary(cluster)
    sites = {cluster.site(n.host) for n in cluster.nodes}
    if site is None and old and len(sites) > 1:
        home = cluster.site(old)
        local = [n for n in eligible if cluster.site(n.host) == home]
        if not local:
            remote = ", ".join(n.host for n in eligible)
            return None, (f"no standby of site {home}, where {old} was the primary, answers; "
                          f"promoting one in another site ({remote}) moves the primary "
                          f"there: name it (`drctl failover --to {eligible[0].host}`) after "
                          "reading the README's site failover section")
        eligible = local
    ranked = sorted(enumerate(eligible),
                    key=lambda i: (-(i[1].timeline or 0), -(i[1].position or -1), i[0]))
    best = ranked[0][1]
    where = f" of site {site}" if site is not None else ""
    if len(eligible) == 1:
        return best.host, f"{best.host} is the only reachable, unfenced standby{where}"
    rest = ", ".join(f"{n.host} {lsn.fmt(n.position)}" for _, n in ranked[1:])
    return best.host, (f"{best.host} holds the most WAL{where} ({lsn.fmt(best.position)} "
                       f"on timeline {best.timeline}; {rest})")


def followers(cluster: ClusterFacts, target: str) -> tuple[tuple[str, ...],
                                                         tuple[tuple[str, str], ...]]:
    """After TARGET is promoted: the standbys that follow it (re-pointed at once), and the
    nodes left behind, each with why. A standby holding WAL the new primary lacks cannot
    follow it without a rewind (PostgreSQL refuses the new timeline; nothing is lost by
    trying, but drctl says so instead); one that does not answer follows nobody until it
    rejoins. Nodes that answer but not as standbys are the failover's to fence, and rejoin
    by failback like any fenced node."""
    t = cluster.node(target)
    follow: list[str] = []
    behind: list[tuple[str, str]] = []
    for n in cluster.nodes:
        if n.host == target or n.fenced or not n.reachable or n.role != "standby":
            continue
        if (t and t.position is not None and n.position is not None
              and n.timeline == t.timeline and n.position > t.position):
            behind.append((n.host, f"{n.host} holds WAL {target} lacks "
                           f"({lsn.fmt(n.position)} > {lsn.fmt(t.position)}): it cannot "
                           f"follow {target} without a rewind (`drctl failback --node {n.host}`)"))
        else:
            follow.append(n.host)
    return tuple(follow), tuple(behind)


# ------------------------------------------------------------------ operations


def _target_gate(cluster: ClusterFacts, target: str | None) -> Gate | None:
    if target and cluster.node(target) is None:
        names = ", ".join(n.host for n in cluster.nodes)
        return Gate("target is a PostgreSQL node", False,
                    f"'{target}' is not a PostgreSQL node of the inventory ({names})")
    return None


def primary_still_seen(cluster: ClusterFacts, target: str | None, policy: Policy,
                       then: str) -> list[Gate]:
    """A failed gate for each watcher that still sees a primary other than TARGET, with a
    recent sighting from a live watcher: that primary is not gone, whatever a standby
    lost (a cut link, a blip, a lossy network). THEN says what to do instead."""
    return [Gate("the primary is gone for the watchers too", False,
                 f"{s.primary} still answers {s.watcher} ({s.age_s:.1f} s ago, at "
                 f"{lsn.fmt(s.position)}): it is not gone; {then}")
            for s in (w.sighting for w in cluster.watchers)
            if s and s.still_seen and s.primary != target
            and s.watcher_age_s <= policy.watch_max_age_s and s.age_s <= policy.watch_gap_s]


def site_move(cluster: ClusterFacts, target: str, old: str | None = None,
              back: str = "rejoin as standbys with `drctl failback` when the site returns"
              ) -> str:
    """The sentence a plan carries when it moves the primary from OLD (by default the
    primary the watchers lost) to another site: what the operator must also do outside
    drctl. Empty when it stays."""
    old = old or lost_primary(cluster)
    if not old or cluster.site(old) == cluster.site(target):
        return ""
    a, b = cluster.site(old), cluster.site(target)
    vip = cluster.site_vips.get(b)
    return (f"the primary moves from site {a} to site {b}: clients must reach {b}'s VIP"
            f"{f' ({vip})' if vip else ''} from now on (DNS names, connection strings, the "
            f"applications' settings: drctl changes none of them); {a}'s VIP stays with "
            f"nobody, and {a}'s nodes {back}")


def failover(cluster: ClusterFacts, policy: Policy, target: str | None = None,
             allow_data_loss: bool = False, site: str | None = None) -> Decision:
    bad = _target_gate(cluster, target)
    known = {cluster.site(n.host) for n in cluster.nodes}
    if not bad and site is not None and site not in known:
        bad = Gate("site is one of the cluster's", False,
                   f"'{site}' is not a site of the inventory ({', '.join(sorted(known))})")
    if not bad and site is not None and target and cluster.site(target) != site:
        bad = Gate("target is in the named site", False,
                   f"{target} is in site {cluster.site(target)}, not {site}")
    if bad:
        return Decision("failover", target, (bad,))
    live = cluster.primaries
    why = f"{target} was named" if target else ""
    if not target:
        target, why = choose_candidate(cluster, site)
        if target is None and len(live) == 1:
            target, why = live[0].host, f"{live[0].host} is already the only primary"
    t = cluster.node(target)
    if t and [p.host for p in live] == [t.host] and t.holds_vip:
        return Decision("failover", target, (), why,
                        nothing_to_do=f"{target} is already the primary and holds the VIP")
    others = [p.host for p in live if p.host != target]
    down = [n.host for n in cluster.nodes if not n.reachable or n.role == "down"]
    gates = [
        Gate("target answers and is a standby", bool(t and t.role == "standby"),
             f"{target}: {t.role}" + (f" ({t.error})" if t.error else "") if t
             else f"none chosen: {why}"),
        Gate("target not fenced", bool(t and not t.fenced),
             f"{target} is fenced" if t and t.fenced else f"{target}"),
        Gate("no live primary elsewhere", not others,
             f"{', '.join(others)} still accepts writes: use `drctl switchover`" if others
             else f"primary down or unreachable ({', '.join(down) or 'none answers'})"),
    ]
    gates += primary_still_seen(cluster, target, policy,
                                "restore the network or use `drctl switchover`")
    gates.append(no_unseen_promotion(cluster, archives_asked(cluster)))
    loss = None
    accepted = False
    if t and t.role == "standby":
        loss = assess_data_loss(cluster, t, policy)
        ok = loss.safe
        detail = loss.sentence
        if not ok and allow_data_loss:
            ok = accepted = True
            detail += "; accepted with --allow-data-loss: those commits are lost"
        elif not ok:
            detail += "; --allow-data-loss promotes anyway"
        gates.append(Gate("no acknowledged commit lost", ok, detail, overridable=True))
    follow, behind = followers(cluster, t.host) if t else ((), ())
    notes = tuple(f"{h} does not answer: it is recorded as unfenced and fences itself "
                  f"when it returns (a standby rejoins with `drctl failback {h}`)"
                  for h in down if h != target)
    notes += tuple(f"left behind: {why}" for _, why in behind)
    move = site_move(cluster, t.host) if t else ""
    if move:
        notes += (move,)
    if follow:
        notes += (f"{', '.join(follow)} will follow {target} (re-pointed after the "
                  "promotion)",)
    return Decision("failover", target, tuple(gates), why, loss, accepted, notes=notes,
                    followers=follow, left_behind=behind)


def switchover(cluster: ClusterFacts, policy: Policy, target: str | None = None) -> Decision:
    bad = _target_gate(cluster, target)
    if bad:
        return Decision("switchover", target, (bad,))
    live = cluster.primaries
    primary = live[0] if len(live) == 1 else None
    why = f"{target} was named" if target else ""
    if not target:
        streaming = [n for n in cluster.nodes if n.role == "standby" and not n.fenced]
        target = streaming[0].host if streaming else None
        why = f"{target} is the first standby" if target else "no standby"
    t = cluster.node(target)
    one = Gate("one primary", primary is not None,
               f"primary: {primary.host}" if primary else
               f"{len(live)} writable nodes ({', '.join(p.host for p in live) or 'none'})")
    if primary and primary.host == target:
        return Decision("switchover", target, (one,), why,
                        nothing_to_do=f"{target} is already the primary")
    if t is None:
        return Decision("switchover", None, (one, Gate(
            "a standby to switch over to", False,
            "no unfenced standby answers: there is nothing to hand over to")), why)
    r = cluster.replica(target) if target else None
    lag = r.lag_bytes if r else None
    gates = (
        one,
        Gate("target is a standby", bool(t and t.role == "standby"),
             f"{target}: {t.role if t else 'none'}"),
        Gate("target streams", bool(t and t.streaming and r and r.state == "streaming"),
             f"{target} streaming: {bool(t and t.streaming)}"),
        Gate("lag", lag is not None and lag <= policy.max_lag_bytes,
             f"{'unknown' if lag is None else lsn.size(lag)} (limit "
             f"{lsn.size(policy.max_lag_bytes)})"),
        Gate("no prepared transactions", bool(primary and not primary.prepared_xacts),
             f"{primary.prepared_xacts} on {primary.host}" if primary
             else "no single primary to ask"),
        Gate("target not fenced", bool(t and not t.fenced), f"{target}"),
    )
    move = site_move(cluster, t.host, primary.host, "follow the new primary as standbys"
                     ) if t and primary else ""
    return Decision("switchover", target, gates, why, notes=(move,) if move else ())


def failback(cluster: ClusterFacts, node: str | None = None) -> Decision:
    bad = _target_gate(cluster, node)
    if bad:
        return Decision("failback", node, (bad,))
    live = cluster.primaries
    primary = live[0] if len(live) == 1 else None
    if not node:
        waiting = [n.host for n in cluster.nodes
                   if n is not primary and (n.fenced or n.role == "down")]
        node = waiting[0] if waiting else None
    n = cluster.node(node)
    one = Gate("one primary", primary is not None,
               f"primary: {primary.host}" if primary else
               f"{len(live)} writable nodes ({', '.join(p.host for p in live) or 'none'})")
    if n and n.role == "standby" and n.streaming and not n.fenced and primary:
        return Decision("failback", node, (one,),
                        nothing_to_do=f"{node} already streams from {primary.host}")
    if n is None:
        return Decision("failback", None, (one, Gate(
            "a node to rejoin", False, "no node is fenced or stopped: name one with "
                                       "`drctl failback --node HOST`")))
    gates = (
        one,
        Gate("node answers", n.reachable,
             f"{node}: {'answers' if n.reachable else 'does not answer'}"),
        Gate("node is not the primary", n.role != "primary", f"{node}: {n.role}"),
        Gate("rewind possible", bool(primary and primary.rewind_possible),
             "wal_log_hints or data checksums on the primary: "
             f"{primary.rewind_possible if primary else '?'}"),
    )
    return Decision("failback", node, gates)


def rebuild(cluster: ClusterFacts, target: str, allow_data_loss: bool = False,
            despite_primary: str | None = None) -> Decision:
    """A new primary built on TARGET (a host outside the cluster) from an object store's
    backups and WAL alone: the last resort when no site of the cluster survives.

    It must not make a second primary: a node that answers as one refuses it
    (DESPITE_PRIMARY names the one the operator was told of and consents to leave
    running). A node whose role cannot be established (SSH or its probe fails) is counted
    as gone, and the consent's sentence names it with why: a partition looks the same.
    What the store lacks is never known here (asynchronous archiving: the segment being
    written when the primary went is in no repository), so the rebuild always needs the
    operator's consent, stated with the newest write a watcher saw."""
    live = [n.host for n in cluster.primaries]
    others = [h for h in live if h != despite_primary]
    gone = [n for n in cluster.nodes if not n.reachable]
    gates = [
        Gate("target is outside the cluster", cluster.node(target) is None,
             f"{target} is a node of the cluster: a rebuild makes a new primary elsewhere"
             if cluster.node(target) else f"{target} is not a node of the cluster"),
        Gate("no primary answers", not others,
             f"{', '.join(others)} still accepts writes: a rebuild would make a second "
             "primary (fail over or switch over instead; --despite-primary HOST leaves one "
             "running)" if others else
             f"{despite_primary} accepts writes and is left running, as the operator said"
             if despite_primary in live else
             f"no node accepts writes ({len(gone)} of {len(cluster.nodes)} do not answer)"),
    ]
    if despite_primary and despite_primary not in live:
        gates.append(Gate("the primary left running is one", False,
                          f"{despite_primary} does not answer as a primary"))
    seen = [w.sighting for w in cluster.watchers if w.sighting]
    newest = max(seen, key=lambda s: (s.timeline, s.position)) if seen else None
    evidence = tuple(f"{n.host}: {n.error or 'no answer'}" for n in gone)
    if newest:
        evidence += (f"{newest.watcher} saw {newest.primary} write up to "
                     f"{lsn.fmt(newest.position)} on timeline {newest.timeline} at "
                     f"{newest.seen_at}",)
    sentence = ("the object store holds the WAL archived before the sites were lost, not "
                "the segment being written then: commits acknowledged after its last "
                "archived segment are lost, and how many is not known here"
                + (f" ({evidence[-1]})" if newest else
                   " (no watcher answers to say when the primary last wrote)"))
    if gone:
        sentence += (f"; {', '.join(n.host for n in gone)} do not answer, which a partition "
                     "looks like too: a primary among them would go on taking writes")
    detail = sentence + ("; accepted with --allow-data-loss" if allow_data_loss
                         else "; --allow-data-loss rebuilds anyway")
    gates.append(Gate("no acknowledged commit lost", allow_data_loss, detail,
                      overridable=True))
    return Decision("rebuild", target, tuple(gates), f"{target} was named",
                    DataLoss("unknown", sentence, None, evidence), allow_data_loss)


@dataclass(frozen=True)
class SetAside:
    """What failback does with a returning node's data before pg_rewind changes it."""

    action: Literal["keep", "wal-only", "refuse"]
    sentence: str


SET_ASIDE_HEADROOM = 256 << 20  # left free after a copy, for the server and its logs


def set_aside(host: str, commits: int | None, commit_span: str, data_bytes: int,
              wal_bytes: int, free_bytes: int, discard: bool) -> SetAside:
    """Keep a full copy of the returning node's data only when it holds commits past the
    fork point (or when that cannot be told: unknown is not zero), and only when the copy
    fits; otherwise refuse and name the way out. pg_rewind's own need, the WAL it may have
    to read back (crash recovery recycles segments), is copied in every case.

    commits: commit records past the fork point (None when they could not be read);
    commit_span: their time range in words; discard: the operator's consent to lose them.
    """
    what = ("commits that could not be counted" if commits is None else
            f"{commits} commit{'s' if commits != 1 else ''}{commit_span}")
    if commits == 0 or discard:
        if wal_bytes + SET_ASIDE_HEADROOM > free_bytes:
            return SetAside("refuse", (
                f"{host}: {lsn.binary_size(free_bytes)} free, too little even for a copy "
                f"of pg_wal ({lsn.binary_size(wal_bytes)}) that pg_rewind may need. Nothing "
                "was changed: free space on that file system, then run the failback again."))
        if commits == 0:
            return SetAside("wal-only", (
                f"{host} wrote no commit past the fork point: nothing to keep (only its WAL "
                "is copied for pg_rewind, and removed after)"))
        return SetAside("wal-only", (
            f"{host}'s {what} past the fork point are discarded, as the operator asked "
            "(--discard-diverged)"))
    if data_bytes + SET_ASIDE_HEADROOM > free_bytes:
        return SetAside("refuse", (
            f"{host} holds {what} past the fork point, which drctl keeps in a copy of its "
            f"data directory: that needs {lsn.binary_size(data_bytes)} and "
            f"{lsn.binary_size(free_bytes)} is free. "
            "Nothing was changed. Free space on that file system (or drop older copies: "
            "`drctl status` lists them), or run the failback again with --discard-diverged "
            f"to lose those {what}."))
    return SetAside("keep", (
        f"{host} holds {what} past the fork point: its data directory is copied aside "
        f"({lsn.binary_size(data_bytes)}) before pg_rewind"))


@dataclass(frozen=True)
class LocalAuto:
    """What a standby knows of itself when repmgrd asks it to take over."""

    fenced: bool
    paused: bool
    location: str
    primary_location: str
    witness_error: str = ""  # empty: the witness answered (quorum)


def _local_gates(local: LocalAuto) -> list[Gate]:
    """What a standby must be for automatic failover, whatever the data says."""
    return [
        Gate("not fenced", not local.fenced, "this node is fenced" if local.fenced else "ok"),
        Gate("not paused", not local.paused,
             "automatic failover is paused" if local.paused else "ok"),
        Gate("same location as the primary", local.location == local.primary_location,
             f"this node is in location '{local.location}', the primary's is "
             f"'{local.primary_location}': only `drctl failover` promotes it"
             if local.location != local.primary_location else local.location),
        Gate("quorum (the witness answers)", not local.witness_error,
             f"no quorum: the witness does not answer ({local.witness_error})"
             if local.witness_error else "ok"),
    ]


def auto_pause(cluster: ClusterFacts) -> tuple[bool, str]:
    """Must an operation pause automatic failover before it changes roles? Yes where a
    node that answered has it enabled and not paused (repmgrd there could react to what
    the operation does), and yes when no node answered (unknown is not off: the pause
    looks on each host). No when every node that answered has it off or paused already.
    (needed, why)."""
    answered = [n for n in cluster.nodes if n.reachable]
    if not answered:
        return True, "no PostgreSQL node answered: look on every host"
    armed = [n.host for n in answered if n.auto == "on"]
    if armed:
        return True, f"automatic failover is enabled and not paused on {', '.join(armed)}"
    paused = [n.host for n in answered if n.auto == "paused"]
    if paused:
        return False, f"automatic failover is paused already ({', '.join(paused)})"
    return False, "automatic failover is not enabled on any node that answered"


@dataclass(frozen=True)
class DrillLoss:
    """A drill's acknowledged writes lost, judged against what the rules stated when the
    operator consented (the failover's data-loss verdict; see restore_loss for a rebuild)."""

    within: bool
    sentence: str


def drill_loss(stated: Mapping[str, Any] | None, lost: int, rpo_s: float) -> DrillLoss:
    """Did the drill lose more than it was told it might? STATED: the failover's data-loss
    verdict as its report carries it (verdict, missing_bytes, window_s, accepted), None
    when no failover stated one; LOST: acknowledged writes absent afterwards; RPO_S: the
    span, in seconds before the cut, in which they were acknowledged.

    Nothing lost is always within. 'none' was promoted without asking anyone: any loss
    exceeds it (no acknowledged commit is lost without consent), also one inside the
    asynchronous window its sentence names. 'within-limit' was consented to in advance
    (drctl_max_loss_bytes): commits acknowledged in its window before the watcher lost
    the primary may be lost, so a loss spanning longer exceeds it. 'loss' and 'unknown'
    were consented to as such (at least the bytes named, or an amount nobody could
    establish): the loss is reported beside the statement, within it. Without a verdict,
    or without the operator's consent where consent was needed, any loss exceeds."""
    if lost == 0:
        return DrillLoss(True, "no acknowledged write was lost")
    what = f"{lost} acknowledged write{'s' if lost != 1 else ''} lost, acknowledged in the " \
           f"last {rpo_s:.3f} s before the cut"
    if not stated:
        return DrillLoss(False, f"{what}; no failover stated that anything could be lost")
    verdict = stated.get("verdict")
    if verdict == "none":
        return DrillLoss(False, f"{what}: MORE than the rules stated (verdict 'none', "
                                "promoted without asking anyone)")
    if verdict == "within-limit":
        window = stated.get("window_s")
        if window is None:
            return DrillLoss(False, f"{what}; the rules stated no window for a loss")
        if rpo_s <= float(window):
            return DrillLoss(True, f"{what}: within the stated asynchronous window of "
                                   f"{float(window):.1f} s")
        return DrillLoss(False, f"{what}: MORE than the stated asynchronous window of "
                                f"{float(window):.1f} s")
    if not stated.get("accepted"):
        return DrillLoss(False, f"{what}; the verdict was '{verdict}' and nobody consented")
    named = stated.get("missing_bytes")
    return DrillLoss(True, f"{what}: consented to (verdict '{verdict}'"
                           + (f", at least {lsn.size(int(named))} missing" if named else
                              ", an amount nobody could establish") + ")")


def restore_loss(stated: Mapping[str, Any] | None, last_replayed: float | None,
                 acked: Sequence[tuple[float, int]], missing: Sequence[int]) -> DrillLoss:
    """Did a cluster restored from an archive (drctl rebuild) lose only what the archive
    lacked? LAST_REPLAYED: the commit time of the last transaction the restore replayed
    (seconds since the epoch; None: none was replayed, or the restore did not say);
    ACKED: every write the client saw acknowledged, (when, id), on the same clock;
    MISSING: the ids absent afterwards.

    A write acknowledged at or before the last replayed commit had committed before it,
    so it was in the archive the restore replayed: one missing means the restore lost what
    the store held, whatever the operator consented to. Writes acknowledged after it are
    what the store lacked (the segment being written when the sites were lost): within
    when the operator consented to the rebuild's loss (never known beforehand), which
    STATED says (the rebuild's data-loss statement: accepted)."""
    gone = set(missing)
    if last_replayed is None:
        if not gone:
            return DrillLoss(True, "no acknowledged write was lost")
        return DrillLoss(bool(stated and stated.get("accepted")),
                         f"{len(gone)} acknowledged writes lost; the restore named no last "
                         "replayed commit to tell what the store held from what it lacked")
    held = [i for t, i in acked if t <= last_replayed and i in gone]
    lacked = len(gone) - len(held)
    if held:
        return DrillLoss(False, f"{len(held)} acknowledged write{'s' if len(held) != 1 else ''}"
                                " committed before the last replayed commit MISSING: the "
                                f"restore lost what the store held ({lacked} more acknowledged"
                                " after it)")
    if not gone:
        return DrillLoss(True, "no acknowledged write was lost")
    if not (stated and stated.get("accepted")):
        return DrillLoss(False, f"{lacked} acknowledged writes lost, all after the last "
                                "replayed commit, and nobody consented")
    return DrillLoss(True, f"{lacked} acknowledged write{'s' if lacked != 1 else ''} lost, "
                           "every one acknowledged after the last commit the store held "
                           "(consented to: what the store lacked)")


# The shortest liveness probe: on a link dropping a third of its packets, some of the
# probe's connections (one every LIVENESS_PROBE_EVERY_S) still get an answer within it.
LIVENESS_PROBE_MIN_S = 1.0
LIVENESS_PROBE_EVERY_S = 0.03


def last_primary_seen(cluster: ClusterFacts) -> tuple[str | None, float | None]:
    """The primary the watchers saw last (newest timeline and position) and how long ago
    anyone saw it answer (seconds; None: no watcher ever saw a primary)."""
    sightings = [w.sighting for w in cluster.watchers if w.sighting]
    if not sightings:
        return None, None
    newest = max(sightings, key=lambda s: (s.timeline, s.position, -s.age_s))
    return newest.primary, min(s.age_s for s in sightings if s.primary == newest.primary)


def liveness_probe(cluster: ClusterFacts, policy: Policy) -> tuple[str | None, float]:
    """Which primary to probe before an automatic promotion, and for how long: until it
    has been silent for the blip tolerance, and never less than LIVENESS_PROBE_MIN_S.
    (None, 0): no watcher ever saw a primary, nothing to probe (the data-loss rule refuses
    on that ground anyway)."""
    host, age = last_primary_seen(cluster)
    if host is None or age is None:
        return None, 0.0
    return host, max(LIVENESS_PROBE_MIN_S, policy.blip_tolerance_s - age)


def _liveness_gate(cluster: ClusterFacts, policy: Policy, live: Liveness | None) -> Gate:
    """The primary is given up only if it has been silent for the blip tolerance (the
    watchers' last sighting, read after the probe) and ignored every probe just made."""
    name = "the primary is silent and ignores probes"
    host, age = last_primary_seen(cluster)
    if live is None or host is None or age is None:
        return Gate(name, False, "no primary was probed (no watcher saw one): unknown is "
                                 "not gone")
    if live.host != host:
        return Gate(name, False, f"{live.host} was probed, but the watchers' primary is "
                                 f"now {host}")
    if live.error:
        return Gate(name, False, f"{host} could not be probed ({live.error}): unknown is "
                                 "not gone")
    if live.answered_after_s is not None:
        return Gate(name, False, f"{host} answered a probe {live.answered_after_s:.2f} s "
                                 "into it: it is alive, only slow or hard to reach")
    if age < policy.blip_tolerance_s:
        return Gate(name, False, f"{host} was last seen {age:.1f} s ago, under the blip "
                                 f"tolerance of {policy.blip_tolerance_s:g} s")
    return Gate(name, True, f"{host} unseen for {age:.1f} s; no answer to "
                            f"{live.attempts} connections in the last {live.probed_s:.1f} s")


def archives_asked(cluster: ClusterFacts) -> list[ArchiveAnswer]:
    """What every node that answered heard from the object stores' archives with its
    probe (each node asks the same stores: a store one node reaches and another does not
    is still heard)."""
    return [a for n in cluster.nodes for a in n.archives]


def newer_in_archive(archives: Sequence[ArchiveAnswer], known: Sequence[int]
                     ) -> tuple[ArchiveAnswer, int] | None:
    """The archive answer with the newest timeline past every timeline in KNOWN, and the
    newest of KNOWN; None when none is newer, or nothing is known to compare with."""
    if not known:
        return None
    newer = [a for a in archives if a.timeline is not None and a.timeline > max(known)]
    if not newer:
        return None
    return max(newer, key=lambda x: x.timeline or 0), max(known)


def superseded(cluster: ClusterFacts) -> str:
    """Status's word when an object store's archive holds a timeline newer than every
    node of this cluster that answers with one: the cluster was rebuilt from the store
    (or a node promoted) somewhere these nodes do not see, and they are superseded. ""
    when not (no archive asked, none newer, or no node knows its timeline)."""
    found = newer_in_archive(archives_asked(cluster),
                             [n.timeline for n in cluster.nodes if n.timeline is not None])
    if found is None:
        return ""
    a, known = found
    return (f"SUPERSEDED: repository {a.repo}'s archive holds timeline {a.timeline}, newer "
            f"than every node of this cluster (the newest is on timeline {known}): the "
            "cluster was rebuilt from the store (`drctl rebuild`) or promoted elsewhere. "
            "A node here that would start as a primary fences itself, and no failover "
            "promotes one of them")


def cloud_problems(primary: str | None,
                   cloud: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    """Status's problems with the hosts of the cloud location (CLOUD: each one's state as
    it answered: running, in_recovery, timeline; None when it did not answer). A cluster
    rebuilt there is the only writable primary there may be: one beside the cluster's
    own PRIMARY is a split brain (a rebuild beside a primary that was still running, or
    an old site's node started by hand)."""
    writable = [h for h, s in cloud.items()
                if s and s.get("running") and s.get("in_recovery") is False]
    if primary and writable:
        return [f"SPLIT BRAIN: {primary} and {', '.join(writable)} (rebuilt at the cloud "
                "location from the object store) all accept writes"]
    if len(writable) > 1:
        return ["SPLIT BRAIN: " + " and ".join(writable) + " (rebuilt at the cloud location) "
                "all accept writes"]
    return []


def no_unseen_promotion(cluster: ClusterFacts, archives: Sequence[ArchiveAnswer]) -> Gate:
    """An archive (the object store, which outlives both sites) that holds a timeline
    newer than any this cluster knows, the newest primary a watcher saw and every node's
    own: a promotion happened that none of them saw, the cluster rebuilt from the store
    while their sites were gone (`drctl rebuild`). Their facts are then of a cluster that
    was replaced, and promoting one of its standbys would make a second primary beside
    the rebuilt one: refused, with no override (it is no question of data loss). Passes
    when no archive was asked or answered (the archive only ever refuses; the other
    gates decide), and when nothing here knows a timeline to compare with."""
    name = "no newer timeline in the archive"
    found = newer_in_archive(archives, [
        *(w.sighting.timeline for w in cluster.watchers if w.sighting is not None),
        *(n.timeline for n in cluster.nodes if n.timeline is not None)])
    if found is not None:
        a, known = found
        return Gate(name, False, (
            f"repository {a.repo}'s archive holds timeline {a.timeline}, newer than any "
            f"this cluster's nodes and watchers know (timeline {known}): the cluster "
            "was rebuilt from the store (`drctl rebuild`) or promoted elsewhere while they "
            "were away; promoting here would make a second primary"))
    asked = ", ".join(f"{a.repo} timeline {a.timeline}" if a.timeline is not None else
                      f"{a.repo} did not answer ({a.error})" for a in archives)
    return Gate(name, True, asked or "no archive asked")


def auto_promotion(cluster: ClusterFacts, candidate: str, policy: Policy,
                   local: LocalAuto, liveness: Liveness | None,
                   archives: Sequence[ArchiveAnswer] = ()) -> Decision:
    """repmgrd's validation: may this standby promote itself now? No override exists.
    LIVENESS: the probe of the primary liveness_probe() named, made just before these
    facts were gathered; ARCHIVES: the newest timeline each object store's archive holds,
    asked meanwhile (no_unseen_promotion)."""
    t = cluster.node(candidate)
    gates = _local_gates(local)
    loss = None
    if t is None or t.role != "standby":
        gates.append(Gate("a standby", False, f"{candidate}: {t.role if t else 'unknown'}"))
    else:
        # repmgrd lost its upstream; a watcher that still sees it says the loss is this
        # standby's link (a blip, a lossy network), not the primary: the same gate as
        # `drctl failover`'s
        gates += primary_still_seen(cluster, candidate, policy,
                                    "repmgrd runs the election again later")
        # every observer may lose a live primary at once (a lossy link: repmgrd's, the
        # witness's and the watcher's checks all time out): it must also ignore a burst
        # of new connections, made now
        gates.append(_liveness_gate(cluster, policy, liveness))
        gates.append(no_unseen_promotion(cluster, archives))
        loss = assess_data_loss(cluster, t, policy)
        gates.append(_auto_loss_gate(loss, policy))
    return Decision("auto-promotion", candidate, tuple(gates), data_loss=loss)


# How long repmgrd must have been absent from a standby (its unit restarts it every 2 s
# while it cannot start) before the guard holds the election itself: after a site's power
# cut the primary may boot later than its standby (servers take a minute or more to come
# up), and one that boots within this is kept. Patroni's replicas wait for the leader
# key's 30-s time to live; a minute leaves room for a slower boot.
STAND_IN_AFTER_S = 60.0


def stand_in_due(local: LocalAuto, *, standby: bool, repmgrd_down_s: float | None) -> Gate:
    """stand_in's half that needs no one else's word: this node is a standby that the
    election's validation would not refuse on its own facts (fenced, paused, another
    location than the primary's), and repmgrd has not run here for STAND_IN_AFTER_S.
    Where it says no, stand_in says no whatever the watchers saw: the guard asks them
    only once it says yes. REPMGRD_DOWN_S: seconds since repmgrd last ran here (None: it
    runs)."""
    name = "repmgrd cannot hold this standby's election"
    refused = [g.detail for g in _local_gates(local) if not g.ok]
    why = ("not a standby" if not standby else
           refused[0] if refused else
           "repmgrd runs" if repmgrd_down_s is None else
           f"repmgrd has not run for {repmgrd_down_s:.0f} s only, under "
           f"{STAND_IN_AFTER_S:g} s (a primary that boots late is not replaced)"
           if repmgrd_down_s < STAND_IN_AFTER_S else "")
    if why or repmgrd_down_s is None:
        return Gate(name, False, why)
    return Gate(name, True, f"repmgrd has not run for {repmgrd_down_s:.0f} s")


def stand_in(local: LocalAuto, *, standby: bool, repmgrd_down_s: float | None,
             location_peers: Sequence[str], lost: str | None) -> Gate:
    """Does drctl's guard hold this standby's election itself? repmgrd does not start on a
    standby while its upstream is not running ("upstream node must be running before
    repmgrd can start"): after a power cut of the whole location, a primary that never
    comes back would be replaced by nobody. The guard stands in where repmgrd has not
    run for STAND_IN_AFTER_S (stand_in_due), on a standby that is the only one of its
    location besides the primary the watchers saw last (LOST; between two standbys,
    repmgrd's election chooses, and two stand-ins could both promote). Whether to promote
    is then auto_promotion's, the validation repmgrd's election runs: this says only who
    asks."""
    due = stand_in_due(local, standby=standby, repmgrd_down_s=repmgrd_down_s)
    if not due.ok:
        return due
    others = sorted(p for p in location_peers if p != lost)
    why = ("no watcher saw a primary: nothing to stand in for" if lost is None else
           f"{', '.join(others)} {'is' if len(others) == 1 else 'are'} also a standby "
           f"of this location: repmgrd's election chooses between standbys (`drctl "
           f"failover` does it by hand)" if others else "")
    if why:
        return Gate(due.name, False, why)
    return Gate(due.name, True, f"{due.detail}: the guard asks the election's rules whether "
                                f"{lost} is gone")


ASYNC_WINDOW_REFUSED = (
    "Automatic failover does not accept that window without consent: it promotes only "
    "the synchronous standby (drctl_synchronous: true) unless drctl_auto_accept_async_loss "
    "is true; `drctl failover` shows an operator what is at stake")


def auto_arming(policy: Policy) -> Gate:
    """May automatic failover be armed with this policy? With asynchronous replication
    and no standing consent, _auto_loss_gate would refuse every promotion after the
    primary's loss (the candidate may lack its last acknowledged commits): armed, it
    would only ever refuse, so it is not armed."""
    name = "no acknowledged commit given up without consent"
    if policy.synchronous or policy.auto_accept_async_loss:
        return Gate(name, True, "synchronous replication" if policy.synchronous else
                    "asynchronous replication, with drctl_auto_accept_async_loss: true")
    return Gate(name, False, (
        "replication is asynchronous (drctl_synchronous: false): a standby that promotes "
        "itself may lack the commits the primary acknowledged in its last moments, and no "
        "operator is there to consent. Set drctl_synchronous: true (commits wait for the "
        "standby in the primary's site), or drctl_auto_accept_async_loss: true to consent "
        "in advance to losing them"))


def _auto_loss_gate(loss: DataLoss, policy: Policy) -> Gate:
    """The data-loss rule for a promotion nobody confirms: as `drctl failover`'s, and the
    asynchronous window (commits acknowledged after the watcher's last sighting that the
    candidate may lack) needs the inventory's standing consent, since no operator reads
    the sentence that names it."""
    name = "no acknowledged commit lost"
    if not loss.safe or loss.window_s is None or policy.auto_accept_async_loss:
        return Gate(name, loss.safe, loss.sentence)
    return Gate(name, False, f"{loss.sentence}. {ASYNC_WINDOW_REFUSED}")


# repmgrd normally sees its upstream every monitor interval (1 s)
UPSTREAM_SEEN_LIMIT_S = 5


def auto_readiness(local: LocalAuto, streaming: bool | None,
                   upstream_last_seen_s: int | None, lag_bytes: int | None,
                   max_lag_bytes: int | None, holds_every_commit: bool | None = None,
                   accepts_async_loss: bool | None = None) -> list[str]:
    """Why this standby could not promote itself if the primary failed now (`drctl
    status`'s forecast; empty: it could). The same local gates as auto_promotion, plus
    what makes repmgrd miss a failure or the data-loss rule refuse it. HOLDS_EVERY_COMMIT:
    commits_wait_for() on the primary's view of it now (None: not known, no forecast);
    ACCEPTS_ASYNC_LOSS: the node's own policy (None: its drctl-node does not say)."""
    why = [g.detail for g in _local_gates(local) if not g.ok]
    if streaming is False:
        why.append("not streaming from the primary")
    seen = upstream_last_seen_s
    if seen is not None and (seen < 0 or seen > UPSTREAM_SEEN_LIMIT_S):
        why.append("repmgrd has not seen the primary " + ("yet" if seen < 0 else
                                                          f"for {seen} s")
                   + " (degraded monitoring: it will not start a failover)")
    if lag_bytes is not None and max_lag_bytes is not None and lag_bytes > max_lag_bytes:
        why.append(f"lag {lag_bytes} bytes above the limit {max_lag_bytes}: it would lack "
                   "acknowledged commits")
    # the commits do not wait for it, and no standing consent to the asynchronous window:
    # _auto_loss_gate would refuse
    if holds_every_commit is False and accepts_async_loss is False:
        why.append("the primary's commits do not wait for it (asynchronous): the last "
                   "ones it acknowledged may not be on it. " + ASYNC_WINDOW_REFUSED)
    return why


@dataclass(frozen=True)
class PeerAnswer:
    """What one peer said, at boot, when asked who it is: role 'primary' or 'standby'
    (None: it did not answer) and the newest timeline it knows (None: not known)."""

    name: str
    role: str | None
    timeline: int | None = None


@dataclass(frozen=True)
class StartVerdict:
    """May PostgreSQL start here? action: start, fence (a newer primary exists: never
    start), hold (not confirmed: stay down and ask again), refuse (fenced already)."""

    action: Literal["start", "fence", "hold", "refuse"]
    reason: str
    liftable: bool = False  # an operator may start it anyway (drctl confirm-primary)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def startup(*, fenced: str | None, standby: bool, my_timeline: int | None,
            peers: list[PeerAnswer], lifted: bool, primary_this_boot: bool,
            me: str = "", witnesses: Sequence[WatcherFacts] = (),
            watch_max_age_s: float = Policy.watch_max_age_s,
            archives: Sequence[ArchiveAnswer] = ()) -> StartVerdict:
    """Whether a node may start PostgreSQL, decided before every start.

    A standby always may. A node that would start as a primary must still be the newest
    primary: a peer on a newer timeline (a failover happened while it was away) fences it,
    even when an operator lifted the hold, and so does a watcher that saw another node
    write on a newer timeline; otherwise a peer must confirm it (a standby on its timeline
    or an older one, or a primary on an older timeline), or it must have run as the
    primary since this boot, or an operator must say so, or a live watcher must vouch
    that the newest primary it saw is this node on this timeline (no promotion since it
    last saw it: every promotion, drctl's or the failover manager's, goes past the
    watcher's host, which holds the lock and the witness). Until then it holds: silence
    from the peers, and from the watchers, is not a confirmation.
    A repository's archive that holds a newer timeline's history fences it too: the
    cluster was rebuilt from the object store (or a node promoted) while this node was
    away, where neither the peers nor the watchers may be left to say so. The archive
    only ever fences: its silence, or an older timeline there, confirms nothing (an
    object store that is down must not stop a primary's restart; the peers and the
    watchers decide that).

    fenced: the fence marker's text (None: not fenced); standby: standby.signal exists;
    my_timeline: the timeline of its last checkpoint (None: pg_controldata unreadable);
    lifted: an operator's one-shot consent; primary_this_boot: it ran writable since boot;
    me: this node's name; witnesses: the watchers' records as the witness holds them now
    (empty: none was asked or none answered); watch_max_age_s: the policy's limit past
    which a watcher that has not looked is stale (drctl_watch_max_age_s); archives: the
    newest timeline each asked repository's archive holds (empty: none was asked).
    """
    if fenced is not None:
        return StartVerdict("refuse", f"this node is fenced ({fenced}); it rejoins with "
                                      "`drctl failback`")
    if standby:
        return StartVerdict("start", "it starts as a standby, which is always safe")
    if my_timeline is None:
        if lifted:
            return StartVerdict("start", "an operator confirmed this node as the primary")
        return StartVerdict("hold", "its timeline cannot be read (pg_controldata failed), "
                                    "so whether it is still the newest primary is unknown",
                            liftable=True)
    newer = [p for p in peers if p.timeline is not None and p.timeline > my_timeline]
    if newer:
        p = newer[0]
        return StartVerdict("fence", (
            f"{p.name} is a {p.role} on timeline {p.timeline}, newer than this node's "
            f"{my_timeline}: a failover happened while this node was away"))
    archived = [a for a in archives if a.timeline is not None and a.timeline > my_timeline]
    if archived:
        a = archived[0]
        return StartVerdict("fence", (
            f"repository {a.repo}'s archive holds timeline {a.timeline}, newer than this "
            f"node's {my_timeline}: another node was promoted, or the cluster rebuilt from "
            "the archive, while this node was away"))
    seen = [w.sighting for w in witnesses if w.sighting is not None]
    replaced = [s for s in seen if s.primary != me and s.timeline > my_timeline]
    if replaced:
        s = replaced[0]
        return StartVerdict("fence", (
            f"the watcher on {s.watcher} saw {s.primary} write on timeline {s.timeline} "
            f"(at {s.seen_at}), newer than this node's {my_timeline}: a failover happened "
            "while this node was away"))
    twin = [p for p in peers if p.role == "primary" and p.timeline == my_timeline]
    if twin:
        return StartVerdict("hold", (
            f"{twin[0].name} is a writable primary on this node's own timeline "
            f"{my_timeline}: two primaries; find which one clients wrote to before "
            "starting either"))
    if lifted:
        return StartVerdict("start", "an operator confirmed this node as the primary")
    if primary_this_boot:
        return StartVerdict("start", "it has run as the primary since this boot and no "
                                     "peer knows a newer timeline")
    if not peers:
        return StartVerdict("start", "it has no peers to ask")
    confirming = [p for p in peers if p.timeline is not None and (
        p.role == "standby" or (p.role == "primary" and p.timeline < my_timeline))]
    if confirming:
        p = confirming[0]
        return StartVerdict("start", (
            f"{p.name} ({p.role}, timeline {p.timeline}) confirms that this node "
            f"(timeline {my_timeline}) is still the newest primary"))
    silent = ", ".join(p.name if p.role is None else f"{p.name} (timeline unknown)"
                       for p in peers)
    vouching = [s for s in seen if s.primary == me and s.timeline == my_timeline
                and s.watcher_age_s <= watch_max_age_s]
    if vouching:
        s = vouching[0]
        return StartVerdict("start", (
            f"{silent} did not answer, but the watcher on {s.watcher} saw no promotion "
            f"since it last saw this node write on timeline {my_timeline} (at {s.seen_at}): "
            "this node is still the newest primary"))
    why_not = "; ".join(_why_no_vouch(w, me, my_timeline, watch_max_age_s)
                        for w in witnesses) or \
        "no watcher's record was reachable (the witness runs with automatic failover)"
    return StartVerdict("hold", (
        f"no peer confirms that this node (timeline {my_timeline}) is still the primary: "
        f"{silent} did not answer, and no watcher vouches for it ({why_not}). A failover "
        "may have happened while it was away; it stays down and asks again"),
        liftable=True)


def _why_no_vouch(w: WatcherFacts, me: str, my_timeline: int, max_age_s: float) -> str:
    """Why watcher W's record does not vouch for ME as the newest primary on MY_TIMELINE."""
    s = w.sighting
    if s is None:
        return f"{w.watcher}: {w.error or 'no record'}"
    if s.watcher_age_s > max_age_s:
        return f"{w.watcher} last looked {s.watcher_age_s:.0f} s ago"
    return (f"{w.watcher} saw {s.primary} on timeline {s.timeline} last, not this node "
            f"on timeline {my_timeline}")
