"""The application VIP: the rule that judges a site's holders (rules core), the inventory's
checks, an app host's own report (drctl-node app state) and what status makes of them."""

from __future__ import annotations

import copy
import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from drctl import inventory, sshprobe, status
from drctl.node import appvip, files
from drctl.rules import service
from tests.unit.conftest import GOOD_HOSTS, GOOD_VARS

# ---------------------------------------------------------------- the rule


def _host(name: str, holds: bool = False, answers: bool = True, **kw) -> service.AppHost:
    return service.AppHost(name, True, holds_vip=holds, app_answers=answers,
                           keepalived=kw.pop("keepalived", "active"), **kw)


def test_one_holder_whose_application_answers_is_the_only_good_state():
    v = service.app_vip("dc1", "10.9.0.101", [_host("app1", holds=True), _host("app3")])
    assert v.holders == ("app1",) and v.problems == ()
    assert v.as_dict() == {"site": "dc1", "address": "10.9.0.101", "holders": ["app1"],
                           "ok": True, "problems": []}


def test_nobody_holding_it_is_a_problem_that_says_whether_anyone_could():
    v = service.app_vip("dc1", "10.9.0.101", [_host("app1"), _host("app3", answers=False)])
    assert v.holders == () and len(v.problems) == 1
    assert "nobody holds" in v.problems[0] and "answers on app1" in v.problems[0]
    v = service.app_vip("dc1", "10.9.0.101", [_host("app1", answers=False)])
    assert "no app host's application answers" in v.problems[0]


def test_two_holders_is_a_problem_naming_both():
    v = service.app_vip("dc1", "10.9.0.101", [_host("app1", holds=True),
                                              _host("app3", holds=True)])
    assert v.holders == ("app1", "app3")
    assert any("2 app hosts hold" in p and "app1, app3" in p for p in v.problems)


def test_a_holder_whose_application_does_not_answer_is_a_problem():
    v = service.app_vip("dc1", "10.9.0.101", [_host("app1", holds=True, answers=False)])
    assert v.holders == ("app1",)
    assert any("does not answer /health" in p for p in v.problems)


def test_an_unreachable_host_is_never_counted_and_is_named():
    silent = service.AppHost.parse("app1", False, None, "unreachable: timed out")
    v = service.app_vip("dc1", "10.9.0.101", [silent, _host("app3", holds=True)])
    assert v.holders == ("app3",)
    assert any("app1 is unreachable" in p and "timed out" in p for p in v.problems)


def test_a_dead_keepalived_or_a_host_without_the_vip_set_up_is_a_problem():
    v = service.app_vip("dc1", "10.9.0.101", [_host("app1", holds=True),
                                              _host("app3", keepalived="failed")])
    assert any("keepalived is failed on app3" in p for p in v.problems)
    bare = service.AppHost.parse("app3", True, None, "probe failed (exit 2)")
    v = service.app_vip("dc1", "10.9.0.101", [_host("app1", holds=True), bare])
    assert any("app3 has no application VIP set up" in p for p in v.problems)


def test_parse_reads_the_hosts_own_report():
    data = {"ok": True, "app_vip": {"configured": True, "holds": True, "keepalived": "active",
                                    "app": {"answers": True}}, "files": {"configured": False}}
    h = service.AppHost.parse("app1", True, data)
    assert (h.reachable, h.configured, h.holds_vip, h.app_answers) == (True, True, True, True)


def test_only_sites_with_an_application_vip_are_judged():
    sites = {"dc1": {"app_vip": "10.9.0.101/24", "hosts": ["app1"]},
             "dc2": {"app_vip": None, "hosts": ["app2"]}}
    verdicts = service.app_vips(sites, {"app1": _host("app1", holds=True),
                                        "app2": _host("app2")})
    assert [v.site for v in verdicts] == ["dc1"] and verdicts[0].address == "10.9.0.101"


# ---------------------------------------------------------------- the inventory

def _two_app_hosts(app_vars: dict | None = None) -> dict:
    hosts = copy.deepcopy(GOOD_HOSTS)
    hosts["all"]["children"]["app"]["hosts"]["app3"] = {"ansible_host": "10.9.0.15",
                                                       **(app_vars or {})}
    return hosts


def test_an_application_vip_in_the_app_hosts_subnet_is_accepted(make_inventory):
    inv = inventory.load(make_inventory(_two_app_hosts(),
                                        {**GOOD_VARS, "drctl_app_vip": "10.9.0.101/24"}))
    assert inv.app_sites == {"default": {"app_vip": "10.9.0.101/24",
                                         "hosts": ["app1", "app3"]}}


