"""The validated schema of a venue profile, and errors a user can act on.

Why a schema: a profile is data that people edit by hand (and override per run), and a typo such as
``cooldwn_s`` or a rate written in the wrong unit must fail loudly at load time, naming the dotted path,
the value and what is allowed, instead of silently falling back to a default mid-study.

Numbers are exact. Every number is parsed into a ``Fraction`` (ints, TOML floats read as ``Decimal``,
Python floats as written: ``0.1`` is 1/10, and strings such as ``"0.004"``, ``"150_000_000"`` or
``"2/3"``), so converting money to integer quote units and rates to ppm never rounds. ``VenueProfile``
dumps every number back as an int when it is whole and otherwise as an exact string (a decimal such as
``"1.5"``, or ``"2/3"`` where no decimal is exact), so a dumped profile loads back unchanged.

Units live in the key names: ``*_bps`` basis points, ``*_pct`` percent, ``*_s`` seconds (whole
microseconds), money (``min_value``, ``lower``, ``impact_notional``, ...) in quote currency.

Validation runs in two passes, both reported together as one ``InvalidProfile``: pydantic checks each
value and key (``extra="forbid"``), then ``check_profile`` checks rules that span keys (bands in order,
settings that only make sense together) and builds every engine object once, so a profile that loads
always builds.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Iterator,
    Literal,
    Mapping,
    Optional,
    Union,
)

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_serializer,
    field_validator,
)

from abm.config.numbers import dump_number, integer, number
from abm.config.paths import plain, problem_of
from abm.config.problems import MISSING, InvalidConfig, Problem
from abm.errors import InvalidInput
from abm.margin.adl import ADL_RANKINGS
from abm.margin.liquidation import LIQUIDATION_PROCESSES
from abm.market.spec import (
    MAX_QUOTE_DECIMALS,  # money in a profile has at most as many decimals as a market
    MarketSpec,
)

__all__ = [
    "InvalidProfile",
    "Problem",
    "VenueProfile",
    "TierClass",
    "Band",
    "parse_profile",
    "MAX_QUOTE_DECIMALS",
    "GatewayConfig",
    "check_gateway",
]

US = 1_000_000  # microseconds per second
# the market a profile's rules are built for once at load (quote units at the most decimals: always exact)
_RULES_CHECK_SPEC = MarketSpec("CHECK", tick_size=Decimal(1), lot_size=Decimal(1), quote_decimals=MAX_QUOTE_DECIMALS)

class InvalidProfile(InvalidConfig):
    what = "venue profile"


_MONEY_STEP = Fraction(1, 10**MAX_QUOTE_DECIMALS)
_MONEY_TEXT = f"must have at most {MAX_QUOTE_DECIMALS} decimal places (a whole number of quote units)"
_US_STEP = Fraction(1, US)
_US_TEXT = "must be a whole number of microseconds"
_BP_STEP = Fraction(1, 100)
_BP_TEXT = "must be a multiple of 0.01 bp"

if TYPE_CHECKING:  # to a type checker the field types are plain Fractions and ints
    Money = Fraction
    PositiveMoney = Fraction
    Seconds = Fraction
    PositiveSeconds = Fraction
    FeeBps = Fraction
    TakerFeeBps = Fraction
    Percent = Fraction
    PercentOrZero = Fraction
    PositivePercent = Fraction
    SignedPercent = Fraction
    LiquidationFeePct = Fraction
    BandPct = Fraction
    Share = Fraction
    ShareOrZero = Fraction
    NoiseBps = Fraction
    Leverage = int
    Count = int
    Weight = int
    Rate = Fraction
    Multiplier = Fraction
    Vol = Fraction
else:
    Money = number(ge=0, step=_MONEY_STEP, step_text=_MONEY_TEXT)
    PositiveMoney = number(gt=0, step=_MONEY_STEP, step_text=_MONEY_TEXT)
    Seconds = number(ge=0, step=_US_STEP, step_text=_US_TEXT)
    PositiveSeconds = number(gt=0, step=_US_STEP, step_text=_US_TEXT)
    FeeBps = number(gt=-10_000, lt=10_000, step=_BP_STEP, step_text=_BP_TEXT)
    TakerFeeBps = number(ge=0, lt=10_000, step=_BP_STEP, step_text=_BP_TEXT)
    Percent = number(gt=0, lt=100)
    PercentOrZero = number(ge=0, lt=100)
    PositivePercent = number(gt=0)
    SignedPercent = number(gt=-100, lt=100)
    LiquidationFeePct = number(ge=0, lt=100, step=Fraction(1, 10_000), step_text="must be a multiple of 0.0001% (1 ppm)")
    BandPct = number(gt=0, lt=100, step=Fraction(1, 10_000), step_text="must be a multiple of 0.0001% (1 ppm)")
    Share = number(gt=0, le=1)
    ShareOrZero = number(ge=0, le=1)
    NoiseBps = number(ge=0, lt=10_000)
    Leverage = integer(1, 1000)
    Count = integer(1, 10**9)
    Weight = integer(0, 10**6)
    Rate = number(gt=0)
    Multiplier = number(ge=1, le=1000, step=Fraction(1, 1_000_000), step_text="must be a multiple of 0.000001 (1 ppm)")
    Vol = number(gt=0, le=1000)
Name = Annotated[StrictStr, Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------------------------- the profile


class Fees(_Model):
    """Trading fees in basis points (a negative maker fee is a rebate)."""

    maker_bps: FeeBps
    taker_bps: TakerFeeBps


class MaxMarketValue(_Model):
    """Markets whose maximum leverage is at least ``min_leverage`` cap one market order at ``value``."""

    min_leverage: Leverage
    value: PositiveMoney


class Orders(_Model):
    min_value: Money
    stp: Literal["cancel_resting", "cancel_incoming"]
    max_market_value: Optional[tuple[MaxMarketValue, ...]] = None
    # how far from the mark an order's price may be, in percent of the mark (None: no band)
    price_band_pct: Optional[BandPct] = None


class RealizedVolMargin(_Model):
    """Dynamic margin from the market's own marks (``abm.margin.dynamic``): factor = realized vol over ``window_s``
    of the marks sampled every ``update_s``, over ``reference_vol``, clamped to [1, ``max_multiplier``]."""

    kind: Literal["realized_vol"]
    window_s: PositiveSeconds  # the returns' window: a multiple of update_s, at least two samples
    update_s: PositiveSeconds = Fraction(10)  # the cadence: mark sampled and factor recomputed at each multiple
    reference_vol: Vol  # the annualised vol (0.5 = 50 %/yr) at which the factor is 1
    max_multiplier: Multiplier  # the factor's ceiling (MM and IM at most this times the static tiers')


class OpenInterestMargin(_Model):
    """Dynamic margin from open interest: factor = open interest at the mark / ``reference_usdc``, clamped to
    [1, ``max_multiplier``], read every ``update_s``."""

    kind: Literal["open_interest"]
    update_s: PositiveSeconds = Fraction(10)  # the cadence: factor recomputed at the first mark update of each
    reference_usdc: PositiveMoney  # the open interest (long lots at the mark, quote currency) at which the factor is 1
    max_multiplier: Multiplier  # the factor's ceiling


class Margin(_Model):
    """``half_initial``: each band's maintenance rate is half its initial rate (Hyperliquid), so bands give
    no ``mmr_pct``; ``table``: every band states its ``mmr_pct`` (Binance brackets). ``dynamic`` (absent: static
    tiers) multiplies every market's MM and IM by a factor from its realized vol or open interest."""

    maintenance: Literal["half_initial", "table"]
    dynamic: Optional[Annotated[Union[RealizedVolMargin, OpenInterestMargin], Field(discriminator="kind")]] = None


