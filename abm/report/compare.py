"""Two or more saved runs side by side (``abm compare``): the report's panels overlaid, one colour per run,
as an interactive HTML page (plotly, the extra ``viz``) and a PNG (matplotlib), and a table of the runs'
summary metrics with each run's difference to the first.

Markets are matched by symbol: the per-market panels are drawn for the markets every run has; a market
only some runs have is named in the header ("not compared") rather than drawn. The metrics are every
number of each run's ``summary.json`` (nested tables dotted, ``liquidated_notional.total``); a
difference is ``run − first run`` where both have the number, NaN where either lacks it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from abm.errors import InvalidInput
from abm.report.run_data import _MarketData, _Run
from abm.results.run_result import RunResult, load_run
from abm.units import USDC

# per shared market, then run-wide; (panel, title, y label)
MARKET_PANELS = (("prices", "Prices of {sym}: mark (solid) and index (dotted)", "price (USDC)"),
                 ("depth", "Depth of {sym} within 2% of the mid: bids (above zero) and asks (below)", "notional (USDC)"),
                 ("spread", "Bid-ask spread of {sym}, 1-minute rolling median", "spread (bps)"),
                 ("basis", "Basis of {sym} = mark − index", "basis (bps of index)"),
                 ("liquidations", "Liquidated notional in {sym}, cumulative", "USDC"),
                 ("funding", "Funding rate of {sym}: predicted (solid) and last paid (dashed)", "bps per payment"),
                 ("open_interest", "Open interest of {sym}, one side", "base units"))
RUN_PANELS = (("insurance", "Insurance fund (solid) and vault equity (dashed)", "USDC"),)


def letter(i: int) -> str:
    """The i-th run's argument name: RUN_A, RUN_B, ..., RUN_Z, RUN_27, ..."""
    return f"RUN_{chr(65 + i)}" if i < 26 else f"RUN_{i + 1}"


def load_named(path: str | Path, name: str) -> RunResult:
    """``load_run(path)`` with any problem reported under the argument's ``name`` (one line)."""
    p = Path(path)
    if not p.exists():
        raise InvalidInput(name, str(p), "must be a run folder; it does not exist")
    if not p.is_dir():
        raise InvalidInput(name, str(p), "must be a run folder; it is a file")
    try:
        return load_run(p)
    except InvalidInput as e:
        raise InvalidInput(name, str(p), e.allowed) from None


def summary_metrics(summary: Any, prefix: str = "") -> dict[str, float]:
    """Every number in ``summary`` (nested dicts dotted; lists, text and booleans left out), in its order."""
    out: dict[str, float] = {}
    if not isinstance(summary, dict):
        return out
    for k, v in summary.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(summary_metrics(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
        elif v is None:
            out[key] = math.nan
    return out


def metrics_table(summaries: Sequence[dict[str, Any]], labels: Sequence[str]) -> pd.DataFrame:
    """One row per metric (the union of those some run has a number for, first-seen order): each run's value
    and, for every run after the first, ``"<label> − <first>"``: its value minus the first run's (NaN unless both are numbers)."""
    per = [summary_metrics(s) for s in summaries]
    keys = [k for k in dict.fromkeys(k for m in per for k in m) if any(math.isfinite(m.get(k, math.nan)) for m in per)]
    data: dict[str, Any] = {"metric": keys}
    for lab, m in zip(labels, per):
        data[lab] = [m.get(k, math.nan) for k in keys]
    first = np.array(data[labels[0]], dtype=float)
    for lab in labels[1:]:
        data[f"{lab} − {labels[0]}"] = np.array(data[lab], dtype=float) - first
    return pd.DataFrame(data)


def _cell(v: float) -> str:
    if not math.isfinite(v):
        return "-"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:.4g}" if abs(v) < 1 else f"{v:,.2f}"


def format_table(table: pd.DataFrame) -> str:
    """The metrics table as aligned text (the rows where some run has a number)."""
    cols = list(table.columns)
    rows = [[str(r["metric"])] + [_cell(float(r[c])) for c in cols[1:]] for _, r in table.iterrows()
            if any(math.isfinite(float(r[c])) for c in cols[1:])]
    widths = [max(len(str(c)), *(len(r[i]) for r in rows)) if rows else len(str(c)) for i, c in enumerate(cols)]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cols, widths)))]
    lines += ["  ".join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths))) for r in rows]
    return "\n".join(lines)


