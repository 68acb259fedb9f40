"""The fault campaign's schedule (a pure function of its seed) and what each fault does
to a host, through a recording stand-in for the lab."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from drctl_lab import faults
from drctl_lab.faults import Fault, Lab, apply, by_kind, draw, heal

POOLS = {"db": ["pg1", "pg2"], "any": ["backup1", "pg1", "pg2"], "witness": ["backup1"],
         "none": []}


def test_a_seed_reproduces_its_schedule_and_another_differs() -> None:
    one = draw(7, 3600, POOLS)
    assert one == draw(7, 3600, POOLS)
    assert one != draw(8, 3600, POOLS)
    assert len(one) > 60  # a fault every 10-40 s over an hour
    assert set(by_kind(one)) == {k.name for k in faults.KINDS}


@pytest.mark.parametrize("seed", range(20))
def test_faults_never_share_a_host_and_all_heal_before_the_end(seed: int) -> None:
    schedule = draw(seed, 900, POOLS)
    held: dict[str, float] = {}
    for f in sorted(schedule, key=lambda f: f.at):
        kind = faults.BY_NAME[f.kind]
        assert len(f.hosts) == kind.targets and set(f.hosts) <= set(POOLS[kind.pool])
        for h in f.hosts:
            assert held.get(h, 0.0) <= f.at, (h, f)  # free again after its last fault
            held[h] = f.heals_at + faults.SETTLE_S
        assert f.heals_at <= 900 - faults.TAIL_S
        assert (f.lasts == 0) == (kind.lasts[1] == 0)


def test_a_kind_without_a_free_host_is_skipped() -> None:
    """One host only: while it is powered off nothing else is drawn on it."""
    only = (faults.Kind("power", "any", 1, (100, 100), 1, ""),)
    schedule = draw(1, 600, {"any": ["pg1"]}, kinds=only, gap_s=(10, 10))
    assert [f.at for f in schedule][:3] == [10.0, 120.0, 230.0]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def lab(self) -> Lab:
        def sh(host: str, command: str) -> str:
            self.calls.append(("sh", (host, command)))
            return "active\n"

        def drctl(args: Sequence[str]) -> tuple[int, dict[str, Any]]:
            self.calls.append(("drctl", list(args)))
            return 4, {"gates": [{"ok": False, "detail": "pg2 is not streaming"}]}

        return Lab(sh=sh, power_off=lambda hs: self.calls.append(("off", list(hs))),
                   power_on=lambda h: self.calls.append(("on", h)),
                   docker=lambda a: self.calls.append(("docker", list(a))), drctl=drctl,
                   container_prefix="lab-")


def test_each_fault_is_applied_and_healed_on_its_hosts() -> None:
    r = Recorder()
    lab = r.lab()
    assert apply(lab, Fault(1, "power-two", ("pg1", "backup1"), 5)) == \
        "powered off pg1, backup1"
    assert heal(lab, Fault(1, "power-two", ("pg1", "backup1"), 5)) == \
        "powered on pg1, backup1"
    apply(lab, Fault(1, "isolate", ("pg2",), 5))
    heal(lab, Fault(1, "isolate", ("pg2",), 5))
    apply(lab, Fault(1, "freeze", ("pg1",), 5))
    heal(lab, Fault(1, "freeze", ("pg1",), 5))
    assert apply(lab, Fault(1, "kill-postgres", ("pg1",), 5)) == \
        "killed PostgreSQL's postmaster on pg1"
    assert heal(lab, Fault(1, "kill-postgres", ("pg1",), 5)) == \
        "started PostgreSQL on pg1: active"
    apply(lab, Fault(1, "kill-repmgrd", ("pg2",), 0))
    assert heal(lab, Fault(1, "kill-repmgrd", ("pg2",), 0)) == ""
    assert apply(lab, Fault(1, "switchover", (), 0)) == \
        "switchover: exit 4 (pg2 is not streaming)"
    assert apply(lab, Fault(1, "drop-out", ("pg1",), 5)) == "dropped what pg1 sends"
    assert heal(lab, Fault(1, "drop-out", ("pg1",), 5)) == "reconnected pg1 both ways"
    assert apply(lab, Fault(1, "drop-in", ("backup1",), 5)) == \
        "dropped what is sent to backup1"
    heal(lab, Fault(1, "drop-in", ("backup1",), 5))
    assert r.calls == [
        ("off", ["pg1", "backup1"]), ("on", "pg1"), ("on", "backup1"),
        ("sh", ("pg2", faults.ISOLATE)), ("sh", ("pg2", faults.UNISOLATE)),
        ("docker", ["pause", "lab-pg1"]), ("docker", ["unpause", "lab-pg1"]),
        ("sh", ("pg1", "kill -KILL $(head -1 /var/lib/postgresql/15/main/postmaster.pid)")),
        ("sh", ("pg1", "systemctl start postgresql@15-main >/dev/null 2>&1; "
                       "systemctl is-active postgresql@15-main; true")),
        ("sh", ("pg2", "systemctl kill --signal=SIGKILL drctl-repmgrd")),
        ("drctl", ["switchover", "--yes"]),
        ("sh", ("pg1", "iptables -I OUTPUT -o eth0 -j DROP")),
        ("sh", ("pg1", "iptables -D OUTPUT -o eth0 -j DROP; true")),
        ("sh", ("backup1", "iptables -I INPUT -i eth0 -j DROP")),
        ("sh", ("backup1", "iptables -D INPUT -i eth0 -j DROP; true"))]


def test_an_operators_backup_says_what_it_took_or_why_not() -> None:
    calls: list[list[str]] = []
    answers = iter([(0, {"source": "standby", "backup": {"label": "20261207-033000F_I"}}),
                    (6, {"error": "the repository host backup1 does not answer"})])

    def drctl(args: Sequence[str]) -> tuple[int, dict[str, Any]]:
        calls.append(list(args))
        return next(answers)

    lab = Lab(sh=lambda h, c: "", power_off=lambda hs: None, power_on=lambda h: None,
              docker=lambda a: None, drctl=drctl)
    assert apply(lab, Fault(1, "backup", (), 0)) == \
        "backup: exit 0 (20261207-033000F_I from the standby)"
    assert apply(lab, Fault(2, "backup", (), 0)) == \
        "backup: exit 6 (the repository host backup1 does not answer)"
    assert calls == [["backup"], ["backup"]]


def test_an_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        apply(Recorder().lab(), Fault(1, "meteor", ("pg1",), 1))
