"""Simulation time: the event scheduler and the per-market price feed that drives oracle, mark and funding. No Mesa here."""

from abm.sim.feed import FundingLog, MarketFeed
from abm.sim.scheduler import Scheduler

__all__ = ["Scheduler", "MarketFeed", "FundingLog"]
