"""`make campaign DURATION=S SEED=N`: the fault campaign on the provisioned lab (issue #34;
docs/design-campaign.md), with automatic failover armed.

Writers (drctl_lab.campaign.RecordingWriter) insert unique ids through the VIP while the
seed's schedule (drctl_lab.faults) is applied and healed; an operator (this program)
fails back a node left fenced or stopped once its fault healed. At the end every fault
is healed, the cluster is given 300 s to become healthy, the final primary's ids are
read and the checker (drctl_lab.checker) judges, with the standing consents automatic
promotions used (their validation events name the window). The JSON and an HTML
timeline go to .drctl/campaigns/; the exit code is 0 only when nothing was lost without
consent, nothing unexpected appeared, no two timelines acknowledged writes at once and
the cluster came back healthy.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from drctl.drill import CLIENT_SETTINGS
from drctl_lab import hosts
from drctl_lab.campaign import RecordingWriter, consents_from_events, made_since, summary
from drctl_lab.checker import check
from drctl_lab.faults import Fault, Lab, _why, apply, by_kind, draw, heal
from drctl_lab.lab import PREFIX

TABLE = "app.campaign_writes"
EVENT_LOG = "/var/log/drctl/auto.jsonl"  # the repmgr role's repmgr_event_log


def connect(**kw: Any) -> Any:
    """A connection through the VIP with the client settings the README gives an
    application (a frozen or vanished server noticed within about 3 s), as drctl's
    drill's writer uses."""
    return hosts.vip_connect(**CLIENT_SETTINGS, **kw)


def _say(message: str) -> None:
    print(time.strftime("%H:%M:%S ") + message, file=sys.stderr, flush=True)


def _drctl(args: Sequence[str], timeout: float = 900) -> tuple[int, dict[str, Any]]:
    proc = hosts.drctl_cli([*args, "--format", "json"], timeout=timeout)
    try:
        data = hosts.json_answer(proc)
    except ValueError:
        return proc.returncode, {"_stderr": proc.stderr[-3000:]}
    return proc.returncode, data if isinstance(data, dict) else {"document": data}


def _status() -> tuple[int, dict[str, Any]]:
    return _drctl(["status"], timeout=120)


