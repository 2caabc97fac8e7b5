"""The console end to end, in real headless Chromium (Debian's chromium + chromium-driver):
a real worker scores simulator traffic on the test broker, ``kuntur console`` (a real
subprocess) reads the alerts, an investigator signs in, opens an alert, reads a reason,
confirms fraud; the label arrives on the labels topic and the worker counts it. A viewer
cannot decide, a forged form without the CSRF token is refused, and a restarted console
keeps the decision. The test takes a screenshot; with KUNTUR_UPDATE_SCREENSHOT=1 it
replaces docs/console.png (the README's), otherwise it writes it under the test's tmp dir."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config.settings import Settings
from offline.simulator import SimConfig, generate
from stream.dev.broker import free_port
from stream.dev.process import worker_env
from tests.integration.conftest import ROOT, consume, produce_json, wait_for

pytestmark = pytest.mark.slow

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PASSWORD = "investigator password 1"
SCREENSHOT = ROOT / "docs" / "console.png"
UPDATE_SCREENSHOT = os.environ.get("KUNTUR_UPDATE_SCREENSHOT") == "1"

webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (make browser)")
if not (Path(CHROMIUM).exists() and shutil.which("chromedriver")):
    pytest.skip("Debian's chromium and chromium-driver are needed (make browser)", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402


class ConsoleProcess:
    """A real ``kuntur console`` subprocess."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings, self.log_path = settings, log_path
        self.url = f"http://127.0.0.1:{settings.console_port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [sys.executable, "-m", "stream.cli", "console", *args],
            input=stdin.encode(),
            env=worker_env(self.settings),
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=True,
        )
        return done.stdout.decode()

    def start(self) -> ConsoleProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "console"],
                env=worker_env(self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        wait_for(self.healthy, 60, f"console /health\n{self.log()}")
        return self

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"console exited with {self.proc.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)

    def alerts_stored(self) -> int:
        db = sqlite3.connect(self.settings.console_db)
        try:
            return int(db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])
        except sqlite3.OperationalError:
            return 0
        finally:
            db.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


@pytest.fixture
def browser() -> Iterator[object]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    # the screenshot's size is the page's, not the window's (which includes the browser's frame)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 1200, "height": 800, "deviceScaleFactor": 1, "mobile": False}
    )
    yield driver
    driver.quit()


def wait_text(driver, text: str, timeout: float = 15) -> None:
    """Wait for ``text`` on the page (a click returns before the next page has loaded)."""
    wait_for(lambda: text in driver.page_source, timeout, f"{text!r} on {driver.current_url}")


