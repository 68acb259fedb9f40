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


def action_module(name: str, args: dict[str, Any], check_mode: bool = False) -> Any:
    """plugins/action/NAME.py's ActionModule for one task with ARGS, as Ansible would make
    it for that task, with the parts it reads: the task (its args, check mode), a
    connection whose shell has a temporary directory, the play context, and a templar
    that leaves values as they are."""
    from types import SimpleNamespace

    task = SimpleNamespace(args=args, async_val=0, check_mode=check_mode, action=name)
    return action_plugin(name).ActionModule(
        task, SimpleNamespace(_shell=SimpleNamespace(tmpdir="/tmp")),
        SimpleNamespace(check_mode=check_mode), None, SimpleNamespace(template=lambda v: v),
        None)
