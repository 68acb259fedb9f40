"""What one `drctl lab restore` costs the machine, and where: CPU seconds from the moment
the containers are replaced until the cluster is healthy, by host and by systemd unit
(every container is new, so its cgroup counts its boot from zero), plus this machine's
share (docker, the CLI).

The suite restores a lab dozens of times a run (docs/testing.md), so a unit that costs
a second at boot costs the suite about a minute. Needs a provisioned lab with a snapshot
(`drctl provision`, then `drctl lab snapshot provisioned`), nothing else running.

Usage: python bench/restore_cpu.py [--runs N] [--snapshot NAME] [--settle S]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from _common import ROOT
from lab_idle import container_dirs, machine_busy, usage

sys.path.insert(0, str(ROOT))
from drctl_lab import lab as labmod
from drctl_lab.hosts import vip_holders, wait_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--snapshot", default="provisioned")
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds counted after the VIP is back (services still starting)")
    args = parser.parse_args()
    hosts: dict[str, list[float]] = {}
    units: dict[tuple[str, str], list[float]] = {}
    machine: list[float] = []
    walls: list[float] = []
    here: list[float] = []
    for run in range(args.runs):
        m0, t0, own0 = machine_busy(), time.monotonic(), os.times()
        labmod.restore(args.snapshot, lambda _m: None)
        wait_for("the VIP on one host", lambda: len(vip_holders()) == 1, timeout=120,
                 interval=0.5)
        walls.append(time.monotonic() - t0)
        time.sleep(args.settle)
        own1 = os.times()
        seen = usage(container_dirs())
        machine.append((machine_busy() - m0) / 100.0)
        here.append(own1.children_user + own1.children_system + own1.user + own1.system
                    - own0.children_user - own0.children_system - own0.user - own0.system)
        for (host, unit), micro in seen.items():
            if unit:
                units.setdefault((host, unit), []).append(micro / 1e6)
            else:
                hosts.setdefault(host, []).append(micro / 1e6)
        total = sum(seen[k] for k in seen if k[1] == "") / 1e6
        print(f"restore {run + 1}/{args.runs}: VIP back after {walls[-1]:.1f} s; containers "
              f"{total:.1f} CPU-s, the machine {machine[-1]:.1f} (with {args.settle:g} s of "
              f"settling), this process and docker's CLI {here[-1]:.1f}", flush=True)

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})"

    print(f"\none restore of {args.snapshot!r}, median (min-max) of {args.runs}:")
    print(f"  until the VIP is back       {med(walls)} s")
    print(f"  the machine                 {med(machine)} CPU-s")
    print(f"  drctl's side here           {med(here)} CPU-s")
    for host, values in sorted(hosts.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {host:<12}                {med(values)} CPU-s")
        mine = [(u, v) for (h, u), v in units.items() if h == host]
        for unit, uv in sorted(mine, key=lambda kv: -statistics.median(kv[1]))[:8]:
            if statistics.median(uv) >= 0.05:
                print(f"      {unit:<36} {statistics.median(uv):5.2f}")
    print("  (a unit that ran and ended, a oneshot's or a timer's service, may show only in "
          "its host's line)")


if __name__ == "__main__":
    main()
