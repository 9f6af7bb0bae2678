"""Dynamic margin in whole runs: money is conserved after every step, the factor is a step column only in runs
that have it, and a crash raises it and liquidates more than the static tiers at the same seed."""

from __future__ import annotations

from abm.model import MarketModel
from tests.support import crash_config

# 10 s returns over 2 min against 100 %/yr: the thin test book's mark is noisy at 10 s (microstructure noise reads
# as high annualised vol), so the reference is set above its calm level
VOL = {"kind": "realized_vol", "window_s": 120, "update_s": 10, "reference_vol": 1, "max_multiplier": 3}


def test_a_crash_under_dynamic_margin_conserves_money_and_liquidates_more_than_static_tiers():
    static = MarketModel(crash_config(seed=11, duration_s=360, whale=False), audit=True).run()
    cfg = crash_config(seed=11, duration_s=360, whale=False)
    cfg["venue"]["overrides"] = {"margin.dynamic": VOL}
    dyn = MarketModel(cfg, audit=True).run()  # audit: the conservation equation after every step
    assert "margin_factor" not in static.steps_frame()
    f = dyn.steps_frame()[["time_s", "margin_factor"]]
    t, factor = f["time_s"], f["margin_factor"]
    assert (factor[t < 120] == 1).all()  # the window is not full yet: the static tiers stand
    assert (factor[(t >= 185) & (t < 240)] == 1).all()  # calm before the shock: below the reference
    assert (factor[t >= 260] == 3).all() and factor[t < 240].max() < 3  # the -9 % shock at 240 s: the ceiling
    assert len(dyn.tables()["liquidations"]) > len(static.tables()["liquidations"])
    dyn.exchange.check_conservation()
