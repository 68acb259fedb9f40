"""A site failover as a user of the service sees it: through the service's name.

  python bench/service_name.py [--runs 3]

On a provisioned two-site lab (`drctl lab up --sites 2`, `drctl provision`): a client that
knows only the name resolves it through the lab's DNS server (dns1) as a client would,
keeping each answer for its TTL, and asks /health at the address every 50 ms. All of dc1
loses its power (`docker kill`), then `drctl failover --site dc2 --allow-data-loss --yes`
runs. Figures, from the command's start: the command's duration, and the first answer
through the name that reports the database writable (the name moved, and its TTL ran
out). Between runs dc1 powers on, its nodes fail back and a switchover brings the
primary (and the name) home; not measured. Prints each run and the median and spread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
import urllib.request

import yaml
from _common import DRCTL, ROOT, drctl_json, report

from drctl import dnsupdate
from drctl.workload import NameResolver
from drctl_lab.hosts import power_off

PREFIX = os.environ.get("DRCTL_LAB_NAME", "drctl-lab") + "-"
DC1 = ("pg1", "pg2", "backup1", "app1", "app3")


def settings() -> dnsupdate.NameSettings:
    main = yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "all" / "main.yml")
                          .read_text())
    s = dnsupdate.NameSettings.from_options(main)
    if s is None:
        raise SystemExit("the lab manages no service name: `drctl lab up --sites 2`, then "
                         "`drctl provision`")
    return s


def writable(address: str | None) -> bool:
    if address is None:
        return False
    try:
        with urllib.request.urlopen(f"http://{address}:8080/health", timeout=1) as r:
            return bool(json.loads(r.read()).get("writable"))
    except (OSError, ValueError):
        return False


def one_run(s: dnsupdate.NameSettings) -> tuple[float, float]:
    resolver = NameResolver(lambda: dnsupdate.lookup(s))
    if not writable(resolver.address()):
        raise SystemExit("the service does not answer through its name before the run")
    power_off(*DC1)
    start = time.monotonic()
    proc = subprocess.Popen([*DRCTL, "failover", "--site", "dc2", "--allow-data-loss", "--yes",
                             "--format", "json"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first_good = None
    while first_good is None:
        if writable(resolver.address()):
            first_good = time.monotonic() - start
        elif time.monotonic() - start > 180:
            proc.kill()
            raise SystemExit("no good answer through the name 180 s after the command began")
        else:
            time.sleep(0.05)
    proc.wait(timeout=600)
    command = time.monotonic() - start if proc.returncode is None else None
    out = json.loads(proc.stdout.read() or "{}")
    if proc.returncode != 0:
        raise SystemExit(f"drctl failover exited {proc.returncode}: {out}")
    command = float(out.get("duration_s") or command or 0)
    return command, first_good


def home() -> None:
    subprocess.run(["docker", "start", *[PREFIX + h for h in DC1]], check=True,
                   capture_output=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        done = subprocess.run(["docker", "exec", PREFIX + "pg1", "test", "-e",
                               "/etc/drctl/fenced"], check=False).returncode == 0
        if done:
            break
        time.sleep(2)
    for node in ("pg1", "pg2"):
        drctl_json("failback", "--node", node, "--yes")
    drctl_json("switchover", "--to", "pg1", "--yes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    s = settings()
    commands, users = [], []
    for i in range(args.runs):
        command, first = one_run(s)
        commands.append(command)
        users.append(first)
        print(f"run {i + 1}: failover --site dc2 took {command:.3f} s; first good request "
              f"through {s.name} {first:.3f} s after it began", flush=True)
        home()
    report("drctl failover --site dc2 (the command)", commands)
    report(f"command start -> first good request through the name (TTL {s.ttl} s)", users)


if __name__ == "__main__":
    main()
