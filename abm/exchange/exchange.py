"""The exchange: the only thing that mutates books and accounts.

Agents (and users) act through these methods and read market data through ``Exchange.data``; they
never touch balances. Every public method validates all of its input before it changes anything,
so a rejected call leaves books, accounts, ledgers and the order-id sequence exactly as they were.

Money per fill (exact, integers): notional = price * qty * multiplier quote units; taker fee =
ceil(notional * taker_ppm / 1e6); maker fee the same with maker_ppm, or, for a rebate, the rebate
is floor(notional * |maker_ppm| / 1e6). Rounding therefore always favours the venue, and the whole
rounded amount lands in the ``fees`` ledger, which pays rebates: nothing is lost to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil, floor
from typing import Any, Callable, NamedTuple, Optional, Union

from abm.accounts.account import CROSS, MARGIN_MODES, MODE_NAMES, STRICT_ISOLATED, Account, Position
from abm.accounts.ledgers import Ledgers, check_conservation
from abm.accounts.market_state import Market
from abm.errors import (
    BoolArg,
    DuplicateClientOrderId,
    DuplicateMarket,
    FloatArg,
    InsufficientFunds,
    IntArg,
    InvalidAmount,
    InvalidInput,
    InvalidOrderType,
    InvalidPrice,
    InvalidSize,
    ReduceOnlyViolation,
    StrArg,
    UnknownAccount,
    UnknownMarket,
    UnknownOrder,
)
from abm.exchange.entry import check_rules, valid_rules
from abm.margin.engine import CROSS_UNIT, MarginEngine
from abm.margin.events import LiquidationLog
from abm.margin.liquidation import Liquidator
from abm.margin.params import RiskParams
from abm.market.book import (
    BUY,
    CANCEL_STP_INCOMING,
    FOK,
    GTC,
    IOC,
    SELL,
    STP_CANCEL_INCOMING,
    STP_CANCEL_RESTING,
    OrderBook,
)
from abm.market.spec import MAX_MONEY, MarketSpec, as_int, exact_fraction
from abm.market.view import BookView

_SIDES = {"buy": BUY, "sell": SELL, BUY: BUY, SELL: SELL}
_TIFS = {"GTC": GTC, "IOC": IOC, "FOK": FOK, GTC: GTC, IOC: IOC, FOK: FOK}

# (time, market, maker_oid, maker_account, taker_oid, taker_account, price, qty, taker_side, liquidation)
FillSubscriber = Callable[[int, int, int, int, int, int, int, int, int, bool], None]


class OrderResult(NamedTuple):
    """What became of a submitted order: every lot is filled, resting or cancelled.

    A named tuple rather than a dataclass: one is built per order, and a tuple builds several times faster.
    """

    oid: int
    qty: int  # size accepted (after a reduce-only trim)
    filled: int
    notional: int  # filled tick·lots, so avg price = notional / filled exactly
    resting: int
    trimmed: int = 0  # lots removed at submission by the reduce-only rule

    @property
    def cancelled(self) -> int:
        return self.qty - self.filled - self.resting

    @property
    def avg_price(self) -> Optional[Fraction]:
        return Fraction(self.notional, self.filled) if self.filled else None


@dataclass(frozen=True, slots=True)
class PositionInfo:
    symbol: str
    size: int
    cost: int
    realized: int
    fees: int
    funding: int  # received (> 0) or paid (< 0), cumulative
    mode: str
    margin: int
    entry_price: Optional[Fraction]  # ticks, exact

    def unrealized(self, price: int, multiplier: int) -> int:
        return self.size * price * multiplier - self.cost


def _fee(value: int, ppm: int) -> int:
    """Fee on ``value`` quote units, rounded in the venue's favour (rebates are negative fees)."""
    if ppm >= 0:
        return -((-value * ppm) // 1_000_000)
    return -((value * -ppm) // 1_000_000)


class Exchange:
    def __init__(self) -> None:
        self.markets: list[Market] = []
        self._by_symbol: dict[str, Market] = {}
        self.accounts: dict[int, Account] = {}
        self.ledgers = Ledgers()
        self.now = 0  # simulation time in integer microseconds, advanced by whoever drives the exchange
        self._next_oid = 1
        self._next_account = 1
        self._order_owner: dict[int, tuple[int, int, object, int]] = {}  # resting oid -> (account, market, client id, side)
        self._subscribers: list[FillSubscriber] = []
        self._last_fill_notional = 0  # of the order being matched (for OrderResult)
        self._position_seq = 0
        self.risk = MarginEngine(self.accounts, self.markets)
        self._liquidator = Liquidator(self, self.risk)
        self.risk.on_bad_debt = self._liquidator.cover_bad_debt

    # ------------------------------------------------------------------ listing and lookup

    def list_market(self, spec: MarketSpec, risk: Optional[RiskParams] = None, rules: Any = ()) -> int:
        """List a market. With ``risk`` its positions need margin and get liquidated; without, it is a bare
        trading venue (book and fee studies, tests) where nothing is margined. ``rules``: opt-in order-entry
        rules built for this market (``abm.venues.rules``), checked on every user order."""
        if not isinstance(spec, MarketSpec):
            raise InvalidInput("spec", spec, "must be a MarketSpec")
        if risk is not None and not isinstance(risk, RiskParams):
            raise InvalidInput("risk", risk, "must be RiskParams or None")
        if spec.symbol in self._by_symbol:
            raise DuplicateMarket("symbol", spec.symbol, "must not be listed already")
        built = valid_rules(rules)
        idx = len(self.markets)
        stp = STP_CANCEL_RESTING if spec.stp == "cancel_resting" else STP_CANCEL_INCOMING
        book = OrderBook(stp=stp)
        m = Market(idx, spec, book)
        m.rules = built
        book.on_fill = self._fill_handler(m)
        book.on_cancel = self._cancel_handler(m)
        book.ro_cap = self._ro_cap_fn(m)
        self.markets.append(m)
        self._by_symbol[spec.symbol] = m
        if risk is not None:
            m.margined = True
            self.risk.add_market(idx, risk)
        return idx

    def market(self, symbol: StrArg) -> Market:
        m = self._by_symbol.get(symbol) if isinstance(symbol, str) else None
        if m is None:
            raise UnknownMarket("market", symbol, f"must be one of {sorted(self._by_symbol)}")
        return m

    def data(self, symbol: StrArg) -> BookView:
        """Read-only market data for one market."""
        m = self.market(symbol)
        return BookView(m.book, m.spec.multiplier)

    def account(self, account_id: IntArg) -> Account:
        a = self.accounts.get(account_id) if type(account_id) is int else None
        if a is None:
            raise UnknownAccount("account", account_id, "must be the id of an open account")
        return a

    def subscribe_fills(self, fn: FillSubscriber) -> None:
        """Call ``fn`` on every fill, e.g. a Tape. Subscribers must not call back into the exchange."""
        if not callable(fn):
            raise InvalidInput("fn", fn, "must be callable")
        self._subscribers.append(fn)

    # ------------------------------------------------------------------ money in and out

    def open_account(self, deposit: IntArg = 0) -> int:
        if deposit != 0:
            _positive_amount(deposit)
        aid = self._next_account
        self._next_account += 1
        self.accounts[aid] = Account(aid)
        if deposit:
            self.deposit(aid, deposit)
        return aid

    def deposit(self, account_id: IntArg, amount: IntArg) -> None:
        a = self.account(account_id)
        _positive_amount(amount)
        self.ledgers.check_room(amount)
        self._credit(a, amount)
        a.external += amount
        self.ledgers.external += amount
        self.risk.process_dirty()

    def withdraw(self, account_id: IntArg, amount: IntArg) -> None:
        """Withdraw cross collateral; with margined positions what stays must cover max(IM, 10% of notional)."""
        a = self.account(account_id)
        _positive_amount(amount)
        limit = self.risk.withdrawable(a) if self.risk.params else a.balance
        if amount > limit:
            raise InsufficientFunds("amount", amount, f"must be at most the withdrawable amount {limit}")
        self._credit(a, -amount)
        a.external -= amount
        self.ledgers.external -= amount
        self.risk.process_dirty()

    def seed_ledger(self, name: StrArg, amount: IntArg) -> None:
        self.ledgers.seed(name, amount)

    def set_margin_mode(self, account_id: IntArg, symbol: StrArg, mode: StrArg) -> None:
        """Choose cross, isolated or strict_isolated for one market; only while flat with no open orders there."""
        a = self.account(account_id)
        m = self.market(symbol)
        if not isinstance(mode, str) or mode not in MARGIN_MODES:
            raise InvalidInput("mode", mode, f"must be one of {sorted(MARGIN_MODES)}")
        pos = a.positions.get(m.index)
        if pos is not None and (pos.size or pos.margin):
            raise InvalidInput("mode", mode, f"can only change while flat in {symbol} (size {pos.size}, margin {pos.margin})")
        if any(mi == m.index for mi in a.open_orders.values()):
            raise InvalidInput("mode", mode, f"can only change with no open orders in {symbol}")
        a.position(m.index).mode = MARGIN_MODES[mode]
        if m.margined:
            self.risk.dirty.add((a.id, m.index))
            self.risk.dirty.add((a.id, CROSS_UNIT))
            self.risk.process_dirty()

    def transfer_isolated_margin(self, account_id: IntArg, symbol: StrArg, amount: IntArg) -> None:
        """Move collateral into (amount > 0) or out of (amount < 0) an isolated position's margin.

        The margin engine adds the rules on how much may be removed; here only that neither side goes negative.
        """
        a = self.account(account_id)
        m = self.market(symbol)
        amount = as_int("amount", amount, InvalidAmount)
        pos = a.positions.get(m.index)
        if pos is None or pos.mode == CROSS:
            raise InvalidInput("mode", "cross", f"{symbol} must be in isolated mode to hold isolated margin")
        if amount == 0:
            raise InvalidAmount("amount", amount, "must not be 0")
        if amount > a.balance:
            raise InsufficientFunds("amount", amount, f"must be at most the cross balance {a.balance}")
        if amount < 0:
            if pos.mode == STRICT_ISOLATED and pos.size:
                raise InvalidInput("amount", amount, "strict isolated margin cannot be removed while the position is open")
            limit = self.risk.removable_isolated(a, m.index) if m.margined else pos.margin
            if -amount > limit:
                raise InsufficientFunds("amount", amount,
                                        f"must not remove more than {limit} (the rules keep margin >= max(IM, 10% of notional))")
        self._credit(a, -amount)
        pos.margin += amount
        if m.margined:
            self.risk.dirty.add((a.id, m.index))
        self.risk.process_dirty()

    # ------------------------------------------------------------------ orders

    def limit(
        self,
        account_id: IntArg,
        symbol: StrArg,
        side: IntArg,
        qty: IntArg,
        price: IntArg,
        tif: Union[StrArg, IntArg] = "GTC",
        post_only: BoolArg = False,
        reduce_only: BoolArg = False,
        client_id: object = None,
    ) -> OrderResult:
        """A limit order of ``qty`` lots at ``price`` ticks: GTC rests its remainder, IOC drops it, FOK all or nothing."""
        a, m, s = self._order_target(account_id, symbol, side)
        if type(qty) is not int:
            qty = as_int("qty", qty, InvalidSize)
        if qty <= 0:
            raise InvalidSize("qty", qty, "must be a positive integer number of lots")
        if type(price) is not int:
            price = as_int("price", price, InvalidPrice)
        if price < m.band_lo or price > m.band_hi or price * qty > m.max_tick_lots:
            self._check_price_size(m, "price", price, qty)
        t = _TIFS.get(tif) if isinstance(tif, str) or type(tif) is int else None
        if t is None:
            raise InvalidOrderType("tif", tif, "must be one of 'GTC', 'IOC', 'FOK'")
        if type(post_only) is not bool or type(reduce_only) is not bool:
            bad = "post_only" if type(post_only) is not bool else "reduce_only"
            raise InvalidOrderType(bad, post_only if bad == "post_only" else reduce_only, "must be True or False")
        if post_only and t != GTC:
            raise InvalidOrderType("post_only", True, "only allowed with tif 'GTC'")
        if client_id is not None:
            self._check_client_id(a, client_id)
        accepted, trimmed = self._reduce_only_qty(a, m, s, qty) if reduce_only else (qty, 0)
        if m.rules:
            check_rules(self, m, a, s, accepted, price, reduce_only, False)
        if m.margined and not reduce_only:
            self.risk.admit(a, m.index, s, accepted, price)
        oid = self._next_oid
        self._last_fill_notional = 0
        filled = m.book.limit(oid, a.id, s, price, accepted, t, post_only, reduce_only)  # may raise PostOnlyWouldCross
        self._next_oid += 1
        result = self._finish(a, m, oid, accepted, filled, client_id, trimmed)
        if self.risk.dirty:
            self.risk.process_dirty()
        return result

    def market_order(
        self,
        account_id: IntArg,
        symbol: StrArg,
        side: IntArg,
        qty: IntArg,
        worst_price: Optional[IntArg] = None,
        slippage_bps: Optional[FloatArg] = None,
        reduce_only: BoolArg = False,
        client_id: object = None,
    ) -> OrderResult:
        """Immediate-or-cancel at any price, or bounded by ``worst_price`` ticks and/or ``slippage_bps`` from the mid.

        With ``slippage_bps`` the bound is taken from the mid, or from the best opposite price when one
        side is empty; with no opposite side nothing can fill and the whole order is cancelled. Given
        both, the tighter bound applies (a hunt's target cap and its slippage cap), and it must be a
        valid price; with no opposite side only ``worst_price`` is left, and nothing fills.
        """
        a, m, s = self._order_target(account_id, symbol, side)
        if type(qty) is not int:
            qty = as_int("qty", qty, InvalidSize)
        if qty <= 0:
            raise InvalidSize("qty", qty, "must be a positive integer number of lots")
        if worst_price is not None:
            worst_price = as_int("worst_price", worst_price, InvalidPrice)
            if slippage_bps is None:
                self._check_price_size(m, "worst_price", worst_price, qty)
        elif qty > m.max_tick_lots:  # each fill is bounded by the resting order it meets, which passed this check
            raise InvalidSize("qty", qty, f"must be at most {m.max_tick_lots} lots (a notional must fit {MAX_MONEY} "
                                          "quote units)")
        if slippage_bps is not None:
            if isinstance(slippage_bps, bool) or not isinstance(slippage_bps, (int, float)) or not 0 <= slippage_bps < 10000:
                raise InvalidOrderType("slippage_bps", slippage_bps, "must be a number in [0, 10000)")
            bound = _slippage_bound(m.book, s, slippage_bps)
            if worst_price is None:
                worst_price = bound
            else:
                if bound:
                    worst_price = min(worst_price, bound) if s == BUY else max(worst_price, bound)
                self._check_price_size(m, "worst_price", worst_price, qty)
        if type(reduce_only) is not bool:
            raise InvalidOrderType("reduce_only", reduce_only, "must be True or False")
        if client_id is not None:
            self._check_client_id(a, client_id)
        accepted, trimmed = self._reduce_only_qty(a, m, s, qty) if reduce_only else (qty, 0)
        if m.rules:
            check_rules(self, m, a, s, accepted, worst_price or 0, reduce_only, True)
        if m.margined and not reduce_only:
            ref = worst_price or self.risk.mark(m.index) or (m.book.best_ask() if s == BUY else m.book.best_bid()) or 1
            self.risk.admit(a, m.index, s, accepted, ref)
        oid = self._next_oid
        self._last_fill_notional = 0
        if worst_price == 0:  # nothing on the other side to take
            filled = 0
        else:
            filled = m.book.market(oid, a.id, s, accepted, worst_price)
        self._next_oid += 1
        result = self._finish(a, m, oid, accepted, filled, None, trimmed)
        if self.risk.dirty:
            self.risk.process_dirty()
        return result

    def cancel(self, account_id: IntArg, oid: Optional[IntArg] = None, client_id: object = None) -> int:
        """Cancel one of the account's resting orders by order id or client id; returns the size cancelled."""
        a = self.account(account_id)
        if type(oid) is not int or client_id is not None or oid not in a.open_orders:
            oid = self._owned_oid(a, oid, client_id)
        return self._drop(oid)

    def cancel_all(self, account_id: IntArg, symbol: Optional[StrArg] = None) -> int:
        """Cancel the account's resting orders (in one market, or all); returns how many were cancelled."""
        a = self.account(account_id)
        only = self.market(symbol).index if symbol is not None else None
        oids = [oid for oid, mi in a.open_orders.items() if only is None or mi == only]
        for oid in oids:
            self._drop(oid)
        return len(oids)

    def modify(
        self,
        account_id: IntArg,
        oid: Optional[IntArg] = None,
        price: Optional[IntArg] = None,
        qty: Optional[IntArg] = None,
        client_id: object = None,
    ) -> int:
        """Change a resting order's price and/or remaining size (see ``OrderBook.modify`` for priority).

        A reduce-only order is trimmed to the position, as at submission. Returns lots filled if the new
        price crossed.
        """
        a = self.account(account_id)
        oid = self._owned_oid(a, oid, client_id)
        if price is None and qty is None:
            raise InvalidInput("price", None, "give a new price and/or qty")
        if price is not None:
            price = as_int("price", price, InvalidPrice)
        if qty is not None:
            qty = as_int("qty", qty, InvalidSize)
        m = self.markets[a.open_orders[oid]]
        _, side, _, left = m.book.order(oid)
        ro = m.book.is_reduce_only(oid)
        if qty is not None and qty > 0 and ro:
            qty = self._reduce_only_qty(a, m, side, qty)[0]
        if price is not None or (qty is not None and qty > left):
            self._check_price_size(m, "price", price if price is not None else m.book.order(oid)[2],
                                   qty if qty is not None and qty > 0 else left)
        if m.rules and (qty is None or qty > 0) and (price is not None or (qty is not None and qty > left)):
            check_rules(self, m, a, side, left if qty is None else qty, m.book.order(oid)[2] if price is None else price,
                        ro, False, left)
        if m.margined and not ro and qty is not None and qty > left:
            self.risk.admit(a, m.index, side, qty - left, price or m.book.order(oid)[2])
        filled = m.book.modify(oid, price, qty)  # validates price/qty and post-only before changing anything
        now_left = m.book.order(oid)[3] if oid in m.book else 0
        a.resting[m.index][side] += now_left - left
        if not now_left:
            self._forget(oid)
        self.risk.process_dirty()
        return filled

    # ------------------------------------------------------------------ margin and liquidation

    def set_mark(self, symbol: StrArg, price: IntArg) -> None:
        """Publish a mark price (integer ticks); in a margined market this runs the liquidation check."""
        m = self.market(symbol)
        price = as_int("price", price, InvalidPrice)
        if not 0 < price <= m.max_tick_lots:
            raise InvalidPrice("price", price, f"must be a positive integer number of ticks whose one-lot value fits "
                                               f"{MAX_MONEY} quote units (at most {m.max_tick_lots})")
        self.risk.marks[m.index] = price
        if m.band_ppm:
            w = price * m.band_ppm
            m.band_lo = max(1, -((w - price * 1_000_000) // 1_000_000))  # ceil(mark * (1 - band))
            m.band_hi = min(m.max_tick_lots, (price * 1_000_000 + w) // 1_000_000)  # floor(mark * (1 + band))
        if m.margined:
            self._liquidator.on_mark(m.index)

    def set_leverage(self, account_id: IntArg, symbol: StrArg, leverage: IntArg) -> None:
        a = self.account(account_id)
        m = self.market(symbol)
        self.risk.set_leverage(a, m.index, leverage)
        self.risk.dirty.add((a.id, m.index))
        self.risk.process_dirty()

    def liquidation_price(self, account_id: IntArg, symbol: StrArg) -> Optional[Fraction]:
        """Exact liquidation price in ticks (cross: if the other markets' marks stayed put); None if none."""
        a = self.account(account_id)
        return self.risk.liquidation_price(a.id, self.market(symbol).index)

    def equity(self, account_id: IntArg) -> int:
        """What the account is worth at the marks (quote units): cross equity plus its isolated positions' equity.

        The cheap question agents ask on every wake; ``margin_summary`` adds margins, with exact Fractions.
        """
        a = self.account(account_id)
        r = self.risk
        total = r.equity(a, (a.id, CROSS_UNIT))
        for i, p in a.positions.items():
            if p.mode != CROSS and i in r.params:
                total += r.equity(a, (a.id, i))
        return total

    def margin_summary(self, account_id: IntArg) -> dict[str, object]:
        """Cross equity, maintenance margin and free collateral, plus each isolated position's equity and MM."""
        a = self.account(account_id)
        r = self.risk
        cross = (a.id, CROSS_UNIT)
        out: dict[str, object] = {
            "cross_equity": r.equity(a, cross),
            "cross_maintenance": r.maintenance(a, cross),
            "free_collateral": r.free_collateral(a),
        }
        for i, p in sorted(a.positions.items()):
            if p.mode != CROSS and i in r.params:
                out[self.markets[i].spec.symbol] = {"equity": r.equity(a, (a.id, i)),
                                                     "maintenance": r.maintenance(a, (a.id, i))}
        return out

    def create_backstop_vault(self, deposit: IntArg, min_equity: IntArg = 0, unwind_interval_us: IntArg = 30_000_000,
                              unwind_slippage_bps: IntArg = 100) -> int:
        """Open the backstop vault account (funded from outside) that takes over positions the book cannot absorb."""
        if self.risk.vault is not None:
            raise InvalidInput("vault", self.risk.vault, "a backstop vault exists already")
        if type(min_equity) is not int or min_equity < 0:
            raise InvalidAmount("min_equity", min_equity, "must be a non-negative integer (quote units)")
        if type(unwind_interval_us) is not int or unwind_interval_us <= 0:
            raise InvalidInput("unwind_interval_us", unwind_interval_us, "must be a positive integer (microseconds)")
        if type(unwind_slippage_bps) is not int or not 0 < unwind_slippage_bps < 10_000:
            raise InvalidInput("unwind_slippage_bps", unwind_slippage_bps, "must be an integer in (0, 10000)")
        _positive_amount(deposit)
        aid = self.open_account(deposit)
        self.risk.vault = aid
        self.risk.vault_min_equity = min_equity
        self.risk.unwind_interval_us = unwind_interval_us
        self.risk.unwind_slippage_bps = unwind_slippage_bps
        return aid

    @property
    def liquidations(self) -> LiquidationLog:
        """The liquidation log (``abm.margin.events.LiquidationLog``)."""
        return self.risk.log

    def _liquidation_order(self, a: Account, idx: int, side: int, qty: int, worst: int) -> tuple[int, int, int]:
        """A liquidation-flagged market order, bypassing margin admission; returns (filled, tick·lots, oid)."""
        m = self.markets[idx]
        oid = self._next_oid
        self._next_oid += 1
        self._last_fill_notional = 0
        filled = m.book.market(oid, a.id, side, qty, worst, True)
        return filled, self._last_fill_notional, oid

    # ------------------------------------------------------------------ reads

    def position(self, account_id: IntArg, symbol: StrArg) -> PositionInfo:
        a = self.account(account_id)
        m = self.market(symbol)
        p = a.positions.get(m.index) or Position()
        entry = Fraction(p.cost, p.size * m.spec.multiplier) if p.size else None
        return PositionInfo(symbol, p.size, p.cost, p.realized, p.fees, p.funding, MODE_NAMES[p.mode], p.margin, entry)

    def open_orders(self, account_id: IntArg) -> dict[int, tuple[str, int, int, int]]:
        """oid -> (symbol, side, price, remaining qty) of the account's resting orders."""
        a = self.account(account_id)
        out = {}
        for oid, mi in a.open_orders.items():
            m = self.markets[mi]
            _, side, price, qty = m.book.order(oid)
            out[oid] = (m.spec.symbol, side, price, qty)
        return out

    def pay_funding(self, symbol: StrArg, rate: Any, price: IntArg):  # type: ignore[no-untyped-def]
        """Settle one funding payment (see ``abm.exchange.funding.pay_funding``)."""
        from abm.exchange.funding import pay_funding

        return pay_funding(self, symbol, rate, price)

    def check_conservation(self) -> None:
        check_conservation(self)

    # ------------------------------------------------------------------ internals

    def _order_target(self, account_id: IntArg, symbol: StrArg, side: IntArg) -> tuple[Account, Market, int]:
        """(account, market, side) of an order, each checked; the lookups every order starts with."""
        a = self.accounts.get(account_id) if type(account_id) is int else None
        if a is None:
            a = self.account(account_id)  # raises
        m = self._by_symbol.get(symbol) if type(symbol) is str else None
        if m is None:
            m = self.market(symbol)  # raises
        return a, m, (side if side is BUY or side is SELL else _side(side))

    def _check_client_id(self, a: Account, client_id: object) -> None:
        if client_id is None:
            return
        if isinstance(client_id, bool) or not isinstance(client_id, (str, int)):
            raise InvalidInput("client_id", client_id, "must be a str or int")
        if client_id in a.client_ids:
            raise DuplicateClientOrderId("client_id", client_id, "must differ from the account's live orders' client ids")

    def _check_price_size(self, m: Market, field: str, price: int, qty: int) -> None:
        """Refuse a price outside the venue's band around the mark, or an order whose notional would not fit."""
        if price <= 0:
            raise InvalidPrice(field, price, "must be a positive integer number of ticks")
        if price < m.band_lo or price > m.band_hi:
            if m.spec.price_band is None or m.index not in self.risk.marks:
                raise InvalidPrice(field, price, f"must be at most {m.band_hi} ticks (a lot's notional must fit "
                                                 f"{MAX_MONEY} quote units)")
            raise InvalidPrice(field, price, f"must be within the venue's price band of {m.spec.price_band * 100:g}% "
                                             f"around the mark {self.risk.marks[m.index]} ticks: "
                                             f"[{m.band_lo}, {m.band_hi}]")
        if price * qty > m.max_tick_lots:
            raise InvalidSize("qty", qty, f"must keep the order's notional within {MAX_MONEY} quote units "
                                          f"(at most {m.max_tick_lots // price} lots at {price} ticks)")

    def _reduce_only_qty(self, a: Account, m: Market, side: int, qty: int) -> tuple[int, int]:
        pos = a.positions.get(m.index)
        size = pos.size if pos is not None else 0
        room = -size if side == BUY else size
        if room <= 0:
            raise ReduceOnlyViolation(
                "reduce_only",
                f"{'buy' if side == BUY else 'sell'} {qty} with position {size}",
                "a reduce-only order must shrink an open position",
            )
        return (qty, 0) if qty <= room else (room, qty - room)

    def _owned_oid(self, a: Account, oid: Optional[IntArg], client_id: object) -> int:
        if (oid is None) == (client_id is None):
            raise InvalidInput("oid", oid, "give exactly one of oid or client_id")
        if oid is None:
            ok = isinstance(client_id, (str, int)) and not isinstance(client_id, bool)
            found = a.client_ids.get(client_id) if ok else None
            if found is None:
                raise UnknownOrder("client_id", client_id, f"must be the client id of one of account {a.id}'s resting orders")
            return found
        if type(oid) is not int or oid not in a.open_orders:
            raise UnknownOrder("oid", oid, f"must be the id of one of account {a.id}'s resting orders")
        return oid

    def _finish(self, a: Account, m: Market, oid: int, qty: int, filled: int, client_id: object, trimmed: int) -> OrderResult:
        resting = 0
        if oid in m.book:
            _, side, _, resting = m.book.order(oid)
            a.open_orders[oid] = m.index
            self._order_owner[oid] = (a.id, m.index, client_id, side)
            r = a.resting.get(m.index)
            if r is None:
                r = a.resting[m.index] = [0, 0]
            r[side] += resting
            if client_id is not None:
                a.client_ids[client_id] = oid
        return OrderResult(oid, qty, filled, self._last_fill_notional, resting, trimmed)

    def _drop(self, oid: int) -> int:
        """Cancel a registered resting order and update its owner's books; returns the size cancelled."""
        aid, mi, _, side = self._order_owner[oid]
        left = self.markets[mi].book.cancel(oid)
        self.accounts[aid].resting[mi][side] -= left
        self._forget(oid)
        return left

    def _forget(self, oid: int) -> None:
        """Drop a finished order's id and client id (its resting size is already accounted for)."""
        owner = self._order_owner.pop(oid, None)
        if owner is None:
            return
        a = self.accounts[owner[0]]
        a.open_orders.pop(oid, None)
        if owner[2] is not None:
            a.client_ids.pop(owner[2], None)

    def _credit(self, a: Account, amount: int) -> None:
        """The one way a cross balance changes (fills, funding, transfers, liquidation leftovers): the cross
        unit is re-keyed, since its liquidation price moved."""
        a.balance += amount
        if self.risk.params:
            self.risk.dirty.add((a.id, CROSS_UNIT))

    def _settle(self, acct: Account, m: Market, dq: int, price: int, fee: int, release: bool = True,
                liq: bool = False) -> None:
        """Book a change of ``dq`` lots at ``price`` to an account: PnL and fee into the right bucket.

        Cross: PnL and fee to the balance. Isolated: see ``_settle_isolated``. ``release=False`` keeps a
        closing isolated position's money in its bucket (a takeover moves it on as a whole). ``liq``
        marks the taker side of a liquidation fill.
        """
        idx = m.index
        pos = acct.positions.get(idx)
        if pos is None:
            pos = acct.positions[idx] = Position()
        s0 = pos.size
        pnl = pos.trade(dq, price, m.spec.multiplier)
        pos.realized += pnl
        pos.fees += fee
        if pos.mode == CROSS:
            self._credit(acct, pnl - fee)  # re-keys the cross unit, also for PnL in a market without margin rules
        elif release:
            self._settle_isolated(acct, m, pos, s0, dq, price, pnl, fee, liq)
        else:
            pos.margin += pnl - fee
        s1 = pos.size
        if s1 and (not s0 or (s0 > 0) != (s1 > 0)):
            self._position_seq += 1
            pos.opened = self._position_seq
            m.holders[acct.id] = pos
        elif s0 and not s1:
            del m.holders[acct.id]
        m.open_interest += (s1 if s1 > 0 else 0) - (s0 if s0 > 0 else 0)
        if m.margined and pos.mode != CROSS:
            self.risk.dirty.add((acct.id, idx))

    def _settle_isolated(self, a: Account, m: Market, pos: Position, s0: int, dq: int, price: int, pnl: int,
                         fee: int, liq: bool) -> None:
        """An isolated fill, lot by lot: closed lots leave with their share of the margin, opened lots bring theirs.

        Closing ``c`` of ``|s0|`` lots releases ``margin * c / |s0|`` (truncated toward zero, the rest stays
        with the open lots) together with the closed lots' realised PnL and their part of the fee: that sum
        is the closed lots' own equity and goes to the cross balance, so the remaining lots keep exactly
        their share and their liquidation price. Closed lots with negative equity (a fill beyond their
        bankruptcy price) are covered by the rest of the position first, isolation meaning the wallet never
        pays for it; a liquidation fill's fee is waived where it alone would push them below zero.
        Opening lots take their initial margin at the fill price from the balance; a flip does both.
        """
        a0 = s0 if s0 > 0 else -s0
        q = dq if dq > 0 else -dq
        closed = 0
        if s0 and (s0 > 0) != (dq > 0):
            closed = q if q < a0 else a0
        opened = q - closed
        close_fee = fee if not opened else fee * closed // q
        moved = 0
        if closed:
            mg = pos.margin
            if closed == a0:
                share = mg
            else:
                share = mg * closed // a0 if mg >= 0 else -((-mg) * closed // a0)
            out = share + pnl - close_fee
            if out < 0 and liq and close_fee > 0 and m.margined:
                waived = min(-out, close_fee)
                self.ledgers.balances["fees"] -= waived
                pos.fees -= waived
                out += waived
            pos.margin = mg - share
            if out >= 0:
                moved = out
            else:
                # a partial close: the open lots cover it; a full close: bad debt, which process_dirty settles;
                # a flip: bad debt settled now, before the new side's margin arrives
                pos.margin += out
                if opened and m.margined:
                    self._liquidator.cover_bad_debt(a, (a.id, m.index))
        if opened:
            pos.margin -= fee - close_fee
            if m.margined:
                im = -((-opened * m.spec.multiplier * price) // self.risk.lev(a.id, m.index))
                take = im if im <= a.balance else max(a.balance, 0)
                moved -= take
                pos.margin += take
        if moved:
            self._credit(a, moved)

    def _fill_handler(self, m: Market):  # type: ignore[no-untyped-def]
        accounts = self.accounts
        ledgers = self.ledgers.balances
        mult = m.spec.multiplier
        maker_ppm = m.spec.maker_ppm
        taker_ppm = m.spec.taker_ppm
        idx = m.index
        subscribers = self._subscribers
        forget = self._forget
        settle = self._settle

        def on_fill(mk: int, mown: int, tk: int, town: int, price: int, qty: int, tside: int, liq: bool, mleft: int) -> None:
            value = price * qty * mult
            tfee = -((-value * taker_ppm) // 1_000_000)
            mfee = _fee(value, maker_ppm)
            ledgers["fees"] += tfee + mfee
            settle(accounts[town], m, qty if tside == BUY else -qty, price, tfee, True, liq)
            maker = accounts[mown]
            settle(maker, m, -qty if tside == BUY else qty, price, mfee)
            maker.resting[idx][1 - tside] -= qty
            m.last_price = price
            m.volume += qty
            m.taker_volume[tside] += qty
            self._last_fill_notional += price * qty
            if not mleft:
                forget(mk)
            for fn in subscribers:
                fn(self.now, idx, mk, mown, tk, town, price, qty, tside, liq)

        return on_fill

    def _cancel_handler(self, m: Market):  # type: ignore[no-untyped-def]
        def on_cancel(oid: int, owner: int, cancelled: int, left: int, reason: int) -> None:
            if reason == CANCEL_STP_INCOMING:
                return  # the incoming order itself: not resting (a modify settles its own books)
            entry = self._order_owner.get(oid)
            if entry is None:
                return
            self.accounts[entry[0]].resting[entry[1]][entry[3]] -= cancelled
            if not left:
                self._forget(oid)

        return on_cancel

    def _ro_cap_fn(self, m: Market):  # type: ignore[no-untyped-def]
        accounts = self.accounts
        idx = m.index

        def ro_cap(owner: int, side: int) -> int:
            pos = accounts[owner].positions.get(idx)
            size = pos.size if pos is not None else 0
            room = -size if side == BUY else size
            return room if room > 0 else 0

        return ro_cap


def _side(side: object) -> int:
    if side is BUY or side is SELL:  # the common case: the module's own constants
        return side  # type: ignore[return-value]
    if isinstance(side, str):
        s = _SIDES.get(side.lower())
    else:
        s = _SIDES.get(side) if type(side) is int else None  # no bools, floats or unhashables
    if s is None:
        raise InvalidInput("side", side, "must be 'buy', 'sell', BUY (0) or SELL (1)")
    return s


def _positive_amount(amount: object) -> int:
    if type(amount) is not int or amount <= 0:
        raise InvalidAmount("amount", amount, "must be a positive integer number of quote units")
    return amount


def _slippage_bound(book: OrderBook, side: int, bps: float) -> int:
    """Worst acceptable price for a market order ``bps`` away from the mid; 0 when nothing is on the other side."""
    bb, ba = book.best_bid(), book.best_ask()
    opp = ba if side == BUY else bb
    if opp is None:
        return 0
    ref = Fraction(bb + ba, 2) if bb is not None and ba is not None else Fraction(opp)
    f = exact_fraction(bps) / 10000
    if side == BUY:
        return floor(ref * (1 + f))
    return max(1, ceil(ref * (1 - f)))