class Campaign:
    """One campaign on the lab: the schedule, the writers, the operator's hand."""

    def __init__(self, seed: int, duration_s: float, writers: int) -> None:
        self.hosts = hosts
        self.seed, self.duration_s = seed, duration_s
        groups = yaml.safe_load(hosts.INVENTORY.read_text())["all"]["children"]
        self.db = sorted({h for g in ("pg_primary", "pg_standby")
                          for h in (groups.get(g, {}).get("hosts") or {})})
        witness = sorted(groups.get("backup", {}).get("hosts") or {})
        self.pools = {"db": self.db, "any": self.db + witness, "witness": witness,
                      "none": []}
        self.schedule = draw(seed, duration_s, self.pools)
        self.lab = Lab(sh=lambda h, c: hosts.sh(h, c, timeout=60),
                       power_off=lambda hs: hosts.power_off(*hs), power_on=hosts.power_on,
                       docker=self._docker, drctl=lambda a: _drctl(a),
                       container_prefix=PREFIX)
        self.n_writers = writers
        self.applied: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.active: dict[int, Fault] = {}

    @staticmethod
    def _docker(args: Sequence[str]) -> None:
        subprocess.run(["docker", *args], check=True, capture_output=True, timeout=60)

    def event(self, what: str, **kw: Any) -> None:
        self.events.append({"at": time.time(), "what": what, **kw})
        _say(what + (f" ({kw['detail']})" if kw.get("detail") else ""))

    # -------------------------------------------------------------- before and after

    def arm(self) -> None:
        code, st = _status()
        if not hosts.healthy(code, st):
            raise SystemExit(f"the lab is not healthy (`drctl status` exit {code}: "
                             f"{'; '.join(st.get('problems') or [])}): provision it first")
        code, auto = _drctl(["auto", "status"])
        if auto.get("state") == "disabled":
            _say("arming automatic failover (drctl auto enable)")
            code, out = _drctl(["auto", "enable", "--yes"])
            if code != 0:
                raise SystemExit(f"drctl auto enable failed (exit {code}): {_why(out)}")
        deadline = time.monotonic() + 120
        while _drctl(["auto", "status"])[1].get("state") != "armed":
            if time.monotonic() > deadline:
                raise SystemExit("automatic failover did not become armed in 120 s")
            time.sleep(2)

    def first_id(self) -> int:
        with self.hosts.vip_connect() as conn:
            conn.execute(f"create table if not exists {TABLE} (id bigint primary key, "
                         "at timestamptz default now())")
            row = conn.execute(f"select coalesce(max(id), 0) + 1 from {TABLE}").fetchone()
            conn.commit()
        return int(row[0])

    def tend(self, final: bool = False) -> bool:
        """The operator's look: healthy, or a node left fenced or stopped (no fault on
        it any more) is failed back. True when healthy."""
        code, st = _status()
        if hosts.healthy(code, st):
            return True
        busy = {h for f in self.active.values() for h in f.hosts}
        for n in st.get("nodes") or []:
            host = n.get("host")
            if host in busy or not n.get("reachable") or st.get("primary") in (None, host):
                continue
            if n.get("fenced") or n.get("role") == "down":
                code, out = _drctl(["failback", "--yes", "--node", str(host)])
                self.event(f"operator: failback of {host}: exit {code}",
                           kind="failback", hosts=[host], code=code,
                           detail="" if code == 0 else _why(out))
                return False
        if final:
            _say("not healthy yet: " + "; ".join(st.get("problems") or [f"exit {code}"]))
        return False

    def final_ids(self, lo: int, hi: int) -> tuple[str | None, list[int]]:
        st = _status()[1]
        primary = st.get("primary")
        with self.hosts.vip_connect() as conn:
            rows = conn.execute(f"select id from {TABLE} where id between %s and %s",
                                (lo, hi)).fetchall()
        return primary, [int(r[0]) for r in rows]

    def promotion_events(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for h in self.db:
            try:
                text = self.lab.sh(h, f"cat {EVENT_LOG} 2>/dev/null; true")
            except AssertionError:
                continue
            for line in text.splitlines():
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return sorted(out, key=lambda e: str(e.get("at", "")))

    # -------------------------------------------------------------- the run

    def run(self) -> dict[str, Any]:
        self.arm()
        base = self.first_id()
        _say(f"seed {self.seed}: {len(self.schedule)} faults over {self.duration_s:.0f} s "
             f"({', '.join(f'{k} {n}' for k, n in by_kind(self.schedule).items())})")
        writers = [RecordingWriter(connect, TABLE, base + i * 1_000_000_000, clock=time.time)
                   for i in range(self.n_writers)]
        queue: list[tuple[float, int, str, int]] = []
        for i, f in enumerate(self.schedule):
            heapq.heappush(queue, (f.at, 0, "apply", i))
        t0 = time.time()
        for w in writers:
            w.start()
        try:
            while queue:
                at, _, action, i = heapq.heappop(queue)
                delay = t0 + at - time.time()
                if delay > 0:
                    time.sleep(delay)
                f = self.schedule[i]
                if action == "apply":
                    self._apply(i, f)
                    if f.lasts > 0:
                        heapq.heappush(queue, (f.heals_at, 1, "heal", i))
                    else:
                        self.active.pop(i, None)
                else:
                    self._heal(i, f)
                    self.tend()
            deadline = time.monotonic() + 300
            healthy = self.tend(final=True)
            while not healthy and time.monotonic() < deadline:
                time.sleep(5)
                healthy = self.tend(final=True)
            time.sleep(2)  # writes acknowledged by the healthy cluster, to read back
        finally:
            for w in writers:
                w.stop()
        attempts = sorted((a for w in writers for a in w.attempts), key=lambda a: a.began)
        ids = [a.id for a in attempts]
        primary, present = self.final_ids(min(ids), max(ids)) if ids else (None, [])
        consents = consents_from_events(self.promotion_events())
        verdict = check(attempts, present, consents)
        report = summary(self.seed, self.duration_s, self.schedule, self.applied, verdict,
                         attempts, consents, healthy, primary, t0)
        report["diverged"] = self.drop_own_copies(t0)
        report["events"] = [{**e, "at": round(e["at"] - t0, 3)} for e in self.events]
        report["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0))
        return report

    def drop_own_copies(self, started: float) -> list[dict[str, Any]]:
        """What each copy failback set aside during the campaign held (for the report),
        then drop those copies: the campaign caused them and an hour of faults would
        fill the lab's disks."""
        listing = _drctl(["diverged", "list"])[1]
        own = made_since(listing.get("copies") or [], started)
        for c in own:
            code = _drctl(["diverged", "drop", str(c["host"]), str(c["name"]), "--yes"])[0]
            c["dropped"] = code == 0
        return own

    def _apply(self, i: int, f: Fault) -> None:
        started = time.time()
        self.active[i] = f
        try:
            done = apply(self.lab, f)
        except Exception as exc:  # a fault that could not be applied is reported, not fatal
            done = f"could not apply {f.kind} on {', '.join(f.hosts)}: {exc}"[:300]
        self.applied.append({"kind": f.kind, "hosts": list(f.hosts), "applied": started,
                             "healed": None if f.lasts else time.time(), "index": i})
        self.event(done, kind=f.kind, hosts=list(f.hosts))

    def _heal(self, i: int, f: Fault) -> None:
        try:
            done = heal(self.lab, f)
        except Exception as exc:
            done = f"could not heal {f.kind} on {', '.join(f.hosts)}: {exc}"[:300]
        self.active.pop(i, None)
        for a in self.applied:
            if a["index"] == i:
                a["healed"] = time.time()
        self.event(done, kind=f.kind, hosts=list(f.hosts), heal=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make campaign", description="A seeded fault campaign on the lab with "
        "automatic failover armed, judged by the set-workload checker.")
    parser.add_argument("--duration", type=float, default=600,
                        help="seconds of faults (default 600)")
    parser.add_argument("--seed", type=int, default=None,
                        help="the schedule's seed (default: drawn, and printed)")
    parser.add_argument("--writers", type=int, default=2)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    from drctl.paths import state_dir

    report = Campaign(seed, args.duration, args.writers).run()
    stem = write_report(report, state_dir() / "campaigns")
    print(json.dumps(headline(report), indent=2))
    _say(f"report: {stem.with_suffix('.json')} and {stem.with_suffix('.html')}")
    return 0 if report["ok"] else 1


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """What a campaign's report says first: the verdict and its figures."""
    return {k: report[k] for k in (
        "ok", "seed", "attempted", "acknowledged", "lost", "lost_with_consent", "unexpected",
        "recovered", "overlap_s", "healthy_at_end", "faults_by_kind", "outage_s_by_kind",
        "problems")}


def write_report(report: dict[str, Any], out_dir: Path) -> Path:
    """The report's JSON and HTML timeline in OUT_DIR, named by its start and seed: their
    common path without the suffix."""
    from drctl_lab.campaign_html import render

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{report['started'].replace(':', '')}-seed{report['seed']}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".html").write_text(render(report))
    return stem


if __name__ == "__main__":
    sys.exit(main())
