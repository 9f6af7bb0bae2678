"""The liquidation process: book liquidation, backstop vault, insurance fund, auto-deleveraging.

A liquidation process is a registered piece (``LIQUIDATION_PROCESSES``, chosen by a venue profile's
``liquidation.process``): the exchange builds one and talks to it only through ``LiquidationProcess``.
``Liquidator``, registered as ``book_backstop_adl``, is the waterfall below and every venue's default;
``no_feedback`` (``abm.margin.no_feedback``) is the control that takes every unit off the book at the mark.

Runs inside ``Exchange.set_mark`` for the units whose trigger fired (see ``abm.margin.engine``):
1. cancel the unit's resting orders;
2. below ``backstop_ratio`` x MM the backstop vault takes the unit over at once; otherwise liquidation
   market orders go into the book, the whole position or a slice above the notional threshold, never
   past the bankruptcy price (fills beyond it would only create bad debt), then a cooldown;
3. when the book cannot absorb a slice, the backstop takes over (or, without a backstop, ADL);
4. the backstop takes the positions at the mark and keeps the unit's remaining equity; negative
   equity is bad debt paid by the insurance fund; when the fund cannot pay it, or the vault is at its
   loss limit, auto-deleveraging closes the unit against ranked opposite positions instead.
The liquidator acts on the venue only through ``LiquidationVenue`` (the exchange): liquidation orders,
order cancels, and its settlement for position transfers and balance credits. Money moves only through
that settlement and ledger transfers, so conservation holds throughout.
The insurance fund never goes below zero: ADL at the mark closes at the mark while the fund can pay what
that leaves, and otherwise at the price that uses up the unit's equity plus the whole fund, so the
counterparties carry exactly what the fund cannot (step 5 of the waterfall in docs/design.md).
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil, floor
from typing import Callable, Optional, Protocol

from abm.accounts.account import CROSS, Account, Position
from abm.accounts.ledgers import Ledgers
from abm.accounts.market_state import Market
from abm.margin.adl import AdlRanking
from abm.margin.engine import CROSS_UNIT, MarginEngine, Unit
from abm.margin.events import KIND_CODE
from abm.margin.params import LiquidationConfig
from abm.registry import Registry
from abm.units import BUY, SELL

_MAX_ROUNDS = 100_000


class Settler(Protocol):
    """The venue's settlement (``abm.exchange.settlement.Settlement``): the only way the liquidator changes a balance or a position."""

    def settle(self, acct: Account, m: Market, dq: int, price: int, fee: int, release: bool = True,
               liq: bool = False) -> None:
        """Book ``dq`` lots at ``price`` to an account, off the book."""

    def credit(self, a: Account, amount: int) -> None:
        """Change an account's cross balance."""


class LiquidationVenue(Protocol):
    """What the liquidator may do to the venue it serves (the exchange, the only mutator of its books)."""

    now: int
    accounts: dict[int, Account]
    markets: list[Market]
    ledgers: Ledgers

    @property
    def settlement(self) -> Settler:
        """Where the venue books money and positions."""

    def _liquidation_order(self, a: Account, idx: int, side: int, qty: int, worst: int) -> tuple[int, int, int]:
        """A liquidation-flagged market order; returns (filled lots, filled tick·lots, order id)."""

    def _drop(self, oid: int) -> int:
        """Cancel a resting order."""

    def open_account(self, deposit: int = 0) -> int:
        """Open an account (the no-feedback control's counterparty, when the run has no vault)."""


class LiquidationProcess(Protocol):
    """What the exchange asks of its liquidation process; all it knows of one.

    Built once per exchange as ``cls(venue, engine)``: the ``LiquidationVenue`` it acts on and the
    venue's ``MarginEngine`` (triggers, equity, maintenance, per-market ``LiquidationConfig``s in
    ``engine.params``, cooldowns, the vault, the log). It moves money and positions only through
    ``venue.settlement`` and ledger transfers, so conservation holds whatever it decides.
    """

    def on_mark(self, idx: int) -> None:
        """A new mark in margined market ``idx`` (``Exchange.set_mark``): liquidate what it made liquidatable."""

    def cover_bad_debt(self, a: Account, unit: Unit) -> None:
        """``unit`` of account ``a`` was left with negative money (a close beyond its bankruptcy price): settle
        the debt (the engine's ``on_bad_debt``, and an isolated flip's settlement, call this)."""


