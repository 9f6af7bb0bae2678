"""Margin and liquidation: tier tables, risk parameters, the margin engine with its trigger index, the
liquidation process (a registered piece, ``LIQUIDATION_PROCESSES``: the waterfall, and the no-feedback control)
and its log. It reads accounts and markets (``abm.accounts``) and acts on the venue only through
``LiquidationVenue``."""

from abm.margin.adl import AdlRanking
from abm.margin.engine import CROSS_UNIT, MarginEngine
from abm.margin.events import KINDS, LiquidationLog
from abm.margin.liquidation import (
    DEFAULT_LIQUIDATION_PROCESS,
    LIQUIDATION_PROCESSES,
    LiquidationFactory,
    LiquidationProcess,
    LiquidationVenue,
    Liquidator,
)
from abm.margin.no_feedback import NO_FEEDBACK, NoFeedbackLiquidator
from abm.margin.params import ADL_PRICES, ADL_RANKINGS, LiquidationConfig, RiskParams, binance_liquidation
from abm.margin.tiers import TierTable, bracket_tiers, hyperliquid_tiers

__all__ = ["CROSS_UNIT", "MarginEngine", "KINDS", "LiquidationLog", "LiquidationVenue", "Liquidator", "LiquidationProcess",
           "NoFeedbackLiquidator", "NO_FEEDBACK",
           "LiquidationFactory", "LIQUIDATION_PROCESSES", "DEFAULT_LIQUIDATION_PROCESS", "ADL_PRICES",
           "ADL_RANKINGS", "AdlRanking", "LiquidationConfig", "RiskParams", "binance_liquidation", "TierTable", "bracket_tiers",
           "hyperliquid_tiers"]
