"""The ``abm`` command. Errors of ours print one line and exit non-zero; anything else is a bug and shows a traceback."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import click

from abm.errors import AbmError


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: Optional[str] = None) -> None:
    """Our warnings (a legal but absurd value) as one line like our errors; others as Python shows them."""
    from abm.model.checks import AbsurdValue

    if issubclass(category, AbsurdValue):
        click.echo(f"abm: warning: {message}", err=True)
    else:
        _default_show(message, category, filename, lineno, file, line)


_default_show = warnings.showwarning


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        warnings.showwarning = _show_warning
        try:
            return super().invoke(ctx)
        except AbmError as e:
            click.echo(f"abm: error: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="abm")
def main() -> None:
    """Agent-based simulator of perpetual-futures market stress."""


def run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options of ``abm run``, shared with scenario scripts (``script_main``)."""
    f = click.option("--no-progress", is_flag=True, help="No progress bar.")(f)
    f = click.option("--amplification", is_flag=True,
                     help="Also run the no-feedback control and report the amplification (run.amplification=true).")(f)
    f = click.option("--out", type=click.Path(path_type=Path), default=None,
                     help="Results folder (default runs/<scenario>-<UTC time>/).")(f)
    f = click.option("--seed", type=int, default=None, help="Seed (overrides run.seed).")(f)
    return click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
                        help="Override a field, e.g. agents.whale.size=120.")(f)


def run_and_report(scenario: Any, sets: tuple[str, ...], seed: Optional[int], out: Optional[Path],
                   no_progress: bool, amplification: bool = False) -> None:
    """Run a scenario (name, file or Scenario), write its folder and print the summary."""
    from abm.scenarios import parse_set
    from abm.scenarios import run as run_scenario

    overrides = parse_set(list(sets))
    if amplification:
        overrides["run.amplification"] = True
    result = run_scenario(scenario, overrides, seed, out=out or "auto", progress=not no_progress)
    print_summary(result.scenario, result.summary, result.path)


@main.command()
@click.argument("scenario")
@run_options
def run(scenario: str, sets: tuple[str, ...], seed: Optional[int], out: Optional[Path], no_progress: bool,
        amplification: bool) -> None:
    """Run SCENARIO (a catalogue name, a .toml file or a scenario script .py) and write its results and report."""
    run_and_report(scenario, sets, seed, out, no_progress, amplification)


def script_main(scenario: Callable[[], Any], argv: Optional[Sequence[str]] = None) -> None:
    """The ``if __name__ == "__main__"`` entry of a scenario script (``abm.scenarios.scripts``): ``abm run``'s
    options and output for the Scenario that ``scenario()`` returns. It lives here, not in abm.scenarios,
    because the scenarios layer sits below the command line."""
    from abm.scenarios.scripts import call_scenario

    name = Path(sys.argv[0]).name

    @click.command(name=name, help=(scenario.__doc__ or "Run this scenario script."))
    @run_options
    def cmd(sets: tuple[str, ...], seed: Optional[int], out: Optional[Path], no_progress: bool,
            amplification: bool) -> None:
        run_and_report(call_scenario(scenario, name), sets, seed, out, no_progress, amplification)

    try:
        cmd.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as e:  # --help
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except AbmError as e:
        click.echo(f"{name}: error: {e}", err=True)
        sys.exit(2)


def print_summary(name: str, s: dict[str, Any], path: Optional[Path]) -> None:
    """The end-of-run table: what a stress study looks at first."""
    rows = [
        ("liquidated notional, book (USDC)", s.get("liquidated_notional", {}).get("book")),
        ("liquidated notional, backstop (USDC)", s.get("liquidated_notional", {}).get("backstop")),
        ("liquidated notional, ADL (USDC)", s.get("liquidated_notional", {}).get("adl")),
        ("liquidation events", s.get("liquidation_events")),
        ("largest cascade (events)", s.get("largest_cascade_events")),
        ("largest cascade (USDC)", s.get("largest_cascade_notional")),
        ("worst 1% depth drop", s.get("worst_depth_drop")),
        ("max |basis| (bps)", s.get("max_abs_basis_bps")),
        ("funding min / max (per payment)", (s.get("funding_min"), s.get("funding_max"))),
        ("insurance fund at end (USDC)", s.get("insurance_fund_end")),
        ("bad debt (USDC)", s.get("bad_debt_total")),
    ]
    if "amplification" in s:  # run.amplification: the no-feedback control beside the run
        rows += [("no-feedback control: liquidated (USDC)", s["control"]["liquidated_notional"]["total"]),
                 ("amplification (with / without feedback)", s["amplification"])]
    click.echo(f"\n{name}: summary")
    for label, v in rows:
        click.echo(f"  {label:<38} {_fmt(v)}")
    if path is not None:
        page = path / "report.html"
        click.echo(f"\nresults: {path}  (report: {path / 'report.png'}" + (f", interactive: {page}" if page.is_file() else "")
                   + ")")


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):
        return " / ".join(_fmt(x) for x in v)
    if v is None:
        return "-"
    if isinstance(v, float):
        if 0 < abs(v) < 1:
            return f"{v:.4g}"
        return f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


