"""The market maker kind: healthy quoting, inventory skew, depth evaporation under stress, pulls on a
stale oracle, its own liquidation, and parameter validation. Every run audits money conservation."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from abm.agents.market_maker import (
    MarketMaker,
    MarketMakerParams,
    half_spread,
    reservation_price,
)
from abm.agents.testing import FakeContext, build_agent
from abm.errors import InvalidInput
from abm.model import MarketModel
from tests.support import group, market, scenario, shock

BUY, SELL = 0, 1
LOT = 0.001
TICK = 0.1
# Background flow thin enough that the market makers are most of the book (the noise kind's defaults
# pile up millions of USDC of resting orders within 1% of mid, which would hide what the makers do).
THIN_NOISE = {"alpha": 0.005, "delta": 0.02}


def make_model(duration_s: float, shocks: tuple = (), outages: tuple = (), n_mm: int = 5, mm: dict | None = None,
               extra: tuple = (), seed: int = 1) -> MarketModel:
    mkt = market(symbol="BTC-PERP", s0=60_000, sigma=0.5, shocks=shocks, oracle_outages_s=outages)
    agents = (group("noise", 20, THIN_NOISE), group("market_maker", n_mm, mm or {}), *extra)
    return MarketModel(scenario(seed=seed, duration_s=duration_s, markets=(mkt,), agents=agents), audit=True)


def own_book(mm: MarketMaker) -> tuple[list[int], list[int]]:
    """(bid prices, ask prices) of the maker's resting orders."""
    bids, asks = [], []
    for _, side, price, _ in mm.open_orders().values():
        (bids if side == BUY else asks).append(price)
    return bids, asks


def conserved(model: MarketModel) -> None:
    gaps = model.steps_frame()["conservation_gap"].to_numpy()
    assert np.all(gaps == 0), "money was created or destroyed"


# ---------------------------------------------------------------------- pricing, by hand


def test_pricing_formulas_by_hand() -> None:
    # s = 60000, q = 2 BTC, gamma = 0.01, sigma = 5 USDC/sqrt(s), tau = 30 s:
    # skew = 2 * 0.01 * 25 * 30 = 15  ->  r = 59985
    assert reservation_price(60_000, 2.0, 0.01, 5.0, 30.0) == pytest.approx(59_985.0)
    assert reservation_price(60_000, 0.0, 0.01, 5.0, 30.0) == 60_000.0
    assert reservation_price(60_000, -2.0, 0.01, 5.0, 30.0) == pytest.approx(60_015.0)
    # delta = 0.01 * 25 * 30 / 2 + ln(1 + 0.01 / 0.1) / 0.01 = 3.75 + 100 ln 1.1 = 13.2810...
    assert half_spread(0.01, 5.0, 30.0, 0.1) == pytest.approx(3.75 + 100 * math.log(1.1))
    assert half_spread(0.01, 5.0, 30.0, 0.1) == pytest.approx(13.28101798, rel=1e-9)
    # the floor binds when the model spread is narrower
    assert half_spread(0.01, 5.0, 30.0, 0.1, floor=20.0) == 20.0
    # more volatility, wider: the gamma*sigma^2*tau/2 term grows with sigma^2
    assert half_spread(0.01, 10.0, 30.0, 0.1) - half_spread(0.01, 5.0, 30.0, 0.1) == pytest.approx(0.01 * 75 * 30 / 2)


