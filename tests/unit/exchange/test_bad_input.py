"""Bad input gets a clear error naming the field, the value and what is allowed, and leaves all state unchanged.

Every case below is one rejected call. For each we check (1) the exact exception class from
``abm.errors``, (2) that the message names the field and contains ``repr`` of the offending value
(plus, for a few errors whose "value" is a description, the facts the user needs), and (3) that a
deep snapshot of the whole exchange (or book) is identical before and after, money is conserved and
the books' internal structure is intact.

The world used by the exchange cases has two markets with resting orders on both sides, open
positions both long and short, an isolated account with margin, a seeded ledger and a fill
subscriber, so reduce-only, post-only, ownership and margin-mode rules all have something to bite on.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from abm.errors import (
    AbmError,
    DuplicateClientOrderId,
    DuplicateMarket,
    DuplicateOrderId,
    InsufficientFunds,
    InvalidAmount,
    InvalidInput,
    InvalidMarketSpec,
    InvalidOrderType,
    InvalidPrice,
    InvalidSize,
    PostOnlyWouldCross,
    ReduceOnlyViolation,
    UnknownAccount,
    UnknownMarket,
    UnknownOrder,
)
from abm.exchange import Exchange
from abm.market import BUY, SELL, MarketSpec, OrderBook
from abm.market.book import FOK, IOC

BTC = "BTC-PERP"
ETH = "ETH-PERP"
FUND = 10**12

_NO_VALUE = object()


# ---------------------------------------------------------------------------------------------- snapshots


def _queues(book: OrderBook) -> tuple:
    """Every level's live queue, in time priority: (price, [(oid, owner, qty, ro, po), ...]) per side.

    Reads private fields on purpose: L2 alone would not notice an order losing its place in a queue.
    """
    out = []
    for levels, keys, sgn in ((book._bid_lv, book._bid_keys, 1), (book._ask_lv, book._ask_keys, -1)):
        out.append(
            tuple(
                (sgn * k, levels[k].size, tuple((o.oid, o.owner, o.side, o.qty, o.ro, o.po) for o in levels[k].q if o.qty))
                for k in keys
            )
        )
    return tuple(out)


def book_snapshot(book: OrderBook, oids=()) -> tuple:
    return (
        book.l2(10**6),
        len(book),
        tuple(sorted(book._orders)),
        _queues(book),
        tuple((oid, book.order(oid), book.is_reduce_only(oid)) for oid in oids),
        book.stp,
    )


def snapshot(ex: Exchange) -> dict:
    """A deep, comparable picture of everything a rejected call must leave alone."""
    markets = {}
    for m in ex.markets:
        markets[m.spec.symbol] = (
            m.index,
            m.spec,
            m.open_interest,
            m.last_price,
            m.volume,
            book_snapshot(m.book),
        )
    resting = {}
    accounts = {}
    for aid, a in ex.accounts.items():
        for oid, mi in a.open_orders.items():
            book = ex.markets[mi].book
            resting[oid] = (mi, book.order(oid), book.is_reduce_only(oid))
        accounts[aid] = (
            a.id,
            a.balance,
            dict(a.open_orders),
            dict(a.client_ids),
            {idx: (p.size, p.cost, p.realized, p.fees, p.mode, p.margin) for idx, p in a.positions.items()},
        )
    return {
        "markets": markets,
        "by_symbol": {sym: m.index for sym, m in ex._by_symbol.items()},
        "resting": resting,
        "accounts": accounts,
        "ledgers": (dict(ex.ledgers.balances), ex.ledgers.external),
        "next_oid": ex._next_oid,
        "next_account": ex._next_account,
        "order_owner": dict(ex._order_owner),
        "subscribers": len(ex._subscribers),
        "now": ex.now,
    }


# ---------------------------------------------------------------------------------------------- worlds


def make_world() -> SimpleNamespace:
    ex = Exchange()
    ex.list_market(MarketSpec(BTC, tick_size="1", lot_size="0.001"))  # multiplier 1000
    ex.list_market(
        MarketSpec(ETH, tick_size="0.01", lot_size="0.01", maker_fee_bps="-1", taker_fee_bps="3", stp="cancel_incoming")
    )
    fills: list[tuple] = []
    ex.subscribe_fills(lambda *f: fills.append(f))
    a1, a2, a3, a4, a5 = (ex.open_account(FUND) for _ in range(5))
    ex.seed_ledger("insurance", 10**6)
    # a5: isolated in BTC with margin in the bucket, flat, no orders (set up before anything trades)
    ex.set_margin_mode(a5, BTC, "isolated")
    ex.transfer_isolated_margin(a5, BTC, 10**9)

    oid = {}
    # BTC positions: a2 long 5, a1 short 5
    oid["a1_filled"] = ex.limit(a1, BTC, "sell", 5, 30_000).oid
    assert ex.limit(a2, BTC, "buy", 5, 30_000).filled == 5
    # BTC resting book: bids 29990 (a1), 29980 (a3), 29970 (a1 ro); asks 30010 (a2), 30020 (a3 po), 30050 (a2 ro)
    oid["a1_bid"] = ex.limit(a1, BTC, "buy", 3, 29_990, client_id="a1-bid").oid
    oid["a2_ask"] = ex.limit(a2, BTC, "sell", 4, 30_010, client_id="a2-ask").oid
    oid["a3_bid"] = ex.limit(a3, BTC, "buy", 2, 29_980, client_id=1).oid
    oid["a3_po_ask"] = ex.limit(a3, BTC, "sell", 6, 30_020, post_only=True, client_id="a3-po").oid
    oid["a2_ro_ask"] = ex.limit(a2, BTC, "sell", 2, 30_050, reduce_only=True).oid
    oid["a1_ro_bid"] = ex.limit(a1, BTC, "buy", 2, 29_970, reduce_only=True).oid
    # ETH positions: a3 long 10, a4 short 10
    ex.limit(a4, ETH, "sell", 10, 200_000)
    assert ex.limit(a3, ETH, "buy", 10, 200_000).filled == 10
    # ETH resting book: bid 199900 (a4); asks 200100 (a1), 200200 (a3 po)
    oid["a4_eth_bid"] = ex.limit(a4, ETH, "buy", 7, 199_900, client_id="a4-eth").oid
    oid["a1_eth_ask"] = ex.limit(a1, ETH, "sell", 3, 200_100, client_id="a1-eth").oid
    oid["a3_eth_po_ask"] = ex.limit(a3, ETH, "sell", 4, 200_200, post_only=True).oid
    ex.now = 123_456

    w = SimpleNamespace(ex=ex, fills=fills, a1=a1, a2=a2, a3=a3, a4=a4, a5=a5, oid=oid)
    # sanity: the world is what the cases assume
    assert [ex.position(a, BTC).size for a in (a1, a2, a3, a4, a5)] == [-5, 5, 0, 0, 0]
    assert [ex.position(a, ETH).size for a in (a1, a2, a3, a4, a5)] == [0, 0, 10, -10, 0]
    assert ex.position(a5, BTC).mode == "isolated" and ex.position(a5, BTC).margin == 10**9
    assert ex.market(BTC).book.l2(10) == ([(29_990, 3), (29_980, 2), (29_970, 2)], [(30_010, 4), (30_020, 6), (30_050, 2)])
    assert ex.market(ETH).book.l2(10) == ([(199_900, 7)], [(200_100, 3), (200_200, 4)])
    assert ex.accounts[a3].client_ids == {1: oid["a3_bid"], "a3-po": oid["a3_po_ask"]}
    ex.check_conservation()
    return w


@pytest.fixture
def world() -> SimpleNamespace:
    return make_world()


def make_book_world() -> SimpleNamespace:
    fills: list[tuple] = []
    cancels: list[tuple] = []
    book = OrderBook(on_fill=lambda *f: fills.append(f), on_cancel=lambda *c: cancels.append(c))
    book.limit(1, "a", BUY, 100, 5)
    book.limit(2, "b", BUY, 99, 3)
    book.limit(3, "a", SELL, 102, 4)
    book.limit(4, "c", SELL, 103, 2, post_only=True)
    book.limit(5, "b", BUY, 100, 1)
    assert book.l2(10) == ([(100, 6), (99, 3)], [(102, 4), (103, 2)])
    return SimpleNamespace(book=book, fills=fills, cancels=cancels, oids=(1, 2, 3, 4, 5))


@pytest.fixture
def bookw() -> SimpleNamespace:
    return make_book_world()


# ---------------------------------------------------------------------------------------------- harness


def expect_rejected(call, exc: type, field: str, value, extra, state, check) -> AbmError:
    before = state()
    with pytest.raises(exc) as ei:
        call()
    err = ei.value
    assert type(err) is exc, f"expected exactly {exc.__name__}, got {type(err).__name__}: {err}"
    assert isinstance(err, AbmError)
    msg = str(err)
    # (2) the message names the field, the value and what is allowed
    assert isinstance(err, InvalidInput)
    assert err.field == field, f"error names field {err.field!r}, expected {field!r}: {msg}"
    assert field in msg, msg
    if value is not _NO_VALUE:
        assert repr(value) in msg, f"{value!r} not in {msg!r}"
    assert err.allowed and err.allowed in msg, msg
    for frag in extra:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    # (3) nothing changed
    assert state() == before
    check()
    return err


def case(id_: str, fn, exc: type, field: str, value=_NO_VALUE, *extra: str):
    return pytest.param(fn, exc, field, value, extra, id=id_)


def run_exchange_case(w, fn, exc, field, value, extra):
    ex = w.ex
    n_fills = len(w.fills)

    def check():
        ex.check_conservation()
        for m in ex.markets:
            m.book.check_invariants()
        assert len(w.fills) == n_fills, "a rejected call produced fills"

    expect_rejected(lambda: fn(w), exc, field, value, extra, lambda: snapshot(ex), check)


# ---------------------------------------------------------------------------------------------- sizes and prices

BAD_SIZES = [0, -1, 1.5, 2.0, "3", True, False, None, Decimal("2")]
BAD_PRICES = [0, -1, 29_990.5, 30_000.0, "30000", True, None, Decimal("30000")]

SIZE_CASES = []
for v in BAD_SIZES:
    SIZE_CASES += [
        case(f"limit-qty-{v!r}", lambda w, v=v: w.ex.limit(w.a1, BTC, "buy", v, 29_000), InvalidSize, "qty", v),
        case(f"market-qty-{v!r}", lambda w, v=v: w.ex.market_order(w.a1, BTC, "buy", v), InvalidSize, "qty", v),
        case(f"ro-limit-qty-{v!r}", lambda w, v=v: w.ex.limit(w.a2, BTC, "sell", v, 31_000, reduce_only=True),
             InvalidSize, "qty", v),
    ]
    if v is not None:  # qty=None means "keep the size" in modify
        SIZE_CASES += [
            case(f"modify-qty-{v!r}", lambda w, v=v: w.ex.modify(w.a1, w.oid["a1_bid"], qty=v), InvalidSize, "qty", v),
            case(f"modify-ro-qty-{v!r}", lambda w, v=v: w.ex.modify(w.a2, w.oid["a2_ro_ask"], qty=v),
                 InvalidSize, "qty", v),
            case(f"modify-qty-by-client-id-{v!r}", lambda w, v=v: w.ex.modify(w.a2, client_id="a2-ask", qty=v),
                 InvalidSize, "qty", v),
        ]

PRICE_CASES = []
for v in BAD_PRICES:
    PRICE_CASES += [
        case(f"limit-price-{v!r}", lambda w, v=v: w.ex.limit(w.a1, BTC, "buy", 1, v), InvalidPrice, "price", v),
        case(f"limit-eth-price-{v!r}", lambda w, v=v: w.ex.limit(w.a3, ETH, "sell", 1, v), InvalidPrice, "price", v),
    ]
    if v is not None:  # None means "no bound" / "keep the price"
        PRICE_CASES += [
            case(f"market-worst-{v!r}", lambda w, v=v: w.ex.market_order(w.a1, BTC, "buy", 1, worst_price=v),
                 InvalidPrice, "worst_price", v),
            case(f"modify-price-{v!r}", lambda w, v=v: w.ex.modify(w.a1, w.oid["a1_bid"], price=v),
                 InvalidPrice, "price", v),
            case(f"modify-price-qty-{v!r}", lambda w, v=v: w.ex.modify(w.a1, w.oid["a1_bid"], price=v, qty=2),
                 InvalidPrice, "price", v),
        ]


@pytest.mark.parametrize("fn, exc, field, value, extra", SIZE_CASES + PRICE_CASES)
def test_bad_size_or_price(world, fn, exc, field, value, extra):
    run_exchange_case(world, fn, exc, field, value, extra)


# MarketSpec.to_ticks / to_lots: human units (Decimal strings etc.) that are off the grid or not positive
GRID_CASES = []
for v in ["30000.5", "0.5", "0", "-1", "-30000", "1e-1", "29999.999", "abc", "", "NaN", "Infinity", None, True,
          0.5, Decimal("30000.1"), [30000]]:
    GRID_CASES.append(case(f"btc-to_ticks-{v!r}", lambda w, v=v: w.ex.market(BTC).spec.to_ticks(v),
                           InvalidPrice, "price", v))
for v in ["2000.001", "0.001", "0.00", "-2000"]:
    GRID_CASES.append(case(f"eth-to_ticks-{v!r}", lambda w, v=v: w.ex.market(ETH).spec.to_ticks(v),
                           InvalidPrice, "price", v))
for v in ["0.0005", "1.0001", "0", "-0.001", "1e-4", "abc", "-Infinity", "sNaN", None, True, 0.0001, Decimal("0.0015")]:
    GRID_CASES.append(case(f"btc-to_lots-{v!r}", lambda w, v=v: w.ex.market(BTC).spec.to_lots(v),
                           InvalidSize, "size", v))
for v in ["0.005", "0.001", "-1"]:
    GRID_CASES.append(case(f"eth-to_lots-{v!r}", lambda w, v=v: w.ex.market(ETH).spec.to_lots(v),
                           InvalidSize, "size", v))


@pytest.mark.parametrize("fn, exc, field, value, extra", GRID_CASES)
def test_off_grid_human_units(world, fn, exc, field, value, extra):
    run_exchange_case(world, fn, exc, field, value, extra)


def test_on_grid_conversions_still_work(world):
    """Control for the grid cases: exact values on the grid convert exactly."""
    btc, eth = world.ex.market(BTC).spec, world.ex.market(ETH).spec
    assert btc.to_ticks("30000") == 30_000 and btc.to_ticks(Decimal("30000.0")) == 30_000
    assert btc.to_lots("0.005") == 5 and eth.to_ticks("2000.01") == 200_001 and eth.to_lots("0.1") == 10


# ---------------------------------------------------------------------------------------------- who and where

BAD_ACCOUNTS = [999, 0, -1, "1", 1.0, True, None]
ACCOUNT_CASES = []
for v in BAD_ACCOUNTS:
    ACCOUNT_CASES += [
        case(f"limit-{v!r}", lambda w, v=v: w.ex.limit(v, BTC, "buy", 1, 29_000), UnknownAccount, "account", v),
        case(f"market-{v!r}", lambda w, v=v: w.ex.market_order(v, BTC, "buy", 1), UnknownAccount, "account", v),
        case(f"cancel-{v!r}", lambda w, v=v: w.ex.cancel(v, w.oid["a1_bid"]), UnknownAccount, "account", v),
        case(f"cancel_all-{v!r}", lambda w, v=v: w.ex.cancel_all(v), UnknownAccount, "account", v),
        case(f"modify-{v!r}", lambda w, v=v: w.ex.modify(v, w.oid["a1_bid"], qty=1), UnknownAccount, "account", v),
        case(f"deposit-{v!r}", lambda w, v=v: w.ex.deposit(v, 100), UnknownAccount, "account", v),
        case(f"withdraw-{v!r}", lambda w, v=v: w.ex.withdraw(v, 100), UnknownAccount, "account", v),
        case(f"set_margin_mode-{v!r}", lambda w, v=v: w.ex.set_margin_mode(v, ETH, "isolated"),
             UnknownAccount, "account", v),
    ]
ACCOUNT_CASES += [
    case("transfer-999", lambda w: w.ex.transfer_isolated_margin(999, BTC, 1), UnknownAccount, "account", 999),
    case("position-999", lambda w: w.ex.position(999, BTC), UnknownAccount, "account", 999),
    case("open_orders-999", lambda w: w.ex.open_orders(999), UnknownAccount, "account", 999),
    case("open_orders-True", lambda w: w.ex.open_orders(True), UnknownAccount, "account", True),
]

BAD_SYMBOLS = ["SOL-PERP", "btc-perp", "BTC-PERP ", "BTC", "", None, 0]
MARKET_CASES = []
for v in BAD_SYMBOLS:
    MARKET_CASES += [
        case(f"limit-{v!r}", lambda w, v=v: w.ex.limit(w.a1, v, "buy", 1, 29_000), UnknownMarket, "market", v),
        case(f"market-{v!r}", lambda w, v=v: w.ex.market_order(w.a1, v, "buy", 1), UnknownMarket, "market", v),
        case(f"set_margin_mode-{v!r}", lambda w, v=v: w.ex.set_margin_mode(w.a5, v, "cross"), UnknownMarket, "market", v),
        case(f"transfer-{v!r}", lambda w, v=v: w.ex.transfer_isolated_margin(w.a5, v, 1), UnknownMarket, "market", v),
        case(f"position-{v!r}", lambda w, v=v: w.ex.position(w.a1, v), UnknownMarket, "market", v),
        case(f"data-{v!r}", lambda w, v=v: w.ex.data(v), UnknownMarket, "market", v),
    ]
    if v is not None:  # cancel_all(account, None) means every market
        MARKET_CASES.append(case(f"cancel_all-{v!r}", lambda w, v=v: w.ex.cancel_all(w.a1, v),
                                 UnknownMarket, "market", v))
MARKET_CASES.append(
    case("market-lists-known-symbols", lambda w: w.ex.limit(w.a1, "SOL-PERP", "buy", 1, 29_000),
         UnknownMarket, "market", "SOL-PERP", BTC, ETH)
)


@pytest.mark.parametrize("fn, exc, field, value, extra", ACCOUNT_CASES + MARKET_CASES)
def test_unknown_account_or_market(world, fn, exc, field, value, extra):
    run_exchange_case(world, fn, exc, field, value, extra)


# ---------------------------------------------------------------------------------------------- order ids

ORDER_CASES = [
    # another account's order id: UnknownOrder, and the owner's order stays exactly as it was (snapshot)
    case("cancel-other-accounts-oid", lambda w: w.ex.cancel(w.a2, w.oid["a1_bid"]), UnknownOrder, "oid", "OID:a1_bid"),
    case("cancel-other-accounts-eth-oid", lambda w: w.ex.cancel(w.a3, w.oid["a4_eth_bid"]),
         UnknownOrder, "oid", "OID:a4_eth_bid"),
    case("modify-other-accounts-oid", lambda w: w.ex.modify(w.a2, w.oid["a1_bid"], price=29_000),
         UnknownOrder, "oid", "OID:a1_bid"),
    case("modify-other-accounts-oid-qty", lambda w: w.ex.modify(w.a3, w.oid["a1_bid"], qty=1),
         UnknownOrder, "oid", "OID:a1_bid"),
    case("cancel-other-accounts-client-id", lambda w: w.ex.cancel(w.a2, client_id="a1-bid"),
         UnknownOrder, "client_id", "a1-bid"),
    case("modify-other-accounts-client-id", lambda w: w.ex.modify(w.a2, client_id="a1-bid", qty=1),
         UnknownOrder, "client_id", "a1-bid"),
    # ids that never existed or are gone
    case("cancel-never-issued", lambda w: w.ex.cancel(w.a1, 999), UnknownOrder, "oid", 999),
    case("cancel-filled-order", lambda w: w.ex.cancel(w.a1, w.oid["a1_filled"]), UnknownOrder, "oid", "OID:a1_filled"),
    case("modify-filled-order", lambda w: w.ex.modify(w.a1, w.oid["a1_filled"], qty=1),
         UnknownOrder, "oid", "OID:a1_filled"),
    case("cancel-oid-0", lambda w: w.ex.cancel(w.a1, 0), UnknownOrder, "oid", 0),
    case("cancel-oid-neg", lambda w: w.ex.cancel(w.a1, -3), UnknownOrder, "oid", -3),
    case("cancel-oid-str", lambda w: w.ex.cancel(w.a1, str(w.oid["a1_bid"])), UnknownOrder, "oid", "OIDSTR:a1_bid"),
    case("cancel-oid-float", lambda w: w.ex.cancel(w.a1, float(w.oid["a1_bid"])), UnknownOrder, "oid", "OIDFLOAT:a1_bid"),
    case("cancel-oid-True", lambda w: w.ex.cancel(w.a1, True), UnknownOrder, "oid", True),
    case("cancel-unknown-client-id", lambda w: w.ex.cancel(w.a1, client_id="nope"), UnknownOrder, "client_id", "nope"),
    case("cancel-client-id-wrong-type", lambda w: w.ex.cancel(w.a3, client_id="1"), UnknownOrder, "client_id", "1"),
    case("cancel-client-id-float", lambda w: w.ex.cancel(w.a3, client_id=1.0), UnknownOrder, "client_id", 1.0),
    case("cancel-client-id-list", lambda w: w.ex.cancel(w.a3, client_id=[1]), UnknownOrder, "client_id", [1]),
    # a bool is not a client id (submission refuses it), so it must not find the order whose client id is 1
    case("cancel-client-id-True", lambda w: w.ex.cancel(w.a3, client_id=True), UnknownOrder, "client_id", True),
    case("modify-client-id-True", lambda w: w.ex.modify(w.a3, client_id=True, qty=1), UnknownOrder, "client_id", True),
    case("modify-unknown-oid", lambda w: w.ex.modify(w.a1, 999, price=29_000), UnknownOrder, "oid", 999),
    case("modify-unknown-client-id", lambda w: w.ex.modify(w.a1, client_id="nope", qty=1),
         UnknownOrder, "client_id", "nope"),
    # exactly one of oid / client_id
    case("cancel-neither", lambda w: w.ex.cancel(w.a1), InvalidInput, "oid", None, "client_id"),
    case("cancel-both", lambda w: w.ex.cancel(w.a1, w.oid["a1_bid"], client_id="a1-bid"),
         InvalidInput, "oid", "OID:a1_bid", "client_id"),
    case("modify-neither", lambda w: w.ex.modify(w.a1, price=29_000), InvalidInput, "oid", None, "client_id"),
    case("modify-both", lambda w: w.ex.modify(w.a1, w.oid["a1_bid"], client_id="a1-bid", qty=1),
         InvalidInput, "oid", "OID:a1_bid", "client_id"),
    # modify with nothing to change
    case("modify-nothing", lambda w: w.ex.modify(w.a1, w.oid["a1_bid"]), InvalidInput, "price", None, "qty"),
    case("modify-nothing-by-client-id", lambda w: w.ex.modify(w.a2, client_id="a2-ask"),
         InvalidInput, "price", None, "qty"),
    # post-only modify that would cross: refused, the order keeps its price, size and place
    case("modify-po-cross", lambda w: w.ex.modify(w.a3, w.oid["a3_po_ask"], price=29_990),
         PostOnlyWouldCross, "price", 29_990),
    case("modify-po-cross-deep", lambda w: w.ex.modify(w.a3, w.oid["a3_po_ask"], price=29_000, qty=1),
         PostOnlyWouldCross, "price", 29_000),
    case("modify-po-cross-by-client-id", lambda w: w.ex.modify(w.a3, client_id="a3-po", price=29_990, qty=9),
         PostOnlyWouldCross, "price", 29_990),
    case("modify-eth-po-cross", lambda w: w.ex.modify(w.a3, w.oid["a3_eth_po_ask"], price=199_900),
         PostOnlyWouldCross, "price", 199_900),
]


def _resolve(w, value):
    """Order ids are only known once the world is built: 'OID:name' stands for w.oid[name]."""
    if isinstance(value, str) and value.startswith("OID:"):
        return w.oid[value[4:]]
    if isinstance(value, str) and value.startswith("OIDSTR:"):
        return str(w.oid[value[7:]])
    if isinstance(value, str) and value.startswith("OIDFLOAT:"):
        return float(w.oid[value[9:]])
    return value


@pytest.mark.parametrize("fn, exc, field, value, extra", ORDER_CASES)
def test_bad_order_reference(world, fn, exc, field, value, extra):
    run_exchange_case(world, fn, exc, field, _resolve(world, value), extra)


def test_other_accounts_order_is_untouched(world):
    """Explicitly: a cancel/modify aimed at someone else's order id fails and that order is intact."""
    ex, w = world.ex, world
    oid = w.oid["a1_bid"]
    before = (ex.open_orders(w.a1)[oid], ex.accounts[w.a1].client_ids["a1-bid"], _queues(ex.market(BTC).book))
    for call in (lambda: ex.cancel(w.a2, oid), lambda: ex.modify(w.a2, oid, qty=1), lambda: ex.modify(w.a2, oid, price=29_000)):
        with pytest.raises(UnknownOrder):
            call()
    assert (ex.open_orders(w.a1)[oid], ex.accounts[w.a1].client_ids["a1-bid"], _queues(ex.market(BTC).book)) == before
    assert ex.cancel(w.a1, oid) == 3  # still the owner's to cancel


