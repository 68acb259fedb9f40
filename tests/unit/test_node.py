"""drctl.node: the programs that run on the hosts, with fake commands on PATH."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from drctl.node import archive, cli, common, fencing, handover, rejoin, steps, watch
from drctl.rules.facts import NodeFacts, WatcherFacts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def node_config(tmp_path: Path) -> Path:
    cfg = {"name": "pg2", "address": "10.0.0.12", "pg_version": 15, "pg_port": 5432,
           "vip": "10.0.0.100/24", "vip_interface": "eth0",
           "vrrp_state_file": str(tmp_path / "vrrp-state"),
           "fence_file": str(tmp_path / "fenced"), "hold_file": str(tmp_path / "hold"),
           "lag_file": str(tmp_path / "lag.json"),
           "auto_settings": str(tmp_path / "auto.json"),
           "auto_paused": str(tmp_path / "auto-paused"), "bin_dir": str(tmp_path / "bin"),
           "peers": [{"name": "pg1", "address": "10.0.0.11"}], "future_key": 1}
    path = tmp_path / "node.json"
    path.write_text(json.dumps(cfg))
    return path


def fake(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


def test_config_keeps_unknown_keys_apart(node_config: Path) -> None:
    c = common.Config.load(str(node_config))
    assert c.name == "pg2" and c.unit == "postgresql@15-main"
    assert c.datadir == "/var/lib/postgresql/15/main"
    assert c.peers[0]["name"] == "pg1" and c.extra == {"future_key": 1}


def test_probe_of_a_standby_parses_into_the_rules_facts(node_config: Path, fake_bin: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        ) -> None:
    """A fake psql answers the probe's two queries as a standby would."""
    common_answer = {"in_recovery": True, "wal_log_hints": True, "data_checksums": True,
                     "prepared_xacts": 0}
    standby_answer = {"lsn": "0/3000000", "receive_lsn": "0/3000100", "timeline": 2,
                      "receiver": {"status": "streaming", "flushed_lsn": "0/3000100"}}
    fake(fake_bin, "runuser", 'shift 3; exec "$@"\n')
    fake(fake_bin, "psql", f"""case "$*" in
  *server_version*) echo '{json.dumps(common_answer)}' ;;
  *receive_lsn*) echo '{json.dumps(standby_answer)}' ;;
  *) exit 3 ;;
esac
""")
    fake(fake_bin, "systemctl", "echo active\n")
    fake(fake_bin, "ip", "echo '2: eth0    inet 10.0.0.12/24 brd 10.0.0.255 scope global eth0'\n")
    assert cli.main(["--config", str(node_config), "probe"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["host"] == "pg2" and out["holds_vip"] is False and out["fenced"] is False
    assert out["vip_check"] is None  # no VIP check configured here (the default path)
    f = NodeFacts.from_probe("pg2", out)
    assert f.role == "standby" and f.timeline == 2 and f.position == 0x3000100


def test_the_probe_carries_the_vip_checks_last_verdict(tmp_path: Path) -> None:
    """What drctl-vip-track decided last, read from the file its configuration names: the
    answer to "why does nobody hold the VIP"."""
    from drctl.node import probe

    config, verdict = tmp_path / "vip-track.json", tmp_path / "run" / "vip-track.json"
    assert probe.vip_check(str(config)) is None  # no check on this host
    config.write_text(json.dumps({"verdict_file": str(verdict)}))
    assert probe.vip_check(str(config)) is None  # the check has not decided yet
    verdict.parent.mkdir()
    verdict.write_text(json.dumps({"eligible": False, "reason": "this node is fenced",
                                   "since": 1796675000.5, "facts": {"fenced": True}}))
    assert probe.vip_check(str(config)) == {"eligible": False, "reason": "this node is fenced",
                                            "since": 1796675000.5}
    verdict.write_text("half a rec")  # being written: no verdict rather than a wrong one
    assert probe.vip_check(str(config)) is None


def test_probe_of_a_stopped_server_says_down(node_config: Path, fake_bin: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    fake(fake_bin, "runuser", 'shift 3; exec "$@"\n')
    fake(fake_bin, "psql", "echo 'could not connect to server' >&2; exit 2\n")
    fake(fake_bin, "systemctl", "echo inactive\n")
    fake(fake_bin, "ip", "true\n")
    Path(json.loads(node_config.read_text())["fence_file"]).write_text("{}")
    cli.main(["--config", str(node_config), "probe"])
    out = json.loads(capsys.readouterr().out)
    assert out["postgres"] is None and "could not connect" in out["postgres_error"]
    f = NodeFacts.from_probe("pg2", out)
    assert f.role == "down" and f.fenced


def test_a_failing_step_prints_ok_false_and_exits_1(node_config: Path, fake_bin: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    fake(fake_bin, "runuser", 'shift 3; exec "$@"\n')
    fake(fake_bin, "psql", "echo f\n")  # not in recovery
    assert cli.main(["--config", str(node_config), "promote"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out == {"ok": False, "error": "this node is not in recovery (already a primary?)"}


def test_fence_and_unfence(node_config: Path, fake_bin: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """A fenced node holds no VIP: one a dead keepalived left behind is removed."""
    fake(fake_bin, "systemctl", "true\n")
    gone = tmp_path / "vip-deleted"
    fake(fake_bin, "ip", f"""case "$*" in
  "addr del 10.0.0.100/24 dev eth0") touch {gone} ;;
  *) [ -e {gone} ] || echo '2: eth0    inet 10.0.0.100/24 scope global secondary eth0' ;;
esac
""")
    c = common.Config.load(str(node_config))
    assert cli.main(["--config", str(node_config), "fence", "--reason", "test"]) == 0
    assert json.loads(Path(c.fence_file).read_text())["reason"] == "test"
    assert gone.exists()
    assert json.loads(capsys.readouterr().out)["vip_removed_by_hand"] is True
    assert cli.main(["--config", str(node_config), "unfence"]) == 0
    assert not Path(c.fence_file).exists()
    lines = capsys.readouterr().out.splitlines()
    assert json.loads(lines[-1])["was_fenced"] is True


def test_waldump_summary_counts_commits_and_their_times() -> None:
    lines = [
        "rmgr: Heap        len (rec/tot):     54/   254, tx:        741, lsn: 0/03000060, "
        "prev 0/03000028, desc: INSERT off 2",
        "rmgr: Transaction len (rec/tot):     34/    34, tx:        741, lsn: 0/03000158, "
        "prev 0/03000060, desc: COMMIT 2026-11-26 21:14:29.123456 UTC",
        "rmgr: Transaction len (rec/tot):     34/    34, tx:        742, lsn: 0/03000180, "
        "prev 0/03000158, desc: COMMIT 2026-11-26 21:14:31.000001 UTC",
    ]
    s = rejoin.summarize_waldump(lines)
    assert s["records"] == 3 and s["commits"] == 2 and s["xids"] == ["741", "742"]
    assert s["first_commit_at"] == "2026-11-26 21:14:29.123456 UTC"
    assert s["last_commit_at"] == "2026-11-26 21:14:31.000001 UTC"
    assert s["last_lsn"] == "0/03000180"


# ------------------------------------------------------------------ the watcher


def answer(lsn: str, in_recovery: bool = False, tl: int = 1, **kw: Any) -> dict[str, Any]:
    return {"in_recovery": in_recovery, "lsn": lsn, "timeline": tl,
            "synchronous_commit": "on", "standbys": {"pg2": {"sync_state": "async"}}, **kw}


def fresh_state() -> dict[str, Any]:
    return {"nodes": {}, "primary": None}


def test_watcher_records_the_primary_and_when_it_lost_it() -> None:
    state = fresh_state()
    watch.record_ok(state, "pg1", answer("0/5000000"), at=100.0)
    watch.record_ok(state, "pg2", answer("0/4FFFF00", in_recovery=True), at=100.1)
    watch.record_ok(state, "pg1", answer("0/5124F80"), at=101.0)
    assert watch.record_failure(state, "pg2", "a standby is not the primary", at=101.5) is False
    # the moment of the loss is reported once: the watcher publishes its record at once
    assert watch.record_failure(state, "pg1", "server closed the connection", at=101.6) is True
    assert watch.record_failure(state, "pg1", "timeout", at=104.0) is False  # the first counts
    p = state["primary"]
    assert p["host"] == "pg1" and p["lsn"] == "0/5124F80" and p["at"] == 101.0
    assert p["lost_at"] == 101.6
    assert state["nodes"]["pg1"]["failed_since"] == 101.6
    w = WatcherFacts.from_json("backup1", {**state, "checked_at": 104.5, "now": 105.0})
    assert w.sighting and w.sighting.lost_after_s == pytest.approx(0.6)
    assert w.sighting.age_s == pytest.approx(4.0)


def test_watcher_reports_a_lost_primary_that_answers_again() -> None:
    """A blip: the primary is lost, then answers as a writer again. record_ok says so
    (the watcher publishes at once), and the record shows it seen, not lost."""
    state = fresh_state()
    assert watch.record_ok(state, "pg1", answer("0/5000000"), at=100.0) is False
    assert watch.record_failure(state, "pg1", "timeout", at=102.0) is True
    assert watch.record_ok(state, "pg1", answer("0/5000100"), at=103.1) is True
    assert state["primary"]["lost_at"] is None and state["primary"]["at"] == 103.1
    assert watch.record_ok(state, "pg1", answer("0/5000200"), at=104.1) is False
    # a lost primary that comes back as a standby is not "back" as a writer
    watch.record_failure(state, "pg1", "timeout", at=105.0)
    assert watch.record_ok(state, "pg1", answer("0/5000300", in_recovery=True),
                           at=106.0) is False


def test_watcher_follows_a_switchover_and_ignores_an_old_timeline() -> None:
    state = fresh_state()
    watch.record_ok(state, "pg1", answer("0/5000000", tl=1), at=100.0)
    watch.record_ok(state, "pg1", answer("0/5000100", in_recovery=True, tl=2), at=101.0)
    assert state["primary"]["lost_at"] == 101.0  # demoted: no longer a writer
    watch.record_ok(state, "pg2", answer("0/5000200", tl=2), at=101.2)
    assert state["primary"]["host"] == "pg2" and state["primary"]["lost_at"] is None
    watch.record_ok(state, "pg1", answer("0/6000000", tl=1), at=102.0)  # split brain, old TL
    assert state["primary"]["host"] == "pg2"


def test_watcher_show_waits_for_a_dying_primary_to_be_lost(tmp_path: Path) -> None:
    state_file = tmp_path / "watch.json"
    cfg = watch.WatchConfig(name="backup1", nodes=(), state_file=str(state_file))
    state = fresh_state()
    watch.record_ok(state, "pg1", answer("0/5000000"), at=100.0)
    state_file.write_text(json.dumps(state))
    assert watch.show(cfg, settle_s=0.3)["primary"]["lost_at"] is None  # it gave up waiting
    watch.record_failure(state, "pg1", "gone", at=101.0)
    state_file.write_text(json.dumps(state))
    assert watch.show(cfg, settle_s=5)["primary"]["lost_at"] == 101.0
    assert watch.settled({"nodes": {}, "primary": None})


def test_watcher_keeps_its_record_across_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "watch.json"
    state = fresh_state()
    watch.record_ok(state, "pg1", answer("0/5000000"), at=100.0)
    state_file.write_text(json.dumps(state))
    w = watch.Watcher(watch.WatchConfig(name="backup1", nodes=(), state_file=str(state_file)))
    assert w.state["primary"]["lsn"] == "0/5000000"


def test_cli_parses_every_subcommand() -> None:
    p = cli.parser()
    for argv in (["probe"], ["watch", "--show", "--settle", "2"], ["auto", "validate", "1"],
                 ["fence", "--reason", "x"], ["divergence", "--fork-lsn", "0/1",
                                              "--timeline", "1"], ["guard", "--once"]):
        assert p.parse_args(argv).cmd == argv[0]
    assert set(steps.COMMANDS) >= {"promote", "handover", "fence-check", "guard"}


def test_the_commands_status_and_timers_ask_often_do_not_load_the_steps(tmp_path) -> None:
    """`app state`, `files ...`, `pooler ...` and `backup ...` run without compiling the
    steps, the guard and the rules core (a fresh interpreter, as on a node); a step still
    finds its parser."""
    missing = tmp_path / "absent.json"
    script = (
        "import sys\n"
        "from drctl.node import cli\n"
        f"cli.main(['--files-config', {str(missing)!r}, 'files', 'state'])\n"
        f"cli.main(['--pooler-config', {str(missing)!r}, 'pooler', 'state'])\n"
        "loaded = sorted(m for m in sys.modules if m in ('drctl.node.steps',"
        " 'drctl.node.fencing', 'drctl.rules.decide'))\n"
        "print('LOADED', loaded)\n"
        "assert cli.parser().parse_args(['fence', '--reason', 'x']).cmd == 'fence'\n"
        "print('STEPS', 'drctl.node.steps' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).parents[2], check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout and "STEPS True" in proc.stdout, proc.stdout
    assert {"app", "files", "pooler", "backup", "metrics", "watch"} <= cli.LIGHT_COMMANDS


# ------------------------------------------------------------------ the action plugin


def test_gate_plugin_gathers_from_registered_results() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "drctl_gate", Path(__file__).parents[2] / "plugins/action/drctl_gate.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    standby = {"postgres": {"in_recovery": True, "lsn": "0/5000000", "timeline": 1,
                            "receive_lsn": "0/5000000"}}
    state = fresh_state()
    watch.record_ok(state, "pg1", answer("0/5124F80"), at=100.0)
    watch.record_failure(state, "pg1", "gone", at=100.5)
    hostvars = {
        "pg1": {"probe": {"unreachable": True, "msg": "no route"}},
        "pg2": {"probe": {"stdout": json.dumps(standby), "rc": 0}},
        "backup1": {"w": {"stdout": json.dumps({**state, "checked_at": 101, "now": 101.2})}},
    }
    facts = mod.gather(hostvars, ["pg1", "pg2"], ["backup1"], "probe", "w")
    assert [n.reachable for n in facts.nodes] == [False, True]
    assert facts.watchers[0].sighting.position == 0x5124F80
    from drctl.rules import decide
    from drctl.rules.policy import Policy

    d = decide.failover(facts, Policy())
    assert not d.proceed and "lacks at least 1.2 MB" in d.failed[0].detail
    # an unregistered (skipped) result is not a reachable node
    assert mod._parsed(SimpleNamespace())[0] is False
    sited = mod.gather(hostvars, ["pg1", "pg2"], ["backup1"], "probe", "w",
                       {"pg1": "dc1", "pg2": "dc2"})
    assert sited.site("pg2") == "dc2" and sited.site("pg9") == "default"
    d = decide.failover(sited, Policy())
    assert d.target is None and "no standby of site dc1" in d.failed[0].detail
    # the watchers' sites come from the inventory too: backup1 across the WAN from pg1
    # cannot vouch for the end, whatever pg2 holds
    where = mod.locations({"pg1": {"drctl_location": "dc1"}, "pg2": {"drctl_location": "dc2"},
                           "backup1": {"drctl_location": "dc2"}}, ["pg1", "pg2", "backup1"])
    assert where == {"pg1": "dc1", "pg2": "dc2", "backup1": "dc2"}
    level = {**hostvars, "backup1": {"w": {"stdout": json.dumps(
        {**state, "primary": {**state["primary"], "lsn": "0/5000000"}, "checked_at": 101,
         "now": 101.2})}}}
    far = mod.gather(level, ["pg1", "pg2"], ["backup1"], "probe", "w", where)
    d = decide.failover(far, Policy(), target="pg2")
    assert d.data_loss.verdict == "unknown" and "backup1 is in site dc2" in d.data_loss.sentence
    near = mod.gather(level, ["pg1", "pg2"], ["backup1"], "probe", "w",
                      {**where, "backup1": "dc1"})
    assert decide.failover(near, Policy(), target="pg2").data_loss.verdict == "none"


def test_prove_write_reads_the_switch_point() -> None:
    from drctl.rules import sql

    text = "3\n1\t0/3000000\tno recovery target specified\n2\t0/5000000\tno recovery\n"
    assert handover.parse_history(text) == {"timeline": 3, "parent_timeline": 2,
                                         "switch_point": "0/5000000"}
    assert handover.parse_history("1\n")["switch_point"] is None
    assert "values ('pg-2.a', " in sql.failover_proof("pg-2.a")
    with pytest.raises(ValueError):
        sql.failover_proof("pg2'); drop table x; --")


def test_watcher_takes_a_hanging_check_for_a_failed_one() -> None:
    """docker pause / a frozen VM: the check never errors; after the limit it counts."""
    state = fresh_state()
    watch.record_ok(state, "pg1", answer("0/5000000"), at=100.0)
    watch.record_hangs(state, {"pg1": 101.0}, now=102.0, limit_s=3)
    assert state["primary"]["lost_at"] is None  # still within the limit
    watch.record_hangs(state, {"pg1": 101.0}, now=105.0, limit_s=3)
    assert state["primary"]["lost_at"] == 104.0
    assert "no answer within 3 s" in state["nodes"]["pg1"]["error"]


def _bundle_plugin():
    import importlib.util

    path = ROOT / "plugins" / "action" / "drctl_node_bundle.py"
    spec = importlib.util.spec_from_file_location("drctl_node_bundle", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_node_bundle_is_reproducible_and_importable(tmp_path):
    """The zip the drctl_node role installs: the same bytes for the same sources (so a
    provision copies it only when the code changed: each build compiles in a fresh
    interpreter), every module of both packages in it with its bytecode beside it, and the
    node CLI importable from it by a bare `python3 -I`, from the bytecode, with the
    installed path in tracebacks."""
    import subprocess
    import sys
    import zipfile

    plugin = _bundle_plugin()
    bundle = tmp_path / "drctl-node.zip"
    data = plugin.build(ROOT / "drctl", installed_as=str(bundle))
    assert data == plugin.build(ROOT / "drctl", installed_as=str(bundle))
    bundle.write_bytes(data)
    names = set(zipfile.ZipFile(bundle).namelist())
    for package in ("node", "rules"):
        for path in (ROOT / "drctl" / package).glob("*.py"):
            assert {f"drctl/{package}/{path.name}", f"drctl/{package}/{path.stem}.pyc"} <= names
    assert not any("__pycache__" in n or not n.endswith((".py", ".pyc")) for n in names)
    code = (f"import sys; sys.path.insert(0, {str(bundle)!r}); import drctl.node.cli, "
            "drctl.rules.decide as d; print(d.__file__); print(d.failover.__code__"
            ".co_filename)")
    out = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [f"{bundle}/drctl/rules/decide.pyc", f"{bundle}/drctl/rules/decide.py"]


def test_node_bundle_compiled_by_another_python_imports_from_its_sources(tmp_path):
    """A control machine whose Python writes another bytecode version (its magic number):
    the node's Python ignores those entries and compiles the sources, as without them."""
    import subprocess
    import sys
    import zipfile

    built = tmp_path / "built.zip"
    built.write_bytes(_bundle_plugin().build(ROOT / "drctl"))
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(built) as src, zipfile.ZipFile(other, "w") as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename.endswith(".pyc"):
                content = b"\x00\x00\r\n" + content[4:]  # not this Python's magic
            dst.writestr(info, content)
    code = (f"import sys; sys.path.insert(0, {str(other)!r}); import drctl.node.cli, "
            "drctl.rules.decide as d; print(d.__file__)")
    out = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == f"{other}/drctl/rules/decide.py"


@pytest.mark.parametrize("live,expected", [("ANY 1 (pg1, pg2)", True), ("", False)])
def test_relax_synchronous_follows_the_live_setting(monkeypatch, live, expected):
    """After a promotion the new primary stops waiting for standbys only when its own
    server says it waits for some (the inventory may say otherwise, or be out of date)."""
    ran: list[str] = []

    def fake_psql(c, statement, **kw):
        ran.append(statement)
        return live if statement == "show synchronous_standby_names" else ""
    monkeypatch.setattr(handover, "psql", fake_psql)
    assert handover.relax_synchronous(common.Config(name="pg1")) == live
    relaxed = "alter system set synchronous_standby_names = ''" in ran
    assert relaxed is expected and ("select pg_reload_conf()" in ran) is expected


def test_a_promoted_node_drops_its_standby_settings(node_config: Path, tmp_path: Path) -> None:
    """A promotion leaves the node as provision leaves a primary: no standby settings
    (provision's first run after a failover must change nothing)."""
    raw = json.loads(node_config.read_text())
    conf = tmp_path / "90-drctl-standby.conf"
    raw["standby_conf"] = str(conf)
    node_config.write_text(json.dumps(raw))
    c = common.Config.load(str(node_config))
    conf.write_text("primary_conninfo = 'host=10.0.0.11'\n")
    assert handover.drop_standby_conf(c) is True and not conf.exists()
    assert handover.drop_standby_conf(c) is False, "already gone: nothing to do"
    default = common.Config(name="pg1", pg_version=16)
    assert default.standby_conf_file == "/etc/postgresql/16/main/conf.d/90-drctl-standby.conf"


def test_a_switchover_target_drops_its_standby_settings_while_it_waits_for_the_vip(
        node_config: Path, fake_bin: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """handover promotes the target over SQL from the old primary; switchover.yml's wait-vip
    on the target removes its standby settings, as promote does (a provision after a
    switchover changes nothing)."""
    raw = json.loads(node_config.read_text())
    conf = tmp_path / "90-drctl-standby.conf"
    raw["standby_conf"] = str(conf)
    node_config.write_text(json.dumps(raw))
    conf.write_text("primary_conninfo = 'host=10.0.0.11'\n")
    fake(fake_bin, "ip", "echo '2: eth0    inet 10.0.0.100/24 scope global secondary eth0'\n")
    assert cli.main(["--config", str(node_config), "wait-vip", "--drop-standby-conf"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["standby_conf_removed"] is True and not conf.exists()
    conf.write_text("primary_conninfo = 'host=10.0.0.11'\n")
    assert cli.main(["--config", str(node_config), "wait-vip"]) == 0
    assert json.loads(capsys.readouterr().out)["standby_conf_removed"] is False
    assert conf.exists(), "failover's wait-vip (no flag) leaves files alone"


def test_the_role_and_the_node_agree_on_the_standby_settings_file() -> None:
    """drctl_node's default is pg_replication's file (promotion removes what it wrote)."""
    import jinja2
    import yaml

    node = yaml.safe_load((ROOT / "roles/drctl_node/defaults/main.yml").read_text())
    repl = yaml.safe_load((ROOT / "roles/pg_replication/tasks/standby.yml").read_text())
    templates = [t["ansible.builtin.template"] for t in repl if "ansible.builtin.template" in t]
    dest = next(t["dest"] for t in templates if t["src"] == "standby.conf.j2")
    conf_dir = yaml.safe_load((ROOT / "roles/pg_replication/defaults/main.yml").read_text()
                              )["pg_replication_conf_dir"]
    names = {"pg_replication_pg_version": 15, "pg_replication_cluster": "main",
             "drctl_node_pg_version": 15}
    written = jinja2.Template(dest.replace("{{ pg_replication_conf_dir }}", conf_dir)
                              ).render(names)
    removed = jinja2.Template(node["drctl_node_standby_conf"]).render(names)
    assert written == removed == "/etc/postgresql/15/main/conf.d/90-drctl-standby.conf"


WALDUMP_COMMITS = (
    "rmgr: Heap        len (rec/tot):     59/    59, tx:        751, lsn: 0/03000108, "
    "prev 0/030000D0, desc: INSERT off 2\n"
    "rmgr: Transaction len (rec/tot):     34/    34, tx:        751, lsn: 0/03000148, "
    "prev 0/03000108, desc: COMMIT 2026-11-27 10:00:01.5 UTC\n")


@pytest.fixture
def returning_node(node_config: Path, tmp_path: Path, fake_bin: Path) -> Path:
    """A returning old primary's data directory, and the node configured to use it."""
    pgdata = tmp_path / "15" / "main"
    (pgdata / "pg_wal").mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("15\n")
    (pgdata / "pg_wal" / "000000010000000000000003").write_bytes(b"w" * 4096)
    raw = json.loads(node_config.read_text())
    raw.update(data_dir=str(pgdata), bin_dir=str(fake_bin))
    node_config.write_text(json.dumps(raw))
    return pgdata


def set_aside(node_config: Path, capsys: pytest.CaptureFixture[str], *extra: str
              ) -> tuple[int, dict[str, Any]]:
    code = cli.main(["--config", str(node_config), "set-aside", "--fork-lsn", "0/3000100",
                     "--timeline", "1", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_set_aside_keeps_a_copy_when_the_node_committed_past_the_fork(
        node_config: Path, returning_node: Path, fake_bin: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake(fake_bin, "pg_waldump", f"cat <<'EOF'\n{WALDUMP_COMMITS}EOF\n")
    code, out = set_aside(node_config, capsys)
    assert code == 0 and out["action"] == "keep", out
    copy = Path(out["set_aside"])
    assert copy.name.startswith("main.diverged-") and (copy / "PG_VERSION").exists()
    assert out["restore_dir"] == str(copy / "pg_wal")
    meta = json.loads((copy / rejoin.DIVERGED_META).read_text())
    assert meta["divergence"]["commits"] == 1 and "1 commit " in meta["sentence"]


def test_set_aside_copies_only_the_wal_when_nothing_diverged(
        node_config: Path, returning_node: Path, fake_bin: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake(fake_bin, "pg_waldump", "echo 'pg_waldump: error: could not find a valid record "
                                 "after 0/3000100' >&2; exit 1\n")
    code, out = set_aside(node_config, capsys)
    assert code == 0 and out["action"] == "wal-only" and out["set_aside"] == "", out
    scratch = Path(out["scratch_wal"])
    assert scratch.name.startswith("main.rewind-wal-") and out["restore_dir"] == str(scratch)
    assert (scratch / "000000010000000000000003").exists()
    assert not list(returning_node.parent.glob("main.diverged-*"))


def test_set_aside_keeps_a_copy_when_the_wal_cannot_be_read(
        node_config: Path, returning_node: Path, fake_bin: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown is not zero: an unreadable WAL counts as diverged commits."""
    fake(fake_bin, "pg_waldump", "echo 'pg_waldump: error: could not open file' >&2; exit 1\n")
    code, out = set_aside(node_config, capsys)
    assert code == 0 and out["action"] == "keep" and out["divergence"]["known"] is False, out


def test_set_aside_refuses_when_the_copy_does_not_fit(
        node_config: Path, returning_node: Path, fake_bin: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    fake(fake_bin, "pg_waldump", f"cat <<'EOF'\n{WALDUMP_COMMITS}EOF\n")
    real = os.statvfs(str(returning_node))
    full = SimpleNamespace(f_bavail=1, f_frsize=real.f_frsize)
    monkeypatch.setattr(rejoin.os, "statvfs", lambda path: full)
    code, out = set_aside(node_config, capsys)
    assert code == 1 and out["ok"] is False and out["action"] == "refuse", out
    assert "--discard-diverged" in out["error"] and "Nothing was changed" in out["error"]
    assert sorted(p.name for p in returning_node.parent.iterdir()) == ["main"]


def test_diverged_copies_are_listed_with_what_they_hold_and_dropped_by_name(
        node_config: Path, returning_node: Path, fake_bin: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake(fake_bin, "pg_waldump", f"cat <<'EOF'\n{WALDUMP_COMMITS}EOF\n")
    _, kept = set_aside(node_config, capsys)
    legacy = returning_node.parent / "main.diverged-20260101T000000Z"  # before drctl recorded
    legacy.mkdir()
    (returning_node.parent / "main.diverged-notes.txt").write_text("not a copy")
    assert cli.main(["--config", str(node_config), "diverged-list"]) == 0
    listed = json.loads(capsys.readouterr().out)["copies"]
    assert [c["name"] for c in listed] == [legacy.name, Path(kept["set_aside"]).name]
    assert listed[0]["recorded"] is False and listed[0]["commits"] is None
    assert listed[1]["commits"] == 1 and listed[1]["bytes"] == kept["data_bytes"]

    assert cli.main(["--config", str(node_config), "diverged-drop", "../main"]) == 1
    assert "keeps no copy named" in json.loads(capsys.readouterr().out)["error"]
    assert returning_node.exists()
    assert cli.main(["--config", str(node_config), "diverged-drop", legacy.name]) == 0
    assert json.loads(capsys.readouterr().out)["dropped"]["name"] == legacy.name
    assert not legacy.exists() and Path(kept["set_aside"]).exists()


def test_watcher_show_waits_out_a_check_in_flight_on_a_silent_primary(tmp_path: Path) -> None:
    """A primary silent for two intervals is being checked: show waits past settle_s for
    that check's end (a frozen primary), but not for a primary that answers."""
    import threading
    import time

    state_file = tmp_path / "watch.json"
    cfg = watch.WatchConfig(name="backup1", nodes=(), state_file=str(state_file))
    state = fresh_state()
    watch.record_ok(state, "pg1", answer("0/5000000"), at=time.time())
    common.write_json_atomic(str(state_file), state)  # as the watcher writes it
    started = time.monotonic()
    assert watch.show(cfg, settle_s=0.3)["primary"]["lost_at"] is None  # it answers
    # not waited out as a check in flight would be (settle_s + connect_timeout_s + 1 + 2
    # intervals: 5.3 s); the bound leaves room for a loaded machine
    assert time.monotonic() - started < 3

    watch.record_ok(state, "pg1", answer("0/5000000"), at=time.time() - 2.5)
    common.write_json_atomic(str(state_file), state)  # as the watcher writes it

    def hang_declared() -> None:
        time.sleep(1.0)
        watch.record_failure(state, "pg1", "no answer within 3 s", at=time.time())
        common.write_json_atomic(str(state_file), state)  # as the watcher writes it

    threading.Thread(target=hang_declared).start()
    shown = watch.show(cfg, settle_s=0.3)
    assert shown["primary"]["lost_at"] is not None, "the check in flight was waited for"


def test_dir_bytes_counts_the_tree_and_one_part_of_it_in_one_walk(returning_node: Path) -> None:
    (returning_node / "base").mkdir()
    (returning_node / "base" / "1").write_bytes(b"d" * 1000)
    total, wal = rejoin.dir_bytes(str(returning_node), "pg_wal")
    assert wal == 4096 and total == 4096 + 1000 + len("15\n")


# ------------------------------------------------------------ fence-check and the hold

@pytest.fixture
def booting_primary(tmp_path: Path, fake_bin: Path) -> Path:
    """A node that would start as a primary (no standby.signal) on timeline 3, with two
    peers; the peers' answers come from tmp_path/answers (psql prints the file's line for
    the peer's address, or fails when there is none)."""
    data = tmp_path / "data"
    data.mkdir()
    cfg = {"name": "pg1", "address": "10.0.0.11", "data_dir": str(data),
           "bin_dir": str(fake_bin), "fence_file": str(tmp_path / "fenced"),
           "start_held_file": str(tmp_path / "run" / "start-held.json"),
           "start_lift_file": str(tmp_path / "run" / "start-lifted"),
           "primary_boot_file": str(tmp_path / "run" / "primary-this-boot"),
           "doubt_file": str(tmp_path / "run" / "vip-doubt"),
           "start_confirm_wait_s": 0, "auto_settings": str(tmp_path / "auto.json"),
           "peers": [{"name": "pg2", "address": "10.0.0.12"},
                     {"name": "pg3", "address": "10.0.0.13"}]}
    (tmp_path / "node.json").write_text(json.dumps(cfg))
    (tmp_path / "answers").mkdir()
    fake(fake_bin, "pg_controldata", "echo \"Latest checkpoint's TimeLineID:       3\"\n")
    fake(fake_bin, "psql", f'for a in "$@"; do case "$a" in host=*) h=${{a#host=}}; '
                           f'h=${{h%% *}};; esac; done\n'
                           f'f="{tmp_path}/answers/$h"; [ -f "$f" ] || exit 2; cat "$f"\n')
    fake(fake_bin, "systemctl", f'echo "$@" >> "{tmp_path}/systemctl.log"\n'
                                'case "$1" in is-active) exit 3;; esac\n')
    return tmp_path


def peer_says(node: Path, address: str, text: str) -> None:
    (node / "answers" / address).write_text(text + "\n")


def fence_check(node: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--config", str(node / "node.json"), "fence-check"])
    return int(exc.value.code or 0), capsys.readouterr().err


def test_a_primary_nobody_confirms_is_held_and_says_why(
        booting_primary: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = fence_check(booting_primary, capsys)
    assert code == 1 and "hold" in err
    held = json.loads((booting_primary / "run" / "start-held.json").read_text())
    assert held["liftable"] and held["timeline"] == 3
    assert [p["name"] for p in held["peers"]] == ["pg2", "pg3"]
    assert not (booting_primary / "fenced").exists()
    assert not (booting_primary / "run" / "primary-this-boot").exists()


def test_a_standby_on_its_timeline_confirms_the_start(
        booting_primary: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fence_check(booting_primary, capsys)  # held first
    peer_says(booting_primary, "10.0.0.13", "standby|3")
    code, err = fence_check(booting_primary, capsys)
    assert code == 0 and "pg3 (standby, timeline 3) confirms" in err
    assert not (booting_primary / "run" / "start-held.json").exists()
    assert (booting_primary / "run" / "primary-this-boot").exists()


def test_a_peer_on_a_newer_timeline_fences_even_after_a_lift(
        booting_primary: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (booting_primary / "run").mkdir()
    (booting_primary / "run" / "start-lifted").write_text("{}")
    peer_says(booting_primary, "10.0.0.12", "primary|4|0/5000000")
    code, err = fence_check(booting_primary, capsys)
    assert code == 1 and "fence" in err
    assert "pg2 is a primary on timeline 4" in json.loads(
        (booting_primary / "fenced").read_text())["reason"]
    assert not (booting_primary / "run" / "start-lifted").exists()  # one-shot
    code, err = fence_check(booting_primary, capsys)  # fenced now: refused
    assert code == 1 and "fenced" in err


def with_witness(node: Path, primary: str, timeline: int, looked_ago: float = 0.5) -> None:
    """Automatic failover set up on the node (its settings name the witness at 10.0.0.5),
    and the witness holding backup1's record: PRIMARY the newest writer it saw."""
    (node / "auto.json").write_text(json.dumps({
        "witness_conninfo": "host=10.0.0.5 port=5433 dbname=repmgr connect_timeout=2",
        "passfile": str(node / "pgpass-repmgr")}))
    now = time.time()
    peer_says(node, "10.0.0.5", json.dumps([{
        "watcher": "backup1", "now": now, "checked_at": now - looked_ago,
        "primary": {"host": primary, "timeline": timeline, "lsn": "0/5000000",
                    "at": now - 30, "lost_at": now - 29}}]))


def test_a_lone_primary_starts_when_the_watcher_saw_no_promotion(
        booting_primary: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Both peers silent (the standby is gone): held without a witness; with automatic
    failover set up, the witness's record of the watcher on backup1 vouches for it."""
    code, err = fence_check(booting_primary, capsys)
    assert code == 1 and "no watcher's record was reachable" in err
    with_witness(booting_primary, "pg1", 3)
    code, err = fence_check(booting_primary, capsys)
    assert code == 0 and "the watcher on backup1 saw no promotion" in err, err
    assert (booting_primary / "run" / "primary-this-boot").exists()


def test_a_watcher_that_saw_a_newer_primary_fences_the_booting_node(
        booting_primary: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_witness(booting_primary, "pg2", 4)
    code, err = fence_check(booting_primary, capsys)
    assert code == 1 and "fence" in err
    assert "saw pg2 write on timeline 4" in json.loads(
        (booting_primary / "fenced").read_text())["reason"]


def test_a_watcher_that_stopped_looking_does_not_vouch(
        booting_primary: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_witness(booting_primary, "pg1", 3, looked_ago=120)
    code, err = fence_check(booting_primary, capsys)
    assert code == 1 and "backup1 last looked 120 s ago" in err


def test_a_lift_starts_a_held_node_once(booting_primary: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    fence_check(booting_primary, capsys)
    # confirm-primary starts the unit; the fake systemctl runs no fence-check and starts
    # nothing, so it reports a failed start: check what it asked for, then run
    # fence-check as systemd would
    assert cli.main(["--config", str(booting_primary / "node.json"), "confirm-primary"]) == 1
    assert "did not start" in capsys.readouterr().out
    log = (booting_primary / "systemctl.log").read_text()
    assert "start postgresql@15-main" in log
    assert (booting_primary / "run" / "start-lifted").exists()
    code, err = fence_check(booting_primary, capsys)
    assert code == 0 and "operator" in err
    code, _ = fence_check(booting_primary, capsys)  # the lift was used up; ran since boot
    assert code == 0


def test_the_guard_starts_a_held_node_once_a_peer_confirms(
        booting_primary: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = common.Config.load(str(booting_primary / "node.json"))
    fence_check(booting_primary, capsys)
    assert fencing.retry_held_start(c) is None  # still nobody answers
    assert not (booting_primary / "systemctl.log").read_text().count("start postgresql")
    peer_says(booting_primary, "10.0.0.12", "standby|3")
    done = fencing.retry_held_start(c)
    assert done and "start after hold (start" in done
    assert "start postgresql@15-main" in (booting_primary / "systemctl.log").read_text()


# ------------------------------------------------------------ the guard of a running primary

@pytest.fixture
def running_primary(booting_primary: Path, fake_bin: Path) -> Path:
    """booting_primary, now running writable on timeline 3: psql without host= is the
    local server (runuser passes the command through)."""
    fake(fake_bin, "runuser", 'shift 3; exec "$@"\n')
    fake(fake_bin, "psql", f'h=local; for a in "$@"; do case "$a" in host=*) h=${{a#host=}}; '
                           f'h=${{h%% *}};; esac; done\n'
                           f'[ "$h" = local ] && {{ echo "0/5000000|3"; exit 0; }}\n'
                           f'f="{booting_primary}/answers/$h"; [ -f "$f" ] || exit 2; '
                           f'cat "$f"\n')
    return booting_primary


@pytest.mark.parametrize("answers,fenced", [
    ({"10.0.0.12": "primary|4|0/6000000"}, True),  # a failover happened while it was cut off
    ({"10.0.0.13": "standby|4"}, True),  # a standby already follows a newer primary
    ({"10.0.0.12": "standby|3"}, False),
    ({"10.0.0.12": "primary|3|0/5000000"}, False),  # twin: status reports it, no guess here
    ({}, False),  # nobody answers: a running primary keeps running
])
def test_a_running_primary_is_fenced_by_the_rule_every_start_asks(
        running_primary: Path, answers: dict[str, str], fenced: bool) -> None:
    for address, text in answers.items():
        peer_says(running_primary, address, text)
    c = common.Config.load(str(running_primary / "node.json"))
    verdict = fencing.guard_running_primary(c)
    assert (verdict.action == "fence") is fenced
    assert (running_primary / "fenced").exists() is fenced
    if fenced:
        assert "newer than this node's 3" in json.loads(
            (running_primary / "fenced").read_text())["reason"]
    else:
        assert (running_primary / "run" / "primary-this-boot").exists()



def with_archive(node: Path, fake_bin: Path, listing: str, rc: int = 0) -> None:
    """The node's object store as repo3: pgbackrest's repo-ls prints LISTING (and exits
    RC); every call is logged with its arguments."""
    cfg = json.loads((node / "node.json").read_text())
    cfg.update(archive_repos=[3], stanza="lab", archive_check_interval_s=30)
    (node / "node.json").write_text(json.dumps(cfg))
    (node / "listing").write_text(listing)
    fake(fake_bin, "runuser", 'shift 3; exec "$@"\n')
    fake(fake_bin, "pgbackrest", f'echo "$@" >> "{node}/pgbackrest.log"\n'
                                 f'cat "{node}/listing"; exit {rc}\n')


@pytest.mark.parametrize("listing, newest", [
    ("", 1),
    ("15-1/00000002.history\n15-1/0000000A.history\n15-1/00000003.history\n", 10),
    ("16-2/00000004.history\n", 4),
    ("15-1/000000020000000000000005-abc.gz\n", 1),  # a segment is no history file
])
def test_the_archives_newest_timeline_is_its_highest_history_file(listing: str,
                                                                   newest: int) -> None:
    assert archive.newest_archived_timeline(listing) == newest


def test_a_booting_primary_is_fenced_by_a_newer_timeline_in_the_object_store(
        booting_primary: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Both sites were lost and the cluster rebuilt from the object store (timeline 4
    there): pg1 comes back with its standby, which would confirm it, and is fenced on
    the store's word. The store is asked with the stanza's archive path, as postgres."""
    peer_says(booting_primary, "10.0.0.12", "standby|3")
    with_archive(booting_primary, fake_bin, "15-1/00000003.history\n15-1/00000004.history\n")
    code, err = fence_check(booting_primary, capsys)
    assert code == 1 and "fence" in err
    reason = json.loads((booting_primary / "fenced").read_text())["reason"]
    assert "repository repo3's archive holds timeline 4" in reason
    call = (booting_primary / "pgbackrest.log").read_text()
    assert "--repo=3" in call and "repo-ls" in call and "archive/lab" in call


def test_archive_timelines_says_what_each_object_store_holds(
        booting_primary: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_archive(booting_primary, fake_bin, "15-1/00000004.history\n")
    cli.main(["--config", str(booting_primary / "node.json"), "archive-timelines"])
    out = json.loads(capsys.readouterr().out)
    assert out["archives"] == [{"repo": "repo3", "timeline": 4, "error": ""}]
    assert out["repos"] == [3] and out["stanza"] == "lab"


def test_the_probe_asks_the_object_store_within_its_own_bound(
        booting_primary: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """drctl status gives a probe 6 s: the store is asked with at most 2 s of them."""
    from drctl.node import probe

    with_archive(booting_primary, fake_bin, "15-1/00000002.history\n")
    c = common.Config.load(str(booting_primary / "node.json"))
    limits: list[str] = []
    real = archive.run

    def run(argv: list[str], timeout: float = 60, env: Any = None) -> tuple[int, str, str]:
        limits.append(argv[argv.index("timeout") + 1])
        return real(argv, timeout=timeout, env=env)

    monkeypatch.setattr(archive, "run", run)
    assert probe.archives(c) == [{"repo": "repo3", "timeline": 2, "error": ""}]
    assert limits == ["2"]
    assert probe.archives(replace(c, archive_repos=())) == []


@pytest.mark.parametrize("listing, rc", [
    ("15-1/00000003.history\n", 0),  # its own timeline: nothing newer
    ("", 0),
    ("", 82),  # the store does not answer: no vote either way
])
def test_an_object_store_without_a_newer_timeline_changes_nothing(
        booting_primary: Path, fake_bin: Path, capsys: pytest.CaptureFixture[str],
        listing: str, rc: int) -> None:
    peer_says(booting_primary, "10.0.0.12", "standby|3")
    with_archive(booting_primary, fake_bin, listing, rc)
    code, err = fence_check(booting_primary, capsys)
    assert code == 0 and "pg2 (standby, timeline 3) confirms" in err, err
    assert not (booting_primary / "fenced").exists()


def test_a_running_primary_asks_the_object_store_every_interval_and_is_fenced_by_it(
        guarded_primary: Path, fake_bin: Path) -> None:
    """A partition that looked like the loss of both sites: the cluster was rebuilt from
    the store while pg1 kept running. The guard's looks ask the store once per interval
    (the first look included), and the look after the rebuild's timeline appears there
    fences pg1."""
    peer_says(guarded_primary, "10.0.0.12", "standby|3")
    peer_says(guarded_primary, "10.0.0.13", "standby|3")
    with_archive(guarded_primary, fake_bin, "15-1/00000003.history\n")
    c = common.Config.load(str(guarded_primary / "node.json"))
    looks = fencing.Looks(c)
    try:
        assert fencing.guard_running_primary(c, looks).action == "start"
        assert fencing.guard_running_primary(c, looks).action == "start"
        assert len((guarded_primary / "pgbackrest.log").read_text().splitlines()) == 1
        (guarded_primary / "listing").write_text("15-1/00000004.history\n")
        assert fencing.guard_running_primary(c, looks).action == "start"  # not due yet
        looks._archive_asked_at = time.monotonic() - 31
        verdict = fencing.guard_running_primary(c, looks)
    finally:
        looks.close()
    assert verdict.action == "fence"
    assert "repo3's archive holds timeline 4" in json.loads(
        (guarded_primary / "fenced").read_text())["reason"]


def test_a_primary_back_from_a_partition_asks_the_watchers_when_a_peer_is_silent(
        running_primary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the fault campaign: pg1 isolated, pg2 promoted (timeline 4), then pg2 cut
    off as pg1 came back. No peer answers pg1, so only the watcher's record (pg2 seen
    writing on timeline 4) can say that it was replaced: it is fenced on it. A record of
    this node on its own timeline fences nothing, and with every peer answering the
    witness is not asked at all."""
    def record(host: str, tl: int) -> WatcherFacts:
        return WatcherFacts.from_json("backup1", {
            "now": 1000.0, "checked_at": 999.0, "primary": {
                "host": host, "timeline": tl, "lsn": "0/6000000", "at": 990.0,
                "lost_at": None}})

    asked: list[int] = []
    records = [record("pg2", 4)]

    def witness(c: common.Config) -> tuple[list[WatcherFacts], float]:
        asked.append(1)
        return records, 30.0

    monkeypatch.setattr(fencing, "witness_answers", witness)
    c = common.Config.load(str(running_primary / "node.json"))
    records[:] = [record("pg1", 3)]
    assert fencing.guard_running_primary(c).action == "start" and asked == [1]
    assert not (running_primary / "fenced").exists()
    records[:] = [record("pg2", 4)]
    verdict = fencing.guard_running_primary(c)
    assert verdict.action == "fence" and asked == [1, 1]
    assert "the watcher on backup1 saw pg2 write on timeline 4" in json.loads(
        (running_primary / "fenced").read_text())["reason"]
    (running_primary / "fenced").unlink()
    peer_says(running_primary, "10.0.0.12", "standby|3")
    peer_says(running_primary, "10.0.0.13", "standby|3")
    assert fencing.guard_running_primary(c).action == "start" and asked == [1, 1]


def _watcher_saw(host: str, tl: int, checked_ago: float = 1.0) -> WatcherFacts:
    return WatcherFacts.from_json("backup1", {
        "now": 1000.0, "checked_at": 1000.0 - checked_ago, "primary": {
            "host": host, "timeline": tl, "lsn": "0/6000000", "at": 990.0, "lost_at": None}})


@pytest.mark.parametrize("answers,records,cleared", [
    ({"10.0.0.12": "standby|3"}, [], True),  # a peer confirms: the VIP may return
    ({}, [("pg1", 3)], True),  # nobody answers, the watcher saw no promotion since
    ({}, [], False),  # nobody answers, no watcher: unknown, the VIP stays away
    ({}, [("pg1", 3, 120.0)], False),  # the watcher's record is stale
])
def test_a_primary_in_doubt_gets_the_vip_back_only_once_confirmed(
        running_primary: Path, monkeypatch: pytest.MonkeyPatch,
        answers: dict[str, str], records: list[tuple], cleared: bool) -> None:
    """keepalived's check found pg1 cut off from the network and wrote the doubt marker
    (the VIP stays away while it exists). Having run as the primary since boot proves
    nothing then: a peer or a live watcher must confirm that no promotion happened."""
    (running_primary / "run").mkdir(exist_ok=True)
    (running_primary / "run" / "primary-this-boot").write_text("{}")
    doubt = running_primary / "run" / "vip-doubt"
    doubt.write_text("")
    for address, text in answers.items():
        peer_says(running_primary, address, text)
    monkeypatch.setattr(fencing, "witness_answers", lambda c: (
        [_watcher_saw(*r) for r in records], 30.0))
    c = common.Config.load(str(running_primary / "node.json"))
    verdict = fencing.guard_running_primary(c)
    assert verdict.action == ("start" if cleared else "hold"), verdict
    assert doubt.exists() is not cleared
    assert not (running_primary / "fenced").exists()


def test_a_primary_in_doubt_that_was_replaced_is_fenced(
        running_primary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (running_primary / "run").mkdir(exist_ok=True)
    (running_primary / "run" / "vip-doubt").write_text("")
    monkeypatch.setattr(fencing, "witness_answers", lambda c: ([_watcher_saw("pg2", 4)], 30.0))
    c = common.Config.load(str(running_primary / "node.json"))
    assert fencing.guard_running_primary(c).action == "fence"
    assert (running_primary / "fenced").exists()

SESSION_PSQL = """\
import os, sys
host = "local"
for arg in sys.argv[1:]:
    for word in arg.split():
        if word.startswith("host="):
            host = word[5:]
with open(os.path.join(NODE, "psql-starts"), "a") as fh:
    fh.write(host + "\\n")


def answer(statement):
    if host == "local":
        if statement == "select pg_is_in_recovery()":
            standby = os.path.exists(os.path.join(NODE, "in-recovery"))
            return "t" if standby else "f"
        return "0/5000000|3"
    try:
        with open(os.path.join(NODE, "answers", host)) as fh:
            return fh.read().strip()
    except OSError:
        print("psql: error: server closed the connection unexpectedly", file=sys.stderr)
        sys.exit(2)


if "-c" in sys.argv:  # one statement over a new connection
    print(answer(sys.argv[sys.argv.index("-c") + 1]))
    sys.exit(0)
for line in sys.stdin:  # a session: statements, each followed by an echo of a mark
    line = line.strip()
    if line.startswith("\\\\echo "):
        print(line.split(" ", 1)[1], flush=True)
    elif line:
        print(answer(line.rstrip(";")), flush=True)
"""


@pytest.fixture
def guarded_primary(booting_primary: Path, fake_bin: Path) -> Path:
    """booting_primary running writable on timeline 3, its psql a long-lived session (the
    guard's): each started psql is logged (psql-starts); a peer without an answer file
    drops its connection."""
    fake(fake_bin, "runuser", 'shift 3; exec "$@"\n')
    script = booting_primary / "psql.py"
    script.write_text(f"NODE = {str(booting_primary)!r}\n" + SESSION_PSQL)
    fake(fake_bin, "psql", f'exec {sys.executable} {script} "$@"\n')
    return booting_primary


def test_the_guard_keeps_one_session_per_server_and_fences_on_a_newer_timeline(
        guarded_primary: Path) -> None:
    c = common.Config.load(str(guarded_primary / "node.json"))
    peer_says(guarded_primary, "10.0.0.12", "standby|3")
    peer_says(guarded_primary, "10.0.0.13", "standby|3")
    looks = fencing.Looks(c)
    try:
        for _ in range(5):
            fencing.look(c, looks)
        assert not (guarded_primary / "fenced").exists()
        # five looks, one psql each for the local server and the two peers
        starts = (guarded_primary / "psql-starts").read_text().split()
        assert sorted(starts) == ["10.0.0.12", "10.0.0.13", "local"]
        # a peer that stops answering (its server restarted) is no answer for that look,
        # and is asked over a new session at the next
        (guarded_primary / "answers" / "10.0.0.13").unlink()
        fencing.look(c, looks)
        assert not (guarded_primary / "fenced").exists()
        peer_says(guarded_primary, "10.0.0.13", "primary|4|0/6000000")
        fencing.look(c, looks)
        reason = json.loads((guarded_primary / "fenced").read_text())["reason"]
        assert "newer than this node's 3" in reason
        starts = (guarded_primary / "psql-starts").read_text().split()
        assert starts.count("10.0.0.13") == 2 and starts.count("local") == 1
    finally:
        looks.close()


def test_the_guard_clears_a_standbys_doubt(guarded_primary: Path) -> None:
    """A standby cut off from the network got the doubt marker from keepalived's check;
    it is no primary to confirm, and a promotion later decides for itself: the guard
    removes the marker at its next look."""
    c = common.Config.load(str(guarded_primary / "node.json"))
    (guarded_primary / "in-recovery").write_text("")
    (guarded_primary / "run").mkdir(exist_ok=True)
    (guarded_primary / "run" / "vip-doubt").write_text("")
    peer_says(guarded_primary, "10.0.0.12", "primary|3|0/5000000")
    looks = fencing.Looks(c)
    try:
        fencing.look(c, looks)
    finally:
        looks.close()
    assert not (guarded_primary / "run" / "vip-doubt").exists()
    assert not (guarded_primary / "fenced").exists()


def test_the_guard_asks_the_same_questions_over_a_session_as_over_new_connections(
        guarded_primary: Path) -> None:
    c = common.Config.load(str(guarded_primary / "node.json"))
    peer_says(guarded_primary, "10.0.0.12", "primary|4|0/6000000")
    looks = fencing.Looks(c)
    try:
        over_session = fencing.ask_peers(c, looks)
    finally:
        looks.close()
    assert over_session == fencing.ask_peers(c)
    assert [(p.name, p.role, p.timeline) for p in over_session] == [
        ("pg2", "primary", 4), ("pg3", None, None)]


# ------------------------------------------------------------------ follow (rejoin)

STANDBY_CONF = ("# Ansible managed\nprimary_conninfo = 'host=10.0.0.11 port=5432 user=replicator'\n"
                "primary_slot_name = 'pg2'\n")


@pytest.fixture
def following_node(returning_node: Path, node_config: Path, tmp_path: Path,
                   fake_bin: Path) -> Path:
    """An old primary, stopped cleanly by a handover: systemctl and psql faked, each call
    logged; the server answers as a standby once started (a marker file)."""
    raw = json.loads(node_config.read_text())
    raw["standby_conf"] = str(tmp_path / "90-drctl-standby.conf")
    node_config.write_text(json.dumps(raw))
    log, up = tmp_path / "calls", tmp_path / "up"
    fake(fake_bin, "runuser", 'shift 3; exec "$@"\n')
    fake(fake_bin, "systemctl", f"""echo "systemctl $*" >> {log}
case "$1" in
  is-active) [ -e {up} ] ;;
  is-enabled) [ -e {tmp_path}/enabled ] ;;
  start) touch {up} ;;
  enable) touch {tmp_path}/enabled ;;
esac
""")
    slots, stale = tmp_path / "slots", tmp_path / "stale"
    slots.write_text("pg2_left_over\n")
    stale.write_text("pg2_left_over\n")
    fake(fake_bin, "psql", f"""for sql; do :; done
echo "psql $sql" >> {log}
name=$(echo "$sql" | sed -n "s/.*('\\([a-z0-9_]*\\)'.*/\\1/p")
case "$sql" in
  *pg_is_in_recovery*) [ -e {tmp_path}/primary ] && echo f || echo t ;;
  *pg_stat_wal_receiver*) [ -e {up} ] && cat {tmp_path}/receiver ;;
  *"where not active"*) cat {stale} ;;
  "select slot_name from pg_replication_slots") cat {slots} ;;
  *pg_drop_replication_slot*) for f in {slots} {stale}; do
      grep -vx "$name" $f > $f.new; mv $f.new $f; done ;;
  *pg_create_physical_replication_slot*) echo "$name" >> {slots} ;;
esac
exit 0
""")
    (tmp_path / "receiver").write_text("streaming\n")
    return log


def follow(node_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
           *extra: str) -> tuple[int, dict[str, Any]]:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(STANDBY_CONF))
    code = cli.main(["--config", str(node_config), "follow", "--owner", "root",
                     "--slot", "pg1", *extra])
    return code, json.loads(capsys.readouterr().out.splitlines()[-1])


def test_follow_makes_a_stopped_old_primary_a_streaming_standby(
        following_node: Path, node_config: Path, returning_node: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = follow(node_config, capsys, monkeypatch)
    assert code == 0, out
    assert (tmp_path / "90-drctl-standby.conf").read_text() == STANDBY_CONF
    assert stat.S_IMODE((returning_node / "standby.signal").stat().st_mode) == 0o600
    assert out["changed"] == ["standby settings", "standby.signal", "started", "enabled",
                              "dropped slots pg2_left_over", "created slots pg1"]
    calls = following_node.read_text()
    assert "pg_drop_replication_slot('pg2_left_over')" in calls
    assert "pg_create_physical_replication_slot('pg1', false)" in calls
    assert "systemctl reload" not in calls  # started with the new settings: nothing to reload


def test_follow_again_changes_nothing_and_a_new_primary_reloads(
        following_node: Path, node_config: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    follow(node_config, capsys, monkeypatch)
    following_node.write_text("")
    code, out = follow(node_config, capsys, monkeypatch)
    assert code == 0 and out["changed"] == [], out
    assert (tmp_path / "slots").read_text() == "pg1\n"
    (tmp_path / "90-drctl-standby.conf").write_text(STANDBY_CONF.replace("10.0.0.11", "x"))
    code, out = follow(node_config, capsys, monkeypatch)
    assert code == 0 and "reloaded" in out["changed"], out
    assert "systemctl reload" in following_node.read_text()


def test_follow_refuses_a_running_primary_and_changes_nothing(
        following_node: Path, node_config: Path, returning_node: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "up").touch()
    (tmp_path / "primary").touch()
    code, out = follow(node_config, capsys, monkeypatch)
    assert code == 1 and "running primary" in out["error"], out
    assert not (tmp_path / "90-drctl-standby.conf").exists()
    assert not (returning_node / "standby.signal").exists()


def test_follow_fails_naming_the_receiver_when_it_never_streams(
        following_node: Path, node_config: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "receiver").write_text("waiting\n")
    code, out = follow(node_config, capsys, monkeypatch, "--stream-timeout", "0.3")
    assert code == 1 and "wal receiver: waiting" in out["error"], out
    assert out["changed"][:3] == ["standby settings", "standby.signal", "started"]


def test_follow_refuses_a_node_without_data_or_settings(
        following_node: Path, node_config: Path, returning_node: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cli.main(["--config", str(node_config), "follow", "--owner", "root"]) == 1
    assert "no standby settings" in json.loads(capsys.readouterr().out)["error"]
    (returning_node / "PG_VERSION").unlink()
    code, out = follow(node_config, capsys, monkeypatch)
    assert code == 1 and "holds no cluster" in out["error"], out


def test_follow_refuses_a_node_that_holds_another_cluster(
        following_node: Path, node_config: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    class Cursor:
        def execute(self, query: str) -> None:
            assert "system_identifier" in query

        def fetchone(self) -> tuple[int]:
            return (7000000000000000002,)

    monkeypatch.setattr(rejoin, "peer_connect", lambda c, address: SimpleNamespace(
        cursor=lambda: Cursor()))
    monkeypatch.setattr(rejoin, "controldata", lambda c: {
        "Database system identifier": "7000000000000000001"})
    code, out = follow(node_config, capsys, monkeypatch, "--primary-address", "10.0.0.11")
    assert code == 1 and "holds another cluster" in out["error"], out
    assert not (tmp_path / "90-drctl-standby.conf").exists()
    monkeypatch.setattr(rejoin, "controldata", lambda c: {
        "Database system identifier": "7000000000000000002"})
    code, out = follow(node_config, capsys, monkeypatch, "--primary-address", "10.0.0.11")
    assert code == 0, out


def test_repoint_changes_only_the_primary_address_and_streams_from_the_new_primary(
        following_node: Path, node_config: Path, returning_node: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A failover's other standby: its settings keep port, user and slot; only the host
    changes; it reloads (it was running) and streams again."""
    conf = tmp_path / "90-drctl-standby.conf"
    conf.write_text(STANDBY_CONF)
    (returning_node / "standby.signal").touch()
    (tmp_path / "up").touch()
    (tmp_path / "enabled").touch()
    monkeypatch.setattr(rejoin, "peer_connect", lambda c, address: SimpleNamespace(
        cursor=lambda: SimpleNamespace(execute=lambda q: None, fetchone=lambda: (1,))))
    monkeypatch.setattr(rejoin, "controldata", lambda c: {"Database system identifier": "1"})
    code = cli.main(["--config", str(node_config), "repoint", "--owner", "root",
                     "--primary-address", "10.0.0.12"])
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 0, out
    assert conf.read_text() == STANDBY_CONF.replace("host=10.0.0.11", "host=10.0.0.12")
    assert out["changed"][:2] == ["standby settings", "reloaded"]
    assert "systemctl reload" in following_node.read_text()


@pytest.mark.parametrize("text, address, problem", [
    ("primary_slot_name = 'pg2'\n", "10.0.0.12", "no primary_conninfo with a host"),
    (STANDBY_CONF, "10.0.0.12 user=postgres", "not an address"),
    (STANDBY_CONF, "", "not an address"),
])
def test_repointed_refuses_what_it_cannot_rewrite_exactly(text: str, address: str,
                                                          problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        rejoin.repointed(text, address)


def test_repointed_keeps_every_other_setting() -> None:
    text = ("primary_conninfo = 'host=pg1 port=5433 user=replicator sslmode=verify-full'\n"
            "primary_slot_name = 'pg3'\n")
    assert rejoin.repointed(text, "172.29.53.12") == text.replace("host=pg1",
                                                                 "host=172.29.53.12")


def test_repoint_without_standby_settings_fails_and_changes_nothing(
        following_node: Path, node_config: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--config", str(node_config), "repoint", "--owner", "root",
                     "--primary-address", "10.0.0.12"])
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 1 and "not set up as a standby" in out["error"], out
    assert not (tmp_path / "90-drctl-standby.conf").exists()


def test_the_probe_imports_neither_the_rules_core_nor_the_steps(node_config: Path) -> None:
    """drctl status runs the probe on every node each time; what it imports it compiles
    from the zip on every run."""
    import subprocess
    import sys

    code = ("import sys\nfrom drctl.node import cli, probe\n"
            "probe.main = lambda c: print(','.join(sorted(m for m in sys.modules "
            "if m.startswith('drctl.')))) or 0\n"
            f"sys.exit(cli.main(['--config', {str(node_config)!r}, 'probe']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip().split(",")
    assert set(out) <= {"drctl.node", "drctl.node.cli", "drctl.node.common",
                        "drctl.node.probe", "drctl.rules", "drctl.rules.sql"}, out


def test_take_over_promotes_then_writes_only_once_the_vip_is_here(
        node_config: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A failover's node step (drctl failover and failover.yml): clear a synchronous
    standby that may be gone, promote, wait for the VIP, and only then write the proving
    row."""
    from drctl.rules import sql

    events: list[str] = []
    state = {"recovery": "t"}
    polls = iter([False, False, True])

    def fake_holds(interface: str, vip: str) -> bool:
        held = next(polls, True)
        events.append(f"vip {held}")
        return held

    def fake_psql(c: common.Config, statement: str, **kw: Any) -> str:
        if statement == sql.IN_RECOVERY:
            return state["recovery"]
        if statement == sql.REPLAY_POSITIONS:
            return "0/5000000|0/5000000"
        if statement == sql.PROMOTE_NOWAIT:
            events.append("promote")
            state["recovery"] = "f"
            return "t"
        if statement == "show synchronous_standby_names":
            return "pg1"
        if statement.startswith("alter system") or statement.startswith("select pg_reload"):
            events.append("relax")
            return ""
        if "drctl_failover_log" in statement:
            events.append("write")
            return "2\n1\t0/5000000\tno recovery target specified\n"
        return ""
    monkeypatch.setattr(handover, "holds_address", fake_holds)
    monkeypatch.setattr(handover, "psql", fake_psql)
    monkeypatch.setattr(handover, "current_position", lambda c: ("0/5000100", 2))
    monkeypatch.setattr(handover, "drop_standby_conf", lambda c: True)
    assert cli.main(["--config", str(node_config), "take-over", "--node", "pg2",
                     "--vip-timeout", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert events[:3] == ["relax", "relax", "promote"]  # alter system, reload, promote
    assert events[-4:] == ["vip False", "vip False", "vip True", "write"]
    assert out["promote"]["timeline"] == 2 and out["synchronous_cleared"] == "pg1"
    assert out["timeline"] == 2 and out["switch_point"] == "0/5000000"

    # a re-run on a node an earlier run promoted: no second promotion, the rest again
    events.clear()
    assert cli.main(["--config", str(node_config), "take-over", "--vip-timeout", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "promote" not in events and events[-1] == "write" and out["promote"] is None

    # the VIP never comes: no write, and the answer still says the node was promoted
    events.clear()
    state["recovery"] = "t"
    monkeypatch.setattr(handover, "holds_address", lambda interface, vip: False)
    assert cli.main(["--config", str(node_config), "take-over", "--vip-timeout", "0.1"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert not out["ok"] and "did not get the VIP" in out["error"]
    assert out["promote"]["timeline"] == 2 and "write" not in events


def test_promote_can_clear_a_synchronous_standby_at_once(
        node_config: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """failover.yml promotes with --relax-synchronous: the synchronous standby may be the
    node that is gone, so the first client's commit must not wait for it. The list is
    cleared before the promotion (a promoted server applies it only when its checkpointer,
    busy with the end-of-recovery checkpoint, reloads) and asked again after it."""
    from drctl.rules import sql

    ran: list[str] = []
    state = {"recovery": "t", "names": "pg1"}

    def fake_psql(c: common.Config, statement: str, **kw: Any) -> str:
        ran.append(statement)
        if statement == sql.PROMOTE_NOWAIT:
            state["recovery"] = "f"
            return "t"
        if statement == "alter system set synchronous_standby_names = ''":
            state["names"] = ""
        answers = {sql.IN_RECOVERY: state["recovery"],
                   "show synchronous_standby_names": state["names"]}
        return answers.get(statement, "")
    monkeypatch.setattr(handover, "psql", fake_psql)
    monkeypatch.setattr(handover, "current_position", lambda c: ("0/6000000", 2))
    monkeypatch.setattr(handover, "drop_standby_conf", lambda c: True)
    assert cli.main(["--config", str(node_config), "promote", "--vrrp-wait", "0",
                     "--relax-synchronous"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["synchronous_cleared"] == "pg1"
    promoted = ran.index(sql.PROMOTE_NOWAIT)
    assert ran.index("alter system set synchronous_standby_names = ''") < promoted
    assert "show synchronous_standby_names" in ran[promoted:], "asked again once promoted"
    assert ran.count("alter system set synchronous_standby_names = ''") == 1
    ran.clear()
    state["recovery"] = "t"
    assert cli.main(["--config", str(node_config), "promote", "--vrrp-wait", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["synchronous_cleared"] == ""
    assert "show synchronous_standby_names" not in ran, "without the flag: left as it is"


def test_a_standby_still_in_recovery_after_a_signal_is_signalled_again() -> None:
    """The standby that saw the first pg_promote only after its retry interval: it is
    signalled again every RESIGNAL_S, and a late signal that fails changes nothing."""
    from drctl.rules import sql

    signals: list[float] = []

    def query(statement: str) -> object:
        if statement == sql.PROMOTE_NOWAIT:
            signals.append(time.monotonic())
            if len(signals) == 3:
                raise RuntimeError("ERROR:  recovery is not in progress")
            return "t"
        return "f" if len(signals) >= 3 else "t"  # this node needs a third signal
    assert handover.promote_and_wait(query, timeout=5, resignal_s=0.02)
    assert len(signals) == 3 and all(
        b - a >= 0.02 for a, b in itertools.pairwise(signals))
    # a node that leaves recovery at once is signalled once
    once: list[str] = []
    assert handover.promote_and_wait(
        lambda q: once.append(q) or ("t" if q == sql.PROMOTE_NOWAIT else "f"), timeout=5,
        resignal_s=0)
    assert once.count(sql.PROMOTE_NOWAIT) == 1


def test_promotion_is_seen_within_milliseconds_not_at_pg_promotes_100_ms_poll() -> None:
    """pg_promote(wait => true) looks only every 100 ms: drctl signals without the wait
    and asks pg_is_in_recovery() itself, returning at the first 'f'."""
    from drctl.rules import sql

    asked: list[str] = []
    answers = iter(["t", "t", "t", "f"])

    def query(statement: str) -> object:
        asked.append(statement)
        return "t" if statement == sql.PROMOTE_NOWAIT else next(answers)
    assert handover.promote_and_wait(query, timeout=5)
    assert asked == [sql.PROMOTE_NOWAIT] + [sql.IN_RECOVERY] * 4
    # a server that never leaves recovery: False after the timeout, not a hang
    assert not handover.promote_and_wait(lambda q: "t", timeout=0.05)
    # a refused signal (psycopg answers False): no waiting at all
    assert not handover.promote_and_wait(lambda q: False, timeout=5)


def test_a_fast_stop_signals_the_postmaster_and_sees_it_exit(
        node_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """handover's clean stop: SIGINT to the PID in postmaster.pid (a real process here,
    which exits on SIGINT as a postmaster's fast shutdown does), no systemctl on the way."""
    import subprocess
    import sys

    datadir = tmp_path / "main"
    datadir.mkdir()
    # a stand-in that exits on SIGINT whatever it inherited (a background job's children
    # start with SIGINT ignored), and says when its handler is in place
    postmaster = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys, time\n"
         "signal.signal(signal.SIGINT, lambda *a: sys.exit(0))\n"
         "print('ready', flush=True)\nwhile True: time.sleep(1)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert postmaster.stdout is not None and postmaster.stdout.readline() == "ready\n"
        (datadir / "postmaster.pid").write_text(f"{postmaster.pid}\n{datadir}\n")
        ran: list[list[str]] = []
        monkeypatch.setattr(handover, "run", lambda args, **kw: ran.append(args) or (0, "", ""))
        import dataclasses
        import threading

        c = dataclasses.replace(common.Config.load(str(node_config)), data_dir=str(datadir))
        reaped = threading.Thread(target=postmaster.wait, daemon=True)  # as systemd reaps
        reaped.start()
        assert handover.stop_fast(c, timeout=10) == (0, "")
        reaped.join(timeout=10)
        assert postmaster.returncode == 0 and ran == []
    finally:
        if postmaster.poll() is None:
            postmaster.kill()
            postmaster.wait()

    # no postmaster.pid to read: systemctl stop does it
    (datadir / "postmaster.pid").unlink()
    assert handover.stop_fast(c, timeout=10) == (0, "")
    assert ran == [["systemctl", "stop", c.unit]]


def test_the_failover_proof_commits_locally():
    """A synchronous standby gone with the old primary must not hold the proving write."""
    from drctl.rules import sql

    assert sql.failover_proof("pg2").startswith("set synchronous_commit = local; ")


def test_a_command_that_hangs_is_a_failed_step_naming_it():
    from drctl.node.common import run

    rc, out, err = run(["sh", "-c", "sleep 5"], timeout=0.2)
    assert (rc, out) == (124, "") and err == "sh gave no answer within 0.2 s"


def test_auto_pause_sets_the_marker_then_stops_repmgrd(node_config: Path, fake_bin: Path,
                                                       tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    """As the repmgr role's pause: the marker first (drctl-auto refuses from then on),
    then repmgrd stopped; an operator's marker is kept as it is; nothing where automatic
    failover was never set up."""
    stopped = tmp_path / "stopped"
    fake(fake_bin, "systemctl", f'[ "$*" = "stop drctl-repmgrd" ] && touch {stopped}\n')
    c = common.Config.load(str(node_config))
    args = ["--config", str(node_config), "auto-pause", "--reason", "drctl failover"]
    assert cli.main(args) == 0
    assert json.loads(capsys.readouterr().out)["paused"] is False and not stopped.exists()
    Path(c.auto_settings).write_text("{}")
    assert cli.main(args) == 0
    assert stopped.exists() and json.loads(capsys.readouterr().out)["paused"] is True
    marker = json.loads(Path(c.auto_paused).read_text())
    assert marker["by"] == "operation" and marker["reason"] == "drctl failover"
    Path(c.auto_paused).write_text(json.dumps({"by": "operator", "reason": "maintenance"}))
    assert cli.main(args) == 0
    assert json.loads(capsys.readouterr().out)["marker_existed"] is True
    assert json.loads(Path(c.auto_paused).read_text())["by"] == "operator"
    fake(fake_bin, "systemctl", "echo 'Job failed' >&2; exit 1\n")
    assert cli.main(args) == 1
    assert "did not stop" in json.loads(capsys.readouterr().out)["error"]



def test_auto_pause_with_probe_answers_with_the_probe_taken_after_the_stop(
        node_config: Path, fake_bin: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A failover's pause and its facts in one round: the probe is taken once repmgrd has
    stopped (the fake psql answers as a primary only after the stop, as a node repmgrd
    promoted just before it would), the pause's answer beside it; a pause that failed
    still answers with the probe, and exits 0 (the caller reads auto_pause.ok)."""
    stopped = tmp_path / "stopped"
    fake(fake_bin, "systemctl", f'[ "$*" = "stop drctl-repmgrd" ] && touch {stopped}\n'
                                'echo active\n')
    fake(fake_bin, "runuser", 'shift 3; exec "$@"\n')
    fake(fake_bin, "ip", "true\n")
    fake(fake_bin, "psql", f"""[ -e {stopped} ] || exit 2
case "$*" in
  *server_version*) echo '{{"in_recovery": false}}' ;;
  *) echo '{{"lsn": "0/5000000", "timeline": 2, "replication": []}}' ;;
esac
""")
    c = common.Config.load(str(node_config))
    Path(c.auto_settings).write_text(json.dumps({
        "witness_conninfo": "host=10.0.0.20 dbname=repmgr", "event_log": str(tmp_path / "ev")}))
    args = ["--config", str(node_config), "auto-pause", "--reason", "drctl failover",
            "--probe"]
    assert cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["auto_pause"]["ok"] is True and out["auto_pause"]["paused"] is True
    f = NodeFacts.from_probe("pg2", out)
    assert f.role == "primary" and f.timeline == 2 and f.auto == "paused"
    fake(fake_bin, "systemctl", "echo 'Job failed' >&2; exit 1\n")
    assert cli.main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["auto_pause"]["ok"] is False and "did not stop" in out["auto_pause"]["error"]


# ------------------------------------------------- a lock file that a power loss left behind

@pytest.fixture
def booting_standby(booting_primary: Path) -> Path:
    (booting_primary / "data" / "standby.signal").write_text("")
    return booting_primary


def lock_file_naming(node: Path, pid: int) -> Path:
    """postmaster.pid as a server of the last boot left it, naming PID."""
    lock = node / "data" / "postmaster.pid"
    lock.write_text(f"{pid}\n{node / 'data'}\n1796398400\n5432\n/var/run/postgresql\n*\n")
    return lock


def test_a_start_removes_a_lock_file_whose_pid_went_to_another_process_after_a_power_loss(
        booting_standby: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As pg2 after a lab restore (a crash-consistent cut): its lock file named a PID that
    the new boot gave to drctl-guard's `runuser -u postgres -- psql -d postgres`, which
    Debian's pg_ctlcluster took for the running server; the unit failed for good."""
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                           "postgres"]) as other:
        lock = lock_file_naming(booting_standby, other.pid)
        code, err = fence_check(booting_standby, capsys)
        other.kill()
    assert code == 0 and not lock.exists()
    assert f"removed a stale postmaster.pid: PID {other.pid} is `" in err
    assert "postgres`, no postmaster of" in err


def test_a_start_keeps_the_lock_file_of_a_postmaster_of_its_data_directory(
        booting_standby: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A postgres program working in the data directory may be a server started outside
    the unit: its lock file stays, for pg_ctlcluster and PostgreSQL to refuse the start."""
    program = tmp_path / "pgbin" / "postgres"
    program.parent.mkdir()
    shutil.copy(shutil.which("sleep") or "/bin/sleep", program)
    with subprocess.Popen([str(program), "60"], cwd=booting_standby / "data") as server:
        lock = lock_file_naming(booting_standby, server.pid)
        code, err = fence_check(booting_standby, capsys)
        server.kill()
    assert code == 0 and lock.exists() and "stale" not in err


# ------------------------------------------------- the guard's stand-in for repmgrd's election

def test_the_guard_stands_in_once_repmgrd_has_been_absent_and_asks_again_later(
        node_config: Path, tmp_path: Path) -> None:
    """repmgrd crash-looping (never up 5 s): after 60 s the guard asks the witness which
    primary was lost, then runs `drctl-auto stand-in` as postgres; refused, it asks again
    only 15 s later; promoted, it restarts repmgrd. A repmgrd that runs resets the clock."""
    from drctl.node import standin

    c = common.Config.load(str(node_config))
    Path(c.auto_settings).write_text(json.dumps({"location": "dc1", "primary_location": "dc1",
                                                 "location_peers": ["pg1"]}))
    clock = {"now": 100.0}
    up: dict[str, float | None] = {"for": 0.5}
    ran: list[list[str]] = []
    answer = {"rc": 1}

    def runner(argv: list[str], timeout: float) -> tuple[int, str, str]:
        ran.append(argv)
        return (answer["rc"], "{}", "") if "stand-in" in argv else (0, "", "")

    s = standin.StandIn(c, now=lambda: clock["now"], up_for=lambda _: up["for"],
                        primary=lambda _: "pg1", runner=runner)
    assert s.look(standby=True) is None and not ran
    clock["now"] = 159.0
    assert s.look(standby=True) is None and not ran, "59 s: the primary may still boot"
    clock["now"] = 161.0
    done = s.look(standby=True)
    assert done and "refused" in done
    assert ran == [["runuser", "-u", "postgres", "--", f"{c.libexec}/drctl-auto", "stand-in"]]
    clock["now"] = 170.0
    assert s.look(standby=True) is None and len(ran) == 1, "asked again only after 15 s"
    clock["now"] = 177.0
    answer["rc"] = 0
    done = s.look(standby=True)
    assert done and done.startswith("stood in for repmgrd")
    assert ran[-2:] == [["systemctl", "reset-failed", c.repmgrd_unit],
                        ["systemctl", "restart", c.repmgrd_unit]]
    # repmgrd runs (up 5 s or more): the clock starts again from that look
    up["for"] = 6.0
    clock["now"] = 300.0
    ran.clear()
    assert s.look(standby=True) is None
    up["for"] = None
    clock["now"] = 345.0
    assert s.look(standby=True) is None and not ran
    # not a standby, paused, or automatic failover not set up: nothing is asked
    clock["now"] = 500.0
    assert s.look(standby=False) is None and not ran
    Path(c.auto_paused).write_text("{}")
    assert s.look(standby=True) is None and not ran
    Path(c.auto_paused).unlink()
    Path(c.auto_settings).unlink()
    assert s.look(standby=True) is None and not ran


def test_a_second_standby_of_the_location_leaves_the_election_to_repmgrd(
        node_config: Path) -> None:
    from drctl.node import standin

    c = common.Config.load(str(node_config))
    Path(c.auto_settings).write_text(json.dumps({"location": "dc1", "primary_location": "dc1",
                                                 "location_peers": ["pg1", "pg3"]}))
    ran: list[list[str]] = []
    clock = {"now": 0.0}
    s = standin.StandIn(c, now=lambda: clock["now"], up_for=lambda _: None,
                        primary=lambda _: "pg1",
                        runner=lambda argv, t: ran.append(argv) or (0, "", ""))
    clock["now"] = 70.0
    done = s.look(standby=True)
    assert done and "pg3 is also a standby of this location" in done and not ran
