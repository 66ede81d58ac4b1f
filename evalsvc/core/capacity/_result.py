"""What `run_capacity` returns: the probes as perf runs (keyed like perf runs) and the answer, `capacity`."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from ..perf._result import PerfResult, fmt

PROBE_COLUMNS = ("probe", "value", "requests", "attainment", "interval", "verdict", "req/s", "TTFT p50", "stopped")


def _value(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:g}" if isinstance(v, float) else str(v)


def probe_rows(capacity: dict[str, Any], results: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per probe run, in the order the search ran them (the console table, report.txt, Jupyter).
    A value's last run shows its pooled verdict; earlier runs at the same value read "repeat", and a run
    not judged at all says why (client-bound)."""
    owner = {key: probe for probe in capacity.get("probes", []) for key in probe["runs"]}
    rows: list[tuple[str, ...]] = []
    for key, run in results.items():
        m = run.metrics
        probe = owner.get(key)
        last = probe is not None and key == probe["runs"][-1]
        if last:
            assert probe is not None
            verdict = probe["verdict"] + ("" if probe["decided_by"] == "interval" else f" ({probe['decided_by']})")
            attainment, interval = fmt(probe["attainment"], "{:.3f}"), \
                f"[{probe['interval'][0]:.3f}, {probe['interval'][1]:.3f}]"
        else:
            verdict = "repeat" if probe is not None else ("client-bound" if m.get("client_bound") else "-")
            attainment, interval = fmt(m.get("slo_attainment"), "{:.3f}"), ""
        value = m.get("parallel") if capacity.get("search") == "parallel" else m.get("rate")
        rows.append((key, _value(value), str(m.get("requests_total", "-")), attainment, interval, verdict,
                     fmt(m.get("request_throughput"), "{:.2f}"), fmt(m.get("ttft_ms_p50"), "{:.1f}"),
                     str(m.get("stopped_by") or "")))
    return rows


@dataclass(eq=True)
class CapacityResult(PerfResult):
    """The outcome of `run_capacity`: every probe's RunResult (`result[key]`, as in a perf run) and
    `capacity`, the answer (see docs/results.md): its value, confidence, last passing and first failing
    probe, knee, goodput and how the search ended."""

    capacity: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["capacity"] = self.capacity
        return out

    @property
    def value(self) -> float | int | None:
        """The capacity found (None when there is none to report)."""
        return self.capacity.get("value")

    def report(self) -> str:
        lines = [f"evalsvc capacity: {self.status}" + (f" ({self.error})" if self.error else ""),
                 f"output: {self.output_dir}", "", str(self.capacity.get("message", "")), ""]
        rows = probe_rows(self.capacity, self.results)
        widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(PROBE_COLUMNS)]
        lines.append("  ".join(c.ljust(w) for c, w in zip(PROBE_COLUMNS, widths, strict=True)))
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
        perf = super().report().split("\n", 2)[2]  # every probe's own summary, as perf prints it
        return "\n".join(lines) + "\n" + perf

    def __repr__(self) -> str:
        return (f"CapacityResult(status={str(self.status)!r}, value={self.value!r}, probes={len(self.results)}, "
                f"output_dir={self.output_dir!r})")

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in PROBE_COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>"
                       for r in probe_rows(self.capacity, self.results))
        return (f"<p><b>evalsvc capacity</b>: {html.escape(str(self.status))} &mdash; "
                f"{html.escape(str(self.capacity.get('message', '')))} &mdash; "
                f"<code>{html.escape(self.output_dir)}</code></p><table><tr>{head}</tr>{body}</table>")
