"""The CLI driven through click's CliRunner: exit codes and messages, abort paths included."""

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from drctl import cli as cli_mod
from drctl.exitcodes import ExitCode, describe
from tests.unit.conftest import GOOD_VARS

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    return CliRunner().invoke(cli_mod.cli, list(args), standalone_mode=True)


@pytest.fixture
def no_remote(monkeypatch):
    """Fail the test if anything tries to run a playbook or probe a host."""

    def boom(*a, **k):
        raise AssertionError("nothing remote may run for an invalid inventory")

    monkeypatch.setattr("drctl.runner.run_playbook", boom)
    monkeypatch.setattr("drctl.sshprobe.probe_all", boom)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    for name in ("lab", "ping", "provision", "status", "exit-codes"):
        assert name in result.output


def test_unknown_option_is_a_usage_error():
    result = run("status", "--bogus")
    assert result.exit_code == ExitCode.USAGE
    assert "No such option" in result.output


def test_exit_codes_command_lists_every_code():
    result = run("exit-codes", "--format", "json")
    assert result.exit_code == 0
    assert '"INVALID_INVENTORY"' in result.output
    assert len(describe()) == len(ExitCode)
    assert all(meaning for _, _, meaning in describe())


@pytest.mark.parametrize("command", [["status"], ["ping"], ["provision"], ["provision", "--check"]])
def test_invalid_inventory_exits_3_before_anything_remote(make_inventory, no_remote, command):
    path = make_inventory(all_vars={**GOOD_VARS, "drctl_vip": "10.8.0.1/24"})
    result = run(*command, "-i", str(path))
    assert result.exit_code == ExitCode.INVALID_INVENTORY, result.output
    assert "outside host 'pg1''s subnet" in result.output
    assert "hint:" in result.output


def test_missing_inventory_points_at_lab_up(tmp_path, no_remote):
    result = run("status", "-i", str(tmp_path / "missing.yml"))
    assert result.exit_code == ExitCode.INVALID_INVENTORY
    assert "drctl lab up" in result.output


