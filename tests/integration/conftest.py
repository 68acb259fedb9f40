"""Integration tests run drctl against the lab: real containers with systemd, sshd,
PostgreSQL and keepalived. `make integration` brings up a fresh lab first.

Nothing here fakes the cluster: commands are the real CLI in a subprocess, faults are
real (`systemctl stop` in a container), and checks look where a user would look.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from drctl_lab import hosts as hostsmod
from drctl_lab.hosts import (
    INVENTORY,
    drctl_cli,
    healthy,
    json_answer,
    lab_address,
    vip_holders,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
# The lab as `drctl provision` leaves it, kept as a snapshot: every module that needs a
# clean cluster restores it (seconds) instead of provisioning or failing back. A lab of
# two sites keeps its own (snapshot_name()).
SNAPSHOT = "provisioned"
# What a provisioned lab is made from: a change to any of these makes the snapshot stale.
PROVISION_INPUTS = ("roles", "playbooks", "drctl/node", "drctl/rules")
# What the lab is known to be now, without a restore (a two-site lab's restore costs about
# 25 s and 20 CPU-s under the suite's load), rewritten when each test ends:
# "untouched": the snapshot the running containers were just committed to, no test run
#   on them since (set by provisioned_lab);
# "as_found": (module, snapshot) after a test marked leaves_cluster_as_found that passed
#   (pytest_runtest_makereport); the next test of that module skips its restore when
#   status finds the cluster healthy with pg1 at that moment.
_LAB_NOW: dict[str, object] = {}


# Every CLI call the tests make, by module and command: count, wall seconds and this
# machine's CPU seconds (the call and its children), written to
# test-artifacts/cli-calls-LANE.json when the session ends (docs/testing.md).
_CALLS: dict[str, dict[str, list[float]]] = {}
_MODULE_NOW: list[str] = ["(session)"]
# Every wait the tests make (wait_for, holds_for, a snapshot's restore), by module and
# what it waited for: count and seconds, written to test-artifacts/waits-LANE.json.
_WAITS: dict[str, dict[str, list[float]]] = {}


def _record_wait(what: str, seconds: float) -> None:
    row = _WAITS.setdefault(_MODULE_NOW[0], {}).setdefault(what, [0, 0.0])
    row[0] += 1
    row[1] += seconds


hostsmod.on_wait = _record_wait


def drctl(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the real CLI as a script would: no terminal on stdin, stdout and stderr captured
    as text."""
    before, start = os.times(), time.monotonic()
    try:
        proc = drctl_cli(args, timeout=timeout, cwd=ROOT)
        if proc.returncode != 0:
            # whole, in the test's captured output (shown when it fails): an assertion's
            # message shortens a report to a few hundred characters, often before the why
            print(f"drctl {' '.join(args)} exited {proc.returncode}; stderr:\n{proc.stderr}")
        return proc
    finally:
        after = os.times()
        cpu = (after.children_user - before.children_user
               + after.children_system - before.children_system)
        command = " ".join(a for a in args[:2] if not a.startswith("-"))
        row = _CALLS.setdefault(_MODULE_NOW[0], {}).setdefault(command, [0, 0.0, 0.0])
        row[0] += 1
        row[1] += time.monotonic() - start
        row[2] += cpu


def ansible_playbook(playbook: str, *args: str, timeout: float = 900,
                     accelerate: bool = False) -> subprocess.CompletedProcess:
    """Run playbooks/PLAYBOOK with plain ansible-playbook on the lab's inventory, as an
    Ansible or AWX user would (no drctl). ACCELERATE: on mitogen's strategy, as drctl runs
    provision, for a test's set-up where the playbook is not what the test is about."""
    from drctl.runner import accelerator_env

    env = {**os.environ, **(accelerator_env() if accelerate else {})}
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(INVENTORY),
         f"playbooks/{playbook}", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def drctl_json(*args: str, timeout: float = 900) -> tuple[int, dict]:
    """The exit code and the JSON document; when drctl failed, what it said on stderr rides
    along as "_stderr" (first in a failed assertion's message: why it failed)."""
    proc = drctl(*args, "--format", "json", timeout=timeout)
    try:
        return proc.returncode, json_answer(proc)
    except ValueError as exc:
        raise AssertionError(f"no JSON on stdout (rc {proc.returncode}):\n{proc.stdout}\n"
                             f"{proc.stderr}") from exc


