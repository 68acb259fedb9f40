"""The rules core, fed with node and watcher facts as the probes would report them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from drctl.rules import decide, lsn
from drctl.rules.facts import ClusterFacts, Liveness, NodeFacts, WatcherFacts
from drctl.rules.policy import Policy

MB = 1_000_000
POLICY = Policy(max_lag_bytes=16 * 1024 * 1024, watch_max_age_s=10, watch_gap_s=5)
NOW = 1_800_000_000.0


def primary_probe(at: str = "0/5000000", tl: int = 1, standbys: dict | None = None) -> dict:
    return {"fenced": False, "holds_vip": True, "postgres": {
        "in_recovery": False, "lsn": at, "timeline": tl, "prepared_xacts": 0,
        "wal_log_hints": True, "data_checksums": True,
        "replication": [{"application_name": k, "state": "streaming", "sync_state": v,
                         "lag_bytes": 0, "ssl": True}
                        for k, v in (standbys or {"pg2": "async"}).items()]}}


def standby_probe(received: str | None = "0/5000000", tl: int = 1, fenced: bool = False,
                  replayed: str | None = None, status: str | None = "streaming") -> dict:
    return {"fenced": fenced, "holds_vip": False, "postgres": {
        "in_recovery": True, "lsn": replayed or received, "receive_lsn": received,
        "timeline": tl, "prepared_xacts": 0,
        "receiver": {"status": status, "flushed_lsn": received, "last_msg_age_s": 0.2}
        if status else None}}


def watch(lsn_text: str = "0/5000000", tl: int = 1, host: str = "pg1",
          age: float = 20.0, lost_after: float | None = 1.0, checked_ago: float = 0.5,
          sync: dict | None = None, commit: str = "on") -> dict:
    at = NOW - age
    return {"now": NOW, "checked_at": NOW - checked_ago, "primary": {
        "host": host, "timeline": tl, "lsn": lsn_text, "at": at,
        "lost_at": None if lost_after is None else at + lost_after,
        "synchronous_commit": commit,
        "standbys": {k: {"sync_state": v} for k, v in (sync or {"pg2": "async"}).items()}}}


def cluster(nodes: dict[str, dict | None], watchers: dict[str, dict | None] | None = None,
            sites: dict[str, str] | None = None) -> ClusterFacts:
    ns = tuple(NodeFacts.from_probe(h, d, reachable=d is not None,
                                    error="" if d is not None else "unreachable")
               for h, d in nodes.items())
    ws = tuple(WatcherFacts.from_json(h, d, reachable=d is not None)
               for h, d in (watchers or {}).items())
    return ClusterFacts(ns, ws, sites or {})


def failover(c: ClusterFacts, **kw: Any) -> decide.Decision:
    return decide.failover(c, POLICY, **kw)


# ------------------------------------------------------------------ lsn


def test_lsn_round_trip_and_sizes() -> None:
    assert lsn.parse("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert lsn.fmt(lsn.parse("16/B374D848")) == "16/B374D848"
    assert lsn.parse(None) is None and lsn.parse("") is None
    with pytest.raises(ValueError):
        lsn.parse("garbage")
    assert lsn.size(0) == "0 B" and lsn.size(1_200_000) == "1.2 MB"


# ------------------------------------------------------------------ data loss


def test_the_issue_scenario_refuses_and_names_what_is_missing() -> None:
    """Stream cut, 1.2 MB written and seen by the watcher, primary killed."""
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000", status="waiting")},
                {"backup1": watch("0/5124F80", lost_after=1.0)})
    d = failover(c)
    assert not d.proceed
    gate = d.failed[0]
    assert gate.name == "no acknowledged commit lost" and gate.overridable
    assert "pg2 lacks at least 1.2 MB of WAL written up to" in gate.detail
    assert "seen by backup1" in gate.detail
    assert d.data_loss and d.data_loss.verdict == "loss"
    assert d.data_loss.missing_bytes == 0x124F80


def test_allow_data_loss_proceeds_and_still_says_what_is_lost() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5124F80")})
    d = failover(c, allow_data_loss=True)
    assert d.proceed and d.data_loss_accepted
    assert "lacks at least 1.2 MB" in d.gates[-1].detail
    assert "accepted with --allow-data-loss" in d.gates[-1].detail


def test_holding_everything_the_watcher_saw_passes() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000")})
    d = failover(c)
    assert d.proceed, d.failed
    assert d.data_loss and d.data_loss.verdict == "none"
    assert d.target == "pg2"
    # the window nobody can see is named, not called zero, and where it begins is kept
    # (the watcher's last sighting, 20 s ago): the fault campaign's checker takes a
    # promotion's consent from it
    assert "asynchronous replication: a commit acknowledged in the last 1.0 s" in \
        d.data_loss.sentence
    assert d.data_loss.window_s == 1.0 and d.data_loss.window_from == NOW - 20.0


def test_any_missing_byte_refuses_by_default() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000400")})
    d = failover(c)
    assert not d.proceed
    assert d.data_loss and d.data_loss.verdict == "loss"
    assert "lacks at least 1.0 kB" in d.data_loss.sentence


def test_small_gap_within_a_configured_limit_passes_and_says_so() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000400")})
    d = decide.failover(c, Policy(max_loss_bytes=4096))
    assert d.proceed
    assert d.data_loss and d.data_loss.verdict == "within-limit"
    assert "1.0 kB" in d.data_loss.sentence and "drctl_max_loss_bytes" in d.data_loss.sentence


def test_no_watcher_is_unknown_not_zero() -> None:
    d = failover(cluster({"pg1": None, "pg2": standby_probe()}))
    assert not d.proceed
    assert d.data_loss and d.data_loss.verdict == "unknown"
    assert "no watcher" in d.data_loss.sentence


def test_watcher_that_does_not_answer_is_unknown() -> None:
    d = failover(cluster({"pg1": None, "pg2": standby_probe()}, {"backup1": None}))
    assert d.data_loss and d.data_loss.verdict == "unknown"
    assert not d.proceed


def test_stale_watcher_proves_nothing_more_was_written_never() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000", checked_ago=60)})
    d = failover(c)
    assert d.data_loss and d.data_loss.verdict == "unknown"
    assert "has not checked for 60 s" in d.data_loss.sentence


def test_stale_watcher_still_proves_missing_wal() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/9000000", checked_ago=600)})
    d = failover(c)
    assert d.data_loss and d.data_loss.verdict == "loss"


def test_watcher_with_a_gap_before_the_loss_is_unknown() -> None:
    """It lost the primary 120 s after it last saw it: it was not watching at the end."""
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000", age=200, lost_after=120)})
    d = failover(c)
    assert d.data_loss and d.data_loss.verdict == "unknown"
    assert "not watching" in d.data_loss.sentence


def test_primary_still_seen_by_a_watcher_refuses() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000", age=0.3, lost_after=None)})
    d = failover(c, allow_data_loss=True)
    assert not d.proceed
    assert any("still answers backup1" in g.detail for g in d.failed)


def test_synchronous_standby_is_safe_although_the_primary_wrote_ahead() -> None:
    """Sync mode: the cut blocks commits, WAL still grows on the primary, none acknowledged."""
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/7000000", sync={"pg2": "sync"})})
    d = failover(c)
    assert d.proceed
    assert d.data_loss and d.data_loss.verdict == "none"
    assert "synchronous standby" in d.data_loss.sentence


def test_synchronous_commit_local_does_not_count_as_synchronous() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/7000000", sync={"pg2": "sync"}, commit="local")})
    assert failover(c).data_loss.verdict == "loss"  # type: ignore[union-attr]


def test_quorum_standby_is_not_taken_as_holding_every_commit() -> None:
    w = watch("0/7000000", sync={"pg2": "quorum", "pg3": "quorum"})
    w["primary"]["synchronous_standby_names"] = "ANY 1 (pg2, pg3)"
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")}, {"backup1": w})
    assert failover(c).data_loss.verdict == "loss"  # type: ignore[union-attr]


def test_quorum_of_every_listed_standby_holds_every_commit() -> None:
    """The lab's synchronous mode: ANY 1 (pg1, pg2) on pg1 - pg2 confirms every commit."""
    w = watch("0/7000000", sync={"pg2": "quorum"})
    w["primary"]["synchronous_standby_names"] = "ANY 1 (pg1, pg2)"
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")}, {"backup1": w})
    assert failover(c).data_loss.verdict == "none"  # type: ignore[union-attr]
    assert decide.quorum_needs_every_name("any 2 (a, b)")
    # drctl lists every node, the primary included: it never confirms its own commits
    assert decide.quorum_needs_every_name("ANY 1 (pg1, pg2)", primary="pg1")
    assert not decide.quorum_needs_every_name("ANY 1 (pg1, pg2, pg3)", primary="pg1")
    assert not decide.quorum_needs_every_name("ANY 1 (pg1, pg2)")
    assert not decide.quorum_needs_every_name("ANY 1 (*)")
    assert not decide.quorum_needs_every_name("FIRST 1 (a)")


