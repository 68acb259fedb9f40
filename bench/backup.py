"""pgBackRest full backup and restore of a database of about 1 GB (pgbench scale 70),
and pg_basebackup of the same database in the same run, on the provisioned lab.

  python bench/backup.py [--scale 70] [--runs 1]

Prints: the full backup (drctl backup --type full, from the standby), the restore of that
backup into a scratch instance until it accepts queries (drctl verify-backup's restore and
start), and pg_basebackup over TLS from the primary into a directory on the standby; then
the ratio pgBackRest / pg_basebackup. Needs a lab provisioned with the backup host.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

from _common import drctl_json

PREFIX = "drctl-lab-"


def sh(host: str, cmd: str) -> str:
    return subprocess.run(["docker", "exec", PREFIX + host, "sh", "-c", cmd], check=True,
                          capture_output=True, text=True).stdout.strip()


def load(primary: str, scale: int) -> None:
    sh(primary, "runuser -u postgres -- psql -XAtq -c 'drop database if exists bench' "
                "-c 'create database bench'")
    t = time.monotonic()
    sh(primary, f"runuser -u postgres -- /usr/lib/postgresql/15/bin/pgbench -q -i -s {scale} "
                "bench")
    size = sh(primary, "runuser -u postgres -- psql -XAtq -c "
                       "\"select pg_size_pretty(pg_database_size('bench'))\"")
    print(f"pgbench scale {scale}: {size} loaded in {time.monotonic() - t:.0f} s", flush=True)
    sh(primary, "runuser -u postgres -- psql -XAtq -c checkpoint")


def basebackup(primary_address: str, standby: str) -> float:
    sh(standby, "rm -rf /var/tmp/bench-basebackup")
    t = time.monotonic()
    sh(standby, "runuser -u postgres -- pg_basebackup -D /var/tmp/bench-basebackup -X stream "
                "-c fast -d \"host=" + primary_address + " user=replicator "
                "sslmode=verify-full sslrootcert=/etc/postgresql-common/drctl-tls/ca.crt\"")
    elapsed = time.monotonic() - t
    sh(standby, "rm -rf /var/tmp/bench-basebackup")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=70)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    st = drctl_json("status")
    primary = st["primary"]
    standby = next(n["host"] for n in st["nodes"] if n["role"] == "standby")
    address = next(n["address"] for n in st["nodes"] if n["host"] == primary)
    load(primary, args.scale)
    backups, restores, bases = [], [], []
    try:
        for i in range(args.runs):
            t = time.monotonic()
            b = drctl_json("backup", "--type", "full")
            backups.append(time.monotonic() - t)
            v = drctl_json("verify-backup")
            restores.append(v["ready_s"])
            bases.append(basebackup(address, standby))
            print(f"run {i + 1}: pgBackRest full backup {backups[-1]:.1f} s "
                  f"({b['backup']['size_bytes'] / 1e9:.2f} GB, stored "
                  f"{b['backup']['repo_bytes'] / 1e6:.0f} MB, from the {b['source']}); "
                  f"restore + start {v['restore_s']:.1f} + "
                  f"{v['ready_s'] - v['restore_s']:.1f} s; pg_basebackup {bases[-1]:.1f} s",
                  flush=True)
    finally:
        sh(primary, "runuser -u postgres -- psql -XAtq -c 'drop database if exists bench'")
    b, r, p = (statistics.median(x) for x in (backups, restores, bases))
    print(f"median: pgBackRest full backup {b:.1f} s, restore until queries {r:.1f} s, "
          f"pg_basebackup {p:.1f} s; backup / pg_basebackup = {b / p:.2f}, "
          f"restore / pg_basebackup = {r / p:.2f}")


if __name__ == "__main__":
    main()
