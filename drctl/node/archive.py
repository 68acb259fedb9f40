"""The object stores' archives as a witness that outlives both sites: the newest
timeline each holds (its highest timeline history file: every promotion archives one,
drctl's, the failover manager's, and a rebuild's from the store). Fence-check, the guard
of a running primary and automatic failover's validation ask them; the rules core
(decide.startup, decide.no_unseen_promotion, decide.superseded) decides what the answers mean."""

from __future__ import annotations

import os
import re

from drctl.node.common import Config, run
from drctl.rules.facts import ArchiveAnswer

# A timeline history file in a repository's archive, as `pgbackrest repo-ls --recurse`
# lists it under archive/<stanza>: "<archive id>/<timeline, 8 hex digits>.history".
HISTORY_FILE = re.compile(r"(?:^|/)([0-9A-F]{8})\.history$")


def newest_archived_timeline(listing: str) -> int:
    """The newest timeline a repo-ls listing of an archive shows: the highest history
    file's, 1 when there is none (timeline 1 has no history file)."""
    found = [int(m.group(1), 16) for line in listing.splitlines()
             if (m := HISTORY_FILE.search(line.strip()))]
    return max(found, default=1)


def answers(c: Config, timeout: float | None = None) -> list[ArchiveAnswer]:
    """The newest timeline each of c.archive_repos holds in its archive, asked now
    (`pgbackrest repo-ls`, as postgres, its log files left alone, killed after TIMEOUT,
    by default archive_check_timeout_s); [] when none is configured. A repository that
    does not answer says why (an archive that cannot be asked confirms nothing and
    fences nothing)."""
    found: list[ArchiveAnswer] = []
    seconds = c.archive_check_timeout_s if timeout is None else timeout
    limit = f"{seconds:g}"
    # as postgres, whose files pgBackRest's are (repmgrd's hooks run as postgres already)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    for n in c.archive_repos:
        rc, out, err = run([*as_postgres, "timeout", limit, "pgbackrest",
                            f"--repo={n}", "--log-level-file=off", "--log-level-console=off",
                            "--log-level-stderr=error", "repo-ls", "--recurse",
                            r"--filter=\.history$", f"archive/{c.stanza}"],
                           timeout=seconds + 5)
        if rc == 0:
            found.append(ArchiveAnswer(f"repo{n}", newest_archived_timeline(out)))
        else:
            why = (f"no answer within {limit} s" if rc == 124 else
                   (err.strip().splitlines() or [f"pgbackrest exited {rc}"])[-1][:200])
            found.append(ArchiveAnswer(f"repo{n}", None, why))
    return found
