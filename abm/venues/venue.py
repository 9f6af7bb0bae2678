"""``Venue``: a validated profile plus the builders that turn it into the engine's objects.

Why builders instead of handing out numbers: the engine works in integer quote units, ppm and
microseconds, and the conversions (USDC -> quote units at a market's ``quote_decimals``, percent ->
Fraction, seconds -> microseconds) are where silent rounding would creep in. Each builder does them
exactly, in one place, and refuses (naming the profile path) what would need rounding.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, Mapping, Optional, Union

from abm.config import Problem, dump_toml
from abm.errors import InvalidInput
from abm.margin.dynamic import PPM, DynamicMarginSpec
from abm.margin.liquidation import DEFAULT_LIQUIDATION_PROCESS, LIQUIDATION_PROCESSES, LiquidationFactory
from abm.margin.params import LiquidationConfig, RiskParams
from abm.margin.tiers import TierTable, bracket_tiers, hyperliquid_tiers
from abm.market.spec import MarketSpec
from abm.prices.funding import FundingConfig
from abm.prices.mark import MARK_MODELS, MarkModel
from abm.venues.fees import DEFAULT_FEE_MODEL, FEE_MODELS
from abm.venues.rules import VenueRule, build_rules
from abm.venues.schema import MAX_QUOTE_DECIMALS, US, GatewayConfig, InvalidProfile, TierClass, VenueProfile, band_mmr

__all__ = ["Venue", "OrderLimits", "StalenessLimits", "GatewaySpec", "RateLimitSpec", "GATEWAY_ACTIONS", "gateway_spec"]

# what passes the gateway, by the link's name ("stop" / "cancel_stop": placing and cancelling venue-held triggers)
GATEWAY_ACTIONS = ("limit", "market", "cancel", "cancel_all", "modify", "stop", "cancel_stop")


@dataclass(frozen=True, slots=True)
class OrderLimits:
    """Order and position size limits of one tier class, in quote units (None: no limit)."""

    min_order_value: int
    max_market_order_value: Optional[int]
    max_position_notional: Optional[int]


@dataclass(frozen=True, slots=True)
class StalenessLimits:
    """When the oracle counts as stale (``Oracle.is_stale(t, max_age_us)``) and when liquidations pause."""

    trading_max_age_us: int
    margin_max_age_us: int
    max_divergence: Fraction  # |oracle - mark| / oracle above which liquidations pause (0.1 = 10 %)


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """One per-account rate limit in integers: at most ``limit`` weight in each ``window_us`` window."""

    name: str
    window_us: int
    limit: int
    weights: Mapping[str, int]  # action (GATEWAY_ACTIONS) -> weight


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    """The venue's gateway in integers (``abm.sim.gateway.Gateway``): ``service_us`` 0 means no queue."""

    service_us: int
    queue_limit: Optional[int]
    cancel_priority: bool
    liquidations_queued: bool
    rate_limits: tuple[RateLimitSpec, ...]


def gateway_spec(g: GatewayConfig) -> GatewaySpec:
    """A validated gateway table (``check_gateway`` passed) in microseconds and weights."""
    service = _us(g.service_s) if g.service_s is not None else 0
    if g.actions_per_s is not None:
        service = _us(1 / g.actions_per_s)
    limits = tuple(RateLimitSpec(r.name, _us(r.window_s), r.limit, {a: getattr(r.weights, a) for a in GATEWAY_ACTIONS})
                   for r in g.rate_limits)
    return GatewaySpec(service, g.queue_limit, g.cancel_priority, g.liquidations == "queued", limits)


def _us(seconds: Fraction) -> int:
    us = seconds * US
    assert us.denominator == 1  # the schema only admits whole microseconds
    return int(us)


def _check_qd(quote_decimals: Any) -> int:
    if type(quote_decimals) is not int or not 0 <= quote_decimals <= MAX_QUOTE_DECIMALS:
        raise InvalidInput("quote_decimals", quote_decimals, f"must be an integer in [0, {MAX_QUOTE_DECIMALS}]")
    return quote_decimals


