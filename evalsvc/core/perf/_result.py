"""What `run_perf` returns: a PerfResult (a mapping of sweep key -> RunResult) with the stable SPEC §4 shape."""

from __future__ import annotations

import html
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._result import ResultBase
from ..status import RunStatus

# (label, metrics key, format) for the console table, the Jupyter view and the text report
SUMMARY_ROWS: tuple[tuple[str, str, str], ...] = (
    ("requests ok / total", "", ""),
    ("duration (s)", "duration_s", "{:.2f}"),
    ("request throughput (req/s)", "request_throughput", "{:.2f}"),
    ("output throughput (tok/s)", "output_throughput", "{:.1f}"),
    ("total throughput (tok/s)", "total_throughput", "{:.1f}"),
    ("TTFT mean / p50 / p99 (ms)", "ttft_ms", ""),
    ("TPOT mean / p50 (ms)", "tpot_ms", ""),
    ("ITL mean (ms)", "itl_ms_mean", "{:.2f}"),
    ("latency mean / p50 / p99 (ms)", "latency_ms", ""),
    ("output tokens mean (source)", "output_tokens_mean", "{:.1f}"),
    ("send lag p99 (ms)", "send_lag_ms_p99", "{:.2f}"),
    ("event-loop lag p99 (ms)", "loop_lag_ms_p99", "{:.2f}"),
)


def fmt(value: Any, pattern: str = "{:.2f}") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return pattern.format(value)
    return str(value)


