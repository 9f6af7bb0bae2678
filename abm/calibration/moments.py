"""Ready moments of a run for calibrations, as a sweep metrics function: ``metric = "abm.calibration.moments:price_moments"``.

Why: the run's summary holds extremes (the worst depth drop, the largest spread), which are noisy
across seeds and often undefined in a calm run; a method-of-moments fit wants averages that every run
reports and that move smoothly with the parameters. These are read from the first market's per-step
table (``result.steps``), with the stylized facts' estimators (``abm.analysis.stylized``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SECONDS_PER_YEAR = 365 * 86_400


def price_moments(result: Any, model: Any = None) -> dict[str, float]:
    """``mark_vol_1s`` / ``mark_vol_10s`` (annualised std of the mark's log returns over 1 s and 10 s), ``mark_kurtosis_10s``
    (excess kurtosis), ``mark_acf_abs_1s`` (lag-1 autocorrelation of |r|), ``spread_bps_mean``, ``depth_1pct_mean``
    (bid + ask notional within 1 %), ``taker_volume_per_s`` (base units) and ``open_interest_end``."""
    from abm.analysis.stylized import stylized_facts

    steps = result.steps
    facts = stylized_facts(steps, "mark", (1, 10))
    out: dict[str, float] = {}
    for h, row in facts.iterrows():
        std = float(row["std"])
        out[f"mark_vol_{int(h)}s"] = std * math.sqrt(SECONDS_PER_YEAR / float(h)) if math.isfinite(std) else math.nan
    out["mark_kurtosis_10s"] = float(facts.loc[10.0, "excess_kurtosis"])
    out["mark_acf_abs_1s"] = float(facts.loc[1.0, "acf_abs_r_1"])

    def mean(col: str) -> float:
        x = steps[col].to_numpy(float) if col in steps else np.zeros(0)
        x = x[np.isfinite(x)]
        return math.fsum(x) / x.size if x.size else math.nan

    out["spread_bps_mean"] = mean("spread_bps")
    depth = (steps["depth_bid_1pct"] + steps["depth_ask_1pct"]) if "depth_bid_1pct" in steps else None
    x = depth.to_numpy(float) if depth is not None else np.zeros(0)
    x = x[np.isfinite(x)]
    out["depth_1pct_mean"] = math.fsum(x) / x.size if x.size else math.nan
    duration = float(steps["time_s"].iloc[-1]) if len(steps) else math.nan
    volume = math.fsum(steps["volume_taker_buy"].to_numpy(float)) + math.fsum(steps["volume_taker_sell"].to_numpy(float))
    out["taker_volume_per_s"] = volume / duration if duration and math.isfinite(duration) else math.nan
    out["open_interest_end"] = float(steps["open_interest"].iloc[-1]) if len(steps) else math.nan
    return out
