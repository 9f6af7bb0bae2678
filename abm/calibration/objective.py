"""The simulated-method-of-moments objective: per-seed moments of an evaluation, the weights, the distance.

An evaluation is one parameter vector run on the calibration's seeds (the same seeds every time:
common random numbers, so two evaluations differ by their parameters only and the objective is a
deterministic function of them). Its moments are the seeds' means; the objective is
``J = sum_k w_k (mean_k - target_k)^2``. Weights, by the file's rule:

- ``inverse_variance`` (default): ``w_k = S / var_k`` with ``var_k`` the variance across the S seeds at
  the start point, fixed for the whole fit. Each term is then the squared distance in standard errors of
  the mean, so moments in different units count alike and ``J`` of a few is within seed noise. Fixing
  the weights at the start (a first-stage weighting matrix) rather than re-estimating them at every
  point keeps the optimiser from preferring regions where the model is noisier.
- ``identity``: ``w_k = 1`` (moments already in comparable units).
- ``given``: each moment's ``weight``.

An evaluation's identity (``evaluation_id``) is the scenario's content hash, the parameter values as
run, the seeds and the metrics function that made the moments' columns: equal ids mean the same runs,
in any process, so a resumed calibration takes a recorded evaluation instead of running it again.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from abm.errors import AbmError, InvalidInput

FORMAT = "abm-calibrate-evaluation/1"


class CalibrationFailed(AbmError):
    """The calibration cannot go on: the start point's runs failed or its moments cannot be weighted."""


def evaluation_id(scenario_hash: str, params: Sequence[tuple[str, Any]], seeds: Sequence[int],
                  metrics: Optional[str]) -> str:
    text = json.dumps({"format": FORMAT, "scenario": scenario_hash, "params": [list(p) for p in params],
                       "seeds": list(seeds), "metrics": metrics}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def moment_value(column: str, v: Any) -> float:
    """A row's value as a number: a boolean counts 0/1 (its mean over seeds is a probability), None is missing."""
    if v is None:
        return math.nan
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    raise InvalidInput(f"moment column {column}", v, "must hold numbers or booleans (it holds text)")


def weights(rule: str, names: Sequence[str], per_seed: np.ndarray, given: Mapping[str, Optional[float]]) -> np.ndarray:
    """The diagonal weights by ``rule`` from the start point's per-seed moments (seeds x moments)."""
    if rule == "identity":
        return np.ones(len(names))
    if rule == "given":
        return np.array([float(given[n] or 0.0) for n in names])
    s = per_seed.shape[0]
    w = np.empty(len(names))
    for k, name in enumerate(names):
        x = per_seed[:, k]
        var = float(np.var(x, ddof=1)) if s >= 2 else math.nan
        if not math.isfinite(var) or var <= 0:
            raise CalibrationFailed(f"moments.{name}: inverse-variance weighting needs a spread across seeds at the "
                                    f"start point, got the values {x.tolist()}; use more seeds, another moment, or "
                                    "weighting = \"given\" with weights")
        w[k] = s / var
    return w


def objective(means: np.ndarray, targets: np.ndarray, w: np.ndarray) -> float:
    """``sum_k w_k (mean_k - target_k)^2`` as an exactly rounded sum (the same bits everywhere); inf if a moment is
    missing (NaN), so the optimiser steers away from points where a run failed or a moment is undefined."""
    d = means - targets
    if not np.all(np.isfinite(d)):
        return math.inf
    return math.fsum(float(x) for x in w * d * d)
