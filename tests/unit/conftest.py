"""Helpers that write small inventories into a temporary directory."""

import os
from pathlib import Path

import pytest
import yaml

GOOD_HOSTS = {
    "all": {
        "children": {
            "pg_primary": {"hosts": {"pg1": {"ansible_host": "10.9.0.11"}}},
            "pg_standby": {"hosts": {"pg2": {"ansible_host": "10.9.0.12"}}},
            "backup": {"hosts": {"backup1": {"ansible_host": "10.9.0.13"}}},
            "app": {"hosts": {"app1": {"ansible_host": "10.9.0.14"}}},
        }
    }
}
GOOD_VARS = {"drctl_vip": "10.9.0.100/24", "drctl_vip_interface": "eth0",
             "drctl_tls_ca_dir": "/etc/drctl/ca/main"}


@pytest.fixture
def make_inventory(tmp_path: Path):
    """make_inventory(hosts=..., all_vars=..., raw=...) -> path of hosts.yml"""

    def make(hosts=None, all_vars=None, raw: str | None = None) -> Path:
        path = tmp_path / "hosts.yml"
        if raw is not None:
            path.write_text(raw)
        else:
            path.write_text(yaml.safe_dump(hosts if hosts is not None else GOOD_HOSTS))
        gv = tmp_path / "group_vars" / "all"
        gv.mkdir(parents=True, exist_ok=True)
        (gv / "main.yml").write_text(yaml.safe_dump(GOOD_VARS if all_vars is None else all_vars))
        return path

    return make


@pytest.fixture(autouse=True)
def no_ssh(monkeypatch, tmp_path_factory):
    """Unit tests reach no host: `ssh` on PATH is a stand-in that fails as an unreachable
    host does (a test that needs answers fakes drctl.sshprobe.run or its callers), and no
    TCP connection leaves loopback."""
    shim = tmp_path_factory.getbasetemp() / "no-ssh"
    if not (shim / "ssh").exists():
        shim.mkdir(exist_ok=True)
        (shim / "ssh").write_text("#!/bin/sh\necho 'ssh: unit tests reach no host' >&2\n"
                                  "exit 255\n")
        (shim / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    # nor a TCP port: the quick liveness check answers "it answers" for any address but
    # loopback without opening a connection (the ssh stand-in or a test's fake decides)
    from drctl import sshprobe

    real = sshprobe.port_answers
    monkeypatch.setattr(sshprobe, "port_answers", lambda address, port, *a, **kw: (
        real(address, port, *a, **kw) if address.startswith("127.") else True))
