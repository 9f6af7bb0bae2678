"""Read-only market data: what agents and analysis may see of a book, and nothing that mutates it.

Prices stay in ticks and sizes in lots; notionals are in quote units (the book itself counts
tick·lots and knows no money, so the view applies the market's multiplier).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Optional, Sequence

from abm.errors import FloatArg, IntArg, InvalidInput
from abm.market.book import OrderBook


class BookView:
    __slots__ = ("_book", "_mult")

    def __init__(self, book: OrderBook, multiplier: int = 1) -> None:
        self._book = book
        self._mult = multiplier

    def best_bid(self) -> Optional[int]:
        return self._book.best_bid()

    def best_ask(self) -> Optional[int]:
        return self._book.best_ask()

    def mid(self) -> Optional[float]:
        return self._book.mid()

    def spread(self) -> Optional[int]:
        return self._book.spread()

    def spread_bps(self) -> Optional[float]:
        return self._book.spread_bps()

    def l2(self, n: IntArg = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return self._book.l2(n)

    def level_size(self, side: IntArg, price: IntArg) -> int:
        return self._book.level_size(side, price)

    def depth_within(self, bps: FloatArg, ref: Optional[FloatArg] = None) -> tuple[int, int, int, int]:
        """(bid lots, bid notional, ask lots, ask notional) within ±bps of the mid (or ``ref``); notional in quote units."""
        b, bn, a, an = self._book.depth_within(bps, ref)
        return b, bn * self._mult, a, an * self._mult

    def depth_bands(self, bands: Sequence[FloatArg], ref: Optional[FloatArg] = None) -> list[tuple[int, int, int, int]]:
        """``depth_within`` for several bands in one walk of the book (the per-step metrics use three)."""
        mult = self._mult
        return [(b, bn * mult, a, an * mult) for b, bn, a, an in self._book.depth_bands(bands, ref)]

    def impact_price(self, side: IntArg, notional: IntArg) -> Optional[Fraction]:
        """Average price in ticks for a taker on ``side`` trading ``notional`` quote units; None if too thin."""
        if type(notional) is not int or notional <= 0:
            raise InvalidInput("notional", notional, "must be a positive integer number of quote units")
        return self._book.impact_price(side, Fraction(notional, self._mult))

    def impact_ratio(self, side: int, notional: int) -> Optional[tuple[int, int]]:
        """``impact_price`` as an integer ratio, for a positive int ``notional`` (unchecked: the feed's own)."""
        return self._book.impact_ratio(side, notional, self._mult)

    def depth_ratio(self, side: int) -> Optional[tuple[int, int]]:
        """The average price (ticks) of a taker on ``side`` trading all that side holds, as an integer ratio; None if
        it holds nothing (the funding premium's impact price of a side thinner than the impact notional)."""
        return self._book.depth_ratio(side)

    def __len__(self) -> int:
        return len(self._book)
