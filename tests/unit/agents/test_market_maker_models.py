"""The market maker as published: Avellaneda-Stoikov with T - t counting down, the GLFT closed form with its
arrival scale, and requoting on its own fills. Each quote is computed here by hand from the test's parameters
(the papers' formulas written out again, not the module's functions) and compared to the prices the maker
sends through a FakeContext, rounded as it documents: first bid floor((r - d) / tick), first ask
ceil((r + d) / tick), level i a further i * level_spacing_bps of the reference."""

from __future__ import annotations

import math

import pytest

from abm.agents.market_maker import MarketMaker, MarketMakerParams
from abm.agents.testing import FakeContext, build_agent
from abm.errors import InvalidInput
from abm.model import MarketModel
from tests.support import group, market, scenario

BUY, SELL = 0, 1
TICK = 0.1  # USDC, FakeContext's default
LOT = 0.001  # BTC
YEAR_S = 365 * 24 * 3600
S_TICKS = 600_000  # the reference: the mid of a wide book, 60,000 USDC
# The bare formulas: no spread floor, no skew cap (the desk's limits are tested in test_market_maker.py)
BARE = {"min_spread_bps": 0.0, "max_skew_bps": None, "gamma": 0.02, "kappa": 0.2, "vol_init": 0.8}


def sigma_usdc(vol_annual: float, s_usdc: float) -> float:
    """The maker's volatility in USDC per sqrt(second): annualised log-return vol -> per second, times the price."""
    return vol_annual / math.sqrt(YEAR_S) * s_usdc


def quotes_sent(ctx: FakeContext) -> tuple[list[int], list[int]]:
    """(bid prices high to low, ask prices low to high) of the limit orders waiting."""
    bids = sorted((s.kwargs["price"] for s in ctx.pending("limit") if s.kwargs["side"] == BUY), reverse=True)
    asks = sorted(s.kwargs["price"] for s in ctx.pending("limit") if s.kwargs["side"] == SELL)
    return bids, asks


def expected_ladder(r: float, d: float, p: MarketMakerParams) -> tuple[list[int], list[int]]:
    """The ladder from (r, d) in USDC as the docstring states it, in ticks."""
    step = S_TICKS * p.level_spacing_bps / 1e4
    bids = [math.floor((r - d) / TICK - i * step) for i in range(p.n_levels)]
    asks = [math.ceil((r + d) / TICK + i * step) for i in range(p.n_levels)]
    return bids, asks


def refresh_at(t_us: int, params: dict, q_lots: int = 0, end_us: int = 120_000_000) -> tuple[MarketMaker, FakeContext]:
    """A maker built on a wide book (nothing to clamp against) with ``q_lots`` of inventory, refreshing at ``t_us``."""
    ctx = FakeContext(mark=S_TICKS)
    ctx.set_book(S_TICKS - 10_000, S_TICKS + 10_000)  # 1,000 USDC either side
    ctx.end_us = end_us
    if q_lots:
        ctx.set_position(q_lots, entry_price=S_TICKS)
    ctx.now = t_us
    mm = build_agent(MarketMaker, params, ctx)
    mm.on_wake(t_us)
    return mm, ctx


# ---------------------------------------------------------------------- Avellaneda-Stoikov, T - t counting down


def test_avellaneda_stoikov_with_the_run_as_horizon_quotes_its_formula_by_hand() -> None:
    # r = s - q gamma sigma^2 (T - t);  delta_a + delta_b = gamma sigma^2 (T - t) + (2 / gamma) ln(1 + gamma / k)
    s, q, gamma, k = 60_000.0, 2.0, 0.02, 0.2
    sigma = sigma_usdc(0.8, s)
    t_us, end_us = 30_000_000, 120_000_000
    tau = 90.0  # seconds left
    r = s - q * gamma * sigma**2 * tau
    spread = gamma * sigma**2 * tau + (2 / gamma) * math.log(1 + gamma / k)
    mm, ctx = refresh_at(t_us, {**BARE, "horizon": "run"}, q_lots=2_000, end_us=end_us)
    assert mm.time_left_s(t_us) == tau
    assert quotes_sent(ctx) == expected_ladder(r, spread / 2, mm.p)
    quote = mm.last_quote
    assert quote is not None
    assert quote.reservation * TICK == pytest.approx(r, rel=1e-12)
    assert 2 * quote.half_spread * TICK == pytest.approx(spread, rel=1e-12)
    # the skew is real here (q gamma sigma^2 tau is about 263 USDC) and the spread over a thousand ticks
    assert s - r > 200 and spread > 100


