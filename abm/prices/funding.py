"""Funding rates: the premium of the book over the oracle, sampled, averaged and turned into a rate.

Why funding exists: a perpetual never expires, so nothing forces its price back to spot. Funding does:
when the book trades above the oracle, longs pay shorts (and the reverse), so holding the rich side
costs money and arbitrageurs lean against the gap. Everything here is exact (``Fraction``), because the
dead zone of the formula is an exact band and a float would blur its edges.

The pieces, as the venues define them (see ``shared/reference/venue-mechanics.md``, section Funding):

- ``premium(impact_bid, impact_ask, oracle)``: how far a taker of the impact notional would trade away from
  the oracle, as a fraction of the oracle; zero while the oracle sits between the two impact prices.
- ``book_premium(view, impact_notional, oracle, thin_side)``: the same from a live book. A side that holds
  less than the impact notional has no impact price in the reference's sense (vm:45-47 define it only as
  "the average fill price for the impact notional"; neither venue's rule for a thin side is in the
  reference). The choice (``THIN_SIDE_RULES``, a profile's ``funding.thin_side``): ``available_depth``, the
  default, takes the average price of all the side holds, what a taker of the impact notional would get for
  the part that fills, so a book emptied in a crash still shows its discount; ``zero`` counts such a side as
  contributing nothing (this simulator's rule before, which kept funding on the interest leg through a crash
  whose makers had pulled their quotes).
- ``FundingSchedule``: samples the premium on a fixed clock (5 s), averages the samples of one payment
  interval, and at the payment time turns the average ``P̄`` into the 8-hour rate
  ``F = P̄ + clamp(interest − P̄, −band, +band)``. The payment for an interval of length ``L`` is
  ``clamp(F · L / 8 h, −cap, +cap)``: Hyperliquid pays ``F/8`` every hour capped at 4 %; Binance pays ``F``
  every 8 h capped at ±cap and, after a settlement that reached the cap, pays hourly (``F/8`` capped at
  the same per-payment cap) until the rate falls back inside the cap (exact rule in ``FundingSchedule``).

Cost: samples are summed exactly. An average over 8 h (5,760 samples) of premiums with unrelated
oracle denominators costs about 0.1 s per interval in total; the sum is reset at every settlement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from numbers import Rational
from typing import Any, Literal, Optional, Union, overload

from abm.errors import InvalidInput, InvalidMarketSpec, InvalidPrice
from abm.market.book import BUY, SELL
from abm.market.view import BookView

RateLike = Union[int, Fraction, Decimal, float, str]

SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
EIGHT_HOURS_US = 8 * HOUR_US


# ------------------------------------------------------------------------------------- exact numbers


def as_fraction(field: str, value: Any, error: type = InvalidInput) -> Fraction:
    """``value`` as an exact Fraction: ints, Fractions, Decimals, finite floats (as written: 0.1 is 1/10)
    and decimal strings ("0.0001"). Bools, NaN, infinities and anything else are refused, naming ``field``."""
    if isinstance(value, bool):
        raise error(field, value, "must be a number (int, Fraction, Decimal, float or decimal string)")
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise error(field, value, "must be a finite number")
            return Fraction(repr(value))
        if isinstance(value, (Rational, Decimal, str)):
            return Fraction(value)
        return Fraction(int(value.__index__()))  # numpy integers and other exact ints
    except InvalidInput:
        raise
    except (AttributeError, TypeError, ValueError, ZeroDivisionError, ArithmeticError):
        raise error(field, value, "must be a finite number (int, Fraction, Decimal, float or decimal string)") from None


@overload
def as_price(field: str, value: Any, optional: Literal[False] = False) -> Fraction: ...
@overload
def as_price(field: str, value: Any, optional: bool) -> Optional[Fraction]: ...
def as_price(field: str, value: Any, optional: bool = False) -> Optional[Fraction]:
    """A price in ticks: a positive int (numpy ints welcome) or a positive Fraction; ``None`` only if ``optional``.

    Oracle and index prices may fall between ticks (a weighted median of other venues), so Fractions are
    accepted; floats are not, so that nothing inexact enters the formulas silently.
    """
    if value is None:
        if optional:
            return None
        raise InvalidPrice(field, value, "must be a positive int or Fraction of ticks")
    if isinstance(value, bool) or isinstance(value, float) or not isinstance(value, Rational) and not hasattr(value, "__index__"):
        raise InvalidPrice(field, value, "must be a positive int or Fraction of ticks" + (" or None" if optional else ""))
    f = Fraction(value) if isinstance(value, Rational) else Fraction(int(value.__index__()))
    if f <= 0:
        raise InvalidPrice(field, value, "must be > 0 ticks")
    return f


def _time(field: str, value: Any, lo: int = 0) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__") or isinstance(value, float):
        raise InvalidInput(field, value, "must be an integer number of microseconds")
    v = int(value.__index__())
    if v < lo:
        raise InvalidInput(field, value, f"must be >= {lo} us")
    return v


# ------------------------------------------------------------------------------------- premium


def premium(impact_bid: Optional[Fraction], impact_ask: Optional[Fraction], oracle: Union[int, Fraction]) -> Fraction:
    """``[max(impact_bid − oracle, 0) − max(oracle − impact_ask, 0)] / oracle``, exact.

    A ``None`` impact price means that side has no price to offer (an empty side, or a thin one under the
    ``zero`` rule of ``book_premium``): it contributes 0 to the premium. With both sides ``None`` the
    premium is 0; ``book_premium`` returns ``None`` instead, so the sample can be skipped rather than
    counted as 0.
    """
    o = as_price("oracle", oracle)
    b = as_price("impact_bid", impact_bid, optional=True)
    a = as_price("impact_ask", impact_ask, optional=True)
    if a is not None and b is not None and b > a:
        raise InvalidPrice("impact_bid", impact_bid, f"must not exceed impact_ask ({impact_ask}); are they swapped?")
    up = b - o if b is not None and b > o else 0
    down = o - a if a is not None and a < o else 0
    return Fraction(up - down) / o


THIN_SIDE_RULES = ("available_depth", "zero")
DEFAULT_THIN_SIDE = "available_depth"


def _impact_ratio(view: BookView, side: int, impact_notional: int, depth: bool) -> Optional[tuple[int, int]]:
    """A side's impact price as an integer ratio; a thin side's is its whole depth's average under ``depth``."""
    r = view.impact_ratio(side, impact_notional)
    return view.depth_ratio(side) if r is None and depth else r


