"""oct10_2025 against the real 2025-10-10/11 cascade: the stylized facts it hits, and the ones it misses.

The real figures are shared/reference/venue-mechanics.md, "What real cascades looked like". How each
tolerance (abm.analysis.cascade_facts.oct10_2025) follows from them:

- a range the reference gives is the tolerance as it is: 1% depth -90..-98%; best bid 4..10% below;
  spreads 1..22% (100..2200 bps);
- "within minutes" is at most 10 min; "for minutes" at least 1 min; "tens of minutes" 5..60 min;
- a single real time or leverage (first ADL 62 s, first wave gap 52 s, later gaps 4 s, leverage
  0.15-0.2x) is one event on a venue 4000 times larger, so a factor of 2 either way: 31..124 s,
  26..104 s, 2..8 s, 0.075..0.4x;
- a share (ADL 38% of liquidated notional, 94.5% of ADL'd accounts in profit) +-15 points (0.23..0.53,
  >= 0.795);
- BTC -13% then +12% within 30 min: a factor of 2 (-6.5%..-26%, +6%..+24%);
- bursty: the burstiness of the gaps between liquidations is above 0 (a Poisson stream is 0);
  funding: its largest move comes after the price trough.

Seeds 1 and 3 (~20 s of CPU each, pure Python). A fact the scenario misses on a seed is a strict xfail
with the measured value, so the day it starts to hit, the test says so.
"""

from __future__ import annotations

import json

import pytest

import abm
from abm.errors import InvalidInput
from abm.scenarios import load_scenario

SEEDS = (1, 3)

# what each seed measured (seed -> simulated value) for the facts it misses: the gaps the report states
MISSES: dict[tuple[str, int], str] = {
    ("BTC 1% depth drop", 1): "1.00 (the 1% band empties completely; real at most 0.98)",
    ("BTC 1% depth drop", 3): "0.998 (real at most 0.98)",
    ("BTC best bid below the mark, worst", 1): "2.9% (real 4-10%): noise limit orders keep a bid near the mid",
    ("BTC best bid below the mark, worst", 3): "2.6% (real 4-10%)",
    ("BTC bids >= 4% away for minutes", 1): "1 s (real minutes)",
    ("BTC bids >= 4% away for minutes", 3): "2 s (real minutes)",
    ("first ADL after the first liquidation", 1): "15 s (real ~62 s): the vault fills in the first burst",
    ("gap between the first two ADL waves", 1): "3 s (real 52 s)",
    ("gap between the first two ADL waves", 3): "7 s (real 52 s)",
    ("median gap between later ADL waves", 1): "none: only two ADL waves (real median 4 s)",
    ("median gap between later ADL waves", 3): "164 s (real 4 s)",
}

FACTS = ("BTC 1% depth drop", "BTC 1% depth trough comes within minutes",
         "BTC 1% depth back to half within tens of minutes", "BTC best bid below the mark, worst",
         "BTC bids >= 4% away for minutes", "spread peak (any market)", "first ADL after the first liquidation",
         "ADL notional / liquidated notional", "ADL counterparties in profit", "ADL counterparties' median leverage",
         "gap between the first two ADL waves", "median gap between later ADL waves",
         "liquidations bursty (burstiness of gaps)", "BTC fall to the trough",
         "BTC rebound within 30 min of the trough", "funding most extreme after the price trough")

_RUNS: dict[int, dict[str, dict]] = {}


def _facts(seed: int) -> dict[str, dict]:
    if seed not in _RUNS:
        summary = abm.run("oct10_2025", seed=seed).summary
        json.dumps(summary, allow_nan=False)  # the rows go into summary.json as they are
        _RUNS[seed] = {r["fact"]: r for r in summary["facts"]}
    return _RUNS[seed]


def _cases() -> list:
    out = []
    for seed in SEEDS:
        for fact in FACTS:
            gap = MISSES.get((fact, seed))
            marks = [pytest.mark.xfail(strict=True, reason=f"misses on seed {seed}: {gap}")] if gap else []
            out.append(pytest.param(seed, fact, marks=marks, id=f"seed{seed}-{fact}"))
    return out


@pytest.mark.parametrize(("seed", "fact"), _cases())
def test_fact_within_its_tolerance(seed: int, fact: str) -> None:
    row = _facts(seed)[fact]
    assert row["simulated"] is not None, row
    assert row["lo"] <= row["simulated"] <= row["hi"], row
    assert row["hit"] and row["off_by"] == 0.0


def test_the_report_covers_every_fact_and_states_each_source() -> None:
    rows = _facts(SEEDS[0])
    assert set(rows) == set(FACTS)
    for r in rows.values():
        assert r["real"] and "venue-mechanics.md" in r["source"] and r["lo"] <= r["hi"]
        assert r["hit"] == (r["off_by"] == 0.0)


def test_a_scenario_without_facts_has_none_and_an_unknown_report_is_refused() -> None:
    assert "facts" not in load_scenario("baseline").model_dump(mode="json")["run"]  # its hash is unchanged
    with pytest.raises(InvalidInput) as e:  # before the run: this returns at once
        abm.run("oct10_2025", {"run.facts": "oct10_2052"})
    assert "run.facts" in str(e.value) and "oct10_2025" in str(e.value)
