"""``calibrate``: fit a few scenario parameters to target moments by the simulated method of moments.

How it runs: every check first (the targets file, its parameters against the scenario, the output
folder, the Dask address). Then the start point is evaluated, which fixes the weights and checks that
every moment exists; then a scipy optimiser (Nelder-Mead on the parameters scaled to their ranges, or
differential evolution with integer parameters and the whole population per call) asks for
evaluations. Each evaluation runs the scenario with the parameter values on the calibration's seeds
through the sweep machinery (``abm.sweeps``: the same planned runs, run ids, rows and local pool or
Dask), with the same seeds for every evaluation (common random numbers).

Why resuming gives the same answer: both optimisers are deterministic given the objective's values
(differential evolution through its own seed), and an evaluation's values are a deterministic
function of its identity (scenario, parameters, seeds). A rerun therefore asks for the same
evaluations in the same order; the recorded ones are read instead of run, and it continues where the
killed one stopped. The answer is the best evaluation recorded (the first of equal ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np
import pandas as pd

from abm.calibration import store
from abm.calibration.evaluate import Evaluation, Evaluator
from abm.calibration.objective import CalibrationFailed
from abm.calibration.targets import Targets, check_against_scenario, load_targets
from abm.errors import InvalidInput


@dataclass(slots=True)
class Calibration:
    """What ``calibrate`` found: the fitted ``parameters``, their ``objective``, ``fit`` (one row per evaluation in the
    order the optimiser asked for them), ``moments`` (the fitted point's moments against the targets, with the
    seeds' spread) and the files written."""

    scenario: str
    parameters: dict[str, Any]
    objective: float
    fit: pd.DataFrame
    moments: pd.DataFrame
    optimizer: dict[str, Any]
    evaluations_run: int
    evaluations_reused: int
    out: Path
    files: dict[str, Path] = field(default_factory=dict)

    def table(self) -> str:
        """The fit as a person reads it first."""
        lines = [f"{self.scenario}: calibrated {len(self.parameters)} parameter(s), objective {self.objective:.4g} "
                 f"({len(self.fit)} evaluations: {self.evaluations_run} run now, {self.evaluations_reused} recorded; "
                 f"{self.optimizer.get('message', '')})"]
        width = max([len(p) for p in self.parameters] + [len(str(m)) for m in self.moments["moment"]] + [10])
        lines += [f"  {p:<{width}} = {v!r}" for p, v in self.parameters.items()]
        lines.append(f"  {'moment':<{width}} {'target':>12} {'fitted':>12} {'seed sd':>12} {'(m-t)/se':>9}")
        for _, r in self.moments.iterrows():
            lines.append(f"  {r['moment']:<{width}} {r['target']:>12.6g} {r['mean']:>12.6g} {r['sd']:>12.4g} "
                         f"{r['t']:>9.2f}")
        return "\n".join(lines)

def calibrate(
    scenario: str | Path,
    targets: str | Path | Mapping[str, Any],
    out: Optional[str | Path] = None,
    seeds: Optional[int] = None,
    workers: int = 1,
    dask: Optional[str] = None,
    resume: bool = False,
    progress: bool = False,
    figure: bool = True,
) -> Calibration:
    """Fit the targets file's parameters of ``scenario`` to its moments (see the module); returns the ``Calibration``.

    ``out`` (default ``calibrations/<scenario>``) must be new or empty, or with ``resume`` a calibration folder
    whose recorded evaluations are reused. ``seeds`` replaces the file's seeds per evaluation. Runs go to a local
    pool of ``workers`` processes, or with ``dask`` to a Dask cluster (an address, or ``"local"`` to start one of
    ``workers`` processes here), as a sweep's do.
    """
    from abm.scenarios import load_scenario
    from abm.sweeps.dask_runner import check_scheduler
    from abm.sweeps.identity import scenario_hash
    from abm.sweeps.local import open_backend, source_name

    if type(workers) is not int or workers < 1:
        raise InvalidInput("--workers", workers, "must be an integer >= 1")
    if type(resume) is not bool:
        raise InvalidInput("--resume", resume, "must be True or False")
    _dask_named(lambda: check_scheduler(dask, workers))
    t = load_targets(targets, seeds)
    base = load_scenario(scenario)
    t = check_against_scenario(t, scenario, base)
    folder = Path(out) if out is not None else Path("calibrations") / Path(str(scenario)).stem
    there = store.check_out(folder, resume)
    sha = scenario_hash(base)
    _check_runs_folder(folder, base.name, sha, t)
    record = {"format": store.FORMAT, "scenario": base.name, "scenario_source": source_name(scenario),
              "scenario_hash": sha, "base_seed": t.spec.base_seed, "seeds": t.spec.seeds, "targets": t.record(),
              "targets_source": t.source, "status": "running"}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="calibrate", unit="evaluation")
    try:
        with _NamedDask(open_backend, workers, dask) as backend:
            _write_runs_manifest(folder, base.name, sha, t, source_name(scenario))
            store.write_json(folder / store.MANIFEST, {**(there or {}), **record})
            ev = Evaluator(t, base, sha, folder, backend, resume, bar)
            ev.start(t.starts)
            info = _optimise(ev, t)
    finally:
        if bar is not None:
            bar.close()
    return _finish(ev, t, base, scenario, folder, record, info, figure)