def holds_for(what: str, predicate: Callable[[], object], seconds: float,
              interval: float = 0.2) -> None:
    """Check PREDICATE without pause for SECONDS; fail at the first moment it is false.

    For what must NOT happen within a window that the product's own timing defines
    (a VRRP master-down interval, a failover manager's election): the window is the
    condition, and every moment of it is looked at.
    """
    start = time.monotonic()
    try:
        while True:
            value = predicate()
            if not value:
                raise AssertionError(f"{what} stopped holding {time.monotonic() - start:.1f} "
                                     f"s into its {seconds} s window (got {value!r})")
            if time.monotonic() - start >= seconds:
                return
            time.sleep(interval)
    finally:
        _record_wait(f"holds: {what}", time.monotonic() - start)


def healthy_now(primary: str) -> bool:
    """Status, asked once, is healthy with PRIMARY writable and the only VIP holder."""
    return healthy(*drctl_json("status"), primary)


def healthy_with(primary: str, timeout: float = 60) -> None:
    """Wait until status is healthy with PRIMARY writable and the only VIP holder."""
    last: dict = {}

    def check():
        code, st = drctl_json("status")
        last.update(code=code, status=st)
        return healthy(code, st, primary)
    try:
        wait_for(f"a healthy cluster with primary {primary}", check, timeout=timeout,
                 interval=1)
    except AssertionError as exc:  # say what the last status said, not just "False"
        raise AssertionError(f"{exc}; last status (exit {last.get('code')}): "
                             f"{json.dumps(last.get('status'), default=str)[:4000]}") from None


def provision_inputs() -> str:
    """A digest of everything a provisioned lab is made from (code, inventory, vault, CA,
    lab image)."""
    from drctl_lab import lab as labmod

    digest = hashlib.sha256(labmod.image_tag().encode())
    files = sorted(p for d in PROVISION_INPUTS for p in (ROOT / d).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts)
    files += [INVENTORY, INVENTORY.parent / "group_vars" / "all" / "main.yml",
              INVENTORY.parent / "group_vars" / "all" / "vault.yml",
              INVENTORY.parent / "group_vars" / "dc2" / "main.yml",
              INVENTORY.parent / "group_vars" / "cloud" / "main.yml",
              ROOT / ".drctl" / "ca" / "lab" / "ca.crt"]
    for path in files:
        if path.exists():
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def lab_say(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr)


def snapshot_name() -> str:
    """The provisioned snapshot of this lab's shape: 'provisioned' (one site) or
    'provisioned-2sites'."""
    from drctl_lab import lab as labmod

    count = labmod.site_count()
    return SNAPSHOT if count == 1 else f"{SNAPSHOT}-{count}sites"


