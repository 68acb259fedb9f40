"""drctl-node metrics: the probe's facts in Prometheus' text format."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drctl.node import cli, common, metrics
from tests.unit.test_node import fake, fake_bin, node_config  # noqa: F401  (fixtures)

SAMPLE = re.compile(r'^(drctl_[a-z_]+)\{((?:[a-z_]+="[^"]*",?)*)\} (-?[0-9.e+]+|NaN)$')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """{(name, labels): value}; every line must be a comment or a well-formed sample."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = frozenset(re.findall(r'([a-z_]+)="([^"]*)"', m.group(2)))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(parsed: dict, name: str, **labels: str) -> float:
    hits = [v for (n, ls), v in parsed.items()
            if n == name and set(labels.items()) <= set(ls)]
    assert len(hits) == 1, f"{name} {labels}: {len(hits)} samples"
    return hits[0]


PRIMARY: dict[str, Any] = {
    "host": "pg1", "fenced": False, "start_held": None, "holds_vip": True,
    "keepalived_service": "active", "set_aside": [], "auto": None,
    "postgres": {
        "in_recovery": False, "timeline": 3,
        "replication": [{"application_name": "pg2", "lag_bytes": 4096, "replay_lag_s": None,
                         "sync_state": "async"}],
        "slots": [{"slot_name": "pg2", "active": True, "retained_bytes": 8192}],
        "archiver": {"archived_count": 12, "failed_count": 2,
                     "last_archived_time": "2026-12-03T03:40:01.5+00:00",
                     "last_failed_time": None},
        "archive_ready": 0, "archive_oldest_ready_s": None}}

STANDBY: dict[str, Any] = {
    "host": "pg2", "fenced": False, "holds_vip": False, "keepalived_service": "active",
    "auto": {"repmgrd": "active", "paused": None, "witness_visible": True},
    "postgres": {"in_recovery": True, "timeline": 3, "replay_paused": False,
                 "last_replay_age_s": 1.25,
                 "receiver": {"status": "streaming", "last_msg_age_s": 0.1}}}


def test_a_primary_shows_role_vip_lag_slots_and_archiving() -> None:
    p = parse(metrics.render(PRIMARY, {"ok": True, "last": {"full": 1764733201.0}}, "lab",
                             now=1764733300.0))
    assert value(p, "drctl_pg_primary", node="pg1", cluster="lab") == 1
    assert value(p, "drctl_vip_held", node="pg1") == 1
    assert value(p, "drctl_pg_timeline") == 3
    assert value(p, "drctl_replication_lag_bytes", standby="pg2") == 4096
    assert value(p, "drctl_replication_lag_seconds", standby="pg2") == 0
    assert value(p, "drctl_replication_slot_retained_bytes", slot="pg2") == 8192
    assert value(p, "drctl_archive_failed_total") == 2
    archived = datetime(2026, 12, 3, 3, 40, 1, 500000, tzinfo=UTC).timestamp()
    assert value(p, "drctl_archive_last_archived_timestamp_seconds") == pytest.approx(archived)
    assert value(p, "drctl_backup_last_completion_timestamp_seconds", type="full") == (
        1764733201)
    assert value(p, "drctl_backup_info_ok") == 1
    assert value(p, "drctl_auto_failover_enabled") == 0
    names = {n for n, _ in p}
    assert "drctl_standby_streaming" not in names
    assert "drctl_archive_last_failed_timestamp_seconds" not in names  # never failed


def test_a_standby_shows_streaming_and_automatic_failover() -> None:
    p = parse(metrics.render(STANDBY, None, "lab", now=1.0))
    assert value(p, "drctl_pg_primary", node="pg2") == 0
    assert value(p, "drctl_standby_streaming") == 1
    assert value(p, "drctl_standby_replay_age_seconds") == 1.25
    assert value(p, "drctl_auto_failover_enabled") == 1
    assert value(p, "drctl_auto_failover_paused") == 0
    assert value(p, "drctl_auto_witness_visible") == 1
    assert "drctl_backup_info_ok" not in {n for n, _ in p}  # no pgBackRest here


def test_a_node_whose_postgres_is_down_says_so_and_claims_no_role() -> None:
    down = {"host": "pg1", "postgres": None, "fenced": True, "holds_vip": False}
    p = parse(metrics.render(down, {"ok": False}, "lab", now=1.0))
    assert value(p, "drctl_pg_up") == 0 and value(p, "drctl_pg_fenced") == 1
    assert value(p, "drctl_backup_info_ok") == 0
    assert "drctl_pg_primary" not in {n for n, _ in p}


def test_label_values_are_escaped() -> None:
    probe = {**STANDBY, "host": 'pg"2\\x'}
    text = metrics.render(probe, None, "lab", now=1.0)
    assert 'node="pg\\"2\\\\x"' in text


def test_cli_writes_the_file_atomically_with_backups(node_config: Path,  # noqa: F811
                                                     fake_bin: Path,  # noqa: F811
                                                     tmp_path: Path) -> None:
    out = tmp_path / "textfile" / "drctl.prom"
    cache = tmp_path / "run" / "backup-info.json"
    common_answer = {"in_recovery": False, "timeline": 1}
    primary_answer = {k: v for k, v in PRIMARY["postgres"].items() if k != "in_recovery"}
    info = [{"name": "lab", "backup": [
        {"type": "full", "timestamp": {"start": 100, "stop": 200}},
        {"type": "incr", "timestamp": {"start": 300, "stop": 400}},
        {"type": "full", "timestamp": {"start": 500, "stop": 600}}]}]
    fake(fake_bin, "runuser", 'shift 3; exec "$@"\n')
    fake(fake_bin, "psql", f"""case "$*" in
  *server_version*) echo '{json.dumps(common_answer)}' ;;
  *pg_current_wal_lsn*) echo '{json.dumps(primary_answer)}' ;;
  *) exit 3 ;;
esac
""")
    fake(fake_bin, "pgbackrest", f"echo '{json.dumps(info)}'\n")
    fake(fake_bin, "systemctl", "echo active\n")
    fake(fake_bin, "ip", "echo '2: eth0    inet 10.0.0.100/24 scope global eth0'\n")
    args = ["--config", str(node_config), "metrics", "--out", str(out), "--cluster", "lab",
            "--stanza", "lab", "--backup-cache", str(cache)]
    assert cli.main(args) == 0
    p = parse(out.read_text())
    assert value(p, "drctl_backup_last_completion_timestamp_seconds", type="full") == 600
    assert value(p, "drctl_backup_last_completion_timestamp_seconds", type="incr") == 400
    assert value(p, "drctl_pg_primary", node="pg2", cluster="lab") == 1
    assert value(p, "drctl_vip_held") == 1
    assert [f.name for f in out.parent.iterdir()] == ["drctl.prom"]  # no temporary left

    # the repository's answer is reused within --backup-every: a failing pgbackrest now
    # changes nothing, and is asked again once the answer is older
    fake(fake_bin, "pgbackrest", "echo 'unable to reach repo' >&2; exit 56\n")
    assert cli.main(args) == 0
    assert value(parse(out.read_text()), "drctl_backup_info_ok") == 1
    assert cli.main([*args, "--backup-every", "0"]) == 0
    assert value(parse(out.read_text()), "drctl_backup_info_ok") == 0


class FakeTime:
    """A clock that moves only when slept on (or when a round takes time)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_every_writes_on_a_fixed_beat_survives_a_failed_round_and_ends_for_new_code(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = FakeTime()
    code = tmp_path / "drctl-node.zip"
    code.write_bytes(b"old")
    rounds: list[float] = []

    def write() -> None:
        rounds.append(t.now)
        n = len(rounds)
        if n == 2:
            t.now += 4.0  # a slow round: the next one keeps the beat
            raise RuntimeError("psql: connection refused")
        if n == 3:
            t.now += 20.0  # longer than the beat: the next one starts at once, no burst
        if n == 5:  # provisioning replaced the programs
            code.write_bytes(b"new")
            os.utime(code, (1, 1))

    assert metrics.every(15.0, write, str(code), sleep=t.sleep, clock=t.clock) == 0
    assert rounds == [100.0, 115.0, 130.0, 150.0, 165.0]
    assert t.slept == [15.0, 11.0, 0.0, 15.0]
    err = capsys.readouterr().err
    assert "this round failed: RuntimeError: psql: connection refused" in err
    assert "changed: ending for the new code" in err


def test_the_code_file_is_the_archive_the_programs_were_loaded_from(tmp_path: Path) -> None:
    archive = tmp_path / "drctl-node.zip"
    archive.write_bytes(b"PK")
    assert common.code_file(f"{archive}/drctl/node/cli.py") == str(archive)
    # a developer's tree: no archive, nothing to watch
    assert common.code_file(str(Path(metrics.__file__))) is None


def test_the_cli_loops_only_when_asked(node_config: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
                                       ) -> None:
    seen: dict[str, Any] = {}

    def fake_every(seconds: float, write: Any, code: str | None) -> int:
        seen.update(seconds=seconds, code=code)
        return 0

    monkeypatch.setattr(metrics, "every", fake_every)
    monkeypatch.setattr(metrics, "main", lambda *a, **k: seen.setdefault("once", True) and 0)
    assert cli.main(["--config", str(node_config), "metrics", "--out", "-", "--every", "15"]) == 0
    assert seen == {"seconds": 15.0, "code": None}
    seen.clear()
    assert cli.main(["--config", str(node_config), "metrics", "--out", "-"]) == 0
    assert seen == {"once": True}
