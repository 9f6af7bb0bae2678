"""``[randomize]``: scenario fields drawn per seed, so a stress study varies the shock, not only the noise.

Why in the scenario and not in the sweep: a shock identical across seeds answers "how likely am I to be
liquidated" with 0 or 1. A field named here is drawn from its distribution at the run's seed, each from
its own stream keyed by its path (``abm.model.model.stream(seed, "randomize", path)``), so adding or
removing one drawn field never changes another's draws, and the draws depend on nothing else: the
same seed gives the same values in any process, and parsing a scenario again (an override, a saved
``config.toml``) draws the same values again. The drawn values are written into the scenario when it
is parsed (``abm.model.scenario.parse_scenario``), so everything downstream, the run, its record and
``abm show``, sees plain values.

An override (``--set``, a sweep's ``--grid``) of a drawn path is refused: the draw would silently win.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Mapping, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from abm.config import Problem

Scalar = Union[int, float, str, bool]
MAX_REJECTIONS = 10_000  # truncated draws: a window this unlikely is a mistake in the scenario


class Draw(BaseModel):
    """One field's distribution. ``low``/``high`` bound uniform draws and truncate normal and lognormal ones
    (redrawn until inside: the exact truncated law, never a clamp); ``round`` makes an integer of the draw."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    dist: Literal["uniform", "normal", "lognormal", "choice"]
    low: Optional[float] = None
    high: Optional[float] = None
    mean: Optional[float] = None  # normal
    sd: Optional[float] = Field(None, gt=0)  # normal
    median: Optional[float] = Field(None, gt=0)  # lognormal: exp(mu)
    sigma: Optional[float] = Field(None, gt=0)  # lognormal: the sd of the log
    values: Optional[list[Scalar]] = Field(None, min_length=1)  # choice: equally likely
    round: bool = False  # an integer field: the draw rounded half to even

    @model_validator(mode="after")
    def _parameters_fit_the_law(self) -> "Draw":
        needs = {"uniform": ("low", "high"), "normal": ("mean", "sd"), "lognormal": ("median", "sigma"),
                 "choice": ("values",)}[self.dist]
        takes = set(needs) | ({"low", "high"} if self.dist in ("normal", "lognormal") else set())
        missing = [k for k in needs if getattr(self, k) is None]
        if missing:
            raise ValueError(f"dist = {self.dist!r} needs {', '.join(needs)} (missing {', '.join(missing)})")
        extra = [k for k in ("low", "high", "mean", "sd", "median", "sigma", "values")
                 if getattr(self, k) is not None and k not in takes]
        if extra:
            raise ValueError(f"dist = {self.dist!r} takes {', '.join(sorted(takes))}, not {', '.join(extra)}")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"needs low < high (got low = {self.low:g}, high = {self.high:g})")
        if self.round and self.dist == "choice":
            raise ValueError("round applies to drawn numbers, not to a choice (list the integers instead)")
        return self


def draw(spec: Draw, u: Any) -> Scalar:
    """One value from ``u`` (a NumPy generator)."""
    if spec.dist == "choice":
        assert spec.values is not None
        return spec.values[int(u.integers(len(spec.values)))]
    x = _truncated(spec, u)
    return int(round(x)) if spec.round else x


def _truncated(spec: Draw, u: Any) -> float:
    lo = -math.inf if spec.low is None else spec.low
    hi = math.inf if spec.high is None else spec.high
    for _ in range(MAX_REJECTIONS):
        if spec.dist == "uniform":
            return float(u.uniform(lo, hi))
        if spec.dist == "normal":
            x = float(u.normal(spec.mean, spec.sd))
        else:
            assert spec.median is not None
            x = float(u.lognormal(math.log(spec.median), spec.sigma))
        if lo <= x <= hi:
            return x
    raise ValueError(f"drew no value inside [{lo:g}, {hi:g}] in {MAX_REJECTIONS} tries: the window is too unlikely")


def draws(randomize: Mapping[str, Draw], seed: int) -> dict[str, Scalar]:
    """Every drawn field's value at ``seed``, in the section's order; each path has its own stream."""
    from abm.model.model import stream

    return {path: draw(spec, stream(seed, "randomize", path)) for path, spec in randomize.items()}


def overridden(randomize: Mapping[str, Any], overrides: Mapping[str, Any]) -> list[Problem]:
    """Overrides naming a drawn path (the draw would win over them), as problems naming the path."""
    return [Problem(path, value, f"is drawn by [randomize] (\"{path}\"): drop it from the scenario's [randomize] "
                                 "to set it") for path, value in overrides.items() if path in randomize]
