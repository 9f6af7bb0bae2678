"""The run report: a readable PNG from a real run, with and without liquidations and funding payments."""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import replace

import matplotlib.image as mpimg
import networkx as nx
import numpy as np
import pytest

from abm.errors import InvalidInput
from abm.model import AgentGroup, MarketConfig, MarketModel, ModelConfig, Shock
from abm.report import PANELS, build_figure, render_report
from abm.results import RunResult, load_run, save_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIME_PANELS = PANELS[:-1]


def small_config() -> ModelConfig:
    return ModelConfig(
        seed=2, duration_s=240,
        markets=(MarketConfig(shocks=(Shock(120, 20, -8),)),),
        agents=(AgentGroup("noise", 20, {}), AgentGroup("market_maker", 3, {}),
                AgentGroup("leveraged", 20, {"signal": "long", "entry_delay_s": 30, "leverage_min": 20,
                                             "leverage_max": 40})),
    )


def crash_config() -> ModelConfig:
    """A leveraged long crowd and a -9% shock: liquidations into the book and the backstop."""
    return ModelConfig(
        seed=11, duration_s=360,
        markets=(MarketConfig(symbol="BTC-PERP", s0=60_000, sigma=0.4, shocks=(Shock(240, 30, -9),)),),
        agents=(
            AgentGroup("noise", 30, {"alpha": 0.005, "delta": 0.02}),
            AgentGroup("market_maker", 5, {}),
            AgentGroup("arbitrageur", 3, {}),
            # funding_exit_bps high: the crowd holds until the shock (not churning in and out on funding
            # in this thin book, which can liquidate some of it before the shock on some seeds)
            AgentGroup("leveraged", 40, {"signal": "long", "entry_delay_s": 60, "leverage_min": 15,
                                         "leverage_max": 40, "margin_mode": "mixed", "funding_exit_bps": 1000}),
        ),
    )


def result_of(cfg: ModelConfig, scenario: str) -> RunResult:
    model = MarketModel(cfg).run()
    markets = [{"symbol": m.spec.symbol, "tick_size": float(m.spec.tick_size), "lot_size": float(m.spec.lot_size),
                "multiplier": m.spec.multiplier} for m in model.exchange.markets]
    shocks = [{"symbol": mc.symbol, "start_s": s.start_s, "duration_s": s.duration_s, "pct": s.pct}
              for mc in cfg.markets for s in mc.shocks]
    return RunResult(scenario=scenario, config={"seed": cfg.seed, "venue": cfg.venue}, steps=model.steps_frame(),
                     markets=markets, shocks=shocks, summary={}, **model.tables())


@pytest.fixture(scope="module")
def crash() -> RunResult:
    r = result_of(crash_config(), "crash")
    assert len(r.liquidations) > 0  # the point of this run: the cascade panels have something to draw
    return r


@pytest.fixture(scope="module")
def quiet() -> RunResult:
    """The small run with its event tables emptied (no liquidations, no funding payments)."""
    r = result_of(small_config(), "quiet")
    steps = r.steps.copy()
    for c in steps.columns:
        if c.startswith("liq_") or c == "bad_debt":
            steps[c] = 0.0
    return replace(r, steps=steps, liquidations=r.liquidations.iloc[:0], funding=r.funding.iloc[:0])


def panel(fig, name):
    (ax,) = [a for a in fig.axes if a.get_label() == name]
    return ax


def texts(ax) -> str:
    return " | ".join(t.get_text() for t in ax.texts)


def check_png(path, size=(1800, 1400)) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 50_000
    img = mpimg.imread(path)
    assert img.shape[:2] == size
    assert img[..., :3].std() > 0.05  # not a blank page


def test_report_of_a_crash_is_a_full_size_png(crash, tmp_path):
    out = render_report(crash, tmp_path / "sub" / "report.png")
    assert out == tmp_path / "sub" / "report.png"
    check_png(out)


