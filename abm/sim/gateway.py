"""A venue's order gateway under load: one server in front of the matching engine, and per-account rate limits.

Why: a real venue serves actions at a finite rate. When a crash makes everyone act at once, actions queue,
each waits for those before it, and past a limit the venue turns them away ("system overload", BitMEX, 12-13
March 2020), so a stop or a hedge lands late or not at all. Without a gateway (the default) the exchange
serves every action the instant it arrives, as before.

The queue is a deterministic single server: an action arriving at ``t`` starts at max(t, when the server is
free) and is executed at start + ``service_us``; the next waiting action starts then. A burst of N actions at
one instant is executed at t + s, t + 2s, ..., t + Ns. ``queue_limit`` counts the actions in the gateway
(waiting or in service): an arrival that finds that many is refused at once with ``GatewayOverload``. The server
is driven by events (one scheduler push per served action, O(1) each), because with cancel priority a cancel
goes ahead of orders that arrived before it, so an action's execution time is only known when it starts.

- FIFO: actions are served in arrival order, so each agent's link keeps its order. With ``cancel_priority``
  cancels (``cancel``, ``cancel_all``) wait in a lane of their own, served first (never interrupting the action
  in service); among themselves and among orders FIFO still holds. A cancel that overtakes the order it
  cancels finds nothing at the venue and is refused like any cancel of an unknown order (``UnknownOrder``); the
  order then lands and rests. That is what a venue that sorts cancels first does (Hyperliquid sorts each
  block's cancels before its orders): the gateway does not look inside the queue.
- Rate limits: per account, fixed windows of ``window_us`` from t = 0 (Binance's counters reset on the
  interval); an action whose weight would take the window's total past ``limit`` is refused with
  ``RateLimitExceeded`` naming the limit, before it queues. The weight of every action that passes the limits is
  counted, also when the queue then refuses it (the venue received it); refused ones are not.
- The exchange's liquidation engine is internal and never passes here by default. With
  ``liquidations_queued`` each mark update's liquidation check is a job in the order lane (coalesced per market:
  a check already waiting will read the newest mark), exempt from the limits (the engine cannot be refused).
- Set-up calls (leverage, margin mode, deposits, transfers) do not pass the gateway. Placing and cancelling a
  trigger order held by the venue (``stop``, ``cancel_stop``) do; its firing at a mark update is the venue's own
  and never waits, like a liquidation.

The gateway keeps the figures of what it served since the model's last step (``waits_us``, ``rejected``,
``peak``) for the per-step metrics; the model calls ``new_step`` after each collection.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Optional

from abm.errors import AbmError, GatewayOverload, RateLimitExceeded
from abm.venues.venue import GatewaySpec

__all__ = ["Gateway", "CANCELS", "OVERLOAD"]

CANCELS = frozenset({"cancel", "cancel_all", "cancel_stop"})
OVERLOAD = "overload"  # the reason of a refusal by the queue limit (a rate limit's reason is its name)

Job = tuple[int, Callable[..., None], tuple]  # (arrival time, fn(t, *args) run when served, args)


class Gateway:
    """One venue's gateway, driven by ``sched`` (anything with ``now`` and ``push(t, fn, *args)``)."""

    __slots__ = ("spec", "service_us", "queue_limit", "cancel_priority", "liquidations_queued", "_sched", "_orders",
                 "_cancels", "_busy", "_limits", "_used", "_internal", "waits_us", "rejected", "peak", "served",
                 "refused")

    def __init__(self, spec: GatewaySpec, sched: Any) -> None:
        self.spec = spec
        self.service_us = spec.service_us
        self.queue_limit = spec.queue_limit
        self.cancel_priority = spec.cancel_priority
        self.liquidations_queued = spec.liquidations_queued
        self._sched = sched
        self._orders: deque[Job] = deque()
        self._cancels: deque[Job] = deque()
        self._busy = False
        self._limits = [(r.name, f"gateway.rate_limits.{r.name}", r.window_us, r.limit, r.weights) for r in spec.rate_limits]
        self._used: dict[int, list[list[int]]] = {}  # account -> per limit [window number, weight used in it]
        self._internal: set[object] = set()  # keys of internal jobs waiting (a market's liquidation check)
        self.waits_us: list[int] = []  # arrival to execution of each action served since the last step
        self.rejected: dict[str, int] = {OVERLOAD: 0, **{r.name: 0 for r in spec.rate_limits}}  # since the last step
        self.peak = 0  # most actions in the gateway at once since the last step
        self.served = 0  # actions served in the whole run
        self.refused = 0  # actions refused in the whole run

    def __len__(self) -> int:
        """Actions in the gateway now: waiting, plus the one in service."""
        return len(self._orders) + len(self._cancels) + self._busy

    def new_step(self) -> None:
        """The model collected this step's figures: the next step's start empty (the queue itself carries on)."""
        self.waits_us = []
        for k in self.rejected:
            self.rejected[k] = 0
        self.peak = len(self)

    # ------------------------------------------------------------------ admission

    def offer(self, t: int, account: int, action: str, fn: Callable[..., None], args: tuple) -> Optional[AbmError]:
        """An action of ``account`` arrives at ``t``: None when it is admitted (``fn(t_served, *args)`` runs when
        it is served), else the refusal (nothing queued, nothing run)."""
        if self._limits:
            refusal = self._rate(t, account, action)
            if refusal is not None:
                return refusal
        if not self.service_us:  # rate limits only: served at once
            self.served += 1
            self.waits_us.append(0)
            fn(t, *args)
            return None
        n = len(self._orders) + len(self._cancels) + self._busy
        limit = self.queue_limit
        if limit is not None and n >= limit:
            self.rejected[OVERLOAD] += 1
            self.refused += 1
            return GatewayOverload("gateway.queue_limit", action,
                                   f"at most {limit} actions in the venue's gateway (waiting or in service); "
                                   f"{n} were there (system overload)")
        self._admit((t, fn, args), self.cancel_priority and action in CANCELS)
        return None

    def internal(self, key: object, fn: Callable[..., None], *args: Any) -> None:
        """The venue's own job (a market's liquidation check): queued behind what is waiting, never refused, and
        coalesced by ``key`` (one waiting job per key; it runs with the state of when it is served)."""
        if key in self._internal:
            return
        self._internal.add(key)
        self._admit((self._sched.now, self._run_internal, (key, fn, args)), False)

    def _run_internal(self, t: int, key: object, fn: Callable[..., None], args: tuple) -> None:
        self._internal.discard(key)
        fn(*args)

    def _admit(self, job: Job, cancel: bool) -> None:
        if self._busy:
            (self._cancels if cancel else self._orders).append(job)
            n = len(self._orders) + len(self._cancels) + 1
            if n > self.peak:
                self.peak = n
        else:
            self._busy = True
            self._sched.push(job[0] + self.service_us, self._serve, job)
            if not self.peak:
                self.peak = 1

    def _serve(self, t: int, job: Job) -> None:
        """The action in service is done at ``t``: executed now; the next waiting one starts now."""
        arrived, fn, args = job
        self.served += 1
        self.waits_us.append(t - arrived)
        fn(t, *args)
        lane = self._cancels or self._orders
        if lane:
            self._sched.push(t + self.service_us, self._serve, lane.popleft())
        else:
            self._busy = False

    def _rate(self, t: int, account: int, action: str) -> Optional[AbmError]:
        used = self._used.get(account)
        if used is None:
            used = self._used[account] = [[-1, 0] for _ in self._limits]
        for (name, field, window, limit, weights), u in zip(self._limits, used):
            w = weights.get(action, 0)
            if not w:
                continue
            k = t // window
            if u[0] != k:
                u[0], u[1] = k, 0
            if u[1] + w > limit:
                self.rejected[name] += 1
                self.refused += 1
                return RateLimitExceeded(field, u[1] + w, f"at most {limit} weight of actions per account in each "
                                                          f"{window / 1e6:g} s window (a {action} weighs {w}; "
                                                          f"{u[1]} used in this window)")
        for (_, _, _, _, weights), u in zip(self._limits, used):
            u[1] += weights.get(action, 0)
        return None
