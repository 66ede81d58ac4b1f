"""The perf report's charts as Plotly figures (specs only: plotly.js draws them in the page)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from ._data import PerfRun, cdf, cdf_from_percentiles, histogram, timeline

METRICS: dict[str, str] = {"ttft_ms": "TTFT", "tpot_ms": "TPOT", "itl_ms": "ITL", "latency_ms": "Latency"}
"""The latency metrics drawn, with their titles (ms)."""
SLO_COLOR = "#d62728"
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e")
"""One colour per sweep point, the same in every chart (red is kept for SLO lines)."""
_AXIS = {"gridcolor": "#e5e5e5", "linecolor": "#bbb", "zerolinecolor": "#ccc"}
_TEMPLATE: dict[str, Any] = {"layout": {"plot_bgcolor": "white", "paper_bgcolor": "white",
                                        "xaxis": _AXIS, "yaxis": _AXIS}}
"""A light look, spelled out: plotly's named templates are large and copied into every figure."""
_LAYOUT: dict[str, Any] = {"template": _TEMPLATE, "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
                           "legend": {"orientation": "h", "y": -0.18}, "hovermode": "x unified"}


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def throughput_figure(run: PerfRun) -> go.Figure:
    """Request throughput (and goodput under SLOs) and output throughput across the sweep."""
    axis, axis_title = run.sweep_axis
    xs = [_number(p.metrics.get(axis)) for p in run.points]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=xs, y=[_number(p.metrics.get("request_throughput")) for p in run.points],
                             name="request throughput (req/s)", mode="lines+markers"), secondary_y=False)
    if run.slo:
        fig.add_trace(go.Scatter(x=xs, y=[_number(p.metrics.get("goodput")) for p in run.points],
                                 name="goodput (req/s meeting the SLOs)", mode="lines+markers",
                                 line={"dash": "dash", "color": SLO_COLOR}), secondary_y=False)
    fig.add_trace(go.Scatter(x=xs, y=[_number(p.metrics.get("output_throughput")) for p in run.points],
                             name="output throughput (tok/s)", mode="lines+markers"), secondary_y=True)
    fig.update_layout(title="Throughput across the sweep", **_LAYOUT)
    fig.update_xaxes(title_text=axis_title)
    fig.update_yaxes(title_text="requests/s", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="output tokens/s", rangemode="tozero", secondary_y=True)
    return fig


