"""Mark prices: the Hyperliquid and Binance medians on hand-computed cases, the EMA against its closed form,
the time-weighted moving average, missing book inputs, and bad input.

Prices are ticks; times are microseconds. Every expected value is worked out in the comment beside it.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from abm.errors import InvalidInput, InvalidMarketSpec, InvalidPrice
from abm.prices.mark import BinanceMark, HyperliquidMark, book_median

S = 1_000_000
HOUR = 3600 * S
TAU = 150.0


def state(m) -> tuple:
    out = []
    for name in type(m).__slots__:
        v = getattr(m, name)
        out.append(tuple(v) if not isinstance(v, (int, float, str, tuple, Fraction, type(None))) else v)
    return tuple(out)


# ---------------------------------------------------------------------------------------------- book median


def test_book_median_with_missing_inputs():
    F = Fraction
    assert book_median(F(100), F(102), F(105)) == 102  # last above the ask -> the ask
    assert book_median(F(100), F(102), F(101)) == 101  # inside -> the last trade
    assert book_median(F(100), F(102), F(90)) == 100
    assert book_median(None, F(102), F(105)) == 102  # no bids: min(ask, last)
    assert book_median(None, F(102), F(99)) == 99
    assert book_median(F(100), None, F(90)) == 100  # no asks: max(bid, last)
    assert book_median(F(100), F(102), None) == 101  # no trade yet: the mid
    assert book_median(None, F(102), None) == 102
    assert book_median(None, None, F(97)) == 97
    assert book_median(None, None, None) is None


# ---------------------------------------------------------------------------------------------- Hyperliquid


def MEAN() -> HyperliquidMark:
    """The mark with two inputs averaged (``two_inputs = "mean"``, the default), spelled out."""
    return HyperliquidMark(book_ema_window_s=None)


def test_hyperliquid_first_update_medians_and_half_even_rounding():
    m = MEAN()
    # EMA before any elapsed time = the latest mid - oracle = 10015 - 10000 = 15 -> oracle piece 10015
    # book piece = median(10010, 10020, 10030) = 10020; two pieces -> mean 10017.5 -> half to even 10018
    assert m.update(0, 10_000, 10_010, 10_020, 10_030) == 10_018
    assert m.value == 10_018 and m.components == (10_015, 10_020, None)
    # with an external perp at 10000: median(10015, 10020, 10000) = 10015
    assert MEAN().update(0, 10_000, 10_010, 10_020, 10_030, external_perp=10_000) == 10_015
    # external above both: median(10015, 10020, 10100) = 10020
    assert MEAN().update(0, 10_000, 10_010, 10_020, 10_030, external_perp=10_100) == 10_020
    # mid 10013 -> oracle piece 10013; book piece clamp(10020 into [10012, 10014]) = 10014: 10013.5 -> 10014
    assert MEAN().update(0, 10_000, 10_012, 10_014, 10_020) == 10_014
    # book piece = last 10012: mean(10013, 10012) = 10012.5 -> 10012 (half to even goes down here)
    assert MEAN().update(0, 10_000, 10_012, 10_014, 10_012) == 10_012


def test_hyperliquid_missing_book_inputs():
    # no bids ever: no mid, so the EMA is empty and the oracle piece is the oracle, 10000;
    # book piece min(ask 10020, last 10050) = 10020 -> mean 10010
    assert MEAN().update(0, 10_000, None, 10_020, 10_050) == 10_010
    # book piece min(10020, 10005) = 10005 -> mean 10002.5 -> 10002
    assert MEAN().update(0, 10_000, None, 10_020, 10_005) == 10_002
    # no asks: max(bid 9990, last 9950) = 9990 -> mean(10000, 9990) = 9995
    assert MEAN().update(0, 10_000, 9_990, None, 9_950) == 9_995
    # empty book, a last trade: mean(10000, 10100) = 10050
    assert MEAN().update(0, 10_000, None, None, 10_100) == 10_050
    # nothing at all: the oracle alone; with an external price, their mean (10000 + 10050) / 2 = 10025
    assert MEAN().update(0, 10_000, None, None, None) == 10_000
    assert MEAN().update(0, 10_000, None, None, None, external_perp=10_050) == 10_025
    # no trade yet: book piece = mid 10015 = oracle piece -> 10015
    m = MEAN()
    assert m.update(0, 10_000, 10_010, 10_020, None) == 10_015
    assert m.components == (10_015, 10_015, None)
    # fractional oracle and external prices are exact: oracle 10000.5, empty book -> round(10000.5) = 10000 (even)
    assert MEAN().update(0, Fraction(20_001, 2), None, None, None) == 10_000


def test_hyperliquid_ema_of_a_constant_is_the_constant():
    m = HyperliquidMark()
    # the oracle wanders, the mid stays 7 ticks above it, updates at irregular times
    for t_s, oracle in [(0, 10_000), (0.5, 10_003), (3, 9_990), (10, 10_050), (70, 10_020), (400, 9_800), (1000, 9_900)]:
        m.update(int(t_s * S), oracle, oracle + 6, oracle + 8, None)
        assert m.ema == pytest.approx(7, rel=1e-12)
        assert m.value == oracle + 7


def test_hyperliquid_ema_step_matches_closed_form_single_interval():
    a, b, T1, t = -10, 20, 300.0, 60.0
    m = HyperliquidMark()
    m.update(0, 10_000, 10_000 + a - 1, 10_000 + a + 1, None)  # x = a
    m.update(int(T1 * S), 10_000, 10_000 + b - 1, 10_000 + b + 1, None)  # x = b; credits a over T1
    # the new sample has no weight yet: num = a*T1, den = T1 -> exactly a
    assert m.ema == a
    m.update(int((T1 + t) * S), 10_000, 10_000 + b - 1, 10_000 + b + 1, None, external_perp=9_000)
    # num = a*T1*e^(-t/150) + b*t, den = T1*e^(-t/150) + t
    q = math.exp(-t / TAU)
    expected = (a * T1 * q + b * t) / (T1 * q + t)  # = (-3000*0.6703 + 1200) / (300*0.6703 + 60) ≈ -3.10
    assert m.ema == pytest.approx(expected, rel=1e-12)
    assert -3.2 < expected < -3.0
    # external 9000 below and book mid 10020 above -> the mark is the oracle piece, 10000 + ema -> 9997
    assert m.value == round(10_000 + expected) == 9_997


def test_hyperliquid_ema_step_matches_closed_form_many_updates():
    # x = a held for T1 = 300 s, then x = b, updated every h = 1 s for n = 60 updates.
    # After the step: num_n = a*T1*q^n + b*h*(1 + q + ... + q^(n-1)), den_n = T1*q^n + h*(same sum), q = e^(-h/150)
    a, b, T1, h, n = -10, 20, 300, 1, 60
    m = HyperliquidMark()
    m.update(0, 10_000, 10_000 + a - 1, 10_000 + a + 1, None)
    m.update(T1 * S, 10_000, 10_000 + b - 1, 10_000 + b + 1, None)
    for k in range(1, n + 1):
        m.update((T1 + k * h) * S, 10_000, 10_000 + b - 1, 10_000 + b + 1, None)
    q = math.exp(-h / TAU)
    g = h * (1 - q**n) / (1 - q)
    expected = (a * T1 * q**n + b * g) / (T1 * q**n + g)
    assert m.ema == pytest.approx(expected, rel=1e-12)
    # long after the step the EMA converges to b
    for k in range(1, 3001):
        m.update((T1 + n + k) * S, 10_000, 10_000 + b - 1, 10_000 + b + 1, None)
    assert m.ema == pytest.approx(b, abs=1e-6)


def test_hyperliquid_time_without_a_mid_adds_nothing():
    m = HyperliquidMark()
    m.update(0, 10_000, 10_009, 10_011, None)  # x = 10
    m.update(100 * S, 10_000, None, 10_011, None)  # credits 10 over 100 s; no mid from here
    assert m.ema == pytest.approx(10)
    m.update(200 * S, 10_000, 10_029, 10_031, None)  # 100 s without a mid: decay only; x = 30 from here
    assert m.ema == pytest.approx(10, rel=1e-12)
    m.update(260 * S, 10_000, 10_029, 10_031, None)
    # num = 1000*e^(-160/150) + 30*60, den = 100*e^(-160/150) + 60
    d = math.exp(-160 / TAU)
    assert m.ema == pytest.approx((1000 * d + 1800) / (100 * d + 60), rel=1e-12)


def test_hyperliquid_bad_input_changes_nothing():
    m = HyperliquidMark()
    m.update(5 * S, 10_000, 10_009, 10_011, 10_010)
    before = state(m)
    cases = [
        (dict(t_us=4 * S), InvalidInput, "t_us", "4000000"),  # time ran back
        (dict(t_us=6.0 * S), InvalidInput, "t_us", "6000000.0"),
        (dict(oracle=0), InvalidPrice, "oracle", "0"),
        (dict(oracle=10_000.0), InvalidPrice, "oracle", "10000.0"),
        (dict(oracle=None), InvalidPrice, "oracle", "None"),
        (dict(best_bid=10_012), InvalidPrice, "best_bid", "10012"),  # crossed with ask 10011
        (dict(best_ask=-1), InvalidPrice, "best_ask", "-1"),
        (dict(last_trade=True), InvalidPrice, "last_trade", "True"),
        (dict(external_perp="10000"), InvalidPrice, "external_perp", "'10000'"),
    ]
    for override, exc, field, shown in cases:
        kw = dict(t_us=6 * S, oracle=10_000, best_bid=10_009, best_ask=10_011, last_trade=10_010, external_perp=None)
        kw.update(override)
        with pytest.raises(exc) as e:
            m.update(**kw)
        assert e.value.field == field and f"{field}: " in str(e.value) and shown in str(e.value)
        assert state(m) == before
    for bad in (0, -1, "abc", float("nan"), True):
        with pytest.raises(InvalidMarketSpec) as e:
            HyperliquidMark(ema_window_s=bad)
        assert e.value.field == "ema_window_s" and repr(bad) in str(e.value)


# ---------------------------------------------------------------------------------------------- Binance


def test_binance_hand_cases():
    bp = Fraction(1, 10_000)
    # index 10000, mid 10020 (basis 20), last 10015, last funding 1 bp, 4 h of the 8 h interval left:
    # p1 = 10000 * (1 + 0.0001 * 1/2) = 10000.5; p2 = 10000 + 20 (first update: the latest basis); p3 = 10015
    m = BinanceMark()
    assert m.update(0, 10_000, 10_010, 10_030, 10_015, bp, 4 * HOUR) == 10_015
    assert m.components == (Fraction(20_001, 2), 10_020, 10_015)
    # no trade yet: mean(10000.5, 10020) = 10010.25 -> 10010
    assert BinanceMark().update(0, 10_000, 10_010, 10_030, None, bp, 4 * HOUR) == 10_010
    # funding piece in the middle: 30 bp with the whole interval left -> 10000 * 1.003 = 10030
    assert BinanceMark().update(0, 10_000, 10_010, 10_030, 10_040, 30 * bp, 8 * HOUR) == 10_030
    # at the payment (0 left) it is the index: median(10000, 10020, 10040) = 10020
    assert BinanceMark().update(0, 10_000, 10_010, 10_030, 10_040, 30 * bp, 0) == 10_020
    # a 1 h interval (after a capped settlement): 10 bp, 30 min left -> 10000 * (1 + 0.001/2) = 10005
    m = BinanceMark()
    assert m.update(0, 10_000, 10_010, 10_030, 10_000, 10 * bp, HOUR // 2, funding_interval_us=HOUR) == 10_005
    # negative funding: -10 bp over the full 8 h -> 9990; median(9990, 10020, 9900) = 9990
    assert BinanceMark().update(0, 10_000, 10_010, 10_030, 9_900, -10 * bp, 8 * HOUR) == 9_990


def test_binance_time_weighted_30s_average():
    # index 10000, no funding (p1 = 10000) and last 10100, so the mark is p2 = 10000 + MA whenever 0 <= MA <= 100
    m = BinanceMark()

    def up(t_s: int, basis: int) -> int:
        return m.update(t_s * S, 10_000, 10_000 + basis - 1, 10_000 + basis + 1, 10_100, 0, 0)

    assert up(0, 20) == 10_020  # nothing elapsed: the latest basis
    assert up(10, 40) == 10_020  # [0,10) at 20; the new 40 has no weight yet
    assert up(25, 0) == 10_032  # (20*10 + 40*15) / 25 = 32
    assert m.basis_ma() == 32
    assert up(40, 0) == 10_020  # window [10,40]: (40*15 + 0*15) / 30 = 20
    assert up(45, 0) == 10_013  # window [15,45]: [15,25) at 40 -> 400 / 30 = 40/3
    assert m.components[1] == Fraction(30_040, 3)
    assert up(100, 0) == 10_000  # window [70,100] entirely at 0


def test_binance_window_partly_without_a_mid():
    m = BinanceMark()
    m.update(0, 10_000, 10_019, 10_021, 10_100, 0, 0)  # basis 20
    m.update(10 * S, 10_000, None, 10_021, 10_100, 0, 0)  # [0,10) at 20; no mid from here
    assert m.update(20 * S, 10_000, None, 10_021, 10_100, 0, 0) == 10_020  # only [0,10) covered -> 20
    # window [20,50] has no mid at all and there is no latest basis -> p2 = index: median(10000, 10000, 10100)
    assert m.update(50 * S, 10_000, None, 10_021, 10_100, 0, 0) == 10_000
    assert m.basis_ma() is None


def test_binance_bad_input_changes_nothing():
    m = BinanceMark()
    m.update(5 * S, 10_000, 10_009, 10_011, 10_010, Fraction(1, 10_000), HOUR)
    before = state(m)
    cases = [
        (dict(t_us=4 * S), InvalidInput, "t_us", "4000000"),
        (dict(index=-3), InvalidPrice, "index", "-3"),
        (dict(best_bid=10_012), InvalidPrice, "best_bid", "10012"),
        (dict(last_funding_rate=float("nan")), InvalidInput, "last_funding_rate", "nan"),
        (dict(last_funding_rate="x"), InvalidInput, "last_funding_rate", "'x'"),
        (dict(time_to_funding_us=8 * HOUR + 1), InvalidInput, "time_to_funding_us", "28800000001"),
        (dict(time_to_funding_us=-1), InvalidInput, "time_to_funding_us", "-1"),
        (dict(time_to_funding_us=1.0), InvalidInput, "time_to_funding_us", "1.0"),
        (dict(funding_interval_us=0), InvalidInput, "funding_interval_us", "0"),
        (dict(funding_interval_us=HOUR, time_to_funding_us=2 * HOUR), InvalidInput, "time_to_funding_us", "7200000000"),
    ]
    for override, exc, field, shown in cases:
        kw = dict(
            t_us=6 * S, index=10_000, best_bid=10_009, best_ask=10_011, last_trade=10_010,
            last_funding_rate=Fraction(1, 10_000), time_to_funding_us=HOUR,
        )
        kw.update(override)
        with pytest.raises(exc) as e:
            m.update(**kw)
        assert e.value.field == field and f"{field}: " in str(e.value) and shown in str(e.value)
        assert state(m) == before
    for kw, field in [
        (dict(ma_window_s=0), "ma_window_s"),
        (dict(ma_window_s=1e-7), "ma_window_s"),  # not a whole number of microseconds
        (dict(funding_interval_s=-1), "funding_interval_s"),
        (dict(funding_interval_s="8h"), "funding_interval_s"),
    ]:
        with pytest.raises(InvalidMarketSpec) as e:
            BinanceMark(**kw)
        assert e.value.field == field and repr(kw[field]) in str(e.value)


def test_hyperliquid_two_inputs_take_the_books_ema_as_third():
    """Only oracle and book: median(oracle piece, book piece, 30 s EMA of the book piece)."""
    m = HyperliquidMark(book_ema_window_s=30)
    # first update: no time credited, the book's EMA is the book piece itself, so the median is the book
    assert m.update(0, 10_000, 10_010, 10_020, 10_030) == 10_020
    assert m.components == (10_015, 10_020, 10_020)


def test_hyperliquid_books_ema_follows_a_crashed_book_in_closed_form():
    """The book sits at 10000 for 300 s, then at 9000 (oracle 10000 throughout), updated every second. The
    book's EMA after n s is (10000*T1*q^n + 9000*g)/(T1*q^n + g), q = e^(-1/30), g = (1 - q^n)/(1 - q); the
    oracle piece lags more (150 s), so the mark is the EMA: it reaches the book within tens of seconds,
    where the mean of two stays half way to the oracle piece, which follows the book over minutes."""
    m = HyperliquidMark(book_ema_window_s=30)
    mean = HyperliquidMark(book_ema_window_s=None)
    T1 = 300
    for k in range(T1 + 1):
        m.update(k * S, 10_000, 9_999, 10_001, None)
        mean.update(k * S, 10_000, 9_999, 10_001, None)
    q = math.exp(-1 / 30)
    for n in range(1, 121):
        m.update((T1 + n) * S, 10_000, 8_999, 9_001, None)
        mean.update((T1 + n) * S, 10_000, 8_999, 9_001, None)
        # the sample at T1 + n has no weight yet: 10000 was held for T1 + 1 s, 9000 for n - 1 s
        ema = _book_ema(q, T1, n)
        assert m.components[2] == pytest.approx(ema, rel=1e-9)
        assert m.value == round(ema)
    assert m.value < 9_020 and mean.value > 9_200  # after 2 minutes: 0.2% above the book, against 2.3%


def _book_ema(q: float, T1: int, n: int) -> float:
    """The time-weighted EMA with 1 s updates: 10000 held over [0, T1 + 1) credited 1 s at a time, then 9000."""
    num = den = 0.0
    for k in range(T1 + n):  # every credited second, oldest first
        x = 10_000 if k < T1 + 1 else 9_000
        num = num * q + x
        den = den * q + 1
    return num / den


def test_the_profile_chooses_the_two_input_rule():
    from abm.scenarios.runner import run
    from abm.venues import load_venue

    assert load_venue().mark_model().book_tau_s is None  # "mean" for now (the catalogue's stories: see the profile)
    m = load_venue(overrides={"mark.two_inputs": "book_ema", "mark.book_ema_window_s": 20}).mark_model()
    assert m.book_tau_s == 20
    # in a run it is the mark the margin reads: the scripted slide no longer drags the mark off the book
    base = run("isolated_vs_cross", {"run.duration_s": 900}, seed=1, report=False).summary
    med = run("isolated_vs_cross", {"run.duration_s": 900, "venue.overrides": {"mark.two_inputs": "book_ema"}},
              seed=1, report=False).summary
    assert med["liquidated_notional"]["total"] < base["liquidated_notional"]["total"]
