"""Order types and market data of the bare OrderBook, with hand-worked expectations."""

from __future__ import annotations

from fractions import Fraction

import pytest

from abm.errors import PostOnlyWouldCross
from abm.market.book import (
    BUY,
    CANCEL_STP,
    CANCEL_STP_INCOMING,
    FOK,
    IOC,
    SELL,
    STP_CANCEL_INCOMING,
    OrderBook,
)


class Rec:
    """Records fills and book-initiated cancels."""

    def __init__(self, book: OrderBook) -> None:
        self.fills: list[tuple] = []
        self.cancels: list[tuple] = []
        book.on_fill = lambda *a: self.fills.append(a)
        book.on_cancel = lambda *a: self.cancels.append(a)

    def short(self) -> list[tuple[int, int, int, int]]:
        """(maker oid, taker oid, price, qty) per fill."""
        return [(f[0], f[2], f[4], f[5]) for f in self.fills]


@pytest.fixture
def book() -> OrderBook:
    return OrderBook()


def test_price_time_priority_and_fills_at_resting_price(book):
    rec = Rec(book)
    book.limit(1, "a", SELL, 101, 5)
    book.limit(2, "b", SELL, 100, 3)
    book.limit(3, "c", SELL, 100, 4)  # same price, later: behind 2
    assert book.limit(4, "d", BUY, 102, 9) == 9
    # best price first (100), FIFO within it (2 then 3), then 101; all at the resting prices
    assert rec.short() == [(2, 4, 100, 3), (3, 4, 100, 4), (1, 4, 101, 2)]
    assert book.order(1) == ("a", SELL, 101, 3)
    assert 4 not in book  # fully filled, nothing rests
    book.check_invariants()


def test_gtc_remainder_rests_ioc_remainder_is_dropped(book):
    book.limit(1, "a", SELL, 100, 2)
    assert book.limit(2, "b", BUY, 100, 5) == 2
    assert book.order(2) == ("b", BUY, 100, 3)
    book.limit(3, "a", SELL, 101, 2)
    assert book.limit(4, "c", BUY, 101, 5, tif=IOC) == 2
    assert 4 not in book
    assert book.best_bid() == 100 and book.best_ask() is None


def test_fok_all_or_nothing(book):
    rec = Rec(book)
    book.limit(1, "a", SELL, 100, 2)
    book.limit(2, "a", SELL, 101, 2)
    assert book.limit(3, "b", BUY, 101, 5, tif=FOK) == 0  # only 4 available up to 101
    assert rec.fills == [] and len(book) == 2 and 3 not in book
    assert book.limit(4, "b", BUY, 100, 3, tif=FOK) == 0  # price limit excludes level 101
    assert book.limit(5, "b", BUY, 101, 4, tif=FOK) == 4
    assert len(book) == 0
    book.check_invariants()


def test_fok_does_not_count_own_orders(book):
    book.limit(1, "b", SELL, 100, 5)  # the taker's own: would be cancelled by STP, not filled
    book.limit(2, "a", SELL, 100, 2)
    assert book.limit(3, "b", BUY, 100, 3, tif=FOK) == 0
    assert book.order(1) == ("b", SELL, 100, 5)  # rejected FOK changes nothing
    assert book.limit(4, "b", BUY, 100, 2, tif=FOK) == 2


def test_post_only_rejected_if_crossing_and_rests_otherwise(book):
    book.limit(1, "a", SELL, 100, 2)
    with pytest.raises(PostOnlyWouldCross) as e:
        book.limit(2, "b", BUY, 100, 1, post_only=True)
    assert "price" in str(e.value) and "100" in str(e.value)
    assert 2 not in book and book.order(1) == ("a", SELL, 100, 2)
    assert book.limit(3, "b", BUY, 99, 1, post_only=True) == 0
    assert book.best_bid() == 99


def test_market_order_with_and_without_worst_price(book):
    for i, p in enumerate([100, 101, 105], start=1):
        book.limit(i, "a", SELL, p, 2)
    assert book.market(10, "b", BUY, 10, worst_price=101) == 4  # stops before 105
    assert book.best_ask() == 105 and 10 not in book
    assert book.market(11, "b", BUY, 10) == 2  # unbounded: takes what there is, rest dropped
    assert book.best_ask() is None and len(book) == 0


def test_cancel_returns_resting_size_and_drops_empty_levels(book):
    book.limit(1, "a", BUY, 99, 3)
    book.limit(2, "a", BUY, 98, 4)
    assert book.cancel(1) == 3
    assert book.best_bid() == 98
    assert book.cancel(2) == 4
    assert book.best_bid() is None and len(book) == 0
    book.check_invariants()


def test_modify_size_down_keeps_priority(book):
    rec = Rec(book)
    book.limit(1, "a", SELL, 100, 5)
    book.limit(2, "c", SELL, 100, 5)
    assert book.modify(1, qty=2) == 0
    book.market(3, "b", BUY, 3)
    assert rec.short() == [(1, 3, 100, 2), (2, 3, 100, 1)]


def test_modify_size_up_or_price_change_loses_priority(book):
    rec = Rec(book)
    book.limit(1, "a", SELL, 100, 2)
    book.limit(2, "c", SELL, 100, 2)
    book.modify(1, qty=3)  # size up: to the back
    book.market(3, "b", BUY, 1)
    assert rec.short()[-1][0] == 2
    book.limit(4, "d", SELL, 100, 1)
    book.modify(2, price=100)  # unchanged price and size: keeps place (no-op)
    book.modify(4, price=99)  # better price: now first
    book.modify(4, price=100)  # back to 100: behind order 1 now
    book.market(5, "b", BUY, 5)
    assert [f[0] for f in rec.short()[1:]] == [2, 1, 4]


