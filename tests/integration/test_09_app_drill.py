"""The demo application on app1 (through its pooler to the VIP) and `drctl drill`, as a user
meets them."""

import copy
import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from drctl_lab.hosts import INVENTORY, lab_vars, power_off, psql, sh, wait_for
from tests.integration.conftest import ROOT, drctl_json, restore_snapshot

pytestmark = pytest.mark.usefixtures("clean_cluster")

_HOSTS = yaml.safe_load(INVENTORY.read_text()) if INVENTORY.exists() else {}
APP = "http://{}:8080".format(
    _HOSTS.get("all", {}).get("children", {}).get("app", {}).get("hosts", {})
    .get("app1", {}).get("ansible_host", "172.29.53.14"))


class Browser:
    """A cookie-keeping HTTP client that fills forms the way a browser would."""

    def __init__(self, cookies=(), base: str = APP):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        for c in cookies:
            self.jar.set_cookie(copy.copy(c))
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def clone(self):
        """Another client with this one's cookies as they are now."""
        return Browser(list(self.jar), self.base)

    def get(self, path):
        return self._open(path, None)

    def post(self, path, form):
        return self._open(path, urllib.parse.urlencode(form).encode())

    def _open(self, path, data):
        try:
            with self.opener.open(self.base + path, data=data, timeout=15) as r:
                return r.status, r.read().decode(), r.url
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), exc.url

    def form(self, path):
        status, body, _ = self.get(path)
        assert status == 200, body
        fields = dict(re.findall(r'name="(csrf|idempotency_key)" value="([^"]+)"', body))
        assert "csrf" in fields, body
        return fields

    def register(self, username, password, fields=None):
        fields = fields or self.form("/register")
        return self.post("/register", {**fields, "username": username, "password": password})

    def login(self, username, password):
        return self.post("/login", {**self.form("/login"), "username": username,
                                    "password": password})


def new_name():
    return "u" + uuid.uuid4().hex[:12]


def test_health_reaches_the_writable_primary_through_the_vip():
    with urllib.request.urlopen(APP + "/health", timeout=10) as r:
        data = json.loads(r.read())
    assert data["ok"] and data["writable"] and data["database"] == "reachable"
    vip = lab_vars()["drctl_vip"].split("/")[0]
    assert data["server"] == vip, "the app must reach the database through the VIP"


def test_register_profile_logout_login():
    b, name = Browser(), new_name()
    status, body, url = b.register(name, "correct horse battery")
    assert status == 200 and url.endswith("/profile") and f'id="username">{name}<' in body
    status, body, _ = b.post("/logout", {"csrf": b.form("/login")["csrf"]})
    assert status == 200
    status, body, url = b.get("/profile")
    assert url.endswith("/login"), "the profile is only for its logged-in owner"
    status, body, _ = b.login(name, "wrong password!")
    assert status == 401 and "Wrong username or password." in body
    status, body, _ = b.login("nobody-" + name, "wrong password!")
    assert status == 401 and "Wrong username or password." in body  # says nothing more
    status, body, url = b.login(name, "correct horse battery")
    assert status == 200 and f'id="username">{name}<' in body
    stored = psql("pg1", f"select password_hash from app.users where username = '{name}'",
                  db="app", check=False) or psql(
        "pg2", f"select password_hash from app.users where username = '{name}'", db="app")
    assert stored.startswith("$argon2"), "passwords are stored only as argon2 hashes"
    assert "correct horse" not in sh("app1", "journalctl -u drctl-demo-app --no-pager")


@pytest.mark.parametrize("username,password,status,message", [
    ("", "long enough pw", 400, "Username: 3 to 32 characters"),
    ("x" * 33, "long enough pw", 400, "Username: 3 to 32 characters"),
    ("bob'; drop table app.users; --", "long enough pw", 400, "Username: 3 to 32"),
    ("okname", "short", 400, "Password: 8 to 128 characters."),
])
def test_bad_registrations_get_clear_errors(username, password, status, message):
    code, body, _ = Browser().register(username, password)
    assert code == status and message in body and "Traceback" not in body


def test_taken_username_and_forged_form():
    name = new_name()
    assert Browser().register(name, "first password")[0] == 200
    code, body, _ = Browser().register(name, "second password")
    assert code == 409 and "That username is taken." in body
    code, body, _ = Browser().post("/register", {"csrf": "forged", "idempotency_key":
                                                 str(uuid.uuid4()), "username": new_name(),
                                                 "password": "long enough pw"})
    assert code == 400 and "did not come from this site" in body


def test_a_retried_registration_neither_duplicates_nor_says_taken():
    b, name = Browser(), new_name()
    fields = b.form("/register")
    lost_response = b.clone()  # as if the first answer never reached the browser
    first = b.register(name, "same password!", fields)
    again = lost_response.register(name, "same password!", fields)  # the same POST again
    assert first[0] == 200 and again[0] == 200, again[1]
    assert f'id="username">{name}<' in again[1]


