"""The whale kind: market dump, TWAP slices, iceberg visibility, liquidation hunting, exits and bad params."""

from __future__ import annotations

from fractions import Fraction

import pytest

from abm.agents.whale import Whale, WhaleParams
from abm.errors import InvalidInput
from abm.model import MarketModel
from tests.support import SYM, shock, whale_model, whale_of

S0_TICKS = 600_000  # 60,000 USDC at tick 0.1
BUY, SELL = 0, 1


def probe_mid(m: MarketModel, start_us: int, end_us: int, every_us: int) -> list[tuple[int, float]]:
    """Record the book mid on a fine clock (the test's own events; agents never see them)."""
    out: list[tuple[int, float]] = []
    view = m.views[SYM]

    def look(t: int) -> None:
        mid = view.mid()
        if mid is not None:
            out.append((t, mid))

    for t in range(start_us, end_us, every_us):
        m.sched.at(t, look)
    return out


def whale_taker_orders(m: MarketModel, w: Whale):  # type: ignore[no-untyped-def]
    tr = m.tables()["trades"]
    return tr[tr.taker_account == w.account]


# ---------------------------------------------------------------------- market dump


def test_market_dump_sells_size_at_start_and_the_mid_falls() -> None:
    m = whale_model({"execution": "market", "size": 10.0, "start_s": 120.0}, duration_s=130)
    w = whale_of(m)
    mids = probe_mid(m, 119_000_000, 120_200_000, 20)
    m.run()
    assert w.position().size == -10_000  # 10 BTC sold, one order
    assert len(w.orders) == 1 and w.orders[0]["qty"] == 10_000
    fills = whale_taker_orders(m, w)
    assert fills.taker_oid.nunique() == 1
    t_fill = int(fills.time_us.iloc[0])
    lat = w.latency
    assert 120_000_000 + lat.data_us + lat.entry_us <= t_fill <= 120_000_000 + lat.data_us + lat.entry_us + 2 * lat.jitter_us
    assert int(fills.qty.sum()) == 10_000 and (fills.taker_side == SELL).all()
    before = [mid for t, mid in mids if t < t_fill]
    after = [mid for t, mid in mids if t >= t_fill]
    assert before and after
    # the dump walked the bids down: the mid right after it is well below the mid right before
    drop_bps = (before[-1] - after[0]) / before[-1] * 10_000
    assert drop_bps > 3, drop_bps
    assert fills.price.min() < before[-1] * (1 - 6 / 10_000)


def test_market_dump_with_a_slippage_limit_stops_at_the_limit() -> None:
    m = whale_model({"execution": "market", "size": 20.0, "start_s": 120.0, "slippage_bps": 10.0}, duration_s=130)
    w = whale_of(m)
    m.run()
    (o,) = w.orders
    assert 0 < o["filled"] < 20_000  # the book within 10 bps could not take 20 BTC
    fills = whale_taker_orders(m, w)
    bound = o["mid"] * (1 - Fraction(10, 10_000))
    assert fills.price.min() >= bound
    assert w.position().size == -o["filled"]


# ---------------------------------------------------------------------- twap


def test_twap_slices_number_timing_and_slippage_bound() -> None:
    params = {"execution": "twap", "side": "sell", "size": 60.0, "start_s": 60.0, "slice_s": 20.0,
              "duration_s": 200.0, "max_slippage_bps": 5.0}
    m = whale_model(params, duration_s=290)
    w = whale_of(m)
    m.run()
    assert w.slices_planned == [6_000] * 10
    assert [o["tag"] for o in w.orders] == ["twap"] * 10
    lat = w.latency
    lo, hi = lat.data_us + lat.entry_us, lat.data_us + lat.entry_us + 2 * lat.jitter_us
    fills = whale_taker_orders(m, w)
    per_order = fills.groupby("taker_oid").agg(t=("time_us", "min"), t_max=("time_us", "max"), qty=("qty", "sum"),
                                               first=("price", "first"), low=("price", "min"))
    assert len(per_order) == 10  # every slice traded
    for i, (t, row) in enumerate(zip(sorted(per_order.t), per_order.sort_values("t").itertuples())):
        due = 60_000_000 + i * 20_000_000
        assert due + lo <= t <= due + hi, (i, t)
        assert row.t_max == row.t  # one slice, one instant
        assert row.qty <= 6_000
        # never past 5 bps: the bound is taken from the mid, which is at or above the first (best) bid
        assert row.low >= row.first * (1 - 5 / 10_000)
    for o in w.orders:
        assert o["slippage_bps"] == 5.0
    # the bound binds: some slices could not fill completely within 5 bps
    assert (per_order.qty < 6_000).any()
    assert -w.position().size == int(per_order.qty.sum())


