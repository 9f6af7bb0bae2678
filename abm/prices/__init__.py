"""Prices: the external spot index, the oracle the venue reads, the mark price and funding. No Mesa here."""

from abm.prices.correlation import check_correlation, correlated_paths
from abm.prices.external_perp import ExternalPerp, ExternalPerps
from abm.prices.funding import FundingConfig, FundingSchedule, book_premium, premium, rate_8h
from abm.prices.index import DEFAULT_DT_US, INDEX_PROCESSES, PATH_MARGIN_US, US_PER_YEAR, IndexPath, IndexProcess
from abm.prices.mark import MARK_MODELS, BinanceMark, HyperliquidMark, MarkModel, book_median
from abm.prices.oracle import Oracle, WrongPublishTime
from abm.prices.processes import GARCH, GBM, JumpDiffusion, RegimeSwitching
from abm.prices.replay import InvalidReplayData, Replay
from abm.prices.scripted import Move, Overlay, Scripted, combine, recover

__all__ = [
    "DEFAULT_DT_US",
    "PATH_MARGIN_US",
    "US_PER_YEAR",
    "INDEX_PROCESSES",
    "IndexPath",
    "IndexProcess",
    "GBM",
    "JumpDiffusion",
    "GARCH",
    "RegimeSwitching",
    "Move",
    "recover",
    "Scripted",
    "Overlay",
    "combine",
    "Replay",
    "InvalidReplayData",
    "check_correlation",
    "correlated_paths",
    "Oracle",
    "WrongPublishTime",
    "FundingConfig",
    "FundingSchedule",
    "premium",
    "book_premium",
    "rate_8h",
    "HyperliquidMark",
    "BinanceMark",
    "MarkModel",
    "MARK_MODELS",
    "book_median",
    "ExternalPerp",
    "ExternalPerps",
]