@pytest.fixture(scope="module")
def drill():
    """A user logged in, then a 15 s switchover drill under load: (browser, name, report)."""
    b, name = Browser(), new_name()
    assert b.register(name, "survives the drill")[0] == 200
    out = ROOT / "test-artifacts" / "drill"
    code, report = drctl_json("drill", "--scenario", "switchover", "--duration", "15",
                              "--out", str(out), "--yes", timeout=900)
    assert code == 0, report
    return b, name, report


def app_hosts_journal() -> str:
    """What the application VIP's keepalived, the application and its pooler said on each
    app host in the last minutes (the checks' own requests left out): shown with a failed
    request, whose cause would otherwise leave with the lab."""
    return "\n".join(
        f"--- {host}\n" + sh(host, "journalctl -u keepalived -u drctl-demo-app -u pgbouncer "
                              "--since '-3min' --no-pager -o short-precise | grep -v -e "
                              "'GET /alive' -e 'GET /health' | tail -60", check=False)
        for host in ("app1", "app3"))


def test_drill_switchover_loses_nothing_and_reports_consistently(drill):
    b, name, report = drill
    sql, app = report["sql"], report["app"]
    assert sql["lost"] == 0 and sql["acknowledged"] > 100
    assert 0 <= sql["write_outage_s"] <= report["duration_s"]
    assert sum(report["series"]["writes"]) == sql["acknowledged"]
    assert sum(report["series"]["app_ok"]) + sum(report["series"]["app_errors"]) == \
        app["requests"]
    assert app["requests"] > 0 and app["registrations_missing"] == []
    # the application reaches the database through its host's pooler, which the
    # switchover paused around the hand-over: requests waited, none failed
    if app["failed"]:
        raise AssertionError(f"{app['failed']} failed app requests: {app['failures']}\n"
                             f"{app_hosts_journal()}")
    # the same writes through app1's pooler: they waited out the hand-over, none failed
    # and none was lost
    pooled = report["pooled"]
    assert pooled["host"] == "app1" and pooled["acknowledged"] > 100, pooled
    assert pooled["lost"] == 0 and pooled["failed_attempts"] == 0, pooled
    assert pooled["app_requests"] == app["requests"]
    assert report["topology_before"]["primary"] != report["topology_after"]["primary"]
    assert report["topology_after"]["vip_holders"] == [report["topology_after"]["primary"]]
    assert [o["exit_code"] for o in report["operations"]] == [0]
    html = Path(report["html_path"]).read_text()
    assert "<svg" in html and "<script" not in html and "http://" not in html.split("<svg")[0]
    assert json.loads(Path(report["json_path"]).read_text())["sql"] == sql
    # the session of the user logged in before the drill survived it
    status, body, _ = b.get("/profile")
    assert status == 200 and f'id="username">{name}<' in body
    # and the user registered before the drill logs in afterwards, on the new primary
    status, body, _ = Browser().login(name, "survives the drill")
    assert status == 200 and f'id="username">{name}<' in body


def test_the_drill_report_shows_its_chart_in_a_browser(drill):
    """This drill's own HTML report (not whichever is newest in the folder), in Chromium."""
    from selenium.webdriver.common.by import By

    from tests.integration.browser import chromium, screenshot

    report = drill[2]
    driver = chromium()
    try:
        driver.set_page_load_timeout(30)
        driver.get(Path(report["html_path"]).resolve().as_uri())
        chart = driver.find_element(By.CSS_SELECTOR, "svg#timeline")
        assert chart.size["width"] > 600 and chart.size["height"] > 150
        bars = driver.find_elements(By.CSS_SELECTOR, "svg#timeline rect.w")
        assert len(bars) > 50, "acknowledged writes per 100 ms are drawn"
        verdict = driver.find_element(By.CSS_SELECTOR, "#verdict").text
        assert "PASSED" in verdict, verdict
        screenshot(driver, "06-drill-report")
    finally:
        driver.quit()


def test_people_log_in_while_the_primary_is_powered_off():
    """Logging in only reads: the application asks any database node of its site first,
    so a returning user gets in while the primary is gone (before anyone fails over),
    and a wrong password is still refused."""
    code, st = drctl_json("status")  # the drill above may have switched over
    assert code == 0, st
    primary = st["primary"]
    standby = next(n["host"] for n in st["nodes"] if n["role"] == "standby")
    b, name = Browser(), new_name()
    assert b.register(name, "logs in anyway")[0] == 200
    wait_for(f"{name} to reach the standby", lambda: psql(
        standby, f"select count(*) from app.users where username = '{name}'",
        db="app", check=False) == "1", timeout=30, interval=0.5)
    power_off(primary)
    try:
        for _ in range(3):  # one finds the primary gone (libpq's 2 s), the next the standby
            status, body, _ = Browser().login(name, "logs in anyway")
            assert status == 200 and f'id="username">{name}<' in body, (status, body[-500:])
        assert Browser().login(name, "not the password")[0] == 401
        assert psql(standby, "select pg_is_in_recovery()") == "t", "nobody failed over"
    finally:
        restore_snapshot()
