"""`drctl provision` on bare lab hosts, then re-run (changes nothing). Recreates the lab."""

from _common import DRCTL, report, timed

timed([*DRCTL, "lab", "up", "--fresh"])
report("provision, bare hosts", [timed([*DRCTL, "provision"])])
report("provision, re-run (changed=0)", [timed([*DRCTL, "provision"]) for _ in range(2)])
