"""The one adapter between drctl and Ansible (the ONLY module importing ansible_runner).

`run_playbook()` runs a playbook through ansible_runner with an event handler,
reduces the job events to a typed `RunResult`, shows progress a person can follow,
and maps the runner's outcome to an `ExitCode`. It never parses ansible-playbook's
text output: everything comes from the structured job events.

Secrets: the vault password reaches ansible-playbook as a file path in its
environment (never written by runner: `suppress_env_files`); extravars carry no
secrets; tasks that touch secrets are `no_log`, so events and artifacts hold none.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drctl.exitcodes import ExitCode
from drctl.paths import project_dir, state_dir

# A host that does not answer must fail in seconds (ansible's connection timeout),
# and a hung run must not sit for ansible-runner's defaults (600 s idle, no job limit).
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_IDLE_TIMEOUT = 300
DEFAULT_JOB_TIMEOUT = 1800


@dataclass
class TaskFailure:
    host: str
    task: str
    message: str
    unreachable: bool = False


@dataclass
class RunResult:
    playbook: str
    status: str  # successful | failed | timeout | canceled | error
    rc: int
    duration: float
    stats: dict[str, dict[str, int]] = field(default_factory=dict)  # host -> ok/changed/...
    failures: list[TaskFailure] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # set_stats(data) from the playbook
    artifact_dir: str = ""
    # ansible-playbook's own errors, outside any task (a playbook that does not parse, a
    # missing role): without them such a run would fail with nothing to say why
    errors: list[str] = field(default_factory=list)
    # every task that changed (or, in check mode, would change) a host, in run order
    changes: list[dict[str, str]] = field(default_factory=list)

    def failure_lines(self) -> list[str]:
        """One line per failed task (host: task: message), else ansible-playbook's errors."""
        return [f"{f.host}: {f.task}: {f.message}" for f in self.failures] or self.errors

    @property
    def unreachable_hosts(self) -> list[str]:
        return sorted({f.host for f in self.failures if f.unreachable})

    @property
    def changed(self) -> int:
        return sum(s.get("changed", 0) for s in self.stats.values())

    @property
    def exit_code(self) -> ExitCode:
        if self.status == "successful":
            # ansible-playbook exited 0: failures it recorded were ignored or rescued
            # (e.g. failover's ignore_unreachable for a dead primary)
            return ExitCode.OK
        if self.status == "canceled":
            return ExitCode.CANCELED
        if self.status == "timeout":
            return ExitCode.TIMEOUT
        if self.unreachable_hosts:
            return ExitCode.UNREACHABLE
        return ExitCode.FAILED

    def as_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.playbook,
            "status": self.status,
            "exit_code": int(self.exit_code),
            "rc": self.rc,
            "duration_s": round(self.duration, 2),
            "changed": self.changed,
            "changes": self.changes,
            "stats": self.stats,
            "failures": [f.__dict__ for f in self.failures],
            "unreachable": self.unreachable_hosts,
            "data": self.data,
            "errors": self.errors,
            "artifacts": self.artifact_dir,
        }