def test_modify_to_crossing_price_trades(book):
    book.limit(1, "a", SELL, 101, 2)
    book.limit(2, "b", BUY, 99, 5)
    assert book.modify(2, price=101) == 2
    assert book.order(2) == ("b", BUY, 101, 3)
    book.limit(3, "c", SELL, 105, 1, post_only=True)
    with pytest.raises(PostOnlyWouldCross):
        book.modify(3, price=101)
    assert book.order(3) == ("c", SELL, 105, 1)


@pytest.mark.parametrize("mode", ["resting", "incoming"])
def test_self_trade_prevention(mode):
    book = OrderBook(stp=STP_CANCEL_INCOMING if mode == "incoming" else 0)
    rec = Rec(book)
    book.limit(1, "a", SELL, 100, 2)
    book.limit(2, "b", SELL, 100, 2)  # own order of the taker, behind 1
    book.limit(3, "a", SELL, 101, 2)
    filled = book.limit(4, "b", BUY, 101, 5)
    if mode == "resting":
        # 1 fills, b's own 2 is cancelled, 3 fills; remainder 1 rests
        assert rec.short() == [(1, 4, 100, 2), (3, 4, 101, 2)]
        assert rec.cancels == [(2, "b", 2, 0, CANCEL_STP)]
        assert filled == 4 and book.order(4) == ("b", BUY, 101, 1)
    else:
        # 1 fills, then the incoming order meets its owner's order and is cancelled
        assert rec.short() == [(1, 4, 100, 2)]
        assert rec.cancels == [(4, "b", 3, 0, CANCEL_STP_INCOMING)]
        assert filled == 2 and 4 not in book and book.order(2) == ("b", SELL, 100, 2)
    assert all(f[1] != f[3] for f in rec.fills)
    book.check_invariants()


def test_anonymous_orders_never_self_trade_prevented(book):
    book.limit(1, None, SELL, 100, 1)
    assert book.limit(2, None, BUY, 100, 1) == 1


def test_market_data_l2_mid_spread(book):
    book.limit(1, "a", BUY, 99, 2)
    book.limit(2, "a", BUY, 99, 3)
    book.limit(3, "a", BUY, 97, 1)
    book.limit(4, "a", SELL, 102, 4)
    book.limit(5, "a", SELL, 103, 6)
    assert book.l2(2) == ([(99, 5), (97, 1)], [(102, 4), (103, 6)])
    assert book.l2(1) == ([(99, 5)], [(102, 4)])
    assert book.mid() == 100.5 and book.spread() == 3
    assert book.spread_bps() == pytest.approx(3 / 100.5 * 1e4)
    assert book.level_size(BUY, 99) == 5 and book.level_size(SELL, 99) == 0


def test_depth_within_band_is_exact_at_the_edges(book):
    # mid = 1000; 1% band = [990, 1010] inclusive
    for oid, (side, p, q) in enumerate([(BUY, 999, 1), (BUY, 990, 2), (BUY, 989, 4), (SELL, 1001, 3),
                                         (SELL, 1010, 5), (SELL, 1011, 7)], start=1):
        book.limit(oid, "a", side, p, q)
    assert book.depth_within(100) == (3, 999 + 2 * 990, 8, 3 * 1001 + 5 * 1010)
    assert book.depth_within(0) == (0, 0, 0, 0)
    # explicit reference price (e.g. the oracle) instead of the mid: band [990.99, 1011.01]
    assert book.depth_within(100, ref=1001) == (1, 999, 15, 3 * 1001 + 5 * 1010 + 7 * 1011)
    book.cancel(4)
    book.cancel(5)
    book.cancel(6)
    # asks gone: the band is centred on the best bid 999: [989.01, 1008.99]
    assert book.depth_within(100) == (3, 999 + 2 * 990, 0, 0)
    assert book.depth_within(200) == (7, 999 + 2 * 990 + 4 * 989, 0, 0)


def test_impact_price_walks_levels_and_takes_the_last_fractionally(book):
    book.limit(1, "a", SELL, 100, 2)  # 200 tick·lots
    book.limit(2, "a", SELL, 110, 3)  # 330 tick·lots
    assert book.impact_price(BUY, 200) == 100
    # 300 = 200 at 100 + 100 at 110 (100/110 lots): avg = 300 / (2 + 10/11)
    assert book.impact_price(BUY, 300) == Fraction(300) / (2 + Fraction(10, 11))
    assert book.impact_price(BUY, 531) is None
    assert book.impact_price(SELL, 1) is None


def test_dead_entries_are_compacted(book):
    book.limit(1, "a", BUY, 100, 1)
    for oid in range(2, 200):
        book.limit(oid, "a", BUY, 100, 1)
    for oid in range(2, 200):
        book.cancel(oid)
    lvl = book._bid_lv[100]
    assert len(lvl.q) < 40  # cancelled entries do not pile up behind a live order
    book.check_invariants()
    assert book.market(500, "b", SELL, 5) == 1


def test_depth_within_takes_float_bps_as_written(book):
    # mid 100,000; 0.3 bp is exactly 3 ticks, so 99,997 and 100,003 are on the band's edges
    for oid, (side, p) in enumerate([(BUY, 99_999), (BUY, 99_997), (SELL, 100_001), (SELL, 100_003)], start=1):
        book.limit(oid, "a", side, p, 1)
    assert book.depth_within(0.3) == (2, 99_999 + 99_997, 2, 100_001 + 100_003)
