"""The no-feedback control: liquidations closed off the book at the mark, so they move no price.

Why: a cascade is liquidations causing more liquidations through the prices they print. To measure
how much of a run's liquidated notional that feedback made, the same run (scenario, seed, agents,
index path) is repeated with this process, registered as ``no_feedback`` (a scenario picks it with
``venue.overrides = {"liquidation.process" = "no_feedback"}``; ``run.amplification`` does it for you
and reports the ratio, ``abm.scenarios.runner``). Every unit whose trigger fires and which is really
liquidatable is taken over whole, at once, at each market's mark, by an off-book counterparty that
holds it to the end of the run. No liquidation order reaches a book and nothing taken over is unwound
into one, so liquidations print no trade and move no mid: what is liquidated is what the index path
and the agents' own trading alone bring to maintenance margin.

Decisions, and why:

- **The counterparty** is the venue's backstop vault when the run has one (whatever the profile's
  ``liquidation.backstop`` says: here it is the control's device, not a venue rule), else a control
  counterparty account opened at the first takeover with no deposit and registered as the engine's
  vault. Either way the engine treats it as the vault: never keyed for liquidation, no margin
  admission (it sends no orders), its losses never charged to the insurance fund, and the accounts
  table names it ``vault``.
- **No loss limit.** The vault's ``vault_min_equity`` does not apply: a counterparty that ran out would
  hand units to ADL, which closes other traders' positions and changes what they do next, a feedback
  of its own. Its equity may go negative; money stays exactly conserved (it is the same equation).
- **What the counterparty keeps.** The unit's remaining equity, as the vault does in the waterfall, and
  the log row is a ``backstop`` row (a takeover at the mark, which is what happened), so the analysis
  (liquidated notional by kind, owners' losses) reads the control as it reads any run. No liquidation
  fee, as on a backstop takeover.
- **Bad debt** is settled as in the waterfall: a unit with negative equity at the mark is taken over
  when the insurance fund can pay its debt (the fund pays it, a ``bad_debt`` row), else closed by ADL
  against ranked opposite positions, off the book too, at the venue's ADL price.
- **Orders.** The unit's resting orders are cancelled first, as the venue does before any liquidation:
  a cancel trades nothing and prints no price.
- **No slices, no cooldown**: they exist to spare the book, which this process never touches.
"""

from __future__ import annotations

from abm.accounts.account import Account
from abm.margin.engine import Unit
from abm.margin.liquidation import _MAX_ROUNDS, LIQUIDATION_PROCESSES, Liquidator

NO_FEEDBACK = "no_feedback"


@LIQUIDATION_PROCESSES.register(NO_FEEDBACK)
class NoFeedbackLiquidator(Liquidator):
    """Every liquidatable unit taken over whole at the mark by an off-book counterparty that never unwinds."""

    def on_mark(self, idx: int) -> None:
        eng = self.eng
        eng.mark_seq += 1
        trigger = eng.mark_seq
        eng.process_dirty()
        for _ in range(_MAX_ROUNDS):
            units = eng.triggered(idx, eng.mark(idx))
            if not units:
                break
            for unit in dict.fromkeys(units):  # a cross account may fire in several markets' heaps
                self.process(unit, trigger)
            eng.process_dirty()

    def process(self, unit: Unit, trigger: int) -> None:
        a = self.ex.accounts[unit[0]]
        if not self.eng.liquidatable(a, unit):
            self.eng.reindex(unit)
            return
        self.backstop(unit, trigger)

    def backstop(self, unit: Unit, trigger: int) -> None:
        """Take the whole unit over at the marks (or ADL it when its bad debt is more than the fund holds)."""
        eng, ex = self.eng, self.ex
        a = ex.accounts[unit[0]]
        self._cancel_orders(a, unit)
        eq = self._equity(a, unit)
        if eq < 0 and ex.ledgers.balances["insurance"] < -eq:
            self.adl(unit, trigger)
            return
        cp = self.counterparty()
        for i, p in eng.positions(a, unit):
            before = self._equity(a, unit)
            size = p.size
            mark = eng.mark(i)
            self.transfer(a, cp, i, size, mark)
            self._record("backstop", a, unit, i, -size, mark, trigger, before)
        left = self._bucket(a, unit)
        if left > 0:
            self._bucket_add(a, unit, -left)
            ex.settlement.credit(cp, left)
        elif left < 0:
            self.cover_bad_debt(a, unit)

    def unwind(self, idx: int) -> None:
        """Never: what the counterparty took over stays off the book to the end of the run."""

    def counterparty(self) -> Account:
        """The vault, or (a run without one) a control counterparty opened now with no deposit and made the
        engine's vault, so the engine never liquidates it nor charges its losses to the insurance fund."""
        eng, ex = self.eng, self.ex
        if eng.vault is None:
            eng.vault = ex.open_account(0)
        return ex.accounts[eng.vault]


__all__ = ["NO_FEEDBACK", "NoFeedbackLiquidator"]
