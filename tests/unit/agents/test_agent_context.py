"""Agents act through a context: unit tests on FakeContext (no model, no exchange) and the real context's rules
(set-up calls at once before the run and over the link during it, read-only account views)."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from abm.agents import Trader
from abm.agents.leveraged import LeveragedTrader
from abm.agents.market_maker import MarketMaker
from abm.agents.testing import FakeContext, build_agent
from abm.errors import InvalidInput
from abm.exchange import Exchange
from abm.model import MarketModel
from tests.support import REPO, group, market, scenario

BUY, SELL = 0, 1
BTC = "BTC-PERP"


# ---------------------------------------------------------------------- market maker quoting, on FakeContext


def quoting_maker(**params: object) -> tuple[MarketMaker, FakeContext]:
    ctx = FakeContext(mark=600_000)
    ctx.set_book(599_990, 600_010)
    return build_agent(MarketMaker, {"n_levels": 3, **params}, ctx), ctx


def test_maker_sets_up_cross_and_quotes_its_ladder_post_only() -> None:
    mm, ctx = quoting_maker(leverage=5)
    assert ctx.setup == [("set_margin_mode", BTC, "cross"), ("set_leverage", BTC, 5)]
    mm.on_wake(0)
    sent = ctx.pending()
    assert [s.action for s in sent] == ["limit"] * 6
    assert all(s.kwargs["post_only"] and s.kwargs["tif"] == "GTC" for s in sent)
    r, d = mm.target(599_990 / 2 + 600_010 / 2, 0.0)
    want = mm.ladder(600_000.0, r, d, 599_990, 600_010, True, True)
    assert {(s.kwargs["side"], s.kwargs["price"], s.kwargs["qty"]) for s in sent} == {
        (k[0], price, lots) for k, (price, lots) in want.items()}
    assert len({s.kwargs["client_id"] for s in sent}) == 6
    move = max(1, int(600_000 * mm.p.refresh_move_bps / 1e4))
    assert ctx.price_watch[BTC] == (600_000 - move, 600_000 + move)  # requote when the mark leaves the band


def test_maker_moves_its_quotes_in_place_and_pulls_the_adding_side_on_inventory() -> None:
    mm, ctx = quoting_maker(max_inventory=1.0)
    mm.on_wake(0)
    ctx.answer_all()
    assert mm.n_open_orders() == 6
    ctx.now = 1_000_000
    ctx.marks[BTC] = 601_000
    ctx.set_book(600_990, 601_010)
    mm.on_price(ctx.now, BTC, 601_000)
    assert {s.action for s in ctx.pending()} == {"modify"}, "moved by client id, not cancelled and re-placed"
    ctx.answer_all()
    ctx.now = 2_000_000
    ctx.set_position(2_000, Fraction(601_000))  # 2 BTC long, above max_inventory = 1
    mm.on_wake(ctx.now)
    assert mm.pull_reason == "inventory" and mm.pulled_sides == (True, False)
    cancels = ctx.pending("cancel")
    assert len(cancels) == 3 and not ctx.pending("limit")
    bid_cids = {cid for (side, _), cid in list(mm._slots.items()) if side == BUY}
    assert not bid_cids  # the bids were let go; the asks keep their slots


# ---------------------------------------------------------------------- leveraged trader's stop exit, on FakeContext


STOP_PARAMS = {"signal": "long", "margin_mode": "isolated", "leverage": 10, "stop_loss_pct": 2.0, "wake": "none",
               "funding_exit_bps": None}


def entered_long() -> tuple[LeveragedTrader, FakeContext]:
    ctx = FakeContext(mark=600_000)
    ctx.set_book(599_990, 600_010)
    a = build_agent(LeveragedTrader, STOP_PARAMS, ctx)
    assert ctx.setup == [("set_margin_mode", BTC, "isolated"), ("set_leverage", BTC, 10)]
    ctx.now = 1
    a.on_wake(1)
    (entry,) = ctx.pending()
    # 0.5 of 10,000 USDC at 10x = 50,000 USDC at the ask 600,010 ticks x 100 quote units per tick-lot
    assert entry.action == "market" and entry.kwargs["side"] == BUY and entry.kwargs["qty"] == 833
    assert entry.kwargs["slippage_bps"] == 100.0 and not entry.kwargs["reduce_only"]
    ctx.set_position(833, Fraction(600_010), mode="isolated", liquidation_price=Fraction(545_000))
    ctx.fill(price=600_010)
    return a, ctx


def test_leveraged_stop_is_armed_above_the_liquidation_price_and_exits_reduce_only() -> None:
    a, ctx = entered_long()
    assert a.stop_price == 588_009  # floor(600_010 x 0.98)
    assert ctx.price_watch[BTC] == (588_009, None)  # the stop, not the lower liquidation level
    ctx.now = 50_000_000
    ctx.marks[BTC] = 588_000
    a.on_price(ctx.now, BTC, 588_000)
    (exit_order,) = ctx.pending()
    assert exit_order.action == "market" and exit_order.kwargs["side"] == SELL and exit_order.kwargs["qty"] == 833
    assert exit_order.kwargs["reduce_only"] and exit_order.kwargs["slippage_bps"] == 1000.0
    ctx.set_position(0)
    ctx.fill(price=588_000)
    assert [h[1] for h in a.history] == ["entry", "exit:stop"]
    assert a.position().size == 0 and a.active and not a.shortfall_records()


def test_leveraged_stop_refused_is_retried_until_flat() -> None:
    a, ctx = entered_long()
    ctx.now = 50_000_000
    ctx.marks[BTC] = 588_000
    a.on_price(ctx.now, BTC, 588_000)
    ctx.reject()
    assert a.rejects == 1 and [w[0] for w in ctx.wakes] == [55_000_000]  # retry_s later
    ctx.run_wakes(55_000_000)
    (retry,) = ctx.pending()
    assert retry.kwargs["reduce_only"] and retry.kwargs["qty"] == 833


# ---------------------------------------------------------------------- no exchange behind a FakeContext


def test_agents_on_a_fake_context_never_touch_an_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kw: object) -> None:
        raise AssertionError("an agent on a FakeContext reached an Exchange")

    for name, v in list(vars(Exchange).items()):
        if name.startswith("__"):  # object machinery (a compiled class's __new__ cannot be put back)
            continue
        if callable(v) or isinstance(v, property):
            monkeypatch.setattr(Exchange, name, refuse if callable(v) else property(refuse))
    test_maker_moves_its_quotes_in_place_and_pulls_the_adding_side_on_inventory()
    test_leveraged_stop_is_armed_above_the_liquidation_price_and_exits_reduce_only()
    test_leveraged_stop_refused_is_retried_until_flat()


def test_no_agent_module_reaches_into_the_exchange() -> None:
    agents = REPO / "abm" / "agents"
    for f in sorted(agents.glob("*.py")):
        if f.name in ("context.py", "spot_context.py"):  # the contexts are what hold a venue
            continue
        text = f.read_text()
        for bad in (r"self\.ex\b", r"model\.exchange\b", r"accounts\[", r"risk\.params", r"model\.(sched|feeds|paths|views)"):
            assert not re.search(bad, text), f"{f.name} uses {bad}"


# ---------------------------------------------------------------------- the real context


class SetsLeverageMidRun(Trader):
    """Sets leverage 5 at its first wake (during the run) and records when that landed."""

    kind = "sets_leverage"

    def start(self) -> None:
        self.ctx.set_leverage(self.symbol, 3)  # before the run: at once
        self.before = self.model.exchange.risk.lev(self.account, 0)  # the test's look at the venue
        self.landed: list[tuple[int, object]] = []
        self.refused: list[str] = []
        self.wake_in(1_000_000)

    def on_wake(self, t: int) -> None:
        self.sent_at = t
        self.ctx.set_leverage(self.symbol, 5, on_done=lambda res, err: self.landed.append((self.now, err)))
        self.ctx.set_leverage(self.symbol, 1_000)  # refused when it lands

    def on_reject(self, action: str, error: object) -> None:
        self.refused.append(action)


def test_set_up_calls_apply_at_once_before_the_run_and_over_the_link_during_it() -> None:
    params = {"wake": "none", "data_latency_ms": 20.0, "entry_latency_ms": 30.0, "jitter_ms": 0.0}
    cfg = scenario(seed=1, duration_s=3, markets=(market(),),
                      agents=(group(f"{__name__}:SetsLeverageMidRun", 1, params, name="probe"),))
    m = MarketModel(cfg)
    (a,) = m.agents_by_group["probe"]
    assert a.before == 3  # applied during construction, before anything ran
    m.run()
    assert a.landed == [(a.sent_at + 50_000, None)]  # data + entry latency later
    assert m.exchange.risk.lev(a.account, 0) == 5
    assert a.refused == ["set_leverage"] and a.rejects == 1 and a.actions == 0  # not an order event


def test_the_account_views_are_read_only() -> None:
    m = MarketModel(scenario(seed=1, duration_s=1, agents=(group("noise", 1, {}),)))
    (a,) = m.agents_by_kind["noise"]
    with pytest.raises(TypeError):
        a.ctx.orders[1] = 0  # type: ignore[index]
    with pytest.raises(TypeError):
        a.ctx.client_ids["x"] = 1  # type: ignore[index]


def test_basket_leverage_above_the_venue_maximum_is_refused_naming_the_group() -> None:
    cfg = scenario(seed=1, duration_s=1, markets=(market(),),
                      agents=(group("basket", 1, {"leverage": 41}, name="crowd"),))
    with pytest.raises(InvalidInput, match=r"\n  agents\.crowd\.leverage: must be <= 40 \(the venue's maximum for "
                                           r"BTC-PERP, hyperliquid; refused, not capped\), got 41$"):
        MarketModel(cfg)


class PlacesStops(Trader):
    """At 1 s: a sell stop a tick below the mark, a buy stop a tick above, and one the venue refuses; when one
    fires it cancels the other."""

    kind = "places_stops"

    def start(self) -> None:
        self.placed: list[tuple[int, object]] = []
        self.fired: list[tuple[int, object]] = []
        self.cancelled: list[tuple[int, object]] = []
        self.refused: list[str] = []
        self.wake_in(1_000_000)

    def on_wake(self, t: int) -> None:
        mark = self.mark()
        assert mark is not None
        self.sent_at = t
        for side, trig in ((SELL, mark - 1), (BUY, mark + 1)):
            self.ctx.submit_stop(self.symbol, side, 1, trig, on_done=lambda r, e: self.placed.append((self.now, r)),
                                 on_trigger=self.on_fired)
        self.ctx.submit_stop(self.symbol, SELL, 1, mark * 2)  # above the mark: refused when it lands

    def on_fired(self, report: object) -> None:
        self.fired.append((self.now, report))
        other = next(tid for _, tid in self.placed if tid != report.tid)  # type: ignore[attr-defined]
        self.ctx.cancel_stop(other, on_done=lambda r, e: self.cancelled.append((self.now, other)))

    def on_reject(self, action: str, error: object) -> None:
        self.refused.append(action)


def test_stops_travel_the_link_and_their_reports_come_back_as_wakes() -> None:
    params = {"wake": "none", "data_latency_ms": 20.0, "entry_latency_ms": 30.0, "jitter_ms": 0.0}
    cfg = scenario(seed=3, duration_s=30, markets=(market(sigma=2.0),),
                   agents=(group("noise", 20, {}), group("market_maker", 2, {}),
                           group(f"{__name__}:PlacesStops", 1, params, name="probe")))
    m = MarketModel(cfg, audit=True).run()
    (a,) = m.agents_by_group["probe"]
    assert [t for t, _ in a.placed] == [a.sent_at + 50_000] * 2 and a.refused == ["stop"] and a.rejects == 1
    (t_fired, report), = a.fired
    assert report.status == "triggered" and report.time_us == t_fired and t_fired % 1_000_000 == 0  # a mark update
    assert a.cancelled == [(t_fired + 50_000, a.cancelled[0][1])]
    assert m.exchange.trigger_report(a.account, a.cancelled[0][1]).status == "cancelled"
    trades = m.tables()["trades"]
    mine = trades[trades["trigger_id"] == report.tid]
    assert mine["qty"].sum() == 1 and (mine["taker_account"] == a.account).all()
    assert (trades.loc[trades["trigger_id"] == 0, "trigger_price"] == 0).all()
