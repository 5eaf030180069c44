"""The dashboard in a real browser: the distribution's headless Chromium, driven by Selenium through the
distribution's chromedriver, loads the page from a running daemon, sees every instance, sees a state change
arrive without a reload, and leaves a screenshot in test-artifacts/ (or $OMNITRON_TEST_ARTIFACTS)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.daemon_harness import Daemon
from tests.e2e.test_dashboard import TOKEN, WEB, WORKER, config, dashboard_port
from tests.helpers import wait_for

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("OMNITRON_TEST_ARTIFACTS") or Path(__file__).parents[2] / "test-artifacts")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no Chromium and chromedriver on PATH: `apt-get install -y chromium chromium-driver` (.ci/run does)",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
                 "--disable-sync", "--no-first-run", "--metrics-recording-only", "--window-size=1400,900",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def _row_state(browser: WebDriver, key: str) -> str | None:
    """The state the page shows for `key` (read in the page: its rows are redrawn on every push)."""
    state = browser.execute_script(
        "const row = document.querySelector(`#instances tbody tr[data-key='${arguments[0]}']`);"
        "return row ? row.dataset.state : null;", key)
    return state if isinstance(state, str) else None


def test_the_page_shows_every_instance_and_a_state_change_live(run_daemon: Callable[..., Daemon],
                                                                browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    daemon = run_daemon(config("127.0.0.1:0", WEB + WORKER))
    daemon.wait_states("web", "running", count=2)
    daemon.wait_states("worker", "running")
    port = dashboard_port(daemon)
    browser.get(f"http://127.0.0.1:{port}/")
    keys = ["web:0", "web:1", "worker:0"]
    wait_for(lambda: all(_row_state(browser, k) == "running" for k in keys), timeout=20,
             describe=lambda: browser.find_element(By.TAG_NAME, "body").text)
    wait_for(lambda: browser.find_element(By.ID, "link").text == "live", timeout=10)
    marker = browser.execute_script("window.__not_reloaded = 1; return window.__not_reloaded")
    assert marker == 1

    daemon.ok("stop", "web:1")
    wait_for(lambda: _row_state(browser, "web:1") == "stopped", timeout=20,
             describe=lambda: browser.find_element(By.TAG_NAME, "body").text)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, '#events li[data-kind="stop"][data-key="web:1"]'),
             timeout=20, describe=lambda: browser.find_element(By.ID, "events").text)
    assert browser.execute_script("return window.__not_reloaded") == 1  # the same page: no reload
    assert _row_state(browser, "web:0") == "running"
    # the selected instance's recent output
    browser.execute_script("document.querySelector(`#instances tbody tr[data-key='worker:0']`).click()")
    wait_for(lambda: "more spewage" in browser.find_element(By.ID, "output").text, timeout=20,
             describe=lambda: browser.find_element(By.ID, "output").text)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))


def test_without_the_token_the_browser_gets_401_and_with_it_the_page(run_daemon: Callable[..., Daemon],
                                                                     browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    daemon = run_daemon(config("0.0.0.0:0", WEB + WORKER), env={"OMNITRON_DASHBOARD_TOKEN": TOKEN})
    port = dashboard_port(daemon)
    browser.get(f"http://127.0.0.1:{port}/")
    assert "401" in browser.find_element(By.TAG_NAME, "body").text
    assert not browser.find_elements(By.ID, "instances")
    browser.get(f"http://127.0.0.1:{port}/?token={TOKEN}")  # traded for a cookie: the page's own requests work
    wait_for(lambda: _row_state(browser, "web:0") == "running", timeout=20,
             describe=lambda: browser.find_element(By.TAG_NAME, "body").text)
    browser.get(f"http://127.0.0.1:{port}/")  # the cookie alone now
    wait_for(lambda: _row_state(browser, "web:1") == "running", timeout=20,
             describe=lambda: browser.find_element(By.TAG_NAME, "body").text)
