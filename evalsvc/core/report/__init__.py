"""HTML reports of runs: templates (Jinja2) and chart specs (Plotly), self-contained pages."""

from ._perf import build_perf_report

__all__ = ["build_perf_report"]