# ---------------------------------------------------------------------------------------------- order fields

FIELD_CASES = []
# Sides and tifs are exact: like sizes (where 2.0 and True are refused), a float or bool that merely
# compares equal to BUY/SELL or IOC is not one of the allowed values.
for v in ["long", "BUY ", "b", 2, -1, None, True, False, 1.0, 0.0, b"buy"]:
    FIELD_CASES += [
        case(f"limit-side-{v!r}", lambda w, v=v: w.ex.limit(w.a1, BTC, v, 1, 29_000), InvalidInput, "side", v),
        case(f"market-side-{v!r}", lambda w, v=v: w.ex.market_order(w.a1, BTC, v, 1), InvalidInput, "side", v),
    ]
for v in ["gtc", "DAY", "", 3, -1, None, True, 1.0, b"GTC"]:
    FIELD_CASES.append(case(f"tif-{v!r}", lambda w, v=v: w.ex.limit(w.a1, BTC, "buy", 1, 29_000, tif=v),
                            InvalidOrderType, "tif", v))
for v in [1, 0, "yes", None, 1.0]:
    FIELD_CASES += [
        case(f"post_only-{v!r}", lambda w, v=v: w.ex.limit(w.a1, BTC, "buy", 1, 29_000, post_only=v),
             InvalidOrderType, "post_only", v),
        case(f"reduce_only-{v!r}", lambda w, v=v: w.ex.limit(w.a2, BTC, "sell", 1, 31_000, reduce_only=v),
             InvalidOrderType, "reduce_only", v),
        case(f"market-reduce_only-{v!r}", lambda w, v=v: w.ex.market_order(w.a2, BTC, "sell", 1, reduce_only=v),
             InvalidOrderType, "reduce_only", v),
    ]
