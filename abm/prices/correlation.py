"""Correlated markets: Brownian paths whose shocks share a correlation matrix.

Only the normal shocks are correlated (through a Cholesky factor that also accepts singular matrices,
for perfectly correlated markets); jumps and regime switches stay independent across markets.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from abm.errors import InvalidInput
from abm.prices import portable
from abm.prices.index import IndexPath, _generator, _grid, _need
from abm.prices.processes import GARCH, GBM, JumpDiffusion, RegimeSwitching

_CORRELATABLE = (GBM, JumpDiffusion, GARCH, RegimeSwitching)


def _psd_cholesky(c: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Lower-triangular L with L L^T = c, also for singular PSD c (a zero pivot gets a zero column),
    which numpy's Cholesky refuses but perfectly correlated markets need."""
    k = c.shape[0]
    low = np.zeros_like(c)
    for j in range(k):
        d = c[j, j] - portable.dot(low[j, :j], low[j, :j])
        low[j, j] = math.sqrt(max(d, 0.0))
        for i in range(j + 1, k):
            s = c[i, j] - portable.dot(low[i, :j], low[j, :j])
            low[i, j] = s / low[j, j] if low[j, j] > tol else 0.0
    return low


def check_correlation(corr_matrix: Any, k: Optional[int] = None) -> np.ndarray:
    """The matrix as floats if it is a correlation matrix (of size ``k`` if given); raises naming the flaw."""
    try:
        c = np.array(corr_matrix, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInput("corr_matrix", corr_matrix, "must be a square matrix of numbers") from None
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise InvalidInput("corr_matrix", f"shape {c.shape}", "must be a non-empty square matrix")
    if k is not None and c.shape[0] != k:
        raise InvalidInput("corr_matrix", f"shape {c.shape}", f"must be {k}x{k}, one row per process")
    for i, j in zip(*np.nonzero(~np.isfinite(c) | (np.abs(c) > 1))):
        raise InvalidInput(f"corr_matrix[{i}][{j}]", float(c[i, j]), "must be a number in [-1, 1]")
    for i, j in zip(*np.nonzero(np.abs(c - c.T) > 1e-12)):
        why = f"must equal corr_matrix[{j}][{i}] = {c[j, i]} (symmetric)"
        raise InvalidInput(f"corr_matrix[{i}][{j}]", float(c[i, j]), why)
    for i in np.flatnonzero(np.abs(np.diag(c) - 1) > 1e-12):
        raise InvalidInput(f"corr_matrix[{i}][{i}]", float(c[i, i]), "must be 1 (unit diagonal)")
    lam = float(np.linalg.eigvalsh(c).min())
    _need(lam >= -1e-10, "corr_matrix", c.tolist(), f"must be positive semi-definite (smallest eigenvalue is {lam:.3g})")
    return c


def correlated_paths(processes: Sequence[Any], corr_matrix: Any, duration_us: int, dt_us: int,
                     rng: np.random.Generator) -> list[IndexPath]:
    """One path per process whose Brownian shocks have correlation ``corr_matrix`` (via a Cholesky factor).

    Jumps and regime switches stay independent across markets; for GARCH and regime processes the
    return correlation is therefore at most the shock correlation. Draws all shocks first, then each
    process's other randomness in order, all from ``rng``. Scripts ride on afterwards via ``Scripted.apply``.
    """
    if isinstance(processes, (str, bytes)) or not isinstance(processes, Sequence) or not processes:
        raise InvalidInput("processes", processes, "must be a non-empty list of processes")
    for i, p in enumerate(processes):
        if not isinstance(p, _CORRELATABLE):
            raise InvalidInput(f"processes[{i}]", p, "must be GBM, JumpDiffusion, GARCH or RegimeSwitching")
    low = _psd_cholesky(check_correlation(corr_matrix, len(processes)))
    dt, n = _grid(duration_us, dt_us)
    for i, p in enumerate(processes):
        if isinstance(p, GARCH):
            why = f"must equal processes[{i}].step_us={p.step_us} (a GARCH's parameters are per step)"
            _need(dt == p.step_us, "dt_us", dt_us, why)
    g = _generator(rng)
    z = portable.times_transpose(g.standard_normal((n, len(processes))), low)
    return [p.path_from_shocks(np.ascontiguousarray(z[:, j]), dt, g) for j, p in enumerate(processes)]
