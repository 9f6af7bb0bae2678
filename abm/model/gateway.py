"""The venue's gateway in a model: its per-step columns, and liquidation checks that queue when the profile says so.

Why apart from the built-in metrics: the gateway is opt-in, and a run without one must write the step table it
always wrote. So its columns are not registered metrics (which every model would carry); a model with a gateway
appends them to its own plan (``gateway_plan``), after every registered column:

- ``gateway_queue``: actions in the gateway at the end of the step (waiting or in service);
- ``gateway_queue_peak``: the most at once during the step;
- ``gateway_served``: actions executed in the step;
- ``gateway_latency_p50_ms``, ``gateway_latency_p99_ms``, ``gateway_latency_max_ms``: of the actions executed in
  the step, the time from reaching the gateway to execution (queueing plus service; the link's own latency is
  not in it), nearest-rank percentiles; NaN in a step that served none;
- ``gateway_rejects_overload``: actions refused by the queue limit in the step, and ``gateway_rejects_NAME`` for
  each rate limit.

A simulated spot venue with a gateway (``spot.NAME.gateway``) has the same columns suffixed ``@NAME``, after the
perp venue's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

from abm.sim.gateway import OVERLOAD, Gateway

if TYPE_CHECKING:
    from abm.model.model import MarketModel

__all__ = ["gateway_plan", "queued_liquidations", "GATEWAY_COLUMNS"]

GATEWAY_COLUMNS = ("gateway_queue", "gateway_queue_peak", "gateway_served", "gateway_latency_p50_ms",
                   "gateway_latency_p99_ms", "gateway_latency_max_ms", f"gateway_rejects_{OVERLOAD}")
NAN = float("nan")


def _sorted_waits(model: MarketModel, gw: Gateway) -> list[int]:
    cache = model.metric_cache
    key = ("gateway_waits", id(gw))
    waits = cache.get(key)
    if waits is None:
        waits = cache[key] = sorted(gw.waits_us)
    return waits  # type: ignore[no-any-return]


def _percentile(gw: Gateway, q: float) -> Callable[[MarketModel], float]:
    def fn(model: MarketModel) -> float:
        waits = _sorted_waits(model, gw)
        if not waits:
            return NAN
        return waits[max(0, math.ceil(q * len(waits)) - 1)] / 1000.0

    return fn


def gateway_plan(gateway: Gateway, suffix: str = "") -> list[tuple[str, Callable[..., Any], int]]:
    """The gateway's step columns as (column, reporter, -1) entries of a model's plan; a spot venue's gateway has
    its columns suffixed ``@NAME``."""
    gw = gateway
    fns: list[tuple[str, Callable[..., Any]]] = [
        ("gateway_queue", lambda m: len(gw)), ("gateway_queue_peak", lambda m: gw.peak),
        ("gateway_served", lambda m: len(gw.waits_us)), ("gateway_latency_p50_ms", _percentile(gw, 0.5)),
        ("gateway_latency_p99_ms", _percentile(gw, 0.99)), ("gateway_latency_max_ms", _percentile(gw, 1.0))]
    fns += [(f"gateway_rejects_{reason}", lambda m, r=reason: gw.rejected[r]) for reason in gw.rejected]
    return [(name + suffix, fn, -1) for name, fn in fns]


def queued_liquidations(base: Any, model: MarketModel) -> type:
    """A liquidation process class wrapping ``base`` whose mark-update checks wait in ``model.gateway``'s queue.

    The exchange builds it as it builds any process (``cls(venue, engine)``); bad debt is still covered at once
    (it is settlement, not an action). Before the run starts (a market's first mark) the check runs at once.
    """

    class QueuedLiquidations:
        def __init__(self, venue: Any, engine: Any) -> None:
            self.inner = base(venue, engine)

        def cover_bad_debt(self, a: Any, unit: Any) -> None:
            self.inner.cover_bad_debt(a, unit)

        def on_mark(self, idx: int) -> None:
            gw = model.gateway
            if gw is None or not model.sched.started:
                self.inner.on_mark(idx)
            else:
                gw.internal(("liquidation", idx), self.inner.on_mark, idx)

    QueuedLiquidations.__name__ = QueuedLiquidations.__qualname__ = f"Queued{getattr(base, '__name__', 'Liquidations')}"
    return QueuedLiquidations