class EventReducer:
    """Folds ansible-runner job events into a RunResult and progress callbacks.

    Kept free of ansible_runner so that unit tests feed it recorded events.
    """

    def __init__(self, progress: Callable[[str, dict[str, Any]], None] | None = None,
                 journal: Callable[[dict[str, Any], str | None], None] | None = None):
        self.progress = progress or (lambda kind, info: None)
        self.journal = journal
        self.failures: list[TaskFailure] = []
        self.stats: dict[str, dict[str, int]] = {}
        self.data: dict[str, Any] = {}
        self.errors: list[str] = []
        self.changes: list[dict[str, str]] = []
        self._error_lines = 0  # lines still to keep of the error being read

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        ed = event.get("event_data") or {}
        host = ed.get("host") or ed.get("remote_addr") or ""
        task = ed.get("task") or ""
        if kind in ("verbose", "error"):
            self._read_error(str(event.get("stdout") or ""))
        elif kind == "playbook_on_play_start":
            self.progress("play", {"play": ed.get("play", "")})
        elif kind == "playbook_on_task_start":
            self.progress("task", {"task": task, "play": ed.get("play", "")})
        elif kind == "runner_item_on_ok":
            msg = (ed.get("res") or {}).get("msg")
            if self.journal and isinstance(msg, dict) and "drctl_journal" in msg:
                self.journal(msg["drctl_journal"], event.get("created"))
        elif kind in ("runner_on_ok", "runner_on_skipped"):
            res = ed.get("res") or {}
            msg = res.get("msg") if kind == "runner_on_ok" else None
            if self.journal and isinstance(msg, dict) and "drctl_journal" in msg:
                self.journal(msg["drctl_journal"], event.get("created"))
            state = "skipped" if kind == "runner_on_skipped" else (
                "changed" if res.get("changed") else "ok")
            if state == "changed":
                self.changes.append({"host": host, "task": task})
            self.progress("host", {"host": host, "task": task, "state": state})
        elif kind == "runner_on_failed":
            if not ed.get("ignore_errors"):
                msg = self._message(ed.get("res") or {})
                self.failures.append(TaskFailure(host, task, msg))
                self.progress("host", {"host": host, "task": task, "state": "failed", "msg": msg})
        elif kind == "runner_on_unreachable":
            msg = self._message(ed.get("res") or {})
            self.failures.append(TaskFailure(host, task, msg, unreachable=True))
            self.progress("host", {"host": host, "task": task, "state": "unreachable", "msg": msg})
        elif kind == "playbook_on_stats":
            for key in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored"):
                for h, n in (ed.get(key) or {}).items():
                    self.stats.setdefault(h, {})[key] = n
            self.data = ed.get("artifact_data") or {}
        return True

    def _read_error(self, line: str) -> None:
        """Keep an error ansible-playbook prints outside a task, with the line that says
        where it comes from ("Origin: FILE:LINE:COLUMN")."""
        text = line.strip()
        if text.startswith(("[ERROR]", "ERROR!")):
            self.errors.append(text)
            self._error_lines = 1
        elif self._error_lines and text.startswith("Origin:"):
            self.errors[-1] += f" ({text})"
            self._error_lines = 0
        elif text:
            self._error_lines = 0

    @staticmethod
    def _message(res: dict[str, Any]) -> str:
        if res.get("censored"):
            return res["censored"]
        msg = res.get("msg") or ""
        detail = res.get("stderr") or res.get("module_stderr") or ""
        if detail and (not msg or msg in ("non-zero return code", "MODULE FAILURE")):
            msg = f"{msg}: {detail}" if msg else detail
        if isinstance(msg, list):
            msg = "; ".join(str(m) for m in msg)
        msg = str(msg).strip()
        if len(msg) > 2000:
            msg = msg[:2000] + " ..."
        return msg or "failed (no message)"


def _vault_env() -> dict[str, str]:
    """Point ansible at the vault password without writing it anywhere."""
    env: dict[str, str] = {}
    for var in ("ANSIBLE_VAULT_PASSWORD_FILE", "DRCTL_VAULT_PASSWORD_FILE"):
        if os.environ.get(var):
            env[var] = os.environ[var]
    return env


_KEEP_ENV = ("PATH", "ANSIBLE_CONFIG", "ANSIBLE_TIMEOUT", "ANSIBLE_NOCOLOR", "HOME", "LANG",
             "ANSIBLE_STRATEGY", "ANSIBLE_STRATEGY_PLUGINS")


# Mitogen runs each host's modules in one long-lived interpreter instead of a new
# python3 (and the module's zip of ansible's code, compiled again) per task: measured on
# the lab, a module costs the node about 35 ms of CPU instead of 160 ms. drctl uses it for
# the runs that touch every host with hundreds of tasks and no host expected to die
# mid-run (provision), where it is the difference between minutes; the operations that
# run while a host is failing keep ansible's own strategy and its proven failure paths.
# DRCTL_ANSIBLE_ACCELERATOR=none turns it off; ansible-playbook runs never use it.
# ansible-core has announced it will stop loading third-party strategies: the pin on
# ansible (<13, pyproject.toml) holds until then.
ACCELERATOR_ENV = "DRCTL_ANSIBLE_ACCELERATOR"