def test_figure_has_seven_titled_panels_and_two_twin_axes(crash):
    fig = build_figure(crash)
    assert len(fig.axes) == 9
    titled = [a for a in fig.axes if a.get_title()]
    assert [a.get_label() for a in titled] == list(PANELS)
    assert {a.get_label() for a in fig.axes} - set(PANELS) == {"basis", "open_interest"}
    for a in titled:
        assert a.get_ylabel() and "(" in a.get_ylabel() or a.get_label() == "cascade"  # units in the label
    title = fig._suptitle.get_text()
    assert "crash" in title and "BTC-PERP" in title and "liquidations:" in title and "insurance fund" in title
    # one shared time axis in minutes, covering the run, with the shock shaded and labelled on every time panel
    for name in TIME_PANELS:
        ax = panel(fig, name)
        assert ax.get_xlim() == pytest.approx((0, 6.0))
        assert "shock -9% over 30s" in texts(ax)
        assert ax.get_legend() is not None or name in ("spread_basis", "insurance_oi")
    assert panel(fig, "insurance_oi").get_xlabel().endswith("(minutes)")
    assert panel(fig, "basis").get_legend() is not None and panel(fig, "open_interest").get_legend() is not None


def test_title_carries_the_run_summary_when_there_is_one(crash):
    summary = {"accounts_liquidated": 12, "worst_depth_drop": 0.8, "depth_drop_market": "BTC-PERP",
               "depth_recover_50_s": 30.0, "max_abs_basis_bps": 450.0, "longest_chain": 7, "R_all": 0.97,
               "cascade": {"nested": "ignored"}, "R": None}
    title = build_figure(replace(crash, summary=summary))._suptitle.get_text()
    assert "accounts liquidated 12" in title and "worst depth drop 80% (BTC-PERP), half back after 30 s" in title
    assert "max |basis| 450 bps" in title and "R_all 0.97" in title
    assert "run summary" not in build_figure(crash)._suptitle.get_text()  # an empty summary adds nothing


def test_liquidation_bars_add_up_to_the_step_totals(crash):
    fig = build_figure(crash)
    ax = panel(fig, "liquidations")
    drawn = sum(p.get_height() for c in ax.containers for p in c)
    steps = crash.steps
    total = sum(steps[f"liq_{k}_notional"].sum() for k in ("book", "backstop", "adl"))
    unit = 1e6 if "million" in ax.get_ylabel() else 1e3 if "thousand" in ax.get_ylabel() else 1.0
    assert drawn * unit == pytest.approx(total, rel=1e-9)
    n = int(sum(steps[f"liq_{k}_count"].sum() for k in ("book", "backstop", "adl")))
    assert sum(int(t.get_text()) for t in ax.texts if t.get_text().isdigit()) == n  # counts annotated
    assert "none" not in texts(ax)


def test_cascade_panel_draws_the_cascade_graph(crash):
    fig = build_figure(crash)
    ax = panel(fig, "cascade")
    if importlib.util.find_spec("abm.analysis.cascade") is None:
        assert "Liquidation events over time" in ax.get_title()
    else:
        assert ax.get_title().startswith("Liquidation cascade: who set off whom")
        assert "shock -9% over 30s" in texts(ax)  # the shock root is labelled
        assert ax.collections  # edges and nodes


def fake_cascade_module(monkeypatch, fn) -> None:
    mod = types.ModuleType("abm.analysis.cascade")
    mod.cascade_graph = fn
    monkeypatch.setitem(sys.modules, "abm.analysis.cascade", mod)


def test_cascade_panel_lays_out_any_graph_by_time_and_tree(crash, monkeypatch):
    seen = {}

    def cascade_graph(liquidations, trades, shocks=(), whale_orders=None, lookback_s=30, multipliers=None):
        seen.update(n=len(liquidations), shocks=list(shocks), multipliers=multipliers)
        g = nx.DiGraph()
        g.add_node("shock:0")
        g.add_node("market")
        for i, t in enumerate((250.0, 251.0, 253.0, 300.0)):
            g.add_node(i, time=t, notional=1000.0 * (i + 1), kind=("book", "backstop", "adl", "book")[i], account=i)
        g.add_edges_from([("shock:0", 0), (0, 1), (0, 2), ("market", 3)])
        return g

    fake_cascade_module(monkeypatch, cascade_graph)
    ax = panel(build_figure(crash), "cascade")
    assert seen["n"] == len(crash.liquidations) and seen["multipliers"] == crash.multipliers
    assert seen["shocks"] == crash.shocks
    assert ax.get_title().startswith("Liquidation cascade")
    (edges,) = [c for c in ax.collections if c.__class__.__name__ == "LineCollection"]
    assert len(edges.get_segments()) == 4
    segs = {tuple(map(tuple, s)) for s in edges.get_segments()}
    assert ((250 / 60, 1.0), (251 / 60, 2.0)) in segs  # x: time in minutes; y: pre-order row under the shock
    assert "shock -9% over 30s → 3 liquidation(s)" in texts(ax)
    assert "market (no single cause) → 1 liquidation(s)" in texts(ax)
    lo, hi = ax.get_xlim()
    assert lo <= 4.0 and hi >= 5.0 and hi < 6.0  # zoomed to the shock and the events


