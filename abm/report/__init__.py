"""The run report: one PNG page, every market, of prices, depth, spread/basis, liquidations (and their
split by margin mode), funding, the insurance fund / open interest and the liquidation cascade, with
the run summary's numbers (see ``abm.report.figure``)."""

from abm.report.figure import PANELS, build_figure, render_report

__all__ = ["PANELS", "build_figure", "render_report"]
