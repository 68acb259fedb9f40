"""The runner adapter's event reduction and exit-code mapping, fed recorded events."""

import json

import pytest

from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.runner import (
    ACCELERATOR_ENV,
    EventReducer,
    RunResult,
    TaskFailure,
    _redact_command_file,
    accelerator_env,
)


def ev(kind, **data):
    return {"event": kind, "event_data": data}


def test_reducer_collects_progress_failures_stats_and_data():
    seen = []
    red = EventReducer(lambda kind, info: seen.append((kind, info)))
    for e in [
        ev("playbook_on_play_start", play="Provision"),
        ev("playbook_on_task_start", task="Install", play="Provision"),
        ev("runner_on_ok", host="pg1", task="Install", res={"changed": True}),
        ev("runner_on_skipped", host="pg2", task="Install"),
        ev("runner_on_ok", host="pg2", task="Configure", res={"changed": False}),
        ev("runner_on_failed", host="pg2", task="Clone", res={
            "msg": "non-zero return code", "stderr": "connection refused"}),
        ev("runner_on_failed", host="pg1", task="Probe", ignore_errors=True, res={"msg": "x"}),
        ev("runner_on_unreachable", host="pg3", task="Gather", res={"msg": "timed out"}),
        ev("playbook_on_stats", ok={"pg1": 3}, changed={"pg1": 1}, failures={"pg2": 1},
           dark={"pg3": 1}, artifact_data={"primary": "pg1"}),
    ]:
        assert red(e) is True
    assert ("play", {"play": "Provision"}) in seen
    assert ("host", {"host": "pg1", "task": "Install", "state": "changed"}) in seen
    assert ("host", {"host": "pg2", "task": "Install", "state": "skipped"}) in seen
    assert [(f.host, f.unreachable) for f in red.failures] == [("pg2", False), ("pg3", True)]
    assert red.failures[0].message == "non-zero return code: connection refused"
    assert red.stats["pg1"] == {"ok": 3, "changed": 1}
    assert red.data == {"primary": "pg1"}
    # what changed, task by task (what a --check run would change): not the ok or skipped
    assert red.changes == [{"host": "pg1", "task": "Install"}]


def test_a_playbook_that_does_not_parse_says_why():
    """ansible-playbook's own error (no task ran) is what the failure says, with where it
    comes from; lines around it are not."""
    red = EventReducer()
    for line in ["[ERROR]: YAML parsing failed: Colons in unquoted values must be followed by a "
                 "non-space character.",
                 "Origin: /p/playbooks/includes/auto-resume.yml:31:35", "",
                 "29         - x | select('search', '\"by\": 1')", "For example:"]:
        red({"event": "verbose", "stdout": line})
    assert red.errors == ["[ERROR]: YAML parsing failed: Colons in unquoted values must be "
                          "followed by a non-space character. (Origin: "
                          "/p/playbooks/includes/auto-resume.yml:31:35)"]
    result = RunResult("x.yml", "failed", 1, 1.0, errors=red.errors)
    assert result.failure_lines() == red.errors
    failed = RunResult("x.yml", "failed", 2, 1.0, failures=[TaskFailure("pg1", "t", "m")],
                       errors=red.errors)
    assert failed.failure_lines() == ["pg1: t: m"]


def test_censored_results_stay_censored():
    red = EventReducer()
    red(ev("runner_on_failed", host="pg1", task="Set password",
           res={"censored": "the output has been hidden", "msg": "secret123"}))
    assert red.failures[0].message == "the output has been hidden"


@pytest.mark.parametrize(
    ("status", "failures", "code"),
    [
        ("successful", [], ExitCode.OK),
        ("failed", [TaskFailure("pg1", "t", "m")], ExitCode.FAILED),
        ("failed", [TaskFailure("pg1", "t", "m", unreachable=True)], ExitCode.UNREACHABLE),
        ("timeout", [], ExitCode.TIMEOUT),
        ("canceled", [], ExitCode.CANCELED),
        ("error", [], ExitCode.FAILED),
    ],
)
def test_exit_codes(status, failures, code):
    result = RunResult("x.yml", status, 0, 1.0, failures=failures)
    assert result.exit_code == code
    assert result.as_dict()["exit_code"] == int(code)


def test_command_file_loses_environment_values(tmp_path):
    (tmp_path / "command").write_text(json.dumps({
        "command": ["ansible-playbook"], "cwd": "/x",
        "env": {"PGPASSWORD": "hunter2", "PATH": "/usr/bin", "AWS_SECRET": "s"}}))
    _redact_command_file(tmp_path)
    data = json.loads((tmp_path / "command").read_text())
    assert data["env"] == {"PGPASSWORD": "<redacted>", "PATH": "/usr/bin",
                           "AWS_SECRET": "<redacted>"}
    assert "hunter2" not in (tmp_path / "command").read_text()


def test_accelerator_points_ansible_at_mitogens_linear_strategy(monkeypatch):
    monkeypatch.delenv(ACCELERATOR_ENV, raising=False)
    env = accelerator_env()
    assert env["ANSIBLE_STRATEGY"] == "mitogen_linear"
    strategies = env["ANSIBLE_STRATEGY_PLUGINS"]
    assert strategies.endswith("ansible_mitogen/plugins/strategy")
    import pathlib
    assert (pathlib.Path(strategies) / "mitogen_linear.py").is_file()


@pytest.mark.parametrize("value", ["none", "off", "0", " None "])
def test_accelerator_can_be_turned_off(monkeypatch, value):
    monkeypatch.setenv(ACCELERATOR_ENV, value)
    assert accelerator_env() == {}


def test_an_unknown_accelerator_is_a_usage_error(monkeypatch):
    monkeypatch.setenv(ACCELERATOR_ENV, "turbo")
    with pytest.raises(DrctlError) as err:
        accelerator_env()
    assert err.value.code == ExitCode.USAGE and "mitogen or none" in err.value.format_message()


def test_without_mitogen_installed_the_run_is_ansibles_own(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_mitogen(name, *args, **kwargs):
        if name == "ansible_mitogen":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.delenv(ACCELERATOR_ENV, raising=False)
    monkeypatch.setattr(builtins, "__import__", no_mitogen)
    assert accelerator_env() == {}
