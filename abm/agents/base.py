"""What every trader agent shares: a venue context, its own random stream, latencies and wake-ups.

Why it looks like this:
- Agents never hold the exchange: every action and every read goes through the agent's context
  (``self.ctx``, ``abm.agents.context.AgentContext``), which delivers actions after the agent's
  latency as events in the model's scheduler, over a FIFO link (a cancel cannot overtake its order).
  An agent observes the market when it wakes and its orders arrive ``data_us + entry_us`` (plus
  jitter) later, so what it acted on is that old when it lands: the market-data and order-entry
  latencies of the issue, without keeping book history.
- Each agent draws its decisions from its own ``numpy`` generator spawned from the master seed by
  (group name, index in the group), so resizing one group never changes another group's draws; its
  latency jitter comes from a second, network stream, so turning latency on or off never changes
  what it decides.
- A parent order that stops short (a block the book could not absorb, slices whose remainder was
  dropped, an execution that gave up) is recorded with ``record_shortfall``: nothing is dropped
  without a record (``MarketModel.unfilled_frame``).
- Agents only cost time when something happens to them: a scheduled wake (Poisson or periodic), a
  price trigger they asked for (mark crossing a level), or a funding payment they subscribed to.
- A rejected action (e.g. not enough margin, an order that was already filled) is counted and handed
  to ``on_reject``; it never stops the run.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Annotated, Any, Callable, ClassVar, Literal, NamedTuple, Optional

import mesa
import numpy as np

from abm.agents.latency import LATENCY_MODELS, LatencyModel
from abm.agents.limits import market_children
from abm.agents.params import BaseUnits, Millis, PositiveSeconds, Usdc, check_params, known, parse_params
from abm.errors import AbmError, InvalidInput
from abm.exchange import PositionInfo
from abm.market.view import BookView
from abm.units import USDC

if TYPE_CHECKING:
    from abm.model.model import MarketModel


WakeMode = Literal["poisson", "periodic", "none"]
LatencyName = Annotated[str, known(LATENCY_MODELS, "latency_model")]


class Shortfall(NamedTuple):
    """A parent order that ended with less filled than asked: what, how much (lots), when and why."""

    time_us: int
    symbol: str
    what: str  # e.g. "market sell", "twap sell", "market buy (entry)"
    requested: int  # lots
    filled: int  # lots
    reason: str  # why it stopped
    orders: int = 1  # orders the record covers (a flow's counters cover many)


@dataclass(frozen=True, slots=True)
class Wake:
    mode: str = "poisson"  # "poisson", "periodic" or "none" (only triggers wake it)
    every_s: float = 10.0  # mean gap (poisson) or period (periodic)

    def __post_init__(self) -> None:
        if self.mode not in ("poisson", "periodic", "none"):
            raise InvalidInput("wake.mode", self.mode, "must be 'poisson', 'periodic' or 'none'")
        if isinstance(self.every_s, bool) or not isinstance(self.every_s, (int, float)) or not self.every_s > 0:
            raise InvalidInput("wake.every_s", self.every_s, "must be a number > 0 (seconds)")

    def next_gap_us(self, rng: np.random.Generator) -> Optional[int]:
        if self.mode == "none":
            return None
        mean = self.every_s * 1_000_000
        if self.mode == "periodic":
            return max(1, int(mean))
        return max(1, int(rng.exponential(mean)))


@dataclass(frozen=True, slots=True)
class TraderParams:
    """What every agent kind accepts; kinds extend it with their own fields.

    Each field's type says what it allows (``abm.agents.params``): constructing one checks them all and
    reports every problem at once; a kind's ``cross_checks`` adds the rules that span fields.
    """

    deposit_usdc: Usdc = 10_000.0  # collateral deposited at the start
    symbol: Optional[str] = None  # None: the model's first market
    data_latency_ms: Millis = 20.0  # how old the market data it acts on is
    entry_latency_ms: Millis = 30.0  # from sending an action to its arrival at the venue
    jitter_ms: Millis = 10.0  # uniform extra delay on each leg (from the agent's network stream)
    latency_model: LatencyName = "uniform"  # how the three combine (abm.agents.latency.LATENCY_MODELS, or module:Class)
    wake: WakeMode = "poisson"  # "poisson", "periodic" or "none" (only triggers wake it)
    wake_every_s: PositiveSeconds = 10.0  # mean gap (poisson) or period (periodic)
    journal: bool = False  # record every order (decision time and mid, arrival, fills) for agent_report
    venue: Optional[str] = None  # a [spot.NAME] venue to trade on (its pairs, cash and inventory); None: the perp venue
    spot_inventory: BaseUnits = 0.0  # on a spot venue: base units of each pair at the start

    def __post_init__(self) -> None:
        check_params(self)


class Trader(mesa.Agent):
    """Base class of all traders, including users' own strategies (override ``on_wake``).

    An agent reaches its venue only through ``self.ctx`` (an ``AgentContext``, or a ``FakeContext`` in unit
    tests); the helpers below are thin conveniences over it that default the symbol to the agent's own.
    """

    kind: ClassVar[str] = "trader"
    role: ClassVar[Optional[str]] = None  # what the metrics count it as (abm.model.role_of); None: its kind
    Params: ClassVar[type] = TraderParams
    flow: ClassVar[bool] = False  # background flow: the run summary sums its shortfalls per group
    initial_position: ClassVar[bool] = False  # it manages a position booked before the run ([[initial_positions]])

    @classmethod
    def build(cls, model: MarketModel, rng: np.random.Generator, params: dict[str, Any]) -> "Trader":
        return cls(model, rng, parse_params(cls.Params, params, f"agents.{cls.kind}"))

    def __init__(self, model: Any, rng: np.random.Generator, params: TraderParams, ctx: Any = None) -> None:
        """``ctx`` None: a context on ``model``'s exchange (an account opened with ``deposit_usdc``); a test passes
        its own (``abm.agents.testing.FakeContext``) and any Mesa model."""
        super().__init__(model)
        self.p = params
        self._rng = rng
        self.actions = 0  # orders, cancels and modifies that reached the exchange
        self.rejects = 0
        self.last_reject: Optional[AbmError] = None
        # one row per order when params.journal: (decided_us, arrived_us, symbol, side, qty, decision mid in ticks,
        # oid, filled lots, filled tick·lots, resting lots, rejected); read by abm.analysis.agent_report
        self.journal: Optional[list[tuple]] = [] if params.journal else None
        self._reports = type(self).on_result is not Trader.on_result  # skip the call when nobody listens
        model_cls = LATENCY_MODELS.resolve(params.latency_model, f"agents.{self.kind}.latency_model")
        self.latency: LatencyModel = model_cls(int(params.data_latency_ms * 1000), int(params.entry_latency_ms * 1000),
                                               int(params.jitter_ms * 1000))
        if ctx is None and params.venue is not None:
            from abm.agents.spot_context import SpotContext

            ctx = SpotContext(model, self, params.venue, int(round(params.deposit_usdc * USDC)), params.spot_inventory,
                              self.latency, params.journal)
        elif ctx is None:
            from abm.agents.context import AgentContext

            ctx = AgentContext(model, self, int(round(params.deposit_usdc * USDC)), self.latency, params.journal)
        else:
            ctx.bind(self)
        self.ctx = ctx
        self.account = ctx.account
        self.wake = Wake(params.wake, params.wake_every_s)
        self.symbol = params.symbol if params.symbol is not None else ctx.symbols[0]
        if self.symbol not in ctx.symbols:
            raise InvalidInput(f"agents.{self.kind}.symbol", self.symbol, f"must be one of {list(ctx.symbols)}")
        self.active = True
        self._cid = 0
        self._ubuf: array[float] = array("d")  # 8 bytes a draw, not a float object and a list slot (~6 KB an agent)
        # where the model put it (``_place``); an agent built by hand is a group of its own kind
        self.group = self.kind
        self.group_index = 0
        self.shortfalls: list[Shortfall] = []
        self.limit_splits = 0  # market orders sent as several children to stay within the venue's order limits

    @property
    def rng(self) -> np.random.Generator:  # type: ignore[override]
        """This agent's own stream (Mesa's ``Agent.rng`` would be the model's shared one)."""
        return self._rng

    def uniform(self) -> float:
        """A uniform [0, 1) draw from this agent's stream, drawn in blocks (a numpy call per draw is slow)."""
        buf = self._ubuf
        if not buf:
            buf.frombytes(self._rng.random(256)[::-1].tobytes())
        return buf.pop()

    def _place(self, group: str, index: int, network: np.random.Generator) -> None:
        """The model's placement: the agent's group, its index in it and its network stream."""
        self.group = group
        self.group_index = index
        self.ctx.set_network(network)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Called once by the model after all agents exist: schedules the first wake."""
        gap = self.wake.next_gap_us(self.rng)
        if gap is not None:
            self.ctx.wake_in(gap, self._scheduled_wake)

    def _scheduled_wake(self, t: int) -> None:
        if not self.active:
            return
        self.on_wake(t)
        gap = self.wake.next_gap_us(self.rng)
        if gap is not None and self.active:
            self.ctx.wake_in(gap, self._scheduled_wake)

    def on_wake(self, t: int) -> None:
        """Look at the market and act. Override."""

    def on_price(self, t: int, symbol: str, mark: int) -> None:
        """A price trigger set with ``watch_price`` fired. Default: behave as on a wake."""
        self.on_wake(t)

    def on_funding(self, t: int, symbol: str, rate: Fraction) -> None:
        """A funding payment happened in a market watched with ``watch_funding``."""

    def on_result(self, action: str, result: Any) -> None:
        """An action reached the exchange and was accepted."""

    def on_reject(self, action: str, error: AbmError) -> None:
        """An action reached the exchange and was refused."""

    def on_initial_position(self, symbol: str, leverage: Optional[int], margin_mode: Optional[str]) -> None:
        """The exchange booked a position for this agent before the run (``[[initial_positions]]``), setting its
        leverage and margin mode there (None: a counterparty's, left as they were). A holder's kind takes it as if
        it had entered (``initial_position = True``); the default does nothing (it reads its position as ever)."""

    def step(self) -> None:  # Mesa calls nothing per step: agents are event driven
        return None

    # ------------------------------------------------------------------ scheduling and subscriptions

    @property
    def now(self) -> int:
        return self.ctx.now

    def wake_in(self, gap_us: int, fn: Optional[Callable[[int], None]] = None) -> None:
        """An extra one-off wake (e.g. the next TWAP slice); ``fn`` defaults to ``on_wake``."""
        self.ctx.wake_in(gap_us, fn or self.on_wake)

    def wake_at(self, t_us: int, fn: Optional[Callable[[int], None]] = None) -> None:
        """A one-off wake at ``t_us`` (not before now); ``fn`` defaults to ``on_wake``."""
        self.ctx.wake_at(t_us, fn or self.on_wake)

    def watch_price(self, low: Optional[int] = None, high: Optional[int] = None, symbol: Optional[str] = None) -> None:
        """Wake (``on_price``) once when the mark is at or below ``low`` or at or above ``high``."""
        self.ctx.watch_price(low, high, symbol or self.symbol)

    def watch_funding(self, symbol: Optional[str] = None) -> None:
        self.ctx.watch_funding(symbol or self.symbol)

    # ------------------------------------------------------------------ actions, delivered after latency

    def next_cid(self) -> int:
        self._cid += 1
        return self._cid

    def record_shortfall(self, what: str, requested: int, filled: int, reason: str, symbol: Optional[str] = None) -> None:
        """Record a parent order that ends here with ``filled`` < ``requested`` lots (nothing is dropped unrecorded)."""
        self.shortfalls.append(Shortfall(self.now, symbol or self.symbol, what, requested, filled, reason))

    def shortfall_records(self) -> list[Shortfall]:
        """This agent's shortfalls, oldest first (a kind with a cheaper bookkeeping overrides it)."""
        return self.shortfalls

    def limit(self, side: int, qty: int, price: int, symbol: Optional[str] = None, **kw: Any) -> None:
        """``ctx.submit_limit`` on the agent's market (keywords: tif, post_only, reduce_only, client_id, on_done)."""
        self.ctx.submit_limit(symbol or self.symbol, side, qty, price, **kw)

    def market(self, side: int, qty: int, symbol: Optional[str] = None, **kw: Any) -> None:
        """``ctx.submit_market`` on the agent's market (keywords: worst_price, slippage_bps, reduce_only, on_done)."""
        self.ctx.submit_market(symbol or self.symbol, side, qty, **kw)

    def market_split(self, side: int, qty: int, symbol: Optional[str] = None,
                     on_done: Optional[Callable[[list[Any], list[AbmError]], None]] = None, **kw: Any) -> int:
        """A market order of ``qty`` lots sent as the children the venue's maximum market-order value allows
        (``abm.agents.limits.market_children``: one order without the rule), one after another on the link;
        ``on_done(results, errors)`` once, when the last has landed. Returns how many were sent; a split is
        counted in ``limit_splits``."""
        sym = symbol or self.symbol
        parts = market_children(self.ctx, sym, qty)
        if len(parts) > 1:
            self.limit_splits += 1
        if on_done is None:
            for q in parts:
                self.ctx.submit_market(sym, side, q, **kw)
            return len(parts)
        results: list[Any] = []
        errors: list[AbmError] = []
        left = [len(parts)]
        all_done = on_done

        def done(result: Any, error: Optional[AbmError]) -> None:
            if result is not None:
                results.append(result)
            if error is not None:
                errors.append(error)
            left[0] -= 1
            if not left[0]:
                all_done(results, errors)

        for q in parts:
            self.ctx.submit_market(sym, side, q, on_done=done, **kw)
        return len(parts)

    def cancel(self, client_id: object = None, oid: Optional[int] = None, **kw: Any) -> None:
        self.ctx.cancel(oid=oid, client_id=client_id, **kw)

    def cancel_all(self, symbol: Optional[str] = None, **kw: Any) -> None:
        self.ctx.cancel_all(symbol, **kw)

    def modify(self, client_id: object, price: Optional[int] = None, qty: Optional[int] = None, **kw: Any) -> None:
        self.ctx.modify(client_id, price=price, qty=qty, **kw)

    # ------------------------------------------------------------------ reads (what the agent may see)

    def view(self, symbol: Optional[str] = None) -> BookView:
        return self.ctx.view(symbol or self.symbol)

    def mark(self, symbol: Optional[str] = None) -> Optional[int]:
        return self.ctx.mark(symbol or self.symbol)

    def oracle(self, symbol: Optional[str] = None) -> Optional[int]:
        return self.ctx.oracle(symbol or self.symbol)

    def oracle_age_us(self, symbol: Optional[str] = None) -> Optional[int]:
        return self.ctx.oracle_age_us(symbol or self.symbol)

    def predicted_funding(self, symbol: Optional[str] = None) -> Fraction:
        """The rate the current funding interval would pay now (per payment, not per hour)."""
        return self.ctx.predicted_funding(symbol or self.symbol)

    def funding_interval_us(self, symbol: Optional[str] = None) -> int:
        """Length of the current funding interval, to turn a per-payment rate into a per-hour one."""
        return self.ctx.funding_interval_us(symbol or self.symbol)

    def position(self, symbol: Optional[str] = None) -> PositionInfo:
        return self.ctx.position(symbol or self.symbol)

    def equity(self) -> int:
        """Cross equity at the mark plus isolated positions' equity: what the account is worth now."""
        return self.ctx.equity()

    def liquidation_price(self, symbol: Optional[str] = None) -> Optional[Fraction]:
        return self.ctx.liquidation_price(symbol or self.symbol)

    def open_orders(self) -> dict[int, tuple[str, int, int, int]]:
        """oid -> (symbol, side, price, remaining qty); builds a dict, so prefer ``n_open_orders`` in hot code."""
        return self.ctx.open_orders()

    def n_open_orders(self) -> int:
        return self.ctx.n_open_orders()

    def tick_value(self, symbol: Optional[str] = None) -> int:
        """Quote units per tick per lot (the market's multiplier)."""
        return self.ctx.multiplier(symbol or self.symbol)


__all__ = ["Wake", "Shortfall", "Trader", "TraderParams", "parse_params", "USDC"]
