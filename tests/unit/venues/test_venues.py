"""Venue profiles: the shipped numbers equal the reference, overrides are exact, errors are one clear line each."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from pydantic import ValidationError

from abm import Exchange
from abm.errors import InvalidInput
from abm.margin.params import LiquidationConfig, RiskParams, binance_liquidation
from abm.market.spec import MarketSpec
from abm.prices import IndexPath, Oracle, Scripted
from abm.prices.funding import EIGHT_HOURS_US, HOUR_US, FundingConfig, FundingSchedule
from abm.prices.mark import BinanceMark, HyperliquidMark
from abm.venues import DEFAULT_VENUE, InvalidProfile, Venue, load_venue

USDC = 10**6
M = 10**6 * USDC  # one million USDC in quote units (quote_decimals 6)


@pytest.fixture(scope="module")
def hl() -> Venue:
    return load_venue("hyperliquid")


@pytest.fixture(scope="module")
def bn() -> Venue:
    return load_venue("binance")


def flat(d: object, prefix: str = "") -> dict[str, object]:
    """Leaf paths of plain data, for comparing two profiles key by key."""
    if isinstance(d, dict):
        out: dict[str, object] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}.{k}" if prefix else k))
        return out
    if isinstance(d, list):
        out = {}
        for i, v in enumerate(d):
            out.update(flat(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: d}


def changed(a: Venue, b: Venue) -> dict[str, tuple[object, object]]:
    fa, fb = flat(a.to_dict()), flat(b.to_dict())
    return {k: (fa.get(k), fb.get(k)) for k in sorted(fa.keys() | fb.keys()) if fa.get(k) != fb.get(k)}


def problems_of(exc: pytest.ExceptionInfo[InvalidProfile]) -> list[str]:
    return list(exc.value.lines)


# ------------------------------------------------------------------------------------- Hyperliquid numbers


def test_default_venue_is_hyperliquid(hl: Venue) -> None:
    assert DEFAULT_VENUE == "hyperliquid"
    assert load_venue() == hl and hl.name == "hyperliquid"
    assert hl.tier_classes == ("btc", "eth", "sol", "mid", "small")


def test_hyperliquid_fees_and_order_limits(hl: Venue) -> None:
    spec = hl.market_spec("BTC", tick_size="0.1", lot_size="0.001")
    assert isinstance(spec, MarketSpec)
    assert (spec.maker_fee_bps, spec.taker_fee_bps) == (Decimal("1.5"), Decimal("4.5"))
    assert (spec.maker_ppm, spec.taker_ppm) == (150, 450)
    assert spec.quote_decimals == 6 and spec.multiplier == 100 and spec.stp == "cancel_resting"
    lim = hl.order_limits("btc")
    assert lim.min_order_value == 10 * USDC
    # max market order value by the market's max leverage: 40x and 20x are in 20-49x -> 1M; 10x -> 500k
    assert lim.max_market_order_value == 1 * M and lim.max_position_notional is None
    assert hl.order_limits("sol").max_market_order_value == 1 * M
    assert hl.order_limits("mid").max_market_order_value == 500_000 * USDC
    # quote_decimals changes the units, not the amounts
    assert hl.order_limits("btc", quote_decimals=2).min_order_value == 1_000


@pytest.mark.parametrize(
    "cls, cut_musd, low, high",
    [("btc", 150, 40, 20), ("eth", 100, 25, 15), ("sol", 70, 20, 10), ("mid", 20, 10, 5), ("small", 3, 10, 5)],
)
def test_hyperliquid_tiers_match_reference(hl: Venue, cls: str, cut_musd: int, low: int, high: int) -> None:
    risk = hl.risk_params(cls)
    assert isinstance(risk, RiskParams)
    t = risk.tiers
    cut = cut_musd * M
    assert [x.lower for x in t.tiers] == [0, cut]
    assert t.max_leverage(cut - 1) == low and t.max_leverage(cut) == high
    # maintenance = half the initial margin rate at the band's maximum leverage
    assert t.tier(cut - 1).mmr == Fraction(1, 2 * low) and t.tier(cut).mmr == Fraction(1, 2 * high)
    assert t.maintenance(cut) == cut * Fraction(1, 2 * low)  # continuous at the boundary
    assert risk.leverage == min(20, low)


def test_hyperliquid_btc_maintenance_rate(hl: Venue) -> None:
    t = hl.risk_params("btc").tiers
    assert t.tier(150 * M - 1).mmr == Fraction(1, 80)  # 40x -> 1.25 %
    assert t.tier(150 * M).mmr == Fraction(1, 40)  # 20x -> 2.5 %
    assert t.maintenance(100 * M) == Fraction(100 * M, 80)


def test_hyperliquid_liquidation_is_the_engine_default(hl: Venue) -> None:
    liq = hl.liquidation_config()
    assert liq == LiquidationConfig()  # the engine's defaults were taken from the same reference lines
    assert liq.slice_threshold == 100_000 * USDC and liq.slice_fraction == Fraction(1, 5)
    assert liq.cooldown_us == 30_000_000 and liq.backstop and liq.backstop_ratio == Fraction(2, 3)
    assert liq.fee_ppm == 0 and (liq.adl_ranking, liq.adl_price) == ("hyperliquid", "mark")
    assert hl.risk_params("btc", default_leverage=10).leverage == 10


def test_hyperliquid_funding(hl: Venue) -> None:
    for cls in hl.tier_classes:
        f = hl.funding_config(cls)
        assert f == FundingConfig.hyperliquid()
        assert f.payment_interval_us == HOUR_US and f.sample_interval_us == 5_000_000
        assert f.rate_period_us == EIGHT_HOURS_US and f.capped_interval_us is None
        assert (f.interest, f.band, f.cap) == (Fraction(1, 10_000), Fraction(5, 10_000), Fraction(4, 100))
    assert hl.funding_config(3) == FundingConfig.hyperliquid()  # one cap for every leverage
    assert hl.impact_notional("btc") == hl.impact_notional("eth") == 20_000 * USDC
    assert hl.impact_notional("sol") == hl.impact_notional("small") == 6_000 * USDC
    FundingSchedule(hl.funding_config("btc"))  # usable as is


def test_hyperliquid_mark_oracle_staleness(hl: Venue) -> None:
    mark = hl.mark_model()
    assert isinstance(mark, HyperliquidMark) and mark.tau_s == 150.0
    assert hl.mark_model() is not mark  # fresh state per market
    kw = hl.oracle_kwargs()
    assert kw == {"interval_us": 3_000_000, "delay_us": 0, "noise_bps": 0.0, "clip_pct": None}
    path = Scripted([], s0=100.0).path(30_000_000)
    assert isinstance(path, IndexPath)
    o = Oracle(path, Decimal("0.1"), **kw)
    assert o.next_update_us() == 0 and o.publish(0) == 1000 and o.next_update_us() == 3_000_000
    s = hl.staleness()
    assert (s.trading_max_age_us, s.margin_max_age_us, s.max_divergence) == (4_000_000, 48_000_000, Fraction(1, 10))


# ------------------------------------------------------------------------------------- Binance numbers

BTCUSDT_2021 = [  # reference: lower bound (USDT), max leverage, maintenance rate in percent
    (0, 125, "0.4"), (50_000, 100, "0.5"), (250_000, 50, "1"), (1_000_000, 20, "2.5"), (10_000_000, 10, "5"),
    (20_000_000, 5, "10"), (50_000_000, 4, "12.5"), (100_000_000, 3, "15"), (200_000_000, 2, "25"),
    (300_000_000, 1, "50"),
]
SMALL_CAP = [(0, 50, "1.5"), (5_000, 20, "2.5"), (10_000, 10, "5"), (20_000, 5, "10"), (50_000, 4, "12.5"),
             (250_000, 3, "16.67")]


@pytest.mark.parametrize("cls, table, cap_musd", [("btc", BTCUSDT_2021, 500), ("small", SMALL_CAP, Fraction(9, 2))])
def test_binance_brackets_match_reference(bn: Venue, cls: str, table: list, cap_musd: Fraction) -> None:
    t = bn.risk_params(cls).tiers
    assert [(x.lower, x.max_leverage, x.mmr) for x in t.tiers] == [
        (lo * USDC, lev, Fraction(pct) / 100) for lo, lev, pct in table
    ]
    assert bn.order_limits(cls).max_position_notional == cap_musd * M


def test_binance_bracket_deduction(bn: Venue) -> None:
    t = bn.risk_params("btc").tiers
    # 50k-250k: 100x, 0.5 %, deduction 50k x (0.5 % - 0.4 %) = 50 USDT
    assert t.tier(50_000 * USDC).max_leverage == 100
    assert t.rate_and_deduction(1) == (Fraction(5, 1000), 50 * USDC)
    assert t.maintenance(100_000 * USDC) == 100_000 * USDC * Fraction(5, 1000) - 50 * USDC
    assert t.maintenance(50_000 * USDC) == 200 * USDC  # continuous: 50k x 0.4 %


def test_binance_fees_liquidation_funding_mark(bn: Venue) -> None:
    spec = bn.market_spec("BTCUSDT", tick_size="0.1", lot_size="0.001")
    assert (spec.maker_ppm, spec.taker_ppm) == (200, 500)
    assert bn.order_limits("btc").min_order_value == 5 * USDC and bn.order_limits("btc").max_market_order_value is None
    assert bn.liquidation_config() == binance_liquidation()  # one IOC order, 1.25 % fee, ADL at bankruptcy
    assert bn.liquidation_config().slice_threshold is None and not bn.liquidation_config().backstop
    btc = bn.funding_config("btc")
    assert btc == FundingConfig.binance(max_leverage=125)
    assert btc.cap == Fraction(3, 1000) and btc.payment_interval_us == EIGHT_HOURS_US
    assert btc.capped_interval_us == HOUR_US
    assert bn.funding_config(25).cap == Fraction(3, 100) and bn.funding_config(26).cap == Fraction(3, 1000)
    assert bn.funding_config("small") == FundingConfig.binance(max_leverage=50)
    assert bn.impact_notional("btc") == 200 * 125 * USDC  # 200 USDT / IM rate at 125x
    assert bn.impact_notional("small") == 200 * 50 * USDC
    mark = bn.mark_model()
    assert isinstance(mark, BinanceMark) and mark.window_us == 30_000_000 and mark.interval_us == EIGHT_HOURS_US


# ------------------------------------------------------------------------------------- trading on a built market


@pytest.mark.parametrize("name, cls, top", [("hyperliquid", "btc", 40), ("binance", "btc", 125)])
def test_exchange_lists_and_trades_a_built_market(name: str, cls: str, top: int) -> None:
    v = load_venue(name)
    ex = Exchange()
    spec = v.market_spec("BTC", tick_size="0.1", lot_size="0.001")
    ex.list_market(spec, v.risk_params(cls))
    ex.set_mark("BTC", 500_000)  # 50,000.0 USDC
    maker = ex.open_account(1 * M)
    taker = ex.open_account(1 * M)
    with pytest.raises(InvalidInput):
        ex.set_leverage(taker, "BTC", top + 1)
    ex.set_leverage(taker, "BTC", top)
    ex.limit(maker, "BTC", "sell", 1_000, 500_000)  # 1 BTC at 50,000
    r = ex.market_order(taker, "BTC", "buy", 1_000)
    assert r.filled == 1_000
    notional = 50_000 * USDC
    taker_fee = notional * spec.taker_ppm // 1_000_000
    maker_fee = notional * spec.maker_ppm // 1_000_000
    assert ex.position(taker, "BTC").size == 1_000 and ex.position(taker, "BTC").fees == taker_fee
    assert ex.ledgers["fees"] == taker_fee + maker_fee
    mm = ex.margin_summary(taker)["cross_maintenance"]
    assert mm == v.risk_params(cls).tiers.maintenance(notional)
    ex.check_conservation()


# ------------------------------------------------------------------------------------- overrides


def test_overrides_change_exactly_the_named_fields(hl: Venue) -> None:
    v = load_venue("hyperliquid", {"fees.taker_bps": 5, "liquidation.cooldown_s": 10})
    assert changed(hl, v) == {"fees.taker_bps": ("4.5", 5), "liquidation.cooldown_s": (30, 10)}
    assert v.market_spec("BTC", "0.1", "0.001").taker_ppm == 500
    assert v.liquidation_config().cooldown_us == 10_000_000
    assert hl.liquidation_config().cooldown_us == 30_000_000  # the loaded profile is untouched


def test_overrides_reach_list_entries_new_tier_classes_and_optional_keys(hl: Venue, bn: Venue) -> None:
    v = load_venue("hyperliquid", {"tiers.btc.bands[1].max_leverage": 25})
    assert changed(hl, v) == {"tiers.btc.bands[1].max_leverage": (20, 25)}
    assert v.risk_params("btc").tiers.tier(150 * M).mmr == Fraction(1, 50)
    v = load_venue("hyperliquid", {"tiers.doge": {"bands": [{"lower": 0, "max_leverage": 3}], "impact_notional": 6000}})
    assert v.tier_classes[-1] == "doge" and v.risk_params("doge").tiers.top_leverage == 3
    v = load_venue("hyperliquid", {"oracle.clip_pct": 5, "oracle.noise_bps": "2.5"})
    assert changed(hl, v) == {"oracle.clip_pct": (None, 5), "oracle.noise_bps": (0, "2.5")}
    assert v.oracle_kwargs()["clip_pct"] == 5.0 and v.oracle_kwargs()["noise_bps"] == 2.5
    # None removes an optional key: Binance with Hyperliquid-style slicing, then without it again
    sliced = load_venue("binance", {"liquidation.slice_threshold": 50_000, "liquidation.slice_fraction": "0.25",
                                    "liquidation.cooldown_s": 15})
    assert sliced.liquidation_config().slice_threshold == 50_000 * USDC
    assert sliced.with_overrides({"liquidation.slice_threshold": None, "liquidation.slice_fraction": None,
                                  "liquidation.cooldown_s": None}) == bn
    # a whole table may switch the mark formula
    v = load_venue("hyperliquid", {"mark": {"formula": "binance", "ma_window_s": 30}})
    assert isinstance(v.mark_model(), BinanceMark)


def test_float_overrides_mean_what_they_say(hl: Venue) -> None:
    v = load_venue("hyperliquid", {"liquidation.slice_fraction": 0.1, "liquidation.backstop_ratio": Fraction(1, 3)})
    assert v.liquidation_config().slice_fraction == Fraction(1, 10)  # not the binary neighbour of 0.1
    assert v.to_dict()["liquidation"]["backstop_ratio"] == "1/3"


# ------------------------------------------------------------------------------------- errors


def test_out_of_range_override_names_path_value_and_range() -> None:
    with pytest.raises(InvalidProfile) as e:
        load_venue("hyperliquid", {"liquidation.slice_fraction": 1.5})
    assert problems_of(e) == ["liquidation.slice_fraction: must be > 0 and <= 1, got 1.5"]
    assert isinstance(e.value, InvalidInput) and e.value.field == "liquidation.slice_fraction"


def test_unknown_override_path_names_the_closest_valid_path() -> None:
    with pytest.raises(InvalidProfile) as e:
        load_venue("hyperliquid", {"liquidation.cooldwn_s": 10, "fees.taker": 5})
    assert problems_of(e) == [
        "liquidation.cooldwn_s: unknown key; did you mean 'liquidation.cooldown_s'?",
        "fees.taker: unknown key; did you mean 'fees.taker_bps'?",
    ]
    with pytest.raises(InvalidProfile) as e:
        load_venue("hyperliquid", {"tiers.btc.bands[7].lower": 1})
    assert "index out of range" in str(e.value) and "has 2 entries" in str(e.value)
    with pytest.raises(InvalidProfile) as e:
        load_venue("hyperliquid", {"tiers.bt.bands": []})
    assert "did you mean 'btc'?" in str(e.value)


def test_wrong_types_one_line_each() -> None:
    with pytest.raises(InvalidProfile) as e:
        load_venue("hyperliquid", {"fees.taker_bps": "abc", "liquidation.backstop": "yes",
                                   "tiers.btc.bands[0].max_leverage": 40.0, "mark.formula": "bitmex"})
    assert problems_of(e) == [
        'fees.taker_bps: must be a number (such as 5, 0.5, "0.5" or "2/3"), got \'abc\'',
        "tiers.btc.bands[0].max_leverage: must be an integer in [1, 1000], got 40.0",
        "liquidation.backstop: must be true or false, got 'yes'",
        "mark.formula: must be 'hyperliquid' or 'binance', got 'bitmex'",
    ]
    assert str(e.value).count("\n") == 4  # a header line and one line per problem


def test_rules_across_keys() -> None:
    with pytest.raises(InvalidProfile) as e:
        load_venue("binance", {"tiers.btc.bands[1].mmr_pct": "0.3", "liquidation.slice_threshold": 100_000,
                               "funding.payment_interval_s": 3601})
    lines = problems_of(e)
    assert "tiers.btc.bands[1].mmr_pct: must be >= bands[0].mmr_pct = 0.4 (larger positions need more margin), got 0.3" in lines
    assert "liquidation.slice_fraction: required when liquidation.slice_threshold is set" in lines
    assert "liquidation.cooldown_s: required when liquidation.slice_threshold is set" in lines
    assert "funding.payment_interval_s: must be a multiple of funding.sample_interval_s = 5, got 3601" in lines
    with pytest.raises(InvalidProfile) as e:
        load_venue("hyperliquid", {"fees.maker_bps": -5})
    assert problems_of(e) == ["fees.maker_bps: a rebate must not exceed the taker fee (4.5 bp), got -5"]
    with pytest.raises(InvalidProfile) as e:
        load_venue("hyperliquid", {"fees.maker_bps": "1.234", "liquidation.cooldown_s": "0.0000001"})
    assert problems_of(e) == ["fees.maker_bps: must be a multiple of 0.01 bp, got '1.234'",
                              "liquidation.cooldown_s: must be a whole number of microseconds, got '0.0000001'"]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "venue.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_bad_file_unknown_key_wrong_type_out_of_range(hl: Venue, tmp_path: Path) -> None:
    text = hl.to_toml()
    text = text.replace("cooldown_s = 30", "cooldwn_s = 30").replace('slice_fraction = "0.2"', "slice_fraction = 1.5")
    text = text.replace("backstop = true", 'backstop = "true"').replace("[oracle]\n", "[oracle]\nintervall_s = 1\n")
    with pytest.raises(InvalidProfile) as e:
        load_venue(write(tmp_path, text))
    assert problems_of(e) == [
        "liquidation.slice_fraction: must be > 0 and <= 1, got 1.5",
        "liquidation.backstop: must be true or false, got 'true'",
        "liquidation.cooldwn_s: unknown key; did you mean 'cooldown_s'?",
        "oracle.intervall_s: unknown key; did you mean 'interval_s'?",
    ]
    assert str(tmp_path / "venue.toml") in str(e.value)


def test_bad_file_missing_keys_and_bad_toml(hl: Venue, tmp_path: Path) -> None:
    text = hl.to_toml().replace("taker_bps = \"4.5\"\n", "").replace('formula = "hyperliquid"\n', "")
    with pytest.raises(InvalidProfile) as e:
        load_venue(write(tmp_path, text))
    assert problems_of(e) == ["fees.taker_bps: required key is missing",
                              "mark.formula: required key is missing ('hyperliquid' or 'binance')"]
    with pytest.raises(InvalidProfile) as e:
        load_venue(write(tmp_path, "name = \n"))
    assert "not valid TOML" in str(e.value)


def test_bad_names_and_arguments(hl: Venue) -> None:
    with pytest.raises(InvalidInput) as e:
        load_venue("hyperliqiud")
    assert "did you mean 'hyperliquid'?" in str(e.value)
    with pytest.raises(InvalidInput) as e:
        hl.risk_params("btcc")
    assert e.value.field == "tier_class" and "did you mean 'btc'?" in str(e.value)
    with pytest.raises(InvalidInput):
        hl.funding_config(0)
    with pytest.raises(InvalidInput):
        load_venue("hyperliquid", [("fees.taker_bps", 5)])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        hl.market_spec("BTC", "0.1", "0.001", quote_decimals=19)


def test_money_that_needs_rounding_at_the_markets_decimals_is_refused() -> None:
    v = load_venue("hyperliquid", {"orders.min_value": "10.5"})
    assert v.order_limits("btc").min_order_value == 10_500_000
    with pytest.raises(InvalidProfile) as e:
        v.order_limits("btc", quote_decimals=0)
    assert problems_of(e) == ["orders.min_value: must be a whole number of quote units at quote_decimals=0 "
                              "(a multiple of 1e-0), got 10.5"]


# ------------------------------------------------------------------------------------- recording a run


@pytest.mark.parametrize("name", ["hyperliquid", "binance"])
def test_to_dict_round_trips(name: str, tmp_path: Path) -> None:
    v = load_venue(name, {"liquidation.backstop_ratio": "1/3"} if name == "hyperliquid" else {"fees.maker_bps": -1})
    d = v.to_dict()
    assert load_venue(d) == v and load_venue(d).to_dict() == d
    assert load_venue(json.loads(json.dumps(d))) == v  # JSON-safe: a run manifest can store it
    assert load_venue(write(tmp_path, v.to_toml())) == v
    assert load_venue(write(tmp_path, v.to_toml())).to_dict() == d
    assert load_venue(name).to_dict() != d  # the override is recorded


def test_venue_is_frozen(hl: Venue) -> None:
    with pytest.raises(AttributeError):
        hl.profile = hl.profile  # type: ignore[misc]
    with pytest.raises(ValidationError):
        hl.profile.fees.taker_bps = Fraction(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        hl.profile.tiers["doge"] = hl.profile.tiers["btc"]  # type: ignore[index]
    assert hash(load_venue()) == hash(hl) and len({hl, load_venue(), load_venue("binance")}) == 2


@pytest.mark.parametrize("name", ["hyperliquid", "binance"])
def test_every_shipped_number_cites_its_source(name: str) -> None:
    """Each number in a shipped profile carries a comment: its line in venue-mechanics.md, or "assumption"."""
    from importlib import resources

    text = resources.files("abm.venues").joinpath("profiles", f"{name}.toml").read_text(encoding="utf-8")
    uncited = []
    for line in text.splitlines():
        code, _, comment = line.partition("#")
        if "=" in code and any(c.isdigit() for c in code.split("=", 1)[1]):
            if "vm:" not in comment and "assumption" not in comment:
                uncited.append(line)
    assert uncited == []


def test_unknown_top_level_key_lists_the_allowed_ones(hl: Venue) -> None:
    d = hl.to_dict()
    d["zzz"] = 1
    d["fees"]["taker_bp"] = 4
    with pytest.raises(InvalidProfile) as e:
        load_venue(d)
    assert problems_of(e)[0] == "fees.taker_bp: unknown key; did you mean 'taker_bps'?"
    assert problems_of(e)[1].startswith("zzz: unknown key; allowed: 'name', 'quote_currency', 'fees'")
