"""External perps, the Hyperliquid mark's third leg: their prices against closed forms, their median against the
index rule's, the mark against an independently computed median, determinism of the noise, and bad input.

Prices are ticks; times are microseconds.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Optional

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from abm.errors import InvalidInput, InvalidPrice
from abm.prices import IndexPath
from abm.prices.external_perp import ExternalPerp, ExternalPerps, weighted_median_ticks
from abm.prices.index_rules import weighted_median
from abm.prices.mark import BinanceMark, HyperliquidMark

S = 1_000_000
TICK = "0.1"


def path(values: list[float], dt_us: int = S) -> IndexPath:
    return IndexPath(np.array(values, dtype=float), dt_us)


def half_even(x: Fraction) -> int:
    """round half to even, written out (independent of the mark's rounding)."""
    fl = math.floor(x)
    r = x - fl
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and fl % 2 == 1):
        return fl + 1
    return fl


def state(m: HyperliquidMark) -> tuple:
    return tuple(getattr(m, n) for n in type(m).__slots__)


# ---------------------------------------------------------------------------------------------- one external perp


def test_it_follows_its_path_with_basis_and_lag_in_ticks():
    p = path([60_000.0, 60_010.0, 59_000.0, 58_000.0])  # one value a second
    flat = ExternalPerp("a", p, TICK)
    assert [flat.price(k * S) for k in range(4)] == [600_000, 600_100, 590_000, 580_000]
    assert flat.price(2 * S + 999_999) == 590_000  # the path's last value at or before t
    rich = ExternalPerp("b", p, TICK, basis_bps=10)  # 10 bp above: 60000 * 1.001 = 60060
    assert rich.price(0) == 600_600
    late = ExternalPerp("c", p, TICK, lag_us=2 * S)  # 2 s behind; before 2 s the path's start
    assert [late.price(k * S) for k in range(4)] == [600_000, 600_000, 600_000, 600_100]
    assert late.value == 600_100


