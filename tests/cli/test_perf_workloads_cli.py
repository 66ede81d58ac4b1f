"""`evalsvc perf` with the realistic workloads: trace replay (with two client processes), shared prefixes, length
distributions, ignore_eos, gamma and ramped arrivals, and their bad input as one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.test_perf_cli import run_cli
from tests._perfrun import mooncake_trace


def test_trace_replay_from_the_cli_over_two_client_processes(mock_factory: Any, tmp_path: Path) -> None:
    mock = mock_factory(ttft_ms=0, itl_ms=0, output_tokens=64)
    rows = mooncake_trace(tmp_path / "trace.jsonl", n=60, span_ms=600)
    result = run_cli("--model", "mock-model", "--url", mock.chat_url, "--dataset", "trace", "--dataset-path",
                     str(tmp_path / "trace.jsonl"), "--speed", "2", "--parallel", "32", "--workers", "2",
                     "--ignore-eos", "--work-dir", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    key = "trace_speed_2_parallel_32_number_60"
    metrics = data["results"][key]["metrics"]
    assert metrics["requests_succeeded"] == 60 and metrics["arrival"] == "trace"
    recs = sorted((json.loads(line) for line in (Path(data["output_dir"]) / f"requests_{key}.jsonl")
                   .read_text().splitlines()), key=lambda r: r["index"])
    assert [(r["trace_index"], r["trace_timestamp_ms"]) for r in recs] == [
        (i, float(row["timestamp"])) for i, row in enumerate(rows)]
    assert [r["scheduled_ms"] for r in recs] == [pytest.approx(row["timestamp"] / 2, abs=2e-3) for row in rows]
    assert [r["output_tokens"] for r in recs] == [row["output_length"] for row in rows]


def test_random_workload_options_from_the_cli(mock_factory: Any, tmp_path: Path) -> None:
    mock = mock_factory(ttft_ms=0, itl_ms=0, output_tokens=64, capture_requests=True)
    result = run_cli("--model", "mock-model", "--url", mock.chat_url, "--dataset", "random", "--number", "30",
                     "--prefix-tokens", "10", "--prefix-groups", "3", "--prompt-tokens-min", "2",
                     "--prompt-tokens-max", "6", "--max-tokens", "8", "--max-tokens-stdev", "3", "--ignore-eos",
                     "--rate", "300", "--rate-start", "100", "--arrival", "gamma", "--burstiness", "2",
                     "--parallel", "30", "--no-preflight", "--work-dir", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    metrics = data["results"]["rate_300_number_30"]["metrics"]
    assert (metrics["requests_succeeded"], metrics["arrival"], metrics["burstiness"]) == (30, "gamma", 2.0)
    summary = json.loads((Path(data["output_dir"]) / "summary.json").read_text())
    assert summary["info"]["dataset"]["prefix_groups"] == 3
    assert summary["info"]["dataset"]["expected_cache_hit_share"] > 0
    bodies = httpx.get(mock.root_url + "/mock/requests", trust_env=False).json()
    prompts = [b["messages"][0]["content"].split() for b in bodies]
    assert len({" ".join(p[:10]) for p in prompts}) == 3 and all(12 <= len(p) <= 16 for p in prompts)
    assert all(b["ignore_eos"] and b["min_tokens"] == b["max_tokens"] for b in bodies)


@pytest.mark.parametrize(("args", "needle"), [
    (["--dataset", "random", "--speed", "2"], "ConfigError: speed: applies to the trace dataset only"),
    (["--dataset", "random", "--ignore-eos", "--api", "gemini"], "ConfigError: ignore_eos: is not supported by "
     "api 'gemini'"),
    (["--dataset", "openqa", "--prefix-tokens", "5"], "ConfigError: prefix_tokens: applies to the random dataset "
     "only (dataset is 'openqa')"),
    (["--dataset", "random", "--arrival", "gamma", "--burstiness", "0"], "ConfigError: burstiness: must be > 0"),
])
def test_bad_workload_flags_are_one_line_and_exit_2(args: list[str], needle: str) -> None:
    result = run_cli("--model", "m", "--url", "http://127.0.0.1:9/v1/chat/completions", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_a_bad_trace_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text('{"timestamp": 0, "input_length": 5, "output_length": 2}\n{"timestamp": 10, "input_length": -1, '
                    '"output_length": 2}\n')
    result = run_cli("--model", "m", "--url", "http://127.0.0.1:9/v1/chat/completions", "--dataset", "trace",
                     "--dataset-path", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (f"DatasetError: dataset_path: {path}:2: input_length must be an integer >= 1, "
                                     "got -1")
