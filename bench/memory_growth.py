"""What a run's memory grows with (issue 18): resident memory against simulated time, and what holds it.

Builds the crowd of ``bench/model_throughput.py`` with ``--noise`` background traders (50,000 agents by default),
steps it, and every ``--sample-s`` simulated seconds prints the process's resident memory (VmRSS), the trade
tape's rows and the resting orders of every book. At the end it prints the memory at construction, the growth
per simulated minute over the last half of the run (after the books have filled towards their equilibrium of
about alpha x window / delta resting orders per noise trader), the bytes per fill that growth amounts to, and
what a 24-hour run at that rate would hold. The target (issue 18) is 600 MB for a 24-hour run at 50,000 agents.

    python bench/memory_growth.py [--noise 49900] [--duration-s 240] [--sample-s 30]
    ABM_PURE_PYTHON=1 python bench/memory_growth.py --noise 5000 --duration-s 600

Linux only (it reads /proc/self/status). One core; a 50,000-agent run of 240 s takes about 5 minutes of CPU pure
Python.
"""

from __future__ import annotations

import argparse
import resource
import time

from model_throughput import perp_config

from abm._native import compiled_modules
from abm.model import MarketModel


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def resting_orders(model: MarketModel) -> int:
    books = [m.book for m in model.exchange.markets]
    for sx in model.spot_venues.values():
        books += [m.book for m in sx.markets]
    return sum(len(b) for b in books)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--noise", type=int, default=49_900)
    ap.add_argument("--makers", type=int, default=10)
    ap.add_argument("--leveraged", type=int, default=80)
    ap.add_argument("--arbitrageurs", type=int, default=8)
    ap.add_argument("--whales", type=int, default=2)
    ap.add_argument("--duration-s", type=float, default=240.0)
    ap.add_argument("--sample-s", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    native = compiled_modules()
    print(f"core: {f'compiled with mypyc ({len(native)} modules)' if native else 'pure Python'}")
    start = rss_mb()
    model = MarketModel(perp_config(args))
    built = rss_mb()
    print(f"{len(model.agents):,} agents: {start:,.0f} MB before construction, {built:,.0f} MB after "
          f"({(built - start) * 1024 / len(model.agents):.1f} KB an agent)")
    print(f"{'sim s':>7} {'RSS MB':>8} {'tape rows':>11} {'resting':>9} {'CPU s':>7}")
    samples: list[tuple[float, float, int]] = []
    t0 = time.process_time()
    every_us = round(args.sample_s * 1e6)
    next_us = every_us
    while model.running:
        model.step()
        if model.time_us >= next_us or not model.running:
            next_us += every_us
            s = model.time_us / 1e6
            samples.append((s, rss_mb(), len(model.tape)))
            print(f"{s:7.0f} {samples[-1][1]:8,.0f} {len(model.tape):11,} {resting_orders(model):9,} "
                  f"{time.process_time() - t0:7.0f}", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    half = [x for x in samples if x[0] >= samples[-1][0] / 2]
    (s0, m0, f0), (s1, m1, f1) = half[0], half[-1]
    if s1 > s0 and f1 > f0:
        per_min = (m1 - m0) / (s1 - s0) * 60
        print(f"peak {peak:,.0f} MB; growth over the last half: {per_min:,.1f} MB a simulated minute, "
              f"{(m1 - m0) * 2**20 / (f1 - f0):.0f} bytes a fill ({(f1 - f0) / (s1 - s0):,.0f} fills/s); "
              f"24 hours at that rate: {m1 + per_min * (1440 - s1 / 60):,.0f} MB (target 600)")
    else:
        print(f"peak {peak:,.0f} MB; the run is too short to measure growth (lengthen --duration-s)")


if __name__ == "__main__":
    main()
