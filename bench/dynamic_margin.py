"""Static tiers against dynamic margin on ``whale_dump``: liquidated notional per seed, paired by seed.

Each seed runs three times with only the venue's margin rule changed (``venue.overrides``), so every
difference is the rule's: the static tiers, ``realized_vol`` (the marks sampled every 10 s, a 300 s window,
factor = realized vol / 50 %, at most 3x) and ``open_interest`` (factor = open interest / 10M USDC, at most 3x).
It prints each run's liquidated notional (USDC, the summary's total), how many units were liquidated, and the
factor's peak and the time it first left 1, then the medians. The same comparison as a sweep is one grid over
``venue.overrides``.

    python bench/dynamic_margin.py [--seeds 1 2 3 4 5] [--scenario whale_dump]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any, Optional

import abm

VARIANTS: dict[str, Optional[dict[str, Any]]] = {
    "static": None,
    "realized_vol": {"kind": "realized_vol", "window_s": 300, "update_s": 10, "reference_vol": 0.5,
                     "max_multiplier": 3},
    "open_interest": {"kind": "open_interest", "update_s": 10, "reference_usdc": 10_000_000, "max_multiplier": 3},
}


def one(scenario: str, seed: int, dynamic: Optional[dict[str, Any]]) -> tuple[float, int, float, float]:
    over = {} if dynamic is None else {"venue.overrides": {"margin.dynamic": dynamic}}
    r = abm.run(scenario, over, seed=seed, report=False)
    liq = r.summary["liquidated_notional"]["total"]
    units = len(r.liquidations[r.liquidations["kind"].isin(["book", "backstop"])].drop_duplicates(["account"]))
    steps = r.steps
    if "margin_factor" not in steps:
        return liq, units, 1.0, float("nan")
    above = steps[steps["margin_factor"] > 1]
    return liq, units, float(steps["margin_factor"].max()), float(above["time_s"].iloc[0]) if len(above) else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--scenario", default="whale_dump")
    args = ap.parse_args()
    totals: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for seed in args.seeds:
        for name, dyn in VARIANTS.items():
            liq, units, peak, first = one(args.scenario, seed, dyn)
            totals[name].append(liq)
            print(f"seed {seed} {name:>13}: liquidated {liq:>14,.0f} USDC, {units:>3} accounts; factor peak {peak:.2f}"
                  f", first above 1 at {first:.0f} s", flush=True)
    for name, xs in totals.items():
        ratio = [x / s for x, s in zip(xs, totals["static"]) if s]
        print(f"median {name:>13}: {statistics.median(xs):>14,.0f} USDC"
              + (f" ({statistics.median(ratio):.2f}x static, paired)" if name != "static" and ratio else ""))


if __name__ == "__main__":
    main()
