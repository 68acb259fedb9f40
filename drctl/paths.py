"""Where drctl finds its playbooks and keeps its state."""

import hashlib
import os
import stat
import tempfile
from pathlib import Path

# A Unix socket's path must fit sun_path: 108 bytes on Linux, 104 on the BSDs and macOS,
# the terminating NUL included. OpenSSH binds a connection master at "<ControlPath>." plus
# 16 random characters before renaming it, and %C is 40 hex digits: the directory may take
# at most 104 - 1 - 40 - 17 - 1 bytes.
SOCKET_PATH_MAX = 104
_CONTROL_NAME_LEN = 1 + 40 + 17


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


def ssh_control_dir() -> Path:
    """Where drctl's shared SSH connections (ControlPath) live.

    In the state directory when its path is short enough for a socket; otherwise (a
    checkout deep in a CI runner's tree) in a private directory under the temporary
    directory, one per state directory, that must be this user's alone."""
    own = state_dir() / "ssh"
    if len(os.fsencode(own)) + _CONTROL_NAME_LEN < SOCKET_PATH_MAX:
        own.mkdir(exist_ok=True, mode=0o700)
        return own
    base = Path(tempfile.gettempdir()) / f"drctl-{os.getuid()}"
    key = hashlib.sha1(os.fsencode(state_dir().resolve())).hexdigest()[:12]
    for path in (base, base / key):
        path.mkdir(exist_ok=True, mode=0o700)
        info = path.lstat()
        if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
                or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)):
            from drctl.errors import DrctlError

            raise DrctlError(f"{path} is not a directory private to this user; drctl will "
                             "not keep SSH connections there",
                             hint="remove it, or set DRCTL_STATE_DIR to a short path")
    if len(os.fsencode(base / key)) + _CONTROL_NAME_LEN >= SOCKET_PATH_MAX:
        from drctl.errors import DrctlError

        raise DrctlError(f"no directory short enough for SSH control sockets ({base / key})",
                         hint="set TMPDIR or DRCTL_STATE_DIR to a shorter path")
    return base / key


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
