"""Money in the right account: isolated reductions, liquidation fills and bad debt, cross liquidation order,
re-keying on every balance change, and the ceilings that keep every amount inside the 64-bit tables.

Each test checks the outcome against an independent computation (a closed form or a model kept here),
not only the conservation equation, which cannot see money in the wrong account.
"""

from __future__ import annotations

import random
from fractions import Fraction
from math import ceil

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from abm import Exchange, MarketSpec
from abm.errors import AbmError, InsufficientFunds, InvalidAmount, InvalidMarketSpec, InvalidPrice, InvalidSize
from abm.margin.engine import CROSS_UNIT
from abm.margin.params import LiquidationConfig, RiskParams
from abm.margin.tiers import hyperliquid_tiers
from abm.market.spec import MAX_MONEY

USDC = 10**6
ETH_TIERS = hyperliquid_tiers([(0, 25), (100_000_000 * USDC, 15)])  # MMR 2 % below 100M
MMR = Fraction(1, 50)


def eth_venue(*symbols: str, taker: str = "4.5", maker: str = "1.5", vault: int | None = 10_000_000 * USDC,
              mark: int = 300_000, liquidation: LiquidationConfig | None = None) -> Exchange:
    """ETH-like markets: tick 0.01, lot 0.001 (multiplier 10), Hyperliquid-like liquidation, a vault."""
    ex = Exchange()
    for s in symbols or ("ETH",):
        ex.list_market(MarketSpec(s, tick_size="0.01", lot_size="0.001", maker_fee_bps=maker, taker_fee_bps=taker),
                       RiskParams(ETH_TIERS, liquidation=liquidation or LiquidationConfig()))
        ex.set_mark(s, mark)
    if vault:
        ex.create_backstop_vault(vault)
    ex.seed_ledger("insurance", 1_000_000 * USDC)
    return ex


