"""Failback by pg_rewind versus a fresh clone, for a database of about 1 GB (pgbench
scale 70), both measured in the same run on the lab (target: rewind at least 10x faster).

  python bench/rewind.py [--scale 70]

Each round: checkpoint, power off the primary (docker kill), `drctl failover`, write a little on the
new primary, power the old one on, `drctl failback` (once with pg_rewind, once with
--reclone), then switch back. Prints the rewind step, the clone, and both failbacks.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime

from _common import drctl_json

PREFIX = "drctl-lab-"


def sh(host: str, cmd: str) -> str:
    return subprocess.run(["docker", "exec", PREFIX + host, "sh", "-c", cmd], check=True,
                          capture_output=True, text=True).stdout.strip()


drctl = drctl_json


def ts(entry: dict) -> float:
    return datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()


def caught_up() -> None:
    """Kill the primary only once the standby has everything (and status recorded it)."""
    for _ in range(120):
        st = drctl("status")
        lag = next(n["lag_bytes"] for n in st["nodes"] if n["host"] == "pg2")
        if lag is not None and lag < 1024 * 1024:
            return
        time.sleep(1)
    raise SystemExit("the standby did not catch up")


def round_trip(reclone: bool) -> dict:
    caught_up()
    # A database, not a burst of unflushed WAL: checkpoints run every few minutes anyway,
    # and without one pg_rewind's crash recovery replays the whole 1 GB load first.
    sh("pg1", "runuser -u postgres -- psql -XAtq -c checkpoint")
    subprocess.run(["docker", "kill", PREFIX + "pg1"], check=True, capture_output=True)
    drctl("failover", "--yes")
    sh("pg2", "runuser -u postgres -- psql -XAtq -d bench -c "
              "'update pgbench_accounts set abalance = abalance + 1 where aid < 1000'")
    subprocess.run(["docker", "start", PREFIX + "pg1"], check=True, capture_output=True)
    time.sleep(8)
    start = time.monotonic()
    report = drctl("failback", "--node", "pg1", "--yes", *(["--reclone"] if reclone else []))
    total = time.monotonic() - start
    steps = {e["step"]: e for e in report["journal"]}
    sync_from = steps.get("rewind-skipped") or steps.get("diverged")
    sync_s = ts(steps["rejoined"]) - ts(sync_from)
    drctl("switchover", "--to", "pg1", "--yes")
    return {"failback_s": total, "sync_and_rejoin_s": sync_s,
            "rewind_step": steps.get("rewound", {}).get("seconds")}


def main() -> None:
    scale = int(sys.argv[sys.argv.index("--scale") + 1]) if "--scale" in sys.argv else 70
    sh("pg1", "runuser -u postgres -- psql -XAtq -c 'drop database if exists bench' "
              "-c 'create database bench'")
    t = time.monotonic()
    sh("pg1", f"runuser -u postgres -- /usr/lib/postgresql/15/bin/pgbench -q -i -s {scale} bench")
    size = sh("pg1", "runuser -u postgres -- psql -XAtq -c "
                     "\"select pg_size_pretty(pg_database_size('bench'))\"")
    print(f"pgbench scale {scale}: {size} in {time.monotonic() - t:.0f} s", flush=True)
    rewind = round_trip(reclone=False)
    clone = round_trip(reclone=True)
    print(f"failback with pg_rewind: {rewind['failback_s']:.1f} s in all; rewind + rejoin "
          f"{rewind['sync_and_rejoin_s']:.1f} s (pg_rewind itself {rewind['rewind_step']})")
    print(f"failback with a fresh clone: {clone['failback_s']:.1f} s in all; clone + rejoin "
          f"{clone['sync_and_rejoin_s']:.1f} s")
    print(f"ratio clone/rewind (sync + rejoin): "
          f"{clone['sync_and_rejoin_s'] / rewind['sync_and_rejoin_s']:.1f}x; whole failback: "
          f"{clone['failback_s'] / rewind['failback_s']:.1f}x")
    sh("pg1", "runuser -u postgres -- psql -XAtq -c 'drop database bench'")


if __name__ == "__main__":
    main()
