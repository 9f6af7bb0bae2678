"""The live dashboard: a scenario picked from the catalogue, its main parameters as controls, play/pause/step, and
panels that grow as the model runs.

Why Bokeh's ``ColumnDataSource.stream``: each frame sends the browser only the steps run since the previous frame
(a few numbers per series), so a frame costs the same at minute 1 and minute 60 of a run; a redraw of the whole
run per frame is what makes naive dashboards crawl. One frame is one periodic callback (``FRAME_MS``): while
playing it runs ``steps per frame`` model steps and streams their points. Each browser session gets its own model.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from abm.dashboard.live import BANDS, LIQ_KINDS, Control, LiveRun, changed, controls
from abm.dashboard.viz import panel, widget
from abm.errors import AbmError
from abm.scenarios.catalogue import load_scenario

FRAME_MS = 50  # at most 20 frames a second
HEIGHT = 230
LINE = {"index": "#7f7f7f", "oracle": "#ff7f0e", "mark": "#1f77b4", "mid": "#2ca02c",
        "funding_predicted": "#9467bd", "funding_last": "#000000", "insurance_fund": "#d62728", "vault_equity": "#17becf",
        "open_interest": "#000000", "cross": "#ff7f0e", "isolated": "#1f77b4"}
KIND_HEX = {"book": "#1f77b4", "backstop": "#ff7f0e", "adl": "#d62728"}
SERIES = ("t", "index", "oracle", "mark", "mid", *(f"bid {b}" for b in BANDS), *(f"ask {b}" for b in BANDS),
          *LIQ_KINDS, *(f"cum_{k}" for k in LIQ_KINDS), "funding_predicted",
          "funding_last", "insurance_fund", "vault_equity", "open_interest", "cross", "isolated")
LADDER_BPS = 5.0  # the ladder panel's first half width; it widens (never narrows) to the levels shown
OI_LABELS = {"cross": "crowd, cross", "isolated": "crowd, isolated"}
IN_FLIGHT = 6  # frames sent and not yet drawn by the browser before the server holds the next (steps go on): the
# acknowledgement's round trip waits behind the model's steps on the server's loop, so with 2 in flight the page idled
# between frames (4.8-6.2 drawn a second against 8.3 with 6, bench/dashboard_fps.py on a busy machine)
STALL_S = 1.0  # ... unless nothing was drawn for this long (a page without the acknowledgement, a closed tab)
ACK_JS = "requestAnimationFrame(() => setTimeout(() => { src.tags = [(src.tags[0] || 0) + 1] }, 0))"
STATUS_EVERY = 5  # frames between two updates of the status line while playing (a text pane re-renders whole)


def _figure(title: str, x_range: Any = None, **kw: Any) -> Any:
    from bokeh.plotting import figure

    opts: dict[str, Any] = dict(title=title, height=HEIGHT, sizing_mode="stretch_width", tools="pan,wheel_zoom,box_zoom,reset,save",
                                x_axis_label="minutes")
    if x_range is not None:
        opts["x_range"] = x_range
    opts.update(kw)
    fig = figure(**opts)
    # shown on hover only: a toolbar always on view is restyled with every frame (about a third of a frame's
    # time in headless chromium, bench/dashboard_fps.py)
    fig.toolbar.autohide = True
    return fig


class LivePanels:
    """The panels and the sources they draw; ``push(points)`` appends one batch of ``LiveRun.take()``."""

    def __init__(self, symbol: str) -> None:
        from bokeh.models import ColumnDataSource, CustomJS, Range1d

        # every timed series in one source, so a frame is one message for them all. Lines, not filled shapes (a heatmap
        # of rectangles, a bar per step): the browser redraws a panel whole when its source grows, and a line of n
        # points is the cheapest thing to redraw
        self.series = ColumnDataSource({c: [] for c in SERIES}, name="series", tags=[0])
        # the browser counts the frames it has drawn in the source's tags (after the paint), which syncs back: the
        # server holds the next frame's points while it is more than IN_FLIGHT frames ahead (backpressure)
        self.series.js_on_change("streaming", CustomJS(args={"src": self.series}, code=ACK_JS))
        self.ladder = ColumnDataSource({"bps": [], "size": [], "side": [], "colour": []}, name="ladder")

        p = _figure(f"{symbol}: index, oracle, mark, book mid (USDC)")
        x = p.x_range
        for c in ("index", "oracle", "mark", "mid"):
            p.line("t", c, source=self.series, color=LINE[c], legend_label=c, line_width=1.5 if c == "mark" else 1)
        d = _figure("Depth within 0.5, 1 and 2% of the mid (USDC resting; asks below zero)",
                    x_range=x)
        for i, b in enumerate(BANDS):
            d.line("t", f"bid {b}", source=self.series, color="#2ca02c", alpha=1 - 0.3 * i, legend_label=f"bid {b}")
            d.line("t", f"ask {b}", source=self.series, color="#d62728", alpha=1 - 0.3 * i, legend_label=f"ask {b}")
        lad = _figure("The book now: resting size per level (bids < 0 < asks, base units)", x_axis_label="distance from the mid (bps)",
                      x_range=Range1d(-LADDER_BPS, LADDER_BPS))
        self.ladder_range = lad.x_range
        self.ladder_glyph = lad.vbar(x="bps", top="size", width=0.8, source=self.ladder, color="colour")
        lq = _figure("Liquidated notional per step by kind (USDC)", x_range=x)
        for k in LIQ_KINDS:
            lq.step("t", k, source=self.series, color=KIND_HEX[k], legend_label=k, mode="center")
        cas = _figure("The cascade so far: cumulative liquidated notional by kind (USDC)", x_range=x)
        for k in LIQ_KINDS:
            cas.line("t", f"cum_{k}", source=self.series, color=KIND_HEX[k], legend_label=k, line_width=1.5)
        f = _figure("Funding rate (bps per payment; positive: longs pay)", x_range=x)
        for c in ("funding_predicted", "funding_last"):
            f.line("t", c, source=self.series, color=LINE[c], legend_label=c.replace("funding_", ""))
        fu = _figure("Insurance fund and vault equity (USDC)", x_range=x)
        for c in ("insurance_fund", "vault_equity"):
            fu.line("t", c, source=self.series, color=LINE[c], legend_label=OI_LABELS.get(c, c.replace("_", " ")))
        o = _figure("Open interest (base units) and the leveraged crowd's positions, long + short, by margin mode", x_range=x)
        for c in ("open_interest", "cross", "isolated"):
            o.line("t", c, source=self.series, color=LINE[c], legend_label=OI_LABELS.get(c, c.replace("_", " ")))
        for fig in (p, d, lq, cas, f, fu, o):
            fig.legend.location = "top_left"
            fig.legend.click_policy = "hide"
        self.figures = {"prices": p, "depth": d, "ladder": lad, "liquidations": lq, "cascade": cas, "funding": f,
                        "funds": fu, "open_interest": o}

    def push(self, pts: dict[str, list[float]], ladder: Optional[dict[str, list[Any]]] = None) -> None:
        if pts["t"]:
            self.series.stream(self._columns(pts))
        if ladder is not None:
            self._ladder(ladder)

    def replace(self, pts: dict[str, list[float]], ladder: dict[str, list[Any]], tick_bps: float) -> None:
        """Every series set to ``pts`` at once (another market's run so far). One assignment, never a clear and a
        stream in the same callback: Bokeh sends the new ``data`` as it is when the callback ends, streamed
        points included, and then the stream again, so the page would draw them twice (assignments only replace)."""
        self.clear(tick_bps)
        if pts["t"]:
            self.series.data = self._columns(pts)
        self._ladder(ladder)

    def _columns(self, pts: dict[str, list[float]]) -> dict[str, list[float]]:
        return {"t": pts["t"],
                **{c: pts[c] for c in ("index", "oracle", "mark", "mid", "insurance_fund", "vault_equity", "open_interest")},
                **{f"bid {b}": pts[f"bid {b}"] for b in BANDS}, **{f"ask {b}": [-v for v in pts[f"ask {b}"]] for b in BANDS},
                **{k: pts[f"liq_{k}_notional"] for k in LIQ_KINDS}, **{f"cum_{k}": pts[f"cum_{k}"] for k in LIQ_KINDS},
                **{c: [v * 1e4 for v in pts[c]] for c in ("funding_predicted", "funding_last")},
                "cross": [a + b for a, b in zip(pts["lev_long_cross"], pts["lev_short_cross"])],
                "isolated": [a + b for a, b in zip(pts["lev_long_isolated"], pts["lev_short_isolated"])]}

    def _ladder(self, ladder: dict[str, list[Any]]) -> None:
        self.ladder.data = {**ladder, "colour": ["#2ca02c" if s == "bid" else "#d62728" for s in ladder["side"]]}
        wide = max((abs(b) for b in ladder["bps"]), default=0.0) * 1.1
        if wide > self.ladder_range.end:  # a new range re-lays the panel out: only when the book outgrows it
            self.ladder_range.start, self.ladder_range.end = -wide, wide

    def clear(self, tick_bps: float) -> None:
        self.ladder_range.start, self.ladder_range.end = -LADDER_BPS, LADDER_BPS
        for src in (self.series, self.ladder):
            src.data = {k: [] for k in src.data}
        self.ladder_glyph.glyph.width = tick_bps * 0.8


class Dashboard:
    """One session's dashboard: the controls, the model they built and its panels."""

    def __init__(self, scenario: Optional[str] = None, overrides: Optional[dict[str, Any]] = None, frame_ms: int = FRAME_MS,
                 ladder_every: int = 5) -> None:
        from abm.scenarios.catalogue import catalogue

        pn = panel()
        names = list(catalogue())
        scenario = scenario or ("whale_dump" if "whale_dump" in names else names[0])
        self.picker = widget(pn.widgets.Select, "scenario", options=sorted(set(names) | {scenario}), value=scenario)
        self.play = widget(pn.widgets.Toggle, "▶ play / ❚❚ pause", value=False, color="success")
        self.step_button = widget(pn.widgets.Button, "step", color="primary")
        self.reset_button = widget(pn.widgets.Button, "apply and restart", color="warning")
        self.per_frame = widget(pn.widgets.IntSlider, "steps per frame", start=1, end=50, value=1)
        self.market_picker = widget(pn.widgets.Select, "market", options={}, value=None)
        self._setting_markets = False  # the options are being replaced: not a user's pick
        self.status = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.control_box = pn.Column()
        self.widgets: dict[str, Any] = {}
        self.frames = 0  # frames sent (streams of new points)
        self.drawn = 0  # frames the browser says it has drawn (LivePanels.series.tags)
        self._last_flush = 0.0
        self.ladder_every = ladder_every
        self.extra = dict(overrides or {})  # the caller's overrides of the first scenario, kept over a restart
        self.run = LiveRun(scenario, overrides)
        self.panels = LivePanels(self.run.symbol)
        self.panels.series.on_change("tags", self._acked)
        self._build_controls(self.run.scenario)
        self.panels.clear(self.run.tick_bps)
        self.picker.param.watch(self._pick, "value")
        self._set_market_options()
        self.market_picker.param.watch(lambda e: self.show_market(e.new), "value")
        self.step_button.on_click(lambda _e: self.advance(1))
        self.reset_button.on_click(lambda _e: self.restart())
        self._callback: Any = None
        self.frame_ms = frame_ms
        self._show_status()
        figs = self.panels.figures
        pane = pn.pane.Bokeh
        self.layout = pn.Row(
            pn.Column("## abm dashboard", self.picker, self.market_picker, pn.Row(self.play, self.step_button),
                      self.per_frame,
                      self.status, "### parameters", self.control_box, self.reset_button, width=300),
            pn.Column(pane(figs["prices"]), pn.Row(pane(figs["depth"]), pane(figs["ladder"])),
                      pn.Row(pane(figs["liquidations"]), pane(figs["cascade"])),
                      pn.Row(pane(figs["funding"]), pane(figs["funds"])), pane(figs["open_interest"]),
                      sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

    # ------------------------------------------------------------------ controls

    def _widget(self, c: Control) -> Any:
        pn = panel()
        if c.choices:
            return widget(pn.widgets.Select, c.label, options=list(c.choices), value=c.value)
        if isinstance(c.value, bool):
            return widget(pn.widgets.Checkbox, c.label, value=c.value)
        if isinstance(c.value, int):
            return widget(pn.widgets.IntInput, c.label, value=c.value)
        return widget(pn.widgets.FloatInput, c.label, value=float(c.value))

    def _build_controls(self, scn: Any) -> None:
        """The controls show the scenario as it runs (its overrides applied)."""
        self.widgets = {c.path: self._widget(c) for c in controls(scn)}
        self.control_box.objects = list(self.widgets.values())

    def _pick(self, event: Any) -> None:
        self.play.value = False
        self.extra = {}
        self.run = LiveRun(event.new)
        self._build_controls(self.run.scenario)
        self._set_market_options()
        self._reset_panels()

    def _set_market_options(self) -> None:
        """The picked scenario's markets (a one-market scenario shows its one symbol)."""
        self._setting_markets = True
        try:
            self.market_picker.options = {s: i for i, s in enumerate(self.run.symbols)}
            self.market_picker.value = self.run.market
        finally:
            self._setting_markets = False

    def show_market(self, market: int) -> None:
        """Draw another market of the running model: its panels start again with that market's steps so far, and
        the run goes on (nothing restarts, the parameters stay)."""
        if self._setting_markets or market is None or market == self.run.market:
            return
        self.run.set_market(market)
        self.panels.figures["prices"].title.text = f"{self.run.symbol}: index, oracle, mark, book mid (USDC)"
        self.panels.replace(self.run.take(), self.run.ladder(), self.run.tick_bps)
        self._show_status()

    def values(self) -> dict[str, Any]:
        return {p: w.value for p, w in self.widgets.items()}

    def restart(self) -> None:
        """A new model of the picked scenario with the controls' values (only those changed become overrides).

        A value the scenario refuses leaves the running model as it is and shows the error in the status line."""
        self.play.value = False
        try:
            shown = load_scenario(self.picker.value, self.extra)  # what the controls were built from
            run = LiveRun(self.picker.value, {**self.extra, **changed(shown, self.values())})
        except AbmError as e:
            self.status.object = f"**not restarted**: {e}"
            return
        self.run = run
        if 0 < self.market_picker.value < len(run.symbols):  # a restart keeps the market drawn
            run.set_market(self.market_picker.value)
        self._set_market_options()
        self._reset_panels()

    def _reset_panels(self) -> None:
        self.panels.clear(self.run.tick_bps)
        self.panels.figures["prices"].title.text = f"{self.run.symbol}: index, oracle, mark, book mid (USDC)"
        self._show_status()

    # ------------------------------------------------------------------ frames

    def advance(self, n: int) -> int:
        """Run ``n`` steps and stream their points: one frame."""
        done = self.run.step(n)
        self.flush()
        return done

    def _acked(self, _attr: str, _old: Any, new: Any) -> None:
        self.drawn = int(new[0]) if new else 0

    def flush(self) -> None:
        """Stream the points of the steps run since the last frame: the panels' one update."""
        self.frames += 1
        self._last_flush = time.monotonic()
        ladder = self.run.ladder() if self.frames % self.ladder_every == 0 or not self.play.value else None
        self.panels.push(self.run.take(), ladder)
        if not self.run.running:
            self.play.value = False
        if not self.play.value or self.frames % STATUS_EVERY == 0:
            self._show_status()

    def _frame(self) -> None:
        """One tick of the frame clock: the model runs ``steps per frame`` steps; the panels get them unless the
        browser is behind (then they go with a later frame, so a slow browser slows the drawing, not the model)."""
        if self.play.value and self.run.running:
            self.run.step(self.per_frame.value)
            behind = self.frames - self.drawn
            if behind <= IN_FLIGHT or time.monotonic() - self._last_flush > STALL_S or not self.run.running:
                self.flush()

    def _show_status(self) -> None:
        r = self.run
        state = "finished" if not r.running else ("playing" if self.play.value else "paused")
        self.status.object = (f"**t = {r.time_s:,.0f} s** of {r.duration_s:,.0f} s · step {r.steps} · {state}  \n"
                              f"{r.scenario.name}, seed {r.scenario.run.seed}, market {r.symbol}")

    def start(self) -> Any:
        """The layout with its frame clock running (a server session or a notebook cell)."""
        pn = panel()
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self._frame, period=self.frame_ms)
        return self.layout

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None


def dashboard_app(scenario: Optional[str] = None, overrides: Optional[dict[str, Any]] = None) -> Any:
    """One server session's dashboard (``abm dashboard`` calls this per browser tab)."""
    return Dashboard(scenario, overrides).start()


__all__ = ["Dashboard", "LivePanels", "dashboard_app", "BANDS"]
