"""The spot venues' trade tape: every fill on every simulated spot venue, with the fees as charged.

Why one tape for all venues and not one per venue: the rows keep the order the fills happened in
across venues (two venues filling in the same microsecond stay in event order), which a merge of
per-venue tapes by time could not recover. Why the fees are recorded and not recomputed from the
rates: the tape says what the venue charged (rounded in its favour, a rebate negative), so the run's
table can be checked against the accounts, not merely agree with a second copy of the formula.

Subscribe it with ``spot_exchange.subscribe_trades(tape.listener(venue_index))``. Each fill appends
twelve machine integers, as ``abm.market.tape.Tape`` does for the perp.
"""

from __future__ import annotations

from array import array
from typing import Any

from abm.errors import InvalidInput, StrArg
from abm.spot.exchange import TradeSubscriber

COLUMNS = (
    "time_us",
    "venue",  # the venue's index in the scenario's order of [spot.NAME] tables
    "market",  # the pair's index on its venue
    "maker_oid",
    "maker_account",
    "taker_oid",
    "taker_account",
    "price",
    "qty",
    "taker_side",
    "maker_fee",
    "taker_fee",
)


class SpotTape:
    __slots__ = ("_cols", "_appends")

    def __init__(self) -> None:
        self._cols = {name: array("q") for name in COLUMNS}
        self._appends = tuple(self._cols[name].append for name in COLUMNS)

    def listener(self, venue: int) -> TradeSubscriber:
        """The subscriber for the venue numbered ``venue`` (its rows carry that number)."""
        if type(venue) is not int or venue < 0:
            raise InvalidInput("venue", venue, "must be a non-negative int (the venue's index)")
        a = self._appends

        def on_trade(t: int, market: int, mk: int, mown: int, tk: int, town: int, price: int, qty: int, side: int,
                     maker_fee: int, taker_fee: int) -> None:
            a[0](t)
            a[1](venue)
            a[2](market)
            a[3](mk)
            a[4](mown)
            a[5](tk)
            a[6](town)
            a[7](price)
            a[8](qty)
            a[9](side)
            a[10](maker_fee)
            a[11](taker_fee)

        return on_trade

    def __len__(self) -> int:
        return len(self._cols["qty"])

    def column(self, name: StrArg) -> array:
        return self._cols[name]

    def columns(self) -> dict[str, Any]:
        """Each column as an int64 numpy array (``taker_side`` as int8), in ``COLUMNS`` order."""
        import numpy as np

        out = {n: np.frombuffer(c, dtype=np.int64).copy() if len(c) else np.zeros(0, np.int64)
               for n, c in self._cols.items()}
        out["taker_side"] = out["taker_side"].astype(np.int8)
        return out