def sign_in(driver, url: str, user: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{url}/login")
    driver.find_element(By.NAME, "user").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_text(driver, "Alert queue")


def test_investigator_confirms_fraud_in_the_browser_and_the_worker_learns_it(settings, start_worker, browser, tmp_path):
    settings = settings.replace(
        alert_threshold=0.0,  # every transaction alerts
        warmup_genuine=0,
        label_horizon_s=3_600.0,  # the model learns (genuine after an hour) so that alerts carry reasons
        console_port=free_port(),
        console_db=str(tmp_path / "console.sqlite3"),
        console_daily_budget=25,
    )
    worker = start_worker(settings)
    events = list(generate(SimConfig(seed=11, accounts=300, transactions=1_500)))
    txs = [e.value for e in events if e.kind == "transaction"]
    produce_json(settings, settings.topic_labels, [e.value for e in events if e.kind == "label"])
    produce_json(settings, settings.topic_transactions, txs)
    alerts = consume(settings, settings.topic_alerts, lambda a: len(a) >= len(txs), 120, worker)
    by_id = {a["alert_id"]: a for a in alerts}
    print(f"{sum(1 for a in alerts if a['reasons'])} of {len(alerts)} alerts carry reasons")

    console = ConsoleProcess(settings, tmp_path / "console.log")
    assert "added ana (investigator)" in console.cli("--add-user", "ana", "--role", "investigator", stdin=PASSWORD)
    assert "added vic (viewer)" in console.cli("--add-user", "vic", "--role", "viewer", stdin=PASSWORD)
    console.start()
    try:
        wait_for(lambda: console.alerts_stored() >= len(txs), 60, "the console to store every alert")

        # an investigator signs in, sees the queue with its budget, opens the top alert
        sign_in(browser, console.url, "ana")
        assert "Daily budget" in browser.page_source and "outside the budget of 25" in browser.page_source
        explained = [a for a in alerts if a["reasons"]]
        assert explained, "no alert carries a reason"
        alert_id = max(explained, key=lambda a: a["score"])["alert_id"]
        day = datetime.fromisoformat(by_id[alert_id]["event_time"]).astimezone(ZoneInfo("America/Lima")).date()
        browser.get(f"{console.url}/?day={day.isoformat()}")
        browser.find_element(By.CSS_SELECTOR, f"table.queue a[href='/alerts/{alert_id}']").click()
        wait_for(lambda: browser.current_url.endswith(alert_id), 15, "the alert page")
        alert = by_id[alert_id]
        reason = browser.find_element(By.CSS_SELECTOR, "ol.reasons li").text
        assert alert["reasons"] and reason.startswith(alert["reasons"][0]["text"])
        assert alert["model_version"] in browser.page_source and "◀ this alert" in browser.page_source
        shot = SCREENSHOT if UPDATE_SCREENSHOT else tmp_path / "console.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

        labels_before = worker.metrics().get("labels", 0.0)
        browser.find_element(By.NAME, "note").send_keys("customer denies the purchase")
        browser.find_element(By.CSS_SELECTOR, "button.fraud").click()
        wait_text(browser, "Recorded decision #1: confirmed fraud")
        labels = consume(
            settings,
            settings.topic_labels,
            lambda ls: any(x["transaction_id"] == alert["transaction_id"] for x in ls),
            30,
        )
        label = next(x for x in labels if x["transaction_id"] == alert["transaction_id"])
        assert label["is_fraud"] is True and label["account_id"] == alert["account_id"] and label["reported_at"]
        wait_for(lambda: worker.metrics().get("labels", 0.0) > labels_before, 60, "kuntur_labels_total", worker)

        # a forged form (no CSRF token) is refused and records nothing
        other = next(a for a in alerts if a["alert_id"] != alert_id)
        browser.get(f"{console.url}/alerts/{other['alert_id']}")
        browser.execute_script("document.querySelector('form.decide input[name=csrf]').remove()")
        browser.find_element(By.CSS_SELECTOR, "button.genuine").click()
        wait_text(browser, "no valid CSRF token")
        browser.get(f"{console.url}/alerts/{other['alert_id']}")
        assert "No decision yet" in browser.page_source

        # a viewer reads, has no decision form, and a decision posted with a valid token is refused
        sign_in(browser, console.url, "vic")
        browser.get(f"{console.url}/alerts/{other['alert_id']}")
        assert "only investigators decide" in browser.page_source
        assert not browser.find_elements(By.CSS_SELECTOR, "button.fraud")
        browser.execute_script(
            """const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];
            for (const [k, v] of [['csrf', document.querySelector('input[name=csrf]').value], ['outcome', 'fraud']]) {
              const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
            }
            document.body.appendChild(f); f.submit();""",
            f"/alerts/{other['alert_id']}/decision",
        )
        wait_text(browser, "Refused")
        assert "only investigators decide" in browser.page_source

        # restart: the decision survives and the decided alert is not new again
        console.stop()
        console.start()
        sign_in(browser, console.url, "ana")
        browser.get(f"{console.url}/alerts/{alert_id}")
        assert "confirmed fraud" in browser.find_element(By.TAG_NAME, "h1").text
        assert "customer denies the purchase" in browser.page_source
        browser.get(f"{console.url}/?status=new&min_score=0")
        assert alert_id not in browser.page_source
        assert console.alerts_stored() == len(txs)
        assert alert["account_id"] not in console.log_path.read_text()  # info logs never name an account
    finally:
        console.stop()
