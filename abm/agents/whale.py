"""A whale: one large directional flow of ``size`` base units starting at ``start_s``.

Why it exists: cascades start with a large order that the book cannot absorb. The whale is that
order, executed in one of four ways, so a study can compare how the same flow moves the market
depending on how it is worked:

- ``market``: one market order at ``start_s`` (optionally bounded by ``slippage_bps`` from the mid).
  What the book cannot absorb is cancelled and recorded (``remainder="report"``, the default: the
  block sale the scenario describes), or worked: with ``remainder="work"`` the whale sends another
  market order for what is left every ``slice_s`` until it is filled or ``duration_s`` has passed;
- ``twap``: equal slices every ``slice_s`` over ``duration_s``, each a market order bounded by
  ``max_slippage_bps`` from the mid at arrival (3 % like Hyperliquid's TWAP); what a slice cannot fill
  within its bound is dropped, as on the venue;
- ``iceberg``: a resting limit order showing at most ``display_size`` at a price ``offset_bps`` from the
  mid (above it for a sell, below for a buy; negative offsets cross and take what they meet). When the
  visible part is completely filled the next one is shown, priced from the mid at that moment (so the
  iceberg follows the market rather than being left behind); the whale checks every ``refill_check_s``
  (it gets no fill callbacks) and shows a new part only once the previous one is gone and nothing is
  on its way, so the book never shows more than ``display_size`` of it. With ``reprice_bps`` a part the
  market has left that far behind is cancelled and shown again at the current level;
- ``hunt``: liquidation hunting. The whale reads everyone's liquidation price the way heatmap services
  estimate them (here exactly: ``AgentContext.liquidation_levels``, every other holder's), bins
  the liquidation notional in buckets of ``bucket_bps`` within ``max_distance_pct`` of the mark, picks
  the bucket with the most notional (longs' below the mark: sell to push down; shorts' above: buy; with
  ``side="auto"`` whichever side's densest bucket is larger) and trades toward it in slices of
  ``hunt_slice_size`` every ``slice_s`` until the mark reaches the bucket's farthest liquidation price or
  the ``size`` budget is spent. Each slice is bounded by ``max_slippage_bps`` from the mid and never goes
  more than ``hunt_overshoot_bps`` past the target: the mark follows the book only partly (it is anchored
  to the oracle), so the book must be pushed somewhat beyond the cluster, but a book swept far past it
  would leave the liquidation orders nothing to trade with and hand the positions to the backstop. The
  target is fixed when found; it is not chased further.

A venue that enforces a maximum market-order value (the opt-in rule ``max_market_order_value``, read through
``AgentContext.order_limits``) would refuse a block worth more, so every market order the whale sends (a
block, a slice, a close) goes as ``n = ceil(lots / most)`` children of equal size (within one lot), ``most``
the lots the limit allows at the mark when it sends, one after another on its FIFO link: each is worth at
most the limit, and the block executes as a whole. A child the venue still refuses for that limit (the mark
rose before it landed) is split again at the mark then. With no such rule an order goes as one.

Nothing is dropped silently: when an execution ends with less filled than ``size`` (a block the book
could not absorb, twap slices cut at their bound, an iceberg or hunt that gave up) the shortfall is
recorded once its last order has landed (``shortfalls``; the run's ``summary["unfilled"]``). A hunt
that reached its target has done its job, whatever is left of its budget.

The whale trades on a cross-margin account (``deposit_usdc`` large enough for the flow). Afterwards it
holds (``exit="hold"``), closes when the mark has moved ``take_profit_bps`` in its favour from its
average entry (``exit="take_profit"``, a price trigger), or closes ``close_after_s`` after finishing
(``exit="close_after"``); a close is a run of reduce-only market orders bounded by
``max_slippage_bps``, one every ``slice_s`` until flat.

Cost: the whale wakes only for its own slices, refill checks and close steps; a hunt scan costs one
pass over the market's holders and happens once (or once per ``slice_s`` while no cluster is found).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Annotated, Any, Iterator, Literal, Optional

from abm.agents.base import Trader, TraderParams, WakeMode
from abm.agents.limits import market_children
from abm.agents.params import Bps, Leverage, PositiveBps, PositiveSeconds, Seconds, Usdc, number
from abm.config import Problem
from abm.errors import AbmError, InvalidInput, OrderLimitViolation
from abm.units import BUY, SELL, US_PER_S

Execution = Literal["market", "twap", "iceberg", "hunt"]
Exit = Literal["hold", "take_profit", "close_after"]
Remainder = Literal["report", "work"]
BaseUnits = Annotated[float, number(gt=0, unit="base units")]


@dataclass(frozen=True, slots=True)
class WhaleParams(TraderParams):
    deposit_usdc: Usdc = 50_000_000.0
    wake: WakeMode = "none"  # the whale keeps its own clock (start_s, slices, checks)
    execution: Execution = "market"
    side: Literal["buy", "sell", "auto"] = "sell"  # "auto" (the side with more to liquidate): hunt only
    size: BaseUnits = 10.0  # base units; for hunt the budget
    start_s: Seconds = 60.0
    slippage_bps: Optional[Bps] = None  # market: bound from the mid (None: none)
    remainder: Remainder = "report"  # market: "report" what the book could not absorb, or "work" it every slice_s
    slice_s: PositiveSeconds = 30.0  # twap slice period; hunt and close step period
    duration_s: PositiveSeconds = 300.0  # twap length; iceberg and hunt give up after it
    max_slippage_bps: PositiveBps = 300.0  # per twap / hunt / close slice (3 %)
    display_size: BaseUnits = 1.0  # iceberg visible size, base units
    offset_bps: Annotated[float, number(gt=-10_000, lt=10_000, unit="basis points")] = 0.0  # iceberg: mid +- offset
    refill_check_s: PositiveSeconds = 1.0  # iceberg: how often the whale looks whether its visible part is gone
    reprice_bps: Optional[PositiveBps] = None  # iceberg: pull and re-show a part left this far from its price
    bucket_bps: PositiveBps = 25.0  # hunt histogram bucket width
    max_distance_pct: Annotated[float, number(gt=0, lt=100, unit="percent")] = 5.0  # hunt: liquidations this close
    hunt_slice_size: Optional[BaseUnits] = None  # base units per hunt slice; None: size / 10
    hunt_overshoot_bps: Bps = 50.0  # hunt slices do not sell (buy) more than this beyond the target
    leverage: Optional[Leverage] = None  # None: the market's default
    exit: Exit = "hold"
    take_profit_bps: PositiveBps = 100.0
    close_after_s: Seconds = 60.0

    def cross_checks(self) -> Iterator[Problem]:
        if self.side == "auto" and self.execution != "hunt":
            yield Problem("side", self.side, f"must be 'buy' or 'sell' for execution '{self.execution}' ('auto' is for hunt)")
        if self.execution == "twap" and self.duration_s < self.slice_s:
            yield Problem("duration_s", self.duration_s, f"must be >= slice_s ({self.slice_s}) for a twap")


class Whale(Trader):
    kind = "whale"
    role = "whale"  # what the metrics count it as (inherited by subclasses: abm.model.role_of)
    Params = WhaleParams
    p: WhaleParams

    def __init__(self, model: Any, rng: Any, params: WhaleParams, ctx: Any = None) -> None:
        super().__init__(model, rng, params, ctx)
        p = params
        ctx = self.ctx
        spec = ctx.spec(self.symbol)
        self.tick = float(spec.tick_size)
        self.lot = float(spec.lot_size)
        self.lots = self._to_lots("size", p.size)
        self.display_lots = self._to_lots("display_size", p.display_size) if p.execution == "iceberg" else 0
        self.hunt_slice_lots = (self._to_lots("hunt_slice_size", p.hunt_slice_size) if p.hunt_slice_size is not None
                                else max(1, self.lots // 10))
        if ctx.margined:  # a spot venue has no margin mode
            ctx.set_margin_mode(self.symbol, "cross")
        if p.leverage is not None:
            try:
                ctx.set_leverage(self.symbol, p.leverage)
            except InvalidInput as e:
                raise InvalidInput(f"agents.{self.kind}.leverage", p.leverage, e.allowed) from None
        self.side: Optional[int] = None if p.side == "auto" else (BUY if p.side == "buy" else SELL)
        self.start_us = int(round(p.start_s * US_PER_S))
        self.end_us = self.start_us + int(round(p.duration_s * US_PER_S))
        self.slice_us = max(1, int(round(p.slice_s * US_PER_S)))
        self.state = "waiting"  # waiting, working, done, closing, closed
        self.size0 = 0  # position when the flow started
        self.sent_lots = 0  # lots filled plus lots in orders still on their way (market, twap, hunt)
        self.filled_lots = 0  # lots the flow's own market orders filled (market, twap, hunt)
        self.short_orders = 0  # of those orders, how many filled less than they asked
        self.in_flight = 0  # orders sent that have not reached the exchange yet
        self.orders: list[dict[str, Any]] = []  # one record per order that reached the exchange
        self.slices_planned: list[int] = []  # twap: slice sizes
        self.iceberg_price: Optional[int] = None  # price of the latest visible part
        self.iceberg_shown = 0  # visible parts placed
        self.iceberg_pulls = 0  # visible parts pulled to be re-shown at a new price
        self.hunt_target: Optional[int] = None  # ticks: the cluster's farthest liquidation price
        self.hunt_cluster: Optional[dict[str, Any]] = None
        self.hunt_scans = 0
        self.hunt_reached = False
        self.done_us: Optional[int] = None
        self._stop_why = ""  # why an iceberg or a hunt stopped before its size was filled
        self._settled = False  # the flow's outcome (and any shortfall) is recorded
        self.flow_refusals = 0  # the flow's orders the exchange refused (e.g. margin)
        self._flow_refused: Optional[AbmError] = None
        self.closed_us: Optional[int] = None

    def _to_lots(self, name: str, base: float) -> int:
        lots = int(round(base / self.lot))
        if lots < 1:
            raise InvalidInput(f"agents.{self.kind}.{name}", base, f"must be at least one lot ({self.lot} base units)")
        return lots

    # ------------------------------------------------------------------ clock

    def start(self) -> None:
        """Schedule the flow's start; the whale has no other wakes until then."""
        self.wake_at(max(self.start_us, self.now), self._begin)

    def _begin(self, t: int) -> None:
        if not self.active:
            return
        p = self.p
        self.state = "working"
        self.size0 = self.position().size
        if p.execution == "market":
            self._market_step(t)
        elif p.execution == "twap":
            n = max(1, int(p.duration_s // p.slice_s))
            base, extra = divmod(self.lots, n)
            self.slices_planned = [base + (1 if i < extra else 0) for i in range(n)]
            self.slices_planned = [q for q in self.slices_planned if q > 0]
            self._twap_slice(t, 0)
        elif p.execution == "iceberg":
            self._iceberg_check(t)
        else:
            self._hunt_step(t)

    # ------------------------------------------------------------------ helpers

    def _mid(self) -> Optional[float]:
        v = self.view()
        m = v.mid()
        if m is not None:
            return m
        one = v.best_bid()
        if one is None:
            one = v.best_ask()
        return float(one) if one is not None else None

    def executed_lots(self) -> int:
        """Lots the flow has moved the position by, in its own direction."""
        d = self.position().size - self.size0
        return d if self.side == BUY else -d

    def children(self, qty: int) -> list[int]:
        """``qty`` lots as the market orders the venue takes (``abm.agents.limits.market_children``): ``[qty]``, or
        with a maximum market-order value ``n = ceil(qty / most)`` sizes differing by at most one lot, ``most`` = the
        lots worth at most the limit at the mark (the venue values a market order at the mark)."""
        return market_children(self.ctx, self.symbol, qty)

    def _send(self, side: int, qty: int, tag: str, slippage_bps: Optional[float] = None,
              reduce_only: bool = False, limit: Optional[int] = None) -> None:
        """A market order (or its children, within the venue's maximum market-order value) delivered after latency;
        each result is logged with the mid it met on arrival.

        ``limit`` (ticks) is a further bound: the order takes nothing beyond it nor beyond ``slippage_bps``.
        """
        for q in self.children(qty):
            self._send_one(side, q, tag, slippage_bps, reduce_only, limit)

    def _send_one(self, side: int, qty: int, tag: str, slippage_bps: Optional[float], reduce_only: bool,
                  limit: Optional[int]) -> None:
        self.in_flight += 1
        self.sent_lots += 0 if reduce_only else qty
        sent = self.now
        met: list[Optional[float]] = []  # the mid the order met on arrival, before it traded

        def arrive(t: int) -> None:
            met.append(self.view().mid())

        def done(res: Any, error: Optional[AbmError]) -> None:
            self.in_flight -= 1
            if error is not None:
                if not reduce_only:  # a refused flow order spent nothing
                    self.sent_lots -= qty
                if (isinstance(error, OrderLimitViolation) and error.field == "max_market_order_value"
                        and len(self.children(qty)) > 1):  # the mark rose since it was split: split it again now
                    self._send(side, qty, tag, slippage_bps, reduce_only, limit)
                    return
                if not reduce_only:
                    self.flow_refusals += 1
                    self._flow_refused = error
                return
            if not reduce_only:
                self.sent_lots -= qty - res.filled  # what did not fill is not spent
                self.filled_lots += res.filled
                self.short_orders += res.filled < qty
            self.orders.append({"tag": tag, "sent_us": sent, "arrived_us": self.now, "side": side, "qty": qty,
                                "filled": res.filled, "oid": res.oid, "avg_price": res.avg_price, "mid": met[0],
                                "slippage_bps": slippage_bps})

        # with ``limit`` the order takes nothing beyond it nor beyond slippage_bps from the mid at arrival
        self.market(side, qty, worst_price=limit, slippage_bps=slippage_bps, reduce_only=reduce_only,
                    on_done=done, on_arrive=arrive)

    def _finish(self, t: int, why: str = "") -> None:
        """The flow is complete (or given up, ``why``): arrange the exit; the outcome is settled once all has landed."""
        if self.state != "working":
            return
        self.state = "done"
        self.done_us = t
        self._stop_why = why
        self._settle()
        p = self.p
        if p.exit == "close_after":
            self.wake_in(max(1, int(round(p.close_after_s * US_PER_S))) + self._latency_pad(), self._close_step)
        elif p.exit == "take_profit":
            self.wake_in(self._latency_pad(), self._arm_take_profit)

    def _settle(self) -> None:
        """Once the flow has stopped and its last order has landed: record what it did not fill."""
        if self._settled or self.state == "working" or self.in_flight:
            return
        self._settled = True
        p = self.p
        filled = self.executed_lots() if p.execution == "iceberg" else self.filled_lots
        if filled >= self.lots or self.hunt_reached:
            return
        side = p.side if self.side is None else ("buy" if self.side == BUY else "sell")
        why = self._shortfall_why()
        if self._flow_refused is not None:
            why += f"; {self.flow_refusals} of its orders were refused (last: {self._flow_refused})"
        self.record_shortfall(f"{p.execution} {side}", self.lots, filled, why)

    def _shortfall_why(self) -> str:
        p = self.p
        if p.execution == "market":
            why = (f"no more liquidity within slippage_bps={p.slippage_bps:g} of the mid" if p.slippage_bps is not None
                   else "the book's opposite side ran out")
            if p.remainder == "work":
                return f"{why} at each of {len(self.orders)} orders, {p.slice_s:g} s apart over duration_s={p.duration_s:g}"
            return f"{why}; the rest was cancelled (remainder='report')"
        if p.execution == "twap":
            return (f"{self.short_orders} of {len(self.slices_planned)} slices came up short at "
                    f"max_slippage_bps={p.max_slippage_bps:g}; their remainders were dropped")
        return self._stop_why

    def on_result(self, action: str, result: Any) -> None:
        self._settle()

    def _latency_pad(self) -> int:
        """Enough time for orders already sent to have landed."""
        return self.latency.max_us + 1

    # ------------------------------------------------------------------ market

    def _market_step(self, t: int) -> None:
        """A market order for what is left; with remainder="work" another every slice_s until filled or duration_s."""
        if not self.active or self.state != "working":
            return
        p = self.p
        if not self.in_flight:
            left = self.lots - self.filled_lots
            if left <= 0 or t >= self.end_us:
                self._finish(t)
                return
            self._send(self.side, left, slippage_bps=p.slippage_bps, tag="market")  # type: ignore[arg-type]
            if p.remainder == "report":
                self._finish(t)  # what the one order leaves is recorded when it lands
                return
        self.wake_in(self.slice_us, self._market_step)

    # ------------------------------------------------------------------ twap

    def _twap_slice(self, t: int, i: int) -> None:
        if not self.active or self.state != "working":
            return
        self._send(self.side, self.slices_planned[i], slippage_bps=self.p.max_slippage_bps, tag="twap")  # type: ignore[arg-type]
        if i + 1 < len(self.slices_planned):
            self.wake_at(self.start_us + (i + 1) * self.slice_us, lambda tt: self._twap_slice(tt, i + 1))
        else:
            self._finish(t)

    # ------------------------------------------------------------------ iceberg

    def _iceberg_check(self, t: int) -> None:
        if not self.active or self.state != "working":
            return
        if t >= self.end_us:
            self._pull(reshow=False)  # counted in flight: the outcome is settled once the cancel has landed
            self._finish(t, f"gave up after duration_s={self.p.duration_s:g} s with the rest not filled")
            return
        visible = self.n_open_orders()
        if not self.in_flight:
            price = self._iceberg_level()
            if not visible:
                left = self.lots - self.executed_lots()
                if left <= 0:
                    self._finish(t)
                    return
                if price is not None:  # no book at all: look again at the next check
                    self.iceberg_price = price
                    self._show(min(self.display_lots, left), price)
            elif (self.p.reprice_bps is not None and price is not None and self.iceberg_price is not None
                  and abs(price - self.iceberg_price) > self.iceberg_price * self.p.reprice_bps / 10_000):
                self._pull()  # the market left the visible part behind: re-show it at the new level
        self.wake_in(int(round(self.p.refill_check_s * US_PER_S)), self._iceberg_check)

    def _iceberg_level(self) -> Optional[int]:
        mid = self._mid()
        if mid is None:
            return None
        f = self.p.offset_bps / 10_000
        price = mid * (1 + f) if self.side == SELL else mid * (1 - f)
        return max(1, math.ceil(price) if self.side == SELL else math.floor(price))

    def _pull(self, reshow: bool = True) -> None:
        """Cancel the visible part; nothing new is shown until the cancel has landed."""
        self.in_flight += 1
        self.iceberg_pulls += reshow
        self.cancel_all(self.symbol, on_done=self._landed)

    def _show(self, qty: int, price: int) -> None:
        side = self.side
        assert side is not None  # only "hunt" may start without a side
        self.in_flight += 1
        self.iceberg_shown += 1
        self.limit(side, qty, price, on_done=self._landed)

    def _landed(self, res: Any, error: Optional[AbmError]) -> None:
        self.in_flight -= 1

    # ------------------------------------------------------------------ hunt

    def liquidation_clusters(self) -> dict[str, Any]:
        """Histogram of visible liquidation notional near the mark: {"long": {bucket: [notional, farthest]}, "short": ...}.

        Bucket k of longs covers liquidation prices (k, k+1] x bucket_bps below the mark; shorts' above.
        Notional is |size| x liquidation price in quote units; ``farthest`` the liquidation price (ticks) a
        mark must reach to liquidate the whole bucket.
        """
        p = self.p
        mark = self.mark()
        out: dict[str, dict[int, list[Any]]] = {"long": {}, "short": {}}
        if mark is None:
            return out
        mult = self.ctx.multiplier(self.symbol)
        max_d = p.max_distance_pct / 100
        for size, lp in self.ctx.liquidation_levels(self.symbol):
            d = (lp - mark) / mark
            if size > 0 and lp < mark and -d <= max_d:
                side, far = "long", min
            elif size < 0 and lp > mark and d <= max_d:
                side, far = "short", max
            else:
                continue
            k = int(abs(float(d)) * 10_000 // p.bucket_bps)
            b = out[side].setdefault(k, [0, lp])
            b[0] += int(abs(size) * mult * lp)
            b[1] = far(b[1], lp)
        return out

    def _pick_cluster(self) -> Optional[dict[str, Any]]:
        hist = self.liquidation_clusters()
        best: Optional[tuple[int, int, str]] = None  # (notional, -bucket, side)
        sides = ["long", "short"] if self.side is None else (["long"] if self.side == SELL else ["short"])
        for s in sides:
            for k, (notional, _) in hist[s].items():
                key = (notional, -k, s)
                if best is None or key[:2] > best[:2]:
                    best = key
        if best is None:
            return None
        notional, negk, s = best
        far = hist[s][-negk][1]
        target = math.floor(far) if s == "long" else math.ceil(far)
        return {"side": s, "bucket": -negk, "notional": notional, "target": target}

    def _hunt_step(self, t: int) -> None:
        if not self.active or self.state != "working":
            return
        if t >= self.end_us:
            self._finish(t, f"gave up after duration_s={self.p.duration_s:g} s: "
                         + ("no liquidation cluster within max_distance_pct" if self.hunt_target is None
                            else f"the mark had not reached the target {self.hunt_target} ticks"))
            return
        if self.hunt_target is None:
            self.hunt_scans += 1
            c = self._pick_cluster()
            if c is None:
                self.wake_in(self.slice_us, self._hunt_step)
                return
            self.hunt_cluster = c
            self.hunt_target = c["target"]
            self.side = SELL if c["side"] == "long" else BUY
        mark = self.mark()
        reached = mark is not None and (mark <= self.hunt_target if self.side == SELL else mark >= self.hunt_target)
        left = self.lots - self.sent_lots
        if reached or left <= 0:
            self.hunt_reached = reached
            self._finish(t, "" if reached else "the budget was sent but its last slices came up short at their bounds")
            return
        side = self.side
        assert side is not None  # set with the target
        f = self.hunt_target * self.p.hunt_overshoot_bps / 10_000
        floor = math.ceil(self.hunt_target - f) if side == SELL else math.floor(self.hunt_target + f)
        self._send(side, min(self.hunt_slice_lots, left), slippage_bps=self.p.max_slippage_bps, tag="hunt",
                   limit=max(1, floor))
        self.wake_in(self.slice_us, self._hunt_step)

    # ------------------------------------------------------------------ exit

    def _arm_take_profit(self, t: int) -> None:
        pos = self.position()
        if not pos.size or pos.entry_price is None:
            self.state = "closed"
            return
        f = Fraction(self.p.take_profit_bps) / 10_000
        if pos.size < 0:
            self.watch_price(low=math.floor(pos.entry_price * (1 - f)))
        else:
            self.watch_price(high=math.ceil(pos.entry_price * (1 + f)))

    def on_price(self, t: int, symbol: str, mark: int) -> None:
        """The take-profit level was reached: start closing."""
        if self.state == "done":
            self._close_step(t)

    def _close_step(self, t: int) -> None:
        if not self.active:
            return
        size = self.position().size
        if not size:
            self.state = "closed"
            self.closed_us = t
            return
        self.state = "closing"
        if not self.in_flight:
            self._send(BUY if size < 0 else SELL, abs(size), slippage_bps=self.p.max_slippage_bps, tag="close",
                       reduce_only=True)
        self.wake_in(self.slice_us, self._close_step)

    def on_reject(self, action: str, error: AbmError) -> None:
        """Refused orders (e.g. nothing left to reduce, a margin shortfall) are counted; the flow goes on."""
        self._settle()


__all__ = ["Whale", "WhaleParams"]
