"""The service's name: which site serves and where the name must point (rules core), the
inventory's checks, the hook that stands in for RFC 2136, and the operation step that moves
the name (its failure is exit 12 with what to do, never a silent success)."""

from __future__ import annotations

import copy

import pytest

from drctl import dns, dnsupdate, inventory
from drctl.exitcodes import ExitCode
from drctl.rules import service
from tests.unit.conftest import GOOD_HOSTS, GOOD_VARS

SITES = {"dc1": {"app_vip": "10.9.0.101/24", "hosts": ["app1", "app3"]},
         "dc2": {"app_vip": None, "hosts": ["app2"]}}
ADDRESSES = {"app1": "10.9.0.14", "app3": "10.9.0.15", "app2": "10.9.16.14"}

# ---------------------------------------------------------------- the rules


def test_the_serving_site_is_the_primarys_when_it_holds_its_sites_vip():
    assert service.serving_site("pg1", "dc1", ["pg1"]) == "dc1"
    assert service.serving_site("pg1", "dc1", []) is None
    assert service.serving_site("pg1", "dc1", ["pg1", "pg2"]) is None
    assert service.serving_site(None, None, []) is None


def test_the_name_points_to_the_sites_application_vip_else_its_only_app_host():
    assert service.name_address("dc1", SITES, ADDRESSES) == "10.9.0.101"
    assert service.name_address("dc2", SITES, ADDRESSES) == "10.9.16.14"
    assert service.name_address("dc3", SITES, ADDRESSES) is None
    two_no_vip = {"dc1": {"app_vip": None, "hosts": ["app1", "app3"]}}
    assert service.name_address("dc1", two_no_vip, ADDRESSES) is None


def test_an_address_belongs_to_the_site_it_serves():
    assert service.site_of_address("10.9.0.101", SITES, ADDRESSES) == "dc1"
    assert service.site_of_address("10.9.16.14", SITES, ADDRESSES) == "dc2"
    assert service.site_of_address("192.0.2.1", SITES, ADDRESSES) is None


def test_a_name_pointing_at_the_serving_site_is_no_problem():
    assert service.name_problems("app.x.", ["10.9.0.101"], "dc1", SITES, ADDRESSES) == []


@pytest.mark.parametrize(("resolved", "serving", "error", "says"), [
    (["10.9.0.101"], "dc2", "", "not to 10.9.16.14, the address of the serving site dc2"),
    (["10.9.0.101", "10.9.16.14"], "dc1", "", "points to 10.9.0.101, 10.9.16.14"),
    ([], "dc1", "", "points nowhere"),
    (["10.9.0.101"], None, "", "no site serves"),
    ([], "dc1", "10.9.0.53 did not answer", "cannot be looked up"),
])
def test_a_name_pointing_elsewhere_is_a_problem_that_says_where(resolved, serving, error, says):
    problems = service.name_problems("app.x.", resolved, serving, SITES, ADDRESSES, error)
    assert len(problems) == 1 and says in problems[0], problems


# ---------------------------------------------------------------- the inventory

DNS = {"drctl_dns_name": "app.example.test.", "drctl_dns_zone": "example.test.",
       "drctl_dns_server": "10.9.0.53"}


def _inv(make_inventory, **extra):
    return make_inventory(copy.deepcopy(GOOD_HOSTS), {**GOOD_VARS, **extra})


def test_a_whole_dns_section_is_accepted(make_inventory):
    inv = inventory.load(_inv(make_inventory, **DNS))
    s = dns.settings(inv)
    assert s is not None and s.name == "app.example.test." and s.ttl == 30
    assert dns.settings(inventory.load(_inv(make_inventory))) is None


