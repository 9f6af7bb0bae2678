"""``position_risk``: a user's position placed in a scenario, run over seeds in each margin mode, and the same
seeds without it; the statistics a risk question needs, with intervals.

How it is run: one sweep per margin mode and one without the position, each into its own folder under
``out``, with the same base seed and no swept parameter, so replicate r runs the same seed (the same
drawn shocks of ``[randomize]``, the same noise) in every mode and in the run without the position.
The comparison is paired: the modes differ only in the position's margin mode, and the difference
between a mode's liquidated notional and the run without the position is what the position itself
added to the cascade. The sweeps are resumable and run on the local pool or Dask as any sweep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from abm.errors import InvalidInput
from abm.position import stats
from abm.position.metrics import GROUP, PATH_POINTS

METRICS = "abm.position.metrics:position_metrics"
MODES = ("isolated", "cross")
WITHOUT = "without"  # the folder of the runs without the position
M = "metric."


@dataclass
class PositionRisk:
    """What ``position_risk`` found: ``runs`` (one row per mode and seed), ``summary`` (one row per mode, each
    statistic with its 95 % interval as ``_lo``/``_hi``), ``equity`` (path quantiles by mode and time) and
    ``without`` (the runs without the position)."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    equity: pd.DataFrame
    without: pd.DataFrame
    position: dict[str, Any]
    out: Optional[Path] = None
    files: dict[str, Path] = field(default_factory=dict)

    def table(self) -> str:
        """The summary as a person reads it: one column per mode."""
        rows = [
            ("runs", "n", "{:.0f}"),
            ("P(liquidated)", "p_liquidated", "{:.1%}"),
            ("loss median (USDC)", "loss_q50", "{:,.0f}"),
            ("VaR 95 % (USDC)", "var95", "{:,.0f}"),
            ("ES 95 % (USDC)", "es95", "{:,.0f}"),
            ("VaR 99 % (USDC)", "var99", "{:,.0f}"),
            ("ES 99 % (USDC)", "es99", "{:,.0f}"),
            ("P(an exit triggered)", "p_exit", "{:.1%}"),
            ("exit slippage mean (bps)", "exit_slippage_mean", "{:.1f}"),
            ("exit slippage worst (bps)", "exit_slippage_worst", "{:.1f}"),
            ("time to flat mean (s)", "time_to_flat_mean", "{:.1f}"),
            ("time to flat worst (s)", "time_to_flat_worst", "{:.1f}"),
            ("time to hedge mean (s)", "time_to_hedge_mean", "{:.1f}"),
            ("funding paid mean (USDC)", "funding_paid_mean", "{:,.2f}"),
            ("added liquidations mean (USDC)", "impact_mean", "{:,.0f}"),
        ]
        modes = list(self.summary["mode"])
        width = max(len(r[0]) for r in rows)
        lines = [" " * width + "".join(f"  {m:>30}" for m in modes)]
        for label, key, fmt in rows:
            cells = []
            for _, s in self.summary.iterrows():
                v = s.get(key)
                if v is None or (isinstance(v, float) and not np.isfinite(v)):
                    cells.append(f"  {'-':>30}")
                    continue
                text = fmt.format(v)
                lo, hi = s.get(f"{key}_lo"), s.get(f"{key}_hi")
                if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
                    text += f" [{fmt.format(lo)}, {fmt.format(hi)}]"
                cells.append(f"  {text:>30}")
            lines.append(label.ljust(width) + "".join(cells))
        return "\n".join(lines)


