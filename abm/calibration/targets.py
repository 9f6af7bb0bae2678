"""The targets file of a calibration, validated like a scenario file before anything runs.

It names the scenario parameters to fit (dotted paths as ``--set`` takes them, with bounds, integer or
not, and where to start), the moments to match (each a summary key of the run or a value returned by a
sweep metrics function ``module:function``, with its target and, under ``weighting = "given"``, its
weight), the weighting rule, the seeds of each evaluation and the optimiser's options. Every problem
is reported at once, each on one line with its dotted path, the value and what is allowed; the
parameters are then checked against the scenario itself (the path exists, the field takes the
bounds), so a typo never costs a run.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from abm.config import MISSING, InvalidConfig, Problem, problem_of
from abm.config.paths import parse_path
from abm.errors import InvalidInput

if TYPE_CHECKING:
    from abm.model.scenario import Scenario

MOMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
METHODS = ("nelder_mead", "differential_evolution")
# which optimizer options each method reads; setting another method's option is refused, not ignored
OPTIONS = {"nelder_mead": ("max_evaluations", "xtol", "ftol", "initial_step"),
           "differential_evolution": ("generations", "popsize", "tol", "seed")}
SEED_PATHS = ("run.seed", "run")  # the calibration chooses the seeds (common random numbers)


class InvalidTargets(InvalidConfig):
    what = "targets file"


class _Model(BaseModel):
    # strict as the scenario's: `lo = "0.1"` or `integer = 1` is refused, not coerced; no inf or nan
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Parameter(_Model):
    path: str = Field(min_length=1)  # a dotted path as --set takes it: agents.noise.count, markets[0].sigma
    lo: float
    hi: float
    integer: bool = False  # an integer field (a count): only whole values are run
    start: Optional[float] = None  # where the fit starts (None: the scenario's value)


class Moment(_Model):
    summary: Optional[str] = Field(None, min_length=1)  # a flat summary key: max_spread_bps, liquidated_notional.total
    metric: Optional[str] = Field(None, min_length=1)  # or a sweep metrics function module:function ...
    key: Optional[str] = Field(None, min_length=1)  # ... and the key of its mapping (default: the moment's name)
    target: float
    weight: Optional[float] = Field(None, gt=0)  # with weighting = "given" only


class Optimizer(_Model):
    method: Literal["nelder_mead", "differential_evolution"] = "nelder_mead"
    # nelder_mead (scipy.optimize.minimize), in coordinates scaled to each parameter's range
    max_evaluations: int = Field(60, ge=1)  # calls of the objective (scipy's maxfev)
    xtol: float = Field(0.01, gt=0)  # simplex size at convergence, as a fraction of each range (xatol)
    ftol: float = Field(0.05, ge=0)  # spread of the simplex's objective values at convergence (fatol)
    initial_step: float = Field(0.25, gt=0, le=1)  # the first simplex's edge, as a fraction of each range
    # differential_evolution (scipy.optimize.differential_evolution), the whole population run at once
    generations: int = Field(5, ge=1)  # scipy's maxiter
    popsize: int = Field(6, ge=1)  # members per parameter (scipy's popsize; at least 5 members in all)
    tol: float = Field(0.01, ge=0)  # relative spread of the population's objective at convergence
    seed: int = Field(0, ge=0)  # the optimiser's own random numbers (never the simulation's)


class TargetsFile(_Model):
    parameters: list[Parameter] = Field(min_length=1)
    moments: dict[str, Moment] = Field(min_length=1)
    # inverse_variance: w_k = seeds / var_k across the start point's seeds (each term a squared standard error);
    # identity: w_k = 1; given: each moment's weight
    weighting: Literal["inverse_variance", "identity", "given"] = "inverse_variance"
    seeds: int = Field(4, ge=1)  # per evaluation, the same seeds for every evaluation
    base_seed: int = Field(0, ge=0)  # replicate r runs the seed abm sweep --base-seed gives it
    optimizer: Optimizer = Field(default_factory=Optimizer)


@dataclass(frozen=True, slots=True)
class Targets:
    """A checked targets file: the file's data, where it came from, each moment's column in a run's row and each
    parameter's start."""

    spec: TargetsFile
    source: str
    columns: dict[str, str]  # moment name -> the sweep row's column (summary key, or metric.<key>)
    metrics: Optional[str]  # the one metrics function the moments name (None: summary keys only)
    starts: tuple[float, ...] = ()  # filled by check_against_scenario

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.spec.parameters]

    def record(self) -> dict[str, Any]:
        """The file's content as plain data (what the calibration folder records)."""
        return self.spec.model_dump(mode="json")


