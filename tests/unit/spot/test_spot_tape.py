"""The spot venues' trade tape: each fill with the fees the venue charged, in event order across venues; and
what each account brought from outside, kept by the venue and checked with its conservation."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abm.errors import ConservationError, InsufficientFunds, InvalidInput
from abm.market.spec import MarketSpec
from abm.spot import SpotExchange
from abm.spot.tape import COLUMNS, SpotTape
from abm.units import BUY, SELL

SPEC = MarketSpec("BTC/USDC", Decimal("0.1"), Decimal("0.001"), maker_fee_bps=Decimal("-1"),
                  taker_fee_bps=Decimal("5"))


def venue(name: str, tape: SpotTape, index: int) -> SpotExchange:
    ex = SpotExchange(name)
    ex.list_market(SPEC)
    ex.subscribe_trades(tape.listener(index))
    return ex


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([BUY, SELL]), st.integers(1, 30),
                          st.integers(599_990, 600_010), st.booleans()), min_size=1, max_size=40))
def test_the_tape_records_the_fees_each_account_was_charged(ops: list[tuple[int, int, int, int, bool]]) -> None:
    tape = SpotTape()
    ex = venue("a", tape, 0)
    ids = [ex.open_account(100_000_000_000) for _ in range(4)]
    for aid in ids:
        ex.deposit_inventory(aid, "BTC/USDC", 1_000)
    for i, side, qty, price, market in ops:
        try:
            if market:
                ex.market_order(ids[i], "BTC/USDC", side, qty)
            else:
                ex.limit(ids[i], "BTC/USDC", side, qty, price)
        except InsufficientFunds:  # its lots are held by its resting sells: refused, nothing changed
            pass
    cols = tape.columns()
    assert list(cols) == list(COLUMNS) and len(tape) == len(cols["qty"])
    for aid in ids:  # the account's fees are exactly its fills' fees as maker and as taker
        a = ex.account(aid)
        fees = cols["maker_fee"][cols["maker_account"] == aid].sum() + cols["taker_fee"][cols["taker_account"] == aid].sum()
        assert fees == a.fees_paid
        buy = cols["taker_side"] == BUY
        value = cols["price"] * cols["qty"] * SPEC.multiplier
        took = cols["taker_account"] == aid
        made = cols["maker_account"] == aid
        bought = (took & buy) | (made & ~buy)
        sold = (took & ~buy) | (made & buy)
        assert a.total_cash() == 100_000_000_000 - value[bought].sum() + value[sold].sum() - fees
        assert a.total_inventory(0) == 1_000 + cols["qty"][bought].sum() - cols["qty"][sold].sum()
    assert (cols["venue"] == 0).all() and cols["taker_side"].dtype == np.int8
    assert cols["maker_fee"].sum() + cols["taker_fee"].sum() == ex.ledgers["fees"]
    ex.check_conservation()


def test_one_tape_keeps_the_order_of_fills_across_venues() -> None:
    tape = SpotTape()
    a, b = venue("a", tape, 0), venue("b", tape, 1)
    for ex, t in ((a, 5), (b, 5), (a, 7)):
        ex.now = t
        s, k = ex.open_account(), ex.open_account(10**12)
        ex.deposit_inventory(s, "BTC/USDC", 3)
        ex.limit(s, "BTC/USDC", SELL, 3, 600_000)
        ex.market_order(k, "BTC/USDC", BUY, 3)
    cols = tape.columns()
    assert list(cols["venue"]) == [0, 1, 0] and list(cols["time_us"]) == [5, 5, 7]
    value = 600_000 * 3 * SPEC.multiplier
    assert list(cols["taker_fee"]) == [-((-value * 500) // 10**6)] * 3
    assert list(cols["maker_fee"]) == [-((value * 100) // 10**6)] * 3  # a rebate, rounded down
    with pytest.raises(InvalidInput, match="venue"):
        tape.listener(-1)
    with pytest.raises(InvalidInput, match="fn"):
        a.subscribe_trades(5)  # type: ignore[arg-type]


def test_what_accounts_brought_is_kept_and_checked() -> None:
    ex = SpotExchange("a")
    ex.list_market(SPEC)
    aid = ex.open_account(5_000)
    ex.deposit(aid, 1_000)
    ex.withdraw(aid, 300)
    ex.deposit_inventory(aid, "BTC/USDC", 7)
    ex.withdraw_inventory(aid, "BTC/USDC", 2)
    ex.seed_lending("BTC/USDC", 10)
    ex.list_market(MarketSpec("ETH/USDC", Decimal("0.01"), Decimal("0.01")))  # listed later: the account grows
    a = ex.account(aid)
    assert (a.opening_cash, a.cash_in, a.lots_in) == (5_000, 5_700, [5, 0])
    ex.check_conservation()
    a.cash_in += 1  # a record that no longer adds up is caught
    with pytest.raises(ConservationError, match="brought"):
        ex.check_conservation()
    a.cash_in -= 1
    a.lots_in[0] += 1
    with pytest.raises(ConservationError, match="brought"):
        ex.check_conservation()
