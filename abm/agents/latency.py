"""Latency models: how long an agent's action takes to reach the venue, a small registered piece.

Why a trait and not numbers: venues and connections differ (a colocated maker, a retail client
over the internet, a congested gateway), and a study may want its own distribution. A model is
built from an agent's three parameters (``data_latency_ms``, ``entry_latency_ms``, ``jitter_ms``, in
µs) and answers four things: the delay of one action from one uniform draw in [0, 1) (``sample``;
the draw comes from the agent's network stream, never its decision stream), whether it needs a draw
at all (``random``), and the bounds of the delay (``min_us``, ``max_us``), which agents use to know
when what they sent has landed. The FIFO link stays in ``AgentContext``: a model only sets delays.

``TraderParams.latency_model`` picks one by name, or ``"module:Class"`` for a user's own (checked
from its source before import, like agent kinds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from abm.errors import InvalidInput
from abm.registry import Registry


class LatencyModel(Protocol):
    min_us: int
    max_us: int
    random: bool

    def sample(self, u: float) -> int: ...


def _is_latency_class(v: object) -> bool:
    return isinstance(v, type) and all(hasattr(v, a) for a in ("sample", "min_us", "max_us", "random"))


LATENCY_MODELS: Registry[type] = Registry("latency model", "latency_model",
                                          "a class built from (data_us, entry_us, jitter_us) with sample(u) -> µs, "
                                          "min_us, max_us and random", _is_latency_class)


@LATENCY_MODELS.register("uniform")
@dataclass(frozen=True, slots=True)
class Latency:
    """Market data ``data_us`` old, order entry ``entry_us``, and a uniform jitter in [0, jitter_us) on each of
    the two legs (their sum drawn as one uniform over [0, 2 jitter_us), the simulator's default)."""

    data_us: int = 20_000
    entry_us: int = 30_000
    jitter_us: int = 10_000

    def __post_init__(self) -> None:
        for name in ("data_us", "entry_us", "jitter_us"):
            v = getattr(self, name)
            if type(v) is not int or v < 0:
                raise InvalidInput(f"latency.{name}", v, "must be a non-negative integer (microseconds)")

    @property
    def min_us(self) -> int:
        return self.data_us + self.entry_us

    @property
    def max_us(self) -> int:
        return self.data_us + self.entry_us + 2 * self.jitter_us

    @property
    def random(self) -> bool:
        return self.jitter_us > 0

    def sample(self, u: float) -> int:
        """Total delay for one action, from a uniform draw ``u`` in [0, 1)."""
        return self.data_us + self.entry_us + int(u * 2 * self.jitter_us)
