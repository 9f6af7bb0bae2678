"""The venue's only view of the index: a delayed, optionally noisy, clipped and sometimes silent oracle.

Why event-driven: the scheduler asks ``next_update_us()`` and calls ``publish`` exactly then, so an
oracle costs one event per publication instead of a check on every tick of simulated time, and a run
cannot accidentally read the index "now": ``publish(t)`` only ever reads it at ``t - delay_us``.

Publication grid: the multiples of ``interval_us`` from t = 0, starting at the first one at or after
``delay_us`` (earlier ones would read the index before it starts). Published prices are integer
ticks: ``value / tick_size`` rounded half to even (Python's ``round`` on the exact binary value of the
float), so a value exactly between two ticks goes to the even tick and no direction is favoured.
Outages are half-open ``[start_us, end_us)``. The first due time inside an outage is still
scheduled, so the simulation sees the miss (``publish`` returns None and the price goes stale);
then the schedule jumps to the first interval boundary at or after the outage's end.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Optional, Sequence, Union

import numpy as np

from abm.errors import InvalidInput, InvalidPrice
from abm.prices.index import IndexPath, _int, _real
from abm.prices.live_index import LiveIndex


class WrongPublishTime(InvalidInput):
    """``publish`` was called at another time than ``next_update_us()``: a scheduler bug, caught early."""


def _tick(value: object) -> Fraction:
    if isinstance(value, bool):
        raise InvalidInput("tick_size", value, "must be a positive number (a Decimal like Decimal('0.1'))")
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidInput("tick_size", value, "must be a positive number (a Decimal like Decimal('0.1'))") from None
    if not d.is_finite() or d <= 0:
        raise InvalidInput("tick_size", value, "must be a finite number > 0")
    return Fraction(d)


def _outages(outages: Any) -> tuple[tuple[int, int], ...]:
    """Sorted, with overlapping or touching windows merged: one long outage is what they amount to."""
    if outages is None:
        return ()
    if isinstance(outages, (str, bytes)) or not isinstance(outages, Sequence):
        raise InvalidInput("outages", outages, "must be a list of (start_us, end_us) pairs")
    pairs = []
    for i, w in enumerate(outages):
        if isinstance(w, (str, bytes)) or not isinstance(w, Sequence) or len(w) != 2:
            raise InvalidInput(f"outages[{i}]", w, "must be a (start_us, end_us) pair")
        s, e = _int(f"outages[{i}].start_us", w[0]), _int(f"outages[{i}].end_us", w[1])
        if s < 0:
            raise InvalidInput(f"outages[{i}].start_us", w[0], "must be >= 0")
        if e <= s:
            raise InvalidInput(f"outages[{i}].end_us", w[1], f"must be > start_us ({s})")
        pairs.append((s, e))
    merged: list[tuple[int, int]] = []
    for s, e in sorted(pairs):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return tuple(merged)


class Oracle:
    """Publishes ``path`` to the venue in integer ticks on a fixed schedule (see the module docstring).

    ``noise_bps``: each publication is multiplied by exp(noise_bps/1e4 * Z), Z ~ N(0, 1) from ``rng``
    (log-normal so a price can never turn negative). ``clip_pct``: each publication stays within
    ±clip_pct percent of the previous one, enforced in ticks (bounds rounded inwards), so the limit
    holds exactly after rounding. The first publication is not clipped: there is nothing to clip to.
    """

    __slots__ = ("path", "tick_size", "interval_us", "delay_us", "noise_bps", "clip_pct", "outages",
                 "_rng", "_tick", "_clip", "_price", "_last", "_next")

    def __init__(self, path: Union[IndexPath, LiveIndex], tick_size: Decimal, interval_us: int = 3_000_000, delay_us: int = 0,
                 noise_bps: float = 0.0, clip_pct: Optional[float] = None,
                 outages: Optional[Sequence[tuple[int, int]]] = None, rng: Optional[np.random.Generator] = None) -> None:
        if not isinstance(path, (IndexPath, LiveIndex)):
            raise InvalidInput("path", path, "must be an IndexPath (drawn) or a LiveIndex (made by the venues)")
        tick = _tick(tick_size)
        interval, delay = _int("interval_us", interval_us), _int("delay_us", delay_us)
        if interval <= 0:
            raise InvalidInput("interval_us", interval_us, "must be > 0")
        if delay < 0:
            raise InvalidInput("delay_us", delay_us, "must be >= 0")
        if delay > path.end_us:
            raise InvalidInput("delay_us", delay_us, f"must be <= the index path's span ({path.end_us} us)")
        noise = _real("noise_bps", noise_bps)
        if not 0 <= noise < 10_000:
            raise InvalidInput("noise_bps", noise_bps, "must be in [0, 10000) basis points")
        if noise > 0 and not isinstance(rng, np.random.Generator):
            raise InvalidInput("rng", rng, "must be a numpy.random.Generator when noise_bps > 0")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise InvalidInput("rng", rng, "must be a numpy.random.Generator or None")
        clip: Optional[Fraction] = None
        if clip_pct is not None:
            c = _real("clip_pct", clip_pct)
            if not 0 < c < 100:
                raise InvalidInput("clip_pct", clip_pct, "must be None or in (0, 100) percent (5 means ±5%)")
            clip = Fraction(repr(c)) / 100
        windows = _outages(outages)
        self.path, self.tick_size, self._tick = path, Decimal(tick.numerator) / Decimal(tick.denominator), tick
        self.interval_us, self.delay_us, self.noise_bps = interval, delay, noise
        self.clip_pct, self._clip, self.outages, self._rng = clip_pct, clip, windows, rng
        self._price: Optional[int] = None
        self._last: Optional[int] = None
        self._next: Optional[int] = self._bounded(-(-delay // interval) * interval)

    # ------------------------------------------------------------------------------- reading

    @property
    def price(self) -> Optional[int]:
        """Last published price in ticks; None before the first publication."""
        return self._price

    @property
    def last_update_us(self) -> Optional[int]:
        return self._last

    def next_update_us(self) -> Optional[int]:
        """When ``publish`` is due; None once the next publication would read past the path's end."""
        return self._next

    def age_us(self, t_us: int) -> Optional[int]:
        """Microseconds since the last publication; None if nothing was ever published."""
        t = _int("t_us", t_us)
        if self._last is None:
            return None
        if t < self._last:
            raise InvalidInput("t_us", t_us, f"must be >= the last publication time {self._last}")
        return t - self._last

    def is_stale(self, t_us: int, max_age_us: int) -> bool:
        """True if never published or older than ``max_age_us`` (an age of exactly max_age_us is fresh)."""
        m = _int("max_age_us", max_age_us)
        if m < 0:
            raise InvalidInput("max_age_us", max_age_us, "must be >= 0")
        age = self.age_us(t_us)
        return age is None or age > m

    # ------------------------------------------------------------------------------ publishing

    def publish(self, t_us: int) -> Optional[int]:
        """Publish at exactly ``next_update_us()``: the new price in ticks, or None during an outage."""
        t = _int("t_us", t_us)
        if self._next is None:
            raise WrongPublishTime("t_us", t_us, "no publication is due: the index path ends before the next one")
        if t != self._next:
            raise WrongPublishTime("t_us", t_us, f"must equal next_update_us() = {self._next}")
        for s, e in self.outages:
            if s <= t < e:
                self._next = self._bounded(-(-e // self.interval_us) * self.interval_us)
                return None
        value = self.path.value_at(t - self.delay_us)
        if self.noise_bps > 0:
            value *= math.exp(self.noise_bps * 1e-4 * float(self._rng.standard_normal()))  # type: ignore[union-attr]
        ticks = round(Fraction(value) / self._tick)  # Fraction rounds half to even, on the exact float
        if self._clip is not None and self._price is not None:
            lo = math.ceil(self._price * (1 - self._clip))
            hi = math.floor(self._price * (1 + self._clip))
            ticks = min(max(ticks, lo), hi)
        if ticks < 1:
            why = f"rounds to {ticks} ticks of {self.tick_size} at t_us={t}; must be at least half a tick"
            raise InvalidPrice("index", value, why)
        self._price, self._last = ticks, t
        self._next = self._bounded(t + self.interval_us)
        return ticks

    def _bounded(self, t: int) -> Optional[int]:
        return t if t - self.delay_us <= self.path.end_us else None