for tif in ["IOC", "FOK", IOC, FOK]:
    FIELD_CASES.append(case(f"post_only-with-{tif!r}",
                            lambda w, tif=tif: w.ex.limit(w.a1, BTC, "buy", 1, 29_000, tif=tif, post_only=True),
                            InvalidOrderType, "post_only", True, "GTC"))
FIELD_CASES += [
    # slippage_bps and worst_price together bound the order by the tighter of the two (a hunt's target cap and
    # its slippage cap, tests/unit/exchange/test_exchange_accounting.py); the bound must still be a valid price
    case("slippage-and-bad-worst", lambda w: w.ex.market_order(w.a1, BTC, "buy", 1, worst_price=0, slippage_bps=5.5),
         InvalidPrice, "worst_price", 0, "positive"),
]
for v in [-1, -0.5, 10_000, 1e9, "50", True, float("nan"), float("inf"), Decimal("5")]:
    FIELD_CASES.append(case(f"slippage-{v!r}", lambda w, v=v: w.ex.market_order(w.a1, BTC, "buy", 1, slippage_bps=v),
                            InvalidOrderType, "slippage_bps", v))
for v in [1.5, True, [1], {"a": 1}, b"x", (1,)]:
    FIELD_CASES += [
        case(f"client_id-type-{v!r}", lambda w, v=v: w.ex.limit(w.a1, BTC, "buy", 1, 29_000, client_id=v),
             InvalidInput, "client_id", v),
    ]
