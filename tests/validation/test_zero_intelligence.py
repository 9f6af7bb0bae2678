"""Smith, E., Farmer, J. D., Gillemot, L. and Krishnamurthy, S. (2003), "Statistical theory of the continuous
double auction", Quantitative Finance 3(6), 481-514: the zero-intelligence order flow's depth and spread
scaling, reproduced with the simulator's own noise flow (``abm.agents.noise``) and order book.

The noise flow is that model in its units, with no new mode: ``size_dist = "fixed"`` (every order sigma =
``size_lots`` lots), ``level_ticks = 1`` (limit prices on every tick), ``value_weight = 0`` (no anchor). A buy
limit order is placed uniformly on the ``window_levels`` ticks below the best ask (inside the spread too), a
sell above the best bid, market orders arrive at ``mu`` per second, each resting order is cancelled at
``delta``. Sides are 50/50, so per side: market orders mu/2 per second, limit orders alpha/2 per tick per
second. The paper's dimensional analysis (its section II.A and table of characteristic scales): price scale
p_c = mu/alpha (the same ratio per side), granularity epsilon = sigma delta / (mu sigma) = delta/mu (in
orders; in shares sigma delta / mu_shares with mu_shares = mu sigma), tick dp/p_c. Its predictions tested:

1. Far from the best prices, where market orders never reach, the depth is alpha/delta per side per price (the
   M/M/infinity queue of arrivals at alpha and cancels at delta per order): here alpha/(2 delta) orders per tick.
   The window is finite, so "far" is 5 p_c from the opposite best to 30 ticks short of the window's edge.
2. The mean spread is p_c f(epsilon, dp/p_c): with epsilon and dp/p_c held, doubling p_c doubles the mean spread.
   p_c doubles with the tick grid (``level_ticks`` 1 -> 2 at the same alpha per level), so dp/p_c stays 0.1.

Deviation from the paper: self-trade prevention (the profiles' ``cancel_resting``) removes a resting order a
flow agent's own market order meets; the flow is split over 100 agents so that happens to ~1% of fills.

Tolerances are Monte Carlo standard errors of our own runs (batch means over 20 time blocks, each block tens of
cancellation times 1/delta long), asserted within 3: both predictions are exact in the model, so the only error
is sampling. Measured: plateau depth 0.2505 +- 0.0017 (fast, 3,000 s) and 0.2492 +- 0.0006 (slow, 30,000 s)
against 0.25; spread ratio 2.097 +- 0.049 (fast, 5,000 s per run) and 2.004 +- 0.013 (slow, 60,000 s).
Not asserted: at a fixed tick (dp/p_c 0.1 -> 0.05) the ratio is 1.93 +- 0.02 at 20,000 s, i.e. the tick's own
effect (about +0.75 tick on the spread), which the dimensional law allows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from abm.model import MarketModel
from tests.support import group, market, scenario
from tests.validation.figures import figure_dir, page, save

AGENTS = 100
MU, ALPHA, DELTA, WINDOW = 1.0, 0.1, 0.2, 200  # p_c = 10 ticks, epsilon = 0.2, dp/p_c = 0.1
SIGMA_LOTS = 1
WARMUP_S = 200  # about 40 cancellation times: the book forgets its empty start
Z = 3.0
BLOCKS = 20


def zi_model(seed: int, duration_s: float, level_ticks: int = 1, alpha: float = ALPHA) -> MarketModel:
    """Only the zero-intelligence flow: mu, alpha (per level), delta over AGENTS agents, fixed size sigma."""
    flow = {"mu": MU / AGENTS, "alpha": alpha / AGENTS, "delta": DELTA, "window_levels": WINDOW,
            "level_ticks": level_ticks, "size_lots": SIGMA_LOTS, "size_dist": "fixed"}
    cfg = scenario(seed=seed, duration_s=duration_s, markets=(market(symbol="BTC-PERP", s0=60_000, sigma=0.3),),
                   agents=(group("noise", AGENTS, flow),))
    return MarketModel(cfg)


def sample(seed: int, duration_s: float, level_ticks: int = 1, profile: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(spread in ticks each second, depth per tick by distance from the opposite best, per second, when asked)."""
    m = zi_model(seed, duration_s, level_ticks)
    view = m.views["BTC-PERP"]
    reach = WINDOW * level_ticks
    spreads, depth = [], []
    while m.time_us < duration_s * 1e6:
        m.step()
        bid, ask = view.best_bid(), view.best_ask()
        if m.time_us <= WARMUP_S * 1e6 or bid is None or ask is None:
            continue
        spreads.append(ask - bid)
        if profile:
            row = np.zeros(reach + 1)
            bids, asks = view.l2(reach)
            for price, lots in bids:
                if ask - price <= reach:
                    row[ask - price] += lots / 2
            for price, lots in asks:
                if price - bid <= reach:
                    row[price - bid] += lots / 2
            depth.append(row)
    return np.array(spreads, float), np.array(depth)