def test_its_noise_is_its_own_streams_draw_per_cell_however_often_it_is_read():
    p = path([60_000.0] * 40)
    seed = np.random.SeedSequence(5)
    fine = ExternalPerp("a", p, TICK, noise_bps=20, interval_us=2 * S, rng=np.random.default_rng(seed))
    coarse = ExternalPerp("a", p, TICK, noise_bps=20, interval_us=2 * S, rng=np.random.default_rng(seed))
    z = np.random.default_rng(seed).standard_normal(20)  # cell k takes the k-th draw
    fine_prices = {t: fine.price(t) for t in range(0, 38 * S, 500_000)}  # read every 0.5 s
    for t in range(0, 38 * S, 7 * S):  # read every 7 s: skipped cells are still drawn
        expected = round(Fraction(60_000.0 * math.exp(20e-4 * float(z[t // (2 * S)]))) / Fraction(TICK))
        assert coarse.price(t) == fine_prices[t] == expected
    assert len(set(fine_prices.values())) > 10  # the noise moves the price
    with pytest.raises(InvalidInput, match="t_us"):
        coarse.price(0)  # time ran back into a cell already left


def test_the_model_gives_each_external_perp_its_own_named_stream():
    from abm.model.model import stream

    a = stream(1, "external-perp", "BTC-PERP", "binance_perp").standard_normal(3)
    assert not np.array_equal(a, stream(1, "external-perp", "BTC-PERP", "okx_perp").standard_normal(3))
    assert not np.array_equal(a, stream(1, "index-source", "BTC-PERP", "binance_perp").standard_normal(3))
    assert np.array_equal(a, stream(1, "external-perp", "BTC-PERP", "binance_perp").standard_normal(3))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 2_000), st.integers(1, 4)), min_size=1, max_size=7))
def test_their_median_is_the_index_rules_weighted_median_exactly(pairs):
    got = weighted_median_ticks(pairs)
    assert got == weighted_median([(Fraction(p), w) for p, w in pairs])
    assert type(got) is int or (type(got) is Fraction and got.denominator == 2)  # a whole tick or a half


def test_several_external_perps_take_their_weighted_median():
    p = path([100.0] * 5)
    srcs = [ExternalPerp("a", p, "1"), ExternalPerp("b", p, "1", basis_bps=100), ExternalPerp("c", p, "1", basis_bps=300)]
    assert ExternalPerps(srcs).price(0) == 101  # 100, 101, 103: the middle one
    two = ExternalPerps(srcs[:2])
    assert two.price(0) == Fraction(201, 2) and two.value == Fraction(201, 2)  # the mean of two, exact
    heavy = ExternalPerps([ExternalPerp("a", p, "1", weight=3), *srcs[1:]])
    assert heavy.price(0) == 100  # 3 of 5 weight at 100


# ---------------------------------------------------------------------------------------------- the mark's third leg


def test_the_mark_is_the_median_of_oracle_piece_book_and_external_perps_by_hand():
    """Constant inputs for 100 s so the EMA of mid - oracle is exactly 0: oracle piece 1000, book piece 1001."""
    for book_ema in (None, 30):
        def settled(book_ema: Optional[int] = book_ema) -> HyperliquidMark:
            m = HyperliquidMark(150, book_ema)
            for k in range(100):
                m.update(k * S, 1_000, 999, 1_001, 1_001, external_perp=1_000)
            return m

        assert settled().update(100 * S, 1_000, 999, 1_001, 1_001, external_perp=1_200) == 1_001  # (1000, 1001, 1200)
        assert settled().update(100 * S, 1_000, 999, 1_001, 1_001, external_perp=900) == 1_000  # (900, 1000, 1001)
        m = settled()
        assert m.update(100 * S, 1_000, 999, 1_001, 1_001, external_perp=Fraction(2001, 2)) == 1_000  # 1000.5: even
        assert m.components == (1_000, 1_001, Fraction(2001, 2))
    # a crashed book with an undisturbed world: the external perp decides; without it the mean of two
    m, mean, ema = HyperliquidMark(150, None), HyperliquidMark(150, None), HyperliquidMark(150, 30)
    for k in range(200):
        crash = k >= 100
        bid, ask = (899, 901) if crash else (999, 1_001)
        m.update(k * S, 1_000, bid, ask, None, external_perp=1_000)
        mean.update(k * S, 1_000, bid, ask, None)
        ema.update(k * S, 1_000, bid, ask, None)
    # the mark is the oracle piece, the middle one: it slides toward the book only as fast as the 150 s EMA lets it
    # (after 99 s at -100: EMA = -100 * (1 - e^(-99/150)) / (1 - e^(-199/150)) = -65.7, so 934)
    assert m.value == 934 == half_even(m.components[0]) and m.components[2] == 1_000
    assert mean.value == 917 and ema.value < 905  # half way between it and the book; or with the book


Step = tuple[int, int, Optional[int], int, Optional[int], bool, int, int]
step = st.tuples(st.integers(0, 5_000_000), st.integers(9_000, 11_000), st.one_of(st.none(), st.integers(-60, 60)),
                 st.integers(0, 40), st.one_of(st.none(), st.integers(-80, 80)), st.booleans(),
                 st.integers(-300, 300), st.integers(1, 2))  # external perp offset, denominator (half ticks)


@settings(max_examples=200, deadline=None)
@given(st.lists(step, min_size=1, max_size=30), st.sampled_from([None, 30]))
def test_the_mark_equals_an_independently_computed_median_update_by_update(steps, book_ema):
    """The pieces from a mark without the third leg (same inputs, same EMA state), the external perp added, the
    middle of the three by sorting, rounded half to even: that is the mark, on the integer and Fraction paths."""
    fast, exact, two = HyperliquidMark(150, book_ema), HyperliquidMark(150, book_ema), HyperliquidMark(150, book_ema)
    t = 0
    for dt, o, boff, spread, loff, no_ask, eoff, eden in steps:
        t += dt
        bid = None if boff is None else o + boff
        ask = None if no_ask else o + (boff or 0) + spread
        if bid is not None and ask is not None and bid > ask:
            ask = bid
        last = None if loff is None else o + loff
        ext = Fraction(2 * (o + eoff) + (eden - 1), eden)  # a whole tick or a half
        ext_arg = int(ext) if ext.denominator == 1 else ext
        a = fast.update(t, o, bid, ask, last, ext_arg)
        b = exact.update(t, Fraction(o), None if bid is None else Fraction(bid), None if ask is None else Fraction(ask),
                         None if last is None else Fraction(last), Fraction(ext))
        two.update(t, o, bid, ask, last)
        oracle_piece, book_piece = two.components[0], two.components[1]
        pieces = sorted(p for p in (oracle_piece, book_piece, ext) if p is not None)
        mid = pieces[1] if len(pieces) == 3 else (pieces[0] + pieces[1]) / 2
        assert a == b == max(1, half_even(mid))
        assert fast.components == exact.components == (oracle_piece, book_piece, ext)


def test_bad_external_perp_input_changes_nothing():
    m = HyperliquidMark()
    m.update(5 * S, 10_000, 10_009, 10_011, 10_010, external_perp=10_000)
    before = state(m)
    for bad, exc in ((0, InvalidPrice), (-3, InvalidPrice), (Fraction(-1, 2), InvalidPrice), ("10000", InvalidPrice),
                     (True, InvalidPrice), (float("nan"), InvalidPrice)):
        with pytest.raises(exc) as e:
            m.update(6 * S, 10_000, 10_009, 10_011, 10_010, external_perp=bad)
        assert e.value.field == "external_perp" and "external_perp: " in str(e.value)
        assert state(m) == before
    b = BinanceMark()
    with pytest.raises(InvalidInput, match="external_perp: .*Binance's mark has no external-perp input"):
        b.on_feed(0, 10_000, 9_999, 10_001, None, Fraction(0), 0, 8 * 3600 * S, 10_000)
    assert b.value is None


@pytest.mark.parametrize("kw, field", [
    (dict(weight=0), "external_perps.a.weight[0]"),
    (dict(weight=1.0), "external_perps.a.weight[0]"),
    (dict(basis_bps=-10_000), "external_perps.a.basis_bps"),
    (dict(basis_bps=float("inf")), "external_perps.a.basis_bps"),
    (dict(noise_bps=-1), "external_perps.a.noise_bps"),
    (dict(noise_bps=5), "external_perps.a.rng"),  # noise needs a stream
    (dict(lag_us=-1), "external_perps.a.lag_us"),
    (dict(lag_us=1.5), "external_perps.a.lag_us"),
    (dict(interval_us=0), "external_perps.a.interval_us"),
    (dict(tick_size="-0.1"), "tick_size"),
])
def test_bad_external_perp_parameters_are_refused_by_name(kw, field):
    args = dict(name="a", path=path([100.0, 100.0]), tick_size=TICK)
    args.update(kw)
    with pytest.raises(InvalidInput) as e:
        ExternalPerp(**args)
    assert e.value.field == field


def test_bad_external_perp_sets_are_refused_by_name():
    p = path([100.0, 100.0])
    for bad, words in (([], "non-empty"), ("a", "non-empty"), ([object()], "ExternalPerp"),
                       ([ExternalPerp("a", p, TICK), ExternalPerp("a", p, TICK)], "distinct names")):
        with pytest.raises(InvalidInput, match=words):
            ExternalPerps(bad)
    with pytest.raises(InvalidInput, match="external_perps.a.path"):
        ExternalPerp("a", [100.0], TICK)
    with pytest.raises(InvalidPrice, match="external_perps.a"):
        ExternalPerp("a", path([0.01, 0.01]), TICK).price(0)  # a price below half a tick