@pytest.mark.parametrize(("extra", "says"), [
    ({"drctl_dns_zone": "other.test."}, "does not contain drctl_dns_name"),
    ({"drctl_dns_zone": ""}, "drctl_dns_zone is not"),
    ({"drctl_dns_server": ""}, "neither drctl_dns_server"),
    ({"drctl_dns_key_name": ""}, "drctl_dns_key_name is empty"),
    ({"drctl_dns_server": "ns1.example.test"}, "is not an IP address"),
    ({"drctl_dns_ttl": 0}, "drctl_dns_ttl"),
])
def test_a_broken_dns_section_is_refused_naming_the_field(make_inventory, extra, says):
    with pytest.raises(inventory.InventoryError) as err:
        inventory.load(_inv(make_inventory, **{**DNS, **extra}))
    assert any(says in p for p in err.value.problems), err.value.problems


def test_a_hook_stands_in_for_the_server_and_the_key(make_inventory):
    inv = inventory.load(_inv(make_inventory, **{**DNS, "drctl_dns_server": "",
                                                 "drctl_dns_key_name": "",
                                                 "drctl_dns_hook": "/usr/local/bin/gslb"}))
    assert dns.settings(inv).hook == "/usr/local/bin/gslb"


# ---------------------------------------------------------------- the hook's contract

def _settings(**kw) -> dnsupdate.NameSettings:
    base = {"name": "app.example.test.", "zone": "example.test.", "server": "",
            "ttl": 30, "key_name": "k", "key_algorithm": "hmac-sha256", "hook": "",
            "timeout_s": 2.0}
    return dnsupdate.NameSettings(**{**base, **kw})


def test_the_hook_gets_the_name_the_address_and_the_ttl(tmp_path):
    log = tmp_path / "log"
    hook = tmp_path / "hook"
    hook.write_text(f'#!/bin/sh\necho "$@" > {log}\n')
    hook.chmod(0o755)
    dnsupdate.publish(_settings(hook=str(hook)), "10.9.0.101", None)
    assert log.read_text() == "app.example.test. 10.9.0.101 30\n"


def test_a_failing_or_hanging_hook_says_so(tmp_path):
    hook = tmp_path / "hook"
    hook.write_text("#!/bin/sh\necho 'provider said: quota exceeded' >&2\nexit 3\n")
    hook.chmod(0o755)
    with pytest.raises(RuntimeError, match="exited 3: provider said: quota exceeded"):
        dnsupdate.publish(_settings(hook=str(hook)), "10.9.0.101", None)
    hook.write_text("#!/bin/sh\nexec sleep 30\n")
    with pytest.raises(RuntimeError, match="no answer within 1 s"):
        dnsupdate.publish(_settings(hook=str(hook), timeout_s=1.0), "10.9.0.101", None)
    with pytest.raises(RuntimeError, match="cannot run"):
        dnsupdate.publish(_settings(hook=str(tmp_path / "absent")), "10.9.0.101", None)


def test_an_update_without_a_secret_or_with_a_bad_one_is_refused_before_sending():
    with pytest.raises(RuntimeError, match="no vault_dns_tsig_secret"):
        dnsupdate.publish(_settings(server="127.0.0.1"), "10.9.0.101", None)
    with pytest.raises(RuntimeError, match="not a base64 TSIG secret"):
        dnsupdate.publish(_settings(server="127.0.0.1"), "10.9.0.101", "not base64!")


# ---------------------------------------------------------------- the operation's step

@pytest.fixture
def two_sites(make_inventory):
    hosts = copy.deepcopy(GOOD_HOSTS)
    ch = hosts["all"]["children"]
    for h in ("pg1", "pg2", "backup1", "app1"):
        for g in ch.values():
            if h in g["hosts"]:
                g["hosts"][h]["drctl_location"] = "dc1"
    ch["pg_standby"]["hosts"]["pg3"] = {"ansible_host": "10.9.16.11", "drctl_location": "dc2"}
    ch["app"]["hosts"]["app2"] = {"ansible_host": "10.9.16.14", "drctl_location": "dc2",
                                  "drctl_vip": "10.9.16.100/24"}
    ch["dc2"] = {"hosts": {"pg3": {}, "app2": {}}, "vars": {"drctl_vip": "10.9.16.100/24"}}
    return inventory.load(make_inventory(hosts, {**GOOD_VARS, **DNS}))


def _status(primary: str, site: str) -> dict:
    return {"primary": primary, "sites": {site: {"vip_holders": [primary]}}}


