"""The backup repositories' numbers, kinds and hosts: one rule for pgBackRest's
configuration (the pgbackrest role, through the collection's `repositories` filter), the
playbooks that pick the host of a repository, and drctl.

Repository N is pgBackRest's repoN. The repository hosts (the inventory's `backup`
group, in order) hold repo1, repo2, ...; the object-store repositories
(pgbackrest_s3_repos) follow them. An object store has no host of its own: its
`backup_host` (a repository host; the first when it names none) backs up into it and
reads it, and the nodes archive to it directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any


class RepoError(ValueError):
    """The inventory's repositories cannot be numbered as written."""


@dataclass(frozen=True)
class Repo:
    number: int
    type: str  # "posix" (a repository host's directory) or "s3" (an object store)
    host: str  # the repository host that backs up into it and reads it
    name: str  # as status shows it: the repository host's name, or the object store's

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def numbered(repo_hosts: Sequence[str], s3_repos: Sequence[Mapping[str, Any]] = ()
             ) -> list[Repo]:
    """Every repository in pgBackRest's order."""
    repos = [Repo(i, "posix", str(h), str(h)) for i, h in enumerate(repo_hosts, 1)]
    for i, s3 in enumerate(s3_repos, len(repos) + 1):
        if not isinstance(s3, Mapping):
            raise RepoError(f"pgbackrest_s3_repos[{i - len(repo_hosts) - 1}] is not a mapping")
        host = str(s3.get("backup_host") or (repo_hosts[0] if repo_hosts else ""))
        if host not in repo_hosts:
            raise RepoError(f"the object-store repository repo{i} needs a repository host to "
                            f"back up into it: backup_host {host or '(none)'} is not in the "
                            "`backup` group")
        repos.append(Repo(i, "s3", host, str(s3.get("name") or f"s3-repo{i}")))
    return repos


def by_number(repos: Sequence[Repo], number: int) -> Repo:
    """Repository NUMBER, or RepoError naming the ones there are."""
    for r in repos:
        if r.number == number:
            return r
    there = ", ".join(label(r) for r in repos) or "none"
    raise RepoError(f"there is no repo{number}: the inventory has {there}")


def info_command(r: Repo, tool: str) -> list[str]:
    """drctl-backup's listing of repository R, run on R's host."""
    return [tool, "info", f"--repo={r.number}"]


def where(r: Repo) -> str:
    """How messages name repository R."""
    if r.type == "posix":
        return f"repository host {r.host} (repo{r.number})"
    return f"object store {r.name} (repo{r.number}, through {r.host})"


def label(r: Repo) -> str:
    """Repository R in a phrase: repo2 on backup2, repo3 (object store cloud)."""
    return f"repo{r.number} on {r.host}" if r.type == "posix" else (
        f"repo{r.number} (object store {r.name})")
