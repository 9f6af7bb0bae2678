"""Spot venues: order books of the asset itself, cash and inventory accounts, borrowing, no leverage."""

from abm.spot.account import SpotAccount
from abm.spot.exchange import SpotExchange, SpotMarket

__all__ = ["SpotExchange", "SpotMarket", "SpotAccount"]
