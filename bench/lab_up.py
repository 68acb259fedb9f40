"""`drctl lab up` timings: reuse, recreate the containers, and (with --from-scratch) build
the image from nothing. --from-scratch deletes the cached image first."""

import subprocess
import sys

from _common import DRCTL, ROOT, report, timed

if "--from-scratch" in sys.argv:
    subprocess.run([*DRCTL, "lab", "down", "--purge-image"], cwd=ROOT, check=True,
                   capture_output=True)
    report("lab up from nothing (image build included)", [timed([*DRCTL, "lab", "up"])])
report("lab up, containers recreated, image cached",
       [timed([*DRCTL, "lab", "up", "--fresh"]) for _ in range(3)])
report("lab up, nothing to do", [timed([*DRCTL, "lab", "up"]) for _ in range(3)])