class Band(_Model):
    lower: Money
    max_leverage: Leverage
    mmr_pct: Optional[Percent] = None


class TierClass(_Model):
    bands: Annotated[tuple[Band, ...], Field(min_length=1)]
    max_notional: Optional[PositiveMoney] = None
    impact_notional: Optional[PositiveMoney] = None
    max_open_interest: Optional[PositiveMoney] = None  # open interest cap of each market of the class, at the mark (rule open_interest_cap)


class Liquidation(_Model):
    slice_threshold: Optional[PositiveMoney] = None
    slice_fraction: Optional[Share] = None
    cooldown_s: Optional[Seconds] = None
    backstop: StrictBool
    backstop_ratio: Optional[ShareOrZero] = None
    insurance_takeover: StrictBool = False  # what book and vault cannot take: to the fund at the bankruptcy price
    fee_pct: LiquidationFeePct
    adl_ranking: StrictStr  # a name in abm.margin.ADL_RANKINGS or "module:Class" (checked in check_profile)
    adl_price: Literal["mark", "bankruptcy"]
    # no_feedback: the control that closes every liquidated unit off the book at the mark (abm.margin.no_feedback)
    process: Optional[StrictStr] = None  # a name in abm.margin.LIQUIDATION_PROCESSES or "module:Class"; absent: book_backstop_adl