def fee(value: int, bps: str) -> int:
    """Taker fee of ``value`` quote units, rounded up (an independent copy of the venue's rule)."""
    ppm = int(Fraction(bps) * 100)
    return -((-value * ppm) // 1_000_000)


def single_tier_liq(size: int, cost: int, margin: int, mult: int = 10) -> Fraction:
    """Closed form of an isolated position's liquidation price below the first tier boundary:
    margin + size*mult*P - cost = MMR * |size|*mult*P."""
    return Fraction(cost - margin, mult * size - MMR * abs(size) * mult)


# ------------------------------------------------------------------------------------------- isolated reductions


def test_reducing_an_isolated_long_at_the_mark_keeps_the_remainders_liquidation_price():
    """The issue's case: 10x isolated long of 3 ETH at 3,000, mark to 2,850, sell half reduce-only."""
    ex = eth_venue()
    mm = ex.open_account(10_000_000 * USDC)
    ex.limit(mm, "ETH", "sell", 3_000, 300_000)
    t = ex.open_account(1_000 * USDC)
    ex.set_margin_mode(t, "ETH", "isolated")
    ex.set_leverage(t, "ETH", 10)
    ex.market_order(t, "ETH", "buy", 3_000)
    p0 = ex.position(t, "ETH")
    open_fee = fee(3_000 * 300_000 * 10, "4.5")
    assert p0.margin == 900 * USDC - open_fee  # IM of 9,000 USDC at 10x, the opening fee paid from it
    liq0 = ex.liquidation_price(t, "ETH")
    assert liq0 == single_tier_liq(3_000, p0.cost, p0.margin)
    ex.set_mark("ETH", 285_000)
    ex.limit(mm, "ETH", "buy", 1_500, 285_000)
    balance0 = ex.account(t).balance
    ex.market_order(t, "ETH", "sell", 1_500, reduce_only=True)
    p1 = ex.position(t, "ETH")
    # the closed half leaves with half the margin, its loss and its fee; the open half keeps its half
    share = p0.margin // 2
    pnl = 1_500 * (285_000 - 300_000) * 10
    close_fee = fee(1_500 * 285_000 * 10, "4.5")
    assert p1.margin == p0.margin - share
    assert ex.account(t).balance == balance0 + share + pnl - close_fee
    assert p1.realized == pnl and p1.fees == open_fee + close_fee
    liq1 = ex.liquidation_price(t, "ETH")
    assert liq1 == single_tier_liq(1_500, p1.cost, p1.margin)
    assert abs(liq1 - liq0) < 1  # unchanged to the tick (only the margin's truncation differs)
    assert not ex.liquidations.rows()  # and nobody was liquidated by a stop-like exit far above it
    ex.check_conservation()


def test_partial_book_liquidation_filled_above_the_mark_creates_no_bad_debt():
    """A sliced liquidation whose first slice fills above the mark (the book has not followed the mark down):
    the slice's lots release their own equity to the wallet, the remainder keeps its share, no bad debt."""
    ex = eth_venue()
    mm = ex.open_account(10_000_000 * USDC)
    ex.limit(mm, "ETH", "sell", 50_000, 300_000)  # 50 ETH: 150k USDC notional, above the 100k slice threshold
    t = ex.open_account(20_000 * USDC)
    ex.set_margin_mode(t, "ETH", "isolated")
    ex.set_leverage(t, "ETH", 20)
    ex.market_order(t, "ETH", "buy", 50_000)
    p0 = ex.position(t, "ETH")
    liq = ex.liquidation_price(t, "ETH")
    for k in range(30):  # deep bids just under the entry: they fill the slice above the mark
        ex.limit(mm, "ETH", "buy", 10_000, 299_000 - 100 * k)
    mark = int(liq) - 5  # just through the liquidation price, above 2/3 of MM: the book goes first
    insurance0 = ex.ledgers["insurance"]
    balance0 = ex.account(t).balance
    ex.set_mark("ETH", mark)
    rows = ex.liquidations.rows()
    assert [r["kind"] for r in rows] == ["book"] and rows[0]["size"] == -10_000  # one 20 % slice
    p1 = ex.position(t, "ETH")
    share = p0.margin * 10_000 // 50_000
    pnl = 10_000 * (299_000 - 300_000) * 10
    assert p1.size == 40_000 and p1.margin == p0.margin - share
    assert ex.account(t).balance == balance0 + share + pnl - fee(10_000 * 299_000 * 10, "4.5")
    assert all(r["bad_debt"] == 0 for r in rows) and ex.ledgers["insurance"] == insurance0
    # the cooldown passes, the mark stays: the remainder goes on with exactly its own equity
    eq_rest = p1.margin + 40_000 * 10 * mark - p1.cost
    assert eq_rest > 0
    ex.now += 31_000_000
    ex.set_mark("ETH", mark)
    assert all(r["kind"] != "bad_debt" for r in ex.liquidations.rows())
    assert ex.ledgers["insurance"] == insurance0
    ex.check_conservation()


def test_a_fill_at_the_bankruptcy_price_creates_no_bad_debt_the_fee_is_waived():
    """The only bid sits at the bankruptcy price: the position's equity pays what it can of the taker fee."""
    ex = eth_venue(vault=None)
    mm = ex.open_account(10_000_000 * USDC)
    ex.limit(mm, "ETH", "sell", 3_000, 300_000)
    t = ex.open_account(1_000 * USDC)
    ex.set_margin_mode(t, "ETH", "isolated")
    ex.set_leverage(t, "ETH", 10)
    ex.market_order(t, "ETH", "buy", 3_000)
    p0 = ex.position(t, "ETH")
    pb = Fraction(p0.cost - p0.margin, 3_000 * 10)  # margin + size*mult*P - cost = 0
    ex.limit(mm, "ETH", "buy", 3_000, ceil(pb))
    fees0, balance0, insurance0 = ex.ledgers["fees"], ex.account(t).balance, ex.ledgers["insurance"]
    ex.set_mark("ETH", int(ex.liquidation_price(t, "ETH")) - 1)
    (row,) = ex.liquidations.rows()
    assert row["kind"] == "book" and row["price"] == ceil(pb) and row["bad_debt"] == 0
    equity_at_fill = p0.margin + 3_000 * 10 * ceil(pb) - p0.cost  # what is left before the fee, >= 0
    charged = min(fee(3_000 * ceil(pb) * 10, "4.5"), equity_at_fill)
    assert ex.position(t, "ETH").fees == p0.fees + charged
    assert ex.ledgers["fees"] == fees0 + charged + fee(3_000 * ceil(pb) * 10, "1.5")  # the maker's fee too
    assert ex.account(t).balance == balance0 + equity_at_fill - charged
    assert ex.position(t, "ETH").margin == 0 and ex.ledgers["insurance"] == insurance0
    ex.check_conservation()


# --------------------------------------------------------------------------------------- cross liquidation order


@pytest.mark.parametrize("with_vault", [True, False])
def test_cross_liquidation_never_sells_the_winner_and_keeps_the_loser(with_vault):
    """Long A (losing, its book empty near the mark) and long B (winning, deep book): the book liquidation
    starts with the loser; when the book cannot take it, the account goes on as a whole."""
    ex = eth_venue("A", "B", taker="0", maker="0", vault=10_000_000 * USDC if with_vault else None)
    mm = ex.open_account(10_000_000 * USDC)
    t = ex.open_account(3_500 * USDC)
    for s in ("A", "B"):
        ex.set_leverage(t, s, 20)
        ex.limit(mm, s, "sell", 10_000, 300_000)
        ex.market_order(t, s, "buy", 10_000)  # 30k USDC notional each, 3k of IM in all
    ex.set_mark("B", 320_000)  # B wins 2,000 USDC
    for k in range(20):
        ex.limit(mm, "B", "buy", 10_000, 319_000 - 100 * k)  # B's book could absorb it all
        ex.limit(mm, "A", "buy", 10_000, 200_000 - 100 * k)  # A's bids are far below any bankruptcy price
    if not with_vault:
        other = ex.open_account(10_000_000 * USDC)  # opposite positions for ADL
        for s in ("A", "B"):
            ex.limit(other, s, "sell", 20_000, 400_000 if s == "A" else 330_000)
            ex.market_order(mm, s, "buy", 20_000)
    liq_a = ex.liquidation_price(t, "A")
    ex.set_mark("A", int(liq_a) - 10)
    rows = ex.liquidations.rows()
    assert rows, "the account was liquidated"
    assert not [r for r in rows if r["kind"] == "book" and r["market"] == ex.market("B").index], rows
    assert ex.position(t, "A").size == 0 and ex.position(t, "B").size == 0
    kinds = {r["kind"] for r in rows if r["account"] == t}
    assert kinds == ({"backstop"} if with_vault else {"adl"})
    ex.check_conservation()


# ------------------------------------------------------------------------------- re-keying on balance changes


def test_opening_an_isolated_position_rekeys_the_cross_unit():
    """The issue's case: moving initial margin out of the cross balance moves the cross liquidation price."""
    ex = eth_venue("ETH", "BTC", taker="0", maker="0", vault=10_000_000 * USDC)
    mm = ex.open_account(10_000_000 * USDC)
    t = ex.open_account(3_000 * USDC)
    ex.set_leverage(t, "ETH", 20)
    ex.limit(mm, "ETH", "sell", 10_000, 300_000)
    ex.market_order(t, "ETH", "buy", 10_000)  # cross long 10 ETH
    before = ex.liquidation_price(t, "ETH")
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", 15)
    ex.limit(mm, "BTC", "sell", 6_000, 300_000)
    ex.market_order(t, "BTC", "buy", 6_000)  # isolated: 18,000 USDC at 15x takes 1,200 USDC of IM from the balance
    after = ex.liquidation_price(t, "ETH")
    bal = ex.account(t).balance
    assert after > before
    assert after == Fraction(10_000 * 10 * 300_000 - bal, 10_000 * 10 * (1 - MMR))  # the closed form, cross alone
    for k in range(20):
        ex.limit(mm, "ETH", "buy", 10_000, int(after) - 50 - 100 * k)
    ex.set_mark("ETH", int(after) + 1)
    assert not ex.liquidations.rows()
    ex.set_mark("ETH", int(after))  # the first mark at or below it liquidates, never later
    rows = [r for r in ex.liquidations.rows() if r["account"] == t]
    assert rows and rows[0]["market"] == ex.market("ETH").index
    assert all(r["bad_debt"] == 0 for r in ex.liquidations.rows())
    assert ex.position(t, "BTC").size == 6_000  # the isolated position is not part of the cross unit
    ex.check_conservation()


def test_pnl_in_an_unmargined_market_rekeys_the_cross_unit():
    ex = eth_venue("ETH", taker="0", maker="0")
    ex.list_market(MarketSpec("SPOT", tick_size="0.01", lot_size="0.001", maker_fee_bps=0, taker_fee_bps=0))
    mm = ex.open_account(10_000_000 * USDC)
    t = ex.open_account(3_000 * USDC)
    ex.set_leverage(t, "ETH", 20)
    ex.limit(mm, "ETH", "sell", 10_000, 300_000)
    ex.market_order(t, "ETH", "buy", 10_000)
    before = ex.liquidation_price(t, "ETH")
    ex.limit(mm, "SPOT", "sell", 1_000, 300_000)
    ex.market_order(t, "SPOT", "buy", 1_000)
    ex.limit(mm, "SPOT", "buy", 1_000, 200_000)
    ex.market_order(t, "SPOT", "sell", 1_000)  # a 1,000 USDC loss in a market with no margin rules
    assert ex.account(t).balance == 2_000 * USDC
    after = ex.liquidation_price(t, "ETH")
    assert after == Fraction(10_000 * 10 * 300_000 - 2_000 * USDC, 10_000 * 10 * (1 - MMR)) and after > before
    for k in range(20):
        ex.limit(mm, "ETH", "buy", 10_000, int(after) - 50 - 100 * k)
    ex.set_mark("ETH", int(after))
    assert [r["account"] for r in ex.liquidations.rows()][:1] == [t]
    ex.check_conservation()


# ------------------------------------------------------------------ property: the remainder is a fresh position


class IsolatedModel:
    """An independent model of one isolated position and its wallet, lot by lot (no tiers crossed)."""

    def __init__(self, balance: int, lev: int, mult: int = 10) -> None:
        self.balance, self.lev, self.mult = balance, lev, mult
        self.size = self.cost = self.margin = 0

    def fill(self, dq: int, price: int, fee_: int) -> None:
        s, mult = self.size, self.mult
        q = abs(dq)
        closed = min(q, abs(s)) if s and (s > 0) != (dq > 0) else 0
        opened = q - closed
        close_fee = fee_ if not opened else fee_ * closed // q
        if closed:
            share = self.margin if closed == abs(s) else (self.margin * closed // abs(s) if self.margin >= 0 else
                                                         -((-self.margin) * closed // abs(s)))
            released = abs(self.cost) * closed // abs(s) * (1 if self.cost >= 0 else -1)
            if closed == abs(s):
                released = self.cost
            pnl = (closed * price * mult - released) if s > 0 else (-released - closed * price * mult)
            self.cost -= released
            self.size = s + (closed if dq > 0 else -closed)
            self.margin -= share
            out = share + pnl - close_fee
            if out >= 0:
                self.balance += out
            else:
                self.margin += out
        if opened:
            signed = opened if dq > 0 else -opened
            self.size += signed
            self.cost += signed * price * mult
            im = -((-opened * mult * price) // self.lev)
            take = im if im <= self.balance else max(self.balance, 0)
            self.balance -= take
            self.margin += take - (fee_ - close_fee)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["trade", "trade", "trade", "margin", "mark"]),
                          st.integers(-6_000, 6_000), st.integers(-300, 300)), min_size=1, max_size=25),
       st.integers(2, 25), st.sampled_from(["isolated", "strict_isolated"]))