@pytest.mark.parametrize(("value", "why"), [
    ("10.9.1.101/24", "outside host 'app1''s subnet"),
    ("10.9.0.101", "needs a prefix length"),
    ("10.9.0.100/24", "is a database VIP"),
    ("10.9.0.15/24", "equals the address of host 'app3'"),
    ("not-an-address/24", "is not a valid address/prefix"),
])
def test_a_wrong_application_vip_is_refused_naming_the_field(make_inventory, value, why):
    path = make_inventory(_two_app_hosts(), {**GOOD_VARS, "drctl_app_vip": value})
    with pytest.raises(inventory.InventoryError) as err:
        inventory.load(path)
    assert any("drctl_app_vip" in p and why in p for p in err.value.problems), \
        err.value.problems


def test_two_application_vips_in_one_site_are_refused(make_inventory):
    path = make_inventory(_two_app_hosts({"drctl_app_vip": "10.9.0.102/24"}),
                          {**GOOD_VARS, "drctl_app_vip": "10.9.0.101/24"})
    with pytest.raises(inventory.InventoryError) as err:
        inventory.load(path)
    assert any("more than one drctl_app_vip" in p for p in err.value.problems)


def test_no_application_vip_changes_nothing(make_inventory):
    inv = inventory.load(make_inventory())
    assert inv.app_sites == {"default": {"app_vip": None, "hosts": ["app1"]}}


# ---------------------------------------------------------------- the host's own report

class _Health(http.server.BaseHTTPRequestHandler):
    answer: tuple[int, bytes] = (200, b'{"ok": true, "database": "reachable", "writable": true}')

    def do_GET(self) -> None:
        code, body = self.answer
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def health() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Handler", (_Health,), {})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/health", handler
    server.shutdown()


def test_the_application_answers_with_its_report_whatever_the_database_says(health):
    url, handler = health
    assert appvip.app_answers(url, 2)["answers"] is True
    handler.answer = (503, b'{"ok": false, "database": "unreachable", "error": "x"}')
    got = appvip.app_answers(url, 2)
    assert got["answers"] is True and got["status"] == 503 and got["writable"] is False


def test_anything_else_on_the_port_or_nothing_at_all_does_not_count(health):
    url, handler = health
    handler.answer = (503, b"<html>maintenance</html>")
    got = appvip.app_answers(url, 2)
    assert got["answers"] is False and "without the application's report" in got["error"]
    handler.answer = (200, b'{"status": "up"}')
    assert appvip.app_answers(url, 2)["answers"] is False
    assert appvip.app_answers("http://127.0.0.1:9/health", 1)["answers"] is False


def test_the_state_file_of_the_notify_script(tmp_path):
    path = tmp_path / "app-vrrp-state"
    assert appvip.vrrp_state(str(path)) is None
    path.write_text("MASTER 2026-12-04T15:00:00.000Z\n")
    assert appvip.vrrp_state(str(path)) == {"state": "MASTER",
                                            "since": "2026-12-04T15:00:00.000Z"}


def test_app_state_reports_each_part_or_says_it_is_not_set_up(tmp_path, capsys, health,
                                                                  monkeypatch):
    url, _handler = health
    assert appvip.main(str(tmp_path / "none.json"), str(tmp_path / "none2.json")) == 0
    assert json.loads(capsys.readouterr().out) == {
        "ok": True, "app_vip": {"configured": False}, "files": {"configured": False},
        "pooler": {"configured": False}}
    config = tmp_path / "app-vip.json"
    config.write_text(json.dumps({"address": "10.9.0.101/24", "interface": "eth0",
                                  "health_url": url, "state_file": str(tmp_path / "s"),
                                  "unit": "keepalived", "health_timeout_s": 2}))
    monkeypatch.setattr(appvip.common, "holds_address", lambda iface, addr: True)
    monkeypatch.setattr(appvip, "_service", lambda unit: "active")
    assert appvip.main(str(config), str(tmp_path / "none2.json")) == 0
    got = json.loads(capsys.readouterr().out)["app_vip"]
    assert got["holds"] is True and got["address"] == "10.9.0.101"
    assert got["keepalived"] == "active" and got["app"]["answers"] is True


# ---------------------------------------------------------------- who sends the files

