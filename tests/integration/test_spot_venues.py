"""Simulated spot venues in a run: their books make the index (index = "venues"), so a sale on spot reaches the
oracle and the mark; both venues conserve every unit after every step; bad spot input is refused by name."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.results.fingerprint import fingerprint
from abm.scenarios import load_scenario
from abm.scenarios.runner import run

SPOT: dict[str, Any] = {
    "run.duration_s": 600,
    "markets[0].shocks": [],
    "markets[0].index": "venues",
    "spot": {"binance": {"weight": 1}},
    "agents.spot_mm": {"kind": "market_maker", "count": 3, "venue": "binance", "deposit_usdc": 2_000_000,
                       "spot_inventory": 20.0, "reference": "mid", "max_inventory": 15.0},
    "agents.spot_noise": {"kind": "noise", "count": 20, "venue": "binance", "deposit_usdc": 1_000_000,
                          "spot_inventory": 10.0},
}
WHALE = {"kind": "whale", "count": 1, "venue": "binance", "execution": "twap", "side": "sell", "size": 30,
         "start_s": 300, "duration_s": 120, "slice_s": 10, "deposit_usdc": 0, "spot_inventory": 30.0}


def model(overrides: dict[str, Any], seed: int = 7) -> MarketModel:
    return MarketModel(load_scenario("whale_dump", overrides, seed=seed), audit=True).run()  # audit: every step


@pytest.fixture(scope="module")
def runs() -> tuple[MarketModel, MarketModel]:
    return model(SPOT), model({**SPOT, "agents.spot_whale": WHALE})


def test_a_sale_on_the_spot_book_moves_the_index_the_oracle_and_the_mark(runs: tuple[MarketModel, MarketModel]) -> None:
    calm, sold = runs
    for m in runs:
        li = m.indices["BTC-PERP"]
        assert li.times[0] == 0 and li.times[1] - li.times[0] == 1_000_000  # sampled every index_interval_s
    t = np.array(sold.indices["BTC-PERP"].times)
    calm_after = np.array(calm.indices["BTC-PERP"].values)[t >= 300e6]
    sold_after = np.array(sold.indices["BTC-PERP"].values)[t >= 300e6]
    whale = sold.agents_by_group["spot_whale"][0]
    assert whale.filled_lots > 10_000  # more than 10 BTC sold into the spot book
    assert sold_after.min() < calm_after.min() * (1 - 0.003)  # the index fell with the spot mid
    steps_calm = calm.datacollector.get_model_vars_dataframe()
    steps_sold = sold.datacollector.get_model_vars_dataframe()
    assert steps_sold["oracle"].iloc[-1] < steps_calm["oracle"].iloc[-1] * (1 - 0.003)  # the oracle after its delay
    assert steps_sold["mark"].iloc[-1] < steps_calm["mark"].iloc[-1]  # and the mark margin reads
    assert np.allclose(steps_sold["index"].iloc[1:].to_numpy(), [sold.index_of("BTC-PERP").value_at(int(s * 1e6))
                                                                 for s in steps_sold["time_s"].iloc[1:]])


def test_spot_accounts_hold_cash_and_inventory_and_conserve(runs: tuple[MarketModel, MarketModel]) -> None:
    _, sold = runs
    # the perp's market-maker metrics count the perp's makers only: spot ones are their venue's role
    assert sold.agents_by_role["market_maker@binance"] == sold.agents_by_group["spot_mm"]
    assert sold.agents_by_role["market_maker"] == sold.agents_by_group["market_maker"]
    sx = sold.spot_venues["binance"]
    sx.check_conservation()
    sold.exchange.check_conservation()
    pair = sx.market("BTC/USDC")
    assert pair.external == (3 * 20 + 20 * 10 + 30) * 1000  # every lot that came in (0.001 BTC lots)
    whale = sold.agents_by_group["spot_whale"][0]
    assert sx.account(whale.account).inventory[0] == 30_000 - whale.filled_lots  # sold only what it held
    assert sx.account(whale.account).cash > 0 and sx.ledgers["fees"] > 0


def test_the_same_seed_gives_the_same_run() -> None:
    short = {**SPOT, "run.duration_s": 120, "agents.whale.start_s": 60}
    a = run("whale_dump", short, seed=3, report=False)
    b = run("whale_dump", short, seed=3, report=False)
    assert fingerprint(a) == fingerprint(b)


@pytest.mark.parametrize("overrides, field, words", [
    ({"agents.spot_noise": {"kind": "noise", "venue": "kraken"}}, "agents.spot_noise.venue", "spot venues"),
    ({"markets[0].index": "venues"}, "markets[0].index", "needs a source"),
    ({"markets[0].index_sources": [{"name": "okx"}]}, "markets[0].index_sources", 'index = "venues"'),
    ({"spot": {"a": {"markets": ["ETH-PERP"]}}}, "spot.a.markets[0]", "must be one of"),
    ({"markets[0].index": "venues", "spot": {"okx": {}}, "markets[0].index_sources": [{"name": "okx"}]},
     "markets[0].index_sources", "distinct"),
    ({"markets[0].index": "venues", "markets[0].index_rule": "weighted_medain",
      "markets[0].index_sources": [{"name": "okx"}]}, "markets[0].index_rule", "did you mean 'weighted_median'"),
])
def test_bad_spot_input_is_refused_by_name(overrides: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as e:
        load_scenario("whale_dump", overrides)
    lines = [p for p in e.value.problems if p.path == field]  # type: ignore[attr-defined]
    assert lines and words in lines[0].allowed, e.value


def test_agent_errors_on_a_spot_venue_name_the_group() -> None:
    with pytest.raises(InvalidInput, match=r"agents\.spot_noise\.spot_inventory: must be a whole number of lots"):
        model({**SPOT, "agents.spot_noise": {**SPOT["agents.spot_noise"], "spot_inventory": 0.0005}})
    with pytest.raises(InvalidInput, match=r"agents\.lev\.leverage: must be <= 1 \(the venue's maximum for BTC/USDC\)"):
        model({**SPOT, "agents.lev": {"kind": "leveraged", "venue": "binance", "leverage": 5}})


def test_the_arbitrageurs_spot_leg_trades_through_the_spot_book() -> None:
    """With spot_venue the hedge is an order on the simulated book (its latency, fees, inventory, borrowing):
    the carry trade's spot buying lifts the spot mid, so the index the perp is measured against moves too."""
    base = {**SPOT, "spot": {"binance": {"weight": 1, "lending": 200.0, "borrow_bps_per_day": 5.0}}}
    external = model(base)
    through = model({**base, "agents.arbitrageur.spot_venue": "binance"})
    sx = through.spot_venues["binance"]
    arbs = through.agents_by_group["arbitrageur"]
    for a in arbs:
        acct = sx.account(a.spot.account)
        assert round(a.spot_position * 1000, 9) == acct.total_inventory(0) - acct.debt[0]  # the venue holds its spot leg
        assert a.spot_position > 0 and a.position().size < 0  # short perp, long spot: the carry
    assert sx.ledgers["fees"] > 0 and sum(a.spot_volume for a in arbs) > 0
    t = np.array(through.indices["BTC-PERP"].times)
    early = t < 60e6  # the first minute, while they put the carry on
    lifted = np.array(through.indices["BTC-PERP"].values)[early].max()
    calm = np.array(external.indices["BTC-PERP"].values)[early].max()
    assert lifted > calm * 1.002  # their buying moved the spot book, so the index
    reasons = {r.reason for a in arbs for r in a.shortfalls}
    assert any("spot book ran out" in r for r in reasons)  # a hedge the thin book could not take is recorded
    # retries into the same thin book are one record per run of attempts, with their count and lots
    runs_of_retries = [r for a in arbs for r in a.shortfalls if r.what.startswith("spot") and r.orders > 1]
    assert runs_of_retries and all(r.requested > r.filled for r in runs_of_retries)
    with pytest.raises(InvalidInput, match=r"agents\.arbitrageur\.spot_venue: must be one of the scenario's spot"):
        load_scenario("whale_dump", {**base, "agents.arbitrageur.spot_venue": "kraken"})


