"""What requoting on fill changes in the market makers' fills per run (issue 15).

The catalogue's ``baseline`` with its makers requoting every second (``wake_every_s = 1``), run with and
without ``requote_on_fill`` on the same seeds; per seed: the makers' fills (count and lots, read from the
tape by maker account), the notices they heard and their refreshes. Extra overrides go in as JSON, e.g.
``'{"agents.market_maker.max_skew_bps": 0.01}'`` for makers that do not skew.

    ABM_PURE_PYTHON=1 python bench/requote_on_fill.py [--duration-s 120] [--seeds 1 2 3] [--set JSON]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from abm.scenarios import load_scenario
from abm.scenarios.runner import simulate


def maker_fills(requote: bool, seed: int, duration_s: float, extra: dict[str, Any]) -> tuple[int, int, int, int]:
    """(fills, lots, notices heard, refreshes) of the makers in one run."""
    scn = load_scenario("baseline", {"run.duration_s": duration_s, "agents.market_maker.wake_every_s": 1.0,
                                     "agents.market_maker.requote_on_fill": requote, **extra}, seed)
    model = simulate(scn)
    trades = model.tables()["trades"]
    makers = model.agents_by_kind["market_maker"]
    mine = trades[trades.maker_account.isin([a.account for a in makers])]
    return len(mine), int(mine.qty.sum()), sum(a.fill_notices for a in makers), sum(a.refreshes for a in makers)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration-s", type=float, default=120.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--set", default="{}", help="more overrides, a JSON object of dotted paths")
    args = ap.parse_args()
    extra = json.loads(args.set)
    for seed in args.seeds:
        off = maker_fills(False, seed, args.duration_s, extra)
        on = maker_fills(True, seed, args.duration_s, extra)
        print(f"seed {seed}: fills {off[0]} -> {on[0]} ({100 * (on[0] - off[0]) / max(1, off[0]):+.1f}%), "
              f"lots {off[1]} -> {on[1]} ({100 * (on[1] - off[1]) / max(1, off[1]):+.1f}%), "
              f"notices {on[2]}, refreshes {off[3]} -> {on[3]}", flush=True)


if __name__ == "__main__":
    main()
