"""Avellaneda, M. and Stoikov, S. (2008), "High-frequency trading in a limit order book", Quantitative Finance
8(3), 217-224: the Monte Carlo comparison of section 4 (the table for gamma = 0.1), reproduced with the
simulator's own quote functions.

The quote formula itself (eqs. 29-30: r = s - q gamma sigma^2 (T - t), total spread gamma sigma^2 (T - t) +
(2/gamma) ln(1 + gamma/k)) is checked exactly against the market maker in finite-horizon mode
(``horizon = "run"``) by ``tests/unit/agents/test_market_maker_models.py``
(``test_avellaneda_stoikov_with_the_run_as_horizon_quotes_its_formula_by_hand`` and the one after it): the
agent's quotes are its functions ``reservation_price``, ``half_spread`` and ``time_left_s``. Here those
same functions drive the paper's experiment: s0 = 100, T = 1, sigma = 2, dt = 0.005, q0 = 0, gamma = 0.1,
k = 1.5, A = 140; the mid moves +-sigma sqrt(dt) with probability 1/2 each step; a quote at distance delta
from the mid fills with probability A exp(-k delta) dt in a step; profit is X_T + q_T S_T. The paper's
"symmetric" strategy quotes around the mid with the inventory strategy's average spread (1.49).

The paper's numbers (1000 simulations; quoted from the brief, which matches the paper's table as we recall it:
the full text was not in the search corpus):

    strategy    spread  profit  std(profit)  final q  std(final q)
    inventory    1.49    62.94     5.89        0.10      2.80
    symmetric    1.49    67.21    13.43       -0.018     8.66

Tolerance, from the paper's sample size: our estimate and the paper's are two independent Monte Carlo
estimates, so a mean differs by sd * sqrt(1/n + 1/1000) at one standard error and a standard deviation by
sd * sqrt(1/(2n) + 1/2000) (the normal approximation of its sampling error); each is asserted within 3 such
standard errors. The fast form runs n = 200 paths, the slow one the paper's 1000.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from abm.agents.market_maker import half_spread, reservation_price, time_left_s
from tests.validation.figures import figure_dir, page, save

S0, T, SIGMA, DT, GAMMA, K, A = 100.0, 1.0, 2.0, 0.005, 0.1, 1.5, 140.0
STEPS = round(T / DT)
PAPER_N = 1000
PAPER = {  # strategy: (spread, mean profit, std profit, mean final q, std final q)
    "inventory": (1.49, 62.94, 5.89, 0.10, 2.80),
    "symmetric": (1.49, 67.21, 13.43, -0.018, 8.66),
}
Z = 3.0


def _tau(i: int) -> float:
    """T - t at step i, through the market maker's own horizon function (microseconds; T = 1 time unit = 1 s)."""
    return time_left_s(round(i * DT * 1e6), "run", 0.0, round(T * 1e6), 1)


def average_spread() -> float:
    """The inventory strategy's spread averaged over the steps: what the symmetric strategy quotes (1.49)."""
    return math.fsum(2 * half_spread(GAMMA, SIGMA, _tau(i), K) for i in range(STEPS)) / STEPS


