"""The realistic workloads through the service with the real perf engine: a trace replayed as a job, the random
dataset's prefixes, length distributions, ignore_eos and gamma/ramp arrivals through the blocking endpoint, and
bad workload input as a 400 (or a failed job naming the file and line)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._perfrun import mooncake_trace
from tests.http._live import Live

FINISHED = ("completed", "failed", "cancelled", "interrupted")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def live(service_factory: Callable[..., Live], data: Path) -> Live:
    return service_factory(targets={}, data_roots=[str(data)])


def test_a_trace_job_replays_every_request_at_its_time(live: Live, data: Path, mock_factory: Any) -> None:
    mock = mock_factory(ttft_ms=0, itl_ms=0, output_tokens=64)
    rows = mooncake_trace(data / "trace.jsonl", n=80, span_ms=400)
    body = {"model": "mock-model", "url": mock.chat_url, "dataset": "trace", "dataset_path": str(data / "trace.jsonl"),
            "speed": 0.5, "parallel": 64, "ignore_eos": True}
    r = live.client.post("/api/v1/jobs/perf", json=body)
    assert r.status_code == 202, r.text
    job = live.wait_state(r.json()["job_id"], FINISHED, timeout=120)
    assert job["state"] == "completed", job
    result = live.client.get(f"/api/v1/jobs/{job['id']}/result").json()
    key = "trace_speed_0.5_parallel_64_number_80"
    metrics = result["results"][key]["metrics"]
    assert metrics["requests_succeeded"] == 80 and metrics["trace_span_s"] == pytest.approx(
        rows[-1]["timestamp"] / 1000 / 0.5)
    lines = (Path(result["output_dir"]) / f"requests_{key}.jsonl").read_text().splitlines()
    recs = sorted((json.loads(line) for line in lines), key=lambda rec: rec["index"])
    assert [(rec["trace_index"], rec["trace_timestamp_ms"]) for rec in recs] == [
        (i, float(row["timestamp"])) for i, row in enumerate(rows)]
    assert [rec["scheduled_ms"] for rec in recs] == [pytest.approx(row["timestamp"] * 2, abs=2e-3) for row in rows]
    assert [rec["output_tokens"] for rec in recs] == [row["output_length"] for row in rows]


def test_random_workload_options_through_the_blocking_endpoint(live: Live, mock_factory: Any) -> None:
    mock = mock_factory(ttft_ms=0, itl_ms=0, output_tokens=64, capture_requests=True)
    body = {"model": "mock-model", "url": mock.chat_url, "dataset": "random", "number": 24, "parallel": 24,
            "prompt_tokens": 6, "prompt_tokens_stdev": 2, "prefix_tokens": 12, "prefix_groups": 2,
            "max_tokens_min": 1, "max_tokens_max": 9, "ignore_eos": True, "rate": 200, "rate_start": 50,
            "arrival": "gamma", "burstiness": 0.5, "preflight": False}
    r = live.client.post("/api/v1/perf", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    metrics = got["results"]["rate_200_number_24"]["metrics"]
    assert metrics["requests_succeeded"] == 24
    assert (metrics["arrival"], metrics["burstiness"], metrics["rate_start"]) == ("gamma", 0.5, 50)
    bodies = httpx.get(mock.root_url + "/mock/requests", trust_env=False).json()
    assert len({" ".join(b["messages"][0]["content"].split()[:12]) for b in bodies}) == 2
    assert all(b["ignore_eos"] and b["min_tokens"] == b["max_tokens"] <= 9 for b in bodies)
    summary = json.loads((Path(got["output_dir"]) / "summary.json").read_text())
    assert summary["info"]["dataset"]["expected_cache_hit_share"] > 0


@pytest.mark.parametrize(("fields", "field", "reason"), [
    ({"dataset": "random", "speed": 3}, "speed", "applies to the trace dataset only"),
    ({"dataset": "random", "ignore_eos": True, "api": "anthropic"}, "ignore_eos", "is not supported by api"),
    ({"dataset": "random", "prefix_groups": 3}, "prefix_groups", "needs prefix_tokens > 0"),
    ({"dataset": "random", "arrival": "gamma", "burstiness": -1}, "burstiness", "must be > 0"),
])
def test_bad_workload_fields_are_400_naming_the_field(live: Live, fields: dict[str, Any], field: str,
                                                      reason: str) -> None:
    r = live.client.post("/api/v1/jobs/perf", json={"model": "m", "url": "http://127.0.0.1:9/v1/chat/completions",
                                                    **fields})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["field"] == field and reason in error["reason"], error


def test_a_bad_trace_file_fails_the_job_with_the_file_and_line(live: Live, data: Path, mock_factory: Any) -> None:
    mock = mock_factory(ttft_ms=0, itl_ms=0)
    path = data / "trace.jsonl"
    path.write_text('{"timestamp": 5, "input_length": 5, "output_length": 2}\n{"timestamp": 1, "input_length": 5, '
                    '"output_length": 2}\n')
    r = live.client.post("/api/v1/perf", json={"model": "m", "url": mock.chat_url, "dataset": "trace",
                                               "dataset_path": str(path)})
    assert r.status_code == 400, r.text
    assert f"{path}:2: timestamp goes back in time (1 ms after 5 ms)" in r.json()["message"]
