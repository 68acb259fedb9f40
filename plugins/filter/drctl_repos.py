"""Jinja filter of the collection drctl.cluster: the backup repositories, numbered.

    {{ groups['backup'] | drctl.cluster.repositories(pgbackrest_s3_repos) }}

A list of {number, type, host, name}: repoN of pgBackRest, posix for a repository
host's directory, s3 for an object store, and the repository host that backs up into
it. The rule is drctl.rules.repos.numbered, the one drctl reads the inventory with.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

try:
    from drctl.rules import repos as rules
except ImportError:  # run from the repository without drctl installed (plain ansible)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from drctl.rules import repos as rules


def repositories(repo_hosts: Any, s3_repos: Any = None) -> list[dict[str, Any]]:
    """REPO_HOSTS (the `backup` group) and S3_REPOS (pgbackrest_s3_repos), numbered."""
    return [r.as_dict() for r in rules.numbered(list(repo_hosts or []), list(s3_repos or []))]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"repositories": repositories}
