"""The spot index: reproducible from a seed, statistically what each process claims, and strict about bad input.

Statistical checks use a tolerance of 4 standard errors (computed from theory where it is simple,
from the sample or from batch means where returns are dependent); seeds are fixed, so each check is
deterministic and the tolerance documents how surprising a failure would be.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest

from abm.errors import InvalidInput
from abm.prices import (
    DEFAULT_DT_US,
    GARCH,
    GBM,
    US_PER_YEAR,
    IndexPath,
    InvalidReplayData,
    JumpDiffusion,
    Move,
    Overlay,
    RegimeSwitching,
    Replay,
    Scripted,
    combine,
    correlated_paths,
    recover,
)

S = 1_000_000  # microseconds per second
DAY = 86_400 * S
HOUR = 3_600 * S


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def log_returns(p: IndexPath) -> np.ndarray:
    return np.diff(np.log(p.values))


def autocorr1(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x[:-1] * x[1:]).mean() / x.var())


def batch_se(x: np.ndarray, batches: int = 40) -> float:
    """Standard error of x.mean() from batch means: honest for dependent (clustered) series."""
    m = x[: len(x) // batches * batches].reshape(batches, -1).mean(axis=1)
    return float(m.std(ddof=1) / math.sqrt(batches))


STOCHASTIC = [
    GBM(100.0, 0.1, 0.8),
    JumpDiffusion(100.0, 0.0, 0.6, 500.0, -0.02, 0.03),
    GARCH.from_annual_vol(100.0, 0.8, 0.1, 0.85),
    RegimeSwitching(100.0, 0.0, 0.4, 1.6, 2_000.0, 20_000.0),
]


# ------------------------------------------------------------------------------------- IndexPath


def test_index_path_lookup_is_last_grid_point_at_or_before():
    p = IndexPath(np.array([1.0, 2.0, 3.0]), dt_us=10)
    assert p.times.tolist() == [0, 10, 20] and p.end_us == 20 and len(p) == 3
    assert [p.value_at(t) for t in (0, 9, 10, 19, 20)] == [1.0, 1.0, 2.0, 2.0, 3.0]
    with pytest.raises(InvalidInput, match="t_us"):
        p.value_at(21)
    with pytest.raises(InvalidInput, match="t_us"):
        p.value_at(-1)
    with pytest.raises(InvalidInput, match="t_us"):
        p.value_at(1.5)
    with pytest.raises(ValueError):
        p.values[0] = 5.0  # read-only: a shared path cannot be edited under another market's feet


@pytest.mark.parametrize("values, field", [([], "values"), ([1.0, -1.0], "values[1]"), ([1.0, np.nan], "values[1]")])
def test_index_path_rejects_bad_values(values, field):
    with pytest.raises(InvalidInput) as e:
        IndexPath(np.array(values))
    assert e.value.field == field


def test_grid_covers_the_duration():
    p = GBM(100.0).path(1_050_000, rng(), dt_us=100_000)  # 10.5 steps -> 11 steps, ends at 1.1 s
    assert len(p) == 12 and p.end_us == 1_100_000 and p.values[0] == 100.0


# ---------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("proc", STOCHASTIC, ids=lambda p: type(p).__name__)
def test_same_seed_same_path_different_seed_different(proc):
    a, b, c = proc.path(HOUR, rng(7)), proc.path(HOUR, rng(7)), proc.path(HOUR, rng(8))
    assert np.array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)


@pytest.mark.parametrize("proc", STOCHASTIC, ids=lambda p: type(p).__name__)
def test_each_process_consumes_only_its_own_generator(proc):
    np.random.seed(1)
    random.seed(1)
    legacy, stdlib = np.random.get_state()[1].copy(), random.getstate()
    g_other = rng(99)
    other_state = g_other.bit_generator.state
    alone = proc.path(HOUR, rng(3)).values
    # interleaving with another process on another generator changes nothing
    g1, g2 = rng(3), rng(4)
    STOCHASTIC[0].path(HOUR, g2)
    interleaved = proc.path(HOUR, g1).values
    assert np.array_equal(alone, interleaved)
    assert g_other.bit_generator.state == other_state
    assert np.array_equal(np.random.get_state()[1], legacy) and random.getstate() == stdlib


def test_processes_refuse_anything_but_a_generator():
    for bad in (None, 42, np.random.RandomState(0)):
        with pytest.raises(InvalidInput, match="rng"):
            GBM(100.0).path(HOUR, bad)


def test_deterministic_processes_draw_nothing():
    g = rng(5)
    state = g.bit_generator.state
    Scripted([Move(10, 5, -3)], s0=50.0).path(HOUR, g)
    assert g.bit_generator.state == state


# ------------------------------------------------------------------------------------------ GBM


def test_gbm_log_returns_match_theory():
    mu, sigma, dt = 0.5, 0.8, DAY
    n = 100_000
    r = log_returns(GBM(100.0, mu, sigma).path(n * dt, rng(11), dt_us=dt))
    h = dt / US_PER_YEAR
    mean, var = (mu - sigma**2 / 2) * h, sigma**2 * h
    assert abs(r.mean() - mean) < 4 * math.sqrt(var / n)
    assert abs(r.var(ddof=1) - var) < 4 * var * math.sqrt(2 / (n - 1))


def test_gbm_with_zero_vol_is_deterministic_growth():
    p = GBM(100.0, 0.2, 0.0).path(DAY, rng(), dt_us=HOUR)
    assert p.values[-1] == pytest.approx(100.0 * math.exp(0.2 * DAY / US_PER_YEAR), rel=1e-12)


# -------------------------------------------------------------------------------- jump-diffusion


def test_jump_diffusion_mean_and_variance_match_merton():
    mu, sigma, lam, m, s = 0.1, 0.3, 4.0, -0.1, 0.15
    proc = JumpDiffusion(100.0, mu, sigma, lam, m, s)
    step, steps, n = 30 * DAY, 12, 20_000
    T = steps * step / US_PER_YEAR
    g = rng(12)
    end = np.array([proc.path(steps * step, g, dt_us=step).values[-1] for _ in range(n)])
    assert abs(end.mean() - 100.0 * math.exp(mu * T)) < 4 * end.std(ddof=1) / math.sqrt(n)
    x = np.log(end / 100.0)
    dev2 = (x - x.mean()) ** 2
    assert abs(dev2.mean() - (sigma**2 * T + lam * T * (m**2 + s**2))) < 4 * dev2.std(ddof=1) / math.sqrt(n)


def test_jump_diffusion_without_jumps_is_gbm_on_the_same_shocks():
    z = rng(1).standard_normal(1000)
    a = JumpDiffusion(100.0, 0.1, 0.5).path_from_shocks(z, DEFAULT_DT_US, rng(2))
    b = GBM(100.0, 0.1, 0.5).path_from_shocks(z, DEFAULT_DT_US)
    assert np.allclose(a.values, b.values, rtol=1e-12)


# ---------------------------------------------------------------------------------------- GARCH


def test_garch_unconditional_variance_and_volatility_clustering():
    proc = GARCH(100.0, omega=2e-7, alpha=0.1, beta=0.8, step_us=S)
    r = log_returns(proc.path(300_000 * S, rng(13), dt_us=S))
    assert proc.unconditional_variance == pytest.approx(2e-6)
    r2 = (r - r.mean()) ** 2
    assert abs(r2.mean() - proc.unconditional_variance) < 4 * batch_se(r2)
    assert autocorr1(np.abs(r)) > 0.05  # clustering: big moves follow big moves
    assert abs(autocorr1(r)) < 4 / math.sqrt(len(r))  # ... but returns themselves are not predictable


def test_garch_from_annual_vol_and_step_guard():
    g = GARCH.from_annual_vol(100.0, 0.8, 0.05, 0.9, step_us=S)
    assert g.unconditional_variance == pytest.approx(0.64 * S / US_PER_YEAR)
    with pytest.raises(InvalidInput, match="dt_us") as e:
        g.path(HOUR, rng(), dt_us=DEFAULT_DT_US)
    assert "step_us" in str(e.value)


# --------------------------------------------------------------------------------- regime switching


def test_regime_switching_clusters_and_averages_the_two_variances():
    sc, ss, up, down = 0.3, 1.5, 4_380.0, 17_520.0  # calm ~2 h, stressed ~30 min on average
    proc = RegimeSwitching(100.0, 0.0, sc, ss, up, down)
    dt = 10 * S
    r = log_returns(proc.path(1_000_000 * dt, rng(14), dt_us=dt))
    h = dt / US_PER_YEAR
    pi = up / (up + down)
    r2 = (r - r.mean()) ** 2
    assert abs(r2.mean() - h * (pi * ss**2 + (1 - pi) * sc**2)) < 4 * batch_se(r2)
    assert autocorr1(np.abs(r)) > 0.05
    assert abs(autocorr1(r)) < 4 / math.sqrt(len(r))


def test_regime_switching_that_never_switches_is_gbm():
    z = rng(1).standard_normal(5000)
    calm = RegimeSwitching(100.0, 0.1, 0.4, 2.0, 0.0, 50.0).path_from_shocks(z, S, rng(2))
    stressed = RegimeSwitching(100.0, 0.1, 0.4, 2.0, 50.0, 0.0, start_stressed=True).path_from_shocks(z, S, rng(2))
    assert np.allclose(calm.values, GBM(100.0, 0.1, 0.4).path_from_shocks(z, S).values, rtol=1e-12)
    assert np.allclose(stressed.values, GBM(100.0, 0.1, 2.0).path_from_shocks(z, S).values, rtol=1e-12)


def test_regime_time_is_integrated_exactly():
    proc = RegimeSwitching(100.0, 0.0, 0.4, 2.0, 20_000.0, 20_000.0)
    st = proc.stressed_time(10_000, 10 * S, rng(3))
    d = np.diff(st)
    h = 10 * S / US_PER_YEAR
    assert st[0] == 0.0 and np.all(d >= -1e-18) and np.all(d <= h * (1 + 1e-9))
    assert 0.3 < st[-1] / (10_000 * h) < 0.7  # symmetric rates: about half the time stressed
    assert np.any((d > 1e-12) & (d < h - 1e-12))  # some steps straddle a switch


# --------------------------------------------------------------------------------------- scripted


def test_scripted_crash_and_half_recovery_land_exactly():
    drop = Move(start_s=1800, duration_s=240, pct=-12)
    back = recover(drop, 0.5, duration_s=1200)
    assert back.start_s == 2040 and back.pct == pytest.approx(100 * 0.06 / 0.88)
    p = Scripted([drop, back], s0=100.0).path(HOUR, None)
    at = lambda minutes: p.value_at(round(minutes * 60 * S))  # noqa: E731
    assert at(0) == 100.0 and at(29.99) == 100.0 and at(30) == 100.0
    assert at(32) == pytest.approx(100.0 * 0.88**0.5, rel=1e-12)  # linear in log-price
    assert at(34) == pytest.approx(88.0, rel=1e-12)
    assert at(44) == pytest.approx(88.0 * (94 / 88) ** 0.5, rel=1e-12)
    assert at(54) == pytest.approx(94.0, rel=1e-12) and at(60) == pytest.approx(94.0, rel=1e-12)
    assert np.all(np.diff(p.values[p.times <= 34 * 60 * S]) <= 0)


def test_scripted_accepts_plain_data_and_instant_jumps():
    s = Scripted([(0, 0, 10), {"start_s": 60, "duration_s": 0, "pct": -50}])
    f = s.factor_at([0, 59 * S, 60 * S])
    assert f == pytest.approx([1.1, 1.1, 0.55], rel=1e-15)


def test_combine_multiplies_base_by_script():
    base = GARCH.from_annual_vol(100.0, 0.8, 0.1, 0.85)
    script = Scripted([Move(600, 60, -20)])
    over = combine(base, script)
    assert isinstance(over, Overlay)
    b = base.path(HOUR, rng(21))
    o = over.path(HOUR, rng(21))
    assert np.array_equal(o.values, b.values * script.factor_at(b.times))
    i, j = 600 * S // DEFAULT_DT_US, 660 * S // DEFAULT_DT_US
    assert (o.values[j] / o.values[i]) / (b.values[j] / b.values[i]) == pytest.approx(0.8, rel=1e-12)
    assert np.array_equal(script.apply(b).values, o.values)


def test_scripted_and_combine_reject_bad_input():
    for kwargs, field in (
        ({"start_s": -1, "duration_s": 1, "pct": 1}, "Move.start_s"),
        ({"start_s": 1, "duration_s": -1, "pct": 1}, "Move.duration_s"),
        ({"start_s": 1, "duration_s": 1, "pct": -100}, "Move.pct"),
        ({"start_s": 1, "duration_s": 1, "pct": float("nan")}, "Move.pct"),
    ):
        with pytest.raises(InvalidInput) as e:
            Move(**kwargs)
        assert e.value.field == field
    with pytest.raises(InvalidInput, match=r"moves\[1\]"):
        Scripted([Move(1, 1, 1), "crash"])
    with pytest.raises(InvalidInput, match="scripted"):
        combine(GBM(100.0), [Move(1, 1, 1)])
    with pytest.raises(InvalidInput, match="base"):
        combine(42, Scripted([]))


# ------------------------------------------------------------------------------------------ replay


ROWS = pd.DataFrame({"time": [0.0, 0.5, 1.2, 3.0, 10.0], "price": [100.0, 101.5, 99.0, 98.25, 105.0]})


def check_replay(rep: Replay) -> None:
    p = rep.path(10 * S, None)
    for t, px in zip(ROWS.time, ROWS.price):
        assert p.value_at(round(t * S)) == px
    assert p.value_at(2_900_000) == 99.0  # between rows: the last price at or before
    with pytest.raises(InvalidInput, match="duration_us"):
        rep.path(11 * S, None)


def test_replay_csv_parquet_frame_and_iso_timestamps(tmp_path):
    ROWS.to_csv(tmp_path / "a.csv", index=False)
    ROWS.to_parquet(tmp_path / "a.parquet", index=False)
    check_replay(Replay(tmp_path / "a.csv"))
    check_replay(Replay(str(tmp_path / "a.parquet")))
    check_replay(Replay(ROWS))
    iso = pd.DataFrame({"ts": pd.Timestamp("2025-10-10T21:15:00Z") + pd.to_timedelta(ROWS.time, unit="s"), "px": ROWS.price})
    iso.assign(ts=iso.ts.map(lambda t: t.isoformat())).to_csv(tmp_path / "iso.csv", index=False)
    iso.to_parquet(tmp_path / "iso.parquet", index=False)
    check_replay(Replay(tmp_path / "iso.csv", time_col="ts", price_col="px"))
    check_replay(Replay(tmp_path / "iso.parquet", time_col="ts", price_col="px"))


def test_replay_can_carry_a_scripted_shock(tmp_path):
    over = combine(Replay(ROWS), Scripted([Move(1, 0, -10)]))
    p = over.path(10 * S, None)
    assert p.value_at(500_000) == 101.5 and p.value_at(1_200_000) == pytest.approx(99.0 * 0.9)


BAD = [
    ("time,price\n0,100\n,101\n2,102\n", "time", 1, "missing timestamp"),
    ("time,price\n0,100\n2,101\n1,102\n", "time", 2, "strictly increasing"),
    ("time,price\n0,100\n1,101\n1,102\n", "time", 2, "duplicate timestamp"),
    ("time,price\n0,100\n1,0\n2,102\n", "price", 1, "> 0"),
    ("time,price\n0,100\n1,-5\n2,102\n", "price", 1, "> 0"),
    ("time,price\n0,100\n1,101\n2,NaN\n", "price", 2, "NaN"),
    ("time,price\n0,100\n1,abc\n", "price", 1, "must be a number"),
    ("time,price\n0,100\n1,101\nsoon,102\n", "time", 2, "must be a number"),
    ("time,price\n2025-01-01T00:00:00Z,100\nyesterday,101\n", "time", 1, "ISO-8601"),
]


@pytest.mark.parametrize("text, column, row, why", BAD, ids=[b[3] + f"@{b[2]}" for b in BAD])
def test_bad_replay_rows_are_named(tmp_path, text, column, row, why):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(InvalidReplayData) as e:
        Replay(f)
    assert e.value.field == column and e.value.row == row
    assert why in str(e.value) and f"row {row} (line {row + 2} of the file)" in str(e.value)


def test_bad_replay_rows_in_parquet(tmp_path):
    pd.DataFrame({"time": [0.0, 1.0, 1.0], "price": [1.0, 2.0, 3.0]}).to_parquet(tmp_path / "d.parquet")
    with pytest.raises(InvalidReplayData, match="duplicate timestamp") as e:
        Replay(tmp_path / "d.parquet")
    assert e.value.row == 2 and "line" not in str(e.value)
    pd.DataFrame({"time": [0.0, 1.0], "price": [1.0, np.nan]}).to_parquet(tmp_path / "n.parquet")
    with pytest.raises(InvalidReplayData, match="NaN") as e:
        Replay(tmp_path / "n.parquet")
    assert (e.value.field, e.value.row) == ("price", 1)


def test_bad_replay_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("time,price\n")
    (tmp_path / "cols.csv").write_text("t,price\n0,1\n")
    (tmp_path / "x.txt").write_text("time,price\n0,1\n")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    cases = [
        ("empty.csv", {}, "file", "no data rows"),
        ("header.csv", {}, "file", "no data rows"),
        ("cols.csv", {}, "time_col", "['t', 'price']"),
        ("cols.csv", {"time_col": "t", "price_col": "close"}, "price_col", "must name a column"),
        ("x.txt", {}, "source", ".csv"),
        ("junk.parquet", {}, "file", "Parquet"),
        ("missing.csv", {}, "source", "existing"),
    ]
    for name, kwargs, field, why in cases:
        with pytest.raises(InvalidReplayData) as e:
            Replay(tmp_path / name, **kwargs)
        assert e.value.field == field and why in str(e.value), name


# -------------------------------------------------------------------------------- correlated paths


def test_correlated_paths_hit_the_target_correlation():
    corr = np.array([[1.0, 0.7, -0.3], [0.7, 1.0, 0.2], [-0.3, 0.2, 1.0]])
    procs = [GBM(100.0, 0.0, 0.8), GBM(3_000.0, 0.1, 1.0), JumpDiffusion(20.0, 0.0, 1.2)]
    n = 100_000
    paths = correlated_paths(procs, corr, n * DEFAULT_DT_US, DEFAULT_DT_US, rng(31))
    assert [p.values[0] for p in paths] == [100.0, 3_000.0, 20.0]
    sample = np.corrcoef(np.array([log_returns(p) for p in paths]))
    for i in range(3):
        for j in range(i + 1, 3):
            assert abs(sample[i, j] - corr[i, j]) < 4 * (1 - corr[i, j] ** 2) / math.sqrt(n) + 1e-3
    again = correlated_paths(procs, corr, n * DEFAULT_DT_US, DEFAULT_DT_US, rng(31))
    assert all(np.array_equal(a.values, b.values) for a, b in zip(paths, again))


def test_perfect_correlation_is_allowed_and_exact():
    a, b = correlated_paths([GBM(100.0), GBM(100.0)], [[1, 1], [1, 1]], HOUR, DEFAULT_DT_US, rng(2))
    assert np.allclose(a.values, b.values, rtol=1e-12)
    a, b = correlated_paths([GBM(100.0, 0, 0.5), GBM(100.0, 0, 0.5)], [[1, -1], [-1, 1]], HOUR, DEFAULT_DT_US, rng(2))
    drift = -0.5 * 0.5**2 * DEFAULT_DT_US / US_PER_YEAR
    assert np.allclose(log_returns(a) - drift, -(log_returns(b) - drift), atol=1e-12)


def test_correlated_garch_and_regimes_run():
    procs = [GARCH.from_annual_vol(100.0, 0.8, 0.1, 0.85), RegimeSwitching(50.0)]
    a, b = correlated_paths(procs, [[1, 0.9], [0.9, 1]], HOUR, DEFAULT_DT_US, rng(4))
    assert 0.6 < np.corrcoef(log_returns(a), log_returns(b))[0, 1] < 0.95


@pytest.mark.parametrize(
    "corr, field, why",
    [
        ([[1, 0.5], [0.4, 1]], "corr_matrix[0][1]", "symmetric"),
        ([[1, 0.5], [0.5, 0.9]], "corr_matrix[1][1]", "unit diagonal"),
        ([[1, 1.2], [1.2, 1]], "corr_matrix[0][1]", "[-1, 1]"),
        ([[1, np.nan], [np.nan, 1]], "corr_matrix[0][1]", "[-1, 1]"),
        ([[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]], "corr_matrix", "positive semi-definite"),
        ([[1, 0.5, 0.5], [0.5, 1, 0.5]], "corr_matrix", "square"),
        ([[1.0]], "corr_matrix", "2x2"),
        ("identity", "corr_matrix", "square matrix of numbers"),
    ],
)
def test_bad_correlation_matrices_are_rejected(corr, field, why):
    with pytest.raises(InvalidInput) as e:
        k = 3 if why == "positive semi-definite" else 2
        correlated_paths([GBM(100.0)] * k, corr, HOUR, DEFAULT_DT_US, rng())
    assert e.value.field == field and why in str(e.value)


def test_correlated_paths_reject_processes_without_shocks():
    with pytest.raises(InvalidInput, match=r"processes\[1\]"):
        correlated_paths([GBM(100.0), Scripted([])], np.eye(2), HOUR, DEFAULT_DT_US, rng())
    with pytest.raises(InvalidInput, match="processes"):
        correlated_paths([], np.eye(0), HOUR, DEFAULT_DT_US, rng())
    with pytest.raises(InvalidInput, match="dt_us"):
        correlated_paths([GARCH.from_annual_vol(1.0, 0.5, 0.1, 0.8, step_us=S)], [[1]], HOUR, DEFAULT_DT_US, rng())


# ---------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: GBM(0.0), "GBM.s0"),
        (lambda: GBM(100.0, sigma=-0.1), "GBM.sigma"),
        (lambda: GBM(100.0, mu=float("inf")), "GBM.mu"),
        (lambda: GBM("100"), "GBM.s0"),
        (lambda: JumpDiffusion(100.0, jump_rate=-1), "JumpDiffusion.jump_rate"),
        (lambda: JumpDiffusion(100.0, jump_std=-1), "JumpDiffusion.jump_std"),
        (lambda: GARCH(100.0, 0.0, 0.1, 0.8), "GARCH.omega"),
        (lambda: GARCH(100.0, 1e-6, -0.1, 0.8), "GARCH.alpha"),
        (lambda: GARCH(100.0, 1e-6, 0.2, 0.8), "GARCH.alpha"),
        (lambda: GARCH(100.0, 1e-6, 0.1, 0.8, step_us=0), "GARCH.step_us"),
        (lambda: GARCH(100.0, 1e-6, 0.1, 0.8, sigma2_0=0.0), "GARCH.sigma2_0"),
        (lambda: RegimeSwitching(100.0, sigma_stressed=-1), "RegimeSwitching.sigma_stressed"),
        (lambda: RegimeSwitching(100.0, to_calm_rate=-1), "RegimeSwitching.to_calm_rate"),
        (lambda: GBM(100.0).path(0, rng()), "duration_us"),
        (lambda: GBM(100.0).path(1.5, rng()), "duration_us"),
        (lambda: GBM(100.0).path(HOUR, rng(), dt_us=0), "dt_us"),
        (lambda: GBM(100.0).path(10**9 * DAY, rng()), "duration_us"),
    ],
)
def test_bad_parameters_name_the_field(make, field):
    with pytest.raises(InvalidInput) as e:
        make()
    assert e.value.field == field
    assert field in str(e.value)