def test_candidate_on_an_older_timeline_lacks_the_newer_one() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000", tl=2)},
                {"backup1": watch("0/5000000", tl=3)})
    d = failover(c)
    assert d.data_loss and d.data_loss.verdict == "loss"
    assert "timeline 3" in d.data_loss.sentence


def test_sightings_of_an_older_timeline_are_history() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000", tl=3)},
                {"backup1": watch("0/9000000", tl=2)})
    d = failover(c)
    assert d.data_loss and d.data_loss.verdict == "unknown"


def test_candidate_without_a_position_is_unknown() -> None:
    probe = standby_probe(None, status=None)
    probe["postgres"]["lsn"] = None
    c = cluster({"pg1": None, "pg2": probe}, {"backup1": watch()})
    assert failover(c).data_loss.verdict == "unknown"  # type: ignore[union-attr]


def test_contradictory_watchers_the_most_advanced_counts() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000"), "witness1": watch("0/8000000", checked_ago=99)})
    d = failover(c)
    assert d.data_loss and d.data_loss.verdict == "loss"
    assert "seen by witness1" in d.data_loss.sentence


# ------------------------------------------------------------------ several standbys


def test_failover_picks_the_standby_holding_the_most_wal() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/4000000"),
                 "pg3": standby_probe("0/5000000")}, {"backup1": watch("0/5000000")})
    d = failover(c)
    assert d.target == "pg3"
    assert "pg3 holds the most WAL" in d.why_target and "pg2 0/4000000" in d.why_target
    assert d.proceed


def test_naming_a_standby_behind_another_is_a_data_loss() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/4000000"),
                 "pg3": standby_probe("0/6000000")}, {"backup1": watch("0/5000000")})
    d = failover(c, target="pg2")
    assert not d.proceed
    assert "held by pg3" in d.failed[0].detail


def test_fenced_standby_is_never_chosen() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe("0/6000000", fenced=True),
                 "pg3": standby_probe("0/5000000")}, {"backup1": watch("0/5000000")})
    assert failover(c).target == "pg3"


# ------------------------------------------------------------------ other failover gates


def test_unknown_target_is_one_line() -> None:
    d = failover(cluster({"pg1": None, "pg2": standby_probe()}), target="backup1")
    assert len(d.gates) == 1
    assert "'backup1' is not a PostgreSQL node of the inventory (pg1, pg2)" in d.gates[0].detail


def test_live_primary_elsewhere_refuses() -> None:
    c = cluster({"pg1": primary_probe(), "pg2": standby_probe()}, {"backup1": watch()})
    d = failover(c, target="pg2", allow_data_loss=True)
    assert any(g.name == "no live primary elsewhere" and not g.ok for g in d.gates)


def test_already_promoted_is_nothing_to_do() -> None:
    c = cluster({"pg1": None, "pg2": primary_probe(standbys={})})
    d = failover(c)
    assert d.nothing_to_do and d.target == "pg2"


def test_unreachable_nodes_are_noted_as_unfenced() -> None:
    c = cluster({"pg1": None, "pg2": standby_probe()}, {"backup1": watch()})
    assert any("pg1 does not answer" in n for n in failover(c).notes)


# ------------------------------------------------------------------ switchover / failback


