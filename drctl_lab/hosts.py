"""What the integration tests and the benches do to the lab's hosts from this machine:
run a command inside a host's container, cut and restore its power, reach the database
through the lab's VIP, read the lab's variables and secrets. The lab's own paths and
names (drctl.paths, drctl_lab.lab) say where; nothing here is product code."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from drctl.paths import lab_dir, lab_inventory_dir
from drctl_lab.lab import PREFIX, container_run, kill_one_at_a_time

INVENTORY = lab_inventory_dir() / "hosts.yml"


def sh(host: str, command: str, check: bool = True, timeout: float = 120) -> str:
    """Run a shell command inside a lab container as root."""
    proc = container_run(PREFIX + host, ["sh", "-c", command], timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{host}: `{command}` exited {proc.returncode}: {proc.stderr}")
    return proc.stdout.strip()


def psql(host: str, sql: str, db: str = "postgres", check: bool = True) -> str:
    return sh(host, f"runuser -u postgres -- psql -XAtq -d {db} -c \"{sql}\"", check=check)


def drctl_cli(args: list[str] | tuple[str, ...], timeout: float = 900,
              cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI as a script would: this interpreter's drctl, no terminal on stdin,
    stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", "drctl", *args], cwd=cwd,
                          capture_output=True, stdin=subprocess.DEVNULL, text=True,
                          timeout=timeout, check=False)


def json_answer(proc: subprocess.CompletedProcess) -> Any:
    """The JSON document a `--format json` call printed, as printed (a list stays a list);
    when the call failed and printed an object, what it said on stderr rides along in it
    as "_stderr". Raises ValueError when it printed no JSON."""
    data = json.loads(proc.stdout)
    if proc.returncode != 0 and isinstance(data, dict):
        data = {"_stderr": proc.stderr[-3000:], **data}
    return data


def healthy(code: int, st: Mapping[str, Any], primary: str | None = None) -> bool:
    """Status's answer is healthy: a writable primary (PRIMARY, when named) that is the
    only VIP holder."""
    writer = st.get("primary")
    return (code == 0 and writer is not None and (primary is None or writer == primary)
            and st.get("vip_holders") == [writer])


# Told how long each wait_for took (what, seconds), when set: the tests' conftest keeps
# them by module in test-artifacts/waits-LANE.json, to show where a run's time waits.
on_wait: Callable[[str, float], None] | None = None


def wait_for(what: str, predicate: Callable[[], object], timeout: float = 30,
             interval: float = 0.5):
    start = time.monotonic()
    deadline = start + timeout
    last = None
    try:
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
    finally:
        if on_wait is not None:
            on_wait(what, time.monotonic() - start)


def power_off(*hosts: str) -> None:
    """Cut the power: nothing shuts down cleanly. Several hosts lose it one after the
    other, each exit handled by docker before the next (lab.kill_one_at_a_time)."""
    kill_one_at_a_time([PREFIX + h for h in hosts])


def power_on(host: str) -> None:
    """Power HOST on and wait until systemd has booted it (units may have failed)."""
    subprocess.run(["docker", "start", PREFIX + host], check=True, capture_output=True)
    wait_for(f"{host} to boot", lambda: sh(host, "systemctl is-system-running", check=False)
             in ("running", "degraded"), timeout=90)


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

    password = (lab_dir() / "vault-pass").read_text().strip().encode()
    vault = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password))])
    data = (INVENTORY.parent / "group_vars" / "all" / "vault.yml").read_bytes()
    return yaml.safe_load(vault.decrypt(data))


def vip_connect(vip: str | None = None, **kw: Any) -> Any:
    """psycopg connection to the application database through the VIP (by default the
    home site's), TLS verify-full."""
    import psycopg

    vip = vip or lab_vars()["drctl_vip"].split("/")[0]
    kw.setdefault("connect_timeout", 5)
    return psycopg.connect(host=vip, port=5432, dbname="app", user="app",
                           password=_password(), sslmode="verify-full",
                           sslrootcert=str(Path(lab_vars()["drctl_tls_ca_dir"]) / "ca.crt"),
                           **kw)


_cache: dict[str, str] = {}


def _password() -> str:
    if "app" not in _cache:
        _cache["app"] = lab_secrets()["vault_pg_app_password"]
    return _cache["app"]


