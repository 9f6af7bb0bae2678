"""An agent's only way to a venue: ``AgentContext``, one per agent per venue (today: the model's exchange).

Why it exists: agents must not hold the exchange. Everything an agent does to a venue goes through its
context, which delivers it after the agent's latency, and everything it reads is either public market
data or its own account. No agent code runs with exchange internals in hand: where an agent used to
run a closure "at the exchange" (decide at arrival), it now passes a callback that gets the result.

The determinism rules kept here:
- The link is FIFO: an action never lands before one sent earlier (a cancel cannot overtake its
  order), so arrival = max(send + delay, the previous arrival); equal times keep send order through the
  scheduler's sequence.
- Latency jitter comes from the context's own network stream, never from the agent's decision stream,
  so turning latency on or off never changes what an agent decides.
- Set-up calls (leverage, margin mode, deposits, withdrawals, isolated margin) apply at once before the
  run starts (agent construction, ``start``) and travel the same link, after the same latency, once
  it has started. ``immediate=True`` keeps one at decision time (the arbitrageur's inter-venue
  transfers, whose timing is their own ``transfer_s``).
- A rejected action is counted on the agent and handed to its callback and ``on_reject``; it never
  stops the run.
"""

from __future__ import annotations

from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from abm.agents.fills import FillNotices, FillsFn
from abm.errors import AbmError
from abm.exchange import PositionInfo
from abm.exchange.triggers import TriggerReport
from abm.market.spec import MarketSpec
from abm.market.view import BookView
from abm.venues.rules import EnforcedLimits, enforced_limits

if TYPE_CHECKING:
    from abm.agents.base import Trader
    from abm.agents.latency import LatencyModel
    from abm.model.model import MarketModel

# on_done(result, error): exactly one of the two is None; called when the action reaches the venue
Done = Callable[[Any, Optional[AbmError]], None]
Arrive = Callable[[int], None]


