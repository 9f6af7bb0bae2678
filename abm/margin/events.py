"""The liquidation log: one row per liquidation step, in typed columns, for the cascade analysis.

Kinds: ``book`` (a liquidation order into the shared book), ``backstop`` (the vault took a
position over at the mark), ``adl`` (the bankrupt side of an auto-deleveraging close),
``adl_counterparty`` (a profitable position closed against it), ``bad_debt`` (the insurance fund
covered negative equity, never more than it holds: debt it cannot pay stays on the account, ``equity_after`` < 0).
``trigger`` is the sequence number of the mark update that started the step, and ``order_id`` the
liquidation order's id (its fills carry the liquidation flag on the tape), which is what links a
liquidation to the later mark moves its trades caused.
"""

from __future__ import annotations

from array import array
from typing import Any

from abm.errors import MoneyOverflow

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
KINDS = ("book", "backstop", "adl", "adl_counterparty", "bad_debt")
KIND_CODE = {k: i for i, k in enumerate(KINDS)}
COLUMNS = (
    "event_id",
    "time_us",
    "trigger",
    "account",
    "market",
    "mode",
    "kind",
    "size",
    "price",
    "mark",
    "equity_before",
    "equity_after",
    "bad_debt",
    "insurance_after",
    "order_id",
)


class LiquidationLog:
    __slots__ = ("_cols",)

    def __init__(self) -> None:
        self._cols = {c: array("q") for c in COLUMNS}

    def record(self, **row: int) -> int:
        eid = len(self._cols["event_id"])
        row["event_id"] = eid
        for c in COLUMNS:  # all checked before any is appended: a row is whole or absent
            if not _INT64_MIN <= row[c] <= _INT64_MAX:
                raise MoneyOverflow(c, row[c], "must fit the log's 64-bit integers: an account holds more than the "
                                               "tables can record (use fewer quote_decimals)")
        for c in COLUMNS:
            self._cols[c].append(int(row[c]))
        return eid

    def __len__(self) -> int:
        return len(self._cols["event_id"])

    def column(self, name: str) -> array:
        return self._cols[name]

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for i in range(len(self)):
            r: dict[str, Any] = {c: self._cols[c][i] for c in COLUMNS}
            r["kind"] = KINDS[r["kind"]]
            out.append(r)
        return out

    def to_pandas(self) -> Any:
        import numpy as np
        import pandas as pd

        df = pd.DataFrame({c: np.frombuffer(a, dtype=np.int64) if len(a) else np.zeros(0, np.int64)
                           for c, a in self._cols.items()})
        df["kind"] = pd.Categorical.from_codes(df["kind"].to_numpy(), categories=list(KINDS))
        return df
