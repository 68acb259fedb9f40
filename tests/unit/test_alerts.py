"""The alerting rules shipped in prometheus/: valid, and firing (or staying quiet) on the
series `drctl-node metrics` writes, as promtool's rule tests say (Debian's promtool, put
in the venv by `make setup-test` / `make unit`)."""

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from drctl.node import metrics
from tests.unit.test_metrics import PRIMARY, STANDBY

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "prometheus" / "drctl-alerts.yml"
PROMTOOL = Path(sys.executable).parent / "promtool"


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL.exists(), f"{PROMTOOL} is missing: run `make setup-test`"
    return subprocess.run([str(PROMTOOL), *args], cwd=RULES.parent, capture_output=True,
                          text=True, check=False)


def test_the_rules_are_valid():
    proc = promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_rules_fire_as_their_tests_say():
    proc = promtool("test", "rules", "drctl-alerts.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_test_that_fires_it():
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((RULES.parent / "drctl-alerts.test.yml").read_text())
    fired = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]
             if t.get("exp_alerts")}
    assert alerts - fired == set(), f"alerts no test fires: {sorted(alerts - fired)}"


def test_the_rules_use_only_metrics_the_nodes_write():
    rules = yaml.safe_load(RULES.read_text())
    used = {m for g in rules["groups"] for r in g["rules"]
            for m in re.findall(r"\bdrctl_[a-z_]+", r["expr"])}
    written = set(re.findall(r"^(drctl_[a-z_]+)\{", metrics.render(
        PRIMARY, {"ok": True, "last": {"full": 1.0}}, "lab", 1.0)
        + metrics.render({**STANDBY, "fenced": True, "start_held": {"why": "x"}}, None,
                         "lab", 1.0)
        + metrics.render_pooler({"host": "app1", "state": "paused", "paused_s": 3.0,
                                 "waiting": 1, "server_connections": 0}, None, "lab", 1.0)
        + metrics.render_pooler({"host": "app1", "state": "running", "waiting": 0,
                                 "server_connections": 1}, True, "lab", 1.0), re.M))
    assert used <= written, f"the rules use metrics no node writes: {used - written}"


@pytest.mark.parametrize("pooler", [False, True])
def test_the_metrics_pass_promtools_lint(pooler: bool):
    text = metrics.render_pooler({"host": "app1", "state": "running", "waiting": 0,
                                  "server_connections": 1}, False, "lab", 1.0) if pooler \
        else metrics.render(PRIMARY, {"ok": True, "last": {"full": 1.0}}, "lab", 1.0)
    proc = subprocess.run([str(PROMTOOL), "check", "metrics"], input=text, text=True,
                          capture_output=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _alerts() -> dict[str, dict]:
    rules = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r for g in rules["groups"] for r in g["rules"]}


def test_each_threshold_is_the_option_status_uses_for_the_same_concern():
    """One threshold per concern: the alert fires where `drctl status` reports (the
    option's default; archiving stuck was 300 s here and 120 s in status)."""
    from drctl.options import CLUSTER_OPTIONS

    default = {o.name: o.default for o in CLUSTER_OPTIONS}
    alerts = _alerts()

    def number(alert: str, pattern: str) -> int:
        m = re.search(pattern, alerts[alert]["expr"])
        assert m, (alert, alerts[alert]["expr"])
        return math.prod(int(f) for f in m.group(1).split("*"))  # e.g. 16 * 1024 * 1024

    assert number("DrctlReplicationLagHigh", r">\s*([\d\s*]+)") == \
        default["drctl_max_lag_bytes"]
    assert number("DrctlBackupTooOld", r">\s*([\d\s*]+)") == \
        default["drctl_backup_max_age_h"] * 3600
    assert number("DrctlArchivingStuck", r">\s*([\d\s*]+)") == \
        default["drctl_archive_stall_s"]
    assert number("DrctlWalWaitingToArchive", r">\s*([\d\s*]+)") == \
        default["drctl_archive_ready_warn"]
    assert number("DrctlSlotRetainsWal", r">\s*([\d\s*]+?)\s*and") == \
        default["drctl_slot_warn_bytes"]
    assert number("DrctlPoolerPausedTooLong", r"paused_seconds\s*>\s*(\d+)") == \
        default["drctl_pooler_paused_max_s"]


def test_every_alert_links_its_runbook_into_the_readme():
    readme = (ROOT / "README.md").read_text()
    anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^## (.+)$", readme, re.M)}
    for name, rule in _alerts().items():
        url = rule["annotations"].get("runbook_url", "")
        assert url.startswith("README.md#") and url.split("#", 1)[1] in anchors, (name, url)
