"""Where drctl finds its playbooks and keeps its state."""

import os
from pathlib import Path


def project_dir() -> Path:
    """The directory holding playbooks/, roles/ and ansible.cfg."""
    env = os.environ.get("DRCTL_HOME")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """drctl's own state (CA, journal, lock, runner artifacts); created on demand."""
    env = os.environ.get("DRCTL_STATE_DIR")
    path = Path(env) if env else project_dir() / ".drctl"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def lab_dir() -> Path:
    """The lab's private files: SSH key, vault password, known_hosts."""
    return project_dir() / ".lab"


def lab_inventory_dir() -> Path:
    return project_dir() / "inventories" / "lab"


def default_inventory() -> Path:
    env = os.environ.get("DRCTL_INVENTORY")
    if env:
        return Path(env)
    return lab_inventory_dir() / "hosts.yml"
