"""Trigger orders held by the exchange: stop-market, stop-limit and take-profit, fired by mark updates.

Why the venue holds them: a stop an agent watches itself fires only when the agent next looks and then
travels its latency; a venue-held stop fires at the mark update that crosses it, inside the venue, as on
Hyperliquid (triggered on the mark). The rules chosen here, as the venues do them:

- **Index.** Two heaps per market, as the margin engine's liquidation trigger index: ``falls`` (fire when
  mark <= trigger: sell stops, buy take-profits) and ``rises`` (mark >= trigger: buy stops, sell
  take-profits), with lazy deletion by status. A mark update that fires nothing looks at two heap tops,
  whatever the number of resting triggers; firing k costs O(k log n) plus their orders. Fire order in one
  update: the falls heap (highest trigger first), then the rises heap (lowest first), ties in submission
  order; the liquidation check of that mark runs first (the venue's risk engine before users' orders).
- **Entry.** A fired trigger's order enters through the exchange's own ``market_order`` / ``limit`` as
  the owner's order, so it meets everything a user order meets (price band, trading state, rules,
  reduce-only trim, margin admission) and its fills are booked and taped the same way. A refusal then
  ends the trigger as ``rejected`` with the error's text; nothing else changes.
- **Margin.** A resting trigger is not in the book and holds no margin (free collateral ignores it). An
  opening one is checked for initial margin when it fires, and rejected then if the account cannot pay.
- **Market stops** are immediate orders bounded at the mark of the trigger -10% (sell) / +10% (buy),
  Hyperliquid's slippage limit for market triggers, narrowed to the venue's price band when that is
  tighter; what does not fill within the bound is cancelled. **Stop-limits** rest as GTC at their limit.
- **Placement** is refused when the trigger would fire at once at the current mark (Binance's "order
  would immediately trigger"); before the first mark anything is accepted. A halted or cancel-only market
  takes no new trigger, a reduce-only market only reduce-only ones. A halted market evaluates none: they
  fire at the first mark after it reopens.
- **Position TP/SL** (``position=True``): attached to the account's position in that market, always
  reduce-only, on its closing side, sized to the whole position when it fires unless given a size. The
  account's position triggers in a market are one-cancels-the-other (one firing cancels the rest), and all
  are cancelled when the position closes or flips, whatever closed it (its own orders, another trigger, a
  liquidation, the backstop, ADL). A plain reduce-only trigger outlives a flat position: when it fires with
  nothing to reduce it is rejected.
- Trigger ids come from the exchange's order-id sequence, so they never collide with order ids; the
  order a trigger puts into the book gets an id of its own (``TriggerReport.oid``).
"""

from __future__ import annotations

import heapq
from typing import Any, Callable, NamedTuple, Optional

from abm.accounts.account import Account
from abm.accounts.market_state import Market
from abm.errors import AbmError, InvalidInput, InvalidOrderType, InvalidPrice, InvalidSize, ReduceOnlyViolation, UnknownOrder
from abm.exchange.entry import CANCEL_ONLY, HALTED, REDUCE_ONLY, check_cancel_state, refuse_in_state
from abm.market.spec import MAX_MONEY, as_int
from abm.units import BUY, SELL

KINDS = ("stop", "take_profit")
RESTING, TRIGGERED, CANCELLED, REJECTED = "resting", "triggered", "cancelled", "rejected"
MARKET_STOP_BOUND_PCT = 10  # Hyperliquid: a market trigger fills at most 10% away from the mark that fired it


class TriggerReport(NamedTuple):
    """What became of a trigger order (the owner's ``notify`` gets one whenever the venue changes it)."""

    tid: int
    symbol: str
    side: int
    kind: str  # "stop" or "take_profit"
    qty: Optional[int]  # lots asked; None: the whole position when it fires (a position TP/SL)
    trigger_price: int  # ticks
    limit_price: Optional[int]  # ticks; None: a market trigger
    reduce_only: bool
    position: bool
    status: str  # resting, triggered, cancelled, rejected
    reason: str  # why it was cancelled or rejected ("" otherwise)
    time_us: int  # when it fired or ended (0 while resting)
    mark: int  # the mark that fired it (0 if it did not fire)
    oid: int  # the order it put into the book (0 if none)
    filled: int  # lots that order filled when it entered (a stop-limit may fill more later, as a resting order)
    notional: int  # tick·lots of those fills
    resting: int  # lots of it left resting in the book (stop-limit)


