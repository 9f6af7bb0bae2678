"""Thurner, S., Farmer, J. D. and Geanakoplos, J. (2012), "Leverage causes fat tails and clustered volatility",
Quantitative Finance 12(5), 695-707: more leverage gives fatter tails (their figure of the return distribution
by maximum leverage lambda_max: the excess kurtosis of returns grows with lambda_max), through the leveraged
value investors' own behaviour. Here: the simulator's value traders (``abm.agents.value``, demand
aggression x mispricing x equity capped at ``max_leverage`` x equity) on a book of noise flow and market makers,
with a Gaussian value process; one run per cap, the same seed, so only the cap differs.

The crowd: 60 noise traders (mu = 0.3), 4 market makers, 10 value traders (100,000 USDC each, aggression 300,
two-sided: long-only ones never traded here, the mid sat above the value for whole runs). Caps 1, 2 and 4:
above 4 the cap never binds and runs are identical to 4x.

Tolerance: the paper's claim is an ordering, so the test is a paired sign test: on one seed (common random
numbers, only the cap differs) the 10 s excess kurtosis must rise strictly from cap 1 to 2 to 4; under the null
that the cap does not matter that ordering has probability 1/6 on a seed, (1/6)^3 = 0.5% on the slow form's
three seeds.

It MISSES (strict xfail). Measured 10 s excess kurtosis at caps 1, 2, 4: seed 1 (1,200 s) 2.05, 4.54, 5.12 and
(600 s) 0.89, 5.48, 5.48; seed 2 13.8, 12.1, 3.8; seed 3 19.6, 6.5, 5.7; seed 4 4.3, 2.7, 2.7. On most seeds
tails get thinner with leverage: a tight cap stops the value traders from leaning against the noise flow's
excursions, so the mid wanders further from value (mispricing p99 ~110 bps), and the forced sales of the
leverage cycle (value says buy, cap says sell) happen only at 1x (4 in a run). The paper's mechanism needs
the funds at the cap when the price falls, which a symmetric noise flow without a persistent demand of its
own rarely brings about. Also tried, and no better: long-only value traders over noise flow anchored to the
value (``value_weight`` 0.05 and 0.2, the paper's mean-reverting noise demand): caps above 2 never bind and the
ordering flips between seeds (e.g. 12.1, 10.2, 10.2, 10.2 and 12.0, 32.1, 32.1, 32.1 at caps 1, 2, 4, 8). A value
demand large enough to reach a high cap at bps-sized mispricings also removes the mispricing. Making the
leverage cycle appear is a calibration question (issue 15), not something to tune a test to.
"""

from __future__ import annotations

import functools

import pytest

from abm.analysis.stylized import stylized_facts
from abm.model import MarketModel
from tests.support import group, market, scenario
from tests.validation.figures import figure_dir, page, save

CAPS = (1, 2, 4)
MISS = ("10 s excess kurtosis at caps 1, 2, 4 does not rise: seed 1 (600 s) 0.89, 5.48, 5.48; seeds 2, 3, 4 "
        "(1,200 s) 13.8, 12.1, 3.8 / 19.6, 6.5, 5.7 / 4.3, 2.7, 2.7")


@functools.lru_cache(maxsize=None)
def kurtosis(cap: int, seed: int, duration_s: float) -> tuple[float, int]:
    """(10 s excess kurtosis of the mid, forced sales by the value traders) with value traders capped at ``cap``."""
    value = {"max_leverage": cap, "aggression": 300.0, "threshold_bps": 2.0, "deposit_usdc": 100_000.0,
             "value_noise_bps": 10.0, "long_only": False}
    cfg = scenario(seed=seed, duration_s=duration_s, markets=(market(symbol="BTC-PERP", s0=60_000, sigma=0.5),),
                   agents=(group("noise", 60, {"mu": 0.3}), group("market_maker", 4, {}), group("value", 10, value)))
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
    check((2, 3, 4), 1_200.0)