class AgentContext:
    """One agent's account on one venue: actions through its latency link, reads of market data and its account."""

    margined = True  # a perp venue: leverage, margin modes, liquidation (a spot venue's context says False)

    def __init__(self, model: MarketModel, agent: Trader, deposit: int, latency: LatencyModel, journal: bool) -> None:
        ex = model.exchange
        self._risk = ex.risk
        account = ex.open_account(deposit) if deposit else ex.open_account()
        acct = ex.accounts[account]
        self.symbols: tuple[str, ...] = tuple(model.symbols)
        self._index = {s: ex.market(s).index for s in self.symbols}
        self._views = model.views
        self._feeds = model.feeds
        self._link(model, agent, ex, account, acct.open_orders, acct.client_ids, latency, journal)

    def _link(self, model: MarketModel, agent: Trader, ex: Any, account: int, open_orders: dict[int, int],
              client_ids: dict[object, int], latency: LatencyModel, journal: bool) -> None:
        """The link to venue ``ex`` (any exchange with the perp exchange's order arguments) for ``account``."""
        self.model = model
        self.agent = agent
        self._ex = ex
        self._sched = model.sched
        self.account = account
        # live read-only views of the account: oid -> market index in submission order; client id -> oid
        self.orders: MappingProxyType[int, int] = MappingProxyType(open_orders)
        self.client_ids: MappingProxyType[object, int] = MappingProxyType(client_ids)
        self.latency = latency
        self._lagged = latency.max_us > 0
        self._jitter = latency.random
        self._journal: Optional[list[tuple]] = agent.journal
        # the venue's gateway (abm.sim.gateway), None without one: actions queue there between arrival and execution
        self._gateway = model.gateways.get(id(ex)) if getattr(model, "gateways", None) else None
        self._inline = not (self._lagged or journal or self._gateway is not None)  # straight to the exchange (the background flow's path)
        self._land = self._deliver if self._gateway is None else self._at_gateway  # where an arriving action goes
        self._net: Optional[np.random.Generator] = None  # the network stream, for latency jitter only
        self._nbuf: list[float] = []
        self._link_us = 0  # arrival time of the latest action sent: the FIFO link's tail
        # this link's share of the agent's actions and rejects (an agent with accounts on two venues has two links)
        self.actions = 0
        self.rejects = 0
        # bound once: the hot path calls these hundreds of thousands of times an hour
        self.push_wake: Callable[..., None] = model.sched.push  # push_wake(t_us, fn): t_us >= now, unchecked
        self._ex_limit = ex.limit
        self._ex_market = ex.market_order
        self._ex_cancel = ex.cancel

    # ------------------------------------------------------------------ streams

    def set_network(self, network: np.random.Generator) -> None:
        """The model's placement gives the network stream (keyed by group, index and "network")."""
        self._net = network
        self._nbuf.clear()

    def network_uniform(self) -> float:
        """A uniform draw for the network (jitter), never from the decision stream."""
        buf = self._nbuf
        if not buf:
            if self._net is None:  # built outside a model: a child of the decision stream's seed, not its draws
                seed_seq = self.agent.rng.bit_generator.seed_seq
                assert isinstance(seed_seq, np.random.SeedSequence)  # what default_rng makes
                self._net = np.random.default_rng(seed_seq.spawn(1)[0])
            buf.extend(self._net.random(256)[::-1].tolist())
        return buf.pop()

    # ------------------------------------------------------------------ the link

    def _send(self, action: str, fn: Callable[..., Any], args: tuple, on_done: Optional[Done],
              on_arrive: Optional[Arrive]) -> None:
        if self._inline:
            self._deliver(self._sched.now, action, fn, args, on_done, on_arrive, 0, None, False)
            return
        record = self._journal is not None and (action == "limit" or action == "market")
        # the mid the decision saw; None when a side of the book is empty (the order is journaled all the same)
        mid = self._views[args[0]].mid() if record else None
        sched = self._sched
        now = sched.now
        if self._lagged:
            arrive = self._arrival(now)
            sched.push(arrive, self._land, action, fn, args, on_done, on_arrive, now, mid, record)
        else:
            self._land(now, action, fn, args, on_done, on_arrive, now, mid, record)

    def _arrival(self, now: int) -> int:
        arrive = now + self.latency.sample(self.network_uniform() if self._jitter else 0.0)
        if arrive < self._link_us:  # FIFO: never before an action sent earlier (same time: send order)
            arrive = self._link_us
        self._link_us = arrive
        return arrive

    def _at_gateway(self, t: int, action: str, fn: Callable[..., Any], args: tuple, on_done: Optional[Done],
                    on_arrive: Optional[Arrive], decided: int, mid: Optional[float], record: bool) -> None:
        """An action reaches the venue's gateway: it queues there (delivered when served) or is refused now."""
        gw = self._gateway
        assert gw is not None
        refusal = gw.offer(t, self.account, action, self._deliver, (action, fn, args, on_done, on_arrive, decided, mid, record))
        if refusal is not None:
            self.model.order_events += 1
            self.agent.actions += 1
            self.actions += 1
            self._rejected(t, action, refusal, args, on_done, decided, mid, record)

    def _rejected(self, t: int, action: str, e: AbmError, args: tuple, on_done: Optional[Done], decided: int,
                  mid: Optional[float], record: bool) -> None:
        agent = self.agent
        agent.rejects += 1
        self.rejects += 1
        agent.last_reject = e
        if on_done is not None:
            on_done(None, e)
        if record:
            self._journal.append((decided, t, args[0], args[1], args[2], mid, -1, 0, 0, 0, True))  # type: ignore[union-attr]
        agent.on_reject(action, e)

    def _deliver(self, t: int, action: str, fn: Callable[..., Any], args: tuple, on_done: Optional[Done],
                 on_arrive: Optional[Arrive], decided: int, mid: Optional[float], record: bool) -> None:
        """An action reaches the exchange (after latency, and the gateway's queue if the venue has one); journal it
        when asked."""
        agent = self.agent
        self.model.order_events += 1
        agent.actions += 1
        self.actions += 1
        if on_arrive is not None:
            on_arrive(t)
        try:
            res = fn(self.account, *args)
        except AbmError as e:
            self._rejected(t, action, e, args, on_done, decided, mid, record)
            return
        if on_done is not None:
            on_done(res, None)
        if record:
            self._journal.append((decided, t, args[0], args[1], args[2], mid, res.oid, res.filled,  # type: ignore[union-attr]
                                  res.notional, res.resting, False))
        if agent._reports:
            agent.on_result(action, res)

    # ------------------------------------------------------------------ orders (delivered after latency)

    def submit_limit(self, symbol: str, side: int, qty: int, price: int, tif: str = "GTC", post_only: bool = False,
                     reduce_only: bool = False, client_id: object = None, on_done: Optional[Done] = None,
                     on_arrive: Optional[Arrive] = None) -> None:
        """A limit order of ``qty`` lots at ``price`` ticks (``Exchange.limit``)."""
        args = (symbol, side, qty, price, tif, post_only, reduce_only, client_id)
        if self._inline:
            self._deliver(self._sched.now, "limit", self._ex_limit, args, on_done, on_arrive, 0, None, False)
        else:
            self._send("limit", self._ex_limit, args, on_done, on_arrive)

    def submit_market(self, symbol: str, side: int, qty: int, worst_price: Optional[int] = None,
                      slippage_bps: Optional[float] = None, reduce_only: bool = False, client_id: object = None,
                      on_done: Optional[Done] = None, on_arrive: Optional[Arrive] = None) -> None:
        """An immediate order bounded by ``worst_price`` and/or ``slippage_bps`` from the mid at arrival
        (both: the tighter; ``Exchange.market_order``)."""
        args = (symbol, side, qty, worst_price, slippage_bps, reduce_only, client_id)
        if self._inline:
            self._deliver(self._sched.now, "market", self._ex_market, args, on_done, on_arrive, 0, None, False)
        else:
            self._send("market", self._ex_market, args, on_done, on_arrive)

    def cancel(self, oid: Optional[int] = None, client_id: object = None, on_done: Optional[Done] = None) -> None:
        """Cancel one resting order by order id or client id."""
        args = (oid, client_id)
        if self._inline:
            self._deliver(self._sched.now, "cancel", self._ex_cancel, args, on_done, None, 0, None, False)
        else:
            self._send("cancel", self._ex_cancel, args, on_done, None)

    def cancel_all(self, symbol: Optional[str] = None, on_done: Optional[Done] = None) -> None:
        self._send("cancel_all", self._ex.cancel_all, (symbol,), on_done, None)

    def modify(self, client_id: object = None, price: Optional[int] = None, qty: Optional[int] = None,
               oid: Optional[int] = None, on_done: Optional[Done] = None) -> None:
        """Change a resting order's price and/or size in place (``Exchange.modify``)."""
        self._send("modify", self._ex.modify, (oid, price, qty, client_id), on_done, None)

    def submit_stop(self, symbol: str, side: int, qty: Optional[int], trigger_price: int,
                    limit_price: Optional[int] = None, kind: str = "stop", reduce_only: bool = False,
                    position: bool = False, on_done: Optional[Done] = None,
                    on_trigger: Optional[Callable[[TriggerReport], None]] = None) -> None:
        """A trigger order held by the venue (``Exchange.trigger_order``: stop or take-profit, market or limit,
        reduce-only, or a TP/SL of the position). ``on_done(trigger id, error)`` when it reaches the venue;
        ``on_trigger(report)`` when the venue fires, rejects or cancels it, as a wake right after the event
        that did it (never inside the exchange)."""
        notify = None if on_trigger is None else (lambda rep: self._sched.push(self._sched.now, _call, on_trigger, rep))
        args = (symbol, side, qty, trigger_price, limit_price, kind, reduce_only, position, notify)
        self._send("stop", self._ex.trigger_order, args, on_done, None)

    def cancel_stop(self, tid: int, on_done: Optional[Done] = None) -> None:
        """Cancel one of the agent's resting trigger orders by its id."""
        self._send("cancel_stop", self._ex.cancel_trigger, (tid,), on_done, None)

    def stop_report(self, tid: int) -> TriggerReport:
        """What has become of one of the agent's trigger orders, now (read only)."""
        return self._ex.trigger_report(self.account, tid)

    # ------------------------------------------------------------------ set-up calls

    def _setup(self, action: str, fn: Callable[..., Any], args: tuple, on_done: Optional[Done], immediate: bool) -> None:
        """At once (raising on refusal) before the run or when ``immediate``; over the link once it runs."""
        if immediate or not self._sched.started:
            res = fn(self.account, *args)
            if on_done is not None:
                on_done(res, None)
            return
        if self._lagged:
            self._sched.push(self._arrival(self._sched.now), self._deliver_setup, action, fn, args, on_done)
        else:
            self._deliver_setup(self._sched.now, action, fn, args, on_done)

    def _deliver_setup(self, t: int, action: str, fn: Callable[..., Any], args: tuple, on_done: Optional[Done]) -> None:
        """A set-up call lands: not an order event, but refused ones are counted like any reject."""
        agent = self.agent
        try:
            res = fn(self.account, *args)
        except AbmError as e:
            agent.rejects += 1
            self.rejects += 1
            agent.last_reject = e
            if on_done is not None:
                on_done(None, e)
            agent.on_reject(action, e)
            return
        if on_done is not None:
            on_done(res, None)

    def set_leverage(self, symbol: str, leverage: int, on_done: Optional[Done] = None, immediate: bool = False) -> None:
        self._setup("set_leverage", self._ex.set_leverage, (symbol, leverage), on_done, immediate)

    def set_margin_mode(self, symbol: str, mode: str, on_done: Optional[Done] = None, immediate: bool = False) -> None:
        self._setup("set_margin_mode", self._ex.set_margin_mode, (symbol, mode), on_done, immediate)

    def deposit(self, amount: int, on_done: Optional[Done] = None, immediate: bool = False) -> None:
        """Quote units into the account's cross balance (from outside the venue)."""
        self._setup("deposit", self._ex.deposit, (amount,), on_done, immediate)

    def withdraw(self, amount: int, on_done: Optional[Done] = None, immediate: bool = False) -> None:
        """Quote units out of the cross balance (the venue refuses what margin still needs)."""
        self._setup("withdraw", self._ex.withdraw, (amount,), on_done, immediate)

    def transfer_margin(self, symbol: str, amount: int, on_done: Optional[Done] = None, immediate: bool = False) -> None:
        """Into (amount > 0) or out of (< 0) an isolated position's margin."""
        self._setup("transfer_margin", self._ex.transfer_isolated_margin, (symbol, amount), on_done, immediate)

    # ------------------------------------------------------------------ market data (read only)

    def view(self, symbol: str) -> BookView:
        return self._views[symbol]

    def mark(self, symbol: str) -> Optional[int]:
        return self._risk.mark(self._index[symbol])

    def oracle(self, symbol: str) -> Optional[int]:
        return self._feeds[symbol].oracle.price

    def oracle_age_us(self, symbol: str) -> Optional[int]:
        return self._feeds[symbol].oracle.age_us(self._sched.now)

    def index_price(self, symbol: str) -> float:
        """The external (spot) price now, quote currency per base unit: what other venues trade at (the index
        the venues make, with ``index = "venues"``; not the latent value behind it)."""
        return self.model.index_of(symbol).value_at(self._sched.now)

    def value(self, symbol: str, lag_us: int = 0) -> float:
        """The market's value process ``lag_us`` ago (quote currency per base unit): the exogenous information
        informed traders observe. With an exogenous index it is that index's path."""
        return self.model.paths[symbol].value_at(max(0, self._sched.now - lag_us))

    def predicted_funding(self, symbol: str) -> Fraction:
        """The rate the current funding interval would pay now (per payment, not per hour)."""
        return self._feeds[symbol].predicted_rate()

    def funding_interval_us(self, symbol: str) -> int:
        return self._feeds[symbol].funding.interval_us

    def spec(self, symbol: str) -> MarketSpec:
        return self._ex.market(symbol).spec

    def multiplier(self, symbol: str) -> int:
        """Quote units per tick per lot."""
        return self._ex.market(symbol).spec.multiplier

    def order_limits(self, symbol: str) -> EnforcedLimits:
        """The order limits the venue enforces in ``symbol`` (its opt-in rules, ``abm.venues.rules``) in quote units,
        None where it enforces none: what an agent reads to keep its orders inside them (a whale splits a block
        worth more than ``max_market_order_value``)."""
        return enforced_limits(getattr(self._ex.market(symbol), "rules", ()))

    def max_leverage(self, symbol: str) -> int:
        """The venue's maximum leverage for a new position in ``symbol`` (its first tier)."""
        return self._risk.params[self._index[symbol]].tiers.max_leverage(0)

    def liquidation_levels(self, symbol: str) -> list[tuple[int, Fraction]]:
        """(signed size, liquidation price in ticks) of every other holder of ``symbol``, in holding order.

        What liquidation-heatmap services estimate from public data; here exact. Holders without a
        liquidation price (or one at or below zero) are left out.
        """
        ex = self._ex
        m = ex.market(symbol)
        out = []
        for aid, pos in m.holders.items():
            if aid == self.account or not pos.size:
                continue
            lp = ex.liquidation_price(aid, symbol)
            if lp is not None and lp > 0:
                out.append((pos.size, lp))
        return out

    # ------------------------------------------------------------------ the agent's own account

    def position(self, symbol: str) -> PositionInfo:
        return self._ex.position(self.account, symbol)

    def equity(self) -> int:
        """Cross equity at the mark plus isolated positions' equity (quote units)."""
        return self._ex.equity(self.account)

    def balance(self) -> int:
        """The cross balance (quote units), before unrealised PnL."""
        return self._ex.accounts[self.account].balance

    def margin_summary(self) -> dict[str, object]:
        return self._ex.margin_summary(self.account)

    def liquidation_price(self, symbol: str) -> Optional[Fraction]:
        return self._ex.liquidation_price(self.account, symbol)

    def open_orders(self) -> dict[int, tuple[str, int, int, int]]:
        """oid -> (symbol, side, price, remaining qty); builds a dict, so prefer ``orders`` in hot code."""
        return self._ex.open_orders(self.account)

    def n_open_orders(self) -> int:
        return len(self.orders)

    # ------------------------------------------------------------------ time, wakes and triggers

    @property
    def now(self) -> int:
        return self._sched.now

    def wake_at(self, t_us: int, fn: Callable[[int], None]) -> None:
        """Call ``fn(t)`` at ``t_us`` (not before now)."""
        self._sched.at(t_us, fn)

    def wake_in(self, gap_us: int, fn: Callable[[int], None]) -> None:
        """Call ``fn(t)`` ``gap_us`` from now (at least 1 µs)."""
        sched = self._sched
        sched.push(sched.now + max(1, int(gap_us)), fn)

    def watch_price(self, low: Optional[int], high: Optional[int], symbol: str) -> None:
        """The agent's ``on_price`` once, when the mark is at or below ``low`` or at or above ``high``; replaces
        the agent's earlier request."""
        self.model.triggers[symbol].add(self.agent, low, high)

    def watch_funding(self, symbol: str) -> None:
        """The agent's ``on_funding`` at every funding payment of ``symbol``."""
        self.model.funding_watchers[symbol].append(self.agent)

    def watch_fills(self, fn: FillsFn, delay_us: int) -> None:
        """``fn(t, fills)`` ``delay_us`` after fills of the agent's resting orders on this venue, all fills since the
        last notice in one call (``abm.agents.fills``); the venue's dispatcher is subscribed at the first watch."""
        venues = self.model.fill_notices
        notices = venues.get(id(self._ex))
        if notices is None:
            notices = venues[id(self._ex)] = FillNotices(self._sched, self._ex)
            self._ex.subscribe_fills(notices)
        notices.watch(self.account, delay_us, fn)

    @property
    def end_us(self) -> int:
        """When the run ends: the horizon of a strategy that counts down to it."""
        return self.model.end_us


def _call(t: int, fn: Callable[[TriggerReport], None], report: TriggerReport) -> None:
    fn(report)


__all__ = ["AgentContext", "Done", "Arrive"]
