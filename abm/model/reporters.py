"""The per-step metrics as a registry of reporters (Mesa's model-reporter idiom): one column each.

A reporter is a small function returning one number (an int for a count, else a float; NaN for a
missing value, never 0): ``fn(model, i)`` for market ``i`` (``per_market=True``: one column per
market, ``name`` for the first and ``name[SYMBOL]`` for the others) or ``fn(model)`` for the whole
venue. ``register_metric`` adds one from any module, so a new metric needs no edit of the compiled
built-ins (``abm.model.metrics``); a model takes the registry as it is when it is built, and its step
table has the global columns first, then each market's, in registration order. Reporters read the
model and must change nothing; agents are grouped by role (``model.agents_by_role``), so a user's
subclass of a built-in kind counts where the built-in does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import mesa

from abm.errors import InvalidInput
from abm.model import metrics as m

if TYPE_CHECKING:
    from abm.model.model import MarketModel

Reporter = Callable[..., Any]


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Reporter
    per_market: bool


_REGISTRY: dict[str, Metric] = {}


def register_metric(name: str, fn: Reporter, per_market: bool = True) -> Reporter:
    """Add a step-table column computed by ``fn`` (see the module doc); returns ``fn``. Names are unique."""
    if not isinstance(name, str) or not name.strip() or not name.isprintable() or any(c in name for c in "[]"):
        raise InvalidInput("metric name", name, "must be a non-empty printable string without brackets "
                                                "(brackets mark a market's columns)")
    if name in _REGISTRY:
        raise InvalidInput("metric name", name, "is registered already (unregister_metric it first)")
    if not callable(fn):
        raise InvalidInput(f"metric {name}", fn, "must be a function of (model, market index) or (model)")
    if not isinstance(per_market, bool):
        raise InvalidInput(f"metric {name}.per_market", per_market, "must be True or False")
    _REGISTRY[name] = Metric(name, fn, per_market)
    return fn


def unregister_metric(name: str) -> None:
    """Remove a metric added with ``register_metric``; the built-in ones stay (analysis reads them)."""
    if name in BUILTIN_METRICS:
        raise InvalidInput("metric name", name, "is a built-in metric and cannot be removed")
    if name not in _REGISTRY:
        raise InvalidInput("metric name", name, f"is not registered; registered: {sorted(set(_REGISTRY) - set(BUILTIN_METRICS))}")
    del _REGISTRY[name]


def registered_metrics() -> tuple[Metric, ...]:
    return tuple(_REGISTRY.values())


def column(name: str, symbol: str, first: bool) -> str:
    return name if first else f"{name}[{symbol}]"


Plan = list[tuple[str, Reporter, int]]


def plan(symbols: Sequence[str], metrics: Optional[Sequence[Metric]] = None) -> Plan:
    """(column, reporter, market index or -1 for a global one) in column order: what a model runs each step."""
    ms = registered_metrics() if metrics is None else metrics
    out: Plan = [(x.name, x.fn, -1) for x in ms if not x.per_market]
    for i, s in enumerate(symbols):
        out += [(column(x.name, s, i == 0), x.fn, i) for x in ms if x.per_market]
    return out


def column_names(symbols: Sequence[str]) -> list[str]:
    return [c for c, _, _ in plan(symbols)]


def collect(model: MarketModel, steps: Plan) -> dict[str, Any]:
    """One row of the step table: every reporter of ``steps`` once, in order."""
    model.metric_cache.clear()
    out: dict[str, Any] = {}
    for col, fn, i in steps:
        out[col] = fn(model) if i < 0 else fn(model, i)
    return out


class StepCollector(mesa.DataCollector):  # type: ignore[misc]
    """Mesa's DataCollector of the step table, fed the row ``collect`` made (``model.metrics``).

    Mesa's own ``collect`` calls one reporter per column and deep-copies each value, so that a
    mutable value cannot change after its step; the step table holds numbers only, so this one
    appends the row's values to the columns as they are: the same table, at a few per cent of the
    cost (it was a fifth of a 10-market run's bookkeeping: ~300 columns a step). The columns' lambda
    reporters stay, so the collector describes its columns as Mesa's does.
    """

    def __init__(self, columns: Sequence[str]) -> None:
        super().__init__(model_reporters={name: (lambda m, n=name: m.metrics[n]) for name in columns})
        self._columns = [(name, self.model_vars[name]) for name in self.model_vars]

    def collect(self, model: Any) -> None:
        row = model.metrics
        for name, values in self._columns:
            values.append(row[name])
        steps = getattr(self, "_collection_steps", None)  # Mesa >= 3.5: when each row was taken (batch_run reads it)
        if steps is not None:
            steps.append(model.time)


def _builtins() -> None:
    fn: Reporter
    for name, fn in (("time_s", m.time_s), ("insurance_fund", m.insurance_fund), ("vault_equity", m.vault_equity),
                     ("conservation_gap", m.conservation_gap)):
        register_metric(name, fn, per_market=False)
    for name, fn in (("index", m.index), ("oracle", m.oracle), ("mark", m.mark), ("mid", m.mid), ("last", m.last),
                     ("spread_bps", m.spread_bps)):
        register_metric(name, fn)
    for b in m.DEPTH_BANDS_BPS:
        for side in ("bid", "ask"):
            register_metric(f"depth_{side}_{b / 100:g}pct", m.depth(side, b))
    register_metric("volume_taker_buy", m.volume_taker_buy)
    register_metric("volume_taker_sell", m.volume_taker_sell)
    for k in m.LIQ_KINDS:
        register_metric(f"liq_{k}_count", m.liq_count(k))
    for k in m.LIQ_KINDS:
        register_metric(f"liq_{k}_notional", m.liq_notional(k))
    for name, fn in (("bad_debt", m.bad_debt), ("funding_predicted", m.funding_predicted),
                     ("funding_last", m.funding_last), ("open_interest", m.open_interest),
                     ("mm_quoting", m.mm_quoting), ("mm_quoted_notional", m.mm_quoted_notional)):
        register_metric(name, fn)
    for k in m.LEV_KEYS:
        register_metric(k, m.lev_lots(k))


_builtins()
BUILTIN_METRICS = tuple(_REGISTRY)

__all__ = ["StepCollector", "Metric", "register_metric", "unregister_metric", "registered_metrics", "column_names", "BUILTIN_METRICS"]
