"""Exit leashes: small protections a position carries (stops, take-profit, trailing stop, TWAP exit, hedge,
margin top-up, stale-oracle exit), each acting through the agent's own context and latency.

Why pieces and not a strategy: the questions users ask ("would a 5 % stop have saved me, at what fill?",
"how long to hedge under load?") compare protections on the same seeds, so each is one small object
that says at which mark levels it wants to look (``levels``), whether a mark fires it (``fires``) and
what it sends (``act``). The holder (``abm.agents.leashed.LeashedTrader``: the ``position`` kind, or a
user's own strategy derived from it) watches the union of the levels with one price trigger, so a leash costs
nothing until the mark reaches it. A leash that acts sends orders through the holder's context: they
arrive after its latency and fill against the book at arrival, which is the whole point.

Levels are in ticks, as the mark is; percentages are of the entry price (trailing: of the best mark
since entry; top-up: of the distance to the liquidation price). Leashes act in the order listed:
when a mark fires several, the first one acts.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from math import ceil, floor
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from abm.config import Problem
from abm.errors import InvalidInput

if TYPE_CHECKING:
    from abm.agents.leashed import LeashedTrader

US_PER_S = 1_000_000


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


Pct = Annotated[float, Field(gt=0, lt=100)]


class StopSpec(_Spec):
    kind: Literal["stop"]
    pct: Pct  # adverse mark move from the entry price
    order: Literal["market", "limit"] = "market"  # market: bounded by slippage_bps; limit: rests at the level
    slippage_bps: float = Field(1000.0, ge=0, lt=10_000)  # Hyperliquid's market stops: 10 %
    limit_offset_bps: float = Field(0.0, ge=0, lt=10_000)  # limit: this far beyond the level (a sell below it)
    # held by the venue (a position stop-loss, abm.exchange.triggers): fired at the mark update itself, with
    # the venue's own bound (Hyperliquid: 10 %) instead of slippage_bps; what it leaves, the agent sends again
    venue: bool = False
    # stops cluster at round numbers: the level moved to the nearest multiple of this (a whole number of ticks)
    round_usdc: Optional[float] = Field(None, gt=0)


class TakeProfitSpec(_Spec):
    kind: Literal["take_profit"]
    pct: Pct  # favourable mark move from the entry price
    slippage_bps: float = Field(1000.0, ge=0, lt=10_000)


class TrailingStopSpec(_Spec):
    kind: Literal["trailing_stop"]
    pct: Pct  # retreat from the best mark since entry
    slippage_bps: float = Field(1000.0, ge=0, lt=10_000)


class TwapExitSpec(_Spec):
    kind: Literal["twap_exit"]
    pct: Pct  # adverse move from entry that starts it
    slices: int = Field(5, ge=1)
    interval_s: float = Field(30.0, gt=0)  # Hyperliquid's TWAP: a slice every 30 s
    slippage_bps: float = Field(300.0, ge=0, lt=10_000)  # ... at most 3 % per slice


class HedgeSpec(_Spec):
    kind: Literal["hedge"]
    pct: Pct  # adverse move from entry that starts it
    symbol: Optional[str] = Field(None, min_length=1)  # another perp market of the venue ...
    spot: bool = False  # ... or the position's underlying on the holder's spot venue (a sale needs inventory)
    borrow: bool = False  # spot: borrow what the inventory lacks for a sale, at the venue's rate
    ratio: float = Field(1.0, gt=0, le=10)  # hedge notional / position notional at the trigger
    slippage_bps: float = Field(1000.0, ge=0, lt=10_000)

    @model_validator(mode="after")
    def _one_market(self) -> "HedgeSpec":
        if (self.symbol is None) == (not self.spot):
            raise ValueError("needs either symbol (another perp market) or spot = true (the holder's spot venue)")
        if self.borrow and not self.spot:
            raise ValueError("borrow applies to a spot hedge (spot = true)")
        return self


class TopUpSpec(_Spec):
    kind: Literal["top_up"]
    distance_pct: Pct  # when the mark is this close to the liquidation price (% of the mark) ...
    amount_usdc: float = Field(gt=0)  # ... move this much from the cross balance into the isolated margin
    max_usdc: float = Field(gt=0)  # in all


class StaleOracleSpec(_Spec):
    kind: Literal["stale_oracle"]
    max_age_s: float = Field(gt=0)  # close when the oracle is older than this
    check_s: float = Field(1.0, gt=0)  # how often it looks
    slippage_bps: float = Field(1000.0, ge=0, lt=10_000)


LeashSpec = Annotated[Union[StopSpec, TakeProfitSpec, TrailingStopSpec, TwapExitSpec, HedgeSpec, TopUpSpec,
                            StaleOracleSpec], Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(LeashSpec)
KINDS = ("stop", "take_profit", "trailing_stop", "twap_exit", "hedge", "top_up", "stale_oracle")


def parse_leash(i: int, raw: object) -> tuple[Optional[Any], list[Problem]]:
    """One ``leashes[i]`` table checked: (spec, []) or (None, problems named ``leashes[i].field``)."""
    if not isinstance(raw, dict) or "kind" not in raw:
        return None, [Problem(f"leashes[{i}]", raw, f"must be a table with kind = one of {list(KINDS)}")]
    try:
        return _ADAPTER.validate_python(raw), []
    except ValidationError as e:
        out = []
        for err in e.errors():
            loc = [str(x) for x in err["loc"][1:]] if len(err["loc"]) > 1 else []  # drop the union's tag
            path = ".".join([f"leashes[{i}]", *loc])
            out.append(Problem(path, err.get("input"), err["msg"].replace("Input should be", "must be")))
        return None, out


def _frac(x: float) -> Fraction:
    return Fraction(repr(float(x)))


class Leash:
    """One protection. ``levels`` may return (low, high) mark levels in ticks to be woken at; ``fires`` says
    whether this mark sets it off; ``act`` sends what it sends. ``poll_s`` > 0 asks for periodic looks."""

    kind: ClassVar[str] = ""
    poll_s: float = 0.0

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.done = False  # acted (a one-shot leash) or no longer applies

    def levels(self, h: LeashedTrader) -> tuple[Optional[int], Optional[int]]:
        return None, None

    def fires(self, h: LeashedTrader, t: int, mark: int) -> bool:
        return False

    def act(self, h: LeashedTrader, t: int, mark: int) -> None:
        h.close_all(self.kind, t, mark, self.spec.slippage_bps)
        self.done = True

    def poll(self, h: LeashedTrader, t: int) -> None:
        """A periodic look (only when ``poll_s``)."""

    def attach(self, h: LeashedTrader) -> None:
        """When the position is first armed: a leash the venue holds is placed now."""


def _adverse(h: LeashedTrader, pct: float) -> int:
    """The mark level ``pct`` against the position from its entry, rounded so it fires no earlier."""
    level = h.entry * (1 - h.sign * _frac(pct) / 100)
    return floor(level) if h.sign > 0 else ceil(level)


def _favourable(h: LeashedTrader, pct: float) -> int:
    level = h.entry * (1 + h.sign * _frac(pct) / 100)
    return ceil(level) if h.sign > 0 else floor(level)


def round_level(level: int, step: int, long: bool) -> int:
    """``level`` (ticks) moved to the nearest multiple of ``step`` ticks, half way to the one further from the entry
    (below for a long's stop, above for a short's), never below one step: where real stops cluster."""
    lo = level // step * step
    down, up = level - lo, lo + step - level
    near = lo if down < up or (down == up and long) else lo + step
    return max(step, near)


def round_ticks(ctx: Any, symbol: str, usdc: float, field: str) -> int:
    """A round-number step in the quote currency as whole ticks of ``symbol``; anything else is refused."""
    tick = ctx.spec(symbol).tick_size
    ticks = Decimal(repr(usdc)) / tick
    if ticks != ticks.to_integral_value():
        raise InvalidInput(field, usdc, f"must be a whole number of ticks of {tick}")
    return int(ticks)


def _hit(h: LeashedTrader, mark: int, level: int) -> bool:
    """The mark is at or past ``level`` in the direction that loses money."""
    return mark <= level if h.sign > 0 else mark >= level


class AgainstEntry(Leash):
    """A leash set off when the mark moves ``spec.pct`` against the position from its entry."""

    def levels(self, h: LeashedTrader) -> tuple[Optional[int], Optional[int]]:
        lvl = _adverse(h, self.spec.pct)
        return (lvl, None) if h.sign > 0 else (None, lvl)

    def fires(self, h: LeashedTrader, t: int, mark: int) -> bool:
        return _hit(h, mark, _adverse(h, self.spec.pct))


class Stop(AgainstEntry):
    kind = "stop"
    round_ticks: Optional[int] = None  # round_usdc in ticks (LeashedTrader.init_leashes sets it)

    def _level(self, h: LeashedTrader) -> int:
        lvl = _adverse(h, self.spec.pct)
        return lvl if self.round_ticks is None else round_level(lvl, self.round_ticks, h.sign > 0)

    def levels(self, h: LeashedTrader) -> tuple[Optional[int], Optional[int]]:
        lvl = self._level(h)
        return (lvl, None) if h.sign > 0 else (None, lvl)

    def fires(self, h: LeashedTrader, t: int, mark: int) -> bool:
        return _hit(h, mark, self._level(h))

    def _limit_price(self, h: LeashedTrader) -> int:
        price = Fraction(self._level(h)) * (1 - h.sign * _frac(self.spec.limit_offset_bps) / 10_000)
        return floor(price) if h.sign > 0 else ceil(price)

    def attach(self, h: LeashedTrader) -> None:
        if self.spec.venue:
            limit = self._limit_price(h) if self.spec.order == "limit" else None
            h.venue_stop(self.kind, self._level(h), limit, self.spec.slippage_bps)
            self.done = True  # the venue holds it now; the agent watches nothing

    def act(self, h: LeashedTrader, t: int, mark: int) -> None:
        if self.spec.order == "market":
            super().act(h, t, mark)
            return
        h.close_with_limit(self.kind, t, mark, self._limit_price(h))
        self.done = True


class TakeProfit(Leash):
    kind = "take_profit"

    def levels(self, h: LeashedTrader) -> tuple[Optional[int], Optional[int]]:
        lvl = _favourable(h, self.spec.pct)
        return (None, lvl) if h.sign > 0 else (lvl, None)

    def fires(self, h: LeashedTrader, t: int, mark: int) -> bool:
        lvl = _favourable(h, self.spec.pct)
        return mark >= lvl if h.sign > 0 else mark <= lvl


class TrailingStop(Leash):
    kind = "trailing_stop"

    def _level(self, h: LeashedTrader) -> int:
        level = h.best * (1 - h.sign * _frac(self.spec.pct) / 100)
        return floor(level) if h.sign > 0 else ceil(level)

    def levels(self, h: LeashedTrader) -> tuple[Optional[int], Optional[int]]:
        # the far side wakes it at a new best mark, so the level follows
        return (self._level(h), h.best + 1) if h.sign > 0 else (h.best - 1, self._level(h))

    def fires(self, h: LeashedTrader, t: int, mark: int) -> bool:
        return _hit(h, mark, self._level(h))


class TwapExit(AgainstEntry):
    kind = "twap_exit"

    def act(self, h: LeashedTrader, t: int, mark: int) -> None:
        h.twap_close(self.kind, t, mark, self.spec.slices, int(self.spec.interval_s * US_PER_S), self.spec.slippage_bps)
        self.done = True


class Hedge(AgainstEntry):
    kind = "hedge"

    def act(self, h: LeashedTrader, t: int, mark: int) -> None:
        if self.spec.spot:
            h.spot_hedge(self.kind, t, mark, _frac(self.spec.ratio), self.spec.slippage_bps, self.spec.borrow)
        else:
            h.hedge(self.kind, t, mark, self.spec.symbol, _frac(self.spec.ratio), self.spec.slippage_bps)
        self.done = True


class TopUp(Leash):
    kind = "top_up"

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self.added = 0  # quote units moved so far
        self.waiting = False  # a transfer in flight: the liquidation price moves when it lands

    def _level(self, h: LeashedTrader) -> Optional[int]:
        liq = h.liquidation_price()
        if liq is None or liq <= 0:
            return None
        level = liq * (1 + h.sign * _frac(self.spec.distance_pct) / 100)
        return floor(level) if h.sign > 0 else ceil(level)

    def levels(self, h: LeashedTrader) -> tuple[Optional[int], Optional[int]]:
        lvl = None if self.waiting else self._level(h)
        return (lvl, None) if h.sign > 0 else (None, lvl)

    def fires(self, h: LeashedTrader, t: int, mark: int) -> bool:
        lvl = self._level(h)
        return not self.waiting and lvl is not None and _hit(h, mark, lvl)

    def act(self, h: LeashedTrader, t: int, mark: int) -> None:
        cap = round(self.spec.max_usdc * h.usdc)
        amount = min(round(self.spec.amount_usdc * h.usdc), cap - self.added)
        if amount <= 0:
            self.done = True
            return
        self.added += amount
        self.waiting = True
        self.done = self.added >= cap

        def landed(ok: bool) -> None:
            self.waiting = False
            if not ok:  # refused (not enough free balance): nothing moved, and nothing will
                self.added -= amount
                self.done = True

        h.top_up(amount, landed)


class StaleOracle(Leash):
    kind = "stale_oracle"

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self.poll_s = spec.check_s

    def poll(self, h: LeashedTrader, t: int) -> None:
        age = h.oracle_age_us()
        if age is not None and age > self.spec.max_age_s * US_PER_S:
            mark = h.mark() or 0
            super().act(h, t, mark)


LEASHES: dict[str, type[Leash]] = {c.kind: c for c in (Stop, TakeProfit, TrailingStop, TwapExit, Hedge, TopUp,
                                                        StaleOracle)}


def build_leashes(specs: Any) -> list[Leash]:
    return [LEASHES[s.kind](s) for s in specs]