@dataclass
class Comparison:
    labels: list[str]
    runs: list[_Run]
    shared: list[str]  # symbols every run has, in the first run's order
    not_shared: dict[str, list[str]]  # symbol -> labels of the runs that have it
    table: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)

    def header(self) -> str:
        lines = [f"{lab}: {r.result.scenario}, {r.time_s[-1] / 60:.1f} min, markets {', '.join(r.symbols)}"
                 + (f" ({r.result.path})" if r.result.path is not None else "") for lab, r in zip(self.labels, self.runs)]
        lines.append("compared markets: " + (", ".join(self.shared) or "none (the runs share no market)"))
        for sym, who in self.not_shared.items():
            lines.append(f"not compared: {sym} (only in {', '.join(who)})")
        return "\n".join(lines)

    def text(self) -> str:
        return self.header() + "\n\n" + format_table(self.table)


def _market(run: _Run, symbol: str) -> _MarketData:
    return next(d for d in run.drawn if d.symbol == symbol)


def _cumulative_liquidations(run: _Run, market: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    """Time (minutes) and liquidated notional so far (USDC) in ``market`` (every market with None); exact sums."""
    rows = sorted((t, v) for e in run.events.values() for _, m, _, t, v in e["rows"] if market is None or m == market)
    t = [0.0] + [a / 6e7 for a, _ in rows] + [run.t_end]
    cum = np.cumsum([0] + [v for _, v in rows]).tolist()
    return np.array(t), np.array(cum + [cum[-1]], dtype=float) / USDC


def series(run: _Run, panel: str, d: Optional[_MarketData]) -> list[tuple[str, np.ndarray, np.ndarray, str, bool]]:
    """What one run draws in ``panel``: (name, x minutes, y, dash, shown at first) per line."""
    t = run.t
    if panel == "insurance":
        return [(name, t, run.steps[col].to_numpy(float), dash, True)
                for col, name, dash in (("insurance_fund", "insurance fund", "solid"), ("vault_equity", "vault equity", "dash"))
                if col in run.steps]
    assert d is not None
    if panel == "prices":
        pos = [(n, np.where(d.col(c) > 0, d.col(c), np.nan)) for n, c in
               (("mark", "mark"), ("index", "index"), ("oracle", "oracle"), ("mid", "mid"))]
        return [(n, t, y, {"mark": "solid", "index": "dot"}.get(n, "dashdot"), n in ("mark", "index")) for n, y in pos]
    if panel == "depth":
        return [("bids within 2%", t, d.col("depth_bid_2pct"), "solid", True),
                ("asks within 2%", t, -d.col("depth_ask_2pct"), "solid", True)]
    if panel == "spread":
        win = max(1, round(60 / max(run.step_s, 1e-9)))
        med = pd.Series(d.col("spread_bps")).rolling(win, min_periods=1, center=True).median().to_numpy()
        return [("spread (median)", t, med, "solid", True)]
    if panel == "basis":
        index, mark = d.col("index"), d.col("mark")
        basis = np.where((index > 0) & (mark > 0), (mark - index) / np.where(index > 0, index, 1) * 1e4, np.nan)
        return [("basis", t, basis, "solid", True)]
    if panel == "liquidations":
        x, y = _cumulative_liquidations(run, d.index)
        return [("liquidated", x, y, "solid", True)]
    if panel == "funding":
        return [("predicted", t, d.col("funding_predicted") * 1e4, "solid", True),
                ("last paid", t, d.col("funding_last") * 1e4, "dash", True)]
    if panel == "open_interest":
        return [("open interest", t, d.col("open_interest"), "solid", True)]
    raise ValueError(panel)


def panels(c: Comparison) -> list[tuple[str, str, str, Optional[str]]]:
    """(panel, title, y label, symbol or None) in drawing order."""
    out: list[tuple[str, str, str, Optional[str]]] = [(p, t.format(sym=s), y, s) for s in c.shared
                                                      for p, t, y in MARKET_PANELS]
    return out + [(p, t, y, None) for p, t, y in RUN_PANELS]


def compare_figure(c: Comparison) -> Any:
    """The overlaid panels as one plotly figure, time axes linked."""
    from abm.report.interactive import RUN_HEX, add, line, new_figure

    ps = panels(c)
    names = [f"{p}[{s}]" if s else p for p, _, _, s in ps]
    fig = new_figure(names, [t for _, t, _, _ in ps], set(), timed_height=300)
    for name, (p, _, ylab, sym) in zip(names, ps):
        for j, (lab, run) in enumerate(zip(c.labels, c.runs)):
            d = _market(run, sym) if sym else None
            for what, x, y, dash, shown in series(run, p, d):
                add(fig, name, line(x, y, f"{lab}: {what}", RUN_HEX[j % len(RUN_HEX)], dash=dash,
                                    shape="hv" if p in ("liquidations", "funding") else "linear",
                                    visible=True if shown else "legendonly"))
        fig.update_yaxes(title_text=ylab, row=fig._abm_rows[name], col=1)
    fig.update_xaxes(range=[0, max(r.t_end for r in c.runs)], row=1, col=1)
    return fig


def compare_png(c: Comparison, path: Path) -> Path:
    """The overlaid panels as a PNG (matplotlib, no extra needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from abm.report.interactive import RUN_HEX

    ps = panels(c)
    fig = Figure(figsize=(14, 1.6 + 2.6 * len(ps)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(ps), 1, sharex=True, squeeze=False)[:, 0]
    dashes = {"solid": "-", "dash": "--", "dot": ":", "dashdot": "-."}
    for ax, (p, title, ylab, sym) in zip(axes, ps):
        ax.set_label(f"{p}[{sym}]" if sym else p)
        for j, (lab, run) in enumerate(zip(c.labels, c.runs)):
            d = _market(run, sym) if sym else None
            for what, x, y, dash, shown in series(run, p, d):
                if shown:
                    ax.plot(x, y, color=RUN_HEX[j % len(RUN_HEX)], ls=dashes[dash], lw=1.2,
                            drawstyle="steps-post" if p in ("liquidations", "funding") else "default",
                            label=f"{lab}: {what}")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylab)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8)
    axes[-1].set_xlabel("time since start of run (minutes)")
    fig.suptitle(c.header(), fontsize=10, x=0.01, ha="left")
    fig.savefig(path, format="png")
    return path


def compare_runs(run_dirs: Sequence[str | Path], out: Optional[str | Path] = None,
                 labels: Optional[Sequence[str]] = None, html: Optional[bool] = None) -> Comparison:
    """Compare the saved runs ``run_dirs`` (two or more) and write ``out``/compare.html (with plotly; ``html=None``:
    when it is installed), compare.png, metrics.csv and metrics.parquet. Labels default to the folders' names
    (made unique)."""
    from abm.report.interactive import html_available, note_missing, page

    if len(run_dirs) < 2:
        raise InvalidInput("RUN_B", None, "must be given: compare needs at least two run folders")
    results = [load_named(p, letter(i)) for i, p in enumerate(run_dirs)]
    if labels is not None and len(labels) != len(results):
        raise InvalidInput("--label", list(labels), f"must be given once per run ({len(results)} runs)")
    names = list(labels) if labels else [Path(p).resolve().name for p in run_dirs]
    counts = {n: names.count(n) for n in names}
    seen: dict[str, int] = {}
    for i, n in enumerate(list(names)):  # the same folder name twice: number them
        seen[n] = seen.get(n, 0) + 1
        if counts[n] > 1:
            names[i] = f"{n}#{seen[n]}"
    runs = [_Run(r, None) for r in results]
    every = [list(r.symbols) for r in runs]
    shared = [s for s in every[0] if all(s in e for e in every[1:])]
    alls = list(dict.fromkeys(s for e in every for s in e))
    not_shared = {s: [n for n, e in zip(names, every) if s in e] for s in alls if s not in shared}
    c = Comparison(names, runs, shared, not_shared, metrics_table([r.summary for r in results], names))
    folder = Path(out) if out is not None else Path("compare") / "-vs-".join(names)
    if folder.exists() and not folder.is_dir():
        raise InvalidInput("--out", str(folder), "must be a folder, not a file")
    folder.mkdir(parents=True, exist_ok=True)
    c.table.to_csv(folder / "metrics.csv", index=False)
    c.table.to_parquet(folder / "metrics.parquet", index=False)
    c.files = {"metrics.csv": folder / "metrics.csv", "metrics.parquet": folder / "metrics.parquet",
               "compare.png": compare_png(c, folder / "compare.png")}
    want = html_available() if html is None else html
    if want:
        table = c.table.to_html(index=False, na_rep="-", float_format=lambda v: repr(float(v)),
                                 classes="summary")
        text = page("Comparison: " + " vs ".join(names), c.header(), table, [compare_figure(c)])
        (folder / "compare.html").write_text(text, encoding="utf-8")
        c.files["compare.html"] = folder / "compare.html"
    else:
        note_missing("compare.html")
    return c
