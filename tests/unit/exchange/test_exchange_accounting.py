"""Exchange accounting with hand-worked integers: fees, average-cost PnL, isolated margin, conservation,
reduce-only, client order ids, self-trade prevention, OrderResult, the tape and cancel_all.

Every expected number is worked out by hand in the comment next to it; nothing is computed by calling
the code under test. Units: prices in ticks, sizes in lots, money in integer quote units.

Markets used (multiplier = tick_size * lot_size * 10**quote_decimals):
- BTC-PERP: tick 1, lot 0.001, 6 decimals -> multiplier 1 * 0.001 * 1e6 = 1000;
  maker 1.5 bp = 150 ppm, taker 4.5 bp = 450 ppm (unless a test passes other fees).
- ETH-PERP: tick 0.01, lot 0.01, 6 decimals -> multiplier 0.01 * 0.01 * 1e6 = 100; same fees.
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Optional

import numpy as np
import pytest

from abm.errors import (
    ConservationError,
    DuplicateClientOrderId,
    InsufficientFunds,
    InvalidInput,
    ReduceOnlyViolation,
    UnknownOrder,
)
from abm.exchange import Exchange, conservation_gap
from abm.market import BUY, SELL, MarketSpec, Tape
from abm.market.tape import COLUMNS

BTC = "BTC-PERP"
ETH = "ETH-PERP"
FUND = 10**9


def btc_spec(maker: str = "1.5", taker: str = "4.5", stp: str = "cancel_resting") -> MarketSpec:
    return MarketSpec(
        BTC, tick_size="1", lot_size="0.001", quote_decimals=6, maker_fee_bps=maker, taker_fee_bps=taker, stp=stp
    )


def eth_spec(maker: str = "1.5", taker: str = "4.5", stp: str = "cancel_resting") -> MarketSpec:
    return MarketSpec(
        ETH, tick_size="0.01", lot_size="0.01", quote_decimals=6, maker_fee_bps=maker, taker_fee_bps=taker, stp=stp
    )


def make_ex(*specs: MarketSpec) -> Exchange:
    ex = Exchange()
    for s in specs or (btc_spec(),):
        ex.list_market(s)
    return ex


def bal(ex: Exchange, aid: int) -> int:
    return ex.account(aid).balance


def oi_from_positions(ex: Exchange, symbol: str) -> int:
    idx = ex.market(symbol).index
    return sum(p.size for a in ex.accounts.values() for i, p in a.positions.items() if i == idx and p.size > 0)


def assert_pos(ex, aid, symbol, size, cost, realized, fees, entry, mode="cross", margin=0):
    p = ex.position(aid, symbol)
    assert (p.size, p.cost, p.realized, p.fees, p.mode, p.margin) == (size, cost, realized, fees, mode, margin)
    assert p.entry_price == entry
    if entry is not None:
        assert isinstance(p.entry_price, Fraction)


def _ceil_div(n: int, d: int) -> int:
    return -((-n) // d)


def replay_tape(tape: Tape, specs: dict, isolated: Optional[dict] = None) -> dict:
    """(account, market) -> (size, cost, realized, fees), rebuilt from the fills alone (independent model).

    ``isolated`` maps isolated (account, market) keys to the margin moved into them before trading; they
    also get ``("margin", key)`` (the position's margin bucket) and ``("cash", account)`` (what isolated
    positions released to the cross balance). The rule, lot by
    lot, on a bare venue (no initial margin): closed lots leave with their share of the margin (truncated
    toward zero), their realised PnL and their share of the fee; a negative result stays with the position.
    """
    isolated = isolated or {}
    out: dict = {("margin", k): v for k, v in isolated.items()}

    def apply(key, dq, price, mult, fee):
        size, cost, realized, fees = out.get(key, (0, 0, 0, 0))
        pnl = 0
        if size == 0 or (size > 0) == (dq > 0):
            closed = 0
            size1, cost = size + dq, cost + dq * price * mult
        elif abs(dq) <= abs(size):
            # release cost * |dq| / |size|, truncated toward zero
            closed = abs(dq)
            num = abs(cost) * abs(dq) // abs(size)
            released = num if cost >= 0 else -num
            value = abs(dq) * price * mult
            pnl = value - released if size > 0 else -released - value
            size1, cost = size + dq, cost - released
        else:
            closed = abs(size)
            close_value = abs(size) * price * mult
            pnl = close_value - cost if size > 0 else -cost - close_value
            size1 = size + dq
            cost = size1 * price * mult
        if key in isolated:
            margin = out[("margin", key)]
            opened = abs(dq) - closed
            close_fee = fee if not opened else fee * closed // abs(dq)
            if closed:
                share = margin if closed == abs(size) else (margin * closed // abs(size) if margin >= 0
                                                           else -((-margin) * closed // abs(size)))
                margin -= share
                released_money = share + pnl - close_fee
                if released_money >= 0:
                    out[("cash", key[0])] = out.get(("cash", key[0]), 0) + released_money
                else:
                    margin += released_money
            margin -= fee - close_fee
            out[("margin", key)] = margin
        out[key] = (size1, cost, realized + pnl, fees + fee)

    cols = {n: tape.column(n) for n in COLUMNS}
    for i in range(len(tape)):
        mi = cols["market"][i]
        spec = specs[mi]
        price, qty = cols["price"][i], cols["qty"][i]
        value = price * qty * spec.multiplier
        tfee = _ceil_div(value * spec.taker_ppm, 10**6)
        if spec.maker_ppm >= 0:
            mfee = _ceil_div(value * spec.maker_ppm, 10**6)
        else:
            mfee = -(value * -spec.maker_ppm // 10**6)
        buy = cols["taker_side"][i] == BUY
        apply((cols["taker_account"][i], mi), qty if buy else -qty, price, spec.multiplier, tfee)
        apply((cols["maker_account"][i], mi), -qty if buy else qty, price, spec.multiplier, mfee)
    return out


# ============================================================================================ specs


def test_spec_multipliers_and_ppm():
    s = btc_spec()
    assert s.multiplier == 1000  # 1 * 0.001 * 10**6
    assert (s.maker_ppm, s.taker_ppm) == (150, 450)  # 1.5 bp * 100, 4.5 bp * 100
    e = eth_spec()
    assert e.multiplier == 100  # 0.01 * 0.01 * 10**6
    r = btc_spec(maker="-0.25", taker="2.5")
    assert (r.maker_ppm, r.taker_ppm) == (-25, 250)  # -0.25 * 100, 2.5 * 100
    assert s.notional(100, 10) == 1_000_000  # 100 * 10 * 1000


# ============================================================================================ 1. fees


def test_fees_exact_division():
    ex = make_ex()
    mk, tk = ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(mk, BTC, "sell", 10, 100)
    r = ex.limit(tk, BTC, "buy", 10, 100)
    assert r.filled == 10
    # notional = 100 * 10 * 1000 = 1_000_000; taker 1_000_000 * 450 / 1e6 = 450; maker * 150 / 1e6 = 150
    assert bal(ex, tk) == FUND - 450
    assert bal(ex, mk) == FUND - 150
    assert ex.position(tk, BTC).fees == 450
    assert ex.position(mk, BTC).fees == 150
    assert ex.ledgers["fees"] == 600  # 450 + 150
    ex.check_conservation()


def test_fees_inexact_division_rounds_up():
    ex = make_ex()
    mk, tk = ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(mk, BTC, "sell", 7, 101)
    ex.limit(tk, BTC, "buy", 7, 101)
    # notional = 101 * 7 * 1000 = 707_000
    # taker 707_000 * 450 / 1e6 = 318.15 -> ceil 319; maker 707_000 * 150 / 1e6 = 106.05 -> ceil 107
    assert bal(ex, tk) == FUND - 319
    assert bal(ex, mk) == FUND - 107
    assert ex.ledgers["fees"] == 426  # 319 + 107
    # a tiny fill: notional 1 * 1 * 1000 = 1000; taker 0.45 -> 1; maker 0.15 -> 1
    ex.limit(mk, BTC, "sell", 1, 1)
    ex.limit(tk, BTC, "buy", 1, 1)
    assert ex.position(tk, BTC).fees == 320  # 319 + 1
    assert ex.position(mk, BTC).fees == 108  # 107 + 1
    assert bal(ex, tk) == FUND - 320
    assert bal(ex, mk) == FUND - 108
    assert ex.ledgers["fees"] == 428  # 426 + 1 + 1
    ex.check_conservation()


def test_fees_are_rounded_per_fill():
    ex = make_ex()
    m1, m2, tk = ex.open_account(FUND), ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(m1, BTC, "sell", 1, 101)
    ex.limit(m2, BTC, "sell", 1, 103)
    r = ex.limit(tk, BTC, "buy", 2, 103)
    assert (r.filled, r.notional) == (2, 204)  # 101 + 103
    # fill 1: notional 101_000 -> taker 45.45 -> 46, maker 15.15 -> 16
    # fill 2: notional 103_000 -> taker 46.35 -> 47, maker 15.45 -> 16
    assert ex.position(tk, BTC).fees == 93  # 46 + 47 (not ceil(204_000 * 450 / 1e6) = 92)
    assert ex.position(m1, BTC).fees == 16
    assert ex.position(m2, BTC).fees == 16
    assert bal(ex, tk) == FUND - 93
    assert ex.ledgers["fees"] == 125  # 93 + 16 + 16


def test_maker_rebate_rounds_down():
    ex = make_ex(btc_spec(maker="-0.25", taker="2.5"))  # -25 ppm, 250 ppm
    mk, tk = ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(mk, BTC, "sell", 7, 101)
    ex.limit(tk, BTC, "buy", 7, 101)
    # notional 707_000; rebate 707_000 * 25 / 1e6 = 17.675 -> floor 17; taker 707_000 * 250 / 1e6 = 176.75 -> 177
    assert bal(ex, mk) == FUND + 17
    assert bal(ex, tk) == FUND - 177
    assert ex.position(mk, BTC).fees == -17
    assert ex.position(tk, BTC).fees == 177
    assert ex.ledgers["fees"] == 160  # 177 - 17
    # tiny fill: notional 1000; rebate 0.025 -> 0; taker 0.25 -> 1
    ex.limit(mk, BTC, "sell", 1, 1)
    ex.limit(tk, BTC, "buy", 1, 1)
    assert bal(ex, mk) == FUND + 17
    assert bal(ex, tk) == FUND - 178  # 177 + 1
    assert ex.ledgers["fees"] == 161  # 160 + 1 - 0
    ex.check_conservation()


def test_maker_rebate_exact():
    ex = make_ex(btc_spec(maker="-1", taker="3"))  # -100 ppm, 300 ppm
    mk, tk = ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(mk, BTC, "buy", 10, 100)  # the maker is the buyer this time
    ex.limit(tk, BTC, "sell", 10, 100)
    # notional 1_000_000; rebate 100; taker 300
    assert bal(ex, mk) == FUND + 100
    assert bal(ex, tk) == FUND - 300
    assert ex.position(mk, BTC).fees == -100
    assert ex.ledgers["fees"] == 200  # 300 - 100
    ex.check_conservation()


def test_zero_fees():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    mk, tk = ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(mk, BTC, "sell", 7, 101)
    ex.limit(tk, BTC, "buy", 7, 101)
    assert bal(ex, mk) == FUND
    assert bal(ex, tk) == FUND
    assert ex.position(mk, BTC).fees == 0
    assert ex.position(tk, BTC).fees == 0
    assert ex.ledgers["fees"] == 0
    ex.check_conservation()


# ============================================================================================ 2. average-cost PnL


def test_long_open_add_partial_close_full_close_with_fees():
    ex = make_ex()
    a, mk = ex.open_account(FUND), ex.open_account(FUND)
    mkt = ex.market(BTC)

    # open long 3 @ 100: cost 3 * 100 * 1000 = 300_000; taker fee 300_000 * 450e-6 = 135
    ex.limit(mk, BTC, "sell", 3, 100)
    ex.limit(a, BTC, "buy", 3, 100)
    assert_pos(ex, a, BTC, 3, 300_000, 0, 135, Fraction(100))  # 300_000 / (3 * 1000)
    assert bal(ex, a) == FUND - 135
    assert mkt.open_interest == 3

    # add 4 @ 108: cost += 4 * 108 * 1000 = 432_000 -> 732_000; fee 432_000 * 450e-6 = 194.4 -> 195
    ex.limit(mk, BTC, "sell", 4, 108)
    ex.limit(a, BTC, "buy", 4, 108)
    assert_pos(ex, a, BTC, 7, 732_000, 0, 330, Fraction(732, 7))  # fees 135 + 195; 732_000 / 7000
    assert bal(ex, a) == FUND - 330
    assert mkt.open_interest == 7

    # partial close 2 @ 110: released = 732_000 * 2 // 7 = 1_464_000 // 7 = 209_142 (7 * 209_142 = 1_463_994)
    # pnl = 2 * 110 * 1000 - 209_142 = 220_000 - 209_142 = 10_858; cost 732_000 - 209_142 = 522_858
    # fee 220_000 * 450e-6 = 99
    ex.limit(mk, BTC, "buy", 2, 110)
    ex.limit(a, BTC, "sell", 2, 110)
    assert_pos(ex, a, BTC, 5, 522_858, 10_858, 429, Fraction(522_858, 5000))  # fees 330 + 99
    assert bal(ex, a) == FUND - 429 + 10_858
    assert mkt.open_interest == 5

    # full close 5 @ 95: released all 522_858; pnl = 475_000 - 522_858 = -47_858
    # fee 475_000 * 450e-6 = 213.75 -> 214
    ex.limit(mk, BTC, "buy", 5, 95)
    ex.limit(a, BTC, "sell", 5, 95)
    # realized 10_858 - 47_858 = -37_000 = (220_000 + 475_000) - 732_000: no unit lost to truncation
    assert_pos(ex, a, BTC, 0, 0, -37_000, 643, None)  # fees 429 + 214
    assert bal(ex, a) == FUND - 37_000 - 643
    assert mkt.open_interest == 0

    # the maker mirrors it: realized +37_000; maker fees 45 + 64.8->65 + 33 + 71.25->72 = 215
    assert_pos(ex, mk, BTC, 0, 0, 37_000, 215, None)
    assert bal(ex, mk) == FUND + 37_000 - 215
    assert ex.ledgers["fees"] == 858  # 643 + 215
    ex.check_conservation()


def test_long_flip_to_short_in_one_fill():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    a, mk = ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(mk, BTC, "sell", 3, 100)
    ex.limit(a, BTC, "buy", 3, 100)  # a long 3, cost 300_000; mk short 3, cost -300_000
    ex.limit(mk, BTC, "buy", 5, 90)
    r = ex.limit(a, BTC, "sell", 5, 90)
    assert r.filled == 5
    # closes 3: pnl = 3 * 90 * 1000 - 300_000 = -30_000; opens short 2: cost = -2 * 90 * 1000 = -180_000
    assert_pos(ex, a, BTC, -2, -180_000, -30_000, 0, Fraction(90))
    assert bal(ex, a) == FUND - 30_000
    # maker flips short 3 -> long 2: pnl = 300_000 - 270_000 = 30_000; cost 2 * 90 * 1000 = 180_000
    assert_pos(ex, mk, BTC, 2, 180_000, 30_000, 0, Fraction(90))
    assert ex.market(BTC).open_interest == 2
    # a covers the short at 85: pnl = 180_000 - 2 * 85 * 1000 = 10_000
    ex.limit(mk, BTC, "sell", 2, 85)
    ex.limit(a, BTC, "buy", 2, 85)
    assert_pos(ex, a, BTC, 0, 0, -20_000, 0, None)  # -30_000 + 10_000
    assert bal(ex, a) == FUND - 20_000
    ex.check_conservation()


def test_short_open_add_partial_close_and_flip_to_long():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    a, mk = ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(mk, BTC, "buy", 3, 100)
    ex.limit(a, BTC, "sell", 3, 100)
    assert_pos(ex, a, BTC, -3, -300_000, 0, 0, Fraction(100))
    ex.limit(mk, BTC, "buy", 4, 108)
    ex.limit(a, BTC, "sell", 4, 108)
    # cost -300_000 - 432_000 = -732_000; entry -732_000 / (-7 * 1000) = 732/7
    assert_pos(ex, a, BTC, -7, -732_000, 0, 0, Fraction(732, 7))

    # buy back 2 @ 95: released = -(732_000 * 2 // 7) = -209_142 (toward zero, not floor -209_143)
    # pnl = 209_142 - 2 * 95 * 1000 = 209_142 - 190_000 = 19_142; cost -732_000 + 209_142 = -522_858
    ex.limit(mk, BTC, "sell", 2, 95)
    ex.limit(a, BTC, "buy", 2, 95)
    assert_pos(ex, a, BTC, -5, -522_858, 19_142, 0, Fraction(522_858, 5000))
    assert bal(ex, a) == FUND + 19_142

    # buy 8 @ 110 flips to long 3: pnl on the 5 closed = 522_858 - 5 * 110 * 1000 = 522_858 - 550_000 = -27_142
    # new cost 3 * 110 * 1000 = 330_000
    ex.limit(mk, BTC, "sell", 8, 110)
    r = ex.limit(a, BTC, "buy", 8, 110)
    assert r.filled == 8
    # realized 19_142 - 27_142 = -8_000 = 732_000 - (190_000 + 550_000)
    assert_pos(ex, a, BTC, 3, 330_000, -8_000, 0, Fraction(110))
    assert bal(ex, a) == FUND - 8_000
    # a long 3; mk: long 7 -> 5 -> flipped to short 3 -> OI is a's 3
    assert ex.market(BTC).open_interest == 3
    assert ex.position(mk, BTC).size == -3
    ex.check_conservation()


def test_partial_closes_never_lose_a_unit():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    a, mk = ex.open_account(FUND), ex.open_account(FUND)
    # long 3 lots with cost 100_000 + 100_000 + 101_000 = 301_000 (not divisible by 3)
    for p in (100, 100, 101):
        ex.limit(mk, BTC, "sell", 1, p)
        ex.limit(a, BTC, "buy", 1, p)
    assert_pos(ex, a, BTC, 3, 301_000, 0, 0, Fraction(301, 3))
    # sell 1 @ 100: released 301_000 // 3 = 100_333; pnl 100_000 - 100_333 = -333; cost 200_667
    ex.limit(mk, BTC, "buy", 1, 100)
    ex.limit(a, BTC, "sell", 1, 100)
    assert_pos(ex, a, BTC, 2, 200_667, -333, 0, Fraction(200_667, 2000))
    # sell 1 @ 100: released 200_667 // 2 = 100_333; pnl -333; cost 100_334
    ex.limit(mk, BTC, "buy", 1, 100)
    ex.limit(a, BTC, "sell", 1, 100)
    assert_pos(ex, a, BTC, 1, 100_334, -666, 0, Fraction(100_334, 1000))
    # sell 1 @ 100: released 100_334; pnl -334; total -1000 = 300_000 - 301_000 exactly
    ex.limit(mk, BTC, "buy", 1, 100)
    ex.limit(a, BTC, "sell", 1, 100)
    assert_pos(ex, a, BTC, 0, 0, -1000, 0, None)
    assert bal(ex, a) == FUND - 1000
    ex.check_conservation()


# ============================================================================================ 3. isolated margin


def test_isolated_margin_transfers_and_settlement():
    ex = make_ex()
    a, mk = ex.open_account(1_000_000), ex.open_account(FUND)
    with pytest.raises(InvalidInput):  # cross: no isolated bucket to transfer to
        ex.transfer_isolated_margin(a, BTC, 1)
    ex.set_margin_mode(a, BTC, "isolated")
    assert_pos(ex, a, BTC, 0, 0, 0, 0, None, mode="isolated", margin=0)

    ex.transfer_isolated_margin(a, BTC, 400_000)
    assert bal(ex, a) == 600_000  # 1_000_000 - 400_000
    assert ex.position(a, BTC).margin == 400_000
    ex.transfer_isolated_margin(a, BTC, -100_000)
    assert bal(ex, a) == 700_000
    assert ex.position(a, BTC).margin == 300_000
    with pytest.raises(InsufficientFunds):
        ex.transfer_isolated_margin(a, BTC, -300_001)  # more than the margin
    with pytest.raises(InsufficientFunds):
        ex.transfer_isolated_margin(a, BTC, 700_001)  # more than the balance
    assert (bal(ex, a), ex.position(a, BTC).margin) == (700_000, 300_000)
    ex.check_conservation()

    # buy 3 @ 100: notional 300_000, taker fee 135 -> from the margin, not the balance
    ex.limit(mk, BTC, "sell", 3, 100)
    ex.limit(a, BTC, "buy", 3, 100)
    assert_pos(ex, a, BTC, 3, 300_000, 0, 135, Fraction(100), mode="isolated", margin=299_865)  # 300_000 - 135
    assert bal(ex, a) == 700_000
    with pytest.raises(InvalidInput):  # not flat
        ex.set_margin_mode(a, BTC, "cross")

    # sell 2 @ 110: the closed lots take 2/3 of the margin (199_910), their pnl 2 * 10 * 1000 = 20_000 and their
    # fee 220_000 * 450e-6 = 99 to the balance: 199_910 + 20_000 - 99 = 219_811; the last lot keeps 99_955
    ex.limit(mk, BTC, "buy", 2, 110)
    ex.limit(a, BTC, "sell", 2, 110)
    assert_pos(ex, a, BTC, 1, 100_000, 20_000, 234, Fraction(100), mode="isolated", margin=99_955)
    assert bal(ex, a) == 919_811  # 700_000 + 219_811

    # sell the last lot @ 110: pnl 10_000, fee 49.5 -> 50: everything the position held goes to the balance
    ex.limit(mk, BTC, "buy", 1, 110)
    ex.limit(a, BTC, "sell", 1, 110)
    assert_pos(ex, a, BTC, 0, 0, 30_000, 284, None, mode="isolated", margin=0)
    assert bal(ex, a) == 1_029_716  # 919_811 + 99_955 + 10_000 - 50 = 1_000_000 + 30_000 - 284
    ex.check_conservation()
    ex.set_margin_mode(a, BTC, "cross")
    assert ex.position(a, BTC).mode == "cross"
    assert conservation_gap(ex) == 0
    ex.check_conservation()


def test_isolated_maker_loss_settles_from_margin():
    ex = make_ex(btc_spec(maker="-1", taker="3"))  # rebate 100 ppm, taker 300 ppm
    a, tk = ex.open_account(1_000_000), ex.open_account(FUND)
    ex.set_margin_mode(a, BTC, "isolated")
    ex.transfer_isolated_margin(a, BTC, 500_000)
    ex.limit(a, BTC, "sell", 5, 100)  # a is the maker, short 5
    ex.limit(tk, BTC, "buy", 5, 100)
    # notional 500_000, rebate 500_000 * 100 / 1e6 = 50 -> margin 500_050
    assert_pos(ex, a, BTC, -5, -500_000, 0, -50, Fraction(100), mode="isolated", margin=500_050)
    ex.limit(a, BTC, "buy", 5, 120)
    ex.limit(tk, BTC, "sell", 5, 120)
    # pnl = 500_000 - 600_000 = -100_000; rebate 600_000 * 100 / 1e6 = 60; closing releases the whole bucket:
    # 500_050 - 100_000 + 60 = 400_110 to the balance; fees -50 - 60 = -110
    assert_pos(ex, a, BTC, 0, 0, -100_000, -110, None, mode="isolated", margin=0)
    assert bal(ex, a) == 900_110
    # taker fees 150 + 180; ledger 330 - 110 = 220
    assert ex.ledgers["fees"] == 220
    ex.check_conservation()


def test_cross_in_one_market_isolated_in_another():
    ex = make_ex(btc_spec(), eth_spec())
    a, mk = ex.open_account(FUND), ex.open_account(FUND)
    ex.set_margin_mode(a, ETH, "isolated")
    ex.transfer_isolated_margin(a, ETH, 50_000_000)
    assert bal(ex, a) == 950_000_000  # 1_000_000_000 - 50_000_000

    # BTC (cross): buy 7 @ 101: notional 707_000, fee 319 -> balance
    ex.limit(mk, BTC, "sell", 7, 101)
    ex.limit(a, BTC, "buy", 7, 101)
    assert bal(ex, a) == 949_999_681  # 950_000_000 - 319
    # ETH (isolated, multiplier 100): buy 3 @ 250_001: notional 250_001 * 3 * 100 = 75_000_300
    # fee 75_000_300 * 450e-6 = 33_750.135 -> 33_751 -> margin
    ex.limit(mk, ETH, "sell", 3, 250_001)
    ex.limit(a, ETH, "buy", 3, 250_001)
    assert bal(ex, a) == 949_999_681
    assert_pos(ex, a, ETH, 3, 75_000_300, 0, 33_751, Fraction(250_001), mode="isolated", margin=49_966_249)

    # ETH close 3 @ 250_101: pnl 3 * 100 * 100 = 30_000; notional 75_030_300, fee 33_763.635 -> 33_764
    ex.limit(mk, ETH, "buy", 3, 250_101)
    ex.limit(a, ETH, "sell", 3, 250_101)
    # the closed position leaves for the balance: 49_966_249 + 30_000 - 33_764 = 49_962_485
    assert_pos(ex, a, ETH, 0, 0, 30_000, 67_515, None, mode="isolated", margin=0)  # 33_751 + 33_764
    assert bal(ex, a) == 949_999_681 + 49_962_485

    # BTC close 7 @ 99: pnl 7 * (99 - 101) * 1000 = -14_000; notional 693_000, fee 311.85 -> 312
    ex.limit(mk, BTC, "buy", 7, 99)
    ex.limit(a, BTC, "sell", 7, 99)
    assert bal(ex, a) == 949_985_369 + 49_962_485  # 949_999_681 - 14_000 - 312
    assert_pos(ex, a, BTC, 0, 0, -14_000, 631, None)  # fees 319 + 312

    # makers: BTC 707_000 * 150e-6 = 106.05 -> 107, 693_000 * 150e-6 = 103.95 -> 104
    #         ETH 75_000_300 * 150e-6 = 11_250.045 -> 11_251, 75_030_300 * 150e-6 = 11_254.545 -> 11_255
    # mk: BTC pnl +14_000, ETH pnl -30_000, fees 107 + 104 + 11_251 + 11_255 = 22_717 (mk is cross in both)
    assert bal(ex, mk) == FUND + 14_000 - 30_000 - 22_717
    # ledger: 631 + 67_515 + 22_717 = 90_863
    assert ex.ledgers["fees"] == 90_863
    assert conservation_gap(ex) == 0
    ex.check_conservation()


# ============================================================================================ 4. conservation


def test_conservation_external_flows_hand_computed():
    ex = make_ex(btc_spec(), eth_spec())
    a = ex.open_account(5_000)
    b = ex.open_account()
    ex.deposit(b, 7_000)
    ex.withdraw(a, 1_200)
    ex.seed_ledger("insurance", 900)
    assert ex.ledgers.external == 11_700  # 5_000 + 7_000 - 1_200 + 900
    assert ex.ledgers["insurance"] == 900
    with pytest.raises(InsufficientFunds):
        ex.withdraw(a, 3_801)  # balance is 3_800
    assert conservation_gap(ex) == 0
    ex.check_conservation()


def test_conservation_many_trades_two_markets():
    rng = random.Random(20261125)
    ex = make_ex(btc_spec(), eth_spec(maker="-0.5", taker="3.3"))
    tape = Tape()
    ex.subscribe_fills(tape)
    accts = [ex.open_account(10**12) for _ in range(4)]
    accts.append(ex.open_account())
    ex.deposit(accts[4], 3 * 10**11)
    ex.seed_ledger("insurance", 12_345)
    ex.withdraw(accts[0], 10**6)
    external = 4 * 10**12 + 3 * 10**11 + 12_345 - 10**6
    cash = {aid: 10**12 for aid in accts[:4]}  # deposits - withdrawals - isolated transfers, per account
    cash[accts[4]] = 3 * 10**11
    cash[accts[0]] -= 10**6
    # accounts 3 and 4 are isolated in ETH, cross in BTC
    isolated_in = {}
    for aid in accts[3:]:
        ex.set_margin_mode(aid, ETH, "isolated")
        ex.transfer_isolated_margin(aid, ETH, 10**11)
        isolated_in[aid] = 10**11
        cash[aid] -= 10**11
    centre = {BTC: 30_000, ETH: 250_000}
    filled_total = 0
    for step in range(1500):
        aid = rng.choice(accts)
        sym = rng.choice((BTC, ETH))
        side = rng.choice(("buy", "sell"))
        op = rng.random()
        if op < 0.6:
            price = centre[sym] + rng.randint(-20, 20)
            tif = rng.choice(("GTC", "GTC", "IOC"))
            r = ex.limit(aid, sym, side, rng.randint(1, 6), price, tif=tif)
        elif op < 0.75:
            if rng.random() < 0.1:  # a liquidation-flagged order, as the liquidation engine sends them
                filled_total += ex._liquidation_order(ex.account(aid), ex.market(sym).index, 0 if side == "buy" else 1,
                                                      rng.randint(1, 8), 1 if side == "sell" else 10**9)[0]
                continue
            r = ex.market_order(aid, sym, side, rng.randint(1, 8))
        elif op < 0.85:
            size = ex.position(aid, sym).size
            if size == 0:
                continue
            r = ex.market_order(aid, sym, "sell" if size > 0 else "buy", rng.randint(1, 10), reduce_only=True)
            assert r.qty <= abs(size)
        elif op < 0.95:
            oo = ex.open_orders(aid)
            if oo:
                ex.cancel(aid, rng.choice(sorted(oo)))
            continue
        else:
            if ex.account(aid).balance > 10**6:
                ex.withdraw(aid, 10**6)
                external -= 10**6
                cash[aid] -= 10**6
            continue
        assert r.filled + r.resting + r.cancelled == r.qty
        filled_total += r.filled
        if step % 50 == 0:
            assert conservation_gap(ex) == 0
            ex.check_conservation()

    assert filled_total > 500  # the run really traded
    assert sum(tape.column("qty")) == filled_total
    assert ex.ledgers.external == external
    assert conservation_gap(ex) == 0
    ex.check_conservation()
    for sym in (BTC, ETH):
        assert ex.market(sym).open_interest == oi_from_positions(ex, sym)
        assert ex.market(sym).open_interest > 0
        assert sum(ex.position(aid, sym).size for aid in accts) == 0
    # every fee charged or rebated is in the fees ledger
    assert ex.ledgers["fees"] == sum(ex.position(aid, s).fees for aid in accts for s in (BTC, ETH))
    assert ex.ledgers["insurance"] == 12_345
    # replay the tape through an independent model (average cost; isolated lots leave with their share of the
    # margin) and compare every position, isolated bucket and balance
    specs = {ex.market(BTC).index: btc_spec(), ex.market(ETH).index: eth_spec(maker="-0.5", taker="3.3")}
    eth = ex.market(ETH).index
    model = replay_tape(tape, specs, {(aid, eth): moved for aid, moved in isolated_in.items()})
    for aid in isolated_in:
        p = ex.position(aid, ETH)
        assert p.mode == "isolated"
        assert p.margin == model[("margin", (aid, eth))]
    for aid in accts:
        expected_balance = cash[aid] + model.get(("cash", aid), 0)
        for sym in (BTC, ETH):
            p = ex.position(aid, sym)
            size, cost, realized, fees = model.get((aid, ex.market(sym).index), (0, 0, 0, 0))
            assert (p.size, p.cost, p.realized, p.fees) == (size, cost, realized, fees)
            if p.mode == "cross":
                expected_balance += realized - fees
        assert ex.account(aid).balance == expected_balance

    # corrupt on purpose: exactly the amount shows up as the gap
    acct = ex.account(accts[1])
    acct.balance += 1
    assert conservation_gap(ex) == 1
    with pytest.raises(ConservationError):
        ex.check_conservation()
    acct.balance -= 1
    ex.check_conservation()
    pos = ex.account(accts[3]).positions[ex.market(ETH).index]
    pos.margin -= 1
    assert conservation_gap(ex) == -1
    with pytest.raises(ConservationError):
        ex.check_conservation()
    pos.margin += 1
    pos.cost += 1  # cost is subtracted: one more unit of cost is one unit destroyed
    assert conservation_gap(ex) == -1
    pos.cost -= 1
    ex.ledgers.balances["fees"] += 5
    assert conservation_gap(ex) == 5
    ex.ledgers.balances["fees"] -= 5
    ex.check_conservation()
    ex.market(BTC).open_interest += 1  # money is fine, open interest is not
    assert conservation_gap(ex) == 0
    with pytest.raises(ConservationError):
        ex.check_conservation()
    ex.market(BTC).open_interest -= 1
    ex.check_conservation()


def test_open_interest_hand_worked():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    a, b, c = ex.open_account(FUND), ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(a, BTC, "sell", 5, 100)
    ex.limit(b, BTC, "buy", 5, 100)  # b +5, a -5
    assert ex.market(BTC).open_interest == 5
    ex.limit(c, BTC, "sell", 2, 100)
    ex.limit(a, BTC, "buy", 2, 100)  # a -3, c -2, b +5
    assert ex.market(BTC).open_interest == 5
    ex.limit(b, BTC, "sell", 8, 100)
    ex.limit(a, BTC, "buy", 8, 100)  # b -3, a +5, c -2
    assert ex.market(BTC).open_interest == 5
    ex.limit(a, BTC, "sell", 5, 100)
    ex.limit(c, BTC, "buy", 5, 100)  # a 0, b -3, c +3
    assert ex.market(BTC).open_interest == 3
    assert [ex.position(x, BTC).size for x in (a, b, c)] == [0, -3, 3]
    assert ex.market(BTC).volume == 20  # 5 + 2 + 8 + 5
    ex.check_conservation()


# ============================================================================================ 5. reduce-only


def test_reduce_only_trimmed_at_submission():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    a, mk = ex.open_account(FUND), ex.open_account(FUND)
    with pytest.raises(ReduceOnlyViolation):  # flat: nothing to reduce
        ex.limit(a, BTC, "sell", 1, 100, reduce_only=True)
    ex.limit(mk, BTC, "sell", 5, 100)
    ex.limit(a, BTC, "buy", 5, 100)  # a long 5
    with pytest.raises(ReduceOnlyViolation):  # a buy would grow a long
        ex.limit(a, BTC, "buy", 1, 90, reduce_only=True)

    r = ex.limit(a, BTC, "sell", 8, 120, reduce_only=True)
    assert (r.qty, r.trimmed, r.filled, r.resting, r.cancelled) == (5, 3, 0, 5, 0)
    assert ex.open_orders(a) == {r.oid: (BTC, SELL, 120, 5)}

    ex.limit(mk, BTC, "buy", 2, 99)
    m = ex.market_order(a, BTC, "sell", 9, reduce_only=True)
    # trimmed to the position 5 (4 removed); 2 fill at 99, the other 3 have nothing to hit
    assert (m.qty, m.trimmed, m.filled, m.resting, m.cancelled) == (5, 4, 2, 0, 3)
    assert ex.position(a, BTC).size == 3


def test_resting_reduce_only_capped_at_fill_time():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    tape = Tape()
    ex.subscribe_fills(tape)
    a, mk, b = ex.open_account(FUND), ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(mk, BTC, "sell", 5, 100)
    ex.limit(a, BTC, "buy", 5, 100)  # a long 5, cost 500_000
    ro = ex.limit(a, BTC, "sell", 5, 101, reduce_only=True)
    plain = ex.limit(a, BTC, "sell", 3, 100)
    assert (ro.resting, plain.resting) == (5, 3)

    r = ex.limit(b, BTC, "buy", 8, 101)
    # 3 @ 100 from the plain order -> a long 2; the RO sell is capped to 2 @ 101, its other 3 cancelled
    assert (r.filled, r.resting, r.cancelled) == (5, 3, 0)
    assert r.notional == 502  # 3 * 100 + 2 * 101
    assert r.avg_price == Fraction(502, 5)
    assert ex.position(a, BTC).size == 0  # exactly flat, never short
    assert ex.open_orders(a) == {}
    assert ex.open_orders(b) == {r.oid: (BTC, BUY, 101, 3)}
    assert ex.data(BTC).best_ask() is None
    assert ex.data(BTC).best_bid() == 101
    fills = [(tape.column("maker_oid")[i], tape.column("price")[i], tape.column("qty")[i]) for i in range(len(tape))]
    assert fills[-2:] == [(plain.oid, 100, 3), (ro.oid, 101, 2)]
    # a: 3 @ 100 releases 300_000 (pnl 0), 2 @ 101 releases 200_000 for 202_000 -> pnl 2_000
    assert_pos(ex, a, BTC, 0, 0, 2_000, 0, None)
    assert ex.market(BTC).open_interest == 5  # b long 5 against mk short 5
    ex.check_conservation()


def test_resting_reduce_only_cancelled_when_flat():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    a, mk, b, c = (ex.open_account(FUND) for _ in range(4))
    ex.limit(mk, BTC, "sell", 5, 100)
    ex.limit(a, BTC, "buy", 5, 100)  # a long 5
    ro = ex.limit(a, BTC, "sell", 5, 101, reduce_only=True, client_id="tp")
    ex.limit(c, BTC, "sell", 2, 101)  # behind the RO order at the same price
    ex.limit(mk, BTC, "buy", 5, 99)
    closed = ex.market_order(a, BTC, "sell", 5)
    assert closed.filled == 5
    assert ex.position(a, BTC).size == 0
    # the book does not know yet: the RO order still rests until it is reached
    assert ex.open_orders(a) == {ro.oid: (BTC, SELL, 101, 5)}

    r = ex.limit(b, BTC, "buy", 4, 101)
    assert (r.filled, r.resting, r.notional) == (2, 2, 202)  # only c's 2 @ 101; a's RO cancelled
    assert ex.position(a, BTC).size == 0
    assert ex.position(c, BTC).size == -2
    assert ex.open_orders(a) == {}
    with pytest.raises(UnknownOrder):
        ex.cancel(a, client_id="tp")
    # the client id is free again
    again = ex.limit(a, BTC, "sell", 1, 150, client_id="tp")
    assert ex.open_orders(a) == {again.oid: (BTC, SELL, 150, 1)}
    ex.check_conservation()


def test_resting_reduce_only_cancelled_after_position_flipped():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    a, mk, b = (ex.open_account(FUND) for _ in range(3))
    ex.limit(mk, BTC, "sell", 5, 100)
    ex.limit(a, BTC, "buy", 5, 100)  # a long 5
    ro = ex.limit(a, BTC, "sell", 5, 101, reduce_only=True)
    ex.limit(mk, BTC, "buy", 8, 99)
    ex.market_order(a, BTC, "sell", 8)  # a now short 3
    assert ex.position(a, BTC).size == -3
    assert ro.oid in ex.open_orders(a)
    r = ex.limit(b, BTC, "buy", 5, 101, tif="IOC")
    assert (r.filled, r.resting, r.cancelled) == (0, 0, 5)
    assert ex.position(a, BTC).size == -3  # not -8
    assert ex.open_orders(a) == {}
    ex.check_conservation()


def test_two_resting_reduce_only_orders_never_overshoot():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    a, mk, b = (ex.open_account(FUND) for _ in range(3))
    ex.limit(mk, BTC, "sell", 5, 100)
    ex.limit(a, BTC, "buy", 5, 100)  # a long 5
    ro1 = ex.limit(a, BTC, "sell", 5, 101, reduce_only=True)
    ro2 = ex.limit(a, BTC, "sell", 5, 102, reduce_only=True)  # each alone fits the position
    assert (ro1.resting, ro2.resting, ro2.trimmed) == (5, 5, 0)
    r = ex.limit(b, BTC, "buy", 10, 102)
    # ro1 fills 5 @ 101 and a is flat; ro2 is then capped to 0 and cancelled; b rests the other 5
    assert (r.filled, r.resting, r.notional) == (5, 5, 505)  # 5 * 101
    assert ex.position(a, BTC).size == 0
    assert ex.open_orders(a) == {}
    assert ex.open_orders(b) == {r.oid: (BTC, BUY, 102, 5)}
    assert ex.market(BTC).open_interest == 5
    ex.check_conservation()


def test_modify_reduce_only_trimmed_to_position():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    a, mk = ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(mk, BTC, "sell", 5, 100)
    ex.limit(a, BTC, "buy", 5, 100)
    ro = ex.limit(a, BTC, "sell", 2, 110, reduce_only=True)
    ex.modify(a, ro.oid, qty=9)
    assert ex.open_orders(a) == {ro.oid: (BTC, SELL, 110, 5)}  # 9 trimmed to the position 5


# ============================================================================================ 6. client order ids


def test_client_ids_cancel_modify_and_reuse():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    a, b = ex.open_account(FUND), ex.open_account(FUND)
    r1 = ex.limit(a, BTC, "buy", 2, 90, client_id="a1")
    r2 = ex.limit(a, BTC, "sell", 4, 110, client_id=7)
    with pytest.raises(DuplicateClientOrderId):
        ex.limit(a, BTC, "buy", 1, 80, client_id="a1")
    ex.limit(b, BTC, "buy", 1, 80, client_id="a1")  # client ids are per account

    assert ex.cancel(a, client_id="a1") == 2
    assert ex.open_orders(a) == {r2.oid: (BTC, SELL, 110, 4)}
    with pytest.raises(UnknownOrder):
        ex.cancel(a, client_id="a1")
    r3 = ex.limit(a, BTC, "buy", 3, 91, client_id="a1")  # free again after the cancel
    assert ex.open_orders(a)[r3.oid] == (BTC, BUY, 91, 3)

    # modify by client id: size down keeps the price, price change moves it
    assert ex.modify(a, client_id=7, qty=3) == 0
    assert ex.open_orders(a)[r2.oid] == (BTC, SELL, 110, 3)
    assert ex.modify(a, client_id=7, price=105) == 0
    assert ex.open_orders(a)[r2.oid] == (BTC, SELL, 105, 3)

    # partial fill keeps the client id live; a full fill frees it
    f = ex.limit(b, BTC, "buy", 1, 105)
    assert f.filled == 1
    assert ex.open_orders(a)[r2.oid] == (BTC, SELL, 105, 2)
    with pytest.raises(DuplicateClientOrderId):
        ex.limit(a, BTC, "sell", 1, 120, client_id=7)
    ex.limit(b, BTC, "buy", 2, 105)
    assert r2.oid not in ex.open_orders(a)
    with pytest.raises(UnknownOrder):
        ex.cancel(a, client_id=7)
    r4 = ex.limit(a, BTC, "sell", 1, 120, client_id=7)
    assert ex.cancel(a, client_id=7) == 1
    assert r4.oid not in ex.open_orders(a)
    assert r1.oid not in ex.open_orders(a)


def test_modify_by_client_id_crossing_fills_and_frees_id():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    a, b = ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(b, BTC, "sell", 2, 100)
    r = ex.limit(a, BTC, "buy", 2, 95, client_id="x")
    assert ex.modify(a, client_id="x", price=100) == 2  # crosses and fills completely
    assert ex.open_orders(a) == {}
    assert ex.position(a, BTC).size == 2
    with pytest.raises(UnknownOrder):
        ex.modify(a, client_id="x", qty=1)
    r2 = ex.limit(a, BTC, "buy", 1, 90, client_id="x")
    assert r2.oid != r.oid
    ex.check_conservation()


def test_client_id_freed_when_stp_cancels_resting():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    a, b = ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(a, BTC, "sell", 2, 100, client_id="s")
    ex.limit(b, BTC, "sell", 2, 101)
    ex.limit(a, BTC, "buy", 1, 101)  # STP cancels a's own ask
    with pytest.raises(UnknownOrder):
        ex.cancel(a, client_id="s")
    ex.limit(a, BTC, "sell", 1, 120, client_id="s")


# ============================================================================================ 7. self-trade prevention


def _no_self_fills(tape: Tape) -> None:
    mk = tape.column("maker_account")
    tk = tape.column("taker_account")
    assert all(mk[i] != tk[i] for i in range(len(tape)))


def test_stp_cancel_resting():
    ex = make_ex(btc_spec(maker="0", taker="0", stp="cancel_resting"))
    tape = Tape()
    ex.subscribe_fills(tape)
    a, b, c = (ex.open_account(FUND) for _ in range(3))
    own = ex.limit(a, BTC, "sell", 2, 100)
    ex.limit(b, BTC, "sell", 3, 100)
    ex.limit(c, BTC, "sell", 1, 101)
    r = ex.limit(a, BTC, "buy", 4, 101)
    # a's own 2 @ 100 cancelled; 3 @ 100 from b, 1 @ 101 from c
    assert (r.filled, r.resting, r.cancelled) == (4, 0, 0)
    assert r.notional == 401  # 3 * 100 + 1 * 101
    assert own.oid not in ex.open_orders(a)
    assert ex.open_orders(a) == {}
    assert ex.data(BTC).best_ask() is None
    assert [tape.column("maker_account")[i] for i in range(len(tape))] == [b, c]
    assert ex.position(a, BTC).size == 4
    _no_self_fills(tape)

    # with a GTC remainder: own order cancelled, remainder rests
    own2 = ex.limit(a, BTC, "sell", 2, 105)
    r = ex.limit(a, BTC, "buy", 3, 105)
    assert (r.filled, r.resting) == (0, 3)
    assert ex.open_orders(a) == {r.oid: (BTC, BUY, 105, 3)}
    assert own2.oid not in ex.open_orders(a)
    ex.check_conservation()


def test_stp_cancel_incoming():
    ex = make_ex(btc_spec(maker="0", taker="0", stp="cancel_incoming"))
    tape = Tape()
    ex.subscribe_fills(tape)
    a, b, c = (ex.open_account(FUND) for _ in range(3))
    ex.limit(b, BTC, "sell", 2, 100)
    own = ex.limit(a, BTC, "sell", 3, 101)
    ex.limit(c, BTC, "sell", 4, 102)
    r = ex.limit(a, BTC, "buy", 9, 102)  # GTC, but stopped: nothing rests
    assert (r.qty, r.filled, r.resting, r.cancelled) == (9, 2, 0, 7)
    assert r.notional == 200
    assert ex.open_orders(a) == {own.oid: (BTC, SELL, 101, 3)}
    assert ex.data(BTC).l2(5) == ([], [(101, 3), (102, 4)])
    assert ex.position(a, BTC).size == 2

    m = ex.market_order(a, BTC, "buy", 5)
    assert (m.filled, m.cancelled) == (0, 5)
    assert ex.open_orders(a) == {own.oid: (BTC, SELL, 101, 3)}
    assert [tape.column("maker_account")[i] for i in range(len(tape))] == [b]
    _no_self_fills(tape)
    ex.check_conservation()


# ============================================================================================ 8. OrderResult


def _ladder(ex: Exchange, mk: int) -> None:
    ex.limit(mk, BTC, "sell", 2, 100)
    ex.limit(mk, BTC, "sell", 3, 101)
    ex.limit(mk, BTC, "sell", 4, 103)


def test_sweep_avg_price_and_accounting():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    mk, a = ex.open_account(FUND), ex.open_account(FUND)
    _ladder(ex, mk)
    r = ex.limit(a, BTC, "buy", 7, 103)
    assert (r.qty, r.filled, r.resting, r.cancelled) == (7, 7, 0, 0)
    assert r.notional == 709  # 2 * 100 + 3 * 101 + 2 * 103 = 200 + 303 + 206
    assert r.avg_price == Fraction(709, 7)
    assert ex.position(a, BTC).cost == 709_000  # 709 * 1000
    assert ex.data(BTC).l2(5)[1] == [(103, 2)]

    r = ex.limit(a, BTC, "buy", 5, 103)  # 2 fill, 3 rest at 103
    assert (r.qty, r.filled, r.resting, r.cancelled) == (5, 2, 3, 0)
    assert r.avg_price == Fraction(103)
    assert ex.data(BTC).best_bid() == 103


def test_ioc_and_gtc_remainders():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    mk, a = ex.open_account(FUND), ex.open_account(FUND)
    _ladder(ex, mk)
    r = ex.limit(a, BTC, "buy", 12, 104, tif="IOC")
    assert (r.filled, r.resting, r.cancelled) == (9, 0, 3)
    assert r.notional == 915  # 200 + 303 + 4 * 103 = 200 + 303 + 412
    assert r.avg_price == Fraction(915, 9)
    assert ex.open_orders(a) == {}
    r = ex.limit(a, BTC, "buy", 2, 90)
    assert (r.filled, r.resting, r.cancelled, r.avg_price) == (0, 2, 0, None)


def test_market_order_worst_price():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    mk, a = ex.open_account(FUND), ex.open_account(FUND)
    _ladder(ex, mk)
    r = ex.market_order(a, BTC, "buy", 8, worst_price=101)
    assert (r.filled, r.resting, r.cancelled) == (5, 0, 3)
    assert r.notional == 503  # 200 + 303
    assert r.avg_price == Fraction(503, 5)
    assert ex.data(BTC).l2(5)[1] == [(103, 4)]


def test_market_order_slippage_from_mid():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    mk, a = ex.open_account(FUND), ex.open_account(FUND)
    _ladder(ex, mk)
    ex.limit(mk, BTC, "buy", 2, 99)
    ex.limit(mk, BTC, "buy", 3, 98)
    ex.limit(mk, BTC, "buy", 4, 96)
    # mid (99 + 100) / 2 = 99.5; buy bound floor(99.5 * 1.015) = floor(100.9925) = 100
    r = ex.market_order(a, BTC, "buy", 8, slippage_bps=150)
    assert (r.filled, r.cancelled, r.notional) == (2, 6, 200)
    # now best ask 101, mid (99 + 101) / 2 = 100; buy bound floor(100 * 1.02) = 102 -> 3 @ 101 only
    r = ex.market_order(a, BTC, "buy", 8, slippage_bps=200)
    assert (r.filled, r.cancelled, r.notional) == (3, 5, 303)
    # mid (99 + 103) / 2 = 101; sell bound ceil(101 * 0.98) = ceil(98.98) = 99 -> 2 @ 99 only
    r = ex.market_order(a, BTC, "sell", 8, slippage_bps=200)
    assert (r.filled, r.cancelled, r.notional) == (2, 6, 198)
    # mid (98 + 103) / 2 = 100.5; sell bound ceil(100.5 * 0.97) = ceil(97.485) = 98 -> 3 @ 98
    r = ex.market_order(a, BTC, "sell", 8, slippage_bps=300)
    assert (r.filled, r.cancelled, r.notional) == (3, 5, 294)
    assert r.avg_price == Fraction(98)


def test_market_order_slippage_one_sided_and_empty():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    mk, a = ex.open_account(FUND), ex.open_account(FUND)
    r = ex.market_order(a, BTC, "buy", 3, slippage_bps=100)  # nothing to take
    assert (r.qty, r.filled, r.resting, r.cancelled) == (3, 0, 0, 3)
    _ladder(ex, mk)
    # no bids: the bound is from the best ask 100: floor(100 * 1.01) = 101
    r = ex.market_order(a, BTC, "buy", 9, slippage_bps=100)
    assert (r.filled, r.cancelled, r.notional) == (5, 4, 503)  # 2 @ 100 + 3 @ 101


def test_market_order_worst_price_and_slippage_together_take_the_tighter_bound():
    ex = make_ex(btc_spec(maker="0", taker="0"))
    mk, a = ex.open_account(FUND), ex.open_account(FUND)
    _ladder(ex, mk)  # asks 2 @ 100, 3 @ 101, 4 @ 103
    ex.limit(mk, BTC, "buy", 2, 99)
    ex.limit(mk, BTC, "buy", 3, 97)
    # mid (99 + 100) / 2 = 99.5; slippage bound floor(99.5 * 1.03) = floor(102.485) = 102; worst 100 is tighter
    r = ex.market_order(a, BTC, "buy", 8, worst_price=100, slippage_bps=300)
    assert (r.filled, r.cancelled, r.notional) == (2, 6, 200)
    # best ask 101, mid 100; slippage bound floor(100 * 1.01) = 101 is tighter than worst 103 -> 3 @ 101 only
    r = ex.market_order(a, BTC, "buy", 8, worst_price=103, slippage_bps=100)
    assert (r.filled, r.cancelled, r.notional) == (3, 5, 303)
    # sell: mid (99 + 103) / 2 = 101; slippage bound ceil(101 * 0.95) = ceil(95.95) = 96, worst 98 is tighter -> 2 @ 99
    r = ex.market_order(a, BTC, "sell", 8, worst_price=98, slippage_bps=500)
    assert (r.filled, r.cancelled, r.notional) == (2, 6, 198)
    # no bids left above 97: mid (97 + 103) / 2 = 100, bound ceil(100 * 0.99) = 99 beats worst 90: nothing fills
    r = ex.market_order(a, BTC, "sell", 3, worst_price=90, slippage_bps=100)
    assert (r.filled, r.cancelled) == (0, 3)
    # no opposite side at all: only worst_price is left, nothing fills; the bound must still be a valid price
    ex2 = make_ex(btc_spec(maker="0", taker="0"))
    b = ex2.open_account(FUND)
    r = ex2.market_order(b, BTC, "buy", 3, worst_price=100, slippage_bps=100)
    assert (r.filled, r.cancelled) == (0, 3)
    with pytest.raises(InvalidInput, match="worst_price"):
        ex2.market_order(b, BTC, "buy", 3, worst_price=0, slippage_bps=100)


def test_market_order_slippage_float_bps_is_its_decimal_value():
    # 0.3 bp of 100_000 ticks is exactly 3 ticks: the buy bound is 100_003 (the spec reads floats by their
    # repr, "0.1 means 0.1, not its binary neighbour"; the same must hold here)
    ex = make_ex(btc_spec(maker="0", taker="0"))
    mk, a = ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(mk, BTC, "buy", 1, 99_999)
    ex.limit(mk, BTC, "sell", 1, 100_001)
    ex.limit(mk, BTC, "sell", 1, 100_003)
    # mid (99_999 + 100_001) / 2 = 100_000; bound floor(100_000 * (1 + 0.3 / 10_000)) = 100_003
    r = ex.market_order(a, BTC, "buy", 2, slippage_bps=0.3)
    assert (r.filled, r.notional) == (2, 200_004)  # 100_001 + 100_003


# ============================================================================================ 9. tape


def test_tape_records_every_fill():
    ex = make_ex(btc_spec(), eth_spec())
    tape = Tape()
    ex.subscribe_fills(tape)
    a, b, c = (ex.open_account(FUND) for _ in range(3))
    results = []

    ex.now = 1_000
    m1 = ex.limit(a, BTC, "sell", 2, 100)
    m2 = ex.limit(b, BTC, "sell", 3, 101)
    results += [m1, m2]
    t1 = ex.limit(c, BTC, "buy", 4, 101)  # fills 2 @ 100 (a), 2 @ 101 (b)
    results.append(t1)
    ex.now = 2_500
    m3 = ex.limit(a, ETH, "buy", 5, 250_000)
    t2 = ex.limit(b, ETH, "sell", 5, 249_000)  # 5 @ 250_000 (a is maker)
    results += [m3, t2]
    ex.now = 3_000
    t3_filled, _, t3_oid = ex._liquidation_order(ex.account(c), ex.market(BTC).index, 0, 1, 10**9)  # 1 @ 101 from b
    assert t3_filled == 1

    assert len(tape) == 4
    rows = [tuple(int(tape.column(n)[i]) for n in COLUMNS) for i in range(len(tape))]
    btc_i, eth_i = ex.market(BTC).index, ex.market(ETH).index
    assert rows == [
        # time, market, maker_oid, maker_acct, taker_oid, taker_acct, price, qty, taker_side, liquidation
        (1_000, btc_i, m1.oid, a, t1.oid, c, 100, 2, 0, 0),
        (1_000, btc_i, m2.oid, b, t1.oid, c, 101, 2, 0, 0),
        (2_500, eth_i, m3.oid, a, t2.oid, b, 250_000, 5, 1, 0),
        (3_000, btc_i, m2.oid, b, t3_oid, c, 101, 1, 0, 1),
    ]
    assert sum(tape.column("qty")) == sum(r.filled for r in results) + t3_filled == 10  # 4 + 5 + 1

    df = tape.to_pandas()
    assert list(df.columns) == list(COLUMNS)
    for n in COLUMNS:
        if n == "taker_side":
            assert df[n].dtype == np.int8
        elif n == "liquidation":
            assert df[n].dtype == np.bool_
        else:
            assert df[n].dtype == np.int64
    assert df["price"].tolist() == [100, 101, 250_000, 101]
    assert df["qty"].tolist() == [2, 2, 5, 1]
    assert df["taker_side"].tolist() == [0, 0, 1, 0]
    assert df["liquidation"].tolist() == [False, False, False, True]
    assert df["maker_account"].tolist() == [a, b, a, b]
    assert df["taker_account"].tolist() == [c, c, b, c]
    assert df["time_us"].tolist() == [1_000, 1_000, 2_500, 3_000]
    assert int(df["qty"].sum()) == 10


def test_empty_tape_to_pandas():
    df = Tape().to_pandas()
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 0
    assert df["taker_side"].dtype == np.int8
    assert df["liquidation"].dtype == np.bool_
    assert df["qty"].dtype == np.int64


# ============================================================================================ 10. cancel_all


def test_cancel_all_by_market_and_all():
    ex = make_ex(btc_spec(), eth_spec())
    a, b = ex.open_account(FUND), ex.open_account(FUND)
    a1 = ex.limit(a, BTC, "buy", 1, 90, client_id="x")
    a2 = ex.limit(a, BTC, "sell", 2, 110)
    a3 = ex.limit(a, ETH, "buy", 3, 240_000)
    b1 = ex.limit(b, BTC, "buy", 4, 91)
    b2 = ex.limit(b, ETH, "sell", 5, 260_000)

    with pytest.raises(UnknownOrder):  # b's order is not a's to cancel
        ex.cancel(a, b1.oid)
    assert ex.cancel_all(a, BTC) == 2
    assert ex.open_orders(a) == {a3.oid: (ETH, BUY, 240_000, 3)}
    assert ex.open_orders(b) == {b1.oid: (BTC, BUY, 91, 4), b2.oid: (ETH, SELL, 260_000, 5)}
    assert ex.data(BTC).l2(5) == ([(91, 4)], [])
    assert a1.oid not in ex.market(BTC).book and a2.oid not in ex.market(BTC).book
    ex.limit(a, BTC, "buy", 1, 89, client_id="x")  # client id freed by cancel_all

    assert ex.cancel_all(a) == 2  # the new BTC order and the ETH one
    assert ex.open_orders(a) == {}
    assert ex.data(ETH).l2(5) == ([], [(260_000, 5)])
    assert ex.data(BTC).l2(5) == ([(91, 4)], [])
    assert ex.cancel_all(a) == 0
    assert len(ex.open_orders(b)) == 2
    ex.check_conservation()


# ------------------------------------------------------------------ account tags: running lots by side and mode


def tagged_by_walk(ex: Exchange, symbol: str, tag: str) -> list[int]:
    """The totals as a walk of every position would count them (long/short x cross/isolated)."""
    idx = ex.market(symbol).index
    out = [0, 0, 0, 0]
    for a in ex.accounts.values():
        p = a.positions.get(idx)
        if a.tag == tag and p is not None and p.size:
            out[(0 if p.size > 0 else 1) + (0 if p.mode == 0 else 2)] += abs(p.size)
    return out


def test_tagged_lots_follow_fills_flips_closes_and_retagging():
    ex = make_ex(btc_spec("0", "0"))
    mm = ex.open_account(FUND)
    a, b = ex.open_account(FUND), ex.open_account(FUND)
    ex.set_margin_mode(b, BTC, "isolated")
    ex.limit(mm, BTC, "sell", 10, 100)
    ex.market_order(a, BTC, "buy", 3)  # untagged yet: counted from the tagging on
    ex.tag_account(a, "crowd")
    ex.tag_account(b, "crowd")
    lots = ex.market(BTC).tagged_lots["crowd"]
    assert lots == [3, 0, 0, 0]  # a: 3 long cross
    ex.market_order(b, BTC, "buy", 2)
    assert lots == [3, 0, 2, 0]  # b: 2 long isolated
    ex.limit(mm, BTC, "buy", 20, 99)
    ex.market_order(a, BTC, "sell", 5)  # flip: 3 long -> 2 short
    assert lots == [0, 2, 2, 0]
    ex.market_order(b, BTC, "sell", 2)  # close
    assert lots == [0, 2, 0, 0]
    ex.tag_account(a, "other")  # moves its 2 short lots to the other tag
    assert lots == [0, 0, 0, 0] and ex.market(BTC).tagged_lots["other"] == [0, 2, 0, 0]
    ex.tag_account(a, None)
    assert ex.market(BTC).tagged_lots["other"] == [0, 0, 0, 0]
    ex.check_conservation()  # also checks the running totals against the positions


def test_tagged_lots_equal_a_walk_of_positions_under_random_flow():
    rng = random.Random(7)
    ex = make_ex(btc_spec(), eth_spec())
    accts = [ex.open_account(FUND) for _ in range(12)]
    for i, aid in enumerate(accts):
        if i % 3 == 0:
            ex.set_margin_mode(aid, ETH, "isolated")
        if i % 2:
            ex.tag_account(aid, "crowd" if i % 4 == 1 else "other")
    for _ in range(600):
        aid = rng.choice(accts)
        sym = rng.choice((BTC, ETH))
        side = rng.choice(("buy", "sell"))
        r = rng.random()
        if r < 0.5:
            ex.limit(aid, sym, side, rng.randint(1, 5), rng.randint(95, 105) * (1 if sym == BTC else 100))
        elif r < 0.9:
            ex.market_order(aid, sym, side, rng.randint(1, 8))
        elif r < 0.95:
            ex.cancel_all(aid)
        else:
            ex.tag_account(aid, rng.choice(("crowd", "other", None)))
        for s in (BTC, ETH):
            for tag in ("crowd", "other"):
                assert ex.market(s).tagged_lots.get(tag, [0, 0, 0, 0]) == tagged_by_walk(ex, s, tag)
    ex.check_conservation()


def test_tag_account_refuses_a_non_string_tag():
    ex = make_ex()
    a = ex.open_account(FUND)
    with pytest.raises(InvalidInput):
        ex.tag_account(a, 3)  # type: ignore[arg-type]