@main.command(name="list")
def list_() -> None:
    """The scenario catalogue, with what each scenario answers; scenario scripts (.py) are marked."""
    from abm.scenarios import catalogue, load_scenario
    from abm.scenarios.scripts import script_description, scripts

    for name, _ in catalogue().items():
        scn = load_scenario(name)
        first = " ".join(scn.description.split())
        click.echo(f"{name}\n    {first}\n")
    for name, path in scripts().items():
        text = " ".join(script_description(path).split())
        click.echo(f"{name}  [script: abm run scenarios/{path.name}]\n    {text}\n")


@main.command()
@click.argument("scenario")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE", help="Override a field.")
@click.option("--seed", type=int, default=None)
def show(scenario: str, sets: tuple[str, ...], seed: Optional[int]) -> None:
    """Print SCENARIO's resolved configuration (TOML), overrides applied, and what [randomize] draws at its seed."""
    from abm.model.randomize import draws
    from abm.scenarios import load_scenario, parse_set, to_toml

    scn = load_scenario(scenario, parse_set(list(sets)), seed)
    if scn.randomize:
        lines = [f"#   {path} = {value!r}" for path, value in draws(scn.randomize, scn.run.seed).items()]
        click.echo(f"# [randomize] draws at seed {scn.run.seed} (written into the fields below):\n" + "\n".join(lines))
    click.echo(to_toml(scn), nl=False)


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--html", "with_html", is_flag=True,
              help="Also (re)draw RUN_DIR/report.html, the interactive report (needs the extra viz: plotly).")
def report(run_dir: Path, with_html: bool) -> None:
    """Re-draw RUN_DIR/report.png (and with --html report.html) from the saved results."""
    from abm.report import render_html, render_report
    from abm.report.compare import load_named

    result = load_named(run_dir, "run_dir")  # the name load_run has always given
    if with_html:  # first: without plotly this fails at once, before the PNG's seconds
        click.echo(f"report: {render_html(result, run_dir / 'report.html')}")
    out = render_report(result, run_dir / "report.png")
    click.echo(f"report: {out}")


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="RUN_A RUN_B [...]")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for compare.html, compare.png, metrics.csv and metrics.parquet "
                   "(default compare/<A>-vs-<B>...).")
@click.option("--label", "labels", multiple=True, help="A name per run, in order (default: the folders' names).")
def compare(run_dirs: tuple[Path, ...], out: Optional[Path], labels: tuple[str, ...]) -> None:
    """Overlay the panels of two or more saved runs and tabulate their summary metrics with differences to RUN_A."""
    from abm.report.compare import compare_runs

    c = compare_runs(list(run_dirs), out, list(labels) or None)
    click.echo(c.text())
    click.echo("\n" + "\n".join(f"{k}: {v}" for k, v in c.files.items()))


@main.command()
@click.argument("scenario", required=False)
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE", help="Override a scenario field (repeatable).")
@click.option("--port", type=click.IntRange(1, 65535), default=5006, show_default=True, help="Port on 127.0.0.1.")
def dashboard(scenario: Optional[str], sets: tuple[str, ...], port: int) -> None:
    """A live dashboard of SCENARIO (or one picked in it) on http://127.0.0.1:PORT/ (needs the extra viz)."""
    from abm.dashboard.viz import serve_forever
    from abm.scenarios.catalogue import load_scenario, parse_set

    overrides = parse_set(list(sets))
    if scenario is not None:
        load_scenario(scenario, overrides)  # a bad name or override fails here, not in the browser
    from abm.dashboard.app import dashboard_app

    serve_forever(lambda: dashboard_app(scenario, overrides), port, "abm dashboard")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--port", type=click.IntRange(1, 65535), default=5006, show_default=True, help="Port on 127.0.0.1.")
def explore(run_dir: Path, port: int) -> None:
    """Explore a saved run folder on http://127.0.0.1:PORT/: time scrubber, cascade tree, one account (needs viz)."""
    from abm.dashboard.explorer import Explorer, load_explored
    from abm.dashboard.viz import panel, serve_forever

    result = load_explored(run_dir)  # a wrong folder is one line, before the seconds of loading Panel
    panel()
    serve_forever(lambda: Explorer(result).layout, port, f"abm explore {run_dir.name}")


