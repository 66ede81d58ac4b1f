"""`build_perf_report(run_dir)`: the perf run's report.html, built from the files the run wrote."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from .._io import utc_now_iso, write_atomic
from . import _charts
from ._data import PerfRun, Point, load_perf_run
from ._page import REPORT_NAME, chart_html, env, format_value, setting_text

log = logging.getLogger("evalsvc.report")



@dataclass(frozen=True)
class Column:
    """One column of the summary table: a metric or a percentile of the point's summary."""

    title: str
    metric: str
    stat: str | None = None
    """None: `metrics[metric]`; else `percentiles[metric][stat]`."""
    digits: int = 2

    def value(self, point: Point) -> Any:
        if self.stat is None:
            return point.metrics.get(self.metric)
        return (point.percentiles.get(self.metric) or {}).get(self.stat)


_COLUMNS = [
    Column("concurrency", "parallel", digits=0), Column("rate (req/s)", "rate"),
    Column("requests", "requests_total", digits=0), Column("succeeded", "requests_succeeded", digits=0),
    Column("failed", "requests_failed", digits=0), Column("duration (s)", "duration_s"),
    Column("request throughput (req/s)", "request_throughput"),
    Column("output throughput (tok/s)", "output_throughput"),
    Column("TTFT p50 (ms)", "ttft_ms", "p50"), Column("TTFT p99 (ms)", "ttft_ms", "p99"),
    Column("TPOT p50 (ms)", "tpot_ms", "p50"), Column("TPOT p99 (ms)", "tpot_ms", "p99"),
    Column("ITL p50 (ms)", "itl_ms", "p50"), Column("ITL p99 (ms)", "itl_ms", "p99"),
    Column("latency p50 (ms)", "latency_ms", "p50"), Column("latency p99 (ms)", "latency_ms", "p99"),
]
_SLO_COLUMNS = [Column("goodput (req/s)", "goodput"), Column("SLO attainment", "slo_attainment", digits=4)]


def _charts_of(run: PerfRun) -> dict[str, Any]:
    charts: dict[str, Any] = {
        "throughput": chart_html(_charts.throughput_figure(run), "throughput"),
        "latency": chart_html(_charts.latency_vs_throughput_figure(run), "latency"),
        "distributions": [chart_html(_charts.distribution_figure(run, m), f"dist-{m}") for m in _charts.METRICS],
        "timelines": [],
        "failures": None,
    }
    for i in range(len(run.points)):
        fig = _charts.timeline_figure(run, i)
        if fig is not None:
            charts["timelines"].append(chart_html(fig, f"time-{i}"))
    failures = _charts.failures_figure(run)
    if failures is not None:
        charts["failures"] = chart_html(failures, "failures")
    return charts


def render_perf_report(run: PerfRun) -> str:
    """The report page of a read perf run, as HTML text."""
    columns = _COLUMNS + (_SLO_COLUMNS if run.slo else [])
    rows = [{"key": p.key, "label": p.label, "client_bound": bool(p.metrics.get("client_bound")),
             "cells": [{"metric": c.metric, "stat": c.stat or "", "value": c.value(p),
                        "text": format_value(c.value(p), c.digits)} for c in columns]}
            for p in run.points]
    bound = [{"label": p.label, "key": p.key, "reasons": p.metrics.get("client_bound_reasons") or []}
             for p in run.points if p.metrics.get("client_bound")]
    failures = sorted({k for p in run.points for k in (p.metrics.get("failures_by_kind") or {})})
    info = run.summary.get("info") or {}
    return env().get_template("perf.html.j2").render(
        title=f"evalsvc perf · {run.config.get('model', '')}", model=run.config.get("model", ""),
        run_dir=run.path.name, status=run.summary.get("status"), error=run.summary.get("error"),
        started_at=info.get("started_at"), finished_at=info.get("finished_at"), built_at=utc_now_iso(),
        settings=[(k, setting_text(v)) for k, v in run.config.items() if k != "work_dir"],
        columns=columns, rows=rows, client_bound=bound, slo=run.slo,
        failure_kinds=failures, points=run.points,
        charts=_charts_of(run), plotlyjs=get_plotlyjs(),
    )


def build_perf_report(run_dir: str | Path) -> Path:
    """(Re)build `<run_dir>/report.html` from the files a perf run wrote there; returns its path.

    The page is self-contained (plotly.js inlined, no network) and its size does not grow with the number of
    requests: distributions and over-time series are reduced in Python (see `_data`).

    Raises:
        ConfigError: `run_dir` is not a perf run directory.
    """
    run = load_perf_run(run_dir)
    path = write_atomic(run.path / REPORT_NAME, render_perf_report(run))
    log.debug("wrote %s", path)
    return path