def _premium_ticks(view: BookView, impact_notional: int, o: int, depth: bool) -> tuple[bool, Optional[Fraction]]:
    """(True, ``book_premium``) for an int oracle, from integer impact ratios: one Fraction, the result.

    (False, None) when the impact bid exceeds the impact ask (a broken book): the exact path raises for it.
    """
    b = _impact_ratio(view, SELL, impact_notional, depth)
    a = _impact_ratio(view, BUY, impact_notional, depth)
    if b is None and a is None:
        return True, None
    if b is not None and a is not None and b[0] * a[1] > a[0] * b[1]:
        return False, None
    up_n, up_d = (b[0] - o * b[1], b[1]) if b is not None and b[0] > o * b[1] else (0, 1)
    down_n, down_d = (o * a[1] - a[0], a[1]) if a is not None and a[0] < o * a[1] else (0, 1)
    return True, Fraction(up_n * down_d - down_n * up_d, up_d * down_d * o)


def book_premium(view: BookView, impact_notional: int, oracle: Union[int, Fraction],
                 thin_side: str = DEFAULT_THIN_SIDE) -> Optional[Fraction]:
    """The premium of a live book: impact prices for ``impact_notional`` quote units from ``view``.

    The impact bid is what a taker *selling* the notional would average (it walks the bids), the impact
    ask what a taker *buying* it would average. A side thinner than the notional follows ``thin_side``
    (module doc): the average of all it holds (``available_depth``) or no price (``zero``). Returns
    ``None`` when neither side has a price (nothing to measure): pass that to ``FundingSchedule.sample``
    to skip the sample. A side without a price contributes 0 (see ``premium``).
    """
    if not isinstance(view, BookView):
        raise InvalidInput("view", view, "must be a BookView (Exchange.data(symbol))")
    if thin_side not in THIN_SIDE_RULES:
        raise InvalidInput("thin_side", thin_side, f"must be one of {list(THIN_SIDE_RULES)}")
    depth = thin_side == "available_depth"
    if type(oracle) is int and oracle > 0 and type(impact_notional) is int and impact_notional > 0:
        ok, got = _premium_ticks(view, impact_notional, oracle, depth)
        if ok:
            return got
    as_price("oracle", oracle)
    bid = view.impact_price(SELL, impact_notional)  # validates impact_notional
    ask = view.impact_price(BUY, impact_notional)
    if depth:
        bid = _depth_price(view, SELL) if bid is None else bid
        ask = _depth_price(view, BUY) if ask is None else ask
    if bid is None and ask is None:
        return None
    return premium(bid, ask, oracle)


