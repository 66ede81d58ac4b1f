"""The comparison page of two runs: both runs on the same charts (the reports' own chart builders) and the
comparison table with its verdicts. Written by `Comparison.write_html` (and `evalsvc compare`)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from .._io import utc_now_iso, write_atomic
from . import _charts
from ._data import PerfRun, read_json, redact_config
from ._page import chart_html, env, format_value, setting_text

if TYPE_CHECKING:
    from .compare import Comparison, Row, Rule, Run

log = logging.getLogger("evalsvc.report")

NAMES = ("base", "new")
"""How the page names the two runs (legends, tables)."""


def _number(v: Any, signed: bool = False) -> str:
    if v is None:
        return "–"
    return f"{v:+.4g}" if signed else f"{v:.4g}"


def _row(row: Row, failed: bool) -> dict[str, Any]:
    return {"point": row.point, "metric": row.metric, "base": _number(row.base), "new": _number(row.new),
            "change": _number(row.change, signed=True),
            "rel": "–" if row.rel_change is None else f"{row.rel_change * 100:+.1f}%",
            "interval": "–" if row.ci_low is None or row.ci_high is None
            else f"[{row.ci_low:+.4g}, {row.ci_high:+.4g}]",
            "verdict": row.verdict, "regression": failed, "method": row.method,
            "css": "regression" if failed else (row.noise or "none")}


def _matched(cmp: Comparison) -> PerfRun | None:
    """One PerfRun holding each matched sweep point of both runs (base then new, one colour per point)."""
    a, b = cmp.base_run, cmp.new_run
    if a is None or b is None or a.perf is None or b.perf is None:
        return None
    new_points = {p.key: p for p in b.perf.points}
    points = []
    for i, p in enumerate(q for q in a.perf.points if q.key in new_points):
        points.append(dataclasses.replace(p, series=NAMES[0], colour=i))
        points.append(dataclasses.replace(new_points[p.key], series=NAMES[1], colour=i))
    return PerfRun(path=a.perf.path, config=a.perf.config, summary=a.perf.summary, points=points)


def _perf_charts(cmp: Comparison) -> list[str]:
    a, b = cmp.base_run, cmp.new_run
    assert a is not None and b is not None and a.perf is not None and b.perf is not None
    charts = [chart_html(_charts.throughput_figure(a.perf, b.perf, names=NAMES), "throughput"),
              chart_html(_charts.latency_vs_throughput_figure(a.perf, b.perf, names=NAMES), "latency")]
    both = _matched(cmp)
    if both is not None and both.points:
        charts += [chart_html(_charts.distribution_figure(both, m), f"dist-{m}") for m in _charts.METRICS]
    return charts


def _datasets(run: Run, keys: list[str]) -> list[dict[str, Any]]:
    from .._stats import wilson

    out = []
    for name in keys:
        d = run.summary["result"].get(name) or {}
        score, scored = d.get("score"), d.get("scored") or 0
        low = high = None
        if isinstance(score, (int, float)) and 0 <= score <= 1 and isinstance(scored, int) and scored > 0:
            low, high = wilson(score * scored, scored)
        out.append({"name": name, "score": score, "scored": scored, "errored": d.get("errored", 0),
                    "requested_text": format_value(d.get("requested"), 0), "low": low, "high": high})
    return out


def _eval_charts(cmp: Comparison) -> list[str]:
    a, b = cmp.base_run, cmp.new_run
    assert a is not None and b is not None
    keys = [k for k in a.summary["result"] if k in b.summary["result"]]
    if not keys:
        return []
    fig = _charts.scores_figure((NAMES[0], _datasets(a, keys)), (NAMES[1], _datasets(b, keys)))
    return [chart_html(fig, "scores")]


def _settings(run: Run | None) -> dict[str, Any]:
    """The run's settings as shown (redacted): perf's config.json, eval's config.json `config`."""
    if run is None:
        return {}
    if run.perf is not None:
        return run.perf.config
    config = read_json(Path(run.path) / "config.json") if Path(run.path).is_dir() else None
    settings = (config or {}).get("config")
    return redact_config(settings) if isinstance(settings, dict) else {}


def render_compare_report(cmp: Comparison, failures: list[tuple[Rule, Row]]) -> str:
    """The comparison page as HTML text."""
    failed = {id(row) for _, row in failures}
    rows = [_row(r, id(r) in failed) for r in cmp.rows]
    charts = _perf_charts(cmp) if cmp.kind == "perf" else _eval_charts(cmp)
    base_settings, new_settings = _settings(cmp.base_run), _settings(cmp.new_run)
    settings = [{"name": k, "base": setting_text(base_settings.get(k)), "new": setting_text(new_settings.get(k)),
                 "differs": base_settings.get(k) != new_settings.get(k)}
                for k in dict.fromkeys([*base_settings, *new_settings]) if k != "work_dir"]
    model = (base_settings.get("model") or (cmp.base_run.summary.get("model") if cmp.base_run else None)) or ""
    return env().get_template("compare.html.j2").render(
        title=f"evalsvc compare · {model}", kind=cmp.kind, base=cmp.base, new=cmp.new, built_at=utc_now_iso(),
        rows=rows, failures=[{"rule": rule.text, "point": row.point, "metric": row.metric,
                              "base": _number(row.base), "new": _number(row.new)} for rule, row in failures],
        beyond=sum(1 for r in cmp.rows if r.noise == "beyond"), only_base=cmp.only_base, only_new=cmp.only_new,
        charts=charts, settings=settings, plotlyjs=get_plotlyjs(),
    )


def build_compare_report(cmp: Comparison, path: str | Path, failures: list[tuple[Rule, Row]]) -> Path:
    """Write the comparison page to `path`; returns it."""
    out = write_atomic(Path(path), render_compare_report(cmp, failures))
    log.debug("wrote %s", out)
    return out