def _pct(name: str, value: Any) -> Optional[float]:
    """``5``, ``5.0`` or ``"5%"`` -> 5.0; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().removesuffix("%")
        try:
            value = float(text)
        except ValueError:
            raise InvalidInput(name, value, "must be a percentage such as 5 or 5%") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 100:
        raise InvalidInput(name, value, "must be a percentage in (0, 100), e.g. 5 or 5%")
    return float(value)


def position_table(market: Optional[str], side: str, notional: float, leverage: int, mode: str,
                   stop: Optional[float], take_profit: Optional[float], leashes: Sequence[Mapping[str, Any]],
                   open_s: float, entry: str, deposit: Optional[float]) -> dict[str, Any]:
    """The ``[agents.position]`` table the runs add (checked with the scenario by the sweep)."""
    all_leashes = [dict(lz) for lz in leashes]
    if stop is not None:
        all_leashes.insert(0, {"kind": "stop", "pct": stop})
    if take_profit is not None:
        all_leashes.append({"kind": "take_profit", "pct": take_profit})
    table: dict[str, Any] = {"kind": "position", "side": side, "notional_usdc": float(notional), "leverage": leverage,
                             "margin_mode": mode, "open_s": float(open_s), "entry": entry, "leashes": all_leashes}
    if market is not None:
        table["symbol"] = market
    # the account's deposit: by default the initial margin plus 1 % of the notional (fees and entry slippage)
    table["deposit_usdc"] = float(deposit) if deposit is not None else notional / leverage + notional / 100
    return table


def position_risk(
    scenario: str | Path,
    market: Optional[str] = None,
    side: str = "long",
    notional: float = 50_000.0,
    leverage: int = 10,
    modes: Sequence[str] = MODES,
    stop: Any = None,
    take_profit: Any = None,
    leashes: Sequence[Mapping[str, Any]] = (),
    open_s: float = 60.0,
    entry: str = "market",
    deposit: Optional[float] = None,
    seeds: int = 200,
    workers: int = 1,
    scheduler: Optional[str] = None,
    out: Optional[str | Path] = None,
    base_seed: int = 0,
    progress: bool = False,
    figure: bool = True,
    leash_sets: Optional[Mapping[str, Sequence[Mapping[str, Any]]]] = None,
) -> PositionRisk:
    """Run the position in every mode of ``modes`` and without it, on the same ``seeds`` seeds; see the module.

    ``stop`` / ``take_profit`` (percent moves of the mark from the entry) are shorthands for the leashes
    ``{kind = "stop", pct = ...}`` and ``{kind = "take_profit", pct = ...}``; ``leashes`` adds any others
    (``abm.agents.leashes``). ``deposit`` defaults to the initial margin plus 1 % of the notional. The
    position opens at ``open_s`` (after the book has formed). ``out`` defaults to ``positions/<scenario>``.
    ``leash_sets`` (``{name: [leash, ...]}``) compares protections instead: every mode with every set, each a
    column ``mode/name`` on the same seeds (with it, ``stop``, ``take_profit`` and ``leashes`` are refused).
    """
    from abm.scenarios import load_scenario
    from abm.sweeps import sweep

    if isinstance(modes, str):
        modes = [m.strip() for m in modes.split(",")]
    modes = list(modes)
    if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
        raise InvalidInput("--mode", ",".join(map(str, modes)), f"must be distinct margin modes among {list(MODES)}")
    if side not in ("long", "short"):
        raise InvalidInput("--side", side, "must be 'long' or 'short'")
    stop_pct, tp_pct = _pct("--stop", stop), _pct("--take-profit", take_profit)
    base = load_scenario(scenario)
    if GROUP in base.agents:
        raise InvalidInput("scenario", str(scenario), f"must not have an agent group named '{GROUP}' (the position's)")
    folder = Path(out) if out is not None else Path("positions") / Path(str(scenario)).stem
    sets = _leash_sets(leash_sets, stop_pct, tp_pct, leashes)
    tables: dict[str, dict[str, Any]] = {}
    for m in modes:
        for name, (s_pct, t_pct, extra) in sets.items():
            label = m if name == "" else f"{m}/{name}"
            tables[label] = position_table(market, side, notional, leverage, m, s_pct, t_pct, extra, open_s, entry,
                                           deposit)
    for table in tables.values():  # every column's table checked with the scenario before anything runs
        load_scenario(scenario, {f"agents.{GROUP}": table})
    rows = []
    for label, table in tables.items():
        df = sweep(scenario, seeds=seeds, workers=workers, out=folder / label.replace("/", "-"), base_seed=base_seed,
                   progress=progress, scheduler=scheduler, metrics=METRICS, overrides={f"agents.{GROUP}": table})
        rows.append(df.assign(mode=label, margin_mode=table["margin_mode"]))
    modes = list(tables)
    without = sweep(scenario, seeds=seeds, workers=workers, out=folder / WITHOUT, base_seed=base_seed,
                    progress=progress, scheduler=scheduler)
    runs = pd.concat(rows, ignore_index=True)
    summary = pd.DataFrame([_mode_summary(m, runs[runs["mode"] == m], without) for m in modes])
    equity = _equity_quantiles(runs, base.run.duration_s)
    record = {"modes": modes, **tables[modes[0]], "symbol": market or base.markets[0].symbol}
    summary.insert(1, "margin_mode", [tables[m]["margin_mode"] for m in modes])
    summary.insert(2, "leashes", [json.dumps(tables[m]["leashes"]) for m in modes])
    result = PositionRisk(runs, summary, equity, without, record, folder)
    _write(result, figure)
    return result


def _leash_sets(sets: Optional[Mapping[str, Sequence[Mapping[str, Any]]]], stop: Optional[float],
                tp: Optional[float], leashes: Sequence[Mapping[str, Any]]) -> dict[str, tuple[Any, Any, Any]]:
    """``{name: (stop, take_profit, leashes)}`` of each compared set; one unnamed set without ``sets``."""
    if sets is None:
        return {"": (stop, tp, leashes)}
    if stop is not None or tp is not None or leashes:
        raise InvalidInput("--leash-set", sorted(sets), "replaces --stop, --take-profit and --leash (give the "
                                                       "protections of each set in the set)")
    if not isinstance(sets, Mapping) or not sets:
        raise InvalidInput("--leash-set", sets, "must name at least one set: {name: [leash, ...]}")
    out = {}
    for name, items in sets.items():
        if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise InvalidInput("--leash-set", name, "names must be letters, digits, '_' or '-' (they name folders)")
        if not isinstance(items, (list, tuple)) or not all(isinstance(x, Mapping) for x in items):
            raise InvalidInput(f"--leash-set {name}", items, "must be a list of leash tables (may be empty)")
        out[name] = (None, None, list(items))
    return out


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["error"] == ""] if "error" in df else df


def _mode_summary(mode: str, rows: pd.DataFrame, without: pd.DataFrame) -> dict[str, Any]:
    ok = _ok(rows)
    n = len(ok)
    liq = int(ok[M + "liquidated"].astype(bool).sum()) if n else 0
    loss = stats.finite(ok[M + "loss_usdc"]) if n else np.zeros(0)
    out: dict[str, Any] = {"mode": mode, "n": n, "failed": len(rows) - n, "liquidated": liq,
                           "p_liquidated": liq / n if n else float("nan")}
    out["p_liquidated_lo"], out["p_liquidated_hi"] = stats.wilson(liq, n)
    for key, fn in (("loss_mean", stats.mean), ("loss_q50", stats.quantile(0.5)),
                    ("var95", lambda x: stats.var(x, 0.95)), ("es95", lambda x: stats.expected_shortfall(x, 0.95)),
                    ("var99", lambda x: stats.var(x, 0.99)), ("es99", lambda x: stats.expected_shortfall(x, 0.99))):
        out[key], out[f"{key}_lo"], out[f"{key}_hi"] = stats.with_interval(loss, fn)
    exited = ok[M + "exit_kind"].notna() if n and M + "exit_kind" in ok else pd.Series(False, index=ok.index)
    k = int(exited.sum())
    out["p_exit"] = k / n if n else float("nan")
    out["p_exit_lo"], out["p_exit_hi"] = stats.wilson(k, n)
    for key, col in (("exit_slippage", "exit_slippage_bps"), ("time_to_flat", "time_to_flat_s"),
                     ("time_to_hedge", "time_to_hedge_s")):
        x = stats.finite(ok[M + col]) if M + col in ok else np.zeros(0)
        out[f"{key}_mean"], out[f"{key}_mean_lo"], out[f"{key}_mean_hi"] = stats.with_interval(x, stats.mean)
        out[f"{key}_q95"] = stats.quantile(0.95)(x)
        out[f"{key}_worst"] = stats.maximum(x)
    funding = stats.finite(-ok[M + "funding_usdc"]) if n else np.zeros(0)  # paid = minus received
    out["funding_paid_mean"], out["funding_paid_mean_lo"], out["funding_paid_mean_hi"] = \
        stats.with_interval(funding, stats.mean)
    paired = ok.merge(_ok(without)[["seed", "liquidated_notional.total"]], on="seed", suffixes=("", ".without"))
    diff = stats.finite(paired["liquidated_notional.total"] - paired["liquidated_notional.total.without"])
    out["impact_mean"], out["impact_mean_lo"], out["impact_mean_hi"] = stats.with_interval(diff, stats.mean)
    out["liquidated_without_mean"] = float(paired["liquidated_notional.total.without"].mean()) if len(paired) else \
        float("nan")
    return out


def _equity_quantiles(runs: pd.DataFrame, duration_s: float) -> pd.DataFrame:
    ok = _ok(runs)
    out = []
    for mode, g in ok.groupby("mode", sort=False):
        for k in range(PATH_POINTS + 1):
            x = stats.finite(g[f"{M}equity.{k}"])
            q = np.quantile(x, [0.05, 0.5, 0.95]) if len(x) else [float("nan")] * 3
            out.append({"mode": mode, "time_s": duration_s * k / PATH_POINTS, "q05": q[0], "q50": q[1], "q95": q[2]})
    return pd.DataFrame(out)


def _write(result: PositionRisk, figure: bool) -> None:
    assert result.out is not None
    folder = result.out
    folder.mkdir(parents=True, exist_ok=True)
    files = {"runs": folder / "position_runs.parquet", "summary": folder / "position_summary.parquet",
             "equity": folder / "position_equity.parquet"}
    result.runs.to_parquet(files["runs"], index=False)
    result.summary.to_parquet(files["summary"], index=False)
    result.equity.to_parquet(files["equity"], index=False)
    if figure:
        from abm.position.figure import draw_position_report

        files["figure"] = draw_position_report(result, folder / "position_report.png")
    result.files = files
