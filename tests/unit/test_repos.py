"""The repositories' numbers (drctl.rules.repos): the repository hosts first, then the
object stores, each with the host that backs up into it; the collection's filter and
drctl read the same rule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from drctl.rules import repos

ROOT = Path(__file__).resolve().parents[2]
CLOUD = {"name": "cloud", "endpoint": "s3", "bucket": "b", "key": "k", "secret": "s"}


def test_object_stores_come_after_the_repository_hosts():
    every = repos.numbered(["backup1", "backup2"], [CLOUD, {**CLOUD, "name": "other",
                                                            "backup_host": "backup2"}])
    assert [(r.number, r.type, r.host, r.name) for r in every] == [
        (1, "posix", "backup1", "backup1"), (2, "posix", "backup2", "backup2"),
        (3, "s3", "backup1", "cloud"), (4, "s3", "backup2", "other")]
    assert repos.by_number(every, 3).name == "cloud"
    assert repos.label(every[2]) == "repo3 (object store cloud)"
    assert repos.where(every[1]) == "repository host backup2 (repo2)"
    assert repos.where(every[2]) == "object store cloud (repo3, through backup1)"
    with pytest.raises(repos.RepoError, match="no repo5: the inventory has repo1 on backup1"):
        repos.by_number(every, 5)


def test_an_object_store_needs_a_repository_host_to_back_up_into_it():
    with pytest.raises(repos.RepoError, match="backup_host pg1 is not in the `backup` group"):
        repos.numbered(["backup1"], [{**CLOUD, "backup_host": "pg1"}])
    with pytest.raises(repos.RepoError, match=r"backup_host \(none\)"):
        repos.numbered([], [CLOUD])
    with pytest.raises(repos.RepoError, match="not a mapping"):
        repos.numbered(["backup1"], ["s3://bucket"])  # type: ignore[list-item]


def test_the_collections_filter_is_the_rule():
    spec = importlib.util.spec_from_file_location(
        "drctl_repos", ROOT / "plugins" / "filter" / "drctl_repos.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    repositories = module.FilterModule().filters()["repositories"]
    assert repositories(["backup1"], [CLOUD]) == [
        r.as_dict() for r in repos.numbered(["backup1"], [CLOUD])]
    assert repositories(["backup1"], None) == [
        {"number": 1, "type": "posix", "host": "backup1", "name": "backup1"}]
