"""Preflight: an unreachable host stops provisioning within seconds, naming it, changing nothing."""

import subprocess
import time

from drctl_lab.hosts import PREFIX, sh
from tests.integration.conftest import drctl, drctl_json


def pg_package_state() -> str:
    return sh("pg1", "dpkg-query -W -f '${Status}' postgresql-15 2>/dev/null || echo absent",
              check=False)


def test_unreachable_host_fails_preflight_naming_it():
    before = pg_package_state()
    subprocess.run(["docker", "stop", "-t", "5", PREFIX + "app1"], check=True,
                   capture_output=True)
    try:
        start = time.monotonic()
        code, result = drctl_json("provision")
        elapsed = time.monotonic() - start
    finally:
        up = drctl("lab", "up")
        assert up.returncode == 0, up.stderr
    assert code == 4, result  # ExitCode.UNREACHABLE
    assert result["unreachable"] == ["app1"]
    assert result["changed"] == 0
    failure = result["failures"][0]
    assert failure["host"] == "app1" and failure["unreachable"]
    assert elapsed < 60, f"preflight took {elapsed:.0f} s to give up on an unreachable host"
    assert pg_package_state() == before


def test_unreachable_message_for_people():
    subprocess.run(["docker", "stop", "-t", "5", PREFIX + "app1"], check=True,
                   capture_output=True)
    try:
        proc = drctl("ping")
    finally:
        assert drctl("lab", "up").returncode == 0
    assert proc.returncode == 4
    assert "app1" in proc.stderr and "hint:" in proc.stderr