def test_twap_default_slippage_is_three_percent() -> None:
    assert WhaleParams().max_slippage_bps == 300.0
    m = whale_model({"execution": "twap", "size": 3.0, "start_s": 10.0, "slice_s": 30.0, "duration_s": 90.0}, duration_s=90)
    w = whale_of(m)
    m.run()
    assert [o["slippage_bps"] for o in w.orders] == [300.0] * 3
    assert w.position().size == -3_000


# ---------------------------------------------------------------------- iceberg


def test_iceberg_never_shows_more_than_display_size_and_refills() -> None:
    params = {"execution": "iceberg", "side": "sell", "size": 2.0, "display_size": 0.2, "offset_bps": 0.0,
              "start_s": 30.0, "duration_s": 300.0, "refill_check_s": 1.0, "reprice_bps": 1.0}
    m = whale_model(params, duration_s=400, mm=0, noise={})  # the default noise: larger market orders
    w = whale_of(m)
    seen: list[int] = []

    def look(t: int) -> None:
        seen.append(sum(q for (_, side, _, q) in w.open_orders().values()))

    for t in range(30_000_000, 400_000_000, 100_000):
        m.sched.at(t, look)
    m.run()
    assert max(seen) == 200  # shown, and never more than 0.2 BTC at a time
    tr = m.tables()["trades"]
    made = tr[tr.maker_account == w.account]  # resting parts that were hit
    took = tr[tr.taker_account == w.account]  # a part that met a bid moved up during its latency
    assert (made.taker_side == BUY).all() and (took.taker_side == SELL).all()  # it only sold
    assert len(made) > len(took)
    oid = made.maker_oid.tolist() + took.taker_oid.tolist()
    fills = made.qty.tolist() + took.qty.tolist()
    per_order: dict[int, int] = {}
    for o, q in zip(oid, fills):
        per_order[o] = per_order.get(o, 0) + q
    assert len(per_order) >= 5 and max(per_order.values()) <= 200  # refilled several times, 0.2 BTC each at most
    for o in set(made.maker_oid):  # each visible part rests at one price
        assert made[made.maker_oid == o].price.nunique() == 1
    assert w.iceberg_shown >= len(per_order) and w.iceberg_shown <= len(per_order) + w.iceberg_pulls + 1
    executed = -w.position().size
    assert executed == sum(fills) and executed > 1_000
    if executed == 2_000:
        assert w.state == "done" and w.n_open_orders() == 0


# ---------------------------------------------------------------------- hunt


def build_crowd(m: MarketModel) -> dict[str, list[int]]:
    """Leveraged positions opened directly through the exchange before the run (a counterparty takes the other side).

    - 12 longs of 1 BTC at 60,000 with 1,600 USDC each (liquidation price about 59,167, 1.4 % below);
    - 3 longs of 0.5 BTC with 2,000 USDC each (liquidation price about 56,736, 5.4 % below);
    - 3 shorts of 0.5 BTC with 900 USDC each (liquidation price about 61,010, 1.7 % above).
    """
    ex = m.exchange
    cp = ex.open_account(50_000_000 * 10**6)

    def open_pos(side: int, lots: int, deposit_usdc: int) -> int:
        aid = ex.open_account(deposit_usdc * 10**6)
        ex.set_leverage(aid, SYM, 40)
        ex.limit(cp, SYM, 1 - side, lots, S0_TICKS)
        ex.market_order(aid, SYM, side, lots)
        return aid

    crowd = {"cluster": [open_pos(BUY, 1_000, 1_600) for _ in range(12)],
             "far": [open_pos(BUY, 500, 2_000) for _ in range(3)],
             "shorts": [open_pos(SELL, 500, 900) for _ in range(3)]}
    # a static ladder of bids (0.2 BTC every 30 USDC from 59,800 down to 57,610) so that the book below the
    # mark never has holes: the noise book is thin under one-sided selling, and a hole would let the mark
    # jump past the cluster straight to the backstop
    for price in range(598_000, 576_000, -300):
        ex.limit(cp, SYM, BUY, 200, price)
    return crowd


HUNT = {"execution": "hunt", "side": "auto", "size": 60.0, "hunt_slice_size": 2.0, "slice_s": 5.0,
        "max_slippage_bps": 50.0, "start_s": 60.0, "duration_s": 400.0}


