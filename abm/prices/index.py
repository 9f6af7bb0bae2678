"""The external "true" spot index: seeded price processes behind one small interface.

Why a pre-generated grid: agents and the oracle ask for the index at arbitrary event times; drawing
the whole path up front, vectorised, from the one ``numpy.random.Generator`` it is handed makes a run
reproducible from its seed alone (whatever order agents ask in) and makes every look-up O(1).

Units: time is integer microseconds of simulation time, prices are floats in quote currency (the
index is an outside reference, not a venue price; the oracle rounds it to ticks). ``mu``, ``sigma``
and every rate are annualised over a 365-day year, because crypto trades around the clock.
Percentages are percent, as their ``_pct`` names say (``-12`` is -12%), like ``_bps`` and ``_us``.

Every process has ``path(duration_us, rng, dt_us=100_000) -> IndexPath``. The Brownian ones
(``GBM``, ``JumpDiffusion``, ``GARCH``, ``RegimeSwitching``) also take their normal shocks from
outside (``path_from_shocks``), which is how ``correlated_paths`` correlates markets.
``INDEX_PROCESSES`` builds a market's process by name (a scenario's ``process``).
"""

from __future__ import annotations

import itertools
import math
import operator
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence, Union

import numpy as np

from abm.errors import InvalidInput
from abm.registry import Registry

DEFAULT_DT_US = 100_000
US_PER_YEAR = 365 * 86_400 * 1_000_000
PATH_MARGIN_US = 60_000_000  # a path runs this long past the run's end, so every delayed oracle read has a value
MAX_GRID_POINTS = 50_000_000  # ~400 MB of float64: beyond this a run is a config mistake, not a plan

# --------------------------------------------------------------------------------------- validation


def _real(name: str, value: object) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInput(name, value, "must be a real number")
    f = float(value)
    if not math.isfinite(f):
        raise InvalidInput(name, value, "must be finite")
    return f


def _int(name: str, value: object) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise InvalidInput(name, value, "must be an integer number of microseconds")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidInput(name, value, "must be an integer number of microseconds") from None