def test_main_maps_errors_to_exit_codes(make_inventory, no_remote):
    path = make_inventory(raw="all: [")
    proc = subprocess.run([sys.executable, "-m", "drctl", "status", "-i", str(path)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == ExitCode.INVALID_INVENTORY
    assert "malformed YAML" in proc.stderr


def test_with_format_json_a_failure_without_a_report_is_one_json_document(
        make_inventory, no_remote):
    """A script reading stdout gets the error, its code and the hint as JSON (and a person
    the same sentence on stderr); nothing is printed twice."""
    path = make_inventory(raw="all: [")
    for fmt in (["--format", "json"], ["--format=json"]):
        proc = subprocess.run([sys.executable, "-m", "drctl", "status", "-i", str(path), *fmt],
                              capture_output=True, text=True, cwd=ROOT, check=False)
        doc = json.loads(proc.stdout)
        assert proc.returncode == ExitCode.INVALID_INVENTORY == doc["exit_code"]
        assert doc["ok"] is False and doc["exit_name"] == "INVALID_INVENTORY"
        assert "malformed YAML" in doc["error"] and "malformed YAML" in proc.stderr
    plain = subprocess.run([sys.executable, "-m", "drctl", "status", "-i", str(path)],
                           capture_output=True, text=True, cwd=ROOT, check=False)
    assert plain.stdout == ""  # pretty output: the error goes to stderr only
    proc = subprocess.run([sys.executable, "-m", "drctl", "drill", "--scenario",
                           "site-failover", "--yes", "-i", str(make_inventory()), "--format",
                           "json"], capture_output=True, text=True, cwd=ROOT, check=False)
    doc = json.loads(proc.stdout)
    assert proc.returncode == ExitCode.REFUSED and "--allow-data-loss" in doc["hint"]


@pytest.mark.parametrize("argv", [
    ["status", "--bogus", "--format", "json"],
    ["nosuchverb", "--format=json"],
    ["journal", "--last", "0", "--format", "json"],
    ["switchover", "--format", "json", "--to"],
])
def test_a_usage_error_is_json_too_when_json_was_asked_for(argv):
    """click's own usage errors come before drctl knows the format: the words are read."""
    proc = subprocess.run([sys.executable, "-m", "drctl", *argv], capture_output=True,
                          text=True, cwd=ROOT, check=False)
    doc = json.loads(proc.stdout)
    assert proc.returncode == ExitCode.USAGE == doc["exit_code"], proc.stderr
    assert doc["ok"] is False and doc["exit_name"] == "USAGE" and doc["error"]
    assert "Error" in proc.stderr  # and the person's sentence on stderr, as before


@pytest.mark.parametrize("argv", [["status", "--bogus"], ["nosuchverb"],
                                  ["journal", "--last", "0"], ["switchover", "--to"],
                                  ["restore", "--target-time", "yesterday-ish"],
                                  ["drill", "--duration", "nan"]])
def test_a_usage_error_is_one_line(argv):
    proc = subprocess.run([sys.executable, "-m", "drctl", *argv], capture_output=True,
                          text=True, cwd=ROOT, check=False)
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("Error: ") and "--help`)" in proc.stderr, proc.stderr


def test_a_usage_error_without_json_asked_prints_nothing_on_stdout():
    for argv in (["status", "--bogus"], ["status", "--format", "pretty", "--bogus"],
                 ["status", "--bogus", "--", "--format", "json"]):
        proc = subprocess.run([sys.executable, "-m", "drctl", *argv], capture_output=True,
                              text=True, cwd=ROOT, check=False)
        assert proc.returncode == ExitCode.USAGE and proc.stdout == "", argv


def test_readme_documents_every_exit_code():
    readme = (ROOT / "README.md").read_text()
    for code, name, _meaning in describe():
        assert f"| {code} | `{name}` |" in readme, f"README lacks exit code {code} {name}"


def test_role_argument_specs_are_in_step_with_defaults():
    proc = subprocess.run([sys.executable, str(ROOT / "bin" / "argspecs"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout


def test_every_role_has_a_readme_in_step_with_its_meta_and_specs():
    proc = subprocess.run([sys.executable, str(ROOT / "bin" / "role-readmes"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout
    for role in (ROOT / "roles").iterdir():
        text = (role / "README.md").read_text()
        assert "## Variables" in text and "## Example" in text and "```yaml" in text, role


def test_every_role_option_is_described():
    import yaml

    for spec in (ROOT / "roles").glob("*/meta/argument_specs.yml"):
        options = yaml.safe_load(spec.read_text())["argument_specs"]["main"]["options"]
        for name, entry in options.items():
            assert not entry["description"].startswith("See defaults"), \
                f"{spec.parent.parent.name}: document {name} in defaults/main.yml"


@pytest.mark.parametrize("args", [["--rate", "-5"], ["--rate", "0"], ["--duration", "1"],
                                  ["--app-rate", "-1"]])
def test_drill_rejects_numbers_out_of_range_before_anything_runs(args, no_remote):
    res = CliRunner().invoke(cli_mod.cli, ["drill", "--yes", *args])
    assert res.exit_code == ExitCode.USAGE, res.output
    assert "range" in res.output


def test_ssh_commands_keep_each_remote_argument_whole(make_inventory) -> None:
    """ssh joins its remote words into one shell line: drctl quotes them, so an argument
    with spaces, and a `sh -c` script, reach the host as one argument under sudo."""
    import shlex

    from drctl import inventory as inv_mod
    from drctl import sshprobe

    inv = inv_mod.load(make_inventory())
    host = inv.pg_hosts[0].name
    inv.hosts[host].vars.update(ansible_user="ansible", ansible_become=True)
    cmd = sshprobe.ssh_command(inv, host, ["drctl-node", "confirm-primary", "--by", "a b"])
    assert shlex.split(cmd[-1]) == ["sudo", "-n", "drctl-node", "confirm-primary", "--by", "a b"]
    cmd = sshprobe.ssh_command(inv, host, ["sh", "-c", "true; false"])
    assert shlex.split(cmd[-1])[-3:] == ["sh", "-c", "true; false"]


def _probe(host: str, **extra: Any) -> Any:
    from drctl import sshprobe

    data = {"host": host, "address": "10.0.0.11", "probe_version": 2, "fenced": False,
            "postgres_service": "failed", "postgres": None,
            "postgres_error": "connection to server on socket failed",
            "keepalived_service": "active", **extra}
    return sshprobe.ProbeResult(host, True, data)


def test_status_says_a_held_node_waits_for_a_peer_and_how_to_lift_it() -> None:
    from drctl import status

    held = {"since": "2026-11-27T10:00:00", "reason": "no peer confirms it", "liftable": True,
            "timeline": 1, "peers": [{"name": "pg2", "role": None, "timeline": None}]}
    n = status._node("pg1", "10.0.0.11", _probe("pg1", start_held=held))
    _, problems = status.evaluate([n], 1 << 30)
    assert n["start_held"] == held
    assert any("pg1: PostgreSQL is held down" in p and "no peer confirms it" in p
               and "drctl confirm-primary pg1" in p for p in problems), problems
    starting = status._node("pg1", "10.0.0.11", _probe("pg1", postgres_service="activating"))
    _, problems = status.evaluate([starting], 1 << 30)
    assert any("pg1: PostgreSQL is starting" in p for p in problems), problems


def test_status_says_why_the_primarys_own_vip_check_keeps_it_from_the_vip() -> None:
    from drctl import status

    pg = {"in_recovery": False, "timeline": 1, "lsn": "0/3000000", "replication": []}
    refused = {"eligible": False, "reason": "the isolation check's address does not answer",
               "since": 1796675000.5}
    primary = status._node("pg1", "10.0.0.11", _probe(
        "pg1", postgres=pg, postgres_service="active", holds_vip=False, vip_check=refused))
    assert primary["vip_check"] == refused
    _, problems = status.evaluate([primary], 1 << 30)
    assert any(p.startswith("0 nodes hold the VIP") and "the VIP check on pg1 refuses it: "
               "the isolation check's address does not answer" in p for p in problems), problems
    # a check that lets it hold the VIP explains nothing: the problem is elsewhere
    primary = status._node("pg1", "10.0.0.11", _probe(
        "pg1", postgres=pg, postgres_service="active", holds_vip=False,
        vip_check={**refused, "eligible": True, "reason": "writable primary"}))
    _, problems = status.evaluate([primary], 1 << 30)
    assert any(p.startswith("0 nodes hold the VIP") and "refuses" not in p for p in problems)


def test_status_shows_each_site_with_its_vip_and_flags_two_holders_in_one_site(
        capsys: pytest.CaptureFixture[str]) -> None:
    from drctl import status, views

    def node(host: str, role: str, vip: bool, site: str, address: str) -> dict[str, Any]:
        return {"host": host, "address": address, "role": role, "vip": vip, "site": site,
                "streaming": True if role == "standby" else None, "upstream": "10.0.0.11",
                "lag_bytes": 0, "lag_s": 0.0, "replication_ssl": True, "fenced": False,
                "timeline": 1, "lsn": "0/5000000", "slots": [], "keepalived": "active",
                "vrrp_state": "BACKUP"}

    nodes = [node("pg1", "primary", True, "dc1", "10.0.0.11"),
             node("pg2", "standby", False, "dc1", "10.0.0.12"),
             node("pg3", "standby", False, "dc2", "10.0.16.11")]
    sites = {"dc1": {"vip": "10.0.0.100/24", "nodes": ["pg1", "pg2"]},
             "dc2": {"vip": "10.0.16.100/24", "nodes": ["pg3"]}}
    view, problems = status.site_view(nodes, sites)
    assert problems == []
    assert view == {"dc1": {"vip": "10.0.0.100", "nodes": ["pg1", "pg2"],
                            "vip_holders": ["pg1"], "primary": "pg1"},
                    "dc2": {"vip": "10.0.16.100", "nodes": ["pg3"], "vip_holders": [],
                            "primary": None}}
    nodes[1]["vip"] = True
    _, problems = status.site_view(nodes, sites)
    assert problems == ["site dc1: 2 nodes hold its VIP 10.0.0.100 (pg1, pg2); at most one "
                        "may"]
    nodes[1]["vip"] = False
    report = {"cluster": "lab", "vip": "10.0.0.100", "sites": view, "nodes": nodes,
              "healthy": True, "problems": [], "primary": "pg1", "vip_holders": ["pg1"],
              "duration_s": 0.1}
    views.render_status(report, "table")
    out = capsys.readouterr().out
    assert "VIPs dc1 10.0.0.100, dc2 10.0.16.100" in out
    assert "dc2" in out.split("pg3")[1].splitlines()[0]
    assert "yes from pg1" in out.split("pg3")[1].splitlines()[0]


def test_status_shows_the_cloud_location_and_a_second_writer_there(
        make_inventory: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Status asks each host of group cloud for its PostgreSQL (a shell command over SSH,
    no drctl program there): standing by, or the cluster rebuilt there; a rebuilt primary
    beside the cluster's own is a split brain."""
    from drctl import inventory as inv_mod
    from drctl import sshprobe, status, views
    from drctl.rules import decide
    from tests.unit.conftest import GOOD_HOSTS

    hosts = copy.deepcopy(GOOD_HOSTS)
    hosts["all"]["children"]["cloud"] = {"hosts": {"cloud1": {"ansible_host": "10.9.9.60"}}}
    inv = inv_mod.load(make_inventory(hosts=hosts))
    asked: list[tuple[str, list[str]]] = []
    answer: dict[str, Any] = {"running": False}

    def probe_each(inv: Any, jobs: list[tuple[str, list[str]]]) -> list[Any]:
        asked.extend(jobs)
        return [sshprobe.ProbeResult(h, True, dict(answer)) for h, _ in jobs]

    monkeypatch.setattr(sshprobe, "probe_each", probe_each)
    [c] = status.cloud_view(inv)
    assert asked[0][0] == "cloud1" and asked[0][1][:2] == ["sh", "-c"]
    assert "postgresql@15-main" in asked[0][1][2] and "pg_is_in_recovery()" in asked[0][1][2]
    assert (c["running"], c["role"], c["reachable"]) == (False, "stopped", True)
    assert decide.cloud_problems("pg1", {"cloud1": c}) == []
    answer.update(running=True, in_recovery=False, timeline=2, lsn="0/9000000")
    [c] = status.cloud_view(inv)
    assert (c["role"], c["timeline"]) == ("primary", 2)
    assert decide.cloud_problems(None, {"cloud1": c}) == []
    assert decide.cloud_problems("pg1", {"cloud1": c}) == [
        "SPLIT BRAIN: pg1 and cloud1 (rebuilt at the cloud location from the object store) "
        "all accept writes"]
    assert decide.cloud_problems("pg1", {"cloud1": None}) == []  # did not answer
    report = {"cluster": "lab", "vip": "10.0.0.100", "sites": {}, "nodes": [],
              "healthy": False, "problems": ["no primary: no node accepts writes"],
              "primary": None, "vip_holders": [], "duration_s": 0.1, "cloud": [c]}
    views.render_status(report, "table")
    out = capsys.readouterr().out
    assert "cloud location: cloud1 primary on timeline 2 at 0/9000000 (rebuilt from the" in out


def test_every_command_has_examples_that_parse():
    """`--help` ends with examples; each example names options the command has."""
    import shlex

    import click

    leaves = cli_mod._leaf_commands(cli_mod.cli)
    assert set(leaves) == set(cli_mod.EXAMPLES), set(leaves) ^ set(cli_mod.EXAMPLES)
    for path, command in leaves.items():
        assert command.epilog and "Examples:" in command.epilog, path
        for example in cli_mod.EXAMPLES[path]:
            words = shlex.split(example.split("|")[0])
            assert words[:1 + len(path.split())] == ["drctl", *path.split()], example
            with command.make_context(path, words[1 + len(path.split()):]) as ctx:
                assert isinstance(ctx, click.Context)


def test_the_readme_lists_every_cluster_option_as_the_options_table_says():
    from drctl.options import markdown_table

    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- options:begin -->\n", 1)[1].split("\n<!-- options:end -->")[0]
    assert block == markdown_table(), "regenerate it: python -m drctl.options"


def test_the_options_defaults_role_is_generated_from_the_options_table():
    """roles/drctl holds every option's default, once; no role or playbook writes
    one of those defaults again as a `| default(LITERAL)` fallback."""
    import ast
    import re

    import yaml

    from drctl.options import CLUSTER_OPTIONS, PER_HOST, ROLE_DEFAULTS, role_defaults

    assert (ROOT / ROLE_DEFAULTS).read_text() == role_defaults(), \
        f"regenerate it: python -m drctl.options --role-defaults > {ROLE_DEFAULTS}"
    options = {o.name: o for o in CLUSTER_OPTIONS
               if o.default is not None and o.name not in PER_HOST}
    assert yaml.safe_load(role_defaults()) == {n: o.default for n, o in options.items()}
    fallback = re.compile(r"\b(" + "|".join(options) + r")\s*\|\s*default\(([^()]*)\)")
    copies = []
    for folder in ("roles", "playbooks"):
        for path in (ROOT / folder).rglob("*"):
            if not (path.is_file() and path.suffix in (".yml", ".j2")):
                continue
            for m in fallback.finditer(path.read_text()):
                try:
                    value = ast.literal_eval(m.group(2).replace("true", "True")
                                             .replace("false", "False"))
                except (ValueError, SyntaxError):
                    continue  # derived from something else: not a copy of the default
                if not isinstance(value, tuple):
                    copies.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert copies == [], copies
    # the grep the shape issue names
    for folder in ("roles", "playbooks"):
        for path in (ROOT / folder).rglob("*.yml"):
            assert "default(15)" not in path.read_text() and \
                "default(5432)" not in path.read_text(), path


def test_python_takes_an_options_default_from_the_table_and_keeps_a_configured_zero():
    import pytest as _pytest

    from drctl.options import value

    assert value({}, "drctl_pg_port") == 5432 and value({"drctl_pg_port": None}, "drctl_pg_port") \
        == 5432
    assert value({"drctl_max_loss_bytes": 0}, "drctl_max_loss_bytes") == 0
    assert value({"drctl_archive_stall_s": 0}, "drctl_archive_stall_s") == 0, \
        "a configured 0 is not the default (120)"
    with _pytest.raises(KeyError):
        value({}, "drctl_no_such_option")


def test_the_lab_is_a_package_of_its_own_and_drctl_says_so_where_it_is_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """drctl (the product) imports nothing from drctl_lab but in `drctl lab` itself;
    without it that command is a clear usage error, not a traceback."""
    import ast

    importers = set()
    for path in (ROOT / "drctl").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if any(n.split(".")[0] == "drctl_lab" for n in names):
                importers.add(str(path.relative_to(ROOT)))
    assert importers == {"drctl/cli/lab.py"}
    monkeypatch.setitem(sys.modules, "drctl_lab", None)  # as if not installed
    res = run("lab", "status")
    assert res.exit_code == ExitCode.USAGE
    assert "the lab is drctl's development tool and is not installed here" in res.output
