"""The run report: a readable PNG from a real run, with and without liquidations and funding payments;
its numbers are the run summary's; every market, both margin modes and oracle outages are drawn."""

from __future__ import annotations

from dataclasses import replace

import matplotlib.image as mpimg
import networkx as nx
import numpy as np
import pytest
from matplotlib.figure import Figure

import abm
from abm.analysis.liquidations import EVENT_DEFINITION
from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.model.scenario import parse_scenario
from abm.report import PANELS, build_figure, panels, render_report, run_data, style
from abm.report import header as report_header
from abm.report.panels import cascade_title, liquidation_bars, mode_split
from abm.report.style import MODES_PANEL, PER_MARKET, SHARED
from abm.results import RunResult, load_run, save_run
from tests.support import crash_config, group, market, scenario, shock

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIME_PANELS = [p for p in PANELS if p != "cascade"]


def small_config() -> dict:
    return scenario(
        seed=2, duration_s=240,
        markets=(market(shocks=(shock(120, 20, -8),)),),
        agents=(group("noise", 20, {}), group("market_maker", 3, {}),
                group("leveraged", 20, {"signal": "long", "entry_delay_s": 30, "leverage_min": 20,
                                             "leverage_max": 40})),
    )


def result_of(cfg: dict, scenario: str) -> RunResult:
    model = MarketModel(cfg).run()
    scn = model.config
    markets = [{"symbol": m.spec.symbol, "tick_size": float(m.spec.tick_size), "lot_size": float(m.spec.lot_size),
                "multiplier": m.spec.multiplier} for m in model.exchange.markets]
    shocks = [{"symbol": mc.symbol, "start_s": s.start_s, "duration_s": s.duration_s, "pct": s.pct}
              for mc in scn.markets for s in mc.shocks]
    config = {"seed": scn.run.seed, "venue": scn.venue.profile,
              "markets": [{"symbol": mc.symbol, "oracle_outages_s": [list(w) for w in mc.oracle_outages_s]}
                          for mc in scn.markets]}
    return RunResult(scenario=scenario, config=config, steps=model.steps_frame(), markets=markets, shocks=shocks,
                     summary={}, **model.tables())


@pytest.fixture(scope="module")
def crash() -> RunResult:
    r = result_of(crash_config(duration_s=360, whale=False), "crash")
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


def legend_texts(ax) -> str:
    return " | ".join(t.get_text() for t in ax.get_legend().get_texts())


def check_png(path, min_height=1800) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 50_000
    img = mpimg.imread(path)
    assert img.shape[1] == 1400 and img.shape[0] >= min_height
    assert img[..., :3].std() > 0.05  # not a blank page


def test_report_of_a_crash_is_a_full_size_png(crash, tmp_path):
    out = render_report(crash, tmp_path / "sub" / "report.png")
    assert out == tmp_path / "sub" / "report.png"
    check_png(out, min_height=2000)  # one more panel than a one-mode run: isolated and cross


def test_figure_has_titled_panels_and_twin_axes(crash, quiet):
    fig = build_figure(crash)  # mixed margin modes: the margin-mode panel is added
    titled = [a for a in fig.axes if a.get_title()]
    assert [a.get_label() for a in titled] == [*PER_MARKET, MODES_PANEL, *SHARED]
    assert {a.get_label() for a in fig.axes} - {a.get_label() for a in titled} == {"basis", "losses", "open_interest"}
    for a in titled:
        assert a.get_ylabel() and "(" in a.get_ylabel() or a.get_label() == "cascade"  # units in the label
    title = fig._suptitle.get_text()
    assert "crash" in title and "BTC-PERP" in title and "liquidation events:" in title and "insurance fund" in title
    assert EVENT_DEFINITION in title  # the header says what a liquidation event is
    # one shared time axis in minutes, covering the run, with the shock shaded and labelled on every time panel
    for name in [*TIME_PANELS, MODES_PANEL]:
        ax = panel(fig, name)
        assert ax.get_xlim() == pytest.approx((0, 6.0))
        assert "shock -9% over 30s" in texts(ax)
        assert ax.get_legend() is not None or name in ("spread_basis", "insurance_oi", MODES_PANEL)
    assert panel(fig, "insurance_oi").get_xlabel().endswith("(minutes)")
    assert panel(fig, "basis").get_legend() is not None and panel(fig, "open_interest").get_legend() is not None
    one_mode = build_figure(quiet)  # cross only: no margin-mode panel
    assert [a.get_label() for a in one_mode.axes if a.get_title()] == list(PANELS)