def test_avellaneda_stoikov_spread_shrinks_to_the_riskless_spread_as_t_reaches_the_end() -> None:
    gamma, k = 0.02, 0.2
    floor = (2 / gamma) * math.log(1 + gamma / k)  # what is left at T: 9.53 USDC
    end_us = 60_000_000
    spreads, skews = [], []
    for t_s in (0, 15, 30, 45, 55, 59, 59.9, 60):
        mm, ctx = refresh_at(int(t_s * 1e6), {**BARE, "horizon": "run"}, q_lots=-3_000, end_us=end_us)
        quote = mm.last_quote
        assert quote is not None
        spreads.append(2 * quote.half_spread * TICK)
        skews.append((quote.reservation - S_TICKS) * TICK)  # short: the reservation is above s
        bids, asks = quotes_sent(ctx)
        assert bids[0] == quote.bid and asks[0] == quote.ask
    assert all(a > b for a, b in zip(spreads, spreads[1:])), "the spread narrows as T - t falls"
    assert all(a > b for a, b in zip(skews, skews[1:])) and skews[0] > 0
    assert spreads[-1] == pytest.approx(floor, rel=1e-12) and skews[-1] == 0.0
    # at T the ladder is the riskless one around s, whatever the inventory
    bids, asks = quotes_sent(ctx)
    assert (bids[0], asks[0]) == (math.floor(S_TICKS - floor / 2 / TICK), math.ceil(S_TICKS + floor / 2 / TICK))
    # beyond the end nothing goes negative: T - t stays at 0
    assert mm.time_left_s(end_us + 5_000_000) == 0.0


def test_a_session_horizon_counts_down_and_restarts() -> None:
    mm, _ = refresh_at(0, {**BARE, "horizon": "session", "session_s": 600.0})
    assert mm.time_left_s(0) == 600.0
    assert mm.time_left_s(150_000_000) == 450.0
    assert mm.time_left_s(599_999_999) == pytest.approx(1e-6)
    assert mm.time_left_s(600_000_000) == 600.0  # the next session
    assert mm.time_left_s(1_000_000_000) == 200.0
    # and the quotes follow it: late in a session the spread is narrower than at its start
    early, _ = refresh_at(10_000_000, {**BARE, "horizon": "session", "session_s": 600.0}, q_lots=1_000)
    late, _ = refresh_at(590_000_000, {**BARE, "horizon": "session", "session_s": 600.0}, q_lots=1_000)
    assert early.last_quote is not None and late.last_quote is not None
    assert late.last_quote.half_spread < early.last_quote.half_spread


def test_the_fixed_horizon_is_the_default_and_ignores_time() -> None:
    a, _ = refresh_at(0, BARE, q_lots=1_000)
    b, _ = refresh_at(100_000_000, BARE, q_lots=1_000)
    assert a.p.horizon == "fixed" and a.p.quoting == "as"
    assert a.last_quote is not None and b.last_quote is not None
    assert (a.last_quote.bid, a.last_quote.ask) == (b.last_quote.bid, b.last_quote.ask)
    s, gamma, k, q, tau = 60_000.0, 0.02, 0.2, 1.0, a.p.tau_s
    sigma = sigma_usdc(0.8, s)
    r = s - q * gamma * sigma**2 * tau
    d = gamma * sigma**2 * tau / 2 + math.log(1 + gamma / k) / gamma
    assert a.last_quote.bid == math.floor((r - d) / TICK) and a.last_quote.ask == math.ceil((r + d) / TICK)


# ---------------------------------------------------------------------- GLFT, the closed form with the arrival scale


