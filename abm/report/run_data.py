"""What the report draws from: one run's tables and summary numbers prepared once (``_Run``), per market (``_MarketData``)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from abm.analysis.summary import RunAnalysis, analyse_run
from abm.errors import InvalidInput
from abm.report.style import GATEWAY_PANEL, MODES_PANEL, PER_MARKET, SHARED
from abm.results.run_result import RunResult


def report_numbers(result: RunResult) -> RunAnalysis:
    """The analysis the report draws: ``analyse_run`` with the scenario runner's inputs (no tape), so
    its ``summary`` is the run's ``summary.json`` (``abm.scenarios.runner.collect_result``)."""
    return analyse_run(result.steps.reset_index(drop=True), result.liquidations, result.funding,
                       result.multipliers, result.shocks)


# ---------------------------------------------------------------------- the data


class _MarketData:
    """One market's columns, shocks and oracle outages, in report units (minutes, USDC, bps)."""

    def __init__(self, run: "_Run", index: int, first_drawn: bool) -> None:
        result = run.result
        spec = result.markets[index]
        self.index = index
        self.first_drawn = first_drawn
        self.symbol = str(spec.get("symbol", f"market {index}"))
        self.base = self.symbol.split("-")[0] if "-" in self.symbol else "base units"
        self.tick_size = float(spec.get("tick_size", 1.0))
        self.lot_size = float(spec.get("lot_size", 1.0))
        self.steps = run.steps
        self.n = len(run.steps)
        ctl = getattr(result, "control_steps", None)
        self.control = ctl.reset_index(drop=True) if ctl is not None and len(ctl) else None
        self.shocks = [s for s in (result.shocks or []) if s.get("symbol", self.symbol) == self.symbol]
        cfg = result.config.get("markets") if isinstance(result.config, dict) else None
        mc = cfg[index] if isinstance(cfg, list) and index < len(cfg) and isinstance(cfg[index], dict) else {}
        self.outages = [(float(a), float(b)) for a, b in (mc.get("oracle_outages_s") or [])]

    def control_col(self, name: str) -> Optional[np.ndarray]:
        """The no-feedback control's column ``name`` on the run's time grid (``run.amplification``), else None."""
        ctl = self.control
        key = name if self.index == 0 else f"{name}[{self.symbol}]"
        if ctl is None or key not in ctl or len(ctl) != self.n:
            return None
        return ctl[key].to_numpy(dtype=float)

    def label(self, panel: str) -> str:
        return panel if self.first_drawn else f"{panel}[{self.symbol}]"

    def col(self, name: str) -> np.ndarray:
        """The market's column ``name`` (unsuffixed for the run's first market), NaN if absent."""
        key = name if self.index == 0 else f"{name}[{self.symbol}]"
        if key in self.steps:
            return self.steps[key].to_numpy(dtype=float)
        return np.full(self.n, np.nan)


class _Run:
    """The run-level data: steps on the time grid, the drawn markets and the run's analysis."""

    def __init__(self, result: RunResult, market: Optional[int]) -> None:
        if not result.markets:
            raise InvalidInput("result.markets", result.markets, "must describe at least one market")
        if market is not None and (isinstance(market, bool) or not isinstance(market, int)
                                   or not 0 <= market < len(result.markets)):
            raise InvalidInput("market", market, f"must be a market number from 0 to {len(result.markets) - 1}")
        steps = result.steps
        if steps is None or len(steps) == 0 or "time_s" not in steps:
            raise InvalidInput("result.steps", None if steps is None else len(steps),
                               "must hold at least one collected step with a time_s column")
        self.result = result
        self.steps = steps.reset_index(drop=True)
        self.time_s = self.steps["time_s"].to_numpy(dtype=float)
        self.t = self.time_s / 60.0
        self.t_end = max(float(self.t.max()), 1e-9)
        dt = np.diff(self.time_s)
        self.step_s = float(np.median(dt)) if len(dt) else max(float(self.time_s[0]), 1.0)
        self.analysis = report_numbers(result)
        self.summary = self.analysis.summary
        self.events = self.analysis.events
        self.n_markets = len(result.markets)
        indices = range(self.n_markets) if market is None else [market]
        self.drawn = [_MarketData(self, i, j == 0) for j, i in enumerate(indices)]
        self.symbols = [str(m.get("symbol", f"market {i}")) for i, m in enumerate(result.markets)]
        self.modes = self._modes()
        # venues with a gateway (abm.model.gateway), by their columns' suffix: "" the perp venue, "@NAME" a spot venue
        self.gateways = ([""] if "gateway_served" in self.steps else []) + [
            str(c)[len("gateway_served"):] for c in self.steps.columns if str(c).startswith("gateway_served@")]
        self.gateway = bool(self.gateways)

    @property
    def multi(self) -> bool:
        return len(self.drawn) > 1

    def _modes(self) -> list[int]:
        """Margin modes with positions or liquidations in the run (metrics lump strict isolated in with isolated)."""
        modes = {int(e["mode"]) for e in self.events.values()}
        for d in self.drawn:
            for m, name in ((0, "cross"), (1, "isolated")):
                if np.nansum(d.col(f"lev_long_{name}")) + np.nansum(d.col(f"lev_short_{name}")) > 0:
                    modes.add(m)
        return sorted(modes)

    def panel_names(self) -> list[str]:
        names = [d.label(p) for p in PER_MARKET for d in self.drawn]
        if self.gateway:  # right below the prices, so latency and price read against the same time
            names[len(self.drawn):len(self.drawn)] = [GATEWAY_PANEL + s for s in self.gateways]
        if len(self.modes) > 1:
            names.append(MODES_PANEL)
        return names + list(SHARED)

    def shocks(self) -> list[tuple[Optional[str], dict[str, Any]]]:
        return [(d.symbol if self.multi else None, s) for d in self.drawn for s in d.shocks]

    def outages(self) -> list[tuple[Optional[str], tuple[float, float]]]:
        return [(d.symbol if self.multi else None, w) for d in self.drawn for w in d.outages]

    def event_windows(self) -> list[tuple[str, float, float]]:
        """(label, start s, end s) of each world event of the scenario (``[[events]]``): a scheduled one's window as
        written, a triggered one's from when it fired (``summary["events_fired_s"]``; one that never fired has none)."""
        events = self.result.config.get("events") if isinstance(self.result.config, dict) else None
        fired = iter(self.result.summary.get("events_fired_s") or [])
        out: list[tuple[str, float, float]] = []
        for ev in events or []:
            if not isinstance(ev, dict):
                continue
            start: Optional[float] = float(ev.get("start_s", 0))
            if isinstance(ev.get("when"), dict):
                start = next(fired, None)
            if start is not None:
                out.append((event_label(ev), start, start + float(ev.get("duration_s", 0))))
        return out


def event_label(ev: dict[str, Any]) -> str:
    """A world event in a few words for a panel's span: what, where, how long."""
    span = f"{float(ev.get('duration_s', 0)):g}s"
    kind = ev.get("kind")
    if kind == "mm_withdrawal":
        return f"{ev.get('group')} makers away {span}"
    if kind == "transfer_freeze":
        return f"{ev.get('venue') or 'venue'} transfers frozen {span}"
    where = ev.get("venue") or "venue"
    return f"{where} {str(ev.get('state', '')).replace('_', '-')} {span}"


# ---------------------------------------------------------------------- formatting helpers


