"""Stylized facts of simulated prices: fat tails and volatility clustering, per horizon.

Why: a market simulator is only credible for stress studies if its ordinary price series look like
real ones: returns with fat tails (positive excess kurtosis, a Hill tail index of roughly 3 for
liquid assets), almost no linear autocorrelation of returns, and clearly positive autocorrelation of
absolute returns (volatility clusters). These are checked on the per-step table (``steps_frame()``
or the same table loaded from Parquet) with no model object.

Method, per horizon h:

- prices: the column given (default the mid); NaN (the metrics' "no mid" while a side of the book is
  empty), zero and negative prices are treated as missing;
- returns are non-overlapping log returns over k = round(h / step) rows, where step is the median
  spacing of ``time_s``: ``r_i = log p[(i+1)k] - log p[ik]``. Overlapping returns would manufacture
  autocorrelation ((k-1)/k at lag 1), so they are not used. A return that touches a missing price is
  itself missing (dropped, never bridged with a stale price), and it stays in place so that lag-1
  pairs are only formed from neighbours on the grid;
- excess kurtosis: the unbiased sample estimator (``pandas.Series.kurt``, 0 for a Gaussian), needs 4
  returns;
- Hill tail index of |r| over the top 5% (k = floor(0.05 n) >= 2 order statistics):
  ``alpha = 1 / mean(log(x_(i) / x_(k+1)), i = 1..k)``; NaN if the threshold x_(k+1) is 0 (a price
  that mostly does not move at that horizon has no measurable tail);
- autocorrelation at lag 1 of r and of |r|: ``sum (x_t - m)(x_{t+1} - m) / sum (x_t - m)^2`` over the
  available values (m their mean), pairs only where both are present; needs 3 pairs and a nonzero
  variance.

Anything that cannot be computed (a horizon shorter than a step, too few returns) is NaN; the
function does not raise on short or empty series.

Reproducibility: logarithms are Python's ``math.log`` and every sum is ``math.fsum`` (exactly
rounded), never numpy's vectorised log or its pairwise sums, whose last bits can depend on the numpy
build and the CPU; the same steps give the same facts to the bit everywhere.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

COLUMNS = ("horizon_s", "lag_rows", "n", "std", "excess_kurtosis", "hill_alpha", "acf_r_1", "acf_abs_r_1")


def _fsum(x: np.ndarray) -> float:
    return math.fsum(x.tolist())


def _log(x: np.ndarray) -> np.ndarray:
    return np.array([math.log(v) for v in x.tolist()], dtype=float)


def _mean(x: np.ndarray) -> float:
    return _fsum(x) / x.size


def excess_kurtosis(x: np.ndarray) -> float:
    """The unbiased sample excess kurtosis (pandas' estimator, 0 for a Gaussian); NaN below 4 values."""
    x = np.asarray(x, float)
    n = x.size
    if n < 4:
        return float("nan")
    d = x - _mean(x)
    m2 = _fsum(d * d)
    if m2 == 0:
        return 0.0
    m4 = _fsum((d * d) * (d * d))
    return (n * (n + 1) * (n - 1) * m4) / ((n - 2) * (n - 3) * m2 * m2) - 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))


def hill_alpha(x: np.ndarray, tail: float = 0.05) -> float:
    """Hill estimator of the tail index of the positive values' distribution, over the top ``tail`` share."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    n = x.size
    k = int(np.floor(tail * n))
    if k < 2 or k >= n:
        return float("nan")
    xs = np.sort(x)[::-1]
    thr = xs[k]
    if not thr > 0:
        return float("nan")
    h = _mean(_log(xs[:k] / thr))
    return 1.0 / h if h > 0 else float("nan")


def acf1(x: np.ndarray) -> float:
    """Lag-1 autocorrelation of a series that may hold NaN gaps (pairs only where both values exist)."""
    x = np.asarray(x, float)
    ok = np.isfinite(x)
    if ok.sum() < 4:
        return float("nan")
    m = _mean(x[ok])
    d = x - m
    var = _fsum(d[ok] * d[ok])
    pair = ok[:-1] & ok[1:]
    if pair.sum() < 3 or var <= 0:
        return float("nan")
    return _fsum(d[:-1][pair] * d[1:][pair]) / var


def _returns(price: np.ndarray, k: int) -> np.ndarray:
    p = price[::k]
    ok = np.isfinite(p) & (p > 0)
    lp = np.full(p.size, np.nan)
    lp[ok] = _log(p[ok])
    return np.diff(lp)


def stylized_facts(steps: pd.DataFrame, column: str = "mid", horizons_s: Sequence[float] = (1, 10, 60),
                   tail: float = 0.05) -> pd.DataFrame:
    """Excess kurtosis, Hill tail index of |r|, lag-1 autocorrelation of r and |r|, one row per horizon.

    Columns: ``horizon_s, lag_rows`` (k, rows per return), ``n`` (returns present), ``std``,
    ``excess_kurtosis, hill_alpha, acf_r_1, acf_abs_r_1``; index = horizon. See the module docstring.
    """
    if column not in steps:
        raise KeyError(f"steps has no column {column!r}")
    price = pd.to_numeric(steps[column], errors="coerce").to_numpy(float)
    if "time_s" in steps and len(steps) > 1:
        t = pd.to_numeric(steps["time_s"], errors="coerce").to_numpy(float)
        dt = np.diff(t)
        dt = dt[np.isfinite(dt) & (dt > 0)]
        step = float(np.median(dt)) if dt.size else float("nan")
    else:
        step = 1.0
    rows = []
    for h in horizons_s:
        k = int(round(h / step)) if np.isfinite(step) and step > 0 else 0
        row = {"horizon_s": float(h), "lag_rows": k, "n": 0, "std": np.nan, "excess_kurtosis": np.nan,
               "hill_alpha": np.nan, "acf_r_1": np.nan, "acf_abs_r_1": np.nan}
        if k >= 1 and price.size > k:
            r = _returns(price, k)
            present = r[np.isfinite(r)]
            row["n"] = int(present.size)
            if present.size >= 2:
                d = present - _mean(present)
                row["std"] = math.sqrt(_fsum(d * d) / (present.size - 1))
            row["excess_kurtosis"] = excess_kurtosis(present)
            row["hill_alpha"] = hill_alpha(np.abs(present), tail)
            row["acf_r_1"] = acf1(r)
            row["acf_abs_r_1"] = acf1(np.abs(r))
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    out.index = pd.Index(out["horizon_s"].to_numpy(), name="horizon")
    return out


__all__ = ["stylized_facts", "hill_alpha", "acf1", "excess_kurtosis"]