@pytest.mark.parametrize("q_lots", [0, 1_500, -1_500, 4_000])
def test_glft_quotes_its_closed_form_by_hand(q_lots: int) -> None:
    # Gueant, Lehalle & Fernandez-Tapia (2013), section 4:
    # delta_b(q) = (1/gamma) ln(1 + gamma/k) + ((2q + 1)/2) sqrt(sigma^2 gamma / (2 k A) (1 + gamma/k)^(1 + k/gamma))
    # delta_a(q) = (1/gamma) ln(1 + gamma/k) - ((2q - 1)/2) sqrt(same)
    s, gamma, k, a = 60_000.0, 0.02, 0.2, 0.5
    q = q_lots * LOT
    sigma = sigma_usdc(0.8, s)
    root = math.sqrt(sigma**2 * gamma / (2 * k * a) * (1 + gamma / k) ** (1 + k / gamma))
    delta_b = math.log(1 + gamma / k) / gamma + (2 * q + 1) / 2 * root
    delta_a = math.log(1 + gamma / k) / gamma - (2 * q - 1) / 2 * root
    mm, ctx = refresh_at(0, {**BARE, "quoting": "glft", "arrival_a": a}, q_lots=q_lots)
    bids, asks = quotes_sent(ctx)
    assert bids[0] == math.floor((s - delta_b) / TICK) and asks[0] == math.ceil((s + delta_a) / TICK)
    # the deeper levels: the same step as the AS ladder, from the GLFT's first level
    r, d = s + (delta_a - delta_b) / 2, (delta_a + delta_b) / 2
    assert (bids, asks) == expected_ladder(r, d, mm.p)
    # the paper's spread psi = (2/gamma) ln(1 + gamma/k) + root, whatever the inventory; the skew -q * root
    quote = mm.last_quote
    assert quote is not None
    assert 2 * quote.half_spread * TICK == pytest.approx(2 / gamma * math.log(1 + gamma / k) + root, rel=1e-12)
    assert (quote.reservation - S_TICKS) * TICK == pytest.approx(-q * root, rel=1e-12, abs=1e-9)


def test_glft_has_no_horizon_its_quotes_do_not_move_with_time() -> None:
    params = {**BARE, "quoting": "glft", "arrival_a": 0.5}
    a, _ = refresh_at(0, params, q_lots=2_000)
    b, _ = refresh_at(110_000_000, params, q_lots=2_000)
    assert a.last_quote is not None and b.last_quote is not None
    assert (a.last_quote.bid, a.last_quote.ask) == (b.last_quote.bid, b.last_quote.ask)


def test_more_arrivals_mean_a_narrower_glft_spread_and_a_smaller_skew() -> None:
    """The paper's comparative statics (section 6): A up has the effect of sigma^2 down."""
    thin, _ = refresh_at(0, {**BARE, "quoting": "glft", "arrival_a": 0.1}, q_lots=2_000)
    busy, _ = refresh_at(0, {**BARE, "quoting": "glft", "arrival_a": 10.0}, q_lots=2_000)
    assert thin.last_quote is not None and busy.last_quote is not None
    assert busy.last_quote.half_spread < thin.last_quote.half_spread
    assert S_TICKS - busy.last_quote.reservation < S_TICKS - thin.last_quote.reservation


# ---------------------------------------------------------------------- parameters


