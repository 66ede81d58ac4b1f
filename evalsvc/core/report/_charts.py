"""The perf report's charts as Plotly figures (specs only: plotly.js draws them in the page)."""

from __future__ import annotations

from collections.abc import Sequence
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


DASHES = ("solid", "dash", "dot", "dashdot")
"""One line style per run when a chart shows several runs (a comparison: base solid, new dashed)."""


def _named(name: str, text: str) -> str:
    return f"{name} · {text}" if name else text


def _runs_named(runs: tuple[PerfRun, ...], names: Sequence[str]) -> list[tuple[str, str, PerfRun]]:
    """(name, dash, run) per run: no name for a single run, else `names` (run 1, run 2, ... by default)."""
    if len(runs) == 1 and not names:
        return [("", DASHES[0], runs[0])]
    return [(names[i] if i < len(names) else f"run {i + 1}", DASHES[i % len(DASHES)], run)
            for i, run in enumerate(runs)]


def throughput_figure(*runs: PerfRun, names: Sequence[str] = ()) -> go.Figure:
    """Request throughput (and goodput under SLOs) and output throughput across the sweep of each run."""
    axis, axis_title = runs[0].sweep_axis
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name, dash, run in _runs_named(runs, names):
        xs = [_number(p.metrics.get(axis)) for p in run.points]
        fig.add_trace(go.Scatter(x=xs, y=[_number(p.metrics.get("request_throughput")) for p in run.points],
                                 name=_named(name, "request throughput (req/s)"), mode="lines+markers",
                                 line={"color": PALETTE[0], "dash": dash}), secondary_y=False)
        if run.slo:
            fig.add_trace(go.Scatter(x=xs, y=[_number(p.metrics.get("goodput")) for p in run.points],
                                     name=_named(name, "goodput (req/s meeting the SLOs)"), mode="lines+markers",
                                     line={"dash": "dash" if not name else dash, "color": SLO_COLOR}),
                          secondary_y=False)
        fig.add_trace(go.Scatter(x=xs, y=[_number(p.metrics.get("output_throughput")) for p in run.points],
                                 name=_named(name, "output throughput (tok/s)"), mode="lines+markers",
                                 line={"color": PALETTE[8], "dash": dash}), secondary_y=True)
    fig.update_layout(title="Throughput across the sweep", **_LAYOUT)
    fig.update_xaxes(title_text=axis_title)
    fig.update_yaxes(title_text="requests/s", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="output tokens/s", rangemode="tozero", secondary_y=True)
    return fig


def latency_vs_throughput_figure(*runs: PerfRun, names: Sequence[str] = ()) -> go.Figure:
    """p50 / p90 / p99 of TTFT, TPOT, ITL and latency against request throughput: the knee shows."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[f"{t} (ms)" for t in METRICS.values()],
                        vertical_spacing=0.14, horizontal_spacing=0.08)
    colours = {"p50": "#1f77b4", "p90": "#ff7f0e", "p99": "#9467bd"}
    named = _runs_named(runs, names)
    for i, metric in enumerate(METRICS):
        row, col = i // 2 + 1, i % 2 + 1
        for name, dash, run in named:
            xs = [_number(p.metrics.get("request_throughput")) for p in run.points]
            for q, colour in colours.items():
                ys = [_number((p.percentiles.get(metric) or {}).get(q)) for p in run.points]
                label = _named(name, q)
                fig.add_trace(go.Scatter(x=xs, y=ys, name=label, legendgroup=label, showlegend=i == 0,
                                         mode="lines+markers", line={"color": colour, "dash": dash},
                                         text=[p.label for p in run.points],
                                         hovertemplate=f"{_named(name, METRICS[metric])} {q}: %{{y:.2f}} ms"
                                                       "<br>%{text}"),
                              row=row, col=col)
        slo = runs[0].slo
        if metric in slo:
            fig.add_hline(y=slo[metric], line={"color": SLO_COLOR, "dash": "dot"},
                          annotation_text=f"SLO {slo[metric]:g} ms", row=row, col=col)
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
    series = list(dict.fromkeys(p.series for p in run.points))
    for i, p in enumerate(run.points):
        colour = PALETTE[(i if p.colour is None else p.colour) % len(PALETTE)]
        dash = DASHES[series.index(p.series) % len(DASHES)]
        values = p.values(metric) if metric != "itl_ms" else []
        if values:
            centres, counts, width = histogram(values)
            fig.add_trace(go.Bar(x=centres, y=counts, width=width, name=p.label, legendgroup=p.series + p.key,
                                 opacity=0.5, showlegend=False,
                                 marker={"color": colour, "pattern": {"shape": "" if dash == "solid" else "/"}}),
                          row=1, col=1)
            xs, ps = cdf(values)
        else:
            xs, ps = cdf_from_percentiles(p.percentiles.get(metric) or {})
            from_percentiles = True
        fig.add_trace(go.Scatter(x=xs, y=ps, name=p.label, legendgroup=p.series + p.key, mode="lines",
                                 line={"shape": "hv" if values else "linear", "color": colour, "dash": dash}),
                      row=1, col=2)
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


def scores_figure(*series: tuple[str, Sequence[dict[str, Any]]]) -> go.Figure:
    """Score per dataset, one bar group per dataset and one bar per run (`series`: (run name, datasets)).

    A dataset is a dict with `name`, `score`, `scored`, `requested_text`, `errored`, and optionally `low` /
    `high`: a 95 % interval on the score, drawn as an error bar.
    """
    fig = go.Figure()
    for i, (name, datasets) in enumerate(series):
        errors = None
        if any(d.get("low") is not None for d in datasets):
            errors = {"type": "data", "symmetric": False, "color": "#444",
                      "array": [(d["high"] - d["score"]) if d.get("high") is not None else 0 for d in datasets],
                      "arrayminus": [(d["score"] - d["low"]) if d.get("low") is not None else 0 for d in datasets]}
        fig.add_trace(go.Bar(x=[d["name"] for d in datasets], y=[d["score"] for d in datasets],
                             name=name or "score", error_y=errors, marker={"color": PALETTE[i % len(PALETTE)]},
                             text=[f"{d['score']:.4f}" if isinstance(d["score"], (int, float)) else ""
                                   for d in datasets],
                             textposition="inside" if errors else "auto",
                             customdata=[[d["scored"], d["requested_text"], d["errored"]] for d in datasets],
                             hovertemplate=_named(name, "%{x}") + ": %{y:.4f}<br>scored %{customdata[0]}/"
                                           "%{customdata[1]}, errored %{customdata[2]}<extra></extra>"))
    title = "Score per dataset" + (" (bars: 95 % Wilson interval)" if len(series) > 1 else "")
    fig.update_layout(title=title, yaxis={"range": [0, 1.05], "title": "score"}, barmode="group",
                      height=360, margin={"t": 50, "b": 40, "l": 60, "r": 20}, showlegend=len(series) > 1,
                      template=_TEMPLATE)
    return fig
