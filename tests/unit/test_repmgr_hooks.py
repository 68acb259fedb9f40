"""drctl-auto validate on a standby: it probes the primary the watchers saw last for as
long as the rules say, then gathers the facts again and decides (repmgrd's exit code)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from drctl.node import common, liveness, probe
from drctl.node import repmgr_hooks as auto
from drctl.rules import decide
from drctl.rules.facts import Liveness, WatcherFacts

NOW = 1_800_000_000.0


def record(age: float, lsn: str = "0/5000000") -> WatcherFacts:
    return WatcherFacts.from_json("backup1", {
        "now": NOW, "checked_at": NOW - 0.2, "primary": {
            "host": "pg1", "timeline": 1, "lsn": lsn, "at": NOW - age,
            "lost_at": NOW - age + 0.5, "synchronous_commit": "on",
            "standbys": {"pg2": {"sync_state": "async"}}}})


@pytest.fixture
def validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run cmd_validate with the witness's records, this node's WAL and the probe faked;
    returns what happened (probes asked for, decisions logged)."""
    seen: dict[str, Any] = {"probes": [], "reads": 0, "records": [record(1.0), record(4.3)],
                            "answer": None}
    c = common.Config(name="pg2", fence_file=str(tmp_path / "fenced"),
                      auto_paused=str(tmp_path / "paused"),
                      peers=({"name": "pg1", "address": "10.0.0.11"},))
    s = {"location": "dc1", "primary_location": "dc1", "event_log": str(tmp_path / "ev"),
         "policy": {"drctl_blip_tolerance_s": 4, "drctl_auto_accept_async_loss": True}}

    def witness(_c: Any, _s: Any) -> tuple[list[WatcherFacts], str]:
        seen["reads"] += 1
        return [seen["records"][min(seen["reads"], len(seen["records"])) - 1]], ""

    def fake_probe(host: str, address: str, port: int, seconds: float,
                   every_s: float) -> Liveness:
        seen["probes"].append((host, address, port, round(seconds, 2)))
        return Liveness(host, seconds, 33, seen["answer"])

    monkeypatch.setattr(auto, "witness_records", witness)
    monkeypatch.setattr(liveness, "probe", fake_probe)
    monkeypatch.setattr(probe, "postgres_state", lambda c, as_user: {
        "in_recovery": True, "lsn": "0/5000000", "receive_lsn": "0/5000000", "timeline": 1,
        "receiver": None})

    def run() -> int:
        code = auto.cmd_validate(seen["config"], s, ["2", "2", "3"])
        lines = Path(s["event_log"]).read_text().splitlines()
        seen["logged"] = json.loads(lines[-1])
        return code

    seen["run"], seen["config"] = run, c
    return seen


def test_validate_probes_until_the_tolerance_then_decides_on_fresh_facts(
        validate: dict[str, Any]) -> None:
    """The watcher saw pg1 1.0 s ago when repmgrd asked: probe for the 3 s left of the
    4-s tolerance; the record read after the probe (4.3 s) is the one decided on."""
    assert validate["run"]() == 0
    assert validate["probes"] == [("pg1", "10.0.0.11", 5432, 3.0)]
    assert validate["reads"] == 2
    gate = next(g for g in validate["logged"]["gates"]
                if g["name"] == "the primary is silent and ignores probes")
    assert gate["ok"] and "unseen for 4.3 s" in gate["detail"]
    # the asynchronous window the promotion accepted, where its statement puts it: from
    # the watcher's last sighting (4.3 s ago), for 0.5 s until it lost the primary
    assert validate["logged"]["loss_window"] == {"from": NOW - 4.3, "seconds": 0.5}


def test_validate_refuses_a_primary_that_answers_a_probe(validate: dict[str, Any]) -> None:
    validate["answer"] = 0.2
    assert validate["run"]() == 1
    assert validate["logged"]["result"] == "refused"
    assert "answered a probe 0.20 s into it" in validate["logged"]["detail"]


def test_validate_refuses_a_primary_it_has_no_address_for(validate: dict[str, Any]) -> None:
    validate["config"] = dataclasses.replace(validate["config"], peers=())
    assert validate["run"]() == 1
    assert validate["probes"] == []
    assert "no address for pg1 among this node's peers" in validate["logged"]["detail"]


def test_validate_probes_at_least_the_minimum(validate: dict[str, Any]) -> None:
    validate["records"] = [record(8.0), record(9.1)]
    assert validate["run"]() == 0
    assert validate["probes"] == [("pg1", "10.0.0.11", 5432, decide.LIVENESS_PROBE_MIN_S)]