def test_cascade_falls_back_to_a_scatter_without_the_analysis(crash, monkeypatch):
    monkeypatch.setitem(sys.modules, "abm.analysis.cascade", None)  # import fails
    ax = panel(build_figure(crash), "cascade")
    assert "Liquidation events over time" in ax.get_title() and "not available" in ax.get_title()
    points = sum(len(c.get_offsets()) for c in ax.collections)
    assert points == len(crash.liquidations)
    assert ax.get_yscale() == "log" and "USDC" in ax.get_ylabel()


def test_a_failing_cascade_graph_costs_only_the_graph(crash, monkeypatch):
    def cascade_graph(*a, **k):
        raise RuntimeError("boom")

    fake_cascade_module(monkeypatch, cascade_graph)
    with pytest.warns(UserWarning, match="boom"):
        ax = panel(build_figure(crash), "cascade")
    assert "cascade graph failed: RuntimeError" in ax.get_title()


def test_empty_liquidation_and_funding_tables_render(quiet, tmp_path):
    assert len(quiet.liquidations) == 0 and len(quiet.funding) == 0
    out = render_report(quiet, tmp_path / "quiet.png")
    check_png(out)
    fig = build_figure(quiet)
    assert len([a for a in fig.axes if a.get_title()]) == 7
    assert "none — no liquidations" in texts(panel(fig, "liquidations"))
    assert "none — no liquidation events" in texts(panel(fig, "cascade"))
    funding_legend = [t.get_text() for t in panel(fig, "funding").get_legend().get_texts()]
    assert any(t.startswith("payments made: none") for t in funding_legend)
    assert "shock -8% over 20s" in texts(panel(fig, "prices"))


def test_funding_payments_are_marked(quiet):
    funding = quiet.funding.iloc[:0].copy()
    funding.loc[0] = {"time_us": 180_000_000, "market": 0, "rate": 1.5e-4, "price": 600_000, "paid": 1, "received": 1,
                      "rounding": 0, "accounts": 2}
    ax = panel(build_figure(replace(quiet, funding=funding)), "funding")
    assert "+1.50 bps" in texts(ax)
    assert any(t.get_text() == "payments made (1)" for t in ax.get_legend().get_texts())


def test_a_saved_run_reports_and_other_markets_are_chosen_by_number(tmp_path):
    cfg = small_config()
    cfg = replace(cfg, duration_s=120, markets=cfg.markets + (
        MarketConfig(symbol="ETH-PERP", s0=3000, tick_size="0.01", lot_size="0.01", tier_class="eth",
                     shocks=(Shock(60, 10, 5),)),))
    run = save_run(result_of(cfg, "two markets"), tmp_path / "run", "seed = 2\n")
    loaded = load_run(run)
    fig = build_figure(loaded, market=1)
    assert "ETH-PERP" in fig._suptitle.get_text() and "shock +5% over 10s" in fig._suptitle.get_text()
    assert "shock +5% over 10s" in texts(panel(fig, "prices"))
    assert "shock -8%" not in texts(panel(fig, "prices"))  # the other market's shock is not drawn
    assert np.isfinite(panel(fig, "prices").lines[0].get_ydata()).all()
    check_png(render_report(loaded, run / "report.png", market=0))
    with pytest.raises(InvalidInput, match="market"):
        build_figure(loaded, market=2)
    with pytest.raises(InvalidInput, match="png"):
        render_report(loaded, tmp_path / "report.pdf")


def test_title_names_the_venue_profile_of_a_saved_config(quiet):
    saved = replace(quiet, config={"seed": 1, "venue": {"profile": "binance", "overrides": {"oracle.delay_s": 2}}})
    title = build_figure(saved)._suptitle.get_text()
    assert "venue binance (with overrides)" in title and "{" not in title
