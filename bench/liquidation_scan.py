"""Cost of the liquidation check on a mark update, with many open positions.

Opens N positions (half isolated, half cross; half long, half short; leverage 2x-40x), then times
1) mark updates that liquidate nobody (median µs; should not depend on N), and
2) mark moves that liquidate k units (µs per liquidated unit; should grow like log N, not N).
Liquidated units go to the backstop vault (the book holds no bids), so the figure is the engine's own
cost, not the book's.

    python bench/liquidation_scan.py [--positions 100000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from abm import Exchange, MarketSpec
from abm.margin.params import RiskParams
from abm.margin.tiers import hyperliquid_tiers

USDC = 10**6


def build(n: int, seed: int = 1) -> Exchange:
    rng = random.Random(seed)
    ex = Exchange()
    ex.list_market(MarketSpec("BTC", tick_size="0.01", lot_size="0.001", maker_fee_bps=0, taker_fee_bps=0),
                   RiskParams(hyperliquid_tiers([(0, 40), (150_000_000 * USDC, 20)])))
    ex.set_mark("BTC", 10_000)
    ex.create_backstop_vault(10**9 * USDC)
    ex.seed_ledger("insurance", 10**9 * USDC)  # bad debt is paid, so every liquidation is a backstop takeover
    seller, buyer = ex.open_account(10**9 * USDC), ex.open_account(10**9 * USDC)
    ex.limit(seller, "BTC", "sell", 100 * n, 10_000)
    ex.limit(buyer, "BTC", "buy", 100 * n, 9_999)
    for i in range(n):
        t = ex.open_account(10 * USDC)
        lev = rng.randint(2, 40)
        if i % 2:
            ex.set_margin_mode(t, "BTC", "isolated")
        ex.set_leverage(t, "BTC", lev)
        lots = 10 * USDC * lev // (10 * 10_000) * 9 // 10
        ex.market_order(t, "BTC", "buy" if i % 4 < 2 else "sell", lots)
    ex.cancel_all(seller)
    ex.cancel_all(buyer)
    return ex


def quiet_updates(ex: Exchange, count: int = 2_000) -> float:
    samples = []
    for i in range(count):
        p = 10_000 + (i & 1)
        t0 = time.perf_counter_ns()
        ex.set_mark("BTC", p)
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1_000


def liquidating_moves(ex: Exchange, steps: list[int]) -> list[tuple[int, int, float]]:
    out = []
    mark = 10_000
    for s in steps:
        mark -= s
        before = len(ex.liquidations)
        t0 = time.perf_counter_ns()
        ex.set_mark("BTC", mark)
        dt = (time.perf_counter_ns() - t0) / 1_000
        out.append((mark, len(ex.liquidations) - before, dt))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--positions", type=int, default=100_000)
    args = ap.parse_args()
    for n in sorted({args.positions // 10, args.positions}):
        t0 = time.perf_counter()
        ex = build(n)
        built = time.perf_counter() - t0
        q = quiet_updates(ex)
        print(f"N={n:,} positions (built in {built:.1f} s): mark update liquidating nobody: median {q:.2f} µs")
        for mark, k, dt in liquidating_moves(ex, [20, 20, 40, 80, 160, 400, 800]):
            if k:
                print(f"  mark {mark}: {k:,} liquidation events in {dt / 1000:.1f} ms = {dt / k:.1f} µs per event")
        ex.check_conservation()


if __name__ == "__main__":
    main()
