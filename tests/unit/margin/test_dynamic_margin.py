"""Dynamic margin: the factor's closed forms, liquidation at the predicted price under a vol spike, the trigger
index after factor changes (checked against a brute-force scan), and bad input."""

from __future__ import annotations

import random
from fractions import Fraction
from math import floor, isqrt

import pytest

from abm import Exchange, MarketSpec
from abm.errors import InvalidInput
from abm.margin.dynamic import PPM, DynamicMarginSpec, OpenInterestMargin, RealizedVolMargin
from abm.margin.engine import MAX_EPOCHS
from abm.margin.params import LiquidationConfig, RiskParams
from abm.margin.tiers import hyperliquid_tiers
from abm.units import SECONDS_PER_YEAR
from abm.venues import load_venue
from abm.venues.schema import InvalidProfile

USDC = 10**6
S = 1_000_000  # µs per second
SPEC = dict(tick_size="0.01", lot_size="0.001", maker_fee_bps=0, taker_fee_bps=0)
TIERS = hyperliquid_tiers([(0, 40), (150_000_000 * USDC, 20)])  # band 0: mmr 1/80


def vol_spec(window_s: int = 20, update_s: int = 10, ref: Fraction = Fraction(20), most: int = 10) -> DynamicMarginSpec:
    return DynamicMarginSpec("realized_vol", update_s * S, most * PPM, window_us=window_s * S, reference_vol=ref)


def closed_form_ppm(marks: list[int], window_s: int, ref: Fraction) -> int:
    """floor(1e6 x sqrt(sum of squared simple returns x year / window) / ref), from exact Fractions."""
    var = sum(Fraction(b - a, a) ** 2 for a, b in zip(marks, marks[1:])) * SECONDS_PER_YEAR / window_s
    return isqrt(floor(var / ref**2 * 10**12))


def test_realized_vol_factor_matches_the_closed_form_and_samples_only_at_the_cadence():
    m = RealizedVolMargin(vol_spec(window_s=60, update_s=10, ref=Fraction(100), most=50))
    path = [1000, 1250] * 4  # returns +1/4 and -1/5
    seen = []
    for k, mark in enumerate(path):
        seen.append(m.observe((k + 1) * 10 * S, mark, 0, 1))
        assert m.observe((k + 1) * 10 * S + 5 * S, 1, 0, 1) is None  # off the sample instant: not sampled
    # six returns fill the window only at the seventh sample; the factor is 1 until then
    assert seen[:6] == [None] * 6
    want = closed_form_ppm(path[1:8], 60, Fraction(100))
    assert want == isqrt(floor(Fraction(3 * 41, 400) * SECONDS_PER_YEAR / 60 / 100**2 * 10**12))  # 4.0202... x
    assert seen[6] == want == m.factor_ppm and 4_000_000 < want < 4_100_000
    # the window rolls: one more return of the same size leaves the sum (and the factor) as it was
    assert m.observe(9 * 10 * S, 1000, 0, 1) is None and m.factor_ppm == want


def test_realized_vol_factor_is_clamped_to_one_and_to_the_maximum():
    calm = RealizedVolMargin(vol_spec(ref=Fraction(1, 2)))
    for k, mark in enumerate([100_000, 100_001, 100_000, 100_001]):
        calm.observe(k * 10 * S, mark, 0, 1)
    assert calm.factor_ppm == PPM  # ~3.5 %/yr realized: below the reference, the static tiers stand
    wild = RealizedVolMargin(vol_spec(ref=Fraction(1, 2), most=3))
    for k, mark in enumerate([1000, 1250, 1000]):
        wild.observe(k * 10 * S, mark, 0, 1)
    assert wild.factor_ppm == 3 * PPM


def test_open_interest_factor_matches_the_closed_form():
    m = OpenInterestMargin(DynamicMarginSpec("open_interest", 10 * S, 2 * PPM, reference_units=1_000 * USDC))
    assert m.observe(0, 10_000, 5_000, 10) is None  # 5,000 lots x 100.00 = 500 USDC: below the reference
    assert m.observe(10 * S, 10_000, 15_000, 10) == 1_500_000  # 1,500 USDC / 1,000
    assert m.observe(15 * S, 10_000, 150_000, 10) is None  # not an update instant
    assert m.observe(20 * S, 10_001, 15_000, 10) == 1_500_150  # floor(1_500.15 / 1_000 ppm)
    assert m.observe(30 * S, 10_000, 10**6, 10) == 2 * PPM  # clamped


