"""The external "true" spot index: the path every price process produces, and processes by name.

Why a pre-generated grid: agents and the oracle ask for the index at arbitrary event times; drawing
the whole path up front, vectorised, from the one ``numpy.random.Generator`` it is handed makes a run
reproducible from its seed alone (whatever order agents ask in) and makes every look-up O(1).

Units: time is integer microseconds of simulation time, prices are floats in quote currency (the
index is an outside reference, not a venue price; the oracle rounds it to ticks). ``mu``, ``sigma``
and every rate are annualised over a 365-day year, because crypto trades around the clock.
Percentages are percent, as their ``_pct`` names say (``-12`` is -12%), like ``_bps`` and ``_us``.

Every process has ``path(duration_us, rng, dt_us=100_000) -> IndexPath`` (``IndexProcess``). This
module holds the path, that interface, the input checks they share and ``INDEX_PROCESSES``, which
builds a market's process by name (a scenario's ``process``). The processes live beside it:
stochastic ones in ``abm.prices.processes``, scripted moves in ``abm.prices.scripted``, recorded
prices in ``abm.prices.replay``, correlated markets in ``abm.prices.correlation``; each registers
its own names (importing ``abm.prices`` imports them all, so the registry is complete).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

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


# ------------------------------------------------------------------------------- processes by name


def _builds_process(piece: object) -> bool:
    return callable(piece) and not isinstance(piece, type)


# A factory takes a market's config (``abm.model.MarketSection``: s0, sigma, jump_rate, jump_mean, jump_std)
# and returns a process. The modules that define the processes register them (``abm.prices.processes``: gbm,
# jump, garch, regime; ``abm.prices.scripted``: flat). "replay" is not here: its path is the price file, not a process.
INDEX_PROCESSES: Registry[Callable[[Any], IndexProcess]] = Registry(
    "index process", "markets.process", "a function of a market config returning an index process", _builds_process)