def latency_vs_throughput_figure(run: PerfRun) -> go.Figure:
    """p50 / p90 / p99 of TTFT, TPOT, ITL and latency against request throughput: the knee shows."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[f"{t} (ms)" for t in METRICS.values()],
                        vertical_spacing=0.14, horizontal_spacing=0.08)
    xs = [_number(p.metrics.get("request_throughput")) for p in run.points]
    colours = {"p50": "#1f77b4", "p90": "#ff7f0e", "p99": "#9467bd"}
    for i, metric in enumerate(METRICS):
        row, col = i // 2 + 1, i % 2 + 1
        for q, colour in colours.items():
            ys = [_number((p.percentiles.get(metric) or {}).get(q)) for p in run.points]
            fig.add_trace(go.Scatter(x=xs, y=ys, name=q, legendgroup=q, showlegend=i == 0, mode="lines+markers",
                                     line={"color": colour},
                                     text=[p.label for p in run.points],
                                     hovertemplate=f"{METRICS[metric]} {q}: %{{y:.2f}} ms<br>%{{text}}"),
                          row=row, col=col)
        if metric in run.slo:
            fig.add_hline(y=run.slo[metric], line={"color": SLO_COLOR, "dash": "dot"},
                          annotation_text=f"SLO {run.slo[metric]:g} ms", row=row, col=col)
        fig.update_yaxes(rangemode="tozero", row=row, col=col)
        fig.update_xaxes(title_text="request throughput (req/s)", row=row, col=col)
    fig.update_layout(title="Latency against throughput", height=640, **{**_LAYOUT, "hovermode": "closest"})
    return fig


def distribution_figure(run: PerfRun, metric: str) -> go.Figure:
    """Histogram and CDF of one metric, one trace per sweep point.

    From the per-request records where they hold the metric (TTFT, TPOT, latency); otherwise (ITL, or a run
    written with record_requests off) the CDF through the summary's percentiles, and no histogram.
    """
    title = METRICS[metric]
    fig = make_subplots(rows=1, cols=2, subplot_titles=["histogram", "CDF"], horizontal_spacing=0.1)
    from_percentiles = False
    for i, p in enumerate(run.points):
        colour = PALETTE[i % len(PALETTE)]
        values = p.values(metric) if metric != "itl_ms" else []
        if values:
            centres, counts, width = histogram(values)
            fig.add_trace(go.Bar(x=centres, y=counts, width=width, name=p.label, legendgroup=p.key,
                                 opacity=0.5, showlegend=False, marker={"color": colour}), row=1, col=1)
            xs, ps = cdf(values)
        else:
            xs, ps = cdf_from_percentiles(p.percentiles.get(metric) or {})
            from_percentiles = True
        fig.add_trace(go.Scatter(x=xs, y=ps, name=p.label, legendgroup=p.key, mode="lines",
                                 line={"shape": "hv" if values else "linear", "color": colour}), row=1, col=2)
    if metric in run.slo:
        fig.add_vline(x=run.slo[metric], line={"color": SLO_COLOR, "dash": "dot"},
                      annotation_text=f"SLO {run.slo[metric]:g} ms", row=1, col=2)
    note = " (CDF through the summary's percentiles)" if from_percentiles else ""
    fig.update_layout(title=f"{title} distribution{note}", barmode="overlay", **{**_LAYOUT, "hovermode": "closest"})
    fig.update_xaxes(title_text=f"{title} (ms)")
    fig.update_yaxes(title_text="requests", row=1, col=1)
    fig.update_yaxes(title_text="share of requests", range=[0, 1.02], row=1, col=2)
    return fig


def timeline_figure(run: PerfRun, index: int) -> go.Figure | None:
    """Requests in flight, throughput, TTFT and errors by kind over one sweep point's time; None without records."""
    point = run.points[index]
    tl = timeline(point.records or [])
    if tl is None:
        return None
    titles = ["requests in flight", "successful completions per second", "TTFT of the requests sent (ms)"]
    if tl.errors:
        titles.append("failures by kind (when they ended)")
    fig = make_subplots(rows=len(titles), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=titles)
    fig.add_trace(go.Scatter(x=tl.t, y=tl.in_flight, name="in flight", mode="lines"), row=1, col=1)
    fig.add_trace(go.Scatter(x=tl.t, y=tl.throughput, name="req/s", mode="lines"), row=2, col=1)
    fig.add_trace(go.Scatter(x=tl.t, y=tl.ttft_p50, name="TTFT p50", mode="lines", connectgaps=True), row=3, col=1)
    fig.add_trace(go.Scatter(x=tl.t, y=tl.ttft_max, name="TTFT max", mode="lines", connectgaps=True,
                             line={"dash": "dot"}), row=3, col=1)
    if "ttft_ms" in run.slo:
        fig.add_hline(y=run.slo["ttft_ms"], line={"color": SLO_COLOR, "dash": "dot"},
                      annotation_text=f"SLO {run.slo['ttft_ms']:g} ms", row=3, col=1)
    for kind, counts in sorted(tl.errors.items()):
        fig.add_trace(go.Bar(x=tl.t, y=counts, name=kind), row=4, col=1)
    fig.update_layout(title=f"Over time: {point.label}", height=180 * len(titles) + 120, barmode="stack",
                      **{**_LAYOUT, "hovermode": "x"})
    fig.update_yaxes(rangemode="tozero")
    fig.update_xaxes(title_text="seconds from the point's start", row=len(titles), col=1)
    return fig


def failures_figure(run: PerfRun) -> go.Figure | None:
    """Failed requests by kind, stacked per sweep point; None when nothing failed."""
    kinds = sorted({k for p in run.points for k in (p.metrics.get("failures_by_kind") or {})})
    if not kinds:
        return None
    fig = go.Figure()
    labels = [p.label for p in run.points]
    for kind in kinds:
        fig.add_trace(go.Bar(x=labels, y=[(p.metrics.get("failures_by_kind") or {}).get(kind, 0)
                                          for p in run.points], name=kind))
    fig.update_layout(title="Failures by kind", barmode="stack", yaxis_title="requests",
                      **{**_LAYOUT, "hovermode": "closest"})
    return fig
