"""Funding: premium, the sampled 8-hour rate with its dead zone and caps, the Binance interval switch, and
peer-to-peer payment on a real exchange (zero-sum up to a rounding that goes to the venue).

Every expected number is worked out by hand in the comment next to it. Rates are exact Fractions; 1 bp =
Fraction(1, 10_000). Market: BTC-PERP with tick 1, lot 0.001, 6 decimals -> multiplier 1000.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abm.errors import InvalidInput, InvalidMarketSpec, InvalidPrice, UnknownMarket
from abm.exchange import Exchange, conservation_gap
from abm.exchange.funding import FundingResult, pay_funding
from abm.market import MarketSpec
from abm.prices.funding import (
    HOUR_US,
    FundingConfig,
    FundingSchedule,
    book_premium,
    premium,
    rate_8h,
)

BP = Fraction(1, 10_000)
S = 1_000_000  # one second in us
BTC = "BTC-PERP"
ETH = "ETH-PERP"
FUND = 10**12


def feed(fs: FundingSchedule, premiums: list, start_us: int | None = None, step_us: int = 5 * S) -> int:
    """Sample ``premiums`` one per ``step_us`` from ``start_us`` (default: the next slot); returns the next time."""
    t = fs.next_sample_us() if start_us is None else start_us
    for p in premiums:
        fs.sample(t, p)
        t += step_us
    return t


def hl_hour(p: Fraction) -> Fraction:
    """One Hyperliquid hour with a constant premium: all 720 slots sampled, then settled."""
    fs = FundingSchedule(FundingConfig.hyperliquid())
    feed(fs, [p] * 720)
    assert fs.samples == 720
    return fs.settle(HOUR_US)


# ---------------------------------------------------------------------------------------------- premium


def test_premium_formula_by_hand():
    # rich book: (max(10010 - 10000, 0) - max(10000 - 10020, 0)) / 10000 = 10/10000
    assert premium(10010, 10020, 10000) == Fraction(1, 1000)
    # cheap book: (0 - (10000 - 9990)) / 10000 = -1/1000
    assert premium(9980, 9990, 10000) == Fraction(-1, 1000)
    # oracle between the impact prices: 0
    assert premium(9995, 10005, 10000) == 0
    # fractional impact prices stay exact: (10000 + 1/3 - 10000) / 10000 = 1/30000
    assert premium(Fraction(30001, 3), 10002, 10000) == Fraction(1, 30000)
    # a thin side contributes 0: no bid -> -(10000 - 9990)/10000; no ask -> (10010 - 10000)/10000
    assert premium(None, 9990, 10000) == Fraction(-1, 1000)
    assert premium(10010, None, 10000) == Fraction(1, 1000)
    assert premium(None, None, 10000) == 0
    assert isinstance(premium(10010, 10020, 10000), Fraction)


def test_book_premium_from_a_live_book():
    ex = Exchange()
    ex.list_market(MarketSpec(BTC, tick_size="1", lot_size="0.001"))
    mm = ex.open_account(FUND)
    ex.limit(mm, BTC, "buy", 10, 10_000)
    ex.limit(mm, BTC, "buy", 30, 9_990)
    ex.limit(mm, BTC, "sell", 10, 10_010)
    ex.limit(mm, BTC, "sell", 10, 10_020)
    view = ex.data(BTC)
    # impact notional 199,900,000 quote units = 199,900 tick·lots (multiplier 1000).
    # bids: 10 lots at 10000 = 100,000; the rest 99,900 at 9990 = 10 lots -> 199,900 / 20 = 9995.
    # asks: 10 at 10010 = 100,100; the rest 99,800 at 10020 -> impact ask > 10010 > oracle, so that leg is 0.
    # premium = (9995 - 9900) / 9900 = 95/9900
    assert book_premium(view, 199_900_000, 9_900) == Fraction(95, 9900)
    # notional 250,000 tick·lots: bids hold 100,000 + 30*9990 = 399,700 -> fill; asks hold 200,300 -> thin.
    # impact bid = 250,000 / (10 + 150,000/9990) lots; oracle 10,100 is above it -> first leg 0. The thin ask
    # side's impact price is the average of all it holds, (10*10010 + 10*10020) / 20 = 10015, below the oracle:
    # -(10100 - 10015) / 10100 = -85/10100
    assert book_premium(view, 250_000_000, 10_100) == Fraction(-85, 10_100)
    # under the "zero" rule the thin side adds nothing: 0
    assert book_premium(view, 250_000_000, 10_100, "zero") == 0
    # ... and with oracle 9,000 only the bid leg counts (the thin asks' 10015 is above the oracle)
    ib = Fraction(250_000) / (10 + Fraction(150_000, 9_990))
    assert book_premium(view, 250_000_000, 9_000) == (ib - 9_000) / 9_000
    # neither side fills 500,000 tick·lots: both take their depth's average, bids (10*10000 + 30*9990) / 40 =
    # 9992.5, asks 10015; oracle 10,050 is above the impact ask: -(10050 - 10015) / 10050
    assert book_premium(view, 500_000_000, 10_050) == Fraction(-35, 10_050)
    assert book_premium(view, 500_000_000, Fraction(20_100, 2)) == Fraction(-35, 10_050)  # the exact path agrees
    # ... and under "zero" nothing is measured: None (skip the sample)
    assert book_premium(view, 500_000_000, 10_000, "zero") is None
    with pytest.raises(InvalidInput, match="thin_side"):
        book_premium(view, 500_000_000, 10_000, "skip")


def test_book_premium_of_an_empty_side_is_that_sides_nothing():
    ex = Exchange()
    ex.list_market(MarketSpec(BTC, tick_size="1", lot_size="0.001"))
    mm = ex.open_account(FUND)
    ex.limit(mm, BTC, "sell", 10, 9_900)  # no bids at all; 10 lots of asks at 9,900 (99,000 tick·lots, thin)
    view = ex.data(BTC)
    assert book_premium(view, 200_000_000, 10_000) == Fraction(-100, 10_000)
    assert book_premium(view, 200_000_000, 10_000, "zero") is None


# ---------------------------------------------------------------------------------------------- the rate


def test_rate_8h_dead_zone_and_band_edges():
    i, b = BP, 5 * BP
    # inside [-4 bp, +6 bp] the rate is exactly the interest, 1 bp
    for p in (-4 * BP, -3 * BP, 0, BP, 3 * BP, Fraction(599, 100) * BP, 6 * BP):
        assert rate_8h(Fraction(p), i, b) == BP
    # just outside: 7 bp -> 7 + clamp(1 - 7 = -6, ±5) = 2 bp; -5 bp -> -5 + clamp(6) = 0; 30 bp -> 25 bp
    assert rate_8h(7 * BP, i, b) == 2 * BP
    assert rate_8h(-5 * BP, i, b) == 0
    assert rate_8h(30 * BP, i, b) == 25 * BP
    assert rate_8h(-30 * BP, i, b) == -25 * BP


@pytest.mark.parametrize(
    "p, hourly",
    [
        (-4 * BP, BP / 8),  # lower edge of the dead zone: F = 1 bp, paid 1/8 bp per hour
        (0, BP / 8),
        (6 * BP, BP / 8),  # upper edge
        (7 * BP, 2 * BP / 8),  # F = 7 - 5 = 2 bp
        (-5 * BP, 0),  # F = -5 + 5 = 0
        (-20 * BP, -15 * BP / 8),  # F = -20 + 5 = -15 bp
    ],
)
def test_hyperliquid_hour_constant_premium(p, hourly):
    assert hl_hour(Fraction(p)) == hourly


def test_hyperliquid_average_of_a_varying_series():
    fs = FundingSchedule(FundingConfig.hyperliquid())
    # alternating +10 bp and -2 bp: mean 4 bp, inside the dead zone -> F = 1 bp exactly, paid 1/80000
    feed(fs, [10 * BP, -2 * BP] * 360)
    assert fs.premium_average() == 4 * BP
    assert fs.settle(HOUR_US) == Fraction(1, 80_000)
    # next hour: 360 samples of 20 bp, then 360 of 40 bp: mean 30 bp -> F = 25 bp -> 25/8 bp = 1/3200
    feed(fs, [20 * BP] * 360 + [40 * BP] * 360)
    assert fs.settle(2 * HOUR_US) == Fraction(1, 3200)
    assert fs.last_rate == Fraction(1, 3200) and fs.last_capped is False


def test_hyperliquid_cap_4_percent_per_hour_and_no_interval_change():
    # premium 50%: F = 0.5 - 0.0005 = 0.4995; /8 = 0.0624375 > 0.04 -> 0.04
    assert hl_hour(Fraction(1, 2)) == Fraction(4, 100)
    assert hl_hour(Fraction(-1, 2)) == Fraction(-4, 100)  # F = -0.4995 -> -0.04
    # exactly at the cap: P = 0.3205 -> F = 0.32 -> 0.04 (reaching the cap counts as capped)
    fs = FundingSchedule(FundingConfig.hyperliquid())
    feed(fs, [Fraction(3205, 10_000)] * 720)
    assert fs.settle(HOUR_US) == Fraction(4, 100)
    assert fs.last_capped is True
    assert fs.next_payment_us() == 2 * HOUR_US  # Hyperliquid never switches interval
    # just under it: P = 0.3204 -> F = 0.3199 -> 0.0399875 paid in full
    feed(fs, [Fraction(3204, 10_000)] * 720)
    assert fs.settle(2 * HOUR_US) == Fraction(3199, 80_000)
    assert fs.last_capped is False


def test_predicted_rate_is_the_formula_on_the_average_so_far():
    fs = FundingSchedule(FundingConfig.hyperliquid())
    assert fs.premium_average() is None
    assert fs.predicted_rate() == BP / 8  # no samples: P = 0 -> interest only
    series = [20 * BP, 40 * BP, -6 * BP, 0, 100 * BP]
    # running means: 20, 30, 18, 13.5, 30.8 bp -> F = mean - 5 bp when mean > 6 bp
    expected_means = [20 * BP, 30 * BP, 18 * BP, Fraction(27, 2) * BP, Fraction(154, 5) * BP]
    t = 0
    for p, mean in zip(series, expected_means):
        fs.sample(t, p)
        t += 5 * S
        assert fs.premium_average() == mean
        assert fs.base_rate() == mean - 5 * BP
        assert fs.predicted_rate() == (mean - 5 * BP) / 8
    # skipped samples (thin book) advance the clock but are not averaged
    fs.sample(t, None)
    assert fs.samples == 5 and fs.skipped == 1 and fs.next_sample_us() == t + 5 * S
    assert fs.premium_average() == Fraction(154, 5) * BP
    # the settlement pays what was predicted and resets
    predicted = fs.predicted_rate()
    assert fs.settle(HOUR_US) == predicted
    assert fs.samples == 0 and fs.premium_average() is None and fs.predicted_rate() == BP / 8


def test_binance_cap_and_switch_to_one_hour_and_back_to_the_grid():
    cfg = FundingConfig.binance()  # BTC-like: cap 0.3% per payment, 8 h, 1 h after a capped settlement
    assert cfg.cap == Fraction(3, 1000) and cfg.payment_interval_us == 8 * HOUR_US
    fs = FundingSchedule(cfg)
    minute = 60 * S
    # 00:00-08:00, premium 40 bp (one sample a minute; empty slots are allowed):
    # F = 40 - 5 = 35 bp = 0.0035 >= 0.003 -> pays the cap, 0.003, and switches to 1 h
    feed(fs, [40 * BP] * 480, step_us=minute)
    assert fs.predicted_rate() == Fraction(3, 1000)
    assert fs.settle(8 * HOUR_US) == Fraction(3, 1000)
    assert fs.last_capped and fs.next_payment_us() == 9 * HOUR_US and fs.interval_us == HOUR_US
    # 08:00-09:00, still 40 bp: pays F/8 = 35/8 bp (under the cap), but F scaled to 8 h (35 bp) still
    # reaches the cap -> stays hourly
    feed(fs, [40 * BP] * 60, step_us=minute)
    assert fs.settle(9 * HOUR_US) == Fraction(35, 8) * BP
    assert fs.last_capped is False and fs.next_payment_us() == 10 * HOUR_US
    # 09:00-10:00, 20 bp: F = 15 bp -> pays 15/8 bp; 15 bp < 30 bp -> back to the 8 h grid at 16:00
    feed(fs, [20 * BP] * 60, step_us=minute)
    assert fs.settle(10 * HOUR_US) == Fraction(15, 8) * BP
    assert fs.next_payment_us() == 16 * HOUR_US and fs.interval_us == 6 * HOUR_US
    # 10:00-16:00, no samples: F = interest 1 bp, scaled to the 6 h interval -> 6/8 bp
    assert fs.settle(16 * HOUR_US) == Fraction(6, 8) * BP
    assert fs.next_payment_us() == 24 * HOUR_US
    # 16:00-24:00, exactly at the cap: P = 35 bp -> F = 30 bp = cap -> pays 0.003 and switches
    feed(fs, [35 * BP] * 8, step_us=HOUR_US)
    assert fs.settle(24 * HOUR_US) == Fraction(3, 1000)
    assert fs.last_capped and fs.next_payment_us() == 25 * HOUR_US


def test_binance_negative_cap_and_small_cap_contracts():
    fs = FundingSchedule(FundingConfig.binance())
    feed(fs, [-100 * BP] * 8, step_us=HOUR_US)  # F = -100 + 5 = -95 bp -> floor -0.3%
    assert fs.settle(8 * HOUR_US) == Fraction(-3, 1000)
    assert fs.next_payment_us() == 9 * HOUR_US
    # contracts of <= 25x max leverage: cap 3%; and an explicit cap wins
    assert FundingConfig.binance(max_leverage=25).cap == Fraction(3, 100)
    assert FundingConfig.binance(max_leverage=26).cap == Fraction(3, 1000)
    assert FundingConfig.binance(cap="0.02").cap == Fraction(2, 100)
    fs = FundingSchedule(FundingConfig.binance(max_leverage=20))
    feed(fs, [200 * BP] * 8, step_us=HOUR_US)  # F = 195 bp < 3% -> paid in full, stays on 8 h
    assert fs.settle(8 * HOUR_US) == 195 * BP
    assert fs.next_payment_us() == 16 * HOUR_US


def test_clocks_grid_and_order_of_events():
    fs = FundingSchedule(FundingConfig.hyperliquid(), start_us=1_000)
    assert fs.next_sample_us() == 1_000 and fs.next_payment_us() == 1_000 + HOUR_US
    fs.sample(1_000, 0)
    assert fs.next_sample_us() == 1_000 + 5 * S
    # a late sample keeps the grid: at 1000 + 12 s the next slot is 1000 + 15 s
    fs.sample(1_000 + 12 * S, 0)
    assert fs.next_sample_us() == 1_000 + 15 * S
    with pytest.raises(InvalidInput, match="t_us"):  # same slot twice
        fs.sample(1_000 + 14 * S, 0)
    # sampling at the due time needs a settlement first; settling early is refused
    with pytest.raises(InvalidInput, match="settle first"):
        fs.sample(1_000 + HOUR_US, 0)
    with pytest.raises(InvalidInput, match=r"t_us: must be >= the payment due"):
        fs.settle(HOUR_US)
    assert (fs.samples, fs.next_sample_us()) == (2, 1_000 + 15 * S)  # the refused calls changed nothing
    # a late settlement pays for the due interval and the next one starts at the due time
    fs.settle(1_000 + HOUR_US + 7 * S)
    assert fs.period_start_us == 1_000 + HOUR_US and fs.next_payment_us() == 1_000 + 2 * HOUR_US
    assert fs.last_settled_us == 1_000 + HOUR_US + 7 * S
    fs.sample(1_000 + HOUR_US, BP)  # the slot at the due time belongs to the new interval
    assert fs.samples == 1


# ---------------------------------------------------------------------------------------------- bad config


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(sample_interval_us=0), "sample_interval_us"),
        (dict(sample_interval_us=2.5), "sample_interval_us"),
        (dict(payment_interval_us=7 * S), "payment_interval_us"),  # not a multiple of 5 s
        (dict(payment_interval_us=-HOUR_US), "payment_interval_us"),
        (dict(rate_period_us=True), "rate_period_us"),
        (dict(interest="abc"), "interest"),
        (dict(interest=float("nan")), "interest"),
        (dict(band=Fraction(-1, 10_000)), "band"),
        (dict(cap=0), "cap"),
        (dict(cap=1), "cap"),
        (dict(capped_interval_us=HOUR_US), "capped_interval_us"),  # not shorter than the 1 h payment interval
        (dict(capped_interval_us=7 * S, payment_interval_us=HOUR_US), "capped_interval_us"),
        (dict(venue=""), "venue"),
    ],
)
def test_bad_config_names_field_and_value(kwargs, field):
    with pytest.raises(InvalidMarketSpec) as e:
        FundingConfig(**kwargs)
    assert e.value.field == field
    assert field in str(e.value) and repr(kwargs[field]) in str(e.value)


def test_bad_inputs_to_schedule_and_premium():
    with pytest.raises(InvalidMarketSpec, match="max_leverage: must be an integer >= 1, got 0"):
        FundingConfig.binance(max_leverage=0)
    with pytest.raises(InvalidInput, match="config"):
        FundingSchedule("hyperliquid")  # type: ignore[arg-type]
    fs = FundingSchedule(FundingConfig.hyperliquid())
    with pytest.raises(InvalidInput, match=r"premium: .*got 'x'"):
        fs.sample(0, "x")
    with pytest.raises(InvalidInput, match=r"premium: must be > -1 .*got Fraction\(-1, 1\)"):
        fs.sample(0, Fraction(-1))
    with pytest.raises(InvalidInput, match=r"t_us: .*got 1.5"):
        fs.sample(1.5, 0)  # type: ignore[arg-type]
    assert fs.samples == 0 and fs.next_sample_us() == 0
    with pytest.raises(InvalidPrice, match=r"oracle: must be > 0 ticks, got 0"):
        premium(10, 11, 0)
    with pytest.raises(InvalidPrice, match=r"impact_bid: must not exceed impact_ask .*got 12"):
        premium(12, 11, 10)
    with pytest.raises(InvalidPrice, match=r"impact_ask: .*got 10.5"):
        premium(10, 10.5, 10)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- payment


def build_exchange() -> tuple[Exchange, dict[str, int]]:
    """BTC: A cross +3, B isolated +2, C cross -4, D isolated -1 (all at 10000); G opened and closed (flat).
    ETH: E +5 / F -5 (must not be touched by BTC funding)."""
    ex = Exchange()
    ex.list_market(MarketSpec(BTC, tick_size="1", lot_size="0.001"))  # multiplier 1000
    ex.list_market(MarketSpec(ETH, tick_size="0.01", lot_size="0.01"))  # multiplier 100
    ids = {n: ex.open_account(FUND) for n in "ABCDEFG"}
    for n in "BD":
        ex.set_margin_mode(ids[n], BTC, "isolated")
        ex.transfer_isolated_margin(ids[n], BTC, 10**9)
    ex.limit(ids["C"], BTC, "sell", 4, 10_000)
    assert ex.limit(ids["A"], BTC, "buy", 3, 10_000).filled == 3
    assert ex.limit(ids["B"], BTC, "buy", 1, 10_000).filled == 1
    ex.limit(ids["D"], BTC, "sell", 1, 10_000)
    assert ex.limit(ids["B"], BTC, "buy", 1, 10_000).filled == 1
    ex.limit(ids["G"], BTC, "sell", 2, 10_000)
    assert ex.limit(ids["A"], BTC, "buy", 2, 10_000).filled == 2
    ex.limit(ids["A"], BTC, "sell", 2, 10_000)
    assert ex.limit(ids["G"], BTC, "buy", 2, 10_000).filled == 2  # G is flat again, A back to +3
    ex.limit(ids["F"], ETH, "sell", 5, 200_000)
    assert ex.limit(ids["E"], ETH, "buy", 5, 200_000).filled == 5
    sizes = {n: ex.position(ids[n], BTC).size for n in "ABCDG"}
    assert sizes == {"A": 3, "B": 2, "C": -4, "D": -1, "G": 0}
    ex.check_conservation()
    return ex, ids


def money(ex: Exchange, ids: dict[str, int]) -> dict[str, tuple[int, int, int]]:
    """(balance, BTC margin, BTC funding) per account."""
    out = {}
    for n, aid in ids.items():
        a = ex.account(aid)
        p = a.positions.get(ex.market(BTC).index)
        out[n] = (a.balance, p.margin if p else 0, p.funding if p else 0)
    return out


def test_pay_funding_positive_rate_longs_pay_and_rounding_favours_the_venue():
    ex, ids = build_exchange()
    before = money(ex, ids)
    eth_before = {n: (ex.account(ids[n]).balance, ex.position(ids[n], ETH)) for n in "EF"}
    # rate 1/80000 (1 bp per 8 h paid hourly), oracle 10001: owed = size * 10001 * 1000 / 80000 = size * 125.0125
    # A +3: owes 375.0375 -> pays 376 (ceil);  B +2: 250.025 -> pays 251
    # C -4: owed 500.05  -> receives 500 (floor); D -1: 125.0125 -> receives 125
    # paid 627, received 625, rounding 2 -> funding_rounding ledger
    r = pay_funding(ex, BTC, Fraction(1, 80_000), 10_001)
    assert r == FundingResult(paid=627, received=625, rounding=2, accounts=4, touched=tuple(ids[n] for n in "ABCD"))
    after = money(ex, ids)
    A, B, C, D = (before[n] for n in "ABCD")
    assert after["A"] == (A[0] - 376, A[1], -376)  # cross: the balance
    assert after["B"] == (B[0], B[1] - 251, -251)  # isolated: the position margin
    assert after["C"] == (C[0] + 500, C[1], 500)
    assert after["D"] == (D[0], D[1] + 125, 125)
    assert after["G"] == before["G"]  # flat: untouched
    assert {n: (ex.account(ids[n]).balance, ex.position(ids[n], ETH)) for n in "EF"} == eth_before
    assert ex.ledgers["funding_rounding"] == 2
    assert conservation_gap(ex) == 0
    ex.check_conservation()


def test_pay_funding_negative_rate_shorts_pay():
    ex, ids = build_exchange()
    before = money(ex, ids)
    # rate -1/80000: A receives floor(375.0375) = 375, B floor(250.025) = 250;
    # C pays ceil(500.05) = 501, D ceil(125.0125) = 126 -> paid 627, received 625, rounding 2
    r = pay_funding(ex, BTC, Fraction(-1, 80_000), 10_001)
    assert (r.paid, r.received, r.rounding, r.accounts) == (627, 625, 2, 4)
    after = money(ex, ids)
    assert after["A"][0] - before["A"][0] == 375 and after["A"][2] == 375
    assert after["B"][1] - before["B"][1] == 250 and after["B"][2] == 250
    assert after["C"][0] - before["C"][0] == -501 and after["C"][2] == -501
    assert after["D"][1] - before["D"][1] == -126 and after["D"][2] == -126
    # a second payment accumulates in Position.funding and in the ledger
    pay_funding(ex, BTC, Fraction(-1, 80_000), 10_001)
    assert money(ex, ids)["A"][2] == 750 and ex.ledgers["funding_rounding"] == 4
    ex.check_conservation()


def test_pay_funding_exact_amounts_need_no_rounding_and_zero_rate_touches_nothing():
    ex, ids = build_exchange()
    # rate 1/1000, oracle 10000: owed = size * 10000 * 1000 / 1000 = size * 10000, exact
    r = pay_funding(ex, BTC, Fraction(1, 1000), 10_000)
    assert (r.paid, r.received, r.rounding) == (50_000, 50_000, 0)
    before = money(ex, ids)
    r = pay_funding(ex, BTC, 0, 10_000)
    assert r == FundingResult(0, 0, 0, 0, ())
    assert money(ex, ids) == before
    # a receiver owed less than one unit gets 0 and is not touched; its payer still pays 1.
    # rate 1/10^9, oracle 1: A owes 3*1000/1e9 -> pays 1, B pays 1, C and D receive floor(<1) = 0
    r = pay_funding(ex, BTC, Fraction(1, 10**9), 1)
    assert r == FundingResult(2, 0, 2, 2, (ids["A"], ids["B"]))
    ex.check_conservation()


def test_pay_funding_bad_input_changes_nothing():
    ex, ids = build_exchange()
    before = (money(ex, ids), dict(ex.ledgers.balances))
    cases = [
        (dict(symbol="DOGE"), UnknownMarket, "market", "'DOGE'"),
        (dict(rate=0.0001), InvalidInput, "rate", "0.0001"),
        (dict(rate=True), InvalidInput, "rate", "True"),
        (dict(rate=Fraction(1)), InvalidInput, "rate", "Fraction(1, 1)"),
        (dict(oracle_ticks=0), InvalidPrice, "oracle_ticks", "0"),
        (dict(oracle_ticks=10_000.0), InvalidPrice, "oracle_ticks", "10000.0"),
    ]
    for override, exc, field, shown in cases:
        kw = dict(symbol=BTC, rate=Fraction(1, 80_000), oracle_ticks=10_000)
        kw.update(override)
        with pytest.raises(exc) as e:
            pay_funding(ex, kw["symbol"], kw["rate"], kw["oracle_ticks"])
        assert e.value.field == field and shown in str(e.value)
        assert (money(ex, ids), dict(ex.ledgers.balances)) == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(-50, 50).filter(bool), min_size=1, max_size=8),
    isolated=st.lists(st.booleans(), min_size=9, max_size=9),
    num=st.integers(-10**6, 10**6),
    den=st.integers(1, 10**7),
    price=st.integers(1, 10**7),
)
def test_pay_funding_is_zero_sum_plus_rounding(sizes, isolated, num, den, price):
    rate = Fraction(num, den)
    if not -1 < rate < 1:
        rate = Fraction(num % den, den + 1)
    ex = Exchange()
    ex.list_market(MarketSpec(BTC, tick_size="1", lot_size="0.001"))
    mult = 1000
    maker = ex.open_account(FUND)  # the counterparty of everyone: holds -sum(sizes)
    traders = [ex.open_account(FUND) for _ in sizes]
    for aid, iso in zip([maker] + traders, isolated):
        if iso:
            ex.set_margin_mode(aid, BTC, "isolated")
    for aid, s in zip(traders, sizes):
        ex.limit(maker, BTC, "sell" if s > 0 else "buy", abs(s), 5_000)
        assert ex.limit(aid, BTC, "buy" if s > 0 else "sell", abs(s), 5_000).filled == abs(s)
    holders = {aid: ex.account(aid).positions[0] for aid in [maker] + traders if ex.account(aid).positions[0].size}
    before = {aid: (ex.account(aid).balance, p.margin) for aid, p in holders.items()}
    r = pay_funding(ex, BTC, rate, price)
    paid = received = 0
    for aid, p in holders.items():
        exact = p.size * price * mult * rate  # owed (> 0 pays)
        delta = (ex.account(aid).balance - before[aid][0]) + (p.margin - before[aid][1])
        if exact > 0:
            assert delta == -math.ceil(exact) and p.funding == delta
            paid -= delta
        else:
            assert delta == math.floor(-exact) and p.funding == delta
            received += delta
        assert (ex.account(aid).balance == before[aid][0]) == (p.mode != 0 or delta == 0)
    assert (r.paid, r.received) == (paid, received)
    assert r.paid == r.received + r.rounding
    assert 0 <= r.rounding < len(holders)
    assert ex.ledgers["funding_rounding"] == r.rounding
    assert list(r.touched) == sorted(r.touched)
    ex.check_conservation()


def test_the_profiles_thin_side_rule_reaches_the_feed_and_a_bad_one_is_refused_by_name():
    from abm.model import MarketModel
    from abm.model.scenario import InvalidScenario
    from tests.support import scenario

    assert {f.thin_side for f in MarketModel(scenario(duration_s=5.0)).feeds.values()} == {"available_depth"}
    zero = scenario(duration_s=5.0, venue_overrides={"funding.thin_side": "zero"})
    assert {f.thin_side for f in MarketModel(zero).feeds.values()} == {"zero"}
    with pytest.raises(InvalidScenario, match=r"funding\.thin_side.*available_depth.*zero"):
        MarketModel(scenario(duration_s=5.0, venue_overrides={"funding.thin_side": "skip"}))
