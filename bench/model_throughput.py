"""End-to-end throughput of the model: about 1,000 agents of mixed kinds for one simulated hour.

Prints order events (agents' orders, cancels and modifies reaching the exchange) per wall-clock
second, total events processed by the scheduler, and wall time.

    python bench/model_throughput.py [--duration-s 3600] [--noise 900] [--makers 10] [--leveraged 80] ...
    ABM_PURE_PYTHON=1 python bench/model_throughput.py    # the same run on the Python sources only
    python bench/model_throughput.py --spot [--repeat 3]  # perp-only paired with the spot configuration
    python bench/model_throughput.py --gateway [--repeat 3]  # perp-only paired with the same through a gateway

The first line says which build ran: the compiled hot modules (setup.py) or pure Python.

``--spot`` (issue 14's bar): the same crowd with the index made by the venues: two simulated spot
venues (binance, okx; weights 3 and 2 as Hyperliquid's oracle) plus five exogenous sources, market
makers and noise flow on each spot book, and the arbitrageurs hedging through the spot books
(``spot_venue``). It runs alternately with the perp-only configuration in this one process (``--repeat``
pairs; the medians are compared) and prints both throughputs, their CPU time and the ratio; the bar
is a ratio of at least 0.6 in order events per second (every venue's events count: the spot crowd's
orders reach an exchange through the same link).

``--gateway`` (issue 17): the perp-only crowd with and without a venue gateway (``--gateway-service-ms`` per
action, no queue limit, and a per-account rate limit that never binds), alternated like ``--spot``; the ratio
of order events per second is what the gateway costs (one queue step and one scheduler event per action).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from abm._native import compiled_modules
from abm.agents import resolve
from abm.model import MarketModel

SPOT_VENUES = {"binance": 3, "okx": 2}  # simulated spot venues and their index weights (Hyperliquid's oracle)
EXOGENOUS = {"bybit": 2, "kraken": 1, "kucoin": 1, "gate": 1, "mexc": 1}  # exogenous index sources
SPOT_BAR = 0.6  # issue 14: the spot configuration keeps at least 60% of the perp-only throughput


def perp_config(args: argparse.Namespace) -> dict[str, Any]:
    groups: dict[str, Any] = {"noise": {"count": args.noise}}
    for kind, n in (("market_maker", args.makers), ("leveraged", args.leveraged), ("arbitrageur", args.arbitrageurs),
                    ("whale", args.whales)):
        if n:
            try:
                resolve(kind)
            except Exception:
                print(f"(agent kind {kind!r} not available: skipped)")
                continue
            groups[kind] = {"count": n}
    return {"name": "throughput", "run": {"seed": args.seed, "duration_s": args.duration_s}, "agents": groups}


def spot_config(args: argparse.Namespace) -> dict[str, Any]:
    """The perp crowd, the index made by two simulated spot venues and five exogenous sources, a spot crowd on each
    spot book, and the arbitrageurs split over the spot venues for their hedges."""
    cfg = perp_config(args)
    groups = dict(cfg["agents"])
    arbs = groups.pop("arbitrageur", None)
    names = list(SPOT_VENUES)
    for j, name in enumerate(names):
        if args.spot_makers:
            groups[f"mm_{name}"] = {"kind": "market_maker", "count": args.spot_makers, "venue": name,
                                    "deposit_usdc": 2_000_000, "spot_inventory": 20.0, "reference": "mid",
                                    "max_inventory": 15.0}
        if args.spot_noise:
            groups[f"noise_{name}"] = {"kind": "noise", "count": args.spot_noise, "venue": name,
                                       "deposit_usdc": 1_000_000, "spot_inventory": 10.0}
        if arbs:
            n = arbs["count"] // len(names) + (j < arbs["count"] % len(names))
            if n:
                groups[f"arb_{name}"] = {"kind": "arbitrageur", "count": n, "spot_venue": name}
    market = {"symbol": "BTC-PERP", "index": "venues",
              "index_sources": [{"name": n, "weight": w, "noise_bps": 2.0} for n, w in EXOGENOUS.items()]}
    spot = {n: {"weight": w, "lending": 200.0, "borrow_bps_per_day": 5.0} for n, w in SPOT_VENUES.items()}
    return {**cfg, "name": "throughput_spot", "markets": [market], "spot": spot, "agents": groups}


def timed_run(cfg: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    model = MarketModel(cfg)
    built = time.perf_counter() - t0
    c1, t1 = time.process_time(), time.perf_counter()
    model.run()
    wall, cpu = time.perf_counter() - t1, time.process_time() - c1
    model.exchange.check_conservation()
    for sx in model.spot_venues.values():
        sx.check_conservation()
    spot_events = sum(a.actions for role, agents in model.agents_by_role.items() if "@" in role for a in agents)
    return {"model": model, "built": built, "wall": wall, "cpu": cpu, "events": model.order_events,
            "spot_events": spot_events}


def describe(r: dict[str, Any], duration_s: float) -> None:
    model = r["model"]
    n_agents = sum(len(v) for v in model.agents_by_group.values())
    print(f"agents: {n_agents} ({', '.join(f'{k} {len(v)}' for k, v in model.agents_by_group.items())})")
    print(f"simulated {duration_s:,.0f} s in {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU (+{r['built']:.1f} s setup)")
    print(f"order events: {r['events']:,} -> {r['events'] / r['wall']:,.0f} per second end to end")
    if model.spot_venues:
        print(f"  of which on the spot books by the spot crowd: {r['spot_events']:,}; index sources: "
              f"{len(next(iter(model.indices.values())).sources)}")
    print(f"scheduler events: {model.sched.processed:,}; trades: {len(model.tape):,}; "
          f"liquidation steps: {len(model.exchange.liquidations):,}")


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
    ap.add_argument("--spot", action="store_true",
                    help="run the perp-only configuration paired with the spot one (two spot venues, five exogenous "
                         "sources) and print both throughputs and their ratio")
    ap.add_argument("--spot-makers", type=int, default=5, help="--spot: market makers on each spot venue")
    ap.add_argument("--spot-noise", type=int, default=300, help="--spot: noise traders on each spot venue")
    ap.add_argument("--gateway", action="store_true",
                    help="run the perp-only configuration paired with the same one through a venue gateway (a queue "
                         "and a rate limit that never refuses) and print both throughputs and their ratio")
    ap.add_argument("--gateway-service-ms", type=float, default=1.0, help="--gateway: service time per action (ms)")
    ap.add_argument("--repeat", type=int, default=1, help="--spot, --gateway: pairs of runs, alternated; medians compared")
    args = ap.parse_args()
    native = compiled_modules()
    print(f"core: {f'compiled with mypyc ({len(native)} modules)' if native else 'pure Python'}")
    cfg = perp_config(args)
    if args.spot:
        paired(cfg, spot_config(args), args)
        return
    if args.gateway:
        paired(cfg, gateway_config(cfg, args), args, ("perp", "gateway"), bar=None)
        return
    r = timed_run(cfg)
    describe(r, args.duration_s)
    if args.gc:  # the same run, stepped without quiet_gc: what the collector's rescans of the model cost
        cpu_quiet = cpu_of(lambda: MarketModel(cfg).run())
        plain = MarketModel(cfg)
        cpu_plain = cpu_of(lambda: [plain.step() for _ in iter(lambda: plain.running, False)])
        print(f"CPU, collector quiet (run()): {cpu_quiet:.1f} s; default collector: {cpu_plain:.1f} s "
              f"-> {cpu_plain / cpu_quiet:.2f}x")


def gateway_config(cfg: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The same crowd through a venue gateway that queues (``--gateway-service-ms`` per action, no queue limit)
    and keeps a per-account rate limit that never binds: what the gateway's bookkeeping costs per action."""
    gateway = {"service_s": args.gateway_service_ms / 1000,
               "rate_limits": [{"name": "orders_10s", "window_s": 10, "limit": 10**9}]}
    return {**cfg, "name": "throughput_gateway", "venue": {"overrides": {"gateway": gateway}}}


