"""An app host's state for `drctl status`: its application VIP and its copy of the files.

  drctl-node [--app-vip-config PATH] [--files-config PATH] app state

The application VIP (roles/app_vip) sits on one app host of a site whose application
answers its own /health; keepalived moves it. This reports what this host sees now: does
it hold the address, is keepalived running, what VRRP state it last entered, does its
application answer. Judging the site (exactly one holder) is the rules core's
(drctl.rules.service), from every app host's report.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from drctl.node import common


@dataclass(frozen=True)
class AppVipConfig:
    """/etc/drctl/app-vip.json, written by roles/app_vip."""

    address: str  # address/prefix
    interface: str
    health_url: str
    state_file: str = "/run/drctl/app-vrrp-state"
    unit: str = "keepalived"
    health_timeout_s: float = 2.0
    # the application's liveness page (no database): read instead of /health while this
    # host's pooler is paused, when /health would wait for the pause's end
    alive_url: str = ""
    alive_body: str = '"alive"'
    # keepalived's tracked file and what `drctl-node app-vip-track` looks at to keep it
    # (drctl.node.viptrack): the liveness page, its body, every check_interval_s
    check_url: str = ""
    check_body: str = '"alive"'
    check_interval_s: float = 1.0
    check_timeout_s: float = 4.0
    check_rise: int = 1
    check_fall: int = 1
    track_file: str = "/run/drctl/app-vip-track"
    verdict_file: str = "/run/drctl/app-vip-track.json"

    @classmethod
    def load(cls, path: str) -> AppVipConfig:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
        return cls(**raw)


def app_answers(url: str, timeout: float) -> dict[str, Any]:
    """Whether the application itself served /health (HTTP 200, or 503 with its own JSON
    saying the database is unreachable): the process is alive and handles requests. What
    the database answered is reported beside it, not counted."""
    start = time.monotonic()
    status = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            status, body = resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            body = json.load(exc)
        except ValueError:
            body = None
    except (OSError, ValueError) as exc:
        return {"answers": False, "error": str(exc)[:200],
                "ms": round((time.monotonic() - start) * 1000, 1)}
    answers = isinstance(body, dict) and "database" in body and status in (200, 503)
    return {"answers": answers, "status": status,
            "writable": bool(isinstance(body, dict) and body.get("writable")),
            "database": body.get("database") if isinstance(body, dict) else None,
            "ms": round((time.monotonic() - start) * 1000, 1),
            **({} if answers else {"error": f"/health answered {status} without the "
                                            "application's report"})}


def _service(unit: str) -> str:
    try:
        proc = subprocess.run(["systemctl", "is-active", unit], capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return proc.stdout.strip() or "unknown"


def vrrp_state(path: str) -> dict[str, str | None] | None:
    """The notify script's record: 'STATE SINCE'."""
    try:
        with open(path, encoding="utf-8") as fh:
            parts = fh.read().split()
    except OSError:
        return None
    if not parts:
        return None
    return {"state": parts[0], "since": parts[1] if len(parts) > 1 else None}


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the local app only


def app_alive(url: str, body: str, timeout: float) -> dict[str, Any]:
    """Whether the application served its liveness page (HTTP 200 with BODY in it, as
    keepalived's tracked file wants it; no database), in app_answers' terms."""
    start = time.monotonic()
    try:
        with _DIRECT.open(url, timeout=timeout) as resp:
            status, text = resp.status, resp.read(65536).decode(errors="replace")
    except OSError as exc:
        return {"answers": False, "error": str(exc)[:200],
                "ms": round((time.monotonic() - start) * 1000, 1)}
    answers = status == 200 and body in text
    return {"answers": answers, "status": status, "writable": False,
            "database": "waiting for the pooler's pause to end",
            "ms": round((time.monotonic() - start) * 1000, 1),
            **({} if answers else {"error": f"{url} answered {status} without {body}"})}


def state(c: AppVipConfig, pooler_paused: bool = False) -> dict[str, Any]:
    """POOLER_PAUSED: this host's pooler holds its clients now, so /health (which asks the
    database through it) would answer only after the pause; the liveness page says
    whether the application serves instead."""
    paused = pooler_paused and bool(c.alive_url)
    return {"configured": True, "address": c.address.split("/")[0],
            "holds": common.holds_address(c.interface, c.address),
            "keepalived": _service(c.unit), "vrrp": vrrp_state(c.state_file),
            "app": (app_alive(c.alive_url, c.alive_body, c.health_timeout_s) if paused
                    else app_answers(c.health_url, c.health_timeout_s))}


def main(app_vip_config: str, files_config: str, pooler_config: str = "") -> int:
    """`app state`: the application VIP's state, the files' and the pooler's (any may be
    absent)."""
    from drctl.node import files, pooler

    # the pooler first: while it is paused, the application's /health waits for the end
    pool: dict[str, Any] = {"configured": False}
    if pooler_config and os.path.exists(pooler_config):
        pool = {"configured": True, **pooler.state(pooler.PoolerConfig.load(pooler_config))}
    vip: dict[str, Any] = {"configured": False}
    if os.path.exists(app_vip_config):
        vip = state(AppVipConfig.load(app_vip_config), pooler_paused=pool.get("state") == "paused")
    copy: dict[str, Any] = {"configured": False}
    if os.path.exists(files_config):
        copy = {"configured": True, **files.state(files.FilesConfig.load(files_config))}
    common.emit(ok=True, app_vip=vip, files=copy, pooler=pool)
    return 0
