"""Thurner, S., Farmer, J. D. and Geanakoplos, J. (2012), "Leverage causes fat tails and clustered volatility",
Quantitative Finance 12(5), 695-707: more leverage gives fatter tails (their figure of the return distribution
by maximum leverage lambda_max: the excess kurtosis of returns grows with lambda_max), through the leveraged
value investors' own behaviour. Here: the simulator's value traders (``abm.agents.value``, demand
aggression x mispricing x equity capped at ``max_leverage`` x equity) on a book of noise flow and market makers,
with a Gaussian value process; one run per cap, the same seed, so only the cap differs.

Tolerance: the paper's claim is an ordering (kurtosis increasing in lambda_max), asserted strictly at the 10 s
horizon. It MISSES (strict xfail). Measured at 600-1,200 s, seed 1: the cap binds only at 1x (one forced
sale in the run); caps of 5x and 20x never bind, so those two runs are identical (10 s excess kurtosis 19.15
for both, 16.35 at 1x; 60 s: 6.38 at 1x, 5.32 at 5x and 20x). In this crowd the mispricing the value traders
see stays a few bps (the makers quote around the book and the noise flow has no fundamental drift of its own),
so their demand never reaches the cap that would make them sell into a fall: the leverage cycle needs a
noise demand strong enough to push the price far from value, which is calibration (issue 15) not yet done.
"""

from __future__ import annotations

import functools

import pytest

from abm.analysis.stylized import stylized_facts
from abm.model import MarketModel
from tests.support import group, market, scenario
from tests.validation.figures import figure_dir, page, save

CAPS = (1, 5, 20)
MISS = ("the cap binds only at 1x: 5x and 20x give identical runs (10 s excess kurtosis 19.15, 1x 16.35), "
        "so kurtosis does not rise with leverage beyond it")


@functools.lru_cache(maxsize=None)
def kurtosis(cap: int, seed: int, duration_s: float) -> tuple[float, int]:
    """(10 s excess kurtosis of the mid, forced sales by the value traders) with value traders capped at ``cap``."""
    value = {"max_leverage": cap, "aggression": 1500.0, "threshold_bps": 2.0, "deposit_usdc": 300_000.0,
             "value_noise_bps": 10.0}
    cfg = scenario(seed=seed, duration_s=duration_s, markets=(market(symbol="BTC-PERP", s0=60_000, sigma=0.5),),
                   agents=(group("noise", 60, {}), group("market_maker", 4, {}), group("value", 10, value)))
    m = MarketModel(cfg).run()
    k = float(stylized_facts(m.steps_frame(), horizons_s=(10,))["excess_kurtosis"].iloc[0])
    return k, sum(a.forced_sells for a in m.agents_by_kind["value"])


def check(seeds: tuple[int, ...], duration_s: float) -> None:
    for seed in seeds:
        ks = [kurtosis(c, seed, duration_s)[0] for c in CAPS]
        if figure_dir() is not None:
            fig, (a1, a2) = page(2)
            a1.plot(CAPS, ks, "o-")
            a1.set(xscale="log", xlabel="max_leverage", ylabel="10 s excess kurtosis",
                   title=f"Thurner-Farmer-Geanakoplos (2012): tails by leverage, seed {seed}")
            a2.bar([str(c) for c in CAPS], [kurtosis(c, seed, duration_s)[1] for c in CAPS])
            a2.set(xlabel="max_leverage", ylabel="forced sales (cap bound against the value)")
            save(fig, f"leverage_tails_seed{seed}")
        assert all(a < b for a, b in zip(ks, ks[1:])), f"seed {seed}: 10 s excess kurtosis by cap {dict(zip(CAPS, ks))}"


@pytest.mark.xfail(strict=True, reason=MISS)
def test_more_leverage_fatter_tails() -> None:
    check((1,), 600.0)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=MISS)
def test_more_leverage_fatter_tails_seeds() -> None:
    check((1, 2, 3), 1_800.0)
