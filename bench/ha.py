"""Switchover and failover on the lab under a steady write load through the VIP, with the
peer's figure beside drctl's.

  python bench/ha.py [--runs N] [--skip-failover] [--peer]

Prints, over N runs (default 10; a switchover run goes there and back, so 2N switchovers):
the write outage drctl reports, the longest gap between acknowledged writes seen by a
client that reconnects at once, acknowledged writes lost, and for a power loss (docker
kill of the primary) the time from `drctl failover` starting to the first acknowledged
write after it, and the command's own duration. Beside the client straight on the VIP, the
same writes through app1's pooler (an SSH forward to its loopback port, as `drctl drill`
does): its failed attempts, its longest single write, its writes lost.

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
from drctl import inventory as inv_mod
from drctl import sshprobe
from drctl.drill import pooled_connector
from drctl.workload import SqlWriter
from drctl_lab.hosts import INVENTORY, PREFIX, power_on, psql, vip_connect
from drctl_lab.writer import TABLE, Writer, ensure_table

POOLED_TABLE = "app.ha_writes_pooled"
POOLER_HOST = "app1"

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


class Pooled:
    """The bench's writer through app1's pooler, for one operation: started on entry,
    stopped (and its forward closed) on exit."""

    def __init__(self, start_id: int):
        inv = inv_mod.load(INVENTORY)
        self.forward, port = sshprobe.tunnel(inv, POOLER_HOST, 6432)
        self.writer = SqlWriter(pooled_connector(inv, port), table=POOLED_TABLE,
                                rate=100.0, start_id=start_id)

    def __enter__(self) -> SqlWriter:
        self.writer.prepare()
        self.writer.start()
        return self.writer

    def __exit__(self, *exc: object) -> None:
        self.writer.stop()
        self.forward.terminate()
        self.forward.wait(timeout=10)


def first_free_pooled_id() -> int:
    with vip_connect() as conn:
        conn.execute(f"create table if not exists {POOLED_TABLE} (id bigint primary key, "
                     "at timestamptz default now())")
        conn.commit()
        return int(conn.execute(f"select coalesce(max(id), 0) + 1 from {POOLED_TABLE}")
                   .fetchone()[0])


def pooled_figures(p: SqlWriter) -> tuple[float, float, float]:
    """Failed attempts, the longest single write, writes lost (read through the VIP)."""
    return float(len(p.errors)), p.max_wait_s, float(len(p.missing(vip_connect)))


def switchovers(runs: int, label: str) -> Samples:
    s: Samples = {"switchover: longest gap between acknowledged writes (client)": [],
                  "switchover: write outage (drctl's report)": [],
                  "switchover: the command": [],
                  "switchover: acknowledged writes lost": [],
                  "switchover through the pooler: failed attempts": [],
                  "switchover through the pooler: longest single write": [],
                  "switchover through the pooler: acknowledged writes lost": []}
    for i in range(runs):
        for target in ("pg2", "pg1"):
            with Writer(start_id=first_free_id() + 1_000) as w, \
                    Pooled(first_free_pooled_id() + 1_000) as p:
                w.wait_for_acks(100)
                p.wait_for_acks(100)
                report = drctl("switchover", "--to", target, "--yes")
                w.wait_for_acks(100)
                p.wait_for_acks(100)
                w.stop()
                p.stop()
                values = (w.longest_gap(), report["write_outage_s"], report["duration_s"],
                          float(len(w.missing_on(target))), *pooled_figures(p))
            for key, value in zip(s, values, strict=True):
                s[key].append(value)
            print(f"[{label}] switchover {i + 1}/{runs} to {target}: gap {values[0]:.3f} s, "
                  f"outage {values[1]:.3f} s, command {values[2]:.1f} s, lost "
                  f"{values[3]:.0f}; pooled: failed {values[4]:.0f}, longest write "
                  f"{values[5]:.2f} s, lost {values[6]:.0f}", flush=True)
    return s


def failovers(runs: int, label: str) -> Samples:
    s: Samples = {"failover: command start -> first acknowledged write": [],
                  "failover: the command": [],
                  "failover: power loss -> first acknowledged write (client gap)": [],
                  "failover: acknowledged writes lost": [],
                  "failover through the pooler: failed attempts": [],
                  "failover through the pooler: longest single write": [],
                  "failover through the pooler: acknowledged writes lost": []}
    for i in range(runs):
        with Writer(start_id=first_free_id() + 1_000) as w, \
                Pooled(first_free_pooled_id() + 1_000) as p:
            w.wait_for_acks(100)
            p.wait_for_acks(100)
            subprocess.run(["docker", "kill", PREFIX + "pg1"], check=True, capture_output=True)
            start = time.monotonic()
            drctl("failover", "--yes")
            command = time.monotonic() - start
            w.wait_for_acks(20)
            p.wait_for_acks(20, timeout=60)
            first = next(t for t, _ in w.acked if t > start)
            w.stop()
            p.stop()
            values = (first - start, command, w.longest_gap(), float(len(w.missing_on("pg2"))),
                      *pooled_figures(p))
        for key, value in zip(s, values, strict=True):
            s[key].append(value)
        print(f"[{label}] failover {i + 1}/{runs}: to first write {values[0]:.3f} s, command "
              f"{values[1]:.2f} s, client gap {values[2]:.2f} s, lost {values[3]:.0f}; "
              f"pooled: failed {values[4]:.0f}, longest write {values[5]:.2f} s, lost "
              f"{values[6]:.0f}", flush=True)
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
        if key.endswith("lost") or key.endswith("failed attempts"):
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
