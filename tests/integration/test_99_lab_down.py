"""Last: `drctl lab down` leaves nothing behind (the cached image aside)."""

import os
import subprocess

from drctl_lab.hosts import INVENTORY
from tests.integration.conftest import ROOT, drctl_json

NAME = os.environ.get("DRCTL_LAB_NAME", "drctl-lab")


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True,
                          check=False).stdout.strip()


def test_lab_down_removes_containers_network_inventory_and_keys():
    from drctl_lab import lab as labmod

    # the lab's hosts, and with two sites (test_14 left lane b's so) dc2's and the router
    sites = labmod.site_count()
    expected = len(labmod.lab_hosts()) + (1 if sites > 1 else 0)
    code, result = drctl_json("lab", "down")
    assert code == 0
    assert result["containers_removed"] == expected
    assert docker("ps", "-aq", "--filter", f"label=drctl.lab={NAME}") == ""
    assert docker("network", "ls", "-q", "--filter", f"name=^{NAME}$") == ""
    assert docker("network", "ls", "-q", "--filter", f"name=^{NAME}-dc2$") == ""
    assert not INVENTORY.parent.exists()
    assert not (ROOT / ".lab" / "id_ed25519").exists()
    assert not (ROOT / ".lab" / "vault-pass").exists()
    code, rows = drctl_json("lab", "status")
    assert code == 4 and all(r["container"] == "absent" for r in rows)
