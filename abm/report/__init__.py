"""The run report: one PNG page, every market, of prices, depth, spread/basis, liquidations (and their
split by margin mode), funding, the insurance fund / open interest and the liquidation cascade, with
the run summary's numbers (see ``abm.report.figure``).

``interactive`` writes the same panels as a self-contained interactive ``report.html`` (plotly, the
optional extra ``viz``); ``compare`` overlays several runs.

Modules: ``figure`` (the page: layout, saving), ``panels`` (one function per panel), ``header``,
``run_data`` (what is drawn, prepared once), ``style`` (sizes, colours, number formats)."""

from abm.report.figure import build_figure, render_report
from abm.report.interactive import build_html_figure, html_available, render_html, render_run_reports
from abm.report.style import PANELS

__all__ = ["PANELS", "build_figure", "build_html_figure", "html_available", "render_html", "render_report", "render_run_reports"]
