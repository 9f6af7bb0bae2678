"""The spot venue: every fill moves exactly its value and its lots, holds never go negative, a refused call
changes nothing, borrowing and interest in closed form, and conservation after every event."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abm.errors import ConservationError, InsufficientFunds, InvalidAmount, InvalidInput, PostOnlyWouldCross
from abm.market.spec import MarketSpec
from abm.spot import SpotExchange
from abm.units import BUY, SELL

# BTC/USDC: tick 0.1 USDC, lot 0.001 BTC, so one tick·lot is 100 quote units (1e-6 USDC each)
SPEC = MarketSpec("BTC/USDC", Decimal("0.1"), Decimal("0.001"), maker_fee_bps=Decimal("1"),
                  taker_fee_bps=Decimal("5"))
M = SPEC.multiplier


def venue(**kw: object) -> SpotExchange:
    ex = SpotExchange("venue_a", **kw)  # type: ignore[arg-type]
    ex.list_market(SPEC, borrow_bps_per_day="10")
    return ex


def ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def state(ex: SpotExchange) -> object:
    return copy.deepcopy(({k: (a.cash, a.held_cash, list(a.inventory), list(a.held_inventory), list(a.debt),
                                list(a.collateral), a.arrears, dict(a.holds), dict(a.open_orders), dict(a.client_ids))
                           for k, a in ex.accounts.items()},
                          dict(ex.ledgers), ex.external_cash, ex._next_oid, [(m.pool, m.lent, m.book.l2(50))
                                                                            for m in ex.markets]))


def test_a_fill_moves_its_value_and_lots_and_both_fees() -> None:
    ex = venue()
    seller = ex.open_account()
    ex.deposit_inventory(seller, "BTC/USDC", 10)
    buyer = ex.open_account(1_000_000_000)
    r = ex.limit(seller, "BTC/USDC", SELL, 10, 600_000)  # 10 lots (0.01 BTC) at 60,000 USDC
    assert r.resting == 10
    t = ex.market_order(buyer, "BTC/USDC", BUY, 4)
    value = 600_000 * 4 * M  # 240 USDC
    assert (t.filled, t.notional, t.trimmed) == (4, 600_000 * 4, 0)
    taker_fee, maker_fee = ceil_div(value * 500, 10**6), ceil_div(value * 100, 10**6)
    b, s = ex.account(buyer), ex.account(seller)
    assert (b.cash, b.held_cash, b.inventory[0]) == (1_000_000_000 - value - taker_fee, 0, 4)
    assert (s.cash, s.inventory[0], s.held_inventory[0]) == (value - maker_fee, 0, 6)
    assert ex.ledgers["fees"] == taker_fee + maker_fee
    ex.check_conservation()


def test_a_resting_buy_holds_its_worst_cost_and_returns_the_rest() -> None:
    ex = venue()
    buyer = ex.open_account(1_000_000_000)
    r = ex.limit(buyer, "BTC/USDC", BUY, 5, 500_000)
    per_lot = 500_000 * M + ceil_div(500_000 * M * 500, 10**6)  # price + the higher (taker) fee, per lot
    assert ex.account(buyer).held_cash == 5 * per_lot and r.resting == 5
    seller = ex.open_account()
    ex.deposit_inventory(seller, "BTC/USDC", 2)
    ex.market_order(seller, "BTC/USDC", SELL, 2)  # the buy is the maker: it pays the maker fee
    value = 500_000 * 2 * M
    b = ex.account(buyer)
    assert b.held_cash == 3 * per_lot
    assert b.cash == 1_000_000_000 - 5 * per_lot + 2 * per_lot - value - ceil_div(value * 100, 10**6)
    assert ex.cancel(buyer, r.oid) == 3
    assert (b.held_cash, b.cash, b.inventory[0]) == (0, 1_000_000_000 - value - ceil_div(value * 100, 10**6), 2)
    ex.check_conservation()


def test_refused_orders_change_nothing() -> None:
    ex = venue()
    a = ex.open_account(1_000)
    ex.deposit_inventory(a, "BTC/USDC", 3)
    other = ex.open_account()
    ex.deposit_inventory(other, "BTC/USDC", 1)
    ex.limit(other, "BTC/USDC", SELL, 1, 100)
    before = state(ex)
    with pytest.raises(InsufficientFunds, match=r"needs 60.03 USDC free \(price and highest fee, held\); the account has 0.001 USDC"):
        ex.limit(a, "BTC/USDC", BUY, 1, 600_000)
    with pytest.raises(InsufficientFunds, match="borrow first"):
        ex.limit(a, "BTC/USDC", SELL, 4, 600_000)
    with pytest.raises(PostOnlyWouldCross):
        ex.limit(a, "BTC/USDC", BUY, 1, 100, post_only=True)
    with pytest.raises(InvalidInput):
        ex.limit(a, "BTC/USDC", BUY, 0, 100)
    with pytest.raises(InvalidInput):
        ex.limit(a, "ETH/USDC", BUY, 1, 100)
    assert state(ex) == before


def test_an_unbounded_market_buy_is_trimmed_to_what_the_cash_can_hold_and_says_so() -> None:
    ex = venue()
    seller = ex.open_account()
    ex.deposit_inventory(seller, "BTC/USDC", 100)
    ex.limit(seller, "BTC/USDC", SELL, 50, 600_000)
    ex.limit(seller, "BTC/USDC", SELL, 50, 610_000)
    per_lot_at_bound = 610_000 * M + ceil_div(610_000 * M * 500, 10**6)
    buyer = ex.open_account(70 * per_lot_at_bound + 5)
    r = ex.market_order(buyer, "BTC/USDC", BUY, 80)  # the book fills 80 by 61,000: held at that bound
    assert (r.qty, r.trimmed, r.filled) == (70, 10, 70)
    assert ex.account(buyer).held_cash == 0 and ex.account(buyer).inventory[0] == 70
    ex.check_conservation()


def test_self_trade_prevention_frees_the_cancelled_orders_hold() -> None:
    ex = venue()
    a = ex.open_account(1_000_000_000)
    ex.deposit_inventory(a, "BTC/USDC", 5)
    ex.limit(a, "BTC/USDC", SELL, 5, 600_000)
    r = ex.limit(a, "BTC/USDC", BUY, 5, 600_000)  # meets its own sell: the resting one is cancelled
    acct = ex.account(a)
    assert r.filled == 0 and acct.held_inventory[0] == 0 and acct.inventory[0] == 5
    ex.check_conservation()


def test_borrow_sell_buy_back_repay_with_interest_in_closed_form() -> None:
    ex = venue(collateral_pct=50)
    ex.seed_lending("BTC/USDC", 100)
    short = ex.open_account(2_000_000_000)
    with pytest.raises(InsufficientFunds, match="borrow first"):
        ex.limit(short, "BTC/USDC", SELL, 10, 600_000)
    lock = ex.borrow(short, "BTC/USDC", 10, 600_000)
    assert lock == ceil_div(10 * 600_000 * M * 500_000, 10**6)  # 50 % of 60 USDC
    a = ex.account(short)
    assert (a.debt[0], a.inventory[0], a.collateral[0], ex.markets[0].pool) == (10, 10, lock, 90)
    charged = ex.accrue_interest("BTC/USDC", 86_400 * 10**6, 600_000)  # one day at 10 bp
    assert charged == ceil_div(10 * 600_000 * M * 1_000 * 86_400 * 10**6, 10**6 * 86_400 * 10**6)
    assert a.cash == 2_000_000_000 - lock - charged and ex.ledgers["interest"] == charged
    released = ex.repay(short, "BTC/USDC", 4)
    assert released == lock * 4 // 10 and a.debt[0] == 6
    released += ex.repay(short, "BTC/USDC", 6)
    assert released == lock and a.collateral[0] == 0 and ex.markets[0].lent == 0
    with pytest.raises(InvalidAmount):
        ex.repay(short, "BTC/USDC", 1)
    ex.check_conservation()


def test_interest_an_account_cannot_pay_is_arrears_paid_from_collateral_at_repay() -> None:
    ex = venue(collateral_pct=0)
    ex.seed_lending("BTC/USDC", 10)
    a = ex.open_account(0)
    ex.borrow(a, "BTC/USDC", 10, 600_000)
    due = ex.accrue_interest("BTC/USDC", 86_400 * 10**6, 600_000)
    assert due > 0 and ex.account(a).arrears == due and ex.ledgers["interest"] == 0
    ex.check_conservation()


def test_client_ids_and_the_perp_exchanges_arguments() -> None:
    ex = venue()
    a = ex.open_account(1_000_000_000)
    r = ex.limit(a, "BTC/USDC", "buy", 2, 500_000, "GTC", False, False, "bid-1")
    assert ex.account(a).open_orders == {r.oid: 0} and ex.account(a).client_ids == {"bid-1": r.oid}
    with pytest.raises(InvalidInput, match="client ids"):
        ex.limit(a, "BTC/USDC", BUY, 1, 500_000, client_id="bid-1")
    with pytest.raises(InvalidInput, match="must be False on a spot venue"):
        ex.market_order(a, "BTC/USDC", SELL, 1, reduce_only=True)
    assert ex.cancel(a, client_id="bid-1") == 2
    assert ex.account(a).open_orders == {} and ex.account(a).client_ids == {} and ex.account(a).held_cash == 0


def test_modify_re_reckons_the_hold_and_refuses_what_the_account_cannot_hold() -> None:
    ex = venue()
    a = ex.open_account(1_000_000_000)
    r = ex.limit(a, "BTC/USDC", BUY, 10, 500_000, client_id="b")
    per_lot = SPEC_HOLD(500_000)
    ex.modify(a, client_id="b", qty=4)  # size down: keeps its place, frees six lots' hold
    assert ex.account(a).held_cash == 4 * per_lot and ex.markets[0].book.order(r.oid)[3] == 4
    before = state(ex)
    with pytest.raises(InsufficientFunds, match="held"):
        ex.modify(a, r.oid, price=500_000, qty=10**6)
    assert state(ex) == before
    seller = ex.open_account()
    ex.deposit_inventory(seller, "BTC/USDC", 3)
    ex.limit(seller, "BTC/USDC", SELL, 3, 520_000)
    filled = ex.modify(a, r.oid, price=520_000)  # now crosses: 3 fill, 1 rests at the new price with its hold
    acct = ex.account(a)
    assert filled == 3 and acct.inventory[0] == 3 and ex.markets[0].book.order(r.oid)[2:] == (520_000, 1)
    assert acct.held_cash == SPEC_HOLD(520_000) and acct.client_ids == {"b": r.oid}
    ex.check_conservation()


def SPEC_HOLD(price: int) -> int:
    return price * M + ceil_div(price * M * 500, 10**6)


def test_conservation_catches_a_unit_out_of_place() -> None:
    ex = venue()
    a = ex.open_account(1_000)
    ex.account(a).cash += 1  # what a bug would do
    with pytest.raises(ConservationError, match=r"\+1 quote units"):
        ex.check_conservation()


ACCOUNTS = 3
op = st.one_of(
    st.tuples(st.just("limit"), st.integers(0, ACCOUNTS - 1), st.sampled_from([BUY, SELL]), st.integers(1, 30),
              st.integers(590, 610), st.sampled_from(["GTC", "IOC", "FOK"])),
    st.tuples(st.just("market"), st.integers(0, ACCOUNTS - 1), st.sampled_from([BUY, SELL]), st.integers(1, 60),
              st.one_of(st.none(), st.integers(580, 620)), st.none()),
    st.tuples(st.just("cancel"), st.integers(0, ACCOUNTS - 1), st.integers(0, 20), st.none(), st.none(), st.none()),
    st.tuples(st.just("modify"), st.integers(0, ACCOUNTS - 1), st.integers(0, 20), st.one_of(st.none(), st.integers(1, 40)),
              st.one_of(st.none(), st.integers(585, 615)), st.none()),
    st.tuples(st.just("borrow"), st.integers(0, ACCOUNTS - 1), st.integers(1, 10), st.none(), st.none(), st.none()),
    st.tuples(st.just("repay"), st.integers(0, ACCOUNTS - 1), st.integers(1, 10), st.none(), st.none(), st.none()),
    st.tuples(st.just("interest"), st.integers(1, 10**9), st.none(), st.none(), st.none(), st.none()),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=60))
def test_every_unit_is_where_the_fills_say(ops: list[tuple]) -> None:
    """Replaying the fills by hand (value, lots and fees per side) gives every account's cash and lots."""
    ex = SpotExchange("v", collateral_pct=100)
    spec = MarketSpec("X/USDC", Decimal("1"), Decimal("1"), maker_fee_bps=Decimal("-1"), taker_fee_bps=Decimal("7"),
                      quote_decimals=2)  # one tick·lot = 100 units; a maker rebate
    ex.list_market(spec, borrow_bps_per_day="25")
    ex.seed_lending("X/USDC", 50)
    ids = [ex.open_account(5_000_000) for _ in range(ACCOUNTS)]
    for aid in ids:
        ex.deposit_inventory(aid, "X/USDC", 40)
    expect_cash = {aid: 5_000_000 for aid in ids}
    expect_lots = {aid: 40 for aid in ids}

    def on_fill(t: int, mi: int, mo: int, ma: int, to: int, ta: int, price: int, qty: int, side: int, liq: bool) -> None:
        value = price * qty * spec.multiplier
        fee_m = -((value * 100) // 10**6)  # a 1 bp rebate (100 ppm), rounded down
        fee_t = ceil_div(value * 700, 10**6)
        buyer, seller, fee_b, fee_s = (ta, ma, fee_t, fee_m) if side == BUY else (ma, ta, fee_m, fee_t)
        expect_cash[buyer] -= value + fee_b
        expect_cash[seller] += value - fee_s
        expect_lots[buyer] += qty
        expect_lots[seller] -= qty

    ex.subscribe_fills(on_fill)
    for kind, *args in ops:
        try:
            if kind == "limit":
                i, side, qty, price, tif = args
                ex.limit(ids[i], "X/USDC", side, qty, price, tif)
            elif kind == "market":
                i, side, qty, worst, _ = args
                ex.market_order(ids[i], "X/USDC", side, qty, worst)
            elif kind == "cancel":
                i, k = args[0], args[1]
                orders = sorted(ex.account(ids[i]).open_orders)
                if orders:
                    ex.cancel(ids[i], orders[k % len(orders)])
            elif kind == "modify":
                i, k, qty, price = args[0], args[1], args[2], args[3]
                orders = list(ex.account(ids[i]).open_orders)
                if orders and (qty is not None or price is not None):
                    ex.modify(ids[i], orders[k % len(orders)], price=price, qty=qty)
            elif kind == "borrow":
                i, lots = args[0], args[1]
                ex.borrow(ids[i], "X/USDC", lots, 600)
                expect_lots[ids[i]] += lots  # the collateral it locks is still the account's cash
            elif kind == "repay":
                i, lots = args[0], args[1]
                a = ex.account(ids[i])
                lots = min(lots, a.debt[0], a.inventory[0])
                if lots:
                    paid_before = a.interest_paid
                    ex.repay(ids[i], "X/USDC", lots)
                    expect_lots[ids[i]] -= lots
                    expect_cash[ids[i]] -= a.interest_paid - paid_before
            else:
                paid = {aid: ex.account(aid).interest_paid for aid in ids}
                ex.accrue_interest("X/USDC", args[0], 600)
                for aid in ids:
                    expect_cash[aid] -= ex.account(aid).interest_paid - paid[aid]
        except InvalidInput:
            pass  # refused: nothing changed (the replay below would see any change)
        ex.check_conservation()
        for aid in ids:
            a = ex.account(aid)
            assert min(a.cash, a.held_cash, a.inventory[0], a.held_inventory[0], a.collateral[0]) >= 0
            assert a.total_cash() == expect_cash[aid]
            assert a.total_inventory(0) == expect_lots[aid]
