"""End-to-end throughput of the model: about 1,000 agents of mixed kinds for one simulated hour.

Prints order events (agents' orders, cancels and modifies reaching the exchange) per wall-clock
second, total events processed by the scheduler, and wall time.

    python bench/model_throughput.py [--duration-s 3600] [--noise 900] [--makers 10] [--leveraged 80] ...
    ABM_PURE_PYTHON=1 python bench/model_throughput.py    # the same run on the Python sources only

The first line says which build ran: the compiled hot modules (setup.py) or pure Python.
"""

from __future__ import annotations

import argparse
import time

from abm._native import compiled_modules
from abm.agents import resolve
from abm.model import MarketModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration-s", type=float, default=3600.0)
    ap.add_argument("--noise", type=int, default=900)
    ap.add_argument("--makers", type=int, default=10)
    ap.add_argument("--leveraged", type=int, default=80)
    ap.add_argument("--arbitrageurs", type=int, default=8)
    ap.add_argument("--whales", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gc", action="store_true",
                    help="also run with Python's default garbage collector (no quiet_gc) and print the CPU ratio")
    args = ap.parse_args()
    groups = {"noise": {"count": args.noise}}
    for kind, n in (("market_maker", args.makers), ("leveraged", args.leveraged), ("arbitrageur", args.arbitrageurs),
                    ("whale", args.whales)):
        if n:
            try:
                resolve(kind)
            except Exception:
                print(f"(agent kind {kind!r} not available: skipped)")
                continue
            groups[kind] = {"count": n}
    cfg = {"name": "throughput", "run": {"seed": args.seed, "duration_s": args.duration_s}, "agents": groups}
    t0 = time.perf_counter()
    model = MarketModel(cfg)
    built = time.perf_counter() - t0
    t1 = time.perf_counter()
    model.run()
    wall = time.perf_counter() - t1
    n_agents = sum(len(v) for v in model.agents_by_kind.values())
    native = compiled_modules()
    print(f"core: {f'compiled with mypyc ({len(native)} modules)' if native else 'pure Python'}")
    model.exchange.check_conservation()
    print(f"agents: {n_agents} ({', '.join(f'{k} {len(v)}' for k, v in sorted(model.agents_by_kind.items()))})")
    print(f"simulated {args.duration_s:,.0f} s in {wall:.1f} s wall (+{built:.1f} s setup)")
    print(f"order events: {model.order_events:,} -> {model.order_events / wall:,.0f} per second end to end")
    print(f"scheduler events: {model.sched.processed:,}; trades: {len(model.tape):,}; "
          f"liquidation steps: {len(model.exchange.liquidations):,}")
    if args.gc:  # the same run, stepped without quiet_gc: what the collector's rescans of the model cost
        cpu_quiet = cpu_of(lambda: MarketModel(cfg).run())
        plain = MarketModel(cfg)
        cpu_plain = cpu_of(lambda: [plain.step() for _ in iter(lambda: plain.running, False)])
        print(f"CPU, collector quiet (run()): {cpu_quiet:.1f} s; default collector: {cpu_plain:.1f} s "
              f"-> {cpu_plain / cpu_quiet:.2f}x")


def cpu_of(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.process_time()
    fn()
    return time.process_time() - t


if __name__ == "__main__":
    main()
