"""Market core: the order book, market specifications, read-only views and the trade tape. No Mesa here."""

from abm.market.book import BUY, FOK, GTC, IOC, SELL, OrderBook
from abm.market.spec import MarketSpec
from abm.market.tape import Tape
from abm.market.view import BookView

__all__ = ["BUY", "SELL", "GTC", "IOC", "FOK", "OrderBook", "MarketSpec", "Tape", "BookView"]
