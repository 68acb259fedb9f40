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
from tests.integration.conftest import PREFIX
from tests.integration.writer import Writer

drctl = drctl_json


def spread(name: str, values: list[float], unit: str = "s") -> None:
    print(f"{name}: median {statistics.median(values):.3f} {unit}, min {min(values):.3f}, "
          f"max {max(values):.3f} (n={len(values)})", flush=True)


def switchovers(runs: int) -> None:
    outage, gap, lost = [], [], []
    for i in range(runs):
        for target in ("pg2", "pg1"):
            first_id = 10_000_000 + i * 200_000 + (0 if target == "pg2" else 100_000)
            with Writer(start_id=first_id) as w:
                w.wait_for_acks(100)
                report = drctl("switchover", "--to", target, "--yes")
                w.wait_for_acks(100)
                w.stop()
                outage.append(report["write_outage_s"])
                gap.append(w.longest_gap())
                lost.append(len(w.missing_on(target)))
    spread("switchover write outage (drctl)", outage)
    spread("switchover longest gap between acknowledged writes (client)", gap)
    print(f"switchover acknowledged writes lost: total {sum(lost)} over {len(lost)} switchovers")


def failovers(runs: int) -> None:
    to_write, gap, lost, command = [], [], [], []
    for i in range(runs):
        with Writer(start_id=20_000_000 + i * 100_000) as w:
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
        subprocess.run(["docker", "start", PREFIX + "pg1"], check=True, capture_output=True)
        time.sleep(5)
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