FIELD_CASES += [
    # duplicate client id among the account's live orders (across markets: client ids are per account)
    case("dup-client-id", lambda w: w.ex.limit(w.a1, BTC, "buy", 1, 29_000, client_id="a1-bid"),
         DuplicateClientOrderId, "client_id", "a1-bid"),
    case("dup-client-id-other-market", lambda w: w.ex.limit(w.a1, BTC, "buy", 1, 29_000, client_id="a1-eth"),
         DuplicateClientOrderId, "client_id", "a1-eth"),
    case("dup-client-id-int", lambda w: w.ex.limit(w.a3, ETH, "buy", 1, 190_000, client_id=1),
         DuplicateClientOrderId, "client_id", 1),
    case("dup-client-id-ioc", lambda w: w.ex.limit(w.a2, BTC, "sell", 1, 31_000, tif="IOC", client_id="a2-ask"),
         DuplicateClientOrderId, "client_id", "a2-ask"),
    case("dup-client-id-market", lambda w: w.ex.market_order(w.a2, BTC, "sell", 1, client_id="a2-ask"),
         DuplicateClientOrderId, "client_id", "a2-ask"),
    # post-only that would cross: at the opposite best and through it, both markets, both sides
    case("po-buy-at-best-ask", lambda w: w.ex.limit(w.a3, BTC, "buy", 1, 30_010, post_only=True),
         PostOnlyWouldCross, "price", 30_010),
    case("po-buy-through", lambda w: w.ex.limit(w.a4, BTC, "buy", 100, 40_000, post_only=True),
         PostOnlyWouldCross, "price", 40_000),
    case("po-sell-at-best-bid", lambda w: w.ex.limit(w.a4, BTC, "sell", 1, 29_990, post_only=True),
         PostOnlyWouldCross, "price", 29_990),
    case("po-ro-sell-cross", lambda w: w.ex.limit(w.a2, BTC, "sell", 1, 29_000, post_only=True, reduce_only=True),
         PostOnlyWouldCross, "price", 29_000),
    case("po-eth-buy", lambda w: w.ex.limit(w.a2, ETH, "buy", 1, 200_100, post_only=True, client_id="new"),
         PostOnlyWouldCross, "price", 200_100),
    case("po-eth-sell", lambda w: w.ex.limit(w.a2, ETH, "sell", 1, 1, post_only=True),
         PostOnlyWouldCross, "price", 1),
    # reduce-only that would increase a position, or with none
    case("ro-buy-while-long", lambda w: w.ex.limit(w.a2, BTC, "buy", 1, 29_000, reduce_only=True),
         ReduceOnlyViolation, "reduce_only", _NO_VALUE, "buy 1", "position 5"),
    case("ro-sell-while-short", lambda w: w.ex.limit(w.a1, BTC, "sell", 2, 31_000, reduce_only=True),
         ReduceOnlyViolation, "reduce_only", _NO_VALUE, "sell 2", "position -5"),
    case("ro-flat-no-position", lambda w: w.ex.limit(w.a3, BTC, "sell", 1, 31_000, reduce_only=True),
         ReduceOnlyViolation, "reduce_only", _NO_VALUE, "sell 1", "position 0"),
    case("ro-flat-isolated", lambda w: w.ex.limit(w.a5, BTC, "buy", 1, 29_000, reduce_only=True),
         ReduceOnlyViolation, "reduce_only", _NO_VALUE, "buy 1", "position 0"),
    case("ro-flat-crossing", lambda w: w.ex.limit(w.a4, BTC, "buy", 3, 30_010, reduce_only=True),
         ReduceOnlyViolation, "reduce_only", _NO_VALUE, "position 0"),
    case("ro-eth-buy-while-long", lambda w: w.ex.limit(w.a3, ETH, "buy", 1, 200_100, tif="IOC", reduce_only=True),
         ReduceOnlyViolation, "reduce_only", _NO_VALUE, "position 10"),
    case("ro-eth-sell-while-short-fok", lambda w: w.ex.limit(w.a4, ETH, "sell", 1, 199_900, tif="FOK", reduce_only=True),
         ReduceOnlyViolation, "reduce_only", _NO_VALUE, "position -10"),
    case("ro-market-buy-while-long", lambda w: w.ex.market_order(w.a2, BTC, "buy", 1, reduce_only=True),
         ReduceOnlyViolation, "reduce_only", _NO_VALUE, "position 5"),
    case("ro-market-flat", lambda w: w.ex.market_order(w.a3, BTC, "sell", 1, slippage_bps=100, reduce_only=True),
         ReduceOnlyViolation, "reduce_only", _NO_VALUE, "position 0"),
    case("ro-market-sell-while-short", lambda w: w.ex.market_order(w.a4, ETH, "sell", 5, reduce_only=True),
         ReduceOnlyViolation, "reduce_only", _NO_VALUE, "position -10"),
]


