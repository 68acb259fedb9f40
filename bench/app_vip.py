"""An app host's power loss, as a user of the service sees it through dc1's application VIP.

  python bench/app_vip.py [--runs 5]

On a provisioned lab (dc1 has app1 and app3 behind drctl_app_vip): a client asks the
service's /health through the application VIP every 20 ms; the app host that holds the
VIP is powered off (`docker kill`); the figure is the time from the kill to the first
answer through the VIP that reports the database writable. Between runs the host is
powered on again and the next run kills whichever host holds the VIP then (keepalived's
nopreempt leaves it where it moved). Prints each run and the median and spread.
Target (issue #31): median at most 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml
from _common import ROOT, report

PREFIX = os.environ.get("DRCTL_LAB_NAME", "drctl-lab") + "-"
APP_HOSTS = ("app1", "app3")


def sh(host: str, command: str, check: bool = True) -> str:
    return subprocess.run(["docker", "exec", PREFIX + host, "sh", "-c", command],
                          capture_output=True, text=True, check=check).stdout.strip()


def app_vip() -> str:
    main = yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "all" / "main.yml")
                          .read_text())
    return str(main["drctl_app_vip"]).split("/")[0]


def holders(vip: str) -> list[str]:
    return [h for h in APP_HOSTS
            if f" {vip}/" in sh(h, "ip -o addr show dev eth0", check=False)]


def writable(vip: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{vip}:8080/health", timeout=1) as r:
            return bool(json.loads(r.read()).get("writable"))
    except (OSError, ValueError):
        return False


def wait(what: str, predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def one_run(vip: str) -> tuple[str, float]:
    wait("exactly one holder of the application VIP", lambda: len(holders(vip)) == 1, 30)
    wait("the service to answer through the VIP", lambda: writable(vip), 30)
    victim = holders(vip)[0]
    subprocess.run(["docker", "kill", PREFIX + victim], check=True, capture_output=True)
    killed = time.monotonic()
    while not writable(vip):
        if time.monotonic() - killed > 60:
            raise SystemExit(f"no answer through {vip} 60 s after {victim} lost its power")
        time.sleep(0.02)
    took = time.monotonic() - killed
    subprocess.run(["docker", "start", PREFIX + victim], check=True, capture_output=True)
    wait(f"{victim} to boot", lambda: sh(victim, "systemctl is-system-running",
                                         check=False) in ("running", "degraded"), 90)
    wait(f"keepalived on {victim}", lambda: sh(victim, "systemctl is-active keepalived",
                                               check=False) == "active", 30)
    return victim, took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not Path(ROOT / "inventories" / "lab" / "hosts.yml").exists():
        raise SystemExit("no lab inventory: run `drctl lab up` and `drctl provision` first")
    vip = app_vip()
    samples = []
    for i in range(args.runs):
        victim, took = one_run(vip)
        samples.append(took)
        print(f"run {i + 1}: {victim} powered off, first good answer through {vip} after "
              f"{took:.3f} s", flush=True)
    report("app host power loss -> first good request through the application VIP", samples,
           "median <= 3 s")


if __name__ == "__main__":
    main()