def _depth_price(view: BookView, side: int) -> Optional[Fraction]:
    r = view.depth_ratio(side)
    return None if r is None else Fraction(*r)


# ------------------------------------------------------------------------------------- venue config


@dataclass(frozen=True, slots=True)
class FundingConfig:
    """How one venue turns premiums into payments. All rates are exact Fractions (per payment or per 8 h).

    - ``payment_interval_us``: time between payments in the normal regime (Hyperliquid 1 h, Binance 8 h).
    - ``sample_interval_us``: premium sampling clock (5 s); must divide the payment intervals so every
      interval holds the same number of sample slots.
    - ``rate_period_us``: the period the formula's rate ``F`` refers to (8 h for both venues). A payment
      for an interval of length ``L`` is ``F · L / rate_period`` before the cap.
    - ``interest`` and ``band``: ``F = P̄ + clamp(interest − P̄, −band, +band)`` (0.01 % and 0.05 %).
    - ``cap``: bound on each payment's rate, ``|rate| ≤ cap`` (Hyperliquid 4 % per hour, Binance 0.3 % for
      BTC and 3 % for contracts of at most 25x).
    - ``capped_interval_us``: if set, the payment interval used after a settlement that reached the cap
      (Binance: 1 h); ``None`` means the interval never changes (Hyperliquid).
    """

    venue: str = "custom"
    payment_interval_us: int = HOUR_US
    sample_interval_us: int = 5 * SECOND_US
    rate_period_us: int = EIGHT_HOURS_US
    interest: Fraction = Fraction(1, 10_000)
    band: Fraction = Fraction(5, 10_000)
    cap: Fraction = Fraction(4, 100)
    capped_interval_us: Optional[int] = None

    def __post_init__(self) -> None:
        # validate everything first, then normalise: a bad config never exists half-built
        if not isinstance(self.venue, str) or not self.venue:
            raise InvalidMarketSpec("venue", self.venue, "must be a non-empty string (a label)")
        si = _positive_us("sample_interval_us", self.sample_interval_us)
        pi = _positive_us("payment_interval_us", self.payment_interval_us)
        if pi % si:
            raise InvalidMarketSpec(
                "payment_interval_us", self.payment_interval_us, f"must be a multiple of sample_interval_us ({si})"
            )
        rp = _positive_us("rate_period_us", self.rate_period_us)
        interest = as_fraction("interest", self.interest, InvalidMarketSpec)
        band = as_fraction("band", self.band, InvalidMarketSpec)
        if band < 0:
            raise InvalidMarketSpec("band", self.band, "must be >= 0")
        cap = as_fraction("cap", self.cap, InvalidMarketSpec)
        if cap <= 0:
            raise InvalidMarketSpec("cap", self.cap, "must be > 0 (a rate per payment, e.g. 0.04 for 4 %)")
        if cap >= 1:
            raise InvalidMarketSpec("cap", self.cap, "must be < 1 (100 % of notional per payment)")
        ci = self.capped_interval_us
        if ci is not None:
            ci = _positive_us("capped_interval_us", ci)
            if ci >= pi:
                raise InvalidMarketSpec("capped_interval_us", ci, f"must be None or shorter than payment_interval_us ({pi})")
            if ci % si:
                raise InvalidMarketSpec("capped_interval_us", ci, f"must be a multiple of sample_interval_us ({si})")
        for name, v in (
            ("sample_interval_us", si),
            ("payment_interval_us", pi),
            ("rate_period_us", rp),
            ("interest", interest),
            ("band", band),
            ("cap", cap),
            ("capped_interval_us", ci),
        ):
            object.__setattr__(self, name, v)

    @classmethod
    def hyperliquid(cls, **overrides: Any) -> "FundingConfig":
        """Hourly payments of F/8, capped at 4 % per hour; the interval never changes."""
        kw: dict[str, Any] = dict(venue="hyperliquid", payment_interval_us=HOUR_US, cap=Fraction(4, 100), capped_interval_us=None)
        kw.update(overrides)
        return cls(**kw)

    @classmethod
    def binance(cls, max_leverage: int = 125, cap: Optional[RateLike] = None, **overrides: Any) -> "FundingConfig":
        """8-hourly payments of F capped at ±cap, hourly after a capped settlement.

        ``cap`` defaults by ``max_leverage``: 3 % for contracts of at most 25x, else 0.3 % (the BTC figure).
        """
        if isinstance(max_leverage, bool) or not isinstance(max_leverage, int) or max_leverage < 1:
            raise InvalidMarketSpec("max_leverage", max_leverage, "must be an integer >= 1")
        if cap is None:
            cap = Fraction(3, 100) if max_leverage <= 25 else Fraction(3, 1000)
        kw: dict[str, Any] = dict(venue="binance", payment_interval_us=EIGHT_HOURS_US, cap=cap, capped_interval_us=HOUR_US)
        kw.update(overrides)
        return cls(**kw)