@pytest.mark.parametrize("fn, exc, field, value, extra", FIELD_CASES)
def test_bad_order_field(world, fn, exc, field, value, extra):
    run_exchange_case(world, fn, exc, field, value, extra)


# Unhashable values where a symbol / side / tif / mode / ledger name is expected must get the same clear
# AbmError as any other bad value, not a bare TypeError from a dict lookup.
UNHASHABLE_CASES = [
    case("symbol-list-limit", lambda w: w.ex.limit(w.a1, [BTC], "buy", 1, 29_000), UnknownMarket, "market", [BTC]),
    case("symbol-list-cancel_all", lambda w: w.ex.cancel_all(w.a1, [BTC]), UnknownMarket, "market", [BTC]),
    case("symbol-dict-data", lambda w: w.ex.data({"symbol": BTC}), UnknownMarket, "market", {"symbol": BTC}),
    case("side-list", lambda w: w.ex.limit(w.a1, BTC, ["buy"], 1, 29_000), InvalidInput, "side", ["buy"]),
    case("side-list-market", lambda w: w.ex.market_order(w.a1, BTC, ["sell"], 1), InvalidInput, "side", ["sell"]),
    case("tif-list", lambda w: w.ex.limit(w.a1, BTC, "buy", 1, 29_000, tif=["GTC"]), InvalidOrderType, "tif", ["GTC"]),
    case("mode-list", lambda w: w.ex.set_margin_mode(w.a5, ETH, ["cross"]), InvalidInput, "mode", ["cross"]),
    case("ledger-list", lambda w: w.ex.seed_ledger(["fees"], 1), InvalidInput, "ledger", ["fees"]),
]


