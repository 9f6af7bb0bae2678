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

from dataclasses import dataclass
from fractions import Fraction
from math import ceil, floor
from typing import Annotated, Any, Iterator, Literal, Optional

import numpy as np

from abm.agents.base import TraderParams, WakeMode
from abm.agents.leashed import ExitRecord, Fills, LeashedTrader, _sum, fills_by_order
from abm.agents.leashes import HedgeSpec, TopUpSpec, parse_leash
from abm.agents.limits import limit_text, position_room
from abm.agents.params import Bps, Leverage, PositiveSeconds, PositiveUsdc, Seconds, Usdc, number
from abm.config import Problem
from abm.errors import AbmError, InvalidInput
from abm.units import BUY, SELL, USDC

US_PER_S = 1_000_000


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
    spot_venue: Optional[str] = None  # a [spot.NAME] venue where a spot hedge trades (an account of its own there)
    spot_cash_usdc: Usdc = 0.0  # that account's cash (a short's hedge buys with it); its inventory: spot_inventory
    sample_s: PositiveSeconds = 10.0  # how often its equity path is recorded
    wake: WakeMode = "none"  # its actions come from its own clock and triggers

    def cross_checks(self) -> Iterator[Problem]:
        for i, raw in enumerate(self.leashes):
            spec, found = parse_leash(i, raw)
            yield from found
            if isinstance(spec, TopUpSpec) and self.margin_mode != "isolated":
                yield Problem(f"leashes[{i}].kind", "top_up", "applies to margin_mode = 'isolated' (a cross position "
                                                             "is backed by the whole balance already)")
            if isinstance(spec, HedgeSpec) and spec.spot and self.spot_venue is None:
                yield Problem(f"leashes[{i}].spot", True, "needs spot_venue (the [spot.NAME] venue the hedge trades on)")
            if isinstance(spec, HedgeSpec) and spec.symbol is not None and spec.symbol == self.symbol:
                yield Problem(f"leashes[{i}].symbol", spec.symbol, "must be another market than the position's")


class PositionHolder(LeashedTrader):
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
        self.side_sign = 1 if p.side == "long" else -1
        self.poll_s = p.poll_s
        self.ctx.set_margin_mode(self.symbol, p.margin_mode)
        self.ctx.set_leverage(self.symbol, p.leverage)
        if p.spot_venue is not None:
            self.open_spot_account(p.spot_venue, round(p.spot_cash_usdc * USDC), p.spot_inventory)
        self.init_leashes(p.leashes, f"agents.{self.kind}.leashes")
        self.entry_mark: Optional[int] = None  # the mark when it decided to open
        self.entry_oids: list[int] = []
        self.requested = 0
        self.path: list[tuple[int, int]] = []  # (time_us, equity in quote units)
        self._entry_price = 0  # a limit entry's price (ticks)
        self._retries = 0

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        self.wake_at(int(round(self.p.open_s * US_PER_S)), self._open)
        self.wake_at(0, self._sample)

    def _sample(self, t: int) -> None:
        self.path.append((t, self.equity()))
        self.wake_in(int(self.p.sample_s * US_PER_S), self._sample)

    # ------------------------------------------------------------------ opening

    def _open(self, t: int) -> None:
        mark = self.mark()
        if mark is None:  # no price yet: look again shortly
            self.wake_in(int(self.p.poll_s * US_PER_S), self._open)
            return
        self.entry_mark = mark
        qty = floor(Fraction(round(self.p.notional_usdc * USDC)) / (mark * self._mult))
        self.requested = qty
        side = BUY if self.side_sign > 0 else SELL
        if qty < 1:
            self.record_shortfall("open", 0, 0, f"notional {self.p.notional_usdc:g} is less than one lot at the mark")
            return
        if self.p.entry == "market":
            if not self._fit(side, qty, mark, "market"):
                return
            # within the venue's maximum market-order value: children one after another, judged once all have landed
            self.market_split(side, self.requested - abs(self.size), slippage_bps=self.p.entry_slippage_bps,
                              on_done=self._entered)
            return
        mid = self.view().mid()
        ref = Fraction(mid) if mid is not None else Fraction(mark)
        price = ref * (1 - self.side_sign * Fraction(repr(self.p.entry_offset_bps)) / 10_000)
        self._entry_price = floor(price) if self.side_sign > 0 else ceil(price)
        if self._fit(side, qty, self._entry_price, "limit"):
            self.limit(side, self.requested, self._entry_price, on_done=self._entered_limit)

    def _fit(self, side: int, qty: int, price: int, kind: str) -> bool:
        """The bracket's ``max_position_notional`` (at the order's price; a market order's is the mark): open what it
        allows and record the rest (``requested`` becomes what is sent). False: nothing fits, nothing is sent."""
        room = position_room(self.ctx, self.symbol, side, price)
        if room is None or room >= qty:
            return True
        if not self._retries:  # once, not again at each look at an empty book
            self.record_shortfall(f"{kind} {'buy' if self.side_sign > 0 else 'sell'} (open)", qty, room,
                                  f"sized down to {room} lots to stay within "
                                  f"{limit_text(self.ctx, self.symbol, 'max_position_notional')}")
        self.requested = room
        return room > 0

    def _entered(self, results: list[Any], errors: list[AbmError]) -> None:
        what = f"market {'buy' if self.side_sign > 0 else 'sell'} (open)"
        self.entry_oids.extend(r.oid for r in results)
        if not errors and not sum(r.filled for r in results) and self._retries < self.p.entry_retries:
            self._retries += 1  # an empty book (a run's first instants): look again
            self.wake_in(int(self.p.poll_s * US_PER_S), self._open)
            return
        held = abs(self.size)
        if held < self.requested:
            why = str(errors[-1]) if errors else "the book ran out within the slippage bound"
            self.record_shortfall(what, self.requested, held, why)
        if held:
            self._arm_all()

    def _entered_limit(self, result: Any, error: Optional[AbmError]) -> None:
        if error is not None:
            self.record_shortfall(f"limit {'buy' if self.side_sign > 0 else 'sell'} (open)", self.requested, 0, str(error))
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

    # ------------------------------------------------------------------ what the report reads

    def outcome(self, fills: dict[int, Fills], liquidated: bool, spot_fills: Optional[dict[int, Fills]] = None) -> dict[str, Any]:
        """The position's story in plain numbers (prices in the quote currency, sizes in base units), its fills
        from ``fills`` (``fills_by_order`` of the run's tape; a spot hedge's from ``spot_fills``, of the spot tape)
        and ``liquidated`` from the liquidation log."""
        spec = self.ctx.spec(self.symbol)
        tick, lot = float(spec.tick_size), float(spec.lot_size)
        entry = _sum(fills, self.entry_oids)
        first = next((r for r in self.exits if r.kind != "hedge"), None)
        hedge = next((r for r in self.exits if r.kind == "hedge"), None)
        ex = _sum(fills, first.oids) if first else Fills()
        hedge_fills = (spot_fills or {}) if hedge is not None and hedge.venue else fills
        hf = _sum(hedge_fills, hedge.oids) if hedge else Fills()
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
            "entry_slippage_bps": (float(self.side_sign * (ev - self.entry_mark) / self.entry_mark * 10_000)
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
