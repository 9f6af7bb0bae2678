"""Margin: equity, initial and maintenance margin at the mark, liquidation prices, and the trigger index.

A *unit* is what gets liquidated together: ``(account, market)`` for an isolated position, and
``(account, CROSS_UNIT)`` for all of an account's cross positions. Everything is valued at the mark
(integer ticks, set by the prices layer through ``Exchange.set_mark``); equity is exact in quote units
and maintenance margin an exact Fraction. A unit is liquidatable when equity <= maintenance margin,
so a position is liquidated at the first mark at or below (long) / at or above (short) its
liquidation price, never a tick earlier.

Why mark updates stay cheap (issue: no scan of every position per mark update): each market keeps two
heaps of trigger prices, longs (fire when mark <= key) and shorts (fire when mark >= key), with lazy
deletion by version. An isolated position's key is its exact liquidation price. A cross account's
margin buffer B = equity - MM is split over its markets in proportion to rate_i * mark_i, where
rate_i bounds how fast an adverse move in market i can eat the buffer (|size| * multiplier for a
long, times (1 + the table's top maintenance rate) for a short); its key in market i sits where that
market alone would use up its share. While no key has fired, the adverse moves sum to less than B,
so the account is safe; when one fires, the account is re-evaluated exactly and re-keyed. A mark
update that liquidates nobody therefore looks at two heap tops; one that liquidates k units costs
O(k log n) plus the work of the liquidations themselves.
"""

from __future__ import annotations

import heapq
from fractions import Fraction
from math import ceil, floor
from typing import Callable, Optional

from abm.accounts.account import CROSS, Account, Position
from abm.accounts.market_state import Market
from abm.errors import InsufficientFunds, InvalidInput
from abm.margin.dynamic import PPM, DynamicMargin
from abm.margin.events import LiquidationLog
from abm.margin.params import RiskParams
from abm.margin.tiers import TierTable

CROSS_UNIT = -1
Unit = tuple[int, int]


def solve_liquidation_price(a0: Fraction | int, mm_others: Fraction | int, size: int, mult: int,
                            table: TierTable) -> Optional[Fraction]:
    """The price P in this market where A + size*mult*P = mm_others + MM(|size|*mult*P).

    ``a0`` is the unit's equity without this market's mark-dependent part (isolated: margin - cost).
    None when no positive price liquidates (e.g. a long with more margin than its notional needs).
    The tiers are tried in turn; MM is continuous and equity - MM monotone in P, so at most one
    band holds a consistent solution (both neighbours agree on a band edge).
    """
    a = abs(size)
    lowers = [t.lower for t in table.tiers] + [None]
    for i, t in enumerate(table.tiers):
        mmr, ded = table.rate_and_deduction(i)
        denom = mult * (size - a * mmr)
        p = (mm_others - ded - a0) / denom
        if p <= 0:
            continue
        n = a * mult * p
        hi = lowers[i + 1]
        if n >= t.lower and (hi is None or n <= hi):
            return Fraction(p)
    if size < 0:
        return Fraction(0)  # a short whose equity is already short of MM at any price
    return None


def liquidation_key(a0: int, size: int, mult: int, table: TierTable) -> Optional[int]:
    """Integer trigger key of a single-position unit: floor (long) or ceil (short) of its liquidation price.

    Same solution as ``solve_liquidation_price`` with no other positions, in integers only: this runs
    on every fill of every margined account, where Fractions cost more than the rest of the fill.
    """
    if size > 0 and a0 >= 0:
        return None  # equity - MM > a0 >= 0 at every price: MM < notional (rates < 1, deductions >= 0)
    a = size if size > 0 else -size
    for mn, md, dn, dd, lower, hi in table.int_terms():
        num = (-a0 * dd - dn) * md
        den = dd * mult * (size * md - a * mn)
        if den < 0:
            num, den = -num, -den
        if num <= 0:
            continue
        n = a * mult * num  # notional * den
        if n >= lower * den and (hi is None or n <= hi * den):
            return num // den if size > 0 else -((-num) // den)
    return 0 if size < 0 else None