def test_isolated_remainder_equals_a_fresh_position_and_money_is_where_it_should_be(ops, lev, mode):
    ex = eth_venue(vault=10_000_000 * USDC)
    mm = ex.open_account(100_000_000 * USDC)
    t = ex.open_account(100_000 * USDC)
    ex.set_margin_mode(t, "ETH", mode)
    ex.set_leverage(t, "ETH", lev)
    model = IsolatedModel(100_000 * USDC, lev)
    mark = 300_000
    for kind, x, y in ops:
        if kind == "trade" and x:
            price = mark + y
            ex.limit(mm, "ETH", "sell" if x > 0 else "buy", abs(x), price)
            try:
                r = ex.market_order(t, "ETH", "buy" if x > 0 else "sell", abs(x))
            except InsufficientFunds:
                ex.cancel_all(mm)
                continue
            assert r.filled == abs(x)
            model.fill(x, price, fee(abs(x) * price * 10, "4.5"))
            ex.cancel_all(mm)
        elif kind == "margin" and x:
            amount = x * 1_000  # up to +-6 USDC
            try:
                ex.transfer_isolated_margin(t, "ETH", amount)
            except (InsufficientFunds, AbmError):
                continue
            model.balance -= amount
            model.margin += amount
        elif kind == "mark":
            mark = min(max(mark + 20 * y, 200_000), 400_000)
            ex.set_mark("ETH", mark)
        if ex.liquidations.rows():
            return  # a liquidation is outside this model; the driver test below covers it
        p = ex.position(t, "ETH")
        assert (p.size, p.cost, p.margin) == (model.size, model.cost, model.margin)
        assert ex.account(t).balance == model.balance
        if p.size and p.size * 10 * mark < 100_000_000 * USDC:
            expected = single_tier_liq(p.size, p.cost, p.margin)
            got = ex.liquidation_price(t, "ETH")
            assert got == (expected if expected > 0 else None) or (got == 0 and expected <= 0 and p.size < 0)
        ex.check_conservation()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "I"]), st.integers(-3_000, 3_000), st.integers(-200, 200)),
                min_size=1, max_size=20))