def test_switchover_gates() -> None:
    c = cluster({"pg1": primary_probe(), "pg2": standby_probe()})
    d = decide.switchover(c, POLICY, "pg2")
    assert d.proceed, d.failed
    lagging = primary_probe()
    lagging["postgres"]["replication"][0]["lag_bytes"] = 100 * MB
    d = decide.switchover(cluster({"pg1": lagging, "pg2": standby_probe()}), POLICY, "pg2")
    assert [g.name for g in d.failed] == ["lag"]
    assert decide.switchover(c, POLICY, "pg1").nothing_to_do
    assert not decide.switchover(c, POLICY, "nosuch").proceed


def test_failback_gates() -> None:
    down = {"fenced": True, "postgres": None}
    c = cluster({"pg1": down, "pg2": primary_probe(standbys={})})
    d = decide.failback(c)
    assert d.target == "pg1" and d.proceed
    c = cluster({"pg1": standby_probe(), "pg2": primary_probe(standbys={})})
    assert decide.failback(c, "pg1").nothing_to_do


# ------------------------------------------------------------------ automatic promotion


def local(**kw: Any) -> decide.LocalAuto:
    base: dict[str, Any] = {"fenced": False, "paused": False, "location": "dc1",
                            "primary_location": "dc1", "witness_error": ""}
    return decide.LocalAuto(**{**base, **kw})


# the lab's inventory: a standing consent to the asynchronous window (the tests of that
# consent itself use POLICY, the production default without it)
AUTO = dataclasses.replace(POLICY, auto_accept_async_loss=True)

# the primary ignored every connection of a probe made just now
SILENT = Liveness("pg1", 1.0, 33, None)


def test_auto_promotion_uses_the_same_data_loss_rule() -> None:
    c = cluster({"pg2": standby_probe("0/5000000")}, {"backup1": watch("0/5124F80")})
    d = decide.auto_promotion(c, "pg2", AUTO, local(), SILENT)
    assert not d.proceed and "lacks at least 1.2 MB" in d.failed[0].detail
    c = cluster({"pg2": standby_probe("0/5000000")}, {"backup1": watch("0/5000000")})
    assert decide.auto_promotion(c, "pg2", AUTO, local(), SILENT).proceed


def test_auto_promotion_refuses_while_a_watcher_still_sees_the_primary() -> None:
    """repmgrd on the standby lost the primary (a blip on its link, a lossy network), but
    the watcher saw it write 0.5 s ago: it is not gone. The same gate as drctl failover's."""
    c = cluster({"pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000", age=0.5, lost_after=None)})
    d = decide.auto_promotion(c, "pg2", AUTO, local(), SILENT)
    assert d.failed[0].name == "the primary is gone for the watchers too"
    assert "pg1 still answers backup1" in d.failed[0].detail
    # the watcher lost it too: the data-loss rule decides alone
    c = cluster({"pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000", age=4.5, lost_after=1.0)})
    assert decide.auto_promotion(c, "pg2", AUTO, local(), SILENT).proceed
    # a sighting the watcher stopped refreshing long ago proves nothing either way: the
    # data-loss rule then says unknown, and refuses on that ground
    c = cluster({"pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000", age=30, lost_after=None)})
    d = decide.auto_promotion(c, "pg2", AUTO, local(), SILENT)
    assert [g.name for g in d.failed] == ["no acknowledged commit lost"]


def test_auto_promotion_refuses_when_the_archive_holds_a_timeline_no_watcher_saw() -> None:
    """Both sites were lost and the cluster rebuilt from the object store (timeline 2
    there); dc1 returns, its primary fences itself, and repmgrd on its standby would
    replace it from the watcher's record of timeline 1: a second primary beside the
    rebuilt one. Refused, naming the repository and both timelines; an archive on the
    watchers' timeline, or one that did not answer, changes nothing."""
    c = cluster({"pg2": standby_probe("0/5000000")}, {"backup1": watch("0/5000000")})
    A = decide.ArchiveAnswer
    d = decide.auto_promotion(c, "pg2", AUTO, local(), SILENT, [A("repo3", 2)])
    assert [g.name for g in d.failed] == ["no newer timeline in the archive"]
    assert "repo3's archive holds timeline 2" in d.failed[0].detail
    assert "(timeline 1)" in d.failed[0].detail
    for archives in ([A("repo3", 1)], [A("repo3", None, "no answer within 5 s")], []):
        assert decide.auto_promotion(c, "pg2", AUTO, local(), SILENT, archives).proceed


def test_failover_refuses_beside_a_cluster_rebuilt_from_the_object_store() -> None:
    """dc1 returns after the cluster was rebuilt from the store (timeline 2 there): pg1
    fenced, pg2 a standby holding everything the watcher saw pg1 write. Without the
    store's word `drctl failover` would promote it beside the rebuilt primary; each
    node's probe carries what the store said, and the gate refuses, even with
    --allow-data-loss (it is not a question of data loss). Status says the cluster is
    superseded."""
    rebuilt = [{"repo": "repo3", "timeline": 2, "error": ""}]
    nodes = {"pg1": {"fenced": True, "holds_vip": False, "postgres": None,
                     "archives": rebuilt},
             "pg2": {**standby_probe("0/5000000"), "archives": rebuilt}}
    c = cluster(nodes, {"backup1": watch("0/5000000")})
    for allow in (False, True):
        d = failover(c, allow_data_loss=allow)
        assert [g.name for g in d.failed] == ["no newer timeline in the archive"], d.failed
        assert "repo3's archive holds timeline 2" in d.failed[0].detail
        assert not d.failed[0].overridable
    assert decide.superseded(c).startswith("SUPERSEDED: repository repo3's archive holds "
                                           "timeline 2, newer than every node")
    # the store on the cluster's own timeline, or not answering: nothing changes
    for said in ([{"repo": "repo3", "timeline": 1, "error": ""}],
                 [{"repo": "repo3", "timeline": None, "error": "no answer within 2 s"}], []):
        nodes["pg2"]["archives"] = nodes["pg1"]["archives"] = said
        c = cluster(nodes, {"backup1": watch("0/5000000")})
        assert failover(c).proceed and decide.superseded(c) == ""


def test_failover_without_a_watcher_compares_the_archive_with_the_nodes_timelines() -> None:
    """The sites' power returns but not the backup host: no watcher answers. The loss is
    unknown (consent would cover that), but the archive's newer timeline still refuses
    the promotion: compared with what the nodes themselves know."""
    said = [{"repo": "repo3", "timeline": 2, "error": ""}]
    c = cluster({"pg1": {"fenced": True, "postgres": None, "archives": said},
                 "pg2": {**standby_probe("0/5000000"), "archives": said}})
    d = failover(c, allow_data_loss=True)
    assert [g.name for g in d.failed] == ["no newer timeline in the archive"], d.failed
    assert "(timeline 1)" in d.failed[0].detail