def _positive_us(field: str, value: Any) -> int:
    if isinstance(value, bool) or isinstance(value, float) or not hasattr(value, "__index__"):
        raise InvalidMarketSpec(field, value, "must be a positive integer number of microseconds")
    v = int(value.__index__())
    if v <= 0:
        raise InvalidMarketSpec(field, value, "must be a positive integer number of microseconds")
    return v


def rate_8h(mean_premium: Fraction, interest: Fraction, band: Fraction) -> Fraction:
    """``F = P̄ + clamp(interest − P̄, −band, +band)``: exactly ``interest`` while ``P̄`` is within ``band`` of it."""
    gap = interest - mean_premium
    return mean_premium + (band if gap > band else -band if gap < -band else gap)


# ------------------------------------------------------------------------------------- the accumulator


class FundingSchedule:
    """Samples the premium, averages it over the payment interval and says what to pay, and when.

    Clocks (all integer microseconds, measured from ``start_us``):

    - Samples sit on the grid ``start_us + k · sample_interval_us``. ``sample(t, p)`` is accepted at any
      ``t >= next_sample_us()``; the next slot is then the first grid point after ``t``, so a late driver
      never shifts the grid.
    - An interval is the half-open ``[period_start, next_payment_us())``: a sample at exactly the payment
      time belongs to the *next* interval, so the driver must ``settle`` before sampling at or past it.
    - ``settle(t)`` (``t >= next_payment_us()``) pays for one interval and starts the next at the due time,
      not at ``t``; a driver that fell several payments behind calls it until ``next_payment_us() > now``
      (the missed intervals, having no samples, pay the interest leg).

    Missing data: ``sample(t, None)`` records a skipped sample (e.g. neither book side could fill the
    impact notional); it advances the sample clock but is not averaged. An interval with no samples at
    all has ``P̄ = 0``, so it pays the interest leg only.

    Capped intervals (only with ``config.capped_interval_us``, i.e. Binance): after each settlement the
    venue takes the interval's 8-hour rate ``F`` scaled to the *normal* interval, ``F · payment_interval /
    rate_period``. If it reached the cap (``|·| >= cap``; Binance: "when the rate reaches the cap") the next
    interval is ``capped_interval_us`` long; otherwise the schedule returns to the normal interval at the
    next point of the normal grid (``start_us + k · payment_interval_us``), so payments realign to
    00:00/08:00/16:00. The first hourly interval that would not have reached the cap therefore ends the
    switch; the interval back to the grid may be shorter than normal and pays ``F · L / 8 h`` for its
    length ``L``. Scaling by ``L`` (rather than paying the un-scaled premium every hour, as Binance does)
    keeps the rate per unit time continuous across the switch, so the switch only lifts the cap.
    """

    __slots__ = (
        "config",
        "start_us",
        "_period_start",
        "_due",
        "_next_sample",
        "_sum",
        "_n",
        "_skipped",
        "last_rate",
        "last_capped",
        "last_settled_us",
        "_predicted",
    )

    def __init__(self, config: FundingConfig, start_us: int = 0) -> None:
        if not isinstance(config, FundingConfig):
            raise InvalidInput("config", config, "must be a FundingConfig (e.g. FundingConfig.hyperliquid())")
        start = _time("start_us", start_us)
        self.config = config
        self.start_us = start
        self._period_start = start
        self._due = start + config.payment_interval_us
        self._next_sample = start
        self._sum = Fraction(0)
        self._n = 0
        self._skipped = 0
        self.last_rate: Optional[Fraction] = None  # rate paid at the last settlement
        self.last_capped = False  # whether that settlement reached the cap
        self.last_settled_us: Optional[int] = None
        self._predicted: Optional[tuple[Fraction, bool]] = None  # _payment() until the next sample or settlement

    # -- clocks

    def next_sample_us(self) -> int:
        return self._next_sample

    def next_payment_us(self) -> int:
        return self._due

    @property
    def interval_us(self) -> int:
        """Length of the current interval (normal, capped, or the shorter way back to the normal grid)."""
        return self._due - self._period_start

    @property
    def period_start_us(self) -> int:
        return self._period_start

    @property
    def samples(self) -> int:
        """Samples averaged so far in the current interval (skipped ones not counted)."""
        return self._n

    @property
    def skipped(self) -> int:
        return self._skipped

    # -- events

    def sample(self, t_us: int, premium: Optional[RateLike]) -> None:
        """Record the premium at ``t_us`` (``None``: a skipped sample). See the class doc for the clocks."""
        t = _time("t_us", t_us)
        if t < self._next_sample:
            raise InvalidInput("t_us", t_us, f"must be >= the next sample time {self._next_sample} us (one sample per slot)")
        if t >= self._due:
            raise InvalidInput("t_us", t_us, f"must be < the payment due at {self._due} us: settle first")
        p = None if premium is None else as_fraction("premium", premium)
        if p is not None and p <= -1:  # impossible for a positive impact ask: a broken feed, not a premium
            raise InvalidInput("premium", premium, "must be > -1 (a fraction of the oracle) or None")
        si = self.config.sample_interval_us
        self._next_sample = self.start_us + ((t - self.start_us) // si + 1) * si
        if p is None:
            self._skipped += 1
        else:
            self._sum += p
            self._n += 1
            self._predicted = None

    def premium_average(self) -> Optional[Fraction]:
        """Mean of this interval's samples so far; ``None`` before the first."""
        return self._sum / self._n if self._n else None

    def base_rate(self) -> Fraction:
        """The 8-hour rate ``F`` from the samples so far (``P̄ = 0`` with none)."""
        c = self.config
        return rate_8h(self._sum / self._n if self._n else Fraction(0), c.interest, c.band)

    def predicted_rate(self) -> Fraction:
        """What ``settle`` would pay for this interval if no more samples came: public market data."""
        rate, _ = self._payment()
        return rate

    def settle(self, t_us: int) -> Fraction:
        """The rate to pay now for the interval ending at ``next_payment_us()``; starts the next interval.

        Positive: longs pay shorts. The caller applies it, e.g. ``abm.exchange.funding.pay_funding``.
        """
        t = _time("t_us", t_us)
        if t < self._due:
            raise InvalidInput("t_us", t_us, f"must be >= the payment due at {self._due} us")
        c = self.config
        rate, capped = self._payment()
        due = self._due
        nxt = due + c.payment_interval_us
        if c.capped_interval_us is not None:
            f_normal = self.base_rate() * c.payment_interval_us / c.rate_period_us
            if abs(f_normal) >= c.cap:
                nxt = due + c.capped_interval_us
            else:  # back to (or staying on) the normal grid
                pi = c.payment_interval_us
                nxt = self.start_us + ((due - self.start_us) // pi + 1) * pi
        self._period_start = due
        self._due = nxt
        if self._next_sample < due:
            self._next_sample = due
        self._sum = Fraction(0)
        self._n = 0
        self._skipped = 0
        self._predicted = None
        self.last_rate = rate
        self.last_capped = capped
        self.last_settled_us = t
        return rate

    def _payment(self) -> tuple[Fraction, bool]:
        """(rate, capped) for the interval so far; agents ask on every wake, samples come every few seconds."""
        if self._predicted is None:
            self._predicted = self._compute_payment()
        return self._predicted

    def _compute_payment(self) -> tuple[Fraction, bool]:
        c = self.config
        raw = self.base_rate() * (self._due - self._period_start) / c.rate_period_us
        if raw >= c.cap:
            return c.cap, True
        if raw <= -c.cap:
            return -c.cap, True
        return raw, False


