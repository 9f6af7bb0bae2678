"""The objective's pieces: weights by rule, the distance, and what an evaluation's identity covers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from abm.calibration.objective import CalibrationFailed, evaluation_id, moment_value, objective, weights


def test_inverse_variance_weights_are_seeds_over_the_variance_at_the_start():
    per_seed = np.array([[1.0, 10.0], [2.0, 30.0], [3.0, 20.0]])  # 3 seeds x 2 moments
    w = weights("inverse_variance", ["a", "b"], per_seed, {})
    assert w.tolist() == [3 / 1.0, 3 / 100.0]  # sample variances 1 and 100
    # one standard error off in each moment: J = 2
    means = per_seed.mean(axis=0)
    se = np.sqrt([1.0 / 3, 100.0 / 3])
    assert objective(means + se, means, w) == pytest.approx(2.0)


def test_other_rules_and_a_moment_with_no_spread():
    per_seed = np.array([[1.0, 5.0], [1.0, 6.0]])
    assert weights("identity", ["a", "b"], per_seed, {}).tolist() == [1.0, 1.0]
    assert weights("given", ["a", "b"], per_seed, {"a": 2.0, "b": 0.5}).tolist() == [2.0, 0.5]
    with pytest.raises(CalibrationFailed, match=r"moments\.a: inverse-variance weighting needs a spread .*\[1\.0, 1\.0\]"):
        weights("inverse_variance", ["a", "b"], per_seed, {})


def test_the_distance_is_exact_and_a_missing_moment_is_infinite():
    w = np.array([1.0, 1e-3])
    assert objective(np.array([1.5, 100.0]), np.array([1.0, 90.0]), w) == math.fsum([0.25, 0.1])
    assert objective(np.array([math.nan, 1.0]), np.array([1.0, 1.0]), w) == math.inf


def test_moment_values():
    assert moment_value("c", True) == 1.0 and moment_value("c", np.int64(3)) == 3.0
    assert math.isnan(moment_value("c", None))
    with pytest.raises(ValueError, match="moment column c: must hold numbers or booleans"):
        moment_value("c", "text")


def test_an_evaluation_id_covers_scenario_parameters_seeds_and_metrics():
    base = evaluation_id("sha", (("a", 1), ("b", 0.5)), [7, 8], "m:f")
    assert base == evaluation_id("sha", (("a", 1), ("b", 0.5)), [7, 8], "m:f")
    others = {evaluation_id("sha2", (("a", 1), ("b", 0.5)), [7, 8], "m:f"),
              evaluation_id("sha", (("a", 2), ("b", 0.5)), [7, 8], "m:f"),
              evaluation_id("sha", (("a", 1), ("b", 0.5000001)), [7, 8], "m:f"),
              evaluation_id("sha", (("a", 1), ("b", 0.5)), [7, 9], "m:f"),
              evaluation_id("sha", (("a", 1), ("b", 0.5)), [7, 8], None)}
    assert base not in others and len(others) == 5