def test_agents_read_the_index_the_venues_make_not_the_value_behind_it(runs: tuple[MarketModel, MarketModel]) -> None:
    _, sold = runs
    arb = sold.agents_by_group["arbitrageur"][0]  # its spot leg is the external venue: it trades at this index
    now = sold.sched.now
    made = sold.indices["BTC-PERP"].value_at(now)
    assert arb.ctx.index_price("BTC-PERP") == made
    assert made != sold.paths["BTC-PERP"].value_at(now)  # the spot sale moved it off the value
    assert arb.ctx.value("BTC-PERP") == sold.paths["BTC-PERP"].value_at(now)


def test_a_value_trader_on_a_spot_venue_sells_what_it_holds_when_news_drops_the_value() -> None:
    news = {**SPOT, "run.duration_s": 60, "agents.whale.start_s": 50,
            "markets[0].shocks": [{"start_s": 10, "duration_s": 5, "pct": -5}],  # with index = "venues": the value
            "agents.spot_value": {"kind": "value", "count": 1, "venue": "binance", "deposit_usdc": 100_000,
                                  "spot_inventory": 2.0, "long_only": False, "max_leverage": 1}}
    m = model(news)
    (v,) = m.agents_by_group["spot_value"]
    held = m.spot_venues["binance"].account(v.account).total_inventory(0)
    assert held == 0 and v.rejects == 0  # it sold its 2 BTC above the value, never more than it held
    assert v.target_lots < 0 and v.position().size == -2_000  # it wanted to go short; spot has no short