def _need(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise InvalidInput(name, value, allowed)


def _grid(duration_us: object, dt_us: object) -> tuple[int, int]:
    """(dt_us, n_steps): the grid covers [0, duration] with the last point at or after the duration."""
    d, dt = _int("duration_us", duration_us), _int("dt_us", dt_us)
    _need(d > 0, "duration_us", duration_us, "must be > 0")
    _need(dt > 0, "dt_us", dt_us, "must be > 0")
    n = -(-d // dt)
    _need(n + 1 <= MAX_GRID_POINTS, "duration_us", d, f"needs {n + 1} grid points at dt_us={dt}; at most {MAX_GRID_POINTS}")
    return dt, n


def _generator(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise InvalidInput("rng", rng, "must be a numpy.random.Generator, e.g. numpy.random.default_rng(seed)")
    return rng


def _shocks(shocks: object, dt_us: object) -> tuple[np.ndarray, int]:
    z = np.asarray(shocks, dtype=float)
    _need(z.ndim == 1 and z.size > 0, "shocks", f"shape {z.shape}", "must be a non-empty 1-D array")
    _need(bool(np.all(np.isfinite(z))), "shocks", "non-finite values", "must all be finite")
    dt = _int("dt_us", dt_us)
    _need(dt > 0, "dt_us", dt_us, "must be > 0")
    return z, dt


# ----------------------------------------------------------------------------------------- the path


@dataclass(frozen=True, slots=True, eq=False)
class IndexPath:
    """A price path on the grid ``t = k * dt_us``, k = 0..n-1; read-only so a shared path cannot drift."""

    values: np.ndarray
    dt_us: int = DEFAULT_DT_US
    times: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        dt = _int("dt_us", self.dt_us)
        _need(dt > 0, "dt_us", self.dt_us, "must be > 0")
        v = np.array(self.values, dtype=float)  # a copy: the caller's array stays theirs
        _need(v.ndim == 1 and v.size > 0, "values", f"shape {v.shape}", "must be a non-empty 1-D array")
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            raise InvalidInput(f"values[{bad[0]}]", float(v[bad[0]]), "must be a finite price > 0")
        v.flags.writeable = False
        t = np.arange(v.size, dtype=np.int64) * dt
        t.flags.writeable = False
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "dt_us", dt)
        object.__setattr__(self, "times", t)

    @property
    def end_us(self) -> int:
        return (self.values.size - 1) * self.dt_us

    def __len__(self) -> int:
        return int(self.values.size)

    def value_at(self, t_us: int) -> float:
        """The last grid value at or before ``t_us``; outside [0, end_us] raises rather than extrapolate."""
        t = t_us if type(t_us) is int else _int("t_us", t_us)
        if t < 0 or t > self.end_us:
            raise InvalidInput("t_us", t_us, f"must be within the path's span [0, {self.end_us}]")
        return float(self.values[t // self.dt_us])


class IndexProcess(Protocol):
    """The one interface every process (and ``combine``'s overlay) offers."""

    def path(self, duration_us: int, rng: Optional[np.random.Generator], dt_us: int = DEFAULT_DT_US) -> IndexPath: ...


def _from_log_returns(s0: float, r: np.ndarray, dt_us: int) -> IndexPath:
    logp = np.empty(r.size + 1)
    logp[0] = 0.0
    np.cumsum(r, out=logp[1:])
    return IndexPath(s0 * np.exp(logp), dt_us)


class _Brownian:
    """Mixin: ``path`` draws the shocks first, then whatever else the process needs, from one generator."""

    __slots__ = ()

    def path(self, duration_us: int, rng: Optional[np.random.Generator], dt_us: int = DEFAULT_DT_US) -> IndexPath:
        dt, n = _grid(duration_us, dt_us)
        g = _generator(rng)
        return self.path_from_shocks(g.standard_normal(n), dt, g)  # type: ignore[attr-defined,no-any-return]


# ------------------------------------------------------------------------------------ the processes


@dataclass(frozen=True, slots=True)
class GBM(_Brownian):
    """Geometric Brownian motion, stepped exactly in log space so no grid size biases the moments."""

    s0: float
    mu: float = 0.0
    sigma: float = 0.5

    def __post_init__(self) -> None:
        s0, mu, sigma = _real("GBM.s0", self.s0), _real("GBM.mu", self.mu), _real("GBM.sigma", self.sigma)
        _need(s0 > 0, "GBM.s0", self.s0, "must be > 0")
        _need(sigma >= 0, "GBM.sigma", self.sigma, "must be >= 0 (annualised volatility)")
        object.__setattr__(self, "s0", s0)
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "sigma", sigma)

    def path_from_shocks(self, shocks: np.ndarray, dt_us: int, rng: Optional[np.random.Generator] = None) -> IndexPath:
        z, dt = _shocks(shocks, dt_us)
        h = dt / US_PER_YEAR
        return _from_log_returns(self.s0, (self.mu - 0.5 * self.sigma**2) * h + self.sigma * math.sqrt(h) * z, dt)


@dataclass(frozen=True, slots=True)
class JumpDiffusion(_Brownian):
    """Merton jump-diffusion; the drift is compensated for the jumps so E[S_t] = s0 * exp(mu t) still holds.

    Jumps are log-normal, ``log(1 + J) ~ N(jump_mean, jump_std**2)``, arriving at ``jump_rate`` per year.
    """

    s0: float
    mu: float = 0.0
    sigma: float = 0.5
    jump_rate: float = 0.0
    jump_mean: float = 0.0
    jump_std: float = 0.0

    def __post_init__(self) -> None:
        for name in ("s0", "mu", "sigma", "jump_rate", "jump_mean", "jump_std"):
            object.__setattr__(self, name, _real(f"JumpDiffusion.{name}", getattr(self, name)))
        _need(self.s0 > 0, "JumpDiffusion.s0", self.s0, "must be > 0")
        _need(self.sigma >= 0, "JumpDiffusion.sigma", self.sigma, "must be >= 0 (annualised volatility)")
        _need(self.jump_rate >= 0, "JumpDiffusion.jump_rate", self.jump_rate, "must be >= 0 (jumps per year)")
        _need(self.jump_std >= 0, "JumpDiffusion.jump_std", self.jump_std, "must be >= 0")

    def path_from_shocks(self, shocks: np.ndarray, dt_us: int, rng: Optional[np.random.Generator] = None) -> IndexPath:
        z, dt = _shocks(shocks, dt_us)
        g = _generator(rng)
        h = dt / US_PER_YEAR
        counts = g.poisson(self.jump_rate * h, size=z.size)
        jumps = counts * self.jump_mean + self.jump_std * np.sqrt(counts) * g.standard_normal(z.size)
        kappa = math.expm1(self.jump_mean + 0.5 * self.jump_std**2)  # E[J]: the compensator
        drift = (self.mu - 0.5 * self.sigma**2 - self.jump_rate * kappa) * h
        return _from_log_returns(self.s0, drift + self.sigma * math.sqrt(h) * z + jumps, dt)


@dataclass(frozen=True, slots=True)
class GARCH(_Brownian):
    """GARCH(1,1) on per-step log returns: r = mu*h - s2/2 + sqrt(s2) z, s2' = omega + alpha r_eps^2 + beta s2.

    ``omega``, ``alpha`` and ``beta`` are per grid step of ``step_us``, so ``path`` refuses any other
    ``dt_us`` rather than silently change the process's meaning; ``from_annual_vol`` picks ``omega``
    for a target long-run volatility. The recursion starts at the unconditional variance unless
    ``sigma2_0`` says otherwise; ``-s2/2`` keeps E[S'/S] = exp(mu h) like the other processes.
    """

    s0: float
    omega: float
    alpha: float
    beta: float
    mu: float = 0.0
    step_us: int = DEFAULT_DT_US
    sigma2_0: Optional[float] = None

    def __post_init__(self) -> None:
        for name in ("s0", "omega", "alpha", "beta", "mu"):
            object.__setattr__(self, name, _real(f"GARCH.{name}", getattr(self, name)))
        _need(self.s0 > 0, "GARCH.s0", self.s0, "must be > 0")
        _need(self.omega > 0, "GARCH.omega", self.omega, "must be > 0 (per-step variance)")
        _need(self.alpha >= 0, "GARCH.alpha", self.alpha, "must be >= 0")
        _need(self.beta >= 0, "GARCH.beta", self.beta, "must be >= 0")
        _need(self.alpha + self.beta < 1, "GARCH.alpha", self.alpha,
              f"alpha + beta must be < 1 for a stationary variance (beta is {self.beta})")
        step = _int("GARCH.step_us", self.step_us)
        _need(step > 0, "GARCH.step_us", self.step_us, "must be > 0")
        object.__setattr__(self, "step_us", step)
        if self.sigma2_0 is not None:
            s2 = _real("GARCH.sigma2_0", self.sigma2_0)
            _need(s2 > 0, "GARCH.sigma2_0", self.sigma2_0, "must be > 0 or None (start at the unconditional variance)")
            object.__setattr__(self, "sigma2_0", s2)

    @property
    def unconditional_variance(self) -> float:
        return self.omega / (1.0 - self.alpha - self.beta)

    @classmethod
    def from_annual_vol(cls, s0: float, vol: float, alpha: float, beta: float, mu: float = 0.0,
                        step_us: int = DEFAULT_DT_US) -> "GARCH":
        """The GARCH whose long-run volatility is ``vol`` per year, so configs can speak in annual terms."""
        v = _real("vol", vol)
        _need(v > 0, "vol", vol, "must be > 0 (annualised volatility)")
        a, b, step = _real("GARCH.alpha", alpha), _real("GARCH.beta", beta), _int("GARCH.step_us", step_us)
        _need(step > 0, "GARCH.step_us", step_us, "must be > 0")
        return cls(s0, v * v * step / US_PER_YEAR * (1.0 - a - b), a, b, mu, step)

    def path(self, duration_us: int, rng: Optional[np.random.Generator], dt_us: int = DEFAULT_DT_US) -> IndexPath:
        _need(_int("dt_us", dt_us) == self.step_us, "dt_us", dt_us,
              f"must equal GARCH.step_us={self.step_us}: omega, alpha and beta are per step of that size")
        return _Brownian.path(self, duration_us, rng, dt_us)

    def path_from_shocks(self, shocks: np.ndarray, dt_us: int, rng: Optional[np.random.Generator] = None) -> IndexPath:
        z, dt = _shocks(shocks, dt_us)
        _need(dt == self.step_us, "dt_us", dt_us, f"must equal GARCH.step_us={self.step_us}")
        s2_0 = self.unconditional_variance if self.sigma2_0 is None else self.sigma2_0
        a = (self.alpha * z[:-1] ** 2 + self.beta).tolist()
        omega = self.omega
        # Sequential by nature; accumulate runs the loop in C around one float multiply-add per step.
        s2 = np.fromiter(itertools.accumulate(a, lambda s, ai: omega + ai * s, initial=s2_0), float, z.size)
        r = self.mu * dt / US_PER_YEAR - 0.5 * s2 + np.sqrt(s2) * z
        return _from_log_returns(self.s0, r, dt)


@dataclass(frozen=True, slots=True)
class RegimeSwitching(_Brownian):
    """Log-normal returns whose volatility switches between a calm and a stressed regime.

    Regimes follow a continuous-time two-state Markov chain (``to_stressed_rate``, ``to_calm_rate``
    per year); the variance of each step is integrated exactly over the regimes it spans, so a
    switch mid-step is neither lost nor rounded to the grid.
    """

    s0: float
    mu: float = 0.0
    sigma_calm: float = 0.4
    sigma_stressed: float = 1.5
    to_stressed_rate: float = 365.0
    to_calm_rate: float = 8760.0
    start_stressed: bool = False

    def __post_init__(self) -> None:
        for name in ("s0", "mu", "sigma_calm", "sigma_stressed", "to_stressed_rate", "to_calm_rate"):
            object.__setattr__(self, name, _real(f"RegimeSwitching.{name}", getattr(self, name)))
        _need(self.s0 > 0, "RegimeSwitching.s0", self.s0, "must be > 0")
        for name in ("sigma_calm", "sigma_stressed"):
            _need(getattr(self, name) >= 0, f"RegimeSwitching.{name}", getattr(self, name), "must be >= 0 (annualised)")
        for name in ("to_stressed_rate", "to_calm_rate"):
            rate = getattr(self, name)
            _need(rate >= 0, f"RegimeSwitching.{name}", rate, "must be >= 0 (switches per year)")
        _need(isinstance(self.start_stressed, (bool, np.bool_)), "RegimeSwitching.start_stressed", self.start_stressed,
              "must be True or False")

    def stressed_time(self, n_steps: int, dt_us: int, rng: np.random.Generator) -> np.ndarray:
        """Years spent stressed up to each grid time (length n_steps + 1); the regime path in one array."""
        end = n_steps * dt_us / US_PER_YEAR
        leave = (self.to_stressed_rate, self.to_calm_rate)  # rate of leaving calm, of leaving stressed
        bounds, t = [0.0], 0.0
        first = int(bool(self.start_stressed))
        rates = np.array([leave[(first + i) % 2] for i in range(64)])  # even length: each batch ends as it began
        while t < end:
            with np.errstate(divide="ignore"):
                cum = t + np.cumsum(rng.standard_exponential(64) / rates)
            bounds.extend(cum.tolist())
            t = cum[-1]
        b = np.array(bounds)
        k = int(np.searchsorted(b, end, side="left"))  # b[:k] < end
        b = np.append(b[:k], end)
        stressed = (np.arange(b.size - 1) + first) % 2 == 1
        at_bounds = np.concatenate(([0.0], np.cumsum(np.diff(b) * stressed)))
        return np.interp(np.arange(n_steps + 1) * (dt_us / US_PER_YEAR), b, at_bounds)

    def path_from_shocks(self, shocks: np.ndarray, dt_us: int, rng: Optional[np.random.Generator] = None) -> IndexPath:
        z, dt = _shocks(shocks, dt_us)
        g = _generator(rng)
        h = dt / US_PER_YEAR
        ds = np.clip(np.diff(self.stressed_time(z.size, dt, g)), 0.0, h)
        var = self.sigma_calm**2 * (h - ds) + self.sigma_stressed**2 * ds
        return _from_log_returns(self.s0, self.mu * h - 0.5 * var + np.sqrt(var) * z, dt)


# -------------------------------------------------------------------------------- scripted overlays


@dataclass(frozen=True, slots=True)
class Move:
    """One scripted move: ``pct`` percent relative to the level at ``start_s``, linear in log-price over
    ``duration_s`` (0 = a jump). Percent, so ``Move(1800, 240, -12)`` is -12% over 4 minutes at 30 min."""

    start_s: float
    duration_s: float
    pct: float

    def __post_init__(self) -> None:
        for name in ("start_s", "duration_s", "pct"):
            object.__setattr__(self, name, _real(f"Move.{name}", getattr(self, name)))
        _need(self.start_s >= 0, "Move.start_s", self.start_s, "must be >= 0 (seconds from the start)")
        _need(self.duration_s >= 0, "Move.duration_s", self.duration_s, "must be >= 0 seconds")
        _need(self.pct > -100, "Move.pct", self.pct, "must be > -100 (percent: -12 means -12%)")

    @property
    def start_us(self) -> int:
        return round(self.start_s * 1_000_000)

    @property
    def end_us(self) -> int:
        return round((self.start_s + self.duration_s) * 1_000_000)


def recover(move: Move, fraction: float, duration_s: float, start_s: Optional[float] = None) -> Move:
    """The move that wins back ``fraction`` of ``move`` in price terms (0.5 after -12% lands at -6%).

    Starts when ``move`` ends unless ``start_s`` says otherwise. Exact on a flat base; on a
    stochastic base it is exact for the overlay factor, i.e. relative to wherever the base has gone.
    """
    if not isinstance(move, Move):
        raise InvalidInput("move", move, "must be a Move")
    f = _real("fraction", fraction)
    p = move.pct / 100.0
    start = move.start_s + move.duration_s if start_s is None else start_s
    return Move(start, duration_s, -100.0 * p * f / (1.0 + p))


def _as_move(i: int, m: object) -> Move:
    if isinstance(m, Move):
        return m
    if isinstance(m, Mapping):
        try:
            return Move(**m)
        except TypeError:
            raise InvalidInput(f"moves[{i}]", m, "a mapping needs exactly the keys start_s, duration_s, pct") from None
    if isinstance(m, Sequence) and not isinstance(m, str) and len(m) == 3:
        return Move(*m)
    raise InvalidInput(f"moves[{i}]", m, "must be a Move, a (start_s, duration_s, pct) triple or a mapping of those")


@dataclass(frozen=True, slots=True)
class Scripted:
    """Scripted moves as data; a multiplicative overlay (``apply``, ``combine``) or, alone, a path from ``s0``.

    Overlapping moves compose multiplicatively. ``s0`` is only used when the script is a path on its own.
    """

    moves: Sequence[Move]
    s0: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.moves, (str, bytes, Mapping)) or not isinstance(self.moves, Sequence):
            raise InvalidInput("moves", self.moves, "must be a list of Move")
        object.__setattr__(self, "moves", tuple(_as_move(i, m) for i, m in enumerate(self.moves)))
        s0 = _real("Scripted.s0", self.s0)
        _need(s0 > 0, "Scripted.s0", self.s0, "must be > 0")
        object.__setattr__(self, "s0", s0)

    def factor_at(self, times_us: Any) -> np.ndarray:
        """The overlay factor at each time; completed moves multiply by exactly (1 + pct/100)."""
        t = np.asarray(times_us, dtype=float)
        mult = np.ones_like(t)
        logf = np.zeros_like(t)
        for m in self.moves:
            g = 1.0 + m.pct / 100.0
            s, e = m.start_us, m.end_us
            done = t >= e
            mult[done] *= g
            if e > s:
                live = (t > s) & ~done
                logf[live] += math.log(g) * (t[live] - s) / (e - s)
        return mult * np.exp(logf)

    def apply(self, path: IndexPath) -> IndexPath:
        """Ride the script on an existing path (e.g. one of ``correlated_paths``)."""
        if not isinstance(path, IndexPath):
            raise InvalidInput("path", path, "must be an IndexPath")
        return IndexPath(path.values * self.factor_at(path.times), path.dt_us)

    def path(self, duration_us: int, rng: Optional[np.random.Generator] = None, dt_us: int = DEFAULT_DT_US) -> IndexPath:
        dt, n = _grid(duration_us, dt_us)
        return IndexPath(self.s0 * self.factor_at(np.arange(n + 1, dtype=np.int64) * dt), dt)


@dataclass(frozen=True, slots=True)
class Overlay:
    """A base process with a script riding on it (see ``combine``)."""

    base: IndexProcess
    scripted: Scripted

    def path(self, duration_us: int, rng: Optional[np.random.Generator] = None, dt_us: int = DEFAULT_DT_US) -> IndexPath:
        return self.scripted.apply(self.base.path(duration_us, rng, dt_us))


def combine(base: IndexProcess, scripted: Scripted) -> Overlay:
    """Multiply ``base``'s path by the script's factor, so a scripted shock can ride on any process."""
    if not callable(getattr(base, "path", None)):
        raise InvalidInput("base", base, "must be an index process (GBM, JumpDiffusion, GARCH, RegimeSwitching, Replay, ...)")
    if not isinstance(scripted, Scripted):
        raise InvalidInput("scripted", scripted, "must be a Scripted")
    return Overlay(base, scripted)


# ------------------------------------------------------------------------------------------ replay


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


# ------------------------------------------------------------------------------ correlated markets

_CORRELATABLE = (GBM, JumpDiffusion, GARCH, RegimeSwitching)


def _psd_cholesky(c: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Lower-triangular L with L L^T = c, also for singular PSD c (a zero pivot gets a zero column),
    which numpy's Cholesky refuses but perfectly correlated markets need."""
    k = c.shape[0]
    low = np.zeros_like(c)
    for j in range(k):
        d = c[j, j] - low[j, :j] @ low[j, :j]
        low[j, j] = math.sqrt(max(d, 0.0))
        for i in range(j + 1, k):
            s = c[i, j] - low[i, :j] @ low[j, :j]
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
    z = g.standard_normal((n, len(processes))) @ low.T
    return [p.path_from_shocks(np.ascontiguousarray(z[:, j]), dt, g) for j, p in enumerate(processes)]


# ------------------------------------------------------------------------------- processes by name

# The named defaults a market's process is built with (scenarios give s0, sigma and the jump terms only).
GARCH_ALPHA = 0.08  # weight of the last squared shock in the next step's variance
GARCH_BETA = 0.9  # persistence of the variance; alpha + beta = 0.98: shocks fade over ~50 steps
REGIME_STRESS_MULTIPLIER = 4  # the stressed regime's volatility as a multiple of the market's sigma


def _builds_process(piece: object) -> bool:
    return callable(piece) and not isinstance(piece, type)


# A factory takes a market's config (``abm.model.MarketSection``: s0, sigma, jump_rate, jump_mean, jump_std)
# and returns a process. "replay" is not here: its path is the price file, not a process.
INDEX_PROCESSES: Registry[Callable[[Any], IndexProcess]] = Registry(
    "index process", "markets.process", "a function of a market config returning an index process", _builds_process)


@INDEX_PROCESSES.register("gbm")
def _gbm(mc: Any) -> GBM:
    return GBM(mc.s0, 0.0, mc.sigma)


@INDEX_PROCESSES.register("jump")
def _jump(mc: Any) -> JumpDiffusion:
    return JumpDiffusion(mc.s0, 0.0, mc.sigma, mc.jump_rate, mc.jump_mean, mc.jump_std)


@INDEX_PROCESSES.register("garch")
def _garch(mc: Any) -> GARCH:
    return GARCH.from_annual_vol(mc.s0, mc.sigma, GARCH_ALPHA, GARCH_BETA)


@INDEX_PROCESSES.register("regime")
def _regime(mc: Any) -> RegimeSwitching:
    return RegimeSwitching(mc.s0, 0.0, mc.sigma, mc.sigma * REGIME_STRESS_MULTIPLIER)


@INDEX_PROCESSES.register("flat")
def _flat(mc: Any) -> Scripted:
    return Scripted([], s0=mc.s0)