class CapRule(_Model):
    """Contracts whose maximum leverage is at most ``max_leverage`` have this funding cap."""

    max_leverage: Leverage
    cap_pct: Percent


class Funding(_Model):
    payment_interval_s: PositiveSeconds
    sample_interval_s: PositiveSeconds
    rate_period_s: PositiveSeconds
    interest_pct: SignedPercent
    band_pct: PercentOrZero
    cap_pct: Percent
    caps_by_max_leverage: tuple[CapRule, ...] = ()
    capped_interval_s: Optional[PositiveSeconds] = None
    impact_margin: Optional[PositiveMoney] = None
    thin_side: Literal["available_depth", "zero"] = "available_depth"  # a side thinner than the impact notional


class HyperliquidMarkConfig(_Model):
    formula: Literal["hyperliquid"]
    ema_window_s: PositiveSeconds
    # with no external perp price: "book_ema" adds an EMA of the book piece as the third input, "mean" averages two
    two_inputs: Literal["book_ema", "mean"] = "mean"
    book_ema_window_s: PositiveSeconds = Fraction(30)  # that EMA's window


class BinanceMarkConfig(_Model):
    formula: Literal["binance"]
    ma_window_s: PositiveSeconds


class OracleConfig(_Model):
    interval_s: PositiveSeconds
    delay_s: Seconds
    noise_bps: NoiseBps
    clip_pct: Optional[Percent] = None


class Staleness(_Model):
    trading_s: PositiveSeconds
    margin_s: PositiveSeconds
    divergence_pct: PositivePercent


class ActionWeights(_Model):
    """What one action of each kind counts against a rate limit (Binance-style request weights; 0: not counted)."""

    limit: Weight = 1  # a limit order's weight against the rate limit (0: not counted)
    market: Weight = 1  # a market order's weight
    cancel: Weight = 1  # a cancel's weight
    cancel_all: Weight = 1  # a cancel-all's weight
    modify: Weight = 1  # a modify's weight
    stop: Weight = 1  # placing a trigger order held by the venue (its firing is the venue's own: never weighed)
    cancel_stop: Weight = 1  # cancelling a trigger order


class RateLimit(_Model):
    """Per account: at most ``limit`` weight of actions in each window of ``window_s`` (fixed windows from t = 0)."""

    name: Name  # what a refusal names: gateway.rate_limits.NAME
    window_s: PositiveSeconds  # the window's length; windows are fixed, from t = 0 (the counter resets at each)
    limit: Count  # the most weight of one account's actions in one window
    weights: ActionWeights = ActionWeights()  # weight per action kind


class GatewayConfig(_Model):
    """The venue's order gateway (``abm.sim.gateway``): a single-server FIFO queue in front of the matching engine
    and per-account rate limits. Absent: every action is served the instant it arrives, as before."""

    service_s: Optional[PositiveSeconds] = None  # one action's service time (absent with actions_per_s: no queue)
    actions_per_s: Optional[Rate] = None  # or the capacity: 1 / service time, a whole number of microseconds
    queue_limit: Optional[Count] = None  # actions in the gateway (waiting or in service) beyond which one is refused
    cancel_priority: StrictBool = False  # cancels are served before waiting orders and modifies
    # "bypass": liquidation checks never wait (internal); "queued": each waits behind the queued actions
    liquidations: Literal["bypass", "queued"] = "bypass"  # how the venue's liquidation engine meets the queue
    rate_limits: tuple[RateLimit, ...] = ()  # per-account limits, each checked on every action before it queues