@pytest.mark.parametrize("fn, exc, field, value, extra", UNHASHABLE_CASES)
def test_unhashable_values(world, fn, exc, field, value, extra):
    run_exchange_case(world, fn, exc, field, value, extra)


# ---------------------------------------------------------------------------------------------- money and modes

BAD_AMOUNTS = [0, -1, -(10**6), 1.5, 10.0, "5", True, False, None, Decimal("5")]
MONEY_CASES = []
for v in BAD_AMOUNTS:
    MONEY_CASES += [
        case(f"deposit-{v!r}", lambda w, v=v: w.ex.deposit(w.a1, v), InvalidAmount, "amount", v),
        case(f"withdraw-{v!r}", lambda w, v=v: w.ex.withdraw(w.a1, v), InvalidAmount, "amount", v),
        case(f"seed-{v!r}", lambda w, v=v: w.ex.seed_ledger("insurance", v), InvalidAmount, "amount", v),
    ]
for v in [-1, 1.5, "5", None, True, Decimal("5")]:
    MONEY_CASES.append(case(f"open_account-{v!r}", lambda w, v=v: w.ex.open_account(v), InvalidAmount, "amount", v))
for v in [0, 1.5, "5", None, True, Decimal("5")]:
    MONEY_CASES.append(case(f"transfer-{v!r}", lambda w, v=v: w.ex.transfer_isolated_margin(w.a5, BTC, v),
                            InvalidAmount, "amount", v))
MONEY_CASES += [
    # over-withdrawal: by one unit, by a lot, from an account whose money sits in an isolated bucket
    case("withdraw-balance+1", lambda w: w.ex.withdraw(w.a2, w.ex.accounts[w.a2].balance + 1),
         InsufficientFunds, "amount", "BAL+1:a2"),
    case("withdraw-huge", lambda w: w.ex.withdraw(w.a1, 10**30), InsufficientFunds, "amount", 10**30),
    case("withdraw-isolated-margin-too", lambda w: w.ex.withdraw(w.a5, w.ex.accounts[w.a5].balance + 10**9),
         InsufficientFunds, "amount", "BAL+MARGIN:a5"),
    case("transfer-more-than-balance", lambda w: w.ex.transfer_isolated_margin(w.a5, BTC, w.ex.accounts[w.a5].balance + 1),
         InsufficientFunds, "amount", "BAL+1:a5"),
    case("transfer-out-more-than-margin", lambda w: w.ex.transfer_isolated_margin(w.a5, BTC, -(10**9) - 1),
         InsufficientFunds, "amount", -(10**9) - 1),
    case("transfer-cross-market", lambda w: w.ex.transfer_isolated_margin(w.a1, BTC, 100),
         InvalidInput, "mode", "cross", BTC),
    case("transfer-no-position", lambda w: w.ex.transfer_isolated_margin(w.a5, ETH, 100),
         InvalidInput, "mode", "cross", ETH),
    case("seed-unknown-ledger", lambda w: w.ex.seed_ledger("treasury", 5), InvalidInput, "ledger", "treasury", "fees"),
    case("seed-ledger-None", lambda w: w.ex.seed_ledger(None, 5), InvalidInput, "ledger", None),
    case("subscribe-not-callable", lambda w: w.ex.subscribe_fills(5), InvalidInput, "fn", 5),
    # margin mode: only while flat with no open orders in that market
    case("mode-with-long", lambda w: w.ex.set_margin_mode(w.a2, BTC, "isolated"),
         InvalidInput, "mode", "isolated", "size 5"),
    case("mode-with-short", lambda w: w.ex.set_margin_mode(w.a4, ETH, "strict_isolated"),
         InvalidInput, "mode", "strict_isolated", "size -10"),
    case("mode-short-cross", lambda w: w.ex.set_margin_mode(w.a1, BTC, "isolated"),
         InvalidInput, "mode", "isolated", "size -5"),
    case("mode-flat-with-orders", lambda w: w.ex.set_margin_mode(w.a3, BTC, "isolated"),
         InvalidInput, "mode", "isolated", "open orders"),
    case("mode-flat-with-orders-eth", lambda w: w.ex.set_margin_mode(w.a1, ETH, "strict_isolated"),
         InvalidInput, "mode", "strict_isolated", "open orders"),
    case("mode-isolated-margin-left", lambda w: w.ex.set_margin_mode(w.a5, BTC, "cross"),
         InvalidInput, "mode", "cross", "margin 1000000000"),
]
for v in ["isolate", "CROSS", "Cross", "", None, 0, 1, True]:
    MONEY_CASES.append(case(f"mode-name-{v!r}", lambda w, v=v: w.ex.set_margin_mode(w.a5, ETH, v),
                            InvalidInput, "mode", v, "cross", "isolated"))


def _resolve_amount(w, value):
    if isinstance(value, str) and value.startswith("BAL+1:"):
        return w.ex.accounts[getattr(w, value[6:])].balance + 1
    if isinstance(value, str) and value.startswith("BAL+MARGIN:"):
        return w.ex.accounts[getattr(w, value[11:])].balance + 10**9
    return value


@pytest.mark.parametrize("fn, exc, field, value, extra", MONEY_CASES)
def test_bad_money_or_mode(world, fn, exc, field, value, extra):
    run_exchange_case(world, fn, exc, field, _resolve_amount(world, value), extra)


# ---------------------------------------------------------------------------------------------- market specs