def simulate(n: int, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Both strategies on the same price paths and fill draws: {strategy: {"profit", "q"}} per path."""
    rng = np.random.default_rng(seed)
    sym_half = average_spread() / 2
    out = {}
    moves = np.where(rng.random((STEPS, n)) < 0.5, 1.0, -1.0) * SIGMA * math.sqrt(DT)
    u_bid, u_ask = rng.random((STEPS, n)), rng.random((STEPS, n))
    for name in PAPER:
        s = np.full(n, S0)
        q = np.zeros(n)
        x = np.zeros(n)
        for i in range(STEPS):
            if name == "inventory":
                tau = _tau(i)
                r = reservation_price(s, q, GAMMA, SIGMA, tau)  # vectorised: the function is arithmetic
                d = half_spread(GAMMA, SIGMA, tau, K)
                bid, ask = r - d, r + d
            else:
                bid, ask = s - sym_half, s + sym_half
            hit_b = u_bid[i] < np.minimum(1.0, A * np.exp(-K * (s - bid)) * DT)
            hit_a = u_ask[i] < np.minimum(1.0, A * np.exp(-K * (ask - s)) * DT)
            q += hit_b.astype(float) - hit_a
            x += np.where(hit_a, ask, 0.0) - np.where(hit_b, bid, 0.0)
            s = s + moves[i]
        out[name] = {"profit": x + q * s, "q": q}
    return out


STATS = ("mean profit", "std profit", "mean final q", "std final q")
# What misses, measured at seed 2008 (20,000 paths on other seeds agree: inventory profit 64.9 +- 6.57, final q
# sd 2.92; symmetric 68.1 +- 13.4, q sd 8.33). Another reading of a step (the mid moves first and the step's
# fills meet the quotes set before it) gives 63.4 +- 6.47: the mean moves toward the paper, the sd stays ~10%
# above it. Neither is tuned to the table. The 200-path form cannot resolve these differences and passes.
MISSES = {
    (PAPER_N, "inventory", "mean profit"): "measured 65.26 vs the paper's 62.94: +2.3, 8.8 standard errors (0.26)",
    (PAPER_N, "inventory", "std profit"): "measured 6.51 vs the paper's 5.89: +0.62, 3.3 standard errors (0.19)",
}


@functools.lru_cache(maxsize=None)
def measured(n: int, seed: int = 2008) -> dict[str, tuple[float, ...]]:
    """{strategy: (mean profit, std profit, mean final q, std final q)} over ``n`` paths; draws the figure."""
    res = simulate(n, seed)
    out = {}
    for name in PAPER:
        pi, q = res[name]["profit"], res[name]["q"]
        out[name] = (float(pi.mean()), float(pi.std(ddof=1)), float(q.mean()), float(q.std(ddof=1)))
    if figure_dir() is not None:
        _figure(res, out, n)
    return out


def tolerance(n: int, strategy: str, stat: str) -> float:
    """Z standard errors of the difference of two independent estimates, ours (n paths) and the paper's (1000)."""
    _, _, sd_pi, _, sd_q = PAPER[strategy]
    sd = sd_pi if "profit" in stat else sd_q
    if stat.startswith("mean"):
        return Z * sd * math.sqrt(1 / n + 1 / PAPER_N)
    return Z * sd * math.sqrt(1 / (2 * n) + 1 / (2 * PAPER_N))


def _cases(n: int) -> list:
    out = []
    for strategy in PAPER:
        for stat in STATS:
            miss = MISSES.get((n, strategy, stat))
            marks = [pytest.mark.xfail(strict=True, reason=miss)] if miss else []
            out.append(pytest.param(strategy, stat, marks=marks, id=f"{strategy}-{stat.replace(' ', '_')}"))
    return out


def _check(n: int, strategy: str, stat: str) -> None:
    got = measured(n)[strategy][STATS.index(stat)]
    paper = PAPER[strategy][1 + STATS.index(stat)]
    tol = tolerance(n, strategy, stat)
    assert abs(got - paper) <= tol, f"{strategy} {stat}: measured {got:.3f}, paper {paper}, tolerance {tol:.3f}"


def _figure(res: dict, measured: dict, n: int) -> None:
    fig, (a1, a2) = page(2)
    for name, colour in (("inventory", "C0"), ("symmetric", "C1")):
        pi = res[name]["profit"]
        a1.hist(pi, bins=40, alpha=0.5, color=colour, label=f"{name}: {measured[name][0]:.2f} ± {measured[name][1]:.2f} "
                f"(paper {PAPER[name][1]} ± {PAPER[name][2]})")
        a2.hist(res[name]["q"], bins=np.arange(-30.5, 31), alpha=0.5, color=colour,
                label=f"{name}: sd {measured[name][3]:.2f} (paper {PAPER[name][4]})")
    a1.set_title(f"Avellaneda-Stoikov (2008) table, gamma = 0.1: profit over {n} paths")
    a2.set_title("final inventory q_T")
    a1.legend(fontsize=8)
    a2.legend(fontsize=8)
    save(fig, "avellaneda_stoikov")


def test_the_symmetric_strategy_quotes_the_papers_average_spread() -> None:
    # (2/gamma) ln(1 + gamma/k) = 1.2908 at T; gamma sigma^2 (T - t) averages 0.2 over [0, T): 1.49 as tabled
    assert round(average_spread(), 2) == PAPER["symmetric"][0]


@pytest.mark.parametrize(("strategy", "stat"), _cases(200))
def test_avellaneda_stoikov_table_small(strategy: str, stat: str) -> None:
    _check(200, strategy, stat)


@pytest.mark.slow
@pytest.mark.parametrize(("strategy", "stat"), _cases(PAPER_N))
def test_avellaneda_stoikov_table_paper_size(strategy: str, stat: str) -> None:
    _check(PAPER_N, strategy, stat)


@pytest.mark.parametrize("n", [200, pytest.param(PAPER_N, marks=pytest.mark.slow)])
def test_the_inventory_strategy_has_the_smaller_spread_of_profit_and_inventory(n: int) -> None:
    # the paper's conclusion: a lower profit but a much lower variance of profit and of the final inventory
    got = measured(n)
    assert got["inventory"][1] < 0.6 * got["symmetric"][1]
    assert got["inventory"][3] < 0.5 * got["symmetric"][3]
