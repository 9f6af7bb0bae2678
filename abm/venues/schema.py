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

import copy
import difflib
import re
import types
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Literal, Mapping, Optional, Sequence, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictStr,
    ValidationError,
    field_serializer,
    field_validator,
)

from abm.errors import InvalidInput
from abm.margin.adl import ADL_RANKINGS
from abm.market.spec import MAX_QUOTE_DECIMALS  # money in a profile has at most as many decimals as a market

__all__ = [
    "InvalidProfile",
    "Problem",
    "VenueProfile",
    "TierClass",
    "Band",
    "parse_profile",
    "apply_overrides",
    "parse_path",
    "dump_number",
    "dump_toml",
    "MAX_QUOTE_DECIMALS",
]

US = 1_000_000  # microseconds per second

# ------------------------------------------------------------------------------------- problems and the error


class _Missing:
    """No value to show (a missing key, an unknown key)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def show(value: Any) -> str:
    """A value as a user wrote it: ``1.5`` not ``Decimal('1.5')``, ``true`` not ``True``, strings quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Fraction):
        return str(dump_number(value))  # 0.2 as the user wrote it, not 1/5
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a profile: where (dotted path), what was there, and what is allowed."""

    path: str
    value: Any
    allowed: str

    @property
    def line(self) -> str:
        if self.value is MISSING:
            return f"{self.path}: {self.allowed}"
        return f"{self.path}: {self.allowed}, got {show(self.value)}"


class InvalidConfig(InvalidInput):
    """A configuration (file, mapping or overrides) broke its schema; the message has one line per problem.

    ``problems`` keeps them as ``Problem`` objects; ``field``/``value``/``allowed`` are the first one's,
    so code that handles any ``InvalidInput`` still gets a meaningful field.
    """

    what = "configuration"

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError(f"{type(self).__name__} needs at least one problem")  # internal misuse only
        self.source = source
        self.problems = tuple(problems)
        first = self.problems[0]
        super().__init__(first.path, first.value, first.allowed)
        n = len(self.problems)
        head = f"invalid {self.what} {source}: {n} problem{'s' if n > 1 else ''}"
        self.args = ("\n  ".join([head, *(p.line for p in self.problems)]),)

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(p.line for p in self.problems)


class InvalidProfile(InvalidConfig):
    what = "venue profile"


# ------------------------------------------------------------------------------------- exact numbers

_NUMBER = "must be a number (such as 5, 0.5, \"0.5\" or \"2/3\")"
_DEC_RE = re.compile(r"[+-]?(?:\d(?:_?\d)*)?(?:\.\d(?:_?\d)*)?(?:[eE][+-]?\d+)?")
_FRAC_RE = re.compile(r"[+-]?\d+\s*/\s*\d+")


def exact(value: Any) -> Fraction:
    """``value`` as an exact Fraction, or ValueError(what is allowed). Bools, NaN and infinities are refused."""
    if isinstance(value, bool):
        raise ValueError(_NUMBER)
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, Fraction):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite number")
        return Fraction(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return Fraction(repr(value))  # as written: 0.1 is 1/10
    if isinstance(value, str):
        s = value.strip()
        if s and any(c.isdigit() for c in s) and _DEC_RE.fullmatch(s):
            return Fraction(Decimal(s.replace("_", "")))
        if _FRAC_RE.fullmatch(s):
            num, den = (int(x) for x in s.split("/"))
            if den == 0:
                raise ValueError("must not divide by zero")
            return Fraction(num, den)
        raise ValueError(_NUMBER)
    if hasattr(value, "__index__"):  # numpy integers
        return Fraction(int(value.__index__()))
    raise ValueError(_NUMBER)


def dump_number(f: Fraction) -> Union[int, str]:
    """An int when whole; else the exact decimal string when one exists ("1.5"), else "n/d" ("2/3")."""
    if f.denominator == 1:
        return int(f)
    d, twos, fives = f.denominator, 0, 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return f"{f.numerator}/{f.denominator}"
    k = max(twos, fives)
    scaled = f.numerator * 10**k // f.denominator  # exact: 10**k is a multiple of the denominator
    return format(Decimal(scaled).scaleb(-k), "f")


def _bound_text(gt: Any, ge: Any, lt: Any, le: Any) -> str:
    parts = []
    if gt is not None:
        parts.append(f"> {gt}")
    if ge is not None:
        parts.append(f">= {ge}")
    if lt is not None:
        parts.append(f"< {lt}")
    if le is not None:
        parts.append(f"<= {le}")
    return "must be " + " and ".join(parts)


def _number(gt: Any = None, ge: Any = None, lt: Any = None, le: Any = None,
            step: Optional[Fraction] = None, step_text: str = "") -> Any:
    """An exact-number field type with bounds (and optionally a grid); errors say what is allowed."""
    lo_gt, lo_ge, hi_lt, hi_le = (None if b is None else Fraction(b) for b in (gt, ge, lt, le))
    bounds = _bound_text(gt, ge, lt, le) if any(b is not None for b in (gt, ge, lt, le)) else ""

    def check(value: Any) -> Fraction:
        f = exact(value)
        if (lo_gt is not None and not f > lo_gt) or (lo_ge is not None and not f >= lo_ge) or \
                (hi_lt is not None and not f < hi_lt) or (hi_le is not None and not f <= hi_le):
            raise ValueError(bounds)
        if step is not None and (f / step).denominator != 1:
            raise ValueError(step_text)
        return f

    return Annotated[Fraction, PlainValidator(check), PlainSerializer(dump_number)]


def _integer(ge: int, le: int) -> Any:
    """A TOML integer in [ge, le]: 40.0 or "40" are refused, so a leverage is never silently truncated."""
    text = f"must be an integer in [{ge}, {le}]"

    def check(value: Any) -> int:
        if isinstance(value, bool) or not (isinstance(value, int) or hasattr(value, "__index__")) \
                or isinstance(value, (float, Decimal, Fraction, str)):
            raise ValueError(text)
        v = int(value.__index__())
        if not ge <= v <= le:
            raise ValueError(text)
        return v

    return Annotated[int, PlainValidator(check)]


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
else:
    Money = _number(ge=0, step=_MONEY_STEP, step_text=_MONEY_TEXT)
    PositiveMoney = _number(gt=0, step=_MONEY_STEP, step_text=_MONEY_TEXT)
    Seconds = _number(ge=0, step=_US_STEP, step_text=_US_TEXT)
    PositiveSeconds = _number(gt=0, step=_US_STEP, step_text=_US_TEXT)
    FeeBps = _number(gt=-10_000, lt=10_000, step=_BP_STEP, step_text=_BP_TEXT)
    TakerFeeBps = _number(ge=0, lt=10_000, step=_BP_STEP, step_text=_BP_TEXT)
    Percent = _number(gt=0, lt=100)
    PercentOrZero = _number(ge=0, lt=100)
    PositivePercent = _number(gt=0)
    SignedPercent = _number(gt=-100, lt=100)
    LiquidationFeePct = _number(ge=0, lt=100, step=Fraction(1, 10_000), step_text="must be a multiple of 0.0001% (1 ppm)")
    BandPct = _number(gt=0, lt=100, step=Fraction(1, 10_000), step_text="must be a multiple of 0.0001% (1 ppm)")
    Share = _number(gt=0, le=1)
    ShareOrZero = _number(ge=0, le=1)
    NoiseBps = _number(ge=0, lt=10_000)
    Leverage = _integer(1, 1000)
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


class Margin(_Model):
    """``half_initial``: each band's maintenance rate is half its initial rate (Hyperliquid), so bands give
    no ``mmr_pct``; ``table``: every band states its ``mmr_pct`` (Binance brackets)."""

    maintenance: Literal["half_initial", "table"]


class Band(_Model):
    lower: Money
    max_leverage: Leverage
    mmr_pct: Optional[Percent] = None


class TierClass(_Model):
    bands: Annotated[tuple[Band, ...], Field(min_length=1)]
    max_notional: Optional[PositiveMoney] = None
    impact_notional: Optional[PositiveMoney] = None


class Liquidation(_Model):
    slice_threshold: Optional[PositiveMoney] = None
    slice_fraction: Optional[Share] = None
    cooldown_s: Optional[Seconds] = None
    backstop: StrictBool
    backstop_ratio: Optional[ShareOrZero] = None
    fee_pct: LiquidationFeePct
    adl_ranking: StrictStr  # a name in abm.margin.ADL_RANKINGS or "module:Class" (checked in check_profile)
    adl_price: Literal["mark", "bankruptcy"]


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


class HyperliquidMarkConfig(_Model):
    formula: Literal["hyperliquid"]
    ema_window_s: PositiveSeconds


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

    @field_validator("tiers", mode="after")
    @classmethod
    def _freeze_tiers(cls, tiers: dict[str, TierClass]) -> Mapping[str, TierClass]:
        """Read-only, so a loaded Venue cannot drift from what ``to_dict`` recorded."""
        return MappingProxyType(tiers)

    @field_serializer("tiers", mode="wrap")
    def _dump_tiers(self, tiers: Mapping[str, TierClass], handler: Any) -> Any:
        return handler(dict(tiers))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (ints, strings, bools, lists, dicts; no None) that ``parse_profile`` reads back unchanged."""
        return _lists(self.model_dump(mode="python", exclude_none=True))


