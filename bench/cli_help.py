"""`drctl --help` wall time (target under 0.3 s): ansible_runner must be imported lazily."""

import shutil
import sys
from pathlib import Path

from _common import report, timed

drctl = shutil.which("drctl") or str(Path(sys.executable).parent / "drctl")
timed([drctl, "--help"])  # warm the page cache
report("drctl --help", [timed([drctl, "--help"]) for _ in range(20)], "< 0.3 s")
