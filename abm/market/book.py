"""A price-time priority limit order book for one market, in integer ticks and lots.

Why it looks the way it does:
- Each side keeps a dict of price levels and a sorted list of level keys with the best level at the
  end, so the best price is ``keys[-1]``, emptying the best level is ``list.pop()``, and band
  queries (depth within x bps, L2, impact price) bisect to the band and visit only its levels.
  Bid keys are prices, ask keys are negated prices: "is marketable" is then ``key >= limit_key`` on
  both sides and one matching loop serves buys and sells.
- A level is a deque of orders (FIFO) plus a running total of live size. Cancels are O(1): the order
  is marked dead (size 0) and skipped when it reaches the front; a level full of dead entries is
  compacted, and an empty level is dropped at once.
- The matching loop creates no per-fill objects and keeps no history. Each fill is reported to an
  optional ``on_fill(maker_oid, maker_owner, taker_oid, taker_owner, price, qty, taker_side, liq,
  maker_left)`` with plain values; a tape or the exchange's accounting listens there.
  Listeners must not call back into the book while it is matching.
- Ties are broken by arrival sequence only (the deque order), never by order id or owner.

The book knows nothing about money or positions; the exchange owns those. Two hooks let the exchange
enforce what needs positions at fill time: ``ro_cap(owner, side)`` caps a resting reduce-only order
when it is reached, and ``on_cancel`` reports orders the book cancelled by itself (self-trade
prevention, reduce-only trims).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from fractions import Fraction
from typing import Any, Callable, Optional, Sequence

from abm.errors import (
    BoolArg,
    DuplicateOrderId,
    FloatArg,
    IntArg,
    InvalidInput,
    InvalidOrderType,
    InvalidPrice,
    InvalidSize,
    PostOnlyWouldCross,
    UnknownOrder,
)
from abm.market.spec import exact_fraction
from abm.units import BUY, SELL

# time in force
GTC = 0
IOC = 1
FOK = 2

# self-trade prevention: what happens when an incoming order would trade with its owner's resting order
STP_CANCEL_RESTING = 0
STP_CANCEL_INCOMING = 1

# why the book cancelled (part of) an order by itself, reported to on_cancel
CANCEL_STP = 1
CANCEL_REDUCE_ONLY = 2
CANCEL_STP_INCOMING = 3

_NO_LIMIT = -(1 << 62)  # a limit key every level satisfies: a market order without a price bound
_COMPACT_MIN_DEAD = 16

FillListener = Callable[[int, object, int, object, int, int, int, bool, int], None]
CancelListener = Callable[[int, object, int, int, int], None]  # oid, owner, cancelled, left, reason


class _Order:
    __slots__ = ("oid", "owner", "side", "price", "qty", "ro", "po")

    def __init__(self, oid: int, owner: object, side: int, price: int, qty: int, ro: bool, po: bool):
        self.oid = oid
        self.owner = owner
        self.side = side
        self.price = price
        self.qty = qty  # remaining size; 0 marks a dead entry still sitting in its level's deque
        self.ro = ro
        self.po = po


class _Level:
    __slots__ = ("q", "size", "dead")

    def __init__(self) -> None:
        self.q: deque[_Order] = deque()
        self.size = 0  # live size at this price, kept as orders arrive, fill and cancel
        self.dead = 0  # cancelled entries still in q


def _check_side(side: object) -> int:
    if type(side) is int and (side == BUY or side == SELL):
        return side
    raise InvalidInput("side", side, "must be BUY (0) or SELL (1)")


def _check_price(price: object, field: str = "price") -> None:
    if type(price) is not int or price <= 0:
        raise InvalidPrice(field, price, "must be a positive integer number of ticks")


def _check_qty(qty: object, field: str = "qty") -> None:
    if type(qty) is not int or qty <= 0:
        raise InvalidSize(field, qty, "must be a positive integer number of lots")


class OrderBook:
    """One market's book. Owners are opaque (account ids); ``None`` means anonymous, never self-trading."""

    __slots__ = (
        "_orders",
        "_bid_lv",
        "_ask_lv",
        "_bid_keys",
        "_ask_keys",
        "_killed",
        "stp",
        "on_fill",
        "on_cancel",
        "ro_cap",
    )

    def __init__(
        self,
        stp: IntArg = STP_CANCEL_RESTING,
        on_fill: Optional[FillListener] = None,
        on_cancel: Optional[CancelListener] = None,
        ro_cap: Optional[Callable[[object, int], int]] = None,
    ) -> None:
        if stp not in (STP_CANCEL_RESTING, STP_CANCEL_INCOMING):
            raise InvalidInput("stp", stp, "must be STP_CANCEL_RESTING (0) or STP_CANCEL_INCOMING (1)")
        self._orders: dict[int, _Order] = {}
        self._bid_lv: dict[int, _Level] = {}
        self._ask_lv: dict[int, _Level] = {}
        self._bid_keys: list[int] = []  # ascending prices: best bid last
        self._ask_keys: list[int] = []  # ascending negated prices: best ask last
        self._killed = False
        self.stp = stp
        self.on_fill = on_fill
        self.on_cancel = on_cancel
        self.ro_cap = ro_cap

    # ------------------------------------------------------------------ order entry

    def limit(
        self,
        oid: IntArg,
        owner: object,
        side: IntArg,
        price: IntArg,
        qty: IntArg,
        tif: IntArg = GTC,
        post_only: BoolArg = False,
        reduce_only: BoolArg = False,
        liq: BoolArg = False,
    ) -> int:
        """Submit a limit order; returns the size filled at once. A GTC remainder rests."""
        if type(price) is not int or price <= 0:
            _check_price(price)
        if type(qty) is not int or qty <= 0:
            _check_qty(qty)
        if type(side) is not int or (side != BUY and side != SELL):
            _check_side(side)
        if oid in self._orders:
            raise DuplicateOrderId("oid", oid, "must not be the id of a resting order")
        if tif or post_only or reduce_only or type(tif) is not int:
            self._check_flags(tif, post_only, reduce_only)
        if side == BUY:
            key = price
            opp = self._ask_keys
        else:
            key = -price
            opp = self._bid_keys
        left = qty
        if opp and opp[-1] >= -key:
            if post_only:
                raise PostOnlyWouldCross("price", price, "a post-only order must not cross the opposite best")
            if tif == FOK and not self._fillable(side, -key, qty, owner):
                return 0
            self._killed = False
            left = self._take(side, -key, qty, oid, owner, liq)
            if self._killed or not left:
                return qty - left
        elif tif == FOK:
            return 0
        if tif:  # IOC/FOK: the remainder is dropped
            return qty - left
        # rest the remainder (inlined: this is the hottest path of the book)
        if side == BUY:
            levels = self._bid_lv
            keys = self._bid_keys
        else:
            levels = self._ask_lv
            keys = self._ask_keys
        lvl = levels.get(key)
        if lvl is None:
            lvl = levels[key] = _Level()
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                insort(keys, key)
        o = _Order(oid, owner, side, price, left, reduce_only, post_only)
        lvl.q.append(o)
        lvl.size += left
        self._orders[oid] = o
        return qty - left

    def _check_flags(self, tif: object, post_only: object, reduce_only: object) -> None:
        if type(tif) is not int or (tif != GTC and tif != IOC and tif != FOK):
            raise InvalidOrderType("tif", tif, "must be GTC (0), IOC (1) or FOK (2)")
        if post_only and tif != GTC:
            raise InvalidOrderType("post_only", True, "only allowed with tif GTC")
        if reduce_only and self.ro_cap is None:
            raise InvalidOrderType("reduce_only", True, "needs an exchange that knows positions")

    def market(
        self,
        oid: IntArg,
        owner: object,
        side: IntArg,
        qty: IntArg,
        worst_price: Optional[IntArg] = None,
        liq: BoolArg = False,
    ) -> int:
        """Immediate-or-cancel at any price, or no worse than ``worst_price``; returns the size filled."""
        if type(qty) is not int or qty <= 0:
            _check_qty(qty)
        if type(side) is not int or (side != BUY and side != SELL):
            _check_side(side)
        if oid in self._orders:
            raise DuplicateOrderId("oid", oid, "must not be the id of a resting order")
        if worst_price is None:
            lim = _NO_LIMIT
        else:
            _check_price(worst_price, "worst_price")
            lim = -worst_price if side == BUY else worst_price
        self._killed = False
        return qty - self._take(side, lim, qty, oid, owner, liq)

    def cancel(self, oid: IntArg) -> int:
        """Remove a resting order; returns the size that was still resting."""
        o = self._orders.pop(oid, None)
        if o is None:
            raise UnknownOrder("oid", oid, "must be the id of a resting order")
        return self._unlink(o)

    def modify(self, oid: IntArg, price: Optional[IntArg] = None, qty: Optional[IntArg] = None) -> int:
        """Change a resting order's price and/or remaining size.

        Size down at the same price keeps the order's place in the queue; a price change or a size up
        sends it to the back, exactly as cancel-and-resubmit would, including matching if the new
        price crosses. Returns the size that filled on resubmission (0 when it kept its place).
        """
        o = self._orders.get(oid)
        if o is None:
            raise UnknownOrder("oid", oid, "must be the id of a resting order")
        if price is not None:
            _check_price(price)
        if qty is not None:
            _check_qty(qty)
        new_price = o.price if price is None else price
        new_qty = o.qty if qty is None else qty
        if new_price == o.price and new_qty <= o.qty:
            lvl = (self._bid_lv if o.side == BUY else self._ask_lv)[o.price if o.side == BUY else -o.price]
            lvl.size -= o.qty - new_qty
            o.qty = new_qty
            return 0
        key = new_price if o.side == BUY else -new_price
        opp = self._ask_keys if o.side == BUY else self._bid_keys
        if o.po and opp and opp[-1] >= -key:
            raise PostOnlyWouldCross("price", new_price, "a post-only order must not cross the opposite best")
        del self._orders[oid]
        self._unlink(o)
        return self.limit(oid, o.owner, o.side, new_price, new_qty, GTC, o.po, o.ro)

    # ------------------------------------------------------------------ internals

    def _unlink(self, o: _Order) -> int:
        """Take a live order out of its level (the caller has removed it from ``_orders``)."""
        if o.side == BUY:
            key = o.price
            levels = self._bid_lv
            keys = self._bid_keys
        else:
            key = -o.price
            levels = self._ask_lv
            keys = self._ask_keys
        lvl = levels[key]
        qty = o.qty
        o.qty = 0
        lvl.size -= qty
        if not lvl.size:
            del levels[key]
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]
        else:
            lvl.dead += 1
            if lvl.dead >= _COMPACT_MIN_DEAD and lvl.dead * 2 > len(lvl.q):
                lvl.q = deque([x for x in lvl.q if x.qty])
                lvl.dead = 0
        return qty

    def _take(self, side: int, lim: int, qty: int, oid: int, owner: object, liq: bool) -> int:
        """Match an incoming order against the opposite side while marketable; returns the size left."""
        if side == BUY:
            levels = self._ask_lv
            keys = self._ask_keys
        else:
            levels = self._bid_lv
            keys = self._bid_keys
        orders = self._orders
        on_fill = self.on_fill
        stp = owner is not None
        while keys:
            k = keys[-1]
            if k < lim:
                break
            lvl = levels[k]
            q = lvl.q
            while qty and lvl.size:
                o = q[0]
                oq = o.qty
                if not oq:
                    q.popleft()
                    lvl.dead -= 1
                    continue
                if stp and o.owner == owner:
                    if self.stp == STP_CANCEL_INCOMING:
                        self._killed = True
                        if self.on_cancel is not None:
                            self.on_cancel(oid, owner, qty, 0, CANCEL_STP_INCOMING)
                        break
                    q.popleft()
                    del orders[o.oid]
                    o.qty = 0
                    lvl.size -= oq
                    if self.on_cancel is not None:
                        self.on_cancel(o.oid, o.owner, oq, 0, CANCEL_STP)
                    continue
                if o.ro:
                    cap = self.ro_cap(o.owner, o.side)  # type: ignore[misc]
                    if cap < oq:
                        lvl.size -= oq - cap
                        o.qty = cap
                        if not cap:
                            q.popleft()
                            del orders[o.oid]
                        if self.on_cancel is not None:
                            self.on_cancel(o.oid, o.owner, oq - cap, cap, CANCEL_REDUCE_ONLY)
                        if not cap:
                            continue
                        oq = cap
                if oq <= qty:
                    q.popleft()
                    del orders[o.oid]
                    o.qty = 0
                    lvl.size -= oq
                    qty -= oq
                    f = oq
                else:
                    o.qty = oq - qty
                    lvl.size -= qty
                    f = qty
                    qty = 0
                if on_fill is not None:
                    on_fill(o.oid, o.owner, oid, owner, o.price, f, side, liq, o.qty)
            if not lvl.size:
                del levels[k]
                keys.pop()
            if not qty or self._killed:
                break
        return qty

    def _fillable(self, side: int, lim: int, qty: int, owner: object) -> bool:
        """Would ``qty`` fill completely at ``lim`` (the FOK pre-check)? Mirrors ``_take`` without side effects."""
        if side == BUY:
            levels = self._ask_lv
            keys = self._ask_keys
        else:
            levels = self._bid_lv
            keys = self._bid_keys
        stp = owner is not None
        # Every maker here is on one side, so each lot a maker's owner fills shrinks the room its
        # later reduce-only orders will have: track lots filled per owner, as _take's live cap would see.
        filled: dict[object, int] = {}
        for i in range(len(keys) - 1, -1, -1):
            k = keys[i]
            if k < lim:
                return False
            for o in levels[k].q:
                oq = o.qty
                if not oq:
                    continue
                if stp and o.owner == owner:
                    if self.stp == STP_CANCEL_INCOMING:
                        return False
                    continue
                done = filled.get(o.owner, 0)
                if o.ro:
                    oq = max(0, min(oq, self.ro_cap(o.owner, o.side) - done))  # type: ignore[misc]
                filled[o.owner] = done + oq
                qty -= oq
                if qty <= 0:
                    return True
        return False

    # ------------------------------------------------------------------ market data

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, oid: object) -> bool:
        return oid in self._orders

    def order(self, oid: IntArg) -> tuple[object, int, int, int]:
        """(owner, side, price, remaining qty) of a resting order."""
        o = self._orders.get(oid)
        if o is None:
            raise UnknownOrder("oid", oid, "must be the id of a resting order")
        return (o.owner, o.side, o.price, o.qty)

    def is_reduce_only(self, oid: IntArg) -> bool:
        o = self._orders.get(oid)
        if o is None:
            raise UnknownOrder("oid", oid, "must be the id of a resting order")
        return o.ro

    def is_post_only(self, oid: IntArg) -> bool:
        o = self._orders.get(oid)
        if o is None:
            raise UnknownOrder("oid", oid, "must be the id of a resting order")
        return o.po

    def best_bid(self) -> Optional[int]:
        k = self._bid_keys
        return k[-1] if k else None

    def best_ask(self) -> Optional[int]:
        k = self._ask_keys
        return -k[-1] if k else None

    def mid(self) -> Optional[float]:
        """Mid in ticks (may be a half tick); None unless both sides have orders."""
        if self._bid_keys and self._ask_keys:
            return (self._bid_keys[-1] - self._ask_keys[-1]) / 2
        return None

    def spread(self) -> Optional[int]:
        if self._bid_keys and self._ask_keys:
            return -self._ask_keys[-1] - self._bid_keys[-1]
        return None

    def spread_bps(self) -> Optional[float]:
        if self._bid_keys and self._ask_keys:
            b = self._bid_keys[-1]
            a = -self._ask_keys[-1]
            return (a - b) * 20000 / (a + b)
        return None

    def level_size(self, side: IntArg, price: IntArg) -> int:
        lvl = (self._bid_lv.get(price) if side == BUY else self._ask_lv.get(-price))
        return lvl.size if lvl is not None else 0

    def l2(self, n: IntArg = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Top ``n`` levels per side as (price, size), best first."""
        if type(n) is not int or n <= 0:
            raise InvalidInput("n", n, "must be a positive integer")
        bl, al = self._bid_lv, self._ask_lv
        bids = [(k, bl[k].size) for k in reversed(self._bid_keys[-n:])]
        asks = [(-k, al[k].size) for k in reversed(self._ask_keys[-n:])]
        return bids, asks

    def depth_within(self, bps: FloatArg, ref: Optional[FloatArg] = None) -> tuple[int, int, int, int]:
        """Resting (bid size, bid notional, ask size, ask notional) within ±``bps`` of ``ref``.

        ``ref`` defaults to the mid; with one side empty, to the other side's best (the side that is
        left is what stress analysis needs to see). Notional is in tick·lots. Only levels inside the
        band are visited.
        """
        return self.depth_bands((bps,), ref)[0]

    def depth_bands(self, bands: Sequence[FloatArg], ref: Optional[FloatArg] = None) -> list[tuple[int, int, int, int]]:
        """``depth_within`` for several bands at once, in one walk outwards from the best prices."""
        for bps in bands:
            if not isinstance(bps, (int, float)) or isinstance(bps, bool) or not 0 <= bps <= 10000:
                raise InvalidInput("bps", bps, "must be a number in [0, 10000]")
        # every bound in integers: twice the reference as rn / rd, each band as n / (10000 d) (as written)
        rd = 1
        if ref is None:
            bk, ak = self._bid_keys, self._ask_keys
            if bk and ak:
                rn = bk[-1] - ak[-1]  # twice the mid, exact
            elif bk:
                rn = 2 * bk[-1]
            elif ak:
                rn = -2 * ak[-1]
            else:
                return [(0, 0, 0, 0) for _ in bands]
        else:
            if not ref > 0:
                raise InvalidInput("ref", ref, "must be a positive price in ticks")
            r2 = 2 * exact_fraction(ref)
            rn, rd = r2.numerator, r2.denominator
        out: list[tuple[int, int, int, int]] = [(0, 0, 0, 0)] * len(bands)
        # narrowest band first; the numbers as given order as their exact decimals do (exact_fraction)
        order = sorted(range(len(bands)), key=bands.__getitem__)
        lows: list[int] = []
        neg_highs: list[int] = []
        for n in order:
            bps = bands[n]
            if type(bps) is int:
                num, den = bps, 1
            else:
                f = exact_fraction(bps)
                num, den = f.numerator, f.denominator
            d = rd * 20000 * den
            lows.append(-((-rn * (10000 * den - num)) // d))  # ceil(ref * (1 - bps/1e4))
            neg_highs.append(-((rn * (10000 * den + num)) // d))  # -floor(ref * (1 + bps/1e4))
        bk, bl = self._bid_keys, self._bid_lv
        ak, al = self._ask_keys, self._ask_lv
        i, j = len(bk) - 1, len(ak) - 1
        bsz = bnot = asz = anot = 0
        for w, n in enumerate(order):
            lo = lows[w]
            neg_hi = neg_highs[w]
            while i >= 0 and bk[i] >= lo:
                k = bk[i]
                sz = bl[k].size
                bsz += sz
                bnot += sz * k
                i -= 1
            while j >= 0 and ak[j] >= neg_hi:
                k = ak[j]
                sz = al[k].size
                asz += sz
                anot -= sz * k
                j -= 1
            out[n] = (bsz, bnot, asz, anot)
        return out

    def impact_price(self, side: IntArg, notional: Any) -> Optional[Fraction]:
        """Average price a taker on ``side`` would pay to trade ``notional`` tick·lots; None if the book is too thin.

        The last level is taken fractionally, as venues define impact prices. Exact (a Fraction).
        """
        _check_side(side)
        if type(notional) not in (int, Fraction) or notional <= 0:
            raise InvalidInput("notional", notional, "must be a positive int or Fraction (tick·lots)")
        if side == BUY:
            keys, levels, sgn = self._ask_keys, self._ask_lv, -1
        else:
            keys, levels, sgn = self._bid_keys, self._bid_lv, 1
        left = notional
        lots = Fraction(0)
        for i in range(len(keys) - 1, -1, -1):
            k = keys[i]
            p = sgn * k
            n = levels[k].size * p
            if n >= left:
                lots += Fraction(left, p)
                return notional / lots
            left -= n
            lots += levels[k].size
        return None

    def impact_ratio(self, side: int, notional: int, multiplier: int) -> Optional[tuple[int, int]]:
        """``impact_price(side, Fraction(notional, multiplier))`` as an integer ratio (numerator, denominator).

        ``notional`` in quote units, ``multiplier`` quote units per tick·lot. With ``left`` quote units
        still to trade at the level of price ``p`` and ``lots`` taken whole before it, the average price
        is ``(notional / m) / (lots + left / (m p)) = notional p / (lots m p + left)``: the same exact
        value, without Fractions (the funding premium samples it every few seconds in every market).
        """
        if side == BUY:
            keys, levels, sgn = self._ask_keys, self._ask_lv, -1
        else:
            keys, levels, sgn = self._bid_keys, self._bid_lv, 1
        left = notional
        lots = 0
        for i in range(len(keys) - 1, -1, -1):
            k = keys[i]
            p = sgn * k
            size = levels[k].size
            n = size * p * multiplier
            if n >= left:
                return notional * p, lots * multiplier * p + left
            left -= n
            lots += size
        return None

    def depth_ratio(self, side: int) -> Optional[tuple[int, int]]:
        """The average price of all a taker on ``side`` could trade, as (tick·lots, lots); None on an empty side.

        What the funding premium takes as a side's impact price when the side holds less than the impact notional.
        """
        keys, levels, sgn = (self._ask_keys, self._ask_lv, -1) if side == BUY else (self._bid_keys, self._bid_lv, 1)
        if not keys:
            return None
        value = 0
        lots = 0
        for k in keys:
            size = levels[k].size
            value += size * sgn * k
            lots += size
        return value, lots

    # ------------------------------------------------------------------ invariants (tests, debugging)

    def check_invariants(self) -> None:
        """Raise AssertionError if the book's internal structure is inconsistent. O(orders)."""
        seen: set[int] = set()
        for side, levels, keys, sgn in (
            (BUY, self._bid_lv, self._bid_keys, 1),
            (SELL, self._ask_lv, self._ask_keys, -1),
        ):
            assert keys == sorted(keys) and len(set(keys)) == len(keys), "level keys not sorted/unique"
            assert set(keys) == set(levels), "level keys and levels disagree"
            for k in keys:
                lvl = levels[k]
                live = [o for o in lvl.q if o.qty]
                assert lvl.size == sum(o.qty for o in live) and lvl.size > 0, "level total wrong"
                assert lvl.dead == len(lvl.q) - len(live), "dead count wrong"
                for o in live:
                    assert o.side == side and o.price == sgn * k, "order in wrong level"
                    assert o.oid not in seen, "order in two places"
                    assert self._orders.get(o.oid) is o, "live order not indexed"
                    seen.add(o.oid)
        assert seen == set(self._orders), "indexed order not in a level"
        if self._bid_keys and self._ask_keys:
            assert self._bid_keys[-1] < -self._ask_keys[-1], "book crossed"
