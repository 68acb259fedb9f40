"""The drill's HTML report and the gap measure, from a synthetic report."""

from drctl.drill import _gaps
from drctl.drill_html import render


def report(**kw):
    base = {
        "scenario": "switchover", "cluster": "lab", "started_at": "2026-11-26T13:00:00+00:00",
        "duration_s": 2.0, "ok": True, "error": None,
        "sql": {"acknowledged": 3, "errors": 1, "write_outage_s": 0.5, "lost": 0},
        "app": {"requests": 2, "failed": 1, "error_window_s": 0.0, "registered": 1,
                "registrations_missing": [], "max_latency_ms": 12.5},
        "operations": [{"command": "drctl switchover --to pg2", "start_s": 0.5,
                        "duration_s": 1.0, "exit_code": 0, "write_outage_s": 0.4}],
        "events": [{"t": 0.5, "label": "<promoted> pg2", "journal": True}],
        "topology_before": {"primary": "pg1", "vip_holders": ["pg1"], "healthy": True,
                            "nodes": {"pg1": "primary", "pg2": "standby"}},
        "topology_after": {"primary": "pg2", "vip_holders": ["pg2"], "healthy": True,
                           "nodes": {"pg1": "standby", "pg2": "primary"}},
        "series": {"bin_s": 0.1, "writes": [1, 0, 2] + [0] * 17, "write_errors": [0] * 20,
                   "app_ok": [1] + [0] * 19, "app_errors": [0, 1] + [0] * 18},
        "json_path": "/tmp/r.json", "html_path": "/tmp/r.html",
    }
    return {**base, **kw}


def test_report_is_self_contained_and_escapes_labels():
    html = render(report())
    assert html.startswith("<!doctype html>") and '<svg id="timeline"' in html
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert "&lt;promoted&gt; pg2" in html and "<promoted>" not in html
    assert html.count('class="w"') == 2  # one bar per 100 ms bin with writes
    assert html.count('class="e"') == 1
    assert "PASSED" in html


def test_failed_drill_says_why():
    html = render(report(ok=False, error="drctl failover exited 8"))
    assert "FAILED: drctl failover exited 8" in html


def test_write_outage_is_the_longest_gap():
    assert _gaps([0.0, 0.1, 0.9, 1.0]) == 0.8
    assert _gaps([]) == 0.0


def test_auto_failover_drill_refuses_unless_armed(make_inventory, monkeypatch, tmp_path):
    import pytest

    from drctl import drill, status
    from drctl.errors import DrctlError
    from drctl.exitcodes import ExitCode

    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))
    healthy = {"healthy": True, "problems": [], "primary": "pg1", "nodes": [],
               "auto": {"state": "paused", "reasons": ["pg2: paused since T (maintenance)"]}}
    monkeypatch.setattr(status, "collect", lambda inv, save=True: healthy)
    with pytest.raises(DrctlError) as err:
        drill.run(make_inventory(), scenario="auto-failover", duration=1, rate=1, app_rate=0,
                  out_dir=tmp_path, say=print)
    assert err.value.code == ExitCode.REFUSED
    assert "paused" in str(err.value) and "maintenance" in str(err.value)


def test_step_labels_never_overlap():
    """A failover's steps come within milliseconds of each other: no two labels may
    share the same place (the report's timeline was unreadable there)."""
    from drctl import drill_html

    marks = [(400 + i * 0.5, f"step number {i} on pg2") for i in range(30)]
    marks += [(100.0, "steady state measured"), (900.0, "end")]
    placed = drill_html.layout_labels(sorted(marks))
    boxes = [(x, x + drill_html.label_width(t), y) for x, y, t in placed]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] != b[2] or a[1] + 4 <= b[0] or b[1] + 4 <= a[0], (a, b)
    assert all(y < drill_html.TOP + drill_html.PLOT_H for _, y, _ in placed)
    texts = [t for _, _, t in placed]
    assert "steady state measured" in texts and "end" in texts
    assert any(t.isdigit() for t in texts), "crowded steps fall back to their numbers"


