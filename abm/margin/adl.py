"""ADL rankings: which opposite positions auto-deleveraging closes first.

The queue is the same on every venue: profitable positions before the rest, each part by descending
score, ties by age (``Liquidator._score``). What differs is the score, so a ranking is one small
class whose ``score`` is called once per opposite position (with equity > 0) when a queue is built.
``LiquidationConfig.adl_ranking`` names one (``ADL_RANKINGS``) and is resolved when the config is built.
"""

from __future__ import annotations

from fractions import Fraction

from abm.accounts.account import Position
from abm.registry import Registry, subclass_of


class AdlRanking:
    """A score for an opposite position; higher is deleveraged first. Exact (Fractions): ties are decided by age."""

    __slots__ = ()

    def score(self, p: Position, mark: int, mult: int, upnl: int, notional: int, equity: int) -> Fraction:
        """``p`` at ``mark`` (ticks; ``mult`` quote units per tick·lot), its unrealised PnL and notional (quote
        units) and its margin unit's equity (> 0)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


ADL_RANKINGS: Registry[type[AdlRanking]] = Registry("ADL ranking", "adl_ranking",
                                                    "a subclass of abm.margin.AdlRanking", subclass_of(AdlRanking))


@ADL_RANKINGS.register("hyperliquid")
class HyperliquidRanking(AdlRanking):
    """(mark / entry) x (notional / account value) at the mark: entry/mark for shorts, so the most in profit
    and the most leveraged go first."""

    __slots__ = ()

    def score(self, p: Position, mark: int, mult: int, upnl: int, notional: int, equity: int) -> Fraction:
        ratio = Fraction(mark * p.size * mult, p.cost)  # mark/entry (entry/mark for shorts)
        return (ratio if p.size > 0 else 1 / ratio) * Fraction(notional, equity)


@ADL_RANKINGS.register("binance")
class BinanceRanking(AdlRanking):
    """PnL% x effective leverage: (unrealised PnL / equity) x (notional / equity)."""

    __slots__ = ()

    def score(self, p: Position, mark: int, mult: int, upnl: int, notional: int, equity: int) -> Fraction:
        return Fraction(upnl, equity) * Fraction(notional, equity)
