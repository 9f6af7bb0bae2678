"""Simulation time: the event scheduler and the per-market price feed that drives oracle, mark and funding. No Mesa here."""

from abm.sim.feed import FundingLog, MarketFeed
from abm.sim.scheduler import AGENT, FUNDING_PAYMENT, FUNDING_SAMPLE, INDEX, MARK, ORACLE, PRIORITIES, VENUE, Scheduler

__all__ = ["Scheduler", "MarketFeed", "FundingLog", "VENUE", "INDEX", "ORACLE", "MARK", "FUNDING_PAYMENT", "FUNDING_SAMPLE", "AGENT",
           "PRIORITIES"]
