"""The cloud repository (repo3, the two-site lab's object store): a full backup into it,
its verification by a restore, and the store's footprint.

  python bench/object_store.py [--runs 3]

Prints, over RUNS rounds: `drctl backup --repo 3 --type full` and `drctl verify-backup
--repo 3` (median and spread), then the object store's footprint: the resident memory of
its two SeaweedFS processes (the store, the S3 gateway) and the disk its data takes, and
what pgBackRest says the repository holds. Needs a provisioned two-site lab
(`drctl lab up --sites 2 && drctl provision`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

from _common import drctl_json, report

PREFIX = f"{os.environ.get('DRCTL_LAB_NAME', 'drctl-lab')}-"


def sh(host: str, cmd: str) -> str:
    return subprocess.run(["docker", "exec", PREFIX + host, "sh", "-c", cmd], check=True,
                          capture_output=True, text=True).stdout.strip()


def rss_mib(unit: str) -> float:
    pid = sh("s3", f"systemctl show -p MainPID --value {unit}")
    kib = sh("s3", f"awk '/^VmRSS/ {{print $2}}' /proc/{pid}/status")
    return int(kib) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    backups: list[float] = []
    verifies: list[float] = []
    for i in range(args.runs):
        start = time.perf_counter()
        b = drctl_json("backup", "--repo", "3", "--type", "full")
        backups.append(time.perf_counter() - start)
        start = time.perf_counter()
        v = drctl_json("verify-backup", "--repo", "3")
        verifies.append(time.perf_counter() - start)
        print(f"run {i + 1}: backup {b['backup']['label']} "
              f"({b['backup'].get('size_bytes', 0) / 1048576:.1f} MiB of data, "
              f"{(b['backup'].get('repo_bytes') or 0) / 1048576:.1f} MiB stored) in "
              f"{backups[-1]:.2f} s; verified in {verifies[-1]:.2f} s "
              f"(restore {v.get('restore_s')} s)", flush=True)
    report("drctl backup --repo 3 --type full", backups)
    report("drctl verify-backup --repo 3", verifies)
    listing = drctl_json("backups", "--repo", "3")
    print(f"object store: SeaweedFS {rss_mib('seaweedfs'):.0f} MiB resident, S3 gateway "
          f"{rss_mib('seaweedfs-s3'):.0f} MiB resident; data on disk "
          f"{sh('s3', 'du -sh /var/lib/seaweedfs').split()[0]}; repo3 holds "
          f"{len(listing['backups'])} backups, WAL up to "
          f"{(listing.get('archive') or {}).get('last_segment')}")


if __name__ == "__main__":
    main()
