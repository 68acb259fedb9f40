"""What one command (a test module, an operation) costs the machine: its wall time, the
machine's busy CPU seconds while it ran, and how much of that the lab's containers used
(every docker container's cgroup) against this machine's own processes (Ansible, pytest,
SSH clients, docker's daemons).

`make test` is CPU-bound only because its two lanes overlap; alone, a module may keep
far fewer than both cores busy. Run it on a quiet machine.

Usage: python bench/command_cpu.py [--runs N] -- COMMAND [ARG...]
  e.g. python bench/command_cpu.py -- .venv/bin/pytest -q tests/integration/test_06_failover.py
       python bench/command_cpu.py --runs 4 -- .venv/bin/drctl switchover --to pg2 --yes
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# cgroup v1 (cpuacct, nanoseconds) or v2 (cpu.stat usage_usec) of all docker containers
V1_USAGE = Path("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage")
V2_ROOTS = (Path("/sys/fs/cgroup/system.slice"), Path("/sys/fs/cgroup/docker"))


def containers_cpu_s() -> float:
    """CPU seconds used so far by every docker container on this machine."""
    try:
        return int(V1_USAGE.read_text()) / 1e9
    except (OSError, ValueError):
        pass
    total = 0
    for root in V2_ROOTS:
        for stat in list(root.glob("docker-*.scope/cpu.stat")) + list(root.glob("*/cpu.stat")):
            try:
                total += int(stat.read_text().split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return total / 1e6


def machine_cpu_s() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat, idle and iowait left out)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def measure(command: list[str]) -> dict[str, float]:
    c0, m0, t0 = containers_cpu_s(), machine_cpu_s(), time.monotonic()
    rc = subprocess.call(command)
    c1, m1, t1 = containers_cpu_s(), machine_cpu_s(), time.monotonic()
    return {"rc": rc, "wall_s": t1 - t0, "machine_cpu_s": m1 - m0,
            "containers_cpu_s": c1 - c0, "outside_cpu_s": (m1 - m0) - (c1 - c0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    a = parser.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        parser.error("no command given")
    runs = []
    for i in range(a.runs):
        r = measure(command)
        runs.append(r)
        print(f"run {i + 1}/{a.runs}: exit {r['rc']}, {r['wall_s']:.0f} s, "
              f"{r['machine_cpu_s']:.0f} CPU-s (containers {r['containers_cpu_s']:.0f}, "
              f"this machine {r['outside_cpu_s']:.0f})", file=sys.stderr, flush=True)
    print(f"\n{' '.join(command)}: {a.runs} run(s)")
    for key, label in (("wall_s", "wall clock (s)"), ("machine_cpu_s", "machine CPU-s"),
                       ("containers_cpu_s", "containers' CPU-s"),
                       ("outside_cpu_s", "this machine's own CPU-s")):
        values = [r[key] for r in runs]
        print(f"  {label:<26} median {statistics.median(values):7.1f} "
              f"(min {min(values):.1f}, max {max(values):.1f})")
    return 0 if all(r["rc"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
