"""`drctl status` wall time on the lab pair (target under 2 s). Needs a provisioned lab."""

from _common import DRCTL, report, timed

timed([*DRCTL, "status"])  # first call opens the shared SSH connections
report("drctl status (warm ssh)", [timed([*DRCTL, "status"]) for _ in range(10)], "< 2 s")
