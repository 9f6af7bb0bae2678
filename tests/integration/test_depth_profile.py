"""The market makers' deep ladder gives the book a profile that keeps growing with distance from the mid
(out to 5%), where the near ladder alone puts all resting depth within ~12 bps (so depth within 0.5%
equals depth within 2%, and worst fills and depth evaporation are artefacts of that)."""

from __future__ import annotations

import pytest

from abm.model import MarketModel
from abm.scenarios import load_scenario


def mean_depth(overrides: dict) -> dict[str, float]:
    m = MarketModel(load_scenario("baseline", {"run.duration_s": 180, **overrides}, seed=7), audit=True).run()
    steps = m.steps_frame().iloc[60:]  # after the makers' first refreshes
    return {band: float(steps[f"depth_bid_{band}"].mean() + steps[f"depth_ask_{band}"].mean())
            for band in ("0.5pct", "1pct", "2pct")}


@pytest.mark.parametrize("deep", [{}, {"agents.market_maker.deep_levels": 6}])
def test_the_depth_profile_grows_out_to_two_percent_only_with_the_deep_ladder(deep: dict) -> None:
    d = mean_depth(deep)
    if not deep:
        assert d["0.5pct"] == d["1pct"] == d["2pct"]  # the near ladder alone: everything within 0.5%
        return
    # 25-500 bps levels of 1.0, 1.3, 1.69, ... BTC per maker: each wider band holds clearly more
    assert d["1pct"] > 1.2 * d["0.5pct"] and d["2pct"] > 1.15 * d["1pct"]
