"""Who may hold the database VIP (drctl.rules.vip) and the service that keeps keepalived's
tracked file (drctl.node.viptrack), against a stand-in psql and temporary files; the role's
templates as keepalived and systemd will read them."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path
from typing import ClassVar

import jinja2
import pytest

from drctl.node import viptrack
from drctl.rules import sql
from drctl.rules.vip import Debounce, VipFacts, vip_verdict

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "keepalived_vip"


def facts(**changes: object) -> VipFacts:
    base: dict[str, object] = {"fenced": False, "in_doubt": False, "held": False,
                               "reaches_network": True, "writable": True}
    return VipFacts(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "eligible", "reason", "doubt"), [
    ({}, True, "writable primary", False),
    ({"reaches_network": None}, True, "writable primary", False),  # no isolation check
    ({"writable": False}, False, "in recovery", False),
    ({"writable": None}, False, "did not answer", False),
    ({"fenced": True}, False, "fenced", False),
    ({"fenced": True, "held": True}, False, "fenced", False),  # a hold never beats a fence
    ({"in_doubt": True, "held": True}, False, "waiting for the guard", False),
    ({"held": True, "writable": None}, True, "held here by a switchover", False),
    ({"held": True, "reaches_network": False}, True, "held", False),
    ({"reaches_network": False}, False, "cut off", True),
    ({"reaches_network": False, "writable": False}, False, "cut off", True),
])
def test_the_vip_sits_on_the_writable_primary_alone(changes, eligible, reason, doubt):
    verdict = vip_verdict(facts(**changes))
    assert verdict.eligible is eligible
    assert reason in verdict.reason
    assert verdict.mark_doubt is doubt


def test_rise_and_fall_count_verdicts_in_a_row():
    d = Debounce()
    assert d.see(False) is False  # the first verdict is written whatever it is
    assert d.see(False) is None
    assert d.see(True) is True
    d = Debounce(rise=2, fall=3)
    assert d.see(True) is None and d.see(True) is True
    assert d.see(False) is None and d.see(True) is None  # a run broken starts again
    assert d.see(False) is None and d.see(False) is None and d.see(False) is False


def test_the_check_waits_inside_the_server_then_asks_it():
    statement = sql.writable_after_wait(700)
    assert "interval '700 ms'" in statement and "pg_sleep(0.02)" in statement
    assert statement.endswith(sql.IN_RECOVERY)


FAKE_PSQL = textwrap.dedent("""\
    import os, sys
    state = os.environ["FAKE_STATE"]
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("\\\\echo "):
            print(line.split(" ", 1)[1], flush=True)
        elif line:
            answer = open(state).read().strip()
            if answer == "die":
                print("psql: FATAL:  terminating connection", file=sys.stderr, flush=True)
                open(state, "w").write("f")  # the next session finds the server back
                sys.exit(2)
            if answer == "down":
                print("psql: error: connection refused", file=sys.stderr, flush=True)
                sys.exit(2)
            print(answer, flush=True)