def block_mean_se(x: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error from BLOCKS consecutive blocks (the series is autocorrelated)."""
    blocks = np.array([b.mean() for b in np.array_split(x, BLOCKS)])
    return float(x.mean()), float(blocks.std(ddof=1) / math.sqrt(BLOCKS))


def check_depth(seed: int, duration_s: float) -> None:
    _, depth = sample(seed, duration_s, profile=True)
    p_c = MU / ALPHA
    far = slice(int(5 * p_c), WINDOW - 30)
    plateau = depth[:, far].mean(axis=1) / SIGMA_LOTS  # orders per tick per side, each second
    got, se = block_mean_se(plateau)
    expected = ALPHA / (2 * DELTA)
    if figure_dir() is not None:
        fig, (a1, a2) = page(2)
        a1.plot(np.arange(depth.shape[1]), depth.mean(axis=0) / SIGMA_LOTS, label="measured")
        a1.axhline(expected, color="k", ls="--", label="alpha/(2 delta)")
        a1.axvspan(far.start, far.stop, color="0.9", label="far region tested")
        a1.set(xlabel="ticks from the opposite best", ylabel="orders per tick per side",
               title=f"SFGK (2003) depth profile: plateau {got:.4f} +- {se:.4f}, predicted {expected}")
        a1.legend(fontsize=8)
        a2.plot(plateau[:2000])
        a2.set(xlabel="second", ylabel="far depth per tick", title="far depth over time")
        save(fig, "zero_intelligence_depth")
    assert abs(got - expected) <= Z * se, f"far depth {got:.4f} +- {se:.4f}, predicted alpha/(2 delta) = {expected}"


def check_spread_scaling(seed: int, duration_s: float) -> None:
    s1, _ = sample(seed, duration_s, level_ticks=1)
    s2, _ = sample(seed + 1, duration_s, level_ticks=2)  # p_c doubled, epsilon and dp/p_c held; other draws
    m1, e1 = block_mean_se(s1)
    m2, e2 = block_mean_se(s2)
    ratio = m2 / m1
    se = ratio * math.hypot(e1 / m1, e2 / m2)
    if figure_dir() is not None:
        fig, (a1, a2) = page(2)
        bins = np.arange(0, max(s1.max(), s2.max() / 2) + 2)
        a1.hist(s1, bins=bins, alpha=0.5, density=True, label=f"p_c = 10 ticks: mean {m1:.2f}")
        a1.hist(s2 / 2, bins=bins, alpha=0.5, density=True, label=f"p_c = 20 ticks, halved: mean {m2 / 2:.2f}")
        a1.set(xlabel="spread / (p_c / 10 ticks)", title="SFGK (2003): spread = p_c f(epsilon, dp/p_c)")
        a1.legend(fontsize=8)
        a2.errorbar([10, 20], [m1, m2], yerr=[Z * e1, Z * e2], fmt="o")
        a2.plot([0, 20], [0, 2 * m1], "k--", label="proportional to p_c")
        a2.set(xlabel="p_c = mu/alpha (ticks)", ylabel="mean spread (ticks)", title=f"ratio {ratio:.3f} +- {se:.3f}")
        a2.legend(fontsize=8)
        save(fig, "zero_intelligence_spread")
    assert abs(ratio - 2.0) <= Z * se, f"mean spread ratio {ratio:.4f} +- {se:.4f} ({m1:.3f} -> {m2:.3f} ticks), predicted 2"


def test_far_depth_is_alpha_over_delta() -> None:
    check_depth(seed=3, duration_s=3_000)


def test_spread_scales_with_mu_over_alpha() -> None:
    check_spread_scaling(seed=5, duration_s=5_000)


@pytest.mark.slow
def test_far_depth_is_alpha_over_delta_long() -> None:
    check_depth(seed=13, duration_s=30_000)


@pytest.mark.slow
def test_spread_scales_with_mu_over_alpha_long() -> None:
    check_spread_scaling(seed=15, duration_s=60_000)
