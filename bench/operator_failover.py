"""An operator's failover with automatic failover armed costs no more than one without it.

  python bench/operator_failover.py [--runs 3]

The fault that made it cost 99 s (issue #34): the replication link cut on the standby's
side for 10 s, then the primary powered off (`docker kill`) and the link restored; then
`drctl failover --yes --allow-data-loss`. Run --runs times with automatic failover armed
and --runs times without it; each run ends with `drctl failback --switch-back` (not
measured). Prints, per run and as median and spread: the command's duration and, when
armed, the seconds from the journal's `start` to `auto-paused` (repmgrd stopped on every
host that answers). Leaves automatic failover as it found it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from datetime import datetime

from _common import DRCTL, ROOT, drctl_json

PREFIX = os.environ.get("DRCTL_LAB_NAME", "drctl-lab") + "-"


def sh(host: str, command: str) -> str:
    return subprocess.run(["docker", "exec", PREFIX + host, "sh", "-c", command],
                          capture_output=True, text=True, check=True).stdout.strip()


def looked(*args: str) -> dict:
    """A read-only verb's JSON whatever its exit code (status exits 7 on a problem)."""
    import json

    proc = subprocess.run([*DRCTL, *args, "--format", "json"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    try:
        return dict(json.loads(proc.stdout))
    except ValueError:
        return {}


def healthy_with(primary: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = looked("status")
        if st.get("healthy") and st.get("primary") == primary:
            return
        time.sleep(1)
    raise SystemExit(f"the cluster did not become healthy with {primary} primary")


def auto_state() -> str:
    return str(looked("auto", "status").get("state"))


def seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def one_run() -> tuple[float, float | None]:
    """The fault, the failover, the failback; (command seconds, start -> auto-paused)."""
    pg1 = sh("pg1", "hostname -i").split()[0]
    sh("pg2", f"iptables -I INPUT -s {pg1} -j DROP && iptables -I OUTPUT -d {pg1} -j DROP")
    try:
        time.sleep(10)  # the fault is a 10-s cut: its length is the scenario, not a wait
        subprocess.run(["docker", "kill", PREFIX + "pg1"], check=True, capture_output=True)
    finally:
        sh("pg2", "iptables -D INPUT 1 && iptables -D OUTPUT 1")
    began = time.monotonic()
    report = drctl_json("failover", "--yes", "--allow-data-loss")
    took = time.monotonic() - began
    if report.get("status", {}).get("primary") != "pg2":
        raise SystemExit(f"failover did not make pg2 the primary: {report}")
    journal = report.get("journal") or []
    start = next((e["time"] for e in journal if e["step"] == "start"), None)
    paused = next((e["time"] for e in journal if e["step"] == "auto-paused"), None)
    subprocess.run(["docker", "start", PREFIX + "pg1"], check=True, capture_output=True)
    deadline = time.monotonic() + 90
    while subprocess.run(["docker", "exec", PREFIX + "pg1", "systemctl", "is-system-running"],
                         capture_output=True, text=True, check=False).stdout.strip() \
            not in ("running", "degraded"):
        if time.monotonic() > deadline:
            raise SystemExit("pg1 did not boot within 90 s")
        time.sleep(0.5)
    back = drctl_json("failback", "--node", "pg1", "--switch-back", "--yes")
    if back.get("result") not in ("successful", None) and back.get("error"):
        raise SystemExit(f"failback failed: {back}")
    healthy_with("pg1")
    return took, seconds(start, paused) if start and paused else None


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):.2f} s (min {min(values):.2f}, "
            f"max {max(values):.2f}, n={len(values)})")


def series(runs: int, label: str) -> list[float]:
    took_all, paused_all = [], []
    for i in range(runs):
        took, paused = one_run()
        took_all.append(took)
        if paused is not None:
            paused_all.append(paused)
        print(f"[{label}] run {i + 1}: failover {took:.2f} s"
              + (f", start -> auto-paused {paused:.2f} s" if paused is not None else ""),
              flush=True)
    print(f"[{label}] failover command: {spread(took_all)}"
          + (f"; start -> auto-paused: {spread(paused_all)}" if paused_all else ""),
          flush=True)
    return took_all


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    healthy_with("pg1")
    was = auto_state()
    if was == "disabled":
        drctl_json("auto", "enable")
    armed = series(args.runs, "armed")
    drctl_json("auto", "disable", "--yes")
    try:
        plain = series(args.runs, "not armed")
    finally:
        if was != "disabled":
            drctl_json("auto", "enable")
    print(f"armed {statistics.median(armed):.2f} s against not armed "
          f"{statistics.median(plain):.2f} s (medians of {args.runs})", flush=True)


if __name__ == "__main__":
    main()
