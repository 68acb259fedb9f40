"""The cluster rebuilt from the object store (`drctl rebuild`), both sites lost under load.

  python bench/rebuild.py [--runs 3] [--snapshot NAME] [--rate 20] [--seconds 90]
  python bench/rebuild.py --drill [--runs 3] [--snapshot NAME] [--rate 20]

Each run: the lab back to snapshot NAME (a provisioned two-site lab), a full backup into
repo3, then the lab's writer (drctl_lab.writer) committing through dc1's VIP (RATE a
second, each acknowledged id and its time kept) for SECONDS (90); every host of dc1 and
dc2 loses power at once while it writes; then
`drctl rebuild --on cloud1 --repo 3 --allow-data-loss --yes`.
Prints, per run and as median and spread: the recovery time (drctl's `rto_s`, from the
answer to a primary that takes writes, and the command's wall clock), the acknowledged
writes missing on cloud1 (the loss asynchronous archiving makes possible), and the
recovery point in time (the newest acknowledged write's time minus the commit time of the
last transaction replayed, which drctl reports). Needs `drctl lab up --sites 2`,
`drctl provision` and `drctl lab snapshot NAME`.

With --drill, each run is `drctl drill --scenario cloud-restore --allow-data-loss` after
the restore and the full backup (its writer and app load, the power cut after its 3-s
steady state): the drill's own figures, the recovery time from the power cut until the
rebuilt primary took writes (`rebuild.recovery_s`), the client's write outage, the
acknowledged writes lost and the recovery point in time (`rebuild`), and its verdict.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime

from _common import ROOT

from drctl_lab.hosts import power_off, psql
from drctl_lab.lab import PREFIX, SITE_HOSTS, restore
from drctl_lab.writer import TABLE, Writer

DRCTL = [sys.executable, "-m", "drctl"]
SITES = [h for site in ("dc1", "dc2") for h, _o, _g in SITE_HOSTS[site]]


def one_run(snapshot: str, rate: float, seconds: float) -> dict[str, float]:
    restore(snapshot, lambda _m: None)
    subprocess.run([*DRCTL, "backup", "--repo", "3", "--type", "full"], cwd=ROOT,
                   check=True, capture_output=True)
    with Writer(start_id=int(time.time() * 1000) * 1000, interval=1 / rate) as w:
        time.sleep(seconds)
        power_off(*SITES)
    # the newest acknowledgement on the wall clock (the writer keeps monotonic times)
    newest_ack = time.time() - (time.monotonic() - w.acked[-1][0]) if w.acked else None
    start = time.perf_counter()
    proc = subprocess.run([*DRCTL, "rebuild", "--on", "cloud1", "--repo", "3",
                           "--allow-data-loss", "--yes", "--format", "json"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"drctl rebuild exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout)
    # the table itself is lost when no segment was archived after its creation
    kept = psql("cloud1", f"select to_regclass('{TABLE}') is not null", db="app") == "t"
    lost = w.missing_on("cloud1") if kept else [i for _t, i in w.acked]
    last = report["rpo"]["last_replayed_commit"]
    commit = datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp() if last else 0.0
    rpo_s = max(0.0, newest_ack - commit) if newest_ack and last else float("nan")
    return {"rto_s": float(report["rto_s"]), "wall_s": wall, "acked": float(len(w.acked)),
            "lost": float(len(lost)), "rpo_s": rpo_s}


def drill_run(snapshot: str, rate: float) -> dict[str, float]:
    restore(snapshot, lambda _m: None)
    subprocess.run([*DRCTL, "backup", "--repo", "3", "--type", "full"], cwd=ROOT,
                   check=True, capture_output=True)
    proc = subprocess.run([*DRCTL, "drill", "--scenario", "cloud-restore", "--allow-data-loss",
                           "--rate", str(rate), "--duration", "10", "--yes", "--format",
                           "json"], cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"drctl drill exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    r = json.loads(proc.stdout)
    rebuilt = r["rebuild"]
    return {"rto_s": float(rebuilt["recovery_s"]), "wall_s": float(rebuilt["rebuild_rto_s"]),
            "outage_s": float(r["sql"]["write_outage_s"]),
            "acked": float(r["sql"]["acknowledged"]), "lost": float(r["sql"]["lost"]),
            # nan: no commit after the backup was in the store (the drill's writes came
            # after its last archived segment), so none was replayed
            "rpo_s": float(rebuilt["rpo_behind_newest_ack_s"]
                           if rebuilt["rpo_behind_newest_ack_s"] is not None else "nan"),
            "ok": float(r["ok"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--snapshot", default="provisioned-2sites")
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=90.0,
                    help="how long the writer writes before the power cut")
    ap.add_argument("--drill", action="store_true",
                    help="each run is the cloud-restore drill (its own load and timing)")
    args = ap.parse_args()
    if args.drill:
        drills = []
        for i in range(args.runs):
            r = drill_run(args.snapshot, args.rate)
            drills.append(r)
            print(f"run {i + 1}: {'passed' if r['ok'] else 'FAILED'}; taking writes "
                  f"{r['rto_s']:.2f} s after the power cut (the rebuild {r['wall_s']:.2f} s), "
                  f"the client's write outage {r['outage_s']:.2f} s; {int(r['lost'])} of "
                  f"{int(r['acked'])} acknowledged writes lost; "
                  + (f"recovery point {r['rpo_s']:.2f} s before the newest acknowledged "
                     "write" if r["rpo_s"] == r["rpo_s"] else "no commit after the backup "
                     "was replayed"), flush=True)
        for key, name in (("rto_s", "power cut to the rebuilt primary taking writes"),
                          ("wall_s", "drctl rebuild (its rto_s)"),
                          ("outage_s", "the drill's write outage (client side)"),
                          ("lost", "acknowledged writes lost"),
                          ("rpo_s", "recovery point behind the newest acknowledged write")):
            values = [r[key] for r in drills if r[key] == r[key]]  # not nan
            if not values:
                print(f"{name}: none", flush=True)
                continue
            print(f"{name}: median {statistics.median(values):.2f}, min {min(values):.2f}, "
                  f"max {max(values):.2f} (n={len(values)})", flush=True)
        print(f"(lab {PREFIX.rstrip('-')})")
        return
    runs = []
    for i in range(args.runs):
        r = one_run(args.snapshot, args.rate, args.seconds)
        runs.append(r)
        print(f"run {i + 1}: recovery time {r['rto_s']:.2f} s (command {r['wall_s']:.2f} s); "
              f"{int(r['lost'])} of {int(r['acked'])} acknowledged writes lost; recovery "
              f"point {r['rpo_s']:.2f} s before the newest acknowledged write", flush=True)
    for key, name in (("rto_s", "recovery time (drctl's rto_s)"),
                      ("wall_s", "drctl rebuild, wall clock"),
                      ("lost", "acknowledged writes lost"),
                      ("rpo_s", "recovery point behind the newest acknowledged write")):
        values = [r[key] for r in runs]
        print(f"{name}: median {statistics.median(values):.2f}, min {min(values):.2f}, "
              f"max {max(values):.2f} (n={len(values)})", flush=True)
    print(f"(lab {PREFIX.rstrip('-')})")


if __name__ == "__main__":
    main()