def test_superseded_needs_a_node_that_knows_its_timeline() -> None:
    nodes = {"pg1": {"fenced": True, "postgres": None,
                     "archives": [{"repo": "repo3", "timeline": 2}]}}
    assert decide.superseded(cluster(nodes)) == ""
    assert NodeFacts.from_probe("pg1", nodes["pg1"]).archives == (
        decide.ArchiveAnswer("repo3", 2, ""),)


@pytest.mark.parametrize(("kw", "words"), [
    ({"fenced": True}, "fenced"), ({"paused": True}, "paused"),
    ({"location": "dc2"}, "only `drctl failover` promotes it"),
    ({"witness_error": "timeout"}, "no quorum"),
])
def test_auto_promotion_refusals(kw: dict[str, Any], words: str) -> None:
    c = cluster({"pg2": standby_probe()}, {"backup1": watch()})
    d = decide.auto_promotion(c, "pg2", AUTO, local(**kw), SILENT)
    assert not d.proceed and words in d.failed[0].detail


def test_liveness_probe_lasts_until_the_blip_tolerance() -> None:
    """The probe runs until nobody has seen the primary for the blip tolerance (4 s), and
    at least LIVENESS_PROBE_MIN_S; it probes the newest primary the watchers saw."""
    c = cluster({}, {"backup1": watch("0/5000000", age=0.4, lost_after=0.2)})
    assert decide.liveness_probe(c, POLICY) == ("pg1", pytest.approx(3.6))
    c = cluster({}, {"backup1": watch("0/5000000", age=9, lost_after=2)})
    assert decide.liveness_probe(c, POLICY) == ("pg1", decide.LIVENESS_PROBE_MIN_S)
    # two watchers: the newer timeline's primary; the freshest sighting of it counts
    c = cluster({}, {"w1": watch("0/5000000", tl=1, host="pg1", age=0.1),
                     "w2": watch("0/4000000", tl=2, host="pg2", age=3.0),
                     "w3": watch("0/4000000", tl=2, host="pg2", age=2.0)})
    assert decide.liveness_probe(c, POLICY) == ("pg2", pytest.approx(2.0))
    assert decide.liveness_probe(cluster({}, {}), POLICY) == (None, 0.0)
    p = Policy.from_options({"drctl_blip_tolerance_s": "6"})
    c = cluster({}, {"backup1": watch("0/5000000", age=1.0, lost_after=0.5)})
    assert decide.liveness_probe(c, p) == ("pg1", pytest.approx(5.0))


@pytest.mark.parametrize(("age", "live", "words"), [
    # every observer lost it (a lossy link), but one connection of the burst got an answer
    (6.0, Liveness("pg1", 1.0, 33, 0.41), "answered a probe 0.41 s into it: it is alive"),
    # not silent long enough: a 3-s blip is not over until the tolerance has passed
    (3.0, SILENT, "under the blip tolerance of 4 s"),
    # it could not be probed, or not probed at all: unknown is not gone
    (6.0, Liveness("pg1", 0.0, 0, None, "no address for pg1"), "could not be probed"),
    (6.0, None, "no primary was probed"),
    # the probe named another host than the watchers' primary now
    (6.0, Liveness("pg3", 1.0, 33, None), "pg3 was probed, but the watchers' primary is now pg1"),
])
def test_auto_promotion_refuses_a_primary_that_answers_or_was_not_silent_long_enough(
        age: float, live: Liveness | None, words: str) -> None:
    c = cluster({"pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000", age=age, lost_after=1.0)})
    d = decide.auto_promotion(c, "pg2", AUTO, local(), live)
    assert [g.name for g in d.failed] == ["the primary is silent and ignores probes"]
    assert words in d.failed[0].detail
    assert d.data_loss is not None and d.data_loss.safe  # refused on liveness alone


def test_auto_promotion_names_the_probe_it_passed() -> None:
    c = cluster({"pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000", age=4.2, lost_after=1.0)})
    d = decide.auto_promotion(c, "pg2", AUTO, local(), SILENT)
    assert d.proceed
    gate = next(g for g in d.gates if g.name == "the primary is silent and ignores probes")
    assert gate.detail == "pg1 unseen for 4.2 s; no answer to 33 connections in the last 1.0 s"


def test_auto_promotion_needs_consent_to_the_asynchronous_window() -> None:
    """The standby holds all the WAL the watcher saw, but it was an asynchronous standby:
    commits acknowledged after the watcher's last sighting may be on no other host.
    `drctl failover` names that window to an operator; nobody reads it at an automatic
    promotion, so the inventory must consent in advance, or the standby be synchronous."""
    c = cluster({"pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000", age=4.5, lost_after=1.0)})
    d = decide.auto_promotion(c, "pg2", POLICY, local(), SILENT)
    assert [g.name for g in d.failed] == ["no acknowledged commit lost"]
    assert "asynchronous replication: a commit acknowledged in the last 1.0 s" in \
        d.failed[0].detail
    assert "drctl_auto_accept_async_loss" in d.failed[0].detail
    assert decide.auto_promotion(c, "pg2", AUTO, local(), SILENT).proceed
    # the manual failover's rule is unchanged: the window is named, not refused
    assert failover(c).proceed
    # the synchronous standby holds every acknowledged commit: no consent needed
    c = cluster({"pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000", age=4.5, lost_after=1.0,
                                  sync={"pg2": "sync"})})
    assert decide.auto_promotion(c, "pg2", POLICY, local(), SILENT).proceed
    # consent to the window is not consent to more: a standby that lacks WAL still refuses
    c = cluster({"pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5124F80", age=4.5, lost_after=1.0)})
    assert not decide.auto_promotion(c, "pg2", AUTO, local(), SILENT).proceed


