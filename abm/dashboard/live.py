"""A model run step by step for the dashboard: the controls a scenario offers, and the new points since the last look.

No plotting library here: the dashboard (``abm.dashboard.app``) and the frame-rate benchmark read ``LiveRun``, and
the tests can drive it without the extra ``viz``. Why points "since the last look": the panels append what is
new (Bokeh's ``ColumnDataSource.stream``) instead of redrawing the run so far, which is what keeps a frame cheap
however long the run has gone on.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Optional

from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.model.metrics import DEPTH_BANDS_BPS, LEV_KEYS, LIQ_KINDS
from abm.model.scenario import Scenario, agent_groups
from abm.scenarios.catalogue import load_scenario, with_overrides

BANDS = tuple(f"{b / 100:g}pct" for b in DEPTH_BANDS_BPS)
# the depth bands, bids (far to near) then asks (near to far), as the explorer's depth bars show them
DEPTH_ROWS = tuple(f"bid {b}" for b in reversed(BANDS)) + tuple(f"ask {b}" for b in BANDS)
# a step's series, each a step-table column of the first market (suffixed ``[SYMBOL]`` for another)
PRICE_COLS = ("index", "oracle", "mark", "mid")
FUNDING_COLS = ("funding_predicted", "funding_last")
FUND_COLS = ("insurance_fund", "vault_equity")  # global: never suffixed
OI_COLS = ("open_interest",) + LEV_KEYS
MODE_KINDS = ("cross", "isolated", "mixed")
SIDES = ("long", "short")

# per agent kind, the parameters offered as controls (the rest stay as the scenario has them)
KIND_CONTROLS: dict[str, tuple[str, ...]] = {
    "whale": ("size",),
    "leveraged": ("leverage_min", "leverage_max", "margin_mode"),
    "position": ("notional_usdc", "leverage", "margin_mode", "side"),
}
CHOICES = {("leveraged", "margin_mode"): MODE_KINDS, ("position", "margin_mode"): ("isolated", "cross"),
           ("position", "side"): SIDES}


@dataclass(slots=True, frozen=True)
class Control:
    """One parameter of the scenario a user may change: its ``--set`` path, current value and choices, if any."""

    path: str
    label: str
    value: Any
    choices: tuple[str, ...] = ()


def _default(kind: str, name: str) -> Any:
    from abm.agents import resolve

    params = resolve(kind).Params
    for f in dataclasses.fields(params):
        if f.name == name:
            return f.default if f.default is not dataclasses.MISSING else None
    return None


def controls(scn: Scenario, market: int = 0) -> list[Control]:
    """The scenario's main parameters: seed, duration, the market's oracle delay and, per agent group of a kind
    in ``KIND_CONTROLS``, its main knobs (whale size, crowd leverage and margin mode, the position's terms).

    A parameter the scenario leaves unset shows its default; one whose default is None (the venue decides, e.g. the
    crowd's ``leverage_max``) is not offered, since no number would mean "unset"."""
    out = [Control("run.seed", "seed", scn.run.seed), Control("run.duration_s", "duration (s)", float(scn.run.duration_s))]
    mc = scn.markets[market]
    delay = mc.oracle_delay_s
    if delay is None:
        from abm.model.scenario import scenario_venue

        delay = scenario_venue(scn).profile.oracle.delay_s
    out.append(Control(f"markets[{market}].oracle_delay_s", f"oracle delay (s) {mc.symbol}", float(delay)))
    for name, kind, _, params in agent_groups(scn):
        for p in KIND_CONTROLS.get(str(kind), ()):
            value = params.get(p, _default(str(kind), p))
            if value is None:
                continue
            out.append(Control(f"agents.{name}.{p}", f"{name}: {p.replace('_', ' ')}", value,
                               CHOICES.get((str(kind), p), ())))
    return out


def changed(scn: Scenario, values: dict[str, Any]) -> dict[str, Any]:
    """The ``--set`` overrides for the controls whose value differs from the scenario's (so an untouched control
    changes nothing, not even a default into an explicit value)."""
    now = {c.path: c.value for c in controls(scn)}
    unknown = sorted(set(values) - set(now))
    if unknown:
        raise InvalidInput("dashboard control", unknown[0], f"must be one of {sorted(now)}")
    return {p: v for p, v in values.items() if v != now[p] and not (isinstance(v, float) and math.isnan(v))}


def series_names(market: int, symbol: str) -> dict[str, str]:
    """Panel series -> the step-table column it reads (the first market's columns have no suffix)."""
    def col(c: str) -> str:
        return c if market == 0 else f"{c}[{symbol}]"

    names = {c: col(c) for c in PRICE_COLS + FUNDING_COLS + OI_COLS}
    names |= {c: c for c in FUND_COLS}
    for side in ("bid", "ask"):
        for b in BANDS:
            names[f"{side} {b}"] = col(f"depth_{side}_{b}")
    for k in LIQ_KINDS:
        names[f"liq_{k}_count"] = col(f"liq_{k}_count")
        names[f"liq_{k}_notional"] = col(f"liq_{k}_notional")
    return names


class LiveRun:
    """A scenario's model advanced on demand; ``take()`` returns every step's panel values not yet taken."""

    __slots__ = ("scenario", "model", "market", "symbol", "_names", "_pending", "_cum", "steps")

    def __init__(self, scenario: str | Scenario, overrides: Optional[dict[str, Any]] = None, market: int = 0) -> None:
        scn = load_scenario(scenario, overrides) if not isinstance(scenario, Scenario) else with_overrides(scenario, overrides)
        if isinstance(market, bool) or not isinstance(market, int) or not 0 <= market < len(scn.markets):
            raise InvalidInput("market", market, f"must be a market number from 0 to {len(scn.markets) - 1}")
        self.scenario = scn
        self.market = market
        self.symbol = scn.markets[market].symbol
        self.model = MarketModel(scn)
        self._names = series_names(market, self.symbol)
        self._pending: dict[str, list[float]] = self._empty()
        self._cum = {k: 0.0 for k in LIQ_KINDS}
        self.steps = 0

    @property
    def symbols(self) -> list[str]:
        return [m.symbol for m in self.scenario.markets]

    def set_market(self, market: int) -> None:
        """Show another market of the same run: the next ``take()`` holds every step so far, read from the model's
        step table (which has every market's columns), so the panels start again with the whole run of that market
        and the model does not restart."""
        if isinstance(market, bool) or not isinstance(market, int) or not 0 <= market < len(self.scenario.markets):
            raise InvalidInput("market", market, f"must be a market number from 0 to {len(self.scenario.markets) - 1}")
        self.market = market
        self.symbol = self.scenario.markets[market].symbol
        self._names = series_names(market, self.symbol)
        self._pending = self._empty()
        self._cum = {k: 0.0 for k in LIQ_KINDS}
        table = self.model.datacollector.model_vars
        for j in range(self.steps):
            self._append({col: values[j] for col, values in table.items()})

    def _empty(self) -> dict[str, list[float]]:
        return {"t": [], **{k: [] for k in self._names}, **{f"cum_{k}": [] for k in LIQ_KINDS}}

    @property
    def tick_bps(self) -> float:
        """One tick as basis points of the market's starting price (the ladder's bar width)."""
        mc = self.scenario.markets[self.market]
        return float(self.model.exchange.markets[self.market].spec.tick_size) / float(mc.s0) * 1e4

    @property
    def running(self) -> bool:
        return bool(self.model.running)

    @property
    def time_s(self) -> float:
        return self.model.time_us / 1e6

    @property
    def duration_s(self) -> float:
        return float(self.scenario.run.duration_s)

    def step(self, n: int = 1) -> int:
        """Up to ``n`` model steps (fewer at the end of the run); how many ran."""
        done = 0
        model = self.model
        while done < n and model.running:
            model.step()
            self._append(model.metrics)
            done += 1
        self.steps += done
        return done

    def _append(self, row: dict[str, Any]) -> None:
        pending, names, cum = self._pending, self._names, self._cum
        pending["t"].append(row["time_s"] / 60.0)
        for key, col in names.items():
            v = row.get(col, math.nan)
            pending[key].append(float(v) if v is not None else math.nan)
        for k in LIQ_KINDS:
            cum[k] += float(row.get(names[f"liq_{k}_notional"], 0.0) or 0.0)
            pending[f"cum_{k}"].append(cum[k])

    def take(self) -> dict[str, list[float]]:
        """The points of the steps run since the last ``take`` (minutes in ``t``), and forget them."""
        out, self._pending = self._pending, self._empty()
        return out

    def ladder(self, levels: int = 20) -> dict[str, list[Any]]:
        """The book now: ``levels`` price levels a side, at their distance from the mid (bps) with their resting size
        in base units (bids negative). Distances, not prices, so the panel's axis stays put as the price moves."""
        spec = self.model.exchange.markets[self.market].spec
        lot = float(spec.lot_size)
        view = self.model.views[self.symbol]
        bids, asks = view.l2(levels)
        mid = view.mid()
        if mid is None:
            return {"bps": [], "size": [], "side": []}
        return {"bps": [(p - mid) / mid * 1e4 for p, _ in bids] + [(p - mid) / mid * 1e4 for p, _ in asks],
                "size": [-q * lot for _, q in bids] + [q * lot for _, q in asks],
                "side": ["bid"] * len(bids) + ["ask"] * len(asks)}