class VenueProfile(_Model):
    """A whole venue: every key is required except those that are ``Optional`` (absent means "none")."""

    name: Name
    quote_currency: Name
    fees: Fees
    orders: Orders
    margin: Margin
    tiers: Annotated[dict[Name, TierClass], Field(min_length=1)]
    liquidation: Liquidation
    funding: Funding
    mark: Annotated[Union[HyperliquidMarkConfig, BinanceMarkConfig], Field(discriminator="formula")]
    oracle: OracleConfig
    staleness: Staleness
    rules: tuple[StrictStr, ...] = ()  # opt-in order-entry rules: names in abm.venues.rules.VENUE_RULES or "module:Class"
    gateway: Optional[GatewayConfig] = None  # opt-in gateway capacity and rate limits (absent: unlimited, instant)

    @field_validator("tiers", mode="after")
    @classmethod
    def _freeze_tiers(cls, tiers: dict[str, TierClass]) -> Mapping[str, TierClass]:
        """Read-only, so a loaded Venue cannot drift from what ``to_dict`` recorded."""
        return MappingProxyType(tiers)

    @field_serializer("tiers", mode="wrap")
    def _dump_tiers(self, tiers: Mapping[str, TierClass], handler: Any) -> Any:
        return handler(dict(tiers))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (ints, strings, bools, lists, dicts; no None) that ``parse_profile`` reads back unchanged.

        No rules is left out, as an absent optional key is, and so are ``liquidation.insurance_takeover`` when
        false and ``funding.thin_side`` at its default: a profile's record (and so a scenario's hash) stays what
        it was before they existed.
        """
        data = plain(self.model_dump(mode="python", exclude_none=True))
        if not data.get("rules"):
            data.pop("rules", None)
        if not data["liquidation"].get("insurance_takeover"):
            data["liquidation"].pop("insurance_takeover", None)
        if data["funding"].get("thin_side") == "available_depth":  # the default: records before it stand
            data["funding"].pop("thin_side")
        return data


# ------------------------------------------------------------------------------------- cross-key rules


def _pct(f: Fraction) -> Fraction:
    return f / 100


def band_mmr(profile: VenueProfile, band: Band) -> Fraction:
    """A band's maintenance rate under the profile's rule."""
    if profile.margin.maintenance == "half_initial":
        return Fraction(1, 2 * band.max_leverage)
    assert band.mmr_pct is not None  # check_profile guarantees it
    return _pct(band.mmr_pct)


def _check_tiers(p: VenueProfile) -> Iterator[Problem]:
    rule = p.margin.maintenance
    for name, tc in p.tiers.items():
        base = f"tiers.{name}"
        if tc.impact_notional is None and p.funding.impact_margin is None:
            yield Problem(f"{base}.impact_notional", MISSING,
                          "required unless funding.impact_margin is set (the impact notional funding measures)")
        for i, b in enumerate(tc.bands):
            at = f"{base}.bands[{i}]"
            if rule == "half_initial" and b.mmr_pct is not None:
                yield Problem(f"{at}.mmr_pct", b.mmr_pct,
                              "not allowed with margin.maintenance = 'half_initial' (the rate is half the initial rate)")
            if rule == "table" and b.mmr_pct is None:
                yield Problem(f"{at}.mmr_pct", MISSING, "required with margin.maintenance = 'table'")
        if tc.bands[0].lower != 0:
            yield Problem(f"{base}.bands[0].lower", tc.bands[0].lower, "must be 0 (the first band starts at zero notional)")
        for i in range(1, len(tc.bands)):
            prev, b = tc.bands[i - 1], tc.bands[i]
            at = f"{base}.bands[{i}]"
            if b.lower <= prev.lower:
                yield Problem(f"{at}.lower", b.lower, f"must be above bands[{i - 1}].lower = {dump_number(prev.lower)}")
            if b.max_leverage > prev.max_leverage:
                yield Problem(f"{at}.max_leverage", b.max_leverage,
                              f"must be <= bands[{i - 1}].max_leverage = {prev.max_leverage} (larger positions get less leverage)")
            if b.mmr_pct is not None and prev.mmr_pct is not None and b.mmr_pct < prev.mmr_pct:
                yield Problem(f"{at}.mmr_pct", b.mmr_pct,
                              f"must be >= bands[{i - 1}].mmr_pct = {dump_number(prev.mmr_pct)} (larger positions need more margin)")
        for i, b in enumerate(tc.bands):
            if b.mmr_pct is not None and _pct(b.mmr_pct) > Fraction(1, b.max_leverage):
                yield Problem(f"{base}.bands[{i}].mmr_pct", b.mmr_pct,
                              f"must be <= the initial margin rate at {b.max_leverage}x ({dump_number(Fraction(100, b.max_leverage))}%)")
        if tc.max_notional is not None and tc.max_notional <= tc.bands[-1].lower:
            yield Problem(f"{base}.max_notional", tc.max_notional,
                          f"must be above the last band's lower bound {dump_number(tc.bands[-1].lower)}")


def _check_fees(p: VenueProfile) -> Iterator[Problem]:
    if p.fees.maker_bps + p.fees.taker_bps < 0:
        yield Problem("fees.maker_bps", p.fees.maker_bps,
                      f"a rebate must not exceed the taker fee ({dump_number(p.fees.taker_bps)} bp)")


def _check_liquidation(p: VenueProfile) -> Iterator[Problem]:
    liq = p.liquidation
    for key in ("slice_fraction", "cooldown_s"):
        v = getattr(liq, key)
        if liq.slice_threshold is not None and v is None:
            yield Problem(f"liquidation.{key}", MISSING, "required when liquidation.slice_threshold is set")
        if liq.slice_threshold is None and v is not None:
            yield Problem(f"liquidation.{key}", v,
                          "only allowed with liquidation.slice_threshold (absent: one order, never sliced)")
    if liq.backstop and liq.backstop_ratio is None:
        yield Problem("liquidation.backstop_ratio", MISSING, "required when liquidation.backstop = true")
    if not liq.backstop and liq.backstop_ratio is not None:
        yield Problem("liquidation.backstop_ratio", liq.backstop_ratio, "only allowed when liquidation.backstop = true")
    try:
        ADL_RANKINGS.resolve(liq.adl_ranking, "liquidation.adl_ranking")
    except InvalidInput as e:
        yield Problem("liquidation.adl_ranking", e.value, e.allowed)
    if liq.process is not None:
        try:
            LIQUIDATION_PROCESSES.resolve(liq.process, "liquidation.process")
        except InvalidInput as e:
            yield Problem("liquidation.process", e.value, e.allowed)


def _check_funding(p: VenueProfile) -> Iterator[Problem]:
    f = p.funding
    si = f.sample_interval_s
    if (f.payment_interval_s / si).denominator != 1:
        yield Problem("funding.payment_interval_s", f.payment_interval_s,
                      f"must be a multiple of funding.sample_interval_s = {dump_number(si)}")
    ci = f.capped_interval_s
    if ci is not None:
        if ci >= f.payment_interval_s:
            yield Problem("funding.capped_interval_s", ci,
                          f"must be shorter than funding.payment_interval_s = {dump_number(f.payment_interval_s)}")
        if (ci / si).denominator != 1:
            yield Problem("funding.capped_interval_s", ci, f"must be a multiple of funding.sample_interval_s = {dump_number(si)}")
    rules = f.caps_by_max_leverage
    for i in range(1, len(rules)):
        if rules[i].max_leverage <= rules[i - 1].max_leverage:
            yield Problem(f"funding.caps_by_max_leverage[{i}].max_leverage", rules[i].max_leverage,
                          f"must be above caps_by_max_leverage[{i - 1}].max_leverage = {rules[i - 1].max_leverage} (ascending)")


def _check_orders(p: VenueProfile) -> Iterator[Problem]:
    rules = p.orders.max_market_value
    if not rules:
        return
    for i in range(1, len(rules)):
        if rules[i].min_leverage >= rules[i - 1].min_leverage:
            yield Problem(f"orders.max_market_value[{i}].min_leverage", rules[i].min_leverage,
                          f"must be below max_market_value[{i - 1}].min_leverage = {rules[i - 1].min_leverage} (descending)")
    if rules[-1].min_leverage != 1:
        yield Problem(f"orders.max_market_value[{len(rules) - 1}].min_leverage", rules[-1].min_leverage,
                      "must be 1 in the last entry, so that every market has a limit")


def _check_rules(p: VenueProfile) -> Iterator[Problem]:
    from abm.venues.rules import VENUE_RULES

    for i, name in enumerate(p.rules):
        if name in p.rules[:i]:
            yield Problem(f"rules[{i}]", name, f"must not repeat rules[{p.rules.index(name)}]")
            continue
        try:
            VENUE_RULES.resolve(name, f"rules[{i}]")
        except InvalidInput as e:
            yield Problem(f"rules[{i}]", e.value, e.allowed)


def check_gateway(g: GatewayConfig, at: str = "gateway") -> Iterator[Problem]:
    """A gateway's rules across keys (a venue profile's ``gateway``, a spot venue's ``spot.NAME.gateway``)."""
    if g.service_s is not None and g.actions_per_s is not None:
        yield Problem(f"{at}.actions_per_s", g.actions_per_s, f"must not be set with {at}.service_s (give one of the two)")
    if g.actions_per_s is not None and (US / g.actions_per_s).denominator != 1:
        yield Problem(f"{at}.actions_per_s", g.actions_per_s,
                      "must give a whole number of microseconds per action (1,000,000 / actions_per_s)")
    queued = g.service_s is not None or g.actions_per_s is not None
    if not queued:
        for key, v, off in (("queue_limit", g.queue_limit, None), ("cancel_priority", g.cancel_priority, False),
                            ("liquidations", g.liquidations, "bypass")):
            if v != off:
                yield Problem(f"{at}.{key}", v, f"only allowed with {at}.service_s or {at}.actions_per_s "
                                                "(without a service time nothing queues)")
        if not g.rate_limits:
            yield Problem(at, MISSING, f"must set {at}.service_s, {at}.actions_per_s or {at}.rate_limits")
    names = [r.name for r in g.rate_limits]
    for i, name in enumerate(names):
        if name in names[:i]:
            yield Problem(f"{at}.rate_limits[{i}].name", name, f"must not repeat rate_limits[{names.index(name)}].name")
        if not any(getattr(g.rate_limits[i].weights, k) for k in ActionWeights.model_fields):
            yield Problem(f"{at}.rate_limits[{i}].weights", MISSING, "must give some action a weight above 0")