@pytest.mark.parametrize(("holds", "accepts", "refused"), [
    (False, False, True), (False, True, False), (True, False, False), (None, False, False),
    # a node whose drctl-node predates the option says nothing: no forecast either way
    (False, None, False),
])
def test_auto_readiness_forecasts_the_asynchronous_refusal(
        holds: bool | None, accepts: bool | None, refused: bool) -> None:
    why = decide.auto_readiness(local(), True, 1, 0, 16 * MB, holds, accepts)
    assert any("drctl_auto_accept_async_loss is true" in w for w in why) is refused


@pytest.mark.parametrize(("state", "commit", "names", "waits"), [
    ("sync", "on", "FIRST 1 (pg2)", True),
    ("sync", "remote_apply", "pg2", True),
    ("async", "on", "", False),
    (None, "on", "FIRST 1 (pg2)", False),
    # the standby is listed as synchronous, but commits do not wait for anyone
    ("sync", "local", "FIRST 1 (pg2)", False),
    ("sync", "off", "FIRST 1 (pg2)", False),
    # quorum: only when the quorum is every listed standby
    ("quorum", "on", "ANY 2 (pg1, pg2, pg3)", True),
    ("quorum", "on", "ANY 1 (pg1, pg2, pg3)", False),
])
def test_commits_wait_for(state: str | None, commit: str, names: str, waits: bool) -> None:
    assert decide.commits_wait_for(state, commit, names, "pg1") is waits


def test_policy_from_options() -> None:
    assert Policy.from_options({}).auto_accept_async_loss is False
    for value, flag in ((True, True), ("true", True), ("yes", True), (False, False),
                        ("false", False), ("", False), (None, False)):
        assert Policy.from_options(
            {"drctl_auto_accept_async_loss": value}).auto_accept_async_loss is flag
    p = Policy.from_options({"drctl_max_lag_bytes": "1000", "drctl_watch_gap_s": 3})
    assert p.max_lag_bytes == 1000 and p.watch_gap_s == 3 and p.watch_max_age_s == 10
    assert p.max_loss_bytes == 0  # the production default: no commit lost without consent


def test_a_sighting_that_stopped_advancing_is_not_a_live_primary() -> None:
    """The watcher has not recorded the loss, but its last sighting is 30 s old: the
    primary is not answering; what it wrote meanwhile is unknown."""
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000", age=30, lost_after=None)})
    d = failover(c)
    assert not any(g.name == "the primary is gone for the watchers too" for g in d.gates)
    assert d.data_loss and d.data_loss.verdict == "unknown"


# ---------------------------------------------------------------- failback's set-aside

GB = 1 << 30


@pytest.mark.parametrize("commits,discard,free,action,words", [
    (0, False, 10 * GB, "wal-only", "no commit past the fork point"),
    (3, False, 10 * GB, "keep", "3 commits"),
    (None, False, 10 * GB, "keep", "could not be counted"),  # unknown is not zero
    (3, False, 1 * GB, "refuse", "--discard-diverged"),
    (None, False, 1 * GB, "refuse", "needs 2.0 GiB and 1.0 GiB is free"),
    (3, True, 1 * GB, "wal-only", "discarded, as the operator asked"),
    (0, False, 100 << 20, "refuse", "too little even for a copy of pg_wal"),
])
def test_set_aside_keeps_diverged_commits_when_they_fit(commits, discard, free, action, words):
    d = decide.set_aside("pg1", commits, " (committed between 10:00 and 10:05)",
                         data_bytes=2 * GB, wal_bytes=64 << 20, free_bytes=free,
                         discard=discard)
    assert d.action == action and words in d.sentence, d.sentence
    if action == "refuse":
        assert "Nothing was changed" in d.sentence


def test_set_aside_names_what_would_be_lost():
    d = decide.set_aside("pg1", 12, " (committed between 10:00 and 10:05)", 2 * GB,
                         64 << 20, GB, discard=False)
    assert "12 commits (committed between 10:00 and 10:05)" in d.sentence
    assert "to lose those 12 commits" in d.sentence


# ------------------------------------------------------------ startup (fence-check)

P = decide.PeerAnswer


def start(**kw: Any) -> decide.StartVerdict:
    facts: dict[str, Any] = {"fenced": None, "standby": False, "my_timeline": 3,
                             "peers": [P("pg2", None)], "lifted": False,
                             "primary_this_boot": False}
    facts.update(kw)
    return decide.startup(**facts)


@pytest.mark.parametrize("facts, action", [
    ({"fenced": "failed over"}, "refuse"),
    ({"fenced": "failed over", "lifted": True}, "refuse"),
    ({"standby": True}, "start"),
    # the old primary powers on while its peer is unreachable: it stays down
    ({}, "hold"),
    ({"peers": [P("pg2", "standby", None)]}, "hold"),  # answers, timeline unknown
    ({"my_timeline": None}, "hold"),
    # a peer on a newer timeline: a failover happened meanwhile, even if lifted
    ({"peers": [P("pg2", "primary", 4)]}, "fence"),
    ({"peers": [P("pg2", "standby", 4)]}, "fence"),
    ({"peers": [P("pg2", "primary", 4)], "lifted": True}, "fence"),
    ({"peers": [P("pg2", "primary", 4)], "primary_this_boot": True}, "fence"),
    ({"peers": [P("pg2", None), P("pg3", "standby", 5)]}, "fence"),
    # a peer confirms: a standby on its timeline or an older one, an older primary
    ({"peers": [P("pg2", "standby", 3)]}, "start"),
    ({"peers": [P("pg2", "standby", 2)]}, "start"),
    ({"peers": [P("pg2", "primary", 2)]}, "start"),
    ({"peers": [P("pg2", None), P("pg3", "standby", 3)]}, "start"),
    # two primaries on one timeline: not for a lift to settle
    ({"peers": [P("pg2", "primary", 3)]}, "hold"),
    ({"peers": [P("pg2", "primary", 3)], "lifted": True}, "hold"),
    # no answer, but an operator's word, or it ran as primary since this boot
    ({"lifted": True}, "start"),
    ({"my_timeline": None, "lifted": True}, "start"),
    ({"primary_this_boot": True}, "start"),
    ({"peers": []}, "start"),
])
def test_startup_verdicts(facts: dict[str, Any], action: str) -> None:
    assert start(**facts).action == action


