"""An optional trade tape: fills streamed into typed columns, turned into a table off the hot path.

Subscribe it with ``exchange.subscribe_fills(tape)``. Each fill appends ten machine integers (no
per-fill Python object is kept), so a tape of a million fills costs about 80 MB less than a list of
tuples would and converts to Arrow without copying.
"""

from __future__ import annotations

from array import array
from typing import Any

from abm.errors import StrArg

COLUMNS = (
    "time_us",
    "market",
    "maker_oid",
    "maker_account",
    "taker_oid",
    "taker_account",
    "price",
    "qty",
    "taker_side",
    "liquidation",
)


class Tape:
    __slots__ = ("_cols", "_appends")

    def __init__(self) -> None:
        self._cols = {name: array("q") for name in COLUMNS}
        self._appends = tuple(self._cols[name].append for name in COLUMNS)

    def __call__(
        self, t: int, market: int, mk: int, mown: int, tk: int, town: int, price: int, qty: int, side: int, liq: bool
    ) -> None:
        a = self._appends
        a[0](t)
        a[1](market)
        a[2](mk)
        a[3](mown)
        a[4](tk)
        a[5](town)
        a[6](price)
        a[7](qty)
        a[8](side)
        a[9](1 if liq else 0)

    def __len__(self) -> int:
        return len(self._cols["qty"])

    def column(self, name: StrArg) -> array:
        return self._cols[name]

    def to_arrow(self) -> Any:
        import numpy as np
        import pyarrow as pa

        arrays = {n: np.frombuffer(c, dtype=np.int64) if len(c) else np.zeros(0, np.int64) for n, c in self._cols.items()}
        arrays["taker_side"] = arrays["taker_side"].astype(np.int8)
        arrays["liquidation"] = arrays["liquidation"].astype(bool)
        return pa.table(arrays)

    def to_pandas(self) -> Any:
        return self.to_arrow().to_pandas()
