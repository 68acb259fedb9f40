"""The repository as an Ansible collection, as an AWX user gets it: the built artifact is
installed into a scratch path and its playbooks run by their collection names, from a
directory that is not the repository (no ansible.cfg, no adjacent roles or plugins), on
Ansible's own strategy, as AWX runs them (mitogen's does not find the collection's modules
by their short names: tried, "drctl_pg_node_state was not found").

A provision by the collection's name, and a re-run of it that changes nothing, are
molecule's converge and idempotence (`make molecule` installs the collection the same way;
every module, action and filter the roles use is on its two nodes' path): here, the
operations on the whole lab, and an AWX job's lock and journal."""

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from drctl.exitcodes import ExitCode
from drctl.paths import lab_dir
from drctl_lab.hosts import (
    INVENTORY,
    power_off,
    power_on,
    psql,
    sh,
    vip_connect,
    vip_holders,
    wait_for,
)
from tests.integration.conftest import ROOT, drctl, drctl_json, healthy_with, scrape, series

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
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    # Pipelining, as the README asks of an AWX job (its extra environment, since the
    # collection brings no ansible.cfg): one SSH exchange a task instead of several; what
    # the tests assert does not depend on it.
    env.update(ANSIBLE_COLLECTIONS_PATH=str(base / "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_PIPELINING="true", PATH=f"{BIN}:{env.get('PATH', '')}")
    # The scratch path is the only collections path the install sees, and --force: a copy
    # of drctl.cluster that some other tool left in ~/.ansible/collections would otherwise
    # make ansible-galaxy report "nothing to do" and install nothing here. The dependencies
    # (community.crypto, community.postgresql) come with the ansible package in the venv.
    install = subprocess.run(
        [BIN / "ansible-galaxy", "collection", "install", "--force", "--no-deps",
         str(artifact), "-p", str(base / "collections")],
        env=env, capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    return Installed(base, env)


def run(installed: Installed, playbook: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "ansible-playbook", "-i", str(INVENTORY), "--vault-password-file",
         str(lab_dir() / "vault-pass"), playbook, *args],
        cwd=installed.root, env=installed.env, capture_output=True, text=True, timeout=900,
        check=False)


def test_the_installed_collection_is_not_the_repository(installed):
    root = installed.collection
    assert (root / "MANIFEST.json").is_file()
    assert (root / "plugins" / "action" / "drctl_gate.py").is_file()
    assert (root / "drctl" / "rules" / "decide.py").is_file()
    assert not (root / ".drctl").exists() and not (root / "tests").exists()


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
    # Prometheus sees the new roles within the metrics service's interval
    wait_for("pg2's metrics to show it the primary with the VIP",
             lambda: series(scrape("pg2"), "drctl_pg_primary") == 1
             and series(scrape("pg2"), "drctl_vip_held") == 1
             and series(scrape("pg1"), "drctl_pg_primary") == 0, timeout=40, interval=1)
    play = run(installed, "drctl.cluster.switchover", "-e", "target=pg1")
    assert play.returncode == 0, play.stdout[-4000:] + play.stderr[-2000:]
    healthy_with("pg1")


def ledger_lock() -> dict | None:
    """The cluster's lock as the ledger host (backup1) keeps it, or None."""
    text = sh("backup1", "cat /var/lib/drctl/ledger/lock.json 2>/dev/null", check=False)
    return json.loads(text) if text.strip() else None


def test_an_awx_failover_holds_the_lock_and_the_journal_names_every_run(installed):
    """An AWX job (its job id and user, as AWX passes them) fails over with the
    collection's playbook after a power loss; an operator's drctl, meanwhile, is refused
    naming that job; the cluster's journal shows the job's run and the operator's next one,
    each with who ran it."""
    power_off("pg1")
    env = installed.env
    job = subprocess.Popen(
        [BIN / "ansible-playbook", "-i", str(INVENTORY), "--vault-password-file",
         str(lab_dir() / "vault-pass"), "drctl.cluster.failover",
         "-e", "awx_job_id=4711", "-e", "awx_user_name=alice"],
        cwd=installed.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        held = wait_for("the AWX job's lock on backup1", ledger_lock, timeout=120,
                        interval=0.1)
        assert held["holder"] == "AWX job 4711 (alice)" and held["operation"] == "failover"
        refused = drctl("switchover", "--yes", "--to", "pg2")
        assert refused.returncode == ExitCode.LOCKED, refused.stdout + refused.stderr
        assert "AWX job 4711 (alice)" in refused.stderr and "failover" in refused.stderr
        refused = drctl("backup", "--type", "incr")
        assert refused.returncode == ExitCode.LOCKED, refused.stdout + refused.stderr
        assert "AWX job 4711 (alice)" in refused.stderr
    finally:
        out, _ = job.communicate(timeout=900)
    assert job.returncode == 0, out[-5000:]
    assert psql("pg2", "select pg_is_in_recovery()") == "f"
    assert vip_holders() == ["pg2"]
    assert ledger_lock() is None, "the job gave the lock back"

    # the operator's next run: pg1 comes back and rejoins as a standby
    power_on("pg1")
    code, report = drctl_json("failback", "--yes", timeout=900)
    assert code == 0, report
    code, entries = drctl_json("journal", "--last", "500")
    assert code == 0
    by_awx = {e["step"] for e in entries if e.get("who") == "AWX job 4711 (alice)"}
    assert {"lock", "unlock"} <= by_awx, by_awx
    failback = [e for e in entries if e.get("operation") == "failback"]
    assert failback and all(e["who"] != "AWX job 4711 (alice)" and "@" in e["who"]
                            for e in failback), failback
    assert {"lock", "start", "end", "unlock"} <= {e["step"] for e in failback}
