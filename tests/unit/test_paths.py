"""Where drctl keeps its SSH connection sockets: a path that fits a socket, wherever the
checkout lives (CI's runner checks out deep: /check/work/main/test-artifacts/lane-b/...)."""

import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

import pytest

from drctl import paths
from drctl.errors import DrctlError


def _binds(directory) -> bool:
    """Can OpenSSH bind its master here? It binds "<dir>/<%C>.<16 random chars>"."""
    name = os.path.join(directory, "a" * 40 + "." + "b" * 16)
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.bind(name)
        except OSError:
            return False
    os.unlink(name)
    return True


@pytest.fixture
def short_tmp():
    """pytest's own tmp_path is itself too deep for a socket."""
    path = tempfile.mkdtemp(prefix="dt", dir="/tmp")
    yield Path(path)
    shutil.rmtree(path)


def test_a_short_state_dir_keeps_its_sockets(short_tmp, monkeypatch):
    tmp_path = short_tmp
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "s"))
    control = paths.ssh_control_dir()
    assert control == tmp_path / "s" / "ssh"
    assert stat.S_IMODE(control.stat().st_mode) == 0o700
    assert _binds(control)


def test_a_deep_state_dir_gets_a_short_private_socket_dir(short_tmp, monkeypatch):
    tmp_path = short_tmp
    deep = tmp_path / ("d" * 60) / "test-artifacts" / "lane-b" / "tree" / ".drctl"
    monkeypatch.setenv("DRCTL_STATE_DIR", str(deep))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert not _binds(paths.state_dir())  # the failure CI met, for real
    control = paths.ssh_control_dir()
    assert _binds(control)
    assert control.parent == tmp_path / f"drctl-{os.getuid()}"
    assert stat.S_IMODE(control.stat().st_mode) == 0o700
    assert paths.ssh_control_dir() == control  # the same one each time
    monkeypatch.setenv("DRCTL_STATE_DIR", str(deep.parent / ".other"))
    assert paths.ssh_control_dir() != control  # another tree, other connections


def test_a_shared_socket_dir_is_refused(short_tmp, monkeypatch):
    tmp_path = short_tmp
    deep = tmp_path / ("d" * 90) / ".drctl"
    monkeypatch.setenv("DRCTL_STATE_DIR", str(deep))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    base = tmp_path / f"drctl-{os.getuid()}"
    base.mkdir(mode=0o777)
    base.chmod(0o777)  # another user could plant sockets here
    with pytest.raises(DrctlError, match="not a directory private to this user"):
        paths.ssh_control_dir()
