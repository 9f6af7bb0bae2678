"""Tiered margin tables: notional bands -> maximum leverage, maintenance rate, continuous deduction.

MM(notional) = notional * mmr_n - deduction_n in the band n that holds the notional, with
deduction_0 = 0 and deduction_n = deduction_(n-1) + lower_bound_n * (mmr_n - mmr_(n-1)), so MM is
continuous in size (no jump when a position grows into the next band). Rates are exact Fractions:
Hyperliquid's rule "maintenance = half the initial margin at the band's maximum leverage" gives
rates such as 1/6 that no decimal holds exactly.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Optional, Sequence, Union

from abm.errors import InvalidInput
from abm.market.spec import exact_fraction


@dataclass(frozen=True, slots=True)
class Tier:
    lower: int  # band starts at this notional (quote units), inclusive
    max_leverage: int
    mmr: Fraction  # maintenance margin rate


@dataclass(frozen=True, slots=True)
class TierTable:
    tiers: tuple[Tier, ...]
    # initial margin rate = im_scale / max_leverage: 1 for a venue's own table; a dynamic-margin factor scales both
    im_scale: Fraction = Fraction(1)
    _lowers: tuple[int, ...] = field(init=False, repr=False)
    _deductions: tuple[Fraction, ...] = field(init=False, repr=False)
    _int_terms: tuple[tuple[int, int, int, int, int, Optional[int]], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        tiers = self.tiers
        if not tiers:
            raise InvalidInput("tiers", [], "must hold at least one tier")
        if tiers[0].lower != 0:
            raise InvalidInput("tiers[0].lower", tiers[0].lower, "must be 0 (the first band starts at zero notional)")
        for i, t in enumerate(tiers):
            if type(t.lower) is not int or t.lower < 0:
                raise InvalidInput(f"tiers[{i}].lower", t.lower, "must be a non-negative integer (quote units)")
            if type(t.max_leverage) is not int or not 1 <= t.max_leverage <= 1000:
                raise InvalidInput(f"tiers[{i}].max_leverage", t.max_leverage, "must be an integer in [1, 1000]")
            if not 0 < t.mmr < 1:
                raise InvalidInput(f"tiers[{i}].mmr", t.mmr, "must be in (0, 1)")
            if t.mmr > self.im_scale / t.max_leverage:
                raise InvalidInput(
                    f"tiers[{i}].mmr", t.mmr, f"must not exceed the initial margin rate {self.im_scale}/{t.max_leverage}"
                )
            if i:
                p = tiers[i - 1]
                if t.lower <= p.lower:
                    raise InvalidInput(f"tiers[{i}].lower", t.lower, f"must be above tiers[{i - 1}].lower = {p.lower}")
                if t.max_leverage > p.max_leverage or t.mmr < p.mmr:
                    raise InvalidInput(
                        f"tiers[{i}]", t, "higher bands must not allow more leverage or a lower maintenance rate"
                    )
        ded = [Fraction(0)]
        for i in range(1, len(tiers)):
            ded.append(ded[-1] + tiers[i].lower * (tiers[i].mmr - tiers[i - 1].mmr))
        object.__setattr__(self, "_lowers", tuple(t.lower for t in tiers))
        object.__setattr__(self, "_deductions", tuple(ded))
        uppers = [t.lower for t in tiers[1:]] + [None]
        object.__setattr__(self, "_int_terms", tuple(
            (t.mmr.numerator, t.mmr.denominator, d.numerator, d.denominator, t.lower, hi)
            for t, d, hi in zip(tiers, ded, uppers)))

    def index(self, notional: int | Fraction) -> int:
        return bisect_right(self._lowers, notional) - 1

    def tier(self, notional: int | Fraction) -> Tier:
        return self.tiers[self.index(notional)]

    def max_leverage(self, notional: int | Fraction) -> int:
        return self.tiers[self.index(notional)].max_leverage

    def maintenance(self, notional: int | Fraction) -> Fraction:
        """Exact maintenance margin (quote units) for a position of this absolute notional."""
        i = self.index(notional)
        return notional * self.tiers[i].mmr - self._deductions[i]

    def int_terms(self) -> tuple[tuple[int, int, int, int, int, Optional[int]], ...]:
        """Per band (mmr numerator, denominator, deduction numerator, denominator, lower, upper): exact integer
        pieces for hot paths that must not build Fractions."""
        return self._int_terms

    def rate_and_deduction(self, i: int) -> tuple[Fraction, Fraction]:
        return self.tiers[i].mmr, self._deductions[i]

    def scaled(self, factor: Fraction) -> TierTable:
        """The same bands with every maintenance and initial rate times ``factor`` (dynamic margin): MM(n) becomes
        exactly factor x MM(n), since the deductions are built from the rates."""
        if factor < 1 or factor * self.max_mmr >= 1:
            raise InvalidInput("factor", factor, f"must be >= 1 and keep the top maintenance rate below 1 "
                                                 f"(at most {1 / self.max_mmr} here)")
        return TierTable(tuple(Tier(t.lower, t.max_leverage, t.mmr * factor) for t in self.tiers), self.im_scale * factor)

    @property
    def max_mmr(self) -> Fraction:
        return self.tiers[-1].mmr

    @property
    def top_leverage(self) -> int:
        return self.tiers[0].max_leverage


def hyperliquid_tiers(bands: Sequence[tuple[int, int]]) -> TierTable:
    """Bands of (lower notional in quote units, max leverage); maintenance = half the IM rate at max leverage."""
    return TierTable(tuple(Tier(lower, lev, Fraction(1, 2 * lev)) for lower, lev in bands))


def bracket_tiers(bands: Sequence[tuple[int, int, Union[str, int, float, Decimal, Fraction]]]) -> TierTable:
    """Binance-style brackets of (lower notional, max leverage, maintenance rate as a number, e.g. "0.004")."""
    return TierTable(tuple(Tier(lower, lev, exact_fraction(mmr) if not isinstance(mmr, str) else Fraction(mmr))
                           for lower, lev, mmr in bands))