def test_a_held_start_says_who_did_not_answer_and_may_be_lifted() -> None:
    v = start(peers=[P("pg2", None), P("pg3", "standby", None)])
    assert v.action == "hold" and v.liftable
    assert "pg2" in v.reason and "pg3 (timeline unknown)" in v.reason
    assert not start(peers=[P("pg2", "primary", 3)]).liftable


A = decide.ArchiveAnswer


@pytest.mark.parametrize("facts, action", [
    # the cluster was rebuilt from the object store while this node was away: fenced,
    # whatever its peers confirm, a lift or a start since boot
    ({"archives": [A("repo3", 4)], "peers": [P("pg2", "standby", 3)]}, "fence"),
    ({"archives": [A("repo3", 4)], "lifted": True}, "fence"),
    ({"archives": [A("repo3", 4)], "primary_this_boot": True}, "fence"),
    ({"archives": [A("repo3", None, "no answer within 5 s"), A("repo4", 5)]}, "fence"),
    # the archive only ever fences: its own timeline or an older one confirms nothing,
    # and an archive that does not answer changes nothing
    ({"archives": [A("repo3", 3)]}, "hold"),
    ({"archives": [A("repo3", 2)], "peers": [P("pg2", "standby", 3)]}, "start"),
    ({"archives": [A("repo3", None, "connection refused")],
      "peers": [P("pg2", "standby", 3)]}, "start"),
    ({"archives": [A("repo3", None, "connection refused")]}, "hold"),
    # a standby starts whatever the archive holds
    ({"archives": [A("repo3", 9)], "standby": True}, "start"),
])
def test_startup_with_the_archives_newest_timeline(facts: dict[str, Any], action: str) -> None:
    assert start(**facts).action == action


def test_a_fence_by_the_archive_names_the_repository_and_both_timelines() -> None:
    v = start(archives=[A("repo3", 4)])
    assert "repository repo3's archive holds timeline 4" in v.reason
    assert "newer than this node's 3" in v.reason and "rebuilt" in v.reason


def test_a_fence_names_the_newer_node_and_its_timeline() -> None:
    v = start(peers=[P("pg2", "primary", 4)])
    assert "pg2" in v.reason and "timeline 4" in v.reason and "3" in v.reason


# A lone primary reboots while its only standby is gone: the watcher on the backup host
# (its record, as the witness holds it) may vouch that nothing was promoted meanwhile.

def witness(**kw: Any) -> WatcherFacts:
    """backup1's record: by default pg1 the newest primary it saw, on timeline 3, lost
    when it went down, the watcher looking a second ago."""
    return WatcherFacts.from_json("backup1", watch(**{"tl": 3, "host": "pg1", **kw}))


@pytest.mark.parametrize("witnesses, action, said", [
    # the only peer is silent; the live watcher's newest primary is this node on its
    # timeline: nothing was promoted since it last saw it
    ([witness()], "start", "the watcher on backup1 saw no promotion"),
    # no watcher answered (no witness without automatic failover, or it is down)
    ([], "hold", "no watcher's record was reachable"),
    ([WatcherFacts("backup1", False, None, "timeout")], "hold", "backup1: timeout"),
    # a watcher that stopped looking long ago cannot know what happened since
    ([witness(checked_ago=60)], "hold", "backup1 last looked 60 s ago"),
    # it saw this node on an older timeline, or another node on this one: no vouching
    ([witness(tl=2)], "hold", "saw pg1 on timeline 2 last"),
    ([witness(host="pg2")], "hold", "saw pg2 on timeline 3 last"),
    # it saw another node write on a newer timeline: a failover happened meanwhile
    ([witness(host="pg2", tl=4)], "fence", "saw pg2 write on timeline 4"),
    # one live witness that vouches is enough; a silent one beside it changes nothing
    ([WatcherFacts("backup2", False, None, "timeout"), witness()], "start", "backup1"),
])
def test_a_booting_primary_asks_the_watchers(witnesses: list[WatcherFacts], action: str,
                                             said: str) -> None:
    v = start(me="pg1", witnesses=witnesses)
    assert (v.action, v.liftable) == (action, action == "hold"), v
    assert said in v.reason, v.reason


def test_a_watcher_never_overrides_a_peer_or_an_operator_lift_a_failover() -> None:
    """A peer on a newer timeline fences whatever the watcher says; a watcher's sighting
    of a newer primary fences even with an operator's lift."""
    assert start(me="pg1", witnesses=[witness()],
                 peers=[P("pg2", "primary", 4)]).action == "fence"
    assert start(me="pg1", witnesses=[witness(host="pg2", tl=4)],
                 lifted=True).action == "fence"
    # a peer that confirms decides first: the watcher is not needed
    v = start(me="pg1", witnesses=[], peers=[P("pg2", "standby", 3)])
    assert v.action == "start" and "pg2 (standby, timeline 3) confirms" in v.reason


# ------------------------------------------------------------------ many standbys


def test_failover_with_two_standbys_promotes_the_most_advanced_and_the_other_follows():
    c = cluster({"pg1": None, "pg2": standby_probe("0/4F00000"),
                 "pg3": standby_probe("0/5000000")}, {"backup1": watch("0/5000000")})
    d = decide.failover(c, POLICY)
    assert d.proceed and d.target == "pg3" and "holds the most WAL" in d.why_target
    assert d.followers == ("pg2",) and d.left_behind == ()


def test_a_named_target_behind_another_standby_leaves_that_standby_behind():
    """pg2 holds WAL pg3 lacks: the data-loss gate refuses (pg2's copy is evidence), and
    even with consent pg2 cannot follow pg3 without a rewind; the decision says so."""
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000"),
                 "pg3": standby_probe("0/4000000")}, {"backup1": watch("0/4000000")})
    d = decide.failover(c, POLICY, target="pg3")
    assert not d.proceed and "held by pg2" in d.data_loss.sentence
    d = decide.failover(c, POLICY, target="pg3", allow_data_loss=True)
    assert d.proceed and d.followers == ()
    [(host, why)] = d.left_behind
    assert host == "pg2" and "without a rewind" in why
    assert any(n.startswith("left behind: pg2 holds WAL pg3 lacks") for n in d.notes)


def test_an_unreachable_standby_is_neither_a_follower_nor_guessed_at():
    c = cluster({"pg1": None, "pg2": standby_probe("0/5000000"), "pg3": None},
                {"backup1": watch("0/5000000")})
    d = decide.failover(c, POLICY)
    assert d.target == "pg2" and d.followers == () and d.left_behind == ()
    assert any(n.startswith("pg3 does not answer") and "drctl failback pg3" in n
               for n in d.notes)


