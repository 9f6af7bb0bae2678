"""Stochastic index processes: GBM, Merton jump-diffusion, GARCH(1,1) and regime-switching volatility.

The four Brownian processes draw their normal shocks first and everything else after, from the one
generator they are handed; they also take the shocks from outside (``path_from_shocks``), which is
how ``abm.prices.correlation.correlated_paths`` correlates markets. Their named builders for a
scenario's market (``gbm``, ``jump``, ``garch``, ``regime`` in ``INDEX_PROCESSES``) are at the end,
with the constants they fix.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from abm.prices import portable
from abm.prices.index import (
    DEFAULT_DT_US,
    INDEX_PROCESSES,
    US_PER_YEAR,
    IndexPath,
    _generator,
    _grid,
    _int,
    _need,
    _real,
)


def _shocks(shocks: object, dt_us: object) -> tuple[np.ndarray, int]:
    z = np.asarray(shocks, dtype=float)
    _need(z.ndim == 1 and z.size > 0, "shocks", f"shape {z.shape}", "must be a non-empty 1-D array")
    _need(bool(np.all(np.isfinite(z))), "shocks", "non-finite values", "must all be finite")
    dt = _int("dt_us", dt_us)
    _need(dt > 0, "dt_us", dt_us, "must be > 0")
    return z, dt


def _from_log_returns(s0: float, r: np.ndarray, dt_us: int) -> IndexPath:
    logp = np.empty(r.size + 1)
    logp[0] = 0.0
    np.cumsum(r, out=logp[1:])
    return IndexPath(s0 * portable.exp(logp), dt_us)


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


# ------------------------------------------------------------------------------- processes by name

# The named defaults a market's process is built with (scenarios give s0, sigma and the jump terms only).
GARCH_ALPHA = 0.08  # weight of the last squared shock in the next step's variance
GARCH_BETA = 0.9  # persistence of the variance; alpha + beta = 0.98: shocks fade over ~50 steps
REGIME_STRESS_MULTIPLIER = 4  # the stressed regime's volatility as a multiple of the market's sigma


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
