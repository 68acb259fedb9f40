"""The service, not only its database: dc1's application VIP sits on exactly one app host
whose application answers, and moves when that host loses its power or its application
stops answering. Users registered before the move log in after it, through the VIP."""

from __future__ import annotations

import json
import urllib.request

import pytest

from drctl_lab.hosts import lab_vars, power_off, power_on, sh, wait_for
from tests.integration.conftest import drctl_json, holds_for
from tests.integration.test_09_app_drill import Browser, new_name

pytestmark = pytest.mark.usefixtures("clean_cluster")
APP_HOSTS = ("app1", "app3")
# Longer than keepalived's master-down interval at the role's advert_int (3 adverts of
# 0.5 s plus skew) and than one failed check (2 s), so a second holder or a wrong move
# would be seen
SETTLE_S = 4


def app_vip() -> str:
    return lab_vars()["drctl_app_vip"].split("/")[0]


def app_vip_holders(hosts=APP_HOSTS) -> list[str]:
    vip = app_vip()
    return [h for h in hosts if f" {vip}/" in sh(h, "ip -o addr show dev eth0", check=False)]


def through_vip() -> Browser:
    """A user's browser that knows the service only by its application VIP."""
    return Browser(base=f"http://{app_vip()}:8080")


def health_through_vip() -> dict | None:
    try:
        with urllib.request.urlopen(f"http://{app_vip()}:8080/health", timeout=3) as r:
            return json.loads(r.read())
    except OSError:
        return None


def one_holder() -> str:
    wait_for("exactly one holder of the application VIP",
             lambda: len(app_vip_holders()) == 1, timeout=20)
    holds_for("exactly one holder of the application VIP",
              lambda: len(app_vip_holders()) == 1, SETTLE_S)
    return app_vip_holders()[0]


def test_exactly_one_app_host_holds_the_vip_and_status_shows_it():
    holder = one_holder()
    code, report = drctl_json("status")
    assert code == 0, report["problems"]
    assert report["app_vips"] == [{"site": "default", "address": app_vip(),
                                   "holders": [holder], "ok": True, "problems": []}]
    health = health_through_vip()
    assert health is not None and health["writable"] is True


def test_the_vip_moves_when_its_holder_loses_power_and_users_log_in_after():
    holder = one_holder()
    spare = next(h for h in APP_HOSTS if h != holder)
    user, password = new_name(), "correct horse battery"
    browser = through_vip()
    status, body, _url = browser.register(user, password)
    assert status == 200 and f'id="username">{user}<' in body, body[:300]
    power_off(holder)
    try:
        wait_for("the service to answer through its application VIP",
                 lambda: (health_through_vip() or {}).get("writable") is True, timeout=20)
        assert app_vip_holders((spare,)) == [spare]
        status, body, _url = through_vip().login(user, password)
        assert status == 200 and f'id="username">{user}<' in body, \
        "a user registered before the move logs in through the same address"
        code, report = drctl_json("status")
        assert code == 7, "an app host that cannot be asked is a problem"
        entry = report["app_vips"][0]
        assert entry["holders"] == [spare]
        assert any(f"app host {holder} is unreachable" in p for p in entry["problems"])
    finally:
        power_on(holder)
    # the host that comes back takes nothing back (nopreempt): one holder, the spare
    wait_for("keepalived active again on the host that came back", lambda: sh(
        holder, "systemctl is-active keepalived", check=False) == "active", timeout=30)
    holds_for("the VIP staying on the spare alone", lambda: app_vip_holders() == [spare],
              SETTLE_S)
    wait_for("a healthy status", lambda: drctl_json("status")[0] == 0, timeout=30)


def test_an_application_that_stops_answering_gives_the_vip_up():
    holder = one_holder()
    spare = next(h for h in APP_HOSTS if h != holder)
    # frozen, not stopped: its port still accepts connections, it answers nothing
    sh(holder, "systemctl kill --signal=SIGSTOP drctl-demo-app")
    try:
        wait_for(f"the VIP to leave {holder}, whose application does not answer",
                 lambda: app_vip_holders() == [spare], timeout=15)
        holds_for("the VIP on the answering host alone", lambda: app_vip_holders() == [spare],
                  SETTLE_S)
        assert (health_through_vip() or {}).get("writable") is True
    finally:
        sh(holder, "systemctl kill --signal=SIGCONT drctl-demo-app")
    holds_for("the VIP staying where it moved", lambda: app_vip_holders() == [spare],
              SETTLE_S)


def test_nobody_holding_the_vip_is_a_problem_in_status():
    for h in APP_HOSTS:
        sh(h, "systemctl stop drctl-demo-app")
    try:
        wait_for("nobody to hold the application VIP", lambda: app_vip_holders() == [],
                 timeout=15)
        code, report = drctl_json("status")
        assert code == 7
        entry = report["app_vips"][0]
        assert entry["holders"] == [] and entry["ok"] is False
        assert any("nobody holds the application VIP" in p for p in report["problems"])
    finally:
        for h in APP_HOSTS:
            sh(h, "systemctl start drctl-demo-app")
    one_holder()
    wait_for("a healthy status", lambda: drctl_json("status")[0] == 0, timeout=30)


def test_a_killed_keepalived_is_started_again_and_leaves_no_second_holder():
    holder = one_holder()
    before = sh(holder, "systemctl show -p MainPID --value keepalived")
    sh(holder, "systemctl kill --signal=SIGKILL keepalived")
    wait_for(f"systemd to start keepalived again on {holder}", lambda: (
        sh(holder, "systemctl is-active keepalived", check=False) == "active"
        and sh(holder, "systemctl show -p MainPID --value keepalived", check=False)
        not in ("0", before)), timeout=20)
    # the spare took the VIP while keepalived was dead; the address the killed one left
    # behind is gone, so exactly one host holds it
    one_holder()
    assert (health_through_vip() or {}).get("writable") is True


def test_the_app_host_loss_drill_serves_through_the_vip_and_loses_nothing(tmp_path):
    holder = one_holder()
    code, report = drctl_json("drill", "--scenario", "app-host-loss", "--duration", "15",
                              "--yes", "--out", str(tmp_path), timeout=600)
    assert code == 0, report
    assert report["app"]["urls"] == [f"http://{app_vip()}:8080"], \
        "users know the service by its address only"
    assert report["sql"]["lost"] == 0 and report["app"]["registrations_missing"] == []
    assert report["app"]["registered"] > 0
    assert any(f"docker kill {holder}" in e["label"] for e in report["events"])
    assert any("the service answers again" in e["label"] for e in report["events"])
    spare = next(h for h in APP_HOSTS if h != holder)
    assert any(f"the application VIP moved from {holder} to {spare}" in e["label"]
               for e in report["events"]), [e["label"] for e in report["events"]]
    one_holder()
