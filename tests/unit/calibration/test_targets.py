"""Bad targets files: every problem on one line naming the field, the value and what is allowed, before any run or
folder; and the README's example file is a valid one."""

from __future__ import annotations

import copy
import re

import pytest
from click.testing import CliRunner

from abm.calibration import InvalidTargets, calibrate, load_targets
from abm.calibration.targets import check_against_scenario
from abm.cli import main
from abm.errors import InvalidInput
from abm.scenarios import load_scenario
from tests.support import REPO

GOOD = {
    "seeds": 3,
    "parameters": [{"path": "markets[0].sigma", "lo": 0.1, "hi": 1.0, "start": 0.3}],
    "moments": {"vol": {"metric": "abm.calibration.moments:price_moments", "key": "mark_vol_1s", "target": 0.3}},
}


def _with(change):
    data = copy.deepcopy(GOOD)
    change(data)
    return data


def _set(path, value):
    def change(d):
        node = d
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return change


BAD = [
    (_set(("parameters", 0, "hi"), 0.05), r"parameters\[0\]\.hi: must be greater than lo \(0\.1\), got 0\.05"),
    (_set(("parameters", 0, "lo"), "0.1"), r"parameters\[0\]\.lo: must be a number, got '0\.1'"),
    (_set(("parameters", 0, "start"), 2.0), r"parameters\[0\]\.start: must lie within \[lo, hi\] = \[0\.1, 1\.0\], got 2\.0"),
    (_set(("parameters", 0, "path"), "run.seed"), r"parameters\[0\]\.path: must not be the seed"),
    (_set(("parameters", 0, "path"), "markets[0]..sigma"), r"parameters\[0\]\.path: must be a dotted path"),
    (_set(("parameters", 0, "integer"), True), r"parameters\[0\]\.integer: needs optimizer\.method = \"differential_evolution\""),
    (_set(("parameters", 0, "bound"), 1), r"parameters\[0\]\.bound: unknown key"),
    (_set(("parameters",), []), r"parameters: must hold at least 1 entry"),
    (lambda d: d["parameters"].append(dict(d["parameters"][0])), r"parameters\[1\]\.path: must name each parameter once"),
    (_set(("moments",), {}), r"moments: must hold at least 1 entry"),
    (_set(("moments", "vol", "summary"), "max_spread_bps"), r"moments\.vol: must have exactly one of summary"),
    (lambda d: d["moments"]["vol"].pop("metric"), r"moments\.vol: must have exactly one of summary"),
    (_set(("moments", "vol", "metric"), "abm.calibration.moments:nope"), r"moments\.vol\.metric: .*defines no 'nope'"),
    (_set(("moments", "vol", "target"), float("nan")), r"moments\.vol\.target: must be a finite number"),
    (_set(("moments", "vol", "weight"), 2.0), r"moments\.vol\.weight: applies with weighting = \"given\" only"),
    (_set(("weighting",), "given"), r"moments\.vol\.weight: required with weighting = \"given\""),
    (_set(("weighting",), "optimal"), r"weighting: must be 'inverse_variance', 'identity' or 'given', got 'optimal'"),
    (_set(("seeds",), 1), r"seeds: must be at least 2 with weighting = \"inverse_variance\" \(a variance across seeds\), got 1"),
    (_set(("seeds",), 0), r"seeds: .*greater than or equal to 1"),
    (_set(("optimizer",), {"method": "simplex"}), r"optimizer\.method: must be 'nelder_mead' or 'differential_evolution'"),
    (_set(("optimizer",), {"popsize": 8}), r"optimizer\.popsize: applies to method = \"differential_evolution\" only"),
    (_set(("optimizer",), {"method": "differential_evolution", "xtol": 0.1}),
     r"optimizer\.xtol: applies to method = \"nelder_mead\" only"),
    (lambda d: d["moments"].update({"x": {"metric": "abm.analysis.stylized:stylized_facts", "target": 1.0}}),
     r"moments: must name one metrics function"),
    (lambda d: d["moments"].update({"2nd": {"summary": "max_spread_bps", "target": 1.0}}), r"moments\.2nd: names must be identifiers"),
]


