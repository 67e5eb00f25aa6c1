"""The operator's page in a real browser (headless Chromium) against the simulated station.

The stack is the queueserver test's (test_queueserver.py's fixtures: the simulated IOC at
120x, Redis, Tiled, the RE manager on the station's profile, the test run's document
stream proxy); ``tcstation web`` runs as its own process on a free port, and Selenium drives
the Debian ``chromium`` through ``/usr/bin/chromedriver`` (never a downloaded browser).
The page reads the sample ledger of the RE manager's data directory, the one its worker's
session appends the ramp to. Screenshots of the page go to pytest's temporary directory, and
to the directory ``TCSTATION_SCREENSHOTS`` names (relative to the repository:
``TCSTATION_SCREENSHOTS=docs/screenshots`` regenerates the README's) when it is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from polling import wait_for
from test_queueserver import (  # noqa: F401 (fixtures, used by name)
    manager,
    manager_addresses,
    redis_address,
    tiled_server,
)

from tcstation.storage.server import free_tcp_port
from tcstation.stream import StreamConfig

pytestmark = pytest.mark.integration

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = "/usr/bin/chromedriver"
REPOSITORY = Path(__file__).resolve().parents[2]
SCREENSHOTS_VARIABLE = "TCSTATION_SCREENSHOTS"
KEY = "web-test-key"
BIASES = [0.0, 0.2]
START, STOP, RATE = 44.0, 62.0, 0.5
PAGE_TIMEOUT = 60.0
RUN_TIMEOUT = 600.0


def chromium_binary() -> str | None:
    found = next((path for path in CHROMIUM_CANDIDATES if os.path.exists(path)), None)
    return found or shutil.which("chromium")


@pytest.fixture(scope="module")
def web(manager, tiled_server, manager_addresses, tmp_path_factory):  # noqa: F811
    """``tcstation web`` on the stack, with the actions' key; its URL."""
    api, ioc, manager_log = manager
    control, info = manager_addresses
    port = free_tcp_port()
    work = tmp_path_factory.mktemp("web")
    # The manager's TCSTATION_DATA_DIR (test_queueserver.manager): its worker's session
    # appends every run to the sample ledger there, and the page reads that ledger.
    environment = {**os.environ, "TCSTATION_WEB_API_KEY": KEY,
                   "TCSTATION_TILED_URI": tiled_server.uri,
                   "TCSTATION_TILED_API_KEY": tiled_server.api_key,
                   "TCSTATION_DATA_DIR": str(manager_log.parent / "data")}
    environment.pop("TCSTATION_STATION_CONFIG", None)
    command = [sys.executable, "-m", "tcstation", "web", "--port", str(port),
               "--prefix", ioc.prefix, "--stream", StreamConfig.from_environment().out_address,
               "--qserver-control", control, "--qserver-info", info]
    log_path = work / "web.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=environment, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def serving():
        assert process.poll() is None, log_path.read_text()
        try:
            state = httpx.get(url + "/api/state", timeout=2.0).json()
        except httpx.HTTPError:
            return False
        reading = state["station"]["readings"]["sample_temperature"]
        return reading["connected"] and state["queue"]["connected"]

    try:
        wait_for(serving, PAGE_TIMEOUT, "the page to serve the station and the queue", poll=0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from the system packages, driven by its chromedriver."""
    binary = chromium_binary()
    if binary is None or not os.path.exists(CHROMEDRIVER):
        pytest.skip("no chromium binary (or no /usr/bin/chromedriver): install the Debian "
                    "packages chromium and chromium-driver (.ci/run does, as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1400,1500"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _text(driver, selector: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return driver.find_element(By.CSS_SELECTOR, selector).text
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def _elements(driver, selector: str) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def sample_temperature(driver) -> float | None:
    try:
        return float(_text(driver, "#reading-sample_temperature td.value"))
    except ValueError:
        return None


@pytest.fixture(scope="module")
def screenshot(tmp_path_factory):
    """Save the page as NAME in the test's temporary directory (and in $TCSTATION_SCREENSHOTS)."""
    directories = [tmp_path_factory.mktemp("screenshots")]
    if os.environ.get(SCREENSHOTS_VARIABLE, "").strip():
        asked = Path(os.environ[SCREENSHOTS_VARIABLE].strip()).expanduser()
        directories.append(asked if asked.is_absolute() else REPOSITORY / asked)

    def save(driver, name: str) -> None:
        for directory in directories:
            directory.mkdir(parents=True, exist_ok=True)
            assert driver.save_screenshot(str(directory / name)), directory / name

    return save


def test_the_page_shows_the_station_live(web, browser):
    browser.get(web)
    wait_for(lambda: _text(browser, "#connection") == "live", PAGE_TIMEOUT, "the live feed")
    wait_for(lambda: sample_temperature(browser) is not None, PAGE_TIMEOUT,
             "a sample temperature on the page")
    assert _text(browser, "#reading-sample td.value") == "mg_mgo"
    assert "Mounted: mg_mgo" in _text(browser, "#warm")
    assert _elements(browser, "#alarms .alarm")
    # No run yet: the ledger is empty and the warm time is held against --warm-limit.
    wait_for(lambda: "no samples in the ledger yet" in _text(browser, "#samples-status"),
             PAGE_TIMEOUT, "the page to read the empty sample ledger")
    assert _elements(browser, "#warm")[0].get_attribute("data-limit-source") == "option"
    assert "of 30.0 min (--warm-limit: the sample ledger has no mount)" in _text(browser, "#warm")


def test_a_queue_action_without_the_key_is_refused(web, browser, manager):  # noqa: F811
    api, _, _ = manager
    browser.get(web)
    wait_for(lambda: _text(browser, "#connection") == "live", PAGE_TIMEOUT, "the live feed")
    _elements(browser, "#actions summary")[0].click()
    _elements(browser, "#queue-add")[0].click()
    wait_for(lambda: "refused (403)" in _text(browser, "#action-result"), PAGE_TIMEOUT,
             "the page to say the action was refused")
    assert "needs the page's API key" in _text(browser, "#action-result")
    assert api.queue_get()["items"] == []
    refused = httpx.post(web + "/api/queue/start", timeout=5.0)
    assert refused.status_code == 403
    # With the key, the queueserver's permissions still apply: operators may not expose.
    exposure = httpx.post(web + "/api/queue/add", headers={"X-API-Key": KEY}, timeout=30.0,
                          json={"plan": "expose_to_room_temperature", "kwargs": {"minutes": 1}})
    assert exposure.status_code == 400
    assert "expose_to_room_temperature" in exposure.json()["error"]
    assert api.queue_get()["items"] == []
    assert api.status()["manager_state"] == "idle"


def test_a_queued_ramp_runs_on_the_page_to_its_tc_table(web, browser, manager,  # noqa: F811
                                                       screenshot):
    from selenium.common.exceptions import StaleElementReferenceException

    api, _, log_path = manager
    browser.get(web)
    wait_for(lambda: _text(browser, "#connection") == "live", PAGE_TIMEOUT, "the live feed")
    _elements(browser, "#actions summary")[0].click()
    _elements(browser, "#api-key")[0].send_keys(KEY)
    arguments = _elements(browser, "#plan-kwargs")[0]
    arguments.clear()
    arguments.send_keys(f'{{"start": {START}, "stop": {STOP}, "rate": {RATE}, '
                        f'"biases": [{BIASES[0]}, {BIASES[1]}]}}')
    _elements(browser, "#queue-add")[0].click()
    wait_for(lambda: _text(browser, "#action-result") == "add: done", PAGE_TIMEOUT,
             "the page to add the item")
    queued = wait_for(lambda: _elements(browser, "#queued li"), PAGE_TIMEOUT,
                      "the item in the page's queue")
    assert "transport_ramp" in queued[0].text and "[tcstation web]" in queued[0].text
    item_uid = queued[0].get_attribute("data-uid")

    _elements(browser, "#queue-start")[0].click()
    wait_for(lambda: _text(browser, "#action-result") == "start: done", PAGE_TIMEOUT,
             "the page to start the queue")
    wait_for(lambda: _elements(browser, "#running-item")[0].get_attribute("data-uid") == item_uid,
             PAGE_TIMEOUT, "the item running on the page")

    # The sample temperature the page shows once the ramp's own points are on it.
    seen: list[float] = []

    def ramp_points_shown():
        value = sample_temperature(browser)
        if value is not None and (not seen or value != seen[-1]):
            seen.append(value)
        return " points" in _text(browser, "#run-title") and _elements(browser, "#legend span")

    wait_for(ramp_points_shown, RUN_TIMEOUT, "the ramp's curves on the page", poll=0.2)
    seen.clear()
    wait_for(lambda: ramp_points_shown() and len(seen) >= 5 and max(seen) - min(seen) > 0.5,
             RUN_TIMEOUT, f"the sample temperature changing on the page (saw {seen})", poll=0.2)
    screenshot(browser, "web-ramp-running.png")

    def finished():
        ramp_points_shown()
        entries = [entry for entry in _elements(browser, "#history li")
                   if entry.get_attribute("data-uid") == item_uid]
        return entries[0] if entries else None

    entry = wait_for(finished, RUN_TIMEOUT, "the item in the page's history", poll=0.5)
    assert entry.get_attribute("data-exit-status") == "completed", (
        entry.text, log_path.read_text()[-3000:])
    history = api.history_get()["items"][-1]
    (run_uid,) = history["result"]["run_uids"]
    assert seen[0] != seen[-1]

    def run_row_with_tc_table():
        rows = [row for row in _elements(browser, "#runs tbody > tr")
                if row.get_attribute("data-uid") == run_uid]
        if rows and len(rows[0].find_elements("css selector", "table.tc tbody tr")) == len(BIASES):
            return rows[0]
        return None

    row = wait_for(run_row_with_tc_table, RUN_TIMEOUT, "the finished run's Tc table on the page",
                   poll=0.5)
    onsets = [cell.text for cell in row.find_elements("css selector", "table.tc tbody tr td")]
    assert any(text.endswith(" K") and "±" in text for text in onsets), onsets
    assert "0 mA" in onsets and "200 mA" in onsets
    live_rows = _elements(browser, "#live-tc tbody tr")
    assert len(live_rows) == len(BIASES)
    assert _text(browser, "#run-title").count("success") == 1
    links = {link.text: link.get_attribute("href")
             for link in row.find_elements("css selector", "a")}
    downloaded = httpx.get(links["CSV"], timeout=60.0)
    assert downloaded.status_code == 200, downloaded.text
    assert len(downloaded.text.splitlines()) > 10
    drawn = httpx.get(links["figure"], timeout=60.0)
    assert drawn.status_code == 200 and drawn.content.startswith(b"\x89PNG"), drawn.text[:300]
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot(browser, "web-ramp-finished.png")

    # The worker's session put the ramp in the sample ledger, on the sample it saw mounted.
    def mounted_sample():
        """(sample id, row text) of the mounted sample once it lists one run."""
        for row in _elements(browser, "#samples tbody tr"):
            try:
                cells = [cell.text for cell in row.find_elements("css selector", "td")]
                if "(mounted)" in cells[0] and cells[5] == "1":
                    return row.get_attribute("data-sample-id"), " | ".join(cells)
            except StaleElementReferenceException:  # the panel re-rendered meanwhile
                return None
        return None

    sample_id, listed = wait_for(mounted_sample, PAGE_TIMEOUT,
                                 "the ramp's sample in the ledger panel", poll=0.5)
    assert sample_id.startswith("mg_mgo-") and "| mg_mgo |" in listed
    assert "/ 12.0 min" in listed, listed

    def history_with_tc_table():
        try:
            _elements(browser, f'#samples tr[data-sample-id="{sample_id}"]')[0].click()
            for entry in _elements(browser, "#sample-history tbody > tr"):
                if (entry.get_attribute("data-run-uid") == run_uid and len(
                        entry.find_elements("css selector", "table.tc tbody tr")) == len(BIASES)):
                    return entry.text
        except (StaleElementReferenceException, IndexError):
            return None
        return None

    entry = wait_for(history_with_tc_table, RUN_TIMEOUT,
                     "the run with its Tc table in the sample's history", poll=1.0)
    assert "transport_ramp" in entry and "success" in entry, entry
    assert sample_id in _text(browser, "#sample-history-title")
    assert not _elements(browser, "#sample-history tr.flagged")
    # The station panel now holds the warm time against this sample's own tolerance.
    wait_for(lambda: _elements(browser, "#warm")[0].get_attribute("data-limit-source")
             == "ledger", PAGE_TIMEOUT, "the warm time against the ledger's tolerance")
    assert f"of the 12.0 min {sample_id} tolerates" in _text(browser, "#warm")
    browser.execute_script("document.getElementById('samples-panel').scrollIntoView()")
    screenshot(browser, "web-samples.png")
