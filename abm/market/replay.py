"""Replay an order-event array through an OrderBook (the shared 1M-event workload's format).

Rows are (type, side, price, qty, oid) with type 0 = limit (GTC), 1 = cancel, 2 = market. The test
suite and ``bench/lob_replay.py`` both use this one loop, so the benchmark measures what is tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from abm.errors import InvalidInput
from abm.market.book import OrderBook

LIMIT, CANCEL, MARKET = 0, 1, 2


@dataclass(frozen=True, slots=True)
class ReplayTotals:
    trades: int
    volume: int
    notional: int
    resting_orders: int
    best_bid: Optional[int]
    best_ask: Optional[int]
    resting_bid_volume: int
    resting_ask_volume: int


# The totals published with the shared 1M-event workload (shared/bench/README.md); any engine with these
# semantics must end the replay with exactly these.
SHARED_WORKLOAD_TOTALS = ReplayTotals(
    trades=369_005,
    volume=1_342_899,
    notional=134_259_832_412,
    resting_orders=2_186,
    best_bid=100_011,
    best_ask=100_014,
    resting_bid_volume=6_231,
    resting_ask_volume=5_750,
)


def load_events(path: str | Path) -> list[list[int]]:
    """Load ``events`` from an .npz as plain Python ints (the book takes exact ints, not numpy scalars)."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise InvalidInput("path", str(p), "must be an existing .npz file holding an 'events' array")
    with np.load(p) as z:
        ev = z["events"]
    if ev.ndim != 2 or ev.shape[1] != 5:
        raise InvalidInput("events", f"shape {ev.shape}", "must have shape (n, 5)")
    return ev.tolist()


def replay(events: Iterable[Any], book: Optional[OrderBook] = None) -> tuple[OrderBook, ReplayTotals]:
    book = OrderBook() if book is None else book
    acc = [0, 0, 0]

    def on_fill(mk: int, mo: object, tk: int, to: object, price: int, qty: int, side: int, liq: bool, left: int) -> None:
        acc[0] += 1
        acc[1] += qty
        acc[2] += price * qty

    book.on_fill = on_fill
    limit, cancel, market = book.limit, book.cancel, book.market
    for typ, side, price, qty, oid in events:
        if typ == 0:  # LIMIT (literals: a global lookup per event is measurable here)
            limit(oid, None, side, price, qty)
        elif typ == 1:  # CANCEL
            cancel(oid)
        elif typ == 2:  # MARKET
            market(oid, None, side, qty)
        else:
            raise InvalidInput("type", typ, "must be 0 (limit), 1 (cancel) or 2 (market)")
    book.on_fill = None
    bids, asks = book.l2(1 << 30) if len(book) else ([], [])
    totals = ReplayTotals(
        trades=acc[0],
        volume=acc[1],
        notional=acc[2],
        resting_orders=len(book),
        best_bid=book.best_bid(),
        best_ask=book.best_ask(),
        resting_bid_volume=sum(s for _, s in bids),
        resting_ask_volume=sum(s for _, s in asks),
    )
    return book, totals

