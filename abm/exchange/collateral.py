"""Collateral: money in and out of accounts and how each position is margined.

Deposits and withdrawals, margin modes, isolated-margin transfers, leverage and the backstop vault's
account: the set-up calls a trader (or a scenario) makes around its orders, rare next to order entry,
so they are plain functions of the exchange (its ``Exchange`` methods of the same names call them), and
not compiled. Each validates everything before it changes anything; the money itself moves through the
exchange's settlement (``abm.exchange.settlement``), and the margin engine is told which units changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from abm.accounts.account import CROSS, MARGIN_MODES, STRICT_ISOLATED
from abm.errors import BoolArg, InsufficientFunds, IntArg, InvalidAmount, InvalidInput, StrArg, TransferFrozen
from abm.margin.engine import CROSS_UNIT
from abm.market.spec import as_int

if TYPE_CHECKING:
    from abm.exchange.exchange import Exchange


def positive_amount(amount: object) -> int:
    if type(amount) is not int or amount <= 0:
        raise InvalidAmount("amount", amount, "must be a positive integer number of quote units")
    return amount


def check_frozen(frozen: int, what: str, amount: int, venue: str) -> None:
    """Refuse a deposit or withdrawal while ``frozen`` (how many freezes of that kind are on) is not 0."""
    if frozen:
        raise TransferFrozen(what, amount, f"{venue} takes no {what} now (a transfer freeze); try again after it")


def freeze_transfers(ex: "Exchange", deposits: BoolArg, withdrawals: BoolArg, step: IntArg) -> None:
    """A freeze of deposits and/or withdrawals begins (step 1) or ends (step -1); freezes of a kind are counted."""
    counts = [ex.frozen_deposits, ex.frozen_withdrawals]
    validate_freeze(deposits, withdrawals, step, counts)
    ex.frozen_deposits, ex.frozen_withdrawals = counts


def validate_freeze(deposits: object, withdrawals: object, step: object, counts: list[int]) -> None:
    """Check a freeze call and apply it to ``counts`` ([deposits, withdrawals]) in place (shared with spot venues)."""
    if type(deposits) is not bool or type(withdrawals) is not bool:
        raise InvalidInput("deposits" if type(deposits) is not bool else "withdrawals",
                           deposits if type(deposits) is not bool else withdrawals, "must be True or False")
    if step not in (1, -1) or type(step) is not int:
        raise InvalidInput("step", step, "must be 1 (a freeze begins) or -1 (one ends)")
    new = [counts[0] + step * deposits, counts[1] + step * withdrawals]
    if min(new) < 0:
        raise InvalidInput("step", step, "ends a freeze that did not begin")
    counts[:] = new


def deposit(ex: "Exchange", account_id: IntArg, amount: IntArg) -> None:
    a = ex.account(account_id)
    positive_amount(amount)
    if ex.frozen_deposits:
        check_frozen(ex.frozen_deposits, "deposits", amount, "the perp venue")
    ex.ledgers.check_room(amount)
    ex.settlement.external(a, amount)
    ex.risk.process_dirty()


def withdraw(ex: "Exchange", account_id: IntArg, amount: IntArg) -> None:
    a = ex.account(account_id)
    positive_amount(amount)
    if ex.frozen_withdrawals:
        check_frozen(ex.frozen_withdrawals, "withdrawals", amount, "the perp venue")
    limit = ex.risk.withdrawable(a) if ex.risk.params else a.balance
    if amount > limit:
        raise InsufficientFunds("amount", amount, f"must be at most the withdrawable amount {limit}")
    ex.settlement.external(a, -amount)
    ex.risk.process_dirty()


def set_margin_mode(ex: "Exchange", account_id: IntArg, symbol: StrArg, mode: StrArg) -> None:
    a = ex.account(account_id)
    m = ex.market(symbol)
    if not isinstance(mode, str) or mode not in MARGIN_MODES:
        raise InvalidInput("mode", mode, f"must be one of {sorted(MARGIN_MODES)}")
    pos = a.positions.get(m.index)
    if pos is not None and (pos.size or pos.margin):
        raise InvalidInput("mode", mode, f"can only change while flat in {symbol} (size {pos.size}, margin {pos.margin})")
    if any(mi == m.index for mi in a.open_orders.values()):
        raise InvalidInput("mode", mode, f"can only change with no open orders in {symbol}")
    a.position(m.index).mode = MARGIN_MODES[mode]
    if m.margined:
        ex.risk.dirty.add((a.id, m.index))
        ex.risk.dirty.add((a.id, CROSS_UNIT))
        ex.risk.process_dirty()


def transfer_isolated_margin(ex: "Exchange", account_id: IntArg, symbol: StrArg, amount: IntArg) -> None:
    """The margin engine adds the rules on how much may be removed; here only that neither side goes negative."""
    a = ex.account(account_id)
    m = ex.market(symbol)
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
        limit = ex.risk.removable_isolated(a, m.index) if m.margined else pos.margin
        if -amount > limit:
            raise InsufficientFunds("amount", amount,
                                    f"must not remove more than {limit} (the rules keep margin >= max(IM, 10% of notional))")
    ex.settlement.to_isolated(a, pos, amount)
    if m.margined:
        ex.risk.dirty.add((a.id, m.index))
    ex.risk.process_dirty()


def set_leverage(ex: "Exchange", account_id: IntArg, symbol: StrArg, leverage: IntArg) -> None:
    a = ex.account(account_id)
    m = ex.market(symbol)
    ex.risk.set_leverage(a, m.index, leverage)
    ex.risk.dirty.add((a.id, m.index))
    ex.risk.process_dirty()


def create_backstop_vault(ex: "Exchange", deposit: IntArg, min_equity: IntArg, unwind_interval_us: IntArg,
                          unwind_slippage_bps: IntArg, adl_equity: IntArg = 0,
                          max_notional: Optional[IntArg] = None) -> int:
    """The vault takes over no unit once its equity is below ``min_equity`` (its loss limit) nor one that would take
    its position in a market past ``max_notional`` (None: no limit); below ``adl_equity`` its own positions are
    closed by ADL (the default 0: a vault that cannot cover its losses never stays negative)."""
    if ex.risk.vault is not None:
        raise InvalidInput("vault", ex.risk.vault, "a backstop vault exists already")
    if type(min_equity) is not int or min_equity < 0:
        raise InvalidAmount("min_equity", min_equity, "must be a non-negative integer (quote units)")
    if type(adl_equity) is not int or adl_equity < 0:
        raise InvalidAmount("adl_equity", adl_equity, "must be a non-negative integer (quote units)")
    if max_notional is not None and (type(max_notional) is not int or max_notional <= 0):
        raise InvalidAmount("max_notional", max_notional, "must be None or a positive integer (quote units)")
    if type(unwind_interval_us) is not int or unwind_interval_us <= 0:
        raise InvalidInput("unwind_interval_us", unwind_interval_us, "must be a positive integer (microseconds)")
    if type(unwind_slippage_bps) is not int or not 0 < unwind_slippage_bps < 10_000:
        raise InvalidInput("unwind_slippage_bps", unwind_slippage_bps, "must be an integer in (0, 10000)")
    positive_amount(deposit)
    aid = ex.open_account(deposit)
    ex.risk.vault = aid
    ex.risk.vault_min_equity = min_equity
    ex.risk.vault_adl_equity = adl_equity
    ex.risk.vault_max_notional = max_notional
    ex.risk.unwind_interval_us = unwind_interval_us
    ex.risk.unwind_slippage_bps = unwind_slippage_bps
    return aid


def seed_positions(ex: "Exchange", symbol: StrArg, pairs: object, equity: object) -> dict[int, int]:
    """The opening settlement: positions that exist when the run starts, booked in pairs at their entry prices.

    Why a venue call and not a trade: open interest that was built before the run did not meet today's book,
    so it pays no fee and moves no price, but it must be booked by the one code that books positions
    (``Settlement.settle``) so conservation and every index hold from the first event. ``pairs`` are
    ``(long_account, short_account, lots, price ticks)``; ``equity`` is ``{account: quote units}``, what each
    account's position is to be worth at the mark once booked (its margin at the mark): the part its booked
    PnL at the mark lacks is deposited from outside (into the isolated margin for an isolated position); none
    where the PnL covers it. Only in a market where nothing has traded and nobody holds a position, at a mark.
    Each pair is told to the fill subscribers with order ids 0 (no order made it). Returns the deposits.
    """
    from abm.accounts.account import CROSS, Position
    from abm.units import BUY

    m = ex.market(symbol)
    if m.open_interest or m.holders or m.volume:
        raise InvalidInput("symbol", symbol, "must be a market where nothing has traded and nobody holds a position "
                                             "(an opening settlement books a market's open interest once, first)")
    mark = ex.risk.marks.get(m.index)
    if mark is None:
        raise InvalidInput("symbol", symbol, "must have a mark (the positions' margin is measured at it)")
    if not isinstance(pairs, (list, tuple)) or not pairs:
        raise InvalidInput("pairs", pairs, "must be a non-empty list of (long_account, short_account, lots, price)")
    mult = m.spec.multiplier
    scratch: dict[int, Position] = {}
    booked: list[tuple[Any, Any, int, int]] = []
    for k, pair in enumerate(pairs):
        if not isinstance(pair, tuple) or len(pair) != 4:
            raise InvalidInput(f"pairs[{k}]", pair, "must be a tuple (long_account, short_account, lots, price)")
        lo, sh, qty, price = pair
        long_a, short_a = ex.account(lo), ex.account(sh)
        if lo == sh:
            raise InvalidInput(f"pairs[{k}]", pair, "must pair two different accounts")
        if type(qty) is not int or qty <= 0:
            raise InvalidInput(f"pairs[{k}].lots", qty, "must be a positive integer number of lots")
        if type(price) is not int or price <= 0 or price * qty > m.max_tick_lots:
            raise InvalidInput(f"pairs[{k}].price", price, f"must be a positive integer number of ticks with price x lots "
                                                           f"<= {m.max_tick_lots} (the money ceiling)")
        for aid, dq in ((lo, qty), (sh, -qty)):
            sp = scratch.setdefault(aid, Position())
            sp.realized += sp.trade(dq, price, mult)
        booked.append((long_a, short_a, qty, price))
    if not isinstance(equity, dict):
        raise InvalidInput("equity", equity, "must be a dict {account: quote units}")
    deposits: dict[int, int] = {}
    for aid, want in equity.items():
        if aid not in scratch:
            raise InvalidInput("equity", aid, "must name only accounts of the pairs")
        if type(want) is not int or want < 0:
            raise InvalidInput(f"equity[{aid}]", want, "must be a non-negative integer (quote units)")
        p = scratch[aid]
        lack = want - (p.realized + p.unrealized(mark, mult))
        if lack > 0:
            deposits[aid] = lack
    ex.ledgers.check_room(sum(deposits.values()))
    # everything is checked: book it
    settle = ex.settlement.settle
    for long_a, short_a, qty, price in booked:
        settle(long_a, m, qty, price, 0, False)
        settle(short_a, m, -qty, price, 0, False)
    for aid, amount in deposits.items():
        a = ex.accounts[aid]
        ex.settlement.external(a, amount)
        pos = a.positions[m.index]
        if pos.mode != CROSS:
            ex.settlement.to_isolated(a, pos, amount)
            if m.margined:
                ex.risk.dirty.add((aid, m.index))
    ex.risk.process_dirty()
    for long_a, short_a, qty, price in booked:
        for fn in ex._subscribers:
            fn(ex.now, m.index, 0, short_a.id, 0, long_a.id, price, qty, BUY, False)
    return deposits