# ---------------------------------------------------------------- site drills

def _two_site_inventory(make_inventory):
    from drctl import inventory
    from tests.unit.test_inventory import two_sites

    hosts = two_sites()
    hosts["all"]["children"]["app"]["hosts"]["app2"] = {"ansible_host": "10.9.16.14",
                                                       "drctl_location": "dc2"}
    hosts["all"]["children"]["dc2"]["hosts"]["app2"] = None
    return inventory.load(make_inventory(hosts=hosts))


def test_a_site_drill_loses_the_primarys_whole_site_and_moves_to_the_other(make_inventory):
    from drctl.drill import site_plan

    inv = _two_site_inventory(make_inventory)
    plan = site_plan(inv, "pg1")
    assert plan == {"from": "dc1", "to": "dc2",
                    "lost_hosts": ["pg1", "pg2", "app1", "backup1"],
                    "lost_nodes": ["pg1", "pg2"], "from_apps": ["app1"], "to_apps": ["app2"]}
    # with the primary at dc2 (after a site failover), the drill goes the other way
    assert site_plan(inv, "pg3")["to"] == "dc1"


def test_a_site_drill_needs_a_second_site(make_inventory):
    import pytest

    from drctl import inventory
    from drctl.drill import site_plan
    from drctl.errors import DrctlError
    from drctl.exitcodes import ExitCode

    with pytest.raises(DrctlError) as err:
        site_plan(inventory.load(make_inventory()), "pg1")
    assert err.value.exit_code == ExitCode.USAGE and "second site" in str(err.value)


def test_a_site_drill_without_consent_to_lose_data_is_refused_before_anything(
        make_inventory, monkeypatch):
    import pytest

    from drctl import drill
    from drctl.errors import DrctlError
    from drctl.exitcodes import ExitCode
    from drctl.operations import drill as op
    from drctl.operations.ha import Interaction

    monkeypatch.setattr(drill, "run", lambda *a, **kw: pytest.fail("the drill ran"))
    assert set(drill.SITE_SCENARIOS) < set(drill.CONSENT_SCENARIOS)
    for scenario in drill.CONSENT_SCENARIOS:
        with pytest.raises(DrctlError) as err:
            op.drill(make_inventory(), scenario=scenario, duration=5, rate=1, app_rate=0,
                     out_dir=None, ui=Interaction(yes=True))
        assert err.value.exit_code == ExitCode.REFUSED
        assert ("object store" if scenario == "cloud-restore" else "asynchronously") in \
            str(err.value) and "--allow-data-loss" in err.value.hint


def test_the_cloud_drill_loses_every_site_and_rebuilds_from_the_first_object_store(
        make_inventory):
    """Every host of every site of the PostgreSQL nodes goes dark; the cloud host, the
    object store and the WAN side's DNS stay. Without a cloud host or an object store,
    a usage error before anything."""
    import pytest

    from drctl import inventory
    from drctl.drill import cloud_plan
    from drctl.errors import DrctlError
    from drctl.exitcodes import ExitCode
    from tests.unit.conftest import GOOD_VARS
    from tests.unit.test_inventory import two_sites

    hosts = two_sites()
    hosts["all"]["children"]["cloud"] = {"hosts": {"cloud1": {"ansible_host": "10.9.32.60",
                                                              "drctl_location": "cloud"}}}
    hosts["all"]["children"]["dns"] = {"hosts": {"dns1": {"ansible_host": "10.9.32.53",
                                                          "drctl_location": "wan"}}}
    s3 = {"name": "cloud", "endpoint": "s3", "port": 9000, "bucket": "b", "key": "k",
          "secret": "s"}
    inv = inventory.load(make_inventory(hosts=hosts,
                                        all_vars={**GOOD_VARS, "pgbackrest_s3_repos": [s3]}))
    plan = cloud_plan(inv)
    assert (plan["on"], plan["sites"], plan["lost_nodes"]) == ("cloud1", ["dc1", "dc2"],
                                                               ["pg1", "pg2", "pg3"])
    assert plan["repo"] == len([r for r in hosts["all"]["children"]["backup"]["hosts"]]) + 1
    assert set(plan["lost_hosts"]) == {"pg1", "pg2", "pg3", "app1", "backup1"} | {
        h for h in inv.hosts if inv.site(h) == "dc2"}
    assert "cloud1" not in plan["lost_hosts"] and "dns1" not in plan["lost_hosts"]
    with pytest.raises(DrctlError) as err:
        cloud_plan(inventory.load(make_inventory()))
    assert err.value.exit_code == ExitCode.USAGE and "object-store" in str(err.value)


