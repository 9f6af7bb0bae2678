"""Latency models are registered pieces: the default keeps every delay as it was, a user's own sets them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from abm.agents import LATENCY_MODELS, Latency
from abm.errors import InvalidInput
from abm.model import MarketModel
from tests.support import group, scenario


@dataclass(frozen=True)
class FixedLatency:
    """Every action lands exactly data + entry later (a colocated client): no draw at all."""

    data_us: int
    entry_us: int
    jitter_us: int

    @property
    def min_us(self) -> int:
        return self.data_us + self.entry_us

    max_us = min_us
    random = False

    def sample(self, u: float) -> int:
        return self.data_us + self.entry_us


def test_the_default_is_the_uniform_model_with_the_agents_numbers():
    assert LATENCY_MODELS.resolve("uniform") is Latency and "uniform" in LATENCY_MODELS.names()
    lat = Latency(20_000, 30_000, 10_000)
    assert (lat.min_us, lat.max_us, lat.random) == (50_000, 70_000, True)
    assert lat.sample(0.0) == 50_000 and lat.sample(0.999999) == 69_999


def test_a_users_latency_model_sets_every_delay_and_draws_nothing():
    cfg = scenario(seed=3, duration_s=30, agents=(
        group("noise", 4, {}), group("market_maker", 2, {"latency_model": f"{__name__}:FixedLatency"},
                                               name="colo")))
    m = MarketModel(cfg)
    maker = m.agents_by_group["colo"][0]
    assert isinstance(maker.latency, FixedLatency) and not maker.ctx._jitter
    m.run()
    assert maker.ctx._nbuf == []  # no network draw was ever needed (the buffer fills on the first)
    m.exchange.check_conservation()


def test_an_unknown_latency_model_is_refused_naming_the_group():
    with pytest.raises(InvalidInput, match=r"agents\.noise\.latency_model: .*'uniform'"):
        MarketModel(scenario(agents=(group("noise", 1, {"latency_model": "unifrom"}),)))
