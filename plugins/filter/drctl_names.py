"""Jinja filters of the collection drctl.cluster: the names drctl's rules core gives.

    {{ inventory_hostname | drctl.cluster.application_name }}

application_name: the name a node's standby streams under (its primary_conninfo's
application_name, the names in synchronous_standby_names, pg_stat_replication's rows).
The rule is drctl.rules.facts.app_name, the one the controller reads replication with,
so a playbook and drctl never name a standby differently.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

try:
    from drctl.rules import facts
except ImportError:  # run from the repository without drctl installed (plain ansible)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from drctl.rules import facts


def application_name(host: Any) -> str:
    """The application_name the inventory host HOST streams under."""
    return facts.app_name(str(host))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"application_name": application_name}