SPEC_CASES = []
for v in ["0", "-1", 0, -0.1, "-0", True, "abc", "NaN", "Infinity", None]:
    SPEC_CASES.append(case(f"tick_size-{v!r}", lambda w, v=v: MarketSpec("X", tick_size=v), InvalidMarketSpec,
                           "tick_size", v))
for v in ["0", "-0.001", 0, False, "", "inf", None]:
    SPEC_CASES.append(case(f"lot_size-{v!r}", lambda w, v=v: MarketSpec("X", lot_size=v), InvalidMarketSpec,
                           "lot_size", v))
SPEC_CASES += [
    # a grid that would need rounding: tick * lot * 10**quote_decimals not a whole number of quote units
    case("grid-fine-lot", lambda w: MarketSpec("X", tick_size="0.1", lot_size="0.0000001"),
         InvalidMarketSpec, "tick_size", "0.1", "lot_size", "quote_decimals"),
    case("grid-fine-tick", lambda w: MarketSpec("X", tick_size="0.0001", lot_size="0.001"),
         InvalidMarketSpec, "tick_size", "0.0001", "0.001"),
    case("grid-quote-decimals", lambda w: MarketSpec("X", tick_size="0.1", lot_size="0.001", quote_decimals=2),
         InvalidMarketSpec, "tick_size", "0.1", "quote_decimals 2"),
    case("grid-float-tick", lambda w: MarketSpec("X", tick_size=0.3, lot_size="0.000001"),
         InvalidMarketSpec, "tick_size", 0.3),
]
for v in [-1, 19, 6.0, "6", True, None]:
    SPEC_CASES.append(case(f"quote_decimals-{v!r}", lambda w, v=v: MarketSpec("X", quote_decimals=v),
                           InvalidMarketSpec, "quote_decimals", v))
for v in ["1.555", "0.001", 1.001, "0.005", Decimal("2.123"), "abc", True, None, "NaN"]:
    SPEC_CASES += [
        case(f"maker_fee-{v!r}", lambda w, v=v: MarketSpec("X", maker_fee_bps=v), InvalidMarketSpec, "maker_fee_bps", v),
        case(f"taker_fee-{v!r}", lambda w, v=v: MarketSpec("X", taker_fee_bps=v), InvalidMarketSpec, "taker_fee_bps", v),
    ]
SPEC_CASES += [
    # a rebate larger than the taker fee would pay out more than the venue takes in
    case("rebate-exceeds-taker", lambda w: MarketSpec("X", maker_fee_bps="-5", taker_fee_bps="4.5"),
         InvalidMarketSpec, "maker_fee_bps", "-5", "4.5"),
    case("rebate-with-zero-taker", lambda w: MarketSpec("X", maker_fee_bps="-0.01", taker_fee_bps="0"),
         InvalidMarketSpec, "maker_fee_bps", "-0.01"),
    case("negative-taker", lambda w: MarketSpec("X", maker_fee_bps="0", taker_fee_bps="-1"),
         InvalidMarketSpec, "taker_fee_bps", "-1"),
    case("taker-100pct", lambda w: MarketSpec("X", taker_fee_bps="10000"), InvalidMarketSpec, "taker_fee_bps", "10000"),
    # the error must name the maker fee (and its value) when the maker fee is the one that is too large
    case("maker-100pct", lambda w: MarketSpec("X", maker_fee_bps="10000"), InvalidMarketSpec, "maker_fee_bps", "10000"),
    case("maker-over-100pct", lambda w: MarketSpec("X", maker_fee_bps=20_000, taker_fee_bps="5"),
         InvalidMarketSpec, "maker_fee_bps", 20_000),
]
for v in ["cancel_both", "CANCEL_RESTING", "", None, 0, 1]:
    SPEC_CASES.append(case(f"stp-{v!r}", lambda w, v=v: MarketSpec("X", stp=v), InvalidMarketSpec, "stp", v,
                           "cancel_resting", "cancel_incoming"))
for v in ["", " ", " BTC-PERP", "BTC-PERP\n", None, 5, b"BTC"]:
    SPEC_CASES.append(case(f"symbol-{v!r}", lambda w, v=v: MarketSpec(v), InvalidMarketSpec, "symbol", v))
SPEC_CASES += [
    case("duplicate-symbol", lambda w: w.ex.list_market(MarketSpec(BTC)), DuplicateMarket, "symbol", BTC),
    case("duplicate-symbol-other-grid", lambda w: w.ex.list_market(MarketSpec(ETH, tick_size="1", lot_size="1")),
         DuplicateMarket, "symbol", ETH),
    case("list-not-a-spec", lambda w: w.ex.list_market("SOL-PERP"), InvalidInput, "spec", "SOL-PERP"),
    case("list-None", lambda w: w.ex.list_market(None), InvalidInput, "spec", None),
]


@pytest.mark.parametrize("fn, exc, field, value, extra", SPEC_CASES)
def test_bad_market_spec(world, fn, exc, field, value, extra):
    run_exchange_case(world, fn, exc, field, value, extra)


def test_good_spec_edges_are_accepted(world):
    """Controls: the boundaries just inside what is allowed are accepted."""
    s = MarketSpec("Y", maker_fee_bps="-4.5", taker_fee_bps="4.5")  # rebate equal to the taker fee
    assert (s.maker_ppm, s.taker_ppm) == (-450, 450)
    assert MarketSpec("Z", maker_fee_bps="0.01", taker_fee_bps="9999.99").taker_ppm == 999_999
    assert MarketSpec("W", tick_size="0.1", lot_size="0.00001").multiplier == 1
    assert world.ex.list_market(MarketSpec("SOL-PERP")) == 2


# ---------------------------------------------------------------------------------------------- client id reuse


def test_client_id_reusable_once_order_is_gone(world):
    """A client id is unique among the account's *live* orders only."""
    ex, w = world.ex, world
    # another account may use an id that is live elsewhere
    r = ex.limit(w.a3, BTC, "buy", 1, 29_000, client_id="a1-bid")
    assert ex.accounts[w.a3].client_ids["a1-bid"] == r.oid
    # after a cancel
    ex.cancel(w.a1, client_id="a1-bid")
    r = ex.limit(w.a1, BTC, "buy", 1, 29_500, client_id="a1-bid")
    assert ex.accounts[w.a1].client_ids["a1-bid"] == r.oid and r.resting == 1
    with pytest.raises(DuplicateClientOrderId):
        ex.limit(w.a1, BTC, "buy", 1, 29_400, client_id="a1-bid")
    # after a complete fill as maker
    assert ex.market_order(w.a4, BTC, "buy", 4).filled == 4  # takes a2's 4 lots at 30010
    assert "a2-ask" not in ex.accounts[w.a2].client_ids
    r = ex.limit(w.a2, BTC, "sell", 1, 30_500, client_id="a2-ask")
    assert ex.accounts[w.a2].client_ids["a2-ask"] == r.oid
    # an order that never rests (IOC, no fill) does not hold its id
    r = ex.limit(w.a1, BTC, "buy", 1, 1, tif="IOC", client_id="ioc")
    assert r.resting == 0 and "ioc" not in ex.accounts[w.a1].client_ids
    assert ex.limit(w.a1, BTC, "buy", 1, 1, client_id="ioc").resting == 1
    # modify to cancel-by-fill: a bid moved through the ask fills completely and frees its id
    oid = ex.accounts[w.a3].client_ids[1]
    assert ex.modify(w.a3, oid, price=30_500, qty=1) == 1
    assert 1 not in ex.accounts[w.a3].client_ids
    assert ex.limit(w.a3, BTC, "buy", 1, 29_000, client_id=1).resting == 1
    ex.check_conservation()


