"""Scripted moves: shocks as data (``Move``), a multiplicative overlay on any path, or a path of their own.

Why an overlay: a stress scenario is "this market falls 12% over four minutes at 30 min" on top of
whatever the market would otherwise do, so a script multiplies a base path (``Scripted.apply``,
``combine``) rather than replacing it; alone it is a deterministic path from ``s0`` (``flat`` in
``INDEX_PROCESSES``: a market with no randomness but its shocks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from abm.errors import InvalidInput
from abm.prices import portable
from abm.prices.index import DEFAULT_DT_US, INDEX_PROCESSES, IndexPath, IndexProcess, _grid, _need, _real


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
        return mult * portable.exp(logf)

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


@INDEX_PROCESSES.register("flat")
def _flat(mc: Any) -> Scripted:
    return Scripted([], s0=mc.s0)
