"""The exchange: accounts, positions, fees, ledgers and order entry over the market core. No Mesa here."""

from abm.accounts import CROSS, ISOLATED, STRICT_ISOLATED, Account, Ledgers, Position, check_conservation, conservation_gap
from abm.exchange.exchange import Exchange, OrderResult, PositionInfo

__all__ = [
    "CROSS",
    "ISOLATED",
    "STRICT_ISOLATED",
    "Account",
    "Position",
    "Exchange",
    "OrderResult",
    "PositionInfo",
    "Ledgers",
    "check_conservation",
    "conservation_gap",
]