@dataclass(frozen=True, slots=True)
class Venue:
    """A venue profile, validated. Build per-market objects with the methods; ``to_dict`` records it.

    Equality compares the profile only (not where it was read from), so ``load_venue(v.to_dict()) == v``.
    """

    profile: VenueProfile
    source: str = field(default="<mapping>", compare=False)

    def __hash__(self) -> int:
        return hash(self.to_toml())  # the profile holds tables; its canonical text identifies it

    # ------------------------------------------------------------------------------ reading

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def tier_classes(self) -> tuple[str, ...]:
        return tuple(self.profile.tiers)

    def tier_class(self, tier_class: str) -> TierClass:
        """The tier class by name; an unknown name is refused with the closest one."""
        tiers = self.profile.tiers
        tc = tiers.get(tier_class) if isinstance(tier_class, str) else None
        if tc is None:
            names = list(tiers)
            close = difflib.get_close_matches(str(tier_class), names, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise InvalidInput("tier_class", tier_class, f"must be one of {names} of venue '{self.name}'{hint}")
        return tc

    def units(self, path: str, amount: Fraction, quote_decimals: int = 6) -> int:
        """A money amount (quote currency) as integer quote units; refuses amounts that would need rounding."""
        qd = _check_qd(quote_decimals)
        u = amount * 10**qd
        if u.denominator != 1:
            raise InvalidProfile(self.source, [Problem(path, amount, f"must be a whole number of quote units at "
                                                                     f"quote_decimals={qd} (a multiple of 1e-{qd})")])
        return int(u)

    # ------------------------------------------------------------------------------ builders

    def market_spec(self, symbol: str, tick_size: Union[str, Decimal, int], lot_size: Union[str, Decimal, int],
                    quote_decimals: int = 6) -> MarketSpec:
        """A MarketSpec with this venue's fees (by its fee model) and self-trade prevention; the grid is the market's own."""
        maker_bps, taker_bps = FEE_MODELS.resolve(DEFAULT_FEE_MODEL)(self.profile)
        return MarketSpec(symbol, tick_size=tick_size, lot_size=lot_size,  # type: ignore[arg-type]  # it converts
                          quote_decimals=_check_qd(quote_decimals), maker_fee_bps=maker_bps, taker_fee_bps=taker_bps,
                          stp=self.profile.orders.stp, price_band=self.price_band())

    def price_band(self) -> Optional[Decimal]:
        """The orders' price band as a share of the mark (0.8 for 80 %), or None."""
        pct = self.profile.orders.price_band_pct
        return None if pct is None else Decimal(pct.numerator) / Decimal(pct.denominator) / 100

    def tier_table(self, tier_class: str, quote_decimals: int = 6) -> TierTable:
        """The class's bands in quote units with the venue's maintenance rule (half IM, or the stated rates)."""
        tc = self.tier_class(tier_class)
        lowers = [self.units(f"tiers.{tier_class}.bands[{i}].lower", b.lower, quote_decimals)
                  for i, b in enumerate(tc.bands)]
        if self.profile.margin.maintenance == "half_initial":
            return hyperliquid_tiers([(lo, b.max_leverage) for lo, b in zip(lowers, tc.bands)])
        return bracket_tiers([(lo, b.max_leverage, band_mmr(self.profile, b)) for lo, b in zip(lowers, tc.bands)])

    def liquidation_config(self, quote_decimals: int = 6) -> LiquidationConfig:
        """How liquidations proceed on this venue; money in quote units at ``quote_decimals``."""
        liq = self.profile.liquidation
        kw: dict[str, Any] = dict(backstop=liq.backstop, insurance_takeover=liq.insurance_takeover,
                                  fee_ppm=int(liq.fee_pct * 10_000),
                                  adl_ranking=liq.adl_ranking, adl_price=liq.adl_price)
        if liq.slice_threshold is None:
            kw["slice_threshold"] = None
        else:
            kw["slice_threshold"] = self.units("liquidation.slice_threshold", liq.slice_threshold, quote_decimals)
            kw["slice_fraction"] = liq.slice_fraction
            kw["cooldown_us"] = _us(liq.cooldown_s)  # type: ignore[arg-type]
        if liq.backstop_ratio is not None:
            kw["backstop_ratio"] = liq.backstop_ratio
        return LiquidationConfig(**kw)

    def liquidation_process(self) -> LiquidationFactory:
        """The liquidation process class for ``Exchange(liquidation=...)``, by ``liquidation.process`` (absent: the
        default waterfall); one per exchange, unlike the per-market ``liquidation_config``."""
        name = self.profile.liquidation.process
        return LIQUIDATION_PROCESSES.resolve(DEFAULT_LIQUIDATION_PROCESS if name is None else name, "liquidation.process")

    def risk_params(self, tier_class: str, default_leverage: Optional[int] = None,
                    quote_decimals: int = 6) -> RiskParams:
        """RiskParams for ``Exchange.list_market``: the class's tier table and the venue's liquidation rules.

        ``quote_decimals`` must be the one the market's MarketSpec uses (both default to 6).
        """
        return RiskParams(self.tier_table(tier_class, quote_decimals), default_leverage,
                          self.liquidation_config(quote_decimals), self.dynamic_margin(quote_decimals))

    def dynamic_margin(self, quote_decimals: int = 6) -> Optional[DynamicMarginSpec]:
        """``margin.dynamic`` in integers (µs, quote units, ppm), or None for static tiers."""
        d = self.profile.margin.dynamic
        if d is None:
            return None
        kw: dict[str, Any] = dict(kind=d.kind, update_us=_us(d.update_s), max_ppm=int(d.max_multiplier * PPM))
        if d.kind == "realized_vol":
            kw.update(window_us=_us(d.window_s), reference_vol=d.reference_vol)
        else:
            kw["reference_units"] = self.units("margin.dynamic.reference_usdc", d.reference_usdc, quote_decimals)
        return DynamicMarginSpec(**kw)

    def max_leverage(self, tier_class: str) -> int:
        return self.tier_class(tier_class).bands[0].max_leverage

    def funding_config(self, tier_class_or_max_leverage: Union[str, int]) -> FundingConfig:
        """FundingConfig for a market of this tier class (or of this maximum leverage): the cap depends on it."""
        key = tier_class_or_max_leverage
        if isinstance(key, str):
            lev = self.max_leverage(key)
        elif type(key) is int and key >= 1:
            lev = key
        else:
            raise InvalidInput("tier_class_or_max_leverage", key,
                               f"must be a tier class name ({list(self.profile.tiers)}) or an integer leverage >= 1")
        f = self.profile.funding
        cap = next((r.cap_pct for r in f.caps_by_max_leverage if lev <= r.max_leverage), f.cap_pct) / 100
        return FundingConfig(venue=self.name, payment_interval_us=_us(f.payment_interval_s),
                             sample_interval_us=_us(f.sample_interval_s), rate_period_us=_us(f.rate_period_s),
                             interest=f.interest_pct / 100, band=f.band_pct / 100, cap=cap,
                             capped_interval_us=_us(f.capped_interval_s) if f.capped_interval_s is not None else None)

    def impact_notional(self, tier_class: str, quote_decimals: int = 6) -> int:
        """The notional (quote units) whose average fill gives the impact prices the funding premium uses.

        The class's own ``impact_notional`` if set (Hyperliquid), else ``funding.impact_margin`` divided by
        the initial margin rate at the class's maximum leverage (Binance: 200 USDT x max leverage).
        """
        tc = self.tier_class(tier_class)
        if tc.impact_notional is not None:
            return self.units(f"tiers.{tier_class}.impact_notional", tc.impact_notional, quote_decimals)
        margin = self.profile.funding.impact_margin
        assert margin is not None  # the schema requires one of the two
        return self.units("funding.impact_margin", margin * tc.bands[0].max_leverage, quote_decimals)

    def order_limits(self, tier_class: str, quote_decimals: int = 6) -> OrderLimits:
        """Minimum order value, maximum market-order value (by the class's leverage) and position cap."""
        tc = self.tier_class(tier_class)
        o = self.profile.orders
        lev = tc.bands[0].max_leverage
        max_mkt = None
        for i, rule in enumerate(o.max_market_value or ()):
            if lev >= rule.min_leverage:
                max_mkt = self.units(f"orders.max_market_value[{i}].value", rule.value, quote_decimals)
                break
        cap = (self.units(f"tiers.{tier_class}.max_notional", tc.max_notional, quote_decimals)
               if tc.max_notional is not None else None)
        return OrderLimits(self.units("orders.min_value", o.min_value, quote_decimals), max_mkt, cap)

    def order_rules(self, tier_class: str, spec: MarketSpec) -> tuple[VenueRule, ...]:
        """The profile's opt-in order-entry rules built for one market (``Exchange.list_market(..., rules=)``);
        () when the profile enables none."""
        self.tier_class(tier_class)  # an unknown class is refused by name
        return build_rules(self, tier_class, spec) if self.profile.rules else ()

    def mark_model(self) -> MarkModel:
        """A fresh mark-price model (each market needs its own: the models keep state), by ``mark.formula``."""
        return MARK_MODELS.resolve(self.profile.mark.formula).from_profile(self.profile)

    def oracle_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Oracle(path, tick_size, **kwargs)`` (add ``rng`` when noise_bps > 0)."""
        o = self.profile.oracle
        return {"interval_us": _us(o.interval_s), "delay_us": _us(o.delay_s), "noise_bps": float(o.noise_bps),
                "clip_pct": float(o.clip_pct) if o.clip_pct is not None else None}

    def gateway(self) -> Optional[GatewaySpec]:
        """The gateway's capacity and rate limits in microseconds and weights; None when the profile has none."""
        return None if self.profile.gateway is None else gateway_spec(self.profile.gateway)

    def staleness(self) -> StalenessLimits:
        s = self.profile.staleness
        return StalenessLimits(_us(s.trading_s), _us(s.margin_s), s.divergence_pct / 100)

    # ------------------------------------------------------------------------------ recording

    def to_dict(self) -> dict[str, Any]:
        """The resolved profile as plain data (no None); ``load_venue`` of it gives an equal Venue."""
        return self.profile.to_dict()

    def to_toml(self) -> str:
        """The resolved profile as TOML text; ``load_venue`` of the written file gives an equal Venue."""
        return dump_toml(self.to_dict())

    def with_overrides(self, overrides: Mapping[str, object]) -> "Venue":
        """A new Venue with dotted-path overrides applied and validated (this one is unchanged)."""
        from abm.venues import build_venue

        return build_venue(self.to_dict(), self.source, overrides)