def test_hunt_sells_toward_the_densest_liquidation_cluster_and_triggers_book_liquidations() -> None:
    m = whale_model(HUNT, duration_s=300)
    crowd = build_crowd(m)
    w = whale_of(m)
    liq_prices = [m.exchange.liquidation_price(a, SYM) for a in crowd["cluster"]]
    m.run()
    c = w.hunt_cluster
    assert c is not None and c["side"] == "long"  # the longs' cluster below outweighs the shorts' above
    assert c["target"] == int(min(liq_prices))  # floor of the farthest liquidation price of the bucket
    assert c["notional"] == sum(int(1_000 * 100 * p) for p in liq_prices)  # multiplier 100 quote units/tick/lot
    assert w.hunt_scans == 1
    assert w.position().size < 0  # it sold
    hunt_orders = [o for o in w.orders if o["tag"] == "hunt"]
    assert hunt_orders and all(o["side"] == SELL and o["qty"] == 2_000 for o in hunt_orders)
    liq = m.tables()["liquidations"]
    assert len(liq) and liq.time_us.min() > 60_000_000
    hit = set(liq.account)
    assert set(crowd["cluster"]) <= hit  # the whole cluster went
    assert not hit & set(crowd["shorts"])  # the shorts above did not
    first = liq.sort_values("event_id").iloc[0]
    assert first.account in crowd["cluster"]  # the cascade started at the cluster (the far longs may follow)
    book = liq[liq.kind == "book"]
    assert len(book) >= 1 and set(book.account) & set(crowd["cluster"])
    assert (book["size"] < 0).all()  # long positions sold into the book
    tr = m.tables()["trades"]
    assert (tr[tr.liquidation == 1].taker_side == SELL).all() and (tr.liquidation == 1).any()
    # it stopped once the mark had reached the cluster (its next look after the first liquidation),
    # before spending its budget
    assert w.state == "done" and w.done_us is not None
    t_first = int(liq.time_us.min())
    assert t_first <= w.done_us <= t_first + 2 * 5_000_000
    assert not [o for o in w.orders if o["sent_us"] > w.done_us]
    assert -w.position().size < w.lots
    assert w.hunt_reached and not w.shortfalls  # its job was the target, not the budget: nothing is short


def test_without_the_whale_the_crowd_survives() -> None:
    m = whale_model(None, duration_s=300)
    build_crowd(m)
    m.run()
    assert len(m.tables()["liquidations"]) == 0


def test_hunt_finds_nothing_out_of_range_and_keeps_looking() -> None:
    m = whale_model({**HUNT, "side": "buy", "max_distance_pct": 1.0}, duration_s=100)
    build_crowd(m)  # the shorts' liquidation prices are 1.7 % above: out of range
    w = whale_of(m)
    m.run()
    assert w.hunt_cluster is None and w.position().size == 0 and not w.orders
    assert w.hunt_scans >= 5  # it kept looking, once per slice_s


# ---------------------------------------------------------------------- exits


def test_close_after_flattens_the_position() -> None:
    m = whale_model({"execution": "market", "size": 2.0, "start_s": 30.0, "exit": "close_after", "close_after_s": 20.0},
             duration_s=90)
    w = whale_of(m)
    m.run()
    assert w.position().size == 0 and w.state == "closed"
    closes = [o for o in w.orders if o["tag"] == "close"]
    assert closes and closes[0]["sent_us"] >= 50_000_000 and closes[0]["side"] == BUY


def test_take_profit_closes_when_the_mark_moves_in_favour() -> None:
    params = {"execution": "market", "size": 2.0, "start_s": 30.0, "exit": "take_profit", "take_profit_bps": 20.0}
    m = whale_model(params, duration_s=200, shocks=(shock(60, 30, -1.0),))  # the index falls 1 % after the dump
    w = whale_of(m)
    entry = None
    marks: list[tuple[int, int]] = []
    while m.running:
        m.step()
        if entry is None and w.position().size:
            entry = w.position().entry_price
        marks.append((m.sched.now, m.exchange.risk.mark(0)))
    closes = [o for o in w.orders if o["tag"] == "close"]
    assert entry is not None and closes and w.position().size == 0 and w.state == "closed"
    level = entry * (1 - Fraction(20, 10_000))
    # not before the mark had reached the level, and then promptly
    reached = min(t for t, mk in marks if mk <= level)
    assert reached - 1_000_000 <= closes[0]["sent_us"] <= reached
    assert all(mk > level for t, mk in marks if t < closes[0]["sent_us"] - 1_000_000)


# ---------------------------------------------------------------------- params


@pytest.mark.parametrize("field,value", [
    ("execution", "vwap"), ("side", "auto"), ("size", 0), ("size", -1.0), ("start_s", -1),
    ("slippage_bps", 10_000), ("slice_s", 0), ("duration_s", 0), ("max_slippage_bps", 0),
    ("display_size", 0), ("offset_bps", 10_000), ("bucket_bps", 0), ("max_distance_pct", 0),
    ("hunt_slice_size", -1.0), ("leverage", 0), ("exit", "later"), ("take_profit_bps", 0),
    ("close_after_s", -5), ("refill_check_s", 0), ("size", True),
])
def test_bad_params_are_named(field: str, value: object) -> None:
    with pytest.raises(InvalidInput) as e:
        WhaleParams(**{field: value})
    assert e.value.field == field