LABELS = {"perp": "perp-only", "spot": "spot (index by venues)", "gateway": "with the venue gateway"}


def paired(first: dict[str, Any], second: dict[str, Any], args: argparse.Namespace,
           names: tuple[str, str] = ("perp", "spot"), bar: float | None = SPOT_BAR) -> None:
    """Two configurations alternated in this process, so both meet the same machine; medians compared."""
    rates: dict[str, list[float]] = {n: [] for n in names}
    cpu_rates: dict[str, list[float]] = {n: [] for n in names}
    for k in range(max(1, args.repeat)):
        for name, cfg in zip(names, (first, second)):
            r = timed_run(cfg)
            print(f"--- {LABELS[name]}", f"(pair {k + 1})")
            describe(r, args.duration_s)
            if name == "gateway":
                gw = r["model"].gateway
                print(f"  gateway: {gw.served:,} actions served, {gw.refused:,} refused")
            rates[name].append(r["events"] / r["wall"])
            cpu_rates[name].append(r["events"] / r["cpu"])
            del r
    a, b = names
    p, s = statistics.median(rates[a]), statistics.median(rates[b])
    pc, sc = statistics.median(cpu_rates[a]), statistics.median(cpu_rates[b])

    def verdict(r: float) -> str:
        return "" if bar is None else f" ({'met' if r >= bar else 'NOT met'})"

    # on a shared machine wall time carries the other processes' load; CPU time is this process's own
    print(f"=== order events per wall second (median of {len(rates[a])}): {LABELS[a]} {p:,.0f}, {LABELS[b]} {s:,.0f} "
          f"-> ratio {s / p:.2f}{verdict(s / p)}; per CPU second: {pc:,.0f} and {sc:,.0f} -> ratio {sc / pc:.2f}"
          f"{verdict(sc / pc)}" + (f"; bar >= {bar}" if bar is not None else ""))


def cpu_of(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.process_time()
    fn()
    return time.process_time() - t


if __name__ == "__main__":
    main()