@pytest.mark.parametrize("change, message", BAD)
def test_a_bad_targets_file_is_named_before_anything_runs(change, message, tmp_path):
    with pytest.raises(InvalidTargets, match=message):
        calibrate("baseline", _with(change), out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_every_problem_is_reported_at_once():
    data = _with(lambda d: (d["parameters"][0].update(hi=0.0), d["moments"]["vol"].update(weight=1.0)))  # start 0.3 unjudged
    with pytest.raises(InvalidTargets) as e:
        load_targets(data)
    assert len(e.value.problems) == 2 and str(e.value).startswith("invalid targets file <targets>: 2 problems")


@pytest.mark.parametrize("parameter, message", [
    ({"path": "markets[0].sigmaa", "lo": 0.1, "hi": 1.0}, r"parameters\[0\]\.path: must be a path of the scenario: "
                                                         r"unknown key; did you mean 'markets\[0\]\.sigma'\?, got "),
    ({"path": "markets[0].sigma", "lo": -1.0, "hi": 1.0}, r"parameters\[0\]\.lo: must be a value the scenario takes .*"
                                                         r"greater than or equal to 0"),
    ({"path": "agents.noise.count", "lo": 10, "hi": 150}, r"parameters\[0\]\.lo: must be a value the scenario takes at "
                                                        r"agents\.noise\.count .*must be a non-negative integer, got 10\.0"),
    ({"path": "markets[0].sigma", "lo": 0.5, "hi": 1.0}, r"parameters\[0\]\.start: is needed: the scenario's "
                                                        r"markets\[0\]\.sigma = 0\.3 lies outside \[lo, hi\]"),
    ({"path": "run.start_time", "lo": 0.5, "hi": 1.0}, r"parameters\[0\]\.start: is needed: the scenario's run\.start_time "
                                                      r"is not a number"),
])
def test_a_parameter_the_scenario_refuses_is_named_before_anything_runs(parameter, message, tmp_path):
    with pytest.raises(InvalidTargets, match=message):
        calibrate("baseline", {**GOOD, "parameters": [parameter]}, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_file_itself_and_the_command_line(tmp_path):
    (tmp_path / "t.toml").write_text("seeds = 3\n[[parameters]]\npath = 'markets[0].sigma'\nlo = 0.1\nhi = 0.05\n"
                                     "[moments.m]\nsummary = 'max_spread_bps'\ntarget = 1.0\n")
    r = CliRunner().invoke(main, ["calibrate", "baseline", "--targets", str(tmp_path / "t.toml"), "--out",
                                  str(tmp_path / "o")])
    assert r.exit_code == 2 and not (tmp_path / "o").exists()
    assert r.output == (f"abm: error: invalid targets file {tmp_path / 't.toml'}: 1 problem\n"
                        "  parameters[0].hi: must be greater than lo (0.1), got 0.05\n")
    (tmp_path / "bad.toml").write_text("seeds = [")
    with pytest.raises(InvalidInput, match="--targets: is not valid TOML"):
        load_targets(tmp_path / "bad.toml")
    with pytest.raises(InvalidInput, match="--targets: file does not exist"):
        load_targets(tmp_path / "none.toml")
    with pytest.raises(InvalidInput, match="--seeds: must be an integer >= 1"):
        load_targets(GOOD, seeds=0)
    for args, message in ((["--workers", "0"], "--workers: must be an integer >= 1"),
                          (["--dask", "nowhere"], "--dask: must be 'local' or a Dask address"),
                          (["--dask", "tcp://127.0.0.1:1", "--workers", "2"], "--workers: sizes the local pool or --dask local")):
        r = CliRunner().invoke(main, ["calibrate", "baseline", "--targets", str(tmp_path / "t.toml"), *args])
        assert r.exit_code == 2 and message in r.output, r.output


def test_the_readme_example_is_a_valid_targets_file():
    import tomllib

    text = (REPO / "README.md").read_text()
    block = re.search(r"### Calibration: `abm calibrate`.*?```toml\n(.*?)```", text, re.S)
    assert block
    t = load_targets(tomllib.loads(block.group(1)))
    t = check_against_scenario(t, "baseline", load_scenario("baseline"))
    assert t.paths == ["markets[0].sigma", "agents.noise.count"] and t.starts == (0.3, 100.0)
    assert t.columns == {"vol": "metric.mark_vol_1s", "spread": "max_spread_bps"}


def test_a_folder_with_other_files_is_refused(tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="--out: must be a new or empty folder, or a calibration folder"):
        calibrate("baseline", GOOD, out=tmp_path / "o")
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["notes.txt"]


