"""The inventory's vault: decrypted in memory with the same password Ansible would use.

drctl checks it before any playbook runs, so a wrong password is said as such (which
file, exit 11) instead of surfacing as a failed task, and nothing remote is tried.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.paths import project_dir

HEADER = b"$ANSIBLE_VAULT"


def password() -> bytes:
    """ANSIBLE_VAULT_PASSWORD_FILE when set (a file, or a script to run), else the
    repository's client (bin/vault-password: DRCTL_VAULT_PASSWORD_FILE, then the lab's)."""
    source = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    path = Path(source) if source else project_dir() / "bin" / "vault-password"
    try:
        if os.access(path, os.X_OK) and not path.is_dir():
            out = subprocess.run([str(path)], capture_output=True, check=False, timeout=30)
            if out.returncode != 0:
                raise DrctlError(f"the vault password client {path} failed: "
                                 f"{out.stderr.decode(errors='replace').strip()[:200]}",
                                 ExitCode.VAULT)
            return out.stdout.strip()
        return path.read_bytes().strip()
    except OSError as exc:
        raise DrctlError(f"cannot read the vault password from {path}: {exc.strerror}",
                         ExitCode.VAULT,
                         hint="set DRCTL_VAULT_PASSWORD_FILE to a file holding it") from exc


def vault_files(inventory: Path) -> list[Path]:
    """Whole-file vaults in the inventory's group_vars and host_vars."""
    base = inventory.parent
    found = []
    for sub in ("group_vars", "host_vars"):
        for path in sorted((base / sub).rglob("*")) if (base / sub).is_dir() else []:
            if path.is_file() and path.suffix in (".yml", ".yaml", "") and \
                    path.read_bytes()[:len(HEADER)] == HEADER:
                found.append(path)
    return found


def decrypt(inventory: Path) -> dict[str, Any]:
    """Every vault file's variables; DrctlError (exit 11) naming the first file the
    password does not open. The secrets are never printed."""
    from ansible.constants import DEFAULT_VAULT_ID_MATCH
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultLib, VaultSecret

    files = vault_files(inventory)
    if not files:
        return {}
    vault = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password()))])
    values: dict[str, Any] = {}
    for path in files:
        try:
            values.update(yaml.safe_load(vault.decrypt(path.read_bytes())) or {})
        except AnsibleError as exc:
            raise DrctlError(
                f"the vault password does not decrypt {path} (nothing was run)",
                ExitCode.VAULT, hint="check DRCTL_VAULT_PASSWORD_FILE (or "
                "ANSIBLE_VAULT_PASSWORD_FILE): it must hold this vault's password") from exc
    return values
