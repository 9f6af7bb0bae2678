"""Index paths are the same bits on every machine: checked against a computation with no vector unit in it.

NumPy's float64 exp/log and its BLAS pick kernels by CPU (AVX-512 or not), and those differ from the C
library in the last bit of some values; the paths are built so that they do not depend on that. Each test
rebuilds a path with scalar Python arithmetic only (``math`` and plain loops) and asks for equality, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from abm.prices import portable
from abm.prices.correlation import correlated_paths
from abm.prices.processes import GBM
from abm.prices.scripted import Move, Scripted


def test_a_gbm_path_is_the_scalar_recursion_bit_for_bit():
    proc = GBM(s0=65_000.0, mu=0.1, sigma=0.9)
    rng_values = np.random.default_rng(7).standard_normal(20_000)
    path = proc.path_from_shocks(rng_values, 100_000)
    h = 100_000 / (365 * 86_400 * 1_000_000)
    drift, vol = (0.1 - 0.5 * 0.9 ** 2) * h, 0.9 * math.sqrt(h)
    log_p, want = 0.0, [65_000.0]
    for z in rng_values.tolist():
        log_p += drift + vol * z
        want.append(65_000.0 * math.exp(log_p))
    assert path.values.tolist() == want


def test_a_scripted_slide_is_the_scalar_factor_bit_for_bit():
    s = Scripted([Move(start_s=10, duration_s=30, pct=-6.0)])
    times = np.arange(0, 50_000_000, 100_000)
    got = s.factor_at(times).tolist()
    g = 1 - 0.06
    want = [g if t >= 40e6 else math.exp(math.log(g) * (t - 10e6) / 30e6) if t > 10e6 else 1.0 for t in times.tolist()]
    assert got == want


def test_correlated_shocks_are_sums_in_index_order():
    z = np.random.default_rng(3).standard_normal((5_000, 3))
    low = np.array([[1.0, 0.0, 0.0], [0.3, 0.95, 0.0], [0.1, -0.2, 0.97]])
    got = portable.times_transpose(z, low)
    for j in range(3):
        want = [0.0 + sum_terms(row, low[j]) for row in z.tolist()]
        assert got[:, j].tolist() == want


def sum_terms(row: list[float], weights: np.ndarray) -> float:
    s = 0.0
    for a, w in zip(row, weights.tolist()):
        if w != 0.0:
            s += a * w
    return s


def test_correlated_paths_repeat_from_one_seed_and_follow_the_factor():
    procs = [GBM(s0=100.0, sigma=0.5), GBM(s0=10.0, sigma=0.8)]
    corr = [[1.0, 0.8], [0.8, 1.0]]
    a = correlated_paths(procs, corr, 60_000_000, 100_000, np.random.default_rng(11))
    b = correlated_paths(procs, corr, 60_000_000, 100_000, np.random.default_rng(11))
    assert [p.values.tolist() for p in a] == [p.values.tolist() for p in b]
    r = [np.diff(np.log(p.values)) for p in a]
    assert 0.7 < float(np.corrcoef(r[0], r[1])[0, 1]) < 0.9  # 600 returns: the sample correlation's s.e. is ~0.015


def test_an_exploding_path_is_refused_by_name_not_by_an_overflow():
    import pytest

    from abm.errors import InvalidInput

    assert portable.exp(np.array([0.0, 710.0, -800.0])).tolist() == [1.0, math.inf, 0.0]
    with pytest.raises(InvalidInput, match=r"values\[\d+\]: must be a finite price > 0, got inf"):
        GBM(s0=1.0, mu=100_000.0, sigma=0.1).path(30 * 86_400 * 1_000_000, np.random.default_rng(1), 1_000_000_000)
