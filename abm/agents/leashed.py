"""A trader that runs exit leashes (``abm.agents.leashes``): ``LeashedTrader``.

Why a base class of its own: the protections a user compares (a stop, a trailing stop, a TWAP exit, a
hedge, a top-up) belong to a position, not to one agent kind, so a user's own strategy gets them by
deriving from ``LeashedTrader`` instead of ``Trader``, calling ``init_leashes`` once and
``attach_leashes`` once it holds a position. The mixin decides from what a client sees (its position, the mark, the oracle's age) and acts
through the agent's context, so every exit arrives after its latency and meets the book as it is then.
Each exit keeps the ids of the orders it sent (``ExitRecord``); what they got is read after the run from
the tape (``fills_by_order``), so reported fills and times are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import ceil, floor
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from abm.agents.base import Trader
from abm.agents.leashes import HedgeSpec, Leash, Stop, build_leashes, parse_leash, round_ticks
from abm.agents.limits import limit_text, position_room
from abm.errors import AbmError, InvalidInput
from abm.units import BUY, SELL, USDC

US_PER_S = 1_000_000
RETRY_S = 1.0  # an exit that did not finish is sent again this soon (the book refilled or the bound moved)


@dataclass(slots=True)
class ExitRecord:
    """One exit (or hedge): what set it off, when, at which mark, and the ids of the orders it sent."""

    kind: str
    trigger_us: int
    trigger_mark: int  # ticks, of the market it trades (the hedge market's for a hedge)
    symbol: str
    side: int
    held: int  # lots held when it was set off
    oids: list[int] = field(default_factory=list)
    sent_us: list[int] = field(default_factory=list)  # when each order was sent (it lands a latency later)
    trigger_id: Optional[int] = None  # the venue's trigger order that fired it (a venue-held stop)
    venue: Optional[str] = None  # a spot hedge's venue (its orders' fills are on the spot tape)
    retry: bool = True  # send the remainder again until flat (a TWAP only after its last slice)


@dataclass(frozen=True, slots=True)
class Fills:
    """What a set of orders got from the book: lots, exact tick·lots and the time of the last fill."""

    lots: int = 0
    notional: int = 0
    last_us: Optional[int] = None

    def vwap(self) -> Optional[Fraction]:
        return Fraction(self.notional, self.lots) if self.lots else None


def fills_by_order(tape: Any, account: int, venue: Optional[int] = None) -> dict[int, Fills]:
    """Each of ``account``'s orders' fills on the tape (as maker or taker); on the spot tape, ``venue`` is the
    spot venue's index (accounts are numbered per venue)."""
    if not len(tape):
        return {}
    col = {c: np.frombuffer(tape.column(c), dtype=np.int64)
           for c in ("time_us", "price", "qty", "maker_account", "maker_oid", "taker_account", "taker_oid")}
    here = np.ones(len(col["qty"]), dtype=bool) if venue is None else \
        np.frombuffer(tape.column("venue"), dtype=np.int64) == venue
    out: dict[int, list[int]] = {}
    for side in ("maker", "taker"):
        sel = np.flatnonzero((col[f"{side}_account"] == account) & here)
        for oid, q, px, t in zip(col[f"{side}_oid"][sel].tolist(), col["qty"][sel].tolist(),
                                 col["price"][sel].tolist(), col["time_us"][sel].tolist()):
            acc = out.setdefault(oid, [0, 0, t])
            acc[0] += q
            acc[1] += q * px
            acc[2] = max(acc[2], t)
    return {oid: Fills(q, n, t) for oid, (q, n, t) in out.items()}


def _sum(fills: dict[int, Fills], oids: list[int]) -> Fills:
    got = [fills[o] for o in oids if o in fills]
    times = [f.last_us for f in got if f.last_us is not None]
    return Fills(sum(f.lots for f in got), sum(f.notional for f in got), max(times) if times else None)


