"""The lab itself: hosts answer over SSH through ansible-runner and plain ansible-playbook."""


from tests.integration.conftest import ansible_playbook, drctl, drctl_json


def test_lab_status_every_host_answers_ssh():
    code, rows = drctl_json("lab", "status")
    assert code == 0
    assert {r["host"] for r in rows} == {"pg1", "pg2", "backup1", "app1", "app3"}
    assert all(r["ssh"] and r["container"] == "running" for r in rows), rows


def test_second_lab_up_changes_nothing():
    code, result = drctl_json("lab", "up")
    assert code == 0
    assert result["changed"] is False
    assert set(result["hosts"].values()) == {"reused"}
    assert result["image_built"] is False


def test_drctl_ping_reaches_every_host_through_ansible_runner():
    code, result = drctl_json("ping")
    assert code == 0, result
    assert result["status"] == "successful"
    assert set(result["stats"]) == {"pg1", "pg2", "backup1", "app1", "app3"}
    assert result["unreachable"] == []


def test_ping_playbook_runs_without_drctl():
    proc = ansible_playbook("ping.yml", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "unreachable=0" in proc.stdout and "failed=0" in proc.stdout


def test_progress_is_readable_and_json_is_clean():
    proc = drctl("ping")
    assert proc.returncode == 0
    assert "Ping the host over SSH" in proc.stderr
    proc = drctl("ping", "--format", "json")
    assert proc.stderr == "" or "Ping the host" not in proc.stderr
    assert proc.stdout.lstrip().startswith("{")
