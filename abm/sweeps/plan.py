"""What a sweep runs: the parameter combinations, their seeds, and the checks made before any run starts.

A run's seed is derived from the base seed, its parameters and its replicate number (a hash), never
from its position in the plan, so its result does not depend on worker count, order or machine, and
a resumed sweep reruns exactly the runs that are missing. A run's id covers its whole identity
(``abm.sweeps.identity``): the scenario's content hash, the base seed, its parameters and replicate.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from abm.errors import InvalidInput
from abm.scenarios import Scenario, load_scenario
from abm.sweeps.identity import run_id, scenario_hash


@dataclass(frozen=True, slots=True)
class PlannedRun:
    run_id: str
    params: tuple[tuple[str, Any], ...]
    replicate: int
    seed: int
    # The combination's resolved scenario, shipped to the worker as it is: a worker (maybe on another
    # machine, in another folder) never looks a scenario up by name or path, so it runs what was hashed.
    scenario: Scenario = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class SweepPlan:
    scenario: str  # the base scenario's name
    scenario_hash: str
    base_seed: int
    runs: list[PlannedRun]
    # replicate r runs seed common_seed(base_seed, r) whatever its parameters (common random numbers, as a
    # calibration needs), instead of a seed derived from its parameters too: a folder holds one rule or the other
    common_seeds: bool = False


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _key(value: Any) -> str:
    return json.dumps(value, default=str)


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["agents.whale.size=40,80,120"]`` -> ``{"agents.whale.size": [40, 80, 120]}``."""
    out: dict[str, list[Any]] = {}
    for item in items:
        path, sep, values = item.partition("=")
        if not sep or not path.strip() or not values.strip():
            raise InvalidInput("--grid", item, "must look like path=v1,v2,... e.g. agents.whale.size=40,80")
        texts = [v.strip() for v in values.split(",")]
        if any(t == "" for t in texts):
            raise InvalidInput("--grid", item, "must not have empty values (path=v1,v2,... with a value between commas)")
        if path.strip() in out:
            raise InvalidInput("--grid", item, f"must name each path once; {path.strip()} is given twice")
        out[path.strip()] = [_value(t) for t in texts]
    return out


def parse_random(items: list[str]) -> dict[str, tuple[float, float]]:
    """``["markets[0].sigma=0.2:0.9"]`` -> ``{"markets[0].sigma": (0.2, 0.9)}`` (uniform draws)."""
    out: dict[str, tuple[float, float]] = {}
    for item in items:
        path, sep, rng = item.partition("=")
        lo, colon, hi = rng.partition(":")
        try:
            a, b = float(lo), float(hi)
        except ValueError:
            a = b = float("nan")
        if not sep or not colon or not path.strip() or not (math.isfinite(a) and math.isfinite(b) and a < b):
            raise InvalidInput("--random", item, "must look like path=lo:hi with finite numbers lo < hi, e.g. "
                                                 "markets[0].sigma=0.2:0.9")
        if path.strip() in out:
            raise InvalidInput("--random", item, f"must name each path once; {path.strip()} is given twice")
        out[path.strip()] = (a, b)
    return out


def _check_spec(grid: Mapping[str, Any], random: Mapping[str, Any], samples: Any, seeds: Any, base_seed: Any) -> None:
    """The sweep's own options (not the scenario's values, which loading each combination checks)."""
    if type(seeds) is not int or seeds < 1:
        raise InvalidInput("--seeds", seeds, "must be an integer >= 1 (replicates per combination)")
    if type(samples) is not int or samples < 1:
        raise InvalidInput("--samples", samples, "must be an integer >= 1 (draws per grid point with --random)")
    if samples != 1 and not random:
        raise InvalidInput("--samples", samples, "needs --random (without it each grid point runs once per seed)")
    if type(base_seed) is not int or base_seed < 0:
        raise InvalidInput("--base-seed", base_seed, "must be an integer >= 0")
    for path, values in grid.items():
        if not isinstance(path, str) or not path.strip():
            raise InvalidInput("--grid", path, "paths must be non-empty strings such as agents.whale.size")
        if not isinstance(values, (list, tuple)) or not values:
            raise InvalidInput("--grid", {path: values}, "each path needs a non-empty list of values")
        if len({_key(v) for v in values}) != len(values):
            raise InvalidInput("--grid", {path: list(values)}, "values must be distinct (a repeat would be the same runs)")
    for path, bounds in random.items():
        ok = isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in bounds)
        if not isinstance(path, str) or not path.strip() or not ok or not bounds[0] < bounds[1]:
            raise InvalidInput("--random", {path: bounds}, "each path needs (lo, hi), finite numbers with lo < hi")
    both = sorted(set(grid) & set(random))
    if both:
        raise InvalidInput("--random", both, "must not name a path that --grid sets too")


def run_seed(base_seed: int, params: Mapping[str, Any], replicate: int) -> int:
    text = json.dumps({"base": base_seed, "params": sorted(params.items()), "rep": replicate}, sort_keys=True,
                      default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def common_seed(base_seed: int, replicate: int) -> int:
    """Replicate ``replicate``'s seed under common random numbers: the seed a sweep without parameters gives it."""
    return run_seed(base_seed, {}, replicate)


def plan_sweep(scenario: str | Path, grid: Mapping[str, list[Any]], random: Mapping[str, tuple[float, float]],
               samples: int, seeds: int, base_seed: int = 0, overrides: Optional[Mapping[str, Any]] = None) -> SweepPlan:
    """Every run of the sweep with the scenario's identity, validated before any of them starts.

    ``overrides`` (dotted paths, e.g. ``{"run.amplification": True}``) change the base scenario itself: they are
    in its hash, never in a run's parameters or seed."""
    _check_spec(grid, random, samples, seeds, base_seed)
    fixed = dict(overrides or {})
    both = sorted(set(fixed) & (set(grid) | set(random)))
    if both:
        raise InvalidInput("--grid", both, "must not name a path the sweep fixes for every run (e.g. --amplification)")
    base = load_scenario(scenario, fixed or None)
    sha = scenario_hash(base)
    keys = list(grid)
    draws = np.random.default_rng(base_seed).random((samples, len(random)))  # one stream, fixed order
    combos: list[dict[str, Any]] = []
    for values in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        for s in range(samples):
            p = dict(zip(keys, values))
            for j, (k, (lo, hi)) in enumerate(sorted(random.items())):
                p[k] = round(lo + (hi - lo) * float(draws[s, j]), 12)
            combos.append(p)
    runs = []
    for p in combos:
        scn = load_scenario(scenario, {**fixed, **p})  # one validation per combination: names the bad path or value before running
        params = tuple(sorted(p.items()))
        for rep in range(seeds):
            runs.append(PlannedRun(run_id(sha, base_seed, params, rep), params, rep, run_seed(base_seed, p, rep), scn))
    return SweepPlan(base.name, sha, base_seed, runs)


def plan(scenario: str | Path, grid: Mapping[str, list[Any]], random: Mapping[str, tuple[float, float]],
         samples: int, seeds: int, base_seed: int = 0) -> list[PlannedRun]:
    """Every run of the sweep (parameters, replicate, seed), validated against the scenario; nothing runs."""
    return plan_sweep(scenario, grid, random, samples, seeds, base_seed).runs


def flatten(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested summary -> flat columns (``liquidated_notional.book``), scalars only."""
    out: dict[str, Any] = {}
    for k, v in summary.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, name + "."))
        elif v is None or isinstance(v, (int, float, str, bool)):
            out[name] = v
    return out

