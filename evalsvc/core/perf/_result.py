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


@dataclass
class RunResult(Mapping[str, Any]):
    """One sweep point: `metrics` (flat) and `percentiles` (per distribution)."""

    metrics: dict[str, Any]
    percentiles: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "percentiles": self.percentiles}

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(("metrics", "percentiles"))

    def __len__(self) -> int:
        return 2


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
