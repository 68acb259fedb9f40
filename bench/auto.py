"""Automatic failover on the lab: power loss to the first acknowledged write, and false
failovers on short blips and on a lossy link.

  python bench/auto.py [--runs 10] [--blips 10] [--blip-seconds 3]
                       [--lossy 10] [--lossy-seconds 60] [--loss 0.3] [--peer-runs 3]

Arms automatic failover (`drctl auto enable`, idempotent), then
- runs `drctl drill --scenario auto-failover` --runs times: the primary container is
  killed, nobody runs a command; the drill's SQL writer measures the write outage (power
  loss to the first acknowledged write through the VIP) and the writes lost; each run
  ends with `drctl failback --switch-back` (not measured);
- cuts the replication link between primary and standby (iptables in the standby's
  container, both directions) for --blip-seconds, --blips times, then isolates the
  primary from every host for as long, --blips times, and counts promotions;
- makes the primary's link drop --loss of its packets in each direction (iptables
  `statistic`, no netem on this kernel) for --lossy-seconds, --lossy times, and counts
  promotions;
- with --peer-runs N, runs N more drills with repmgrd at repmgr's own detection defaults
  (monitor every 2 s, 6 reconnection attempts 10 s apart), the peer's figure, then puts
  drctl's settings back.
Targets (issue #15): median outage at most 6 s; 0 false failovers.
Leaves automatic failover armed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time

from _common import DRCTL, ROOT, drctl_json

# repmgr's own failure detection settings (its documentation's defaults)
REPMGR_DEFAULTS = {"repmgr_monitor_interval_secs": 2, "repmgr_reconnect_attempts": 6,
                   "repmgr_reconnect_interval": 10}

PREFIX = os.environ.get("DRCTL_LAB_NAME", "drctl-lab") + "-"


def sh(host: str, command: str) -> str:
    return subprocess.run(["docker", "exec", PREFIX + host, "sh", "-c", command],
                          capture_output=True, text=True, check=True).stdout.strip()


def drill() -> dict:
    """One auto-failover drill; its report even when it failed (e.g. writes lost)."""
    proc = subprocess.run([*DRCTL, "drill", "--scenario", "auto-failover", "--duration", "15",
                           "--yes", "--format", "json"], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(f"drill exited {proc.returncode}:\n{proc.stderr}") from None


def spread(values: list[float]) -> str:
    return (f"median {statistics.median(values):.2f} s (min {min(values):.2f}, "
            f"max {max(values):.2f}, n={len(values)})")


def drills(runs: int, label: str) -> list[float]:
    outages, lost, app_failed = [], 0, []
    for i in range(runs):
        r = drill()
        outages.append(r["sql"]["write_outage_s"])
        lost += r["sql"]["lost"]
        app_failed.append(r["app"]["failed"])
        print(f"[{label}] auto-failover run {i + 1}: power loss to first acknowledged write "
              f"{r['sql']['write_outage_s']:.2f} s, lost {r['sql']['lost']}, failed app "
              f"requests {r['app']['failed']}  ({r['html_path']})", flush=True)
    if outages:
        print(f"[{label}] auto-failover: write outage {spread(outages)}; lost {lost} in all; "
              f"failed app requests median {statistics.median(app_failed):.0f}", flush=True)
    return outages


def arm(settings: dict[str, int] | None = None) -> None:
    """Automatic failover armed: with drctl's detection settings, or with SETTINGS."""
    extra: list[str] = []
    for key, value in (settings or {}).items():
        extra += ["-e", f"{key}={value}"]
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i",
                           "inventories/lab/hosts.yml", "playbooks/auto.yml", "-e",
                           "auto=enable", *extra], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"playbooks/auto.yml failed:\n{proc.stdout[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--blips", type=int, default=10)
    ap.add_argument("--blip-seconds", type=float, default=3)
    ap.add_argument("--lossy", type=int, default=10)
    ap.add_argument("--lossy-seconds", type=float, default=60)
    ap.add_argument("--loss", type=float, default=0.3)
    ap.add_argument("--peer-runs", type=int, default=0)
    args = ap.parse_args()
    arm()
    ours = drills(args.runs, "drctl")
    for kind in ("link", "isolate"):
        blips(kind, args.blips, args.blip_seconds)
    lossy(args.lossy, args.lossy_seconds, args.loss)
    if args.peer_runs:
        arm(REPMGR_DEFAULTS)
        try:
            peer = drills(args.peer_runs, "repmgr's defaults")
        finally:
            arm()
        print(f"power loss -> first acknowledged write: drctl {spread(ours)}; repmgr's "
              f"detection defaults {spread(peer)}; ratio "
              f"{statistics.median(peer) / statistics.median(ours):.1f}x", flush=True)