def _check_gateway(p: VenueProfile) -> Iterator[Problem]:
    if p.gateway is not None:
        yield from check_gateway(p.gateway)


def _check_builds(p: VenueProfile) -> Iterator[Problem]:
    """Build every engine object once (quote units at 18 decimals: always exact); report what they refuse."""
    from abm.venues.venue import (
        Venue,  # the builders live with Venue, which imports this module
    )

    v = Venue(p)
    checks: list[tuple[str, Any]] = [("liquidation", lambda: v.liquidation_config(MAX_QUOTE_DECIMALS)),
                                     ("mark", v.mark_model), ("oracle", v.oracle_kwargs),
                                     ("margin", lambda: v.dynamic_margin(MAX_QUOTE_DECIMALS))]
    for name in p.tiers:
        checks.append((f"tiers.{name}", lambda n=name: v.risk_params(n, quote_decimals=MAX_QUOTE_DECIMALS)))
        checks.append(("funding", lambda n=name: v.funding_config(n)))
        if p.rules:
            checks.append(("rules", lambda n=name: v.order_rules(n, _RULES_CHECK_SPEC)))
    seen: set[str] = set()
    seen_inputs: set[tuple[str, str]] = set()
    for prefix, build in checks:
        try:
            build()
        except InvalidProfile as e:
            for pr in e.problems:
                if pr.line not in seen:
                    seen.add(pr.line)
                    yield pr
        except InvalidInput as e:
            if (e.field, e.allowed) in seen_inputs:  # margin.dynamic's own problem, met again building each tier class
                continue
            seen_inputs.add((e.field, e.allowed))
            pr = Problem(f"{prefix} ({e.field})", e.value, e.allowed)
            if pr.line not in seen:
                seen.add(pr.line)
                yield pr


def check_profile(p: VenueProfile) -> list[Problem]:
    """Rules that span keys; empty when the profile is consistent."""
    problems = [*_check_fees(p), *_check_tiers(p), *_check_liquidation(p), *_check_funding(p), *_check_orders(p),
                *_check_rules(p), *_check_gateway(p)]
    if not problems:
        problems.extend(_check_builds(p))
    return problems


def parse_profile(data: Any, source: str) -> VenueProfile:
    """Validate raw data (parsed TOML, a ``to_dict`` result, ...) into a VenueProfile, or raise InvalidProfile."""
    if not isinstance(data, Mapping):
        raise InvalidProfile(source, [Problem("profile", data, "must be a table (a mapping of keys to values)")])
    try:
        profile = VenueProfile.model_validate(dict(data))
    except ValidationError as e:
        raise InvalidProfile(source, [problem_of(err, VenueProfile) for err in e.errors()]) from None
    problems = check_profile(profile)
    if problems:
        raise InvalidProfile(source, problems)
    return profile