def test_agent_target_long_quotes_below_flat() -> None:
    mm = build_agent(MarketMaker, {}, FakeContext(mark=600_000))  # no model run, no exchange
    s = 600_000.0  # ticks: 60,000 USDC
    r_flat, d_flat = mm.target(s, 0.0)
    r_long, d_long = mm.target(s, 3.0)
    r_short, _ = mm.target(s, -3.0)
    assert r_flat == pytest.approx(s)
    assert r_long < r_flat < r_short
    assert d_long == d_flat  # the skew moves the quotes, it does not widen them
    # by hand with the agent's prior volatility: sigma = vol_init / sqrt(year) * s (USDC per sqrt(second))
    p = mm.p
    sigma = p.vol_init / math.sqrt(365 * 24 * 3600) * 60_000
    assert (r_flat - r_long) * TICK == pytest.approx(3.0 * p.gamma * sigma**2 * p.tau_s, rel=1e-9)
    assert d_flat * TICK == pytest.approx(max(half_spread(p.gamma, sigma, p.tau_s, p.kappa),
                                              60_000 * p.min_spread_bps / 2e4), rel=1e-9)
    # the ladder: n_levels per side, bids strictly below asks, deeper levels further out, sizes growing
    want = mm.ladder(s, r_long, d_long, None, None, True, True)
    bids = [want[(BUY, i)] for i in range(p.n_levels)]
    asks = [want[(SELL, i)] for i in range(p.n_levels)]
    assert all(b[0] > c[0] for b, c in zip(bids, bids[1:]))
    assert all(a[0] < c[0] for a, c in zip(asks, asks[1:]))
    assert bids[0][0] < asks[0][0]
    assert [b[1] for b in bids] == [a[1] for a in asks] and bids[0][1] == 500 and bids[-1][1] > bids[0][1]
    # a post-only ladder never crosses the book it sees: clamp against a best ask below the model bid
    best_ask = int(s - d_flat) - 50
    clamped = mm.ladder(s, s, d_flat, best_bid=None, best_ask=best_ask, bids=True, asks=False)
    prices = sorted((price for price, _ in clamped.values()), reverse=True)
    assert prices[0] == best_ask - 1 and len(set(prices)) == p.n_levels and set(k[0] for k in clamped) == {BUY}


# ---------------------------------------------------------------------- a healthy book


def test_calm_quoting_is_healthy_post_only_and_never_crosses() -> None:
    model = make_model(120)
    mms = model.agents_by_kind["market_maker"]
    crossed = full = looks = 0
    while model.running:
        model.step()
        for mm in mms:
            b, a = own_book(mm)
            if b and a and max(b) >= min(a):
                crossed += 1
            if model.metrics["time_s"] >= 60:
                looks += 1
                full += len(b) == mm.p.n_levels and len(a) == mm.p.n_levels
    assert crossed == 0
    assert full / looks > 0.95, "a calm maker shows its whole ladder on both sides"
    v = model.views["BTC-PERP"]
    mid = v.mid()
    assert mid is not None
    best_mm_bid, best_mm_ask = 0, math.inf
    for mm in mms:
        b, a = own_book(mm)
        assert b and a
        assert all(abs(x - mid) / mid < 0.01 for x in b + a), "all quotes within 1% of mid"
        assert max(b) < v.best_ask() and min(a) > v.best_bid()
        best_mm_bid, best_mm_ask = max(best_mm_bid, max(b)), min(best_mm_ask, min(a))
        assert mm.pull_reason is None and mm.active
    mm_spread_bps = (best_mm_ask - best_mm_bid) / mid * 1e4
    assert 0.5 < mm_spread_bps < 8, f"the makers' spread should be a few bps, is {mm_spread_bps:.2f}"
    df = model.steps_frame()
    late = df[df.time_s >= 60]
    assert (late.mm_quoting == 5).all()
    # both sides deep within 1% of mid: five makers with ~3.4 BTC per side each, at 60,000 USDC
    assert late.depth_bid_1pct.min() > 800_000 and late.depth_ask_1pct.min() > 800_000
    assert late.spread_bps.max() < 8
    # the index is what the book sits around
    assert (abs(late.mid - late["index"]) / late["index"]).max() < 0.005
    # post-only: the makers never took liquidity
    trades = model.tables()["trades"]
    accounts = {mm.account for mm in mms}
    assert len(trades) and not trades.taker_account.isin(accounts).any()
    conserved(model)


# ---------------------------------------------------------------------- inventory skew in a run


