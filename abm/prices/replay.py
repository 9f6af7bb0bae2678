"""Recorded prices replayed as the index: a CSV, Parquet file or DataFrame read and checked once.

Why checked up front: a bad file (a missing timestamp, a duplicate, a price of zero) must fail when
the scenario is built, naming the row and the file line, not minutes into a run.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from abm.errors import InvalidInput
from abm.prices import portable
from abm.prices.index import DEFAULT_DT_US, IndexPath, _grid, _need


class InvalidReplayData(InvalidInput):
    """A replay file or frame is unusable; ``row`` (0-based data row) says where, when it is one row."""

    def __init__(self, field: str, value: Any, allowed: str, row: Optional[int] = None) -> None:
        super().__init__(field, value, allowed)
        self.row = row


class Replay:
    """Recorded prices (CSV, Parquet or a DataFrame) replayed on the simulation grid.

    Times are seconds (numbers) or ISO-8601 timestamps, taken relative to the first row; each grid
    point gets the last price at or before it. The file is read and checked once, here, so a bad
    file fails when the scenario is built, not minutes into a run.
    """

    __slots__ = ("source", "time_col", "price_col", "rel_us", "prices")

    def __init__(self, source: Union[str, "os.PathLike[str]", Any], time_col: str = "time", price_col: str = "price") -> None:
        import pandas as pd

        df, where, line0 = _read_frame(source)
        for arg, col in (("time_col", time_col), ("price_col", price_col)):
            if col not in df.columns:
                raise InvalidReplayData(arg, col, f"must name a column of {where}; it has {_columns(df.columns)}")
        if len(df) == 0:
            raise InvalidReplayData("file", where, "has no data rows")
        self.source, self.time_col, self.price_col = where, time_col, price_col
        self.rel_us = _relative_us(df[time_col], time_col, line0)
        self.prices = _positive_prices(pd, df[price_col], price_col, line0)
        self.rel_us.flags.writeable = False
        self.prices.flags.writeable = False

    @property
    def span_us(self) -> int:
        return int(self.rel_us[-1])

    def path(self, duration_us: int, rng: Optional[np.random.Generator] = None, dt_us: int = DEFAULT_DT_US) -> IndexPath:
        dt, n = _grid(duration_us, dt_us)
        _need(int(duration_us) <= self.span_us, "duration_us", duration_us,
              f"must be <= the replay's span of {self.span_us} us (the data ends there)")
        idx = np.searchsorted(self.rel_us, np.arange(n + 1, dtype=np.int64) * dt, side="right") - 1
        return IndexPath(self.prices[idx], dt)


def _read_frame(source: Any) -> tuple[Any, str, Optional[int]]:
    """(frame, name for messages, file line of data row 0 or None)."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True), "the DataFrame", None
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidReplayData("source", source, "must be a path to a .csv or .parquet file, or a pandas DataFrame")
    p = Path(source)
    if not p.is_file():
        raise InvalidReplayData("source", str(p), "must be an existing .csv or .parquet file")
    suffix = p.suffix.lower()
    if suffix == ".csv":
        try:
            return pd.read_csv(p), p.name, 2
        except pd.errors.EmptyDataError:
            raise InvalidReplayData("file", str(p), "has no data rows (the file is empty)") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise InvalidReplayData("file", str(p), f"must be a readable CSV ({e})") from None
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(p), p.name, None
        except Exception as e:  # pyarrow raises several unrelated types for a corrupt file
            raise InvalidReplayData("file", str(p), f"must be a readable Parquet file ({type(e).__name__}: {e})") from None
    raise InvalidReplayData("source", str(p), "must end in .csv, .parquet or .pq")


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python value it holds, so messages read 2.0 rather than np.float64(2.0)."""
    return v.item() if isinstance(v, np.generic) else v


def _columns(cols: Any) -> str:
    """A file's column names for a message: a few, each short (a file's content is never echoed at length)."""
    names = [str(c) if len(str(c)) <= 40 else str(c)[:37] + "..." for c in list(cols)[:8]]
    return str(names) + (f" and {len(cols) - 8} more" if len(cols) > 8 else "")


def _at(row: int, line0: Optional[int]) -> str:
    return f"row {row}" + ("" if line0 is None else f" (line {row + line0} of the file)")


def _relative_us(col: Any, name: str, line0: Optional[int]) -> np.ndarray:
    import pandas as pd

    missing = np.flatnonzero(col.isna().to_numpy())
    if missing.size:
        i = int(missing[0])
        raise InvalidReplayData(name, col.iloc[i], f"{_at(i, line0)}: missing timestamp", row=i)
    if pd.api.types.is_bool_dtype(col):
        raise InvalidReplayData(name, col.iloc[0], f"{_at(0, line0)}: must be seconds or an ISO-8601 timestamp", row=0)
    if not pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_datetime64_any_dtype(col):
        # Text: numbers if the first row is a number (one stray word then names its own row), else timestamps.
        num = pd.to_numeric(col, errors="coerce")
        if not pd.isna(num.iloc[0]):
            bad = np.flatnonzero(num.isna().to_numpy())
            if bad.size:
                i = int(bad[0])
                why = "must be a number of seconds like the rows before"
                raise InvalidReplayData(name, col.iloc[i], f"{_at(i, line0)}: {why}", row=i)
            col = num
    if pd.api.types.is_numeric_dtype(col):
        sec = col.to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(sec))
        if bad.size:
            i = int(bad[0])
            raise InvalidReplayData(name, col.iloc[i], f"{_at(i, line0)}: timestamps must be finite seconds", row=i)
        us = np.round((sec - sec[0]) * 1_000_000).astype(np.int64)
    else:
        ts = col
        if not pd.api.types.is_datetime64_any_dtype(col):
            ts = pd.to_datetime(col, format="ISO8601", utc=True, errors="coerce")
        bad = np.flatnonzero(ts.isna().to_numpy())
        if bad.size:
            i = int(bad[0])
            raise InvalidReplayData(name, col.iloc[i], f"{_at(i, line0)}: must be seconds or an ISO-8601 timestamp", row=i)
        us = (ts - ts.iloc[0]).to_numpy().astype("timedelta64[us]").astype(np.int64)
    d = np.diff(us)
    bad = np.flatnonzero(d <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        if d[i - 1] == 0:
            raise InvalidReplayData(name, col.iloc[i], f"{_at(i, line0)}: duplicate timestamp (same as row {i - 1})", row=i)
        raise InvalidReplayData(name, col.iloc[i], f"{_at(i, line0)}: timestamps must be strictly increasing "
                                f"(row {i - 1} is {_plain(col.iloc[i - 1])!r})", row=i)
    return us


def _positive_prices(pd: Any, col: Any, name: str, line0: Optional[int]) -> np.ndarray:
    p = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(p) | (p <= 0))
    if bad.size:
        i = int(bad[0])
        if pd.isna(col.iloc[i]):
            why = "missing price (NaN)"
        elif math.isnan(p[i]):
            why = "must be a number"
        else:
            why = "must be a finite price > 0"
        raise InvalidReplayData(name, col.iloc[i], f"{_at(i, line0)}: {why}", row=i)
    return p


def block_bootstrap(values: np.ndarray, block: int, rng: np.random.Generator) -> np.ndarray:
    """A moving-block bootstrap of a price path: its log returns resampled in contiguous blocks of ``block``.

    Why blocks: a crash is a run of returns, and volatility clusters; resampling single returns would
    keep the distribution of one-step moves and destroy both. Blocks start uniformly among the path's
    ``len - block`` windows, whole blocks are laid end to end and the last one cut, and the new path
    starts at the recorded first price (Kunsch 1989; Lahiri, Resampling Methods for Dependent Data, 2003).
    """
    r = np.diff(portable.log(values))
    n = len(r)
    if not 1 <= block <= n:
        raise InvalidInput("replay_block_s", block, f"must span 1 to {n} grid steps of the replayed run")
    starts = rng.integers(0, n - block + 1, size=-(-n // block))
    out = np.concatenate([r[s:s + block] for s in starts])[:n]
    return values[0] * portable.exp(np.concatenate(([0.0], np.cumsum(out))))


def scale_moves(values: np.ndarray, factor: float) -> np.ndarray:
    """The path with every log move from its first price times ``factor``: p0 (p_t / p0) ** factor."""
    return values[0] * (values / values[0]) ** factor