def test_the_name_moves_to_the_serving_site_once_its_application_answers(two_sites,
                                                                         monkeypatch):
    sent: list[str] = []
    answers = iter([False, True])
    monkeypatch.setattr(dns, "lookup", lambda s: ((sent[-1:] or ["10.9.0.14"]), 30, ""))
    monkeypatch.setattr(dns, "publish", lambda s, address, secret: sent.append(address))
    monkeypatch.setattr(dns, "_answers", lambda url, timeout: next(answers))
    monkeypatch.setattr(dns.time, "sleep", lambda s: None)
    monkeypatch.setattr("drctl.vault.decrypt", lambda path: {"vault_dns_tsig_secret": "a2V5"})
    done = dns.follow(two_sites, _status("pg3", "dc2"))
    assert sent == ["10.9.16.14"]
    assert done == {"managed": True, "moved": True, "name": "app.example.test.",
                    "from": ["10.9.0.14"], "address": "10.9.16.14", "site": "dc2",
                    "seconds": done["seconds"]}
    # already there: nothing sent
    assert dns.follow(two_sites, _status("pg3", "dc2"))["moved"] is False
    assert sent == ["10.9.16.14"]


def test_a_refused_update_is_exit_12_with_where_the_name_points_and_the_retry(two_sites,
                                                                              monkeypatch):
    monkeypatch.setattr(dns, "lookup", lambda s: (["10.9.0.14"], 30, ""))
    monkeypatch.setattr(dns, "_answers", lambda url, timeout: True)
    monkeypatch.setattr("drctl.vault.decrypt", lambda path: {"vault_dns_tsig_secret": "a2V5"})

    def refuse(s, address, secret):
        raise RuntimeError("10.9.0.53 refused the TSIG key 'drctl-update': PeerBadSignature")

    monkeypatch.setattr(dns, "publish", refuse)
    with pytest.raises(dns.NameNotMoved) as err:
        dns.follow(two_sites, _status("pg3", "dc2"))
    assert err.value.code == ExitCode.NAME_NOT_MOVED and int(ExitCode.NAME_NOT_MOVED) == 12
    text = str(err.value)
    assert "the DNS update failed" in text and "refused the TSIG key" in text
    assert "still points to 10.9.0.14" in text and "10.9.16.14 (site dc2)" in text
    assert "drctl dns publish" in (err.value.hint or "")
    assert err.value.detail["retry"] == "drctl dns publish"


def test_no_serving_site_moves_nothing_and_says_why(two_sites, monkeypatch):
    monkeypatch.setattr(dns, "lookup", lambda s: (["10.9.0.14"], 30, ""))
    with pytest.raises(dns.NameNotMoved, match="no site serves"):
        dns.follow(two_sites, {"primary": None, "sites": {}})


def test_a_missing_or_broken_secret_is_refused_before_anything_changes(two_sites,
                                                                        monkeypatch):
    monkeypatch.setattr("drctl.vault.decrypt", lambda path: {})
    with pytest.raises(dns.DrctlError, match="no vault_dns_tsig_secret") as err:
        dns.check_secret(two_sites)
    assert err.value.code == ExitCode.INVALID_INVENTORY
    monkeypatch.setattr("drctl.vault.decrypt",
                        lambda path: {"vault_dns_tsig_secret": "not base64!"})
    with pytest.raises(dns.DrctlError, match="not base64"):
        dns.check_secret(two_sites)


def test_status_reports_where_the_name_points_and_whether_that_site_serves(two_sites,
                                                                           monkeypatch):
    monkeypatch.setattr(dns, "lookup", lambda s: (["10.9.0.101"], 30, ""))
    view, problems = dns.view(two_sites, _status("pg1", "dc1"))
    assert view["address"] == "10.9.0.101" and view["site"] is None  # dc1 has no app VIP here
    assert problems and "not to 10.9.0.14" in problems[0]
    monkeypatch.setattr(dns, "lookup", lambda s: (["10.9.16.14"], 30, ""))
    view, problems = dns.view(two_sites, _status("pg3", "dc2"))
    assert view == {"managed": True, "name": "app.example.test.", "dns_server": "10.9.0.53",
                    "address": "10.9.16.14", "ttl": 30, "site": "dc2", "serving_site": "dc2",
                    "error": None}
    assert problems == []