def test_long_maker_quotes_lower_than_the_others() -> None:
    model = make_model(140)
    mms = model.agents_by_kind["market_maker"]
    while model.time_us < 100_000_000:
        model.step()
    long_mm = mms[0]
    long_mm.market(BUY, 5_000)  # the maker buys 5 BTC itself (through the exchange, after its latency)
    while model.time_us < 106_000_000:
        model.step()
    q = long_mm.position().size * LOT
    assert q > 4.5
    lq = long_mm.last_quote
    assert lq is not None and lq.t_us > 100_100_000 and lq.q > 4.5
    # reservation below the reference (mid) by q * gamma * sigma^2 * tau
    p = long_mm.p
    sigma = math.sqrt(lq.vol**2 / (365 * 24 * 3600)) * lq.s * TICK
    assert (lq.s - lq.reservation) * TICK == pytest.approx(lq.q * p.gamma * sigma**2 * p.tau_s, rel=1e-6)
    assert lq.reservation < lq.s
    others = mms[1:]
    assert all(o.position().size <= 0 for o in others), "the others sold to it"
    for o in others:
        oq = o.last_quote
        assert oq is not None and oq.reservation - oq.s > lq.reservation - lq.s
    b, a = own_book(long_mm)
    for o in others:
        ob, oa = own_book(o)
        assert max(b) < max(ob), "its bids sit below the flat/short makers' bids"
        assert min(a) < min(oa), "and its asks too: it leans to sell"
    model.run()
    conserved(model)


# ---------------------------------------------------------------------- depth evaporation


def test_depth_evaporates_in_a_shock_and_recovers() -> None:
    model = make_model(900, shocks=(shock(300, 30, -10),)).run()
    df = model.steps_frame()
    depth = df.depth_bid_1pct + df.depth_ask_1pct
    t = df.time_s

    def median(lo: float, hi: float) -> float:
        return float(depth[(t >= lo) & (t < hi)].median())

    before, during, after = median(200, 300), median(305, 360), median(750, 900)
    assert before > 1_500_000
    assert during < 0.4 * before, f"depth within 1% should mostly vanish: {before:.0f} -> {during:.0f}"
    assert after > 0.8 * before, f"and come back: {before:.0f} -> {after:.0f}"
    q = df.mm_quoting
    assert (q[(t >= 305) & (t < 360)] == 0).all(), "every maker is out during the shock"
    assert (q[t >= 750] == 5).all()
    mms = model.agents_by_kind["market_maker"]
    assert all(mm.pull_count >= 1 and mm.pull_reason is None and mm.active for mm in mms)
    conserved(model)


def test_quotes_pulled_while_the_oracle_is_stale() -> None:
    model = make_model(600, outages=((200, 400),))
    mms = model.agents_by_kind["market_maker"]
    reasons: dict[float, list] = {}
    while model.running:
        model.step()
        reasons[model.metrics["time_s"]] = [mm.pull_reason for mm in mms]
    df = model.steps_frame()
    t, q = df.time_s, df.mm_quoting
    max_age = mms[0].p.max_oracle_age_s
    assert (q[(t >= 150) & (t < 200)] == 5).all()
    out = (t >= 200 + max_age + 3) & (t < 400)  # stale once the last publication is older than max age
    assert (q[out] == 0).all(), "no maker quotes on a stale oracle"
    assert all(r == ["oracle_stale"] * 5 for s, r in reasons.items() if 200 + max_age + 3 <= s < 400)
    back = t >= 400 + mms[0].p.cooldown_s + 10
    assert (q[back] == 5).all(), "they come back once the oracle publishes again and the cooldown is over"
    depth = df.depth_bid_1pct + df.depth_ask_1pct
    assert depth[out].median() < 0.4 * depth[(t >= 150) & (t < 200)].median()
    conserved(model)


def test_inventory_limit_pulls_only_the_adding_side() -> None:
    model = make_model(130, mm={"max_inventory": 2.0})
    mm = model.agents_by_kind["market_maker"][0]
    while model.time_us < 100_000_000:
        model.step()
    mm.market(BUY, 3_000)  # 3 BTC long, over its 2 BTC limit
    while model.time_us < 106_000_000:
        model.step()
    assert mm.position().size * LOT > 2.0
    b, a = own_book(mm)
    assert not b and len(a) == mm.p.n_levels, "long beyond the limit: bids pulled, asks kept to sell it down"
    assert mm.pull_reason == "inventory" and mm.pulled_sides == (True, False)
    model.run()
    conserved(model)


