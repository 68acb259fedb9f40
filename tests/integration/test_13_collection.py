"""The repository as an Ansible collection, as an AWX user gets it: the built artifact is
installed into a scratch path and its playbooks run by their collection names, from a
directory that is not the repository (no ansible.cfg, no adjacent roles or plugins)."""

import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from drctl.paths import lab_dir
from tests.integration.conftest import INVENTORY, ROOT, healthy_with, psql, vip_connect

pytestmark = pytest.mark.usefixtures("clean_cluster")
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Installed:
    """Where the collection is installed, and how ansible-playbook runs from there."""
    root: Path  # the scratch directory the runs start in
    env: dict[str, str]

    @property
    def collection(self) -> Path:
        return self.root / "collections" / "ansible_collections" / "drctl" / "cluster"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """The collection built from the repository and installed into a scratch path."""
    base = tmp_path_factory.mktemp("collection")
    subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--output-path",
                    str(base / "dist"), str(ROOT)], check=True, capture_output=True, text=True)
    [artifact] = (base / "dist").glob("drctl-cluster-*.tar.gz")
    subprocess.run([BIN / "ansible-galaxy", "collection", "install", str(artifact), "-p",
                    str(base / "collections")], check=True, capture_output=True, text=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(base / "collections"), ANSIBLE_NOCOLOR="1",
               PATH=f"{BIN}:{env.get('PATH', '')}")
    return Installed(base, env)


def run(installed: Installed, playbook: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "ansible-playbook", "-i", str(INVENTORY), "--vault-password-file",
         str(lab_dir() / "vault-pass"), playbook, *args],
        cwd=installed.root, env=installed.env, capture_output=True, text=True, timeout=900,
        check=False)


def recap(stdout: str) -> dict[str, dict[str, int]]:
    rows = re.findall(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+"
                      r"failed=(\d+)", stdout, re.M)
    return {h: {"ok": int(o), "changed": int(c), "unreachable": int(u), "failed": int(f)}
            for h, o, c, u, f in rows}


def test_the_installed_collection_is_not_the_repository(installed):
    root = installed.collection
    assert (root / "MANIFEST.json").is_file()
    assert (root / "plugins" / "action" / "drctl_gate.py").is_file()
    assert (root / "drctl" / "rules" / "decide.py").is_file()
    assert not (root / ".drctl").exists() and not (root / "tests").exists()


def test_provision_by_collection_name_changes_nothing_on_a_provisioned_cluster(installed):
    play = run(installed, "drctl.cluster.provision")
    assert play.returncode == 0, play.stdout[-4000:] + play.stderr[-2000:]
    rows = recap(play.stdout)
    assert {"pg1", "pg2", "backup1"} <= set(rows), play.stdout[-2000:]
    changed = {h: r["changed"] for h, r in rows.items() if r["changed"]}
    assert changed == {}, f"a re-run from the collection changed {changed}:\n" \
                          f"{play.stdout[-4000:]}"
    healthy_with("pg1")


def test_switchover_by_collection_name_and_back(installed):
    marker = f"collection-{uuid.uuid4().hex[:8]}"
    with vip_connect() as conn:
        conn.execute("create table if not exists app.collection_marks (mark text)")
        conn.execute("insert into app.collection_marks values (%s)", (marker,))
    play = run(installed, "drctl.cluster.switchover", "-e", "target=pg2")
    assert play.returncode == 0, play.stdout[-4000:] + play.stderr[-2000:]
    healthy_with("pg2")
    assert psql("pg2", f"select count(*) from app.collection_marks where mark = '{marker}'",
                db="app") == "1"
    assert psql("pg1", "select pg_is_in_recovery()") == "t"
    play = run(installed, "drctl.cluster.switchover", "-e", "target=pg1")
    assert play.returncode == 0, play.stdout[-4000:] + play.stderr[-2000:]
    healthy_with("pg1")