def test_cross_money_is_where_it_should_be(ops):
    """Cross in A and B, isolated in I: the cross balance is what came in plus cross PnL less cross fees plus
    what isolated lots released less the margin they took; every cross leg's liquidation price is the closed form."""
    ex = eth_venue("A", "B", "I", vault=10_000_000 * USDC)
    mm = ex.open_account(100_000_000 * USDC)
    t = ex.open_account(200_000 * USDC)
    ex.set_margin_mode(t, "I", "isolated")
    for s in "ABI":
        ex.set_leverage(t, s, 10)
    iso = IsolatedModel(0, 10)
    cross_money = 200_000 * USDC
    marks = {"A": 300_000, "B": 300_000, "I": 300_000}
    for sym, x, y in ops:
        if not x:
            continue
        price = marks[sym] + y
        ex.limit(mm, sym, "sell" if x > 0 else "buy", abs(x), price)
        realized0, fees0 = ex.position(t, sym).realized, ex.position(t, sym).fees
        iso.balance = cross_money
        try:
            ex.market_order(t, sym, "buy" if x > 0 else "sell", abs(x))
        except InsufficientFunds:
            ex.cancel_all(mm)
            continue
        ex.cancel_all(mm)
        p = ex.position(t, sym)
        if sym == "I":
            iso.fill(x, price, fee(abs(x) * price * 10, "4.5"))
            cross_money = iso.balance  # plus what closed lots released, less the initial margin opened lots took
            assert (p.size, p.cost, p.margin) == (iso.size, iso.cost, iso.margin)
        else:
            cross_money += (p.realized - realized0) - (p.fees - fees0)
        assert ex.account(t).balance == cross_money
        assert not ex.liquidations.rows()
        for s in "AB":
            q = ex.position(t, s)
            if not q.size:
                continue
            o = "B" if s == "A" else "A"
            qo = ex.position(t, o)
            others = qo.size * 10 * marks[o] - qo.cost
            mm_others = MMR * abs(qo.size) * 10 * marks[o]
            expected = Fraction(q.cost - cross_money - others + mm_others, 10 * q.size - MMR * abs(q.size) * 10)
            got = ex.liquidation_price(t, s)
            assert got == (expected if expected > 0 else (0 if q.size < 0 else None))
        ex.check_conservation()


