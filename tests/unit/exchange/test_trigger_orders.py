"""Trigger orders held by the exchange (``abm.exchange.triggers``): they fire exactly at the mark update that
reaches their trigger (stops and take-profits from opposite sides), a market stop fills no further than 10%
from the firing mark and the rest is cancelled, reduce-only trims, a position's TP/SLs cancel each other
and go when it closes, an opening stop meets margin only when it fires, the trades table carries trigger
price and slippage, bad input names its field and changes nothing, and money is conserved throughout."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abm import Exchange, Tape
from abm.errors import (
    InvalidInput,
    InvalidOrderType,
    InvalidPrice,
    InvalidSize,
    ReduceOnlyViolation,
    UnknownOrder,
    VenueStateViolation,
)
from abm.exchange.triggers import TriggerReport
from abm.margin.params import RiskParams
from abm.margin.tiers import hyperliquid_tiers
from abm.market.spec import MarketSpec
from abm.units import BUY, SELL

SYM = "BTC"
USDC = 10**6


def venue(margined: bool = True, fees: bool = False) -> tuple[Exchange, int, Tape]:
    """Mark 10,000 ticks (a lot is worth 10 USDC there), an empty book, and a maker with 10^9 USDC."""
    ex = Exchange()
    spec = MarketSpec(SYM, tick_size="1", lot_size="0.001", maker_fee_bps=1.5 if fees else 0,
                      taker_fee_bps=4.5 if fees else 0)
    ex.list_market(spec, RiskParams(hyperliquid_tiers([(0, 40)])) if margined else None)
    tape = Tape()
    ex.subscribe_fills(tape)
    ex.set_mark(SYM, 10_000)
    mm = ex.open_account(10**9 * USDC)
    return ex, mm, tape


def trader(ex: Exchange, mm: int, size: int, deposit: int = 10**6 * USDC) -> int:
    """An account holding ``size`` lots (long > 0), opened against the maker at 10,000."""
    t = ex.open_account(deposit)
    if size:
        ex.limit(mm, SYM, SELL if size > 0 else BUY, abs(size), 10_000)
        ex.market_order(t, SYM, BUY if size > 0 else SELL, abs(size))
    return t


# ---------------------------------------------------------------------------------------------- firing


@pytest.mark.parametrize("side,kind,trigger,before,at", [
    (SELL, "stop", 9_900, 9_901, 9_900),  # a sell stop fires when the mark falls to its trigger
    (BUY, "stop", 10_100, 10_099, 10_100),  # a buy stop when it rises to it
    (SELL, "take_profit", 10_100, 10_099, 10_100),  # a sell take-profit when it rises to it
    (BUY, "take_profit", 9_900, 9_901, 9_900),  # a buy take-profit when it falls to it
])
def test_fires_exactly_at_the_trigger_price(side: int, kind: str, trigger: int, before: int, at: int) -> None:
    ex, mm, _ = venue()
    t = trader(ex, mm, 0)
    ex.limit(mm, SYM, BUY, 50, 9_500)
    ex.limit(mm, SYM, SELL, 50, 10_500)
    seen: list[TriggerReport] = []
    tid = ex.trigger_order(t, SYM, side, 5, trigger, kind=kind, notify=seen.append)
    ex.set_mark(SYM, before)
    assert ex.trigger_report(t, tid).status == "resting" and not seen
    ex.set_mark(SYM, at)
    (r,) = seen
    assert r.status == "triggered" and r.mark == at and r.filled == 5
    assert r.notional == 5 * (9_500 if side == SELL else 10_500)
    assert ex.position(t, SYM).size == (5 if side == BUY else -5)
    ex.set_mark(SYM, before)
    ex.set_mark(SYM, at)  # one-shot: it does not fire again
    assert len(seen) == 1
    ex.check_conservation()


def test_market_stop_fills_down_to_the_mark_less_10pct_and_the_rest_is_cancelled() -> None:
    ex, mm, tape = venue()
    t = trader(ex, mm, 100)
    tid = ex.trigger_order(t, SYM, SELL, 100, 9_500, reduce_only=True)
    ex.set_mark(SYM, 9_600)
    mark = 9_431  # the mark that fires it gaps past the trigger: the bound is ceil(0.9 * 9431) = 8488
    bound = -((-mark * 9) // 10)
    assert bound == 8_488
    ex.limit(mm, SYM, BUY, 30, 9_400)
    ex.limit(mm, SYM, BUY, 25, bound)
    ex.limit(mm, SYM, BUY, 500, bound - 1)  # just beyond the bound: untouched
    n = len(tape)
    ex.set_mark(SYM, mark)
    r = ex.trigger_report(t, tid)
    assert (r.status, r.filled, r.notional, r.resting) == ("triggered", 55, 30 * 9_400 + 25 * bound, 0)
    assert ex.position(t, SYM).size == 45  # the other 45 lots were cancelled, not filled lower
    assert list(tape.column("price")[n:]) == [9_400, bound]
    assert ex.data(SYM).best_bid() == bound - 1
    ex.check_conservation()


def test_buy_stop_bound_is_the_mark_plus_10pct() -> None:
    ex, mm, _ = venue()
    t = trader(ex, mm, -40)
    ex.trigger_order(t, SYM, BUY, 40, 10_500, reduce_only=True)
    mark = 10_507
    bound = mark * 11 // 10  # floor(1.1 * 10507) = 11557
    ex.limit(mm, SYM, SELL, 10, bound)
    ex.limit(mm, SYM, SELL, 100, bound + 1)
    ex.set_mark(SYM, mark)
    assert ex.position(t, SYM).size == -30
    ex.check_conservation()


def test_stop_limit_rests_at_its_limit_and_its_fills_carry_the_trigger() -> None:
    ex, mm, tape = venue()
    t = trader(ex, mm, 20)
    tid = ex.trigger_order(t, SYM, SELL, 20, 9_800, limit_price=9_750, reduce_only=True)
    ex.limit(mm, SYM, BUY, 8, 9_760)
    ex.set_mark(SYM, 9_790)
    r = ex.trigger_report(t, tid)
    assert (r.status, r.filled, r.resting) == ("triggered", 8, 12)
    assert ex.open_orders(t)[r.oid] == (SYM, SELL, 9_750, 12)
    ex.market_order(mm, SYM, BUY, 12)  # the rest fills later, as a maker
    trades = ex.stops.trade_columns(tape.to_pandas())  # type: ignore[union-attr]
    mine = trades[trades["trigger_id"] == tid]
    assert list(mine["price"]) == [9_760, 9_750] and list(mine["qty"]) == [8, 12]
    assert list(mine["trigger_price"]) == [9_800, 9_800] and list(mine["trigger_mark"]) == [9_790, 9_790]
    assert list(mine["trigger_slippage"]) == [40, 50]  # ticks below the trigger, against the seller
    assert (trades.loc[trades["trigger_id"] == 0, ["trigger_price", "trigger_slippage"]] == 0).all().all()
    assert ex.position(t, SYM).size == 0
    ex.check_conservation()


# ---------------------------------------------------------------------------------------------- reduce-only, TP/SL


def test_reduce_only_trims_to_the_position_and_is_rejected_when_flat() -> None:
    ex, mm, _ = venue()
    t = trader(ex, mm, 10)
    ex.limit(mm, SYM, BUY, 100, 9_000)
    big = ex.trigger_order(t, SYM, SELL, 25, 9_500, reduce_only=True)
    again = ex.trigger_order(t, SYM, SELL, 5, 9_400, reduce_only=True)
    ex.set_mark(SYM, 9_500)
    r = ex.trigger_report(t, big)
    assert (r.status, r.filled) == ("triggered", 10) and ex.position(t, SYM).size == 0  # 15 lots trimmed
    ex.set_mark(SYM, 9_400)
    r2 = ex.trigger_report(t, again)
    assert r2.status == "rejected" and "reduce_only" in r2.reason and r2.filled == 0
    assert ex.position(t, SYM).size == 0
    ex.check_conservation()


def test_position_tp_sl_one_cancels_the_other_and_takes_the_whole_position() -> None:
    ex, mm, _ = venue(fees=True)
    t = trader(ex, mm, 30)
    seen: list[TriggerReport] = []
    sl = ex.trigger_order(t, SYM, SELL, None, 9_500, position=True, notify=seen.append)
    tp = ex.trigger_order(t, SYM, SELL, None, 10_500, kind="take_profit", position=True, notify=seen.append)
    ex.limit(mm, SYM, SELL, 10, 10_000)
    ex.market_order(t, SYM, BUY, 10)  # the position grows to 40: the TP/SL closes all of it when it fires
    ex.limit(mm, SYM, BUY, 100, 10_490)
    ex.set_mark(SYM, 10_500)
    assert [(r.tid, r.status) for r in seen] == [(sl, "cancelled"), (tp, "triggered")]
    assert "one-cancels-the-other" in seen[0].reason and seen[1].filled == 40
    assert ex.position(t, SYM).size == 0
    ex.set_mark(SYM, 9_000)
    assert len(seen) == 2  # the cancelled stop never fires
    ex.check_conservation()


@pytest.mark.parametrize("how", ["own order", "flip", "liquidation"])
def test_position_tp_sl_are_cancelled_when_the_position_closes(how: str) -> None:
    ex, mm, _ = venue()
    ex.create_backstop_vault(10**8 * USDC)
    ex.seed_ledger("insurance", 10**8 * USDC)
    t = trader(ex, mm, 100, deposit=50 * USDC)  # 1,000 USDC of notional on 50: 20x
    plain = ex.trigger_order(t, SYM, SELL, 10, 8_000, reduce_only=True)
    seen: list[TriggerReport] = []
    ids = [ex.trigger_order(t, SYM, SELL, None, 9_000, position=True, notify=seen.append),
           ex.trigger_order(t, SYM, SELL, 50, 11_000, kind="take_profit", position=True, notify=seen.append)]
    if how == "liquidation":
        ex.set_mark(SYM, 9_600)  # the liquidation price is above 9,500: the backstop takes the position over
        assert len(ex.liquidations) > 0
    else:
        ex.limit(mm, SYM, BUY, 150, 10_000)
        ex.market_order(t, SYM, SELL, 100 if how == "own order" else 150)
    assert [(r.tid, r.status, r.reason) for r in seen] == [(i, "cancelled", "position closed") for i in ids]
    assert ex.trigger_report(t, plain).status == "resting"  # a plain reduce-only trigger stays
    ex.check_conservation()


def test_a_position_tp_sl_needs_a_position_on_the_other_side() -> None:
    ex, mm, _ = venue()
    t = trader(ex, mm, 10)
    for side, size in ((BUY, 10), (SELL, 0)):
        u = t if size else trader(ex, mm, 0)
        with pytest.raises(ReduceOnlyViolation) as e:
            ex.trigger_order(u, SYM, side, None, 9_000 if side == SELL else 11_000, position=True)
        assert e.value.field == "position"


# ---------------------------------------------------------------------------------------------- margin


def test_resting_triggers_hold_no_margin_and_an_opening_stop_is_checked_when_it_fires() -> None:
    ex, mm, _ = venue()
    t = ex.open_account(1_000 * USDC)  # at the default 20x: at most 20,000 USDC of notional, 2,000 lots at 10,000
    free = ex.margin_summary(t)["free_collateral"]
    ok = ex.trigger_order(t, SYM, BUY, 1_500, 10_200)
    too_big = ex.trigger_order(t, SYM, BUY, 50_000, 10_100)  # accepted while resting
    assert ex.margin_summary(t)["free_collateral"] == free
    ex.limit(mm, SYM, SELL, 100_000, 10_150)
    ex.set_mark(SYM, 10_200)
    big, small = ex.trigger_report(t, too_big), ex.trigger_report(t, ok)
    assert big.status == "rejected" and "initial margin" in big.reason and big.filled == 0
    assert small.status == "triggered" and small.filled == 1_500
    assert ex.position(t, SYM).size == 1_500
    ex.check_conservation()


# ---------------------------------------------------------------------------------------------- states, cancels


def test_cancel_by_id_and_a_halted_market_fires_nothing_until_it_reopens() -> None:
    ex, mm, _ = venue()
    t = trader(ex, mm, 10)
    ex.limit(mm, SYM, BUY, 100, 9_000)
    a = ex.trigger_order(t, SYM, SELL, 5, 9_500, reduce_only=True)
    b = ex.trigger_order(t, SYM, SELL, 5, 9_400, reduce_only=True)
    ex.cancel_trigger(t, a)
    assert ex.trigger_report(t, a).status == "cancelled"
    with pytest.raises(UnknownOrder) as e:
        ex.cancel_trigger(t, a)
    assert e.value.field == "tid"
    ex.set_market_state(SYM, "halted")
    with pytest.raises(VenueStateViolation) as v:  # a halted venue takes no new trigger either
        ex.trigger_order(t, SYM, SELL, 5, 9_200, reduce_only=True)
    assert v.value.field == "halted"
    ex.set_mark(SYM, 9_300)
    assert ex.trigger_report(t, b).status == "resting"
    ex.set_market_state(SYM, "open")
    ex.set_mark(SYM, 9_350)
    assert ex.trigger_report(t, b).status == "triggered" and ex.position(t, SYM).size == 5


def snapshot(ex: Exchange) -> Any:
    return copy.deepcopy((ex._next_oid, {k: v.status for k, v in (ex.stops.orders if ex.stops else {}).items()},
                          {aid: (a.balance, {i: p.size for i, p in a.positions.items()}) for aid, a in ex.accounts.items()}))


@pytest.mark.parametrize("kw,field,exc", [
    ({"kind": "stopp"}, "kind", InvalidOrderType),
    ({"trigger_price": 0}, "trigger_price", InvalidPrice),
    ({"trigger_price": 9_500.5}, "trigger_price", InvalidPrice),
    ({"trigger_price": 10_000}, "trigger_price", InvalidPrice),  # at the mark: it would trigger at once
    ({"trigger_price": 10_200}, "trigger_price", InvalidPrice),  # a sell stop above the mark
    ({"limit_price": -1}, "limit_price", InvalidPrice),
    ({"qty": 0}, "qty", InvalidSize),
    ({"qty": None}, "qty", InvalidSize),
    ({"reduce_only": "yes"}, "reduce_only", InvalidOrderType),
    ({"position": 1}, "position", InvalidOrderType),
    ({"side": "sideways"}, "side", InvalidInput),
    ({"notify": 5}, "notify", InvalidInput),
])
def test_bad_input_names_the_field_and_changes_nothing(kw: dict, field: str, exc: type) -> None:
    ex, mm, _ = venue()
    t = trader(ex, mm, 10)
    ex.trigger_order(t, SYM, SELL, 1, 9_000)
    before = snapshot(ex)
    args: dict[str, Any] = {"side": SELL, "qty": 5, "trigger_price": 9_500, **kw}
    with pytest.raises(exc) as e:
        ex.trigger_order(t, SYM, args.pop("side"), args.pop("qty"), args.pop("trigger_price"), **args)
    assert e.value.field == field and str(e.value.allowed)
    assert snapshot(ex) == before
    if field == "trigger_price" and kw["trigger_price"] >= 10_000:
        assert "trigger at once" in e.value.allowed and "10000" in e.value.allowed


# ---------------------------------------------------------------------------------------------- many triggers


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([BUY, SELL]), st.sampled_from(["stop", "take_profit"]),
                          st.integers(9_000, 11_000)), min_size=1, max_size=60),
       st.lists(st.integers(8_900, 11_100), min_size=1, max_size=12))
def test_only_the_triggers_the_mark_crosses_fire(orders: list, marks: list) -> None:
    """Stop-limits that rest far from the book (no fills): which fire is pure trigger logic. A trigger
    fires at the first mark at or past it on its side, never before, and only once."""
    ex, mm, _ = venue(margined=False)
    t = ex.open_account(0)
    placed = {}
    for side, kind, trig in orders:
        falls = (side == SELL) == (kind == "stop")
        if (10_000 <= trig) if falls else (10_000 >= trig):
            with pytest.raises(InvalidPrice):
                ex.trigger_order(t, SYM, side, 1, trig, kind=kind)
            continue
        tid = ex.trigger_order(t, SYM, side, 1, trig, limit_price=20_000 if side == SELL else 1, kind=kind)
        placed[tid] = (falls, trig)
    fired_at: dict[int, int] = {}
    for i, mark in enumerate(marks):
        ex.set_mark(SYM, mark)
        for tid, (falls, trig) in placed.items():
            if tid not in fired_at and (mark <= trig if falls else mark >= trig):
                fired_at[tid] = i
        status = {tid: ex.trigger_report(t, tid) for tid in placed}
        assert {tid for tid, r in status.items() if r.status == "triggered"} == set(fired_at)
        assert all(status[tid].mark == marks[j] for tid, j in fired_at.items())
    assert ex.stops is None or ex.stops.resting_count(0) == len(placed) - len(fired_at)


def test_same_inputs_same_fates() -> None:
    def play() -> list:
        ex, mm, tape = venue(fees=True)
        t = trader(ex, mm, 50)
        for k in range(10):
            ex.limit(mm, SYM, BUY, 7, 9_900 - 50 * k)
        ex.trigger_order(t, SYM, SELL, None, 9_800, position=True)
        ex.trigger_order(t, SYM, SELL, 20, 9_850, reduce_only=True)
        ex.trigger_order(t, SYM, SELL, 10, 9_700, limit_price=9_650, reduce_only=True)
        for mark in (9_900, 9_850, 9_790, 9_600):
            ex.set_mark(SYM, mark)
        ex.check_conservation()
        return [r.report() for r in ex.stops.orders.values()] + [list(tape.column(c)) for c in ("price", "qty")]  # type: ignore[union-attr]

    assert play() == play()


def test_decoded_trades_give_trigger_price_and_slippage_in_the_quote_currency() -> None:
    import numpy as np
    import pandas as pd

    from abm.results.decode import decode_tables

    ex, mm, tape = venue()
    t = trader(ex, mm, 10)
    ex.limit(mm, SYM, BUY, 10, 9_480)
    ex.trigger_order(t, SYM, SELL, 10, 9_500, reduce_only=True)
    ex.set_mark(SYM, 9_490)
    empty = pd.DataFrame({"time_us": [], "market": [], "mode": [], "size": [], "price": [], "mark": [],
                          **{c: [] for c in ("equity_before", "equity_after", "bad_debt", "insurance_after")}})
    tables = {"trades": ex.stops.trade_columns(tape.to_pandas()), "liquidations": empty,  # type: ignore[union-attr]
              "funding": pd.DataFrame({"time_us": [], "market": [], "price": [], "paid": [], "received": [],
                                       "rounding": []})}
    d = decode_tables(tables, [{"symbol": SYM, "tick_size": 1.0, "lot_size": 0.001, "multiplier": 1_000}])["trades"]
    assert np.isnan(d["trigger_price_usdc"].iloc[0]) and np.isnan(d["trigger_slippage_usdc"].iloc[0])  # the opening fill
    assert list(d["trigger_price_usdc"].iloc[1:]) == [9_500.0] and list(d["trigger_slippage_usdc"].iloc[1:]) == [20.0]
