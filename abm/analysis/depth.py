"""Order-book resilience around a shock: how much resting depth vanished, and how fast it came back.

Why: in real cascades the book empties before and while liquidations hit it (1% depth fell 90–98%
within minutes on 2025-10-10), and how deep and how long that hole is decides how far forced selling
moves the price. These functions read only the per-step DataFrame (``model.steps_frame()`` or the
same table loaded from Parquet), so they need no model object.

Definitions (all on the step grid, ``time_s`` = end of each step):

- baseline: the median resting notional within the band (``depth_bid_<band>``, ``depth_ask_<band>``
  and their sum) over the ``baseline_window_s`` seconds before the shock, ``[start - window, start)``;
  with no shock, over the first window of the run ``[t0, t0 + window]``. If that window holds no rows
  the first row is the baseline (a shock at the very start). The median, not the mean, so one
  transient sweep of the book before the shock does not set the yardstick.
- after: the rows from the shock start on (no shock: the rows after the baseline window).
- drop: ``1 - min(after) / baseline``, clamped at 0 (more depth than before is "no drop"); ``None``
  when the baseline is 0 (nothing to lose). The total's minimum is the minimum of bid + ask, not the
  sum of the two sides' minima (they need not coincide).
- recovery: seconds from the (first) minimum to the first row at or after it with depth >=
  50% / 90% of the baseline; 0 when the minimum already is that high; ``None`` if never within the run.
- spread: ``max(spread_bps)`` over the whole run and after the shock, over the rows that have one.
  The metrics write NaN (missing) for the spread and the mid while a side of the book is empty, so a
  one-sided book shows as depth 0 and a gap in the spread, never as a spread of 0 or an endless one.
- basis: ``(mark - index) / index`` and ``(mid - index) / index`` in bps, max absolute value and the
  signed extremes over the run; rows with a missing (NaN) or non-positive price are left out.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd

SIDES = ("bid", "ask", "total")


def _col(name: str, market: Optional[str]) -> str:
    return name if market is None else f"{name}[{market}]"


def _f(x: Any) -> Optional[float]:
    """A plain float, or None for NaN / missing (so the result is JSON-serialisable)."""
    if x is None:
        return None
    x = float(x)
    return None if np.isnan(x) else x


def _side_metrics(t: np.ndarray, depth: np.ndarray, base_mask: np.ndarray, after_mask: np.ndarray,
                  recover_levels: tuple[float, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {"baseline": None, "min": None, "time_of_min_s": None, "drop": None}
    for lv in recover_levels:
        out[f"recover_{int(round(lv * 100))}_s"] = None
    base_vals = depth[base_mask]
    base_vals = base_vals[np.isfinite(base_vals)]
    if base_vals.size == 0:
        return out
    baseline = float(np.median(base_vals))
    out["baseline"] = baseline
    idx_after = np.flatnonzero(after_mask & np.isfinite(depth))
    if idx_after.size == 0:
        return out
    vals = depth[idx_after]
    j = int(np.argmin(vals))  # first occurrence of the minimum
    i_min = int(idx_after[j])
    lo = float(vals[j])
    out["min"] = lo
    out["time_of_min_s"] = float(t[i_min])
    if baseline > 0:
        out["drop"] = max(0.0, 1.0 - lo / baseline)
        later = idx_after[j:]
        for lv in recover_levels:
            hit = later[depth[later] >= lv * baseline]
            out[f"recover_{int(round(lv * 100))}_s"] = float(t[hit[0]] - t[i_min]) if hit.size else None
    return out


def _basis(steps: pd.DataFrame, price_col: str, index_col: str) -> dict[str, Optional[float]]:
    if price_col not in steps or index_col not in steps:
        return {"max_abs_bps": None, "min_bps": None, "max_bps": None}
    p = pd.to_numeric(steps[price_col], errors="coerce").to_numpy(float)
    ix = pd.to_numeric(steps[index_col], errors="coerce").to_numpy(float)
    ok = np.isfinite(p) & np.isfinite(ix) & (p > 0) & (ix > 0)
    if not ok.any():
        return {"max_abs_bps": None, "min_bps": None, "max_bps": None}
    b = (p[ok] - ix[ok]) / ix[ok] * 1e4
    return {"max_abs_bps": float(np.max(np.abs(b))), "min_bps": float(np.min(b)), "max_bps": float(np.max(b))}


def depth_metrics(steps: pd.DataFrame, shock_start_s: Optional[float], baseline_window_s: float = 60,
                  band: str = "1pct", market: Optional[str] = None,
                  recover_levels: tuple[float, ...] = (0.5, 0.9)) -> dict[str, Any]:
    """Depth baseline, worst drop and recovery per side (bid, ask, total), plus spread and basis extremes.

    ``steps`` is the per-step metrics table; ``band`` one of the recorded depth bands ("0.5pct",
    "1pct", "2pct"); ``market`` the symbol of a market other than the first (its columns carry a
    ``[SYMBOL]`` suffix). See the module docstring for the exact definitions. Returns a dict of plain
    floats / None: ``{"bid": {...}, "ask": {...}, "total": {...}, "spread_max_bps", "spread_max_after_bps",
    "basis_mark": {...}, "basis_mid": {...}, "shock_start_s", "baseline_window": (lo, hi)}``, each side
    with ``baseline, min, time_of_min_s, drop, recover_50_s, recover_90_s``.
    """
    bid_c, ask_c = _col(f"depth_bid_{band}", market), _col(f"depth_ask_{band}", market)
    for c in ("time_s", bid_c, ask_c):
        if c not in steps:
            raise KeyError(f"steps has no column {c!r}")
    if baseline_window_s <= 0:
        raise ValueError("baseline_window_s must be > 0")
    t = pd.to_numeric(steps["time_s"], errors="coerce").to_numpy(float)
    bid = pd.to_numeric(steps[bid_c], errors="coerce").to_numpy(float)
    ask = pd.to_numeric(steps[ask_c], errors="coerce").to_numpy(float)
    total = bid + ask
    n = len(t)
    if shock_start_s is None:
        t0 = float(np.nanmin(t)) if n else 0.0
        lo_w, hi_w = t0, t0 + baseline_window_s
        base_mask = (t >= lo_w) & (t <= hi_w)
        after_mask = t > hi_w
    else:
        lo_w, hi_w = float(shock_start_s) - baseline_window_s, float(shock_start_s)
        base_mask = (t >= lo_w) & (t < hi_w)
        after_mask = t >= hi_w
    if n and not base_mask.any():
        base_mask = np.zeros(n, bool)
        base_mask[0] = True
    out: dict[str, Any] = {}
    for name, series in zip(SIDES, (bid, ask, total)):
        out[name] = _side_metrics(t, series, base_mask, after_mask, recover_levels)
    sp_c = _col("spread_bps", market)
    if sp_c in steps and n:
        sp = pd.to_numeric(steps[sp_c], errors="coerce").to_numpy(float)
        out["spread_max_bps"] = _f(np.nanmax(sp)) if np.isfinite(sp).any() else None
        spa = sp[after_mask]
        out["spread_max_after_bps"] = _f(np.nanmax(spa)) if np.isfinite(spa).any() else None
    else:
        out["spread_max_bps"] = out["spread_max_after_bps"] = None
    out["basis_mark"] = _basis(steps, _col("mark", market), _col("index", market))
    out["basis_mid"] = _basis(steps, _col("mid", market), _col("index", market))
    out["shock_start_s"] = None if shock_start_s is None else float(shock_start_s)
    out["baseline_window"] = (lo_w, hi_w)
    return out


__all__ = ["depth_metrics"]
