"""The value trader: demand proportional to mispricing and equity, capped by leverage (so a falling price can
force it to sell), a deadband, long-only by default, one order in flight, the value seen with lag and noise."""

from __future__ import annotations

from fractions import Fraction

import pytest

from abm.agents.testing import FakeContext, build_agent
from abm.agents.value import ValueTrader
from abm.errors import InvalidInput
from abm.units import BUY, SELL

MID = 600_000  # ticks of 0.1 USDC: 60,000 USDC per BTC; a lot is 0.001 BTC, 60 USDC


def trader(value: float, equity_usdc: float = 1_000_000, **params: object) -> tuple[ValueTrader, FakeContext]:
    ctx = FakeContext(mark=MID, equity_usdc=equity_usdc)
    ctx.set_book(MID - 5, MID + 5)
    ctx.values["BTC-PERP"] = value
    return build_agent(ValueTrader, dict(params), ctx), ctx


def test_below_value_it_buys_what_its_demand_says_clipped() -> None:
    agent, ctx = trader(61_000.0, clip_usdc=10_000_000)
    agent.on_wake(0)
    (order,) = ctx.pending()
    mispricing = (61_000 - 60_000) / 60_000
    want = int(20 * mispricing * 1_000_000 / 60)  # aggression x mispricing x equity, in 60-USDC lots
    assert (order.action, order.kwargs["side"], order.kwargs["qty"]) == ("market", BUY, want)
    assert order.kwargs["reduce_only"] is False and order.kwargs["slippage_bps"] == 50
    assert ("set_leverage", "BTC-PERP", 3) in ctx.setup


def test_orders_are_clipped_and_one_is_in_flight_at_a_time() -> None:
    agent, ctx = trader(61_000.0)
    agent.on_wake(0)
    assert ctx.pending()[0].kwargs["qty"] == 250_000 // 60  # clip_usdc / lot value
    agent.on_wake(5_000_000)
    assert len(ctx.pending()) == 1  # nothing more until the first is answered
    ctx.fill()
    ctx.set_position(250_000 // 60, Fraction(MID))
    agent.on_wake(10_000_000)
    assert len(ctx.pending()) == 1


def test_a_small_mispricing_is_left_alone() -> None:
    agent, ctx = trader(60_100.0)  # 16.7 bp < threshold_bps = 20
    agent.on_wake(0)
    assert ctx.pending() == []


def test_long_only_by_default_and_shorts_above_value_when_allowed() -> None:
    agent, ctx = trader(59_000.0)
    agent.on_wake(0)
    assert ctx.pending() == []
    agent, ctx = trader(59_000.0, long_only=False)
    agent.on_wake(0)
    assert ctx.pending()[0].kwargs["side"] == SELL and ctx.pending()[0].kwargs["reduce_only"] is False


def test_the_leverage_cap_forces_it_to_sell_into_a_fall_whatever_the_value_says() -> None:
    """Long 60,000 lots (3.6M USDC) on 1M equity at 3x: the cap is 50,000 lots, so it sells although the
    price is below value (the leverage cycle of Thurner, Farmer and Geanakoplos)."""
    agent, ctx = trader(65_000.0, clip_usdc=10_000_000, aggression=100.0)  # wants 138,888 lots
    ctx.set_position(60_000, Fraction(MID))
    agent.on_wake(0)
    (order,) = ctx.pending()
    assert (order.kwargs["side"], order.kwargs["qty"], order.kwargs["reduce_only"]) == (SELL, 10_000, True)
    assert agent.forced_sells == 1 and agent.target_lots == 50_000


def test_it_reads_the_value_lagged() -> None:
    ctx = FakeContext(mark=MID, equity_usdc=1_000_000)
    ctx.set_book(MID - 5, MID + 5)
    ctx.values["BTC-PERP"] = lambda t_us: 61_000.0 if t_us < 10_000_000 else 60_000.0
    agent = build_agent(ValueTrader, {"value_lag_s": 10.0}, ctx)
    ctx.now = 15_000_000  # now the value is 60,000, but it sees the one 10 s ago
    agent.on_wake(ctx.now)
    assert agent.observed == 61_000.0 and ctx.pending()[0].kwargs["side"] == BUY


def test_noise_comes_from_its_own_stream() -> None:
    seen = []
    for seed in (1, 1, 2):
        ctx = FakeContext(mark=MID, equity_usdc=1_000_000)
        ctx.set_book(MID - 5, MID + 5)
        ctx.values["BTC-PERP"] = 61_000.0
        agent = build_agent(ValueTrader, {"value_noise_bps": 100.0}, ctx, seed=seed)
        agent.on_wake(0)
        seen.append(agent.observed)
    assert seen[0] == seen[1] != seen[2] and all(abs(v / 61_000 - 1) < 0.06 for v in seen)


def test_leverage_above_the_venues_maximum_is_refused() -> None:
    ctx = FakeContext(mark=MID, max_leverage=40)
    with pytest.raises(InvalidInput, match=r"agents\.value\.max_leverage: must be <= 40"):
        build_agent(ValueTrader, {"max_leverage": 50}, ctx)


def test_in_a_run_it_buys_the_dislocation_the_whale_leaves() -> None:
    from abm.model import MarketModel
    from abm.scenarios import load_scenario

    fund = {"kind": "value", "count": 2, "deposit_usdc": 2_000_000, "threshold_bps": 10}
    model = MarketModel(load_scenario("whale_dump", {"run.duration_s": 900, "agents.fund": fund}, seed=1)).run()
    funds = model.agents_by_group["fund"]
    assert all(a.position().size > 0 and a.rejects == 0 for a in funds)  # the whale sold the perp below value
    assert model.agents_by_role["value"] == funds
    model.exchange.check_conservation()