def standby_promoted(standby: str) -> bool:
    return sh(standby, "runuser -u postgres -- psql -XAtq -c "
                       "'select not pg_is_in_recovery()'") == "t"


def promoted_within(standby: str, seconds: float, every: float = 1.0) -> bool:
    """Whether STANDBY promotes itself within SECONDS (asked every EVERY seconds)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(every)
        if standby_promoted(standby):
            return True
    return False


EVENT_LOG = "/var/log/drctl/auto.jsonl"


def log_length(host: str) -> int:
    return int(sh(host, f"cat {EVENT_LOG} 2>/dev/null | wc -l") or 0)


def validations(host: str, since: int) -> str:
    """What drctl-auto validate decided on HOST after line SINCE of its event log: each
    refusal counted by the first gate that failed."""
    counts: dict[str, int] = {}
    for line in sh(host, f"tail -n +{since + 1} {EVENT_LOG} 2>/dev/null").splitlines():
        event = json.loads(line)
        if event.get("step") != "auto-validate":
            continue
        failed = [g["name"] for g in event.get("gates", []) if not g["ok"]]
        key = f"refused ({failed[0]})" if failed else str(event.get("result"))
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no election reached it"


def settle_healthy() -> None:
    for _ in range(60):
        if drctl_json("status").get("healthy"):
            return
        time.sleep(1)
    raise SystemExit("the cluster did not become healthy again within a minute")


def lossy(count: int, seconds: float, loss: float) -> None:
    """The primary's link drops LOSS of the packets in each direction for SECONDS."""
    promotions = 0
    for i in range(count):
        st = drctl_json("status")
        primary = st["primary"]
        standby = next(n["host"] for n in st["nodes"] if n["role"] == "standby")
        since = log_length(standby)
        rule = f"-m statistic --mode random --probability {loss} -j DROP"
        sh(primary, f"iptables -I INPUT -i eth0 {rule} && iptables -I OUTPUT -o eth0 {rule}")
        try:
            promoted = promoted_within(standby, seconds, every=2)
        finally:
            sh(primary, "iptables -D INPUT 1 && iptables -D OUTPUT 1")
        # a decision that was under way when the loss ended would show within seconds
        promoted = promoted or promoted_within(standby, 10)
        promotions += promoted
        print(f"lossy link {i + 1}: {loss:.0%} of packets dropped each way for {seconds:g} s "
              f"on {primary}: {'PROMOTED (false failover)' if promoted else 'no promotion'}; "
              f"validations on {standby}: {validations(standby, since)}", flush=True)
        if promoted:
            raise SystemExit("false failover: stopping (the cluster needs `drctl failback`)")
        settle_healthy()
    print(f"lossy link ({loss:.0%}, {seconds:g} s): {promotions} false failovers in {count}",
          flush=True)


def blips(kind: str, count: int, seconds: float) -> None:
    """link: cut primary <-> standby only (the witness still sees the primary);
    isolate: cut the primary from everything (standby and witness lose it together)."""
    promotions = 0
    for i in range(count):
        st = drctl_json("status")
        primary = st["primary"]
        standby = next(n["host"] for n in st["nodes"] if n["role"] == "standby")
        address = next(n["address"] for n in st["nodes"] if n["host"] == primary)
        if kind == "link":
            host, cut = standby, (f"iptables -I INPUT -s {address} -j DROP && "
                                  f"iptables -I OUTPUT -d {address} -j DROP")
        else:
            host, cut = primary, ("iptables -I INPUT -i eth0 -j DROP && "
                                  "iptables -I OUTPUT -o eth0 -j DROP")
        since = log_length(standby)
        sh(host, f"{cut} && sleep {seconds} && iptables -D INPUT 1 && iptables -D OUTPUT 1")
        # a promotion the blip set off would show within detection + election (~6 s):
        # watch for it for 15 s
        promoted = promoted_within(standby, 15)
        promotions += promoted
        print(f"{kind} blip {i + 1}: {seconds:g} s, primary {primary}, standby {standby}: "
              f"{'PROMOTED (false failover)' if promoted else 'no promotion'}; validations: "
              f"{validations(standby, since)}", flush=True)
        if promoted:
            raise SystemExit("false failover: stopping (the cluster needs `drctl failback`)")
        settle_healthy()
    print(f"{kind} blips of {seconds:g} s: {promotions} false failovers in {count}", flush=True)


if __name__ == "__main__":
    main()
