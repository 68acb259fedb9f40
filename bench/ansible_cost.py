"""What one Ansible task costs on the lab: wall time, and CPU on the control machine and on
the nodes, per host and task (median and spread over --runs runs).

Most of `make test` and of every provision is this cost times the number of tasks: on 2
cores the suite is CPU-bound, and most of the CPU is Ansible's own, not PostgreSQL's.
A run is one playbook of --tasks trivial `command: /bin/true` tasks on every lab host,
run with plain ansible-playbook (ansible.cfg's settings: SSH pipelining, ControlPersist).
Node CPU comes from each lab container's cgroup, so keep the lab otherwise idle.
Needs `drctl lab up` (bare hosts will do).
Usage: python bench/ansible_cost.py [--runs 5] [--tasks 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT

INVENTORY = ROOT / "inventories" / "lab" / "hosts.yml"
PREFIX = os.environ.get("DRCTL_LAB_NAME", "drctl-lab") + "-"
HOSTS = ("pg1", "pg2", "backup1", "app1")


def container_cpu_seconds(name: str) -> float:
    cid = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", name], capture_output=True,
                         text=True, check=True).stdout.strip()
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text()) / 1e9
    v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")
    usage = next(ln for ln in v2.read_text().splitlines() if ln.startswith("usage_usec"))
    return int(usage.split()[1]) / 1e6


def nodes_cpu() -> float:
    return sum(container_cpu_seconds(PREFIX + h) for h in HOSTS)


def playbook(tasks: int) -> str:
    lines = ["- name: Trivial tasks on every host", "  hosts: all", "  gather_facts: false",
             "  tasks:"]
    for i in range(tasks):
        lines += [f"    - name: Run /bin/true ({i + 1})",
                  "      ansible.builtin.command: /bin/true", "      changed_when: false"]
    return "\n".join(lines) + "\n"


def one_run(path: Path, extra: tuple[str, ...] = ()) -> tuple[float, float, float]:
    """(wall, controller CPU, node CPU) of one ansible-playbook run, in seconds."""
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_nodes = nodes_cpu()
    start = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                           str(INVENTORY), *extra, str(path)], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"ansible-playbook exited {proc.returncode}:\n{proc.stdout[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    controller = (after.ru_utime - before_children.ru_utime
                  + after.ru_stime - before_children.ru_stime)
    return wall, controller, nodes_cpu() - before_nodes


def spread(name: str, values: list[float]) -> str:
    return (f"{name} median {statistics.median(values):.3f} s "
            f"(min {min(values):.3f}, max {max(values):.3f})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--tasks", type=int, default=20)
    a = p.parse_args()
    if not INVENTORY.exists():
        raise SystemExit("no lab inventory: run `drctl lab up` first")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trivial.yml"
        path.write_text(playbook(a.tasks))
        one_run(path)  # opens the SSH masters, fills the controller's module cache
        runs = [one_run(path) for _ in range(a.runs)]
    host_tasks = a.tasks * len(HOSTS)
    print(f"ansible task cost, {a.tasks} tasks x {len(HOSTS)} hosts, n={a.runs} runs; "
          "per host and task:")
    print("  " + spread("wall (per task, all hosts at once)", [w / a.tasks for w, _, _ in runs]))
    print("  " + spread("control machine CPU", [c / host_tasks for _, c, _ in runs]))
    print("  " + spread("node CPU", [n / host_tasks for _, _, n in runs]))


if __name__ == "__main__":
    main()
