"""Read-only market data: what agents and analysis may see of a book, and nothing that mutates it."""

from __future__ import annotations

from fractions import Fraction
from typing import Optional

from abm.market.book import OrderBook


class BookView:
    __slots__ = ("_book",)

    def __init__(self, book: OrderBook) -> None:
        self._book = book

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

    def l2(self, n: int = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return self._book.l2(n)

    def level_size(self, side: int, price: int) -> int:
        return self._book.level_size(side, price)

    def depth_within(self, bps: float, ref: Optional[float] = None) -> tuple[int, int, int, int]:
        return self._book.depth_within(bps, ref)

    def impact_price(self, side: int, notional: int) -> Optional[Fraction]:
        return self._book.impact_price(side, notional)

    def __len__(self) -> int:
        return len(self._book)