# ----------------------------------------------------------------------------- the driver: nobody is missed


def _units(ex: Exchange, a, idx: int) -> list:
    out = []
    p = a.positions.get(idx)
    if p is not None and p.size:
        out.append((a.id, CROSS_UNIT) if p.mode == 0 else (a.id, idx))
    return out


def drive(seed: int, steps: int = 250) -> int:
    """Random orders, cancels, modifies, leverage and mode switches, margin transfers, funding, deposits,
    withdrawals and mark moves on two markets; after every mark update every open unit in that market is
    healthy or cooling down, and money is conserved. Returns the number of liquidation rows seen."""
    rng = random.Random(seed)
    ex = eth_venue("A", "B", vault=1_000_000_000 * USDC)
    mm = ex.open_account(1_000_000_000 * USDC)
    marks = {"A": 300_000, "B": 300_000}
    traders = [ex.open_account(rng.randint(200, 3_000) * USDC) for _ in range(8)]
    for t in traders:
        for s in "AB":
            ex.set_margin_mode(t, s, rng.choice(["cross", "isolated", "strict_isolated"]))
            ex.set_leverage(t, s, rng.randint(2, 25))

    def refill(s: str) -> None:
        ex.cancel_all(mm, s)
        for k in range(12):
            ex.limit(mm, s, "buy", 2_000, marks[s] - 150 - 300 * k)
            ex.limit(mm, s, "sell", 2_000, marks[s] + 150 + 300 * k)

    for s in "AB":
        refill(s)
    for _ in range(steps):
        t = rng.choice(traders)
        s = rng.choice("AB")
        op = rng.random()
        try:
            if op < 0.35:
                side = rng.choice(["buy", "sell"])
                if rng.random() < 0.5:
                    ex.market_order(t, s, side, rng.randint(1, 4_000))
                else:
                    ex.limit(t, s, side, rng.randint(1, 3_000), marks[s] + rng.randint(-3_000, 3_000))
            elif op < 0.42:
                oo = sorted(ex.open_orders(t))
                if oo:
                    oid = rng.choice(oo)
                    if rng.random() < 0.5:
                        ex.cancel(t, oid)
                    else:
                        ex.modify(t, oid, price=marks[s] + rng.randint(-3_000, 3_000), qty=rng.randint(1, 3_000))
            elif op < 0.47:
                ex.set_leverage(t, s, rng.randint(2, 25))
            elif op < 0.50:
                ex.set_margin_mode(t, s, rng.choice(["cross", "isolated", "strict_isolated"]))
            elif op < 0.58:
                ex.transfer_isolated_margin(t, s, rng.randint(-200, 200) * USDC)
            elif op < 0.62:
                ex.deposit(t, rng.randint(1, 500) * USDC)
            elif op < 0.66:
                ex.withdraw(t, rng.randint(1, 500) * USDC)
            elif op < 0.70:
                ex.pay_funding(s, Fraction(rng.randint(-50, 50), 10_000), marks[s])
            else:
                ex.now += 1_000_000 * rng.randint(1, 40)
                marks[s] = max(1_000, marks[s] + rng.randint(-6_000, 6_000))
                ex.set_mark(s, marks[s])
                idx = ex.market(s).index
                eng = ex.risk
                for a in ex.accounts.values():
                    if a.id == eng.vault:
                        continue
                    for u in _units(ex, a, idx):
                        assert u in eng.cooling or not eng.liquidatable(a, u), (seed, u, marks)
                refill(s)
        except AbmError:
            pass
        ex.check_conservation()
    return len(ex.liquidations)


