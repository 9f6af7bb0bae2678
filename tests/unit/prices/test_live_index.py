"""The live index: sources read at sample times, combined by the venue's rule, read back as a step function."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

from abm.errors import InvalidInput
from abm.market.book import OrderBook
from abm.market.view import BookView
from abm.prices.index import IndexPath
from abm.prices.index_rules import WeightedMeanOutlier, WeightedMedian
from abm.prices.live_index import BookMidSource, LiveIndex, ValueSource
from abm.units import BUY, SELL


def flat(value: float, seconds: int = 100) -> IndexPath:
    return IndexPath(np.full(seconds * 10 + 1, value), 100_000)


def test_a_books_order_flow_moves_the_index() -> None:
    book = OrderBook()
    book.limit(1, "mm", BUY, 999_990, 5)
    book.limit(2, "mm", SELL, 1_000_010, 5)
    spot = BookMidSource("spot_a", 3, BookView(book), "0.1")
    others = [ValueSource(n, 1, flat(100_000.0)) for n in ("x", "y")]
    idx = LiveIndex([spot, *others], WeightedMedian(), end_us=100_000_000)
    assert idx.sample(0) == 100_000.0  # mid 1,000,000 ticks of 0.1
    book.market(3, "seller", SELL, 5)  # the bid is gone: no mid, the spot venue drops out
    book.limit(4, "mm", BUY, 900_000, 5)  # a new bid 10% lower: mid 950,005 ticks
    assert idx.sample(1_000_000) == float(F(950_005, 1) * F(1, 10))  # weight 3 of 5 is the median's side
    assert idx.value_at(999_999) == 100_000.0 and idx.value_at(5_000_000) == 95_000.5


def test_a_source_without_a_price_drops_out_and_no_source_keeps_the_last_value() -> None:
    book = OrderBook()
    spot = BookMidSource("spot_a", 1, BookView(book), "1")
    with pytest.raises(InvalidInput, match="no source has a price"):
        LiveIndex([spot], WeightedMedian(), 10**9).sample(0)
    book.limit(1, "mm", BUY, 99, 1)
    book.limit(2, "mm", SELL, 101, 1)
    idx = LiveIndex([spot], WeightedMedian(), 10**9)
    assert idx.sample(0) == 100.0
    book.cancel(1)
    assert idx.sample(10) == 100.0 and idx.stale == [False, True]


def test_a_book_a_sale_swept_to_one_side_counts_at_its_last_trade_within_the_side_left() -> None:
    """A sweep that empties the bids must show in the index (left out, the venue's move vanished from it)."""
    book = OrderBook()
    last = {"px": 0}
    spot = BookMidSource("spot_a", 1, BookView(book), "1", last=lambda: last["px"])
    assert spot.price(0) is None  # an empty book that never traded has no price
    book.limit(1, "mm", BUY, 990, 5)
    book.limit(2, "mm", SELL, 1010, 5)
    assert spot.price(0) == 1000  # two-sided: the mid, whatever the last trade
    book.market(3, "seller", SELL, 5)
    last["px"] = 990  # the sale filled at the bid and swept it
    assert spot.price(0) == 990  # one-sided: the last trade
    book.limit(4, "mm", SELL, 980, 1)  # an ask below that last: a buyer pays at most 980
    assert spot.price(0) == 980
    book.cancel(2), book.cancel(4)
    book.limit(5, "mm", BUY, 995, 1)  # only a bid, above the last trade: a seller gets at least 995
    assert spot.price(0) == 995
    book.cancel(5)
    assert spot.price(0) == 990  # both sides empty: the last trade
    halted = BookMidSource("spot_b", 1, BookView(book), "1", halted=lambda: True, last=lambda: 990)
    assert halted.price(0) is None  # a halted venue publishes nothing, last trade or not


def test_exogenous_sources_carry_their_own_noise_and_binance_drops_an_outlier() -> None:
    noisy = ValueSource("far", 1, flat(120.0), noise_bps=0.0)
    near = [ValueSource(f"v{i}", 1, flat(100.0), noise_bps=10.0, rng=np.random.default_rng(i)) for i in range(3)]
    idx = LiveIndex([noisy, *near], WeightedMeanOutlier(), 10**9)
    v = idx.sample(0)
    assert 99.0 < v < 101.0  # the 120 source is >5% from the median: weight 0
    again = LiveIndex([ValueSource("far", 1, flat(120.0)),
                       *[ValueSource(f"v{i}", 1, flat(100.0), noise_bps=10.0, rng=np.random.default_rng(i))
                         for i in range(3)]], WeightedMeanOutlier(), 10**9)
    assert again.sample(0) == v  # each source's noise is its own stream's: the same seeds, the same index


def test_reads_before_the_first_sample_and_samples_back_in_time_are_refused() -> None:
    idx = LiveIndex([ValueSource("v", 1, flat(100.0))], WeightedMedian(), 10**9)
    with pytest.raises(InvalidInput, match="first index sample"):
        idx.value_at(0)
    idx.sample(5)
    with pytest.raises(InvalidInput, match="must be >= the last sample"):
        idx.sample(4)
    with pytest.raises(InvalidInput, match="distinct names"):
        LiveIndex([ValueSource("v", 1, flat(1.0)), ValueSource("v", 1, flat(1.0))], WeightedMedian(), 1)


def test_the_oracle_reads_the_live_index_after_its_delay() -> None:
    from decimal import Decimal

    from abm.prices.oracle import Oracle

    book = OrderBook()
    book.limit(1, "mm", BUY, 999, 5)
    book.limit(2, "mm", SELL, 1_001, 5)
    idx = LiveIndex([BookMidSource("spot_a", 1, BookView(book), "1")], WeightedMedian(), end_us=10_000_000)
    oracle = Oracle(idx, Decimal("1"), interval_us=1_000_000, delay_us=2_000_000)
    seen = []
    for s in range(6):
        if s == 3:  # flow on the spot venue at 3 s: the bid is taken, a lower one arrives
            book.market(3, "seller", SELL, 5)
            book.limit(4, "mm", BUY, 899, 5)
        idx.sample(s * 1_000_000)
        if oracle.next_update_us() == s * 1_000_000:
            seen.append((s, oracle.publish(s * 1_000_000)))
    # the first publication is at the delay; the drop at 3 s reaches the oracle at 5 s
    assert seen == [(2, 1_000), (3, 1_000), (4, 1_000), (5, 950)]