MAX_EPOCHS = 4  # old trigger-heap epochs a dynamic-margin market keeps before merging the two oldest


class _Epoch:
    """Trigger heaps keyed under factor ``label`` (ppm), and the effective-mark ratios for the factor in force:
    a long fires when floor(mark x ln / ld) <= key, a short when ceil(mark x sn / sd) >= key (1/1 when the
    factor in force is not above the label)."""

    __slots__ = ("label", "long", "short", "ln", "ld", "sn", "sd")

    def __init__(self, label: int, long: list[tuple[int, int, Unit, int]], short: list[tuple[int, int, Unit, int]]) -> None:
        self.label = label
        self.long = long
        self.short = short
        self.ln = self.ld = self.sn = self.sd = 1

    def rescale(self, ppm: int, x: Fraction) -> None:
        if ppm <= self.label:
            self.ln = self.ld = self.sn = self.sd = 1
            return
        lr = (PPM - ppm * x) / (PPM - self.label * x)  # 1 / rho = (1 - f x) / (1 - g x)
        sr = (PPM + ppm * x) / (PPM + self.label * x)  # 1 / sigma = (1 + f x) / (1 + g x)
        self.ln, self.ld = lr.numerator, lr.denominator
        self.sn, self.sd = sr.numerator, sr.denominator


def _no_bad_debt_handler(a: Account, unit: tuple[int, int]) -> None:
    raise RuntimeError("MarginEngine.on_bad_debt is not set: the exchange wires it to its liquidator")


