"""Statistics of a position over seeds, each with a 95 % interval: what the position report prints.

Why these intervals: a probability from n seeds gets the Wilson score interval (honest at 0 and 1,
where the normal one collapses: 0 liquidations in 200 seeds still allows ~1.9 %); quantiles, VaR and
expected shortfall get a percentile bootstrap over seeds with a fixed generator, so the same rows
always print the same bounds.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP = 1000


def wilson(k: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion k / n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + Z95 ** 2 / n
    mid = (p + Z95 ** 2 / (2 * n)) / den
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def var(x: np.ndarray, level: float) -> float:
    """Value at risk: the ``level`` quantile of the loss (losses positive)."""
    return float(np.quantile(x, level)) if len(x) else float("nan")


def expected_shortfall(x: np.ndarray, level: float) -> float:
    """The mean loss at or beyond the ``level`` VaR."""
    if not len(x):
        return float("nan")
    v = var(x, level)
    return float(x[x >= v].mean())


def bootstrap(x: np.ndarray, stat: Callable[[np.ndarray], float], seed: int = 0) -> tuple[float, float]:
    """A 95 % percentile-bootstrap interval of ``stat`` over the rows of ``x``."""
    if len(x) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = np.array([stat(x[rng.integers(0, len(x), len(x))]) for _ in range(BOOTSTRAP)])
    lo, hi = np.nanquantile(draws, [0.025, 0.975])
    return float(lo), float(hi)


def with_interval(x: np.ndarray, stat: Callable[[np.ndarray], float]) -> tuple[float, float, float]:
    """(value, low, high) of ``stat`` on ``x`` with its bootstrap interval."""
    lo, hi = bootstrap(x, stat)
    return stat(x) if len(x) else float("nan"), lo, hi


def finite(values: object) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return a[np.isfinite(a)]


def mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def quantile(level: float) -> Callable[[np.ndarray], float]:
    return lambda x: float(np.quantile(x, level)) if len(x) else float("nan")


def maximum(x: np.ndarray) -> Optional[float]:
    return float(x.max()) if len(x) else float("nan")
