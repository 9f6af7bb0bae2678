"""Running a scenario: the one path used by ``abm.run``, the command line and scenario scripts."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional

from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.model.quiet_gc import quiet_gc
from abm.model.scenario import Scenario, VenueSection, revalidate
from abm.results import RunResult, save_run
from abm.results.out_check import check_out
from abm.scenarios.catalogue import load_scenario, to_toml, with_overrides

FROZEN_VENUE = "venue.toml"  # in the run folder, beside config.toml which names it

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
    ``runs/<scenario>-<UTC timestamp>/``. With ``run.amplification`` the scenario's no-feedback control
    (``control_scenario``) runs after it and the summary gains ``control`` and ``amplification``.
    """
    if isinstance(scenario, Scenario):  # built in Python: checked like a file (the schema alone is not enough)
        scn = with_overrides(scenario, overrides, seed) if overrides or seed is not None else revalidate(scenario)
    else:
        scn = load_scenario(scenario, overrides, seed)
    folder = None
    if out is not None:  # before the simulation, not after it
        folder = check_out(default_out(scn.name) if str(out) == "auto" else out)
    result, model = run_model(scn, progress)
    if folder is not None:
        draw = None
        if report:
            from abm.report import render_run_reports  # report.png, and report.html with the extra viz

            draw = render_run_reports
        save_run(result, folder, frozen_config(scn), venue_toml=model.venue.to_toml(),
                 provenance=run_provenance(scn), report=draw)
    return result


def run_model(scn: Scenario, progress: bool = False) -> tuple[RunResult, MarketModel]:
    """The result of a checked scenario and the model that made it (a sweep's metrics read the model)."""
    if scn.run.facts is not None:  # a misspelt report is refused before the run, not after it
        from abm.analysis.cascade_facts import FACT_REPORTS

        FACT_REPORTS.resolve(scn.run.facts)
    model = simulate(scn, progress)
    result = collect_result(scn, model)
    if scn.run.amplification:
        control_scn = control_scenario(scn)
        control = simulate(control_scn, progress, " (no feedback)")
        add_amplification(result.summary, model, control)
        kept = collect_result(control_scn, control)  # its steps and liquidations, decoded like the run's
        result.control_steps, result.control_liquidations = kept.steps, kept.liquidations
    return result, model


def simulate(scn: Scenario, progress: bool = False, label: str = "") -> MarketModel:
    """Build the scenario's model and run it to the end (with a progress bar named ``scn.name + label``)."""
    model = MarketModel(scn)
    n_steps = math.ceil(scn.run.duration_s / scn.run.step_s)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_steps, desc=scn.name + label, unit="step", leave=False)
    with quiet_gc():
        while model.running:
            model.step()
            if bar is not None:
                bar.update(1)
                liq = len(model.exchange.liquidations)
                bar.set_postfix(t=f"{model.time_us / 1e6:.0f}s", liquidations=liq, refresh=False)
    if bar is not None:
        bar.close()
    return model


def control_scenario(scn: Scenario) -> Scenario:
    """The no-feedback control of ``scn``: the same scenario and seed with ``liquidation.process = "no_feedback"``
    among its venue overrides (every liquidated unit closed off the book at the mark) and no control of its own."""
    from abm.margin import NO_FEEDBACK
    from abm.model.scenario import scenario_venue

    venue = scn.venue.model_copy(update={"overrides": {**scn.venue.overrides, "liquidation.process": NO_FEEDBACK}})
    control = revalidate(scn.model_copy(update={"venue": venue,
                                                "run": scn.run.model_copy(update={"amplification": False})}))
    process = scenario_venue(control).profile.liquidation.process
    if process != NO_FEEDBACK:  # e.g. a nested overrides table naming another process after the dotted key
        raise InvalidInput("venue.overrides", dict(scn.venue.overrides),
                           f"must let the control set liquidation.process = {NO_FEEDBACK!r} (it resolved to {process!r})")
    return control


def add_amplification(summary: dict[str, Any], model: MarketModel, control: MarketModel) -> None:
    """The control's liquidated notional and the amplification (``abm.analysis.summary.amplification_summary``)
    into ``summary``, from the two runs' liquidation logs."""
    from abm.analysis.summary import amplification_summary, market_multipliers

    summary.update(amplification_summary(model.exchange.liquidations.to_pandas(),
                                         control.exchange.liquidations.to_pandas(), market_multipliers(model)))