def test_rpo_in_time_is_from_the_newest_write_kept_to_the_newest_acknowledged():
    from drctl.drill import rpo_seconds

    acked = [(1.0, 1), (1.5, 2), (2.0, 3), (2.25, 4), (9.0, 5)]  # 5: after the failover
    assert rpo_seconds(acked, [], cut=2.5) == 0.0
    assert rpo_seconds(acked, [3, 4], cut=2.5) == 0.75  # 1.5 kept, 2.25 acknowledged
    assert rpo_seconds(acked, [1, 2, 3, 4], cut=2.5) == 1.25  # nothing kept before the cut
    assert rpo_seconds(acked, [4], cut=None) == 0.0  # no cut (a switchover)


def test_the_report_shows_each_site_and_its_part(make_inventory):
    from drctl.drill import _sites, site_plan

    inv = _two_site_inventory(make_inventory)
    sites = _sites(inv, {"primary": "pg1"}, {"primary": "pg3"}, site_plan(inv, "pg1"))
    assert sites == {
        "dc1": {"vip": "10.9.0.100/24", "nodes": ["pg1", "pg2"], "primary_before": True,
                "primary_after": False, "role": "lost"},
        "dc2": {"vip": "10.9.16.100/24", "nodes": ["pg3"], "primary_before": False,
                "primary_after": True, "role": "took over"}}
    html = render(report(scenario="site-failover", sites=sites, rpo_s=0.25))
    assert "site dc1" in html and "10.9.16.100/24" in html and "took over" in html
    assert "0.25 s" in html


def test_the_drills_operations_read_their_command_lines(monkeypatch):
    """A drill runs each operation with its command line as the report shows it."""
    from drctl import drill
    from drctl.operations import failback, failover, switchover

    seen = []

    class Prepared:
        def run(self, ui):
            return {}

    monkeypatch.setattr(failover, "prepare", lambda inv, target, allow_data_loss, site:
                        seen.append(("failover", target, allow_data_loss, site)) or Prepared())
    monkeypatch.setattr(switchover, "prepare",
                        lambda inv, target: seen.append(("switchover", target)) or Prepared())
    monkeypatch.setattr(failback, "prepare", lambda inv, node, switch_back:
                        seen.append(("failback", node, switch_back)) or Prepared())
    monkeypatch.setattr(failback, "run", lambda prepared, ui, switch_back: {})
    from drctl.operations import rebuild

    monkeypatch.setattr(rebuild, "prepare", lambda inv, on, repo, allow_data_loss:
                        seen.append(("rebuild", on, repo, allow_data_loss)) or Prepared())
    for line in (["failover", "--site", "dc2", "--allow-data-loss"], ["failover", "--to", "pg2"],
                 ["switchover", "--to", "pg1"], ["failback", "--node", "pg1", "--switch-back"],
                 ["rebuild", "--on", "cloud1", "--repo", "3", "--allow-data-loss"]):
        drill.OPERATIONS[line[0]](None, line[1:], None)
    assert seen == [("failover", None, True, "dc2"), ("failover", "pg2", False, None),
                    ("switchover", "pg1"), ("failback", "pg1", True),
                    ("rebuild", "cloud1", 3, True)]


