"""Settlement: the one place where a fill, a transfer or a payment changes an account's money.

Why one module: conservation (``abm.accounts.ledgers.check_conservation``) and the margin engine's
trigger index both depend on every change of a balance or a position being booked the same way, so
there is exactly one way to do each. ``Settlement.credit`` is the only code that writes
``Account.balance``; ``Settlement.settle`` books every change of a position (fills, backstop
takeovers, ADL transfers), and ``Settlement.fill`` is the money half of every fill. The exchange owns
one ``Settlement``; the liquidator (through ``LiquidationVenue.settlement``) and funding use the same one.

Money per fill (exact, integers): notional = price * qty * multiplier quote units; taker fee =
ceil(notional * taker_ppm / 1e6); maker fee the same with maker_ppm, or, for a rebate, the rebate
is floor(notional * |maker_ppm| / 1e6). Rounding therefore always favours the venue, and the whole
rounded amount lands in the ``fees`` ledger, which pays rebates: nothing is lost to rounding.
"""

from __future__ import annotations

from typing import Callable, Optional

from abm.accounts.account import CROSS, Account, Position
from abm.accounts.ledgers import Ledgers
from abm.accounts.market_state import Market, tagged_slot
from abm.margin.engine import CROSS_UNIT, MarginEngine
from abm.units import BUY


def trading_fee(value: int, ppm: int) -> int:
    """Fee on ``value`` quote units, rounded in the venue's favour (rebates are negative fees)."""
    if ppm >= 0:
        return -((-value * ppm) // 1_000_000)
    return -((value * -ppm) // 1_000_000)


class Settlement:
    """Books money and positions for one exchange: its ledgers, and its margin engine's dirty units.

    Every method changes state; none validates (the exchange's public methods have done that before
    calling), so a refused request never reaches here.
    """

    def __init__(self, ledgers: Ledgers, risk: MarginEngine) -> None:
        self.ledgers = ledgers
        self.balances = ledgers.balances
        self.risk = risk
        self.position_seq = 0  # age of positions (ADL ties): bumped whenever one opens or flips
        # told when a position closes or flips (the trigger book's position TP/SLs); None until one exists
        self.on_close: Optional[Callable[[Account, Market], None]] = None

    # ------------------------------------------------------------------ cross balance

    def credit(self, a: Account, amount: int) -> None:
        """The one way a cross balance changes (fills, funding, transfers, liquidation leftovers): the cross
        unit is re-keyed, since its liquidation price moved."""
        a.balance += amount
        if self.risk.params:
            self.risk.dirty.add((a.id, CROSS_UNIT))

    def external(self, a: Account, amount: int) -> None:
        """Money from outside into (``amount`` > 0) or out of an account's cross balance: a deposit or withdrawal."""
        self.credit(a, amount)
        a.external += amount
        self.ledgers.external += amount

    def to_isolated(self, a: Account, pos: Position, amount: int) -> None:
        """Move collateral from the cross balance into (``amount`` > 0) or out of an isolated position's margin."""
        self.credit(a, -amount)
        pos.margin += amount

    # ------------------------------------------------------------------ fills and position changes

    def fill(self, m: Market, taker: Account, maker: Account, price: int, qty: int, tside: int, liq: bool) -> None:
        """The money of one fill: both fees to the ``fees`` ledger, then each side's change of position."""
        spec = m.spec
        value = price * qty * spec.multiplier
        tfee = -((-value * spec.taker_ppm) // 1_000_000)
        mfee = trading_fee(value, spec.maker_ppm)
        self.balances["fees"] += tfee + mfee
        self.settle(taker, m, qty if tside == BUY else -qty, price, tfee, True, liq)
        self.settle(maker, m, -qty if tside == BUY else qty, price, mfee)

    def settle(self, acct: Account, m: Market, dq: int, price: int, fee: int, release: bool = True,
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
            self.credit(acct, pnl - fee)  # re-keys the cross unit, also for PnL in a market without margin rules
        elif release:
            self._settle_isolated(acct, m, pos, s0, dq, price, pnl, fee, liq)
        else:
            pos.margin += pnl - fee
        s1 = pos.size
        closed = False
        if s1 and (not s0 or (s0 > 0) != (s1 > 0)):
            self.position_seq += 1
            pos.opened = self.position_seq
            m.holders[acct.id] = pos
            closed = s0 != 0
        elif s0 and not s1:
            del m.holders[acct.id]
            closed = True
        m.open_interest += (s1 if s1 > 0 else 0) - (s0 if s0 > 0 else 0)
        tag = acct.tag
        if tag is not None and s1 != s0:
            lots = m.tagged_lots.get(tag)
            if lots is None:
                lots = m.tagged_lots[tag] = [0, 0, 0, 0]
            if s0:
                lots[tagged_slot(s0, pos.mode)] -= s0 if s0 > 0 else -s0
            if s1:
                lots[tagged_slot(s1, pos.mode)] += s1 if s1 > 0 else -s1
        if m.margined and pos.mode != CROSS:
            self.risk.dirty.add((acct.id, idx))
        if closed and self.on_close is not None:
            self.on_close(acct, m)

    def retag(self, acct: Account, tag: Optional[str], markets: list[Market]) -> None:
        """Count the account's open positions under ``tag`` (None: under none) from now on, moving them
        out of its previous tag's totals; ``settle`` keeps the totals from there."""
        for idx, pos in acct.positions.items():
            s = pos.size
            if not s:
                continue
            m = markets[idx]
            k = tagged_slot(s, pos.mode)
            q = s if s > 0 else -s
            if acct.tag is not None:
                m.tagged_lots[acct.tag][k] -= q
            if tag is not None:
                lots = m.tagged_lots.get(tag)
                if lots is None:
                    lots = m.tagged_lots[tag] = [0, 0, 0, 0]
                lots[k] += q
        acct.tag = tag

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
                self.balances["fees"] -= waived
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
                    self.risk.on_bad_debt(a, (a.id, m.index))
        if opened:
            pos.margin -= fee - close_fee
            if m.margined:
                im = -((-opened * m.spec.multiplier * price) // self.risk.lev(a.id, m.index))
                take = im if im <= a.balance else max(a.balance, 0)
                moved -= take
                pos.margin += take
        if moved:
            self.credit(a, moved)