@pytest.fixture(scope="session")
def provisioned_lab(lab) -> dict:
    """A snapshot of the lab provisioned from the current code; provisions (and takes the
    snapshot) only when there is none or the code, inventory or image changed since.
    Returns what the snapshot records of the provision that made it."""
    from drctl_lab import lab as labmod

    name = snapshot_name()
    current = [s for s in labmod.snapshots() if s["current_image"]]
    snap = next((s for s in current if s["name"] == name and s["complete"]), None)
    if snap and snap["meta"].get("inputs") == provision_inputs():
        return snap["meta"]
    if snap:  # the lab as last provisioned, then provision the changes on top of it
        labmod.restore(name, lab_say)
    elif name != SNAPSHOT and any(s["name"] == SNAPSHOT for s in current):
        # a second site added to a provisioned lab: its first site as provisioned, the
        # new site's hosts bare, and provision does the rest
        labmod.restore(SNAPSHOT, lab_say, partial=True)
    began = time.monotonic()
    code, result = drctl_json("provision", timeout=1500)
    assert code == 0, result["failures"]
    # from bare hosts: no snapshot, and not a warm lab (its packages were installed)
    from_bare = snap is None and not labmod.warm()
    record_provision_time(time.monotonic() - began, from_bare)
    # a lab that operations have left with another primary (`make demo`'s drills end on
    # pg2): the snapshot is of the inventory's cluster, pg1 primary
    code, st = drctl_json("status")
    if code == 0 and st["primary"] not in (None, "pg1"):
        code, report = drctl_json("switchover", "--to", "pg1", "--yes", timeout=600)
        assert code == 0, report
    healthy_with("pg1")
    meta = {"inputs": provision_inputs(), "status": result["status"],
            "failures": result["failures"], "changed": result["changed"],
            "from_bare": from_bare}
    labmod.snapshot(name, lab_say, meta)
    healthy_with("pg1")
    _LAB_NOW["untouched"] = name
    return meta


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep _LAB_NOW about the test that just ended: whether it failed anywhere, and once
    it is torn down, whether it left the cluster as it found it."""
    report = (yield).get_result()
    item.stash[_FAILED] = item.stash.get(_FAILED, False) or report.failed
    if report.when != "teardown":
        return
    _LAB_NOW.clear()
    if item.get_closest_marker("leaves_cluster_as_found") and not item.stash[_FAILED]:
        _LAB_NOW["as_found"] = (item.module.__name__, snapshot_name())


_FAILED = pytest.StashKey[bool]()


def record_provision_time(seconds: float, from_bare: bool) -> None:
    """How long this lab's provision took (test-artifacts/provision.json): bin/test-phases
    measures each module's time against it, the machine's own yardstick."""
    out = ROOT / "test-artifacts" / "provision.json"
    out.parent.mkdir(exist_ok=True)
    runs = json.loads(out.read_text()) if out.exists() else []
    runs.append({"seconds": round(seconds, 1), "from_bare": from_bare,
                 "sites": snapshot_name()})
    out.write_text(json.dumps(runs, indent=1) + "\n")


def restore_snapshot(name: str | None = None) -> None:
    """Bring the lab back to snapshot NAME (by default the provisioned one; a stale lock
    left by a killed drctl goes too) and wait until the cluster is healthy with pg1
    primary."""
    from drctl_lab import lab as labmod

    name = name or snapshot_name()
    if _LAB_NOW.pop("untouched", None) == name:
        lab_say(f"the lab is snapshot {name!r} as it was just taken: no restore")
    else:
        start = time.monotonic()
        labmod.restore(name, lab_say)
        _record_wait(f"restore of snapshot {name!r}", time.monotonic() - start)
    lock = ROOT / ".drctl" / "locks" / "lab.lock"
    if lock.exists():
        assert drctl("unlock").returncode == 0, "a live drctl holds the lab's lock"
    # the VIP on pg1 first, looked at by nsenter (milliseconds): status costs about a
    # CPU-second here and one on the hosts, and asked at once it finds the VIP not yet
    # taken; when the VIP does not come, status says why below
    deadline = time.monotonic() + 30
    while vip_holders() != ["pg1"] and time.monotonic() < deadline:
        time.sleep(0.5)
    healthy_with("pg1")


@pytest.fixture(scope="module")
def clean_cluster(provisioned_lab) -> dict:
    """The provisioned lab restored from its snapshot: pg1 primary with the VIP, pg2
    streaming, nothing left over from any other module."""
    restore_snapshot()
    return provisioned_lab


def left_as_found(module: str) -> str | None:
    """The lab snapshot the test that just ended left the cluster as found in, when it was
    a test of MODULE marked leaves_cluster_as_found that passed; else None. Taken: it
    answers once, for the next test only."""
    found = _LAB_NOW.pop("as_found", None)
    return found[1] if isinstance(found, tuple) and found[0] == module else None


@pytest.fixture
def fresh_cluster(request, provisioned_lab) -> dict:
    """clean_cluster for every test, for modules whose tests each leave a failed-over
    cluster behind. After a test of the same module marked leaves_cluster_as_found that
    passed, no restore when status says now that the cluster is healthy with pg1."""
    if left_as_found(request.module.__name__) == snapshot_name() and healthy_now("pg1"):
        lab_say("the test before left the cluster as it found it: no restore")
        return provisioned_lab
    restore_snapshot()
    return provisioned_lab




@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Name the module whose test is set up (its module fixtures too), for _CALLS."""
    _MODULE_NOW[0] = item.module.__name__.rsplit(".", 1)[-1]


