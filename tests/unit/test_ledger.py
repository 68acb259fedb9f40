"""The cluster's ledger: the lock and journal on the ledger host (drctl/node/ledger.py, run
here as the script it is on the host), and drctl's lock around it with the ledger host's
answers faked."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drctl import inventory as inv_mod
from drctl import journal as journal_mod
from drctl import lock
from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.node import ledger as node_ledger

SCRIPT = Path(node_ledger.__file__)


def script(directory: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Run the ledger as drctl does on the host: its source on python3's stdin."""
    proc = subprocess.run([sys.executable, "-", "--dir", str(directory), *args],
                          input=SCRIPT.read_text(), capture_output=True, text=True,
                          check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_a_second_run_is_refused_naming_the_first(tmp_path: Path) -> None:
    code, out = script(tmp_path, "take", "--holder", "AWX job 42 (alice)", "--operation",
                       "failover", "--op-id", "a1")
    assert code == 0 and out["ok"] and out["lock"]["holder"] == "AWX job 42 (alice)"
    code, out = script(tmp_path, "take", "--holder", "bob@laptop", "--operation",
                       "switchover", "--op-id", "b2")
    assert code == 1 and not out["ok"]
    assert out["lock"]["holder"] == "AWX job 42 (alice)" and out["lock"]["operation"] == "failover"
    # the holder's own take again (a playbook drctl runs under drctl's lock) succeeds
    code, out = script(tmp_path, "take", "--holder", "x", "--operation", "failover",
                       "--op-id", "a1")
    assert code == 0 and out["lock"]["op_id"] == "a1"


def test_release_only_by_the_holder_or_by_force(tmp_path: Path) -> None:
    script(tmp_path, "take", "--holder", "alice@ops", "--operation", "provision",
           "--op-id", "a1")
    code, out = script(tmp_path, "release", "--op-id", "zz")
    assert code == 1 and "alice@ops" in out["error"]
    assert script(tmp_path, "show")[1]["lock"]["op_id"] == "a1"
    code, out = script(tmp_path, "release", "--op-id", "zz", "--force")
    assert code == 0 and out["released"]["holder"] == "alice@ops"
    assert script(tmp_path, "show")[1]["lock"] is None
    steps = [(e["step"], e["result"]) for e in script(tmp_path, "read")[1]["entries"]]
    assert steps == [("lock", "ok"), ("unlock", "forced")]


def test_release_writes_the_runs_journal_with_who_ran_it(tmp_path: Path) -> None:
    script(tmp_path, "take", "--holder", "carol@desk", "--operation", "switchover",
           "--op-id", "c3")
    entries = [{"time": "t1", "operation": "switchover", "op_id": "c3", "step": "start",
                "host": None, "result": "ok"},
               {"time": "t2", "operation": "switchover", "op_id": "c3", "step": "promoted",
                "host": "pg2", "result": "ok"}]
    blob = base64.b64encode("".join(json.dumps(e) + "\n" for e in entries).encode()).decode()
    code, _ = script(tmp_path, "release", "--op-id", "c3", "--entries-b64", blob)
    assert code == 0
    journal = script(tmp_path, "read", "--op-id", "c3")[1]["entries"]
    assert [e["step"] for e in journal] == ["lock", "start", "promoted", "unlock"]
    assert all({"time", "op_id", "step", "host", "result", "who"} <= set(e) for e in journal)
    assert {e["who"] for e in journal} == {"carol@desk"}
    assert script(tmp_path, "read", "--last", "1")[1]["entries"][0]["step"] == "unlock"


def test_bad_entries_change_nothing(tmp_path: Path) -> None:
    script(tmp_path, "take", "--holder", "h", "--operation", "backup", "--op-id", "d4")
    code, out = script(tmp_path, "release", "--op-id", "d4", "--entries-b64", "not base64!")
    assert code == 2 and not out["ok"]
    assert script(tmp_path, "show")[1]["lock"]["op_id"] == "d4"


# --- drctl's lock with the ledger host's answers faked ----------------------------------


@pytest.fixture
def inv(make_inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> inv_mod.Inventory:
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))
    return inv_mod.load(make_inventory())