def summary_lines(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs summarising one run, shared by every renderer."""
    m = metrics
    rows: list[tuple[str, str]] = []
    for label, key, pattern in SUMMARY_ROWS:
        if label.startswith("requests"):
            value = f"{m['requests_succeeded']} / {m['requests_total']}"
            if m["failures_by_kind"]:
                value += "  (" + ", ".join(f"{k}: {v}" for k, v in m["failures_by_kind"].items()) + ")"
        elif key == "ttft_ms":
            value = " / ".join(fmt(m.get(k)) for k in ("ttft_ms_mean", "ttft_ms_p50", "ttft_ms_p99"))
        elif key == "tpot_ms":
            value = " / ".join(fmt(m.get(k)) for k in ("tpot_ms_mean", "tpot_ms_p50"))
        elif key == "latency_ms":
            value = " / ".join(fmt(m.get(k)) for k in ("latency_ms_mean", "latency_ms_p50", "latency_ms_p99"))
        elif key == "output_tokens_mean":
            value = f"{fmt(m.get(key), pattern)} ({m.get('output_tokens_source') or '-'})"
        else:
            value = fmt(m.get(key), pattern)
        rows.append((label, value))
    if m.get("multi_turn"):
        rows.append(("sessions completed / started", f"{m['sessions_completed']} / {m['sessions_started']}  "
                     f"({m['sessions_failed']} failed, {m['sessions_cut']} cut short)"))
        rows.append(("TTFT mean turn 1 / turns 2+ (ms)",
                     f"{fmt(m.get('ttft_ms_turn1_mean'))} / {fmt(m.get('ttft_ms_turn2plus_mean'))}"))
        rows.append(("session latency mean (ms)", fmt(m.get("session_latency_ms_mean"))))
    for key, label in (("goodput", "goodput (req/s meeting SLOs)"), ("slo_attainment", "SLO attainment")):
        if m.get(key) is not None:
            rows.append((label, fmt(m[key], "{:.3f}")))
    if m.get("stopped_by"):
        rows.append(("stopped by", f"{m['stopped_by']} ({m.get('requests_unsent', 0)} not sent, "
                                   f"{m.get('requests_unfinished', 0)} in flight and not counted)"))
    if m.get("client_bound"):
        rows.append(("WARNING", "client-bound: " + "; ".join(m.get("client_bound_reasons") or [])))
    return rows


SWEEP_COLUMNS: tuple[tuple[str, str, str | None, str], ...] = (
    ("ok", "requests_succeeded", None, "{}"),
    ("fail", "requests_failed", None, "{}"),
    ("req/s", "request_throughput", None, "{:.2f}"),
    ("out tok/s", "output_throughput", None, "{:.0f}"),
    ("TTFT p50", "ttft_ms", "p50", "{:.1f}"),
    ("TTFT p99", "ttft_ms", "p99", "{:.1f}"),
    ("TPOT p50", "tpot_ms", "p50", "{:.2f}"),
    ("ITL p50", "itl_ms", "p50", "{:.2f}"),
    ("lat p50", "latency_ms", "p50", "{:.1f}"),
    ("lat p99", "latency_ms", "p99", "{:.1f}"),
)
"""The sweep table's columns (title, metric, percentile or None for `metrics[metric]`, format); times in ms."""
_GOODPUT_COLUMN = ("goodput", "goodput", None, "{:.2f}")


def sweep_table(results: Mapping[str, RunResult]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the one table a sweep prints: a row per sweep point, its key first.

    A goodput column (req/s meeting the SLOs) is added when a point has one; the last column says whether the
    point was client-bound (its reasons are in `sweep_notes`).
    """
    columns = list(SWEEP_COLUMNS)
    if any(run.metrics.get("goodput") is not None for run in results.values()):
        columns.append(_GOODPUT_COLUMN)
    headers = ["point", *(title for title, *_ in columns), "client bound"]
    rows = []
    for key, run in results.items():
        cells = [key]
        for _, metric, stat, pattern in columns:
            value = run.metrics.get(metric) if stat is None else (run.percentiles.get(metric) or {}).get(stat)
            cells.append(fmt(value, pattern) if not isinstance(value, int) or isinstance(value, bool)
                         else str(value))
        cells.append("YES" if run.metrics.get("client_bound") else "no")
        rows.append(cells)
    return headers, rows


def sweep_notes(results: Mapping[str, RunResult]) -> list[str]:
    """What a sweep table's cells cannot say, one line per point it concerns: failures by kind, an early stop,
    a client-bound verdict's reasons (the lines of the latter start with "WARNING")."""
    notes = []
    for key, run in results.items():
        m = run.metrics
        if m.get("failures_by_kind"):
            notes.append(f"{key}: failures " + ", ".join(f"{k}: {v}" for k, v in m["failures_by_kind"].items()))
        if m.get("stopped_by"):
            notes.append(f"{key}: stopped by {m['stopped_by']} ({m.get('requests_unsent', 0)} not sent, "
                         f"{m.get('requests_unfinished', 0)} in flight and not counted)")
        if m.get("client_bound"):
            notes.append(f"WARNING {key}: client-bound: " + "; ".join(m.get("client_bound_reasons") or []))
    return notes


@dataclass
class RunResult(Mapping[str, Any]):
    """One sweep point: `metrics` (flat) and `percentiles` (per distribution)."""

    metrics: dict[str, Any]
    percentiles: dict[str, dict[str, Any]]
    repeats: dict[str, Any] | None = None
    """With num_runs > 1: the spread of the headline metrics over the repeats (metrics and percentiles
    then pool every repeat's requests). Absent from to_dict() otherwise."""
    stats: Any = field(default=None, repr=False, compare=False)
    """The running aggregate behind the figures, while a run is being assembled (not serialised)."""

    def to_dict(self) -> dict[str, Any]:
        out = {"metrics": self.metrics, "percentiles": self.percentiles}
        if self.repeats is not None:
            out["repeats"] = self.repeats
        return out

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


_FIELDS = ("output_dir", "status", "error", "results", "info")


@dataclass(eq=True)
class PerfResult(ResultBase[RunResult]):
    """The outcome of `run_perf`: one RunResult per sweep key, the output directory, and the status.

    `status` is a RunStatus: "completed", "interrupted" (Ctrl-C / stop: what was measured is kept) or
    "failed" (a client process died, or the run broke; `error` says why). `result[key]` is the RunResult of
    sweep point `key` (as `result.results[key]`); `to_dict()` is the JSON shape of summary.json.
    """

    output_dir: str
    results: dict[str, RunResult] = field(default_factory=dict)
    status: str = RunStatus.COMPLETED
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def _parts(self) -> dict[str, RunResult]:
        return self.results

    def __getitem__(self, key: str) -> RunResult:
        if key in _FIELDS and key not in self.results:
            # Before results were mappings of their parts, a PerfResult was a mapping of its JSON fields.
            warnings.warn(f"result[{key!r}] is deprecated: use result.{key} (or result.to_dict()[{key!r}])",
                          DeprecationWarning, stacklevel=2)
            return self.to_dict()[key]  # type: ignore[no-any-return]
        return self.results[key]

    def to_dict(self) -> dict[str, Any]:
        return {
            "output_dir": self.output_dir,
            "status": str(self.status),
            "error": self.error,
            "results": {key: run.to_dict() for key, run in self.results.items()},
            "info": self.info,
        }

    def report(self) -> str:
        """A plain-text report (what `report.txt` holds)."""
        lines = [f"evalsvc perf: {self.status}" + (f" ({self.error})" if self.error else ""),
                 f"output: {self.output_dir}"]
        if len(self.results) > 1:  # the sweep at a glance, then each point in detail
            headers, rows = sweep_table(self.results)
            widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
            lines.append("")
            for r in [headers, *rows]:
                lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                       for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
            lines.append("(times in ms)")
        for key, run in self.results.items():
            lines.append("")
            lines.append(key)
            for label, value in summary_lines(run.metrics):
                lines.append(f"  {label:<32} {value}")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        keys = ", ".join(self.results)
        return f"PerfResult(status={str(self.status)!r}, runs=[{keys}], output_dir={self.output_dir!r})"

    def _repr_html_(self) -> str:
        parts = [f"<p><b>evalsvc perf</b>: {html.escape(self.status)} &mdash; "
                 f"<code>{html.escape(self.output_dir)}</code></p>"]
        for key, run in self.results.items():
            rows = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>"
                           for a, b in summary_lines(run.metrics))
            parts.append(f"<table><caption>{html.escape(key)}</caption>{rows}</table>")
        return "".join(parts)
