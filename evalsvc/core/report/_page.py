"""What every report page shares: the template environment, a chart's HTML, how values and settings are shown.

The perf, eval and comparison pages each import these from here, so no page depends on another's privates.
"""

from __future__ import annotations

from typing import Any

import orjson
import plotly.io as pio  # type: ignore[import-untyped]
from jinja2 import Environment, PackageLoader, select_autoescape

REPORT_NAME = "report.html"
"""The page a perf or eval run writes into its output directory."""
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def format_value(value: Any, digits: int) -> str:
    """How a table shows a value: fixed decimals, "–" for none."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}"
    return str(value)


def setting_text(value: Any) -> str:
    """A config value as the settings table shows it (objects and lists as compact JSON)."""
    if value is None:
        return "–"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)


def env() -> Environment:
    """The Jinja2 environment of the report templates (autoescaped)."""
    return Environment(loader=PackageLoader("evalsvc.core.report", "templates"),
                       autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)


def chart_html(fig: Any, name: str) -> str:
    """The figure as a <div id="chart-NAME"> and the script that draws it (the page inlines plotly.js once)."""
    html: str = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"chart-{name}",
                            config=PLOT_CONFIG, validate=False)
    return html