def test_a_consented_loss_is_judged_against_what_the_rules_stated():
    """issue #36: the site drill lost 2 writes the operator had consented to lose (verdict
    'unknown': nobody could establish what pg3 lacked) and was called FAILED."""
    from drctl.rules.decide import drill_loss

    unknown = {"verdict": "unknown", "accepted": True, "missing_bytes": None,
               "window_s": None, "sentence": "cannot establish what pg3 is missing"}
    judged = drill_loss(unknown, 2, 0.038)
    assert judged.within and "consented" in judged.sentence and "2 acknowledged" in \
        judged.sentence
    # the same loss without the operator's consent exceeds what was allowed
    assert not drill_loss({**unknown, "accepted": False}, 2, 0.038).within
    # 'none' was promoted without asking anyone: any loss exceeds it, even inside the
    # asynchronous window its sentence names
    none = {"verdict": "none", "accepted": False, "missing_bytes": 0, "window_s": 1.0}
    assert not drill_loss(none, 3, 0.4).within
    # 'within-limit' (drctl_max_loss_bytes, consent in advance): a loss inside its window
    # is within, one spanning longer is more than the statement allowed
    limit = {**none, "verdict": "within-limit", "missing_bytes": 4096}
    assert drill_loss(limit, 3, 0.4).within
    beyond = drill_loss(limit, 30, 2.5)
    assert not beyond.within and "MORE than the stated asynchronous window of 1.0 s" in \
        beyond.sentence
    assert not drill_loss({**limit, "window_s": None}, 1, 0.01).within
    # nothing lost is always within; a loss without any statement never is
    assert drill_loss(None, 0, 0.0).within and not drill_loss(None, 1, 0.1).within
    # 'loss' consented: at least the bytes named
    loss = drill_loss({"verdict": "loss", "accepted": True, "missing_bytes": 1_200_000}, 5,
                      0.3)
    assert loss.within and "at least 1.2 MB missing" in loss.sentence


def test_a_restore_may_lose_only_what_the_store_lacked():
    """cloud-restore: the writes acknowledged after the last commit the rebuild replayed
    are what the object store lacked (consented to); one acknowledged at or before it was
    in the store, and missing means the restore lost it."""
    from drctl.rules.decide import restore_loss

    consented = {"verdict": "unknown", "accepted": True}
    acked = [(100.0, 1), (101.0, 2), (102.0, 3), (103.0, 4)]
    ok = restore_loss(consented, 101.5, acked, [3, 4])
    assert ok.within and "2 acknowledged writes lost" in ok.sentence \
        and "after the last commit the store held" in ok.sentence
    held = restore_loss(consented, 101.5, acked, [2, 3, 4])
    assert not held.within and "1 acknowledged write committed before the last replayed " \
        "commit MISSING" in held.sentence and "(2 more" in held.sentence
    # a write acknowledged at the very commit time replayed was held too
    assert not restore_loss(consented, 101.0, acked, [2]).within
    # without the operator's consent, even the store's lack exceeds
    assert not restore_loss({**consented, "accepted": False}, 101.5, acked, [4]).within
    assert not restore_loss(None, 101.5, acked, [4]).within
    # nothing lost is within; without a last replayed commit a loss is within only by
    # consent, and says that nobody could tell
    assert restore_loss(None, None, acked, []).within
    unknown = restore_loss(consented, None, acked, [1])
    assert unknown.within and "named no last replayed commit" in unknown.sentence
    assert not restore_loss(None, None, acked, [1]).within


def test_the_report_shows_the_statement_beside_the_loss():
    stated = {"verdict": "unknown", "sentence": "cannot establish what pg3 is missing",
              "accepted": True}
    html = render(report(sql={"acknowledged": 3, "errors": 1, "write_outage_s": 0.5,
                              "lost": 2},
                         data_loss={"stated": stated, "lost": 2, "rpo_s": 0.038,
                                    "within": True, "sentence": "2 acknowledged writes "
                                    "lost ...: consented to (verdict 'unknown')"}))
    assert "PASSED: 2 acknowledged writes lost" in html
    assert "unknown: cannot establish what pg3 is missing" in html


