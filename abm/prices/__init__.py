"""Prices: the external spot index (seeded processes, scripts, replays) and the oracle the venue reads. No Mesa here."""

from abm.prices.index import (
    DEFAULT_DT_US,
    GARCH,
    GBM,
    US_PER_YEAR,
    IndexPath,
    IndexProcess,
    InvalidReplayData,
    JumpDiffusion,
    Move,
    Overlay,
    RegimeSwitching,
    Replay,
    Scripted,
    check_correlation,
    combine,
    correlated_paths,
    recover,
)
from abm.prices.oracle import Oracle, WrongPublishTime

__all__ = [
    "DEFAULT_DT_US",
    "US_PER_YEAR",
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
]

from abm.prices.funding import FundingConfig, FundingRate, FundingSchedule, book_premium, premium, rate_8h  # noqa: E402
from abm.prices.mark import BinanceMark, HyperliquidMark, book_median  # noqa: E402

__all__ += ["FundingConfig", "FundingSchedule", "FundingRate", "premium", "book_premium", "rate_8h"]
__all__ += ["HyperliquidMark", "BinanceMark", "book_median"]