def venue(dynamic: DynamicMarginSpec | None) -> Exchange:
    ex = Exchange()
    ex.list_market(MarketSpec("BTC", **SPEC), RiskParams(TIERS, dynamic=dynamic))
    ex.set_mark("BTC", 10_000)
    return ex


def isolated_long(ex: Exchange, lots: int = 1_000, lev: int = 10) -> tuple[int, int]:
    t = ex.open_account(1_000 * USDC)
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", lev)
    mm = ex.open_account(10_000_000 * USDC)
    ex.limit(mm, "BTC", "sell", lots, 10_000)
    assert ex.market_order(t, "BTC", "buy", lots).filled == lots
    for k in range(50):
        ex.limit(mm, "BTC", "buy", 1_000, 9_990 - 10 * k)
    return t, mm


def test_a_position_safe_under_static_tiers_is_liquidated_under_a_vol_spike_at_the_predicted_price():
    path = [(0, 10_000), (10, 10_400), (20, 10_000)]  # a 4 % swing and back: ~70x the reference vol of 20
    factor = Fraction(closed_form_ppm([m for _, m in path], 20, Fraction(20)), PPM)
    assert 3 < factor < 4
    # isolated long, 10x: margin 10 USDC, cost 100 USDC; liquidated where margin - cost + q P = f (q P / 80):
    # P = (cost - margin) / (q (1 - f / 80)) in ticks, q = 1,000 lots x 10 quote units
    predicted = Fraction(90 * USDC) / (1_000 * 10 * (1 - factor / 80))
    static_ex, dyn_ex = venue(None), venue(vol_spec())
    (st, _), (dt, _) = isolated_long(static_ex), isolated_long(dyn_ex)
    for ex in (static_ex, dyn_ex):
        for t_s, mark in path:
            ex.now = t_s * S
            ex.set_mark("BTC", mark)
    assert dyn_ex.risk.factors[0] == factor * PPM
    assert dyn_ex.liquidation_price(dt, "BTC") == predicted
    assert static_ex.liquidation_price(st, "BTC") == Fraction(720_000, 79)  # 91.14: far below
    # the dynamic MM is f x the static one at the same mark
    assert (dyn_ex.margin_summary(dt)["BTC"]["maintenance"]  # type: ignore[index]
            == factor * static_ex.margin_summary(st)["BTC"]["maintenance"])  # type: ignore[index]
    for ex in (static_ex, dyn_ex):
        ex.now = 21 * S  # between updates: the factor stands
        ex.set_mark("BTC", floor(predicted) + 1)
    assert dyn_ex.position(dt, "BTC").size == 1_000 and len(dyn_ex.liquidations) == 0
    for ex in (static_ex, dyn_ex):
        ex.set_mark("BTC", floor(predicted))
    assert dyn_ex.position(dt, "BTC").size == 0
    (ev,) = dyn_ex.liquidations.rows()
    assert ev["mark"] == floor(predicted) and ev["account"] == dt
    assert static_ex.position(st, "BTC").size == 1_000 and len(static_ex.liquidations) == 0
    for ex in (static_ex, dyn_ex):
        ex.check_conservation()


def test_initial_margin_scales_with_the_factor():
    ex = venue(DynamicMarginSpec("open_interest", 10**12, 4 * PPM, reference_units=1 * USDC))
    ex.risk.set_factor(0, 2_500_000)
    t = ex.open_account(1_000 * USDC)
    ex.set_leverage(t, "BTC", 10)
    mm = ex.open_account(10_000_000 * USDC)
    ex.limit(mm, "BTC", "sell", 1_000, 10_000)
    before = ex.margin_summary(t)["free_collateral"]
    ex.market_order(t, "BTC", "buy", 1_000)
    assert before - ex.margin_summary(t)["free_collateral"] == 25 * USDC  # 2.5 x 100 USDC / 10


