"""Running a scenario: the one path used by ``abm.run``, the command line and scenario scripts."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional

from abm.model import MarketModel
from abm.results import RunResult, save_run
from abm.results.out_check import check_out
from abm.scenarios.catalogue import load_scenario, model_config, to_toml, with_overrides
from abm.scenarios.schema import Scenario, revalidate

# "agent" is the index in the group, None for a background flow's row (its shortfalls summed over the group)
UNFILLED_SUMMARY_KEYS = ("group", "agent", "kind", "symbol", "what", "requested", "filled", "orders", "time_s", "reason")


def run(
    scenario: str | Path | Scenario,
    overrides: Optional[Mapping[str, Any]] = None,
    seed: Optional[int] = None,
    out: Optional[str | Path] = None,
    progress: bool = False,
    report: bool = True,
) -> RunResult:
    """Run a catalogue scenario (name), a scenario file (path) or a Scenario object; optionally save it.

    With ``out`` the run is written there (atomically) with its report; ``out="auto"`` means
    ``runs/<scenario>-<UTC timestamp>/``.
    """
    if isinstance(scenario, Scenario):  # built in Python: checked like a file (the schema alone is not enough)
        scn = with_overrides(scenario, overrides, seed) if overrides or seed is not None else revalidate(scenario)
    else:
        scn = load_scenario(scenario, overrides, seed)
    folder = None
    if out is not None:  # before the simulation, not after it
        folder = check_out(default_out(scn.name) if str(out) == "auto" else out)
    cfg = model_config(scn)
    model = MarketModel(cfg)
    n_steps = math.ceil(cfg.duration_s / cfg.step_s)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_steps, desc=scn.name, unit="step", leave=False)
    while model.running:
        model.step()
        if bar is not None:
            bar.update(1)
            liq = len(model.exchange.liquidations)
            bar.set_postfix(t=f"{model.time_us / 1e6:.0f}s", liquidations=liq, refresh=False)
    if bar is not None:
        bar.close()
    result = collect_result(scn, model)
    if folder is not None:
        save_run(result, folder, to_toml(scn))
        if report:
            from abm.report import render_report

            render_report(result, folder / "report.png")
    return result


def default_out(name: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{name}-{stamp}"


def collect_result(scn: Scenario, model: MarketModel) -> RunResult:
    from abm.analysis.summary import run_summary

    ex = model.exchange
    tables = model.tables()
    steps = model.steps_frame().reset_index(drop=True)
    markets = [{"symbol": m.spec.symbol, "tick_size": float(m.spec.tick_size), "lot_size": float(m.spec.lot_size),
                "multiplier": m.spec.multiplier} for m in ex.markets]
    shocks = [{"symbol": m.symbol, "start_s": s.start_s, "duration_s": s.duration_s, "pct": s.pct}
              for m in scn.markets for s in m.shocks]
    multipliers = {i: m["multiplier"] for i, m in enumerate(markets)}
    summary = run_summary(steps, tables["liquidations"], tables["funding"], multipliers, shocks)
    # orders that did not do what they said: what was asked, what filled, when and why (base units)
    summary["unfilled"] = [{k: r[k] for k in UNFILLED_SUMMARY_KEYS} for r in model.unfilled_records(flows_by_group=True)]
    return RunResult(scenario=scn.name, config=scn.model_dump(mode="json"), steps=steps, trades=tables["trades"],
                     liquidations=tables["liquidations"], funding=tables["funding"], markets=markets, shocks=shocks,
                     summary=summary)
