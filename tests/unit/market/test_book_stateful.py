"""Random order streams through the real Exchange against a deliberately simple reference model.

The reference keeps a flat list of orders and finds the best counterparty by sorting on every fill:
slow and obviously right. After every step: identical fills, identical resting orders, the book's
own structure intact (never crossed, level totals, every order in exactly one place), volume equal
on both sides, and money conserved to the unit.
"""

from __future__ import annotations

import copy

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from abm.errors import PostOnlyWouldCross, ReduceOnlyViolation
from abm.exchange import Exchange
from abm.market import BUY, SELL, MarketSpec

SYM = "X-PERP"
PRICES = st.integers(9_995, 10_005)
QTYS = st.integers(1, 8)
ACCOUNTS = 3


class Ref:
    """Reference book + positions. Orders: dicts with oid, owner, side, price, qty, seq, ro, po."""

    def __init__(self, stp_incoming: bool) -> None:
        self.orders: list[dict] = []
        self.seq = 0
        self.pos = [0] * (ACCOUNTS + 1)
        self.stp_incoming = stp_incoming

    def _marketable(self, o: dict, side: int, lim: int | None) -> bool:
        if o["side"] == side:
            return False
        if lim is None:
            return True
        return o["price"] <= lim if side == BUY else o["price"] >= lim

    def _room(self, owner: int, side: int) -> int:
        r = -self.pos[owner] if side == BUY else self.pos[owner]
        return max(r, 0)

    def match(self, oid: int, owner: int, side: int, lim: int | None, qty: int, fills: list) -> tuple[int, bool]:
        while qty:
            cands = [o for o in self.orders if self._marketable(o, side, lim)]
            if not cands:
                break
            best = min(cands, key=lambda o: (o["price"] if side == BUY else -o["price"], o["seq"]))
            if best["owner"] == owner:
                if self.stp_incoming:
                    return qty, True
                self.orders.remove(best)
                continue
            if best["ro"]:
                cap = self._room(best["owner"], best["side"])
                if cap < best["qty"]:
                    best["qty"] = cap
                    if cap == 0:
                        self.orders.remove(best)
                        continue
            f = min(qty, best["qty"])
            best["qty"] -= f
            if best["qty"] == 0:
                self.orders.remove(best)
            qty -= f
            self.pos[owner] += f if side == BUY else -f
            self.pos[best["owner"]] -= f if side == BUY else -f
            fills.append((best["oid"], best["owner"], oid, owner, best["price"], f, side))
        return qty, False

    def rest(self, oid: int, owner: int, side: int, price: int, qty: int, ro: bool, po: bool) -> None:
        self.seq += 1
        self.orders.append(dict(oid=oid, owner=owner, side=side, price=price, qty=qty, seq=self.seq, ro=ro, po=po))

    def crosses(self, side: int, price: int) -> bool:
        return any(self._marketable(o, side, price) for o in self.orders)

    def limit(self, oid, owner, side, price, qty, tif, po, ro, fills) -> int:
        if tif == "FOK":
            trial = copy.deepcopy(self)
            left, killed = trial.match(oid, owner, side, price, qty, [])
            if left or killed:
                return 0
        left, killed = self.match(oid, owner, side, price, qty, fills)
        if left and not killed and tif == "GTC":
            self.rest(oid, owner, side, price, left, ro, po)
        return qty - left

    def find(self, oid: int) -> dict | None:
        return next((o for o in self.orders if o["oid"] == oid), None)


