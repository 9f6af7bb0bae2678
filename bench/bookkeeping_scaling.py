"""What a run costs beyond its events: idle open positions, and markets (issue 18).

Two same-run comparisons, CPU time of ``model.run()`` (construction excluded), runs alternated so that
machine drift hits both sides alike; the figure is the ratio of medians:

- ``idle``: a run of background flow, and the same run with ``--positions`` extra accounts that each
  hold a one-lot position opened before the run and never trade again (half cross, half isolated,
  half long, half short). Idle positions should cost (almost) nothing: target at most 1.2x.
- ``markets``: the same crowd (noise traders and market makers) in one market, and split evenly
  over ``--markets`` markets; compared per order event (an order, cancel or modify reaching the
  exchange). Markets themselves (their feeds, their per-step metrics) should cost little beyond the
  events: target at most 1.1x.

    python bench/bookkeeping_scaling.py idle [--positions 50000] [--duration-s 600] [--repeats 3]
    python bench/bookkeeping_scaling.py markets [--markets 10] [--duration-s 600] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

from abm._native import compiled_modules
from abm.model import MarketModel
from abm.units import USDC

SYMBOLS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "AVAX", "LINK", "DOT", "LTC", "BCH", "UNI")


def crowd_config(duration_s: float, noise: int, makers: int, markets: int, seed: int) -> dict[str, Any]:
    """``noise`` noise traders and ``makers`` market makers, split evenly over ``markets`` markets."""
    syms = [f"{s}-PERP" for s in SYMBOLS[:markets]]
    agents: dict[str, Any] = {}
    for k, sym in enumerate(syms):
        agents[f"noise_{k}"] = {"kind": "noise", "count": noise // markets, "symbol": sym}
        agents[f"mm_{k}"] = {"kind": "market_maker", "count": max(1, makers // markets), "symbol": sym}
    return {"name": "bookkeeping", "run": {"seed": seed, "duration_s": duration_s},
            "markets": [{"symbol": s} for s in syms], "agents": agents}


def add_idle_positions(model: MarketModel, n: int) -> None:
    """``n`` accounts with a one-lot position each, opened against one counterparty before the run."""
    ex = model.exchange
    sym = model.symbols[0]
    mark = ex.risk.mark(0)
    for side, other, count in (("sell", "buy", n // 2), ("buy", "sell", n - n // 2)):
        cp = ex.open_account(10**9 * USDC)
        ex.limit(cp, sym, side, count, mark)
        for i in range(count):
            a = ex.open_account(10_000 * USDC)
            if i % 2:
                ex.set_margin_mode(a, sym, "isolated")
            ex.market_order(a, sym, other, 1)


def cpu_run(build: Callable[[], MarketModel]) -> tuple[float, int]:
    model = build()
    t = time.process_time()
    model.run()
    return time.process_time() - t, model.order_events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("idle", "markets"))
    ap.add_argument("--positions", type=int, default=50_000)
    ap.add_argument("--markets", type=int, default=10)
    ap.add_argument("--duration-s", type=float, default=600.0)
    ap.add_argument("--noise", type=int, default=300)
    ap.add_argument("--makers", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    native = compiled_modules()
    print(f"core: {f'compiled with mypyc ({len(native)} modules)' if native else 'pure Python'}")
    if args.what == "idle":
        one = crowd_config(args.duration_s, args.noise, args.makers, 1, args.seed)

        def base() -> MarketModel:
            return MarketModel(one)

        def idle() -> MarketModel:
            m = MarketModel(one)
            add_idle_positions(m, args.positions)
            return m

        sides = {"without": base, f"with {args.positions:,} idle positions": idle}
    else:
        one = crowd_config(args.duration_s, args.noise, args.makers, 1, args.seed)
        many = crowd_config(args.duration_s, args.noise, args.makers, args.markets, args.seed)
        sides = {"1 market": lambda: MarketModel(one), f"{args.markets} markets": lambda: MarketModel(many)}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    events: dict[str, int] = {}
    for _ in range(args.repeats):
        for name, build in sides.items():
            c, e = cpu_run(build)
            cpu[name].append(c)
            events[name] = e
    (a, b) = sides
    for name in sides:
        med = statistics.median(cpu[name])
        print(f"{name}: CPU {med:.2f} s (median of {args.repeats}: {', '.join(f'{c:.2f}' for c in cpu[name])}); "
              f"order events {events[name]:,} -> {med / events[name] * 1e6:.2f} µs per event")
    ra = statistics.median(cpu[a])
    rb = statistics.median(cpu[b])
    if args.what == "idle":
        print(f"ratio (with / without): {rb / ra:.2f}x")
    else:
        print(f"ratio per order event ({b} / {a}): {(rb / events[b]) / (ra / events[a]):.2f}x")


if __name__ == "__main__":
    main()
