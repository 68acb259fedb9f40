"""The guard's stand-in for repmgrd's election, where repmgrd cannot start.

repmgrd does not start on a standby while its upstream is not running, so after a power
cut of a whole location whose primary never comes back, no election is ever held. The
guard (root, every look) notes whether repmgrd has been running; where it has not for
decide.STAND_IN_AFTER_S, and the rules core's decide.stand_in says so, it runs
`drctl-auto stand-in` as postgres: the validation repmgrd's election runs
(decide.auto_promotion, from facts gathered then) and, when it passes, the same
promotion as repmgrd's promote_command. Then it starts repmgrd again, which can now run
(this node is the primary). A refused stand-in is asked again after ASK_AGAIN_S.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drctl.node.common import Config, read_json, run
from drctl.rules import decide

# repmgrd counts as running once it has stayed up this long: while it cannot start, its
# unit starts it every 2 s and it exits at once
RUNNING_FOR_S = 5.0
# a refused stand-in (the primary answers, the witness does not, ...) is asked again
ASK_AGAIN_S = 15.0


def repmgrd_up_for(c: Config) -> float | None:
    """Seconds repmgrd's process has been running (None: it is not running)."""
    rc, out, _ = run(["systemctl", "show", c.repmgrd_unit, "-p", "SubState",
                      "-p", "ExecMainStartTimestampMonotonic"], timeout=5)
    if rc != 0:
        return None
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    if props.get("SubState") != "running":
        return None
    started_us = int(props.get("ExecMainStartTimestampMonotonic") or 0)
    return max(0.0, time.monotonic() - started_us / 1e6)


def last_primary(c: Config) -> str | None:
    """The primary the watchers saw last, as the witness holds their records (None: no
    record, or the witness does not answer; the stand-in's validation asks again)."""
    from drctl.node import repmgr_hooks
    from drctl.rules.facts import ClusterFacts

    s = read_json(c.auto_settings)
    if not isinstance(s, dict):
        return None
    return decide.last_primary_seen(ClusterFacts((), tuple(
        repmgr_hooks.witness_records(c, s)[0])))[0]


@dataclass
class StandIn:
    """The guard's memory between looks: since when repmgrd has not been running."""

    c: Config
    now: Callable[[], float] = time.monotonic
    up_for: Callable[[Config], float | None] = repmgrd_up_for
    primary: Callable[[Config], str | None] = last_primary
    runner: Callable[[list[str], float], tuple[int, str, str]] = \
        field(default=lambda argv, timeout: run(argv, timeout=timeout))
    ran_at: float = 0.0
    asked_at: float | None = None

    def __post_init__(self) -> None:
        self.ran_at = self.now()  # the guard's start: repmgrd's absence counts from here

    def look(self, standby: bool) -> str | None:
        """One look on a node where automatic failover is set up; what was done, if
        anything."""
        s = read_json(self.c.auto_settings)
        if not isinstance(s, dict):
            return None
        now = self.now()
        local = decide.LocalAuto(fenced=os.path.exists(self.c.fence_file),
                                 paused=os.path.exists(self.c.auto_paused),
                                 location=str(s.get("location")),
                                 primary_location=str(s.get("primary_location")))
        # repmgrd's absence counts only on a standby where it should run (not paused, not
        # fenced): a node demoted or resumed a moment ago starts counting then
        up = self.up_for(self.c) if standby else None
        if (up is not None and up >= RUNNING_FOR_S) or not standby or local.paused \
                or local.fenced:
            self.ran_at = now
        down = None if up is not None and up >= RUNNING_FOR_S else now - self.ran_at
        peers = tuple(str(p) for p in s.get("location_peers") or ())
        # the half of the rule that costs nothing to know first: where it says no, the
        # whole rule would too, and the witness is not asked
        if not decide.stand_in_due(local, standby=standby, repmgrd_down_s=down).ok:
            return None
        if self.asked_at is not None and now - self.asked_at < ASK_AGAIN_S:
            return None
        gate = decide.stand_in(local, standby=standby, repmgrd_down_s=down,
                               location_peers=peers, lost=self.primary(self.c))
        if not gate.ok:
            self.asked_at = now
            return f"no stand-in: {gate.detail}"
        self.asked_at = now
        rc, out, err = self.runner(["runuser", "-u", "postgres", "--",
                                    os.path.join(self.c.libexec, "drctl-auto"), "stand-in"],
                                   300)
        if rc != 0:
            return f"stand-in refused or failed (exit {rc}): {(out or err).strip()[-300:]}"
        self.runner(["systemctl", "reset-failed", self.c.repmgrd_unit], 10)
        self.runner(["systemctl", "restart", self.c.repmgrd_unit], 60)
        return f"stood in for repmgrd: {gate.detail}; promoted ({out.strip()[-300:]})"