def test_a_liquidated_maker_stops_quoting() -> None:
    small = group("market_maker", 1, {"deposit_usdc": 20_000.0, "leverage": 20, "level_size": 0.01,
                                           "n_levels": 1, "max_inventory": None}, name="small_maker")
    model = make_model(300, shocks=(shock(120, 30, -20),), extra=(small,))
    mm = model.agents_by_kind["market_maker"][-1]
    while model.time_us < 100_000_000:
        model.step()
    assert mm.n_open_orders() == 2
    mm.market(BUY, 5_000)  # 5 BTC (300k notional) on 20k of equity
    model.run()
    liqs = model.tables()["liquidations"]
    assert (liqs.account == mm.account).any(), "the small maker was liquidated"
    assert not mm.active and mm.pull_reason == "equity"
    assert mm.n_open_orders() == 0
    assert mm.equity() < 0.25 * 20_000 * 10**6
    assert all(o.active for o in model.agents_by_kind["market_maker"][:-1]), "the well-capitalised makers survive"
    conserved(model)


# ---------------------------------------------------------------------- bad parameters


@pytest.mark.parametrize("field, value", [
    ("n_levels", 0), ("n_levels", 2.5), ("level_size", 0), ("level_size", -1.0), ("gamma", 0), ("kappa", -0.1),
    ("tau_s", float("nan")), ("size_growth", -0.1), ("level_spacing_bps", -1), ("min_spread_bps", "2"),
    ("pull_vol", 0), ("max_inventory", -1), ("max_oracle_age_s", 0), ("max_divergence_bps", True),
    ("max_margin_usage", -0.5), ("cooldown_s", 0), ("vol_halflife_s", 0), ("refresh_move_bps", 0),
    ("reference", "last"), ("pull_mode", "some"), ("leverage", 0), ("leverage", 2.0), ("stop_equity_frac", 1.0),
    ("deposit_usdc", -5), ("max_skew_bps", 0), ("max_skew_bps", -3),
])
def test_bad_params_are_rejected_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(InvalidInput) as e:
        MarketMakerParams(**{field: value})
    assert e.value.field == field


def test_bad_params_through_the_model() -> None:
    one = (market(),)
    with pytest.raises(InvalidInput) as e:
        MarketModel(scenario(duration_s=10, markets=one, agents=(group("market_maker", 1, {"gama": 0.1}),)))
    assert e.value.field == "agents.market_maker.gama" and "gamma" in str(e.value)
    with pytest.raises(InvalidInput) as e:
        MarketModel(scenario(duration_s=10, markets=one, agents=(group("market_maker", 1, {"kappa": 0}),)))
    assert e.value.field == "agents.market_maker.kappa"
    with pytest.raises(InvalidInput) as e:  # above the BTC tier's 40x maximum
        MarketModel(scenario(duration_s=10, markets=one, agents=(group("market_maker", 1, {"leverage": 100}),)))
    assert e.value.field == "agents.market_maker.leverage"
    # None disables a control
    p = MarketMakerParams(pull_vol=None, max_inventory=None, max_oracle_age_s=None, max_divergence_bps=None,
                          max_margin_usage=None)
    assert p.pull_vol is None


def test_gamma_and_kappa_for_another_price_scale_are_refused() -> None:
    """BTC's kappa on a 2 USDC coin would quote it several USDC wide (no quotes at all): a clear error instead."""
    coin = (market(symbol="COIN-PERP", s0=2.0, tick_size="0.0001", lot_size="1", tier_class="small"),)
    with pytest.raises(InvalidInput) as e:
        MarketModel(scenario(duration_s=10, markets=coin, agents=(group("market_maker", 1, {}),)))
    assert e.value.field == "agents.market_maker.kappa" and "kappa about 5e+03" in str(e.value)
    model = MarketModel(scenario(duration_s=30, markets=coin, agents=(group("market_maker", 1, {"kappa": 5000}),)))
    model.run()
    (mm,) = model.agents_by_kind["market_maker"]
    q = mm.last_quote
    assert q is not None and q.bid is not None and q.ask is not None
    assert (q.ask - q.bid) / q.s * 1e4 < 20  # quoted about the spread floor, not dollars wide


def test_inventory_skew_is_capped_in_a_volatility_spike() -> None:
    model = make_model(10)
    mm = model.agents_by_kind["market_maker"][0]
    s = 600_000.0
    mm._var = (30.0 ** 2) / (365 * 24 * 3600)  # 3,000% annualised: q·gamma·sigma²·tau would be thousands of USDC
    r, _ = mm.target(s, -5.0)
    assert r == pytest.approx(s * (1 + mm.p.max_skew_bps / 1e4))
    mm.p = replace(mm.p, max_skew_bps=None)  # the same maker without the cap
    assert mm.target(s, -5.0)[0] > s * 1.5