class Trigger:
    """One trigger order and its fate."""

    __slots__ = ("tid", "account", "market", "side", "kind", "qty", "trigger_price", "limit_price", "reduce_only",
                 "position", "status", "reason", "time_us", "mark", "oid", "filled", "notional", "resting", "notify")

    def __init__(self, tid: int, account: int, market: Market, side: int, kind: str, qty: Optional[int],
                 trigger_price: int, limit_price: Optional[int], reduce_only: bool, position: bool,
                 notify: Optional[Callable[[TriggerReport], None]]) -> None:
        self.tid = tid
        self.account = account
        self.market = market
        self.side = side
        self.kind = kind
        self.qty = qty
        self.trigger_price = trigger_price
        self.limit_price = limit_price
        self.reduce_only = reduce_only
        self.position = position
        self.notify = notify
        self.status = RESTING
        self.reason = ""
        self.time_us = 0
        self.mark = 0
        self.oid = 0
        self.filled = 0
        self.notional = 0
        self.resting = 0

    @property
    def falls(self) -> bool:
        """Fires when the mark falls to the trigger (sell stop, buy take-profit); else when it rises to it."""
        return (self.side == SELL) == (self.kind == "stop")

    def report(self) -> TriggerReport:
        return TriggerReport(self.tid, self.market.spec.symbol, self.side, self.kind, self.qty, self.trigger_price,
                             self.limit_price, self.reduce_only, self.position, self.status, self.reason, self.time_us,
                             self.mark, self.oid, self.filled, self.notional, self.resting)


def _price(field: str, value: Any, m: Market) -> int:
    p = as_int(field, value, InvalidPrice)
    if not 0 < p <= m.max_tick_lots:
        raise InvalidPrice(field, value, f"must be a positive integer number of ticks whose one-lot value fits "
                                         f"{MAX_MONEY} quote units (at most {m.max_tick_lots})")
    return p


def _flag(field: str, value: Any) -> bool:
    if type(value) is not bool:
        raise InvalidOrderType(field, value, "must be True or False")
    return value


