"""A run's fingerprint: one short hash per table and for the summary, from the values alone.

Why not hash the Parquet files: their bytes carry the writer's version and metadata, so the same run
would hash differently on another pyarrow. The fingerprint reads each column's name, dtype and values
(integers as little-endian int64, floats as their IEEE-754 bits, categoricals as categories and codes)
and the summary as canonical JSON, so equal runs give equal fingerprints on any machine, process,
Python line and build, and a changed number changes the table it sits in. The golden tests pin two.
A run with simulated spot venues also has a digest of each spot table (``spot_trades``, ``spot_accounts``);
a run without them has exactly the keys it always had, so no existing fingerprint changed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

TABLES = ("steps", "trades", "liquidations", "funding")
SPOT_TABLES = ("spot_trades", "spot_accounts")


def table_digest(df: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update(f"{len(df)}".encode())
    for c in df.columns:
        col = df[c]
        h.update(f"|{c}|{col.dtype}|".encode())
        if isinstance(col.dtype, pd.CategoricalDtype):
            h.update("\x1f".join(map(str, col.cat.categories)).encode())
            h.update(col.cat.codes.to_numpy().astype("<i8").tobytes())
        elif col.dtype.kind in "iub":
            h.update(col.to_numpy().astype("<i8").tobytes())
        elif col.dtype.kind == "f":
            h.update(np.ascontiguousarray(col.to_numpy(), dtype="<f8").tobytes())
        elif col.dtype.kind == "m":
            h.update(col.to_numpy().astype("<i8").tobytes())
        else:
            h.update(json.dumps([None if v is None else str(v) for v in col.tolist()]).encode())
    return h.hexdigest()[:16]


def summary_digest(summary: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(summary, sort_keys=True, allow_nan=False).encode()).hexdigest()[:16]


def fingerprint(result: Any) -> dict[str, str]:
    """``{table: digest}`` for a ``RunResult`` (tables and summary)."""
    out = {t: table_digest(getattr(result, t)) for t in TABLES}
    if getattr(result, "spot_markets", None):  # a run with spot venues
        out.update({t: table_digest(getattr(result, t)) for t in SPOT_TABLES})
    out["summary"] = summary_digest(result.summary)
    return out