def frozen_scenario(scn: Scenario) -> Scenario:
    """``scn`` naming the run folder's ``venue.toml`` (the profile it ran with, overrides applied) as its venue.

    Why: a shipped profile may change in a later version; the folder's copy keeps ``abm run
    RUN/config.toml`` repeating this run. The profile name, overrides and added rules asked for are in
    provenance.json; the frozen profile holds the rules, so the frozen scenario adds none.
    """
    return scn.model_copy(update={"venue": VenueSection(profile=FROZEN_VENUE, overrides={})})


def frozen_config(scn: Scenario) -> str:
    """config.toml: the resolved scenario with the frozen venue, and a comment saying what was asked for."""
    import json

    asked = f"venue profile {json.dumps(scn.venue.profile)}"
    if scn.venue.overrides:
        asked += f" with overrides {json.dumps(dict(scn.venue.overrides), sort_keys=True, default=str)}"
    if scn.venue.rules:
        asked += f" with the rules {json.dumps(list(scn.venue.rules))} added"
    return (f"# The resolved scenario of this run: `abm run` of this file repeats it exactly.\n"
            f"# {FROZEN_VENUE} (beside it) is the {asked}, as it ran.\n" + to_toml(frozen_scenario(scn)))


def run_provenance(scn: Scenario) -> dict[str, Any]:
    """provenance.json: what the run ran with (versions, build, commit) and what it was (seed, scenario hash)."""
    from abm.results.provenance import provenance
    from abm.scenarios.identity import FORMAT, scenario_hash

    return {**provenance(), "scenario": scn.name, "seed": scn.run.seed,
            "scenario_sha256": scenario_hash(scn), "scenario_hash_format": FORMAT,
            "venue": {"profile": scn.venue.profile, "overrides": dict(scn.venue.overrides), "frozen": FROZEN_VENUE,
                      **({"rules": list(scn.venue.rules)} if scn.venue.rules else {})}}


def default_out(name: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{name}-{stamp}"


def collect_result(scn: Scenario, model: MarketModel) -> RunResult:
    from abm.analysis.summary import run_summary
    from abm.results.accounts import accounts_table
    from abm.results.decode import decode_tables
    from abm.results.spot import spot_accounts_table, spot_markets, spot_trades_table

    ex = model.exchange
    tables = model.tables()
    steps = model.steps_frame().reset_index(drop=True)
    markets = [{"symbol": m.spec.symbol, "tick_size": float(m.spec.tick_size), "lot_size": float(m.spec.lot_size),
                "multiplier": m.spec.multiplier} for m in ex.markets]
    shocks = [{"symbol": m.symbol, "start_s": s.start_s, "duration_s": s.duration_s, "pct": s.pct}
              for m in scn.markets for s in m.shocks]
    multipliers = {i: int(m.spec.multiplier) for i, m in enumerate(ex.markets)}
    summary = run_summary(steps, tables["liquidations"], tables["funding"], multipliers, shocks)
    # orders that did not do what they said: what was asked, what filled, when and why (base units)
    summary["unfilled"] = [{k: r[k] for k in UNFILLED_SUMMARY_KEYS} for r in model.unfilled_records(flows_by_group=True)]
    if model.event_triggers:  # when each triggered venue state fired (None: its condition never came), in config order
        summary["events_fired_s"] = [None if t.fired_us < 0 else t.fired_us / 1e6 for t in model.event_triggers]
    if scn.randomize:  # what this seed drew, so a sweep's rows can be read against it (drawn.<path> columns)
        from abm.model.randomize import draws

        summary["drawn"] = draws(scn.randomize, scn.run.seed)
    quote = model.venue.profile.quote_currency
    qd = ex.markets[0].spec.quote_decimals if ex.markets else 6
    # after the summary: the summary reads the integer columns only
    decoded = decode_tables(tables, markets, quote, qd, start_time=scn.run.start_time)
    result = RunResult(scenario=scn.name, config=scn.model_dump(mode="json"), steps=steps, trades=decoded["trades"],
                       liquidations=decoded["liquidations"], funding=decoded["funding"], markets=markets, shocks=shocks,
                       summary=summary, accounts=accounts_table(model), quote=quote, quote_decimals=qd,
                       spot_trades=spot_trades_table(model, quote, qd, start_time=scn.run.start_time),
                       spot_accounts=spot_accounts_table(model, quote, qd), spot_markets=spot_markets(model))
    if scn.run.facts is not None:  # the scenario's stylized facts against the real event (from the tables only)
        from abm.analysis.cascade_facts import run_facts
        from abm.analysis.summary import plain

        summary["facts"] = plain(run_facts(scn.run.facts, result))
    return result
