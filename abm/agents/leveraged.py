"""Leveraged directional traders: the crowd whose forced selling (or buying) makes a cascade.

Each trader picks, once at construction, a margin mode (cross, isolated, or a per-agent draw between
them) and a leverage drawn from a heavy-tailed distribution (a Pareto law truncated to
``[leverage_min, leverage_max]``, 2x to the market's tier maximum by default), rounded to an integer (a
fixed ``leverage`` or a ``leverage_max`` above that maximum is refused, not capped): surveys of retail
derivatives flow show most accounts at modest leverage
and a thin tail at the venue's limit, and it is that tail that is liquidated first.

When flat, it enters on a signal: ``trend`` (the mark above / below its own EMA of the mark by
``threshold_bps``), ``contrarian`` (the opposite), ``random`` (a coin flip with ``long_prob``) or a
fixed bias (``long`` / ``short``: e.g. a leveraged long crowd entering near the start of a scenario,
with ``entry_delay_s`` drawing each agent's first look uniformly in a window). Its position is
``size_fraction`` of its equity times its leverage at the mark, sent as a market order bounded by
``slippage_bps`` from the mid.

While in a position it holds until one of: a stop-loss or take-profit on the mark (price triggers
registered with ``watch_price``, so they cost nothing until the mark gets there; ``stop_round_usdc`` moves
the stop to the nearest round number, where real stops cluster; executed as
reduce-only market orders bounded by ``exit_slippage_bps``, 10% by default as on Hyperliquid), the
funding rate against it above ``funding_exit_bps`` per hour (predicted funding at its wakes, the rate
just paid at each payment; it does not enter against such a rate either), the signal reversing
(``exit_on_signal``, trend and contrarian only), or ``hold_s`` elapsed. With ``stop_on_exchange`` the
stop-loss is a stop-market TP/SL of the position held by the venue (``abm.exchange.triggers``): it fires
at the mark update that crosses it, not after the agent's latency, and its fills are the agent's own
exit (read back before any change of position is judged forced); a stop the venue refuses is watched
as before. An entry that fills nothing is
retried ``entry_retries`` times ``retry_s`` apart; an exit that does not complete (or is refused) is
retried until flat. Nothing it gives up goes unrecorded (``shortfalls``): an entry that filled only
part of its size (it does not top up), an entry still unfilled after its retries, and an exit whose
rest the venue took away (a liquidation or an ADL close came first).

It cannot see the liquidation engine, so it infers a liquidation the way a trader does: its position
shrank or vanished without an order of its own (the only orders it sends are immediate market
orders, so every change it caused arrives in ``on_result``) while it was losing money. A forced close
in profit is an auto-deleveraging counterparty close, treated as an ordinary exit. The liquidation
level is one of its price triggers, so it notices at the mark update that liquidated it. After a
liquidation, ``reentry = "none"`` retires it (its capital is gone); ``"reenter"`` trades again after
``reentry_cooldown_s`` with whatever is left, if that is at least ``reentry_min_usdc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil, exp, floor
from typing import TYPE_CHECKING, Annotated, Any, Iterator, Literal, Optional

import numpy as np

from abm.agents.base import Trader, TraderParams
from abm.agents.leashes import round_level, round_ticks
from abm.agents.limits import limit_text, market_most, position_room
from abm.agents.params import Bps, Leverage, PositiveSeconds, Probability, Seconds, Usdc, number
from abm.config import Problem
from abm.errors import AbmError, InvalidInput, OrderLimitViolation
from abm.units import BUY, SELL, US_PER_S, USDC

if TYPE_CHECKING:
    from abm.model.model import MarketModel


MarginMode = Literal["cross", "isolated", "mixed"]
Signal = Literal["trend", "contrarian", "random", "long", "short"]
Percent = Annotated[float, number(gt=0, unit="percent move of the mark")]


def pareto_truncated(rng: np.random.Generator, alpha: float, low: float, high: float, n: Optional[int] = None) -> Any:
    """Draws of a Pareto law with exponent ``alpha`` truncated to ``[low, high]``, by inverting its CDF.

    CDF: F(x) = (1 - (low/x)^alpha) / (1 - (low/high)^alpha). Inversion (one uniform per draw) keeps the
    agent's stream use fixed, whatever the parameters. ``low == high`` gives ``low``.
    """
    u = rng.random() if n is None else rng.random(n)
    if high <= low:
        return low if n is None else np.full(n, float(low))
    span = 1.0 - (low / high) ** alpha
    return low * (1.0 - u * span) ** (-1.0 / alpha)


def pareto_quantile(q: float, alpha: float, low: float, high: float) -> float:
    """The ``q`` quantile of ``pareto_truncated`` (e.g. its median at 0.5), for checks and calibration."""
    span = 1.0 - (low / high) ** alpha
    return low * (1.0 - q * span) ** (-1.0 / alpha)


@dataclass(frozen=True, slots=True)
class LeveragedParams(TraderParams):
    # account set-up
    margin_mode: MarginMode = "cross"  # "mixed": isolated with probability isolated_prob
    isolated_prob: Probability = 0.5
    leverage: Optional[Leverage] = None  # a fixed leverage; None: drawn from leverage_dist
    leverage_dist: Literal["pareto", "uniform"] = "pareto"  # truncated power law or uniform on [min, max]
    leverage_min: Annotated[float, number(ge=1)] = 2.0
    leverage_max: Optional[Annotated[float, number(ge=1)]] = None  # None: the venue's maximum for the market (above it is refused)
    leverage_alpha: Annotated[float, number(gt=0, unit="the Pareto exponent")] = 1.0  # smaller: heavier tail
    # entry
    signal: Signal = "trend"
    ema_s: PositiveSeconds = 300.0  # EMA window of the mark for trend / contrarian
    threshold_bps: Annotated[float, number(ge=0, unit="basis points")] = 10.0  # mark's distance from its EMA
    long_prob: Probability = 0.5  # probability of a long for signal "random"
    # share of equity used as initial margin (notional = this x equity x leverage)
    size_fraction: Annotated[float, number(gt=0, le=1, unit="share of equity as margin")] = 0.5
    slippage_bps: Bps = 100.0  # entry market orders: worst price this far from the mid
    entry_delay_s: Optional[Seconds] = None  # first look uniform in [entry_delay_min_s, this]; None: wake clock
    entry_delay_min_s: Seconds = 0.0
    entry_retries: Annotated[int, number(ge=0)] = 3  # an entry that fills nothing is retried this many times ...
    retry_s: PositiveSeconds = 5.0  # ... this many seconds apart (also the retry gap of an unfinished exit)
    # exits
    stop_loss_pct: Optional[Annotated[float, number(gt=0, lt=100, unit="percent move of the mark")]] = None
    take_profit_pct: Optional[Percent] = None  # favourable mark move from the entry price; None: none
    exit_slippage_bps: Bps = 1000.0  # stop / take-profit / other exits: reduce-only market orders, 10% bound
    stop_on_exchange: bool = False  # the stop-loss as a venue-held stop-market of the position, not a level it watches
    # stops clustered at round numbers (a whole number of ticks); None: where stop_loss_pct puts it
    stop_round_usdc: Optional[Annotated[float, number(gt=0, unit="quote currency")]] = None  # stop at the nearest multiple
    # exit (and don't enter) when funding against it exceeds this; None: never
    funding_exit_bps: Optional[Annotated[float, number(ge=0, unit="bps of notional per hour")]] = 2.0
    exit_on_signal: bool = True  # trend / contrarian: close when the signal points the other way
    hold_s: Optional[PositiveSeconds] = None  # close after holding this long; None: no time limit
    # after a liquidation
    reentry: Literal["none", "reenter"] = "none"  # retire, or trade again after the cooldown with what is left
    reentry_cooldown_s: Seconds = 600.0
    reentry_min_usdc: Usdc = 100.0  # equity needed to (re-)enter; below it the agent retires

    def cross_checks(self) -> Iterator[Problem]:
        if self.leverage_max is not None and not self.leverage_max >= self.leverage_min:
            yield Problem("leverage_max", self.leverage_max, f"must be a number >= leverage_min ({self.leverage_min})")
        d = self.entry_delay_s
        if d is not None and not d >= self.entry_delay_min_s:
            yield Problem("entry_delay_s", d, f"must be None or a number >= entry_delay_min_s ({self.entry_delay_min_s})")


class LeveragedTrader(Trader):
    """A directional trader at (often high) leverage with stops, funding awareness and re-entry rules."""

    kind = "leveraged"
    role = "leveraged"  # what the metrics count it as (inherited by subclasses: abm.model.role_of)
    initial_position = True  # a position booked before the run is managed as if it had entered it
    Params = LeveragedParams
    p: LeveragedParams

    def __init__(self, model: MarketModel, rng: np.random.Generator, params: LeveragedParams, ctx: Any = None) -> None:
        super().__init__(model, rng, params, ctx)
        p = params
        ctx = self.ctx
        self._mult = ctx.multiplier(self.symbol)
        self.venue_max_leverage = top = ctx.max_leverage(self.symbol)
        if p.leverage is not None and p.leverage > top:  # refused, not capped: the scenario asked for that leverage
            raise InvalidInput(f"agents.{self.kind}.leverage", p.leverage,
                               f"must be <= {top} (the venue's maximum for {self.symbol})")
        hi = float(top) if p.leverage_max is None else p.leverage_max
        if hi > top:
            raise InvalidInput(f"agents.{self.kind}.leverage_max", p.leverage_max,
                               f"must be <= {top} (the venue's maximum for {self.symbol}; it is refused, not capped)")
        if p.leverage is None and p.leverage_min > hi:
            raise InvalidInput(f"agents.{self.kind}.leverage_min", p.leverage_min,
                               f"must be <= {hi:g} (the venue's maximum for {self.symbol})")
        # Construction draws (mode, leverage, first look) come in a fixed order from the agent's own stream.
        iso = p.margin_mode == "isolated" or (p.margin_mode == "mixed" and self.rng.random() < p.isolated_prob)
        if p.leverage is not None:
            raw = float(p.leverage)
        elif p.leverage_dist == "pareto":
            raw = float(pareto_truncated(self.rng, p.leverage_alpha, p.leverage_min, hi))
        else:
            raw = float(self.rng.uniform(p.leverage_min, hi))
        self.leverage_raw = raw
        self.leverage = max(1, int(round(raw)))  # raw <= hi <= top, an integer: never above the venue's maximum
        self.margin_mode = "isolated" if iso else "cross"
        ctx.set_margin_mode(self.symbol, self.margin_mode)
        ctx.set_leverage(self.symbol, self.leverage)
        self._round_ticks: Optional[int] = None if p.stop_round_usdc is None else \
            round_ticks(ctx, self.symbol, p.stop_round_usdc, f"agents.{self.kind}.stop_round_usdc")
        self._first_delay_us: Optional[int] = None
        if p.entry_delay_s is not None:
            lo, hi = p.entry_delay_min_s, p.entry_delay_s
            self._first_delay_us = max(1, int(round((lo + (hi - lo) * self.rng.random()) * US_PER_S)))
        # state
        self._held = 0  # signed lots its own fills account for; the exchange's size differs only if forced
        self._pending: Optional[tuple[int, str, int]] = None  # (side, reason, lots) of the order in flight
        self._chunked = False  # the exit in flight is one child of a split (the venue's maximum market-order value)
        self._exit_run: Optional[list[Any]] = None  # the exit being worked: [what, lots to close, lots its orders closed]
        self._forced_why = ""  # what the venue did to the position last (for an exit it cut short)
        self._entry_price: Optional[Fraction] = None  # ticks
        self._entry_t = 0
        self._entry_equity = 0
        self._stop: Optional[int] = None  # ticks
        self._take: Optional[int] = None
        self._armed: Optional[tuple[Optional[int], Optional[int]]] = None
        self._exiting: Optional[str] = None  # an exit that has not completed yet: keep at it
        self._ex_stop: Optional[int] = None  # the venue-held stop (stop_on_exchange): its id, -1 while in flight
        self._fails = 0  # consecutive entries that filled nothing
        self._liquidating = False  # the venue is taking the current position away
        self._ema: Optional[float] = None
        self._ema_t = 0
        self._cooldown_until = 0
        self._last_payment_t: Optional[int] = None
        self.liquidations = 0
        self.liq_price_at_entry: Optional[Fraction] = None  # ticks, as the exchange computed it after the last entry
        self.history: list[tuple[int, str, int, int]] = []  # (time_us, event, signed lots, price ticks or 0)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """The first look comes at the entry delay (a crowd entering in a window) or on the wake clock."""
        if self._first_delay_us is not None:
            self.wake_at(self.now + self._first_delay_us, self._scheduled_wake)
        else:
            super().start()
        if self.p.funding_exit_bps is not None:
            self.watch_funding()

    @property
    def in_position(self) -> bool:
        return self._held != 0

    def on_wake(self, t: int) -> None:
        if not self.active:
            return
        mark = self.mark()
        if mark is None:
            return
        self._update_ema(t, mark)
        self._reconcile(t)
        if not self.active or self._pending is not None:
            return
        if self._held:
            if self._liquidating:
                self._arm()  # the venue is closing it; nothing to decide
                return
            reason = self._exiting or self._exit_reason(t, mark)
            if reason is not None:
                self._exit(reason)
            else:
                self._arm()
            return
        self._try_enter(t, mark)

    def on_price(self, t: int, symbol: str, mark: int) -> None:
        self._armed = None  # a fired trigger is spent (both of its sides)
        self.on_wake(t)

    def on_funding(self, t: int, symbol: str, rate: Fraction) -> None:
        """Right after a payment the prediction restarts from nothing, so judge by the rate just paid."""
        if symbol != self.symbol:
            return
        last, self._last_payment_t = self._last_payment_t, t
        if not self.active:
            return
        self._reconcile(t)
        if not self.active or self._pending is not None or not self._held or self._liquidating:
            return
        interval = t - last if last is not None else self.funding_interval_us()
        if self._funding_against(rate, interval, self._held > 0):
            self._exit("funding")

    def on_initial_position(self, symbol: str, leverage: Optional[int], margin_mode: Optional[str]) -> None:
        """As if it had entered at the booked entry price at t = 0: its exit rules (stop, take-profit, funding,
        signal, hold) and liquidation watch apply from now. It does not enter again while it holds it; once flat it
        trades as its parameters say (a ``long`` crowd re-enters on a later wake, as after any exit)."""
        if symbol != self.symbol:
            return
        if leverage is not None:
            self.leverage = leverage
            self.leverage_raw = float(leverage)
        if margin_mode is not None:
            self.margin_mode = margin_mode
        size = self.position().size
        if not size:
            return
        self._held = size
        self.history.append((self.now, "initial", size, int(round(self.position().entry_price or 0))))
        self._on_entry_fill()
        self._arm()

    # ------------------------------------------------------------------ decisions

    def _update_ema(self, t: int, mark: int) -> None:
        """An EMA of the mark sampled at its own wakes, weighted by the time since the last one."""
        if self._ema is None:
            self._ema = float(mark)
        else:
            w = 1.0 - exp(-(t - self._ema_t) / (self.p.ema_s * US_PER_S))
            self._ema += w * (mark - self._ema)
        self._ema_t = t

    def _signal(self, mark: int) -> Optional[int]:
        sig = self.p.signal
        if sig == "long":
            return BUY
        if sig == "short":
            return SELL
        if sig == "random":
            return BUY if self.uniform() < self.p.long_prob else SELL
        ema = self._ema
        if ema is None or ema <= 0:
            return None
        dev = (mark - ema) / ema * 10_000
        thr = self.p.threshold_bps
        if dev > thr:
            side = BUY
        elif dev < -thr:
            side = SELL
        else:
            return None
        return side if sig == "trend" else 1 - side

    def _funding_against(self, rate: Fraction, interval_us: int, long: bool) -> bool:
        """Whether ``rate`` (paid over ``interval_us``) costs this side more than the threshold per hour.

        Per hour, so one threshold means the same on an hourly venue and on an 8-hourly one.
        """
        thr = self.p.funding_exit_bps
        if thr is None or interval_us <= 0:
            return False
        against = rate if long else -rate
        return against * 10_000 * 3_600 * US_PER_S / interval_us > Fraction(repr(float(thr)))

    def _predicted_against(self, long: bool) -> bool:
        if self.p.funding_exit_bps is None:
            return False
        return self._funding_against(self.predicted_funding(), self.funding_interval_us(), long)

    def _exit_reason(self, t: int, mark: int) -> Optional[str]:
        long = self._held > 0
        if self._stop is not None and self._ex_stop is None and (mark <= self._stop if long else mark >= self._stop):
            return "stop"
        if self._take is not None and (mark >= self._take if long else mark <= self._take):
            return "take_profit"
        if self._predicted_against(long):
            return "funding"
        if self.p.hold_s is not None and t - self._entry_t >= self.p.hold_s * US_PER_S:
            return "hold"
        if self.p.exit_on_signal and self.p.signal in ("trend", "contrarian"):
            s = self._signal(mark)
            if s is not None and s != (BUY if long else SELL):
                return "signal"
        return None

    def _try_enter(self, t: int, mark: int) -> None:
        if t < self._cooldown_until:
            return
        side = self._signal(mark)  # cheap, and most wakes end here
        if side is None or self._predicted_against(side == BUY):
            return
        equity = self.equity()
        if equity < self.p.reentry_min_usdc * USDC:
            self._retire(t, "broke")
            return
        ref = mark
        if side == BUY:
            ask = self.view().best_ask()
            if ask is not None and ask > ref:
                ref = ask
        notional = Fraction(repr(self.p.size_fraction)) * equity * self.leverage
        qty = floor(notional / (ref * self._mult))
        if qty < 1:
            return
        qty = self._within_limits(side, qty, mark)
        if qty < 1:
            return
        self._pending = (side, "entry", qty)
        self.market(side, qty, slippage_bps=self.p.slippage_bps)

    def _within_limits(self, side: int, qty: int, mark: int) -> int:
        """An entry sized down to the venue's limits (one order: it decides a size, and what it gives up is recorded):
        the lots one market order may carry (``max_market_order_value``) and the room under the bracket's
        ``max_position_notional``, both at the mark, as the venue values a market order."""
        fits, limit = qty, ""
        most = market_most(self.ctx, self.symbol)
        if most is not None and most < fits:
            fits, limit = most, "max_market_order_value"
        room = position_room(self.ctx, self.symbol, side, mark)
        if room is not None and room < fits:
            fits, limit = room, "max_position_notional"
        if fits < qty:  # requested qty, sent what fits (the order sent may fall short again, recorded as any entry)
            self.record_shortfall(self._entry_what(side), qty, max(fits, 0), f"sized down to {max(fits, 0)} lots to "
                                  f"stay within {limit_text(self.ctx, self.symbol, limit)}")
        return fits

    def _exit(self, reason: str) -> None:
        size = self.position().size
        if not size:
            return
        side = SELL if size > 0 else BUY
        first = self._exit_run is None
        if first:
            self._exit_run = [f"market {'sell' if side == SELL else 'buy'} (exit: {reason})", abs(size), 0]
        qty = abs(size)
        most = market_most(self.ctx, self.symbol)
        self._chunked = most is not None and 0 < most < qty  # an exit worth more than one market order may be
        if self._chunked:
            qty = most  # type: ignore[assignment]  # its children go one after another, each at once after the last
            self.limit_splits += first
        self._pending = (side, reason, qty)
        self.market(side, qty, slippage_bps=self.p.exit_slippage_bps, reduce_only=True)

    # ------------------------------------------------------------------ what came back

    def on_result(self, action: str, result: Any) -> None:
        if self._pending is None or action != "market":
            return
        side, reason, qty = self._pending
        self._pending = None
        filled = result.filled
        if reason == "entry":
            if filled:
                self._fails = 0
                if filled < qty:  # it does not top up: the rest is given up here
                    self.record_shortfall(self._entry_what(side), qty, filled,
                                          f"no more liquidity within slippage_bps={self.p.slippage_bps:g} of the mid")
            elif not self._entry_failed():
                self.record_shortfall(self._entry_what(side), qty, 0,
                                      f"nothing filled within slippage_bps={self.p.slippage_bps:g} in "
                                      f"{self.p.entry_retries + 1} attempts")
        elif self._exit_run is not None:
            self._exit_run[2] += filled
        if filled:
            dq = filled if side == BUY else -filled
            self._held += dq
            price = int(round(result.avg_price))
            self.history.append((self.now, "entry" if reason == "entry" else f"exit:{reason}", dq, price))
            if reason == "entry":
                self._on_entry_fill()
        self._reconcile(self.now)  # a forced change that came before this order arrived
        if not self.active:
            return
        if self._held:
            if reason != "entry":
                self._exiting = reason
                if self._chunked and filled == qty:  # a child of a split exit filled whole: the next one now
                    self._exit(reason)
                else:
                    self.wake_in(int(round(self.p.retry_s * US_PER_S)))  # the exit did not complete (thin book): again
            self._arm()
        else:
            self._clear_position()

    def on_reject(self, action: str, error: AbmError) -> None:
        """Refusals (not enough margin, a reduce-only order after a liquidation) end the attempt; it retries later."""
        if action == "stop" or action == "cancel_stop":
            return  # the venue-held stop's own callback handles it (_ex_stop_placed)
        pending, self._pending = self._pending, None
        if pending is None:
            return
        side, reason, qty = pending
        if (isinstance(error, OrderLimitViolation) and error.field == "max_market_order_value"
                and (market_most(self.ctx, self.symbol) or 0) >= 1):
            # the mark rose between sizing and arrival: size again at the mark now, at once (as the whale does)
            if reason != "entry":
                self._exit(reason)
            else:
                mark = self.mark()
                if mark is not None:
                    self._try_enter(self.now, mark)
            return
        if reason != "entry":
            self._exiting = reason  # an exit is kept at until flat (the next look reconciles a forced close first)
            self.wake_in(int(round(self.p.retry_s * US_PER_S)))
        elif not self._entry_failed():
            self.record_shortfall(self._entry_what(side), qty, 0,
                                  f"refused in {self.p.entry_retries + 1} attempts (last: {error})")

    def _entry_failed(self) -> bool:
        """An entry that got nothing (an empty book side, refused margin) is tried again a few times; False: given up."""
        self._fails += 1
        if self._fails <= self.p.entry_retries:
            self.wake_in(int(round(self.p.retry_s * US_PER_S)))
            return True
        return False

    @staticmethod
    def _entry_what(side: int) -> str:
        return f"market {'buy' if side == BUY else 'sell'} (entry)"

    def _end_exit_run(self) -> None:
        """The exit being worked is over: what its own orders did not close was taken by the venue."""
        run, self._exit_run = self._exit_run, None
        if run is not None and run[2] < run[1]:
            self.record_shortfall(run[0], run[1], run[2], self._forced_why or "the position was closed by the venue")

    def _on_entry_fill(self) -> None:
        pos = self.position()
        self._entry_price = pos.entry_price
        self._entry_t = self.now
        self._entry_equity = self.equity()
        e = pos.entry_price
        if e is None:
            return
        long = pos.size > 0
        sl, tp = self.p.stop_loss_pct, self.p.take_profit_pct
        k = Fraction(repr(float(sl))) / 100 if sl is not None else None
        self._stop = None if k is None else (floor(e * (1 - k)) if long else ceil(e * (1 + k)))
        if self._round_ticks is not None and self._stop is not None:
            self._stop = round_level(self._stop, self._round_ticks, long)
        j = Fraction(repr(float(tp))) / 100 if tp is not None else None
        self._take = None if j is None else (ceil(e * (1 + j)) if long else max(1, floor(e * (1 - j))))
        self.liq_price_at_entry = self.liquidation_price()
        if self.p.stop_on_exchange and self._stop is not None and self._ex_stop is None:
            self._ex_stop = -1
            self.ctx.submit_stop(self.symbol, SELL if long else BUY, None, self._stop, kind="stop", reduce_only=True,
                                 position=True, on_done=self._ex_stop_placed, on_trigger=self._ex_stop_event)

    # ------------------------------------------------------------------ the venue-held stop (stop_on_exchange)

    def _ex_stop_placed(self, tid: Optional[int], error: Optional[AbmError]) -> None:
        """The venue took the stop (it fires on its own from now) or refused it (e.g. the mark is already past
        it): then the agent watches the level itself, as without ``stop_on_exchange``."""
        if self._ex_stop != -1:
            return  # the position it was for is gone already
        if error is not None or tid is None:
            self._ex_stop = None
            if self._held and self.active:
                self._arm()
            return
        self._ex_stop = tid

    def _ex_stop_event(self, report: Any) -> None:
        """The venue fired, rejected or cancelled the stop. Its fills are the agent's own exit, never forced."""
        if report.tid != self._ex_stop:
            return  # already accounted for (read in _reconcile), or a stop of an earlier position
        self._ex_stop = None
        if report.status == "cancelled":  # the position closed some other way (the venue cancels its TP/SLs)
            return
        if report.filled:
            dq = report.filled if report.side == BUY else -report.filled
            self._held += dq
            self.history.append((self.now, "exit:stop", dq, int(round(Fraction(report.notional, report.filled)))))
        if not self.active:
            return
        self._reconcile(self.now)
        if not self.active:
            return
        if self._held:  # the 10% bound left a rest, or the venue refused it: close the rest itself
            self._exiting = "stop"
            if self._pending is None:
                self._exit("stop")
        else:
            self._clear_position()

    def _sync_ex_stop(self) -> None:
        """Before judging a change of position as forced: a stop the venue fired is the agent's own exit,
        whether or not its report has arrived yet."""
        tid = self._ex_stop
        if tid is not None and tid > 0:
            report = self.ctx.stop_report(tid)
            if report.status != "resting":
                self._ex_stop_event(report)

    @property
    def stop_price(self) -> Optional[int]:
        """The stop-loss level (ticks) of the open position, if it has one."""
        return self._stop

    @property
    def take_profit_price(self) -> Optional[int]:
        return self._take

    def _clear_position(self) -> None:
        self._end_exit_run()
        self._forced_why = ""
        self._entry_price = None
        self._exiting = None
        self._liquidating = False
        self._stop = self._take = None
        self._ex_stop = None  # the venue cancels a position's TP/SLs when it closes
        self._entry_equity = 0
        if self._armed is not None:
            self.watch_price(None, None)  # void the old trigger
            self._armed = None

    def _reconcile(self, t: int) -> None:
        """Compare the exchange's position with what its own fills explain: any gap was forced on it.

        A forced reduction while losing money is a liquidation (counted once per position, however many
        slices the venue takes it in); one in profit is an auto-deleveraging close against someone else.
        """
        if self._ex_stop is not None:
            self._sync_ex_stop()
        actual = self.position().size
        if actual == self._held:
            return
        forced = actual - self._held
        self._held = actual
        if self._liquidating or self.equity() < self._entry_equity:
            if not self._liquidating:
                self.liquidations += 1
                self._liquidating = True
            self._forced_why = "liquidated before the exit completed"
            self.history.append((t, "liquidated", forced, 0))
            if not actual:
                self._clear_position()
            self._after_liquidation(t)
        else:
            self._forced_why = "closed by the venue (auto-deleveraging) before the exit completed"
            self.history.append((t, "forced_close", forced, 0))
            if not actual:
                self._clear_position()
            else:
                self._arm()

    def _after_liquidation(self, t: int) -> None:
        if self.p.reentry == "none":
            self._retire(t, "retired")
            return
        if self._held:
            self._arm()  # still partly open (a sliced book liquidation): watch the rest go
            return
        self._cooldown_until = t + int(round(self.p.reentry_cooldown_s * US_PER_S))
        if self.equity() < self.p.reentry_min_usdc * USDC:
            self._retire(t, "broke")
            return
        self.wake_in(self._cooldown_until - t + 1)

    def _retire(self, t: int, why: str) -> None:
        self._end_exit_run()
        self.active = False
        self.history.append((t, why, 0, 0))

    def _arm(self) -> None:
        """One price trigger per position: stop or liquidation level on the adverse side, take-profit on the other."""
        size = self._held
        if not size:
            return
        liq = self.liquidation_price()
        long = size > 0
        stop = self._stop if self._ex_stop is None else None  # a venue-held stop needs no watching
        if long:
            liq_t = floor(liq) if liq is not None and liq > 0 else None
            adverse = max((x for x in (stop, liq_t) if x is not None), default=None)
            levels = (adverse, self._take)
        else:
            liq_t = ceil(liq) if liq is not None and liq > 0 else None
            adverse = min((x for x in (stop, liq_t) if x is not None), default=None)
            levels = (self._take, adverse)
        if levels != self._armed:
            self._armed = levels
            self.watch_price(levels[0], levels[1])


__all__ = ["LeveragedTrader", "LeveragedParams", "pareto_truncated", "pareto_quantile"]