def test_liquidation_bars_add_up_to_the_summary(crash):
    fig = build_figure(crash)
    ax = panel(fig, "liquidations")
    s = run_data.report_numbers(crash).summary
    drawn = sum(p.get_height() for c in ax.containers for p in c)
    unit = 1e6 if "million" in ax.get_ylabel() else 1e3 if "thousand" in ax.get_ylabel() else 1.0
    assert drawn * unit == pytest.approx(s["liquidated_notional"]["total"], rel=1e-12)
    steps = crash.steps  # and what the model's own per-step metrics recorded
    assert drawn * unit == pytest.approx(sum(steps[f"liq_{k}_notional"].sum() for k in ("book", "backstop", "adl")))
    counted = sum(int(t.get_text()) for t in ax.texts if t.get_text().isdigit())
    assert counted == s["liquidation_events"] < len(crash.liquidations)  # events, not log rows
    assert f"{s['liquidation_events']} liquidation events" in legend_texts(ax)
    assert "none" not in texts(ax)


@pytest.fixture(scope="module")
def whale() -> abm.RunResult:
    """whale_dump cut short (through the shock and its cascade), as abm.run makes it: with its summary."""
    r = abm.run("whale_dump", overrides={"run.duration_s": 420})
    assert r.summary["liquidation_events"] > 10 and r.summary["longest_chain"] > 2
    return r


def test_header_and_panels_show_the_summary_numbers(whale):
    """One definition of a liquidation event, chain length and R, from the summary to every panel."""
    s = whale.summary
    # the report computes what the run saved from the tables (the agents' shortfalls come from the summary itself)
    assert run_data.report_numbers(whale).summary == {k: v for k, v in s.items() if k != "unfilled"}
    fig = build_figure(whale)
    title = fig._suptitle.get_text()
    ln = s["liquidated_notional"]
    assert f"liquidation events: {s['liquidation_events']}, {style._money(ln['total'])}" in title
    assert f"accounts liquidated {s['accounts_liquidated']}" in title
    assert f"longest liquidation chain {s['longest_chain']}" in title
    assert f"R {s['R']:.2f}, R_all {s['R_all']:.2f}" in title
    bars = liquidation_bars(whale, 0)
    assert bars["totals"]["events"] == int(bars["events"].sum()) == s["liquidation_events"]
    assert bars["totals"]["accounts"] == s["accounts_liquidated"]
    assert bars["totals"]["notional_by_kind"] == {k: ln[k] for k in ("book", "backstop", "adl")}
    assert sum(bars["totals"]["by_last_resort"].values()) == s["liquidation_events"]
    cascade = panel(fig, "cascade").get_title()
    assert cascade == cascade_title(whale)
    assert f"({s['liquidation_events']} liquidation events under 1 root)" in cascade
    assert f"longest chain {s['longest_chain']}" in cascade and f"R {s['R']:.2f}, R_all {s['R_all']:.2f}" in cascade
    assert f"largest cascade {s['largest_cascade_events']} events" in cascade
    modes, _ = mode_split(whale)  # the margin-mode split adds up to the same events and notional
    assert sum(o["events"] for o in modes.values()) == s["liquidation_events"]
    assert sum(o["notional_units"] for o in modes.values()) / 10**6 == ln["total"]
    assert f"{s['liquidation_events']} liquidation events" in legend_texts(panel(fig, "liquidations"))


