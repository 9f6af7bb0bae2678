"""A basis and funding arbitrageur: the force that ties the perp to the external index, with finite capital.

Why it exists: nothing inside a perp venue pulls its price to spot except funding, which is slow and
averaged. In practice arbitrageurs trade the perp against spot on other venues; how much capital they
have, what it costs them and how slowly they can move collateral decide how far the perp can drift
from the index under stress. This agent makes each of those explicit.

The two legs:

- Perp leg on the exchange (a cross-margin account holding ``deposit_usdc`` of collateral, leverage
  ``leverage``), traded with IOC limit orders whose limit is the worst price at which the trade still
  pays (the index plus or minus the costs), so the arbitrageur only takes liquidity that is profitable.
- Spot leg on an external venue that is NOT part of the exchange: the agent keeps ``spot_position``
  (base units) and ``spot_cash`` (USDC) itself. Spot trades execute at the external price
  (``AgentContext.index_price``: the model's index path now) plus (buy) or minus (sell) half of
  ``spot_spread_bps``, and pay ``spot_fee_bps`` on their value. The hedge trades at the moment the perp order lands, for exactly the
  filled size, and every wake re-hedges the spot leg to minus the perp position (e.g. after a
  liquidation took the perp leg away); a hedge the spot leg cannot follow is recorded as a
  shortfall. Buying spot needs spot cash (no spot margin). Selling spot
  beyond the inventory is a borrow: allowed with ``allow_borrow`` (the default) at ``borrow_bps_per_day``
  on the borrowed value, charged to spot cash; without it the agent sells only what it holds, so it
  cannot lean against a cheap perp unless it is already long spot.

Strategy, per wake (a periodic wake every ``wake_every_s``, a price trigger when the mark moves
``trigger_bps`` from where it was at the last wake, each funding payment, and an immediate re-wake after
an order that filled completely, since more profitable liquidity may be left):

1. Funding carry: the predicted funding rate per hour (``predicted_funding`` scaled from the payment
   interval to one hour) above ``carry_threshold`` targets a short perp / long spot of
   ``carry_notional_usdc``; below ``-carry_threshold`` the reverse; back inside ``carry_exit`` the target is
   flat (hysteresis between the two). Carry orders never trade the perp further from the index than the
   trading costs (perp taker fee + spot fee + half spread): entering waits for a perp that is not cheap,
   unwinding for one that is not rich.
2. Close the basis trade when the basis has converged: a short-perp basis position is bought back when
   the ask is at or below index x (1 + ``close_bps``), a long one sold when the bid is at or above
   index x (1 - ``close_bps``).
3. Open: when the perp (``basis_ref``: mid or mark) is above the index by more than
   costs = perp taker fee + ``spot_fee_bps`` + half ``spot_spread_bps`` + ``threshold_bps``, sell perp (into
   bids at or above index x (1 + costs)) and buy spot; below by more than costs, buy perp and sell spot.

One perp order is in flight at a time, of at most ``clip_usdc``. Capital limits: an order that adds
exposure is cut to what keeps the perp notional within ``max_notional_usdc``, the initial-margin usage
(IM in use / cross equity) within ``max_margin_usage``, and the spot leg within the spot cash; once a
limit is reached the agent stops adding (reducing is always allowed), so under stress the basis can blow
out past what its capital can close. ``capped`` counts how often each limit bit.

Transfers between venues take ``transfer_s``: to the spot venue is an ``Exchange.withdraw`` now and
spot cash after the latency; to the perp venue is spot cash now and an ``Exchange.deposit`` after the
latency (both recorded external flows of the exchange, so its money conservation holds; money in
transit is counted in ``in_transit``). A venue with transfers frozen (a ``transfer_freeze`` event) refuses
them: a refused withdrawal sends nothing (a reject; a rebalance tries again at a later wake), a refused
deposit stays in transit and lands at the first try, every ``wake_every_s``, after the freeze (each
refusal a reject, counted in the transfer's ``refused``). With ``rebalance`` the agent tops up its perp collateral from spot
cash when margin usage exceeds ``topup_usage`` (to half of it), and moves collateral beyond that level
to the spot venue when spot cash falls below one clip. One automatic transfer is in flight at a time.

Reporting: ``spot_position`` (base units), ``spot_cash`` and ``in_transit`` (USDC), ``spot_value()`` and
``total_value()`` (perp equity + spot cash + spot inventory at the index + money in transit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Iterator, Literal, Optional

from abm.agents.base import Trader, TraderParams, WakeMode
from abm.agents.limits import position_room
from abm.agents.params import (
    Bps,
    Leverage,
    PositiveBps,
    PositiveSeconds,
    PositiveUsdc,
    Seconds,
    SmallBps,
    Usdc,
    number,
)
from abm.config import Problem
from abm.errors import AbmError, InvalidInput
from abm.units import BUY, SELL, US_PER_S, USDC

HOUR_US = 3600 * US_PER_S
DAY_US = 24 * HOUR_US


@dataclass(frozen=True, slots=True)
class ArbitrageurParams(TraderParams):
    deposit_usdc: Usdc = 1_000_000.0  # perp collateral on the exchange
    spot_cash_usdc: Usdc = 1_000_000.0  # cash on the external spot venue
    wake: WakeMode = "periodic"
    wake_every_s: PositiveSeconds = 2.0
    trigger_bps: PositiveBps = 5.0  # also wake when the mark moves this far from the last wake's mark
    spot_fee_bps: SmallBps = 1.0
    spot_spread_bps: SmallBps = 1.0  # full spread; trades at the index +- half of it
    threshold_bps: Bps = 1.0  # edge wanted on top of the costs before opening
    close_bps: Annotated[float, number(gt=-10_000, unit="basis points")] = 0.0  # close when back within this
    basis_ref: Literal["mid", "mark"] = "mid"  # which perp price the basis is measured on
    clip_usdc: PositiveUsdc = 100_000.0  # largest single perp order
    max_notional_usdc: Usdc = 2_000_000.0  # cap on the perp position's notional
    max_margin_usage: Annotated[float, number(gt=0, le=1, unit="IM in use / cross equity")] = 0.5  # stop adding here
    leverage: Leverage = 10
    allow_borrow: bool = True  # may sell spot it does not hold (a borrow)
    borrow_bps_per_day: Annotated[float, number(ge=0, le=10_000, unit="basis points per day")] = 3.0
    carry: bool = True
    carry_threshold: Annotated[float, number(gt=0, lt=1, unit="funding rate per hour")] = 0.0001  # opens the carry
    carry_exit: Annotated[float, number(ge=0, lt=1, unit="funding rate per hour")] = 0.00005  # back inside: unwound
    carry_notional_usdc: Usdc = 500_000.0
    transfer_s: Seconds = 60.0  # time to move collateral between the venues
    rebalance: bool = True
    topup_usage: Annotated[float, number(gt=0, lt=1, unit="margin usage")] = 0.4  # triggers a top-up from spot cash
    # a [spot.NAME] venue of the scenario for the spot leg (its book, fees, borrowing); None: an external spot venue
    # at the index +- half spot_spread_bps (spot_fee_bps and borrow_bps_per_day are then this agent's own)
    spot_venue: Optional[str] = None
    spot_slippage_bps: Bps = 50.0  # on a simulated spot venue: each hedge fills at most this far from its mid

    def cross_checks(self) -> Iterator[Problem]:
        floor_cost = self.threshold_bps + self.spot_fee_bps + self.spot_spread_bps / 2
        if not self.close_bps < floor_cost:
            yield Problem("close_bps", self.close_bps,
                          f"must be a number below threshold_bps + spot_fee_bps + spot_spread_bps / 2 ({floor_cost:g}); "
                          "otherwise a trade would close as soon as it opened")
        if not self.carry_exit < self.carry_threshold:
            yield Problem("carry_exit", self.carry_exit,
                          f"must be a funding rate per hour in [0, carry_threshold={self.carry_threshold})")


class Arbitrageur(Trader):
    kind = "arbitrageur"
    role = "arbitrageur"  # what the metrics count it as (inherited by subclasses: abm.model.role_of)
    Params = ArbitrageurParams
    p: ArbitrageurParams

    def __init__(self, model: Any, rng: Any, params: ArbitrageurParams, ctx: Any = None) -> None:
        super().__init__(model, rng, params, ctx)
        p = params
        ctx = self.ctx
        spec = ctx.spec(self.symbol)
        self.mult = spec.multiplier
        self.tick = float(spec.tick_size)
        self.lot = float(spec.lot_size)
        self.taker_bps = spec.taker_ppm / 100
        self.trade_cost_bps = self.taker_bps + p.spot_fee_bps + p.spot_spread_bps / 2  # one leg of both venues
        self.cost_bps = self.trade_cost_bps + p.threshold_bps  # the basis it needs before opening
        ctx.set_margin_mode(self.symbol, "cross")
        try:
            ctx.set_leverage(self.symbol, p.leverage)
        except InvalidInput as e:
            raise InvalidInput(f"agents.{self.kind}.leverage", p.leverage, e.allowed) from None
        self._spot_lots_own = 0  # spot inventory in the perp's lots (negative: borrowed and sold), external venue
        self._spot_cash = int(round(p.spot_cash_usdc * USDC))  # quote units, external venue
        # the spot leg on a simulated venue: an account there, through its own link (that venue's latency)
        self.spot: Any = None
        self._spot_pending = 0  # signed lots of spot orders on their way
        if p.spot_venue is not None:
            from abm.agents.spot_context import SpotContext

            self.spot = SpotContext(model, self, p.spot_venue, self._spot_cash, 0.0, self.latency, False)
            self.spot_symbol = next(pair for pair, perp in model.perp_of_spot[p.spot_venue].items() if perp == self.symbol)
            self._spot_cash = 0
        self._in_transit = 0  # quote units on their way between venues
        self._transfers_open = 0
        self.transfers: list[dict[str, Any]] = []
        self.transfer_us = int(round(p.transfer_s * US_PER_S))
        self._borrow_t = 0
        self._repaying = 0  # lots of a spot repay sent, not landed yet
        self._selling = 0  # lots of spot sales sent, not landed yet
        self.borrow_paid = 0  # quote units
        self.spot_fees = 0  # quote units
        self.spot_volume = 0  # lots
        self.carry_lots = 0  # signed perp lots that belong to the carry trade
        self.carry_target = 0
        self._pending = 0  # perp orders on their way
        self.capped = {"notional": 0, "margin": 0, "spot": 0, "venue": 0}  # venue: the bracket's max_notional
        self.perp_orders = 0

    def _place(self, group: str, index: int, network: Any) -> None:
        """The spot link's jitter has a network stream of its own, a child of the perp link's (no draws taken)."""
        super()._place(group, index, network)
        if self.spot is not None:
            import numpy as np

            self.spot.set_network(np.random.default_rng(network.bit_generator.seed_seq.spawn(1)[0]))

    def start(self) -> None:
        """Scheduled wakes as configured, plus funding payments when the carry trade is on."""
        super().start()
        if self.p.carry:
            self.watch_funding()

    # ------------------------------------------------------------------ reporting

    @property
    def _spot_lots(self) -> int:
        """Spot inventory less debt, in lots (on a simulated venue: what its account holds)."""
        return self._spot_lots_own if self.spot is None else self.spot.net_inventory(self.spot_symbol)

    def _spot_free_cash(self) -> int:
        return self._spot_cash if self.spot is None else self.spot.balance()

    @property
    def spot_position(self) -> float:
        """Spot inventory in base units (negative: borrowed and sold)."""
        return self._spot_lots * self.lot

    @property
    def spot_cash(self) -> float:
        """Cash on the spot venue, USDC (on a simulated venue: free, held and locked as collateral)."""
        return (self._spot_cash if self.spot is None else self.spot.cash_total()) / USDC

    @property
    def in_transit(self) -> float:
        """USDC moving between the venues right now."""
        return self._in_transit / USDC

    def index_price(self) -> float:
        """The external price (quote currency per base unit) now."""
        return self.ctx.index_price(self.symbol)

    def spot_value(self) -> float:
        """Spot cash plus inventory at the index, USDC."""
        return self.spot_cash + self.spot_position * self.index_price()

    def total_value(self) -> float:
        """What the arbitrageur owns across both venues, USDC."""
        return self.equity() / USDC + self.spot_value() + self.in_transit

    def funding_per_hour(self) -> float:
        """The predicted funding rate scaled from the payment interval to one hour."""
        iv = self.funding_interval_us()
        return float(self.predicted_funding()) * HOUR_US / iv if iv else 0.0

    def margin_usage(self) -> float:
        """Initial margin in use (positions and orders) over cross equity."""
        s = self.ctx.margin_summary()
        e = int(s["cross_equity"])  # type: ignore[call-overload]
        used = e - int(s["free_collateral"])  # type: ignore[call-overload]
        if e <= 0:
            return math.inf if used > 0 else 0.0
        return used / e

    # ------------------------------------------------------------------ spot venue

    def _accrue_borrow(self) -> None:
        if self.spot is not None:
            return  # a simulated venue charges its own interest
        t = self.now
        if self._spot_lots < 0 and t > self._borrow_t and self.p.borrow_bps_per_day:
            value = -self._spot_lots * self.lot * self.index_price()
            fee = int(round(value * self.p.borrow_bps_per_day / 10_000 * (t - self._borrow_t) / DAY_US * USDC))
            self._spot_cash -= fee
            self.borrow_paid += fee
        self._borrow_t = t

    def _spot_unit_cost(self, side: int) -> float:
        """Cash per lot bought (side BUY, incl. fee) or received per lot sold (SELL, net of fee), quote units."""
        p = self.p
        half = p.spot_spread_bps / 20_000
        fee = p.spot_fee_bps / 10_000
        px = self.index_price() * (1 + half if side == BUY else 1 - half)
        return px * self.lot * USDC * (1 + fee if side == BUY else 1 - fee)

    def spot_trade(self, dq: int) -> int:
        """Buy (dq > 0) or sell (dq < 0) lots on the spot venue at the index +- half spread; returns lots traded.

        A buy is cut to the spot cash; a sell beyond the inventory only with ``allow_borrow``.
        """
        if not dq:
            return 0
        if self.spot is not None:
            return self._spot_order(dq)
        self._accrue_borrow()
        if dq > 0:
            unit = self._spot_unit_cost(BUY)
            dq = min(dq, max(0, int(self._spot_cash // unit)))
        elif not self.p.allow_borrow:
            dq = -min(-dq, max(0, self._spot_lots))
        if not dq:
            return 0
        side = BUY if dq > 0 else SELL
        px = self.index_price() * (1 + (1 if side == BUY else -1) * self.p.spot_spread_bps / 20_000)

        def cash_for(lots: int) -> tuple[int, int]:
            gross = lots * self.lot * px * USDC
            fee = math.ceil(gross * self.p.spot_fee_bps / 10_000)  # rounding favours the spot venue
            return (math.ceil(gross) if side == BUY else math.floor(gross)), fee

        gross, fee = cash_for(abs(dq))
        while side == BUY and dq > 0 and gross + fee > self._spot_cash:  # rounding: at most a lot or two
            dq -= 1
            gross, fee = cash_for(dq)
        if not dq:
            return 0
        if side == BUY:
            self._spot_cash -= gross + fee
        else:
            self._spot_cash += gross - fee
        self._spot_lots_own += dq
        self.spot_fees += fee
        self.spot_volume += abs(dq)
        return dq

    def _spot_order(self, dq: int) -> int:
        """The hedge as a market order on the simulated spot book, after that venue's latency; a sale beyond the
        free inventory borrows the rest first (same link, so the borrow lands first). Returns the lots sent;
        what does not fill is recorded when the order lands."""
        side = BUY if dq > 0 else SELL
        lots = abs(dq)
        if side == SELL:
            # what a repay or an earlier sale still in flight will take is not free for this one
            free = max(0, self.spot.free_inventory(self.spot_symbol) - self._repaying - self._selling)
            if lots > free:
                if not self.p.allow_borrow:
                    lots = free
                else:
                    ref = max(1, round(self.index_price() / self.tick))
                    self.spot.borrow(self.spot_symbol, lots - free, ref)
            if not lots:
                return 0
        signed = lots if side == BUY else -lots
        self._spot_pending += signed
        self._selling += lots if side == SELL else 0

        def done(res: Any, error: Optional[AbmError]) -> None:
            self._spot_pending -= signed
            self._selling -= lots if side == SELL else 0
            filled = 0 if error is not None else res.filled
            self.spot_volume += filled
            self._repay_what_it_can()
            if filled < lots:
                why = f"refused: {error}" if error is not None else \
                    f"the spot book ran out within spot_slippage_bps={self.p.spot_slippage_bps:g}" + \
                    (" (cut to the free cash)" if res.trimmed else "")
                what = f"spot {'buy' if side == BUY else 'sell'} (hedge)"
                last = self.shortfalls[-1] if self.shortfalls else None
                if last is not None and (last.what, last.reason, last.symbol) == (what, why, self.spot_symbol):
                    # the same hedge retried into the same thin book: one record for the run of attempts
                    self.shortfalls[-1] = last._replace(requested=last.requested + lots, filled=last.filled + filled,
                                                        orders=last.orders + 1)
                else:
                    self.record_shortfall(what, lots, filled, why, self.spot_symbol)

        self.spot.submit_market(self.spot_symbol, side, lots, slippage_bps=self.p.spot_slippage_bps, on_done=done)
        return signed

    def _repay_what_it_can(self) -> None:
        """Spot held while spot is owed goes back to the pool (a buy-back, or what a sale that filled short had
        borrowed): its collateral comes free and its interest stops. Lots a repay or a sale in flight will take
        are not counted."""
        owed = min(self.spot.debt(self.spot_symbol),
                   self.spot.free_inventory(self.spot_symbol)) - self._repaying - self._selling
        owed = min(owed, self.spot.debt(self.spot_symbol) - self._repaying)
        if owed > 0:
            self._repaying += owed

            def repaid(_: Any, error: Optional[AbmError], n: int = owed) -> None:
                self._repaying -= n

            self.spot.repay(self.spot_symbol, owed, on_done=repaid)

    # ------------------------------------------------------------------ transfers

    def transfer(self, amount_usdc: float, to: str) -> bool:
        """Move ``amount_usdc`` to the ``"spot"`` or ``"perp"`` venue; it arrives ``transfer_s`` later.

        Returns False (and counts a reject) when the source cannot give that much now.
        """
        if to not in ("spot", "perp"):
            raise InvalidInput("to", to, "must be 'spot' or 'perp'")
        if isinstance(amount_usdc, bool) or not isinstance(amount_usdc, (int, float)) or not amount_usdc > 0:
            raise InvalidInput("amount_usdc", amount_usdc, "must be a number > 0 (USDC)")
        amount = int(round(amount_usdc * USDC))
        if amount <= 0:
            return False
        if to == "spot" or self.spot is not None:  # out of a venue's account: the perp's, or the simulated spot's
            link = self.ctx if to == "spot" else self.spot
            try:  # at decision time: the transfer's own time is transfer_s (see AgentContext, set-up calls)
                link.withdraw(amount, immediate=True)
            except AbmError as e:
                self.rejects += 1
                link.rejects += 1  # the venue that refused it (the accounts tables count rejects per venue)
                self.last_reject = e
                self.on_reject("transfer", e)
                return False
        else:
            if amount > self._spot_cash:
                short = InvalidInput("amount_usdc", amount_usdc, f"must be at most the spot cash {self.spot_cash}")
                self.rejects += 1
                self.last_reject = short
                self.on_reject("transfer", short)
                return False
            self._spot_cash -= amount
        self._in_transit += amount
        self._transfers_open += 1
        rec = {"to": to, "amount": amount, "sent_us": self.now, "arrived_us": None, "usage": self.margin_usage()}
        self.transfers.append(rec)
        self.wake_at(self.now + self.transfer_us, lambda t: self._arrive(rec))
        return True

    def _arrive(self, rec: dict[str, Any]) -> None:
        amount = rec["amount"]
        link = self.ctx if rec["to"] == "perp" else self.spot
        if link is not None:
            try:
                link.deposit(amount, immediate=True)  # the bridge credits it as it lands
            except AbmError as e:  # the venue takes no deposits now (a transfer freeze): hold it, try again later
                self.rejects += 1
                link.rejects += 1
                self.last_reject = e
                rec["refused"] = rec.get("refused", 0) + 1
                self.on_reject("transfer", e)
                self.wake_at(self.now + max(1, int(round(self.p.wake_every_s * US_PER_S))), lambda t: self._arrive(rec))
                return
        else:
            self._spot_cash += amount
        self._in_transit -= amount
        self._transfers_open -= 1
        rec["arrived_us"] = self.now

    def _rebalance(self) -> None:
        if not self.p.rebalance or self._transfers_open:
            return
        s = self.ctx.margin_summary()
        e = int(s["cross_equity"])  # type: ignore[call-overload]
        free = int(s["free_collateral"])  # type: ignore[call-overload]
        used = e - free
        target = self.p.topup_usage / 2
        clip = self.p.clip_usdc * USDC
        if e <= 0 or used / e > self.p.topup_usage:
            need = int(used / target) - e
            amount = min(need, self._spot_free_cash())
            if amount >= USDC:
                self.transfer(amount / USDC, "perp")
        elif self._spot_free_cash() < clip:
            excess = min(e - int(used / target), self._withdrawable(free))
            if excess >= clip / 10:
                self.transfer(excess / USDC, "spot")

    def _withdrawable(self, free: int) -> int:
        """What the exchange lets leave: free collateral, less what keeps margin >= 10 % of notional."""
        size = self.position().size
        mark = self.mark() or 0
        notional = abs(size) * mark * self.mult
        extra = max(0, notional // 10 - notional // self.p.leverage)
        return max(0, min(self.ctx.balance(), free - extra))

    # ------------------------------------------------------------------ perp leg

    def _room(self, side: int, qty: int, price_ticks: float) -> int:
        """Cut ``qty`` to the capital limits; the part that only reduces the position always passes.

        Notional and margin are valued at the mark (as the exchange values them), or at ``price_ticks``
        when the higher of the two, so the order cannot take the position past the caps at either price.
        """
        size = self.position().size
        opp = -size if side == BUY else size  # lots this order can close
        reduce = min(qty, max(0, opp))
        add = qty - reduce
        lot_value = max(1.0, max(price_ticks, self.mark() or 0) * self.mult)
        if add > 0:
            held = abs(size) if opp <= 0 else 0
            cap = int(self.p.max_notional_usdc * USDC // lot_value) - held
            if cap < add:
                self.capped["notional"] += 1
                add = max(0, cap)
        if add > 0:
            s = self.ctx.margin_summary()
            e = int(s["cross_equity"])  # type: ignore[call-overload]
            used = e - int(s["free_collateral"])  # type: ignore[call-overload]
            room = int((self.p.max_margin_usage * e - used) * self.p.leverage // lot_value)
            if room < add:
                self.capped["margin"] += 1
                add = max(0, room)
        qty = reduce + add
        if side == SELL:  # the hedge buys spot: it needs the cash
            afford = max(0, int(self._spot_free_cash() // self._spot_unit_cost(BUY)))
        elif not self.p.allow_borrow:
            afford = max(0, self._spot_lots)
        else:
            afford = qty
        if afford < qty:
            self.capped["spot"] += 1
            qty = afford
        return qty

    def _perp(self, side: int, qty: int, bound: int, purpose: str) -> None:
        """An IOC limit at ``bound`` delivered after latency; the filled size is hedged on spot on arrival."""
        size = self.position().size
        room = position_room(self.ctx, self.symbol, side, bound)
        if room is not None and room < qty:  # the bracket's max_notional, valued at the order's limit as the venue does
            self.capped["venue"] += 1
            qty = room
            if qty < 1:
                return
        reduce_only = (side == BUY and size < 0 and qty <= -size) or (side == SELL and size > 0 and qty <= size)
        self._pending += 1
        self.perp_orders += 1

        def done(res: Any, error: Optional[AbmError]) -> None:  # at arrival: hedge exactly what filled
            self._pending -= 1
            if error is not None or not res.filled:
                return
            dq = res.filled if side == BUY else -res.filled
            if purpose == "carry":
                self.carry_lots += dq
            hedged = self.spot_trade(-dq)
            if hedged != -dq:  # the spot leg could not follow: the gap stays open until a later re-hedge
                buy = dq < 0
                self.record_shortfall(f"spot {'buy' if buy else 'sell'} (hedge of a {purpose} fill)", abs(dq),
                                      abs(hedged), "not enough spot cash" if buy else "no spot to sell (allow_borrow = false)")
            if res.filled == qty:  # the clip was used up: there may be more to take
                self.wake_in(1, self.on_wake)

        self.limit(side, qty, bound, tif="IOC", reduce_only=reduce_only, on_done=done)

    # ------------------------------------------------------------------ decisions

    def on_wake(self, t: int) -> None:
        """Re-hedge, rebalance collateral, then at most one perp order (carry, close or open); re-arm the trigger."""
        if not self.active:
            return
        self._accrue_borrow()
        size = self.position().size
        # the carry share cannot exceed the position (a liquidation or a reduce may have taken it)
        if self.carry_lots * size <= 0:
            self.carry_lots = 0
        elif abs(self.carry_lots) > abs(size):
            self.carry_lots = size
        if not self._pending:
            self.spot_trade(-size - self._spot_lots - self._spot_pending)  # re-hedge
        self._rebalance()
        if not self._pending:
            self._decide(size)
        mark = self.mark()
        if mark is not None:
            f = self.p.trigger_bps / 10_000
            self.watch_price(low=math.floor(mark * (1 - f)), high=math.ceil(mark * (1 + f)))

    def on_funding(self, t: int, symbol: str, rate: Any) -> None:
        """A funding payment starts a new averaging interval: look at the carry again."""
        self.on_wake(t)

    def _decide(self, size: int) -> None:
        p = self.p
        v = self.view()
        bid, ask = v.best_bid(), v.best_ask()
        idx = self.index_price() / self.tick  # index in ticks (float)
        cost = self.cost_bps / 10_000
        clip = max(1, int(p.clip_usdc * USDC // (idx * self.mult)))
        # 1. funding carry
        if p.carry:
            rate = self.funding_per_hour()
            n = int(p.carry_notional_usdc * USDC // (idx * self.mult))
            # the target size is fixed when the trade is opened, so price moves do not make it churn
            if rate > p.carry_threshold and self.carry_target >= 0:
                self.carry_target = -n
            elif rate < -p.carry_threshold and self.carry_target <= 0:
                self.carry_target = n
            elif abs(rate) < p.carry_exit:
                self.carry_target = 0
            dq = self.carry_target - self.carry_lots
            if dq:
                side = BUY if dq > 0 else SELL
                book = ask if side == BUY else bid
                c0 = self.trade_cost_bps / 10_000  # pay at most the trading costs in basis, on the way in or out
                bound = math.floor(idx * (1 + c0)) if side == BUY else math.ceil(idx * (1 - c0))
                if book is not None and (book <= bound if side == BUY else book >= bound):
                    qty = self._room(side, min(abs(dq), clip), idx)
                    if qty > 0:
                        self._perp(side, qty, bound, "carry")
                        return
        basis_lots = size - self.carry_lots
        # 2. close a converged basis trade
        c = p.close_bps / 10_000
        if basis_lots < 0 and ask is not None and ask <= idx * (1 + c):
            self._perp(BUY, min(-basis_lots, clip), math.floor(idx * (1 + c)), "close")
            return
        if basis_lots > 0 and bid is not None and bid >= idx * (1 - c):
            self._perp(SELL, min(basis_lots, clip), math.ceil(idx * (1 - c)), "close")
            return
        # 3. open when the basis pays more than the costs
        ref = v.mid() if p.basis_ref == "mid" else self.mark()
        if ref is None:
            return
        if ref > idx * (1 + cost) and bid is not None and bid >= idx * (1 + cost):
            qty = self._room(SELL, clip, bid)
            if qty > 0:
                self._perp(SELL, qty, math.ceil(idx * (1 + cost)), "open")
        elif ref < idx * (1 - cost) and ask is not None and ask <= idx * (1 - cost):
            qty = self._room(BUY, clip, ask)
            if qty > 0:
                self._perp(BUY, qty, math.floor(idx * (1 - cost)), "open")

    def basis_bps(self) -> Optional[float]:
        """(perp reference price - index) / index in bps, on ``basis_ref``."""
        ref = self.view().mid() if self.p.basis_ref == "mid" else self.mark()
        if ref is None:
            return None
        idx = self.index_price()
        return (ref * self.tick - idx) / idx * 10_000

    def on_reject(self, action: str, error: AbmError) -> None:
        """Refusals (margin shortfalls after a move, nothing left to reduce) are counted; the next wake retries."""


__all__ = ["Arbitrageur", "ArbitrageurParams"]
