"""What every node program shares: its configuration, commands, psql, pg_controldata."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

DEFAULT_CONFIG = "/etc/drctl/node.json"
DEFAULT_WATCH_CONFIG = "/etc/drctl/watch.json"  # the watcher's (drctl.node.watch)
DEFAULT_FILES_CONFIG = "/etc/drctl/files.json"  # the app files copy (drctl.node.files)
DEFAULT_APP_VIP_CONFIG = "/etc/drctl/app-vip.json"  # an app host's VIP (drctl.node.appvip)
DEFAULT_BACKUP_CONFIG = "/etc/drctl/backup.json"  # a repository host's (drctl.node.backup)
DEFAULT_POOLER_CONFIG = "/etc/drctl/pooler.json"  # an app host's PgBouncer (drctl.node.pooler)
DEFAULT_VIP_TRACK_CONFIG = "/etc/drctl/vip-track.json"  # keepalived's file (drctl.node.viptrack)


@dataclass(frozen=True)
class Config:
    """/etc/drctl/node.json as the drctl_node role writes it."""

    name: str
    address: str = ""
    pg_version: int = 15
    pg_port: int = 5432
    vip: str = ""
    vip_interface: str = ""
    rewind_user: str = "drctl_rewind"
    ca_file: str = "/etc/postgresql-common/drctl-tls/ca.crt"
    peers: tuple[Mapping[str, str], ...] = ()
    passfile: str = "/var/lib/postgresql/.pgpass"
    data_dir: str = ""
    bin_dir: str = ""
    fence_file: str = "/etc/drctl/fenced"
    hold_file: str = "/run/drctl/vip-hold"
    # written by keepalived's check when this node found itself cut off from the network;
    # while it exists the check refuses the VIP, until the guard confirms this node is
    # still the newest primary (or it is a standby)
    doubt_file: str = "/run/drctl/vip-doubt"
    vrrp_state_file: str = "/run/drctl/vrrp-state"
    # the VIP check's own configuration (roles/keepalived_vip), which names the file where
    # the check keeps its last verdict and reason
    vip_track_config: str = "/etc/drctl/vip-track.json"
    lag_file: str = "/run/drctl/lag.json"
    auto_settings: str = "/etc/drctl/auto.json"
    auto_paused: str = "/etc/drctl/auto-paused"
    repmgrd_unit: str = "drctl-repmgrd"  # the repmgr role's repmgrd service
    libexec: str = "/usr/local/libexec/drctl"  # drctl-node, drctl-probe, drctl-auto
    standby_conf: str = ""  # pg_replication's standby settings (primary_conninfo, slot)
    # fence-check's hold (it would start as a primary and no peer confirmed it still is),
    # an operator's one-shot lift of it, and the mark that it ran as primary since boot
    start_held_file: str = "/run/drctl/start-held.json"
    start_lift_file: str = "/run/drctl/start-lifted"
    primary_boot_file: str = "/run/drctl/primary-this-boot"
    start_confirm_wait_s: float = 15  # how long fence-check asks the peers before holding
    # The pgBackRest repositories (numbers in this node's pgbackrest.conf) whose archive
    # fence-check and the guard ask for the newest timeline (the object stores: they
    # outlive both sites), the stanza, how often a running primary asks, and how long
    # one answer may take.
    archive_repos: tuple[int, ...] = ()
    stanza: str = ""
    archive_check_interval_s: float = 30
    archive_check_timeout_s: float = 5
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return f"postgresql@{self.pg_version}-main"

    @property
    def datadir(self) -> str:
        return self.data_dir or f"/var/lib/postgresql/{self.pg_version}/main"

    @property
    def standby_conf_file(self) -> str:
        return self.standby_conf or (f"/etc/postgresql/{self.pg_version}/main/conf.d/"
                                     "90-drctl-standby.conf")

    @property
    def bindir(self) -> str:
        return self.bin_dir or f"/usr/lib/postgresql/{self.pg_version}/bin"

    @property
    def psql(self) -> str:
        return f"{self.bindir}/psql"

    @classmethod
    def load(cls, path: str = DEFAULT_CONFIG) -> Config:
        with open(path) as fh:
            raw = json.load(fh)
        known = {k for k in cls.__dataclass_fields__ if k != "extra"}
        values = {k: v for k, v in raw.items() if k in known}
        values["peers"] = tuple(raw.get("peers") or ())
        values["archive_repos"] = tuple(int(n) for n in raw.get("archive_repos") or ())
        return cls(**values, extra={k: v for k, v in raw.items() if k not in known})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def emit(**data: Any) -> None:
    json.dump(data, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()


class StepFailed(Exception):
    """A step that cannot go on: printed as {"ok": false, "error": ...}, exit 1."""

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.data = data


def fail(message: str, **data: Any) -> NoReturn:
    raise StepFailed(message, **data)


def run(args: list[str], timeout: float = 60,
        env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                           env=dict(env) if env is not None else None)
    except OSError as exc:
        return 255, "", str(exc)
    except subprocess.TimeoutExpired:  # a failed step that says which command hung
        command = args[args.index("--") + 1] if "--" in args[:-1] else args[0]
        return 124, "", f"{os.path.basename(command)} gave no answer within {timeout:g} s"
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def psql(c: Config, sql: str, timeout: float = 10, db: str = "postgres",
         as_user: str | None = "postgres", port: int | None = None) -> str:
    """One statement on the local server over its socket (port: the configured one unless
    given); stdout, or RuntimeError. Runs the versioned psql of c.bindir, not Debian's
    Perl wrapper: drctl-guard runs this every few seconds."""
    cmd = [c.psql, "-XAtq", "-p", str(port or c.pg_port), "-d", db, "-c", sql]
    if as_user:
        cmd = ["runuser", "-u", as_user, "--", *cmd]
    rc, out, err = run(cmd, timeout=timeout)
    if rc != 0:
        raise RuntimeError(err or f"psql exited {rc}")
    return out


def psql_json(c: Config, sql: str, timeout: float = 10,
              as_user: str | None = "postgres") -> dict[str, Any]:
    value = json.loads(psql(c, sql, timeout=timeout, as_user=as_user))
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def controldata(c: Config, datadir: str | None = None) -> dict[str, str]:
    rc, out, err = run([f"{c.bindir}/pg_controldata", datadir or c.datadir])
    if rc != 0:
        raise RuntimeError(err)
    fields: dict[str, str] = {}
    for line in out.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return fields


def read_json(path: str) -> Any:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def write_json_atomic(path: str, data: Any, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


class Busy(Exception):
    """Another run holds the lock and did not let go in time."""


@contextlib.contextmanager
def exclusive(path: str, wait_s: float, poll_s: float = 0.2) -> Iterator[None]:
    """Hold an exclusive flock on PATH (created, with its directory) for the block; wait
    up to WAIT_S for another holder to let go, then raise Busy. The kernel drops the lock
    when its holder dies, so a killed run never leaves it held."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Busy(f"{path} is held by another run (waited {wait_s:g} s)") from None
                time.sleep(poll_s)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def holds_address(interface: str, address: str) -> bool:
    ip = address.split("/")[0]
    rc, out, _ = run(["ip", "-o", "addr", "show", "dev", interface], timeout=5)
    return rc == 0 and any(len(ln.split()) > 3 and ln.split()[3].split("/")[0] == ip
                           for ln in out.splitlines())


