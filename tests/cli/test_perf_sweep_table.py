"""`evalsvc perf` prints one table for a sweep (a row per point), the per-point detail with --verbose."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from evalsvc.core.perf import PerfResult, RunResult
from evalsvc.core.perf._result import sweep_notes, sweep_table

DETAIL_LABEL = "request throughput (req/s)"  # a row label of the per-point detail table


def _perf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalsvc", "perf", *args], capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)


def _point(rps: float, ttft: float, **extra: Any) -> RunResult:
    metrics = {"requests_total": 10, "requests_succeeded": 9, "requests_failed": 1, "request_throughput": rps,
               "output_throughput": rps * 16, "failures_by_kind": {"http_500": 1}, "client_bound": False, **extra}
    pcts = {"ttft_ms": {"p50": ttft, "p99": ttft * 2}, "tpot_ms": {"p50": 2.0}, "itl_ms": {"p50": None},
            "latency_ms": {"p50": ttft + 30, "p99": ttft * 2 + 30}}
    return RunResult(metrics=metrics, percentiles=pcts)


def test_sweep_table_rows_and_notes() -> None:
    results = {"parallel_1_number_10": _point(5.0, 20.0),
               "parallel_8_number_10": _point(30.0, 45.5, client_bound=True,
                                              client_bound_reasons=["client CPU busy 97% of the run"])}
    headers, rows = sweep_table(results)
    assert headers == ["point", "ok", "fail", "req/s", "out tok/s", "TTFT p50", "TTFT p99", "TPOT p50", "ITL p50",
                       "lat p50", "lat p99", "client bound"]  # no goodput column without SLOs
    assert rows[1] == ["parallel_8_number_10", "9", "1", "30.00", "480", "45.5", "91.0", "2.00", "-", "75.5",
                       "121.0", "YES"]
    assert rows[0][-1] == "no"
    assert sweep_notes(results) == ["parallel_1_number_10: failures http_500: 1",
                                    "parallel_8_number_10: failures http_500: 1",
                                    "WARNING parallel_8_number_10: client-bound: client CPU busy 97% of the run"]
    results["parallel_1_number_10"].metrics["goodput"] = 4.5
    headers, rows = sweep_table(results)
    assert headers[-2] == "goodput" and rows[0][-2] == "4.50" and rows[1][-2] == "-"
    report = PerfResult(output_dir="/x", results=results).report()
    table = [line.split() for line in report.splitlines() if line.startswith("parallel_") and " " in line]
    assert table == rows and report.count(DETAIL_LABEL) == 2  # the sweep table, then each point's detail


def test_a_sweep_prints_one_table_and_verbose_the_detail(mock_server: Any, tmp_path: Path) -> None:
    args = ["--model", "mock-model", "--url", mock_server.chat_url, "--dataset", "random", "--prompt-tokens", "8",
            "--max-tokens", "8", "--number", "6,8,10", "--parallel", "1,2,4", "--work-dir", str(tmp_path),
            "--no-report"]
    result = _perf(*args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line.split() for line in lines if line.strip().startswith("parallel_")]
    assert [r[0] for r in rows] == ["parallel_1_number_6", "parallel_2_number_8", "parallel_4_number_10"]
    assert [r[1:3] for r in rows] == [["6", "0"], ["8", "0"], ["10", "0"]]  # ok, failed
    assert DETAIL_LABEL not in result.stdout
    assert len(lines) <= 12, result.stdout  # was 45 lines for 3 points
    verbose = _perf(*args, "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout.count(DETAIL_LABEL) == 3 and "parallel_4_number_10" in verbose.stdout
    assert "TTFT" in verbose.stdout