@pytest.mark.parametrize("anchor", [0.0, 0.3])
def test_noise_flow_anchored_to_value_follows_news_that_the_makers_stand_aside_from(anchor: float) -> None:
    news = {**SPOT, "run.duration_s": 120, "agents.whale.start_s": 110,
            "markets[0].shocks": [{"start_s": 20, "duration_s": 5, "pct": -3}],  # with index = "venues": the value
            "agents.spot_noise.value_weight": anchor}
    m = model(news)
    last = m.spot_venues["binance"].market("BTC/USDC").last_price
    value = m.paths["BTC-PERP"].value_at(m.sched.now) / 0.1  # in ticks of 0.1 USDC
    gap = abs(last / value - 1)
    if anchor:
        assert gap < 0.005  # the book came down to the value
    else:
        assert gap > 0.02  # zero-intelligence flow keeps whatever level it had: the old price


@pytest.mark.parametrize("anchor", [0.0, 0.3])
def test_an_anchored_crowd_seeds_an_empty_book_around_the_value(anchor: float) -> None:
    m = model({**SPOT, "run.duration_s": 60, "agents.whale.start_s": 50, "agents.spot_mm.count": 0,
               "agents.spot_noise.value_weight": anchor})
    book = m.spot_venues["binance"].market("BTC/USDC").book
    if not anchor:
        assert book.best_bid() is None and book.best_ask() is None  # nothing to place its orders around
        return
    value = m.paths["BTC-PERP"].value_at(m.sched.now) / 0.1
    assert book.best_bid() < book.best_ask() and abs(book.mid() / value - 1) < 0.003


def test_a_spot_group_trades_the_pair_it_names_on_a_venue_listing_several() -> None:
    """``symbol`` of a group on a spot venue is one of that venue's pairs (a perp symbol there is refused by name),
    so the second pair of a venue listing BTC and ETH has a crowd of its own."""
    two = {"run.duration_s": 120, "markets[0].shocks": [], "markets[1].shocks": [], "spot": {"binance": {"weight": 1}},
           "agents.spot_mm": {"kind": "market_maker", "count": 2, "venue": "binance", "deposit_usdc": 2_000_000,
                              "spot_inventory": 20.0, "reference": "mid", "symbol": "ETH/USDC"},
           "agents.spot_noise": {"kind": "noise", "count": 10, "venue": "binance", "deposit_usdc": 1_000_000,
                                 "spot_inventory": 10.0, "symbol": "ETH/USDC"}}
    m = MarketModel(load_scenario("multi_market_contagion", two, seed=1), audit=True).run()
    sx = m.spot_venues["binance"]
    assert {a.symbol for g in ("spot_mm", "spot_noise") for a in m.agents_by_group[g]} == {"ETH/USDC"}
    eth, btc = sx.market("ETH/USDC").book, sx.market("BTC/USDC").book
    assert eth.best_bid() is not None and eth.best_ask() is not None and sx.market("ETH/USDC").last_price > 0
    assert btc.best_bid() is None and btc.best_ask() is None and sx.market("BTC/USDC").last_price == 0
    with pytest.raises(InvalidInput, match=r"agents\.spot_noise\.symbol: must be one of spot venue 'binance''s pairs "
                                           r"\['BTC/USDC', 'ETH/USDC'\], got 'ETH-PERP'"):
        load_scenario("multi_market_contagion", {**two, "agents.spot_noise.symbol": "ETH-PERP"})
