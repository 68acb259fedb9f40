"""Who may hold a site's database VIP: the rule keepalived follows on every PostgreSQL
node, through the file `drctl-node vip-track` keeps (drctl.node.viptrack).

The VIP may sit on the writable primary and nowhere else. Each look gathers the facts of
that moment (the fence marker, the doubt left by a cut-off, a switchover's hold, whether
the network answers, what the local server says) and this module turns them into one
verdict; keepalived's own state follows the file at once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VipFacts:
    """What one look found on this node."""

    fenced: bool  # the fence marker exists: never eligible
    in_doubt: bool  # it found itself cut off; the guard has not confirmed it since
    held: bool  # a switchover holds the VIP here for a moment (its expiry not passed)
    # whether the isolation check's address answered; None: no such check configured
    reaches_network: bool | None
    # the local server's answer after the wait: True writable, False in recovery,
    # None no answer (down, refused, too slow)
    writable: bool | None


@dataclass(frozen=True)
class VipVerdict:
    eligible: bool
    reason: str
    # this look found the node cut off: leave the doubt marker, which keeps the VIP away
    # until the guard confirms this node is still the newest primary (or fences it)
    mark_doubt: bool = False


def vip_verdict(f: VipFacts) -> VipVerdict:
    """Whether this node may hold the VIP now, and why (in this order: a fenced node
    never; a node in doubt never; a switchover's hold always; a node cut off from the
    network never, and it is in doubt from then on; else only a writable server)."""
    if f.fenced:
        return VipVerdict(False, "fenced")
    if f.in_doubt:
        return VipVerdict(False, "cut off from the network since; waiting for the guard")
    if f.held:
        return VipVerdict(True, "held here by a switchover")
    if f.reaches_network is False:
        return VipVerdict(False, "cut off from the network (the check address did not "
                                 "answer)", mark_doubt=True)
    if f.writable is None:
        return VipVerdict(False, "the local server did not answer")
    if not f.writable:
        return VipVerdict(False, "in recovery")
    return VipVerdict(True, "writable primary")


@dataclass
class Debounce:
    """keepalived's rise and fall for a tracked file: the state changes after RISE
    eligible verdicts in a row, or FALL ineligible ones (1 and 1: at once)."""

    rise: int = 1
    fall: int = 1
    state: bool | None = None  # None: nothing decided yet (keepalived treats it as not)
    _run: int = 0
    _last: bool | None = None

    def see(self, eligible: bool) -> bool | None:
        """Count one verdict; the state to write when it changes, else None."""
        self._run = self._run + 1 if eligible == self._last else 1
        self._last = eligible
        if eligible == self.state:
            return None
        if self._run >= (self.rise if eligible else self.fall):
            self.state = eligible
            return eligible
        return None
