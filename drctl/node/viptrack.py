"""`drctl-node vip-track`: keepalived's check of a PostgreSQL node, kept by one process.

  drctl-node [--vip-track-config PATH] vip-track

keepalived tracks a file (roles/keepalived_vip: `track_file` with `weight 0 reverse`): a
non-zero number in it lets this node hold the VIP, anything else (0, an empty or garbled
file) puts its VRRP instance in FAULT, which gives the VIP up. This service writes that
file: every interval it gathers the facts of the moment (the fence marker, the doubt a
cut-off left, a switchover's hold, the isolation check's address, the local server's
answer) and drctl.rules.vip decides. keepalived reads the file as soon as it changes.

It replaces a check script that keepalived started every second (a shell, ping, a new
psql and a new server backend each time: about 1.5 CPU-s a minute on each node, half of
it in PostgreSQL). The server is asked over one connection kept open (drctl.node.common's
PsqlSession); a failed or too-slow answer is no answer, as a failed check was.

Safety: the file is written whole (a new file renamed over it); the unit writes 0 when
this process ends for any reason (ExecStopPost) and systemd's watchdog ends a process
that stops looking. When the programs' archive changes (a provision installed new code),
the process replaces itself with the new code without writing anything, so an upgrade
does not move the VIP.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from drctl.node import appvip, common
from drctl.rules import service, sql
from drctl.rules.vip import Debounce, VipFacts, VipVerdict, vip_verdict


@dataclass(frozen=True)
class TrackConfig:
    """/etc/drctl/vip-track.json, written by roles/keepalived_vip."""

    track_file: str = "/run/drctl/vip-track"
    # the last verdict and its reason (JSON), for people and drctl status
    verdict_file: str = "/run/drctl/vip-track.json"
    fence_file: str = "/etc/drctl/fenced"
    doubt_file: str = "/run/drctl/vip-doubt"
    hold_file: str = "/run/drctl/vip-hold"
    psql: str = "/usr/lib/postgresql/15/bin/psql"
    socket_dir: str = "/var/run/postgresql"
    port: int = 5432
    user: str = "keepalived_script"
    interval_s: float = 1.0
    timeout_s: float = 4.0
    wait_ms: int = 700
    isolation_address: str = ""
    rise: int = 1
    fall: int = 1

    @classmethod
    def load(cls, path: str) -> TrackConfig:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
        return cls(**raw)


def held(path: str, now: float) -> bool:
    """A switchover's hold: the file holds its expiry (epoch seconds); a forgotten or
    unreadable hold holds nothing."""
    try:
        with open(path, encoding="utf-8") as fh:
            until = int(fh.read().strip() or 0)
    except (OSError, ValueError):
        return False
    return now < until


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo(address: str, timeout: float = 1.0) -> bool | None:
    """One ICMP echo to ADDRESS over an unprivileged ping socket (net.ipv4.ping_group_range,
    which systemd opens to every group): whether it answered within TIMEOUT. None when
    such a socket is not allowed here."""
    v6 = ":" in address
    family, proto, request, reply = ((socket.AF_INET6, socket.IPPROTO_ICMPV6, 128, 129) if v6
                                     else (socket.AF_INET, socket.IPPROTO_ICMP, 8, 0))
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM, proto)
    except OSError:
        return None
    seq = os.getpid() & 0xFFFF
    payload = b"drctl-vip-track"
    header = struct.pack("!BBHHH", request, 0, 0, 0, seq)
    packet = struct.pack("!BBHHH", request, 0, _checksum(header + payload), 0, seq) + payload
    deadline = time.monotonic() + timeout
    with sock:
        try:
            sock.sendto(packet, (address, 0))
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                data = sock.recv(1024)
                # the kernel gives a ping socket the ICMP message alone, its id its own
                if len(data) >= 8 and data[0] == reply and struct.unpack("!H", data[6:8])[0] == seq:
                    return True
        except OSError:  # timed out, unreachable, no route
            return False
    return False


def reaches(address: str) -> bool | None:
    """Whether ADDRESS answers one ping within a second; None when none is configured.
    An ICMP socket of its own where the system allows it (no process a look), else the
    ping program."""
    if not address:
        return None
    answered = echo(address)
    if answered is not None:
        return answered
    try:
        proc = subprocess.run(["ping", "-n", "-q", "-c", "1", "-W", "1", address],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=3, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


class Server:
    """The local server, asked over one session kept open. A session that fails is
    opened again once in the same look (a server restarted since the last look is not a
    failed check); a second failure is no answer."""

    def __init__(self, c: TrackConfig) -> None:
        self.statement = sql.writable_after_wait(c.wait_ms)
        self.session = common.PsqlSession(
            [c.psql, "-XAtq", "-h", c.socket_dir, "-p", str(c.port), "-U", c.user,
             "-d", "postgres"], timeout=c.timeout_s)
        self.error = ""

    def writable(self) -> bool | None:
        for _ in range(2):
            try:
                answer = self.session.execute(self.statement)
            except RuntimeError as exc:
                self.error = str(exc)
                continue
            self.error = ""
            last = answer.splitlines()[-1].strip() if answer else ""
            return {"f": True, "t": False}.get(last)
        return None

    def close(self) -> None:
        self.session.close()


def gather(c: TrackConfig, server: Server, now: float) -> VipFacts:
    return VipFacts(fenced=os.path.exists(c.fence_file), in_doubt=os.path.exists(c.doubt_file),
                    held=held(c.hold_file, now), reaches_network=reaches(c.isolation_address),
                    writable=server.writable())


def write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.new"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def touch(path: str) -> None:
    with open(path, "a", encoding="utf-8"):
        pass


class Watchdog:
    """systemd's watchdog (WatchdogSec=): one datagram a look, when the unit asks."""

    def __init__(self) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.sock: socket.socket | None = None
        if self.address:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def kick(self) -> None:
        if self.sock is not None:
            try:
                self.sock.sendto(b"WATCHDOG=1", self.address)
            except OSError as exc:
                print(f"drctl-node vip-track: the watchdog did not take it: {exc}",
                      file=sys.stderr, flush=True)