class LeashedTrader(Trader):
    """A ``Trader`` whose position carries leashes: ``init_leashes`` (in ``__init__`` or ``start``), then
    ``attach_leashes`` when the position is open. ``on_price`` runs them; a subclass that watches prices for
    its own reasons calls ``super().on_price``."""

    poll_s: float = 1.0  # how often a resting exit is looked at (PositionHolder takes its params' poll_s)

    def init_leashes(self, specs: Sequence[Mapping[str, Any]], field_name: str = "leashes") -> None:
        """Check and build the leashes (``[{kind = "stop", pct = 5}, ...]``); problems name ``field_name[i].key``."""
        built = []
        for i, raw in enumerate(specs):
            spec, problems = parse_leash(i, dict(raw) if isinstance(raw, Mapping) else raw)
            if problems:
                p = problems[0]
                raise InvalidInput(p.path.replace("leashes", field_name, 1), p.value, p.allowed)
            if isinstance(spec, HedgeSpec) and spec.spot and getattr(self, "spot", None) is None:
                raise InvalidInput(f"{field_name}[{i}].spot", True, "needs the holder's spot venue (spot_venue)")
            if isinstance(spec, HedgeSpec) and not spec.spot and spec.symbol == self.symbol:
                raise InvalidInput(f"{field_name}[{i}].symbol", spec.symbol, "must be another market than the position's")
            if isinstance(spec, HedgeSpec) and not spec.spot and spec.symbol not in self.ctx.symbols:
                raise InvalidInput(f"{field_name}[{i}].symbol", spec.symbol,
                                   f"a hedge's symbol must be one of {list(self.ctx.symbols)}")
            built.append(spec)
        self.leashes: list[Leash] = build_leashes(built)
        for i, leash in enumerate(self.leashes):  # stops at round numbers: the step in the market's ticks
            step = leash.spec.round_usdc if isinstance(leash, Stop) else None
            if isinstance(leash, Stop) and step is not None:
                leash.round_ticks = round_ticks(self.ctx, self.symbol, step, f"{field_name}[{i}].round_usdc")
        self.sign = 1
        self.usdc = USDC
        self._mult = self.ctx.multiplier(self.symbol)
        self.entry: Fraction = Fraction(0)  # ticks: the exchange's exact entry price when the leashes were armed
        self.best = 0  # the best mark since entry (ticks), for trailing stops
        self.armed = False
        self.exits: list[ExitRecord] = []
        self.top_ups: list[tuple[int, int, int, int]] = []  # (time_us, amount, margin before, margin after)
        self._closing: Optional[ExitRecord] = None
        self._flat_after_exit = False

    @property
    def size(self) -> int:
        return self.position().size

    def attach_leashes(self) -> None:
        """Arm the leashes on the position held now: its side, the exchange's entry price, the mark as the best."""
        self._arm_all()

    def _arm_all(self) -> None:
        """Once the position is open: the entry and best mark, the price trigger, the polling leashes' clocks."""
        pos = self.position()
        if pos.entry_price is None:
            raise InvalidInput("attach_leashes", 0, "needs a position to protect (this account holds none)")
        self.sign = 1 if pos.size > 0 else -1
        self.entry = pos.entry_price
        self.best = self.mark() or floor(self.entry)
        self.armed = True
        for leash in self.leashes:
            leash.attach(self)
        self._arm()
        for leash in self.leashes:
            if leash.poll_s:
                self._schedule_poll(leash)

    def _schedule_poll(self, leash: Leash) -> None:
        self.wake_in(int(leash.poll_s * US_PER_S), lambda t: self._poll(t, leash))

    # ------------------------------------------------------------------ the leashes

    def _active(self) -> list[Leash]:
        return [lz for lz in self.leashes if not lz.done]

    def _arm(self) -> None:
        if self._closing is not None or self._flat_after_exit or not self.size:
            return
        lows = highs = None
        for lz in self._active():
            lo, hi = lz.levels(self)
            if lo is not None:
                lows = lo if lows is None else max(lows, lo)
            if hi is not None:
                highs = hi if highs is None else min(highs, hi)
        if lows is not None or highs is not None:
            self.watch_price(low=lows, high=highs)

    def on_price(self, t: int, symbol: str, mark: int) -> None:
        if self._closing is not None or not self.size:
            return
        self.best = max(self.best, mark) if self.sign > 0 else min(self.best, mark)
        for lz in self._active():
            if lz.fires(self, t, mark):
                lz.act(self, t, mark)
                break
        self._arm()

    def _poll(self, t: int, leash: Leash) -> None:
        if leash.done or self._closing is not None or not self.size:
            return
        leash.poll(self, t)
        if not leash.done:
            self._schedule_poll(leash)

    # ------------------------------------------------------------------ what leashes send

    def _begin(self, kind: str, t: int, mark: int, retry: bool = True) -> Optional[ExitRecord]:
        size = self.size
        if self._closing is not None or not size:
            return None
        rec = ExitRecord(kind, t, mark, self.symbol, SELL if size > 0 else BUY, abs(size), retry=retry)
        self.exits.append(rec)
        self._closing = rec
        return rec

    def close_all(self, kind: str, t: int, mark: int, slippage_bps: float) -> None:
        """Close the whole position with reduce-only market orders bounded by ``slippage_bps``, again until flat."""
        rec = self._begin(kind, t, mark)
        if rec is not None:
            self._send_close(rec, slippage_bps)

    def _send_close(self, rec: ExitRecord, slippage_bps: float, qty: Optional[int] = None) -> None:
        size = self.size
        if not size:
            self._flat(rec)
            return
        t = self.now
        # within the venue's maximum market-order value: children one after another, judged once all have landed
        n = self.market_split(rec.side, qty or abs(size), slippage_bps=slippage_bps, reduce_only=True,
                              on_done=lambda rs, es: self._sent(rec, slippage_bps, rs))
        rec.sent_us.extend([t] * n)

    def _sent(self, rec: ExitRecord, slippage_bps: float, results: list[Any]) -> None:
        rec.oids.extend(r.oid for r in results)
        if not self.size:
            self._flat(rec)
        elif rec.retry:
            self.wake_in(int(RETRY_S * US_PER_S), lambda t: self._send_close(rec, slippage_bps))

    def close_with_limit(self, kind: str, t: int, mark: int, price: int) -> None:
        """Close with one reduce-only limit at ``price`` (a stop-limit): it may rest, and may never fill."""
        rec = self._begin(kind, t, mark, retry=False)
        if rec is None:
            return

        def landed(result: Any, error: Optional[AbmError]) -> None:
            if result is not None:
                rec.oids.append(result.oid)
            self._watch_flat(rec)

        self.limit(rec.side, rec.held, price, reduce_only=True, on_done=landed)

    def _watch_flat(self, rec: ExitRecord) -> None:
        if not self.size:
            self._flat(rec)
        elif self.n_open_orders():
            self.wake_in(int(self.poll_s * US_PER_S), lambda t: self._watch_flat(rec))

    def twap_close(self, kind: str, t: int, mark: int, slices: int, interval_us: int, slippage_bps: float) -> None:
        """Close in ``slices`` reduce-only market orders ``interval_us`` apart; the last one takes what is left,
        and what the book could not take then is sent again until flat."""
        rec = self._begin(kind, t, mark, retry=False)
        if rec is None:
            return
        each = ceil(rec.held / slices)

        def slice_(t2: int, k: int) -> None:
            left = abs(self.size)
            if not left:
                self._flat(rec)
                return
            last = k == slices - 1
            rec.retry = last
            self._send_close(rec, slippage_bps, left if last else min(each, left))
            if not last:
                self.wake_in(interval_us, lambda t3: slice_(t3, k + 1))

        slice_(t, 0)

    def hedge(self, kind: str, t: int, mark: int, symbol: str, ratio: Fraction, slippage_bps: float) -> None:
        """Open the opposite exposure on ``symbol``: ``ratio`` x the position's notional at this mark."""
        other = self.mark(symbol)
        size = self.size
        if other is None or not size:
            return
        qty = floor(abs(size) * mark * self._mult * ratio / (other * self.ctx.multiplier(symbol)))
        side = SELL if self.sign > 0 else BUY
        room = position_room(self.ctx, symbol, side, other)
        if room is not None and room < qty:  # the bracket's max_notional: hedge what it allows, record the rest
            self.record_shortfall("hedge", qty, room, f"sized down to {room} lots to stay within "
                                  f"{limit_text(self.ctx, symbol, 'max_position_notional')}", symbol)
            qty = room
        rec = ExitRecord(kind, t, other, symbol, side, qty, retry=False)  # against the hedge market's mark
        self.exits.append(rec)
        if qty < 1:
            if room is None or room > 0:
                self.record_shortfall("hedge", 0, 0, "the hedge is less than one lot", symbol)
            return
        landed = self._hedge_landed(rec, "market")
        self.market_split(side, qty, symbol=symbol, slippage_bps=slippage_bps,
                          on_done=lambda rs, es: landed(rs, es))

    def _hedge_landed(self, rec: ExitRecord, what: str) -> Any:
        """The callback of a hedge order: its id into the record, what it did not fill as a shortfall."""

        def landed(result: Any, error: Any) -> None:  # one order's (result, error), or a split's (results, errors)
            results = result if isinstance(result, list) else [] if result is None else [result]
            errors = error if isinstance(error, list) else [] if error is None else [error]
            rec.oids.extend(r.oid for r in results)
            filled = sum(r.filled for r in results)
            if filled < rec.held:
                self.record_shortfall(f"{what} {'sell' if rec.side == SELL else 'buy'} (hedge)", rec.held, filled,
                                      str(errors[-1]) if errors else "the book ran out within the bound", rec.symbol)

        return landed

    def open_spot_account(self, venue: str, cash: int, inventory: float) -> None:
        """An account on spot venue ``venue`` (``cash`` quote units, ``inventory`` base units of its pairs), reached
        through a link of its own with the agent's latency: where a spot hedge trades."""
        from abm.agents.spot_context import SpotContext

        self.spot: Any = SpotContext(self.model, self, venue, cash, inventory, self.latency, False)
        self.spot_symbol = next(pair for pair, perp in self.model.perp_of_spot[venue].items() if perp == self.symbol)

    def _place(self, group: str, index: int, network: Any) -> None:
        """The spot link's jitter has a network stream of its own, a child of the perp link's (no draws taken)."""
        super()._place(group, index, network)
        if getattr(self, "spot", None) is not None:
            self.spot.set_network(np.random.default_rng(network.bit_generator.seed_seq.spawn(1)[0]))

    def spot_hedge(self, kind: str, t: int, mark: int, ratio: Fraction, slippage_bps: float, borrow: bool) -> None:
        """The opposite exposure in the underlying on the spot venue: ``ratio`` x the position's notional at this
        mark. A long is hedged by a sale of inventory (what it lacks borrowed first when ``borrow``, else left
        short and recorded); a short by a purchase, which the venue trims to the free cash."""
        spot, pair, size = self.spot, self.spot_symbol, self.size
        price = spot.mark(pair)
        if price is None or not size:
            return
        qty = floor(abs(size) * mark * self._mult * ratio / (price * spot.multiplier(pair)))
        side = SELL if self.sign > 0 else BUY
        rec = ExitRecord(kind, t, price, pair, side, qty, retry=False, venue=spot.venue)
        self.exits.append(rec)
        if qty < 1:
            self.record_shortfall("hedge", 0, 0, "the hedge is less than one lot", pair)
            return

        landed = self._hedge_landed(rec, "spot market")

        def send(lots: int, why: str = "") -> None:
            if lots < qty:
                self.record_shortfall("spot sell (hedge)", qty, 0, why or f"inventory covers {lots} of {qty} lots "
                                                                          "(borrow = true borrows the rest)", pair)
            if lots >= 1:
                spot.submit_market(pair, side, lots, slippage_bps=slippage_bps, on_done=landed)

        free = spot.free_inventory(pair) if side == SELL else qty
        if side == BUY or free >= qty or not borrow:
            send(min(qty, free))
            return
        spot.borrow(pair, qty - free, price,
                    on_done=lambda r, e: send(qty) if e is None else send(free, f"the borrow was refused: {e}"))

    def top_up(self, amount: int, landed: Any) -> None:
        """Move ``amount`` from the cross balance into the isolated margin; ``landed(ok)`` when it arrives."""
        before = self.position().margin

        def done(result: Any, error: Optional[AbmError]) -> None:
            if error is None:
                self.top_ups.append((self.now, amount, before, self.position().margin))
            landed(error is None)
            self._arm()

        self.ctx.transfer_margin(self.symbol, amount, on_done=done)

    def venue_stop(self, kind: str, level: int, limit: Optional[int], slippage_bps: float) -> None:
        """A stop-loss of the position held by the venue at ``level`` (a stop-limit at ``limit``): the venue fires
        it at the mark update that crosses; the agent hears of it right after (a wake) and sends what the
        venue's order left again, as its own exits do."""
        side = SELL if self.sign > 0 else BUY

        def fired(rep: Any) -> None:
            if rep.status != "triggered" or self._closing is not None:
                return
            rec = ExitRecord(kind, rep.time_us, rep.mark, self.symbol, side, abs(self.size) + rep.filled,
                             retry=limit is None, trigger_id=rep.tid)
            rec.oids.append(rep.oid)
            rec.sent_us.append(rep.time_us)
            self.exits.append(rec)
            self._closing = rec
            if not self.size:
                self._flat(rec)
            elif limit is None:
                self.wake_in(int(RETRY_S * US_PER_S), lambda t: self._send_close(rec, slippage_bps))
            else:
                self._watch_flat(rec)

        self.ctx.submit_stop(self.symbol, side, None, level, limit, "stop", True, True, on_trigger=fired)

    def _flat(self, rec: ExitRecord) -> None:
        self._closing = None
        self._flat_after_exit = True


__all__ = ["LeashedTrader", "ExitRecord", "Fills", "fills_by_order", "US_PER_S"]