# ---------------------------------------------------------------------------------------------- order book


def run_book_case(bw, fn, exc, field, value, extra):
    book = bw.book
    n = (len(bw.fills), len(bw.cancels))

    def check():
        book.check_invariants()
        assert (len(bw.fills), len(bw.cancels)) == n, "a rejected call produced fills or cancels"

    expect_rejected(lambda: fn(bw), exc, field, value, extra, lambda: book_snapshot(book, bw.oids), check)


BOOK_CASES = [
    case("limit-dup-oid", lambda b: b.book.limit(1, "z", SELL, 200, 1), DuplicateOrderId, "oid", 1),
    case("limit-dup-oid-crossing", lambda b: b.book.limit(3, "z", BUY, 102, 1), DuplicateOrderId, "oid", 3),
    case("market-dup-oid", lambda b: b.book.market(2, "z", SELL, 1), DuplicateOrderId, "oid", 2),
    case("cancel-unknown", lambda b: b.book.cancel(99), UnknownOrder, "oid", 99),
    case("cancel-unknown-str", lambda b: b.book.cancel("1"), UnknownOrder, "oid", "1"),
    case("modify-unknown", lambda b: b.book.modify(99, price=100), UnknownOrder, "oid", 99),
    case("order-unknown", lambda b: b.book.order(99), UnknownOrder, "oid", 99),
    case("is_reduce_only-unknown", lambda b: b.book.is_reduce_only(99), UnknownOrder, "oid", 99),
    case("reduce-only-without-ro_cap", lambda b: b.book.limit(10, "a", SELL, 110, 1, reduce_only=True),
         InvalidOrderType, "reduce_only", True),
    case("po-ioc", lambda b: b.book.limit(10, "z", BUY, 90, 1, tif=IOC, post_only=True),
         InvalidOrderType, "post_only", True),
    case("po-fok", lambda b: b.book.limit(10, "z", BUY, 90, 1, tif=FOK, post_only=True),
         InvalidOrderType, "post_only", True),
    case("po-buy-cross", lambda b: b.book.limit(10, "z", BUY, 102, 1, post_only=True), PostOnlyWouldCross, "price", 102),
    case("po-sell-cross", lambda b: b.book.limit(10, "z", SELL, 100, 1, post_only=True), PostOnlyWouldCross, "price", 100),
    case("modify-po-cross", lambda b: b.book.modify(4, price=100), PostOnlyWouldCross, "price", 100),
    case("modify-po-cross-qty", lambda b: b.book.modify(4, price=99, qty=7), PostOnlyWouldCross, "price", 99),
    case("stp-bad", lambda b: OrderBook(stp=2), InvalidInput, "stp", 2),
    case("stp-name", lambda b: OrderBook(stp="cancel_resting"), InvalidInput, "stp", "cancel_resting"),
    case("l2-0", lambda b: b.book.l2(0), InvalidInput, "n", 0),
    case("l2-float", lambda b: b.book.l2(1.5), InvalidInput, "n", 1.5),
    case("l2-True", lambda b: b.book.l2(True), InvalidInput, "n", True),
    case("depth-neg", lambda b: b.book.depth_within(-1), InvalidInput, "bps", -1),
    case("depth-huge", lambda b: b.book.depth_within(10_001), InvalidInput, "bps", 10_001),
    case("depth-str", lambda b: b.book.depth_within("5"), InvalidInput, "bps", "5"),
    case("depth-ref-0", lambda b: b.book.depth_within(5, ref=0), InvalidInput, "ref", 0),
    case("impact-side", lambda b: b.book.impact_price(2, 100), InvalidInput, "side", 2),
    case("impact-notional-0", lambda b: b.book.impact_price(BUY, 0), InvalidInput, "notional", 0),
    case("impact-notional-float", lambda b: b.book.impact_price(SELL, 1.5), InvalidInput, "notional", 1.5),
]
# As at the exchange: exact ints only (the book already refuses True / 2.0 as price or qty).
for v in [2, -1, "buy", None, True, 1.0]:
    BOOK_CASES += [
        case(f"limit-side-{v!r}", lambda b, v=v: b.book.limit(10, "z", v, 90, 1), InvalidInput, "side", v),
        case(f"market-side-{v!r}", lambda b, v=v: b.book.market(10, "z", v, 1), InvalidInput, "side", v),
    ]
for v in [3, -1, "GTC", None, True, 1.0]:
    BOOK_CASES.append(case(f"limit-tif-{v!r}", lambda b, v=v: b.book.limit(10, "z", BUY, 90, 1, tif=v),
                           InvalidOrderType, "tif", v))
for v in BAD_SIZES:
    BOOK_CASES += [
        case(f"limit-qty-{v!r}", lambda b, v=v: b.book.limit(10, "z", BUY, 90, v), InvalidSize, "qty", v),
        case(f"market-qty-{v!r}", lambda b, v=v: b.book.market(10, "z", BUY, v), InvalidSize, "qty", v),
    ]
    if v is not None:
        BOOK_CASES.append(case(f"modify-qty-{v!r}", lambda b, v=v: b.book.modify(1, qty=v), InvalidSize, "qty", v))
for v in [0, -1, 100.0, 100.5, "100", True, None, Decimal("100")]:
    BOOK_CASES.append(case(f"limit-price-{v!r}", lambda b, v=v: b.book.limit(10, "z", SELL, v, 1), InvalidPrice, "price", v))
    if v is not None:
        BOOK_CASES += [
            case(f"market-worst-{v!r}", lambda b, v=v: b.book.market(10, "z", SELL, 1, worst_price=v),
                 InvalidPrice, "worst_price", v),
            case(f"modify-price-{v!r}", lambda b, v=v: b.book.modify(1, price=v), InvalidPrice, "price", v),
            case(f"modify-price-qty-{v!r}", lambda b, v=v: b.book.modify(2, price=v, qty=1), InvalidPrice, "price", v),
        ]


@pytest.mark.parametrize("fn, exc, field, value, extra", BOOK_CASES)
def test_book_rejects(bookw, fn, exc, field, value, extra):
    run_book_case(bookw, fn, exc, field, value, extra)
