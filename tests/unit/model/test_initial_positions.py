"""``[[initial_positions]]``: the laws the holders' positions are drawn from, the exchange's opening settlement,
and the scenario's refusals (abm.model.initial, abm.exchange.collateral.seed_positions)."""

from __future__ import annotations

from math import ceil, sqrt

import numpy as np
import pytest

from abm.accounts.ledgers import conservation_gap
from abm.agents.leveraged import pareto_quantile
from abm.errors import InvalidInput
from abm.exchange import Exchange
from abm.market.spec import MarketSpec
from abm.model import MarketModel
from abm.model.initial import apportion, draw_holdings, raw_leverage, total_lots
from abm.model.scenario import InitialPositionsSection, InvalidScenario, parse_scenario
from abm.units import BUY

MARK = 600_000  # 60,000.0 at tick 0.1
MULT = 100  # tick 0.1 x lot 0.001 x 1e6


def section(**kw):
    base = {"group": "crowd", "counterparty": "lp", "notional_usdc": 10_000_000.0}
    return InitialPositionsSection.model_validate({**base, **kw})


def scenario(n_crowd=20, n_lp=2, dur=5.0, agents=None, **kw):
    ip = {"group": "crowd", "counterparty": "lp", "notional_usdc": 2_000_000.0, "long_share": 0.7,
          "size": {"dist": "lognormal", "sigma": 1.0}, "leverage": {"dist": "pareto", "alpha": 1.2, "min": 2, "max": 40},
          "entry_spread_pct": 2.0, "margin_mode": "mixed", "counterparty_leverage": 2, **kw}
    return {"name": "ip", "run": {"duration_s": dur},
            "agents": {"crowd": {"kind": "leveraged", "count": n_crowd, "deposit_usdc": 0, "signal": "long",
                                 "wake": "none"},
                       "lp": {"kind": "noise", "count": n_lp, "deposit_usdc": 0, "wake": "none"},
                       **(agents or {})},
            "initial_positions": [ip]}


# ------------------------------------------------------------------------------------- the laws


def test_apportion_gives_every_holder_a_lot_and_the_total_exactly():
    rng = np.random.default_rng(3)
    w = list(rng.lognormal(0, 2, 500))
    lots = apportion(12_345, w)
    assert sum(lots) == 12_345 and min(lots) >= 1
    # proportional within one lot (the one lot each first, then the rest by largest remainder)
    rest = 12_345 - 500
    assert all(abs((q - 1) - rest * x / sum(w)) < 1 for q, x in zip(lots, w))


def test_total_is_exact_in_lots_and_sides_follow_long_share():
    s = section(long_share=0.7, size={"dist": "pareto", "alpha": 1.5})
    hold = draw_holdings(s, 1, 4000, MARK, MULT, lambda n: 40)
    assert sum(abs(h.lots) for h in hold) == total_lots(10_000_000.0, MARK, MULT) == 166_667
    longs = sum(h.lots > 0 for h in hold)
    assert abs(longs / 4000 - 0.7) < 3 * sqrt(0.7 * 0.3 / 4000)


@pytest.mark.parametrize("law", [{"dist": "pareto", "alpha": 1.2, "min": 2, "max": 40},
                                 {"dist": "lognormal", "median": 8, "sigma": 0.8, "min": 2, "max": 40},
                                 {"dist": "uniform", "min": 3, "max": 25}])
def test_leverage_draws_follow_their_law(law):
    n = 4000
    s = section(leverage=law)
    hold = draw_holdings(s, 7, n, MARK, MULT, lambda notional: 40)
    raw = np.sort([h.leverage_raw for h in hold])
    assert raw[0] >= law["min"] and raw[-1] <= law["max"]
    # Kolmogorov-Smirnov distance within the 1% critical value 1.63/sqrt(n) (DKW)
    dist = s.leverage
    u = (np.arange(n) + 0.5) / n
    if law["dist"] == "pareto":
        expected = np.array([pareto_quantile(q, 1.2, 2, 40) for q in u])
    else:
        expected = np.array([raw_leverage(dist, q) for q in u])
    ecdf_at = np.searchsorted(raw, expected, side="right") / n
    assert np.max(np.abs(ecdf_at - u)) < 1.63 / sqrt(n)
    # the integer leverage the venue holds is the draw rounded, within [min, max]
    assert all(h.leverage == max(1, round(h.leverage_raw)) for h in hold)