class TriggerBook:
    """The exchange's trigger orders (built at its first one, so a venue without triggers pays nothing)."""

    def __init__(self, ex: Any) -> None:
        self.ex = ex
        self.orders: dict[int, Trigger] = {}  # every trigger ever placed, by id (their fates stay readable)
        self._falls: dict[int, list[tuple[int, int, int]]] = {}  # market -> heap of (-trigger, seq, tid)
        self._rises: dict[int, list[tuple[int, int, int]]] = {}  # market -> heap of (trigger, seq, tid)
        self._live: dict[int, int] = {}  # market -> resting triggers
        self._attached: dict[tuple[int, int], list[int]] = {}  # (account, market) -> its resting position TP/SLs
        self.by_order: dict[int, int] = {}  # id of an order a trigger put into the book -> the trigger's id
        self._seq = 0

    # ------------------------------------------------------------------ placement and cancels

    def place(self, a: Account, m: Market, side: int, qty: Any, trigger_price: Any, limit_price: Any, kind: Any,
              reduce_only: Any, position: Any, notify: Any) -> int:
        """Validate everything, then rest the trigger; returns its id. A refusal changes nothing."""
        if not isinstance(kind, str) or kind not in KINDS:
            raise InvalidOrderType("kind", kind, f"must be one of {list(KINDS)}")
        ro = _flag("reduce_only", reduce_only)
        pos_tpsl = _flag("position", position)
        if qty is None:
            if not pos_tpsl:
                raise InvalidSize("qty", qty, "must be a positive integer number of lots (None only with "
                                              "position=True: the whole position when it fires)")
        else:
            qty = as_int("qty", qty, InvalidSize)
            if qty <= 0:
                raise InvalidSize("qty", qty, "must be a positive integer number of lots")
        trig = _price("trigger_price", trigger_price, m)
        limit = None if limit_price is None else _price("limit_price", limit_price, m)
        if qty is not None and qty * (limit if limit is not None else trig) > m.max_tick_lots:
            raise InvalidSize("qty", qty, f"must keep the order's notional within {MAX_MONEY} quote units")
        if notify is not None and not callable(notify):
            raise InvalidInput("notify", notify, "must be callable or None")
        if pos_tpsl:
            p = a.positions.get(m.index)
            size = p.size if p is not None else 0
            if not size or (side == BUY) == (size > 0):
                raise ReduceOnlyViolation("position", f"{'buy' if side == BUY else 'sell'} TP/SL with position {size}",
                                          "a position TP/SL must be on the closing side of an open position")
            ro = True
        what = f"{kind} {'buy' if side == BUY else 'sell'} trigger at {trig}"
        if m.state == HALTED or m.state == CANCEL_ONLY:
            refuse_in_state(m.state, m.spec.symbol, what)
        if m.state == REDUCE_ONLY and not ro:
            refuse_in_state(m.state, m.spec.symbol, what + " (not reduce-only)")
        t = Trigger(0, a.id, m, side, kind, qty, trig, limit, ro, pos_tpsl, notify)
        mark = self.ex.risk.marks.get(m.index)
        if mark is not None and (mark <= trig if t.falls else mark >= trig):
            raise InvalidPrice("trigger_price", trig, f"must be {'below' if t.falls else 'above'} the mark {mark} "
                                                      f"for a {kind} {'buy' if side == BUY else 'sell'} (it would "
                                                      "trigger at once)")
        t.tid = tid = self.ex._next_oid
        self.ex._next_oid += 1
        self.orders[tid] = t
        idx = m.index
        self._seq += 1
        if t.falls:
            heap = self._falls.setdefault(idx, [])
            heapq.heappush(heap, (-trig, self._seq, tid))
        else:
            heap = self._rises.setdefault(idx, [])
            heapq.heappush(heap, (trig, self._seq, tid))
        self._live[idx] = live = self._live.get(idx, 0) + 1
        if len(heap) > 64 + 2 * live:  # cancelled entries dominate: drop them (lazy deletion's bound on memory)
            kept = [e for e in heap if self.orders[e[2]].status == RESTING]
            heapq.heapify(kept)
            heap[:] = kept
        if pos_tpsl:
            self._attached.setdefault((a.id, idx), []).append(tid)
            self.ex.settlement.on_close = self.position_closed
        return tid

    def get(self, a: Account, tid: Any) -> Trigger:
        t = self.orders.get(tid) if type(tid) is int else None
        if t is None or t.account != a.id:
            raise UnknownOrder("tid", tid, f"must be the id of one of account {a.id}'s trigger orders")
        return t

    def cancel(self, a: Account, tid: Any) -> None:
        t = self.get(a, tid)
        if t.status != RESTING:
            raise UnknownOrder("tid", tid, f"must be a resting trigger order (it is {t.status})")
        check_cancel_state(t.market.state, t.market.spec.symbol, tid)
        self._end(t, CANCELLED, "cancelled by its owner", notify=False)

    def _end(self, t: Trigger, status: str, reason: str, notify: bool = True) -> None:
        """A resting trigger stops resting (fired, cancelled or rejected); its position group forgets it."""
        if t.status == RESTING:
            self._live[t.market.index] -= 1
            if t.position:
                group = self._attached.get((t.account, t.market.index))
                if group is not None and t.tid in group:
                    group.remove(t.tid)
        t.status = status
        t.reason = reason
        t.time_us = self.ex.now
        if notify and t.notify is not None:
            t.notify(t.report())

    def position_closed(self, acct: Account, m: Market) -> None:
        """Settlement saw the account's position in ``m`` close or flip: its position TP/SLs go (mid-fill safe:
        they are not in any book)."""
        group = self._attached.pop((acct.id, m.index), None)
        for tid in group or ():
            t = self.orders[tid]
            if t.status == RESTING:
                self._end(t, CANCELLED, "position closed")

    # ------------------------------------------------------------------ the mark

    def on_mark(self, m: Market, mark: int) -> None:
        """Fire every resting trigger this mark crosses, in the module's order."""
        idx = m.index
        orders = self.orders
        fired: list[Trigger] = []
        heap = self._falls.get(idx)
        while heap and -heap[0][0] >= mark:
            t = orders[heapq.heappop(heap)[2]]
            if t.status == RESTING:
                fired.append(t)
        heap = self._rises.get(idx)
        while heap and heap[0][0] <= mark:
            t = orders[heapq.heappop(heap)[2]]
            if t.status == RESTING:
                fired.append(t)
        for t in fired:
            if t.status == RESTING:  # an earlier one's order may have closed its position (OCO, flat)
                self._fire(t, m, mark)

    def _fire(self, t: Trigger, m: Market, mark: int) -> None:
        ex = self.ex
        self._end(t, TRIGGERED, "", notify=False)  # out of the index and its group before its order trades
        t.mark = mark
        if t.position:  # one cancels the other: the rest of the position's TP/SLs go before this one trades
            for tid in list(self._attached.get((t.account, m.index), ())):
                if tid != t.tid:
                    self._end(self.orders[tid], CANCELLED, f"one-cancels-the-other: trigger {t.tid} fired")
        qty = t.qty
        if qty is None:
            p = ex.accounts[t.account].positions.get(m.index)
            qty = abs(p.size) if p is not None else 0
        try:
            if not qty:
                raise ReduceOnlyViolation("reduce_only", "no position", "a position TP/SL needs an open position")
            if t.limit_price is None:
                if t.side == SELL:
                    worst = max(-((-mark * (100 - MARKET_STOP_BOUND_PCT)) // 100), m.band_lo)
                else:
                    worst = min(mark * (100 + MARKET_STOP_BOUND_PCT) // 100, m.band_hi)
                res = ex.market_order(t.account, m.spec.symbol, t.side, qty, worst, None, t.reduce_only)
            else:
                res = ex.limit(t.account, m.spec.symbol, t.side, qty, t.limit_price, "GTC", False, t.reduce_only)
        except AbmError as e:
            t.status, t.reason = REJECTED, str(e)
        else:
            t.oid, t.filled, t.notional, t.resting = res.oid, res.filled, res.notional, res.resting
            self.by_order[res.oid] = t.tid
        if t.notify is not None:
            t.notify(t.report())

    # ------------------------------------------------------------------ results

    @property
    def used(self) -> bool:
        return bool(self.orders)

    def resting_count(self, idx: int) -> int:
        return self._live.get(idx, 0)

    def trade_columns(self, trades: Any) -> Any:
        """The trades table with the trigger columns added (a run that placed any trigger order):

        ``trigger_id`` (the trigger behind the taker's order, else the maker's; 0 for none), its
        ``trigger_price`` and ``trigger_mark`` (the mark that fired it) in ticks, and ``trigger_slippage``:
        ticks from the trigger price to the fill price against the trigger's owner (sell: trigger - price;
        buy: price - trigger), 0 for none. Built from the tape's order ids off the hot path.
        """
        import numpy as np

        out = trades.copy()
        n = len(out)
        tid = np.zeros(n, np.int64)
        tprice = np.zeros(n, np.int64)
        tmark = np.zeros(n, np.int64)
        slip = np.zeros(n, np.int64)
        if n and self.by_order:
            by = self.by_order
            taker = out["taker_oid"].to_numpy(np.int64)
            maker = out["maker_oid"].to_numpy(np.int64)
            price = out["price"].to_numpy(np.int64)
            for i in range(n):
                k = by.get(int(taker[i])) or by.get(int(maker[i]))
                if k:
                    t = self.orders[k]
                    tid[i], tprice[i], tmark[i] = k, t.trigger_price, t.mark
                    d = int(price[i]) - t.trigger_price
                    slip[i] = d if t.side == BUY else -d
        out["trigger_id"] = tid
        out["trigger_price"] = tprice
        out["trigger_mark"] = tmark
        out["trigger_slippage"] = slip
        return out


__all__ = ["TriggerBook", "Trigger", "TriggerReport", "KINDS", "RESTING", "TRIGGERED", "CANCELLED", "REJECTED",
           "MARKET_STOP_BOUND_PCT"]
