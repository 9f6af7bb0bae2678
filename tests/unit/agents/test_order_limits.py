"""Agents other than the whale keep inside the venue's enforced order limits: market orders worth more than the
maximum market-order value go as children (the leveraged trader's exits, a position holder's entry, stop and
hedge), opening orders are sized down to the room under a bracket's max_notional with a record (the leveraged
trader's entry, a position holder's entry and hedge, the arbitrageur's legs), and without the rules nothing changes."""

from __future__ import annotations

from fractions import Fraction

from abm.agents.arbitrageur import Arbitrageur
from abm.agents.basket import BasketTrader
from abm.agents.leveraged import LeveragedTrader
from abm.agents.limits import market_children, market_most, position_room
from abm.agents.position import PositionHolder
from abm.agents.testing import FakeContext, build_agent
from abm.agents.value import ValueTrader
from abm.units import BUY, SELL, USDC
from abm.venues.rules import EnforcedLimits

MARK = 600_000  # 60,000 USDC at tick 0.1
LOT_VALUE = MARK * 100  # quote units: FakeContext's multiplier is 100 (tick 0.1 x lot 0.001 x 1e6)


def limited(ctx: FakeContext, market_usdc: float | None = None, position_usdc: float | None = None) -> FakeContext:
    ctx.limits["BTC-PERP"] = EnforcedLimits(
        max_market_order_value=None if market_usdc is None else int(market_usdc * USDC),
        max_position_notional=None if position_usdc is None else int(position_usdc * USDC))
    return ctx


def test_the_helpers_answer_what_the_venue_would_take():
    ctx = FakeContext(mark=MARK)
    assert ctx.multiplier("BTC-PERP") == 100
    assert market_most(ctx, "BTC-PERP") is None and market_children(ctx, "BTC-PERP", 10_000) == [10_000]
    assert position_room(ctx, "BTC-PERP", BUY, MARK) is None
    limited(ctx, market_usdc=60_000, position_usdc=300_000)
    assert market_most(ctx, "BTC-PERP") == 1_000  # 1 BTC at 60,000
    assert market_children(ctx, "BTC-PERP", 2_500) == [834, 833, 833]
    assert market_children(ctx, "BTC-PERP", 1_000) == [1_000]
    ctx.set_position(2_000)
    holder(ctx).limit(BUY, 500, MARK - 10)  # any agent on the context: a resting bid of 500 lots on the buy side
    ctx.rest()
    assert position_room(ctx, "BTC-PERP", BUY, MARK) == 5_000 - 2_000 - 500
    assert position_room(ctx, "BTC-PERP", SELL, MARK) == 5_000 + 2_000  # selling first closes the long


def entering_trader(ctx: FakeContext) -> LeveragedTrader:
    ctx.set_book(599_990, 600_010)
    return build_agent(LeveragedTrader, {"signal": "long", "leverage": 10, "wake": "none", "deposit_usdc": 50_000,
                                         "size_fraction": 1.0, "funding_exit_bps": None}, ctx)


def test_leveraged_entry_is_sized_down_to_the_limits_with_a_record():
    free = FakeContext(mark=MARK)
    entering_trader(free).on_wake(0)
    want = free.pending("market")[0].kwargs["qty"]
    assert want > 3_000  # 500,000 USDC at 10x: ~8.3 BTC
    ctx = limited(FakeContext(mark=MARK), market_usdc=120_000, position_usdc=500_000)
    a = entering_trader(ctx)
    a.on_wake(0)
    (entry,) = ctx.pending("market")
    assert entry.kwargs["qty"] == 2_000  # 120,000 USDC of market order at the mark: 2 BTC
    (rec,) = a.shortfalls
    assert (rec.requested, rec.filled) == (want, 2_000) and "max_market_order_value" in rec.reason
    ctx2 = limited(FakeContext(mark=MARK), position_usdc=90_000)
    b = entering_trader(ctx2)
    b.on_wake(0)
    assert ctx2.pending("market")[0].kwargs["qty"] == 1_500 and "max_position_notional" in b.shortfalls[0].reason


