"""The index rules: Hyperliquid's weighted median and Binance's outlier-trimmed weighted mean, exactly."""

from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abm.errors import InvalidInput
from abm.prices.index_rules import (
    HYPERLIQUID_SPOT_WEIGHTS,
    INDEX_RULES,
    WeightedMeanOutlier,
    WeightedMedian,
    check_weights,
    median,
    weighted_median,
)


def test_hyperliquid_weights_and_a_weighted_median_by_hand() -> None:
    w = list(HYPERLIQUID_SPOT_WEIGHTS.values())
    assert w == [3, 2, 2, 1, 1, 1, 1]  # venue-mechanics.md, "Oracle and mark"
    # binance 100, okx 101, bybit 99, the four small ones at 90: sorted 90x4 (w 4), 99 (2), 100 (3), 101 (2)
    # total 11: cumulative 4, 6 (> 5.5) -> 99
    prices = [F(100), F(101), F(99), F(90), F(90), F(90), F(90)]
    assert WeightedMedian().combine(prices, w) == 99
    # binance alone outweighs nothing: move it to 200 and the median is still 99
    assert WeightedMedian().combine([F(200), *prices[1:]], w) == 99


def test_exactly_half_the_weight_takes_the_mean_of_the_two() -> None:
    assert weighted_median([(F(10), 1), (F(20), 1)]) == 15
    assert weighted_median([(F(10), 3), (F(20), 1), (F(30), 2)]) == 15  # cumulative 3 of 6 at 10


def test_a_source_without_a_price_is_left_out_and_none_without_any() -> None:
    assert WeightedMedian().combine([None, F(50), F(52)], [5, 1, 1]) == 51
    assert WeightedMedian().combine([None, None], [1, 1]) is None
    assert WeightedMeanOutlier().combine([None], [1]) is None


def test_binance_drops_one_outlier_and_falls_back_to_the_median_for_two() -> None:
    rule = WeightedMeanOutlier()
    assert rule.combine([F(100), F(102), F(104)], [1, 1, 2]) == F(100 + 102 + 208, 4)
    # 120 is more than 5% from the median (102): weight 0, the rest averaged with their weights
    assert rule.combine([F(100), F(102), F(104), F(120)], [1, 1, 2, 5]) == F(100 + 102 + 208, 4)
    # exactly 5% off stays in (the rule drops "more than 5%")
    assert rule.combine([F(100), F(100), F(105)], [1, 1, 1]) == F(305, 3)
    # two sources far off: the median
    assert rule.combine([F(100), F(101), F(102), F(150), F(50)], [1, 1, 1, 1, 1]) == 101


prices = st.lists(st.fractions(min_value=1, max_value=10**6), min_size=1, max_size=9)


@given(prices, st.data())
def test_the_weighted_median_is_a_source_price_or_between_two_and_ignores_order(ps: list[F], data: st.DataObject) -> None:
    ws = data.draw(st.lists(st.integers(1, 5), min_size=len(ps), max_size=len(ps)))
    m = weighted_median(list(zip(ps, ws)))
    assert min(ps) <= m <= max(ps)
    perm = data.draw(st.permutations(range(len(ps))))
    assert weighted_median([(ps[i], ws[i]) for i in perm]) == m
    assert weighted_median([(p, 1) for p in ps]) == median(ps)  # equal weights: the plain median
    # scaling every weight changes nothing
    assert weighted_median([(p, 3 * w) for p, w in zip(ps, ws)]) == m


@given(prices, st.data())
def test_the_binance_index_lies_within_the_kept_sources(ps: list[F], data: st.DataObject) -> None:
    ws = data.draw(st.lists(st.integers(1, 5), min_size=len(ps), max_size=len(ps)))
    v = WeightedMeanOutlier().combine(ps, ws)
    assert v is not None and min(ps) <= v <= max(ps)


def test_rules_are_registered_and_weights_checked() -> None:
    assert INDEX_RULES.resolve("weighted_median", "index.rule") is WeightedMedian
    with pytest.raises(InvalidInput, match="did you mean 'weighted_median'"):
        INDEX_RULES.resolve("weighted_medain", "index.rule")
    with pytest.raises(InvalidInput, match=r"weights\[1\]: must be a positive integer"):
        check_weights([1, 0])
    with pytest.raises(InvalidInput):
        check_weights([True])