class _SweepCommand(click.Command):
    """Bad option values of ``abm sweep`` get the package's one-line error, like every other sweep input."""

    def make_context(self, info_name: Optional[str], args: list[str], parent: Optional[click.Context] = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.BadParameter as e:
            name = e.param.opts[0] if e.param is not None and e.param.opts else (e.param_hint or "sweep")
            raise SweepOptionError(f"{name}: {e.message}") from None


class SweepOptionError(AbmError):
    pass


@main.command(cls=_SweepCommand)
@click.argument("scenario")
@click.option("--grid", "grids", multiple=True, metavar="PATH=V1,V2,...", help="Values to cross, e.g. agents.whale.size=40,80.")
@click.option("--random", "randoms", multiple=True, metavar="PATH=LO:HI", help="Uniform draws, e.g. markets[0].sigma=0.2:0.9.")
@click.option("--samples", type=int, default=1, show_default=True, help="Draws per grid point with --random.")
@click.option("--seeds", type=int, default=1, show_default=True, help="Replicates per combination.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Local worker processes (or the size of --scheduler local).")
@click.option("--base-seed", type=int, default=0, show_default=True, help="Seed every run's seed derives from.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Sweep folder (default sweeps/<scenario>); it holds one sweep, which re-running resumes or extends.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on a Dask cluster: its address (tcp://host:port) or 'local' to start one here.")
@click.option("--retry-failed", is_flag=True, help="Run the folder's failed runs of this plan again.")
@click.option("--amplification", is_flag=True,
              help="Each run also runs its no-feedback control; rows gain control.* and amplification.")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="Override a field of the scenario for every run (in its hash, not in the runs' seeds).")
@click.option("--metrics", default=None, metavar="MODULE:FUNCTION",
              help="f(result, model) -> {name: scalar}, called in each worker; rows gain metric.<name>.")
@click.option("--agent-report", "agent_groups", multiple=True, metavar="GROUP",
              help="Journal GROUP's orders and add each agent's agent_report to the rows as agent.GROUP.*.")
@click.option("--no-progress", is_flag=True)
def sweep(scenario: str, grids: tuple[str, ...], randoms: tuple[str, ...], samples: int, seeds: int, workers: int,
          base_seed: int, out: Optional[Path], scheduler: Optional[str], retry_failed: bool, amplification: bool,
          sets: tuple[str, ...], metrics: Optional[str], agent_groups: tuple[str, ...], no_progress: bool) -> None:
    """Run SCENARIO over a parameter grid and seeds; one summary row per run in OUT/rows/ (resumable)."""
    from abm.scenarios import parse_set
    from abm.sweeps import sweep as run_sweep

    folder = out or Path("sweeps") / Path(scenario).stem
    df = run_sweep(scenario, list(grids), list(randoms), samples, seeds, workers, folder, base_seed,
                   progress=not no_progress, scheduler=scheduler, retry_failed=retry_failed,
                   amplification=amplification, metrics=metrics, agent_report=list(agent_groups),
                   overrides=parse_set(list(sets)) or None)
    failed = int((df["error"] != "").sum()) if len(df) else 0
    hint = " (--retry-failed runs them again)" if failed else ""
    click.echo(f"{len(df)} runs ({failed} failed{hint}; {df.attrs['ran']} run now, {df.attrs['already_done']} "
               f"already in the folder): {folder / 'rows'}")


def _leash(text: str) -> dict[str, Any]:
    import tomllib

    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = None
    if not isinstance(value, dict):
        raise SweepOptionError(f"--leash: must be a TOML inline table such as '{{kind = \"trailing_stop\", pct = 3}}', "
                               f"got {text!r}")
    return value


def _leash_set(text: str) -> tuple[str, Any]:
    import tomllib

    name, sep, rest = text.partition("=")
    try:
        value = tomllib.loads(f"v = {rest}")["v"] if sep else None
    except tomllib.TOMLDecodeError:
        value = None
    if not name.strip() or not isinstance(value, list):
        raise SweepOptionError(f"--leash-set: must look like NAME=[{{kind = \"stop\", pct = 5}}, ...] (a TOML array of "
                               f"tables, [] for none), got {text!r}")
    return name.strip(), value


@main.command(cls=_SweepCommand)
@click.argument("scenario")
@click.option("--market", default=None, help="The position's market (default: the scenario's first).")
@click.option("--side", type=click.Choice(["long", "short"]), default="long", show_default=True)
@click.option("--notional", type=float, default=50_000.0, show_default=True, help="USDC, at the mark when it opens.")
@click.option("--leverage", type=int, default=10, show_default=True)
@click.option("--mode", "modes", default="isolated,cross", show_default=True, help="Margin modes compared, on the same seeds.")
@click.option("--stop", default=None, metavar="PCT", help="A market stop this far against the entry, e.g. 5%.")
@click.option("--take-profit", default=None, metavar="PCT", help="A take-profit this far in favour of the entry.")
@click.option("--leash", "leashes", multiple=True, metavar="TABLE",
              help="More protections as TOML tables, e.g. '{kind = \"trailing_stop\", pct = 3}' (docs/design.md).")
