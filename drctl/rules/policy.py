"""The limits the rules apply, from the inventory's drctl_* options (drctl/options.py
documents each; the defaults here are the production defaults)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MiB = 1024 * 1024


@dataclass(frozen=True)
class Policy:
    # Replication lag (bytes) above which a switchover refuses (it waits for the rest).
    max_lag_bytes: int = 16 * MiB
    # WAL (bytes) a failover's candidate may lack of what another host saw the primary
    # write, and still be promoted without --allow-data-loss. 0: none at all; anything
    # more is a standing consent to lose the commits in those bytes.
    max_loss_bytes: int = 0
    # A watcher that has not checked the nodes for longer than this is stale: what it
    # saw still proves WAL exists, but it no longer proves nothing more was written.
    watch_max_age_s: float = 10.0
    # A watcher's view covers the primary's end only if it lost the primary at most this
    # long after it last saw it (it was watching, not restarting or cut off, when the
    # primary went).
    watch_gap_s: float = 5.0
    # Automatic failover gives a primary up only once nobody has seen it answer for this
    # long and it ignored a probe made at that moment: a blip shorter than this, less the
    # watcher's interval, is ridden out whatever repmgrd's detection concluded.
    blip_tolerance_s: float = 4.0
    # Automatic failover may promote a standby that holds all the WAL the watcher saw but
    # was not the synchronous standby: the commits acknowledged after the watcher's last
    # sighting may be lost. False: only an operator (`drctl failover`) accepts that.
    auto_accept_async_loss: bool = False
    # Replication is synchronous (drctl_synchronous): every commit waits for the standby
    # in the primary's site, which then holds every acknowledged commit.
    synchronous: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Policy:
        def pick(name: str, default: float) -> float:
            value = options.get(name)
            return default if value in (None, "") else float(value)

        return cls(max_lag_bytes=int(pick("drctl_max_lag_bytes", cls.max_lag_bytes)),
                   max_loss_bytes=int(pick("drctl_max_loss_bytes", cls.max_loss_bytes)),
                   watch_max_age_s=pick("drctl_watch_max_age_s", cls.watch_max_age_s),
                   watch_gap_s=pick("drctl_watch_gap_s", cls.watch_gap_s),
                   blip_tolerance_s=pick("drctl_blip_tolerance_s", cls.blip_tolerance_s),
                   auto_accept_async_loss=_flag(options.get("drctl_auto_accept_async_loss")),
                   synchronous=_flag(options.get("drctl_synchronous")))


def _flag(value: Any) -> bool:
    """An inventory's boolean as Ansible writes it (true, "true", "yes", 1); absent: False."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return bool(value)