# What a registered name or ``module:Class`` resolves to: a class whose instances are LiquidationProcesses.
LiquidationFactory = Callable[[LiquidationVenue, MarginEngine], LiquidationProcess]
DEFAULT_LIQUIDATION_PROCESS = "book_backstop_adl"


def is_liquidation_process(piece: object) -> bool:
    """A class offering the ``LiquidationProcess`` methods (a subclass of ``Liquidator`` or a class of its own)."""
    return isinstance(piece, type) and all(callable(getattr(piece, m, None)) for m in ("on_mark", "cover_bad_debt"))


LIQUIDATION_PROCESSES: Registry[LiquidationFactory] = Registry(
    "liquidation process", "liquidation.process",
    "a class implementing abm.margin.LiquidationProcess (on_mark, cover_bad_debt), e.g. a subclass of abm.margin.Liquidator",
    is_liquidation_process)


@LIQUIDATION_PROCESSES.register(DEFAULT_LIQUIDATION_PROCESS)
class Liquidator:
    """Book liquidation in slices, then the backstop vault, then the insurance fund and ADL (the module's waterfall)."""

    def __init__(self, ex: LiquidationVenue, engine: MarginEngine) -> None:
        self.ex = ex
        self.eng = engine
        self._ranking: dict[tuple, list] = {}
        self._fund_unwind_next: dict[int, int] = {}  # market -> when the fund's account sells its next slice

    # ------------------------------------------------------------------ entry point

    def on_mark(self, idx: int) -> None:
        eng = self.eng
        eng.mark_seq += 1
        trigger = eng.mark_seq
        now = self.ex.now
        for unit, until in sorted(eng.cooling.items()):
            if now >= until:
                del eng.cooling[unit]
                eng.reindex(unit)
            else:
                a = self.ex.accounts[unit[0]]
                cfg = self._config(a, unit)
                if cfg is not None and cfg.backstop and eng.positions(a, unit):
                    if self._equity(a, unit) < cfg.backstop_ratio * eng.maintenance(a, unit):
                        self.backstop(unit, trigger)
        eng.process_dirty()
        for _ in range(_MAX_ROUNDS):
            units = eng.triggered(idx, eng.mark(idx))
            if not units:
                break
            seen: set[Unit] = set()
            for unit in units:
                if unit not in seen:
                    seen.add(unit)
                    self.process(unit, trigger)
            eng.process_dirty()
        self._house_adl(trigger)
        self.unwind(idx)
        eng.process_dirty()

    def _house_adl(self, trigger: int) -> None:
        """A vault whose equity fell below its ADL trigger (default: below zero, it cannot cover its losses), and a
        fund whose account's inventory lost more than the fund holds, have their positions closed by ADL per the
        profile rather than being left negative."""
        eng = self.eng
        for aid, short in ((eng.vault, lambda v: eng.equity(v, (v.id, CROSS_UNIT)) < eng.vault_adl_equity),
                           (eng.fund_account, lambda _f: self.fund_value() < 0)):
            if aid is None:
                continue
            acct = self.ex.accounts[aid]
            if any(p.size for p in acct.positions.values()) and short(acct):
                self.adl((aid, CROSS_UNIT), trigger)
                eng.process_dirty()

    def _config(self, a: Account, unit: Unit) -> Optional[LiquidationConfig]:
        ps = self.eng.positions(a, unit)
        return self.eng.params[ps[0][0]].liquidation if ps else None

    def _equity(self, a: Account, unit: Unit) -> int:
        return self.eng.equity(a, unit)

    # ------------------------------------------------------------------ one unit

    def process(self, unit: Unit, trigger: int) -> None:
        eng, ex = self.eng, self.ex
        a = ex.accounts[unit[0]]
        if unit in eng.cooling or not eng.liquidatable(a, unit):
            eng.reindex(unit)
            return
        self._cancel_orders(a, unit)
        cfg = self._config(a, unit)
        assert cfg is not None  # a liquidatable unit holds a position
        eq = self._equity(a, unit)
        if cfg.backstop and eq < cfg.backstop_ratio * eng.maintenance(a, unit):
            self.backstop(unit, trigger)
            return
        absorbed = True
        sliced = False
        for i, p in self._legs(a, unit):
            c = eng.params[i].liquidation
            mark = eng.mark(i)
            size = p.size
            qty = abs(size)
            if c.slice_threshold is not None and qty * ex.markets[i].spec.multiplier * mark > c.slice_threshold:
                qty = max(1, ceil(qty * c.slice_fraction))
                sliced = sliced or qty < abs(size)
            before = self._equity(a, unit)
            # the leg may use up the unit's whole equity, never more: fills past this price would be bad debt
            pb = eng.bankruptcy_price(a, unit, i, before, Fraction(1))
            side = SELL if size > 0 else BUY
            worst = max(1, ceil(pb)) if side == SELL else floor(pb)
            fees_before = p.fees
            filled, notional_ticks, oid = (0, 0, -1) if worst < 1 else ex._liquidation_order(a, i, side, qty, worst)
            if filled:
                if unit[1] == CROSS_UNIT:
                    self._waive_fee(a, p, p.fees - fees_before)
                self._charge_fee(a, unit, i, notional_ticks, c.fee_ppm)
                self._record("book", a, unit, i, -filled if size > 0 else filled, notional_ticks // filled,
                             trigger, before, oid=oid)
            if filled < qty:
                # the book cannot take this leg within its bankruptcy price: the unit goes on as a whole (backstop
                # or ADL) rather than shedding its other legs into the book and keeping the one that failed
                absorbed = False
                break
        if sliced and eng.positions(a, unit):
            eng.cooling[unit] = ex.now + cfg.cooldown_us
        if not absorbed and eng.liquidatable(a, unit):
            eng.cooling.pop(unit, None)
            if cfg.backstop or cfg.insurance_takeover:
                self.backstop(unit, trigger)
            else:
                self.adl(unit, trigger)
        else:
            self._settle_flat(a, unit)

    def _legs(self, a: Account, unit: Unit) -> list[tuple[int, Position]]:
        """The unit's positions in liquidation order: the most losing first (ties by market), so a failed book
        liquidation never leaves an account holding its losers after selling its winners."""
        eng, markets = self.eng, self.ex.markets
        ps = eng.positions(a, unit)
        if len(ps) > 1:
            ps.sort(key=lambda ip: (ip[1].size * markets[ip[0]].spec.multiplier * eng.mark(ip[0]) - ip[1].cost, ip[0]))
        return ps

    def _waive_fee(self, a: Account, p: Position, fee: int) -> None:
        """A liquidation order's trading fee is paid only out of what the cross account has left: the venue
        forgoes the part that would turn into bad debt (isolated fills are waived fill by fill on settlement)."""
        eq = self.eng.equity(a, (a.id, CROSS_UNIT))
        if eq < 0 and fee > 0:
            w = min(-eq, fee)
            self.ex.ledgers.balances["fees"] -= w
            p.fees -= w
            self.ex.settlement.credit(a, w)

    def _cancel_orders(self, a: Account, unit: Unit) -> None:
        ex = self.ex
        for oid, i in sorted(a.open_orders.items()):
            if self.eng.unit_of(a.id, i) == unit or (unit[1] == CROSS_UNIT and i not in a.positions):
                ex._drop(oid)

    def _charge_fee(self, a: Account, unit: Unit, idx: int, notional_ticks: int, ppm: int) -> None:
        if not ppm:
            return
        value = notional_ticks * self.ex.markets[idx].spec.multiplier
        fee = min(-((-value * ppm) // 1_000_000), max(0, self._equity(a, unit)))
        if fee > 0:
            self._bucket_add(a, unit, -fee)
            self.ex.ledgers.balances["insurance"] += fee

    def _bucket_add(self, a: Account, unit: Unit, amount: int) -> None:
        if unit[1] == CROSS_UNIT:
            self.ex.settlement.credit(a, amount)
        else:
            a.positions[unit[1]].margin += amount
            self.eng.dirty.add(unit)

    def _bucket(self, a: Account, unit: Unit) -> int:
        return a.balance if unit[1] == CROSS_UNIT else a.positions[unit[1]].margin

    def _settle_flat(self, a: Account, unit: Unit) -> None:
        """A unit closed out completely with negative money left: that is bad debt."""
        if not self.eng.positions(a, unit) and self._bucket(a, unit) < 0:
            self.cover_bad_debt(a, unit)

    # ------------------------------------------------------------------ backstop

    def backstop(self, unit: Unit, trigger: int) -> None:
        """Take the unit over off the book: the vault at the mark, else (``insurance_takeover``, Binance) the fund.

        The fund's takeover is the reference's close "at the bankruptcy price against the insurance fund", booked
        as the vault's is: the fund's account takes the positions at the mark and the fund pays the unit's negative
        equity (a ``bad_debt`` row) or keeps its positive equity, which leaves trader and fund exactly where a
        close at the bankruptcy price would, without rounding that price to a tick. Either way, a debt the fund
        cannot pay goes to ADL, and so does a unit neither may take.
        """
        eng, ex = self.eng, self.ex
        a = ex.accounts[unit[0]]
        cfg = self._config(a, unit)
        assert cfg is not None  # only units that hold positions are taken over
        eq = self._equity(a, unit)
        if eq < 0 and ex.ledgers.balances["insurance"] < -eq:
            self.adl(unit, trigger)
        elif cfg.backstop and self._vault_takes(a, unit):
            self._take_over(a, unit, ex.accounts[eng.vault], trigger)  # type: ignore[index]  # _vault_takes: a vault
        elif cfg.insurance_takeover:
            self._take_over(a, unit, self._fund_account(), trigger)
        else:
            self.adl(unit, trigger)

    def _vault_takes(self, a: Account, unit: Unit) -> bool:
        """A vault exists and neither its loss limit nor its notional limit keeps it from taking this unit."""
        eng = self.eng
        vid = eng.vault
        if vid is None:
            return False
        vault = self.ex.accounts[vid]
        return eng.equity(vault, (vid, CROSS_UNIT)) >= eng.vault_min_equity and not self._past_vault_limit(vault, a, unit)

    def _take_over(self, a: Account, unit: Unit, receiver: Account, trigger: int) -> None:
        ex = self.ex
        self._cancel_orders(a, unit)
        for i, p in self.eng.positions(a, unit):
            before = self._equity(a, unit)
            size = p.size
            mark = self.eng.mark(i)
            self.transfer(a, receiver, i, size, mark)
            self._record("backstop", a, unit, i, -size, mark, trigger, before)
            self._unwind_soon(i)
        left = self._bucket(a, unit)
        if left > 0:
            self._bucket_add(a, unit, -left)
            if receiver.id == self.eng.vault:
                ex.settlement.credit(receiver, left)
            else:
                ex.ledgers.balances["insurance"] += left
        elif left < 0:
            self.cover_bad_debt(a, unit)

    # ------------------------------------------------------------------ the insurance fund's account

    def _fund_account(self) -> Account:
        """The account that holds what the fund took over (opened, with no deposit, at its first takeover); the
        engine never liquidates it, and its cash goes to the fund's ledger as its inventory is sold."""
        eng, ex = self.eng, self.ex
        if eng.fund_account is None:
            eng.fund_account = ex.open_account(0)
        return ex.accounts[eng.fund_account]

    def fund_value(self) -> int:
        """The insurance fund: its ledger plus the equity of what its account holds at the marks."""
        fid = self.eng.fund_account
        held = self.eng.equity(self.ex.accounts[fid], (fid, CROSS_UNIT)) if fid is not None else 0
        return self.ex.ledgers.balances["insurance"] + held

    def _sweep_fund(self) -> None:
        """The fund account's cash (what its sales realised) into the fund's ledger, never taking it below zero:
        a loss beyond the ledger stays on the account, visible there, until the fund can pay it."""
        fid = self.eng.fund_account
        if fid is None:
            return
        acct = self.ex.accounts[fid]
        ledgers = self.ex.ledgers.balances
        amount = acct.balance if acct.balance >= 0 else -min(-acct.balance, max(0, ledgers["insurance"]))
        if amount:
            self.ex.settlement.credit(acct, -amount)
            ledgers["insurance"] += amount

    def _past_vault_limit(self, vault: Account, a: Account, unit: Unit) -> bool:
        """Whether taking the unit over would take the vault's position in one of its markets past its notional
        limit (``vault_max_notional``, at the mark): such a unit goes to ADL instead."""
        eng = self.eng
        limit = eng.vault_max_notional
        if limit is None:
            return False
        for i, p in eng.positions(a, unit):
            held = vault.positions.get(i)
            after = p.size + (held.size if held is not None else 0)
            if abs(after) * self.ex.markets[i].spec.multiplier * eng.mark(i) > limit:
                return True
        return False

    def _unwind_soon(self, idx: int) -> None:
        due = self.ex.now + self.eng.unwind_interval_us
        self.eng._unwind_next.setdefault(idx, due)
        self._fund_unwind_next.setdefault(idx, due)

    def unwind(self, idx: int) -> None:
        """The vault and the fund's account sell what they took over back into the book in slices, one per
        interval, within a slippage bound (the vault's settings serve both)."""
        eng = self.eng
        if eng.vault is not None:
            self._unwind(eng.vault, eng._unwind_next, idx)
        if eng.fund_account is not None:
            self._unwind(eng.fund_account, self._fund_unwind_next, idx)
            self._sweep_fund()

    def _unwind(self, aid: int, schedule: dict[int, int], idx: int) -> None:
        eng, ex = self.eng, self.ex
        pos = ex.accounts[aid].positions.get(idx)
        if pos is None or not pos.size:
            schedule.pop(idx, None)
            return
        due = schedule.get(idx)
        if due is None:
            schedule[idx] = ex.now + eng.unwind_interval_us
            return
        if ex.now < due:
            return
        c = eng.params[idx].liquidation
        qty = max(1, ceil(abs(pos.size) * c.slice_fraction))
        mark = eng.mark(idx)
        f = Fraction(eng.unwind_slippage_bps, 10_000)
        side = SELL if pos.size > 0 else BUY
        worst = max(1, ceil(mark * (1 - f))) if side == SELL else floor(mark * (1 + f))
        ex._liquidation_order(ex.accounts[aid], idx, side, qty, worst)
        schedule[idx] = ex.now + eng.unwind_interval_us

    # ------------------------------------------------------------------ bad debt and ADL

    def cover_bad_debt(self, a: Account, unit: Unit) -> None:
        """The fund pays the unit's debt as far as it can, and never goes below zero.

        The waterfall only leaves debt the fund can pay (ADL closes at the price that keeps it so); a unit that
        closed itself beyond its bankruptcy price has nothing left to deleverage, so what the fund cannot pay
        stays on the account as a negative balance (the row's ``equity_after``), paid as soon as the fund can.
        """
        debt = -self._bucket(a, unit)
        if debt <= 0:
            return
        ins = self.ex.ledgers.balances
        paid = min(debt, max(0, ins["insurance"]))
        if not paid:
            return
        self._bucket_add(a, unit, paid)
        ins["insurance"] -= paid
        idx = unit[1] if unit[1] != CROSS_UNIT else -1
        self._record("bad_debt", a, unit, idx, 0, 0, self.eng.mark_seq, -debt, bad_debt=paid)

    def adl(self, unit: Unit, trigger: int) -> None:
        eng, ex = self.eng, self.ex
        a = ex.accounts[unit[0]]
        self._cancel_orders(a, unit)
        ps = eng.positions(a, unit)
        if not ps:
            return
        adl_price = eng.params[ps[0][0]].liquidation.adl_price
        eq = self._equity(a, unit)
        # At the mark the unit keeps its (negative) equity and the fund pays it; what the fund cannot pay the
        # counterparties carry: the legs close at the price that uses up the unit's equity plus the fund.
        # (The fund's own account is closed so too, whatever the ADL price: the fund pays first what it can.)
        fund = max(0, ex.ledgers.balances["insurance"])
        own = unit[0] == eng.fund_account
        shifted = (adl_price == "mark" or own) and eq + fund < 0
        target = eq + fund if shifted else eq
        notionals = [abs(p.size) * ex.markets[i].spec.multiplier * eng.mark(i) for i, p in ps]
        total = sum(notionals)
        for (i, p), notional in zip(ps, notionals):
            c = eng.params[i].liquidation
            size = p.size
            if shifted or (c.adl_price == "bankruptcy" and not own):
                # rounded in the unit's favour: what it then owes stays within what the fund can pay
                pb = eng.bankruptcy_price(a, unit, i, target, Fraction(notional, total))
                price = max(1, ceil(pb)) if size > 0 else max(1, floor(pb))
            else:
                mark = eng.mark(i)
                assert mark is not None  # a market with positions has a mark
                price = mark
            left = abs(size)
            for cp, cpos in self.ranked(i, size, a.id, c.ranking):
                q = min(left, abs(cpos.size))
                before = self._equity(a, unit)
                cp_unit = eng.unit_of(cp.id, i)
                cp_before = eng.equity(cp, cp_unit)
                signed = q if size > 0 else -q
                self.transfer(a, cp, i, signed, price)
                self._record("adl", a, unit, i, -signed, price, trigger, before)
                self._record("adl_counterparty", cp, cp_unit, i, signed, price, trigger, cp_before)
                left -= q
                if not left:
                    break
        left_money = self._bucket(a, unit)
        if not eng.positions(a, unit):
            if left_money > 0 and (adl_price == "bankruptcy" or shifted):
                # what rounding the bankruptcy price to ticks left over goes to the fund, as on Binance
                self._bucket_add(a, unit, -left_money)
                ex.ledgers.balances["insurance"] += left_money
            elif left_money > 0 and unit[1] != CROSS_UNIT:
                self._bucket_add(a, unit, -left_money)  # what is left stays with the trader
                ex.settlement.credit(a, left_money)
            elif left_money < 0:
                self.cover_bad_debt(a, unit)
            if own:
                self._sweep_fund()

    def ranked(self, idx: int, size: int, exclude: int, ranking: AdlRanking) -> list[tuple[Account, Position]]:
        """Opposite positions in ADL order: profitable ones by the venue's score, then the rest; ties by age.

        Scored once per mark update, market and side (a cascade may ADL many units at one mark); within
        that update the order is kept and positions already closed are skipped.
        """
        key = (idx, size > 0, self.eng.mark_seq, ranking)
        cached = self._ranking.get(key)
        if cached is None:
            self._ranking.clear()
            cached = self._ranking[key] = self._score(idx, size, ranking)
        return [(a, p) for a, p in cached if a.id != exclude and p.size and (p.size > 0) != (size > 0)]

    def _score(self, idx: int, size: int, ranking: AdlRanking) -> list[tuple[Account, Position]]:
        eng, ex = self.eng, self.ex
        mark = eng.mark(idx)
        mult = ex.markets[idx].spec.multiplier
        scored = []
        for aid, p in ex.markets[idx].holders.items():
            if (p.size > 0) == (size > 0):
                continue
            acct = ex.accounts[aid]
            upnl = p.size * mult * mark - p.cost
            equity = eng.equity(acct, eng.unit_of(aid, idx))
            notional = abs(p.size) * mult * mark
            score = ranking.score(p, mark, mult, upnl, notional, equity) if equity > 0 else Fraction(-1)
            scored.append((0 if upnl > 0 else 1, -score, p.opened, acct, p))
        scored.sort(key=lambda t: (t[0], t[1], t[2]))
        return [(t[3], t[4]) for t in scored]

    def transfer(self, a: Account, b: Account, idx: int, size: int, price: int) -> None:
        """Move ``size`` signed lots of position from ``a`` to ``b`` at ``price``, off the book and fee-free.

        The liquidated side ``a`` keeps its isolated margin in the position's bucket (the caller hands it
        to the vault, the fund or the owner); the receiving side settles normally.
        """
        m = self.ex.markets[idx]
        self.ex.settlement.settle(a, m, -size, price, 0, release=False)
        self.ex.settlement.settle(b, m, size, price, 0)

    # ------------------------------------------------------------------ log

    def _record(self, kind: str, a: Account, unit: Unit, idx: int, size: int, price: int, trigger: int,
                before: int, oid: int = -1, bad_debt: int = 0) -> None:
        eng = self.eng
        after = self._equity(a, unit) if (unit[1] == CROSS_UNIT or unit[1] in a.positions) else 0
        mode = a.positions[idx].mode if idx >= 0 and idx in a.positions else CROSS
        self.eng.log.record(
            time_us=self.ex.now, trigger=trigger, account=a.id, market=idx, mode=mode, kind=KIND_CODE[kind],
            size=size, price=price, mark=eng.mark(idx) if idx >= 0 else 0, equity_before=before,
            equity_after=after, bad_debt=bad_debt, insurance_after=self.fund_value(),
            order_id=oid,
        )
