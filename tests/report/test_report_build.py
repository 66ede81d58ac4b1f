"""The report builder without a browser: bounded size, reductions, bad directories, the run's option."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evalsvc import PerfConfig, run_perf
from evalsvc.core.errors import ConfigError
from evalsvc.core.report import build_perf_report
from evalsvc.core.report._data import (
    CDF_POINTS,
    TIME_BINS,
    cdf,
    histogram,
    load_perf_run,
    quantile,
    timeline,
)


def _record(i: int, sent: float, ttft: float, dur: float, ok: bool = True) -> dict[str, Any]:
    return {"index": i, "scheduled_ms": None, "sent_ms": sent, "first_token_ms": sent + ttft if ok else None,
            "last_token_ms": sent + dur - 1 if ok else None, "end_ms": sent + dur, "connect_ms": None,
            "streamed": ok, "status": 200 if ok else 500, "ok": ok, "error": None if ok else "http_500",
            "detail": None, "output_tokens": 32 if ok else 0, "prompt_tokens": 16, "chunks": 32}


def _fake_run(root: Path, points: int, requests: int, *, config: dict[str, Any] | None = None) -> Path:
    """A run directory in the shapes run_perf writes, with `requests` records per point."""
    rng = random.Random(7)
    root.mkdir(parents=True)
    cfg = {"model": "m", "url": "http://127.0.0.1:1/v1/chat/completions", "api_key": "***",
           "parallel": [2 ** i for i in range(points)], "number": requests, "rate": -1.0, "slo": None}
    cfg.update(config or {})
    results = {}
    for k in range(points):
        key = f"parallel_{2 ** k}_number_{requests}"
        rows = [_record(i, i * 2.0, rng.uniform(20, 80), rng.uniform(200, 900), ok=i % 50 != 0)
                for i in range(requests)]
        (root / f"requests_{key}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        pcts = {m: {"p50": 10.0 + k, "p90": 20.0 + k, "p99": 30.0 + k} for m in
                ("ttft_ms", "tpot_ms", "itl_ms", "latency_ms")}
        metrics = {"parallel": 2 ** k, "rate": -1.0, "requests_total": requests, "request_throughput": 10.0 * (k + 1),
                   "output_throughput": 300.0 * (k + 1), "failures_by_kind": {"http_500": requests // 50},
                   "client_bound": False, "client_bound_reasons": []}
        results[key] = {"metrics": metrics, "percentiles": pcts}
        (root / f"summary_{key}.json").write_text(json.dumps(results[key]))
    (root / "config.json").write_text(json.dumps(cfg))
    (root / "summary.json").write_text(json.dumps({"status": "completed", "error": None, "results": results,
                                                   "info": {}}))
    return root


def test_cdf_histogram_and_timeline_are_bounded_whatever_the_number_of_values() -> None:
    values = [float(v) for v in range(100_000)]
    xs, ps = cdf(values)
    assert len(xs) == len(ps) == CDF_POINTS
    assert (xs[0], xs[-1], ps[0], ps[-1]) == (0.0, 99_999.0, 0.0, 1.0)
    assert cdf([3.0, 1.0, 2.0]) == ([1.0, 2.0, 3.0], [1 / 3, 2 / 3, 1.0])
    centres, counts, width = histogram(values, bins=40)
    assert len(centres) == 40 and sum(counts) == 100_000 and width == pytest.approx(99_999 / 40)
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    records = [_record(i, i * 1.0, 10.0, 100.0) for i in range(10_000)]
    tl = timeline(records)
    assert tl is not None and len(tl.t) == TIME_BINS


def test_timeline_figures_match_the_records() -> None:
    # 40 requests, 4 at a time for 100 ms each, back to back: always 4 in flight, 40 completions/s
    records = [_record(i, (i // 4) * 100.0, 10.0, 100.0, ok=i != 5) for i in range(40)]
    tl = timeline(records, bins=4)
    assert tl is not None
    assert tl.in_flight == pytest.approx([4.0] * 4)
    assert sum(tl.throughput) * 0.25 == pytest.approx(39)  # bins of 0.25 s
    assert tl.errors == {"http_500": [1, 0, 0, 0]}
    assert tl.ttft_p50 == pytest.approx([10.0] * 4)


def test_page_size_does_not_grow_with_requests(tmp_path: Path) -> None:
    small = build_perf_report(_fake_run(tmp_path / "small", 5, 100)).stat().st_size
    big = build_perf_report(_fake_run(tmp_path / "big", 5, 2_000)).stat().st_size
    huge = build_perf_report(_fake_run(tmp_path / "huge", 5, 10_000)).stat().st_size
    assert big < 6_000_000 and huge < 6_000_000, (big, huge)  # ~4.8 MB of it is plotly.js, inlined once
    assert huge - small < 400_000, (small, huge)


def test_no_secret_reaches_the_page(tmp_path: Path) -> None:
    # config.json is written redacted; a hand-edited or foreign one must still not leak into the page
    secret = "sk-live-abcdef0123456789"
    run_dir = _fake_run(tmp_path / "run", 1, 20, config={
        "api_key": secret, "url": f"http://user:{secret}@127.0.0.1:1/v1/chat/completions?api_key={secret}",
        "headers": {"X-Api-Key": secret, "X-Trace": "visible"}, "extra_body": {"token": secret}})
    html = build_perf_report(run_dir).read_text()
    assert secret not in html
    assert "visible" in html


def test_not_a_run_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"DIR: .* is not a perf run directory"):
        load_perf_run(tmp_path)
    with pytest.raises(ConfigError, match="is not a directory"):
        load_perf_run(tmp_path / "missing")


@pytest.mark.parametrize("make", ["empty", "missing", "eval"])
def test_cli_report_of_a_wrong_directory_exits_2_with_one_line(tmp_path: Path, make: str) -> None:
    target = tmp_path / "d"
    if make != "missing":
        target.mkdir()
    if make == "eval":
        (target / "config.json").write_text(json.dumps({"api_url": "x", "datasets": ["gsm8k"]}))
        (target / "summary.json").write_text(json.dumps({"result": {}}))
    proc = subprocess.run([sys.executable, "-m", "evalsvc", "report", str(target)], check=False, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ConfigError: DIR: ") and "Traceback" not in proc.stderr
    assert not (target / "report.html").exists()


def _cfg(url: str, tmp_path: Path, **over: Any) -> PerfConfig:
    return PerfConfig(model="m", url=url, dataset="random", prompt_tokens=16, max_tokens=8, number=4, parallel=2,
                      work_dir=str(tmp_path), **over)


def test_report_false_writes_no_page(mock_server: Any, tmp_path: Path) -> None:
    result = run_perf(_cfg(mock_server.chat_url, tmp_path, report=False))
    out = Path(result.output_dir)
    assert (out / "summary.json").is_file() and not (out / "report.html").exists()


def test_a_report_failure_does_not_lose_the_run(mock_server: Any, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from evalsvc.core import report

    def broken(run_dir: Any) -> Path:
        raise RuntimeError("template exploded")

    monkeypatch.setattr(report, "build_perf_report", broken)
    result = run_perf(_cfg(mock_server.chat_url, tmp_path))
    assert result.status == "completed"
    out = Path(result.output_dir)
    assert not (out / "report.html").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["info"]["report_error"] == "RuntimeError: template exploded"
    assert summary["results"] and (out / "report.txt").is_file()


def test_cli_no_report_option(mock_server: Any, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "evalsvc", "perf", "--model", "m", "--url", mock_server.chat_url,
                           "--dataset", "random", "--prompt-tokens", "16", "--max-tokens", "8", "--number", "4",
                           "--parallel", "2", "--work-dir", str(tmp_path), "--no-report", "--json"],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = Path(json.loads(proc.stdout)["output_dir"])
    assert (out / "summary.json").is_file() and not (out / "report.html").exists()


def test_a_missing_browser_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.report import _browser

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        _browser._missing("no Chromium found")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no Chromium found"):
        _browser._missing("no Chromium found")
