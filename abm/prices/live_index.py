"""The index made by the venues: sampled from its sources during the run, not drawn before it.

Why: an index drawn before the run cannot move with what happens in it, so forced selling could never
move the price that forces more selling. Here each source is read at the index's own cadence — a
simulated spot venue's book mid (so its order flow moves the index), or an exogenous venue that follows
the latent value with its own noise — and the venue's rule (``abm.prices.index_rules``) combines them.
The oracle reads this index exactly as it reads a drawn path (``value_at(t - delay)``): the sample at or
before that time, so its delay, cadence, noise, clipping and outages apply on top unchanged.

What is recorded is the samples themselves, ``(time, value)``: a read between two samples returns the
earlier one, and a read before the first sample is refused (a scheduling bug, caught early). When no
source has a price (every book one-sided, every feed out) the index keeps its last value and the
sample is marked stale, so nothing downstream sees a hole (a one-sided book still has a price: its last
trade, within the side that is left); before any source has had a price (books are
empty until their makers quote) the index is the fallback, the value process.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from fractions import Fraction
from typing import Any, Callable, Optional, Protocol, Sequence

import numpy as np

from abm.errors import InvalidInput
from abm.prices.index_rules import IndexRule, check_weights


class IndexSource(Protocol):
    """One venue the index reads: its name, its weight in the rule, and its price now (None: none)."""

    name: str
    weight: int

    def price(self, t_us: int) -> Optional[Fraction]: ...


class BookMidSource:
    """A simulated venue's book: the exact mid in quote currency, or None while the venue is halted
    (``halted()`` true): a halted venue publishes no prices, so the index leaves it out.

    A book with a side empty has no mid, but the venue still trades: what a sale that swept the bids did is
    in its last trade. Leaving the venue out instead (as an earlier rule did) hid exactly the moves a sweep
    makes, so the index snapped back to the venues that were not hit. The venue's price is then its last
    trade (``last()``, ticks; 0 before any), bounded by the side that is left (a last above the only ask
    cannot stand: a buyer pays the ask); with no trade yet, the venue is left out.
    """

    __slots__ = ("name", "weight", "_view", "_tick", "_halted", "_last")

    def __init__(self, name: str, weight: int, view: Any, tick_size: Any,
                 halted: Optional[Callable[[], bool]] = None, last: Optional[Callable[[], int]] = None) -> None:
        self.name, self.weight = name, check_weights([weight], f"index.sources.{name}.weight")[0]
        self._view = view
        self._tick = Fraction(str(tick_size))
        self._halted = halted
        self._last = last

    def price(self, t_us: int) -> Optional[Fraction]:
        if self._halted is not None and self._halted():
            return None
        bid, ask = self._view.best_bid(), self._view.best_ask()
        if bid is not None and ask is not None:
            return Fraction(bid + ask, 2) * self._tick
        last = self._last() if self._last is not None else 0
        if not last:
            return None
        if ask is not None:
            last = min(last, ask)
        elif bid is not None:
            last = max(last, bid)
        return Fraction(last) * self._tick


class ValueSource:
    """An exogenous venue: the latent value (an ``IndexPath``) times ``exp(noise_bps/1e4 * Z)``, a fresh Z
    from the source's own stream at every sample, so sources disagree as real venues do."""

    __slots__ = ("name", "weight", "_path", "_noise", "_rng")

    def __init__(self, name: str, weight: int, path: Any, noise_bps: float = 0.0,
                 rng: Optional[np.random.Generator] = None) -> None:
        self.name, self.weight = name, check_weights([weight], f"index.sources.{name}.weight")[0]
        if isinstance(noise_bps, bool) or not isinstance(noise_bps, (int, float)) or not 0 <= noise_bps < 10_000 \
                or not math.isfinite(noise_bps):
            raise InvalidInput(f"index.sources.{name}.noise_bps", noise_bps, "must be a number in [0, 10000)")
        if noise_bps and not isinstance(rng, np.random.Generator):
            raise InvalidInput("rng", rng, "must be a numpy.random.Generator when noise_bps > 0")
        self._path = path
        self._noise = float(noise_bps)
        self._rng = rng

    def price(self, t_us: int) -> Optional[Fraction]:
        v = self._path.value_at(t_us)
        if self._noise:
            v *= math.exp(self._noise * 1e-4 * float(self._rng.standard_normal()))  # type: ignore[union-attr]
        return Fraction(v)


class LiveIndex:
    """Samples ``sources`` with ``rule`` at the times the model calls ``sample``; read like an ``IndexPath``."""

    __slots__ = ("sources", "rule", "_weights", "end_us", "times", "values", "stale", "_fallback")

    def __init__(self, sources: Sequence[IndexSource], rule: IndexRule, end_us: int, fallback: Any = None) -> None:
        """``fallback``: what the index is before any source has had a price (the value process, whose start is
        the scenario's ``s0``: books are empty until their makers quote); None refuses such a sample."""
        if not sources:
            raise InvalidInput("index.sources", list(sources), "must name at least one source")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise InvalidInput("index.sources", names, "must have distinct names")
        self.sources = tuple(sources)
        self.rule = rule
        self._weights = [s.weight for s in sources]
        self.end_us = end_us  # what the oracle checks its delay against, as for a drawn path
        self.times: list[int] = []
        self.values: list[float] = []
        self.stale: list[bool] = []  # True where no source had a price and the last value was kept
        self._fallback = fallback

    def sample(self, t_us: int) -> float:
        """Read every source at ``t_us`` (not before the last sample) and record the combined value."""
        if self.times and t_us < self.times[-1]:
            raise InvalidInput("t_us", t_us, f"must be >= the last sample's time {self.times[-1]} us")
        v = self.rule.combine([s.price(t_us) for s in self.sources], self._weights)
        if v is None and not self.values and self._fallback is not None:
            v = Fraction(self._fallback.value_at(t_us))
            stale0 = True
        else:
            stale0 = False
        if v is None:
            if not self.values:
                raise InvalidInput("index", None, f"no source has a price at t_us={t_us} and there is no earlier "
                                                  "sample to keep (give every simulated venue a two-sided book "
                                                  "before the first sample, or an exogenous source)")
            value, stale = self.values[-1], True
        else:
            value, stale = float(v), stale0
        if self.times and self.times[-1] == t_us:  # sampled twice at one time: the later read wins
            self.values[-1], self.stale[-1] = value, stale
        else:
            self.times.append(t_us)
            self.values.append(value)
            self.stale.append(stale)
        return value

    def value_at(self, t_us: int) -> float:
        """The last sample at or before ``t_us``."""
        i = bisect_right(self.times, t_us)
        if i == 0:
            raise InvalidInput("t_us", t_us, f"must be at or after the first index sample "
                                             f"({self.times[0] if self.times else 'none yet'} us)")
        return self.values[i - 1]