def accelerator_env() -> dict[str, str]:
    """The environment that runs a playbook's linear plays with mitogen's strategy, or {}
    when it is turned off or not installed."""
    choice = os.environ.get(ACCELERATOR_ENV, "mitogen").strip().lower()
    if choice in ("none", "off", "0", ""):
        return {}
    if choice != "mitogen":
        from drctl.errors import DrctlError

        raise DrctlError(f"{ACCELERATOR_ENV}={choice!r} is not an accelerator drctl knows",
                         ExitCode.USAGE, hint=f"set {ACCELERATOR_ENV} to mitogen or none")
    try:
        import ansible_mitogen
    except ImportError:
        return {}
    strategies = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    return {"ANSIBLE_STRATEGY_PLUGINS": str(strategies), "ANSIBLE_STRATEGY": "mitogen_linear",
            # ansible-core warns on every run that third-party strategies are deprecated:
            # drctl's choice, nothing the operator can act on
            "ANSIBLE_DEPRECATION_WARNINGS": "False"}


def _redact_command_file(artifact_dir: Path) -> None:
    """ansible-runner records the whole environment in artifacts/<id>/command.

    An operator's environment may hold secrets (PGPASSWORD, cloud tokens), so keep
    only the variable names and the few values drctl itself set.
    """
    path = artifact_dir / "command"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    env = data.get("env") or {}
    data["env"] = {k: (v if k in _KEEP_ENV else "<redacted>") for k, v in env.items()}
    path.write_text(json.dumps(data))


def run_playbook(
    playbook: str,
    inventory: Path,
    extravars: dict[str, Any] | None = None,
    *,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    progress: Callable[[str, dict[str, Any]], None] | None = None,
    journal: Callable[[dict[str, Any], str | None], None] | None = None,
    idle_timeout: int = DEFAULT_IDLE_TIMEOUT,
    job_timeout: int = DEFAULT_JOB_TIMEOUT,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
    verbosity: int = 0,
    accelerate: bool = False,
) -> RunResult:
    import ansible_runner  # lazily: keeps `drctl --help` fast

    from drctl import lock, vault

    vault.decrypt(inventory)  # a wrong vault password stops here, named as such
    root = project_dir()
    pb = root / "playbooks" / playbook
    private = state_dir() / "runner"
    private.mkdir(parents=True, exist_ok=True, mode=0o700)
    reducer = EventReducer(progress, journal)
    canceled = {"flag": False}

    def on_signal(signum: int, frame: Any) -> None:
        canceled["flag"] = True

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    cmdline = []
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")
    envvars = {
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "ANSIBLE_TIMEOUT": str(connect_timeout),
        "ANSIBLE_NOCOLOR": "1",
        # ansible-playbook lives next to the interpreter running drctl (the venv)
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        **_vault_env(),
        **(accelerator_env() if accelerate else {}),
    }
    start = time.monotonic()
    try:
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(root),
            playbook=str(pb),
            inventory=str(Path(inventory).resolve()),
            extravars={**(extravars or {}), **lock.playbook_vars()},
            limit=limit,
            cmdline=" ".join(cmdline) or None,
            envvars=envvars,
            event_handler=reducer,
            cancel_callback=lambda: canceled["flag"],
            settings={"idle_timeout": idle_timeout, "suppress_ansible_output": True},
            timeout=job_timeout,
            quiet=True,
            suppress_env_files=True,
            suppress_output_file=True,
            rotate_artifacts=20,
            verbosity=verbosity or None,
        )
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    _redact_command_file(Path(runner.config.artifact_dir))
    status = runner.status
    if canceled["flag"]:
        status = "canceled"
    return RunResult(
        playbook=playbook,
        status=status,
        rc=runner.rc if runner.rc is not None else -1,
        duration=time.monotonic() - start,
        stats=reducer.stats,
        failures=reducer.failures,
        data=reducer.data,
        artifact_dir=str(runner.config.artifact_dir),
        errors=reducer.errors,
        changes=reducer.changes,
    )
