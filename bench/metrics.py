"""What drctl's Prometheus collector and the cluster's lock cost. Needs a provisioned lab.

- `drctl-node metrics` on the primary (pg1 by default, or argv[1]), one round as the
  drctl-metrics service writes every 15 s (here a process of its own a round): with
  pgBackRest's answer cached (most runs) and uncached (one run in 20, every 5 min);
- the cluster's lock: taking and giving back the ledger host's lock over SSH, as every
  drctl verb does (`drctl unlock` with nothing held asks the ledger host once).
"""

import os
import sys

from _common import DRCTL, report, timed

PREFIX = os.environ.get("DRCTL_LAB_NAME", "drctl-lab") + "-"
HOST = sys.argv[1] if len(sys.argv) > 1 else "pg1"
RUNS = 10
METRICS = ["/usr/local/libexec/drctl/drctl-node", "metrics", "--out", "/tmp/bench.prom",
           "--cluster", "lab", "--stanza", "lab", "--backup-cache", "/tmp/bench-backup.json"]


def on_node(*cmd: str) -> list[str]:
    return ["docker", "exec", PREFIX + HOST, *cmd]


timed(on_node(*METRICS))  # warm the page cache
report(f"drctl-node metrics on {HOST}, backup answer cached",
       [timed(on_node(*METRICS)) for _ in range(RUNS)])
uncached = []
for _ in range(RUNS):
    timed(on_node("rm", "-f", "/tmp/bench-backup.json"))
    uncached.append(timed(on_node(*METRICS)))
report(f"drctl-node metrics on {HOST}, asking pgBackRest", uncached)
timed([*DRCTL, "unlock"])
report("drctl unlock with nothing held (one ledger round trip, warm ssh)",
       [timed([*DRCTL, "unlock"]) for _ in range(RUNS)])
