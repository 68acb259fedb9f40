"""How long the remote site's standby takes to stream again after a WAN outage: the WAN
link silently drops every packet for CUT seconds (long enough for pg3's walreceiver to
give its connection up and try again), a row is written on the primary meanwhile, then
the link comes back and the seconds until pg3 holds that row are counted.

What bounds it is the kernel's SYN retransmissions, not PostgreSQL: the walreceiver
connects with libpq's asynchronous API, which ignores connect_timeout (libpq's documented
behaviour for PQconnectPoll; PostgreSQL 15 waits on that socket without a timeout), so an
attempt begun during the cut waits for the next retransmitted SYN after the link is back,
1, 3, 7, 15, 31 and 63 s after the attempt began (tcp_syn_retries 6). Seen in run 79's
test_14 (pg3's log): the walreceiver gave up at 03:19:49 (wal_receiver_timeout), no
attempt failed in the next 68 s, and it streamed again at 03:20:57, 63-64 s after the
attempt that began 5 s after 03:19:49. The figure this bench prints therefore depends on
where the link's return falls in that schedule: with --cut 45, 4.9 s (4.9-5.0, 3 runs,
2026-12-08), and the same with connect_timeout in primary_conninfo or without it; test_14's
longer cut waited 31-33 s (runs 75, 77, 79).

  python bench/wan_catchup.py [--runs 3] [--cut 45]

Needs a provisioned two-site lab (`drctl lab up --sites 2`, `drctl provision`), healthy,
nothing else running. Prints each run and the median and spread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

from _common import ROOT

sys.path.insert(0, str(ROOT))
from drctl_lab import lab as labmod
from drctl_lab.hosts import psql, wait_for

TABLE = "bench_wan_marks"


def has_row(host: str, mark: str) -> bool:
    return psql(host, f"select count(*) from {TABLE} where mark = '{mark}'", db="app",
                check=False) == "1"


def one_run(cut_s: float) -> float:
    psql("pg1", f"create table if not exists {TABLE} (mark text)", db="app")
    before = uuid.uuid4().hex
    psql("pg1", f"insert into {TABLE} values ('{before}')", db="app")
    wait_for("pg3 to stream the row written before the cut", lambda: has_row("pg3", before),
             timeout=60, interval=0.5)
    labmod.wan_cut()
    try:
        during = uuid.uuid4().hex
        psql("pg1", f"insert into {TABLE} values ('{during}')", db="app")
        psql("pg1", "select pg_switch_wal()")
        time.sleep(cut_s)  # the outage itself: its length is the experiment's input
    finally:
        labmod.wan_restore()
    back = time.monotonic()
    wait_for("pg3 to hold the row written during the cut", lambda: has_row("pg3", during),
             timeout=300, interval=0.2)
    return time.monotonic() - back


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cut", type=float, default=45.0, help="seconds the WAN drops packets")
    args = ap.parse_args()
    if labmod.site_count() < 2:
        raise SystemExit("needs a two-site lab: drctl lab up --sites 2, then drctl provision")
    seconds = []
    for run in range(args.runs):
        seconds.append(one_run(args.cut))
        print(f"run {run + 1}/{args.runs}: WAN cut {args.cut:.0f} s; pg3 streamed the row "
              f"written during the cut {seconds[-1]:.1f} s after the link came back",
              flush=True)
    print(f"pg3 caught up after the WAN came back: median {statistics.median(seconds):.1f} s "
          f"(min {min(seconds):.1f}, max {max(seconds):.1f}, n={len(seconds)}; cut "
          f"{args.cut:.0f} s)")
    psql("pg1", f"drop table if exists {TABLE}", db="app")


if __name__ == "__main__":
    main()
