"""The event tables in the units people read, beside the exact integer columns they are computed from.

Why both: the integer columns (ticks, lots, quote units, microseconds) are what exact work needs
(conservation, reconciliation against the tape); people and plots want quote currency, base units,
times and names. The decoded columns are computed once from the integer ones, so they can never
disagree with them; their names carry their units (``price_usdc``, ``size_base``, ``time``).

- ``time``: a pandas timedelta from the run's start; ``timestamp``: UTC, when the scenario sets
  ``run.start_time``.
- ``symbol``, sides, margin modes and liquidation kinds: categoricals (``market = -1``, an account-wide
  bad debt, has no symbol).
- money in the quote currency (``_usdc`` for USDC, ``_usdt`` for USDT: the venue's own), exact to the
  float's precision: each value is one integer divided once.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from abm.units import SIDE_NAMES

MODE_NAMES = ("cross", "isolated", "strict_isolated")


def _time(df: pd.DataFrame, start: Optional[pd.Timestamp]) -> None:
    us = df["time_us"].to_numpy(np.int64)
    df["time"] = pd.to_timedelta(us, unit="us")
    if start is not None:
        df["timestamp"] = start + df["time"]


def _scaled(df: pd.DataFrame, values: np.ndarray, markets: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """``values`` (integers) times each row's market ``key`` (tick_size or lot_size), as one integer product
    divided once (0.1 is 1/10: 600000 ticks are 60000.0, not 60000.00000000001); NaN without a market."""
    steps = [Fraction(repr(float(m[key]))) for m in markets]
    idx = df["market"].to_numpy(np.int64)
    out = np.full(len(values), np.nan)
    for i, step in enumerate(steps):
        sel = idx == i
        if sel.any():
            out[sel] = (values[sel].astype(object) * step.numerator).astype(np.float64) / step.denominator
    return out


def _notional(df: pd.DataFrame, size: np.ndarray, price: np.ndarray, markets: Sequence[Mapping[str, Any]],
              unit: float) -> np.ndarray:
    """|size| x price x multiplier quote units (exact integers) in quote currency."""
    mult = np.array([int(m["multiplier"]) for m in markets] + [0], dtype=object)
    idx = df["market"].to_numpy(np.int64)
    m = mult[np.where((idx >= 0) & (idx < len(markets)), idx, len(markets))]
    units = np.abs(size).astype(object) * price.astype(object) * m
    out = units.astype(np.float64) / unit
    out[(idx < 0) | (idx >= len(markets))] = np.nan
    return out


def _symbol(df: pd.DataFrame, markets: Sequence[Mapping[str, Any]]) -> None:
    names = [str(m["symbol"]) for m in markets]
    codes = df["market"].to_numpy(np.int64)
    df["symbol"] = pd.Categorical.from_codes(np.where((codes >= 0) & (codes < len(names)), codes, -1), names)


def decode_tables(tables: Mapping[str, pd.DataFrame], markets: Sequence[Mapping[str, Any]], quote: str = "USDC",
                  quote_decimals: int = 6, start_time: Optional[str] = None) -> dict[str, pd.DataFrame]:
    """Copies of ``trades``, ``liquidations`` and ``funding`` with the decoded columns added (the rest as is).

    ``markets``: per market index, ``symbol``, ``tick_size`` and ``lot_size`` (the run's meta).
    """
    start = pd.Timestamp(start_time, tz="UTC") if start_time else None
    q = quote.lower()
    unit = 10.0**quote_decimals
    out = dict(tables)

    t = tables["trades"].copy()
    _time(t, start)
    _symbol(t, markets)
    price, qty = t["price"].to_numpy(np.int64), t["qty"].to_numpy(np.int64)
    t[f"price_{q}"] = _scaled(t, price, markets, "tick_size")
    t["size_base"] = _scaled(t, qty, markets, "lot_size")
    t[f"notional_{q}"] = _notional(t, qty, price, markets, unit)
    t["side"] = pd.Categorical.from_codes(t["taker_side"].to_numpy(np.int64), SIDE_NAMES)
    if "trigger_id" in t:  # a run with trigger orders (abm.exchange.triggers): NaN on fills no trigger made
        none = t["trigger_id"].to_numpy(np.int64) == 0
        for c in ("trigger_price", "trigger_slippage"):
            v = _scaled(t, t[c].to_numpy(np.int64), markets, "tick_size")
            v[none] = np.nan
            t[f"{c}_{q}"] = v
    out["trades"] = t

    liq = tables["liquidations"].copy()
    _time(liq, start)
    _symbol(liq, markets)
    liq["mode_name"] = pd.Categorical.from_codes(liq["mode"].to_numpy(np.int64), MODE_NAMES)
    size, lprice = liq["size"].to_numpy(np.int64), liq["price"].to_numpy(np.int64)
    liq["size_base"] = _scaled(liq, size, markets, "lot_size")
    liq[f"price_{q}"] = _scaled(liq, lprice, markets, "tick_size")
    liq[f"mark_{q}"] = _scaled(liq, liq["mark"].to_numpy(np.int64), markets, "tick_size")
    liq[f"notional_{q}"] = _notional(liq, size, lprice, markets, unit)
    for c in ("equity_before", "equity_after", "bad_debt", "insurance_after"):
        liq[f"{c}_{q}"] = liq[c].to_numpy(np.int64) / unit
    out["liquidations"] = liq

    f = tables["funding"].copy()
    _time(f, start)
    _symbol(f, markets)
    f[f"price_{q}"] = _scaled(f, f["price"].to_numpy(np.int64), markets, "tick_size")
    for c in ("paid", "received", "rounding"):
        f[f"{c}_{q}"] = f[c].to_numpy(np.int64) / unit
    out["funding"] = f
    return out
