"""A user's own strategy in a run: a long hedged by an automated exit, measured with agent_report."""

from __future__ import annotations

from decimal import Decimal

from abm.agents import Trader
from abm.analysis import agent_report
from abm.model import MarketModel
from tests.support import group, market, scenario, shock


class ProtectedLong(Trader):
    """Buys 1 BTC at 10x at its first wake, then sells it all if the mark falls `exit_pct` below entry."""

    kind = "protected_long"

    def start(self) -> None:
        self.ctx.set_leverage(self.symbol, 10)  # before the run: applies at once
        self.entry = None
        self.wake_in(30_000_000)

    def on_wake(self, t: int) -> None:
        if self.entry is None:
            self.entry = self.mark()
            lots = int(Decimal(1) / self.ctx.spec(self.symbol).lot_size)
            self.market(0, lots, slippage_bps=100)
            exit_pct = getattr(self.model, "exit_pct", 0.02)
            if exit_pct:
                self.watch_price(low=int(self.entry * (1 - exit_pct)))

    def on_price(self, t: int, symbol: str, mark: int) -> None:
        size = self.position().size
        if size > 0:
            self.market(1, size, reduce_only=True, slippage_bps=1000)


def run(exit_pct: float):
    cfg = scenario(
        seed=3, duration_s=400,
        markets=(market(sigma=0.3, shocks=(shock(200, 120, -12),)),),
        agents=(group("noise", 20, {}), group("market_maker", 4, {"pull_vol": None, "max_divergence_bps": None}),
                group("arbitrageur", 2, {}),
                group(f"{__name__}:ProtectedLong", 1, {"deposit_usdc": 6_500, "journal": True})),
    )
    model = MarketModel(cfg, audit=True)
    model.exit_pct = exit_pct
    model.run()
    (agent,) = model.agents_by_kind[f"{__name__}:ProtectedLong"]
    return model, agent_report(model, agent)


def test_protected_long_exits_before_liquidation_and_is_measured():
    _, rep = run(0.02)
    assert rep["orders"] == 2 and rep["rejected"] == 0 and rep["fills"] >= 2
    assert rep["survived"] and rep["liquidation_steps"] == 0
    assert rep["time_to_fill_s_mean"] >= 0.05  # at least the agent's data + entry latency
    assert rep["slippage_bps"] is not None and rep["final_equity_usdc"] > 0


def test_without_the_exit_the_same_position_is_liquidated():
    _, rep = run(0.0)
    assert not rep["survived"] and rep["first_liquidation_s"] >= 200


class OneSidedBookBuyer(Trader):
    """Rests one sell far away (so the book has no bid and no mid), then buys into it at market."""

    kind = "one_sided"

    def start(self) -> None:
        self.wake_in(1_000_000)

    def on_wake(self, t: int) -> None:
        if not self.journal:
            self.limit(1, 1, self.mark() + 100)
        self.market(0, 1)


def test_orders_sent_while_the_book_has_no_mid_are_journaled():
    cfg = scenario(seed=1, duration_s=5, agents=(group(f"{__name__}:OneSidedBookBuyer", 1, {"journal": True}),))
    model = MarketModel(cfg)
    model.run()
    (agent,) = model.agents_by_kind[f"{__name__}:OneSidedBookBuyer"]
    assert [row[5] for row in agent.journal] == [None, None]  # no mid at either decision: journaled anyway
    rep = agent_report(model, agent)
    assert rep["orders"] == 2 and rep["rejected"] == 0
    assert rep["slippage_bps"] is None  # no mid to measure against, rather than a made-up one