def test_bad_params_named_through_the_model() -> None:
    with pytest.raises(InvalidInput) as e:
        whale_model({"execution": "twap", "slice_s": 60.0, "duration_s": 30.0})
    assert e.value.field == "agents.whale.duration_s"
    with pytest.raises(InvalidInput) as e:
        whale_model({"sise": 3.0})
    assert e.value.field == "agents.whale.sise" and "size" in e.value.allowed
    with pytest.raises(InvalidInput) as e:
        whale_model({"size": 0.0001})  # below one lot (0.001)
    assert e.value.field == "agents.whale.size"
    with pytest.raises(InvalidInput) as e:
        whale_model({"leverage": 500})
    assert e.value.field == "agents.whale.leverage"
    assert WhaleParams(execution="hunt", side="auto").side == "auto"


# ---------------------------------------------------------------------- a venue's maximum market-order value


@pytest.mark.parametrize("lots, limit_usdc", [(80_000, 1_000_000), (80_000, 999_999), (1_234, 10_000), (500, 60_000)])
def test_a_block_above_the_max_market_order_value_goes_as_children_within_it(lots: int, limit_usdc: int) -> None:
    """Block value V = lots x mark x multiplier, limit L: ceil(lots / floor(L / lot value)) children (ceil(V / L) when
    a lot's value divides L), each worth at most L, of sizes within one lot, sent in order, adding up to the block."""
    from abm.agents.testing import FakeContext, build_agent
    from abm.venues.rules import EnforcedLimits

    ctx = FakeContext(mark=S0_TICKS)
    ctx.limits[SYM] = EnforcedLimits(max_market_order_value=limit_usdc * 10**6)
    w = build_agent(Whale, {"execution": "market", "size": lots / 1000, "start_s": 0.0}, ctx)
    ctx.bind(w)
    w.start()
    ctx.run_wakes(0)
    lot_value = S0_TICKS * ctx.multiplier(SYM)  # 60 USDC in quote units
    most = limit_usdc * 10**6 // lot_value
    n = -(-lots // most)
    sent = ctx.pending("market")
    sizes = [s.kwargs["qty"] for s in sent]
    assert len(sent) == n and sum(sizes) == lots and max(sizes) - min(sizes) <= 1
    assert all(q * lot_value <= limit_usdc * 10**6 for q in sizes)
    if (limit_usdc * 10**6) % lot_value == 0:
        assert n == -(-(lots * lot_value) // (limit_usdc * 10**6))  # ceil(V / L)
    assert [s.t_us for s in sent] == sorted(s.t_us for s in sent)
    ctx.answer_all()
    assert w.filled_lots == lots and not w.shortfalls and len(w.orders) == n


def test_without_a_limit_the_block_goes_as_one_order() -> None:
    from abm.agents.testing import FakeContext, build_agent

    ctx = FakeContext(mark=S0_TICKS)
    w = build_agent(Whale, {"execution": "market", "size": 80.0, "start_s": 0.0}, ctx)
    ctx.bind(w)
    w.start()
    ctx.run_wakes(0)
    assert [s.kwargs["qty"] for s in ctx.pending("market")] == [80_000]


def test_a_child_refused_for_the_limit_is_split_again_at_the_mark_then() -> None:
    from abm.agents.testing import FakeContext, build_agent
    from abm.errors import OrderLimitViolation
    from abm.venues.rules import EnforcedLimits

    ctx = FakeContext(mark=S0_TICKS)
    ctx.limits[SYM] = EnforcedLimits(max_market_order_value=600 * 10**6)  # 10 lots at the mark
    w = build_agent(Whale, {"execution": "market", "size": 0.02, "start_s": 0.0}, ctx)
    ctx.bind(w)
    w.start()
    ctx.run_wakes(0)
    assert [s.kwargs["qty"] for s in ctx.pending("market")] == [10, 10]
    ctx.marks[SYM] = S0_TICKS * 2  # the mark doubled before the first child landed: 5 lots fit now
    ctx.reject(OrderLimitViolation("max_market_order_value", "1,200 USDC", "at most 600 USDC"))
    assert [s.kwargs["qty"] for s in ctx.pending("market")] == [10, 5, 5]
    ctx.answer_all()
    assert w.filled_lots == 20 and not w.shortfalls and w.flow_refusals == 0
