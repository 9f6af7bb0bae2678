"""One market's prices in simulation time: oracle publications, mark updates, funding samples and payments.

The oracle publishes on its own schedule (interval, delay, outages); the mark is recomputed on every
oracle publication and, because the book moves between publications, on a fixed cadence; every mark
update goes to ``Exchange.set_mark``, which runs the liquidation check. Funding samples the premium
of the live book against the oracle and pays on the venue's schedule. Everything is an event in the
scheduler, so nothing reads the index "now" and a run is deterministic.
"""

from __future__ import annotations

from array import array
from fractions import Fraction
from typing import Any, Callable, Optional, Union

from abm.errors import InvalidInput
from abm.exchange import Exchange
from abm.prices.external_perp import ExternalPerps
from abm.prices.funding import DEFAULT_THIN_SIDE, THIN_SIDE_RULES, FundingSchedule, book_premium
from abm.prices.mark import MarkModel
from abm.prices.oracle import Oracle
from abm.sim.scheduler import FUNDING_PAYMENT, FUNDING_SAMPLE, MARK, ORACLE, Scheduler

FUNDING_COLUMNS = ("time_us", "market", "rate", "price", "paid", "received", "rounding", "accounts")


class FundingLog:
    """Funding payments as typed columns (rate as a float for analysis; payments exact in quote units)."""

    __slots__ = ("_cols",)

    def __init__(self) -> None:
        self._cols = {c: array("d" if c == "rate" else "q") for c in FUNDING_COLUMNS}

    def record(self, **row: Union[int, float]) -> None:
        for c in FUNDING_COLUMNS:
            self._cols[c].append(row[c])  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._cols["time_us"])

    def column(self, name: str) -> array:
        return self._cols[name]

    def to_pandas(self) -> Any:
        import numpy as np
        import pandas as pd

        return pd.DataFrame({c: np.frombuffer(a, dtype=np.float64 if c == "rate" else np.int64) if len(a)
                             else np.zeros(0, np.float64 if c == "rate" else np.int64) for c, a in self._cols.items()})