def _lists(value: Any) -> Any:
    """Tuples (the models' immutable lists) as lists, so the data is plain JSON/TOML-shaped."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


# ------------------------------------------------------------------------------------- walking the schema


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional; a union of several models comes back as a tuple of them."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
            continue
        if origin is Union or origin is types.UnionType:
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
            return tuple(args)
        return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tag(model: type[BaseModel]) -> Optional[str]:
    f = model.model_fields.get("formula")
    return get_args(f.annotation)[0] if f is not None else None


def _child(tp: Any, seg: Any) -> Any:
    """The type under ``seg`` of a (unwrapped) type, or None if ``seg`` is not part of it."""
    if _is_model(tp):
        f = tp.model_fields.get(seg) if isinstance(seg, str) else None
        return f.annotation if f is not None else None
    origin = get_origin(tp)
    if origin is dict and isinstance(seg, str):
        return get_args(tp)[1]
    if origin in (list, tuple) and isinstance(seg, int):
        return get_args(tp)[0]
    return None


def _keys(tp: Any) -> list[str]:
    u = _unwrap(tp)
    if isinstance(u, tuple):
        return sorted({k for m in u for k in m.model_fields})
    return list(u.model_fields) if _is_model(u) else []


def format_path(segs: Sequence[Any]) -> str:
    out = ""
    for s in segs:
        if isinstance(s, int):
            out += f"[{s}]"
        else:
            out += ("." if out else "") + str(s)
    return out


def _walk_loc(loc: Sequence[Any], root: Any = None) -> tuple[list[Any], Any]:
    """Follow a pydantic error location: the segments to show (union tags dropped) and the type reached."""
    tp: Any = root if root is not None else VenueProfile
    shown: list[Any] = []
    for seg in loc:
        if seg == "[key]":
            continue
        u = _unwrap(tp) if tp is not None else None
        if isinstance(u, tuple):
            variant = next((m for m in u if _tag(m) == seg), None)
            if variant is not None:
                tp = variant
                continue
        shown.append(seg)
        tp = _child(u, seg) if u is not None else None
    return shown, tp


def _suggest(bad: str, options: Sequence[str]) -> str:
    best = difflib.get_close_matches(bad, list(options), n=1, cutoff=0.6)
    if best:
        return f"did you mean '{best[0]}'?"
    return "allowed: " + ", ".join(f"'{o}'" for o in options)


def problem_of(err: Mapping[str, Any], root: Any = None) -> Problem:
    """One pydantic error as one Problem with our wording; ``root`` is the model validated (default: a venue profile)."""
    loc = tuple(err.get("loc", ()))
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input", MISSING)
    if kind == "extra_forbidden":
        shown, _ = _walk_loc(loc, root)
        _, parent = _walk_loc(loc[:-1], root)
        return Problem(format_path(shown), MISSING, f"unknown key; {_suggest(str(loc[-1]), _keys(parent))}")
    shown, tp = _walk_loc(loc, root)
    path = format_path(shown)
    if kind == "missing":
        return Problem(path, MISSING, "required key is missing")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = [_tag(m) for m in _unwrap(tp)] if isinstance(_unwrap(tp), tuple) else []
        options = " or ".join(f"'{t}'" for t in tags)
        if kind == "union_tag_not_found":
            if not isinstance(value, Mapping):
                return Problem(path, value, "must be a table")
            return Problem(f"{path}.formula", MISSING, f"required key is missing ({options})")
        return Problem(f"{path}.formula", ctx.get("tag", MISSING), f"must be {options}")
    if kind == "value_error":
        return Problem(path, value, str(ctx.get("error", err.get("msg"))))
    if kind == "literal_error":
        return Problem(path, value, f"must be {ctx.get('expected')}")
    if kind == "bool_type":
        return Problem(path, value, "must be true or false")
    if kind == "string_type":
        return Problem(path, value, "must be a string")
    if kind == "string_pattern_mismatch":
        return Problem(path, value, "must use only letters, digits, '_' and '-'")
    if kind in ("float_type", "float_parsing"):
        return Problem(path, value, "must be a number")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return Problem(path, value, "must be an integer")
    if kind == "finite_number":
        return Problem(path, value, "must be a finite number")
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        return Problem(path, value, "must be a table")
    if kind in ("list_type", "tuple_type", "iterable_type"):
        return Problem(path, value, "must be a list")
    if kind in ("too_short", "string_too_short"):
        n = ctx.get("min_length", 1)
        what = "character" if kind == "string_too_short" else "entry"
        return Problem(path, value, f"must hold at least {n} {what}{'s' if n != 1 else ''}")
    msg = str(err.get("msg", kind))
    return Problem(path, value, msg[:1].lower() + msg[1:])


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


def _check_builds(p: VenueProfile) -> Iterator[Problem]:
    """Build every engine object once (quote units at 18 decimals: always exact); report what they refuse."""
    from abm.venues.venue import Venue  # the builders live with Venue, which imports this module

    v = Venue(p)
    checks: list[tuple[str, Any]] = [("liquidation", lambda: v.liquidation_config(MAX_QUOTE_DECIMALS)),
                                     ("mark", v.mark_model), ("oracle", v.oracle_kwargs)]
    for name in p.tiers:
        checks.append((f"tiers.{name}", lambda n=name: v.risk_params(n, quote_decimals=MAX_QUOTE_DECIMALS)))
        checks.append(("funding", lambda n=name: v.funding_config(n)))
    seen: set[str] = set()
    for prefix, build in checks:
        try:
            build()
        except InvalidProfile as e:
            for pr in e.problems:
                if pr.line not in seen:
                    seen.add(pr.line)
                    yield pr
        except InvalidInput as e:
            pr = Problem(f"{prefix} ({e.field})", e.value, e.allowed)
            if pr.line not in seen:
                seen.add(pr.line)
                yield pr


def check_profile(p: VenueProfile) -> list[Problem]:
    """Rules that span keys; empty when the profile is consistent."""
    problems = [*_check_fees(p), *_check_tiers(p), *_check_liquidation(p), *_check_funding(p), *_check_orders(p)]
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
        raise InvalidProfile(source, [problem_of(err) for err in e.errors()]) from None
    problems = check_profile(profile)
    if problems:
        raise InvalidProfile(source, problems)
    return profile


# ------------------------------------------------------------------------------------- overrides


_SEG_RE = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")


def parse_path(path: str) -> Optional[list[Any]]:
    """``"tiers.btc.bands[1].max_leverage"`` -> ``["tiers", "btc", "bands", 1, "max_leverage"]``; None if malformed."""
    segs: list[Any] = []
    for piece in path.split("."):
        m = _SEG_RE.fullmatch(piece)
        if m is None:
            return None
        segs.append(m.group(1))
        segs.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return segs


def _variant(tp: Any, node: Any) -> Any:
    """For a union of models, the variant the data selects (by ``formula``); the first one otherwise."""
    u = _unwrap(tp)
    if not isinstance(u, tuple):
        return u
    tag = node.get("formula") if isinstance(node, Mapping) else None
    return next((m for m in u if _tag(m) == tag), None) or u


def _all_paths(tp: Any, node: Any, prefix: list[Any]) -> Iterator[str]:
    """Every path the schema allows here, with tier classes and list indices taken from the data."""
    u = _variant(tp, node)
    models = u if isinstance(u, tuple) else (u,) if _is_model(u) else ()
    for m in models:
        for key, f in m.model_fields.items():
            p = [*prefix, key]
            yield format_path(p)
            yield from _all_paths(f.annotation, node.get(key) if isinstance(node, Mapping) else None, p)
    if models:
        return
    origin = get_origin(u)
    if origin is dict and isinstance(node, Mapping):
        for key, sub in node.items():
            yield format_path([*prefix, key])
            yield from _all_paths(get_args(u)[1], sub, [*prefix, key])
    elif origin in (list, tuple) and isinstance(node, list):
        for i, sub in enumerate(node):
            yield format_path([*prefix, i])
            yield from _all_paths(get_args(u)[0], sub, [*prefix, i])


def _plain(value: Any) -> Any:
    """A private copy of an override value: mappings as dicts, sequences as lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, object], source: str, root: Any = None,
                    error: type[InvalidConfig] = InvalidProfile) -> dict[str, Any]:
    """A copy of ``raw`` with each dotted path set to its value (``None`` removes an optional key).

    A table value merges into the table already there (``run = {seed = 3}`` changes the seed and keeps
    the duration), unless it names another variant (``formula`` or ``kind``): then it replaces it. A list
    or a single value replaces what was there.

    Paths are checked against the schema before anything is set: an unknown one is reported with the
    closest valid path. Values are not checked here; the caller validates the result like a file.
    """
    if not isinstance(overrides, Mapping):
        raise error(source, [Problem("overrides", overrides, "must be a mapping of dotted paths to values")])
    data: dict[str, Any] = copy.deepcopy(dict(raw))
    problems: list[Problem] = []
    for path, value in overrides.items():
        segs = parse_path(path) if isinstance(path, str) else None
        if not segs:
            problems.append(Problem("overrides", path, "keys must be dotted paths such as 'fees.taker_bps' "
                                                       "or 'tiers.btc.bands[1].max_leverage'"))
            continue
        problem = _set_path(data, path, segs, value, root if root is not None else VenueProfile)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise error(source, problems)
    return data