class ExchangeVsReference(RuleBasedStateMachine):
    @initialize(stp_incoming=st.booleans())
    def setup(self, stp_incoming: bool) -> None:
        self.ex = Exchange()
        self.ex.list_market(
            MarketSpec(SYM, tick_size="0.01", lot_size="0.01", maker_fee_bps="-0.25", taker_fee_bps="4.5",
                       stp="cancel_incoming" if stp_incoming else "cancel_resting")
        )
        self.accts = [self.ex.open_account(10**12) for _ in range(ACCOUNTS)]
        self.ref = Ref(stp_incoming)
        self.fills: list[tuple] = []
        self.ref_fills: list[tuple] = []
        self.ex.subscribe_fills(lambda t, m, mk, mo, tk, to, p, q, s, liq: self.fills.append((mk, mo, tk, to, p, q, s)))

    @rule(a=st.integers(0, ACCOUNTS - 1), side=st.sampled_from([BUY, SELL]), price=PRICES, qty=QTYS,
          tif=st.sampled_from(["GTC", "GTC", "IOC", "FOK"]), po=st.booleans(), ro=st.booleans())
    def limit(self, a, side, price, qty, tif, po, ro):
        owner = self.accts[a]
        po = po and tif == "GTC"
        oid = self.ex._next_oid
        room = self.ref._room(owner, side)
        if ro and room == 0:
            expect = ReduceOnlyViolation
        elif po and self.ref.crosses(side, price):
            expect = PostOnlyWouldCross
        else:
            expect = None
        try:
            r = self.ex.limit(owner, SYM, side, qty, price, tif=tif, post_only=po, reduce_only=ro)
        except (ReduceOnlyViolation, PostOnlyWouldCross) as e:
            assert type(e) is expect, (e, expect)
            assert self.ex._next_oid == oid
            return
        assert expect is None
        assert r.oid == oid
        q = min(qty, room) if ro else qty
        filled = self.ref.limit(oid, owner, side, price, q, tif, po, ro, self.ref_fills)
        assert (r.qty, r.filled) == (q, filled)

    @rule(a=st.integers(0, ACCOUNTS - 1), side=st.sampled_from([BUY, SELL]), qty=st.integers(1, 25),
          worst=st.one_of(st.none(), PRICES))
    def market(self, a, side, qty, worst):
        owner = self.accts[a]
        oid = self.ex._next_oid
        r = self.ex.market_order(owner, SYM, side, qty, worst_price=worst)
        left, _ = self.ref.match(oid, owner, side, worst, qty, self.ref_fills)
        assert r.filled == qty - left

    @precondition(lambda self: self.ref.orders)
    @rule(data=st.data())
    def cancel(self, data):
        o = data.draw(st.sampled_from(self.ref.orders))
        assert self.ex.cancel(o["owner"], o["oid"]) == o["qty"]
        self.ref.orders.remove(o)

    @precondition(lambda self: self.ref.orders)
    @rule(data=st.data(), price=st.one_of(st.none(), PRICES), qty=st.one_of(st.none(), QTYS))
    def modify(self, data, price, qty):
        o = data.draw(st.sampled_from(self.ref.orders))
        if price is None and qty is None:
            return
        new_price = o["price"] if price is None else price
        new_qty = o["qty"] if qty is None else qty
        if o["ro"]:
            room = self.ref._room(o["owner"], o["side"])
            if qty is not None and room == 0:
                return  # modifying a reduce-only order with nothing to reduce is rejected; covered elsewhere
            if qty is not None:
                new_qty = min(new_qty, room)
        keeps_place = new_price == o["price"] and new_qty <= o["qty"]
        if not keeps_place and o["po"]:
            others = [x for x in self.ref.orders if x is not o]
            if any(x["side"] != o["side"] and (x["price"] <= new_price if o["side"] == BUY else x["price"] >= new_price) for x in others):
                try:
                    self.ex.modify(o["owner"], o["oid"], price=price, qty=qty)
                except PostOnlyWouldCross:
                    return
                raise AssertionError("post-only modify that crosses was accepted")
        filled = self.ex.modify(o["owner"], o["oid"], price=price, qty=qty)
        if keeps_place:
            o["qty"] = new_qty
            assert filled == 0
            return
        self.ref.orders.remove(o)
        if o["po"]:
            self.ref.rest(o["oid"], o["owner"], o["side"], new_price, new_qty, o["ro"], True)
            assert filled == 0
        else:
            assert filled == self.ref.limit(o["oid"], o["owner"], o["side"], new_price, new_qty, "GTC", False, o["ro"], self.ref_fills)

    @invariant()
    def same_as_reference(self):
        if not hasattr(self, "ex"):
            return
        book = self.ex.market(SYM).book
        book.check_invariants()
        assert self.fills == self.ref_fills
        resting = {o["oid"]: (o["owner"], o["side"], o["price"], o["qty"]) for o in self.ref.orders}
        assert {oid: book.order(oid) for oid in resting} == resting
        assert len(book) == len(resting)
        opened = {oid for a in self.accts for oid in self.ex.account(a).open_orders}
        assert opened == set(resting)
        # volume is equal on both sides: positions net to zero and match the reference's
        sizes = [self.ex.position(a, SYM).size for a in self.accts]
        assert sum(sizes) == 0
        assert sizes == [self.ref.pos[a] for a in self.accts]
        self.ex.check_conservation()


ExchangeVsReference.TestCase.settings = settings(
    max_examples=300, stateful_step_count=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestExchangeVsReference = ExchangeVsReference.TestCase
