"""Staircase sell-off: the index falls 8% in 4 equal down-steps of 20 s, with 90 s pauses between them.

A scenario script: whale_dump's market and population (without the whale) with a shock schedule
computed from a formula. What it answers: does the same total drop liquidate less when it comes in
steps, with pauses in which market makers re-quote and depth returns, than as one slide?
Run it with `python scenarios/staircase_shock.py` or `abm run scenarios/staircase_shock.py`
(both take --set, --seed, --out and --no-progress).
"""

from __future__ import annotations

from abm.scenarios import Scenario, load_scenario

TOTAL_PCT = -8.0  # the whole fall, percent
STEPS = 4         # equal down-steps (equal in price ratio, so they compound to TOTAL_PCT exactly)
STEP_S = 20.0     # how long each step takes
PAUSE_S = 90.0    # flat pause between steps
START_S = 300.0   # first step starts here


def shock_schedule(total_pct: float = TOTAL_PCT, steps: int = STEPS, step_s: float = STEP_S,
                   pause_s: float = PAUSE_S, start_s: float = START_S) -> list[dict[str, float]]:
    """``steps`` moves of (1 + total)^(1/steps) - 1 each, every ``step_s + pause_s`` seconds."""
    each = 100.0 * ((1.0 + total_pct / 100.0) ** (1.0 / steps) - 1.0)
    return [{"start_s": start_s + k * (step_s + pause_s), "duration_s": step_s, "pct": each} for k in range(steps)]


def scenario() -> Scenario:
    raw = load_scenario("whale_dump").model_dump(mode="json")
    raw["name"] = "staircase_shock"
    raw["description"] = __doc__
    raw["agents"].pop("whale")
    raw["markets"][0]["shocks"] = shock_schedule()
    raw["run"]["duration_s"] = START_S + STEPS * (STEP_S + PAUSE_S) + 120.0
    return Scenario.model_validate(raw)


if __name__ == "__main__":
    from abm.cli import script_main

    script_main(scenario)