def test_pareto_leverage_is_heavy_tailed():
    s = section(leverage={"dist": "pareto", "alpha": 1.0, "min": 2, "max": 50})
    lev = np.array([h.leverage for h in draw_holdings(s, 2, 5000, MARK, MULT, lambda n: 50)])
    assert np.median(lev) in (3, 4)  # pareto_quantile(0.5, 1, 2, 50) = 3.85
    assert 0.01 < np.mean(lev >= 40) < 0.05  # a thin tail at the venue's limit


def test_leverage_above_the_tier_maximum_for_the_size_is_the_tier_maximum():
    s = section(leverage={"dist": "fixed", "value": 40})
    tier = lambda notional: 40 if notional < 150_000_000 * 10**6 else 20  # noqa: E731 (Hyperliquid's BTC tiers)
    assert {h.leverage for h in draw_holdings(s, 1, 10, MARK, MULT, tier)} == {40}  # 1M USDC each
    big = section(notional_usdc=3_000_000_000.0, leverage={"dist": "fixed", "value": 40})
    assert {h.leverage for h in draw_holdings(big, 1, 10, MARK, MULT, tier)} == {20}  # 300M USDC each


def test_entries_stay_in_the_window_and_the_profitable_side_is_cut_at_one_over_leverage():
    s = section(long_share=0.5, entry_spread_pct=5.0, leverage={"dist": "fixed", "value": 50})
    hold = draw_holdings(s, 4, 3000, MARK, MULT, lambda n: 50)
    spread = MARK * 5 // 100
    for h in hold:
        assert MARK - spread <= h.entry <= MARK + spread
        if h.lots > 0:
            assert h.entry >= MARK - MARK // 50  # a long bought at most 2% below s0
        else:
            assert h.entry <= MARK + MARK // 50
    longs = [h.entry for h in hold if h.lots > 0]
    assert max(longs) > MARK + spread * 0.95 and min(longs) < MARK - MARK // 50 + 200  # the window is used


def test_margin_modes():
    assert {h.mode for h in draw_holdings(section(margin_mode="isolated"), 1, 50, MARK, MULT, lambda n: 40)} == \
        {"isolated"}
    mixed = [h.mode for h in draw_holdings(section(margin_mode="mixed", isolated_share=0.25), 1, 4000, MARK, MULT,
                                           lambda n: 40)]
    assert abs(mixed.count("isolated") / 4000 - 0.25) < 3 * sqrt(0.25 * 0.75 / 4000)


# ------------------------------------------------------------------------------------- the exchange's opening settlement


def venue():
    from abm.venues import load_venue

    v = load_venue("hyperliquid")
    ex = Exchange()
    spec = v.market_spec("BTC-PERP", "0.1", "0.001")
    ex.list_market(spec, v.risk_params("btc"))
    ex.set_mark("BTC-PERP", MARK)
    return ex


