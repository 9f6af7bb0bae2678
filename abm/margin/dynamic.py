"""Dynamic margin: a per-market factor on the static tiers' maintenance and initial margin, from the market's own
mark history (``realized_vol``) or its open interest (``open_interest``), recomputed at a stated cadence.

Why a factor on the tiers and not other tiers: the comparison a study wants is "the same venue with hard-coded
thresholds vs thresholds that widen in stress", so everything else (bands, deductions, leverage limits) stays
the venue's. MM becomes f x MM_static(notional) and IM f x notional / leverage, so MM <= IM still holds at every
factor (an order the venue admits is never liquidatable at once). The factor is in ppm (an integer), never below
1 (the static tiers are the floor) and at most ``max_multiplier``.

Why a cadence and not per fill: the factor is a property of the market, not of an account, so it is computed once
per update from O(1) running state (a rolling sum of squared returns, or the open interest), and what it costs
never grows with the open positions. What a change does to the liquidation trigger index is the engine's
(``MarginEngine.set_factor``: a new epoch of heaps, old keys rescaled by a bound, never re-keyed one by one).

``realized_vol``: at the first mark update at or after each multiple of ``update_s`` the mark is sampled; r is
the simple return between consecutive samples, each r^2 floored to 1e-18 (integer), summed over the last
``window_s / update_s`` returns; the annualised variance is that sum x (seconds per year / window_s), and
factor = sqrt(variance) / reference_vol, floored to a ppm (``math.isqrt``, exact), clamped to [1, max]. Until
the window is full the factor is 1. ``open_interest``: factor = open interest (long lots at the mark) /
``reference_usdc``, floored to a ppm, clamped the same way, read at each update.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from math import isqrt
from typing import Callable, Optional, Protocol

from abm.errors import InvalidInput
from abm.registry import Registry
from abm.units import SECONDS_PER_YEAR

PPM = 1_000_000
_SQ_SCALE = 10**18  # a squared return's unit


class DynamicMargin(Protocol):
    """One market's factor model: ``observe`` is called at every mark update and answers the new factor (ppm)
    when an update changed it, else None. ``factor_ppm`` is the factor in force."""

    factor_ppm: int

    def observe(self, now_us: int, mark: int, open_interest: int, multiplier: int) -> Optional[int]: ...


@dataclass(frozen=True, slots=True)
class DynamicMarginSpec:
    """What a profile's ``margin.dynamic`` says, in integers (µs, quote units, ppm); ``build`` makes one market's
    fresh model. ``kind`` is resolved once here (``DYNAMIC_MARGINS``)."""

    kind: str
    update_us: int
    max_ppm: int
    window_us: int = 0  # realized_vol: the returns' window
    reference_vol: Fraction = Fraction(0)  # realized_vol: the annualised vol at which the factor is 1
    reference_units: int = 0  # open_interest: the open interest (quote units) at which the factor is 1

    def __post_init__(self) -> None:
        if type(self.update_us) is not int or self.update_us <= 0:
            raise InvalidInput("margin.dynamic.update_s", self.update_us, "must be a positive whole number of µs")
        if type(self.max_ppm) is not int or self.max_ppm < PPM:
            raise InvalidInput("margin.dynamic.max_multiplier", Fraction(self.max_ppm, PPM), "must be at least 1")
        DYNAMIC_MARGINS.resolve(self.kind, "margin.dynamic.kind")(self)  # its own checks, at once

    def build(self) -> DynamicMargin:
        return DYNAMIC_MARGINS.resolve(self.kind, "margin.dynamic.kind")(self)


DYNAMIC_MARGINS: Registry[Callable[[DynamicMarginSpec], DynamicMargin]] = Registry(
    "dynamic margin", "margin.dynamic.kind", "a class built as cls(spec) with factor_ppm and observe(...)")


def _clamp(ppm: int, most: int) -> int:
    return PPM if ppm < PPM else most if ppm > most else ppm


@DYNAMIC_MARGINS.register("realized_vol")
class RealizedVolMargin:
    """Factor = realized vol of the sampled marks over the window / the reference vol (see the module)."""

    __slots__ = ("update_us", "n", "num", "den", "max_ppm", "next_us", "last", "squares", "total", "factor_ppm")

    def __init__(self, spec: DynamicMarginSpec) -> None:
        if spec.reference_vol <= 0:
            raise InvalidInput("margin.dynamic.reference_vol", spec.reference_vol, "must be > 0")
        if spec.window_us % spec.update_us or spec.window_us < 2 * spec.update_us:
            raise InvalidInput("margin.dynamic.window_s", Fraction(spec.window_us, PPM),
                               f"must be a multiple of update_s = {Fraction(spec.update_us, PPM)} and at least two")
        self.update_us = spec.update_us
        self.n = spec.window_us // spec.update_us
        ref = spec.reference_vol
        # factor_ppm = isqrt(total * year_s * den^2 // (window_us * num^2)), ref = num / den
        self.num = SECONDS_PER_YEAR * ref.denominator ** 2
        self.den = spec.window_us * ref.numerator ** 2
        self.max_ppm = spec.max_ppm
        self.next_us = 0
        self.last = 0
        self.squares: deque[int] = deque()
        self.total = 0
        self.factor_ppm = PPM

    def observe(self, now_us: int, mark: int, open_interest: int, multiplier: int) -> Optional[int]:
        if now_us < self.next_us:
            return None
        self.next_us = (now_us // self.update_us + 1) * self.update_us
        last = self.last
        self.last = mark
        if not last:
            return None
        d = mark - last
        q = d * d * _SQ_SCALE // (last * last)
        sq = self.squares
        sq.append(q)
        self.total += q
        if len(sq) > self.n:
            self.total -= sq.popleft()
        if len(sq) < self.n:
            return None
        f = _clamp(isqrt(self.total * self.num // self.den), self.max_ppm)
        if f == self.factor_ppm:
            return None
        self.factor_ppm = f
        return f


@DYNAMIC_MARGINS.register("open_interest")
class OpenInterestMargin:
    """Factor = open interest at the mark / the reference open interest (see the module)."""

    __slots__ = ("update_us", "ref", "max_ppm", "next_us", "factor_ppm")

    def __init__(self, spec: DynamicMarginSpec) -> None:
        if type(spec.reference_units) is not int or spec.reference_units <= 0:
            raise InvalidInput("margin.dynamic.reference_usdc", spec.reference_units, "must be > 0 (quote units)")
        self.update_us = spec.update_us
        self.ref = spec.reference_units
        self.max_ppm = spec.max_ppm
        self.next_us = 0
        self.factor_ppm = PPM

    def observe(self, now_us: int, mark: int, open_interest: int, multiplier: int) -> Optional[int]:
        if now_us < self.next_us:
            return None
        self.next_us = (now_us // self.update_us + 1) * self.update_us
        f = _clamp(open_interest * mark * multiplier * PPM // self.ref, self.max_ppm)
        if f == self.factor_ppm:
            return None
        self.factor_ppm = f
        return f
