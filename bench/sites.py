"""RTO and RPO of each kind of recovery on the two-site lab: the same-city standby taking
over after the primary's power loss, and the remote site taking over after all of the
first site lost power. Each run is a drill under the same write load through the VIPs:

  python bench/sites.py [--runs 3] [--rate 100]

same-city: `drctl drill --scenario failback-cycle` (pg1 powered off, `drctl failover`,
           pg1 back, failed back and switched back);
remote:    `drctl drill --scenario site-failback-cycle --allow-data-loss` (dc1 powered off,
           `drctl failover --site dc2`, dc1 back, failed back, switchover home).
Both end where they started, so the runs repeat. Prints, per kind, the median and spread
of the RTO (the longest gap between acknowledged writes), the acknowledged writes lost and
the RPO in time, and the failover command's own duration. Needs a provisioned two-site
lab (`drctl lab up --sites 2`, `drctl provision`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess

from _common import DRCTL, ROOT, drctl_json

KINDS = {"same-city": ["--scenario", "failback-cycle"],
         "remote": ["--scenario", "site-failback-cycle", "--allow-data-loss"]}


def figure(values: list[float], unit: str = " s") -> str:
    return (f"median {statistics.median(values):.3f}{unit} (min {min(values):.3f}, "
            f"max {max(values):.3f}, n={len(values)})")


def drill(*args: str) -> dict:
    """A drill's report; one that lost acknowledged writes exits 1 but is a measurement."""
    proc = subprocess.run([*DRCTL, "drill", *args, "--format", "json"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = {}
    if proc.returncode != 0 and (report.get("error") or "sql" not in report):
        raise SystemExit(f"drctl drill {' '.join(args)} exited {proc.returncode}:\n"
                         f"{report.get('error') or proc.stderr[-2000:]}")
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=int, default=100)
    args = ap.parse_args()
    if len(drctl_json("status").get("sites") or {}) < 2:
        raise SystemExit("needs a two-site lab: drctl lab up --sites 2, then drctl provision")
    samples: dict[str, dict[str, list[float]]] = {}
    for i in range(args.runs):
        for kind, scenario in KINDS.items():
            report = drill(*scenario, "--duration", "10", "--rate", str(args.rate),
                           "--app-rate", "1", "--yes")
            failover = next(o for o in report["operations"]
                            if o["command"].startswith("drctl failover"))
            values = {"RTO (longest gap between acknowledged writes)": report["rto_s"],
                      "RPO (acknowledged writes lost)": float(report["sql"]["lost"]),
                      "RPO in time": report["rpo_s"],
                      "the failover command": failover["duration_s"]}
            for key, value in values.items():
                samples.setdefault(kind, {}).setdefault(key, []).append(value)
            print(f"[{kind}] run {i + 1}/{args.runs}: RTO {report['rto_s']:.3f} s, lost "
                  f"{report['sql']['lost']}, RPO {report['rpo_s']:.3f} s, failover "
                  f"{failover['duration_s']:.2f} s", flush=True)
    print("\nkind | figure | value")
    for kind, figures in samples.items():
        for key, values in figures.items():
            shown = (f"{sum(values):.0f} in {len(values)} runs" if "writes lost" in key
                     else figure(values))
            print(f"{kind} | {key} | {shown}", flush=True)


if __name__ == "__main__":
    main()
