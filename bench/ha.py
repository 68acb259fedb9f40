"""Switchover and failover on the lab under a steady write load through the VIP, with the
peer's figure beside drctl's.

  python bench/ha.py [--runs N] [--skip-failover] [--peer]

Prints, over N runs (default 10; a switchover run goes there and back, so 2N switchovers):
the write outage drctl reports, the longest gap between acknowledged writes seen by a
client that reconnects at once, acknowledged writes lost, and for a power loss (docker
kill of the primary) the time from `drctl failover` starting to the first acknowledged
write after it, and the command's own duration.

--peer runs the same again with keepalived at its own defaults (bench/peer/: VRRPv2, 1 s
adverts, priority 100, a check that answers at once), as a by-hand keepalived setup has it,
then puts drctl's settings back, and prints both columns and their ratio. Needs a
provisioned lab; leaves pg1 as primary.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import datetime

from _common import ROOT, drctl_json

sys.path.insert(0, str(ROOT))
from tests.integration.conftest import INVENTORY, PREFIX, power_on, psql
from tests.integration.writer import TABLE, Writer, ensure_table

drctl = drctl_json
Samples = dict[str, list[float]]


def figure(values: list[float]) -> str:
    return (f"median {statistics.median(values):.3f} s (min {min(values):.3f}, "
            f"max {max(values):.3f}, n={len(values)})")


def step_gap(report: dict, first: str, then: str) -> float:
    """Seconds between two journal steps of an operation's report."""
    at = {e["step"]: datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
          for e in report["journal"]}
    return (at[then] - at[first]).total_seconds()


def first_free_id() -> int:
    """Above every id written so far: the bench can run again on the same lab."""
    ensure_table()
    primary = drctl("status")["primary"]
    return int(psql(primary, f"select coalesce(max(id), 0) + 1 from {TABLE}", db="app"))


def switchovers(runs: int, label: str) -> Samples:
    s: Samples = {"switchover: longest gap between acknowledged writes (client)": [],
                  "switchover: write outage (drctl's report)": [],
                  "switchover: the command": [],
                  "switchover: acknowledged writes lost": []}
    for i in range(runs):
        for target in ("pg2", "pg1"):
            with Writer(start_id=first_free_id() + 1_000) as w:
                w.wait_for_acks(100)
                report = drctl("switchover", "--to", target, "--yes")
                w.wait_for_acks(100)
                w.stop()
                values = (w.longest_gap(), report["write_outage_s"], report["duration_s"],
                          float(len(w.missing_on(target))))
            for key, value in zip(s, values, strict=True):
                s[key].append(value)
            print(f"[{label}] switchover {i + 1}/{runs} to {target}: gap {values[0]:.3f} s, "
                  f"outage {values[1]:.3f} s, command {values[2]:.1f} s, lost "
                  f"{values[3]:.0f}", flush=True)
    return s


def failovers(runs: int, label: str) -> Samples:
    s: Samples = {"failover: command start -> first acknowledged write": [],
                  "failover: the command": [],
                  "failover: power loss -> first acknowledged write (client gap)": [],
                  "failover: acknowledged writes lost": []}
    for i in range(runs):
        with Writer(start_id=first_free_id() + 1_000) as w:
            w.wait_for_acks(100)
            subprocess.run(["docker", "kill", PREFIX + "pg1"], check=True, capture_output=True)
            start = time.monotonic()
            drctl("failover", "--yes")
            command = time.monotonic() - start
            w.wait_for_acks(20)
            first = next(t for t, _ in w.acked if t > start)
            w.stop()
            values = (first - start, command, w.longest_gap(), float(len(w.missing_on("pg2"))))
        for key, value in zip(s, values, strict=True):
            s[key].append(value)
        print(f"[{label}] failover {i + 1}/{runs}: to first write {values[0]:.3f} s, command "
              f"{values[1]:.2f} s, client gap {values[2]:.2f} s, lost {values[3]:.0f}",
              flush=True)
        power_on("pg1")
        drctl("failback", "--node", "pg1", "--switch-back", "--yes")
    return s


def keepalived(peer: bool) -> None:
    """keepalived's own defaults on the PostgreSQL nodes (peer), or drctl's again."""
    extra = ["-e", "@bench/peer/keepalived-defaults.yml"] if peer else []
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i",
                           str(INVENTORY), "bench/peer/keepalived.yml", *extra], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench/peer/keepalived.yml failed:\n{proc.stdout[-3000:]}")


def measure(args: argparse.Namespace, label: str) -> Samples:
    samples = switchovers(args.runs, label)
    if not args.skip_failover:
        samples.update(failovers(args.runs, label))
    return samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--skip-failover", action="store_true")
    ap.add_argument("--peer", action="store_true",
                    help="also measure with keepalived's own defaults, and print the ratio")
    args = ap.parse_args()
    ours = measure(args, "drctl")
    peer: Samples = {}
    if args.peer:
        keepalived(peer=True)
        try:
            peer = measure(args, "keepalived defaults")
        finally:
            keepalived(peer=False)
    print("\nfigure | drctl (its defaults) | peer: keepalived's defaults | ratio")
    for key, values in ours.items():
        if key.endswith("lost"):
            line = f"{key} | {sum(values):.0f} in {len(values)}"
            if key in peer:
                line += f" | {sum(peer[key]):.0f} in {len(peer[key])} |"
            print(line, flush=True)
            continue
        line = f"{key} | {figure(values)}"
        if key in peer:
            ratio = statistics.median(peer[key]) / max(statistics.median(values), 1e-9)
            line += f" | {figure(peer[key])} | {ratio:.1f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
