"""Sides, units and their conversions, defined once for the whole package.

Inside the simulation everything is an integer: prices in ticks, sizes in lots, money in quote units
(``10**-quote_decimals`` of the quote currency; the model's markets use 6 decimals, so ``USDC`` quote
units are one USDC) and time in microseconds. Configuration and outputs use people's units; the
conversions between the two live here and in ``abm.market.spec`` (ticks and lots of one market).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

BUY: Final = 0
SELL: Final = 1
SIDE_NAMES: Final = ("buy", "sell")

USDC: Final = 10**6  # quote units per USDC at 6 quote decimals
US_PER_S: Final = 1_000_000  # microseconds per second
SECONDS_PER_YEAR: Final = 365 * 24 * 3600


def usdc_units(amount: float) -> int:
    """An amount of USDC as a person writes it (0.1 is one tenth, not the float nearest it) in quote units."""
    return int(Decimal(repr(amount)) * USDC)


def usdc(units: int) -> float:
    """Quote units (at 6 decimals) as USDC, for display and outputs."""
    return units / USDC


def seconds(us: int) -> float:
    """Microseconds as seconds, for display and outputs."""
    return us / US_PER_S
