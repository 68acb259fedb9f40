"""`drctl provision` on bare lab hosts, then re-runs that change nothing: with drctl's
accelerator (mitogen's strategy for provision's linear plays) and with ansible's own
(DRCTL_ANSIBLE_ACCELERATOR=none). Recreates the lab for every run from bare hosts.

  python bench/provision.py [--runs 2]

Prints each engine's median and spread.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

from _common import DRCTL, ROOT, report, timed


def provision(engine: str) -> float:
    env = {**os.environ, "DRCTL_ANSIBLE_ACCELERATOR": engine}
    start = time.perf_counter()
    proc = subprocess.run([*DRCTL, "provision"], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"provision ({engine}) exited {proc.returncode}:\n"
                         f"{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    runs = parser.parse_args().runs
    for engine in ("mitogen", "none"):
        bare, again = [], []
        for _ in range(runs):
            timed([*DRCTL, "lab", "up", "--fresh"])
            bare.append(provision(engine))
            again.append(provision(engine))
        label = "mitogen" if engine == "mitogen" else "ansible's own"
        report(f"provision, bare hosts ({label})", bare)
        report(f"provision, re-run, changed=0 ({label})", again)


if __name__ == "__main__":
    main()
