"""Automatic failover's state from probe data, and the commands around it."""

import copy

import pytest
from click.testing import CliRunner

from drctl import auto_state as auto
from drctl import cli as cli_mod
from drctl.operations import failover
from tests.unit.conftest import GOOD_HOSTS
from tests.unit.test_ha import inv, node, report


def probe(**kw):
    base = {"repmgrd": "active", "paused": None, "location": "default",
            "primary_location": "default", "max_lag_bytes": 1000, "witness_visible": True,
            "lag_sample": {"lag_bytes": 0, "age_s": 1.0}, "events": []}
    return {**base, **kw}


def pair(primary_auto=None, standby_auto=None, **standby):
    return [node("pg1", "primary", _auto=primary_auto or probe()),
            node("pg2", "standby", _auto=standby_auto or probe(),
                 **{"streaming": True, "lag_bytes": 10, **standby})]


def test_disabled_when_no_node_has_repmgr():
    s = auto.summarize([node("pg1", "primary", _auto=None), node("pg2", "standby", _auto=None)],
                       "pg1")
    assert s["state"] == "disabled"


def test_armed_names_the_standby_it_would_promote():
    s = auto.summarize(pair(), "pg1")
    assert s["state"] == "armed"
    assert s["eligible"] == ["pg2"]
    assert "would promote pg2" in auto.describe(s)


def test_paused_wins_and_says_who_paused_it():
    s = auto.summarize(pair(standby_auto=probe(paused={"since": "T", "reason": "drctl "
                                                       "switchover", "by": "operation"})),
                       "pg1")
    assert s["state"] == "paused"
    assert "drctl switchover" in s["reasons"][0]


@pytest.mark.parametrize("change, why", [
    ({"standby_auto": probe(witness_visible=False, witness_error="timeout")}, "no quorum"),
    ({"streaming": False}, "not streaming"),
    ({"lag_bytes": 5000}, "above the limit 1000"),
    ({"fenced": True}, "fenced"),
    ({"standby_auto": probe(location="dr")}, "only `drctl failover` promotes it"),
    ({"primary_auto": probe(repmgrd="inactive")}, "repmgrd is inactive on pg1"),
    ({"standby_auto": probe(upstream_last_seen_s=40)}, "degraded monitoring"),
])
def test_impossible_says_why(change, why):
    s = auto.summarize(pair(**change), "pg1")
    assert s["state"] == "impossible"
    assert any(why in r for r in s["reasons"]), s["reasons"]


@pytest.mark.parametrize("sync_state, commit, accepts, armed", [
    ("async", "on", False, False),  # the promotion would give up the window unconsented
    ("async", "on", True, True),
    ("sync", "on", False, True),
    ("sync", "local", False, False),  # listed as synchronous, but no commit waits for it
    (None, "on", False, True),  # not known: the forecast says nothing
])
def test_the_asynchronous_window_without_consent_is_forecast(sync_state, commit, accepts,
                                                            armed):
    policy = {"drctl_auto_accept_async_loss": accepts}
    nodes = [node("pg1", "primary", _auto=probe(policy=policy),
                  _sync_settings={"synchronous_commit": commit,
                                  "synchronous_standby_names": "FIRST 1 (pg2)"}),
             node("pg2", "standby", _auto=probe(policy=policy), streaming=True, lag_bytes=0,
                  sync_state=sync_state)]
    s = auto.summarize(nodes, "pg1")
    assert (s["state"] == "armed") is armed, s["reasons"]
    if not armed:
        assert any("drctl_auto_accept_async_loss is true" in r for r in s["reasons"])


def test_no_primary_is_impossible():
    nodes = [node("pg1", "down", _auto=probe()), node("pg2", "standby", _auto=probe())]
    s = auto.summarize(nodes, None)
    assert s["state"] == "impossible"
    assert any("no primary" in r for r in s["reasons"])


def test_last_promotion_is_the_newest_repmgrd_promotion():
    events = [{"step": "promoted", "by": "repmgrd", "host": "pg2", "at": "2026-01-01T00:00:01"},
              {"step": "auto-validate", "host": "pg2", "at": "2026-01-01T00:00:02"}]
    nodes = [node("pg1", "down", _auto=probe()),
             node("pg2", "primary", _auto=probe(events=events))]
    assert auto.summarize(nodes, "pg2")["last_promotion"]["host"] == "pg2"


def test_failover_after_an_automatic_promotion_changes_nothing():
    from tests.unit.test_rules import cluster, primary_probe

    rep = report(node("pg1", "unknown", reachable=False), node("pg2", "primary"),
                 primary="pg2", holders=("pg2",))
    rep["auto"] = {"last_promotion": {"host": "pg2", "at": "T", "timeline": 3}}
    facts = cluster({"pg1": None, "pg2": primary_probe(standbys={})})
    p = failover.plan(inv(), rep, facts, None, False)
    assert p.target == "pg2"
    assert "automatic failover promoted it" in p.nothing_to_do
    assert p.ok


def test_auto_without_a_backup_host_is_refused(make_inventory, tmp_path, monkeypatch):
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))
    hosts = copy.deepcopy(GOOD_HOSTS)
    del hosts["all"]["children"]["backup"]
    res = CliRunner().invoke(cli_mod.cli, ["auto", "enable", "-i", str(make_inventory(hosts))])
    assert res.exit_code == 3, res.output
    assert "witness" in res.output


def test_a_down_node_without_repmgr_data_does_not_break_the_summary():
    nodes = [node("pg1", "down", _auto=None), node("pg2", "standby", _auto=probe())]
    assert auto.summarize(nodes, None)["state"] == "impossible"


def test_a_lag_sample_counts_only_on_a_standby_and_while_fresh():
    old = {"lag_bytes": 0, "age_s": auto.LAG_SAMPLE_FRESH_S + 30}
    # the primary's sample is the one it left as a standby before a switchover
    s = auto.summarize(pair(primary_auto=probe(lag_sample={"lag_bytes": 0, "age_s": 1.0})),
                       "pg1")
    assert s["nodes"]["pg1"]["lag_sample"] is None
    assert s["nodes"]["pg2"]["lag_sample"] == {"lag_bytes": 0, "age_s": 1.0}
    # the primary does not list the standby: an old sample of 0 bytes is not its lag now
    stale = auto.summarize(pair(standby_auto=probe(lag_sample=old), lag_bytes=None), "pg1")
    assert stale["nodes"]["pg2"]["lag_sample"] is None
    fresh = auto.summarize(pair(standby_auto=probe(lag_sample={"lag_bytes": 5000,
                                                               "age_s": 2.0}),
                                lag_bytes=None), "pg1")
    assert fresh["state"] == "impossible"
    assert any("above the limit 1000" in r for r in fresh["reasons"]), fresh["reasons"]
