"""Cont, R. (2001), "Empirical properties of asset returns: stylized facts and statistical issues", Quantitative
Finance 1(2), 223-236, section 2 (facts 1 absence of autocorrelations, 2 heavy tails, 5 aggregational
Gaussianity, 8 volatility clustering), checked on the full crowd of the ``baseline`` scenario (noise flow, market
makers, arbitrageurs, leveraged traders) whose only input is a Gaussian value process (``gbm``): any fat tail or
clustering in the traded mid is made by the agents. The statistics are ``abm.analysis.stylized``'s.

Tolerances are the sampling errors of the statistics under the null of i.i.d. Gaussian returns: excess kurtosis
has standard error sqrt(24/n), an autocorrelation 1/sqrt(n) (Cont's own significance bands); a fact is
"present" beyond 3 of them and "absent" within 3.

What the crowd reproduces (measured, 7,200 s, seeds 1 / 2 / 3; band 3/sqrt(n) = 0.035): the input's 1 s
excess kurtosis is ~0 (-0.03 on seed 1); the mid's is 47.9 / 17.2 / 26.4 at 1 s, 7.7 / 4.0 / 9.6 at 10 s and
2.8 / 3.9 / 3.8 at 60 s (heavy tails that fade with aggregation); the autocorrelation of 1 s returns is
within the band at lags 120, 300 and 600 s on every seed; |r| is autocorrelated 0.23-0.35 at lag 1 s and
0.11-0.22 at 10 s (clustering), and still 0.04-0.05 at 300 s on seeds 2 and 3.

What it misses: at short lags the returns are autocorrelated (seed 1: +0.19 at lag 2 s, +0.04 at 60 s, above
the band; 10 s returns +0.47 at lag 1: the mid follows the oracle in steps), where real markets are
uncorrelated beyond minutes; and clustering is gone by 10 minutes (|r| autocorrelation at 600 s 0.001 /
0.026 / -0.002), not decaying slowly as real returns' does (significant over days): the ``slow decay``
tests are strict xfails.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pytest

from abm.analysis.stylized import acf1, excess_kurtosis, stylized_facts
from abm.model import MarketModel
from abm.scenarios import load_scenario
from tests.validation.figures import figure_dir, page, save

Z = 3.0
HORIZONS_S = (1, 10, 60)
FAST = (1, 1_200.0)  # seed, seconds
SLOW = ((1, 7_200.0), (2, 7_200.0), (3, 7_200.0))


@functools.lru_cache(maxsize=None)
def steps(seed: int, duration_s: float) -> pd.DataFrame:
    m = MarketModel(load_scenario("baseline"), **{"run.duration_s": duration_s, "run.seed": seed})
    m.run()
    return m.steps_frame()


def returns(df: pd.DataFrame, column: str = "mid") -> np.ndarray:
    p = pd.to_numeric(df[column], errors="coerce").to_numpy(float)
    r = np.diff(np.log(p))
    return r[np.isfinite(r)]


def acf(x: np.ndarray, lag: int) -> float:
    """Autocorrelation at ``lag`` by the same estimator as ``acf1`` (on the series shifted so lag 1 is ``lag``)."""
    if lag == 1:
        return acf1(x)
    d = x - x.mean()
    return math.fsum((d[:-lag] * d[lag:]).tolist()) / math.fsum((d * d).tolist())


def _figure(df: pd.DataFrame, name: str) -> None:
    if figure_dir() is None:
        return
    r = returns(df)
    band = Z / math.sqrt(r.size)
    facts = stylized_facts(df, horizons_s=(1, 5, 10, 30, 60, 300))
    fig, axes = page(3)
    axes[0].plot(facts.index, facts["excess_kurtosis"], "o-", label="mid")
    axes[0].plot(facts.index, stylized_facts(df, column="index", horizons_s=tuple(facts.index))["excess_kurtosis"],
                 "s--", label="index (Gaussian input)")
    axes[0].set(xscale="log", xlabel="horizon (s)", ylabel="excess kurtosis", title="heavy tails, aggregation")
    axes[0].legend(fontsize=8)
    lags = np.arange(1, 301)
    axes[1].plot(lags, [acf(r, k) for k in lags], label="r")
    axes[1].plot(lags, [acf(np.abs(r), k) for k in lags], label="|r|")
    axes[1].axhspan(-band, band, color="0.85", label="3/sqrt(n)")
    axes[1].set(xscale="log", xlabel="lag (s)", title="autocorrelation of 1 s mid returns")
    axes[1].legend(fontsize=8)
    axes[2].plot(df["time_s"], df["mid"], lw=0.6, label="mid")
    axes[2].plot(df["time_s"], df["index"], lw=0.6, label="index")
    axes[2].set(xlabel="s", title="baseline crowd (Cont 2001 facts)")
    axes[2].legend(fontsize=8)
    save(fig, name)


def check_heavy_tails(seed: int, duration_s: float) -> None:
    df = steps(seed, duration_s)
    _figure(df, f"stylized_facts_seed{seed}")
    r_in = returns(df, "index")
    assert abs(excess_kurtosis(r_in)) <= Z * math.sqrt(24 / r_in.size), "the input is not Gaussian: the test means nothing"
    facts = stylized_facts(df, horizons_s=HORIZONS_S)
    k = facts["excess_kurtosis"].to_numpy()
    n = facts["n"].to_numpy()
    assert k[0] > Z * math.sqrt(24 / n[0]), f"1 s excess kurtosis {k[0]:.2f}: no heavy tail"
    assert k[0] > k[1] > k[2], f"excess kurtosis by horizon {dict(zip(HORIZONS_S, k.round(2)))}: does not fall with aggregation"


def check_no_linear_autocorrelation_beyond_two_minutes(seed: int, duration_s: float) -> None:
    r = returns(steps(seed, duration_s))
    band = Z / math.sqrt(r.size)
    got = {lag: acf(r, lag) for lag in (120, 300, 600)}
    assert all(abs(v) <= band for v in got.values()), f"autocorrelation of 1 s returns {got}, band {band:.3f}"


def check_volatility_clustering(seed: int, duration_s: float) -> None:
    a = np.abs(returns(steps(seed, duration_s)))
    band = Z / math.sqrt(a.size)
    got = {lag: acf(a, lag) for lag in (1, 2, 5, 10)}
    assert all(v > band for v in got.values()), f"autocorrelation of |r| {got}, band {band:.3f}"


def check_slow_decay(seed: int, duration_s: float) -> None:
    a = np.abs(returns(steps(seed, duration_s)))
    band = Z / math.sqrt(a.size)
    got = acf(a, 600)
    assert got > band, f"autocorrelation of |r| at 600 s {got:.3f}, band {band:.3f}"


SLOW_DECAY_MISS = ("clustering is gone by 10 minutes: |r| autocorrelation at 600 s 0.001 / 0.026 / -0.002 on seeds "
                   "1-3 (band 0.035), where Cont's decays slowly, significant over days")


def test_heavy_tails_from_gaussian_input() -> None:
    check_heavy_tails(*FAST)


def test_no_linear_autocorrelation_beyond_two_minutes() -> None:
    check_no_linear_autocorrelation_beyond_two_minutes(*FAST)


def test_volatility_clustering() -> None:
    check_volatility_clustering(*FAST)


@pytest.mark.xfail(strict=True, reason=SLOW_DECAY_MISS)
def test_volatility_clustering_decays_slowly() -> None:
    check_slow_decay(*FAST)


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "duration_s"), SLOW)
def test_stylized_facts_long(seed: int, duration_s: float) -> None:
    check_heavy_tails(seed, duration_s)
    check_no_linear_autocorrelation_beyond_two_minutes(seed, duration_s)
    check_volatility_clustering(seed, duration_s)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=SLOW_DECAY_MISS)
@pytest.mark.parametrize(("seed", "duration_s"), SLOW)
def test_volatility_clustering_decays_slowly_long(seed: int, duration_s: float) -> None:
    check_slow_decay(seed, duration_s)