@click.option("--leash-set", "leash_sets", multiple=True, metavar="NAME=LIST",
              help="Compare protections: each set a column per mode, e.g. 'stop5=[{kind = \"stop\", pct = 5}]', 'none=[]'.")
@click.option("--open-s", type=float, default=60.0, show_default=True, help="When the position opens (s).")
@click.option("--entry", type=click.Choice(["market", "limit"]), default="market", show_default=True)
@click.option("--deposit", type=float, default=None, help="The account's deposit (default: initial margin + 1%).")
@click.option("--seeds", type=int, default=200, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True)
@click.option("--scheduler", default=None, metavar="ADDRESS", help="A Dask scheduler address, or 'local'.")
@click.option("--base-seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Folder (default positions/<scenario>).")
@click.option("--no-progress", is_flag=True)
def position(scenario: str, market: Optional[str], side: str, notional: float, leverage: int, modes: str,
             stop: Optional[str], take_profit: Optional[str], leashes: tuple[str, ...], leash_sets: tuple[str, ...],
             open_s: float, entry: str,
             deposit: Optional[float], seeds: int, workers: int, scheduler: Optional[str], base_seed: int,
             out: Optional[Path], no_progress: bool) -> None:
    """Stress-test one position in SCENARIO: each margin mode and the run without it, on the same seeds."""
    from abm.position import position_risk

    r = position_risk(scenario, market=market, side=side, notional=notional, leverage=leverage, modes=modes, stop=stop,
                      take_profit=take_profit, leashes=[_leash(t) for t in leashes], open_s=open_s, entry=entry,
                      deposit=deposit, seeds=seeds, workers=workers, scheduler=scheduler, out=out,
                      base_seed=base_seed, progress=not no_progress,
                      leash_sets=dict(_leash_set(t) for t in leash_sets) if leash_sets else None)
    click.echo(r.table())
    click.echo("\n" + "\n".join(f"{k}: {v}" for k, v in r.files.items()))


@main.command(cls=_SweepCommand)
@click.argument("scenario")
@click.option("--targets", "targets", required=True, type=click.Path(path_type=Path), metavar="FILE.toml",
              help="The parameters to fit (bounds), the moments and their targets, weighting, seeds, optimiser.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Calibration folder (default calibrations/<scenario>): runs, evaluations, fitted.toml, fit table, figure.")
@click.option("--seeds", type=int, default=None, help="Seeds per evaluation (replaces the targets file's).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Local worker processes (or the size of --dask local).")
@click.option("--dask", default=None, metavar="ADDRESS",
              help="Run the evaluations on a Dask cluster: its address (tcp://host:port) or 'local' to start one here.")
@click.option("--resume", is_flag=True, help="Continue the calibration in --out, reusing its recorded evaluations.")
@click.option("--no-progress", is_flag=True)
def calibrate(scenario: str, targets: Path, out: Optional[Path], seeds: Optional[int], workers: int,
              dask: Optional[str], resume: bool, no_progress: bool) -> None:
    """Fit SCENARIO's parameters named in --targets to target moments (simulated method of moments, common seeds)."""
    from abm.calibration import calibrate as fit

    r = fit(scenario, targets, out=out, seeds=seeds, workers=workers, dask=dask, resume=resume,
            progress=not no_progress)
    click.echo(r.table())
    click.echo("\n" + "\n".join(f"{k}: {v}" for k, v in r.files.items()))


@main.command(name="sweep-report")
@click.argument("sweep_dir", type=click.Path(path_type=Path))
@click.option("--metric", "metrics", multiple=True, help="Summary columns to plot (default: the main ones).")
def sweep_report(sweep_dir: Path, metrics: tuple[str, ...]) -> None:
    """Plot SWEEP_DIR's metrics against its parameters (lines with seed bands; heatmaps for two)."""
    from abm.sweeps.report import sweep_report as draw

    click.echo(f"sweep report: {draw(sweep_dir, list(metrics) or None)}")


@main.command()
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the demo's random draws.")
def demo(seed: int) -> None:
    """Walk through the exchange core alone: a whale market-sells into a book quoted by market makers."""
    from abm.demo import run_demo

    run_demo(seed=seed, out=click.echo)


if __name__ == "__main__":
    main()