# ---------------------------------------------------------------------- the deep ladder and the half-spread cap


DEEP = {"deep_levels": 6}


def test_the_deep_ladder_reaches_out_to_five_percent_growing_in_size() -> None:
    mm = build_agent(MarketMaker, DEEP, FakeContext(mark=600_000))
    p, s = mm.p, 600_000.0
    r, d = mm.target(s, 0.0)
    want = mm.ladder(s, r, d, None, None, True, True)
    n = p.n_levels
    assert len(want) == 2 * (n + p.deep_levels)
    for side, sign in ((BUY, -1), (SELL, 1)):
        deep = [want[(side, n + j)] for j in range(p.deep_levels)]
        dist_bps = [sign * (price - s) / s * 1e4 for price, _ in deep]
        # geometric from 25 to 500 bps (ratio (500/25)^(1/5)), each snapped outward to its grid (< a tenth of it)
        for j, got in enumerate(dist_bps):
            exact = 25.0 * 20.0 ** (j / 5)
            assert exact <= got < exact * 1.1 + 1e4 / s
        sizes = [lots for _, lots in deep]
        assert sizes == [round(0.5 * 2.0 * 1.3 ** j / 0.001) for j in range(p.deep_levels)]  # lots of 0.001 BTC
        near_far = sign * (want[(side, n - 1)][0] - s)
        assert sign * (deep[0][0] - s) > near_far  # beyond the near ladder, strictly outward
    off = build_agent(MarketMaker, {"deep_levels": 0}, FakeContext(mark=600_000))
    assert len(off.ladder(s, r, d, None, None, True, True)) == 2 * n


def test_deep_levels_keep_their_price_and_queue_place_when_the_reference_moves_a_little() -> None:
    mm = build_agent(MarketMaker, DEEP, FakeContext(mark=600_000))
    s = 600_000.0
    a = mm.ladder(s, s, 300.0, None, None, True, True)
    b = mm.ladder(s + 30, s + 30, 300.0, None, None, True, True)  # 0.5 bp
    far = [(side, mm.p.n_levels + j) for side in (BUY, SELL) for j in range(2, mm.p.deep_levels)]
    assert sum(a[k] == b[k] for k in far) >= len(far) - 1  # at most one crosses a grid line
    assert all(a[(side, 0)] != b[(side, 0)] for side in (BUY, SELL))  # the near ladder follows the price


def test_the_half_spread_is_capped_however_high_volatility_goes() -> None:
    mm = build_agent(MarketMaker, {"max_half_spread_bps": 200.0}, FakeContext(mark=600_000))
    mm._var = 1e-3  # ~17,800% a year: the model half-spread is several times the price
    s = 600_000.0
    _, d = mm.target(s, 0.0)
    assert d == pytest.approx(s * 200 / 1e4)
    free = build_agent(MarketMaker, {"max_half_spread_bps": None}, FakeContext(mark=600_000))
    free._var = 1e-3
    assert free.target(s, 0.0)[1] > 10 * d


