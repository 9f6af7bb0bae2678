"""The run report: one PNG page of prices, depth, spread/basis, liquidations, funding, the insurance
fund / open interest and the liquidation cascade (see ``abm.report.figure``)."""

from abm.report.figure import PANELS, build_figure, render_report

__all__ = ["PANELS", "build_figure", "render_report"]
