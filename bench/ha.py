"""Switchover and failover on the lab under a steady write load through the VIP.

  python bench/ha.py [--runs N] [--skip-failover]

Prints, over N runs: the write outage drctl reports, the longest gap between acknowledged
writes seen by the client, acknowledged writes lost, and for a power loss (docker kill of
the primary) the time from `drctl failover` starting to the first acknowledged write after
it. Needs a provisioned lab; leaves pg1 as primary.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _common import ROOT, drctl_json

sys.path.insert(0, str(ROOT))
from tests.integration.conftest import PREFIX, power_on, psql
from tests.integration.writer import TABLE, Writer, ensure_table

drctl = drctl_json


def spread(name: str, values: list[float], unit: str = "s") -> None:
    print(f"{name}: median {statistics.median(values):.3f} {unit}, min {min(values):.3f}, "
          f"max {max(values):.3f} (n={len(values)})", flush=True)


def step_gap(report: dict, first: str, then: str) -> float:
    """Seconds between two journal steps of an operation's report."""
    from datetime import datetime

    at = {e["step"]: datetime.fromisoformat(e["time"].replace("Z", "+00:00"))
          for e in report["journal"]}
    return (at[then] - at[first]).total_seconds()


def first_free_id() -> int:
    """Above every id written so far: the bench can run again on the same lab."""
    ensure_table()
    primary = drctl("status")["primary"]
    return int(psql(primary, f"select coalesce(max(id), 0) + 1 from {TABLE}", db="app"))


def switchovers(runs: int) -> None:
    outage, gap, lost, command, rejoin = [], [], [], [], []
    for _ in range(runs):
        for target in ("pg2", "pg1"):
            first_id = first_free_id() + 1_000
            with Writer(start_id=first_id) as w:
                w.wait_for_acks(100)
                report = drctl("switchover", "--to", target, "--yes")
                w.wait_for_acks(100)
                w.stop()
                outage.append(report["write_outage_s"])
                command.append(report["duration_s"])
                rejoin.append(step_gap(report, "vip-moved", "rejoined"))
                gap.append(w.longest_gap())
                lost.append(len(w.missing_on(target)))
    spread("switchover write outage (drctl)", outage)
    spread("switchover longest gap between acknowledged writes (client)", gap)
    print(f"switchover acknowledged writes lost: total {sum(lost)} over {len(lost)} switchovers")
    spread("switchover: drctl switchover command duration", command)
    spread("switchover: VIP moved -> old primary streaming as a standby (journal)", rejoin)


def failovers(runs: int) -> None:
    to_write, gap, lost, command = [], [], [], []
    for _ in range(runs):
        with Writer(start_id=first_free_id() + 1_000) as w:
            w.wait_for_acks(100)
            subprocess.run(["docker", "kill", PREFIX + "pg1"], check=True, capture_output=True)
            start = time.monotonic()
            drctl("failover", "--yes")
            command.append(time.monotonic() - start)
            w.wait_for_acks(20)
            first = next(t for t, _ in w.acked if t > start)
            to_write.append(first - start)
            w.stop()
            gap.append(w.longest_gap())
            lost.append(len(w.missing_on("pg2")))
        power_on("pg1")
        drctl("failback", "--node", "pg1", "--switch-back", "--yes")
    spread("failover: command start -> first acknowledged write (power loss)", to_write)
    spread("failover: drctl failover command duration", command)
    spread("failover: longest client gap (kill -> writes again, incl. detection by hand)", gap)
    print(f"failover acknowledged writes lost (asynchronous replication): {lost}")


if __name__ == "__main__":
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 5
    switchovers(runs)
    if "--skip-failover" not in sys.argv:
        failovers(runs)
