"""The background flow is exact: its order counts are its rates times time, however many agents carry it."""

from __future__ import annotations

import math

import pytest

from abm.agents.noise import NoiseTrader
from abm.model import MarketModel
from tests.support import group, market, scenario

T = 3_600.0  # s
MU, ALPHA, LEVELS = 3.0, 0.15, 40  # the flow's totals: market orders /s, limit orders /s per level


def flow(n: int, seed: int = 3, extra: dict | None = None, kind: str = "noise", duration_s: float = T) -> list[NoiseTrader]:
    """The same total flow split over ``n`` agents, on a flat index (only the flow moves the book)."""
    params = {"mu": MU / n, "alpha": ALPHA / n, "window_levels": LEVELS, "delta": 0.02, **(extra or {})}
    cfg = scenario(seed=seed, duration_s=duration_s, markets=(market(process="flat", sigma=0.0),),
                      agents=(group(kind, n, params, name="flow"),))
    return MarketModel(cfg).run().agents_by_group["flow"]  # type: ignore[return-value]


def test_order_counts_are_rate_times_time_whatever_the_number_of_agents():
    counts = {}
    for n in (20, 200):
        agents = flow(n)
        counts[n] = (sum(a.market_orders for a in agents), sum(a.limit_orders for a in agents))
    for i, expected in enumerate((MU * T, ALPHA * LEVELS * T)):  # Poisson counts: variance = mean
        sd = math.sqrt(expected)
        for n in (20, 200):
            assert abs(counts[n][i] - expected) <= 4 * sd, (n, i, counts[n][i], expected)
        # and the two splits agree with each other (difference of two independent Poisson counts)
        assert abs(counts[20][i] - counts[200][i]) <= 4 * math.sqrt(2 * expected)


class CheckedNoise(NoiseTrader):
    """Checks at each of its events that the rate it has now is within the bound its clock was drawn at."""

    checked = 0

    def _event(self, t: int) -> None:
        rate = self._steady_rate + self.p.delta * len(self._open)
        assert rate <= self._bound + 1e-12, (t, rate, self._bound)
        CheckedNoise.checked += 1
        super()._event(t)


@pytest.mark.parametrize("latency", [{}, {"data_latency_ms": 20.0, "entry_latency_ms": 30.0, "jitter_ms": 50.0}])
def test_the_bound_holds_at_every_event_with_and_without_latency(latency):
    # with latency an order still on its way cannot be cancelled yet but will rest: the bound counts it
    CheckedNoise.checked = 0
    agents = flow(50, seed=5, extra=latency, kind=f"{__name__}:CheckedNoise", duration_s=900)
    assert CheckedNoise.checked > 5_000
    assert sum(a.cancels for a in agents) > 1_000
