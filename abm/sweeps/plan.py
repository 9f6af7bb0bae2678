"""What a sweep runs: the parameter combinations, their seeds, and the checks made before any run starts.

A run's seed is derived from the base seed, its parameters and its replicate number (a hash), never
from its position in the plan, so its result does not depend on worker count, order or machine, and
a resumed sweep reruns exactly the runs that are missing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from abm.errors import InvalidInput
from abm.scenarios import load_scenario


@dataclass(frozen=True, slots=True)
class PlannedRun:
    run_id: str
    params: tuple[tuple[str, Any], ...]
    replicate: int
    seed: int


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["agents.whale.size=40,80,120"]`` -> ``{"agents.whale.size": [40, 80, 120]}``."""
    out: dict[str, list[Any]] = {}
    for item in items:
        path, sep, values = item.partition("=")
        if not sep or not path.strip() or not values.strip():
            raise InvalidInput("--grid", item, "must look like path=v1,v2,... e.g. agents.whale.size=40,80")
        vals = [_value(v.strip()) for v in values.split(",")]
        if any(v == "" for v in vals):
            raise InvalidInput("--grid", item, "must not have empty values")
        out[path.strip()] = vals
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
        if not sep or not colon or not path.strip() or not a < b:
            raise InvalidInput("--random", item, "must look like path=lo:hi with lo < hi, e.g. markets[0].sigma=0.2:0.9")
        out[path.strip()] = (a, b)
    return out


def run_seed(base_seed: int, params: Mapping[str, Any], replicate: int) -> int:
    text = json.dumps({"base": base_seed, "params": sorted(params.items()), "rep": replicate}, sort_keys=True,
                      default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def plan(scenario: str, grid: Mapping[str, list[Any]], random: Mapping[str, tuple[float, float]],
         samples: int, seeds: int, base_seed: int = 0) -> list[PlannedRun]:
    """Every run of the sweep, validated against the scenario before any of them starts."""
    if type(seeds) is not int or seeds < 1:
        raise InvalidInput("--seeds", seeds, "must be an integer >= 1")
    if random and (type(samples) is not int or samples < 1):
        raise InvalidInput("--samples", samples, "must be an integer >= 1 with --random")
    if not random:
        samples = 1
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
    checked: set[str] = set()
    for p in combos:
        key = json.dumps(sorted(p.items()), default=str)
        if key not in checked:  # one validation per combination: names the bad path or value before running
            load_scenario(scenario, p)
            checked.add(key)
        for rep in range(seeds):
            seed = run_seed(base_seed, p, rep)
            rid = hashlib.sha256(f"{key}|{rep}".encode()).hexdigest()[:16]
            runs.append(PlannedRun(rid, tuple(sorted(p.items())), rep, seed))
    return runs


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