def test_shortfalls_show_in_the_header_when_the_summary_has_them(quiet):
    unfilled = [{"group": "whale", "agent": 0, "kind": "whale", "what": "market sell", "requested": 100.0,
                 "filled": 39.586, "time_s": 300.0},
                {"group": "long_crowd", "agent": 3, "kind": "leveraged", "what": "entry buy", "requested": 0.5,
                 "filled": 0.25, "time_s": 120.0}]
    many = unfilled + [dict(unfilled[1], agent=i) for i in range(4, 9)]

    def header(summary):
        return build_figure(replace(quiet, summary=summary))._suptitle.get_text()

    title = header({"unfilled": unfilled})
    assert "could not fill: whale market sell: filled 39.586 of 100 BTC at 5.0 min" in title
    assert "long_crowd entry buy: filled 0.25 of 0.5 BTC at 2.0 min" in title
    title = header({"unfilled": many})
    assert title.count("filled ") == style.MAX_SHORTFALLS and f"and {len(many) - style.MAX_SHORTFALLS} more" in title
    for summary in ({}, {"unfilled": []}, {"liquidation_events": 3}):
        assert "could not fill" not in header(summary)
    parts = report_header.shortfall_parts({"unfilled": [dict(unfilled[0], symbol="ETH-PERP")]})
    assert parts == ["could not fill: whale market sell: filled 39.586 of 100 ETH at 5.0 min"]
    assert report_header.shortfall_parts({"unfilled": unfilled[:1]}) == [
        "could not fill: whale market sell: filled 39.586 of 100 (base units) at 5.0 min"]


def test_cascade_panel_draws_the_cascade_graph(crash):
    ax = panel(build_figure(crash), "cascade")
    assert ax.get_title().startswith("Liquidation cascade: who set off whom")
    assert "shock -9% over 30s" in texts(ax)  # the shock root is labelled
    assert ax.collections  # edges and nodes


def test_cascade_panel_lays_out_any_graph_by_time_and_tree(crash):
    g = nx.DiGraph()
    g.add_node("shock:0", type="shock", start_s=240.0, duration_s=30.0, pct=-9.0, market=None)
    g.add_node("market", type="market")
    for i, t in enumerate((250.0, 251.0, 253.0, 300.0)):
        g.add_node(f"liq:{i}:{i}", type="liquidation", time_s=t, notional=1000.0 * (i + 1), markets=(0,),
                   kind=("book", "backstop", "adl", "book")[i])
    g.add_edges_from([("shock:0", "liq:0:0"), ("liq:0:0", "liq:1:1"), ("liq:0:0", "liq:2:2"), ("market", "liq:3:3")])
    run = run_data._Run(crash, None)
    ax = Figure(figsize=(14, 4)).add_subplot()
    panels._draw_graph(ax, run, g)
    (edges,) = [c for c in ax.collections if c.__class__.__name__ == "LineCollection"]
    assert len(edges.get_segments()) == 4
    segs = {tuple(map(tuple, s)) for s in edges.get_segments()}
    assert ((250 / 60, 1.0), (251 / 60, 2.0)) in segs  # x: time in minutes; y: pre-order row under the shock
    assert "shock -9% over 30s → 3 liquidation event(s)" in texts(ax)
    assert "market (no single cause) → 1 liquidation event(s)" in texts(ax)
    lo, hi = ax.get_xlim()
    assert lo <= 4.0 and hi >= 5.0 and hi < 6.0  # zoomed to the shock and the events