def test_leveraged_exit_worth_more_than_a_market_order_goes_in_children_one_after_another():
    ctx = limited(FakeContext(mark=MARK), market_usdc=60_000)
    a = entering_trader(ctx)
    a._held = 2_500  # it holds 2.5 BTC (entered before the rule, say)
    ctx.set_position(2_500, Fraction(MARK))
    a._exit("stop")
    sizes = []
    for left in (1_500, 500, 0):
        (child,) = ctx.pending("market")
        assert child.kwargs["reduce_only"]
        sizes.append(child.kwargs["qty"])
        ctx.set_position(left, Fraction(MARK) if left else None)
        ctx.fill()  # fills whole: the next child goes at once, no retry wait
    assert sizes == [1_000, 1_000, 500] and not ctx.pending() and a.limit_splits == 1
    assert not a.in_position and [h[1] for h in a.history] == ["exit:stop"] * 3


def holder(ctx: FakeContext, **extra: object) -> PositionHolder:
    ctx.set_book(599_990, 600_010)
    return build_agent(PositionHolder, {"notional_usdc": 150_000, "leverage": 5, "side": "long", "open_s": 0, **extra},
                       ctx)


def test_position_holder_market_entry_goes_in_children_and_is_judged_once_all_landed():
    ctx = limited(FakeContext(mark=MARK), market_usdc=60_000)
    h = holder(ctx)
    h._open(0)
    kids = ctx.pending("market")
    assert [k.kwargs["qty"] for k in kids] == [834, 833, 833] and h.limit_splits == 1  # 2.5 BTC in three
    ctx.set_position(834, Fraction(MARK))
    ctx.fill()
    assert not h.shortfalls and len(h.entry_oids) == 0  # not judged until the last child lands
    ctx.set_position(1_667, Fraction(MARK))
    ctx.fill()
    ctx.set_position(2_000, Fraction(MARK))
    ctx.fill(filled=333)  # the last child fills in part
    assert len(h.entry_oids) == 3
    (rec,) = h.shortfalls
    assert (rec.requested, rec.filled) == (2_500, 2_000)


def test_position_holder_entry_is_sized_down_to_the_bracket_cap_with_a_record():
    ctx = limited(FakeContext(mark=MARK), position_usdc=90_000)
    h = holder(ctx)
    h._open(0)
    (entry,) = ctx.pending("market")
    assert entry.kwargs["qty"] == 1_500 and h.requested == 1_500
    (rec,) = h.shortfalls
    assert (rec.requested, rec.filled) == (2_500, 1_500) and "max_position_notional" in rec.reason


def test_position_holder_stop_close_goes_in_children():
    ctx = limited(FakeContext(mark=MARK), market_usdc=60_000)
    h = holder(ctx)
    ctx.set_position(2_500, Fraction(MARK))
    h.close_all("stop", 0, MARK, 100.0)
    kids = ctx.pending("market")
    assert [k.kwargs["qty"] for k in kids] == [834, 833, 833] and all(k.kwargs["reduce_only"] for k in kids)
    (rec,) = h.exits
    assert rec.sent_us == [0, 0, 0]
    for left in (1_666, 833, 0):
        ctx.set_position(left, Fraction(MARK) if left else None)
        ctx.fill()
    assert len(rec.oids) == 3 and not ctx.pending()


def test_position_holder_hedge_is_sized_down_to_the_cap_on_the_hedge_market():
    ctx = FakeContext(mark=MARK, symbols=("BTC-PERP", "ETH-PERP"))
    ctx.marks["ETH-PERP"] = 30_000  # 3,000 USDC at tick 0.1
    ctx.limits["ETH-PERP"] = EnforcedLimits(max_position_notional=30_000 * USDC)
    h = holder(ctx)
    ctx.set_position(2_500, Fraction(MARK))
    h.hedge("hedge", 0, MARK, "ETH-PERP", Fraction(1), 50.0)
    (order,) = ctx.pending("market")
    assert order.kwargs["symbol"] == "ETH-PERP" and order.kwargs["qty"] == 10_000  # 30,000 USDC of ETH
    rec = h.shortfalls[0]
    assert rec.requested == 50_000 and rec.filled == 10_000 and "max_position_notional" in rec.reason
    ctx.fill()
    assert len(h.shortfalls) == 1  # the sized-down hedge filled whole: nothing more to record


