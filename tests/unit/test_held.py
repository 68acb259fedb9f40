"""drctl confirm-primary: a held node is started only on the operator's word, after
drctl said what is at stake; the nodes' answers are faked."""

import json
from typing import Any

import pytest
from click.testing import CliRunner

from drctl import cli as cli_mod
from drctl import sshprobe
from drctl.exitcodes import ExitCode

HELD = {"since": "2026-11-27T10:25:15Z", "liftable": True, "timeline": 1,
        "reason": "no peer confirms that this node (timeline 1) is still the primary",
        "peers": [{"name": "pg2", "role": None, "timeline": None}]}


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """pg1's probe reports STATE['held']; its confirm-primary calls are recorded."""
    state: dict[str, Any] = {"held": dict(HELD), "calls": [], "ledger": []}

    def fake_probe(inv: Any, host: str, command: list[str] | None = None
                   ) -> sshprobe.ProbeResult:
        return sshprobe.ProbeResult(host, True, {"host": host, "postgres": None,
                                                 "start_held": state["held"]})

    def fake_run(inv: Any, host: str, remote: list[str], timeout: float = 8,
                 stdin: str | None = None) -> tuple[int, str, str]:
        if remote[:2] == ["python3", "-"]:  # the cluster's ledger (lock and journal)
            state["ledger"].append([host, remote[4]])
            return 0, json.dumps({"ok": True, "lock": {"op_id": "x"}, "released": None}), ""
        state["calls"].append([host, *remote[1:]])
        return 0, json.dumps({"ok": True, "host": host, "started": True,
                              "held": state["held"]}), ""

    monkeypatch.setattr("drctl.sshprobe.probe", fake_probe)
    monkeypatch.setattr("drctl.sshprobe.run", fake_run)
    return state


def run(*args: str) -> Any:
    return CliRunner().invoke(cli_mod.cli, list(args), standalone_mode=True)


def test_without_a_terminal_it_says_what_is_at_stake_and_starts_nothing(make_inventory,
                                                                        node) -> None:
    result = run("confirm-primary", "pg1", "-i", str(make_inventory()))
    assert result.exit_code == ExitCode.REFUSED
    assert "timeline 1" in result.output and "pg2 did not answer" in result.output
    assert "both accept writes" in result.output
    assert node["calls"] == []


def test_with_yes_it_lifts_the_hold_once(make_inventory, node) -> None:
    result = run("confirm-primary", "pg1", "-i", str(make_inventory()), "--yes",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["started"] is True
    assert node["calls"] == [["pg1", "confirm-primary", "--by", "drctl confirm-primary"]]
    # under the cluster's lock, taken and given back on the ledger host (the backup host)
    assert node["ledger"] == [["backup1", "take"], ["backup1", "release"]]


@pytest.mark.parametrize(("held", "words"), [
    (None, "holds no start"),
    ({**HELD, "liftable": False, "reason": "pg2 is a writable primary on this node's "
      "own timeline"}, "cannot be lifted"),
])
def test_nothing_to_lift_or_a_hold_no_lift_may_override(make_inventory, node,
                                                        held: Any, words: str) -> None:
    node["held"] = held
    result = run("confirm-primary", "pg1", "-i", str(make_inventory()), "--yes")
    assert result.exit_code == ExitCode.REFUSED and words in result.output, result.output
    assert node["calls"] == []


def test_a_host_that_is_not_a_postgresql_node_is_named_in_one_line(make_inventory,
                                                                   node) -> None:
    result = run("confirm-primary", "nosuch", "-i", str(make_inventory()), "--yes")
    assert result.exit_code == ExitCode.USAGE
    assert "nosuch is not a PostgreSQL node of the inventory" in result.output
