"""The repository builds as the collection drctl.cluster, and the execution environment's
build context is made from it (`ansible-builder create`; the image itself needs a
registry, which this machine cannot reach)."""

import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
EE = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
REQUIREMENTS = yaml.safe_load((ROOT / "collections" / "requirements.yml").read_text())


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("collection")
    subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--output-path", str(out),
                    str(ROOT)], check=True, capture_output=True, text=True)
    [built] = out.glob("*.tar.gz")
    return built


def test_every_playbook_has_a_name_a_collection_can_run():
    for playbook in (ROOT / "playbooks").glob("*.yml"):
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", playbook.stem), (
            f"{playbook.name}: `ansible-playbook drctl.cluster.{playbook.stem}` cannot name it")


def test_the_collections_used_are_the_ones_required():
    used: set[str] = set()
    for path in [*(ROOT / "roles").rglob("*.yml"), *(ROOT / "playbooks").rglob("*.yml")]:
        used |= set(re.findall(r"\b((?:community|ansible)\.[a-z_]+)\.[a-z_]+:", path.read_text()))
    used -= {"ansible.builtin"}
    required = {c["name"] for c in REQUIREMENTS["collections"]}
    assert used <= required, f"used but not in collections/requirements.yml: {used - required}"
    assert set(GALAXY["dependencies"]) == used, "galaxy.yml's dependencies differ from use"


def test_the_artifact_holds_the_content_and_not_the_working_tree(artifact):
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (
        "drctl", "cluster", GALAXY["version"])
    for needed in ("plugins/action/drctl_gate.py", "plugins/action/drctl_node_bundle.py",
                   "plugins/modules/drctl_pg_node_state.py", "meta/runtime.yml",
                   "drctl/rules/decide.py", "drctl/node/cli.py", "playbooks/failover.yml",
                   "roles/pg_tls/tasks/main.yml", "plugins/filter/drctl_names.py"):
        assert needed in names, needed
    for absent in (".venv", ".drctl", ".lab", "tests", "molecule", "bench", "build",
                   "Makefile", "bin/test-phases", "bin/argspecs", "bin/role-readmes", ".yamllint",
                   ".ansible-lint", "prometheus/drctl-alerts.test.yml", "drctl_lab",
                   "collections/ansible_collections"):
        assert not any(n == absent or n.startswith(absent + "/") for n in names), absent
    assert "prometheus/drctl-alerts.yml" in names, "the alert rules are for users"
    assert not any("__pycache__" in n for n in names)


def test_what_provision_runs_is_in_the_collection_as_in_the_repository(artifact):
    """Every playbook, role file, plugin and rules/node module the playbooks use is in the
    artifact, byte for byte as in the repository (a build_ignore pattern too wide would
    drop one, and only the run that needs it would notice)."""
    tracked = subprocess.run(["git", "ls-files", "playbooks", "roles", "plugins",
                              "drctl/rules", "drctl/node", "meta"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    assert len(tracked) > 100
    with tarfile.open(artifact) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        for rel in tracked:
            assert rel in members, f"{rel} is not in the collection"
            fh = tar.extractfile(members[rel])
            assert fh is not None and fh.read() == (ROOT / rel).read_bytes(), \
                f"{rel} differs in the collection"


def test_no_role_keeps_a_plugin_a_collection_would_not_load():
    for role in (ROOT / "roles").iterdir():
        for kind in ("library", "action_plugins", "lookup_plugins", "filter_plugins",
                     "module_utils"):
            assert not (role / kind).exists(), f"{role.name}/{kind}: move it under plugins/"


def test_the_execution_environment_context_is_created_from_the_artifact(artifact, tmp_path):
    (tmp_path / "build" / "collection").mkdir(parents=True)
    shutil.copy(artifact, tmp_path / "build" / "collection")
    shutil.copy(ROOT / "execution-environment.yml", tmp_path)
    proc = subprocess.run([BIN / "ansible-builder", "create", "-f",
                           str(tmp_path / "execution-environment.yml"), "-c",
                           str(tmp_path / "ee"), "--output-filename", "Containerfile"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    context = tmp_path / "ee"
    assert (context / "Containerfile").is_file()
    entry = next(c for c in EE["dependencies"]["galaxy"]["collections"]
                 if c.get("type") == "file")
    assert (context / "_build" / entry["name"]).is_file(), (
        f"{entry['name']} is not the artifact built for version {GALAXY['version']}")
    assert Path(entry["name"]).name == artifact.name