def test_a_graph_that_cannot_be_drawn_costs_only_the_graph(crash, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(panels, "_draw_graph", broken)
    with pytest.warns(UserWarning, match="boom"):
        ax = panel(build_figure(crash), "cascade")
    assert "Liquidation events over time" in ax.get_title() and "graph not drawable: RuntimeError" in ax.get_title()
    points = sum(len(c.get_offsets()) for c in ax.collections)
    assert points == run_data.report_numbers(crash).summary["liquidation_events"]
    assert ax.get_yscale() == "log" and "USDC" in ax.get_ylabel()


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
    assert "liquidation events: 0" in fig._suptitle.get_text()


def test_funding_payments_are_marked(quiet):
    funding = quiet.funding.iloc[:0].copy()
    funding.loc[0] = {"time_us": 180_000_000, "market": 0, "rate": 1.5e-4, "price": 600_000, "paid": 1, "received": 1,
                      "rounding": 0, "accounts": 2}
    ax = panel(build_figure(replace(quiet, funding=funding)), "funding")
    assert "+1.50 bps" in texts(ax)
    assert any(t.get_text() == "payments made (1)" for t in ax.get_legend().get_texts())


def two_market_config() -> dict:
    cfg = small_config()
    cfg["run"]["duration_s"] = 150  # past the first market's shock at 120 s (a shock after the end is refused)
    cfg["markets"].append(market(symbol="ETH-PERP", s0=3000, tick_size="0.01", lot_size="0.01", tier_class="eth",
                                 shocks=(shock(60, 10, 5),), oracle_outages_s=((50.0, 70.0),)))
    return cfg


def test_every_market_is_drawn_and_one_can_be_chosen(tmp_path):
    config = ('seed = 2\n[[markets]]\nsymbol = "BTC-PERP"\n'
              '[[markets]]\nsymbol = "ETH-PERP"\noracle_outages_s = [[50.0, 70.0]]\n')
    run = save_run(result_of(two_market_config(), "two markets"), tmp_path / "run", config)
    loaded = load_run(run)  # the outages come back from the saved config.toml
    fig = build_figure(loaded)  # every market: its own prices, depth, spread and liquidations
    labels = [a.get_label() for a in fig.axes if a.get_title()]
    assert labels == [n for p in PER_MARKET for n in (p, f"{p}[ETH-PERP]")] + list(SHARED)
    title = fig._suptitle.get_text()
    assert "markets BTC-PERP, ETH-PERP" in title and "BTC-PERP: index" in title and "ETH-PERP: index" in title
    assert "ETH-PERP shock +5% over 10s" in title and "ETH-PERP 0.83–1.17 min" in title  # the outage
    eth, btc = panel(fig, "prices[ETH-PERP]"), panel(fig, "prices")
    assert "ETH-PERP" in eth.get_title() and "shock +5% over 10s" in texts(eth) and "oracle outage 20s" in texts(eth)
    assert "shock +5%" not in texts(btc) and "oracle outage" not in texts(btc)  # one market's events, its panels
    assert "shock -8% over 20s" in texts(btc)
    assert any(p.get_hatch() == "///" for p in eth.patches) and not any(p.get_hatch() for p in btc.patches)
    assert np.isfinite(eth.lines[0].get_ydata()).all()
    funding = panel(fig, "funding")  # shared panels carry every market
    assert "BTC-PERP: last rate paid" in legend_texts(funding) and "ETH-PERP: last rate paid" in legend_texts(funding)
    assert "ETH-PERP oracle outage 20s" in texts(funding)
    oi = [t.get_text() for t in panel(fig, "open_interest").get_legend().get_texts()]
    assert any("BTC-PERP" in t for t in oi) and any("ETH-PERP" in t for t in oi)
    check_png(render_report(loaded, run / "report.png"), min_height=2600)
    one = build_figure(loaded, market=1)
    assert [a.get_label() for a in one.axes if a.get_title()] == list(PANELS)
    assert "market ETH-PERP (of 2: BTC-PERP, ETH-PERP)" in one._suptitle.get_text()
    assert "shock -8%" not in texts(panel(one, "prices"))  # the other market's shock is not drawn
    with pytest.raises(InvalidInput, match="market"):
        build_figure(loaded, market=2)
    with pytest.raises(InvalidInput, match="png"):
        render_report(loaded, tmp_path / "report.pdf")


def test_losses_by_margin_mode(crash):
    """Per mode, the panel's totals are the per-position rows'; cross owners lose more than isolated ones."""
    modes, positions = mode_split(crash)
    assert set(modes) == {0, 1} and set(positions["mode"]) == {0, 1}
    for mode, o in modes.items():
        mine = positions[positions["mode"] == mode]
        assert o["loss_units"] == sum(mine["loss_units"].tolist()) and o["positions"] == len(mine)
    loss = positions["loss_units"] / 10**6
    assert (loss <= 10_000).all()  # before fees nobody loses more than the deposit (the kind's default)
    by_mode = loss.groupby(positions["mode"]).median()
    assert by_mode[0] > 9_000 and by_mode[1] < 5_000  # a cross account goes whole, an isolated one its margin
    fig = build_figure(crash)
    legend = legend_texts(panel(fig, "losses"))
    for mode, name in ((0, "cross"), (1, "isolated")):
        assert f"{name}: {modes[mode]['events']} events" in legend and f"{name}: owners lost" in legend


def test_title_names_the_venue_profile_of_a_saved_config(quiet):
    saved = replace(quiet, config={"seed": 1, "venue": {"profile": "binance", "overrides": {"oracle.delay_s": 2}}})
    title = build_figure(saved)._suptitle.get_text()
    assert "venue binance (with overrides)" in title and "{" not in title


def test_the_scenarios_events_show_in_the_header(quiet):
    events = [{"kind": "mm_withdrawal", "group": "market_maker", "start_s": 60.0, "duration_s": 120.0, "fraction": 0.5},
              {"kind": "venue_state", "state": "halted", "start_s": 300.0, "duration_s": 30.0, "markets": ["BTC-PERP"],
               "liquidations": "continue"},
              {"kind": "venue_state", "state": "post_only", "venue": "binance", "start_s": 600.0, "duration_s": 60.0}]
    title = build_figure(replace(quiet, config={**quiet.config, "events": events}))._suptitle.get_text()
    assert ("world events: market_maker makers (50%) away 1.0–3.0 min, BTC-PERP halted (liquidations on) 5.0–5.5 min, "
            "binance post-only 10.0–11.0 min") in title.replace("\n", " ")
    assert "world events" not in build_figure(quiet)._suptitle.get_text()


def test_triggered_states_and_transfer_freezes_show_in_the_header(quiet):
    events = [{"kind": "venue_state", "state": "halted", "start_s": 60.0, "duration_s": 120.0,
               "when": {"move_pct": 5.0, "within_s": 60.0}},
              {"kind": "transfer_freeze", "venue": "binance", "blocks": "withdrawals", "start_s": 300.0, "duration_s": 600.0}]
    title = build_figure(replace(quiet, config={**quiet.config, "events": events}))._suptitle.get_text().replace("\n", " ")
    assert "venue halted on a 5% move within 60 s from 1.0 min, for 2.0 min" in title
    assert "binance withdrawals frozen 5.0–15.0 min" in title


def test_world_events_are_shaded_where_they_happened(tmp_path):
    """A scheduled event's span is its window as written; a triggered one's starts when it fired (the summary says
    when), and one whose condition never came has no span. Both reports draw them, and a saved run keeps them."""
    cfg = small_config()
    cfg["events"] = [
        {"kind": "mm_withdrawal", "group": "market_maker", "start_s": 60, "duration_s": 30},
        {"kind": "venue_state", "state": "halted", "start_s": 100, "duration_s": 20,
         "when": {"move_pct": 2, "within_s": 30, "direction": "down"}},  # the -8% shock from 120 s sets it off
    ]
    result = abm.run(parse_scenario(cfg, "test"), report=False)
    (fired,) = result.summary["events_fired_s"]
    assert 120 < fired < 140
    loaded = load_run(save_run(result, tmp_path / "run", _events_toml(cfg["events"])))
    for r in (result, loaded):
        windows = run_data._Run(r, None).event_windows()
        assert windows == [("market_maker makers away 30s", 60.0, 90.0), ("venue halted 20s", fired, fired + 20.0)]
    fig = build_figure(loaded)
    prices = panel(fig, "prices")
    assert "market_maker makers away 30s" in texts(prices) and "venue halted 20s" in texts(prices)
    never = replace(loaded, summary={**loaded.summary, "events_fired_s": [None]})  # its condition never came
    assert run_data._Run(never, None).event_windows() == [("market_maker makers away 30s", 60.0, 90.0)]
    spans = sorted((round(p.get_x() * 60, 6), round((p.get_x() + p.get_width()) * 60, 6)) for p in prices.patches
                   if p.get_facecolor()[:3] == pytest.approx(style_rgb(style.EVENT_STYLE["facecolor"])))
    assert spans == [(60.0, 90.0), (round(fired, 6), round(fired + 20.0, 6))]
    funding = panel(fig, "funding")  # run-wide panels shade them too
    assert "venue halted 20s" in texts(funding)
    from abm.report import interactive

    if interactive.html_available():  # the interactive report shades the same windows
        html, _ = interactive.build_html_figure(loaded)
        purple = {(round(sh.x0 * 60, 6), round(sh.x1 * 60, 6)) for sh in html.layout.shapes if sh.fillcolor == "purple"}
        assert purple == {(60.0, 90.0), (round(fired, 6), round(fired + 20.0, 6))}
        assert {"market_maker makers away 30s", "venue halted 20s"} <= {a.text for a in html.layout.annotations}


def style_rgb(name: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(name)


def _events_toml(events: list[dict]) -> str:
    import tomli_w

    return tomli_w.dumps({"seed": 2, "events": events})
