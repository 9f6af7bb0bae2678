"""An agent's account on a simulated spot venue: the same link as on the perp venue, the spot venue's books.

Why a context of its own and not a mode of ``AgentContext``: what an agent may do and read differs (no
leverage, no margin modes, no liquidation; cash and inventory instead of a position), but how its
actions travel is the same. So the link (latency, FIFO, the network stream, journal, rejections) is
``AgentContext``'s own, built by ``_link`` on the spot venue, and only the reads and the set-up calls
are the spot venue's. The existing kinds run on it unchanged where they only quote and trade (noise
flow, market makers, whales); a kind that needs leverage asks ``ctx.margined``.

What the reads mean on a spot venue:
- ``mark``: the venue's own price, its last trade (the mid before any), in ticks of the pair;
- ``oracle``, ``oracle_age_us``, ``index_price``, ``value`` and price triggers: the perp market on the same
  underlying (on the same tick grid), so a spot market maker anchors to the same information as everyone
  else;
- ``position``: inventory (free and held) minus debt, *relative to what the account started with*: the
  inventory risk a spot market maker manages; ``equity``: cash plus inventory minus debt at the mid.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Optional

from abm.agents.context import AgentContext, Done
from abm.errors import InvalidInput
from abm.exchange import PositionInfo
from abm.market.spec import MarketSpec
from abm.market.view import BookView

if TYPE_CHECKING:
    from abm.agents.base import Trader
    from abm.agents.latency import LatencyModel
    from abm.model.model import MarketModel
    from abm.spot import SpotExchange


class SpotContext(AgentContext):
    """One agent's account on spot venue ``venue``: ``cash`` quote units and ``inventory`` base units per pair."""

    margined = False

    def __init__(self, model: MarketModel, agent: Trader, venue: str, cash: int, inventory: float,
                 latency: LatencyModel, journal: bool) -> None:
        ex: SpotExchange = model.spot_venues[venue]
        self.venue = venue
        account = ex.open_account(cash)
        acct = ex.accounts[account]
        self.symbols = tuple(m.symbol for m in ex.markets)
        self._perp = dict(model.perp_of_spot[venue])  # spot pair -> the perp market on the same underlying
        self._start: list[int] = []
        for m in ex.markets:
            lots = _lots(f"agents.{agent.kind}.spot_inventory", inventory, m.spec)
            if lots:
                ex.deposit_inventory(account, m.symbol, lots)
            self._start.append(lots)
        self._views = {m.symbol: BookView(m.book) for m in ex.markets}
        self._feeds = model.feeds
        self._spot = ex
        self._link(model, agent, ex, account, acct.open_orders, acct.client_ids, latency, journal)

    # ------------------------------------------------------------------ set-up calls a spot venue has

    def set_leverage(self, symbol: str, leverage: int, on_done: Optional[Done] = None, immediate: bool = False) -> None:
        raise InvalidInput(f"agents.{self.agent.kind}.leverage", leverage,
                           f"must not be set on spot venue {self.venue!r}: a spot account trades what it holds")

    def set_margin_mode(self, symbol: str, mode: str, on_done: Optional[Done] = None, immediate: bool = False) -> None:
        raise InvalidInput(f"agents.{self.agent.kind}.margin_mode", mode,
                           f"must not be set on spot venue {self.venue!r}: it has no margin")

    def transfer_margin(self, symbol: str, amount: int, on_done: Optional[Done] = None, immediate: bool = False) -> None:
        raise InvalidInput("transfer_margin", amount, f"spot venue {self.venue!r} has no isolated margin")

    def borrow(self, symbol: str, lots: int, ref_price: int, on_done: Optional[Done] = None,
               immediate: bool = False) -> None:
        """Borrow lots from the venue's pool against collateral (to sell beyond inventory)."""
        self._setup("borrow", self._spot.borrow, (symbol, lots, ref_price), on_done, immediate)

    def repay(self, symbol: str, lots: int, on_done: Optional[Done] = None, immediate: bool = False) -> None:
        self._setup("repay", self._spot.repay, (symbol, lots), on_done, immediate)

    # ------------------------------------------------------------------ reads

    def mark(self, symbol: str) -> Optional[int]:
        m = self._spot.market(symbol)
        if m.last_price:
            return m.last_price
        mid = m.book.mid()
        return None if mid is None else max(1, round(mid))

    def oracle(self, symbol: str) -> Optional[int]:
        return self._feeds[self._perp[symbol]].oracle.price

    def oracle_age_us(self, symbol: str) -> Optional[int]:
        return self._feeds[self._perp[symbol]].oracle.age_us(self._sched.now)

    def index_price(self, symbol: str) -> float:
        return self.model.index_of(self._perp[symbol]).value_at(self._sched.now)

    def value(self, symbol: str, lag_us: int = 0) -> float:
        return self.model.paths[self._perp[symbol]].value_at(max(0, self._sched.now - lag_us))

    def predicted_funding(self, symbol: str) -> Fraction:
        return Fraction(0)  # nothing is paid on a spot venue

    def funding_interval_us(self, symbol: str) -> int:
        return self._feeds[self._perp[symbol]].funding.interval_us

    def spec(self, symbol: str) -> MarketSpec:
        return self._spot.market(symbol).spec

    def multiplier(self, symbol: str) -> int:
        return self._spot.market(symbol).multiplier

    def max_leverage(self, symbol: str) -> int:
        return 1

    def liquidation_levels(self, symbol: str) -> list[tuple[int, Fraction]]:
        return []  # nobody is liquidated on a spot venue

    def position(self, symbol: str) -> PositionInfo:
        m = self._spot.market(symbol)
        a = self._spot.accounts[self.account]
        size = a.total_inventory(m.index) - a.debt[m.index] - self._start[m.index]
        return PositionInfo(symbol, size, 0, 0, a.fees_paid, 0, "spot", 0, None)

    def equity(self) -> int:
        """Cash (free, held, collateral) plus each pair's inventory minus debt at its mid (or last price)."""
        a = self._spot.accounts[self.account]
        total = a.total_cash()
        for m in self._spot.markets:
            net = a.total_inventory(m.index) - a.debt[m.index]
            if net:
                bid, ask = m.book.best_bid(), m.book.best_ask()
                price = Fraction(bid + ask, 2) if bid is not None and ask is not None else Fraction(m.last_price)
                total += int(net * price * m.multiplier)
        return total

    def balance(self) -> int:
        """Free cash (quote units): what a buy or a withdrawal can use now."""
        return self._spot.accounts[self.account].cash

    def cash_total(self) -> int:
        """Cash free, held by resting buys and locked as collateral (quote units)."""
        return self._spot.accounts[self.account].total_cash()

    def free_inventory(self, symbol: str) -> int:
        """Lots of the pair the account can sell now (not held by resting sells)."""
        return self._spot.accounts[self.account].inventory[self._spot.market(symbol).index]

    def debt(self, symbol: str) -> int:
        """Lots of the pair borrowed from the venue's pool and not yet repaid."""
        return self._spot.accounts[self.account].debt[self._spot.market(symbol).index]

    def net_inventory(self, symbol: str) -> int:
        """Lots held (free and by resting sells) less lots owed."""
        a = self._spot.accounts[self.account]
        i = self._spot.market(symbol).index
        return a.total_inventory(i) - a.debt[i]

    def margin_summary(self) -> dict[str, object]:
        eq = self.equity()
        return {"cross_equity": eq, "cross_maintenance": 0, "free_collateral": self._spot.accounts[self.account].cash}

    def liquidation_price(self, symbol: str) -> Optional[Fraction]:
        return None

    def open_orders(self) -> dict[int, tuple[str, int, int, int]]:
        return self._spot.open_orders(self.account)

    def watch_price(self, low: Optional[int], high: Optional[int], symbol: str) -> None:
        """A spot venue has no mark: the trigger watches the mark of the perp on the same underlying, which is
        on the same tick grid (a spot market maker requotes when the market moves)."""
        self.model.triggers[self._perp[symbol]].add(self.agent, low, high)

    def watch_funding(self, symbol: str) -> None:
        raise InvalidInput("watch_funding", symbol, f"spot venue {self.venue!r} pays no funding")


def _lots(field: str, base_units: float, spec: MarketSpec) -> int:
    """Base units as whole lots of the pair, exactly (refused when they are not)."""
    q = Decimal(repr(base_units)) / spec.lot_size
    if q != q.to_integral_value():
        raise InvalidInput(field, base_units, f"must be a whole number of lots of {spec.lot_size} (pair {spec.symbol})")
    return int(q)


__all__ = ["SpotContext"]