TWO_SITES = {"pg1": "dc1", "pg2": "dc1", "pg3": "dc2", "backup1": "dc1", "backup2": "dc2"}


def test_a_watcher_across_the_wan_cannot_vouch_for_the_end():
    """backup2 (dc2) lost pg1 1 s after its last sighting, and pg3 holds all it saw. A cut
    link looks the same from dc2 as a lost site: pg1 may still be acknowledging commits,
    so a site failover on that evidence alone is unknown, not zero."""
    c = cluster({"pg1": None, "pg2": None, "pg3": standby_probe("0/5000000")},
                {"backup1": None, "backup2": watch("0/5000000")}, TWO_SITES)
    d = decide.failover(c, POLICY, site="dc2")
    assert not d.proceed
    assert d.data_loss and d.data_loss.verdict == "unknown"
    assert ("backup2 is in site dc2, not in pg1's site dc1: it cannot tell the loss of "
            "that site from the loss of the link to it") in d.data_loss.sentence
    assert "unknown is not zero" in d.data_loss.sentence
    # the same record from a watcher in dc1 covers the end
    local = dataclasses.replace(c, sites={**TWO_SITES, "backup2": "dc1"})
    assert decide.failover(local, POLICY, site="dc2").proceed
    # and with the operator's consent the site moves, the sentence kept
    ok = decide.failover(c, POLICY, site="dc2", allow_data_loss=True)
    assert ok.proceed and ok.data_loss_accepted


def test_a_watcher_across_the_wan_still_proves_what_is_missing():
    c = cluster({"pg1": None, "pg2": None, "pg3": standby_probe("0/5000000")},
                {"backup2": watch("0/5124F80")}, TWO_SITES)
    d = decide.failover(c, POLICY, site="dc2")
    assert d.data_loss and d.data_loss.verdict == "loss"
    assert "pg3 lacks at least 1.2 MB of WAL" in d.data_loss.sentence


def test_failover_stays_in_the_lost_primarys_site_even_when_a_remote_standby_ties():
    c = cluster({"pg1": None, "pg3": standby_probe("0/5000000"),
                 "pg2": standby_probe("0/5000000")}, {"backup1": watch("0/5000000")},
                TWO_SITES)
    d = decide.failover(c, POLICY)
    assert d.proceed and d.target == "pg2" and d.followers == ("pg3",)


def test_a_remote_standby_ahead_of_the_local_one_is_evidence_of_loss_not_a_silent_site_move():
    """pg3 (dc2) holds WAL pg2 lacks: the default stays in dc1, and the data-loss gate
    refuses pg2 naming pg3's copy; the operator chooses: --to pg3, or the loss."""
    c = cluster({"pg1": None, "pg2": standby_probe("0/4000000"),
                 "pg3": standby_probe("0/5000000")}, {"backup1": watch("0/4800000")},
                TWO_SITES)
    d = decide.failover(c, POLICY)
    assert d.target == "pg2" and not d.proceed
    assert "held by pg3" in d.data_loss.sentence
    named = decide.failover(c, POLICY, target="pg3")
    assert named.proceed and named.followers == ("pg2",)