def test_the_pooled_writer_goes_through_a_pooler_the_scenario_keeps(make_inventory):
    from drctl import inventory
    from drctl.drill import pooler_host
    from tests.unit.conftest import GOOD_VARS
    from tests.unit.test_app_vip import _two_app_hosts

    inv = inventory.load(make_inventory(_two_app_hosts()))
    assert pooler_host(inv, "default", "switchover", None) == "app1"
    # the app-host-loss drill powers the application VIP's holder off: the other one
    assert pooler_host(inv, "default", "app-host-loss", "app1") == "app3"
    # a site drill powers every app host of the site off
    assert pooler_host(inv, "default", "site-failover", None) is None
    inv = inventory.load(make_inventory(_two_app_hosts(), {**GOOD_VARS, "drctl_pooler": False}))
    assert pooler_host(inv, "default", "switchover", None) is None


def test_the_report_shows_the_pooled_figures_or_why_there_are_none():
    pooled = {"host": "app1", "acknowledged": 900, "failed_attempts": 0, "max_wait_s": 0.8,
              "write_outage_s": 0.9, "lost": 0, "lost_ids": [], "app_requests": 20,
              "app_failed": 0}
    page = render(report(pooled=pooled))
    assert "900 / 0 / 0.8 s, 0 lost (via app1)" in page
    page = render(report(pooled={"host": None, "error": "no pooler the scenario keeps"}))
    assert "not measured (no pooler the scenario keeps" in page


def test_a_lab_power_cut_waits_for_docker_to_handle_the_exit(monkeypatch):
    """A site's hosts lose power one after the other, each exit handled before the next:
    docker 20.10 deadlocks when two containers leave their network at once."""
    import subprocess

    from drctl import drill

    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    for host in ("pg1", "pg2"):
        said = drill._power_off(None, host, "drctl-lab-")  # type: ignore[arg-type]
        assert said == f"docker kill {host} (power loss)"
    assert calls == [["docker", "kill", "drctl-lab-pg1"], ["docker", "wait", "drctl-lab-pg1"],
                     ["docker", "kill", "drctl-lab-pg2"], ["docker", "wait", "drctl-lab-pg2"]]


def test_the_cloud_drills_report_says_where_from_what_and_when():
    from drctl.drill_html import rebuild_line

    rebuilt = {"on": "cloud1", "repo": 3, "repo_name": "cloud", "timeline": 3,
               "last_replayed_commit": "2026-12-07T13:00:00.5+00:00",
               "rpo_behind_newest_ack_s": 31.6, "rebuild_rto_s": 19.5, "recovery_s": 21.2,
               "users_registered": 12, "users_present": 9}
    line = rebuild_line(rebuilt)
    assert line and "cloud1 from repo3 (cloud), timeline 3" in line
    assert "31.6 s before the newest write acknowledged before the cut" in line
    assert "taking writes 21.2 s after the power cut (the rebuild itself 19.5 s)" in line
    assert "users present 9 of 12" in line
    assert "did not take writes" in str(rebuild_line({**rebuilt, "recovery_s": None}))
    # nothing after the backup was in the store: the recovery point is the backup's end
    assert "last commit replayed none after the backup (the recovery point is the " \
        "backup's end)" in str(rebuild_line({**rebuilt, "last_replayed_commit": None,
                                             "rpo_behind_newest_ack_s": None}))
    assert rebuild_line(None) is None
    html = render(report(scenario="cloud-restore", rebuild=rebuilt))
    assert "rebuilt at the cloud location" in html and "users present 9 of 12" in html
    assert "the operation&#x27;s data-loss verdict" in html
