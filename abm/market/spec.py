"""What a perpetual market is: symbol, grid, fees; and the exact conversions between human and integer units.

Units, fixed once here so every other module can stay in integers:
- price: integer ticks; ``tick_size`` quote currency per base unit per tick (e.g. 0.1 USDC)
- size: integer lots; ``lot_size`` base units per lot (e.g. 0.001 BTC)
- money: integer quote units of ``10**-quote_decimals`` quote currency (e.g. 1e-6 USDC)
The notional of ``q`` lots at ``p`` ticks is ``p * q * multiplier`` quote units, exactly, where
``multiplier = tick_size * lot_size * 10**quote_decimals`` must be a whole number (the spec refuses a
grid that would need rounding). Fee rates are held in parts per million (1 bp = 100 ppm), so a fee
rate must be a multiple of 0.01 bp.

Why money has a ceiling: event tables and Parquet hold 64-bit integers, so every amount that is
recorded must fit. ``MAX_MONEY`` (2**62 quote units, half the int64 range, leaving headroom for sums)
bounds what one order, one mark and the exchange's external money may reach, and ``quote_decimals``
is at most ``MAX_QUOTE_DECIMALS`` (9: 2**62 units are 4.6 billion quote currency at 9 decimals, 4.6
trillion at the usual 6), so a realistic run can never overflow a table after it changed the books.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Union

from abm.errors import InvalidMarketSpec, InvalidPrice, InvalidSize

Number = Union[int, str, Decimal]

STP_MODES = ("cancel_resting", "cancel_incoming")
MAX_MONEY = 2**62  # quote units: the ceiling of one order's notional, a mark's lot value and external money
MAX_QUOTE_DECIMALS = 9


def _decimal(field_name: str, value: object) -> Decimal:
    if isinstance(value, bool):
        raise InvalidMarketSpec(field_name, value, "must be a number")
    if isinstance(value, float):
        value = repr(value)  # 0.1 means 0.1, not its binary neighbour
    try:
        d = Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidMarketSpec(field_name, value, "must be a number") from None
    if not d.is_finite():
        raise InvalidMarketSpec(field_name, value, "must be a finite number")
    return d


def exact_fraction(x: int | float | Decimal | Fraction) -> Fraction:
    """The number as written: a float 0.3 is 3/10, not its binary neighbour."""
    return Fraction(repr(x)) if isinstance(x, float) else Fraction(x)


def fee_ppm(field_name: str, bps: object) -> int:
    """A fee rate in bps as integer parts per million; refuses rates finer than 0.01 bp."""
    d = _decimal(field_name, bps) * 100
    if d != d.to_integral_value():
        raise InvalidMarketSpec(field_name, bps, "must be a multiple of 0.01 bp")
    return int(d)


def as_int(field_name: str, value: object, error: type = InvalidSize) -> int:
    """Accept Python and numpy integers (not bools, floats or strings) as exact ints."""
    if isinstance(value, bool):
        raise error(field_name, value, "must be an integer")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise error(field_name, value, "must be an integer") from None


@dataclass(frozen=True, slots=True)
class MarketSpec:
    symbol: str
    tick_size: Decimal = Decimal("0.1")
    lot_size: Decimal = Decimal("0.001")
    quote_decimals: int = 6
    maker_fee_bps: Decimal = Decimal("1.5")
    taker_fee_bps: Decimal = Decimal("4.5")
    stp: str = "cancel_resting"
    # The venue's price band: a limit price (or a market order's bound) must be within this share of the
    # mark, e.g. Decimal("0.8") for 80 %; None: no band (a bare venue).
    price_band: Union[Decimal, None] = None
    multiplier: int = field(init=False)
    maker_ppm: int = field(init=False)
    taker_ppm: int = field(init=False)

    def __post_init__(self) -> None:
        # Validate everything before setting anything, so a bad spec leaves no half-built object around.
        if not isinstance(self.symbol, str) or not self.symbol.strip() or self.symbol != self.symbol.strip():
            raise InvalidMarketSpec("symbol", self.symbol, "must be a non-empty string without surrounding spaces")
        tick = _decimal("tick_size", self.tick_size)
        lot = _decimal("lot_size", self.lot_size)
        if tick <= 0:
            raise InvalidMarketSpec("tick_size", self.tick_size, "must be > 0")
        if lot <= 0:
            raise InvalidMarketSpec("lot_size", self.lot_size, "must be > 0")
        qd = self.quote_decimals
        if type(qd) is not int or not 0 <= qd <= MAX_QUOTE_DECIMALS:
            raise InvalidMarketSpec("quote_decimals", qd, f"must be an integer in [0, {MAX_QUOTE_DECIMALS}] (money is "
                                                          "recorded in 64-bit integers)")
        mult = tick * lot * (Decimal(10) ** qd)
        if mult != mult.to_integral_value():
            raise InvalidMarketSpec(
                "tick_size",
                self.tick_size,
                f"tick_size * lot_size * 10**quote_decimals must be a whole number of quote units "
                f"(is {mult} with lot_size {lot} and quote_decimals {qd})",
            )
        maker = fee_ppm("maker_fee_bps", self.maker_fee_bps)
        taker = fee_ppm("taker_fee_bps", self.taker_fee_bps)
        if taker < 0:
            raise InvalidMarketSpec("taker_fee_bps", self.taker_fee_bps, "must be >= 0")
        if maker + taker < 0:
            raise InvalidMarketSpec(
                "maker_fee_bps", self.maker_fee_bps, f"a rebate must not exceed the taker fee ({self.taker_fee_bps} bp)"
            )
        if maker >= 1_000_000:
            raise InvalidMarketSpec("maker_fee_bps", self.maker_fee_bps, "must be below 10000 bp")
        if taker >= 1_000_000:
            raise InvalidMarketSpec("taker_fee_bps", self.taker_fee_bps, "must be below 10000 bp")
        if self.stp not in STP_MODES:
            raise InvalidMarketSpec("stp", self.stp, f"must be one of {list(STP_MODES)}")
        band = None
        if self.price_band is not None:
            band = _decimal("price_band", self.price_band)
            if not 0 < band < 1 or band * 1_000_000 != (band * 1_000_000).to_integral_value():
                raise InvalidMarketSpec("price_band", self.price_band,
                                        "must be a share of the mark in (0, 1) with at most 6 decimals, or None")
        object.__setattr__(self, "tick_size", tick)
        object.__setattr__(self, "lot_size", lot)
        object.__setattr__(self, "maker_fee_bps", _decimal("maker_fee_bps", self.maker_fee_bps))
        object.__setattr__(self, "taker_fee_bps", _decimal("taker_fee_bps", self.taker_fee_bps))
        object.__setattr__(self, "price_band", band)
        object.__setattr__(self, "multiplier", int(mult))
        object.__setattr__(self, "maker_ppm", maker)
        object.__setattr__(self, "taker_ppm", taker)

    # exact conversions ---------------------------------------------------------------

    def to_ticks(self, price: Number) -> int:
        """A price in quote currency as ticks; refuses prices off the tick grid instead of rounding."""
        try:
            d = _decimal("price", price)
        except InvalidMarketSpec as e:
            raise InvalidPrice("price", price, e.allowed) from None
        t = d / self.tick_size
        if t != t.to_integral_value() or t <= 0:
            raise InvalidPrice("price", price, f"must be a positive multiple of the tick size {self.tick_size}")
        return int(t)

    def to_lots(self, size: Number) -> int:
        """A size in base units as lots; refuses sizes off the lot grid instead of rounding."""
        try:
            d = _decimal("size", size)
        except InvalidMarketSpec as e:
            raise InvalidSize("size", size, e.allowed) from None
        q = d / self.lot_size
        if q != q.to_integral_value() or q <= 0:
            raise InvalidSize("size", size, f"must be a positive multiple of the lot size {self.lot_size}")
        return int(q)

    @property
    def band_ppm(self) -> int:
        """The price band in parts per million of the mark (0: none)."""
        return int(self.price_band * 1_000_000) if self.price_band is not None else 0

    @property
    def max_tick_lots(self) -> int:
        """The largest price x size (ticks x lots) whose notional fits ``MAX_MONEY``."""
        return MAX_MONEY // self.multiplier

    def price(self, ticks: int) -> Decimal:
        return ticks * self.tick_size

    def size(self, lots: int) -> Decimal:
        return lots * self.lot_size

    def money(self, units: int) -> Decimal:
        """Quote units as quote currency (exact)."""
        return Decimal(units).scaleb(-self.quote_decimals)

    def notional(self, ticks: int, lots: int) -> int:
        """Notional in quote units, exact."""
        return ticks * lots * self.multiplier