def _set_path(data: dict[str, Any], path: str, segs: list[Any], value: Any, root: Any) -> Optional[Problem]:
    tp: Any = root
    node: Any = data
    for i, seg in enumerate(segs):
        here = format_path(segs[: i + 1])
        last = i == len(segs) - 1
        if not isinstance(node, (dict, list)):
            return Problem(path, MISSING, f"unknown key: '{format_path(segs[:i])}' holds a single value, not a table")
        u = _variant(tp, node)
        if isinstance(u, tuple):  # no formula in the data: any variant's key will do; validation decides
            u = next((m for m in u if isinstance(seg, str) and seg in m.model_fields), u[0])
        if isinstance(node, list):
            if not isinstance(seg, int):
                return Problem(path, MISSING, f"'{format_path(segs[:i])}' is a list: address an entry as [0], [1], ...")
            if not 0 <= seg < len(node):
                return Problem(path, MISSING, f"index out of range: '{format_path(segs[:i])}' has {len(node)} "
                                              "entries (override the whole list to resize it)")
        elif isinstance(seg, int):
            return Problem(path, MISSING, f"'{format_path(segs[:i])}' is a table, not a list")
        child = _child(u, seg)
        if child is None:
            options = sorted(set(_all_paths(root, data, [])))
            return Problem(path, MISSING, f"unknown key; {_suggest(path, options)}")
        if isinstance(node, dict) and get_origin(u) is dict and seg not in node and not last:
            return Problem(path, MISSING, f"'{here}' does not exist; {_suggest(seg, sorted(node))} "
                                          f"(to add it, override '{here}' with a whole table)")
        if last:
            if value is None:
                if isinstance(node, list):
                    return Problem(path, None, "list entries cannot be removed one by one; override the whole list")
                node.pop(seg, None)
            elif isinstance(value, Mapping) and isinstance(node, dict) and isinstance(node.get(seg), dict):
                node[seg] = _merged(node[seg], _plain(value))  # a table merges; it never drops its siblings
            else:
                node[seg] = _plain(value)
            return None
        if isinstance(node, dict) and node.get(seg) is None:
            if not _is_model(_unwrap(child)):
                return Problem(path, MISSING, f"'{here}' is not set; override '{here}' as a whole")
            node[seg] = {}  # an absent optional table; validation reports what it still needs
        node = node[seg]
        tp = child
    return None  # unreachable: the loop returns at the last segment


TAGS = ("formula", "kind")  # a table that names another variant replaces the table instead of merging


def _merged(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    if any(t in update and update[t] != base.get(t) for t in TAGS):
        return dict(update)
    out = dict(base)
    for k, v in update.items():
        out[k] = _merged(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


# ------------------------------------------------------------------------------------- writing TOML


def dump_toml(data: Mapping[str, Any]) -> str:
    """TOML text for plain data as ``VenueProfile.to_dict`` makes it (None values are left out).

    Written by tomli_w (the writer that pairs with the standard library's reader) rather than by hand;
    exact numbers are strings in the data already (``dump_number``), so nothing is lost to floats.
    """
    import tomli_w

    return tomli_w.dumps(_without_none(data))


def _without_none(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _without_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_without_none(x) for x in v]
    return v