@pytest.mark.parametrize("params, field", [
    ({"quoting": "gueant"}, "quoting"),
    ({"horizon": "day"}, "horizon"),
    ({"horizon": "session", "session_s": 0}, "session_s"),
    ({"horizon": "session", "session_s": -60.0}, "session_s"),
    ({"horizon": "session"}, "session_s"),  # a session needs its length
    ({"session_s": 600.0}, "session_s"),  # a length without a session is not silently ignored
    ({"quoting": "glft"}, "arrival_a"),  # GLFT needs its arrival scale
    ({"quoting": "glft", "arrival_a": 0}, "arrival_a"),
    ({"quoting": "glft", "arrival_a": float("inf")}, "arrival_a"),
    ({"arrival_a": 1.0}, "arrival_a"),  # an arrival scale without GLFT
    ({"quoting": "glft", "arrival_a": 1.0, "horizon": "run"}, "horizon"),  # the closed form is stationary
    ({"requote_on_fill": 1}, "requote_on_fill"),
    ({"requote_on_fill": "yes"}, "requote_on_fill"),
])
def test_bad_model_params_are_refused_naming_the_field(params: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        MarketMakerParams(**params)
    assert e.value.field == field


def test_glft_parameters_for_another_price_scale_are_refused_naming_kappa() -> None:
    """BTC's gamma and kappa on a 2 USDC coin: GLFT's half-spread would be dollars wide, refused as the AS one is."""
    coin = FakeContext(mark=20_000, tick_size="0.0001", lot_size="1")  # 2 USDC
    with pytest.raises(InvalidInput) as e:
        build_agent(MarketMaker, {"quoting": "glft", "arrival_a": 1.0}, coin)
    assert e.value.field == "agents.market_maker.kappa"
    build_agent(MarketMaker, {"quoting": "glft", "arrival_a": 1.0, "gamma": 1.0, "kappa": 5_000.0},
                FakeContext(mark=20_000, tick_size="0.0001", lot_size="1"))


def test_bad_model_params_through_the_model_name_the_group() -> None:
    with pytest.raises(InvalidInput) as e:
        MarketModel(scenario(duration_s=10, markets=(market(),),
                             agents=(group("market_maker", 1, {"quoting": "glft"}, name="desk"),)))
    assert e.value.field == "agents.desk.arrival_a" and "quoting = 'glft'" in str(e.value)


# ---------------------------------------------------------------------- requote on fill


def test_a_maker_requotes_its_data_latency_after_a_fill() -> None:
    ctx = FakeContext(mark=S_TICKS)
    ctx.set_book(S_TICKS - 10, S_TICKS + 10)
    mm = build_agent(MarketMaker, {"requote_on_fill": True, "wake_every_s": 5.0, "data_latency_ms": 20.0}, ctx)
    assert ctx.fill_watch is not None and ctx.fill_watch[1] == 20_000
    mm.on_wake(0)
    ctx.answer_all()
    (best_bid,) = [oid for oid, (_, side, price, _) in ctx.open_orders().items()
                   if side == BUY and price == mm.last_quote.bid]  # type: ignore[union-attr]
    ctx.now = 1_000_000
    ctx.fill_resting(best_bid)  # a taker sells into the first bid, 4 s before the next wake
    ctx.fill_resting(next(o for o, d in ctx.open_orders().items() if d[1] == BUY))  # and the next, in the same sweep
    ctx.set_position(1_150)
    assert not ctx.pending()
    ctx.run_wakes(1_019_999)
    assert not ctx.pending(), "it cannot act before it has heard"
    ctx.run_wakes(1_020_000)  # one notice for the burst, one refresh: the lost levels come back, skewed lower
    assert mm.fill_notices == 1 and mm.refreshes == 2
    assert sorted(s.kwargs["side"] for s in ctx.pending("limit")) == [BUY, BUY]
    assert {s.action for s in ctx.pending()} <= {"limit", "modify"}


def test_without_requote_on_fill_a_fill_waits_for_the_next_wake() -> None:
    ctx = FakeContext(mark=S_TICKS)
    ctx.set_book(S_TICKS - 10, S_TICKS + 10)
    mm = build_agent(MarketMaker, {"wake_every_s": 5.0}, ctx)
    assert ctx.fill_watch is None
    mm.on_wake(0)
    ctx.answer_all()
    ctx.now = 1_000_000
    ctx.fill_resting(next(iter(ctx.open_orders())))
    ctx.run_wakes(4_000_000)
    assert not ctx.pending() and mm.refreshes == 1


def _fills_run(requote: bool, seed: int = 2, duration_s: float = 60) -> tuple[MarketModel, list]:
    """Three makers under market orders with little resting noise flow, so the makers' quotes are what fills."""
    mm = {"wake_every_s": 1.0, "requote_on_fill": requote}
    noise = {"alpha": 0.0005, "mu": 0.1}
    model = MarketModel(scenario(seed=seed, duration_s=duration_s, markets=(market(symbol="BTC-PERP", s0=60_000),),
                                 agents=(group("noise", 20, noise), group("market_maker", 3, mm))), audit=True)
    heard: list = []
    for agent in model.agents_by_kind["market_maker"]:
        if requote:  # listen in on what each maker hears (the same watch, re-registered with a recorder in front)
            def record(t: int, fills: list, a: MarketMaker = agent) -> None:
                heard.append((a.account, t, fills))
                a._on_fills(t, fills)

            agent.ctx.watch_fills(record, int(agent.p.data_latency_ms * 1000))
    model.run()
    return model, heard


def test_fill_notices_in_a_run_are_the_makers_own_fills_heard_after_their_latency() -> None:
    model, heard = _fills_run(True)
    trades = model.tables()["trades"]
    makers = model.agents_by_kind["market_maker"]
    assert heard and all(a.fill_notices > 0 for a in makers)
    told = 0
    for account, t, fills in heard:
        assert t == fills[0].time_us + 20_000, "heard its data latency after the first fill of the burst"
        for f in fills:
            row = trades[(trades.maker_oid == f.oid) & (trades.time_us == f.time_us) & (trades.qty == f.qty)]
            assert len(row) == 1 and int(row.maker_account.iloc[0]) == account and int(row.price.iloc[0]) == f.price
            assert f.side == 1 - int(row.taker_side.iloc[0]) and f.symbol == "BTC-PERP"
            told += 1
    # every fill of a maker's resting order is told, once
    mine = trades[trades.maker_account.isin([a.account for a in makers])]
    assert told == len(mine)
    gaps = model.steps_frame()["conservation_gap"].to_numpy()
    assert (gaps == 0).all()


def test_nothing_listens_to_fills_unless_a_maker_asks() -> None:
    model, _ = _fills_run(False, duration_s=5)
    assert model.fill_notices == {}
    assert len(model.exchange._subscribers) == 1  # the tape only
    asked, _ = _fills_run(True, duration_s=5)
    assert len(asked.fill_notices) == 1 and len(asked.exchange._subscribers) == 2


def test_a_spot_maker_hears_of_its_fills_on_its_own_venue() -> None:
    from abm.scenarios import load_scenario

    spot = {"run.duration_s": 60, "agents.whale.start_s": 50, "markets[0].shocks": [], "markets[0].index": "venues",
            "spot": {"binance": {"weight": 1}},
            "agents.spot_mm": {"kind": "market_maker", "count": 2, "venue": "binance", "deposit_usdc": 2_000_000,
                               "spot_inventory": 20.0, "reference": "mid", "requote_on_fill": True},
            "agents.spot_noise": {"kind": "noise", "count": 20, "venue": "binance", "deposit_usdc": 1_000_000,
                                  "spot_inventory": 10.0, "alpha": 0.0005, "mu": 0.1}}
    model = MarketModel(load_scenario("whale_dump", spot, seed=7), audit=True)
    heard: list = []
    for agent in model.agents_by_group["spot_mm"]:
        def record(t: int, fills: list, a: MarketMaker = agent) -> None:
            heard.extend(fills)
            a._on_fills(t, fills)

        agent.ctx.watch_fills(record, 20_000)
    model.run()
    assert list(model.fill_notices) == [id(model.spot_venues["binance"])]  # the perp makers did not ask
    assert heard and {f.symbol for f in heard} == {"BTC/USDC"}
    assert all(a.fill_notices > 0 for a in model.agents_by_group["spot_mm"])
    assert (model.steps_frame()["conservation_gap"].to_numpy() == 0).all()


def test_requoting_on_fill_is_deterministic() -> None:
    a, heard_a = _fills_run(True, duration_s=20)
    b, heard_b = _fills_run(True, duration_s=20)
    assert heard_a == heard_b and len(heard_a) > 0
    assert a.tables()["trades"].equals(b.tables()["trades"])