class MarginEngine:
    """Reads the venue's accounts and markets (it is given them, it never changes positions or books); the
    exchange tells it which units changed (``dirty``) and gives it ``on_bad_debt`` for units left negative."""

    def __init__(self, accounts: dict[int, Account], markets: list[Market]) -> None:
        self.accounts = accounts
        self.markets = markets
        self.on_bad_debt: Callable[[Account, tuple[int, int]], None] = _no_bad_debt_handler
        self.params: dict[int, RiskParams] = {}
        self.marks: dict[int, int] = {}
        self.leverage: dict[Unit, int] = {}
        self.log = LiquidationLog()
        self.mark_seq = 0
        self._long: dict[int, list[tuple[int, int, Unit, int]]] = {}
        self._short: dict[int, list[tuple[int, int, Unit, int]]] = {}
        self._version: dict[Unit, int] = {}
        self._default_lev: dict[int, int] = {}
        self._seq = 0
        self.dirty: set[Unit] = set()
        self.cooling: dict[Unit, int] = {}  # unit -> time its book-liquidation cooldown ends
        self.vault: Optional[int] = None  # backstop vault account id
        self.fund_account: Optional[int] = None  # holds what the insurance fund took over (opened at its first takeover)
        self.vault_min_equity = 0  # loss limit: no takeover once the vault's equity is below this
        self.vault_adl_equity = 0  # ADL trigger: below this equity the vault's own positions are deleveraged
        self.vault_max_notional: Optional[int] = None  # risk limit: its position's notional per market, at the mark
        self.unwind_interval_us = 30_000_000
        self.unwind_slippage_bps = 100
        self._unwind_next: dict[int, int] = {}
        self.tables: dict[int, TierTable] = {}  # the tiers in force: the profile's, times a dynamic factor
        self.dynamic: dict[int, DynamicMargin] = {}  # markets with dynamic margin (abm.margin.dynamic)
        self.factors: dict[int, int] = {}  # their factor (ppm)
        self._im_ppm: dict[int, int] = {}  # markets whose factor is above 1: the IM factor (ppm)
        self._epochs: dict[int, list[_Epoch]] = {}  # older trigger heaps, keyed under another factor

    # ------------------------------------------------------------------ configuration

    def add_market(self, idx: int, params: RiskParams) -> None:
        self.params[idx] = params
        self._default_lev[idx] = params.leverage
        self._long[idx] = []
        self._short[idx] = []
        self.tables[idx] = params.tiers
        if params.dynamic is not None:
            self.dynamic[idx] = params.dynamic.build()
            self.factors[idx] = PPM
            self._epochs[idx] = []

    def lev(self, aid: int, idx: int) -> int:
        return self.leverage.get((aid, idx)) or self.params[idx].leverage

    def mark(self, idx: int) -> int:
        """The market's mark (ticks), else its last trade; 0 before it has either (no position can exist then:
        a position needs a fill, and a fill sets the last price)."""
        p = self.marks.get(idx)
        if p is not None:
            return p
        last = self.markets[idx].last_price
        return last if last is not None else 0

    # ------------------------------------------------------------------ valuation

    def unit_of(self, aid: int, idx: int) -> Unit:
        pos = self.accounts[aid].positions.get(idx)
        return (aid, CROSS_UNIT) if pos is None or pos.mode == CROSS else (aid, idx)

    def positions(self, a: Account, unit: Unit) -> list[tuple[int, Position]]:
        if unit[1] == CROSS_UNIT:
            return [(i, p) for i, p in sorted(a.positions.items())
                    if p.size and p.mode == CROSS and i in self.params]
        p = a.positions.get(unit[1])
        return [(unit[1], p)] if p is not None and p.size and unit[1] in self.params else []

    def equity(self, a: Account, unit: Unit) -> int:
        markets = self.markets
        if unit[1] == CROSS_UNIT:
            e = a.balance
            for i, p in a.positions.items():
                if p.mode == CROSS and p.size and i in self.params:
                    e += p.size * markets[i].spec.multiplier * self.mark(i) - p.cost
            return e
        p = a.positions[unit[1]]
        if not p.size:
            return p.margin
        return p.margin + p.size * markets[unit[1]].spec.multiplier * self.mark(unit[1]) - p.cost

    def maintenance(self, a: Account, unit: Unit) -> Fraction:
        mm = Fraction(0)
        for i, p in self.positions(a, unit):
            mm += self.tables[i].maintenance(abs(p.size) * self.markets[i].spec.multiplier * self.mark(i))
        return mm

    def liquidatable(self, a: Account, unit: Unit) -> bool:
        return bool(self.positions(a, unit)) and self.equity(a, unit) <= self.maintenance(a, unit)

    def liquidation_price(self, aid: int, idx: int) -> Optional[Fraction]:
        """Exact liquidation price (ticks) of the account's position in this market; cross: other marks fixed."""
        a = self.accounts[aid]
        pos = a.positions.get(idx)
        if pos is None or not pos.size or idx not in self.params:
            return None
        unit = self.unit_of(aid, idx)
        mult = self.markets[idx].spec.multiplier
        mark = self.mark(idx)
        a0 = self.equity(a, unit) - pos.size * mult * mark
        mm_others = Fraction(0)
        if unit[1] == CROSS_UNIT:
            for i, p in self.positions(a, unit):
                if i != idx:
                    mm_others += self.tables[i].maintenance(abs(p.size) * self.markets[i].spec.multiplier * self.mark(i))
        return solve_liquidation_price(a0, mm_others, pos.size, mult, self.tables[idx])

    def bankruptcy_price(self, a: Account, unit: Unit, idx: int, equity: int, weight: Fraction) -> Fraction:
        """Price in market ``idx`` at which this position alone would use up ``weight`` of the unit's equity."""
        pos = a.positions[idx]
        mult = self.markets[idx].spec.multiplier
        return self.mark(idx) - weight * equity / (pos.size * mult)

    # ------------------------------------------------------------------ initial margin

    def free_collateral(self, a: Account, extra: Optional[tuple[int, int, int, int]] = None) -> int:
        """Cross equity minus initial margin of cross positions and of every resting order that could add exposure.

        ``extra`` = (market, side, qty, price) adds a prospective order. Isolated markets reserve only
        their orders' opening part (their positions carry their own margin). Runs on every order
        admission, so it reads the account's running totals and nothing else.
        """
        params = self.params
        positions = a.positions
        resting = a.resting
        xi = extra[0] if extra is not None else None
        im = self._market_im
        eq = a.balance
        req = 0
        for i, r in resting.items():  # markets with orders: their positions and orders together
            if i in params:
                req += im(a, i, positions.get(i), r[0], r[1], extra if i == xi else None)
        if xi is not None and xi not in resting:
            req += im(a, xi, positions.get(xi), 0, 0, extra)
        if positions:
            marks = self.marks
            markets = self.markets
            for i, p in positions.items():
                if p.size and i in params:
                    if p.mode == CROSS:
                        mark = marks.get(i)
                        if mark is None:
                            mark = markets[i].last_price
                        eq += p.size * markets[i].spec.multiplier * mark - p.cost  # type: ignore[operator]
                    if i not in resting and i != xi:
                        req += im(a, i, p, 0, 0, None)
        return eq - req

    def _market_im(self, a: Account, i: int, p: Optional[Position], buys: int, sells: int,
                   extra: Optional[tuple[int, int, int, int]]) -> int:
        mark = self.marks.get(i)
        if mark is None:
            mark = self.markets[i].last_price
        if extra is not None:
            if extra[1] == 0:
                buys += extra[2]
            else:
                sells += extra[2]
            if mark is None:
                mark = extra[3]
        if mark is None:
            return 0
        s = p.size if p is not None else 0
        long_after = s + buys
        short_after = s - sells
        if long_after < 0:
            long_after = -long_after
        if short_after < 0:
            short_after = -short_after
        exposure = long_after if long_after > short_after else short_after
        lev = self.leverage.get((a.id, i)) or self._default_lev[i]
        mult = self.markets[i].spec.multiplier
        if self._im_ppm:
            f = self._im_ppm.get(i)
            if f is not None:
                mult *= f
                lev *= PPM
        if p is None or p.mode == CROSS:
            return -((-exposure * mult * mark) // lev)
        opening = exposure - (s if s > 0 else -s)
        return -((-opening * mult * mark) // lev) if opening > 0 else 0

    def _im(self, i: int, notional: int, lev: int) -> int:
        """Initial margin of a notional at a leverage, times the market's dynamic factor (rounded up)."""
        f = self._im_ppm.get(i)
        return -((-notional) // lev) if f is None else -((-notional * f) // (lev * PPM))

    def admit(self, a: Account, idx: int, side: int, qty: int, price: int) -> None:
        """Refuse an order whose initial margin the account cannot cover (orders that add no exposure pass)."""
        if idx not in self.params or a.id == self.vault:
            return
        after = self.free_collateral(a, (idx, side, qty, price))
        if after >= 0:
            return
        before = self.free_collateral(a)
        if after < before:
            raise InsufficientFunds(
                "qty", qty,
                f"initial margin exceeds the free collateral ({before} quote units; this order needs {before - after})",
            )

    def withdrawable(self, a: Account) -> int:
        """Cross collateral that can leave: remaining margin must stay >= max(IM, 10% of notional) per position."""
        if not any(i in self.params and p.size and p.mode == CROSS for i, p in a.positions.items()) and not a.open_orders:
            return max(a.balance, 0)
        free = self.free_collateral(a)
        extra = 0
        for i, p in a.positions.items():
            if p.size and p.mode == CROSS and i in self.params:
                mult = self.markets[i].spec.multiplier
                notional = abs(p.size) * mult * self.mark(i)
                im = self._im(i, notional, self.lev(a.id, i))
                extra += max(0, -((-notional) // 10) - im)
        return max(0, min(a.balance, free - extra))

    def removable_isolated(self, a: Account, idx: int) -> int:
        """Isolated margin that can be taken out: what keeps margin + uPnL >= max(IM, 10% of notional)."""
        pos = a.positions[idx]
        if not pos.size:
            return max(pos.margin, 0)
        mult = self.markets[idx].spec.multiplier
        notional = abs(pos.size) * mult * self.mark(idx)
        need = max(self._im(idx, notional, self.lev(a.id, idx)), -((-notional) // 10))
        return max(0, min(pos.margin, self.equity(a, (a.id, idx)) - need))

    # ------------------------------------------------------------------ the trigger index

    def reindex(self, unit: Unit) -> None:
        v = self._version.get(unit, 0) + 1
        self._version[unit] = v
        aid = unit[0]
        if aid == self.vault or aid == self.fund_account or unit in self.cooling:
            return
        a = self.accounts[aid]
        markets = self.markets
        ps = self.positions(a, unit)
        if not ps:
            return
        if len(ps) == 1:
            # equity minus this position's mark-dependent part: the unit's collateral less its cost, no mark needed
            i, p = ps[0]
            a0 = (a.balance if p.mode == CROSS else p.margin) - p.cost
            key = liquidation_key(a0, p.size, markets[i].spec.multiplier, self.tables[i])
            if key is not None:
                self._push(i, p.size > 0, key, unit, v)
            return
        buffer = self.equity(a, unit) - self.maintenance(a, unit)
        weights = []
        for i, p in ps:
            rate = Fraction(abs(p.size) * markets[i].spec.multiplier)
            if p.size < 0:
                rate *= 1 + self.tables[i].max_mmr
            weights.append(rate * self.mark(i))
        total = sum(weights)
        for i, p in ps:
            d = buffer * self.mark(i) / total
            m = self.mark(i)
            self._push(i, p.size > 0, floor(m - d) if p.size > 0 else ceil(m + d), unit, v)

    def _push(self, idx: int, long: bool, key: int, unit: Unit, v: int) -> None:
        self._seq += 1
        heap = self._long[idx] if long else self._short[idx]
        heapq.heappush(heap, (-key if long else key, self._seq, unit, v))
        if len(heap) > 64 + 4 * len(self._version):
            live = [e for e in heap if self._version.get(e[2]) == e[3]]
            heapq.heapify(live)
            heap[:] = live

    def triggered(self, idx: int, mark: int) -> list[Unit]:
        """Units whose key fired at this mark, in firing order; their entries are consumed."""
        out: list[Unit] = []
        version = self._version
        heap = self._long[idx]
        while heap and -heap[0][0] >= mark:
            _, _, unit, v = heapq.heappop(heap)
            if version.get(unit) == v:
                out.append(unit)
        heap = self._short[idx]
        while heap and heap[0][0] <= mark:
            _, _, unit, v = heapq.heappop(heap)
            if version.get(unit) == v:
                out.append(unit)
        if self._epochs and self._epochs.get(idx):
            self._fire_epochs(idx, mark, out)
        return out

    # ------------------------------------------------------------------ dynamic margin

    def observe(self, idx: int, now: int) -> None:
        """A mark update in a market with dynamic margin: let its model sample, and apply a changed factor."""
        m = self.markets[idx]
        f = self.dynamic[idx].observe(now, self.marks[idx], m.open_interest, m.spec.multiplier)
        if f is not None:
            self.set_factor(idx, f)

    def set_factor(self, idx: int, ppm: int) -> None:
        """Put a new dynamic factor (ppm) in force in market ``idx``: the tiers in force become the profile's times it,
        and the trigger heaps start a new epoch. Cost O(epochs), never O(positions).

        Why epochs: every liquidation price in the market moves with the factor, and re-keying each unit would cost
        what the trigger index exists to avoid. The bound that makes old keys usable (``_Epoch``): a long's
        liquidation price at factor f is at most its price at the key's factor g times (1 - g x) / (1 - f x) when
        f > g (x the profile's top maintenance rate), and a short's at least times (1 + g x) / (1 + f x); when f <= g
        the old key fires early, which is safe (a unit that fires and is not liquidatable is re-keyed exactly, into
        the current epoch). The same bound holds per market for a cross account's buffer keys, whose short rate
        (1 + the top rate in force) already includes g. Keys go into the current epoch's heaps; old ones stay in
        theirs, each tested at its own effective mark. At most ``MAX_EPOCHS`` old epochs: beyond, the two oldest are
        merged (the smaller into the larger, labelled with the lower factor: conservative for both).
        """
        old = self.factors[idx]
        if ppm == old:
            return
        base = self.params[idx].tiers
        self.tables[idx] = base if ppm == PPM else base.scaled(Fraction(ppm, PPM))
        self.factors[idx] = ppm
        if ppm == PPM:
            self._im_ppm.pop(idx, None)
        else:
            self._im_ppm[idx] = ppm
        epochs = self._epochs[idx]
        if self._long[idx] or self._short[idx]:
            epochs.append(_Epoch(old, self._long[idx], self._short[idx]))
            self._long[idx] = []
            self._short[idx] = []
        if len(epochs) > MAX_EPOCHS:
            a, b = epochs[0], epochs[1]
            big, small = (a, b) if len(a.long) + len(a.short) >= len(b.long) + len(b.short) else (b, a)
            for e in small.long:
                heapq.heappush(big.long, e)
            for e in small.short:
                heapq.heappush(big.short, e)
            big.label = min(a.label, b.label)
            epochs[:2] = [big]
        x = base.max_mmr
        for ep in epochs:
            ep.rescale(ppm, x)

    def _fire_epochs(self, idx: int, mark: int, out: list[Unit]) -> None:
        version = self._version
        epochs = self._epochs[idx]
        for ep in epochs:
            heap = ep.long
            eff = mark * ep.ln // ep.ld  # floor(mark / rho): fire when at or below the key
            while heap and -heap[0][0] >= eff:
                _, _, unit, v = heapq.heappop(heap)
                if version.get(unit) == v:
                    out.append(unit)
            heap = ep.short
            eff = -((-mark * ep.sn) // ep.sd)  # ceil(mark / sigma): fire when at or above the key
            while heap and heap[0][0] <= eff:
                _, _, unit, v = heapq.heappop(heap)
                if version.get(unit) == v:
                    out.append(unit)
        epochs[:] = [ep for ep in epochs if ep.long or ep.short]

    def process_dirty(self) -> None:
        """Re-key every unit whose positions or money changed; settle bad debt of units left flat and negative."""
        if not self.dirty:
            return
        dirty = sorted(self.dirty)
        self.dirty.clear()
        cross: set[int] = set()
        accounts = self.accounts
        for aid, idx in dirty:
            if idx == CROSS_UNIT:
                cross.add(aid)
                continue
            pos = accounts[aid].positions.get(idx)
            if pos is None or pos.mode == CROSS:
                cross.add(aid)
            else:
                if not pos.size and pos.margin < 0:
                    self.on_bad_debt(accounts[aid], (aid, idx))
                self.reindex((aid, idx))
        for aid in sorted(cross):
            a = accounts[aid]
            unit = (aid, CROSS_UNIT)
            if a.balance < 0 and aid != self.vault and aid != self.fund_account and not self.positions(a, unit):
                self.on_bad_debt(a, unit)
            self.reindex(unit)

    def set_leverage(self, a: Account, idx: int, leverage: int) -> None:
        p = self.params.get(idx)
        if p is None:
            raise InvalidInput("market", self.markets[idx].spec.symbol, "has no margin rules: list it with risk params")
        pos = a.positions.get(idx)
        mult = self.markets[idx].spec.multiplier
        mark = self.mark(idx)
        notional = abs(pos.size) * mult * mark if pos is not None else 0
        top = p.tiers.max_leverage(notional)
        if type(leverage) is not int or not 1 <= leverage <= top:
            raise InvalidInput("leverage", leverage, f"must be an integer in [1, {top}] (the tier maximum at this size)")
        old = self.leverage.get((a.id, idx))
        before = self.free_collateral(a)
        self.leverage[(a.id, idx)] = leverage
        if pos is not None and pos.size and pos.mode == CROSS and (old or p.leverage) > leverage:
            after = self.free_collateral(a)
            if after < 0 and after < before:
                if old is None:
                    del self.leverage[(a.id, idx)]
                else:
                    self.leverage[(a.id, idx)] = old
                raise InsufficientFunds("leverage", leverage,
                                        f"lower leverage needs {before - after} more free collateral than the account has")
