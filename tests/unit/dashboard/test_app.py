"""The dashboard's and the explorer's behaviour without a browser: frames, backpressure, restarts with changed
controls, the cascade filter and the scrubber (the browser tests drive the same through chromium)."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("panel", reason="the extra viz (panel) is not installed")

from abm.dashboard.app import IN_FLIGHT, Dashboard  # noqa: E402


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    import abm
    from abm.dashboard.explorer import Explorer

    out = tmp_path_factory.mktemp("explore") / "run"
    abm.run("whale_dump", {"run.duration_s": 400}, seed=7, out=out, report=False)
    return Explorer(out)


def test_a_frame_streams_only_the_new_steps():
    d = Dashboard("baseline", {"run.duration_s": 30})
    d.advance(3)
    d.advance(2)
    assert len(d.panels.series.data["t"]) == 5 and d.frames == 2
    data = d.panels.series.data
    assert all(len(data[c]) == 5 for c in data)  # every series, the six depth bands among them
    assert data["bid 1pct"][-1] > 0 > data["ask 1pct"][-1]  # asks drawn below zero
    assert d.panels.ladder.data["size"]  # the book's ladder after a step by hand


def test_frames_wait_for_a_browser_that_is_behind_and_the_model_does_not():
    d = Dashboard("baseline", {"run.duration_s": 30})
    d.play.value = True
    d._last_flush = time.monotonic() + 3600  # no stall fallback here: only the browser's count lets frames out
    ticks = IN_FLIGHT + 4
    for _ in range(ticks):
        d._frame()
    assert d.run.steps == ticks  # the model ran every tick
    assert d.frames == IN_FLIGHT + 1  # but frames stopped going out once the browser was that far behind
    sent = len(d.panels.series.data["t"])
    d._acked("tags", [0], [d.frames])  # the browser has drawn them all
    d._frame()
    assert len(d.panels.series.data["t"]) == ticks + 1 and sent < ticks + 1  # the held steps went with the next frame


def test_restart_applies_the_changed_controls_and_keeps_the_callers_overrides():
    d = Dashboard("whale_dump", {"run.duration_s": 400})
    d.advance(2)
    d.widgets["agents.whale.size"].value = 120
    d.restart()
    assert d.run.scenario.agents["whale"]["size"] == 120
    assert d.run.scenario.run.duration_s == 400 and d.run.steps == 0
    assert len(d.panels.series.data["t"]) == 0


def test_a_refused_value_leaves_the_model_and_says_why():
    d = Dashboard("baseline", {"run.duration_s": 30})
    d.advance(1)
    run = d.run
    d.widgets["run.duration_s"].value = -5.0
    d.restart()
    assert d.run is run
    assert "not restarted" in d.status.object and "duration_s" in d.status.object


def test_the_market_picker_redraws_another_market_without_restarting():
    d = Dashboard("multi_market_contagion", {"run.duration_s": 400})
    assert d.market_picker.options == {"BTC-PERP": 0, "ETH-PERP": 1} and d.market_picker.value == 0
    d.advance(4)
    model = d.run.model
    btc = list(d.panels.series.data["mark"])
    d.market_picker.value = 1
    assert d.run.model is model and d.run.steps == 4  # the same run goes on
    eth = list(d.panels.series.data["mark"])
    assert len(eth) == 4 and eth != btc and eth[-1] == model.datacollector.model_vars["mark[ETH-PERP]"][-1]
    assert d.panels.figures["prices"].title.text.startswith("ETH-PERP")
    d.advance(2)
    assert len(d.panels.series.data["t"]) == 6
    d.restart()  # a restart keeps the market drawn
    assert d.run.model is not model and d.run.market == 1 and d.market_picker.value == 1
    d.picker.value = "baseline"  # another scenario: its one market
    assert d.market_picker.options == {"BTC-PERP": 0} and d.run.market == 0


def test_the_dashboard_renders_in_a_notebook_cell():
    import abm.dashboard

    data, _ = abm.dashboard.show("baseline", {"run.duration_s": 30})._repr_mimebundle_()
    assert "text/html" in data and "application/vnd.holoviews_exec.v0+json" in data


def test_a_cascade_node_keeps_its_subtree_in_the_table(explorer):
    lq = explorer.result.liquidations
    assert len(explorer.liq_table.value) == len(lq)
    g = explorer.graph
    leaf = next(n for n, a in g.nodes(data=True) if a.get("type") == "liquidation" and g.out_degree(n) == 0)
    explorer.select_node(leaf)
    a = g.nodes[leaf]
    rows = explorer.liq_table.value
    assert len(rows) >= 1 and set(rows["account"]) == {a["account"]} and set(rows["trigger"]) == {a["trigger"]}
    root = next(iter(g.predecessors(leaf)))
    explorer.select_node(root)
    assert len(explorer.liq_table.value) > len(rows) or g.nodes[root].get("type") != "liquidation"
    explorer._tapped("indices", [], [])  # a click beside every node: all rows again
    assert len(explorer.liq_table.value) == len(lq)


def test_the_scrubber_moves_every_cursor_and_the_depth_bars(explorer):
    explorer.scrub(100)
    t = explorer.run.t[100]
    assert all(s.location == t for s in explorer.cursors)
    steps = explorer.run.steps
    assert explorer.depth_now.data["usdc"][-1] == pytest.approx(steps["depth_ask_2pct"].iloc[100])
    assert explorer.depth_now.data["usdc"][0] == pytest.approx(steps["depth_bid_2pct"].iloc[100])
    assert "t = 101 s" in explorer.time_label.object


def test_an_account_without_trades_keeps_its_deposit(explorer):
    from abm.dashboard.explorer import equity_path

    nobody = int(explorer.accounts["account"].max()) + 1  # in no table of the run
    eq = equity_path(explorer.result, nobody, 0, explorer.run.time_s, explorer.run.drawn[0].col("mark"), 123.0)
    assert (eq == 123.0).all()


def test_a_liquidated_accounts_equity_path_falls(explorer):
    liquidated = explorer.accounts[explorer.accounts["liquidated"]]
    explorer.agent.value = int(liquidated["account"].iloc[0])
    eq = explorer.equity_src.data["equity"]
    assert eq[-1] < eq[0]  # its long lost on the way down
    assert len(explorer.fills_table.value) > 0


def test_the_explorer_draws_the_picked_market(tmp_path):
    import abm
    from abm.dashboard.explorer import Explorer

    out = tmp_path / "run"
    result = abm.run("multi_market_contagion", {"run.duration_s": 400}, seed=7, out=out, report=False)
    e = Explorer(out)
    assert e.market.options == {"BTC-PERP": 0, "ETH-PERP": 1} and not e.market.disabled
    e.scrubber.value = 50
    e.market.value = 1
    assert list(e.steps_src.data["mark"]) == result.steps["mark[ETH-PERP]"].tolist()
    assert list(e.steps_src.data["bid 1pct"]) == result.steps["depth_bid_1pct[ETH-PERP]"].tolist()
    assert e.price_panel.title.text.startswith("ETH-PERP")
    assert e.depth_now.data["usdc"][len(e.depth_now.data["usdc"]) // 2] == result.steps["depth_ask_0.5pct[ETH-PERP]"][50]
