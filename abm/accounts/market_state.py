"""A listed market's runtime state: its book, its rules, its open interest and who holds positions in it.

It sits below the margin engine and the exchange, which both read it; only the exchange changes it.
"""

from __future__ import annotations

from typing import Any, Optional

from abm.accounts.account import CROSS, Position
from abm.market.book import OrderBook
from abm.market.spec import MarketSpec

# the order of Market.tagged_lots' totals: long / short, cross / isolated (strict isolated counts as isolated)
TAGGED_KEYS = ("long_cross", "short_cross", "long_isolated", "short_isolated")


def tagged_slot(size: int, mode: int) -> int:
    """Where a position of ``size`` lots (not 0) in margin ``mode`` counts in ``TAGGED_KEYS``."""
    return (0 if size > 0 else 1) + (0 if mode == CROSS else 2)


class Market:
    """A listed market's runtime state."""

    __slots__ = ("index", "spec", "book", "open_interest", "last_price", "volume", "taker_volume", "margined", "holders",
                 "max_tick_lots", "band_ppm", "band_lo", "band_hi", "rules",
                 "tagged_lots", "state", "paused", "halt_pause", "holds", "held", "oracle_us", "oracle_price")

    def __init__(self, index: int, spec: MarketSpec, book: OrderBook) -> None:
        self.index = index
        self.spec = spec
        self.book = book
        self.max_tick_lots = spec.max_tick_lots  # price x size (ticks x lots) of the largest notional that fits
        self.band_ppm = spec.band_ppm
        self.band_lo = 1  # the prices an order may name: the venue's band around the mark, once there is one
        self.band_hi = self.max_tick_lots
        self.open_interest = 0  # long lots (= short lots)
        self.last_price: Optional[int] = None
        self.volume = 0  # traded lots
        self.taker_volume = [0, 0]  # traded lots by taker side (buy, sell)
        self.margined = False  # margin rules and liquidation apply (listed with RiskParams)
        self.holders: dict[int, Position] = {}  # account id -> its open position here (ADL, funding)
        # tag -> lots held by accounts with that tag (Exchange.tag_account), by TAGGED_KEYS: kept where positions change
        self.tagged_lots: dict[str, list[int]] = {}
        self.rules: tuple[Any, ...] = ()  # opt-in order-entry rules (abm.exchange.entry), none unless listed with some
        self.state = 0  # trading state (abm.exchange.entry.MARKET_STATES): 0 open; set by Exchange.set_market_state
        # the venue's engine is stopped here (no liquidations, no funding samples): a halt that pauses it, or a hold
        self.paused = False
        self.halt_pause = False  # a halt (Exchange.set_market_state) asked for the pause
        self.holds: tuple[Any, ...] = ()  # opt-in liquidation holds (oracle staleness, mark/oracle divergence)
        self.held = False  # one of the holds held at the latest mark update
        self.oracle_us = -1  # when the oracle last published (Exchange.set_oracle); -1: never
        self.oracle_price = 0  # its last price in ticks; 0: none yet