Look = Callable[[float], tuple[VipVerdict, dict[str, Any]]]


class PgLook:
    """A database node's look: the facts of the moment, the rules core's verdict, the
    doubt marker left when the verdict says this node is cut off."""

    def __init__(self, c: TrackConfig, server: Server) -> None:
        self.c = c
        self.server = server

    def __call__(self, now: float) -> tuple[VipVerdict, dict[str, Any]]:
        facts = gather(self.c, self.server, now)
        verdict = vip_verdict(facts)
        if verdict.mark_doubt:
            touch(self.c.doubt_file)
        detail: dict[str, Any] = asdict(facts)
        if facts.writable is None and self.server.error:
            detail["error"] = self.server.error
        return verdict, detail

    def close(self) -> None:
        self.server.close()


class AppLook:
    """An app host's look: does the application itself serve its liveness page (HTTP 200
    with its own body, no database) within the timeout."""

    def __init__(self, url: str, body: str, timeout_s: float) -> None:
        self.url, self.body, self.timeout_s = url, body, timeout_s

    def __call__(self, now: float) -> tuple[VipVerdict, dict[str, Any]]:
        answer = appvip.app_alive(self.url, self.body, self.timeout_s)
        return service.app_vip_verdict(bool(answer.get("answers")),
                                       str(answer.get("error", ""))), answer

    def close(self) -> None:
        pass


class Tracker:
    """One look at a time: the verdict, the file when the state changes (after
    keepalived's rise or fall), the verdict's record and a line in the journal when the
    state or its reason does."""

    def __init__(self, look: Look, track_file: str, verdict_file: str, rise: int = 1,
                 fall: int = 1,
                 say: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)
                 ) -> None:
        self._look = look
        self.track_file = track_file
        self.verdict_file = verdict_file
        self.debounce = Debounce(rise=max(1, rise), fall=max(1, fall))
        self.say = say
        self.reason = ""

    def look(self, now: float) -> VipVerdict:
        verdict, facts = self._look(now)
        changed = self.debounce.see(verdict.eligible)
        if changed is not None or (verdict.reason != self.reason
                                   and self.debounce.state == verdict.eligible):
            self.record(verdict, facts, now, changed is not None)
        return verdict

    def record(self, verdict: VipVerdict, facts: dict[str, Any], now: float,
               changed: bool) -> None:
        self.reason = verdict.reason
        if changed:
            write_atomically(self.track_file, "1\n" if verdict.eligible else "0\n")
        detail = {"eligible": verdict.eligible, "reason": verdict.reason,
                  "since": round(now, 3), "facts": facts}
        write_atomically(self.verdict_file, json.dumps(detail) + "\n")
        error = facts.get("error")
        self.say(f"drctl-node vip-track: {'eligible' if verdict.eligible else 'not eligible'}"
                 f" for the VIP: {verdict.reason}" + (f" ({error})" if error else ""))


def pg_tracker(c: TrackConfig) -> tuple[Tracker, PgLook]:
    look = PgLook(c, Server(c))
    return Tracker(look, c.track_file, c.verdict_file, c.rise, c.fall), look


def run(tracker: Tracker, closer: PgLook | AppLook, interval_s: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time) -> int:
    """Look every interval, for ever. Ends, writing 0, on SIGTERM or any failure; replaces
    itself (its file untouched) when the programs' archive changed or on SIGHUP."""
    watchdog = Watchdog()
    code = common.code_file(__file__)
    loaded = common.mtime(code)

    reload = [False]

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    def again(_signum: int, _frame: object) -> None:  # systemctl reload: a new configuration
        reload[0] = True

    before = {sig: signal.signal(sig, handler)
              for sig, handler in ((signal.SIGTERM, stop), (signal.SIGHUP, again))}
    beat = clock()
    try:
        while True:
            tracker.look(wall())
            watchdog.kick()
            new_code = code is not None and common.mtime(code) != loaded
            if new_code or reload[0]:
                tracker.say("drctl-node vip-track: going on with "
                            + (f"the new code ({code} changed)" if new_code
                               else "the configuration read anew")
                            + "; the file keeps its verdict")
                closer.close()
                os.execv(sys.executable, sys.orig_argv)
            beat += interval_s
            now = clock()
            if beat < now:  # a look longer than the interval: the next one now
                beat = now
            sleep(beat - now)
    finally:
        closer.close()
        with contextlib.suppress(OSError):  # whatever ended it: not eligible (fail-safe)
            write_atomically(tracker.track_file, "0\n")
        for sig, handler in before.items():
            signal.signal(sig, handler)


def main(config: str) -> int:
    """A database node's check (`drctl-node vip-track`)."""
    c = TrackConfig.load(config)
    tracker, look = pg_tracker(c)
    return run(tracker, look, c.interval_s)


def main_app(app_vip_config: str) -> int:
    """An app host's check (`drctl-node app-vip-track`), from roles/app_vip's settings."""
    c = appvip.AppVipConfig.load(app_vip_config)
    look = AppLook(c.check_url, c.check_body, float(c.check_timeout_s))
    tracker = Tracker(look, c.track_file, c.verdict_file, int(c.check_rise), int(c.check_fall))
    return run(tracker, look, float(c.check_interval_s))