def test_trigger_index_after_factor_changes_misses_no_liquidatable_unit():
    """Factor changes up and down (more than MAX_EPOCHS of them), isolated and cross accounts over two markets, a
    random mark walk: after every mark update no unit is left liquidatable (brute force over every account)."""
    rng = random.Random(7)
    ex = Exchange()
    spec = DynamicMarginSpec("open_interest", 10**15, 20 * PPM, reference_units=1 * USDC)  # factor set by hand
    for s in ("A", "B"):
        ex.list_market(MarketSpec(s, **SPEC), RiskParams(TIERS, liquidation=LiquidationConfig(), dynamic=spec))
        ex.set_mark(s, 10_000)
    ex.create_backstop_vault(100_000_000 * USDC)
    mm = ex.open_account(10**9 * USDC)
    units = []
    for k in range(120):
        t = ex.open_account(rng.randint(40, 400) * USDC)
        iso = k % 3 == 0
        for s in ("A", "B") if k % 3 == 2 else (rng.choice("AB"),):
            side = rng.choice(("buy", "sell"))
            lots = rng.randint(1, 8) * 1_000
            if iso:
                ex.set_margin_mode(t, s, "isolated")
            ex.set_leverage(t, s, rng.randint(2, 30))
            ex.limit(mm, s, "sell" if side == "buy" else "buy", lots, 10_000)
            try:
                ex.market_order(t, s, side, lots)
            except InvalidInput:
                ex.cancel_all(mm)
            units.append((t, s))
        ex.cancel_all(mm)
    marks = {"A": 10_000, "B": 10_000}
    changes = 0
    for step in range(400):
        if step % 25 == 0:
            for i, s in enumerate("AB"):  # as set_mark does it: the new factor, then the market's check
                ex.risk.set_factor(i, rng.choice((PPM, 1_500_000, 2_000_000, 3_000_000, 4_000_000, 6_000_000)))
                ex.set_mark(s, marks[s])
                changes += 1
        s = rng.choice("AB")
        marks[s] = max(5_000, min(15_000, marks[s] + rng.randint(-60, 60)))
        ex.set_mark(s, marks[s])
        eng = ex.risk
        for aid, acct in ex.accounts.items():
            if aid in (eng.vault, mm):
                continue
            for unit in {eng.unit_of(aid, i) for i in acct.positions}:
                if unit not in eng.cooling:
                    assert not eng.liquidatable(acct, unit), (step, unit, eng.factors)
    assert changes > 2 * MAX_EPOCHS and len(ex.liquidations) > 0
    assert all(len(ex.risk._epochs[i]) <= MAX_EPOCHS for i in (0, 1))
    ex.check_conservation()


@pytest.mark.parametrize("dynamic, field", [
    ({"kind": "vol", "window_s": 60, "reference_vol": 0.5, "max_multiplier": 3}, "margin.dynamic"),
    ({"kind": "realized_vol", "window_s": 60, "reference_vol": 0, "max_multiplier": 3}, "reference_vol"),
    ({"kind": "realized_vol", "window_s": 60, "reference_vol": 0.5, "max_multiplier": 0.5}, "max_multiplier"),
    ({"kind": "realized_vol", "window_s": 65, "reference_vol": 0.5, "max_multiplier": 3}, "window_s"),
    ({"kind": "realized_vol", "window_s": 60, "reference_vol": 0.5, "max_multiplier": 3, "windw": 1}, "windw"),
    ({"kind": "realized_vol", "window_s": 60, "reference_vol": 0.5, "max_multiplier": 200}, "max_multiplier"),
    ({"kind": "open_interest", "max_multiplier": 2}, "reference_usdc"),
])
def test_bad_dynamic_margin_is_refused_naming_the_field(dynamic, field):
    with pytest.raises(InvalidProfile) as e:
        load_venue("hyperliquid", overrides={"margin.dynamic": dynamic})
    assert field in str(e.value)


def test_bad_spec_and_factor_are_refused():
    with pytest.raises(InvalidInput, match="update_s"):
        DynamicMarginSpec("realized_vol", 0, 2 * PPM, window_us=S, reference_vol=Fraction(1))
    with pytest.raises(InvalidInput, match="margin.dynamic.kind"):
        DynamicMarginSpec("nope", S, 2 * PPM)
    with pytest.raises(InvalidInput, match="max_multiplier"):
        RiskParams(TIERS, dynamic=DynamicMarginSpec("open_interest", S, 80 * PPM, reference_units=1))
    with pytest.raises(InvalidInput, match="factor"):
        TIERS.scaled(Fraction(1, 2))


def test_profile_dynamic_builds_integers_and_static_profiles_record_nothing():
    v = load_venue("hyperliquid", overrides={"margin.dynamic": {"kind": "realized_vol", "window_s": 300,
                                                                "reference_vol": 0.5, "max_multiplier": 3}})
    d = v.risk_params("btc").dynamic
    assert d is not None and (d.kind, d.update_us, d.window_us, d.reference_vol, d.max_ppm) == (
        "realized_vol", 10 * S, 300 * S, Fraction(1, 2), 3 * PPM)
    assert "dynamic" in v.profile.to_dict()["margin"]
    assert "dynamic" not in load_venue("hyperliquid").profile.to_dict()["margin"]
    assert load_venue("hyperliquid").risk_params("btc").dynamic is None
