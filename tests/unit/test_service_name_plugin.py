"""The playbooks' step that moves the service's name (includes/service-name.yml, the
drctl_service_name action plugin) and drctl's own (drctl.dns.serving_site after an
operation) decide the serving site by the same rule, on the same facts."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from drctl import dns
from drctl.inventory import Host, Inventory
from tests.unit.plugins import action_module

ROOT = Path(__file__).resolve().parents[2]
SITES = {"pg1": "dc1", "pg2": "dc1", "pg3": "dc2", "app1": "dc1", "app2": "dc2"}
APP_VIPS = {"dc1": "10.0.1.101/24", "dc2": "10.0.2.101/24"}


def hook(tmp_path: Path) -> tuple[str, Path]:
    """A drctl_dns_hook that records what it was asked (NAME ADDRESS TTL)."""
    out = tmp_path / "published"
    script = tmp_path / "hook"
    script.write_text(f'#!/bin/sh\necho "$@" >> {out}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), out


def hostvars() -> dict[str, dict[str, Any]]:
    hv: dict[str, dict[str, Any]] = {}
    for host, site in SITES.items():
        hv[host] = {"drctl_location": site, "ansible_host": f"10.0.{site[-1]}.{len(hv) + 10}"}
        if host.startswith("app"):
            hv[host]["drctl_app_vip"] = APP_VIPS[site]
    return hv


def play_step(tmp_path: Path, writable: list[str], vip_holders: list[str]
              ) -> tuple[dict[str, Any], list[str]]:
    script, out = hook(tmp_path)
    args = {"writable": writable, "vip_holders": vip_holders,
            "options": {"drctl_dns_name": "app.example.test", "drctl_dns_zone": "example.test",
                        "drctl_dns_hook": script}}
    result = action_module("drctl_service_name", args).run(task_vars={"hostvars": hostvars(),
                                   "groups": {"app": ["app1", "app2"]}})
    return result, (out.read_text().split() if out.exists() else [])


def drctl_site(writable: list[str], vip_holders: list[str]) -> str | None:
    """drctl's own reading of the same facts, as a status reports them."""
    hosts = {h: Host(h, f"10.0.{s[-1]}.1", {"pg_primary" if h == "pg1" else "pg_standby"},
                     {"drctl_location": s}) for h, s in SITES.items() if h.startswith("pg")}
    inv = Inventory(path=Path("/x"), hosts=hosts, cluster={})
    primary = writable[0] if len(writable) == 1 else None
    sites = {s: {"vip_holders": [h for h in vip_holders if SITES[h] == s]}
             for s in ("dc1", "dc2")}
    return dns.serving_site(inv, {"primary": primary, "sites": sites})


@pytest.mark.parametrize("writable, holders, site", [
    (["pg1"], ["pg1"], "dc1"),
    (["pg3"], ["pg3"], "dc2"),
    (["pg3"], [], None),            # the new primary does not hold its VIP yet
    (["pg1", "pg3"], ["pg1"], None),  # two writable nodes: no site serves
    ([], [], None),
])
def test_the_playbook_and_drctl_send_the_name_to_the_same_site(tmp_path, writable, holders,
                                                                site):
    result, published = play_step(tmp_path, writable, holders)
    assert drctl_site(writable, holders) == site
    if site is None:
        assert result["failed"] and published == [], result
        assert "no site serves" in result["msg"] and "left as it is" in result["msg"]
    else:
        assert not result.get("failed"), result
        assert published[:2] == ["app.example.test.", APP_VIPS[site].split("/")[0]]


@pytest.mark.parametrize("playbook", ["provision.yml", "switchover.yml", "failover.yml"])
def test_every_playbook_that_moves_the_primary_moves_the_name(playbook):
    plays = yaml.safe_load((ROOT / "playbooks" / playbook).read_text())
    imported = [p.get("ansible.builtin.import_playbook") for p in plays]
    assert "includes/service-name.yml" in imported
    # after the primary has moved: the last play but the lock's release (and auto-resume)
    tail = [i for i in imported[imported.index("includes/service-name.yml") + 1:]]
    assert set(tail) <= {"includes/ledger-release.yml", "includes/auto-resume.yml"}


def test_drctl_runs_the_name_step_itself_so_the_playbook_skips_it():
    text = (ROOT / "drctl" / "operations" / "ha.py").read_text()
    assert '"drctl_follows_name": True' in text
    include = yaml.safe_load((ROOT / "playbooks" / "includes" / "service-name.yml").read_text())
    skip = include[0]["tasks"][0]
    assert skip["ansible.builtin.meta"] == "end_play"
    assert "drctl_follows_name" in skip["when"]
