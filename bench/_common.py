"""Shared helpers for the benchmark scripts: run a command, time it, print figures."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRCTL = [sys.executable, "-m", "drctl"]


def timed(cmd: list[str], check: bool = True) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return elapsed


def report(name: str, samples: list[float], target: str = "") -> None:
    med = statistics.median(samples)
    line = (f"{name}: median {med:.3f} s, min {min(samples):.3f} s, max {max(samples):.3f} s "
            f"(n={len(samples)})")
    print(line + (f"  target {target}" if target else ""), flush=True)


def drctl_json(*args: str) -> dict:
    """Run drctl with --format json; exit with its stderr when it fails."""
    proc = subprocess.run([*DRCTL, *args, "--format", "json"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"drctl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return json.loads(proc.stdout)
