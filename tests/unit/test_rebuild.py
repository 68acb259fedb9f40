"""drctl rebuild: what it refuses before any host is contacted, the question that states
what is at stake, and the recovery point it reports."""

from __future__ import annotations

import copy

import pytest

from drctl.errors import DrctlError
from drctl.exitcodes import ExitCode
from drctl.operations import ha
from drctl.operations import rebuild as op
from drctl.rules.facts import ClusterFacts, NodeFacts, Sighting, WatcherFacts
from tests.unit.conftest import GOOD_HOSTS, GOOD_VARS

S3 = {"name": "cloud", "endpoint": "s3", "port": 9000, "bucket": "b", "key": "k",
      "secret": "s"}


def inventory(make_inventory, cloud: bool = True, s3: bool = True):
    hosts = copy.deepcopy(GOOD_HOSTS)
    if cloud:
        hosts["all"]["children"]["cloud"] = {"hosts": {"cloud1": {"ansible_host": "10.9.9.60"}}}
    return make_inventory(hosts=hosts, all_vars={**GOOD_VARS, **(
        {"pgbackrest_s3_repos": [S3]} if s3 else {})})


def test_a_host_outside_group_cloud_is_a_usage_error(make_inventory):
    with pytest.raises(DrctlError) as err:
        op.prepare(inventory(make_inventory), "backup1", 2)
    assert err.value.code == ExitCode.USAGE and "not a host of group cloud" in str(err.value)


def test_a_repository_hosts_repository_is_not_an_object_store(make_inventory):
    with pytest.raises(DrctlError) as err:
        op.prepare(inventory(make_inventory), "cloud1", 1)
    assert err.value.code == ExitCode.USAGE and "not an object store" in str(err.value)


def test_the_question_states_the_unknown_loss_and_the_plan_needs_consent(make_inventory,
                                                                          monkeypatch):
    gone = ClusterFacts((NodeFacts("pg1", False, "unknown", error="no route to host"),
                         NodeFacts("pg2", False, "unknown", error="no route to host")), ())
    monkeypatch.setattr(ha, "gather", lambda inv, **kw: ({}, gone))
    refused = op.prepare(inventory(make_inventory), "cloud1", 2)
    assert not refused.plan.ok
    assert [g.name for g in refused.plan.gates if not g.ok] == ["no acknowledged commit lost"]
    with pytest.raises(DrctlError) as err:
        refused.run(ha.Interaction(yes=True))
    assert err.value.code == ExitCode.REFUSED
    consented = op.prepare(inventory(make_inventory), "cloud1", 2, allow_data_loss=True)
    assert consented.plan.ok
    assert consented.plan.extravars == {"rebuild_on": "cloud1", "rebuild_repo": 2,
                                        "allow_data_loss": True, "rebuild_replace": False}
    assert "commits acknowledged after its last archived segment are lost" in \
        consented.question
    assert "pg1, pg2 do not answer" in consented.question


def test_the_recovery_point_is_the_last_commit_and_its_distance_to_the_last_write_seen():
    seen = ClusterFacts((), (WatcherFacts("backup1", True, Sighting(
        "backup1", "pg1", 1, 100, "2026-12-07T06:00:10Z", 5.0, 1.0, 0.5,
        at=1796623210.0)),))
    at = op.newest_sighting_at(seen)
    assert at == 1796623210.0
    point = op.recovery_point("2026-12-07T06:00:07.500000Z", at)
    assert point == {"last_replayed_commit": "2026-12-07T06:00:07.500000Z",
                     "behind_last_seen_s": 2.5}
    assert op.recovery_point(None, at)["behind_last_seen_s"] is None
    assert op.recovery_point("2026-12-07T06:00:07Z", None)["behind_last_seen_s"] is None


def test_replacing_an_earlier_rebuild_says_what_it_loses(make_inventory, monkeypatch):
    gone = ClusterFacts((NodeFacts("pg1", False, "unknown", error="no route to host"),), ())
    monkeypatch.setattr(ha, "gather", lambda inv, **kw: ({}, gone))
    plain = op.prepare(inventory(make_inventory), "cloud1", 2, allow_data_loss=True)
    assert "earlier rebuild" not in plain.question
    replacing = op.prepare(inventory(make_inventory), "cloud1", 2, allow_data_loss=True,
                           replace=True)
    assert "earlier rebuild left on cloud1 is replaced: whatever it took since is lost" \
        in replacing.question
    assert replacing.plan.extravars["rebuild_replace"] is True


def test_the_command_plans_refuses_and_names_a_wrong_host_in_one_line(make_inventory,
                                                                      monkeypatch):
    from click.testing import CliRunner

    from drctl import cli as cli_mod

    path = str(inventory(make_inventory))
    gone = ClusterFacts((NodeFacts("pg1", False, "unknown", error="no route to host"),), ())
    monkeypatch.setattr(ha, "gather", lambda inv, **kw: ({}, gone))
    runner = CliRunner()
    plan = runner.invoke(cli_mod.cli, ["rebuild", "-i", path, "--on", "cloud1", "--repo", "2",
                                       "--plan"])
    assert plan.exit_code == ExitCode.REFUSED, plan.output
    assert "FAIL  no acknowledged commit lost" in plan.output
    refused = runner.invoke(cli_mod.cli, ["rebuild", "-i", path, "--on", "cloud1", "--repo",
                                          "2", "--yes", "--format", "json"])
    assert refused.exit_code == ExitCode.REFUSED, refused.output
    assert '"result": "refused"' in refused.output
    wrong = runner.invoke(cli_mod.cli, ["rebuild", "-i", path, "--on", "nosuch", "--repo", "2",
                                        "--yes"])
    assert wrong.exit_code == ExitCode.USAGE and "Traceback" not in wrong.output
    assert "nosuch is not a host of group cloud" in wrong.output
    nan = runner.invoke(cli_mod.cli, ["rebuild", "-i", path, "--on", "cloud1", "--repo", "NaN"])
    assert nan.exit_code == 2 and "Traceback" not in nan.output
