"""drctl_command: ansible.builtin.command's contract, without the module wrapper.

`ansible.builtin.command` starts a Python interpreter on the node and unpacks Ansible's
module code there only to start one program: about 0.25 CPU-s and 0.2 s of wall clock a
call on this project's hosts, more than most of the programs it starts (drctl-node,
psql, pg_controldata, ip). This plugin hands the program to the host's shell over the
connection Ansible already holds (become and become_user as the task says), exactly
as the module would have run it: the argument vector quoted word by word, no shell
expansion, the working directory `/` unless `chdir` names another.

The result is the command module's: `rc`, `stdout` and `stderr` (their last line
break removed), `stdout_lines`, `stderr_lines`, `cmd`, `changed` (true, as the module
says; tasks set changed_when), and `failed` with "non-zero return code" when rc is not 0.
Check mode skips it, as it skips the command module, unless the task says
`check_mode: false`.

The program's input is handed to the shell as its script (stdin), so no terminal is
allocated: stdout and stderr stay apart, and a JSON answer arrives as printed. Over
mitogen's connection (drctl's provision), the line it appends to every command's stderr
("Shared connection to HOST closed.") is removed: it is not the program's.

Options:
  argv    the program and its arguments (a list; required)
  chdir   the working directory (default /)
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


def script(argv: list[Any], chdir: str = "/") -> str:
    """The shell script that runs ARGV in CHDIR, each word quoted (no expansion)."""
    if not argv or not all(isinstance(a, (str, int, float)) for a in argv):
        raise ValueError("argv must be a non-empty list of words")
    words = [str(a) for a in argv]
    return f"cd {shlex.quote(chdir)} || exit 1\nexec {shlex.join(words)}\n"


def _text(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    return str(raw or "")


# What mitogen's connection adds to the end of every command's stderr, in the words
# OpenSSH prints when a shared session ends: not the program's.
_CONNECTION_NOTE = re.compile(r"(?:^|\r?\n)Shared connection to \S+ closed\.\r?\n?$")


def shaped(argv: list[Any], rc: int, stdout: Any, stderr: Any) -> dict[str, Any]:
    """The command module's result for a program that ended with RC."""
    out = _text(stdout).rstrip("\r\n")
    err = _CONNECTION_NOTE.sub("", _text(stderr)).rstrip("\r\n")
    result: dict[str, Any] = {
        "cmd": [str(a) for a in argv], "rc": rc, "changed": True,
        "stdout": out, "stderr": err,
        "stdout_lines": out.splitlines(), "stderr_lines": err.splitlines(),
    }
    if rc != 0:
        result["failed"] = True
        result["msg"] = "non-zero return code"
    return result


class ActionModule(ActionBase):
    """Run one program on the host, as ansible.builtin.command would, without Python."""

    _supports_check_mode = False  # as the command module: skipped in check mode
    _supports_async = False

    def run(self, tmp: Any = None, task_vars: Any = None) -> dict[str, Any]:
        super().run(tmp, task_vars)
        args = dict(self._task.args)
        unknown = set(args) - {"argv", "chdir"}
        if unknown:
            raise AnsibleActionFail(f"unsupported option(s): {', '.join(sorted(unknown))}")
        argv = args.get("argv")
        if not isinstance(argv, list):
            raise AnsibleActionFail("argv must be a list: the program and its arguments")
        try:
            body = script(argv, str(args.get("chdir") or "/"))
        except ValueError as exc:
            raise AnsibleActionFail(str(exc)) from exc
        res = self._low_level_execute_command("/bin/sh", sudoable=True,
                                              in_data=body.encode())
        return shaped(argv, int(res.get("rc", 1)), res.get("stdout"), res.get("stderr"))