""")


@pytest.fixture
def node(tmp_path: Path, monkeypatch) -> tuple[viptrack.TrackConfig, Path]:
    """A configuration under TMP_PATH, a stand-in psql answering what the file `state`
    says ('f', 't', 'die' once, 'down'), and no isolation check address."""
    script = tmp_path / "psql.py"
    script.write_text(FAKE_PSQL)
    psql = tmp_path / "psql"
    psql.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    psql.chmod(0o755)
    state = tmp_path / "state"
    state.write_text("f")
    monkeypatch.setenv("FAKE_STATE", str(state))
    c = viptrack.TrackConfig(
        track_file=str(tmp_path / "vip-track"), verdict_file=str(tmp_path / "vip-track.json"),
        fence_file=str(tmp_path / "fenced"), doubt_file=str(tmp_path / "vip-doubt"),
        hold_file=str(tmp_path / "vip-hold"), psql=str(psql), timeout_s=5)
    return c, state


def lines_said() -> tuple[list[str], object]:
    said: list[str] = []
    return said, said.append


def test_the_file_changes_only_when_the_verdict_does_and_says_why(node):
    c, state = node
    said, say = lines_said()
    tracker, look = viptrack.pg_tracker(c)
    tracker.say = say
    server = look.server
    assert tracker.look(time.time()).eligible
    assert Path(c.track_file).read_text() == "1\n"
    first = Path(c.track_file).stat().st_mtime_ns
    pid = server.session.proc.pid
    for _ in range(3):
        tracker.look(time.time())
    assert Path(c.track_file).stat().st_mtime_ns == first  # unchanged: not rewritten
    assert server.session.proc.pid == pid  # one connection for every look
    state.write_text("t")
    verdict = tracker.look(time.time())
    assert not verdict.eligible and verdict.reason == "in recovery"
    assert Path(c.track_file).read_text() == "0\n"
    recorded = json.loads(Path(c.verdict_file).read_text())
    assert recorded["eligible"] is False and recorded["reason"] == "in recovery"
    assert recorded["facts"]["writable"] is False
    assert said == ["drctl-node vip-track: eligible for the VIP: writable primary",
                    "drctl-node vip-track: not eligible for the VIP: in recovery"]
    assert not list(Path(c.track_file).parent.glob("*.new"))
    server.close()


def test_a_server_restarted_since_the_last_look_is_not_a_failed_look(node):
    c, state = node
    server = viptrack.Server(c)
    assert server.writable() is True
    state.write_text("die")  # this session ends; a new one finds the server writable
    assert server.writable() is True
    state.write_text("down")
    assert server.writable() is None
    assert "connection refused" in server.error
    server.close()


def test_fence_doubt_and_hold_files_decide_before_the_server(node):
    c, state = node
    tracker, look = viptrack.pg_tracker(c)
    tracker.say = lambda _s: None
    now = time.time()
    Path(c.hold_file).write_text(str(int(now) + 10))
    state.write_text("down")  # a switchover stops the server while it holds the VIP here
    assert tracker.look(now).reason == "held here by a switchover"
    Path(c.hold_file).write_text(str(int(now) - 1))  # expired: holds nothing
    assert tracker.look(now).reason == "the local server did not answer"
    Path(c.hold_file).write_text("garbage")
    assert not viptrack.held(c.hold_file, now)
    state.write_text("f")
    assert tracker.look(now).eligible
    Path(c.fence_file).touch()
    assert tracker.look(now).reason == "fenced"
    assert Path(c.track_file).read_text() == "0\n"
    look.close()


def test_a_node_cut_off_leaves_the_doubt_marker_and_stays_out(node, monkeypatch):
    c, _state = node
    tracker, look = viptrack.pg_tracker(c)
    tracker.say = lambda _s: None
    monkeypatch.setattr(viptrack, "reaches", lambda _address: False)
    verdict = tracker.look(time.time())
    assert not verdict.eligible and Path(c.doubt_file).exists()
    monkeypatch.setattr(viptrack, "reaches", lambda _address: True)
    assert tracker.look(time.time()).reason.startswith("cut off from the network since")
    Path(c.doubt_file).unlink()  # the guard confirmed it
    assert tracker.look(time.time()).eligible
    look.close()


def test_no_isolation_address_asks_nothing():
    assert viptrack.reaches("") is None


def test_whatever_ends_the_service_leaves_the_node_not_eligible(node):
    c, _state = node
    looks = []

    def sleep(_seconds: float) -> None:
        looks.append(Path(c.track_file).read_text())
        if len(looks) == 3:
            raise RuntimeError("a bug in a later look")

    tracker, look = viptrack.pg_tracker(c)
    with pytest.raises(RuntimeError):
        viptrack.run(tracker, look, c.interval_s, sleep=sleep)
    assert looks == ["1\n"] * 3
    assert Path(c.track_file).read_text() == "0\n"


def render(name: str, **overrides: object) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")),
                             trim_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = json.dumps
    variables: dict[str, object] = {
        "ansible_managed": "Ansible managed", "keepalived_vip_track_file": "/run/drctl/vip-track",
        "keepalived_vip_verdict_file": "/run/drctl/vip-track.json",
        "keepalived_vip_fence_file": "/etc/drctl/fenced", "keepalived_vip_run_dir": "/run/drctl",
        "keepalived_vip_psql": "/usr/lib/postgresql/15/bin/psql",
        "keepalived_vip_pg_socket_dir": "/var/run/postgresql", "keepalived_vip_pg_port": 5432,
        "keepalived_vip_script_user": "keepalived_script", "keepalived_vip_check_interval": 1,
        "keepalived_vip_check_timeout": 4, "keepalived_vip_check_wait_ms": 700,
        "keepalived_vip_isolation_check_address": "10.0.0.1", "keepalived_vip_check_rise": 1,
        "keepalived_vip_check_fall": 1, "keepalived_vip_track_watchdog_s": 15,
        "keepalived_vip_node_program": "/usr/local/libexec/drctl/drctl-node",
        "keepalived_vip_track_config": "/etc/drctl/vip-track.json", **overrides}
    return env.get_template(name).render(variables)


def test_the_roles_configuration_is_what_the_service_reads():
    c = viptrack.TrackConfig(**json.loads(render("vip-track.json.j2")))
    assert c.track_file == "/run/drctl/vip-track" and c.isolation_address == "10.0.0.1"
    assert (c.interval_s, c.timeout_s, c.wait_ms) == (1.0, 4.0, 700)
    assert c.hold_file == "/run/drctl/vip-hold" and c.doubt_file == "/run/drctl/vip-doubt"


def test_the_unit_runs_unprivileged_under_a_watchdog_and_writes_0_however_it_ends():
    unit = render("drctl-vip-track.service.j2")
    assert "User=keepalived_script" in unit and "WatchdogSec=15" in unit
    assert "Restart=always" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    stop = next(ln for ln in unit.splitlines() if ln.startswith("ExecStopPost="))
    assert 'printf "0\\n" > /run/drctl/vip-track.new' in stop
    assert "mv -f /run/drctl/vip-track.new /run/drctl/vip-track" in stop


def test_keepalived_fails_safe_on_a_missing_empty_or_garbled_file():
    """weight 0 reverse: only a non-zero number lets the node hold the VIP (keepalived
    reads an empty or garbled file as 0); init_file 0: a missing file starts as FAULT."""
    text = (ROLE / "templates" / "keepalived.conf.j2").read_text()
    block = text[text.index("track_file chk_pg_writable {"):]
    block = block[:block.index("\n}") + 2]
    assert "weight 0 reverse" in block and "init_file 0" in block
    assert "init_file 0 overwrite" not in block  # a reload keeps the current verdict
    assert "vrrp_script" not in text and "track_script" not in text


class _App:
    """A local stand-in for the application's liveness page: STATUS and BODY on /alive."""

    def __init__(self) -> None:
        import http.server
        import threading

        app = self
        self.status, self.body = 200, b'{"alive": true}'

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(app.status)
                self.end_headers()
                self.wfile.write(app.body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alive"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_app_host_holds_its_vip_only_while_its_application_answers(tmp_path):
    app = _App()
    look = viptrack.AppLook(app.url, '"alive"', 2)
    tracker = viptrack.Tracker(look, str(tmp_path / "t"), str(tmp_path / "t.json"),
                               say=lambda _s: None)
    try:
        assert tracker.look(time.time()).reason == "the application answers"
        assert (tmp_path / "t").read_text() == "1\n"
        app.status = 500
        verdict = tracker.look(time.time())
        assert not verdict.eligible and "does not answer" in verdict.reason
        assert (tmp_path / "t").read_text() == "0\n"
        app.status, app.body = 200, b"something else on the port"
        assert not tracker.look(time.time()).eligible
        app.body = b'{"alive": true}'
        assert tracker.look(time.time()).eligible
    finally:
        app.close()
    verdict = tracker.look(time.time())  # nothing listens any more
    assert not verdict.eligible and (tmp_path / "t").read_text() == "0\n"
    assert json.loads((tmp_path / "t.json").read_text())["facts"]["answers"] is False


def test_the_app_roles_settings_are_what_the_check_reads():
    from drctl.node.appvip import AppVipConfig

    c = AppVipConfig(address="10.0.0.5/24", interface="eth0", health_url="http://x/health",
                     check_url="http://127.0.0.1:8080/alive")
    assert c.track_file == "/run/drctl/app-vip-track" and c.check_body == '"alive"'
    text = (ROOT / "roles" / "app_vip" / "templates" / "keepalived.conf.j2").read_text()
    assert "weight 0 reverse" in text and "init_file 0" in text and "vrrp_script" not in text
    tasks = (ROOT / "roles" / "app_vip" / "tasks" / "main.yml").read_text()
    for key in ("check_url", "check_body", "check_interval_s", "check_timeout_s",
                "check_rise", "check_fall", "track_file", "verdict_file"):
        assert f"          {key}: " in tasks, key


class _IcmpSocket:
    """A ping socket that answers what the test says: ANSWERS, one recv each."""

    answers: ClassVar[list[bytes]] = []
    refused = False

    def __init__(self, family: int, kind: int, proto: int) -> None:
        if _IcmpSocket.refused:
            raise PermissionError("ping_group_range")
        self.sent: list[bytes] = []

    def __enter__(self) -> _IcmpSocket:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def sendto(self, packet: bytes, _to: tuple[str, int]) -> None:
        assert packet[0] == 8 and viptrack._checksum(packet) == 0  # a valid echo request
        self.sent.append(packet)

    def settimeout(self, _seconds: float) -> None:
        pass

    def recv(self, _size: int) -> bytes:
        if not _IcmpSocket.answers:
            raise TimeoutError("timed out")
        return _IcmpSocket.answers.pop(0)


def test_the_isolation_check_pings_from_its_own_socket(monkeypatch):
    import os
    import struct

    monkeypatch.setattr(viptrack.socket, "socket", _IcmpSocket)
    seq = os.getpid() & 0xFFFF
    mine = struct.pack("!BBHHH", 0, 0, 0, 0, seq) + b"x"
    other = struct.pack("!BBHHH", 0, 0, 0, 0, (seq + 1) & 0xFFFF) + b"x"
    unreachable = struct.pack("!BBHHH", 3, 1, 0, 0, seq)
    _IcmpSocket.refused, _IcmpSocket.answers = False, [other, unreachable, mine]
    assert viptrack.reaches("10.0.0.1") is True  # another echo's reply is not its own
    _IcmpSocket.answers = [other]
    assert viptrack.reaches("10.0.0.1") is False  # then nothing: timed out
    calls: list[list[str]] = []

    def ping(argv, **_kw):
        calls.append(argv)
        return type("Done", (), {"returncode": 1})()

    _IcmpSocket.refused = True  # no ping socket allowed here: the ping program
    monkeypatch.setattr(viptrack.subprocess, "run", ping)
    assert viptrack.reaches("10.0.0.1") is False
    assert calls == [["ping", "-n", "-q", "-c", "1", "-W", "1", "10.0.0.1"]]