def _dask_named(f: Callable[[], Any]) -> Any:
    """Errors about the Dask address name calibrate's option (--dask), not the sweep's (--scheduler)."""
    try:
        return f()
    except InvalidInput as e:
        if e.field in ("--scheduler", "--workers"):
            raise InvalidInput("--dask" if e.field == "--scheduler" else e.field, e.value,
                               e.allowed.replace("--scheduler", "--dask")) from None
        raise


class _NamedDask:
    """``open_backend`` entered with calibrate's option names in its errors."""

    def __init__(self, opener: Any, workers: int, dask: Optional[str]) -> None:
        self.cm = opener(workers, dask)

    def __enter__(self) -> Any:
        return _dask_named(self.cm.__enter__)

    def __exit__(self, *exc: Any) -> Any:
        return self.cm.__exit__(*exc)


def _check_runs_folder(folder: Path, name: str, sha: str, t: Targets) -> None:
    """runs/ must hold this calibration's runs (same scenario, base seed, metrics, common seeds) if it holds any."""
    from abm.sweeps.folder import check_folder
    from abm.sweeps.plan import SweepPlan

    check_folder(folder / store.RUNS, SweepPlan(name, sha, t.spec.base_seed, [], common_seeds=True), _metrics_record(t))


def _metrics_record(t: Targets) -> Optional[dict[str, Any]]:
    from abm.sweeps.metrics import RowMetrics

    return RowMetrics(t.metrics).record() if t.metrics else None


def _write_runs_manifest(folder: Path, name: str, sha: str, t: Targets, source: str) -> None:
    from abm.sweeps.folder import read_manifest, write_manifest
    from abm.sweeps.plan import SweepPlan

    runs = folder / store.RUNS
    write_manifest(runs, read_manifest(runs), SweepPlan(name, sha, t.spec.base_seed, [], common_seeds=True),
                   {"calibrate": t.paths, "seeds": t.spec.seeds}, source, _metrics_record(t))


# ------------------------------------------------------------------------------------- the optimisers


def _optimise(ev: Evaluator, t: Targets) -> dict[str, Any]:
    import scipy.optimize as so

    opt = t.spec.optimizer
    ps = t.spec.parameters
    lo = np.array([p.lo for p in ps])
    hi = np.array([p.hi for p in ps])
    x0 = np.array(t.starts)
    if opt.method == "nelder_mead":
        span = hi - lo
        u0 = (x0 - lo) / span

        def f(u: np.ndarray) -> float:
            return ev.one(lo + np.clip(u, 0.0, 1.0) * span)

        simplex = [u0]
        for i in range(len(ps)):  # an edge of initial_step along each axis, inward from a bound
            step = opt.initial_step if u0[i] + opt.initial_step <= 1.0 else -opt.initial_step
            v = u0.copy()
            v[i] = min(max(v[i] + step, 0.0), 1.0)
            simplex.append(v)
        res = so.minimize(f, u0, method="Nelder-Mead", bounds=[(0.0, 1.0)] * len(ps),
                          options={"maxfev": opt.max_evaluations, "xatol": opt.xtol, "fatol": opt.ftol,
                                   "initial_simplex": np.array(simplex)})
    else:
        def g(x: np.ndarray) -> np.ndarray:  # vectorized: x is (parameters, population)
            return np.array(ev.many([x[:, j] for j in range(x.shape[1])]))

        res = so.differential_evolution(g, list(zip(lo, hi)), maxiter=opt.generations, popsize=opt.popsize,
                                        tol=opt.tol, rng=np.random.default_rng(opt.seed), polish=False, x0=x0,
                                        integrality=np.array([p.integer for p in ps]), vectorized=True,
                                        updating="deferred")
    return {"method": opt.method, "message": str(res.message), "success": bool(res.success),
            "calls": int(res.nfev)}


