"""The standby's application_name is one rule (drctl.rules.facts.app_name): the Jinja
side is the collection's filter, which calls it, and no role or playbook writes it out."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from drctl.rules.facts import app_name

ROOT = Path(__file__).resolve().parents[2]


def load_filters() -> dict:
    spec = importlib.util.spec_from_file_location(
        "drctl_names", ROOT / "plugins" / "filter" / "drctl_names.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FilterModule().filters()


def test_the_filter_is_the_rules_cores_name() -> None:
    name = load_filters()["application_name"]
    for host in ("pg1", "pg-2.dc2", "db.example:5"):
        assert name(host) == app_name(host)
    assert name("pg-2.dc2") == "pg_2_dc2"


def test_no_role_or_playbook_writes_the_rule_itself() -> None:
    found = subprocess.run(["grep", "-rn", "A-Za-z0-9_]", "roles", "playbooks"], cwd=ROOT,
                           capture_output=True, text=True, check=False).stdout
    assert found == ""


def test_the_repository_finds_itself_as_the_collection() -> None:
    """ansible.cfg's collections path starts with the link to the top level, so plain
    ansible-playbook from here resolves drctl.cluster.application_name."""
    link = ROOT / "collections" / "ansible_collections" / "drctl" / "cluster"
    assert link.is_symlink() and link.resolve() == ROOT
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-i", "localhost,",
         "-c", "local", "-m",
         "ansible.builtin.debug", "-a",
         "msg={{ 'pg-2.dc2' | drctl.cluster.application_name }}"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0 and "msg: pg_2_dc2" in proc.stdout, proc.stdout + proc.stderr
