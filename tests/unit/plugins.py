"""The project's action plugins loaded as modules, for unit tests that run them on facts."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def action_plugin(name: str) -> Any:
    """plugins/action/NAME.py as a module of its own (its ActionModule runs without Ansible's
    loader; the tests hand it the task, connection and play context it reads)."""
    spec = importlib.util.spec_from_file_location(
        f"{name}_under_test", ROOT / "plugins" / "action" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
