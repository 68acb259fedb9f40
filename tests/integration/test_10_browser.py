"""The demo application's pages and the drill's HTML report in a real headless browser."""

import uuid

import pytest

from tests.integration.browser import chromium, screenshot
from tests.integration.test_09_app_drill import APP


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def by(driver, css):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def test_register_and_login_forms_work_in_a_browser(browser):
    name = "b" + uuid.uuid4().hex[:10]
    browser.get(APP + "/register")
    assert browser.title == "Register"
    screenshot(browser, "01-register-form")
    by(browser, "input[name=username]").send_keys(name)
    by(browser, "input[name=password]").send_keys("browser password")
    by(browser, "#register").click()
    assert by(browser, "#username").text == name
    screenshot(browser, "02-profile-after-register")
    by(browser, "#logout").click()
    browser.get(APP + "/login")
    by(browser, "input[name=username]").send_keys(name)
    by(browser, "input[name=password]").send_keys("not the password")
    by(browser, "#login").click()
    assert by(browser, "[role=alert]").text == "Wrong username or password."
    screenshot(browser, "03-login-refused")
    by(browser, "input[name=username]").send_keys(name)
    by(browser, "input[name=password]").send_keys("browser password")
    by(browser, "#login").click()
    assert by(browser, "#username").text == name
    screenshot(browser, "04-profile-after-login")


def test_bad_input_shows_an_error_page_not_a_crash(browser):
    browser.get(APP + "/register")
    by(browser, "input[name=username]").send_keys("NO SPACES ALLOWED!")
    by(browser, "input[name=password]").send_keys("long enough pw")
    by(browser, "#register").click()
    assert "Username: 3 to 32 characters" in by(browser, "[role=alert]").text
    screenshot(browser, "05-register-bad-input")


def test_the_drill_report_shows_its_chart(browser):
    from tests.integration.browser import ROOT

    reports = sorted((ROOT / "test-artifacts" / "drill").glob("*.html"))
    assert reports, "test_09's drill writes its report into test-artifacts/drill"
    browser.get(reports[-1].as_uri())
    chart = by(browser, "svg#timeline")
    assert chart.size["width"] > 600 and chart.size["height"] > 150
    from selenium.webdriver.common.by import By

    bars = browser.find_elements(By.CSS_SELECTOR, "svg#timeline rect.w")
    assert len(bars) > 50, "acknowledged writes per 100 ms are drawn"
    assert "PASSED" in by(browser, "#verdict").text
    screenshot(browser, "06-drill-report")
