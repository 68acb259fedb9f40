"""Integration tests run drctl against the lab: real containers with systemd, sshd,
PostgreSQL and keepalived. `make integration` brings up a fresh lab first.

Nothing here fakes the cluster: commands are the real CLI in a subprocess, faults are
real (`systemctl stop` in a container), and checks look where a user would look.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventories" / "lab" / "hosts.yml"
PREFIX = os.environ.get("DRCTL_LAB_NAME", "drctl-lab") + "-"


def drctl(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the real CLI; stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", "drctl", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


def drctl_json(*args: str, timeout: float = 900) -> tuple[int, dict]:
    proc = drctl(*args, "--format", "json", timeout=timeout)
    try:
        return proc.returncode, json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError(f"no JSON on stdout (rc {proc.returncode}):\n{proc.stdout}\n"
                             f"{proc.stderr}") from exc


def sh(host: str, command: str, check: bool = True, timeout: float = 120) -> str:
    """Run a shell command inside a lab container as root."""
    proc = subprocess.run(["docker", "exec", PREFIX + host, "sh", "-c", command],
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{host}: `{command}` exited {proc.returncode}: {proc.stderr}")
    return proc.stdout.strip()


def psql(host: str, sql: str, db: str = "postgres", check: bool = True) -> str:
    return sh(host, f"runuser -u postgres -- psql -XAtq -d {db} -c \"{sql}\"", check=check)


def wait_for(what: str, predicate: Callable[[], object], timeout: float = 30,
             interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def vip_holders(hosts=("pg1", "pg2")) -> list[str]:
    vip = lab_vars()["drctl_vip"].split("/")[0]
    return [h for h in hosts
            if f" {vip}/" in sh(h, "ip -o addr show dev eth0", check=False)]


def lab_address(host: str) -> str:
    """A lab host's address, as the generated inventory gives it."""
    groups = yaml.safe_load(INVENTORY.read_text())["all"]["children"]
    return next(g["hosts"][host]["ansible_host"] for g in groups.values()
                if host in (g.get("hosts") or {}))


def lab_vars() -> dict:
    return yaml.safe_load((INVENTORY.parent / "group_vars" / "all" / "main.yml").read_text())


def lab_secrets() -> dict[str, str]:
    from ansible.constants import DEFAULT_VAULT_ID_MATCH
    from ansible.parsing.vault import VaultLib, VaultSecret

    password = (ROOT / ".lab" / "vault-pass").read_text().strip().encode()
    vault = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password))])
    data = (INVENTORY.parent / "group_vars" / "all" / "vault.yml").read_bytes()
    return yaml.safe_load(vault.decrypt(data))


def vip_connect(**kw):
    """psycopg connection to the application database through the VIP, TLS verify-full."""
    import psycopg

    vip = lab_vars()["drctl_vip"].split("/")[0]
    kw.setdefault("connect_timeout", 5)
    return psycopg.connect(host=vip, port=5432, dbname="app", user="app",
                           password=_password(), sslmode="verify-full",
                           sslrootcert=str(ROOT / ".drctl" / "ca" / "lab" / "ca.crt"), **kw)


_cache: dict[str, str] = {}


def _password() -> str:
    if "app" not in _cache:
        _cache["app"] = lab_secrets()["vault_pg_app_password"]
    return _cache["app"]


@pytest.fixture(scope="session", autouse=True)
def lab():
    """The lab must be up (make integration runs `drctl lab up --fresh` first)."""
    if not INVENTORY.exists():
        proc = drctl("lab", "up")
        assert proc.returncode == 0, proc.stderr
    os.environ.setdefault("DRCTL_INVENTORY", str(INVENTORY))
    return INVENTORY