def test_of_two_app_hosts_in_a_site_only_the_vip_holder_sends(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "serving", lambda url: (True, "reaches the primary"))
    monkeypatch.setattr(files, "write_stamp", lambda c, started: {})
    c = files.FilesConfig(directory=str(tmp_path), health_url="http://127.0.0.1/health",
                          app_vip="10.9.0.101/24", app_vip_interface="eth0")
    monkeypatch.setattr(files.common, "holds_address", lambda iface, addr: False)
    record = files.sync(c)
    assert record["sent"] is False and "on another app host" in record["reason"]
    monkeypatch.setattr(files.common, "holds_address", lambda iface, addr: True)
    assert files.sync(c)["sent"] is True


# ---------------------------------------------------------------- status

def test_status_reports_each_sites_application_vip_and_its_problems(make_inventory,
                                                                    monkeypatch):
    path = make_inventory(_two_app_hosts(), {**GOOD_VARS, "drctl_app_vip": "10.9.0.101/24"})
    answers = {"app1": {"holds": True}, "app3": {"holds": True}}

    def probe(inv, host, command=None, timeout=6):
        if command == status.APP_STATE:
            return sshprobe.ProbeResult(host, True, {"ok": True, "files": {"configured": False},
                                                     "app_vip": {
                "configured": True, "keepalived": "active", "app": {"answers": True},
                **answers[host]}})
        return sshprobe.ProbeResult(host, False, None, "unreachable: test")

    monkeypatch.setattr(sshprobe, "probe", probe)
    # a failover's facts (no app hosts asked) judge no application VIP
    report = status.collect(path)
    assert report["app_vips"] is None
    assert not any("application VIP" in p for p in report["problems"])
    report = status.collect(path, files=True)
    assert report["app_vips"][0]["holders"] == ["app1", "app3"]
    assert not report["healthy"]
    assert any("2 app hosts hold the application VIP" in p for p in report["problems"])
    answers["app3"] = {"holds": False}
    report = status.collect(path, files=True)
    assert report["app_vips"] == [{"site": "default", "address": "10.9.0.101",
                                   "holders": ["app1"], "ok": True, "problems": []}]
    assert not any("application VIP" in p for p in report["problems"])


def test_the_drill_reaches_the_service_by_its_application_vip(make_inventory):
    from drctl import drill

    inv = inventory.load(make_inventory(_two_app_hosts(),
                                        {**GOOD_VARS, "drctl_app_vip": "10.9.0.101/24"}))
    assert drill.service_url(inv, "default") == "http://10.9.0.101:8080"
    assert drill.service_url(inv, "elsewhere") is None
    inv = inventory.load(make_inventory())
    assert drill.service_url(inv, "default") == "http://10.9.0.14:8080"


def test_every_drill_scenario_is_described_and_offered_by_the_cli():
    from drctl import cli, drill
    from drctl.operations import drill as op

    assert set(op.WHAT) == set(drill.SCENARIOS)
    choice = next(p for p in cli.cli.commands["drill"].params if p.name == "scenario")
    assert set(choice.type.choices) == set(drill.SCENARIOS)


def test_while_the_pooler_is_paused_the_liveness_page_answers_for_the_application(health):
    """/health asks the database through the pooler, so during a pause it answers only
    after it: the state reads the liveness page then, and says the database waits."""
    url, handler = health
    handler.answer = (200, b'{"alive": true}')
    got = appvip.app_alive(url, '"alive"', 2)
    assert got["answers"] is True and got["database"] == "waiting for the pooler's pause to end"
    handler.answer = (200, b"<html>someone else</html>")
    got = appvip.app_alive(url, '"alive"', 2)
    assert got["answers"] is False and "without" in got["error"]
    handler.answer = (503, b'{"alive": true}')
    assert appvip.app_alive(url, '"alive"', 2)["answers"] is False


def test_the_state_reads_health_unless_the_pooler_is_paused(health, tmp_path):
    url, handler = health
    handler.answer = (200, b'{"alive": true}')
    c = appvip.AppVipConfig(address="10.9.0.50/24", interface="lo", state_file=str(tmp_path / "s"),
                            health_url="http://127.0.0.1:9/health", alive_url=url,
                            health_timeout_s=1)
    # not paused: /health (nothing listens on port 9 here), not the liveness page
    assert appvip.state(c)["app"]["answers"] is False
    assert appvip.state(c, pooler_paused=True)["app"]["answers"] is True
    # a host provisioned before the liveness page was configured: /health as before
    old = appvip.AppVipConfig(address="10.9.0.50/24", interface="lo", health_url=url,
                              state_file=str(tmp_path / "s"), health_timeout_s=1)
    handler.answer = (200, b'{"ok": true, "database": "reachable", "writable": true}')
    assert appvip.state(old, pooler_paused=True)["app"]["database"] == "reachable"