@pytest.fixture
def ledger_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The ledger script really runs, on a directory here, unless STATE['down']."""
    state: dict[str, Any] = {"down": False, "hosts": []}
    directory = tmp_path / "ledger"

    def fake_run(inv: Any, host: str, remote: list[str], timeout: float = 8,
                 stdin: str | None = None) -> tuple[int, str, str]:
        state["hosts"].append(host)
        if state["down"]:
            return 255, "", "ssh: connect to host 10.9.0.13 port 22: No route to host"
        assert remote[:4] == ["python3", "-", "--dir", "/var/lib/drctl/ledger"]
        proc = subprocess.run([sys.executable, "-", "--dir", str(directory), *remote[4:]],
                              input=stdin, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    monkeypatch.setattr("drctl.sshprobe.run", fake_run)
    state["dir"] = directory
    return state


def test_drctl_takes_the_ledger_and_gives_it_back_with_its_journal(inv, ledger_host) -> None:
    with lock.cluster_lock(inv.name, "switchover", inv) as held:
        assert held["ledger"] == "backup1"
        assert node_ledger.holder(str(ledger_host["dir"]))["op_id"] == held["op_id"]
        assert lock.playbook_vars() == {"drctl_ledger_op_id": held["op_id"],
                                        "drctl_ledger_holder": held["who"]}
        journal_mod.Journal(inv.name, "switchover", held).write("promoted", host="pg2")
    assert node_ledger.holder(str(ledger_host["dir"])) is None
    entries = node_ledger.read(str(ledger_host["dir"]), op_id=held["op_id"])
    assert [e["step"] for e in entries] == ["lock", "promoted", "unlock"]
    assert entries[1]["who"] == held["who"] and "@" in held["who"]
    assert lock.playbook_vars() == {}


def test_a_run_elsewhere_holding_the_lock_refuses_drctl_naming_it(inv, ledger_host) -> None:
    node_ledger.take(str(ledger_host["dir"]), "AWX job 7 (dave)", "failover", "awx7")
    with pytest.raises(DrctlError) as exc, lock.cluster_lock(inv.name, "switchover", inv):
        pass
    assert exc.value.code == ExitCode.LOCKED
    assert "AWX job 7 (dave)" in str(exc.value) and "failover" in str(exc.value)
    assert lock.holder(inv.name) is None  # this machine's lock was given back too
    assert node_ledger.holder(str(ledger_host["dir"]))["op_id"] == "awx7"


@pytest.mark.parametrize("operation", ["switchover", "provision", "failback"])
def test_an_unreachable_ledger_host_refuses_every_operation_but_failover(
        inv, ledger_host, operation: str) -> None:
    ledger_host["down"] = True
    with pytest.raises(DrctlError) as exc, lock.cluster_lock(inv.name, operation, inv):
        pass
    assert exc.value.code == ExitCode.UNREACHABLE and "No route to host" in str(exc.value)
    assert lock.holder(inv.name) is None


def test_failover_goes_on_without_an_unreachable_ledger_host_and_says_so(
        inv, ledger_host, capsys: pytest.CaptureFixture[str]) -> None:
    ledger_host["down"] = True
    with lock.cluster_lock(inv.name, "failover", inv) as held:
        assert held["ledger"] is None and "No route to host" in held["ledger_error"]
    assert "goes on without it" in capsys.readouterr().err
    assert ledger_host["hosts"] == ["backup1"]  # no release attempted on a lock never taken


def test_a_dead_ledger_host_costs_the_quick_check_not_an_ssh_timeout(
        inv, ledger_host, monkeypatch: pytest.MonkeyPatch) -> None:
    from drctl import ledger, sshprobe

    monkeypatch.setattr(sshprobe, "port_answers", lambda address, port, *a, **kw: False)
    monkeypatch.setattr(sshprobe, "forget_connection", lambda inv, host: None)
    answer = ledger.of(inv).take("failover", "f1")
    assert answer["unreachable"] and "nothing answers on 10.9.0.13:22" in answer["error"]
    assert ledger_host["hosts"] == []  # no ssh was tried


def test_a_drill_lock_is_nestable_and_any_other_is_not(inv, ledger_host) -> None:
    with lock.cluster_lock(inv.name, "drill-failover", inv, nestable=True) as outer:
        with lock.cluster_lock(inv.name, "failover", inv) as inner:
            assert inner is outer
        assert node_ledger.holder(str(ledger_host["dir"]))["op_id"] == outer["op_id"]
    with lock.cluster_lock(inv.name, "switchover", inv), pytest.raises(DrctlError), \
            lock.cluster_lock(inv.name, "failover", inv):
        pass


def test_a_site_drills_lock_leaves_the_ledger_to_each_operation(
        inv, ledger_host, capsys: pytest.CaptureFixture[str]) -> None:
    """A site drill powers off the ledger host's site: its own lock is this machine's
    only, and each operation under it holds the ledger's lock for itself, under its own op
    id (so its journal is published), and a failover goes on when the ledger is gone."""
    with lock.cluster_lock(inv.name, "drill-site-failover", inv, nestable=True,
                           ledger_per_operation=True) as outer:
        assert outer["ledger"] is None
        assert node_ledger.holder(str(ledger_host["dir"])) is None
        with lock.cluster_lock(inv.name, "switchover", inv) as inner:
            assert inner["op_id"] != outer["op_id"] and lock.current(inv.name) is inner
            assert node_ledger.holder(str(ledger_host["dir"]))["op_id"] == inner["op_id"]
        assert node_ledger.holder(str(ledger_host["dir"])) is None
        assert lock.current(inv.name) is outer
        ledger_host["down"] = True
        with lock.cluster_lock(inv.name, "failover", inv) as inner:
            assert inner["ledger"] is None
        assert "goes on without it" in capsys.readouterr().err
        with pytest.raises(DrctlError) as exc, lock.cluster_lock(inv.name, "failback", inv):
            pass
        assert exc.value.exit_code == ExitCode.UNREACHABLE
    assert lock.holder(inv.name) is None


def test_unlock_clears_the_ledger_only_with_force(inv, ledger_host) -> None:
    node_ledger.take(str(ledger_host["dir"]), "erin@old-laptop", "backup", "e5")
    with pytest.raises(DrctlError) as exc:
        lock.unlock(inv.name, inv=inv)
    assert "erin@old-laptop" in str(exc.value)
    cleared = lock.unlock(inv.name, force=True, inv=inv)
    assert cleared["cluster"]["holder"] == "erin@old-laptop"
    assert node_ledger.holder(str(ledger_host["dir"])) is None


def test_an_own_failed_playbook_runs_lock_is_taken_over_by_the_same_operator_only(
        tmp_path: Path) -> None:
    script(tmp_path, "take", "--holder", "root@ops1", "--operation", "provision",
           "--op-id", "ap-1a2b")  # that run failed and never gave the lock back
    code, out = script(tmp_path, "take", "--holder", "alice@ops2", "--operation",
                       "switchover", "--op-id", "x1")
    assert code == 1 and out["lock"]["op_id"] == "ap-1a2b"
    code, out = script(tmp_path, "take", "--holder", "root@ops1", "--operation", "switchover",
                       "--op-id", "x2")
    assert code == 0 and out["lock"]["op_id"] == "x2"
    steps = [e["step"] for e in script(tmp_path, "read")[1]["entries"]]
    assert steps == ["lock", "lock (taken over from ap-1a2b)"]
    # a drctl run's lock (not "ap-") is never taken over, even by the same operator
    code, out = script(tmp_path, "take", "--holder", "root@ops1", "--operation", "backup",
                       "--op-id", "ap-3c4d")
    assert code == 1 and out["lock"]["op_id"] == "x2"


def test_ensure_free_names_another_runs_lock_before_any_gate(inv, ledger_host) -> None:
    lock.ensure_free(inv.name, inv)  # nothing held: no error
    node_ledger.take(str(ledger_host["dir"]), "AWX job 9 (frank)", "failover", "awx9")
    with pytest.raises(DrctlError) as exc:
        lock.ensure_free(inv.name, inv)
    assert exc.value.code == ExitCode.LOCKED and "AWX job 9 (frank)" in str(exc.value)
    # an own playbook run's leftover is no obstacle: the take will take it over
    node_ledger.release(str(ledger_host["dir"]), "awx9")
    node_ledger.take(str(ledger_host["dir"]), journal_mod.who(), "provision", "ap-77")
    lock.ensure_free(inv.name, inv)


def test_a_killed_drctls_locks_are_stale_and_unlock_clears_both(inv, ledger_host) -> None:
    """drctl killed mid-operation: its local lock names a dead pid, the ledger's names the
    same op id; the next run says "stale", and a plain `drctl unlock` clears both."""
    import os

    dead = subprocess.Popen(["true"])
    dead.wait()
    node_ledger.take(str(ledger_host["dir"]), "root@here", "switchover", "op-dead")
    lock.lock_path(inv.name).write_text(json.dumps(
        {"host": os.uname().nodename, "pid": dead.pid, "operation": "switchover",
         "since": "t", "op_id": "op-dead"}))
    with pytest.raises(DrctlError) as exc:
        lock.ensure_free(inv.name, inv)
    assert "stale lock" in str(exc.value)
    cleared = lock.unlock(inv.name, inv=inv)
    assert cleared["local"]["op_id"] == "op-dead" and cleared["cluster"]["op_id"] == "op-dead"
    assert node_ledger.holder(str(ledger_host["dir"])) is None


def test_the_cluster_ledger_is_the_ledger_hosts_else_this_machines(inv, ledger_host) -> None:
    from drctl import ledger

    book = ledger.of(inv)
    assert isinstance(book, ledger.HostLedger) and book.shared and book.host == "backup1"
    assert book.take("switchover", "s1")["lock"]["op_id"] == "s1"
    assert book.show()["lock"]["holder"] == journal_mod.who()
    step = {"time": "t", "operation": "switchover", "op_id": "s1", "step": "promoted"}
    assert book.release("s1", [step])["ok"]
    assert [e["step"] for e in book.read(op_id="s1")["entries"]] == ["lock", "promoted",
                                                                      "unlock"]

    alone = ledger.MachineLedger(inv.name)
    assert not alone.shared and alone.show()["lock"] is None
    assert alone.take("switchover", "s2") == {"ok": True, "host": None}
    journal_mod.Journal(inv.name, "switchover").write("promoted", host="pg2")
    assert [e["step"] for e in alone.read()["entries"]] == ["promoted"]
    assert ledger_host["hosts"] == ["backup1"] * 4  # this machine's asked no host