def pytest_sessionfinish(session):
    """Write _CALLS (largest CPU first in each module) and _WAITS (longest first)."""
    lane = os.environ.get("DRCTL_LAB_NAME", "drctl-lab")
    if _CALLS:
        table = {module: {cmd: {"calls": int(n), "wall_s": round(w, 1), "cpu_s": round(c, 1)}
                          for cmd, (n, w, c) in sorted(rows.items(), key=lambda kv: -kv[1][2])}
                 for module, rows in _CALLS.items()}
        _merge_artifact(f"cli-calls-{lane}.json", table)
    if _WAITS:
        _merge_artifact(f"waits-{lane}.json", {
            module: {what: {"count": int(n), "seconds": round(sec, 1)}
                     for what, (n, sec) in sorted(rows.items(), key=lambda kv: -kv[1][1])}
            for module, rows in _WAITS.items()})


def _merge_artifact(name: str, table: dict) -> None:
    """test-artifacts/NAME, this session's modules written over an earlier session's."""
    out = ROOT / "test-artifacts" / name
    out.parent.mkdir(exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**previous, **table}, indent=1) + "\n")


@pytest.fixture(scope="session", autouse=True)
def lab(request):
    """The lab must be up (make integration runs `drctl lab up --fresh` first), with as
    many sites as the collected modules ask for (marker lab_sites)."""
    import drctl as package
    from drctl_lab import lab as labmod

    # two labs side by side (make test's lanes) each run from their own tree: the code
    # imported here must be this tree's, or the tests would drive the other lab
    assert Path(package.__file__).resolve().is_relative_to(ROOT), (
        f"drctl imported from {package.__file__}, not from {ROOT}")
    wanted = max((m.args[0] for item in request.session.items
                  for m in item.iter_markers("lab_sites")), default=None)
    if not INVENTORY.exists() or (wanted and labmod.site_count() != wanted):
        proc = drctl("lab", "up", *(("--sites", str(wanted)) if wanted else ()))
        assert proc.returncode == 0, proc.stderr
    os.environ.setdefault("DRCTL_INVENTORY", str(INVENTORY))
    return INVENTORY


def scrape_text(host: str) -> str:
    """What HOST's node_exporter (port 9100) serves Prometheus; '' when it does not answer."""
    import urllib.request

    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # lab traffic only
    try:
        with direct.open(f"http://{lab_address(host)}:9100/metrics", timeout=5) as resp:
            return resp.read().decode()
    except OSError:
        return ""


def scrape(host: str) -> dict[str, float]:
    """drctl's series from HOST's node_exporter:
    {'drctl_pg_primary{cluster="lab",node="pg1"}': 1.0, ...}; {} when it does not answer."""
    text = scrape_text(host)
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line.startswith("drctl_")}


def series(scraped: dict[str, float], name: str, **labels: str) -> float | None:
    """The value of the one series NAME with LABELS (a subset) in SCRAPED, else None."""
    hits = [v for k, v in scraped.items() if k.split("{")[0] == name
            and all(f'{lk}="{lv}"' in k for lk, lv in labels.items())]
    assert len(hits) <= 1, f"{name} {labels}: {len(hits)} series"
    return hits[0] if hits else None
