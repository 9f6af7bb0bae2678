"""The mark's integer path (ticks as ints, what the feed passes) equals its Fraction path, update by update.

The same inputs given as Fractions take the exact-Fraction code; as ints they take integer ratios
(issue 18). Every mark, piece and EMA state must agree exactly, with and without the book EMA.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

import hypothesis.strategies as st
from hypothesis import given, settings

from abm.prices.mark import HyperliquidMark, median_of, median_ratio, round_ratio

step = st.tuples(st.integers(0, 5_000_000),  # time to the next update, µs
                 st.integers(9_000, 11_000),  # oracle
                 st.one_of(st.none(), st.integers(-60, 60)),  # bid offset from the oracle
                 st.integers(0, 40),  # spread
                 st.one_of(st.none(), st.integers(-80, 80)),  # last trade offset
                 st.booleans())  # ask side missing


def frac(x: Optional[int]) -> Optional[Fraction]:
    return None if x is None else Fraction(x)


@settings(max_examples=200, deadline=None)
@given(st.lists(step, min_size=1, max_size=40), st.sampled_from([None, 30, 7.5]))
def test_integer_ticks_give_the_fraction_paths_marks_and_pieces(steps, book_ema):
    fast, exact = HyperliquidMark(150, book_ema), HyperliquidMark(150, book_ema)
    t = 0
    for dt, o, boff, spread, loff, no_ask in steps:
        t += dt
        bid = None if boff is None else o + boff
        ask = None if no_ask else (o + (boff or 0) + spread)
        if bid is not None and ask is not None and bid > ask:
            ask = bid
        last = None if loff is None else o + loff
        a = fast.update(t, o, bid, ask, last)
        b = exact.update(t, Fraction(o), frac(bid), frac(ask), frac(last))
        assert a == b
        assert fast.components == exact.components
        assert (fast._num, fast._den, fast._held, fast._bnum, fast._bden, fast._bheld) == \
               (exact._num, exact._den, exact._held, exact._bnum, exact._bden, exact._bheld)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.integers(-10**6, 10**6), st.integers(1, 10**4)), min_size=1, max_size=3))
def test_median_and_rounding_of_ratios_equal_the_fractions(values):
    r = median_ratio(values)
    f = median_of([Fraction(n, d) for n, d in values])
    assert Fraction(*r) == f
    assert round_ratio(r) == max(round(f), 1)
