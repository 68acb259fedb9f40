"""Automatic failover on the lab: power loss to the first acknowledged write, and false
failovers on short replication-link blips.

  python bench/auto.py [--runs 5] [--blips 5] [--blip-seconds 3]

Arms automatic failover (`drctl auto enable`, idempotent), then
- runs `drctl drill --scenario auto-failover` --runs times: the primary container is
  killed, nobody runs a command; the drill's SQL writer measures the write outage (power
  loss to the first acknowledged write through the VIP) and the writes lost; each run
  ends with `drctl failback --switch-back` (not measured);
- cuts the replication link between primary and standby (iptables in the standby's
  container, both directions) for --blip-seconds, --blips times, then isolates the
  primary from every host for as long, --blips times, and counts promotions.
Targets (issue #7): median outage under 10 s; 0 false failovers.
Leaves automatic failover armed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time

from _common import DRCTL, ROOT, drctl_json

PREFIX = os.environ.get("DRCTL_LAB_NAME", "drctl-lab") + "-"


def sh(host: str, command: str) -> str:
    return subprocess.run(["docker", "exec", PREFIX + host, "sh", "-c", command],
                          capture_output=True, text=True, check=True).stdout.strip()


def drill() -> dict:
    """One auto-failover drill; its report even when it failed (e.g. writes lost)."""
    proc = subprocess.run([*DRCTL, "drill", "--scenario", "auto-failover", "--duration", "15",
                           "--yes", "--format", "json"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(f"drill exited {proc.returncode}:\n{proc.stderr}") from None


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):.2f} s (min {min(values):.2f}, "
            f"max {max(values):.2f}, n={len(values)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--blips", type=int, default=5)
    ap.add_argument("--blip-seconds", type=float, default=3)
    args = ap.parse_args()
    drctl_json("auto", "enable")
    outages, lost, app_failed = [], 0, []
    for i in range(args.runs):
        r = drill()
        outages.append(r["sql"]["write_outage_s"])
        lost += r["sql"]["lost"]
        app_failed.append(r["app"]["failed"])
        print(f"auto-failover run {i + 1}: power loss to first acknowledged write "
              f"{r['sql']['write_outage_s']:.2f} s, lost {r['sql']['lost']}, failed app "
              f"requests {r['app']['failed']}  ({r['html_path']})", flush=True)
    if outages:
        print(f"auto-failover: write outage {spread(outages)}; lost {lost} in all; failed app "
              f"requests median {statistics.median(app_failed):.0f}", flush=True)

    for kind in ("link", "isolate"):
        blips(kind, args.blips, args.blip_seconds)


def blips(kind: str, count: int, seconds: float) -> None:
    """link: cut primary <-> standby only (the witness still sees the primary);
    isolate: cut the primary from everything (standby and witness lose it together)."""
    promotions = 0
    for i in range(count):
        st = drctl_json("status")
        primary = st["primary"]
        standby = next(n["host"] for n in st["nodes"] if n["role"] == "standby")
        address = next(n["address"] for n in st["nodes"] if n["host"] == primary)
        if kind == "link":
            host, cut = standby, (f"iptables -I INPUT -s {address} -j DROP && "
                                  f"iptables -I OUTPUT -d {address} -j DROP")
        else:
            host, cut = primary, ("iptables -I INPUT -i eth0 -j DROP && "
                                  "iptables -I OUTPUT -o eth0 -j DROP")
        sh(host, f"{cut} && sleep {seconds} && iptables -D INPUT 1 && iptables -D OUTPUT 1")
        time.sleep(15)  # detection + an election would be over by now
        promoted = sh(standby, "runuser -u postgres -- psql -XAtq -c "
                               "'select not pg_is_in_recovery()'") == "t"
        promotions += promoted
        print(f"{kind} blip {i + 1}: {seconds:g} s, primary {primary}, standby {standby}: "
              f"{'PROMOTED (false failover)' if promoted else 'no promotion'}", flush=True)
        if promoted:
            raise SystemExit("false failover: stopping (the cluster needs `drctl failback`)")
        for _ in range(30):
            if drctl_json("status").get("healthy"):
                break
            time.sleep(1)
    print(f"{kind} blips of {seconds:g} s: {promotions} false failovers in {count}", flush=True)


if __name__ == "__main__":
    main()