def test_promote_refuses_once_paused_after_the_validation(
        validate: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """An operation paused automatic failover between repmgrd's validation and its
    promote command: the operation has taken charge, nothing is promoted."""
    c = validate["config"]
    Path(c.auto_paused).write_text('{"by": "operation"}')
    promoted: list[str] = []
    monkeypatch.setattr(auto.handover, "promote_and_wait",
                        lambda *a, **k: promoted.append("promoted") or True)
    s = {"event_log": str(Path(c.auto_paused).parent / "ev"), "node_id": 2}
    assert auto.cmd_promote(c, s, []) == 1
    assert promoted == []
    logged = json.loads(Path(s["event_log"]).read_text().splitlines()[-1])
    assert logged["result"] == "refused" and "paused" in logged["detail"]


def test_promote_clears_a_synchronous_standby_before_and_after_the_promotion(
        validate: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """repmgrd's promote command: the synchronous list is cleared while the node is a
    standby (a promoted server applies it only once its checkpointer reloads) and asked
    again once promoted, before repmgr's records are written (a commit of its own)."""
    c = validate["config"]
    ran: list[str] = []
    names = {"now": "ANY 1 (pg1)"}

    def fake_relax(c: common.Config, as_user: str | None = "postgres") -> str:
        ran.append("relax")
        was, names["now"] = names["now"], ""
        return was

    monkeypatch.setattr(auto.handover, "relax_synchronous", fake_relax)
    monkeypatch.setattr(auto.handover, "promote_and_wait",
                        lambda *a, **k: ran.append("promote") or True)
    monkeypatch.setattr(auto.handover, "drop_standby_conf", lambda c: True)
    monkeypatch.setattr(auto, "psql", lambda c, q, **kw: ran.append(q.split()[0]) or "0/5|2")
    s = {"event_log": str(Path(c.auto_paused).parent / "ev"), "node_id": 2}
    assert auto.cmd_promote(c, s, []) == 0
    assert ran[:4] == ["relax", "promote", "relax", "begin;"], ran
    logged = json.loads(Path(s["event_log"]).read_text().splitlines()[-1])
    assert logged["step"] == "promoted" and logged["relaxed_synchronous"] is True


def test_the_guards_stand_in_validates_as_an_election_then_promotes(
        validate: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """`drctl-auto stand-in` (the guard's, where repmgrd cannot start): the validation an
    election runs, logged as the guard's, then the same promotion; a refusal promotes
    nothing."""
    c = validate["config"]
    s = {"location": "dc1", "primary_location": "dc1",
         "event_log": str(Path(c.auto_paused).parent / "ev"), "node_id": 2,
         "policy": {"drctl_blip_tolerance_s": 4, "drctl_auto_accept_async_loss": True}}
    promoted: list[str] = []
    monkeypatch.setattr(auto, "cmd_promote", lambda c, s, a: promoted.append("promote") or 0)
    validate["answer"] = 0.2  # pg1 answers a probe: alive, nothing is promoted
    assert auto.cmd_stand_in(c, s, []) == 1 and promoted == []
    logged = json.loads(Path(s["event_log"]).read_text().splitlines()[-1])
    assert logged["result"] == "refused" and logged["by"].startswith("drctl-guard")
    validate["answer"] = None
    validate["reads"] = 0
    assert auto.cmd_stand_in(c, s, []) == 0 and promoted == ["promote"]
    logged = json.loads(Path(s["event_log"]).read_text().splitlines()[-1])
    assert logged["step"] == "auto-validate" and logged["result"] == "passed"


@pytest.mark.parametrize(("policy", "code", "says"), [
    ({"drctl_synchronous": True, "drctl_auto_accept_async_loss": False}, 0, "synchronous"),
    ({"drctl_synchronous": "False", "drctl_auto_accept_async_loss": "True"}, 0,
     "drctl_auto_accept_async_loss: true"),
    ({"drctl_synchronous": False, "drctl_auto_accept_async_loss": False}, 1,
     "no operator is there to consent"),
    ({}, 1, "replication is asynchronous"),
])
def test_arming_asks_the_rules_before_anything_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: dict[str, Any], code: int,
        says: str) -> None:
    # no settings file yet: the role asks before it writes one
    c = common.Config(name="pg1", auto_settings=str(tmp_path / "missing.json"))
    assert auto.main(c, ["arming", json.dumps(policy)]) == code
    assert says in capsys.readouterr().out


@pytest.mark.parametrize("arg", [[], ["not json"], ["[1, 2]"]])
def test_arming_without_a_policy_is_a_usage_error(tmp_path: Path, arg: list[str]) -> None:
    c = common.Config(name="pg1", auto_settings=str(tmp_path / "missing.json"))
    assert auto.main(c, ["arming", *arg]) == 2
