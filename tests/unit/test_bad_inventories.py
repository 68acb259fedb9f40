"""Every failure while reading an inventory is exit 3 (INVALID_INVENTORY) naming the file
and the field: never a traceback, never a hang, never a host contacted first."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from drctl import cli as cli_mod
from drctl.exitcodes import ExitCode
from tests.unit.conftest import GOOD_HOSTS, GOOD_VARS

# (name, hosts.yml text or None for the good one, group_vars/all, words the error names)
CASES: list[tuple[str, str | None, dict[str, Any], tuple[str, ...]]] = [
    ("a list where the children mapping belongs",
     "all:\n  children: [pg_primary, pg_standby]\n", GOOD_VARS, ("'children'", "mapping")),
    ("a list where a group's hosts belong",
     "all:\n  children:\n    pg_primary:\n      hosts: [pg1]\n", GOOD_VARS,
     ("'hosts'", "mapping")),
    ("a list where a group's vars belong",
     yaml.safe_dump({"all": {**GOOD_HOSTS["all"], "vars": ["drctl_vip"]}}), GOOD_VARS,
     ("'vars'", "mapping")),
    ("a number of bytes that is not a number", None,
     {**GOOD_VARS, "drctl_max_lag_bytes": "lots"}, ("drctl_max_lag_bytes", "whole number")),
    ("a negative port", None, {**GOOD_VARS, "drctl_pg_port": -5}, ("drctl_pg_port", "-5")),
    ("a port past 65535", None, {**GOOD_VARS, "drctl_pg_port": 70000},
     ("drctl_pg_port", "65535")),
    ("a VRRP router id of 0", None, {**GOOD_VARS, "drctl_vrrp_router_id": 0},
     ("drctl_vrrp_router_id", "1 to 255")),
    ("a boolean that is a word", None, {**GOOD_VARS, "drctl_synchronous": "maybe"},
     ("drctl_synchronous", "true or false")),
    ("a boolean given for a number", None, {**GOOD_VARS, "drctl_watch_gap_s": True},
     ("drctl_watch_gap_s", "whole number")),
    ("a mapping given for a list", None, {**GOOD_VARS, "drctl_app_networks": {"a": 1}},
     ("drctl_app_networks", "list")),
    ("a number given for text", None, {**GOOD_VARS, "drctl_cluster_name": 7},
     ("drctl_cluster_name", "text")),
    ("groups nested past any sensible depth",
     "all:\n  children:\n" + "".join(f"{'  ' * (2 * i + 2)}g{i}:\n{'  ' * (2 * i + 3)}children:\n"
                                    for i in range(30)), GOOD_VARS, ("nested",)),
]


def run(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_mod.cli, ["status", "-i", str(path), *args])
    return result.exit_code, result.output


@pytest.fixture
def contacts(monkeypatch) -> list[str]:
    """Every attempt to reach a host (a TCP connection, or a process such as ssh or
    ansible-playbook), refused and recorded: a test asserts the list stays empty, which
    holds however slow the machine is, where a time limit would not."""
    tried: list[str] = []

    def refuse(what: str):
        def attempt(*args: Any, **kwargs: Any) -> Any:
            tried.append(f"{what} {args[1:2] or args[:1]}")
            raise OSError(f"test: {what} refused")
        return attempt

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect"))
    monkeypatch.setattr(subprocess, "Popen", refuse("process"))
    return tried


@pytest.mark.parametrize("name, text, all_vars, words", CASES, ids=[c[0] for c in CASES])
def test_a_bad_inventory_is_exit_3_naming_the_field(make_inventory, contacts, name, text,
                                                    all_vars, words):
    path = make_inventory(all_vars=all_vars, raw=text)
    code, out = run(path)
    assert code == ExitCode.INVALID_INVENTORY, out
    assert "Traceback" not in out and str(path) in out, out
    for word in words:
        assert word in out, (word, out)
    assert contacts == [], "nothing but the files is read"


def test_json_errors_for_a_bad_inventory(make_inventory):
    path = make_inventory(all_vars={**GOOD_VARS, "drctl_pg_port": "x"})
    proc = subprocess.run([sys.executable, "-m", "drctl", "status", "-i", str(path),
                           "--format", "json"], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == ExitCode.INVALID_INVENTORY, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 3 and "drctl_pg_port" in doc["error"], doc


def test_a_templated_value_is_ansibles_to_resolve(make_inventory):
    """'{{ ... }}' is left to Ansible; only literal values are judged."""
    from drctl import inventory

    path = make_inventory(all_vars={**GOOD_VARS, "drctl_pg_port": "{{ my_port }}"})
    assert inventory.load(path).cluster["drctl_pg_port"] == "{{ my_port }}"


def test_undecodable_bytes_are_named_not_raised(make_inventory):
    path = make_inventory()
    path.write_bytes(b"all:\n  children:\n    pg_primary: \xff\xfe\n")
    code, out = run(path)
    assert code == ExitCode.INVALID_INVENTORY and "not UTF-8" in out, out


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "hosts.yml"
    os.mkfifo(fifo)
    box: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: box.update(result=run(fifo)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the reader so the test process can end
        with open(fifo, "w"):
            pass
        pytest.fail("reading a FIFO as the inventory blocked")
    code, out = box["result"]
    assert code == ExitCode.INVALID_INVENTORY and "not a regular file" in out, out


def test_a_fifo_among_the_group_vars_is_refused(make_inventory):
    path = make_inventory()
    os.mkfifo(path.parent / "group_vars" / "all" / "zz.yml")
    code, out = run(path)
    assert code == ExitCode.INVALID_INVENTORY and "not a regular file" in out, out


@pytest.mark.parametrize("args, words", [
    (["switchover", "--to", "pg9", "--yes"], ("pg9", "pg1, pg2")),
    (["failover", "--to", "pg9", "--yes"], ("pg9", "pg1, pg2")),
    (["failover", "--site", "dc9", "--yes"], ("dc9", "default")),
    (["failback", "--node", "pg9", "--yes"], ("pg9", "pg1, pg2")),
    (["failback", "--site", "dc9", "--switch-back", "--yes"], ("dc9", "default")),
    (["failback", "--site", "default", "--node", "pg1", "--yes"], ("--node and --site",)),
    (["switchover", "--to", "backup1", "--plan"], ("backup1", "not a PostgreSQL node")),
])
def test_an_unknown_host_or_site_is_a_usage_error_before_any_host_is_asked(
        make_inventory, contacts, args, words):
    path = make_inventory()
    result = CliRunner().invoke(cli_mod.cli, [*args, "-i", str(path)])
    assert result.exit_code == ExitCode.USAGE, result.output
    for word in words:
        assert word in result.output, (word, result.output)
    assert contacts == [], "a usage error asks no host"


@pytest.mark.parametrize("args, words", [
    (["drill", "--duration", "nan"], ("--duration", "finite")),
    (["drill", "--rate", "inf"], ("--rate",)),
    (["drill", "--app-rate", "-inf"], ("--app-rate",)),
    (["restore", "--target-time", "yesterday"], ("--target-time", "ISO 8601")),
    (["restore", "--target-lsn", "0/XYZ"], ("--target-lsn", "WAL position")),
    (["restore", "--name", "../etc"], ("--name", "no '/'")),
    (["restore", "--name", "a/b"], ("--name",)),
    (["journal", "--last", "0"], ("--last",)),
    (["journal", "--last", "-3"], ("--last",)),
])
def test_a_bad_argument_is_a_usage_error_before_anything_is_read(tmp_path, contacts, args,
                                                                words):
    """The inventory named does not even exist: the argument is refused first."""
    result = CliRunner().invoke(cli_mod.cli, [*args, "-i", str(tmp_path / "none.yml")])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, (word, result.output)
    assert contacts == []


@pytest.mark.parametrize("args", [["journal", "--format", "json", "--last", "0"],
                                  ["drill", "--duration", "nan", "--format", "json"],
                                  ["restore", "--format=json", "--name", "a/b"]])
def test_with_format_json_a_usage_error_is_a_json_document(args):
    """Whichever order the options come in: --format is read first."""
    proc = subprocess.run([sys.executable, "-m", "drctl", *args], capture_output=True,
                          text=True, check=False, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 2 and doc["exit_name"] == "USAGE" and not doc["ok"], doc
    assert "Invalid value" in doc["error"] and "Invalid value" in proc.stderr


def test_status_with_no_postgresql_node_answering_is_unreachable(make_inventory):
    """Nothing can be said of the cluster: exit 4 (UNREACHABLE), not 7, and the JSON still
    names every node as not answering."""
    path = make_inventory()
    result = CliRunner().invoke(cli_mod.cli, ["status", "-i", str(path), "--format", "json"])
    assert result.exit_code == ExitCode.UNREACHABLE, result.output
    doc = json.loads(result.output[result.output.index("{"):])
    assert [n["reachable"] for n in doc["nodes"]] == [False, False]
