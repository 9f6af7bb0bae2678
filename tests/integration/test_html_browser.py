"""report.html in a real browser: Debian's chromium, headless, opens it from file:// with every network
request sent to a dead loopback proxy (so a chart that needed a CDN would not draw), and the panels render.
Skipped, saying why, without chromium, its driver or selenium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import abm
from tests.support import unused_port

pytest.importorskip("plotly", reason="the extra viz (plotly) is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the test extra) is not installed")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture()
def browser():
    if not (Path(CHROMIUM).is_file() and Path(DRIVER).is_file()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,2400",
              f"--proxy-server=127.0.0.1:{unused_port()}", "--proxy-bypass-list=<-loopback>"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()  # the browser and its driver, started here, stop here


def test_report_html_renders_offline_in_chromium(browser, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    abm.run("baseline", {"run.duration_s": 30}, seed=1, out=tmp_path / "run")
    page = tmp_path / "run" / "report.html"
    browser.get(page.as_uri())
    # one cartesian subplot per panel and one per right-hand axis: prices, depth, spread + basis, liquidations,
    # funding, insurance + open interest, cascade
    expected = 7 + 2
    count = "return document.querySelectorAll('.js-plotly-plot .cartesianlayer .subplot').length"
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(count) >= expected)
    assert browser.execute_script(count) == expected
    assert browser.execute_script("return typeof window.Plotly") == "object"
    lines = browser.execute_script("return document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length")
    assert lines >= 10  # the panels' lines are drawn, not only their axes
    shot = tmp_path / "report_html.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
