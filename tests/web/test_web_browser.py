"""The form in a real browser (headless Chromium through Selenium), CSRF on, with a screenshot of each page.

Needs Debian's ``chromium`` and ``chromium-driver``: ``apt-get install -y chromium chromium-driver``.
Without them this test FAILS (it does not skip): the browser check is part of the suite.
Screenshots go to ``reports/web-screenshots/`` (gitignored); the path is printed.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from web_helpers import LOYAL, SHOPPERS
from werkzeug.serving import make_server

from deploy.web.app import create_app

pytestmark = pytest.mark.browser

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "web-screenshots"
INSTALL = "install them with: apt-get update && apt-get install -y chromium chromium-driver"
TIMEOUT = 20


@contextlib.contextmanager
def _serving(model_dir: Path) -> Iterator[str]:
    """The app (CSRF on, as in production) on an ephemeral port of 127.0.0.1, in a thread."""
    app = create_app(model_dir, registry=CollectorRegistry())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="web-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def base_url(model_dir):
    with _serving(model_dir) as url:
        yield url


@pytest.fixture(scope="module")
def shoppers_url(shoppers_dir):
    """The app over the model trained on the shoppers example table."""
    with _serving(shoppers_dir) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"headless browser test needs {', '.join(missing)}; {INSTALL}", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    flags = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
             "--window-size=1280,2000", f"--user-data-dir={profile}")  # fmt: skip
    for flag in flags:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, css: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def _fill(driver, values: dict[str, object]) -> None:
    """Type each value into its input, or choose it in its select, and submit."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for name, value in values.items():
        element = driver.find_element(By.ID, name)
        if element.tag_name == "select":
            Select(element).select_by_value(str(value))
            continue
        element.clear()
        element.send_keys(str(value))
    driver.find_element(By.ID, "submit").click()


def _shot(driver, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    print(f"screenshot: {path}")  # noqa: T201 - tells the reader where to look
    return path


def test_valid_customer_shows_its_segment(browser, base_url, model_dir):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    _wait(browser, "#customer-form")
    _shot(browser, "1-form")
    _fill(browser, LOYAL)
    name = _wait(browser, "#segment-name").text
    service = create_app(model_dir, registry=CollectorRegistry()).extensions["segmenter"]["service"]
    assert name == service.score([LOYAL])[0].segment_name
    assert browser.find_element(By.CSS_SELECTOR, "#distance-chart svg").is_displayed()
    _shot(browser, "2-result")


def test_missing_and_invalid_fields_show_messages_beside_them(browser, base_url):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    _wait(browser, "#customer-form")
    wrong = dict(LOYAL, frequency="lots", recency_days="-3", monetary_total="")
    _fill(browser, wrong)
    _wait(browser, "#form-errors")
    for name, expected in [("frequency", "not a number"), ("recency_days", "between 0 and"),
                           ("monetary_total", "required")]:  # fmt: skip
        field = browser.find_element(By.ID, name)
        assert "is-invalid" in field.get_attribute("class").split()
        message = field.find_element(By.XPATH, "following-sibling::div[contains(@class, 'invalid-feedback')]")
        assert expected in message.text, name
        assert message.is_displayed(), name
    valid = browser.find_element(By.ID, "tenure_days")
    assert "is-invalid" not in valid.get_attribute("class").split()
    _shot(browser, "3-form-errors")


def test_dates_instead_of_days_and_a_date_after_as_of(browser, base_url, model_dir):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    _wait(browser, "#date-inputs")
    days = {k: v for k, v in LOYAL.items() if k not in ("recency_days", "tenure_days")}
    _fill(browser, {**days, "last_purchase": "2024-04-25", "first_seen": "2024-05-02", "as_of": "2024-05-01"})
    _wait(browser, "#form-errors")
    message = browser.find_element(By.ID, "first_seen").find_element(
        By.XPATH, "following-sibling::div[contains(@class, 'invalid-feedback')]"
    )
    assert "after as_of" in message.text
    _shot(browser, "5-date-errors")
    _fill(browser, {"first_seen": "2022-11-28"})  # 520 days before as_of, like LOYAL's tenure
    name = _wait(browser, "#segment-name").text
    service = create_app(model_dir, registry=CollectorRegistry()).extensions["segmenter"]["service"]
    assert name == service.score([LOYAL])[0].segment_name
    assert "2024-05-01" in browser.find_element(By.ID, "as-of").text


def test_segments_page_renders_the_projection(browser, base_url):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/segments")
    _wait(browser, "#segments-table")
    points = browser.find_elements(By.CSS_SELECTOR, "#projection-chart svg circle")
    assert len(points) > 100
    _shot(browser, "4-segments")


def test_a_table_models_form_takes_its_columns_and_shows_a_segment(browser, shoppers_url, shoppers_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(shoppers_url + "/")
    _wait(browser, "#customer-form")
    label = browser.find_element(By.CSS_SELECTOR, "label[for='spend_12m']").text
    assert label == "Spend in the last 12 months (EUR)"
    channel = Select(browser.find_element(By.ID, "channel"))
    assert [o.get_attribute("value") for o in channel.options] == ["", "mixed", "online", "store"]
    service = create_app(shoppers_dir, registry=CollectorRegistry()).extensions["segmenter"]["service"]
    assert browser.find_element(By.ID, "model-id").text == service.model.model_id
    shopper = SHOPPERS["loyal big spenders"]
    _fill(browser, shopper)
    name = _wait(browser, "#segment-name").text
    assert name == service.score([shopper])[0].segment_name
    assert browser.find_element(By.CSS_SELECTOR, "#distance-chart svg").is_displayed()
    _shot(browser, "6-table-model-result")
    browser.get(shoppers_url + "/")
    _wait(browser, "#customer-form")
    _fill(browser, {**shopper, "age": "twelve"})
    _wait(browser, "#form-errors")
    message = browser.find_element(By.ID, "age").find_element(
        By.XPATH, "following-sibling::div[contains(@class, 'invalid-feedback')]"
    )
    assert message.text == "'twelve' is not a number"
    _shot(browser, "7-table-model-errors")