def load_targets(targets: str | Path | Mapping[str, Any], seeds: Optional[int] = None) -> Targets:
    """A targets file (path) or its data (mapping), checked; ``seeds`` (``--seeds``) replaces the file's."""
    if isinstance(targets, Mapping):
        data, source = dict(targets), "<targets>"
    elif isinstance(targets, (str, Path)):
        data, source = _read(Path(targets)), str(targets)
    else:
        raise InvalidInput("--targets", targets, "must be a .toml file or a mapping of its tables")
    if seeds is not None:
        if type(seeds) is not int or seeds < 1:
            raise InvalidInput("--seeds", seeds, "must be an integer >= 1 (seeds per evaluation)")
        data["seeds"] = seeds
    try:
        spec = TargetsFile.model_validate(data)
    except ValidationError as e:
        raise InvalidTargets(source, [problem_of(err, TargetsFile) for err in e.errors()]) from None
    problems = list(_check(spec))
    if problems:
        raise InvalidTargets(source, problems)
    columns = {name: m.summary if m.summary is not None else f"metric.{m.key or name}" for name, m in spec.moments.items()}
    functions = {m.metric for m in spec.moments.values() if m.metric is not None}
    return Targets(spec, source, columns, next(iter(functions)) if functions else None)


def _read(path: Path) -> dict[str, Any]:
    import tomllib

    if path.suffix != ".toml" or not path.is_file():
        raise InvalidInput("--targets", str(path), "file does not exist" if not path.exists() else "must be a .toml file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput("--targets", str(path), f"must be a readable UTF-8 file ({type(e).__name__})") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput("--targets", str(path), f"is not valid TOML ({e})") from None


def _whole(x: float) -> bool:
    return math.isfinite(x) and float(x).is_integer()


def _check(spec: TargetsFile) -> Iterator[Problem]:
    """What the schema alone cannot say: bounds in order, one source per moment, weights with their rule."""
    from abm.sweeps.metrics import METRIC_FUNCTIONS

    seen: set[str] = set()
    for i, p in enumerate(spec.parameters):
        at = f"parameters[{i}]"
        if not parse_path(p.path):
            yield Problem(f"{at}.path", p.path, "must be a dotted path as --set takes it, e.g. agents.noise.count or "
                                                "markets[0].sigma")
        elif p.path in SEED_PATHS or p.path.startswith("run.seed"):
            yield Problem(f"{at}.path", p.path, "must not be the seed: the calibration runs the same seeds at every "
                                                "evaluation (set seeds and base_seed)")
        if p.path in seen:
            yield Problem(f"{at}.path", p.path, "must name each parameter once")
        seen.add(p.path)
        if not p.lo < p.hi:
            yield Problem(f"{at}.hi", p.hi, f"must be greater than lo ({p.lo})")
        if p.integer:
            for name, v in (("lo", p.lo), ("hi", p.hi), ("start", p.start)):
                if v is not None and not _whole(v):
                    yield Problem(f"{at}.{name}", v, "must be a whole number (integer = true)")
        if p.start is not None and p.lo < p.hi and not p.lo <= p.start <= p.hi:
            yield Problem(f"{at}.start", p.start, f"must lie within [lo, hi] = [{p.lo}, {p.hi}]")
        if p.integer and spec.optimizer.method == "nelder_mead":
            yield Problem(f"{at}.integer", True, "needs optimizer.method = \"differential_evolution\" (it handles integer "
                                                 "parameters; nelder_mead moves continuously)")
    functions: dict[str, str] = {}
    for name, m in spec.moments.items():
        at = f"moments.{name}"
        if not MOMENT_NAME.fullmatch(name):
            yield Problem(at, name, "names must be identifiers: a letter, then letters, digits or '_' (at most 64)")
        if (m.summary is None) == (m.metric is None):
            yield Problem(at, MISSING, "must have exactly one of summary = \"<summary key>\" or "
                                       "metric = \"module:function\"")
        if m.key is not None and m.metric is None:
            yield Problem(f"{at}.key", m.key, "applies to a metric moment only (metric = \"module:function\")")
        if m.metric is not None:
            try:
                METRIC_FUNCTIONS.resolve(m.metric, f"{at}.metric")
            except InvalidInput as e:
                yield Problem(f"{at}.metric", m.metric, e.allowed)
            functions.setdefault(m.metric, name)
        if spec.weighting == "given" and m.weight is None:
            yield Problem(f"{at}.weight", MISSING, "required with weighting = \"given\" (a number > 0)")
        if spec.weighting != "given" and m.weight is not None:
            yield Problem(f"{at}.weight", m.weight, f"applies with weighting = \"given\" only (weighting is "
                                                    f"\"{spec.weighting}\")")
    if len(functions) > 1:  # a sweep's rows carry one function's columns
        yield Problem("moments", sorted(functions), "must name one metrics function (module:function) at most; "
                                                    "return every metric moment's value from that one function")
    if spec.weighting == "inverse_variance" and spec.seeds < 2:
        yield Problem("seeds", spec.seeds, "must be at least 2 with weighting = \"inverse_variance\" (a variance "
                                           "across seeds)")
    method = spec.optimizer.method
    for other, names in OPTIONS.items():
        if other == method:
            continue
        for opt in sorted(set(names) & spec.optimizer.model_fields_set):
            yield Problem(f"optimizer.{opt}", getattr(spec.optimizer, opt),
                          f"applies to method = \"{other}\" only (method is \"{method}\")")


def _value_at(data: Any, segs: list[Any]) -> Any:
    for s in segs:
        if isinstance(data, Mapping) and isinstance(s, str):
            data = data.get(s)
        elif isinstance(data, list) and isinstance(s, int) and 0 <= s < len(data):
            data = data[s]
        else:
            return None
    return data


def check_against_scenario(targets: Targets, scenario: str | Path, base: Scenario) -> Targets:
    """Each parameter checked on the scenario (its field takes lo, hi and start) and its start filled in
    (default: the scenario's value, which must then be a number within the bounds). Nothing runs."""
    from abm.config import apply_overrides
    from abm.model.scenario import InvalidScenario, Scenario
    from abm.scenarios import load_scenario

    problems: list[Problem] = []
    starts: list[float] = []
    data = base.model_dump(mode="json")
    for i, p in enumerate(targets.spec.parameters):
        at = f"parameters[{i}]"
        try:  # the path alone first (an unknown one gets the closest valid path), then the values
            apply_overrides(data, {p.path: p.lo}, base.name, root=Scenario, error=InvalidScenario)
        except InvalidScenario as e:
            problems.append(Problem(f"{at}.path", p.path, f"must be a path of the scenario: {e.problems[0].allowed}"))
            continue
        start = p.start
        if start is None:
            here = _value_at(data, parse_path(p.path) or [])
            if isinstance(here, bool) or not isinstance(here, (int, float)):
                problems.append(Problem(f"{at}.start", MISSING, f"is needed: the scenario's {p.path} is not a number "
                                                                f"(it holds {here!r})"))
                continue
            if not p.lo <= here <= p.hi:
                problems.append(Problem(f"{at}.start", MISSING, f"is needed: the scenario's {p.path} = {here} lies "
                                                                f"outside [lo, hi] = [{p.lo}, {p.hi}]"))
                continue
            start = float(here)
        starts.append(start)
        for name, v in (("lo", p.lo), ("hi", p.hi), ("start", start)):
            try:
                load_scenario(scenario, {p.path: parameter_value(p, v)})
            except InvalidInput as e:
                problems.append(Problem(f"{at}.{name}", v, f"must be a value the scenario takes at {p.path} "
                                                           f"({' '.join(str(e).split())})"))
                break
    if problems:
        raise InvalidTargets(targets.source, problems)
    return Targets(targets.spec, targets.source, targets.columns, targets.metrics, tuple(starts))


def parameter_value(p: Parameter, x: float) -> int | float:
    """What a run sets at ``p.path`` for the optimiser's ``x``: a whole number for an integer parameter, else the
    float to 12 significant digits (so a value and its identity read the same on every machine)."""
    if p.integer:
        return int(round(x))
    return float(f"{float(x):.12g}")
