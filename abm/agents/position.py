"""A user's own position placed in a scenario: opened once, held, and protected by its leashes.

Why an agent and not an overlay: the position must meet the market as any account does. It is opened
through the context (a market order bounded by a slippage, or a resting limit), margined, funded and
liquidated by the exchange like every other account, and its exits are orders that arrive after its
latency and fill against the book as it is then. So its own stop adds to the cascade it fears, and
"what is my worst fill" is answered by the book, not by a formula.

It decides from what a client sees: its own position (size and exact entry price) and the market data;
for a resting order it looks at its position every ``poll_s``. What its orders really got (fills,
prices, times) is read after the run from the tape by their order ids (``outcome``), so the report's
fills and times are exact whatever the agent saw when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import ceil, floor
from typing import Annotated, Any, Iterator, Literal, Optional

import numpy as np

from abm.agents.base import Trader, TraderParams, WakeMode
from abm.agents.leashes import HedgeSpec, Leash, TopUpSpec, build_leashes, parse_leash
from abm.agents.params import Bps, Leverage, PositiveSeconds, PositiveUsdc, Seconds, number
from abm.config import Problem
from abm.errors import AbmError, InvalidInput
from abm.units import BUY, SELL, USDC

US_PER_S = 1_000_000
RETRY_S = 1.0  # an exit that did not finish is sent again this soon (the book refilled or the bound moved)


@dataclass(frozen=True, slots=True)
class PositionParams(TraderParams):
    side: Literal["long", "short"] = "long"
    notional_usdc: PositiveUsdc = 50_000.0  # at the mark when it opens
    leverage: Leverage = 10
    margin_mode: Literal["isolated", "cross"] = "isolated"
    open_s: Seconds = 0.0  # when it opens
    entry: Literal["market", "limit"] = "market"
    entry_slippage_bps: Bps = 100.0  # market entry: worst price this far from the mid
    entry_offset_bps: Bps = 0.0  # limit entry: rests this far from the mid on its own side
    entry_retries: Annotated[int, number(ge=0)] = 10  # a market entry that fills nothing is sent again, poll_s apart
    leashes: tuple[dict[str, Any], ...] = ()  # [{kind = "stop", pct = 5}, ...] (abm.agents.leashes)
    poll_s: PositiveSeconds = 1.0  # how often it looks at its resting orders' fills
    sample_s: PositiveSeconds = 10.0  # how often its equity path is recorded
    wake: WakeMode = "none"  # its actions come from its own clock and triggers

    def cross_checks(self) -> Iterator[Problem]:
        for i, raw in enumerate(self.leashes):
            spec, found = parse_leash(i, raw)
            yield from found
            if isinstance(spec, TopUpSpec) and self.margin_mode != "isolated":
                yield Problem(f"leashes[{i}].kind", "top_up", "applies to margin_mode = 'isolated' (a cross position "
                                                             "is backed by the whole balance already)")
            if isinstance(spec, HedgeSpec) and spec.symbol == self.symbol:
                yield Problem(f"leashes[{i}].symbol", spec.symbol, "must be another market than the position's")


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
    retry: bool = True  # send the remainder again until flat (a TWAP only after its last slice)


@dataclass(frozen=True, slots=True)
class Fills:
    """What a set of orders got from the book: lots, exact tick·lots and the time of the last fill."""

    lots: int = 0
    notional: int = 0
    last_us: Optional[int] = None

    def vwap(self) -> Optional[Fraction]:
        return Fraction(self.notional, self.lots) if self.lots else None


def fills_by_order(tape: Any, account: int) -> dict[int, Fills]:
    """Each of ``account``'s orders' fills on the tape (as maker or taker)."""
    if not len(tape):
        return {}
    col = {c: np.frombuffer(tape.column(c), dtype=np.int64)
           for c in ("time_us", "price", "qty", "maker_account", "maker_oid", "taker_account", "taker_oid")}
    out: dict[int, list[int]] = {}
    for side in ("maker", "taker"):
        sel = np.flatnonzero(col[f"{side}_account"] == account)
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


class PositionHolder(Trader):
    kind = "position"
    role = "position"
    Params = PositionParams
    p: PositionParams

    @classmethod
    def build(cls, model: Any, rng: np.random.Generator, params: dict[str, Any]) -> "PositionHolder":
        return super().build(model, rng, params)  # type: ignore[return-value]

    def __init__(self, model: Any, rng: np.random.Generator, params: PositionParams, ctx: Any = None) -> None:
        super().__init__(model, rng, params, ctx)
        p = self.p
        top = self.ctx.max_leverage(self.symbol)
        if p.leverage > top:
            raise InvalidInput(f"agents.{self.kind}.leverage", p.leverage,
                               f"must be <= {top} (the venue's maximum for {self.symbol}; refused, not capped)")
        specs = [parse_leash(i, s)[0] for i, s in enumerate(p.leashes)]
        for i, spec in enumerate(specs):
            if isinstance(spec, HedgeSpec) and spec.symbol == self.symbol:
                raise InvalidInput(f"agents.{self.kind}.leashes[{i}].symbol", spec.symbol,
                                   "must be another market than the position's")
            if isinstance(spec, HedgeSpec) and spec.symbol not in self.ctx.symbols:
                raise InvalidInput(f"agents.{self.kind}.leashes[{i}].symbol", spec.symbol,
                                   f"a hedge's symbol must be one of {list(self.ctx.symbols)}")
        self.sign = 1 if p.side == "long" else -1
        self.usdc = USDC
        self._mult = self.ctx.multiplier(self.symbol)
        self.ctx.set_margin_mode(self.symbol, p.margin_mode)
        self.ctx.set_leverage(self.symbol, p.leverage)
        self.leashes: list[Leash] = build_leashes(specs)
        self.entry: Fraction = Fraction(0)  # ticks: the exchange's exact entry price when the leashes were armed
        self.best = 0  # the best mark since entry (ticks), for trailing stops
        self.entry_mark: Optional[int] = None  # the mark when it decided to open
        self.entry_oids: list[int] = []
        self.requested = 0
        self.armed = False
        self.exits: list[ExitRecord] = []
        self.top_ups: list[tuple[int, int, int, int]] = []  # (time_us, amount, margin before, margin after)
        self.path: list[tuple[int, int]] = []  # (time_us, equity in quote units)
        self._closing: Optional[ExitRecord] = None
        self._flat_after_exit = False
        self._entry_price = 0  # a limit entry's price (ticks)
        self._retries = 0

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        self.wake_at(int(round(self.p.open_s * US_PER_S)), self._open)
        self.wake_at(0, self._sample)

    def _sample(self, t: int) -> None:
        self.path.append((t, self.equity()))
        self.wake_in(int(self.p.sample_s * US_PER_S), self._sample)

    @property
    def size(self) -> int:
        return self.position().size

    # ------------------------------------------------------------------ opening

    def _open(self, t: int) -> None:
        mark = self.mark()
        if mark is None:  # no price yet: look again shortly
            self.wake_in(int(self.p.poll_s * US_PER_S), self._open)
            return
        self.entry_mark = mark
        qty = floor(Fraction(round(self.p.notional_usdc * USDC)) / (mark * self._mult))
        self.requested = qty
        side = BUY if self.sign > 0 else SELL
        if qty < 1:
            self.record_shortfall("open", 0, 0, f"notional {self.p.notional_usdc:g} is less than one lot at the mark")
            return
        if self.p.entry == "market":
            self.market(side, qty - abs(self.size), slippage_bps=self.p.entry_slippage_bps, on_done=self._entered)
            return
        mid = self.view().mid()
        ref = Fraction(mid) if mid is not None else Fraction(mark)
        price = ref * (1 - self.sign * Fraction(repr(self.p.entry_offset_bps)) / 10_000)
        self._entry_price = floor(price) if self.sign > 0 else ceil(price)
        self.limit(side, qty, self._entry_price, on_done=self._entered_limit)

    def _entered(self, result: Any, error: Optional[AbmError]) -> None:
        what = f"market {'buy' if self.sign > 0 else 'sell'} (open)"
        if result is not None:
            self.entry_oids.append(result.oid)
        if error is None and not result.filled and self._retries < self.p.entry_retries:
            self._retries += 1  # an empty book (a run's first instants): look again
            self.wake_in(int(self.p.poll_s * US_PER_S), self._open)
            return
        held = abs(self.size)
        if held < self.requested:
            why = str(error) if error is not None else "the book ran out within the slippage bound"
            self.record_shortfall(what, self.requested, held, why)
        if held:
            self._arm_all()

    def _entered_limit(self, result: Any, error: Optional[AbmError]) -> None:
        if error is not None:
            self.record_shortfall(f"limit {'buy' if self.sign > 0 else 'sell'} (open)", self.requested, 0, str(error))
            return
        self.entry_oids.append(result.oid)
        if result.resting:
            self.wake_in(int(self.p.poll_s * US_PER_S), self._poll_entry)
        else:
            self._arm_all()

    def _poll_entry(self, t: int) -> None:
        """Armed once the resting entry has filled whole or left the book (a part of it may have filled)."""
        if self.entry_oids[-1] in self.open_orders():
            self.wake_in(int(self.p.poll_s * US_PER_S), self._poll_entry)
        elif self.size:
            self._arm_all()

    def _arm_all(self) -> None:
        """Once the position is open: the entry and best mark, the price trigger, the polling leashes' clocks."""
        pos = self.position()
        assert pos.entry_price is not None
        self.entry = pos.entry_price
        self.best = self.mark() or floor(self.entry)
        self.armed = True
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
        rec.sent_us.append(self.now)
        self.market(rec.side, qty or abs(size), slippage_bps=slippage_bps, reduce_only=True,
                    on_done=lambda r, e: self._sent(rec, slippage_bps, r))

    def _sent(self, rec: ExitRecord, slippage_bps: float, result: Any) -> None:
        if result is not None:
            rec.oids.append(result.oid)
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
            self.wake_in(int(self.p.poll_s * US_PER_S), lambda t: self._watch_flat(rec))

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
        rec = ExitRecord(kind, t, other, symbol, side, qty, retry=False)  # against the hedge market's mark
        self.exits.append(rec)
        if qty < 1:
            self.record_shortfall("hedge", 0, 0, "the hedge is less than one lot", symbol)
            return

        def landed(result: Any, error: Optional[AbmError]) -> None:
            if result is not None:
                rec.oids.append(result.oid)
            if result is None or result.filled < qty:
                self.record_shortfall(f"market {'sell' if side == SELL else 'buy'} (hedge)", qty,
                                      result.filled if result is not None else 0,
                                      str(error) if error is not None else "the book ran out within the bound", symbol)

        self.market(side, qty, symbol=symbol, slippage_bps=slippage_bps, on_done=landed)

    def top_up(self, amount: int, landed: Any) -> None:
        """Move ``amount`` from the cross balance into the isolated margin; ``landed(ok)`` when it arrives."""
        before = self.position().margin

        def done(result: Any, error: Optional[AbmError]) -> None:
            if error is None:
                self.top_ups.append((self.now, amount, before, self.position().margin))
            landed(error is None)
            self._arm()

        self.ctx.transfer_margin(self.symbol, amount, on_done=done)

    def _flat(self, rec: ExitRecord) -> None:
        self._closing = None
        self._flat_after_exit = True

    # ------------------------------------------------------------------ what the report reads

    def outcome(self, fills: dict[int, Fills], liquidated: bool) -> dict[str, Any]:
        """The position's story in plain numbers (prices in the quote currency, sizes in base units), its fills
        from ``fills`` (``fills_by_order`` of the run's tape) and ``liquidated`` from the liquidation log."""
        spec = self.ctx.spec(self.symbol)
        tick, lot = float(spec.tick_size), float(spec.lot_size)
        entry = _sum(fills, self.entry_oids)
        first = next((r for r in self.exits if r.kind != "hedge"), None)
        hedge = next((r for r in self.exits if r.kind == "hedge"), None)
        ex = _sum(fills, first.oids) if first else Fills()
        hf = _sum(fills, hedge.oids) if hedge else Fills()
        flat_by_exit = first is not None and ex.lots >= first.held and not liquidated
        ended = "liquidated" if liquidated else "exit" if flat_by_exit else "held"

        def slip(rec: Optional[ExitRecord], f: Fills) -> Optional[float]:
            v = f.vwap()
            if rec is None or v is None:
                return None
            sign = 1 if rec.side == BUY else -1
            return float(sign * (v - rec.trigger_mark) / rec.trigger_mark * 10_000)

        ev = entry.vwap()
        return {
            "opened_s": entry.last_us / US_PER_S if entry.last_us is not None else None,
            "entry_price": float(ev) * tick if ev is not None else None,
            "entry_filled_base": entry.lots * lot,
            "entry_fill_ratio": entry.lots / self.requested if self.requested else 0.0,
            "entry_slippage_bps": (float(self.sign * (ev - self.entry_mark) / self.entry_mark * 10_000)
                                   if ev is not None and self.entry_mark else None),
            "ended": ended,
            "exit_kind": first.kind if first else None,
            "exit_trigger_s": first.trigger_us / US_PER_S if first else None,
            "exit_trigger_price": first.trigger_mark * tick if first else None,
            "exit_price": float(ex.vwap()) * tick if ex.lots else None,  # type: ignore[arg-type]
            "exit_slippage_bps": slip(first, ex),
            "exit_filled_base": ex.lots * lot if first else None,
            "exit_orders": len(first.oids) if first else 0,
            "time_to_flat_s": ((ex.last_us - first.trigger_us) / US_PER_S
                               if flat_by_exit and first is not None and ex.last_us is not None else None),
            "hedge_trigger_s": hedge.trigger_us / US_PER_S if hedge else None,
            "time_to_hedge_s": ((hf.last_us - hedge.trigger_us) / US_PER_S
                                if hedge is not None and hf.last_us is not None and hf.lots >= hedge.held else None),
            "hedge_slippage_bps": slip(hedge, hf),
            "topped_up_usdc": sum(a for _, a, _, _ in self.top_ups) / USDC,
        }


__all__ = ["PositionHolder", "PositionParams", "ExitRecord", "Fills", "fills_by_order"]