class MarketFeed:
    __slots__ = ("ex", "symbol", "index", "oracle", "mark_model", "funding", "impact_notional", "mark_cadence_us",
                 "log", "mark", "last_rate", "_view", "_sched", "mark_listeners", "funding_listeners", "outage_listeners",
                 "external_perps", "thin_side")

    def __init__(
        self,
        ex: Exchange,
        symbol: str,
        oracle: Oracle,
        mark_model: MarkModel,
        funding: FundingSchedule,
        impact_notional: int,
        mark_cadence_us: int = 1_000_000,
        log: Optional[FundingLog] = None,
        external_perps: Optional[ExternalPerps] = None,
        thin_side: str = DEFAULT_THIN_SIDE,
    ) -> None:
        """``external_perps``: the same perp on other venues, the mark's third input (None: none; only a mark
        model with ``takes_external_perp`` reads them: Hyperliquid's). ``thin_side``: the impact price of a side
        thinner than the impact notional (``abm.prices.funding.THIN_SIDE_RULES``, a profile's ``funding.thin_side``)."""
        m = ex.market(symbol)
        if not isinstance(oracle, Oracle):
            raise InvalidInput("oracle", oracle, "must be an abm.prices.Oracle")
        if not isinstance(mark_model, MarkModel):
            raise InvalidInput("mark_model", mark_model, "must be an abm.prices.MarkModel (HyperliquidMark, BinanceMark, ...)")
        if not isinstance(funding, FundingSchedule):
            raise InvalidInput("funding", funding, "must be an abm.prices.FundingSchedule")
        if type(impact_notional) is not int or impact_notional <= 0:
            raise InvalidInput("impact_notional", impact_notional, "must be a positive integer (quote units)")
        if type(mark_cadence_us) is not int or mark_cadence_us <= 0:
            raise InvalidInput("mark_cadence_us", mark_cadence_us, "must be a positive integer (microseconds)")
        if thin_side not in THIN_SIDE_RULES:
            raise InvalidInput("thin_side", thin_side, f"must be one of {list(THIN_SIDE_RULES)}")
        if external_perps is not None:
            if not isinstance(external_perps, ExternalPerps):
                raise InvalidInput("external_perps", external_perps, "must be None or an abm.prices.ExternalPerps")
            if not mark_model.takes_external_perp:
                raise InvalidInput("external_perps", [s.name for s in external_perps.sources],
                                   f"are read only by a mark model with an external-perp input (hyperliquid); "
                                   f"{type(mark_model).__name__} has none")
        self.ex = ex
        self.symbol = symbol
        self.index = m.index
        self.oracle = oracle
        self.mark_model = mark_model
        self.funding = funding
        self.impact_notional = impact_notional
        self.mark_cadence_us = mark_cadence_us
        self.log = log if log is not None else FundingLog()
        self.mark: Optional[int] = None
        self.last_rate: Fraction = Fraction(0)
        self._view = ex.data(symbol)
        self._sched: Optional[Scheduler] = None
        self.mark_listeners: list[Callable[[int, int], None]] = []  # (t, mark) after each mark update
        self.funding_listeners: list[Callable[[int, Fraction], None]] = []  # (t, rate) after each payment
        self.outage_listeners: list[Callable[[int], None]] = []  # (t) at each publication the oracle missed
        self.external_perps = external_perps
        self.thin_side = thin_side

    def start(self, sched: Scheduler) -> None:
        """Put the feed's first events on the scheduler (oracle, mark cadence, funding)."""
        self._sched = sched
        t = self.oracle.next_update_us()
        if t is not None:
            sched.at(max(t, sched.now), self._on_oracle, priority=ORACLE)
        sched.at(sched.now + self.mark_cadence_us, self._on_cadence, priority=MARK)
        sched.at(max(self.funding.next_sample_us(), sched.now), self._on_sample, priority=FUNDING_SAMPLE)
        sched.at(max(self.funding.next_payment_us(), sched.now), self._on_payment, priority=FUNDING_PAYMENT)

    def predicted_rate(self) -> Fraction:
        return self.funding.predicted_rate()

    # ------------------------------------------------------------------ events

    def _on_oracle(self, t: int) -> None:
        price = self.oracle.publish(t)
        if price is not None:
            self.ex.set_oracle(self.symbol, price)
            self._update_mark(t)
        else:
            for fn in self.outage_listeners:
                fn(t)
        nxt = self.oracle.next_update_us()
        if nxt is not None:
            self._sched.at(nxt, self._on_oracle, priority=ORACLE)  # type: ignore[union-attr]

    def _on_cadence(self, t: int) -> None:
        self._update_mark(t)
        self._sched.at(t + self.mark_cadence_us, self._on_cadence, priority=MARK)  # type: ignore[union-attr]

    def _update_mark(self, t: int) -> None:
        oracle = self.oracle.price
        if oracle is None:
            return
        v = self._view
        last = self.ex.markets[self.index].last_price
        ext = self.external_perps
        if ext is None:
            mark = self.mark_model.on_feed(t, oracle, v.best_bid(), v.best_ask(), last, self.last_rate,
                                           max(0, self.funding.next_payment_us() - t), self.funding.interval_us)
        else:  # the third leg: the external perps' median at t (read only when the mark is computed)
            mark = self.mark_model.on_feed(t, oracle, v.best_bid(), v.best_ask(), last, self.last_rate,
                                           max(0, self.funding.next_payment_us() - t), self.funding.interval_us,
                                           ext.price(t))
        self.mark = mark
        self.ex.set_mark(self.symbol, mark)
        for fn in self.mark_listeners:
            fn(t, mark)

    def _on_sample(self, t: int) -> None:
        oracle = self.oracle.price
        # a halt that stops the venue's engine (Exchange.set_market_state) skips its samples: nobody can trade the book
        paused = self.ex.markets[self.index].paused
        prem = (book_premium(self._view, self.impact_notional, oracle, self.thin_side)
                if oracle is not None and not paused else None)
        self.funding.sample(t, prem)
        self._sched.at(self.funding.next_sample_us(), self._on_sample, priority=FUNDING_SAMPLE)  # type: ignore[union-attr]

    def _on_payment(self, t: int) -> None:
        rate = self.funding.settle(t)
        self.last_rate = rate
        price = self.oracle.price
        if price is not None and rate:
            res = self.ex.pay_funding(self.symbol, rate, price)
            self.log.record(time_us=t, market=self.index, rate=float(rate), price=price, paid=res.paid,
                            received=res.received, rounding=res.rounding, accounts=res.accounts)
        else:
            self.log.record(time_us=t, market=self.index, rate=float(rate), price=price or 0, paid=0, received=0,
                            rounding=0, accounts=0)
        for fn in self.funding_listeners:
            fn(t, rate)
        self._sched.at(self.funding.next_payment_us(), self._on_payment, priority=FUNDING_PAYMENT)  # type: ignore[union-attr]