@pytest.mark.parametrize("params, field", [
    ({"deep_levels": 6, "deep_from_bps": 500.0, "deep_to_bps": 100.0}, "deep_to_bps"),
    ({"deep_levels": 6, "deep_to_bps": 10_000.0}, "deep_to_bps"),
    ({"deep_levels": -1}, "deep_levels"),
    ({"deep_size": 0}, "deep_size"),
    ({"max_half_spread_bps": 0}, "max_half_spread_bps"),
])
def test_bad_deep_ladder_params_are_refused(params: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        build_agent(MarketMaker, params, FakeContext(mark=600_000))
    assert e.value.field.endswith(field)


def test_a_maker_anchored_to_value_quotes_between_the_book_and_the_value() -> None:
    ctx = FakeContext(mark=600_000)
    ctx.values["BTC-PERP"] = 59_000.0  # the value it observes is 1.67% below the book
    plain = build_agent(MarketMaker, {}, ctx)
    anchored = build_agent(MarketMaker, {"value_weight": 0.25}, ctx)
    mid = 600_000.0
    assert plain._reference(mid, None, None) == mid
    assert anchored._reference(mid, None, None) == pytest.approx(0.75 * mid + 0.25 * 590_000)
    full = build_agent(MarketMaker, {"value_weight": 1.0}, ctx)
    assert full._reference(mid, 600_100, 600_200) == pytest.approx(590_000)


def test_the_volatility_estimate_can_read_the_mid_rather_than_a_bouncing_last_trade() -> None:
    # a last trade bouncing between bid and ask 10 bps apart, with the mid still: only the mark reads it as volatility
    by_mark = build_agent(MarketMaker, {"vol_init": 0.1}, FakeContext(mark=600_000))
    by_mid = build_agent(MarketMaker, {"vol_init": 0.1, "vol_from": "mid"}, FakeContext(mark=600_000))
    for k in range(60):
        t = (k + 1) * 1_000_000
        last = 600_300 if k % 2 else 599_700
        by_mark._observe(t, last, 600_000.0, 600_000)
        by_mid._observe(t, last, 600_000.0, 600_000)
    assert by_mark.vol > 3.0 > 0.1 >= by_mid.vol  # the bounce alone pulls a mark-reading maker (pull_vol = 3)


def test_a_hedged_maker_can_read_volatility_from_the_oracle_it_hedges_against() -> None:
    # its own thin book jumps 50 bps a second while the oracle is still: only the book readers see volatility
    by_mid = build_agent(MarketMaker, {"vol_init": 0.1, "vol_from": "mid"}, FakeContext(mark=600_000))
    by_oracle = build_agent(MarketMaker, {"vol_init": 0.1, "vol_from": "oracle"}, FakeContext(mark=600_000))
    for k in range(60):
        t = (k + 1) * 1_000_000
        mid = 603_000.0 if k % 2 else 597_000.0
        by_mid._observe(t, int(mid), mid, 600_000)
        by_oracle._observe(t, int(mid), mid, 600_000)
    assert by_mid.vol > 3.0 > 0.1 >= by_oracle.vol

# ---------------------------------------------------------------------- standing aside (an mm_withdrawal event)


def test_a_withdrawn_maker_cancels_quotes_nothing_in_the_window_and_comes_back() -> None:
    ctx = FakeContext(mark=600_000)
    ctx.set_book(599_990, 600_010)
    mm = build_agent(MarketMaker, {"wake_every_s": 2.0}, ctx)
    mm.on_wake(0)
    ctx.answer_all()
    assert ctx.n_open_orders() == 2 * mm.p.n_levels
    ctx.now = 5_000_000
    mm.withdraw(ctx.now, 65_000_000)  # away for a minute
    assert [s.action for s in ctx.pending()] == ["cancel_all"]
    assert mm.pull_reason == "withdrawn" and mm.pulled_sides == (True, True)
    ctx.answer_all()
    assert ctx.n_open_orders() == 0
    for t in range(7_000_000, 65_000_000, 2_000_000):  # wakes and price moves in the window send nothing
        ctx.now = t
        ctx.marks["BTC-PERP"] = 600_000 + (t // 1_000_000) * 10
        mm.on_wake(t)
        mm.on_price(t, "BTC-PERP", ctx.marks["BTC-PERP"])
    assert not ctx.pending()
    ctx.run_wakes(65_000_000)  # the end of the window: a refresh quotes the whole ladder again
    assert mm.pull_reason is None
    assert sorted(s.action for s in ctx.pending()) == ["limit"] * (2 * mm.p.n_levels)


def test_a_withdrawn_maker_cancels_what_a_refused_cancel_left() -> None:
    """The venue refused the cancel (it was halted): the next refresh in the window cancels the orders one by one."""
    ctx = FakeContext(mark=600_000)
    ctx.set_book(599_990, 600_010)
    mm = build_agent(MarketMaker, {}, ctx)
    mm.on_wake(0)
    ctx.answer_all()
    ctx.now = 5_000_000
    mm.withdraw(ctx.now, 65_000_000)
    ctx.reject()
    ctx.now = 10_000_000
    mm.on_wake(ctx.now)
    assert [s.action for s in ctx.pending()] == ["cancel"] * (2 * mm.p.n_levels)
