"""drctl diverged: listing, showing and dropping kept copies, with the nodes' answers faked."""

import json
from typing import Any

import pytest
from click.testing import CliRunner

from drctl import cli as cli_mod
from drctl import diverged as dv
from drctl.exitcodes import ExitCode

COPY = {"name": "main.diverged-20261127T080000Z",
        "path": "/var/lib/postgresql/15/main.diverged-20261127T080000Z", "bytes": 3 << 30,
        "at": "2026-11-27T08:00:00Z", "recorded": True, "commits": 10,
        "first_commit_at": "2026-11-27 07:59:01 UTC", "last_commit_at": "2026-11-27 07:59:02 UTC",
        "fork_lsn": "0/5000000", "timeline": 1, "xids": [751], "commit_samples": [],
        "sentence": "", "by_rmgr": {}}


@pytest.fixture
def nodes(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """pg1 keeps COPY, pg2 keeps nothing; every remote command is recorded."""
    calls: list[list[str]] = []

    def fake_run(inv: Any, host: str, remote: list[str], timeout: float = 8,
                 stdin: str | None = None) -> tuple[int, str, str]:
        if remote[:2] == ["python3", "-"]:  # the cluster's lock on the ledger host
            calls.append([host, "ledger", remote[4]])
            return 0, json.dumps({"ok": True, "lock": {"op_id": "x"}, "released": None}), ""
        calls.append([host, *remote[1:]])
        if remote[1] == "diverged-list":
            copies = [COPY] if host == "pg1" else []
            return 0, json.dumps({"ok": True, "host": host, "copies": copies,
                                  "data_dir": "/var/lib/postgresql/15/main",
                                  "bin_dir": "/usr/lib/postgresql/15/bin"}), ""
        if remote[1] == "diverged-drop":
            return 0, json.dumps({"ok": True, "host": host, "dropped": COPY}), ""
        return 1, "", "unexpected"

    monkeypatch.setattr("drctl.sshprobe.run", fake_run)
    return calls


def run(*args: str) -> Any:
    return CliRunner().invoke(cli_mod.cli, list(args), standalone_mode=True)


def test_list_names_every_copy_and_what_it_holds(make_inventory, nodes) -> None:
    inv = str(make_inventory())
    result = run("diverged", "list", "-i", inv, "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [(c["host"], c["name"]) for c in out["copies"]] == [("pg1", COPY["name"])]
    pretty = run("diverged", "list", "-i", inv)
    assert "10 commits committed between 2026-11-27 07:59:01 UTC" in pretty.output
    assert "3.0 GiB" in pretty.output


def test_show_gives_the_commands_that_read_the_rows(make_inventory, nodes) -> None:
    result = run("diverged", "show", "pg1", COPY["name"], "-i", str(make_inventory()),
                 "--format", "json")
    assert result.exit_code == 0, result.output
    look = json.loads(result.output)["look"]
    assert any(c.startswith(f"cp -a {COPY['path']} {dv.SCRATCH_DIR}/") for c in look)
    assert any("pg_ctl" in c and f"port={dv.SCRATCH_PORT}" in c and "listen_addresses=''" in c
               for c in look), "a private socket, no TCP listener"
    assert not any(f"rm -rf {COPY['path']}" in c for c in look), "the kept copy is untouched"


def test_drop_without_a_terminal_needs_yes_and_says_what_is_at_stake(make_inventory,
                                                                     nodes) -> None:
    inv = str(make_inventory())
    refused = run("diverged", "drop", "pg1", COPY["name"], "-i", inv)
    assert refused.exit_code == ExitCode.REFUSED
    assert "10 commits" in refused.output and "nothing was deleted" in refused.output
    assert not any(c[1] == "diverged-drop" for c in nodes)
    assert not any(c[1] == "ledger" for c in nodes), "a refusal takes no lock"
    done = run("diverged", "drop", "pg1", COPY["name"], "-i", inv, "--yes")
    assert done.exit_code == 0, done.output
    assert ["pg1", "diverged-drop", COPY["name"]] in nodes
    # under the cluster's lock, taken before and given back after
    ledger = [c for c in nodes if c[1] == "ledger"]
    assert ledger == [["backup1", "ledger", "take"], ["backup1", "ledger", "release"]]
    assert nodes.index(ledger[0]) < nodes.index(["pg1", "diverged-drop", COPY["name"]])


def test_drop_of_an_unknown_copy_or_host_changes_nothing(make_inventory, nodes) -> None:
    inv = str(make_inventory())
    assert run("diverged", "drop", "pg2", COPY["name"], "-i", inv, "--yes").exit_code == 1
    assert run("diverged", "drop", "backup1", COPY["name"], "-i", inv, "--yes"
               ).exit_code == ExitCode.USAGE
    assert not any(c[1] == "diverged-drop" for c in nodes)


@pytest.mark.parametrize("copy,words", [
    ({"commits": None, "recorded": False}, "never counted"),
    ({"commits": None, "recorded": True}, "could not be counted"),
    ({"commits": 0, "recorded": True}, "no commit"),
    ({"commits": 1, "recorded": True}, "1 commit,"),
])
def test_at_stake_never_reads_unknown_as_nothing(copy, words) -> None:
    assert words in dv.at_stake(copy)
