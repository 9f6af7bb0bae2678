"""Cost of the liquidation check on a mark update, with many open positions.

Opens N positions (half isolated, half cross; half long, half short; leverage 2x-40x), then times
1) mark updates that liquidate nobody (median µs; should not depend on N), and
2) mark moves that liquidate k units (µs per liquidated unit; should grow like log N, not N).
Liquidated units go to the backstop vault (the book holds no bids), so the figure is the engine's own
cost, not the book's.

``--triggers`` measures the exchange's trigger orders (``abm.exchange.triggers``) instead: N resting stop
orders far from the mark (N = 0, 1k, 10k, 100k), and the median cost of a mark update that fires none
(should not depend on N), beside the cost per trigger of a move that fires 1,000 of them.

``--dynamic`` measures dynamic margin (``abm.margin.dynamic``): with N positions, the cost of a factor change
(``MarginEngine.set_factor``: a new epoch of trigger heaps, O(epochs)) and of the mark update right after it,
which liquidates what the higher factor made liquidatable; the median mark update liquidating nobody with
``MAX_EPOCHS`` old epochs live; and, for scale, what re-keying every unit (the alternative) costs.

    python bench/liquidation_scan.py [--positions 100000]
    python bench/liquidation_scan.py --triggers
    python bench/liquidation_scan.py --dynamic
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from abm import Exchange, MarketSpec
from abm.margin.dynamic import PPM, DynamicMarginSpec
from abm.margin.params import RiskParams
from abm.margin.tiers import hyperliquid_tiers

USDC = 10**6


# a factor model that never updates by itself: the bench sets the factor by hand
HAND_SET = DynamicMarginSpec("open_interest", 10**15, 10 * PPM, reference_units=10**18)


def build(n: int, seed: int = 1, dynamic: bool = False) -> Exchange:
    rng = random.Random(seed)
    ex = Exchange()
    ex.list_market(MarketSpec("BTC", tick_size="0.01", lot_size="0.001", maker_fee_bps=0, taker_fee_bps=0),
                   RiskParams(hyperliquid_tiers([(0, 40), (150_000_000 * USDC, 20)]),
                              dynamic=HAND_SET if dynamic else None))
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


def build_triggers(n: int, seed: int = 1) -> Exchange:
    """A margined market at mark 10,000 with ``n`` resting stops from 100 accounts: sell stops at 1,000-5,000
    and buy stops at 15,000-20,000 ticks (stop-limits resting far from the book if they ever fired), plus
    1,000 sell stops at 9,000-9,499 that the move in ``firing_move`` fires."""
    rng = random.Random(seed)
    ex = Exchange()
    ex.list_market(MarketSpec("BTC", tick_size="0.01", lot_size="0.001", maker_fee_bps=0, taker_fee_bps=0),
                   RiskParams(hyperliquid_tiers([(0, 40), (150_000_000 * USDC, 20)])))
    ex.set_mark("BTC", 10_000)
    owners = [ex.open_account(10**6 * USDC) for _ in range(100)]
    for i in range(n):
        if i % 2:
            ex.trigger_order(owners[i % 100], "BTC", "sell", 1, rng.randint(1_000, 5_000), limit_price=100_000)
        else:
            ex.trigger_order(owners[i % 100], "BTC", "buy", 1, rng.randint(15_000, 20_000), limit_price=1)
    return ex


def firing_move(ex: Exchange, k: int = 1_000) -> float:
    """µs per trigger of one mark update that fires ``k`` stop-limits (each enters the book and rests)."""
    owner = ex.open_account(10**6 * USDC)
    for i in range(k):
        ex.trigger_order(owner, "BTC", "sell", 1, 9_000 + i % 500, limit_price=100_000)
    t0 = time.perf_counter_ns()
    ex.set_mark("BTC", 8_999)
    dt = (time.perf_counter_ns() - t0) / 1_000
    assert ex.stops is not None and sum(t.status == "triggered" for t in ex.stops.orders.values()) == k
    return dt / k


def trigger_main() -> None:
    for n in (0, 1_000, 10_000, 100_000):
        t0 = time.perf_counter()
        ex = build_triggers(n)
        built = time.perf_counter() - t0
        if n == 0:  # build the (empty) trigger book, so the figure includes its look at the heaps
            ex.cancel_trigger(1, ex.trigger_order(1, "BTC", "sell", 1, 1_000))
        q = quiet_updates(ex)
        f = firing_move(ex)
        print(f"N={n:,} resting triggers (placed in {built:.1f} s): mark update firing none: median {q:.2f} µs; "
              f"a move firing 1,000: {f:.1f} µs per trigger")
        ex.check_conservation()


def dynamic_main(positions: int) -> None:
    for n in sorted({positions // 10, positions}):
        base = build(n)
        q0 = quiet_updates(base)
        ex = build(n, dynamic=True)
        eng = ex.risk
        t0 = time.perf_counter_ns()
        for a in sorted(ex.accounts):  # the alternative: re-key every unit (what a factor change would cost so)
            for unit in {eng.unit_of(a, i) for i in ex.accounts[a].positions}:
                eng.reindex(unit)
        rekey = (time.perf_counter_ns() - t0) / 1e6
        rows = []
        for ppm in (1_100_000, 1_300_000, 1_600_000, 2_000_000, 2_500_000, 3_000_000):
            before = len(ex.liquidations)
            t0 = time.perf_counter_ns()
            eng.set_factor(0, ppm)
            t1 = time.perf_counter_ns()
            ex.set_mark("BTC", 10_000)  # the mark update the factor change belongs to
            t2 = time.perf_counter_ns()
            rows.append((ppm, (t1 - t0) / 1_000, len(ex.liquidations) - before, (t2 - t1) / 1_000))
        q = quiet_updates(ex)
        print(f"N={n:,} positions: mark update liquidating nobody: static {q0:.2f} µs, dynamic with "
              f"{len(eng._epochs[0])} old epochs {q:.2f} µs; re-keying every unit instead: {rekey:.0f} ms")
        for ppm, dt_f, k, dt_m in rows:
            per = f" = {dt_m / k:.1f} µs per event" if k else ""
            print(f"  factor {ppm / PPM:.1f}: set_factor {dt_f:.1f} µs; the mark update after it: {k:,} liquidation "
                  f"events in {dt_m / 1000:.1f} ms{per}")
        ex.check_conservation()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--positions", type=int, default=100_000)
    ap.add_argument("--triggers", action="store_true", help="measure resting trigger orders instead of positions")
    ap.add_argument("--dynamic", action="store_true", help="measure dynamic-margin factor changes")
    args = ap.parse_args()
    if args.dynamic:
        dynamic_main(args.positions)
        return
    if args.triggers:
        trigger_main()
        return
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
