"""A spot venue: real order books, cash and inventory accounts, no leverage; the only mutator of both.

Why it is an exchange of its own kind and not a mode of the perp exchange: a spot account holds the
asset itself, so nothing here has a position, a mark, a margin requirement or a liquidation, and the
perp exchange's fill loop carries none of the spot venue's checks. What the two share is the book
(``abm.market.book.OrderBook``), the market grid and fee rates (``MarketSpec``), the order result
(``OrderResult``) and the rules of entry: every public method validates all of its input before it
changes anything, so a refused call leaves books, accounts and the order-id sequence as they were.

Money and lots, exactly:
- A fill of ``q`` lots at ``p`` ticks moves ``p * q * multiplier`` quote units from the buyer to the
  seller and ``q`` lots from the seller to the buyer; each side pays its fee (maker or taker rate,
  rounded in the venue's favour, rebates paid by the ``fees`` ledger), as on the perp exchange.
- A buy holds, per lot, its limit price plus the highest fee rate on it, rounded up per lot, so no
  sequence of fills can cost more than was held; a market buy with no bound is bounded by the price
  at which the book as it stands would fill it, and trimmed (``OrderResult.trimmed``) to what the
  free cash can hold at that bound. A sell holds its lots: selling beyond free inventory is refused.
- ``borrow`` lends lots from the venue's lending pool (seeded from outside) against locked cash
  collateral; interest accrues in quote units into the ``interest`` ledger (``accrue_interest``);
  ``repay`` returns lots and releases collateral pro rata. Interest an account cannot pay is recorded
  as arrears, never taken from another account.
- Conservation: cash in accounts (free, held, collateral) plus the ledgers equals the cash that came
  from outside, and per market the lots in accounts plus the pool equal the lots that came from
  outside; the lots lent equal the accounts' debt; what each account brought from outside adds up to the
  venue's record. ``check_conservation`` checks all of it.
- ``subscribe_trades`` streams each fill with the fees both sides were charged (``abm.spot.tape``): the
  run's ``spot_trades`` table is that record, not a recomputation.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Optional, Union

from abm.errors import (
    BoolArg,
    ConservationError,
    FloatArg,
    InsufficientFunds,
    IntArg,
    InvalidAmount,
    InvalidInput,
    InvalidOrderType,
    InvalidPrice,
    InvalidSize,
    PostOnlyWouldCross,
    StrArg,
    UnknownAccount,
    UnknownMarket,
)
from abm.exchange import OrderResult
from abm.exchange.collateral import check_frozen, validate_freeze
from abm.exchange.entry import (
    MARKET_STATES,
    check_cancel_state,
    check_modify_state,
    check_order_state,
    state_code,
)
from abm.exchange.inputs import TIFS, check_client_id, owned_oid, parse_side, slippage_bound
from abm.market.book import CANCEL_STP, GTC, OrderBook
from abm.market.spec import MAX_MONEY, MarketSpec, as_int, fee_ppm
from abm.market.view import BookView
from abm.spot.account import SpotAccount
from abm.units import BUY, SELL, US_PER_S

US_PER_DAY = 86_400 * US_PER_S
LEDGERS = ("fees", "interest")

# (time, market, maker_oid, maker_account, taker_oid, taker_account, price, qty, taker_side, liquidation)
FillSubscriber = Callable[[int, int, int, int, int, int, int, int, int, bool], None]
# (time, market, maker_oid, maker_account, taker_oid, taker_account, price, qty, taker_side, maker_fee, taker_fee):
# a fill with the fees each side paid (quote units, a rebate negative), as the venue charged them
TradeSubscriber = Callable[[int, int, int, int, int, int, int, int, int, int, int], None]


def _fee(value: int, ppm: int) -> int:
    """Fee on ``value`` quote units, rounded in the venue's favour (rebates are negative fees)."""
    if ppm >= 0:
        return -((-value * ppm) // 1_000_000)
    return -((value * -ppm) // 1_000_000)


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


class SpotMarket:
    __slots__ = ("index", "spec", "symbol", "book", "multiplier", "maker_ppm", "taker_ppm", "hold_ppm", "borrow_ppm_day",
                 "pool", "lent", "external", "seeded", "last_price", "state")

    def __init__(self, index: int, spec: MarketSpec, book: OrderBook, borrow_ppm_day: int) -> None:
        self.index = index
        self.spec = spec
        self.symbol = spec.symbol
        self.book = book
        self.multiplier = spec.multiplier
        self.maker_ppm = spec.maker_ppm
        self.taker_ppm = spec.taker_ppm
        self.hold_ppm = max(spec.maker_ppm, spec.taker_ppm, 0)  # the most a fill of a held lot can charge
        self.borrow_ppm_day = borrow_ppm_day  # interest per day, parts per million of the borrowed value
        self.pool = 0  # lots the venue can lend
        self.lent = 0
        self.external = 0  # lots that came from outside (deposits - withdrawals + the pool's seed)
        self.seeded = 0  # of which seeded into the lending pool
        self.last_price = 0  # ticks of the last fill; 0 before any
        self.state = 0  # trading state (abm.exchange.entry.MARKET_STATES): 0 open; set by set_market_state

    def hold_per_lot(self, price: int) -> int:
        """Quote units a buy at ``price`` holds per lot: the price and the highest fee on it, rounded up."""
        value = price * self.multiplier
        return value + _ceil_div(value * self.hold_ppm, 1_000_000)


class SpotExchange:
    """One spot venue (``name``): its markets, accounts and ledgers. Time is set by whoever drives it."""

    def __init__(self, name: str = "spot", collateral_pct: Union[int, str, Decimal] = 100, clock: Any = None) -> None:
        """``clock``: an object whose ``now`` is the time (the model's scheduler); None: set ``now`` by hand."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("name", name, "must be a non-empty string")
        self.name = name
        self.collateral_ppm = _percent_ppm("collateral_pct", collateral_pct)  # of a borrow's value, locked as cash
        self.markets: list[SpotMarket] = []
        self._by_symbol: dict[str, SpotMarket] = {}
        self.accounts: dict[int, SpotAccount] = {}
        self.ledgers: dict[str, int] = {n: 0 for n in LEDGERS}
        self.external_cash = 0  # quote units that came from outside (deposits - withdrawals)
        self._clock = clock
        self._now = 0
        self._next_oid = 1
        self._next_account = 1
        self._subscribers: list[FillSubscriber] = []
        self._trade_subscribers: list[TradeSubscriber] = []
        self._taker_hold = 0  # quote units per lot the order being matched holds (a buy)
        self._last_fill_notional = 0
        self.frozen_deposits = 0  # transfer freezes on now (freeze_transfers): deposits, withdrawals
        self.frozen_withdrawals = 0

    @property
    def now(self) -> int:
        return self._clock.now if self._clock is not None else self._now

    @now.setter
    def now(self, t_us: int) -> None:
        self._now = t_us

    # ------------------------------------------------------------------ listing and lookup

    def list_market(self, spec: MarketSpec, borrow_bps_per_day: Union[int, str, Decimal] = 0) -> int:
        """List a spot pair (``spec.symbol``, e.g. ``"BTC/USDC"``); returns its index on this venue."""
        if not isinstance(spec, MarketSpec):
            raise InvalidInput("spec", spec, "must be a MarketSpec")
        if spec.symbol in self._by_symbol:
            raise InvalidInput("symbol", spec.symbol, f"is already listed on {self.name}")
        if isinstance(borrow_bps_per_day, (bool, float)):
            raise InvalidInput("borrow_bps_per_day", borrow_bps_per_day, "must be an int, str or Decimal (exact)")
        rate = fee_ppm("borrow_bps_per_day", borrow_bps_per_day)
        if rate < 0:
            raise InvalidInput("borrow_bps_per_day", borrow_bps_per_day, "must be >= 0")
        idx = len(self.markets)
        m = SpotMarket(idx, spec, OrderBook(stp=0 if spec.stp == "cancel_resting" else 1), rate)
        m.book.on_fill = self._on_fill
        m.book.on_cancel = self._on_cancel
        self.markets.append(m)
        self._by_symbol[spec.symbol] = m
        for a in self.accounts.values():
            a.grow()
        return idx

    def market(self, symbol: StrArg) -> SpotMarket:
        m = self._by_symbol.get(symbol) if isinstance(symbol, str) else None
        if m is None:
            raise UnknownMarket("symbol", symbol, f"must be one of {sorted(self._by_symbol)} (on {self.name})")
        return m

    def data(self, symbol: StrArg) -> BookView:
        """Read-only market data for agents."""
        return BookView(self.market(symbol).book)

    def account(self, account_id: IntArg) -> SpotAccount:
        a = self.accounts.get(account_id) if type(account_id) is int else None
        if a is None:
            raise UnknownAccount("account_id", account_id, f"must be an account open on {self.name}")
        return a

    def subscribe_fills(self, fn: FillSubscriber) -> None:
        """Each fill as the perp exchange's subscribers see one (``liquidation`` always False)."""
        self._subscribers.append(fn)

    def subscribe_trades(self, fn: TradeSubscriber) -> None:
        """Each fill with the fees both sides paid, as charged (what ``abm.spot.tape.SpotTape`` records)."""
        if not callable(fn):
            raise InvalidInput("fn", fn, "must be callable (a fill subscriber)")
        self._trade_subscribers.append(fn)

    # ------------------------------------------------------------------ cash and inventory from outside

    def open_account(self, cash: IntArg = 0) -> int:
        amount = _amount("cash", cash, allow_zero=True)
        self._check_room(amount)
        aid = self._next_account
        self._next_account += 1
        a = self.accounts[aid] = SpotAccount(aid, len(self.markets))
        a.cash = a.opening_cash = a.cash_in = amount
        self.external_cash += amount
        return aid

    def freeze_transfers(self, deposits: BoolArg, withdrawals: BoolArg, step: IntArg = 1) -> None:
        """A freeze of deposits and/or withdrawals (cash and inventory) begins (``step`` 1) or ends (-1); while one
        is on they are refused with ``TransferFrozen``. Freezes of a kind are counted, so windows may overlap."""
        counts = [self.frozen_deposits, self.frozen_withdrawals]
        validate_freeze(deposits, withdrawals, step, counts)
        self.frozen_deposits, self.frozen_withdrawals = counts

    def deposit(self, account_id: IntArg, amount: IntArg) -> None:
        a = self.account(account_id)
        v = _amount("amount", amount)
        if self.frozen_deposits:
            check_frozen(self.frozen_deposits, "deposits", v, f"spot venue {self.name!r}")
        self._check_room(v)
        a.cash += v
        a.cash_in += v
        self.external_cash += v

    def withdraw(self, account_id: IntArg, amount: IntArg) -> None:
        a = self.account(account_id)
        v = _amount("amount", amount)
        if self.frozen_withdrawals:
            check_frozen(self.frozen_withdrawals, "withdrawals", v, f"spot venue {self.name!r}")
        if v > a.cash:
            raise InsufficientFunds("amount", v, f"must be at most the free cash ({a.cash} quote units)")
        a.cash -= v
        a.cash_in -= v
        self.external_cash -= v

    def deposit_inventory(self, account_id: IntArg, symbol: StrArg, lots: IntArg) -> None:
        a = self.account(account_id)
        m = self.market(symbol)
        q = _amount("lots", lots)
        if self.frozen_deposits:
            check_frozen(self.frozen_deposits, "deposits", q, f"spot venue {self.name!r}")
        a.inventory[m.index] += q
        a.lots_in[m.index] += q
        m.external += q

    def withdraw_inventory(self, account_id: IntArg, symbol: StrArg, lots: IntArg) -> None:
        a = self.account(account_id)
        m = self.market(symbol)
        q = _amount("lots", lots)
        if self.frozen_withdrawals:
            check_frozen(self.frozen_withdrawals, "withdrawals", q, f"spot venue {self.name!r}")
        if q > a.inventory[m.index]:
            raise InsufficientFunds("lots", q, f"must be at most the free inventory ({a.inventory[m.index]} lots)")
        a.inventory[m.index] -= q
        a.lots_in[m.index] -= q
        m.external -= q

    def seed_lending(self, symbol: StrArg, lots: IntArg) -> None:
        """Lots from outside into the venue's lending pool (what borrowers can take)."""
        m = self.market(symbol)
        q = _amount("lots", lots)
        m.pool += q
        m.seeded += q
        m.external += q

    # ------------------------------------------------------------------ borrowing

    def borrow(self, account_id: IntArg, symbol: StrArg, lots: IntArg, ref_price: IntArg) -> int:
        """Borrow lots from the pool, locking ``collateral_pct`` of their value at ``ref_price`` ticks; returns
        the collateral locked (quote units)."""
        a = self.account(account_id)
        m = self.market(symbol)
        q = _amount("lots", lots)
        p = _price("ref_price", ref_price)
        if q > m.pool:
            raise InsufficientFunds("lots", q, f"must be at most what {m.symbol}'s lending pool holds ({m.pool} lots)")
        lock = _ceil_div(q * p * m.multiplier * self.collateral_ppm, 1_000_000)
        if lock > a.cash:
            raise InsufficientFunds("lots", q, f"needs {_money(m, lock)} of free cash as collateral "
                                               f"({self.collateral_ppm / 10_000:g}% of the value); the account has "
                                               f"{_money(m, a.cash)}")
        a.cash -= lock
        a.collateral[m.index] += lock
        a.debt[m.index] += q
        a.inventory[m.index] += q
        m.pool -= q
        m.lent += q
        return lock

    def repay(self, account_id: IntArg, symbol: StrArg, lots: IntArg) -> int:
        """Return borrowed lots from free inventory; releases collateral pro rata (all of it with the last lot),
        after paying any interest arrears from it. Returns the cash released."""
        a = self.account(account_id)
        m = self.market(symbol)
        q = _amount("lots", lots)
        i = m.index
        if q > a.debt[i]:
            raise InvalidAmount("lots", q, f"must be at most the debt ({a.debt[i]} lots of {m.symbol})")
        if q > a.inventory[i]:
            raise InsufficientFunds("lots", q, f"must be at most the free inventory ({a.inventory[i]} lots)")
        release = a.collateral[i] if q == a.debt[i] else a.collateral[i] * q // a.debt[i]
        a.inventory[i] -= q
        a.debt[i] -= q
        m.pool += q
        m.lent -= q
        a.collateral[i] -= release
        paid = min(a.arrears, release)
        a.arrears -= paid
        a.interest_paid += paid
        self.ledgers["interest"] += paid
        a.cash += release - paid
        return release - paid

    def accrue_interest(self, symbol: StrArg, elapsed_us: IntArg, ref_price: IntArg) -> int:
        """Charge every borrower of ``symbol`` interest for ``elapsed_us`` on its debt's value at ``ref_price``
        ticks (rounded up per account), from free cash, then collateral; what is left is arrears. Returns
        the total charged."""
        m = self.market(symbol)
        dt = as_int("elapsed_us", elapsed_us, InvalidAmount)
        if dt < 0:
            raise InvalidAmount("elapsed_us", elapsed_us, "must be >= 0")
        p = _price("ref_price", ref_price)
        if not m.lent or not m.borrow_ppm_day or not dt:
            return 0
        total = 0
        i = m.index
        for aid in sorted(self.accounts):  # account order: deterministic, whatever the dict's history
            a = self.accounts[aid]
            if not a.debt[i]:
                continue
            due = _ceil_div(a.debt[i] * p * m.multiplier * m.borrow_ppm_day * dt, 1_000_000 * US_PER_DAY)
            from_cash = min(due, a.cash)
            from_collateral = min(due - from_cash, a.collateral[i])
            a.cash -= from_cash
            a.collateral[i] -= from_collateral
            a.arrears += due - from_cash - from_collateral
            paid = from_cash + from_collateral
            a.interest_paid += paid
            self.ledgers["interest"] += paid
            total += due
        return total

    # ------------------------------------------------------------------ orders

    def limit(self, account_id: IntArg, symbol: StrArg, side: IntArg, qty: IntArg, price: IntArg,
              tif: Union[StrArg, IntArg] = "GTC", post_only: BoolArg = False, reduce_only: BoolArg = False,
              client_id: object = None) -> OrderResult:
        """A limit order: GTC rests its remainder, IOC drops it, FOK all or nothing. A buy holds its worst cost.

        The arguments are the perp exchange's, so an agent's context serves either venue; ``reduce_only`` must
        be False (a spot account has no position to reduce)."""
        a, m, s = self._target(account_id, symbol, side)
        q = _size(qty)
        p = _price("price", price)
        t = TIFS.get(tif) if isinstance(tif, (str, int)) and not isinstance(tif, bool) else None
        if t is None:
            raise InvalidOrderType("tif", tif, "must be one of 'GTC', 'IOC', 'FOK'")
        if type(post_only) is not bool:
            raise InvalidOrderType("post_only", post_only, "must be True or False")
        if post_only and t != GTC:
            raise InvalidOrderType("post_only", True, "only allowed with tif 'GTC'")
        _no_reduce_only(reduce_only)
        check_client_id(a.client_ids, client_id)
        self._check_value(m, "price", p, q)
        if m.state:
            check_order_state(m.state, m.symbol, m.book, s, q, p, False, t == GTC, False)
        if post_only and _crosses(m.book, s, p):
            raise PostOnlyWouldCross("price", p, "would take liquidity (post-only)")
        hold = self._hold(a, m, s, q, m.hold_per_lot(p) if s == BUY else 0)
        oid = self._next_oid
        self._next_oid += 1
        self._last_fill_notional = 0
        self._taker_hold = hold
        filled = m.book.limit(oid, a.id, s, p, q, t, post_only, False)
        return self._finish(a, m, s, oid, q, filled, hold, 0, client_id)

    def market_order(self, account_id: IntArg, symbol: StrArg, side: IntArg, qty: IntArg,
                     worst_price: Optional[IntArg] = None, slippage_bps: Optional[FloatArg] = None,
                     reduce_only: BoolArg = False, client_id: object = None) -> OrderResult:
        """Immediate-or-cancel, bounded by ``worst_price`` and/or ``slippage_bps`` from the mid. A buy with no
        bound is bounded by the price the book as it stands would fill it at; a buy larger than the free cash
        can hold at its bound is trimmed (``trimmed``), never refused."""
        a, m, s = self._target(account_id, symbol, side)
        q = _size(qty)
        bound = None if worst_price is None else _price("worst_price", worst_price)
        if slippage_bps is not None:
            if isinstance(slippage_bps, bool) or not isinstance(slippage_bps, (int, float)) or \
                    not 0 <= slippage_bps < 10_000:
                raise InvalidOrderType("slippage_bps", slippage_bps, "must be a number in [0, 10000)")
            sb = slippage_bound(m.book, s, slippage_bps)
            if sb and bound is not None:
                bound = min(bound, sb) if s == BUY else max(bound, sb)
            elif sb:
                bound = sb
        _no_reduce_only(reduce_only)
        check_client_id(a.client_ids, client_id)  # an immediate order never rests: checked, not kept
        if m.state:
            check_order_state(m.state, m.symbol, m.book, s, q, bound or 0, True, False, False)
        if s == BUY and bound is None:
            bound = _sweep_price(m.book, q)
        trimmed = 0
        per_lot = 0
        if s == BUY and bound:
            self._check_value(m, "worst_price", bound, 1)
            per_lot = m.hold_per_lot(bound)
            affordable = a.cash // per_lot
            if affordable < q:
                trimmed, q = q - affordable, affordable
        elif bound:
            self._check_value(m, "worst_price", bound, q)
        oid = self._next_oid
        self._next_oid += 1
        self._last_fill_notional = 0
        if q == 0 or (s == BUY and not bound) or (s == SELL and m.book.best_bid() is None):
            return OrderResult(oid, q, 0, 0, 0, trimmed)  # nothing to take, or nothing affordable
        hold = self._hold(a, m, s, q, per_lot)
        self._taker_hold = hold
        filled = m.book.market(oid, a.id, s, q, bound)
        return self._finish(a, m, s, oid, q, filled, hold, trimmed, None)

    def cancel(self, account_id: IntArg, oid: Optional[IntArg] = None, client_id: object = None) -> int:
        """Cancel a resting order of the account (by order id or client id); returns the lots it still had,
        and frees what it held."""
        a = self.account(account_id)
        o = owned_oid(a.id, a.open_orders, a.client_ids, oid, client_id)
        mi, side, hold = a.holds[o]
        if self.markets[mi].state:
            check_cancel_state(self.markets[mi].state, self.markets[mi].symbol, o)
        left = self.markets[mi].book.cancel(o)
        self._release(a, mi, side, left, hold)
        self._forget(a, o)
        return left

    def cancel_all(self, account_id: IntArg, symbol: Optional[StrArg] = None) -> int:
        a = self.account(account_id)
        mi = None if symbol is None else self.market(symbol).index
        if mi is not None and self.markets[mi].state:
            check_cancel_state(self.markets[mi].state, self.markets[mi].symbol, -1)
        for o in a.open_orders:  # all or nothing: a halted market (named, or holding one of the orders) refuses it
            m = self.markets[a.open_orders[o]]
            if m.state and (mi is None or m.index == mi):
                check_cancel_state(m.state, m.symbol, o)
        return sum(self.cancel(a.id, o) for o in list(a.open_orders) if mi is None or a.open_orders[o] == mi)

    def modify(self, account_id: IntArg, oid: Optional[IntArg] = None, price: Optional[IntArg] = None,
               qty: Optional[IntArg] = None, client_id: object = None) -> int:
        """Change a resting order's price and/or size (``OrderBook.modify``: a size cut at the same price keeps
        its place, anything else goes to the back and may match). What it holds is re-reckoned first: refused
        (and nothing changed) if the account cannot hold the new order. Returns the lots filled."""
        a = self.account(account_id)
        o = owned_oid(a.id, a.open_orders, a.client_ids, oid, client_id)
        if price is None and qty is None:
            raise InvalidInput("price", None, "give a new price and/or qty")
        mi, side, old_hold = a.holds[o]
        m = self.markets[mi]
        _, _, old_price, left = m.book.order(o)
        p = old_price if price is None else _price("price", price)
        q = left if qty is None else _size(qty)
        self._check_value(m, "price", p, q)
        if m.state:
            check_modify_state(m.state, m.symbol, m.book, o, side, price if price is None else p, old_price, q, left,
                               False)
        new_hold = m.hold_per_lot(p) if side == BUY else 0
        if side == BUY and q * new_hold > a.cash + left * old_hold:
            raise InsufficientFunds("qty", q, f"needs {_money(m, q * new_hold)} held (price and highest fee); the "
                                              f"account has {_money(m, a.cash + left * old_hold)} with this order's hold")
        if side == SELL and q > a.inventory[mi] + left:
            raise InsufficientFunds("qty", q, f"must be at most the free inventory with this order's lots "
                                              f"({a.inventory[mi] + left} lots of {m.symbol})")
        if p != old_price and m.book.is_post_only(o) and _crosses(m.book, side, p):
            raise PostOnlyWouldCross("price", p, "a post-only order must not cross the opposite best")
        cid = next((c for c, x in a.client_ids.items() if x == o), None) if a.client_ids else None
        # the order is re-entered as if new: its old hold back, the new one taken, matched, and kept if it rests
        self._release(a, mi, side, left, old_hold)
        self._forget(a, o)
        self._hold(a, m, side, q, new_hold)
        self._last_fill_notional = 0
        self._taker_hold = new_hold
        filled = m.book.modify(o, None if price is None else p, None if qty is None else q)
        self._finish(a, m, side, o, q, filled, new_hold, 0, cid)
        return filled

    def set_market_state(self, symbol: StrArg, state: StrArg) -> None:
        """Put a pair in a trading state: ``"open"``, ``"halted"``, ``"cancel_only"`` or ``"post_only"``; order entry
        refuses what the state does not accept (``abm.exchange.entry``). ``"reduce_only"`` is a perp's state: a spot
        account holds the asset, not a position to reduce."""
        m = self.market(symbol)
        m.state = state_code("state", state, tuple(s for s in MARKET_STATES if s != "reduce_only"))

    # ------------------------------------------------------------------ reads

    def open_orders(self, account_id: IntArg) -> dict[int, tuple[str, int, int, int]]:
        """``{oid: (symbol, side, price, lots left)}`` of the account's resting orders."""
        a = self.account(account_id)
        out = {}
        for o, (mi, side, _) in a.holds.items():
            m = self.markets[mi]
            _, _, price, left = m.book.order(o)
            out[o] = (m.symbol, side, price, left)
        return out

    def check_conservation(self) -> None:
        """Raise ConservationError unless cash and every market's lots are conserved to the unit.

        O(accounts): for tests and audits, not the matching loop."""
        cash = sum(self.ledgers.values()) + sum(a.total_cash() for a in self.accounts.values())
        if cash != self.external_cash:
            raise ConservationError(f"{self.name}: cash not conserved: {cash - self.external_cash:+d} quote units")
        brought = sum(a.cash_in for a in self.accounts.values())
        if brought != self.external_cash:
            raise ConservationError(f"{self.name}: accounts brought {brought} quote units, the venue recorded "
                                    f"{self.external_cash}")
        m_buys: dict[int, int] = {}
        for m in self.markets:
            lots = m.pool + sum(a.total_inventory(m.index) for a in self.accounts.values())
            debt = sum(a.debt[m.index] for a in self.accounts.values())
            brought = m.seeded + sum(a.lots_in[m.index] for a in self.accounts.values())
            if lots != m.external or debt != m.lent or brought != m.external:
                raise ConservationError(f"{self.name} {m.symbol}: lots {lots - m.external:+d}, "
                                        f"debt {debt - m.lent:+d}, brought {brought - m.external:+d} against the record")
            for a in self.accounts.values():  # what is held is exactly what the account's resting orders need
                sells = buys = 0
                for o, (mi, side, per_lot) in a.holds.items():
                    if mi == m.index:
                        left = m.book.order(o)[3]
                        if side == SELL:
                            sells += left
                        else:
                            buys += left * per_lot
                if sells != a.held_inventory[m.index]:
                    raise ConservationError(f"{self.name} {m.symbol}: account {a.id} holds {a.held_inventory[m.index]} "
                                            f"lots for resting sells of {sells}")
                m_buys[a.id] = m_buys.get(a.id, 0) + buys
        for a in self.accounts.values():
            if m_buys.get(a.id, 0) != a.held_cash:
                raise ConservationError(f"{self.name}: account {a.id} holds {a.held_cash} quote units for resting buys "
                                        f"needing {m_buys.get(a.id, 0)}")

    # ------------------------------------------------------------------ internals

    def _target(self, account_id: IntArg, symbol: StrArg, side: IntArg) -> tuple[SpotAccount, SpotMarket, int]:
        return self.account(account_id), self.market(symbol), parse_side(side)

    def _check_value(self, m: SpotMarket, field: str, price: int, qty: int) -> None:
        if price * qty * m.multiplier > MAX_MONEY:
            raise InvalidSize("qty", qty, f"at {field} {price} must keep the order's value within {MAX_MONEY} quote units")

    def _check_room(self, amount: int) -> None:
        if self.external_cash + amount > MAX_MONEY:
            raise InvalidAmount("amount", amount, f"must keep {self.name}'s cash from outside within {MAX_MONEY} "
                                                  f"quote units (it holds {self.external_cash})")

    def _hold(self, a: SpotAccount, m: SpotMarket, side: int, qty: int, per_lot: int) -> int:
        """Hold what the order could need, or refuse it before anything changed."""
        if side == BUY:
            need = qty * per_lot
            if need > a.cash:
                raise InsufficientFunds("qty", qty, f"needs {_money(m, need)} free (price and highest fee, held); the "
                                                    f"account has {_money(m, a.cash)}")
            a.cash -= need
            a.held_cash += need
            return per_lot
        if qty > a.inventory[m.index]:
            raise InsufficientFunds("qty", qty, f"must be at most the free inventory ({a.inventory[m.index]} lots of "
                                                f"{m.symbol}); to sell more, borrow first")
        a.inventory[m.index] -= qty
        a.held_inventory[m.index] += qty
        return 0

    def _release(self, a: SpotAccount, mi: int, side: int, lots: int, per_lot: int) -> None:
        if side == BUY:
            v = lots * per_lot
            a.held_cash -= v
            a.cash += v
        else:
            a.held_inventory[mi] -= lots
            a.inventory[mi] += lots

    def _finish(self, a: SpotAccount, m: SpotMarket, side: int, oid: int, qty: int, filled: int, hold: int,
                trimmed: int, client_id: object) -> OrderResult:
        resting = m.book.order(oid)[3] if oid in m.book else 0
        self._release(a, m.index, side, qty - filled - resting, hold)
        if resting:
            a.holds[oid] = (m.index, side, hold)
            a.open_orders[oid] = m.index
            if client_id is not None:
                a.client_ids[client_id] = oid
        return OrderResult(oid, qty, filled, self._last_fill_notional, resting, trimmed)

    def _forget(self, a: SpotAccount, oid: int) -> None:
        a.holds.pop(oid, None)
        if a.open_orders.pop(oid, None) is not None and a.client_ids:
            for c, x in list(a.client_ids.items()):
                if x == oid:
                    del a.client_ids[c]

    def _on_fill(self, maker_oid: int, maker_owner: object, taker_oid: int, taker_owner: object, price: int, qty: int,
                 taker_side: int, liq: bool, maker_left: int) -> None:
        maker = self.accounts[maker_owner]  # type: ignore[index]
        taker = self.accounts[taker_owner]  # type: ignore[index]
        mi, _, maker_hold = maker.holds[maker_oid]
        m = self.markets[mi]
        value = price * qty * m.multiplier
        maker_fee = _fee(value, m.maker_ppm)
        taker_fee = _fee(value, m.taker_ppm)
        if taker_side == BUY:
            self._buyer_pays(taker, mi, qty, value + taker_fee, self._taker_hold)
            self._seller_gets(maker, mi, qty, value - maker_fee)
        else:
            self._buyer_pays(maker, mi, qty, value + maker_fee, maker_hold)
            self._seller_gets(taker, mi, qty, value - taker_fee)
        maker.fees_paid += maker_fee
        taker.fees_paid += taker_fee
        self.ledgers["fees"] += maker_fee + taker_fee
        m.last_price = price
        self._last_fill_notional += price * qty
        if maker_left == 0:
            self._forget(maker, maker_oid)
        for fn in self._subscribers:
            fn(self.now, mi, maker_oid, maker.id, taker_oid, taker.id, price, qty, taker_side, False)
        for tf in self._trade_subscribers:
            tf(self.now, mi, maker_oid, maker.id, taker_oid, taker.id, price, qty, taker_side, maker_fee, taker_fee)

    @staticmethod
    def _buyer_pays(a: SpotAccount, mi: int, qty: int, cost: int, per_lot: int) -> None:
        held = qty * per_lot
        a.held_cash -= held
        a.cash += held - cost  # >= 0: the price is at most the limit and the fee at most the held fee
        a.inventory[mi] += qty

    @staticmethod
    def _seller_gets(a: SpotAccount, mi: int, qty: int, proceeds: int) -> None:
        a.held_inventory[mi] -= qty
        a.cash += proceeds

    def _on_cancel(self, oid: int, owner: object, cancelled: int, left: int, reason: int) -> None:
        """The book cancelled a resting order by itself (self-trade prevention): free what it held."""
        a = self.accounts[owner]  # type: ignore[index]
        rec = a.holds.get(oid)
        if rec is None:  # the incoming order (cancel_incoming): _finish releases it
            return
        mi, side, hold = rec
        self._release(a, mi, side, cancelled, hold)
        if left == 0 or reason == CANCEL_STP:
            self._forget(a, oid)


def _money(m: SpotMarket, units: int) -> str:
    """Quote units as the user reads them: ``300.15 USDC`` on ``BTC/USDC``."""
    quote = m.symbol.rpartition("/")[2] if "/" in m.symbol else "quote currency"
    return f"{Decimal(units).scaleb(-m.spec.quote_decimals).normalize():f} {quote}"


def _percent_ppm(field: str, value: object) -> int:
    """An exact percentage in [0, 1000] as parts per million (at most 4 decimals)."""
    if isinstance(value, (bool, float)) or not isinstance(value, (int, str, Decimal)):
        raise InvalidInput(field, value, "must be an int, str or Decimal percentage (exact)")
    try:
        d = Decimal(value) * 10_000
    except ArithmeticError:
        raise InvalidInput(field, value, "must be a number") from None
    if not d.is_finite() or d != d.to_integral_value() or not 0 <= d <= 1_000 * 10_000:
        raise InvalidInput(field, value, "must be a percentage in [0, 1000] with at most 4 decimals")
    return int(d)


def _no_reduce_only(reduce_only: object) -> None:
    if reduce_only is not False:
        raise InvalidOrderType("reduce_only", reduce_only, "must be False on a spot venue (an account holds the asset, "
                               "not a position to reduce)")


def _amount(field: str, value: object, allow_zero: bool = False) -> int:
    v = as_int(field, value, InvalidAmount)
    if v < 0 or (v == 0 and not allow_zero):
        raise InvalidAmount(field, value, f"must be a {'non-negative' if allow_zero else 'positive'} integer")
    return v


def _size(qty: object) -> int:
    q = as_int("qty", qty, InvalidSize)
    if q <= 0:
        raise InvalidSize("qty", qty, "must be a positive integer number of lots")
    return q


def _price(field: str, price: object) -> int:
    p = as_int(field, price, InvalidPrice)
    if p <= 0:
        raise InvalidPrice(field, price, "must be a positive integer number of ticks")
    return p


def _crosses(book: OrderBook, side: int, price: int) -> bool:
    best = book.best_ask() if side == BUY else book.best_bid()
    return best is not None and (price >= best if side == BUY else price <= best)


def _sweep_price(book: OrderBook, qty: int) -> int:
    """The ask price at which the book as it stands fills ``qty`` (its deepest level if it is thinner); 0 if empty.

    Reads the asks in growing blocks, so a small order costs a few levels, not the whole side."""
    n = 8
    while True:
        asks = book.l2(n)[1]
        left = qty
        for price, size in asks:
            left -= size
            if left <= 0:
                return price
        if len(asks) < n:
            return asks[-1][0] if asks else 0
        n *= 8
