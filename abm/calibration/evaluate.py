"""The evaluations of a calibration: parameter vectors in, objective values out, runs and records in between.

An evaluation runs the scenario with one parameter vector on the calibration's seeds, as sweep runs
(``PlannedRun``s with sweep run ids, rows written by ``abm.sweeps.local.execute`` into ``OUT/runs/``,
on the backend the calibration keeps open), reads each run's moment columns from its row and records
the evaluation (``OUT/evaluations/<id>.json``). Within one calibration an evaluation asked for again
is taken from memory; with ``resume``, from its record; a run whose row exists is never run again.
The start point is evaluated first: it must succeed, and it fixes the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from abm.calibration import store
from abm.calibration.objective import CalibrationFailed, evaluation_id, moment_value, objective, weights
from abm.calibration.targets import Targets, parameter_value
from abm.errors import InvalidInput


@dataclass(slots=True)
class Evaluation:
    """One parameter vector on the calibration's seeds: its values as run, per-seed moments (seeds x moments) and
    run errors (empty strings when fine)."""

    id: str
    params: tuple[tuple[str, Any], ...]
    per_seed: np.ndarray
    errors: list[str]
    objective: float = math.nan



class Evaluator:
    """The objective the optimiser calls: parameter vectors in, objective values out, runs and records in between."""

    def __init__(self, targets: Targets, scenario: Any, sha: str, out: Path, backend: Any, resume: bool,
                 bar: Any) -> None:
        from abm.sweeps.metrics import RowMetrics
        from abm.sweeps.plan import common_seed

        self.targets = targets
        self.spec = targets.spec
        self.scenario = scenario  # the base Scenario
        self.sha = sha
        self.out = out
        self.backend = backend
        self.resume = resume
        self.bar = bar
        self.names = list(self.spec.moments)
        self.columns = [targets.columns[n] for n in self.names]
        self.goal = np.array([self.spec.moments[n].target for n in self.names])
        self.seeds = [common_seed(self.spec.base_seed, r) for r in range(self.spec.seeds)]
        self.metrics = RowMetrics(targets.metrics) if targets.metrics else RowMetrics()
        self.w: Optional[np.ndarray] = None
        self.cache: dict[str, Evaluation] = {}
        self.order: list[str] = []
        self.ran = 0
        self.reused = 0

    # ------------------------------------------------------------------ parameter vectors

    def params_of(self, x: Sequence[float]) -> tuple[tuple[str, Any], ...]:
        return tuple(sorted((p.path, parameter_value(p, float(v))) for p, v in zip(self.spec.parameters, x)))

    def sweep_plan(self, runs: list[Any]) -> Any:
        from abm.sweeps.plan import SweepPlan

        return SweepPlan(self.scenario.name, self.sha, self.spec.base_seed, runs, common_seeds=True)

    def _planned(self, params: tuple[tuple[str, Any], ...]) -> list[Any]:
        from abm.scenarios import with_overrides
        from abm.sweeps.identity import run_id
        from abm.sweeps.plan import PlannedRun

        scn = with_overrides(self.scenario, dict(params))
        return [PlannedRun(run_id(self.sha, self.spec.base_seed, params, rep), params, rep, seed, scn)
                for rep, seed in enumerate(self.seeds)]

    # ------------------------------------------------------------------ evaluating

    def many(self, xs: Sequence[Any]) -> list[float]:
        """The objective at each vector; the missing evaluations' runs go to the backend as one batch."""
        from abm.sweeps.local import execute
        from abm.sweeps.plan import PlannedRun

        keys = [self.params_of(x) for x in xs]
        ids = [evaluation_id(self.sha, k, self.seeds, self.targets.metrics) for k in keys]
        wanted: dict[str, tuple[tuple[str, Any], ...]] = {}
        for eid, k in zip(ids, keys):
            if eid not in self.cache and eid not in wanted:
                if self.resume and self._recorded(eid, k):
                    continue
                wanted[eid] = k
        runs: dict[str, list[PlannedRun]] = {eid: self._planned(k) for eid, k in wanted.items()}
        rows_dir = self.out / store.RUNS / "rows"
        todo = [r for rs in runs.values() for r in rs if not (rows_dir / f"{r.run_id}.parquet").is_file()]
        execute(self.sweep_plan([r for rs in runs.values() for r in rs]), todo, rows_dir, self.backend, False,
                self.metrics)
        for eid, k in wanted.items():
            self.cache[eid] = self._from_rows(eid, k, runs[eid], rows_dir)
            self.ran += 1
        out = []
        for eid in ids:
            ev = self.cache[eid]
            if eid not in self.order:
                self.order.append(eid)
                if self.bar is not None:
                    self.bar.update(1)
            if self.w is not None and math.isnan(ev.objective):
                self._score(ev)
            out.append(ev.objective)
        if self.bar is not None and self.order:
            self.bar.set_postfix(best=f"{min(self.cache[e].objective for e in self.order):.4g}")
        return out

    def one(self, x: Any) -> float:
        return self.many([x])[0]

    def _recorded(self, eid: str, params: tuple[tuple[str, Any], ...]) -> bool:
        rec = store.read_evaluation(self.out, eid)
        if rec is None or any(c not in rec.get("columns", {}) for c in self.columns):
            return False  # not recorded, or recorded for other moments: rebuilt from its rows
        per_seed = np.array([[math.nan if v is None else float(v) for v in rec["columns"][c]] for c in self.columns]).T
        self.cache[eid] = Evaluation(eid, params, per_seed.reshape(len(self.seeds), len(self.columns)),
                                     list(rec.get("errors", [""] * len(self.seeds))))
        self.reused += 1
        return True

    def _from_rows(self, eid: str, params: tuple[tuple[str, Any], ...], runs: list[Any], rows_dir: Path) -> Evaluation:
        rows = [pd.read_parquet(rows_dir / f"{r.run_id}.parquet").iloc[0] for r in runs]
        errors = [str(row.get("error", "") or "") for row in rows]
        per_seed = np.full((len(rows), len(self.columns)), math.nan)
        for i, row in enumerate(rows):
            if errors[i]:
                continue
            for k, (name, col) in enumerate(zip(self.names, self.columns)):
                if col not in row.index:
                    raise self._no_column(name, col, row)
                per_seed[i, k] = moment_value(f"moments.{name}", None if pd.isna(row[col]) else row[col])
        ev = Evaluation(eid, params, per_seed, errors)
        self._record(ev, [r.run_id for r in runs])
        return ev

    def _no_column(self, name: str, col: str, row: pd.Series) -> InvalidInput:
        import difflib

        m = self.spec.moments[name]
        if m.metric is not None:
            have = sorted(c.removeprefix("metric.") for c in row.index if c.startswith("metric."))
            return InvalidInput(f"moments.{name}.key", m.key or name, f"must be a key that {m.metric} returns "
                                                                     f"(it returned {have})")
        skip = {"run_id", "replicate", "seed", "error", "traceback", "wall_s", "scenario", "scenario_hash", "base_seed"}
        have = sorted(c for c in row.index if c not in skip and not c.startswith(("param.", "metric.", "agent.")))
        close = difflib.get_close_matches(col, have, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else f"one of {have}"
        return InvalidInput(f"moments.{name}.summary", col, f"must be a key of the run's flat summary; {hint}")

    def _record(self, ev: Evaluation, run_ids: list[str]) -> None:
        cols = {c: [None if math.isnan(v) else float(v) for v in ev.per_seed[:, k]] for k, c in enumerate(self.columns)}
        if self.w is not None:
            self._score(ev)
        store.write_evaluation(self.out, {
            "format": store.FORMAT, "id": ev.id, "params": dict(ev.params), "seeds": self.seeds, "run_ids": run_ids,
            "columns": cols, "errors": ev.errors,
            "objective": None if math.isnan(ev.objective) else ev.objective})

    def _score(self, ev: Evaluation) -> None:
        assert self.w is not None
        means = np.full(len(self.names), math.nan) if any(ev.errors) else ev.per_seed.mean(axis=0)
        ev.objective = objective(means, self.goal, self.w)

    def start(self, x0: Sequence[float]) -> Evaluation:
        """The start point: it must run and give every moment at every seed; it fixes the weights."""
        self.many([x0])
        ev = self.cache[self.order[0]]
        bad = [(s, e) for s, e in zip(self.seeds, ev.errors) if e]
        if bad:
            raise CalibrationFailed(f"the start point {dict(ev.params)} failed at seed {bad[0][0]} "
                                    f"({len(bad)} of {len(self.seeds)} seeds): {bad[0][1].splitlines()[0]} "
                                    f"(the traceback is in {self.out / store.RUNS / 'rows'})")
        for k, name in enumerate(self.names):
            missing = [s for s, v in zip(self.seeds, ev.per_seed[:, k]) if math.isnan(v)]
            if missing:
                raise CalibrationFailed(f"moments.{name}: {self.columns[k]} has no value (None) at the start point for "
                                        f"seeds {missing}: choose a moment every run reports")
        given = {n: m.weight for n, m in self.spec.moments.items()}
        self.w = weights(self.spec.weighting, self.names, ev.per_seed, given)
        for e in self.cache.values():
            self._score(e)
        self._record(ev, [r.run_id for r in self._planned(ev.params)])
        return ev
