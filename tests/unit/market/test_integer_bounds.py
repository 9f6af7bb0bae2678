"""The book's and the feeds' integer arithmetic equals the exact-Fraction definitions it replaced.

The per-step depth bands, the impact prices and the mark's median are computed with integer floor
divisions instead of Fractions (issue 18: they run every second in every market); each is compared
here, on random books and inputs, with the Fraction formula as it was written before.
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil, floor
from typing import Optional

import hypothesis.strategies as st
from hypothesis import given, settings

from abm.market.book import BUY, SELL, OrderBook
from abm.market.spec import exact_fraction

levels = st.lists(st.tuples(st.integers(1, 400), st.integers(1, 50)), max_size=25)
band = st.one_of(st.integers(0, 10000), st.floats(0, 10000, allow_nan=False), st.sampled_from([0.5, 12.25, 33.3, 0.1]))


def build(bids: list[tuple[int, int]], asks: list[tuple[int, int]], gap: int) -> OrderBook:
    book = OrderBook()
    oid = 1
    for p, q in bids:
        book.limit(oid, 1, BUY, 1000 - p, q)
        oid += 1
    for p, q in asks:
        book.limit(oid, 2, SELL, 1000 + gap + p, q)
        oid += 1
    return book


def depth_bands_fraction(book: OrderBook, bands: list, ref: Optional[float] = None) -> list[tuple[int, int, int, int]]:
    """The former definition: Fraction bounds, ceil/floor, over the book's levels (via l2)."""
    bids, asks = book.l2(10**6) if len(book) else ([], [])
    if ref is None:
        if bids and asks:
            ref2 = Fraction(bids[0][0] + asks[0][0])
        elif bids:
            ref2 = Fraction(2 * bids[0][0])
        elif asks:
            ref2 = Fraction(2 * asks[0][0])
        else:
            return [(0, 0, 0, 0) for _ in bands]
    else:
        ref2 = 2 * exact_fraction(ref)
    out = []
    for bps in bands:
        f = exact_fraction(bps) / 10000
        lo = ceil(ref2 * (1 - f) / 2)
        hi = floor(ref2 * (1 + f) / 2)
        b = [(p, q) for p, q in bids if p >= lo]
        a = [(p, q) for p, q in asks if p <= hi]
        out.append((sum(q for _, q in b), sum(p * q for p, q in b), sum(q for _, q in a), sum(p * q for p, q in a)))
    return out


@settings(max_examples=300, deadline=None)
@given(levels, levels, st.integers(1, 30), st.lists(band, min_size=1, max_size=4),
       st.one_of(st.none(), st.integers(1, 3000), st.floats(0.5, 3000, allow_nan=False)))
def test_integer_depth_bands_equal_the_fraction_bounds(bids, asks, gap, bands, ref):
    book = build(bids, asks, gap)
    assert book.depth_bands(bands, ref) == depth_bands_fraction(book, bands, ref)


def test_depth_bands_on_a_half_tick_mid_and_a_decimal_band():
    book = build([(0, 5), (10, 5)], [(0, 5), (10, 5)], 1)  # bids 1000, 990; asks 1001, 1011: mid 1000.5
    # 100 bps of 1000.5 is 10.005: bids >= ceil(990.495) = 991 (only 1000), asks <= floor(1010.505) = 1010 (only 1001)
    assert book.depth_bands([100]) == [(5, 5000, 5, 5005)]
    assert book.depth_bands([100.05]) == [(5, 5000, 5, 5005)]  # 10.0100..: still 991 and 1010
    assert book.depth_bands([105]) == [(10, 9950, 10, 10060)]  # 10.505: 990 and 1011 are inside


@settings(max_examples=300, deadline=None)
@given(levels, levels, st.integers(1, 30), st.integers(1, 10**7), st.integers(1, 1000))
def test_integer_impact_ratio_equals_the_fraction_impact_price(bids, asks, gap, notional, mult):
    book = build(bids, asks, gap)
    for side in (BUY, SELL):
        r = book.impact_ratio(side, notional, mult)
        f = book.impact_price(side, Fraction(notional, mult))
        assert (r is None and f is None) or Fraction(*r) == f


@settings(max_examples=300, deadline=None)
@given(levels, levels, st.integers(1, 30), st.integers(1, 10**7), st.integers(1, 100), st.integers(500, 1500))
def test_integer_book_premium_equals_the_fraction_premium(bids, asks, gap, notional, mult, oracle):
    from abm.market.view import BookView
    from abm.prices.funding import book_premium, premium

    view = BookView(build(bids, asks, gap), mult)
    b, a = view.impact_price(SELL, notional), view.impact_price(BUY, notional)
    got = book_premium(view, notional, oracle, "zero")
    assert got == (None if b is None and a is None else premium(b, a, Fraction(oracle)))
    assert got is None or type(got) is Fraction
    # the default rule: a thin side's impact price is the average of all it holds, by hand from its levels
    def depth(levels):
        return Fraction(sum(q * p for p, q in levels), sum(q for _, q in levels)) if levels else None

    top_bids, top_asks = view.l2(10**6)
    b = depth(top_bids) if b is None else b
    a = depth(top_asks) if a is None else a
    got = book_premium(view, notional, oracle)
    assert got == (None if b is None and a is None else premium(b, a, Fraction(oracle)))
    assert got is None or type(got) is Fraction
