"""drctl drill, each scenario several times on the lab: medians and spread of the write
outage, the app error window, failed app requests, acknowledged writes lost, total time.

  python bench/drill.py [--runs 5] [--scenario switchover --scenario failover ...]

Targets (from the issues): switchover write outage under 1 s with 0 lost and 0 failed app
requests; through the pooler, 0 failed attempts and 0 failed app requests with the longest
single wait at most 1 s (the direct writer's figures beside them); failover (primary power
loss, then drctl failover) app error window under 6 s with 0 lost in synchronous mode.
After each failover run the old primary is powered on and failed back with --switch-back
(not measured), so every run starts from the same topology.
"""

from __future__ import annotations

import argparse
import statistics

from _common import drctl_json

from drctl_lab.hosts import power_on


def restore_topology(report: dict) -> None:
    before = report["topology_before"]["primary"]
    after = report["topology_after"]["primary"]
    if report["scenario"] == "failover":
        power_on(before)  # and wait for its boot: the failback logs in over SSH
        drctl_json("failback", "--node", before, "--switch-back", "--yes")
    elif after != before:
        drctl_json("switchover", "--to", before, "--yes")


def spread(name: str, values: list[float], unit: str = "s") -> str:
    return (f"{name} median {statistics.median(values):.2f} {unit} "
            f"(min {min(values):.2f}, max {max(values):.2f})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scenario", action="append",
                    choices=["switchover", "failover", "failback-cycle"])
    args = ap.parse_args()
    for scenario in args.scenario or ["switchover", "failover", "failback-cycle"]:
        rows = []
        for i in range(args.runs):
            r = drctl_json("drill", "--scenario", scenario, "--duration", "15", "--yes")
            rows.append(r)
            pooled = r.get("pooled") or {}
            print(f"{scenario} run {i + 1}: outage {r['sql']['write_outage_s']:.2f} s, "
                  f"failed attempts {r['sql']['errors']} direct / "
                  f"{pooled.get('failed_attempts', '-')} pooled, longest write "
                  f"{r['sql'].get('max_wait_s', 0):.2f} s direct / "
                  f"{pooled.get('max_wait_s', float('nan')):.2f} s pooled, app "
                  f"errors {r['app']['failed']} in {r['app']['error_window_s']:.2f} s, longest "
                  f"request {r['app']['max_latency_ms'] / 1000:.2f} s, lost "
                  f"{r['sql']['lost']}, total {r['duration_s']:.1f} s  ({r['html_path']})",
                  flush=True)
            restore_topology(r)
        print(f"{scenario} (n={args.runs}): "
              + "; ".join([
                  spread("write outage", [r["sql"]["write_outage_s"] for r in rows]),
                  spread("failed attempts direct", [r["sql"]["errors"] for r in rows], ""),
                  spread("longest write direct", [r["sql"]["max_wait_s"] for r in rows]),
                  *([spread("failed attempts pooled",
                            [r["pooled"]["failed_attempts"] for r in rows], ""),
                     spread("longest write pooled", [r["pooled"]["max_wait_s"] for r in rows]),
                     f"pooled lost {sum(r['pooled']['lost'] for r in rows)} in all"]
                    if all("acknowledged" in (r.get("pooled") or {}) for r in rows) else
                    ["not measured through a pooler"]),
                  spread("app error window", [r["app"]["error_window_s"] for r in rows]),
                  spread("failed app requests", [r["app"]["failed"] for r in rows], ""),
                  spread("longest app request", [r["app"]["max_latency_ms"] / 1000
                                                 for r in rows]),
                  f"lost {sum(r['sql']['lost'] for r in rows)} in all",
                  spread("total", [r["duration_s"] for r in rows])]), flush=True)


if __name__ == "__main__":
    main()
