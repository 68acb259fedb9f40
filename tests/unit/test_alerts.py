"""The alerting rules shipped in prometheus/: valid, and firing (or staying quiet) on the
series `drctl-node metrics` writes, as promtool's rule tests say (Debian's promtool, put
in the venv by `make setup-test` / `make unit`)."""

import re
import subprocess
import sys
from pathlib import Path

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
                         "lab", 1.0), re.M))
    assert used <= written, f"the rules use metrics no node writes: {used - written}"


def test_the_metrics_pass_promtools_lint():
    text = metrics.render(PRIMARY, {"ok": True, "last": {"full": 1.0}}, "lab", 1.0)
    proc = subprocess.run([str(PROMTOOL), "check", "metrics"], input=text, text=True,
                          capture_output=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