# ------------------------------------------------------------------------------------- the outputs


def _fit_table(ev: Evaluator) -> pd.DataFrame:
    rows = []
    best = math.inf
    for i, eid in enumerate(ev.order):
        e = ev.cache[eid]
        best = min(best, e.objective)
        row: dict[str, Any] = {"evaluation": i, "evaluation_id": eid}
        row.update({f"param.{p}": v for p, v in e.params})
        row.update({"objective": e.objective, "best_objective": best})
        for k, name in enumerate(ev.names):
            x = e.per_seed[:, k]
            row[f"{name}.mean"] = float(np.mean(x)) if not np.isnan(x).any() else math.nan
            row[f"{name}.sd"] = float(np.std(x, ddof=1)) if len(x) > 1 and not np.isnan(x).any() else math.nan
            row[f"{name}.min"] = float(np.min(x)) if not np.isnan(x).any() else math.nan
            row[f"{name}.max"] = float(np.max(x)) if not np.isnan(x).any() else math.nan
        row["failed_seeds"] = sum(bool(x) for x in e.errors)
        rows.append(row)
    return pd.DataFrame(rows)


def _moments_table(ev: Evaluator, best: Evaluation) -> pd.DataFrame:
    assert ev.w is not None
    rows = []
    s = len(ev.seeds)
    for k, name in enumerate(ev.names):
        x = best.per_seed[:, k]
        mean = float(np.mean(x))
        sd = float(np.std(x, ddof=1)) if s > 1 else math.nan
        se = sd / math.sqrt(s) if s > 1 else math.nan
        m = ev.spec.moments[name]
        rows.append({"moment": name, "column": ev.columns[k], "target": m.target, "mean": mean, "sd": sd, "se": se,
                     "min": float(np.min(x)), "max": float(np.max(x)), "seeds": s,
                     "t": (mean - m.target) / se if se and math.isfinite(se) and se > 0 else math.nan,
                     "weight": float(ev.w[k]), "contribution": float(ev.w[k] * (mean - m.target) ** 2),
                     **{f"seed.{seed}": float(v) for seed, v in zip(ev.seeds, x)}})
    return pd.DataFrame(rows)


def _finish(ev: Evaluator, t: Targets, base: Any, scenario: str | Path, folder: Path, record: dict[str, Any],
            info: dict[str, Any], figure: bool) -> Calibration:
    from abm.calibration.scenario_file import write_fitted

    scored = [(ev.cache[e].objective, i) for i, e in enumerate(ev.order)]
    _, i_best = min(scored)
    best = ev.cache[ev.order[i_best]]
    if not math.isfinite(best.objective):
        raise CalibrationFailed("every evaluation failed or lacked a moment: nothing to fit (see runs/rows)")
    fitted = {p.path: dict(best.params)[p.path] for p in t.spec.parameters}
    fit = _fit_table(ev)
    moments = _moments_table(ev, best)
    files = {"fitted": folder / "fitted.toml", "fit": folder / "fit.parquet", "fit_csv": folder / "fit.csv",
             "moments": folder / "moments.parquet", "moments_csv": folder / "moments.csv"}
    write_fitted(scenario, base, fitted, files["fitted"], best.objective)
    fit.to_parquet(files["fit"], index=False)
    fit.to_csv(files["fit_csv"], index=False)
    moments.to_parquet(files["moments"], index=False)
    moments.to_csv(files["moments_csv"], index=False)
    result = Calibration(base.name, fitted, best.objective, fit, moments, info, ev.ran, ev.reused, folder, files)
    if figure:
        from abm.calibration.figure import draw_calibration

        files["figure"] = draw_calibration(result, folder / "calibration.png")
    store.write_json(folder / store.MANIFEST, {**record, "status": "done", "fitted": fitted,
                                               "objective": best.objective, "best_evaluation": best.id,
                                               "evaluations": len(ev.order), "optimizer": info})
    return result


__all__ = ["calibrate", "Calibration", "load_targets"]
