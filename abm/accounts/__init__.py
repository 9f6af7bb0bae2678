"""Accounts, positions, the venue's ledgers and its markets' runtime state: what the margin engine and the
exchange both read. Only the exchange changes them."""

from abm.accounts.account import CROSS, ISOLATED, MARGIN_MODES, MODE_NAMES, STRICT_ISOLATED, Account, Position
from abm.accounts.ledgers import LEDGER_NAMES, Ledgers, check_conservation, conservation_gap
from abm.accounts.market_state import Market

__all__ = ["CROSS", "ISOLATED", "STRICT_ISOLATED", "MARGIN_MODES", "MODE_NAMES", "Account", "Position", "Ledgers",
           "LEDGER_NAMES", "Market", "check_conservation", "conservation_gap"]