def test_with_no_standby_left_in_the_primarys_site_nothing_is_chosen_for_the_operator():
    c = cluster({"pg1": None, "pg2": None, "pg3": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000")}, TWO_SITES)
    d = decide.failover(c, POLICY)
    assert d.target is None and not d.proceed
    [gate] = [g for g in d.failed if g.name == "target answers and is a standby"]
    assert "no standby of site dc1, where pg1 was the primary, answers" in gate.detail
    assert "drctl failover --to pg3" in gate.detail
    assert decide.failover(c, POLICY, target="pg3").proceed


def test_a_site_failover_picks_the_named_sites_best_standby_and_says_what_clients_must_do():
    c = cluster({"pg1": None, "pg2": None, "pg3": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000")}, TWO_SITES)
    d = decide.failover(c, POLICY, site="dc2")
    assert d.proceed and d.target == "pg3" and "of site dc2" in d.why_target
    [move] = [n for n in d.notes if n.startswith("the primary moves from site dc1 to site dc2")]
    assert "clients must reach dc2's VIP from now on" in move
    assert "drctl changes none of them" in move
    # with the sites' VIPs among the facts, the sentence names the address to connect to
    named = dataclasses.replace(c, site_vips={"dc1": "10.0.0.100", "dc2": "10.0.16.100"})
    assert "clients must reach dc2's VIP (10.0.16.100) from now on" in \
        decide.site_move(named, "pg3", "pg1")
    local = decide.failover(cluster({"pg1": None, "pg2": standby_probe("0/5000000"),
                                     "pg3": standby_probe("0/5000000")},
                                    {"backup1": watch("0/5000000")}, TWO_SITES), POLICY)
    assert local.target == "pg2" and not any("moves from site" in n for n in local.notes)


@pytest.mark.parametrize("kw, detail", [
    ({"site": "dc9"}, "'dc9' is not a site of the inventory (dc1, dc2)"),
    ({"site": "dc2", "target": "pg2"}, "pg2 is in site dc1, not dc2"),
    ({"site": "dc1"}, "none chosen: no reachable, unfenced standby in site dc1"),
])
def test_a_site_failover_refuses_what_does_not_add_up(kw, detail):
    c = cluster({"pg1": None, "pg2": None, "pg3": standby_probe("0/5000000")},
                {"backup1": watch("0/5000000")}, TWO_SITES)
    d = decide.failover(c, POLICY, **kw)
    assert not d.proceed and any(detail in g.detail for g in d.failed), d.failed


def test_a_switchover_to_another_site_says_what_clients_must_do():
    def primary(replication: list[dict]) -> dict:
        return {"fenced": False, "holds_vip": True, "postgres": {
            "in_recovery": False, "lsn": "0/5000000", "timeline": 1, "prepared_xacts": 0,
            "replication": replication}}

    rows = [{"application_name": h, "state": "streaming", "sync_state": "async",
             "lag_bytes": 0, "ssl": True} for h in ("pg2", "pg3")]
    c = cluster({"pg1": primary(rows), "pg2": standby_probe(), "pg3": standby_probe()},
                None, TWO_SITES)
    d = decide.switchover(c, POLICY, target="pg3")
    assert d.proceed, d.failed
    [move] = d.notes
    assert move.startswith("the primary moves from site dc1 to site dc2")
    assert move.endswith("dc1's nodes follow the new primary as standbys")
    assert decide.switchover(c, POLICY, target="pg2").notes == ()


@pytest.mark.parametrize(("synchronous", "accepts", "ok"), [
    (True, False, True), (False, True, True), (True, True, True), (False, False, False)])
def test_auto_arming_needs_synchronous_replication_or_consent(
        synchronous: bool, accepts: bool, ok: bool) -> None:
    gate = decide.auto_arming(dataclasses.replace(
        POLICY, synchronous=synchronous, auto_accept_async_loss=accepts))
    assert gate.ok is ok
    if not ok:  # the refusal names both ways out
        assert "drctl_synchronous: true" in gate.detail
        assert "drctl_auto_accept_async_loss: true" in gate.detail


# ---------------------------------------------------------------- the guard's stand-in

@pytest.mark.parametrize(("kw", "words"), [
    ({"standby": False}, "not a standby"),
    ({"local": {"fenced": True}}, "this node is fenced"),
    ({"local": {"paused": True}}, "automatic failover is paused"),
    ({"local": {"location": "dc2"}}, "only `drctl failover` promotes it"),
    ({"repmgrd_down_s": None}, "repmgrd runs"),
    ({"repmgrd_down_s": 56.0}, "repmgrd has not run for 56 s only, under 60 s"),
    ({"lost": None}, "no watcher saw a primary"),
    ({"location_peers": ("pg1", "pg3")}, "pg3 is also a standby of this location"),
])
def test_the_guard_stands_in_only_where_repmgrd_cannot_and_nobody_else_could(
        kw: dict[str, Any], words: str) -> None:
    """repmgrd does not start on a standby whose upstream is not running: after a power
    cut of the whole location whose primary never returns, the guard asks the election's
    rules itself, on the location's only standby, once repmgrd has been absent for 60 s."""
    args: dict[str, Any] = {"standby": True, "repmgrd_down_s": 62.0,
                            "location_peers": ("pg1",), "lost": "pg1"}
    args.update({k: v for k, v in kw.items() if k != "local"})
    gate = decide.stand_in(local(**kw.get("local", {})), **args)
    assert not gate.ok and words in gate.detail, gate.detail


def test_the_guard_stands_in_for_the_locations_only_standby() -> None:
    gate = decide.stand_in(local(), standby=True, repmgrd_down_s=62.4,
                           location_peers=("pg1",), lost="pg1")
    assert gate.ok and "repmgrd has not run for 62 s" in gate.detail and "pg1" in gate.detail
    # the lost primary is no other standby; a standby of the other location is not a peer
    assert decide.stand_in(local(), standby=True, repmgrd_down_s=90.0, location_peers=(),
                           lost="pg1").ok


@pytest.mark.parametrize(("kw", "due"), [
    ({}, True),
    ({"standby": False}, False),
    ({"repmgrd_down_s": None}, False),
    ({"repmgrd_down_s": 59.0}, False),
    ({"local": {"fenced": True}}, False),
])
def test_the_stand_ins_own_half_decides_alone_what_it_can(kw: dict[str, Any], due: bool
                                                           ) -> None:
    """The guard asks the witness only where stand_in_due says yes: where it says no, the
    whole rule says the same, whatever the watchers saw."""
    args: dict[str, Any] = {"standby": True, "repmgrd_down_s": 62.0}
    args.update({k: v for k, v in kw.items() if k != "local"})
    half = decide.stand_in_due(local(**kw.get("local", {})), **args)
    assert half.ok is due
    for lost, peers in (("pg1", ("pg1",)), (None, ()), ("pg1", ("pg1", "pg3"))):
        whole = decide.stand_in(local(**kw.get("local", {})), **args,
                                location_peers=peers, lost=lost)
        if not due:
            assert not whole.ok and whole.detail == half.detail


# ------------------------------------------------------------------ rebuild


def test_a_rebuild_with_every_node_gone_needs_consent_and_says_what_is_unknown() -> None:
    c = cluster({"pg1": None, "pg2": None}, {"backup1": watch("0/7000000")})
    d = decide.rebuild(c, "cloud1")
    assert not d.proceed and [g.name for g in d.failed] == ["no acknowledged commit lost"]
    assert d.failed[0].overridable
    assert d.data_loss is not None and d.data_loss.verdict == "unknown"
    assert "backup1 saw pg1 write up to 0/7000000" in d.data_loss.sentence
    assert "pg1, pg2 do not answer" in d.data_loss.sentence
    accepted = decide.rebuild(c, "cloud1", allow_data_loss=True)
    assert accepted.proceed and accepted.data_loss_accepted
    assert "accepted with --allow-data-loss" in accepted.gates[-1].detail


def test_a_rebuild_without_a_watcher_says_nobody_knows_when_the_primary_last_wrote() -> None:
    d = decide.rebuild(cluster({"pg1": None}), "cloud1", allow_data_loss=True)
    assert d.proceed
    assert "no watcher answers" in d.data_loss.sentence


def test_a_primary_that_answers_refuses_a_rebuild_even_with_consent_to_lose_data() -> None:
    c = cluster({"pg1": primary_probe(), "pg2": None})
    d = decide.rebuild(c, "cloud1", allow_data_loss=True)
    assert [g.name for g in d.failed] == ["no primary answers"]
    assert "pg1 still accepts writes" in d.failed[0].detail
    # the operator, told which one, may leave it running; naming another is refused
    assert decide.rebuild(c, "cloud1", True, despite_primary="pg1").proceed
    wrong = decide.rebuild(c, "cloud1", True, despite_primary="pg2")
    assert {g.name for g in wrong.failed} == {"no primary answers",
                                              "the primary left running is one"}


def test_a_rebuild_onto_a_node_of_the_cluster_is_refused() -> None:
    d = decide.rebuild(cluster({"pg1": None, "pg2": standby_probe()}), "pg2", True)
    assert [g.name for g in d.failed] == ["target is outside the cluster"]
