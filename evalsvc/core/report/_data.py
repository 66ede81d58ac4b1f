"""Read a perf run directory and reduce it to what the report draws, with bounded sizes.

Everything the page shows is computed here in Python: CDFs are at most `CDF_POINTS` points, histograms
`HIST_BINS` bars and over-time series `TIME_BINS` bins per sweep point, whatever the number of requests, so
the page grows with the number of sweep points, not with the number of requests.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .._secrets import redact_keys, redact_url, secret_name
from ..errors import ConfigError

CDF_POINTS = 200
"""Most points drawn on one CDF curve (quantiles at evenly spaced probabilities)."""
HIST_BINS = 40
"""Bars in one histogram."""
TIME_BINS = 120
"""Most bins of one over-time series."""
REQUESTS_PER_BIN = 10
"""Fewer bins for short runs: about this many requests a bin, so a bin's figures mean something."""

PERCENTILE_PROBS: dict[str, float] = {
    "min": 0.0, "p1": 0.01, "p5": 0.05, "p10": 0.10, "p25": 0.25, "p50": 0.50, "p75": 0.75,
    "p90": 0.90, "p95": 0.95, "p99": 0.99, "p99.9": 0.999, "max": 1.0,
}
"""The summary's percentile names and the probabilities they stand for (a CDF when records are absent)."""


@dataclass
class Point:
    """One sweep point: its key, summary and (reduced) per-request records."""

    key: str
    metrics: dict[str, Any]
    percentiles: dict[str, dict[str, Any]]
    records: list[dict[str, Any]] | None = None
    """The finished requests of `requests_<key>.jsonl` (cancelled ones left out); None without the file."""
    series: str = ""
    """Which run the point is from when a chart shows several (a comparison: "base", "new"); "" for one run."""
    colour: int | None = None
    """Its palette index in a chart of several runs (the same sweep point, the same colour); None: its position."""

    @property
    def label(self) -> str:
        m = self.metrics
        rate = m.get("rate")
        if isinstance(rate, (int, float)) and rate > 0:
            text = f"rate {rate:g}/s · parallel {m.get('parallel')}"
        else:
            text = f"parallel {m.get('parallel')}"
        return f"{self.series} · {text}" if self.series else text

    def values(self, metric: str) -> list[float]:
        """Per-request values of ttft_ms / tpot_ms / latency_ms for the successful requests."""
        if not self.records:
            return []
        out: list[float] = []
        for r in self.records:
            if not r.get("ok"):
                continue
            v = record_metric(r, metric)
            if v is not None:
                out.append(v)
        return out


@dataclass
class PerfRun:
    """A perf run directory, read."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    points: list[Point] = field(default_factory=list)

    @property
    def slo(self) -> dict[str, float]:
        slo = self.config.get("slo")
        return {str(k): float(v) for k, v in slo.items()} if isinstance(slo, dict) else {}

    @property
    def sweep_axis(self) -> tuple[str, str]:
        """("rate", "request rate (req/s)") when the points differ by arrival rate, else by concurrency."""
        rates = {p.metrics.get("rate") for p in self.points}
        if len(rates) > 1 or any(isinstance(r, (int, float)) and r > 0 for r in rates):
            return "rate", "request rate (req/s)"
        return "parallel", "concurrency (max requests in flight)"


def load_perf_run(run_dir: str | Path) -> PerfRun:
    """Read `config.json`, `summary.json` and each point's `summary_<key>.json` / `requests_<key>.jsonl`.

    Raises:
        ConfigError: `run_dir` is not a perf run directory (no such directory, or no readable config.json
            and summary.json with perf results).
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError("DIR", f"{str(path)!r} is not a directory")
    config = read_json(path / "config.json")
    summary = read_json(path / "summary.json")
    if config is None or summary is None or not isinstance(summary.get("results"), dict) \
            or "parallel" not in config:
        raise ConfigError("DIR", f"{str(path)!r} is not a perf run directory "
                                 "(it needs the config.json and summary.json that `evalsvc perf` writes)")
    run = PerfRun(path=path, config=redact_config(config), summary=summary)
    for key, result in summary["results"].items():
        # the point's own summary file is the same object; summary.json is enough when it is gone
        own = read_json(path / f"summary_{key}.json") or result
        metrics = own.get("metrics") or {}
        percentiles = own.get("percentiles") or {}
        records = _read_records(path / f"requests_{key}.jsonl")
        run.points.append(Point(key=str(key), metrics=metrics, percentiles=percentiles, records=records))
    return run


def redact_config(config: dict[str, Any]) -> dict[str, Any]:
    """config.json as shown: written redacted already; redacted again so that no secret can reach the page."""
    shown = redact_keys(config)
    if not isinstance(shown, dict):  # pragma: no cover - redact_keys keeps a dict a dict
        return {}
    if shown.get("api_key") is not None:
        shown["api_key"] = "***"
    if isinstance(shown.get("url"), str):
        shown["url"] = redact_url(shown["url"])
    headers = shown.get("headers")
    if isinstance(headers, dict):
        shown["headers"] = {k: ("***" if secret_name(k) else v) for k, v in headers.items()}
    return shown


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


