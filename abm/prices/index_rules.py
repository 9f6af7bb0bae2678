"""How a venue combines its spot sources' prices into one index: the venues' documented rules, exactly.

Why a registry of small rules: the index is no longer drawn before the run but read from spot venues
(simulated books, exogenous paths, replays), and venues combine them differently. Hyperliquid takes a
weighted median of the sources' mids (weights Binance 3, OKX 2, Bybit 2, Kraken 1, KuCoin 1, Gate 1,
MEXC 1: shared/reference/venue-mechanics.md); Binance a weighted average that drops a source more than
5% from the median, and falls back to the median when more than one source is that far off. A venue
profile names its rule; a study may name its own as ``module:Class``.

A source without a price (an empty book, an outage, a replay that has not started) is left out and
the rest are combined with their own weights; with no source at all there is no index (``None``), and
the caller keeps its last value. Arithmetic is exact (``Fraction``) so the index of equal inputs is
equal on every machine.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Optional, Sequence

from abm.errors import InvalidInput
from abm.registry import Registry, subclass_of

Price = Fraction


class IndexRule:
    """Combine the sources' prices (``None``: no price now) with their integer weights into an index."""

    __slots__ = ()

    @classmethod
    def from_profile(cls, profile: Any) -> "IndexRule":
        return cls()

    def combine(self, prices: Sequence[Optional[Price]], weights: Sequence[int]) -> Optional[Price]:
        raise NotImplementedError


INDEX_RULES: Registry[type[IndexRule]] = Registry("index rule", "index.rule", "a subclass of abm.prices.IndexRule",
                                                  subclass_of(IndexRule))


def check_weights(weights: Sequence[object], field: str = "weights") -> list[int]:
    """Source weights as positive integers (a venue's weights are small whole numbers)."""
    out = []
    for i, w in enumerate(weights):
        if isinstance(w, bool) or not isinstance(w, int) or w <= 0:
            raise InvalidInput(f"{field}[{i}]", w, "must be a positive integer")
        out.append(w)
    if not out:
        raise InvalidInput(field, list(weights), "must hold at least one weight")
    return out


def _present(prices: Sequence[Optional[Price]], weights: Sequence[int]) -> list[tuple[Price, int]]:
    if len(prices) != len(weights):  # internal misuse only: the sources and their weights are built together
        raise ValueError(f"{len(prices)} prices for {len(weights)} weights")
    return [(p, w) for p, w in zip(prices, weights) if p is not None]


def median(values: Sequence[Price]) -> Price:
    """The plain median: the middle value, or the mean of the two middle ones."""
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def weighted_median(pairs: Sequence[tuple[Any, int]], halfway: Optional[Callable[[Any, Any], Any]] = None) -> Any:
    """The price at which half the weight lies on each side; where the cumulative weight reaches exactly
    half at a price, ``halfway`` of it and the next price (their mean unless given: an exact caller passes
    its own), so equal weights give the plain median."""
    ordered = sorted(pairs)
    total = sum(w for _, w in ordered)
    cum = 0
    for i, (p, w) in enumerate(ordered):
        cum += w
        if 2 * cum > total:
            return p
        if 2 * cum == total:
            q = ordered[i + 1][0]
            return (p + q) / 2 if halfway is None else halfway(p, q)
    raise AssertionError("unreachable: the weights sum to the total")


@INDEX_RULES.register("weighted_median")
class WeightedMedian(IndexRule):
    """Hyperliquid: the weighted median of the sources' prices."""

    __slots__ = ()

    def combine(self, prices: Sequence[Optional[Price]], weights: Sequence[int]) -> Optional[Price]:
        pairs = _present(prices, weights)
        return weighted_median(pairs) if pairs else None


@INDEX_RULES.register("weighted_mean_outlier")
class WeightedMeanOutlier(IndexRule):
    """Binance: the weighted mean of the sources within ``max_deviation`` (5%) of their median; when more
    than one source is further off, the median itself."""

    __slots__ = ("max_deviation",)

    def __init__(self, max_deviation: Fraction = Fraction(5, 100)) -> None:
        if not isinstance(max_deviation, Fraction) or not 0 < max_deviation < 1:
            raise InvalidInput("max_deviation", max_deviation, "must be a Fraction in (0, 1)")
        self.max_deviation = max_deviation

    def combine(self, prices: Sequence[Optional[Price]], weights: Sequence[int]) -> Optional[Price]:
        pairs = _present(prices, weights)
        if not pairs:
            return None
        m = median([p for p, _ in pairs])
        kept = [(p, w) for p, w in pairs if abs(p - m) <= self.max_deviation * m]
        if len(pairs) - len(kept) > 1:
            return m
        return sum((p * w for p, w in kept), Fraction(0)) / sum(w for _, w in kept)


HYPERLIQUID_SPOT_WEIGHTS = {"binance": 3, "okx": 2, "bybit": 2, "kraken": 1, "kucoin": 1, "gate": 1, "mexc": 1}
