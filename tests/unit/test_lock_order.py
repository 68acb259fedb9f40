"""What happens before the cluster's lock: the vault is read first (a bad one is named as
such, not as a lock failure), read-only verbs take no lock, and every journal `start` has
its `end` even when the run could not start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drctl import journal, lock
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.operations import playbook
from drctl.runner import RunResult
from tests.unit.conftest import GOOD_HOSTS

# no backup host: the lock and the journal are this machine's (no ledger host to reach)
LOCAL = {"all": {"children": {g: v for g, v in GOOD_HOSTS["all"]["children"].items()
                              if g != "backup"}}}


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """run_playbook faked: records the playbooks it was asked to run."""
    calls: list[str] = []

    def fake(name: str, *args: Any, **kwargs: Any) -> RunResult:
        calls.append(name)
        return RunResult(playbook=name, status="successful", rc=0, duration=0.1)

    monkeypatch.setattr(playbook, "run_playbook", fake)
    return calls


def test_ping_takes_no_lock_and_writes_no_journal(make_inventory, ran):
    path = make_inventory(hosts=LOCAL)
    with lock.cluster_lock("main", "switchover"):  # another operation holds the cluster
        result = playbook.run("ping.yml", path, title="ping", read_only=True)
    assert result.status == "successful" and ran == ["ping.yml"]
    assert journal.read("main") == []


def test_an_operation_is_refused_while_the_lock_is_held(make_inventory, ran):
    path = make_inventory(hosts=LOCAL)
    with lock.cluster_lock("main", "switchover"), pytest.raises(DrctlError) as exc:
        playbook.run("provision.yml", path)
    assert exc.value.exit_code == ExitCode.LOCKED and ran == []


def test_a_bad_vault_is_named_before_the_lock(make_inventory, ran, tmp_path, monkeypatch):
    """With the lock held by someone else, a wrong vault password still says 'vault'
    (exit 11): it is checked first, and nothing is journalled."""
    from ansible.constants import DEFAULT_VAULT_ID_MATCH
    from ansible.parsing.vault import VaultLib, VaultSecret

    path = make_inventory(hosts=LOCAL)
    lib = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(b"right"))])
    (path.parent / "group_vars" / "all" / "vault.yml").write_bytes(
        lib.encrypt(b"vault_x: 1\n"))
    wrong = tmp_path / "wrong-pass"
    wrong.write_text("wrong\n")
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(wrong))
    with lock.cluster_lock("main", "switchover"), pytest.raises(DrctlError) as exc:
        playbook.run("provision.yml", path)
    assert exc.value.exit_code == ExitCode.VAULT, exc.value.message
    assert ran == [] and journal.read("main") == []


def test_every_start_has_its_end_when_the_run_cannot_start(make_inventory, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> RunResult:
        raise DrctlError("ansible-runner could not start", ExitCode.ENVIRONMENT)

    monkeypatch.setattr(playbook, "run_playbook", broken)
    path = make_inventory(hosts=LOCAL)
    with pytest.raises(DrctlError):
        playbook.run("provision.yml", path)
    steps = [(e["step"], e.get("result")) for e in journal.read("main")]
    assert steps[0][0] == "start" and steps[-1] == ("end", "error"), steps
