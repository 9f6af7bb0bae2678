"""The live dashboard and the run explorer in a real browser, as a person uses them: Debian's chromium, headless,
on a server this test starts on a free loopback port (every other request goes to a dead loopback proxy) and
stops. Panels render, the points grow while playing, the step button advances time, the scrubber moves the
depth bars, a click on a cascade node filters the liquidation table. Skipped, saying why, without chromium, its
driver, selenium or the extra viz."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.support import unused_port

pytest.importorskip("panel", reason="the extra viz (panel) is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the test extra) is not installed")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PLAY = "▶ play / ❚❚ pause"
# every element, through Panel's shadow roots (its widgets live in them)
ALL = """function all(root, out) { for (const el of root.querySelectorAll('*')) { out.push(el);
         if (el.shadowRoot) all(el.shadowRoot, out); } return out; }"""
CLICK = ALL + """
const b = all(document, []).filter(e => e.tagName === 'BUTTON' && e.textContent.trim() === arguments[0]);
if (b.length) b[0].click();
return b.length;"""
CANVASES = ALL + "return all(document, []).filter(e => e.tagName === 'CANVAS' && e.width > 0).length;"
TEXT = ALL + "return all(document, []).map(e => e.shadowRoot ? '' : (e.innerText || '')).join(' ');"


def model(name: str) -> str:
    return f"const d = window.Bokeh && Bokeh.documents[0]; const m = d && d.get_model_by_name('{name}'); "


@pytest.fixture()
def browser():
    if not (Path(CHROMIUM).is_file() and Path(DRIVER).is_file()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1800",
              f"--proxy-server=127.0.0.1:{unused_port()}"):  # loopback bypasses the (dead) proxy; nothing else gets out
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver, js: str, ok, timeout: float = 40):
    deadline = time.monotonic() + timeout
    while True:
        v = driver.execute_script(js)
        if ok(v):
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {js} -> {v!r}")
        time.sleep(0.2)


def test_the_dashboard_plays_steps_and_draws(browser, tmp_path):
    import abm.dashboard

    server = abm.dashboard.serve("baseline", unused_port(), {"run.duration_s": 600})
    try:
        assert server.url.startswith("http://127.0.0.1:")
        browser.get(server.url)
        points = model("series") + "return m ? m.data.t.length : -1"
        assert wait(browser, points, lambda v: v >= 0) == 0  # paused at the start: nothing drawn yet
        wait(browser, CANVASES, lambda v: v >= 8)  # the eight panels' plots
        assert browser.execute_script(CLICK, "step") == 1
        wait(browser, points, lambda v: v == 1)
        wait(browser, TEXT, lambda v: "t = 1 s" in v)  # the status line: one step of 1 s
        assert browser.execute_script(CLICK, PLAY) == 1
        first = wait(browser, points, lambda v: v > 3)
        second = wait(browser, points, lambda v: v > first + 3)
        assert second > first  # the panels grow while playing
        ladder = model("ladder") + "return m ? m.data.size.length : -1"
        assert browser.execute_script(ladder) > 0  # the book's ladder is drawn
        depth = model("series") + "return m.data['bid 1pct'].filter(x => x > 0).length"
        assert browser.execute_script(depth) >= first  # the depth bands arrive with the prices
        shot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
        browser.execute_script(CLICK, PLAY)  # pause before leaving
    finally:
        server.stop()


def test_the_explorer_scrubs_and_filters_by_cascade_node(browser, tmp_path):
    import abm
    import abm.dashboard

    abm.run("whale_dump", {"run.duration_s": 400}, seed=7, out=tmp_path / "run", report=False)
    server = abm.dashboard.serve_explorer(tmp_path / "run", unused_port())
    try:
        browser.get(server.url)
        nodes = model("cascade_nodes") + "return m ? m.data.node.length : -1"
        n = wait(browser, nodes, lambda v: v >= 0)
        assert n > 2  # roots and liquidations of the whale's cascade
        wait(browser, CANVASES, lambda v: v >= 9)
        assert "all" in wait(browser, TEXT, lambda v: "Liquidations" in v).split("Liquidations", 1)[1][:20]
        # the scrubber: its slider model, moved as a drag would, moves the depth bars to that step
        depth = model("depth_now") + "return m ? m.data.usdc : null"
        before = browser.execute_script(depth)
        browser.execute_script(
            "const d = Bokeh.documents[0]; for (const m of d.all_models) "
            "{ if (m.title === 'time scrubber (step)') { m.value = 30; } }")
        wait(browser, depth, lambda v: v != before)
        wait(browser, TEXT, lambda v: "t = 31 s" in v)
        # a tap on the first liquidation node selects it: the table keeps its subtree only
        i = browser.execute_script(model("cascade_nodes") + "return m.data.node.findIndex(x => x.startsWith('liq:'))")
        node = browser.execute_script(model("cascade_nodes") + f"m.selected.indices = [{i}]; return m.data.node[{i}]")
        text = wait(browser, TEXT, lambda v: f"Liquidations under {node}" in v)
        assert " rows of " in text.split(f"Liquidations under {node}", 1)[1][:40]
        equity = model("equity") + "return m ? m.data.equity.filter(x => x === x).length : -1"
        assert browser.execute_script(equity) > 0  # the picked account's equity path is drawn
        shot = tmp_path / "explorer.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
    finally:
        server.stop()


def test_the_market_picker_switches_the_panels_in_the_browser(browser):
    import abm.dashboard

    server = abm.dashboard.serve("multi_market_contagion", unused_port(), {"run.duration_s": 400})
    try:
        browser.get(server.url)
        points = model("series") + "return m ? m.data.t.length : -1"
        wait(browser, points, lambda v: v >= 0)
        for _ in range(3):
            browser.execute_script(CLICK, "step")
        wait(browser, points, lambda v: v == 3)
        mark = model("series") + "return m.data.mark[2]"
        btc = browser.execute_script(mark)
        browser.execute_script(  # what picking ETH-PERP in the list does to the widget's model
            "const d = Bokeh.documents[0]; for (const m of d.all_models) "
            "{ if (m.title === 'market' && m.options) { m.value = 'ETH-PERP'; } }")
        eth = wait(browser, mark, lambda v: v is not None and v != btc)
        assert eth < btc / 5  # ETH's mark (3,000s), not BTC's (60,000s)
        assert browser.execute_script(points) == 3  # the same three steps, of the other market
        wait(browser, TEXT, lambda v: "market ETH-PERP" in v)  # the status line names it
    finally:
        server.stop()
