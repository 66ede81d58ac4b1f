"""report.html of a capacity search: the perf report of its probes, with a capacity section on top.

The perf report (core/report) draws every probe as a sweep point. This adds, before its summary, the
answer, a chart of each value's attainment with its interval against the target line, and a chart of the
SLO metrics' p50 / p99 per probe against their thresholds (the SLO lines).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import orjson

from .._io import write_atomic

SECTION_ID = "capacity"


def is_capacity_run(run_dir: str | Path) -> bool:
    """Whether `run_dir` is a capacity search's directory (its summary.json has a `capacity` block)."""
    try:
        summary = orjson.loads((Path(run_dir) / "summary.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(summary, dict) and isinstance(summary.get("capacity"), dict)


def build_capacity_report(run_dir: str | Path) -> Path:
    """(Re)build `<run_dir>/report.html` of a capacity run directory; returns its path."""
    from ..report import build_perf_report

    path = build_perf_report(run_dir)
    summary = orjson.loads((Path(run_dir) / "summary.json").read_bytes())
    page = path.read_text(encoding="utf-8")
    section = capacity_section(summary.get("capacity") or {}, summary.get("results") or {})
    at = page.find("<h2")
    page = page[:at] + section + page[at:] if at >= 0 else page.replace("</body>", section + "</body>")
    page = page.replace("<h1>Load test of", "<h1>Capacity search of", 1)
    return write_atomic(path, page)


def capacity_section(capacity: dict[str, Any], results: dict[str, Any]) -> str:
    from ..report._charts import SLO_COLOR
    from ..report._page import chart_html as _chart

    import plotly.graph_objects as go  # type: ignore[import-untyped]

    probes = sorted(capacity.get("probes") or [], key=lambda p: p["value"])
    unit = capacity.get("unit", "")
    xs = [p["value"] for p in probes]
    att = [p["attainment"] for p in probes]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=xs, y=att, mode="markers+lines", name="attainment (interval)",
        error_y={"type": "data", "symmetric": False,
                 "array": [p["interval"][1] - (p["attainment"] or 0) for p in probes],
                 "arrayminus": [(p["attainment"] or 0) - p["interval"][0] for p in probes]},
        text=[p["verdict"] for p in probes]))
    target = capacity.get("target")
    if target is not None:
        fig.add_hline(y=target, line={"color": SLO_COLOR, "dash": "dash"}, annotation_text=f"target {target:g}")
    if capacity.get("value") is not None:
        fig.add_vline(x=capacity["value"], line={"color": "#2ca02c"}, annotation_text=f"capacity {capacity['value']}")
    fig.update_layout(title="Attainment per probed value", xaxis_title=unit, yaxis_title="share meeting every SLO",
                      yaxis_range=[0, 1.05], margin={"l": 60, "r": 20, "t": 50, "b": 50}, plot_bgcolor="white")
    charts = [_chart(fig, "capacity-attainment")]
    slo = capacity.get("slo") or {}
    if slo:
        fig2 = go.Figure()
        for metric, limit in slo.items():
            for q in ("p50", "p99"):
                ys = []
                for p in probes:
                    run = results.get(p["runs"][-1]) if p.get("runs") else None
                    ys.append(((run or {}).get("percentiles", {}).get(metric) or {}).get(q))
                fig2.add_trace(go.Scatter(x=xs, y=ys, mode="markers+lines", name=f"{metric} {q}"))
            fig2.add_hline(y=limit, line={"color": SLO_COLOR, "dash": "dash"},
                           annotation_text=f"SLO {metric} {limit:g}")
        fig2.update_layout(title="SLO metrics per probed value", xaxis_title=unit, yaxis_title="ms",
                           margin={"l": 60, "r": 20, "t": 50, "b": 50}, plot_bgcolor="white")
        charts.append(_chart(fig2, "capacity-slo"))
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            p["value"], p["requests"], "-" if p["attainment"] is None else f"{p['attainment']:.3f}",
            f"[{p['interval'][0]:.3f}, {p['interval'][1]:.3f}]", p["verdict"], p["decided_by"],
            ", ".join(p["runs"]))) + "</tr>" for p in probes)
    knee = capacity.get("knee")
    facts = [("capacity", f"{capacity.get('value')} {unit}" if capacity.get("value") is not None else "none"),
             ("how the search ended", capacity.get("ended")), ("conclusive", capacity.get("conclusive")),
             ("goodput at capacity (req/s)", capacity.get("goodput")),
             ("knee", f"{knee['value']} ({knee['request_throughput']:.2f} req/s)" if knee else "-"),
             ("probe runs / seconds", f"{capacity.get('probe_runs')} / {capacity.get('seconds', 0):.1f}")]
    facts_html = "".join(f"<tr><th>{html.escape(a)}</th><td>{html.escape(str(b))}</td></tr>" for a, b in facts)
    return (f'<section id="{SECTION_ID}"><h2>Capacity</h2>'
            f'<p id="capacity-message"><strong>{html.escape(str(capacity.get("message", "")))}</strong></p>'
            f'<table class="capacity-facts">{facts_html}</table>'
            + "".join(f'<div class="chart">{c}</div>' for c in charts)
            + '<div class="scroll"><table id="capacity-probes"><tr><th>value</th><th>requests</th><th>attainment</th>'
              f'<th>interval</th><th>verdict</th><th>decided by</th><th>runs</th></tr>{rows}</table></div></section>\n')
