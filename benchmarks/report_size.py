"""Build time and size of report.html (and of a comparison page) for a 10-point sweep of 2,000 requests each.

The run directory is synthesised the way `evalsvc perf` writes it (config.json, summary.json, summary_<key>.json,
requests_<key>.jsonl with every field of a record), from a closed-loop model of a server whose TTFT and TPOT grow
with concurrency, with 1 % of requests failing. Printed next to references measured in the same run: the time
to read and JSON-decode the same records (orjson, and the standard library's json), and plotly.js's share of the
page. The budget: a perf page stays under 6 MB whatever the number of requests (it grows with sweep points only).

    python benchmarks/report_size.py [--points 10] [--requests 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from evalsvc.core.report import build_perf_report
from evalsvc.core.report.compare import compare

BUDGET_MB = 6.0
PCTS = {"min": 0, "p1": 1, "p5": 5, "p10": 10, "p25": 25, "p50": 50, "p75": 75, "p90": 90, "p95": 95, "p99": 99,
        "p99.9": 99.9, "max": 100}


def _pcts(values: np.ndarray[Any, Any]) -> dict[str, Any]:
    if len(values) == 0:
        return {**{k: None for k in PCTS}, "mean": None, "stdev": None, "count": 0}
    out: dict[str, Any] = {k: float(v) for k, v in zip(PCTS, np.percentile(values, list(PCTS.values())), strict=True)}
    out.update(mean=float(values.mean()), stdev=float(values.std()), count=len(values))
    return out


def _point(rng: np.random.Generator, parallel: int, n: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    ttft = 150 + 4 * parallel + rng.gamma(3, 10 + parallel, n)
    tpot = 18 + 0.05 * parallel + rng.gamma(2, 1.5, n)
    tokens = rng.integers(64, 256, n)
    ok = rng.random(n) > 0.01
    slots = np.zeros(parallel)
    records = []
    for i in range(n):
        s = int(np.argmin(slots))
        sent = float(slots[s] + rng.uniform(0.05, 0.3))
        first = sent + float(ttft[i])
        last = first + float(tpot[i]) * (int(tokens[i]) - 1) if ok[i] else None
        end = (last + 0.1) if last is not None else sent + float(rng.uniform(5, 50))
        slots[s] = end
        records.append({"index": i, "scheduled_ms": None, "sent_ms": round(sent, 4),
                        "first_token_ms": round(first, 4) if ok[i] else None,
                        "last_token_ms": round(last, 4) if last is not None else None, "end_ms": round(end, 4),
                        "connect_ms": 0.5 if i < parallel else None, "streamed": True,
                        "status": 200 if ok[i] else 500, "ok": bool(ok[i]), "error": None if ok[i] else "http_500",
                        "detail": None if ok[i] else "HTTP 500", "output_tokens": int(tokens[i]) if ok[i] else 0,
                        "prompt_tokens": 256, "chunks": int(tokens[i]) if ok[i] else 0})
    good = [r for r in records if r["ok"]]
    duration = (max(r["end_ms"] for r in records) - min(r["sent_ms"] for r in records)) / 1000
    t = np.array([r["first_token_ms"] - r["sent_ms"] for r in good])
    lat = np.array([r["end_ms"] - r["sent_ms"] for r in good])
    tp = np.array([(r["last_token_ms"] - r["first_token_ms"]) / (r["output_tokens"] - 1) for r in good])
    out_tokens = sum(r["output_tokens"] for r in good)
    metrics = {"requests_total": n, "requests_succeeded": len(good), "requests_failed": n - len(good),
               "failures_by_kind": {"http_500": n - len(good)} if n > len(good) else {}, "duration_s": duration,
               "request_throughput": len(good) / duration, "output_throughput": out_tokens / duration,
               "total_throughput": (out_tokens + 256 * len(good)) / duration,
               "ttft_ms_mean": float(t.mean()), "ttft_ms_p50": float(np.median(t)), "goodput": None,
               "slo_attainment": None, "number": n, "parallel": parallel, "rate": -1.0, "client_bound": False,
               "client_bound_reasons": []}
    within = int(((t <= 500) & (lat <= 8000)).sum())
    metrics["goodput"], metrics["slo_attainment"] = within / duration, within / n
    percentiles = {"ttft_ms": _pcts(t), "tpot_ms": _pcts(tp), "itl_ms": _pcts(tp), "latency_ms": _pcts(lat),
                   "output_tokens": _pcts(np.array([r["output_tokens"] for r in good], dtype=float))}
    return records, {"metrics": metrics, "percentiles": percentiles}


def synthesise(run_dir: Path, points: int, requests: int, seed: int) -> int:
    """Write the run directory; returns the bytes of request records."""
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True)
    parallels = [2 ** i for i in range(points)]
    results, record_bytes = {}, 0
    for p in parallels:
        key = f"parallel_{p}_number_{requests}"
        records, result = _point(rng, p, requests)
        data = b"".join(orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for r in records)
        (run_dir / f"requests_{key}.jsonl").write_bytes(data)
        (run_dir / f"summary_{key}.json").write_bytes(orjson.dumps(result))
        results[key] = result
        record_bytes += len(data)
    config = {"model": "synthetic-model", "url": "http://127.0.0.1:8000/v1/chat/completions", "api": "openai",
              "api_key": "***", "number": [requests] * points, "parallel": parallels, "rate": -1.0,
              "dataset": "random", "prompt_tokens": 256, "max_tokens": 256, "slo": {"ttft_ms": 500,
                                                                                    "latency_ms": 8000}}
    (run_dir / "config.json").write_bytes(orjson.dumps(config))
    (run_dir / "summary.json").write_bytes(orjson.dumps({
        "output_dir": str(run_dir), "status": "completed", "error": None, "results": results,
        "info": {"started_at": "2026-01-01T00:00:00.000Z", "model": "synthetic-model"}}))
    return record_bytes


def _best(fn: Any, repeat: int) -> tuple[float, float, Any]:
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=10)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evalsvc-report-size-") as tmp:
        base, new = Path(tmp) / "base", Path(tmp) / "new"
        record_bytes = synthesise(base, args.points, args.requests, seed=1)
        synthesise(new, args.points, args.requests, seed=2)
        total = args.points * args.requests
        print(f"run: {args.points} points x {args.requests} requests = {total} records, "
              f"{record_bytes / 1e6:.1f} MB of requests_*.jsonl")

        def load_orjson() -> int:
            return sum(len([orjson.loads(line) for line in p.read_bytes().splitlines()])
                       for p in sorted(base.glob("requests_*.jsonl")))

        def load_json() -> int:
            return sum(len([json.loads(line) for line in p.read_text().splitlines()])
                       for p in sorted(base.glob("requests_*.jsonl")))

        ref_o, _, n = _best(load_orjson, args.repeat)
        ref_j, _, _ = _best(load_json, args.repeat)
        assert n == total
        best, median, path = _best(lambda: build_perf_report(base), args.repeat)
        size = path.stat().st_size
        plotly = len(get_plotlyjs().encode())
        print(f"reference: read + decode the records: orjson {ref_o * 1000:.0f} ms, json {ref_j * 1000:.0f} ms")
        print(f"report.html: built in {best * 1000:.0f} ms (median {median * 1000:.0f} ms, "
              f"{best / ref_o:.1f}x the orjson read), {size / 1e6:.2f} MB "
              f"({plotly / 1e6:.2f} MB plotly.js, {(size - plotly) / 1e6:.2f} MB charts and tables); "
              f"budget {BUDGET_MB:g} MB: {'within' if size <= BUDGET_MB * 1e6 else 'OVER'}")

        def page() -> Path:
            cmp = compare(base, new)
            return cmp.write_html(Path(tmp) / "compare.html")

        best_c, median_c, cpath = _best(page, args.repeat)
        csize = cpath.stat().st_size
        print(f"compare.html (compare + page, both runs): {best_c * 1000:.0f} ms (median {median_c * 1000:.0f} ms), "
              f"{csize / 1e6:.2f} MB; budget {BUDGET_MB:g} MB: {'within' if csize <= BUDGET_MB * 1e6 else 'OVER'}")


if __name__ == "__main__":
    main()
