"""The exchange: accounts, positions, fees, ledgers and order entry over the market core. No Mesa here."""

from abm.exchange.accounts import CROSS, ISOLATED, STRICT_ISOLATED, Account, Position
from abm.exchange.exchange import Exchange, OrderResult, PositionInfo
from abm.exchange.ledgers import Ledgers, check_conservation, conservation_gap

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