class PsqlTimeout(RuntimeError):
    """A kept psql session's statement got no answer in time (the session is closed)."""


class PsqlSession:
    """One long-lived psql reading statements from its standard input: a statement every
    second costs no new process, no runuser session and no login (drctl-node watch copies
    its record into the witness database this way). Any failure (an error, no answer in
    time, psql gone) ends the session with RuntimeError; the next statement starts a new
    one."""

    MARK = "drctl-psql-session-done"

    def __init__(self, argv: list[str], timeout: float = 5,
                 env: Mapping[str, str] | None = None) -> None:
        self.argv = [*argv, "-v", "ON_ERROR_STOP=1"]
        self.timeout = timeout
        self.env = dict(env) if env is not None else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.errors = b""

    def execute(self, sql: str) -> str:
        """Run SQL (one or more statements, no psql meta-commands); what it printed."""
        if self.proc is None or self.proc.poll() is not None:
            self.errors = b""
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         env=self.env)
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(f"{sql.rstrip().rstrip(';')};\n\\echo {self.MARK}\n".encode())
            proc.stdin.flush()
        except OSError as exc:
            self.close()
            raise RuntimeError(f"psql is gone: {exc}") from exc
        out = b""
        deadline = time.monotonic() + self.timeout
        fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno() if proc.stderr else -1
        while not out.endswith(f"{self.MARK}\n".encode()):
            left = deadline - time.monotonic()
            watched = [fd, err_fd] if err_fd >= 0 else [fd]
            ready = select.select(watched, [], [], left)[0] if left > 0 else []
            if not ready:
                self.close()
                raise PsqlTimeout(f"psql gave no answer within {self.timeout:g} s")
            if err_fd in ready:  # notices and errors: drained, the newest kept for a failure
                noise = os.read(err_fd, 65536)
                self.errors = (self.errors + noise)[-4000:]
                if not noise:
                    err_fd = -1  # closed: psql is ending; its stdout says the rest
                if fd not in ready:
                    continue
            chunk = os.read(fd, 65536)
            if not chunk:  # psql ended: ON_ERROR_STOP after an error, or killed
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=1)
                if err_fd >= 0:
                    with contextlib.suppress(OSError):
                        self.errors += os.read(err_fd, 65536)
                lines = self.errors.decode(errors="replace").strip().splitlines()
                said = [ln for ln in lines if "ERROR:" in ln or "FATAL:" in ln] or lines
                self.close()
                raise RuntimeError(said[-1].strip() if said else "psql ended")
            out += chunk
        return out[:-len(self.MARK) - 1].decode(errors="replace").strip()

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()


