"""External perp prices: the same contract on other venues, the third input of Hyperliquid's mark.

Why: the mark is the median of an oracle-anchored piece, the venue's own book, and the median of the
same perp's price on external venues (shared/reference/venue-mechanics.md). Without the third leg a
two-input mark either averages a crashed book with a lagging oracle (``two_inputs = "mean"``) or
follows the book's own EMA (``"book_ema"``); with it, fresh prices from outside decide which of the
two the mark stays with, so an empty book on this venue alone cannot drag the mark away from the
world, and a lagging oracle cannot hold it up when the world has moved.

What an external perp follows (a decision; the simulated second perp venue is not built): a price
path of the world, read *without* the oracle's delay, because another venue's perp trades now:

- ``follows = "value"`` (the default): the market's drawn path. With ``index = "exogenous"`` that is
  the index itself (the world's spot price, which the oracle reads only after its delay); with
  ``index = "venues"`` it is the latent value that the exogenous index sources follow. An external
  perp is arbitraged against its own venue's spot, which this venue's flow does not touch.
- ``follows = "index"``: the index the oracle reads (with ``index = "venues"`` the one the simulated
  spot books make, so selling on them reaches the external perps too; with an exogenous index it is
  the same path as ``"value"``).

On that path it trades at ``lag_s`` behind (0: now), at a constant ``basis_bps`` premium (a perp trades
rich or cheap to spot by its funding), with lognormal ``noise_bps`` redrawn every ``interval_s`` from
its own stream (``stream(seed, "external-perp", symbol, name)``), and is quoted in this market's integer
ticks (rounded half to even, as the oracle). Before ``lag_s`` has passed it shows the path's start (the
world before the run was at ``s0``).

Determinism: the ``k``-th noise cell (``t // interval_us == k``) always takes the ``k``-th draw of the
source's stream, whenever and however often it is read, so the mark cadence never changes its prices.

The sources are combined by the weighted median of ``abm.prices.index_rules`` (equal weights: the plain
median, the reference's rule; assumption: a study may weight venues as the oracle weights spot venues).
The result is exact: a whole tick, or a ``Fraction`` half-way between two when the weight splits evenly.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Optional, Sequence, Union

import numpy as np

from abm.errors import InvalidInput, InvalidPrice
from abm.prices.index_rules import check_weights, weighted_median


def _int(field: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise InvalidInput(field, v, "must be an integer")
    return v


def _bps(field: str, v: Any, lo: float, hi: float, lo_open: bool) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or not (lo < v if lo_open else lo <= v) or not v < hi:
        raise InvalidInput(field, v, f"must be a number in {'(' if lo_open else '['}{lo:g}, {hi:g}) basis points")
    return float(v)


class ExternalPerp:
    """One external venue's perp, quoted in this market's ticks (see the module doc for what it follows)."""

    __slots__ = ("name", "weight", "lag_us", "interval_us", "_path", "_factor", "_noise", "_rng", "_tick", "_cell",
                 "_z", "value")

    def __init__(self, name: str, path: Any, tick_size: Any, weight: int = 1, basis_bps: float = 0.0,
                 noise_bps: float = 0.0, lag_us: int = 0, interval_us: int = 1_000_000,
                 rng: Optional[np.random.Generator] = None) -> None:
        """``path``: what it follows, read as ``path.value_at(t_us)`` (an ``IndexPath`` or a ``LiveIndex``)."""
        if not isinstance(name, str) or not name:
            raise InvalidInput("external_perps.name", name, "must be a non-empty string")
        at = f"external_perps.{name}"
        if not callable(getattr(path, "value_at", None)):
            raise InvalidInput(f"{at}.path", path, "must be a price path with value_at(t_us) (IndexPath, LiveIndex)")
        self.name = name
        self.weight = check_weights([weight], f"{at}.weight")[0]
        basis = _bps(f"{at}.basis_bps", basis_bps, -10_000, 10_000, lo_open=True)
        self._noise = _bps(f"{at}.noise_bps", noise_bps, 0, 10_000, lo_open=False)
        self.lag_us = _int(f"{at}.lag_us", lag_us)
        if self.lag_us < 0:
            raise InvalidInput(f"{at}.lag_us", lag_us, "must be >= 0 microseconds")
        self.interval_us = _int(f"{at}.interval_us", interval_us)
        if self.interval_us <= 0:
            raise InvalidInput(f"{at}.interval_us", interval_us, "must be > 0 microseconds")
        if self._noise and not isinstance(rng, np.random.Generator):
            raise InvalidInput(f"{at}.rng", rng, "must be a numpy.random.Generator when noise_bps > 0")
        try:
            tick = Fraction(str(tick_size))
        except (TypeError, ValueError):
            raise InvalidInput("tick_size", tick_size, "must be a positive decimal number") from None
        if tick <= 0:
            raise InvalidInput("tick_size", tick_size, "must be a positive decimal number")
        self._tick = tick
        self._path = path
        self._factor = 1.0 + basis * 1e-4
        self._rng = rng
        self._cell = -1  # the last noise cell drawn
        self._z = 0.0  # its draw
        self.value: Optional[int] = None  # the last price read, ticks

    def price(self, t_us: int) -> int:
        """Its price at ``t_us`` (>= 0) in integer ticks."""
        if t_us < 0:
            raise InvalidInput("t_us", t_us, "must be >= 0")
        v = self._path.value_at(t_us - self.lag_us if t_us > self.lag_us else 0) * self._factor
        if self._noise:
            cell = t_us // self.interval_us
            if cell != self._cell:
                if cell < self._cell:
                    raise InvalidInput("t_us", t_us, f"must not run back before noise cell {self._cell} "
                                                     f"(t_us >= {self._cell * self.interval_us})")
                self._z = float(self._rng.standard_normal(cell - self._cell)[-1])  # type: ignore[union-attr]
                self._cell = cell
            v *= math.exp(self._noise * 1e-4 * self._z)
        ticks = round(Fraction(v) / self._tick)  # half to even, on the exact float (as the oracle)
        if ticks < 1:
            raise InvalidPrice(f"external_perps.{self.name}", v, f"rounds to {ticks} ticks of {self._tick} at "
                                                              f"t_us={t_us}; must be at least half a tick")
        self.value = ticks
        return ticks


def _half_tick(a: int, b: int) -> Union[int, Fraction]:
    twice = a + b
    return twice // 2 if twice % 2 == 0 else Fraction(twice, 2)


def weighted_median_ticks(pairs: Sequence[tuple[int, int]]) -> Union[int, Fraction]:
    """``index_rules.weighted_median`` on (ticks, weight) pairs, exact: a whole tick, or the half-way
    ``Fraction`` where the cumulative weight is exactly half (so equal weights give the plain median)."""
    result: Union[int, Fraction] = weighted_median(pairs, _half_tick)
    return result


class ExternalPerps:
    """A market's external perps: ``price(t)`` is their weighted median, the mark's third input."""

    __slots__ = ("sources", "value")

    def __init__(self, sources: Sequence[ExternalPerp]) -> None:
        if isinstance(sources, (str, bytes)) or not isinstance(sources, Sequence) or not sources:
            raise InvalidInput("external_perps", sources, "must be a non-empty list of ExternalPerp")
        for i, s in enumerate(sources):
            if not isinstance(s, ExternalPerp):
                raise InvalidInput(f"external_perps[{i}]", s, "must be an abm.prices.ExternalPerp")
        names = [s.name for s in sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InvalidInput("external_perps", names, f"must have distinct names (repeated: {dup})")
        self.sources = tuple(sources)
        self.value: Optional[Union[int, Fraction]] = None  # the last combined price, ticks

    def price(self, t_us: int) -> Union[int, Fraction]:
        """The weighted median of the sources' prices at ``t_us``, in ticks (exact)."""
        src = self.sources
        if len(src) == 1:
            v: Union[int, Fraction] = src[0].price(t_us)
        else:
            v = weighted_median_ticks([(s.price(t_us), s.weight) for s in src])
        self.value = v
        return v
