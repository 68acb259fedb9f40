"""A wrong vault password is named as such before anything runs (exit 11)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.constants import DEFAULT_VAULT_ID_MATCH
from ansible.parsing.vault import VaultLib, VaultSecret

from drctl import runner, vault
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode

SECRET = "s3cret-value-never-printed"


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    lib = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(b"right-password"))])
    (tmp_path / "group_vars" / "all" / "vault.yml").write_bytes(
        lib.encrypt(f"vault_pg_app_password: {SECRET}\n".encode()))
    (tmp_path / "group_vars" / "all" / "main.yml").write_text("drctl_vip: 10.0.0.100/24\n")
    hosts = tmp_path / "hosts.yml"
    hosts.write_text("all: {}\n")
    return hosts


def use_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> None:
    f = tmp_path / "pw"
    f.write_text(text + "\n")
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(f))


def test_the_right_password_opens_the_vault(inventory: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    use_password(monkeypatch, tmp_path, "right-password")
    assert vault.decrypt(inventory) == {"vault_pg_app_password": SECRET}


def test_a_wrong_password_names_the_file_and_runs_nothing(
        inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_password(monkeypatch, tmp_path, "wrong-password")

    def boom(**kw: object) -> None:
        raise AssertionError("ansible-runner must not start")

    monkeypatch.setattr("ansible_runner.run", boom)
    with pytest.raises(DrctlError) as exc:
        runner.run_playbook("ping.yml", inventory)
    assert exc.value.exit_code == ExitCode.VAULT == 11
    message = exc.value.format_message()
    assert "does not decrypt" in message and "vault.yml" in message
    assert SECRET not in message and "wrong-password" not in message


def test_a_missing_password_file_is_said(inventory: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(tmp_path / "nosuch"))
    with pytest.raises(DrctlError) as exc:
        vault.decrypt(inventory)
    assert exc.value.exit_code == ExitCode.VAULT and "nosuch" in exc.value.message