def test_seed_positions_books_pairs_with_no_fee_and_the_equity_asked():
    ex = venue()
    a, b, c = ex.open_account(0), ex.open_account(0), ex.open_account(1_000_000)
    ex.set_margin_mode(b, "BTC-PERP", "isolated")
    seen = []
    ex.subscribe_fills(lambda *row: seen.append(row))
    dep = ex.seed_positions("BTC-PERP", [(a, c, 10, 610_000), (c, b, 4, 590_000)],
                            {a: 600_000 * 10 * MULT // 10, b: 600_000 * 4 * MULT // 5})
    ex.check_conservation()
    assert conservation_gap(ex) == 0
    assert ex.position(a, "BTC-PERP").size == 10 and ex.position(b, "BTC-PERP").size == -4
    assert ex.position(c, "BTC-PERP").size == -6
    assert ex.ledgers.balances["fees"] == 0
    # a long bought 1,000 above the mark: it lacks that much to be worth 10 x mark / 10
    assert dep[a] == 60_000_000 + 10 * 10_000 * MULT
    assert ex.equity(a) == 60_000_000
    # the isolated short sold below the mark: its margin holds its worth plus that loss
    pos_b = ex.accounts[b].positions[0]
    assert pos_b.margin == 48_000_000 + 4 * 10_000 * MULT and ex.equity(b) == 48_000_000
    assert c not in dep  # no equity asked for c: nothing deposited
    assert ex.markets[0].open_interest == 10 and ex.markets[0].volume == 0 and ex.markets[0].last_price is None
    assert [r[2] for r in seen] == [0, 0] and [r[5] for r in seen] == [a, c] and all(r[8] == BUY for r in seen)


def test_seed_positions_refuses_bad_input_and_changes_nothing():
    ex = venue()
    a, b = ex.open_account(0), ex.open_account(0)
    before = (dict(ex.ledgers.balances), ex.ledgers.external)
    bad = [([(a, a, 1, MARK)], {}, "different accounts"), ([(a, b, 0, MARK)], {}, "lots"),
           ([(a, b, 1, -5)], {}, "price"), ([(a, 99, 1, MARK)], {}, "account"), ([], {}, "non-empty"),
           ([(a, b, 1, MARK)], {a: -1}, "non-negative"), ([(a, b, 1, MARK)], {77: 5}, "only accounts of the pairs")]
    for pairs, eq, words in bad:
        with pytest.raises(InvalidInput, match=words):
            ex.seed_positions("BTC-PERP", pairs, eq)
    assert (dict(ex.ledgers.balances), ex.ledgers.external) == before
    assert not ex.markets[0].holders
    ex.seed_positions("BTC-PERP", [(a, b, 1, MARK)], {a: 10**6, b: 10**6})
    with pytest.raises(InvalidInput, match="books a market's open interest once"):
        ex.seed_positions("BTC-PERP", [(a, b, 1, MARK)], {})


def test_seed_positions_needs_a_mark():
    ex = Exchange()
    ex.list_market(MarketSpec("X", "0.1", "0.001", 6))
    a, b = ex.open_account(0), ex.open_account(0)
    with pytest.raises(InvalidInput, match="must have a mark"):
        ex.seed_positions("X", [(a, b, 1, 10)], {})


# ------------------------------------------------------------------------------------- in a model


def test_conservation_holds_from_the_first_event_and_every_market_nets_to_zero():
    m = MarketModel(scenario(), audit=True)
    ex = m.exchange
    ex.check_conservation()  # before any event ran
    assert conservation_gap(ex) == 0
    mk = ex.markets[0]
    sizes = [a.positions[0].size for a in ex.accounts.values() if 0 in a.positions]
    assert sum(sizes) == 0
    assert mk.open_interest == sum(s for s in sizes if s > 0)
    crowd = m.agents_by_group["crowd"]
    hold = m.initial_holdings[("crowd", "BTC-PERP")]
    assert sum(abs(ex.position(a.account, "BTC-PERP").size) for a in crowd) == total_lots(2_000_000.0, MARK, MULT)
    for a, h in zip(crowd, hold):
        # every holder is worth exactly its margin at s0 (deposit_usdc = 0), at the leverage drawn
        assert ex.equity(a.account) == ceil(abs(h.lots) * MARK * MULT / h.leverage)
        assert a.leverage == h.leverage and a.margin_mode == h.mode
        assert ex.risk.lev(a.account, 0) == h.leverage
        assert a.liq_price_at_entry is not None
    for c in m.agents_by_group["lp"]:  # counterparties: their net at counterparty_leverage, or their gain if larger
        net = ex.position(c.account, "BTC-PERP").size
        assert ex.equity(c.account) >= ceil(abs(net) * MARK * MULT / 2)
    m.run()
    assert conservation_gap(ex) == 0
    # the leveraged crowd's lots by side and mode (the lev_* columns) count the opening from the first row
    first = m.steps_frame().iloc[0]
    by = {(h.lots > 0, h.mode): 0 for h in hold}
    for h in hold:
        by[(h.lots > 0, h.mode)] += abs(h.lots)
    for (long, mode), q in by.items():
        col = f"lev_{'long' if long else 'short'}_{mode}"
        assert first[col] == pytest.approx(q * 0.001)


def test_too_few_lots_for_the_holders_is_refused_when_drawing():
    with pytest.raises(InvalidInput, match="at least one lot for each of the 50 holders"):
        draw_holdings(section(notional_usdc=1_000.0), 1, 50, MARK, MULT, lambda n: 40)


def test_the_trades_and_accounts_tables_show_the_opening():
    from abm.results.accounts import accounts_table

    m = MarketModel(scenario(dur=2.0)).run()
    t = m.tables()["trades"]
    opening = t[t["opening"]]
    assert len(opening) == 20 and (opening["time_us"] == 0).all() and (opening["taker_oid"] == 0).all()
    acc = accounts_table(m)
    crowd = acc[acc["group"] == "crowd"]
    assert np.allclose(crowd["opening_base"], crowd["position_base"])  # nothing traded in two calm seconds
    assert acc["opening_base"].sum() == pytest.approx(0, abs=1e-9)
    plain = MarketModel({"name": "plain", "run": {"duration_s": 2.0}}).run()
    assert "opening" not in plain.tables()["trades"] and "opening_base" not in accounts_table(plain)


def test_a_holder_manages_its_position_and_does_not_enter_again():
    cfg = scenario(dur=30.0, entry_spread_pct=0.0, long_share=1.0)
    cfg["agents"]["crowd"].update({"stop_loss_pct": 5, "entry_delay_s": 5.0, "wake": "poisson", "wake_every_s": 2.0,
                                   "funding_exit_bps": None, "stop_round_usdc": 1000})
    m = MarketModel(cfg).run()
    for a in m.agents_by_group["crowd"]:
        assert a.history[0][1] == "initial"
        assert not any(ev == "entry" for _, ev, _, _ in a.history)  # it held: no second entry at entry_delay_s
        assert a.in_position and a.actions == 0
        assert a.stop_price == 570_000  # 60,000 - 5% = 57,000: on the round 1,000 grid


def test_stop_round_must_be_whole_ticks():
    cfg = scenario()
    cfg["agents"]["crowd"]["stop_round_usdc"] = 0.05
    with pytest.raises(InvalidInput, match="stop_round_usdc"):
        MarketModel(cfg)


def test_draws_are_deterministic_and_keyed_by_group_and_index():
    a = MarketModel(scenario(n_crowd=30)).initial_holdings[("crowd", "BTC-PERP")]
    assert a == MarketModel(scenario(n_crowd=30)).initial_holdings[("crowd", "BTC-PERP")]
    other = MarketModel(scenario(n_crowd=30, **{}) | {"run": {"duration_s": 5.0, "seed": 2}})
    assert other.initial_holdings[("crowd", "BTC-PERP")] != a
    # another group resized, a group added, the counterparty resized: the holders' positions are the same
    more = scenario(n_crowd=30, n_lp=5, agents={"noise": {"kind": "noise", "count": 7}})
    assert MarketModel(more).initial_holdings[("crowd", "BTC-PERP")] == a
    # the crowd itself resized: each holder keeps its own draws (side, leverage, entry, mode); lots are renormalised
    b = MarketModel(scenario(n_crowd=45)).initial_holdings[("crowd", "BTC-PERP")]
    assert [(h.lots > 0, h.leverage_raw, h.mode, h.weight) for h in b[:30]] == \
        [(h.lots > 0, h.leverage_raw, h.mode, h.weight) for h in a]


def test_existing_scenarios_dump_without_the_field():
    scn = parse_scenario({"name": "x"}, "x")
    assert "initial_positions" not in scn.model_dump(mode="json")


@pytest.mark.parametrize("change, where, words", [
    ({"group": "nobody"}, "initial_positions[0].group", "agent groups"),
    ({"counterparty": "crowd"}, "initial_positions[0].counterparty", "already holds positions"),
    ({"group": "lp", "counterparty": "crowd"}, "initial_positions[0].group", "does not manage a position"),
    ({"symbol": "ETH-PERP"}, "initial_positions[0].symbol", "must be one of the scenario's markets"),
    ({"leverage": {"dist": "pareto", "alpha": 1, "min": 2, "max": 60}}, "initial_positions[0].leverage.max",
     "must be <= 40"),
    ({"leverage": {"dist": "fixed", "value": 41}}, "initial_positions[0].leverage.value", "must be <= 40"),
    ({"leverage": {"dist": "uniform", "min": 9, "max": 3}}, "initial_positions[0].leverage.min", "<= leverage.max"),
    ({"leverage": {"dist": "lognormal", "median": 50, "sigma": 1, "min": 2, "max": 40}},
     "initial_positions[0].leverage.median", "in [min, max]"),
    ({"leverage": {"dist": "pareto", "alpha": 1, "min": 2}}, "initial_positions[0].leverage.max", "required"),
    ({"notional_usdc": 500.0}, "initial_positions[0].notional_usdc", "at least one lot for each of the 20 holders"),
    ({"long_share": 1.5}, "initial_positions[0].long_share", "1"),
    ({"margin_mode": "strict"}, "initial_positions[0].margin_mode", "cross"),
    ({"size": {"dist": "zipf"}}, "initial_positions[0].size.dist", "'equal' or"),
    ({"notional_usdc": -1.0}, "initial_positions[0].notional_usdc", "greater than 0"),
])
def test_bad_input_is_refused_naming_the_field(change, where, words):
    cfg = scenario()
    cfg["initial_positions"][0].update(change)
    with pytest.raises(InvalidScenario) as e:
        parse_scenario(cfg, "ip")
    problems = {p.path: p.allowed for p in e.value.problems}
    assert where in problems, problems
    assert words in problems[where]


def test_a_spot_group_and_a_group_on_another_market_are_refused():
    cfg = scenario()
    cfg["markets"] = [{"symbol": "BTC-PERP"}, {"symbol": "ETH-PERP", "tier_class": "eth", "s0": 3000.0,
                                                "lot_size": "0.01", "tick_size": "0.01"}]
    cfg["initial_positions"][0]["symbol"] = "ETH-PERP"
    with pytest.raises(InvalidScenario) as e:
        parse_scenario(cfg, "ip")
    assert any(p.path == "initial_positions[0].group" and "must trade ETH-PERP" in p.allowed for p in e.value.problems)


def test_the_readme_example_is_a_valid_scenario_that_conserves():
    import re
    import tomllib

    from tests.support import REPO

    sec = (REPO / "README.md").read_text().split("### Starting from a market state")[1]
    data = tomllib.loads(re.findall(r"```toml\n(.*?)```", sec, flags=re.S)[0])
    m = MarketModel({**data, "name": "readme_ip", "run": {"duration_s": 2.0}}, audit=True)
    assert m.exchange.markets[0].open_interest > 0
    m.run()
    assert conservation_gap(m.exchange) == 0


def test_one_sided_counterparties_are_worth_exactly_their_net_at_their_leverage():
    m = MarketModel(scenario(long_share=1.0, counterparty_leverage=3))
    ex = m.exchange
    for c in m.agents_by_group["lp"]:
        net = ex.position(c.account, "BTC-PERP").size
        assert net < 0
        assert ex.equity(c.account) == ceil(-net * MARK * MULT / 3)


def test_market_makers_or_another_leveraged_crowd_take_the_other_side():
    mm = scenario(dur=10.0, long_share=1.0, counterparty="mm",
                  agents={"mm": {"kind": "market_maker", "count": 2, "deposit_usdc": 0}})
    del mm["agents"]["lp"]
    m = MarketModel(mm, audit=True).run()
    assert conservation_gap(m.exchange) == 0
    assert sum(m.exchange.position(a.account, "BTC-PERP").size for a in m.agents_by_group["mm"]) < 0
    shorts = scenario(dur=10.0, long_share=1.0, counterparty="bears",
                      agents={"bears": {"kind": "leveraged", "count": 4, "deposit_usdc": 0, "signal": "short",
                                        "wake": "none", "stop_loss_pct": 10}})
    del shorts["agents"]["lp"]
    m = MarketModel(shorts, audit=True)
    for b in m.agents_by_group["bears"]:
        assert b.in_position and b.position().size < 0 and b.history[0][1] == "initial"
        assert b.stop_price is not None and b.stop_price > MARK  # its stop is above its (short) entry
    m.run()
    assert conservation_gap(m.exchange) == 0


def test_a_venue_held_stop_is_placed_for_the_initial_position():
    cfg = scenario(dur=2.0, entry_spread_pct=0.0, long_share=1.0)
    cfg["agents"]["crowd"].update({"stop_loss_pct": 5, "stop_on_exchange": True})
    m = MarketModel(cfg).run()
    for a in m.agents_by_group["crowd"]:
        assert a._ex_stop is not None and a._ex_stop > 0  # the venue took it after the agent's latency
        rep = m.exchange.trigger_report(a.account, a._ex_stop)
        assert rep.status == "resting" and rep.trigger_price == 570_000
