"""``FakeContext``: an agent's venue for unit tests, with no model run and no exchange.

Why: an agent's decisions (what it quotes, when it exits) are easier to test by setting the market by
hand and looking at what it sends than through a whole run. A test sets the book, mark, oracle,
position and equity, calls the agent's hooks (``on_wake``, ``on_price``, ...), reads ``sent`` and
answers each action with ``fill`` (or ``rest``) / ``reject``, which call the agent back as the real
link would (its ``on_done`` callback, then ``on_result`` / ``on_reject``); ``fill_resting`` fills a resting
order as a taker would, telling an agent that watches its fills after its delay. Set-up calls apply at once
and are recorded in ``setup``. Wakes are recorded in ``wakes`` and run with ``run_wakes``.

    ctx = FakeContext(mark=600_000)
    ctx.set_book(599_990, 600_010)
    mm = build_agent(MarketMaker, {"leverage": 10}, ctx)
    mm.on_wake(0)
    assert all(s.kwargs["post_only"] for s in ctx.sent)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType, SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable, Optional

import mesa
import numpy as np

from abm.agents.fills import Fill
from abm.errors import AbmError, InvalidInput
from abm.exchange import OrderResult, PositionInfo
from abm.market.spec import MarketSpec
from abm.units import USDC
from abm.venues.rules import EnforcedLimits

if TYPE_CHECKING:
    from abm.agents.base import Trader


class FakeBook:
    """What an agent reads of a book (``BookView``'s best prices and mid), set by the test."""

    def __init__(self) -> None:
        self.bid: Optional[int] = None
        self.ask: Optional[int] = None

    def best_bid(self) -> Optional[int]:
        return self.bid

    def best_ask(self) -> Optional[int]:
        return self.ask

    def mid(self) -> Optional[float]:
        return (self.bid + self.ask) / 2 if self.bid is not None and self.ask is not None else None

    def spread(self) -> Optional[int]:
        return self.ask - self.bid if self.bid is not None and self.ask is not None else None


@dataclass
class Sent:
    """One action the agent sent: its name (limit, market, cancel, cancel_all, modify), its fields and callbacks."""

    action: str
    kwargs: dict[str, Any]
    t_us: int
    on_done: Optional[Callable[[Any, Optional[AbmError]], None]] = None
    on_arrive: Optional[Callable[[int], None]] = None
    answered: bool = field(default=False, compare=False)


class FakeContext:
    """The ``AgentContext`` API over hand-set state (one market unless ``symbols`` names more)."""

    margined = True  # a perp venue

    def __init__(self, symbol: str = "BTC-PERP", mark: Optional[int] = 600_000, tick_size: str = "0.1",
                 lot_size: str = "0.001", max_leverage: int = 40, equity_usdc: Optional[float] = None,
                 symbols: tuple[str, ...] = ()) -> None:
        from abm.venues import load_venue

        venue = load_venue()
        self.account = 1
        self.symbols: tuple[str, ...] = symbols or (symbol,)
        self.specs: dict[str, MarketSpec] = {s: venue.market_spec(s, tick_size, lot_size) for s in self.symbols}
        self.books = {s: FakeBook() for s in self.symbols}
        self.marks: dict[str, Optional[int]] = {s: mark for s in self.symbols}
        self.oracles: dict[str, Optional[int]] = {s: mark for s in self.symbols}
        self.oracle_ages_us: dict[str, Optional[int]] = {s: 0 for s in self.symbols}
        self.index_prices: dict[str, float] = {s: float((mark or 0) * Fraction(tick_size)) for s in self.symbols}
        self.values: dict[str, Any] = {}  # the value process (``value``): a number or a function of time; unset: index
        self.funding_rates: dict[str, Fraction] = {s: Fraction(0) for s in self.symbols}
        self.funding_intervals_us: dict[str, int] = {s: 3_600_000_000 for s in self.symbols}
        self.max_leverages: dict[str, int] = {s: max_leverage for s in self.symbols}
        self.limits: dict[str, EnforcedLimits] = {s: EnforcedLimits() for s in self.symbols}  # order_limits: none
        self.positions: dict[str, PositionInfo] = {}
        self.liquidation_prices: dict[str, Optional[Fraction]] = {}
        self.margin: dict[str, object] = {"cross_maintenance": 0}
        self._equity_usdc = equity_usdc  # None: the agent's deposit, when it binds
        self.set_equity(equity_usdc or 0.0)
        self.others: dict[str, list[tuple[int, Fraction]]] = {s: [] for s in self.symbols}  # liquidation_levels
        self._orders: dict[int, int] = {}
        self._details: dict[int, tuple[str, int, int, int]] = {}
        self._cids: dict[object, int] = {}
        self._cid_of: dict[int, object] = {}
        self.orders = MappingProxyType(self._orders)
        self.client_ids = MappingProxyType(self._cids)
        self.sent: list[Sent] = []
        self.setup: list[tuple[Any, ...]] = []
        self.wakes: list[tuple[int, int, Callable[[int], None]]] = []  # (time, sequence, fn)
        self.price_watch: dict[str, tuple[Optional[int], Optional[int]]] = {}
        self.stop_reports: dict[int, Any] = {}  # trigger id -> what ``stop_report`` answers (unset: still resting)
        self.funding_watched: list[str] = []
        self.fill_watch: Optional[tuple[Callable[[int, list[Fill]], None], int]] = None  # (fn, delay_us)
        self._unheard: list[Fill] = []  # fills the watching agent has not been told of yet
        self.end_us = 3_600_000_000  # when the run ends (``end_us``): the horizon of a maker counting down to it
        self.now = 0
        self.agent: Any = None
        self._seq = 0
        self._next_oid = 1

    def bind(self, agent: Any) -> None:
        self.agent = agent
        if self._equity_usdc is None:
            self.set_equity(agent.p.deposit_usdc)

    # ------------------------------------------------------------------ what the test sets

    def set_book(self, bid: Optional[int], ask: Optional[int], symbol: Optional[str] = None) -> None:
        b = self.books[symbol or self.symbols[0]]
        b.bid, b.ask = bid, ask

    def set_position(self, size: int, entry_price: Optional[Fraction] = None, symbol: Optional[str] = None,
                     mode: str = "cross", liquidation_price: Optional[Fraction] = None) -> None:
        s = symbol or self.symbols[0]
        mult = self.specs[s].multiplier
        e = Fraction(entry_price) if entry_price is not None else None
        cost = int(size * e * mult) if e is not None else 0
        self.positions[s] = PositionInfo(s, size, cost, 0, 0, 0, mode, 0, e if size else None)
        self.liquidation_prices[s] = liquidation_price

    def set_equity(self, usdc: float) -> None:
        self.equity_value = self.balance_value = int(round(usdc * USDC))
        self.margin = {**self.margin, "cross_equity": self.equity_value, "free_collateral": self.equity_value}

    # ------------------------------------------------------------------ answering the agent's actions

    def pending(self, action: Optional[str] = None) -> list[Sent]:
        """Actions sent and not answered yet, oldest first (only ``action`` ones when given)."""
        return [s for s in self.sent if not s.answered and (action is None or s.action == action)]

    def _next(self, sent: Optional[Sent]) -> Sent:
        if sent is None:
            waiting = self.pending()
            if not waiting:
                raise AssertionError("the agent has no action waiting for an answer")
            sent = waiting[0]
        if sent.answered:
            raise AssertionError(f"{sent} was answered already")
        sent.answered = True
        self.agent.actions += 1
        if sent.on_arrive is not None:
            sent.on_arrive(self.now)
        return sent

    def fill(self, filled: Optional[int] = None, price: Optional[int] = None, sent: Optional[Sent] = None) -> OrderResult:
        """Answer the oldest waiting order (or ``sent``) as filled: ``filled`` lots (default all) at ``price``
        ticks (default its limit, or the mark); the rest of a limit order rests, of a market order is cancelled."""
        s = self._next(sent)
        kw = s.kwargs
        qty = kw.get("qty", 0)
        filled = qty if filled is None else filled
        px = price if price is not None else kw.get("price") or self.marks[kw.get("symbol", self.symbols[0])] or 0
        resting = qty - filled if s.action == "limit" and kw.get("tif", "GTC") == "GTC" else 0
        res = OrderResult(self._next_oid, qty, filled, px * filled, resting)
        self._next_oid += 1
        if resting:
            self._rest(res.oid, kw, resting)
        self._answer(s, res)
        return res

    def rest(self, sent: Optional[Sent] = None) -> OrderResult:
        """Answer the oldest waiting action: a limit rests whole; a cancel, cancel_all, modify, stop (its id is the
        answer) or cancel_stop succeeds."""
        s = self._peek(sent)
        if s.action == "limit":
            return self.fill(0, sent=s)
        self._next(s)
        kw = s.kwargs
        if s.action == "cancel":
            oid = kw["oid"] if kw["oid"] is not None else self._cids[kw["client_id"]]
            self._drop(oid)
            res: Any = 0
        elif s.action == "cancel_all":
            oids = [o for o, d in self._details.items() if kw["symbol"] is None or d[0] == kw["symbol"]]
            for o in oids:
                self._drop(o)
            res = len(oids)
        elif s.action == "modify":
            oid = kw["oid"] if kw["oid"] is not None else self._cids[kw["client_id"]]
            sym, side, price, left = self._details[oid]
            self._details[oid] = (sym, side, kw["price"] if kw["price"] is not None else price,
                                  kw["qty"] if kw["qty"] is not None else left)
            res = 0
        elif s.action == "stop":  # accepted by the venue: the answer is the trigger's id
            res = self._next_oid
            self._next_oid += 1
        elif s.action == "cancel_stop":
            res = None
        else:
            raise AssertionError(f"use fill() for a {s.action} order")
        self._answer(s, res)
        return res

    def reject(self, error: Optional[AbmError] = None, sent: Optional[Sent] = None) -> AbmError:
        """Answer the oldest waiting action (or ``sent``) as refused by the venue."""
        s = self._next(sent)
        e = error or InvalidInput("order", s.action, "refused by the fake venue")
        agent = self.agent
        agent.rejects += 1
        agent.last_reject = e
        if s.on_done is not None:
            s.on_done(None, e)
        agent.on_reject(s.action, e)
        return e

    def answer_all(self) -> None:
        """Answer every waiting action the plain way: orders fill (market) or rest (limit), the rest succeed."""
        while self.pending():
            s = self.pending()[0]
            if s.action == "market":
                self.fill(sent=s)
            else:
                self.rest(sent=s)

    def _peek(self, sent: Optional[Sent]) -> Sent:
        if sent is not None:
            return sent
        waiting = self.pending()
        if not waiting:
            raise AssertionError("the agent has no action waiting for an answer")
        return waiting[0]

    def _answer(self, s: Sent, res: Any) -> None:
        if s.on_done is not None:
            s.on_done(res, None)
        if self.agent._reports:
            self.agent.on_result(s.action, res)

    def _rest(self, oid: int, kw: dict[str, Any], left: int) -> None:
        self._orders[oid] = self.symbols.index(kw["symbol"])
        self._details[oid] = (kw["symbol"], kw["side"], kw["price"], left)
        if kw.get("client_id") is not None:
            self._cids[kw["client_id"]] = oid
            self._cid_of[oid] = kw["client_id"]

    def fill_resting(self, oid: int, qty: Optional[int] = None, price: Optional[int] = None) -> Fill:
        """A taker fills ``qty`` lots (default all) of the resting order ``oid`` at ``price`` (default its own) now;
        an agent watching its fills hears of it as a wake ``delay_us`` later, with any other fill before that wake
        (as ``abm.agents.fills`` tells it)."""
        sym, side, px, left = self._details[oid]
        qty = left if qty is None else qty
        if not 0 < qty <= left:
            raise AssertionError(f"order {oid} has {left} lots resting, cannot fill {qty}")
        if qty == left:
            self._drop(oid)
        else:
            self._details[oid] = (sym, side, px, left - qty)
        fill = Fill(self.now, sym, side, px if price is None else price, qty, oid)
        if self.fill_watch is not None:
            self._unheard.append(fill)
            if len(self._unheard) == 1:
                self.wake_at(self.now + self.fill_watch[1], self._tell_fills)
        return fill

    def _tell_fills(self, t: int) -> None:
        fills, self._unheard = self._unheard, []
        assert self.fill_watch is not None
        self.fill_watch[0](t, fills)

    def _drop(self, oid: int) -> None:
        self._orders.pop(oid, None)
        self._details.pop(oid, None)
        cid = self._cid_of.pop(oid, None)
        if cid is not None:
            self._cids.pop(cid, None)

    # ------------------------------------------------------------------ the AgentContext API

    def network_uniform(self) -> float:
        return 0.0

    def set_network(self, network: np.random.Generator) -> None:
        pass

    def _send(self, action: str, on_done: Any, on_arrive: Any = None, **kw: Any) -> None:
        self.sent.append(Sent(action, kw, self.now, on_done, on_arrive))

    def submit_limit(self, symbol: str, side: int, qty: int, price: int, tif: str = "GTC", post_only: bool = False,
                     reduce_only: bool = False, client_id: object = None, on_done: Any = None,
                     on_arrive: Any = None) -> None:
        self._send("limit", on_done, on_arrive, symbol=symbol, side=side, qty=qty, price=price, tif=tif,
                   post_only=post_only, reduce_only=reduce_only, client_id=client_id)

    def submit_market(self, symbol: str, side: int, qty: int, worst_price: Optional[int] = None,
                      slippage_bps: Optional[float] = None, reduce_only: bool = False, client_id: object = None,
                      on_done: Any = None, on_arrive: Any = None) -> None:
        self._send("market", on_done, on_arrive, symbol=symbol, side=side, qty=qty, worst_price=worst_price,
                   slippage_bps=slippage_bps, reduce_only=reduce_only, client_id=client_id)

    def cancel(self, oid: Optional[int] = None, client_id: object = None, on_done: Any = None) -> None:
        self._send("cancel", on_done, oid=oid, client_id=client_id)

    def cancel_all(self, symbol: Optional[str] = None, on_done: Any = None) -> None:
        self._send("cancel_all", on_done, symbol=symbol)

    def modify(self, client_id: object = None, price: Optional[int] = None, qty: Optional[int] = None,
               oid: Optional[int] = None, on_done: Any = None) -> None:
        self._send("modify", on_done, oid=oid, price=price, qty=qty, client_id=client_id)

    def submit_stop(self, symbol: str, side: int, qty: Optional[int], trigger_price: int,
                    limit_price: Optional[int] = None, kind: str = "stop", reduce_only: bool = False,
                    position: bool = False, on_done: Any = None, on_trigger: Any = None) -> None:
        """Recorded as ``stop``; the test answers it and calls ``kwargs["on_trigger"]`` with a report itself."""
        self._send("stop", on_done, symbol=symbol, side=side, qty=qty, trigger_price=trigger_price,
                   limit_price=limit_price, kind=kind, reduce_only=reduce_only, position=position,
                   on_trigger=on_trigger)

    def cancel_stop(self, tid: int, on_done: Any = None) -> None:
        self._send("cancel_stop", on_done, tid=tid)

    def stop_report(self, tid: int) -> Any:
        """The report the test set in ``stop_reports``; unset: a trigger still resting."""
        found = self.stop_reports.get(tid)
        return found if found is not None else SimpleNamespace(tid=tid, status="resting", filled=0, notional=0)

    def _setup(self, name: str, *args: Any, on_done: Any = None) -> None:
        self.setup.append((name, *args))
        if on_done is not None:
            on_done(None, None)

    def set_leverage(self, symbol: str, leverage: int, on_done: Any = None, immediate: bool = False) -> None:
        if leverage > self.max_leverages[symbol]:
            raise InvalidInput("leverage", leverage, f"must be <= {self.max_leverages[symbol]}")
        self._setup("set_leverage", symbol, leverage, on_done=on_done)

    def set_margin_mode(self, symbol: str, mode: str, on_done: Any = None, immediate: bool = False) -> None:
        self._setup("set_margin_mode", symbol, mode, on_done=on_done)

    def deposit(self, amount: int, on_done: Any = None, immediate: bool = False) -> None:
        self.balance_value += amount
        self._setup("deposit", amount, on_done=on_done)

    def withdraw(self, amount: int, on_done: Any = None, immediate: bool = False) -> None:
        self.balance_value -= amount
        self._setup("withdraw", amount, on_done=on_done)

    def transfer_margin(self, symbol: str, amount: int, on_done: Any = None, immediate: bool = False) -> None:
        self._setup("transfer_margin", symbol, amount, on_done=on_done)

    def view(self, symbol: str) -> FakeBook:
        return self.books[symbol]

    def mark(self, symbol: str) -> Optional[int]:
        return self.marks[symbol]

    def oracle(self, symbol: str) -> Optional[int]:
        return self.oracles[symbol]

    def oracle_age_us(self, symbol: str) -> Optional[int]:
        return self.oracle_ages_us[symbol]

    def index_price(self, symbol: str) -> float:
        return self.index_prices[symbol]

    def value(self, symbol: str, lag_us: int = 0) -> float:
        """``values[symbol]`` if the test set one (a callable of the time read is allowed), else the index price."""
        v = self.values.get(symbol)
        if v is None:
            return self.index_prices[symbol]
        return float(v(self.now - lag_us)) if callable(v) else float(v)

    def predicted_funding(self, symbol: str) -> Fraction:
        return self.funding_rates[symbol]

    def funding_interval_us(self, symbol: str) -> int:
        return self.funding_intervals_us[symbol]

    def spec(self, symbol: str) -> MarketSpec:
        return self.specs[symbol]

    def multiplier(self, symbol: str) -> int:
        return self.specs[symbol].multiplier

    def max_leverage(self, symbol: str) -> int:
        return self.max_leverages[symbol]

    def order_limits(self, symbol: str) -> EnforcedLimits:
        return self.limits[symbol]

    def liquidation_levels(self, symbol: str) -> list[tuple[int, Fraction]]:
        return list(self.others[symbol])

    def position(self, symbol: str) -> PositionInfo:
        p = self.positions.get(symbol)
        return p if p is not None else PositionInfo(symbol, 0, 0, 0, 0, 0, "cross", 0, None)

    def equity(self) -> int:
        return self.equity_value

    def balance(self) -> int:
        return self.balance_value

    def margin_summary(self) -> dict[str, object]:
        return dict(self.margin)

    def liquidation_price(self, symbol: str) -> Optional[Fraction]:
        return self.liquidation_prices.get(symbol)

    def open_orders(self) -> dict[int, tuple[str, int, int, int]]:
        return dict(self._details)

    def n_open_orders(self) -> int:
        return len(self._orders)

    def wake_at(self, t_us: int, fn: Callable[[int], None]) -> None:
        if t_us < self.now:
            raise InvalidInput("t_us", t_us, f"must be an integer time not before now ({self.now} µs)")
        self._seq += 1
        self.wakes.append((t_us, self._seq, fn))

    def push_wake(self, t_us: int, fn: Callable[[int], None]) -> None:
        self.wake_at(t_us, fn)

    def wake_in(self, gap_us: int, fn: Callable[[int], None]) -> None:
        self.wake_at(self.now + max(1, int(gap_us)), fn)

    def run_wakes(self, until_us: int) -> int:
        """Run the recorded wakes due by ``until_us`` in time order (including ones they add); returns how many."""
        n = 0
        while True:
            due = sorted(w for w in self.wakes if w[0] <= until_us)
            if not due:
                break
            w = due[0]
            self.wakes.remove(w)
            self.now = w[0]
            w[2](w[0])
            n += 1
        self.now = max(self.now, until_us)
        return n

    def watch_price(self, low: Optional[int], high: Optional[int], symbol: str) -> None:
        self.price_watch[symbol] = (low, high)

    def watch_funding(self, symbol: str) -> None:
        self.funding_watched.append(symbol)

    def watch_fills(self, fn: Callable[[int, list[Fill]], None], delay_us: int) -> None:
        self.fill_watch = (fn, delay_us)


def build_agent(cls: type[Trader], params: Optional[dict[str, Any]] = None, ctx: Optional[FakeContext] = None,
                seed: int = 0) -> Any:
    """An agent of ``cls`` on ``ctx`` (a new ``FakeContext`` by default) with its own stream from ``seed``:
    no exchange, no scheduler, a bare Mesa model for Mesa's bookkeeping only."""
    from abm.agents.base import parse_params

    ctx = ctx or FakeContext()
    p = parse_params(cls.Params, dict(params or {}), f"agents.{cls.kind}")
    return cls(mesa.Model(), np.random.default_rng(seed), p, ctx=ctx)


__all__ = ["FakeContext", "FakeBook", "Sent", "build_agent"]
