"""The exchange: the only thing that mutates books and accounts.

Agents (and users) act through these methods and read market data through ``Exchange.data``; they
never touch balances. Every public method validates all of its input before it changes anything,
so a rejected call leaves books, accounts, ledgers and the order-id sequence exactly as they were.

This module is order entry and the venue's set-up calls; the money of every fill, transfer and payment
is booked by ``abm.exchange.settlement`` (fees and their rounding are described there), and the read-only
answers (positions, open orders, equity, margins) come from ``abm.exchange.queries``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Optional, Union

from abm.accounts.account import Account
from abm.accounts.ledgers import Ledgers, check_conservation
from abm.accounts.market_state import Market
from abm.errors import (
    BoolArg,
    DuplicateMarket,
    FloatArg,
    IntArg,
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
from abm.exchange import collateral, queries
from abm.exchange.collateral import positive_amount
from abm.exchange.entry import (
    HALTED,
    check_cancel_state,
    check_modify_state,
    check_order_state,
    check_rules,
    state_code,
    valid_rules,
)
from abm.exchange.inputs import TIFS, check_client_id, owned_oid, parse_side, slippage_bound
from abm.exchange.queries import OrderResult, PositionInfo
from abm.exchange.settlement import Settlement
from abm.exchange.triggers import TriggerBook, TriggerReport
from abm.margin.engine import MarginEngine
from abm.margin.events import LiquidationLog
from abm.margin.liquidation import LiquidationFactory, LiquidationProcess, Liquidator, is_liquidation_process
from abm.margin.params import RiskParams
from abm.market.book import (
    BUY,
    CANCEL_STP_INCOMING,
    GTC,
    SELL,
    STP_CANCEL_INCOMING,
    STP_CANCEL_RESTING,
    OrderBook,
)
from abm.market.spec import MAX_MONEY, MarketSpec, as_int
from abm.market.view import BookView

# (time, market, maker_oid, maker_account, taker_oid, taker_account, price, qty, taker_side, liquidation)
FillSubscriber = Callable[[int, int, int, int, int, int, int, int, int, bool], None]


class Exchange:
    def __init__(self, liquidation: Optional[LiquidationFactory] = None) -> None:
        """An empty venue. ``liquidation``: the liquidation process class (``abm.margin.LIQUIDATION_PROCESSES``;
        a venue's is ``Venue.liquidation_process()``); None is the default waterfall, ``Liquidator``."""
        if liquidation is not None and not is_liquidation_process(liquidation):
            raise InvalidInput("liquidation", liquidation, "must be a liquidation process class (on_mark, cover_bad_debt), "
                                                           "e.g. one of abm.margin.LIQUIDATION_PROCESSES, or None")
        self.markets: list[Market] = []
        self._by_symbol: dict[str, Market] = {}
        self.accounts: dict[int, Account] = {}
        self.ledgers = Ledgers()
        self.now = 0  # simulation time in integer microseconds, advanced by whoever drives the exchange
        self._next_oid = 1
        self._next_account = 1
        self._order_owner: dict[int, tuple[int, int, object, int, int]] = {}  # resting oid -> (account, market, client id, side, price)
        self._subscribers: list[FillSubscriber] = []
        self._last_fill_notional = 0  # of the order being matched (for OrderResult)
        self._halted = 0  # markets halted now: a cancel looks at its market's state only while some are
        self.frozen_deposits = 0  # transfer freezes on now (freeze_transfers): deposits, withdrawals
        self.frozen_withdrawals = 0
        self.risk = MarginEngine(self.accounts, self.markets)
        self.settlement = Settlement(self.ledgers, self.risk)
        self._liquidator: LiquidationProcess = (liquidation or Liquidator)(self, self.risk)
        self.risk.on_bad_debt = self._liquidator.cover_bad_debt
        self.stops: Optional[TriggerBook] = None  # trigger orders (abm.exchange.triggers), built at the first one

    # ------------------------------------------------------------------ listing and lookup

    def list_market(self, spec: MarketSpec, risk: Optional[RiskParams] = None, rules: Any = ()) -> int:
        """List a market. With ``risk`` its positions need margin and get liquidated; without, it is a bare
        trading venue (book and fee studies, tests) where nothing is margined. ``rules``: opt-in rules built for
        this market (``abm.venues.rules``): order-entry rules, checked on every user order, and liquidation holds
        (``applies = "liquidations"``), asked at every mark update whether the engine must stop there."""
        if not isinstance(spec, MarketSpec):
            raise InvalidInput("spec", spec, "must be a MarketSpec")
        if risk is not None and not isinstance(risk, RiskParams):
            raise InvalidInput("risk", risk, "must be RiskParams or None")
        if spec.symbol in self._by_symbol:
            raise DuplicateMarket("symbol", spec.symbol, "must not be listed already")
        built, holds = valid_rules(rules)
        idx = len(self.markets)
        stp = STP_CANCEL_RESTING if spec.stp == "cancel_resting" else STP_CANCEL_INCOMING
        book = OrderBook(stp=stp)
        m = Market(idx, spec, book)
        m.rules = built
        m.holds = holds
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

    # ------------------------------------------------------------------ accounts and collateral (abm.exchange.collateral)

    def open_account(self, deposit: IntArg = 0) -> int:
        if deposit != 0:
            positive_amount(deposit)
        aid = self._next_account
        self._next_account += 1
        self.accounts[aid] = Account(aid)
        if deposit:
            self.deposit(aid, deposit)
        return aid

    def tag_account(self, account_id: IntArg, tag: Optional[StrArg]) -> None:
        """Count the account's positions under ``tag`` in every market's ``tagged_lots`` (None: untag).

        Why here: positions change only in settlement, so a running total kept there costs O(1) per fill,
        where summing holders costs O(holders) per reading. The tag means nothing to the venue (margin,
        matching and liquidation never read it): its owner (the model: its leveraged traders) names the group.
        """
        a = self.account(account_id)
        if tag is not None and not isinstance(tag, str):
            raise InvalidInput("tag", tag, "must be a str or None")
        self.settlement.retag(a, tag, self.markets)

    def deposit(self, account_id: IntArg, amount: IntArg) -> None:
        collateral.deposit(self, account_id, amount)

    def withdraw(self, account_id: IntArg, amount: IntArg) -> None:
        """Withdraw cross collateral; with margined positions what stays must cover max(IM, 10% of notional)."""
        collateral.withdraw(self, account_id, amount)

    def freeze_transfers(self, deposits: BoolArg, withdrawals: BoolArg, step: IntArg = 1) -> None:
        """A freeze of deposits and/or withdrawals begins (``step`` 1) or ends (-1): while one is on, ``deposit`` or
        ``withdraw`` is refused with ``TransferFrozen``. Freezes of a kind are counted, so windows may overlap."""
        collateral.freeze_transfers(self, deposits, withdrawals, step)

    def seed_ledger(self, name: StrArg, amount: IntArg) -> None:
        self.ledgers.seed(name, amount)

    def set_margin_mode(self, account_id: IntArg, symbol: StrArg, mode: StrArg) -> None:
        """Choose cross, isolated or strict_isolated for one market; only while flat with no open orders there."""
        collateral.set_margin_mode(self, account_id, symbol, mode)

    def transfer_isolated_margin(self, account_id: IntArg, symbol: StrArg, amount: IntArg) -> None:
        """Move collateral into (amount > 0) or out of (amount < 0) an isolated position's margin, within the
        margin rules (``abm.exchange.collateral``)."""
        collateral.transfer_isolated_margin(self, account_id, symbol, amount)

    def set_leverage(self, account_id: IntArg, symbol: StrArg, leverage: IntArg) -> None:
        collateral.set_leverage(self, account_id, symbol, leverage)

    def create_backstop_vault(self, deposit: IntArg, min_equity: IntArg = 0, unwind_interval_us: IntArg = 30_000_000,
                              unwind_slippage_bps: IntArg = 100, adl_equity: IntArg = 0,
                              max_notional: Optional[IntArg] = None) -> int:
        """Open the backstop vault account (funded from outside) that takes over positions the book cannot absorb;
        its limits: ``abm.exchange.collateral.create_backstop_vault``."""
        return collateral.create_backstop_vault(self, deposit, min_equity, unwind_interval_us, unwind_slippage_bps,
                                                adl_equity, max_notional)

    def seed_positions(self, symbol: StrArg, pairs: Any, equity: Any) -> dict[int, int]:
        """The opening settlement of a market's open interest before the run: ``pairs`` of (long account, short
        account, lots, price ticks) booked at their prices with no fee, each account's position made worth
        ``equity[account]`` at the mark by a deposit (``abm.exchange.collateral.seed_positions``)."""
        return collateral.seed_positions(self, symbol, pairs, equity)

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
        t = TIFS.get(tif) if isinstance(tif, str) or type(tif) is int else None
        if t is None:
            raise InvalidOrderType("tif", tif, "must be one of 'GTC', 'IOC', 'FOK'")
        if type(post_only) is not bool or type(reduce_only) is not bool:
            bad = "post_only" if type(post_only) is not bool else "reduce_only"
            raise InvalidOrderType(bad, post_only if bad == "post_only" else reduce_only, "must be True or False")
        if post_only and t != GTC:
            raise InvalidOrderType("post_only", True, "only allowed with tif 'GTC'")
        if client_id is not None:
            check_client_id(a.client_ids, client_id)
        if m.state:
            check_order_state(m.state, m.spec.symbol, m.book, s, qty, price, False, t == GTC, reduce_only)
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
            bound = slippage_bound(m.book, s, slippage_bps)
            if worst_price is None:
                worst_price = bound
            else:
                if bound:
                    worst_price = min(worst_price, bound) if s == BUY else max(worst_price, bound)
                self._check_price_size(m, "worst_price", worst_price, qty)
        if type(reduce_only) is not bool:
            raise InvalidOrderType("reduce_only", reduce_only, "must be True or False")
        if client_id is not None:
            check_client_id(a.client_ids, client_id)
        if m.state:
            check_order_state(m.state, m.spec.symbol, m.book, s, qty, worst_price or 0, True, False, reduce_only)
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
            oid = owned_oid(a.id, a.open_orders, a.client_ids, oid, client_id)
        if self._halted:
            m = self.markets[a.open_orders[oid]]
            check_cancel_state(m.state, m.spec.symbol, oid)
        return self._drop(oid)

    def cancel_all(self, account_id: IntArg, symbol: Optional[StrArg] = None) -> int:
        """Cancel the account's resting orders (in one market, or all); returns how many were cancelled."""
        a = self.account(account_id)
        only = self.market(symbol).index if symbol is not None else None
        oids = [oid for oid, mi in a.open_orders.items() if only is None or mi == only]
        if self._halted:  # all or nothing: a halted market (named, or holding one of the orders) refuses the call
            if only is not None:
                m = self.markets[only]
                check_cancel_state(m.state, m.spec.symbol, -1)
            for oid in oids:
                m = self.markets[a.open_orders[oid]]
                check_cancel_state(m.state, m.spec.symbol, oid)
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
        oid = owned_oid(a.id, a.open_orders, a.client_ids, oid, client_id)
        if price is None and qty is None:
            raise InvalidInput("price", None, "give a new price and/or qty")
        if price is not None:
            price = as_int("price", price, InvalidPrice)
        if qty is not None:
            qty = as_int("qty", qty, InvalidSize)
        m = self.markets[a.open_orders[oid]]
        _, side, was, left = m.book.order(oid)
        ro = m.book.is_reduce_only(oid)
        if m.state:
            check_modify_state(m.state, m.spec.symbol, m.book, oid, side, price, m.book.order(oid)[2], qty, left, ro)
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
        r = a.resting[m.index]
        r[side] += now_left - left
        now = was if price is None else price
        r[2] += now_left * now - left * was
        if not now_left:
            self._forget(oid)
        elif now != was:
            aid, mi, cid, _, _ = self._order_owner[oid]
            self._order_owner[oid] = (aid, mi, cid, side, now)
        self.risk.process_dirty()
        return filled

    def set_market_state(self, symbol: StrArg, state: StrArg, pause_liquidations: BoolArg = False) -> None:
        """Put a market in a trading state (``abm.exchange.entry.MARKET_STATES``): ``"open"``, ``"halted"``,
        ``"cancel_only"``, ``"post_only"`` or ``"reduce_only"``; order entry refuses what the state does not accept.

        ``pause_liquidations`` (a halt only) also stops the venue's engine in the market: mark updates run no
        liquidation check, the exchange's own liquidation orders fill nothing there, and the feed skips its
        funding samples; reopening runs the liquidation check at once, at the mark of that moment (unless a
        liquidation hold, ``Market.holds``, still holds: then at the first mark update it no longer does). Without
        it a halt locks users out while liquidations go on against the frozen book. Other states never stop them.
        """
        m = self.market(symbol)
        code = state_code("state", state)
        if type(pause_liquidations) is not bool:
            raise InvalidInput("pause_liquidations", pause_liquidations, "must be True or False")
        if pause_liquidations and code != HALTED:
            raise InvalidInput("pause_liquidations", pause_liquidations, f"only a halt pauses liquidations, not "
                                                                         f"{state!r}")
        resumed = m.paused and not pause_liquidations and not m.held
        if m.state == HALTED:
            self._halted -= 1
        if code == HALTED:
            self._halted += 1
        m.state = code
        m.halt_pause = pause_liquidations
        m.paused = pause_liquidations or m.held
        if resumed and m.margined and m.index in self.risk.marks:
            self._liquidator.on_mark(m.index)

    # ------------------------------------------------------------------ trigger orders (abm.exchange.triggers)

    def trigger_order(
        self,
        account_id: IntArg,
        symbol: StrArg,
        side: IntArg,
        qty: Optional[IntArg],
        trigger_price: IntArg,
        limit_price: Optional[IntArg] = None,
        kind: StrArg = "stop",
        reduce_only: BoolArg = False,
        position: BoolArg = False,
        notify: Optional[Callable[[TriggerReport], None]] = None,
    ) -> int:
        """A trigger order held by the venue until a mark update crosses ``trigger_price``; returns its id.

        ``kind``: ``"stop"`` (a sell fires when the mark falls to the trigger, a buy when it rises to it) or
        ``"take_profit"`` (the other way round). Without ``limit_price`` it enters as a market order bounded
        at the firing mark ∓10%, with one as a GTC limit. ``position=True``: a TP/SL of the account's
        position (reduce-only, one-cancels-the-other, cancelled when the position closes; ``qty`` None: the
        whole position when it fires). ``notify(report)`` gets a ``TriggerReport`` whenever the venue fires,
        rejects or cancels it; it must not call back into the exchange. Rules: ``abm.exchange.triggers``.
        """
        a, m, s = self._order_target(account_id, symbol, side)
        book = self.stops if self.stops is not None else TriggerBook(self)
        tid = book.place(a, m, s, qty, trigger_price, limit_price, kind, reduce_only, position, notify)
        self.stops = book
        return tid

    def cancel_trigger(self, account_id: IntArg, tid: IntArg) -> None:
        """Cancel one of the account's resting trigger orders by its id."""
        a = self.account(account_id)
        if self.stops is None:
            raise UnknownOrder("tid", tid, f"must be the id of one of account {a.id}'s trigger orders")
        self.stops.cancel(a, tid)

    def trigger_report(self, account_id: IntArg, tid: IntArg) -> TriggerReport:
        """What became of one of the account's trigger orders (resting, triggered, cancelled or rejected)."""
        a = self.account(account_id)
        if self.stops is None:
            raise UnknownOrder("tid", tid, f"must be the id of one of account {a.id}'s trigger orders")
        return self.stops.get(a, tid).report()

    # ------------------------------------------------------------------ margin and liquidation

    def set_oracle(self, symbol: StrArg, price: IntArg) -> None:
        """The oracle published ``price`` (integer ticks) now: what the opt-in oracle rules measure age and divergence
        from (``Market.oracle_us``, ``Market.oracle_price``); nothing else reads it."""
        m = self.market(symbol)
        if type(price) is not int or price <= 0:
            raise InvalidPrice("price", price, "must be a positive integer number of ticks")
        m.oracle_us = self.now
        m.oracle_price = price

    def set_mark(self, symbol: StrArg, price: IntArg) -> None:
        """Publish a mark price (integer ticks); in a margined market this runs the liquidation check, then fires
        the trigger orders it crosses (not in a halted market).

        With liquidation holds (``Market.holds``: a stale oracle, a mark far from the oracle) each is asked first;
        while one holds the engine stops in the market as in a paused halt, and the first mark update at which none
        holds runs the check at once."""
        m = self.market(symbol)
        price = as_int("price", price, InvalidPrice)
        if not 0 < price <= m.max_tick_lots:
            raise InvalidPrice("price", price, f"must be a positive integer number of ticks whose one-lot value fits "
                                               f"{MAX_MONEY} quote units (at most {m.max_tick_lots})")
        self.risk.marks[m.index] = price
        if self.risk.dynamic and m.index in self.risk.dynamic:  # dynamic margin: sample, maybe a new factor
            self.risk.observe(m.index, self.now)
        if m.band_ppm:
            w = price * m.band_ppm
            m.band_lo = max(1, -((w - price * 1_000_000) // 1_000_000))  # ceil(mark * (1 - band))
            m.band_hi = min(m.max_tick_lots, (price * 1_000_000 + w) // 1_000_000)  # floor(mark * (1 + band))
        if m.holds:
            held = False
            for h in m.holds:
                if h.holds(m, self.now, price):
                    held = True
                    break
            m.held = held
            m.paused = m.halt_pause or held
        if m.margined and not m.paused:
            self._liquidator.on_mark(m.index)
        if self.stops is not None and m.state != HALTED:
            self.stops.on_mark(m, price)

    @property
    def liquidations(self) -> LiquidationLog:
        """The liquidation log (``abm.margin.events.LiquidationLog``)."""
        return self.risk.log

    def _liquidation_order(self, a: Account, idx: int, side: int, qty: int, worst: int) -> tuple[int, int, int]:
        """A liquidation-flagged market order, bypassing margin admission; returns (filled, tick·lots, oid)."""
        m = self.markets[idx]
        if m.paused:  # the venue's engine is stopped in this market: its book takes nothing (no order is made)
            return 0, 0, -1
        oid = self._next_oid
        self._next_oid += 1
        self._last_fill_notional = 0
        filled = m.book.market(oid, a.id, side, qty, worst, True)
        return filled, self._last_fill_notional, oid

    # ------------------------------------------------------------------ reads

    def position(self, account_id: IntArg, symbol: StrArg) -> PositionInfo:
        return queries.position_info(self.account(account_id), self.market(symbol))

    def open_orders(self, account_id: IntArg) -> dict[int, tuple[str, int, int, int]]:
        """oid -> (symbol, side, price, remaining qty) of the account's resting orders."""
        return queries.open_orders(self.account(account_id), self.markets)

    def liquidation_price(self, account_id: IntArg, symbol: StrArg) -> Optional[Fraction]:
        """Exact liquidation price in ticks (cross: if the other markets' marks stayed put); None if none."""
        a = self.account(account_id)
        return self.risk.liquidation_price(a.id, self.market(symbol).index)

    def equity(self, account_id: IntArg) -> int:
        """What the account is worth at the marks (quote units): cross equity plus its isolated positions' equity.

        The cheap question agents ask on every wake; ``margin_summary`` adds margins, with exact Fractions.
        """
        return queries.equity(self.risk, self.account(account_id))

    def margin_summary(self, account_id: IntArg) -> dict[str, object]:
        """Cross equity, maintenance margin and free collateral, plus each isolated position's equity and MM."""
        return queries.margin_summary(self.risk, self.account(account_id), self.markets)

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
        return a, m, (side if side is BUY or side is SELL else parse_side(side))

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

    def _finish(self, a: Account, m: Market, oid: int, qty: int, filled: int, client_id: object, trimmed: int) -> OrderResult:
        resting = 0
        if oid in m.book:
            _, side, price, resting = m.book.order(oid)
            a.open_orders[oid] = m.index
            self._order_owner[oid] = (a.id, m.index, client_id, side, price)
            r = a.resting.get(m.index)
            if r is None:
                r = a.resting[m.index] = [0, 0, 0]
            r[side] += resting
            r[2] += resting * price
            if client_id is not None:
                a.client_ids[client_id] = oid
        return OrderResult(oid, qty, filled, self._last_fill_notional, resting, trimmed)

    def _drop(self, oid: int) -> int:
        """Cancel a registered resting order and update its owner's books; returns the size cancelled."""
        aid, mi, _, side, price = self._order_owner[oid]
        left = self.markets[mi].book.cancel(oid)
        r = self.accounts[aid].resting[mi]
        r[side] -= left
        r[2] -= left * price
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

    def _fill_handler(self, m: Market):  # type: ignore[no-untyped-def]
        accounts = self.accounts
        idx = m.index
        subscribers = self._subscribers
        forget = self._forget
        settle_fill = self.settlement.fill

        def on_fill(mk: int, mown: int, tk: int, town: int, price: int, qty: int, tside: int, liq: bool, mleft: int) -> None:
            maker = accounts[mown]
            settle_fill(m, accounts[town], maker, price, qty, tside, liq)
            r = maker.resting[idx]
            r[1 - tside] -= qty
            r[2] -= qty * price
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
            r = self.accounts[entry[0]].resting[entry[1]]
            r[entry[3]] -= cancelled
            r[2] -= cancelled * entry[4]
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
