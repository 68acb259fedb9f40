"""What a provisioned lab costs the machine while nothing happens to it: CPU seconds a
minute, each host's and each of its systemd units' (from the containers' cgroup v2
`cpu.stat`, which counts every process a unit started, the short-lived ones too).

The suite runs two labs side by side on two cores, so a lab's idle load is paid by every
module of both lanes. Needs a provisioned lab (`drctl provision`), nothing else running.

Usage: python bench/lab_idle.py [--runs N] [--seconds S]   (default 5 windows of 60 s)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from drctl_lab import lab as labmod

CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified/docker"), Path("/sys/fs/cgroup/docker"),
                Path("/sys/fs/cgroup/system.slice"))


def container_dirs() -> dict[str, Path]:
    """host -> its container's cgroup v2 directory."""
    out = {}
    for host in labmod.lab_hosts():
        cid = labmod.docker("inspect", "-f", "{{.Id}}", host.container).stdout.strip()
        for root in CGROUP_ROOTS:
            for cand in (root / cid, root / f"docker-{cid}.scope"):
                if (cand / "cpu.stat").exists():
                    out[host.name] = cand
    if not out:
        raise SystemExit("no lab container's cgroup found (is the lab up?)")
    return out


def usage(dirs: dict[str, Path]) -> dict[tuple[str, str], int]:
    """(host, unit or '' for the whole container) -> CPU microseconds so far."""
    seen = {}
    for host, base in dirs.items():
        for stat in base.rglob("cpu.stat"):
            rel = stat.parent.relative_to(base)
            unit = "" if rel == Path(".") else rel.name
            if unit.endswith((".slice", ".mount")) or unit == "init.scope":
                continue
            try:
                seen[(host, unit)] = int(stat.read_text().split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return seen


def machine_busy() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return float(sum(fields) - fields[3] - fields[4])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    dirs = container_dirs()
    tick = 100.0  # USER_HZ
    per_min: dict[tuple[str, str], list[float]] = {}
    machine: list[float] = []
    for run in range(args.runs):
        a, ma, t0 = usage(dirs), machine_busy(), time.monotonic()
        time.sleep(args.seconds)
        b, mb, t1 = usage(dirs), machine_busy(), time.monotonic()
        scale = 60.0 / (t1 - t0)
        for key, value in b.items():
            if key in a:  # a unit started during the window is counted from the next one
                per_min.setdefault(key, []).append((value - a[key]) / 1e6 * scale)
        machine.append((mb - ma) / tick * scale)
        whole = sum((b[k] - a[k]) / 1e6 * scale for k in b if k in a and k[1] == "")
        print(f"window {run + 1}/{args.runs}: the lab's containers {whole:.1f} CPU s a "
              f"minute, the machine {machine[-1]:.1f}", flush=True)

    def med(values: list[float]) -> str:
        return (f"median {statistics.median(values):5.2f} (min {min(values):.2f}, max "
                f"{max(values):.2f})")

    totals = {k: v for k, v in per_min.items() if k[1] == ""}
    lab_total = [sum(v[i] for v in totals.values()) for i in range(args.runs)]
    print(f"\nidle lab ({len(dirs)} hosts, {args.runs} windows of {args.seconds:.0f} s), CPU "
          "seconds a minute:")
    print(f"  all its containers      {med(lab_total)}")
    print(f"  the whole machine       {med(machine)}")
    for (host, _), values in sorted(totals.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {host:<10}              {med(values)}")
        units = [(u, v) for (h, u), v in per_min.items() if h == host and u]
        for unit, uv in sorted(units, key=lambda kv: -statistics.median(kv[1]))[:6]:
            if statistics.median(uv) >= 0.05:
                print(f"      {unit:<36} {statistics.median(uv):5.2f}")
    print("  (a unit that runs and ends, a timer's service, shows only in its host's line)")


if __name__ == "__main__":
    main()