# ---------------------------------------------------------------- a drill's client

def test_a_drill_client_resolves_the_name_keeps_it_for_its_ttl_and_records_moves(
        monkeypatch):
    from drctl import workload

    clock = [100.0]
    monkeypatch.setattr(workload.time, "monotonic", lambda: clock[0])
    answers = [(["10.9.0.101"], 5, ""), (["10.9.16.101"], 5, "")]
    asked: list[int] = []

    def lookup():
        asked.append(1)
        return answers[min(len(asked) - 1, 1)]

    resolver = workload.NameResolver(lookup)
    assert resolver.address() == "10.9.0.101"
    clock[0] += 4  # within the TTL: no new question
    assert resolver.address() == "10.9.0.101" and len(asked) == 1
    clock[0] += 2
    assert resolver.address() == "10.9.16.101" and len(asked) == 2
    assert [m["address"] for m in resolver.moves] == ["10.9.0.101", "10.9.16.101"]
    probe = workload.AppProbe("http://app.example.test:8080", resolver=resolver)
    assert probe._url("/health") == "http://10.9.16.101:8080/health"


# ---------------------------------------------------------------- a site that comes back

def test_failback_site_rejoins_each_node_then_switches_home_in_one_report(two_sites,
                                                                          monkeypatch):
    from drctl.operations import failback, ha

    ran: list[str] = []

    class FakePrepared:
        def __init__(self, node: str):
            self.node = node

        def run(self, ui):
            ran.append(f"failback {self.node}")
            return {"operation": "failback", "result": "ok", "status": {"primary": "pg3"},
                    "journal": [{"step": "rejoined", "host": self.node}]}

    monkeypatch.setattr(failback, "prepare", lambda inv, node, *a: FakePrepared(node))
    monkeypatch.setattr(ha, "gather", lambda inv, *a, **kw: ({}, None))
    monkeypatch.setattr(failback.switchover_op, "plan", lambda inv, facts, target: target)

    def execute(plan, inv, ui, **kw):
        ran.append(f"switchover {plan}")
        return {"operation": "switchover", "result": "ok", "status": {"primary": plan},
                "journal": [{"step": "name-moved"}]}

    monkeypatch.setattr(ha, "execute", execute)
    report = failback.run_site(two_sites.path, "dc1", ha.Interaction(yes=True), True)
    assert ran == ["failback pg1", "failback pg2", "switchover pg1"]
    assert report["site"] == "dc1" and len(report["failbacks"]) == 2
    assert report["status"] == {"primary": "pg1"} and report["result"] == "ok"
    assert [e["step"] for e in report["journal"]] == ["rejoined", "rejoined", "name-moved"]


def test_failback_switch_back_adds_the_switchover_to_one_report(two_sites, monkeypatch):
    from drctl.operations import failback, ha

    class FakePrepared:
        inventory = two_sites
        plan = type("P", (), {"target": "pg1"})()

        def run(self, ui):
            return {"operation": "failback", "result": "ok", "status": {"primary": "pg3"},
                    "journal": [{"step": "rejoined"}]}

    monkeypatch.setattr(ha, "gather", lambda inv, *a, **kw: ({}, None))
    monkeypatch.setattr(failback.switchover_op, "plan", lambda inv, facts, target: target)
    monkeypatch.setattr(ha, "execute", lambda plan, inv, ui, **kw: {
        "operation": "switchover", "result": "ok", "status": {"primary": plan},
        "journal": [{"step": "switched"}]})
    report = failback.run(FakePrepared(), ha.Interaction(yes=True), True)
    assert report["node"] == "pg1" and report["status"] == {"primary": "pg1"}
    assert [e["step"] for e in report["journal"]] == ["rejoined", "switched"]
    assert report["failback"]["status"] == {"primary": "pg3"}
