"""abm: an agent-based simulator of perpetual-futures market stress.

Layers, bottom up: ``abm.market`` (order book, specs), ``abm.accounts`` (accounts, positions, ledgers),
``abm.margin`` (margin engine, liquidation), ``abm.exchange`` (order entry and settlement). Prices, the
Mesa model, agents, scenarios and sweeps build on these.
"""

from abm import _native

_native.install()  # before the first compiled module is imported: see abm/_native.py

from abm.errors import AbmError  # noqa: E402
from abm.exchange import Exchange, OrderResult, check_conservation  # noqa: E402
from abm.market import BUY, SELL, MarketSpec, OrderBook, Tape  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``abm.run``, ``abm.sweep``, ``abm.load_run``, ``abm.position_risk`` and ``abm.calibrate`` without importing Mesa
    for users of the exchange core alone."""
    if name == "run":
        from abm.scenarios import run

        return run
    if name == "sweep":
        from abm.sweeps import sweep

        return sweep
    if name == "load_run":
        from abm.results import load_run

        return load_run
    if name == "position_risk":
        from abm.position import position_risk

        return position_risk
    if name == "calibrate":
        from abm.calibration import calibrate

        return calibrate
    raise AttributeError(f"module 'abm' has no attribute {name!r}")

__all__ = ["AbmError", "Exchange", "OrderResult", "check_conservation", "MarketSpec", "OrderBook", "Tape", "BUY", "SELL"]
