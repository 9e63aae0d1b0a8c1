"""Reports to keep and share: one self-contained HTML page (explorer.report.html) built from
plain data (explorer.report.data) with inline SVG plots (explorer.report.svg). No Textual:
`trace --html`, `tree --html` and the app write the same page."""

from explorer.report.data import LAYERS, NO_LAYER, Report, build_report, tree_data
from explorer.report.html import render_html, write_html

__all__ = ["LAYERS", "NO_LAYER", "Report", "build_report", "render_html", "tree_data", "write_html"]
