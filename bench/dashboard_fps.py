"""Frames per second of the live dashboard for a 1,000-agent model (issue 19: at least 10).

A frame is one model step and its points streamed to the panels (``Dashboard.advance(1)``). Three figures:

- ``in-process``: frames a second of ``advance(1)`` with no server (the model step plus the streaming
  into the Bokeh sources): the ceiling;
- ``served``: the same dashboard served on 127.0.0.1 and played in Debian's headless chromium: frames the
  server ran a second (its frame clock ticks every 50 ms, so 20 at most);
- ``browser``: points the page's own source gained a second over the same window (read in the browser with
  ``Bokeh.documents``), i.e. frames the browser received and applied. It lags the server when the browser
  cannot keep up; skipped (with the reason) without chromium, its driver or selenium.

The model is ``whale_dump`` with its noise traders raised to make 1,000 agents; the window starts at
``--start-s`` so the panels already hold that many steps (a frame must not get dearer as the run grows).

    python bench/dashboard_fps.py [--agents 1000] [--frames 300] [--seconds 5] [--start-s 120]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from abm.dashboard.app import Dashboard
from abm.scenarios.catalogue import load_scenario

SCENARIO = "whale_dump"
PLAY = "▶ play / ❚❚ pause"
# a click on the button labelled arguments[0], through Panel's shadow roots, as a person's click
CLICK = """
function all(root, out) { for (const el of root.querySelectorAll('*')) { out.push(el); if (el.shadowRoot) all(el.shadowRoot, out); }
                          return out; }
const b = all(document, []).filter(e => e.tagName === 'BUTTON' && e.textContent.trim() === arguments[0]);
if (b.length) b[0].click();
return b.length;
"""


def overrides_for(agents: int) -> dict[str, Any]:
    """``whale_dump``'s noise traders raised so the model has ``agents`` agents."""
    scn = load_scenario(SCENARIO)
    others = sum(int(t.get("count", 1)) for g, t in scn.agents.items() if g != "noise")
    if agents <= others:
        raise SystemExit(f"--agents must be above {others} (the scenario's agents other than noise traders)")
    return {"agents.noise.count": agents - others, "run.duration_s": 3600}


def in_process(overrides: dict[str, Any], frames: int, start_s: float) -> float:
    d = Dashboard(SCENARIO, overrides)
    d.advance(int(start_s / d.run.scenario.run.step_s))
    t = time.perf_counter()
    for _ in range(frames):
        d.advance(1)
    return frames / (time.perf_counter() - t)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served(overrides: dict[str, Any], seconds: float, start_s: float) -> tuple[float, float | str, float]:
    """(server frames a second, browser frames a second or why it was not measured, model steps a second)."""
    from abm.dashboard.viz import Server

    made: list[Dashboard] = []

    def app() -> Any:
        d = Dashboard(SCENARIO, overrides)
        d.advance(int(start_s / d.run.scenario.run.step_s))
        made.append(d)
        return d.start()

    chromium, driver = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return float("nan"), "selenium is not installed (the test extra)", float("nan")
    if not (Path(chromium).is_file() and Path(driver).is_file()):
        return float("nan"), "chromium or chromedriver is not installed", float("nan")
    opts = Options()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1500",
              f"--proxy-server=127.0.0.1:{_port()}"):  # a dead proxy: nothing leaves the machine; loopback bypasses it
        opts.add_argument(a)
    server = Server(app, _port(), "abm dashboard (bench)")
    browser = webdriver.Chrome(service=Service(driver), options=opts)
    try:
        browser.get(server.url)
        js = "const s = window.Bokeh && Bokeh.documents.length && Bokeh.documents[0].get_model_by_name('series'); " \
             "return s ? s.tags[0] : -1"  # the frames the page has drawn (abm.dashboard.app.ACK_JS)
        deadline = time.time() + 60
        while browser.execute_script(js) < 0 and time.time() < deadline:
            time.sleep(0.2)
        browser.execute_script(CLICK, PLAY)
        time.sleep(1.0)  # past the first frames
        d = made[-1]
        f0, p0, s0, t0 = d.frames, browser.execute_script(js), d.run.steps, time.perf_counter()
        time.sleep(seconds)
        f1, p1, s1, t1 = d.frames, browser.execute_script(js), d.run.steps, time.perf_counter()
        return (f1 - f0) / (t1 - t0), (p1 - p0) / (t1 - t0), (s1 - s0) / (t1 - t0)
    finally:
        browser.quit()
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--start-s", type=float, default=120.0)
    a = ap.parse_args()
    ov = overrides_for(a.agents)
    print(f"{SCENARIO} with {a.agents} agents, panels holding {a.start_s:.0f} steps at the start")
    print(f"in-process: {in_process(ov, a.frames, a.start_s):6.1f} frames/s (model step + streaming, no server)")
    server_fps, browser_fps, steps = served(ov, a.seconds, a.start_s)
    print(f"served:     {server_fps:6.1f} frames/s sent (the frame clock ticks every 50 ms: 20 at most), "
          f"{steps:.1f} model steps/s")
    print(f"browser:    {browser_fps:6.1f} frames/s drawn in headless chromium" if isinstance(browser_fps, float)
          else f"browser:    not measured: {browser_fps}")


if __name__ == "__main__":
    main()
