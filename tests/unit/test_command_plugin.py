"""drctl_command (plugins/action/drctl_command.py): the command module's contract, run by the
host's shell over the task's connection: each word quoted, the result shaped as the module's."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.unit.plugins import action_module, action_plugin


def plugin() -> Any:
    return action_plugin("drctl_command")


def run_locally(body: bytes) -> dict[str, Any]:
    """What a connection's shell does with the script: /bin/sh reads it on stdin."""
    proc = subprocess.run(["/bin/sh"], input=body, capture_output=True, check=False)
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def action(args: dict[str, Any], check_mode: bool = False) -> Any:
    act = action_module("drctl_command", args, check_mode)
    seen: list[dict[str, Any]] = []

    def low_level(cmd: str, sudoable: bool = True, in_data: bytes | None = None,
                  **_: Any) -> dict[str, Any]:
        seen.append({"cmd": cmd, "sudoable": sudoable, "in_data": in_data})
        assert in_data is not None
        return run_locally(in_data)

    act._low_level_execute_command = low_level
    act.seen = seen
    return act


def test_words_reach_the_program_as_given_with_no_shell_expansion() -> None:
    words = ["printf", "%s|", "it's", "$HOME", "a b", "`id`", ";", "*", "--x=\"y\""]
    act = action({"argv": words})
    result = act.run(task_vars={})
    assert result["stdout"] == "it's|$HOME|a b|`id`|;|*|--x=\"y\"|"
    assert result["rc"] == 0 and "failed" not in result
    assert result["cmd"] == words
    # through the shell on stdin, with become as the task says (no terminal: the
    # connection allocates none when it has input to send)
    assert act.seen[0]["cmd"] == "/bin/sh" and act.seen[0]["sudoable"] is True


def test_the_result_is_the_command_modules() -> None:
    result = action({"argv": ["sh", "-c", "echo out; echo two; echo err >&2; exit 3"]}
                    ).run(task_vars={})
    assert result["rc"] == 3
    assert result["failed"] is True and result["msg"] == "non-zero return code"
    assert result["stdout"] == "out\ntwo" and result["stdout_lines"] == ["out", "two"]
    assert result["stderr"] == "err" and result["stderr_lines"] == ["err"]
    assert result["changed"] is True  # as the module says; tasks decide with changed_when


def test_it_runs_in_slash_unless_chdir_names_another(tmp_path) -> None:
    assert action({"argv": ["pwd"]}).run(task_vars={})["stdout"] == "/"
    result = action({"argv": ["pwd"], "chdir": str(tmp_path)}).run(task_vars={})
    assert result["stdout"] == str(tmp_path)
    gone = action({"argv": ["pwd"], "chdir": str(tmp_path / "gone")}).run(task_vars={})
    assert gone["rc"] != 0 and gone["failed"] is True


def test_numbers_are_words_too() -> None:
    assert action({"argv": ["echo", 60, 1.5]}).run(task_vars={})["stdout"] == "60 1.5"


@pytest.mark.parametrize("args", [{"argv": []}, {"argv": "echo hi"}, {"argv": ["echo", None]},
                                  {"argv": ["echo"], "creates": "/x"}, {}])
def test_what_it_cannot_run_as_the_module_would_is_refused(args) -> None:
    from ansible.errors import AnsibleActionFail

    with pytest.raises(AnsibleActionFail):
        action(args).run(task_vars={})


def test_check_mode_skips_it_as_it_skips_the_command_module() -> None:
    from ansible.errors import AnsibleActionSkip

    act = action({"argv": ["touch", "/nonexistent/x"]}, check_mode=True)
    with pytest.raises(AnsibleActionSkip):
        act.run(task_vars={})
    assert act.seen == []


def test_the_connections_own_note_is_not_the_programs_stderr() -> None:
    """mitogen's connection (drctl runs provision on it) appends OpenSSH's words to the
    end of every command's stderr; the program's own lines stay."""
    shaped = plugin().shaped
    note = "Shared connection to 172.29.57.11 closed.\n"
    assert shaped(["x"], 0, "", note)["stderr"] == ""
    assert shaped(["x"], 1, "", "real error\n" + note)["stderr_lines"] == ["real error"]
    assert shaped(["x"], 1, "", "real error\n")["stderr"] == "real error"
