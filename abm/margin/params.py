"""Per-market risk parameters: tier table, default leverage, and how liquidations proceed.

Defaults follow the Hyperliquid-like process in shared/reference/venue-mechanics.md: book
liquidation with market orders, 20% slices with a 30 s cooldown above 100k USDC notional, a backstop
vault below 2/3 of maintenance margin or when the book cannot absorb, no liquidation fee, and ADL
ranked by (mark / entry) x (notional / account value) at the previous mark. ``binance_liquidation``
gives the Binance-like variant: one large order, a liquidation fee to the insurance fund, no
backstop vault, what the book cannot take closed against the insurance fund at the bankruptcy price,
and ADL (when the fund cannot pay) ranked by PnL% x effective leverage at the bankruptcy price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

from abm.errors import InvalidInput
from abm.margin.adl import ADL_RANKINGS, AdlRanking
from abm.margin.dynamic import PPM, DynamicMarginSpec
from abm.margin.tiers import TierTable

ADL_PRICES = ("mark", "bankruptcy")


@dataclass(frozen=True, slots=True)
class LiquidationConfig:
    slice_threshold: Optional[int] = 100_000 * 10**6  # notional (quote units) above which orders are sliced; None: never
    slice_fraction: Fraction = Fraction(1, 5)
    cooldown_us: int = 30_000_000
    backstop: bool = True
    backstop_ratio: Fraction = Fraction(2, 3)  # below this share of MM the backstop takes over at once
    # what the book (and the vault) cannot take, the insurance fund takes at the bankruptcy price, before ADL
    insurance_takeover: bool = False
    fee_ppm: int = 0  # liquidation fee on liquidated notional, to the insurance fund (ppm: 1 bp = 100)
    adl_ranking: str = "hyperliquid"  # a name in ADL_RANKINGS or "module:Class" (a subclass of AdlRanking)
    adl_price: str = "mark"
    ranking: AdlRanking = field(init=False, repr=False, compare=False)  # adl_ranking, resolved once here

    def __post_init__(self) -> None:
        if self.slice_threshold is not None and (type(self.slice_threshold) is not int or self.slice_threshold <= 0):
            raise InvalidInput("slice_threshold", self.slice_threshold, "must be a positive integer (quote units) or None")
        if not 0 < self.slice_fraction <= 1:
            raise InvalidInput("slice_fraction", self.slice_fraction, "must be in (0, 1]")
        if type(self.cooldown_us) is not int or self.cooldown_us < 0:
            raise InvalidInput("cooldown_us", self.cooldown_us, "must be a non-negative integer (microseconds)")
        if type(self.insurance_takeover) is not bool:
            raise InvalidInput("insurance_takeover", self.insurance_takeover, "must be true or false")
        if not 0 <= self.backstop_ratio <= 1:
            raise InvalidInput("backstop_ratio", self.backstop_ratio, "must be in [0, 1]")
        if type(self.fee_ppm) is not int or not 0 <= self.fee_ppm < 1_000_000:
            raise InvalidInput("fee_ppm", self.fee_ppm, "must be an integer in [0, 1000000)")
        object.__setattr__(self, "ranking", ADL_RANKINGS.resolve(self.adl_ranking)())
        if self.adl_price not in ADL_PRICES:
            raise InvalidInput("adl_price", self.adl_price, f"must be one of {list(ADL_PRICES)}")


def binance_liquidation(fee_ppm: int = 12_500) -> LiquidationConfig:
    return LiquidationConfig(slice_threshold=None, backstop=False, insurance_takeover=True, fee_ppm=fee_ppm,
                             adl_ranking="binance", adl_price="bankruptcy")


@dataclass(frozen=True, slots=True)
class RiskParams:
    tiers: TierTable
    default_leverage: Optional[int] = None  # None: min(20, the table's top leverage)
    liquidation: LiquidationConfig = field(default_factory=LiquidationConfig)
    dynamic: Optional[DynamicMarginSpec] = None  # a factor on MM and IM from the market's vol or OI (None: static)

    def __post_init__(self) -> None:
        if not isinstance(self.tiers, TierTable):
            raise InvalidInput("tiers", self.tiers, "must be a TierTable")
        lev = self.default_leverage
        if lev is not None and (type(lev) is not int or not 1 <= lev <= self.tiers.top_leverage):
            raise InvalidInput("default_leverage", lev, f"must be an integer in [1, {self.tiers.top_leverage}]")
        if not isinstance(self.liquidation, LiquidationConfig):
            raise InvalidInput("liquidation", self.liquidation, "must be a LiquidationConfig")
        dyn = self.dynamic
        if dyn is not None:
            if not isinstance(dyn, DynamicMarginSpec):
                raise InvalidInput("dynamic", dyn, "must be a DynamicMarginSpec or None")
            if Fraction(dyn.max_ppm, PPM) * self.tiers.max_mmr >= 1:
                raise InvalidInput("margin.dynamic.max_multiplier", Fraction(dyn.max_ppm, PPM),
                                   f"must keep the top maintenance rate {self.tiers.max_mmr} below 1 "
                                   f"(less than {1 / self.tiers.max_mmr})")

    @property
    def leverage(self) -> int:
        return self.default_leverage if self.default_leverage is not None else min(20, self.tiers.top_leverage)