_KEEP = ("sent_ms", "first_token_ms", "last_token_ms", "end_ms", "ok", "error", "output_tokens", "streamed")


def _read_records(path: Path) -> list[dict[str, Any]] | None:
    """The records of one point, only the fields the report uses (a bad line is skipped, not fatal)."""
    try:
        fh = path.open("rb")
    except OSError:
        return None
    out: list[dict[str, Any]] = []
    with fh:
        for line in fh:
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(row, dict) or row.get("error") == "cancelled" or row.get("sent_ms") is None:
                continue
            out.append({k: row.get(k) for k in _KEEP})
    return out


def record_metric(r: dict[str, Any], metric: str) -> float | None:
    """The same definitions as the summary's (see perf/_metrics.py), from a record's times in ms."""
    sent, first, last, end = r.get("sent_ms"), r.get("first_token_ms"), r.get("last_token_ms"), r.get("end_ms")
    if metric == "ttft_ms":
        return None if first is None else float(first - sent)
    if metric == "latency_ms":
        return None if end is None else float(end - sent)
    if metric == "tpot_ms":
        n = r.get("output_tokens") or 0
        if not r.get("streamed") or first is None or last is None or n < 2:
            return None
        return float((last - first) / (n - 1))
    raise ValueError(metric)


# --- reductions -------------------------------------------------------------------------------------

def quantile(sorted_values: Sequence[float], p: float) -> float:
    """Linear-interpolated quantile of already sorted values (numpy's default method)."""
    n = len(sorted_values)
    if n == 1:
        return sorted_values[0]
    pos = p * (n - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def cdf(values: Iterable[float], points: int = CDF_POINTS) -> tuple[list[float], list[float]]:
    """(x, probability) of the empirical CDF, at most `points` pairs whatever the number of values."""
    s = sorted(values)
    if not s:
        return [], []
    if len(s) <= points:
        return s, [(i + 1) / len(s) for i in range(len(s))]
    probs = [i / (points - 1) for i in range(points)]
    return [quantile(s, p) for p in probs], probs


def cdf_from_percentiles(pcts: dict[str, Any]) -> tuple[list[float], list[float]]:
    """(x, probability) from the summary's percentile table: the CDF when per-value data are not kept."""
    xs: list[float] = []
    ps: list[float] = []
    for name, p in PERCENTILE_PROBS.items():
        v = pcts.get(name)
        if isinstance(v, (int, float)):
            xs.append(float(v))
            ps.append(p)
    return xs, ps


def histogram(values: Sequence[float], bins: int = HIST_BINS) -> tuple[list[float], list[int], float]:
    """(bin centres, counts, bin width): `bins` equal bins between min and max."""
    if not values:
        return [], [], 0.0
    lo, hi = min(values), max(values)
    if hi <= lo:
        return [lo], [len(values)], 1.0
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    return [lo + (i + 0.5) * width for i in range(bins)], counts, width


@dataclass
class Timeline:
    """Over-time series of one sweep point, `TIME_BINS` bins at most (time in s from the point's start)."""

    t: list[float]
    in_flight: list[float]
    """Mean requests in flight over each bin."""
    throughput: list[float]
    """Successful completions per second in each bin."""
    ttft_p50: list[float | None]
    ttft_max: list[float | None]
    errors: dict[str, list[int]]
    """Failures per bin, by kind (at the time the request ended)."""


def timeline(records: Sequence[dict[str, Any]], bins: int = TIME_BINS) -> Timeline | None:
    if not records:
        return None
    bins = max(1, min(bins, len(records) // REQUESTS_PER_BIN))
    starts = [float(r["sent_ms"]) for r in records]
    ends = [float(r["end_ms"]) if r.get("end_ms") is not None else float(r["sent_ms"]) for r in records]
    t0, t1 = min(starts), max(ends)
    span = max(t1 - t0, 1e-3)
    width = span / bins
    centre = [(t0 + (i + 0.5) * width) / 1000.0 for i in range(bins)]
    busy = [0.0] * bins  # request-ms in flight in each bin: mean in flight = busy / width
    done = [0] * bins
    ttfts: list[list[float]] = [[] for _ in range(bins)]
    errors: dict[str, list[int]] = {}

    def index(ms: float) -> int:
        return min(max(int((ms - t0) / width), 0), bins - 1)

    for r, s, e in zip(records, starts, ends, strict=True):
        first, last = index(s), index(e)
        for b in range(first, last + 1):
            lo, hi = t0 + b * width, t0 + (b + 1) * width
            busy[b] += max(0.0, min(e, hi) - max(s, lo))
        if r.get("ok"):
            done[last] += 1
            ttft = record_metric(r, "ttft_ms")
            if ttft is not None:
                ttfts[index(s)].append(ttft)
        else:
            kind = str(r.get("error") or "unknown")
            errors.setdefault(kind, [0] * bins)[last] += 1
    p50: list[float | None] = []
    mx: list[float | None] = []
    for vals in ttfts:
        vals.sort()
        p50.append(quantile(vals, 0.5) if vals else None)
        mx.append(vals[-1] if vals else None)
    return Timeline(t=centre, in_flight=[b / width for b in busy],
                    throughput=[d / (width / 1000.0) for d in done], ttft_p50=p50, ttft_max=mx, errors=errors)