def test_random_driver_misses_no_liquidation():
    rows = sum(drive(seed) for seed in range(40))
    assert rows > 40  # the driver really liquidates


@pytest.mark.slow
def test_random_driver_misses_no_liquidation_600_seeds():
    assert sum(drive(seed, 400) for seed in range(600)) > 600


# ----------------------------------------------------------------------------------------- money that fits


def test_quote_decimals_beyond_what_the_tables_hold_are_refused():
    with pytest.raises(InvalidMarketSpec, match="quote_decimals"):
        MarketSpec("ETH", tick_size="0.01", lot_size="0.001", quote_decimals=18)
    MarketSpec("ETH", tick_size="0.01", lot_size="0.001", quote_decimals=9)


def test_prices_outside_the_band_or_too_large_are_refused_and_change_nothing():
    ex = Exchange()
    ex.list_market(MarketSpec("ETH", tick_size="0.01", lot_size="0.001", price_band="0.8"),
                   RiskParams(ETH_TIERS))
    ex.set_mark("ETH", 300_000)
    a = ex.open_account(1_000_000 * USDC)
    with pytest.raises(InvalidPrice, match="band"):
        ex.limit(a, "ETH", "buy", 1, 10**17)  # the 1-lot bid at 10^17 ticks
    with pytest.raises(InvalidPrice, match="band"):
        ex.limit(a, "ETH", "buy", 1, 59_999)  # 80 % below the mark is the edge: 60,000
    with pytest.raises(InvalidPrice, match="band"):
        ex.limit(a, "ETH", "sell", 1, 540_001)  # and 80 % above it: 540,000
    ex.limit(a, "ETH", "buy", 1, 60_000)
    ex.limit(a, "ETH", "sell", 1, 540_000)
    with pytest.raises(InvalidPrice, match="band"):
        ex.market_order(a, "ETH", "buy", 1, worst_price=540_001)
    oid = next(iter(ex.open_orders(a)))
    with pytest.raises(InvalidPrice, match="band"):
        ex.modify(a, oid, price=1)
    assert len(ex.open_orders(a)) == 2
    # without a band, the notional must still fit
    bare = Exchange()
    bare.list_market(MarketSpec("X", tick_size="0.01", lot_size="0.001"))
    b = bare.open_account(10 * USDC)
    top = MAX_MONEY // bare.market("X").spec.multiplier  # the highest price whose one-lot notional fits
    with pytest.raises(InvalidSize, match="notional"):
        bare.limit(b, "X", "buy", 10, top)
    with pytest.raises(InvalidPrice, match="at most"):
        bare.limit(b, "X", "buy", 1, top + 1)
    with pytest.raises(InvalidPrice):
        bare.set_mark("X", MAX_MONEY)
    assert not bare.open_orders(b)


def test_money_from_outside_has_a_ceiling():
    ex = Exchange()
    ex.open_account(MAX_MONEY - 10)
    with pytest.raises(InvalidAmount, match="within"):
        ex.open_account(11)
    with pytest.raises(InvalidAmount, match="within"):
        ex.seed_ledger("insurance", 11)
    ex.seed_ledger("insurance", 10)


def test_the_largest_fill_that_passes_entry_is_recorded():
    from abm.market import Tape

    ex = Exchange()
    ex.list_market(MarketSpec("X", tick_size="1", lot_size="1", quote_decimals=0, maker_fee_bps=0, taker_fee_bps=0))
    tape = Tape()
    ex.subscribe_fills(tape)
    a, b = ex.open_account(MAX_MONEY // 2), ex.open_account(MAX_MONEY // 2)
    big = MAX_MONEY // 4
    ex.limit(a, "X", "sell", 1, big)
    ex.limit(b, "X", "buy", 1, big)
    assert tape.to_pandas()["price"].tolist() == [big]
    ex.check_conservation()
