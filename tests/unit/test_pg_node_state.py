"""pg_topology's module: the facts the primary is decided from, read in one step."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location(
    "drctl_pg_node_state", ROOT / "plugins" / "modules" / "drctl_pg_node_state.py")
assert SPEC and SPEC.loader
MODULE = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(MODULE)


@pytest.fixture
def datadir(tmp_path: Path) -> Path:
    d = tmp_path / "main"
    d.mkdir()
    return d


def state(datadir: Path, tmp_path: Path, answer: str | None) -> dict[str, bool]:
    asked: list[bool] = []

    def ask() -> str | None:
        asked.append(True)
        return answer
    out = MODULE.node_state(str(datadir), str(tmp_path / "fenced"), "drctl_fresh_cluster", ask)
    out["asked"] = bool(asked)
    return out


def test_a_bare_host_is_not_initialised_and_no_server_is_asked(datadir, tmp_path):
    assert state(datadir, tmp_path, "f") == {
        "initialised": False, "running": False, "writable": False, "standby_signal": False,
        "fresh": False, "fenced": False, "asked": False}


def test_a_running_primary_is_writable(datadir, tmp_path):
    (datadir / "PG_VERSION").write_text("15\n")
    got = state(datadir, tmp_path, "f")
    assert got["initialised"] and got["running"] and got["writable"] and got["asked"]


def test_a_running_standby_is_not_writable(datadir, tmp_path):
    (datadir / "PG_VERSION").write_text("15\n")
    (datadir / "standby.signal").touch()
    got = state(datadir, tmp_path, "t")
    assert got["running"] and not got["writable"] and got["standby_signal"]


def test_a_stopped_fenced_never_used_cluster(datadir, tmp_path):
    (datadir / "PG_VERSION").write_text("15\n")
    (datadir / "drctl_fresh_cluster").touch()
    (tmp_path / "fenced").write_text("{}")
    got = state(datadir, tmp_path, None)
    assert got["initialised"] and not got["running"] and not got["writable"]
    assert got["fresh"] and got["fenced"]