class KeptSessions:
    """PsqlSessions a service keeps between its rounds, by name: the same arguments get
    the session already open; new ones (a reconfigured host, a new password) close the
    old session and open another. SESSION makes one from psql's arguments, its timeout
    and its environment."""

    def __init__(self, session: Callable[..., Any] = PsqlSession) -> None:
        self.session = session
        self.kept: dict[str, tuple[tuple[Any, ...], Any]] = {}

    def ask(self, name: str, argv: list[str], timeout: float,
            env: Mapping[str, str] | None = None) -> Callable[[str], str]:
        """The kept session's execute, for ARGV (opened now when it is not kept). A
        statement that fails is asked once more on a new session: a kept session dies
        with the server it was connected to (a restarted pooler), the question does not.
        One that got no answer in time is not asked again (it would wait as long)."""
        key = (tuple(argv), timeout, tuple(sorted((env or {}).items())))
        held = self.kept.get(name)
        if held is None or held[0] != key:
            if held is not None:
                held[1].close()
            held = (key, self.session(argv, timeout=timeout, env=env))
            self.kept[name] = held
        session = held[1]

        def execute(sql: str) -> str:
            try:
                return str(session.execute(sql))
            except PsqlTimeout:
                raise
            except RuntimeError:  # the session is closed: execute opens a new one
                return str(session.execute(sql))
        return execute

    def close(self) -> None:
        for _, session in self.kept.values():
            session.close()
        self.kept.clear()


def code_file(module_file: str) -> str | None:
    """The file the node programs were loaded from: their zip archive (the drctl_node
    role installs one), or None for a package directory (a developer's tree)."""
    path = module_file
    while path and path != os.path.dirname(path):
        if os.path.isfile(path) and path.endswith(".zip"):
            return path
        path = os.path.dirname(path)
    return None


def mtime(path: str | None) -> float | None:
    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None