def test_arbitrageur_leg_is_cut_to_the_bracket_cap_and_counted():
    ctx = limited(FakeContext(mark=MARK), position_usdc=60_000)
    arb = build_agent(Arbitrageur, {"deposit_usdc": 1_000_000, "spot_cash_usdc": 1_000_000}, ctx)
    arb._perp(SELL, 3_000, MARK, "open")
    (leg,) = ctx.pending("limit")
    assert leg.kwargs["qty"] == 1_000 and arb.capped["venue"] == 1  # 60,000 USDC at its limit price
    free = FakeContext(mark=MARK)
    arb2 = build_agent(Arbitrageur, {"deposit_usdc": 1_000_000, "spot_cash_usdc": 1_000_000}, free)
    arb2._perp(SELL, 3_000, MARK, "open")
    assert free.pending("limit")[0].kwargs["qty"] == 3_000 and arb2.capped["venue"] == 0


def basket(ctx: FakeContext) -> BasketTrader:
    ctx.set_book(599_990, 600_010)
    return build_agent(BasketTrader, {"deposit_usdc": 50_000, "leverage": 10, "size_fraction": 1.0}, ctx)


def test_a_basket_entry_worth_more_than_a_market_order_goes_as_children_recorded_once():
    free = FakeContext(mark=MARK, equity_usdc=50_000)
    basket(free)._enter(0)
    (whole,) = free.pending("market")
    want = whole.kwargs["qty"]
    assert want == 500_000 * USDC // LOT_VALUE  # 50,000 x 10 at 60,000: 8.333 BTC
    ctx = limited(FakeContext(mark=MARK, equity_usdc=50_000), market_usdc=120_000)
    a = basket(ctx)
    a._enter(0)
    sizes = [s.kwargs["qty"] for s in ctx.pending("market")]
    assert sum(sizes) == want and max(sizes) * LOT_VALUE <= 120_000 * USDC and max(sizes) - min(sizes) <= 1
    assert len(sizes) == 5 and a.limit_splits == 1
    ctx.fill()  # the first child fills, the second in part, the third is refused, the last two fill
    ctx.fill(filled=sizes[1] - 7)
    ctx.reject()
    assert a.shortfalls == []  # nothing recorded while children are on their way
    ctx.fill()
    ctx.fill()
    (rec,) = a.shortfalls
    assert (rec.requested, rec.filled) == (want, want - 7 - sizes[2]) and rec.reason.startswith("refused: ")


def test_a_basket_entry_past_the_position_cap_is_sized_down_with_a_record():
    ctx = limited(FakeContext(mark=MARK, equity_usdc=50_000), position_usdc=90_000)
    a = basket(ctx)
    a._enter(0)
    (entry,) = ctx.pending("market")
    assert entry.kwargs["qty"] == 1_500  # 90,000 USDC at 60,000
    (rec,) = a.shortfalls
    assert (rec.requested, rec.filled) == (500_000 * USDC // LOT_VALUE, 1_500) and "max_position_notional" in rec.reason
    ctx.fill()
    assert len(a.shortfalls) == 1  # the child it sent filled whole: no second record


def value_trader(ctx: FakeContext, value: float) -> ValueTrader:
    ctx.set_book(MARK - 5, MARK + 5)
    ctx.values["BTC-PERP"] = value
    return build_agent(ValueTrader, {"clip_usdc": 10_000_000, "long_only": False}, ctx)


def test_a_value_trader_cuts_each_order_to_the_limits_and_counts_the_cuts():
    free = FakeContext(mark=MARK, equity_usdc=1_000_000)
    value_trader(free, 61_000.0).on_wake(0)
    want = free.pending("market")[0].kwargs["qty"]
    assert want * LOT_VALUE > 200_000 * USDC
    ctx = limited(FakeContext(mark=MARK, equity_usdc=1_000_000), market_usdc=120_000)
    a = value_trader(ctx, 61_000.0)
    a.on_wake(0)
    assert ctx.pending("market")[0].kwargs["qty"] == 2_000 and a.sized_to_limits == 1
    # a short above value past the cap: what closes the long is not counted against the cap, what opens is
    ctx = limited(FakeContext(mark=MARK, equity_usdc=1_000_000), position_usdc=60_000)
    ctx.set_position(300, Fraction(MARK))
    b = value_trader(ctx, 59_000.0)
    b.on_wake(0)
    (order,) = ctx.pending("market")
    assert order.kwargs["side"] == SELL and order.kwargs["qty"] == 300 + 1_000 and b.sized_to_limits == 1
    free = FakeContext(mark=MARK, equity_usdc=1_000_000)
    free.set_position(300, Fraction(MARK))
    c = value_trader(free, 59_000.0)
    c.on_wake(0)
    assert free.pending("market")[0].kwargs["qty"] > 1_300 and c.sized_to_limits == 0
