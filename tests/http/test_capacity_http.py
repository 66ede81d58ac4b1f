"""The capacity job kind over HTTP: 400 on bad input, a real search as a job and blocking, the perf slot shared."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evalsvc.core.jobs._admission import Admission
from tests._servers import MockHandle, start_mock
from tests.http._live import Live

KEY = "sk-capacity-secret"


@pytest.fixture(scope="module")
def finite() -> Iterator[MockHandle]:
    # 4 slots of 310 ms; a 5th client waits 77 ms on average: more than the SLO's 60 ms of headroom
    with start_mock(max_batch=4, ttft_ms=100, itl_ms=30, output_tokens=8) as server:
        yield server


def body(url: str, **fields: Any) -> dict[str, Any]:
    return {"model": "mock-model", "url": url, "dataset": "random", "prompt_tokens": 8, "max_tokens": 8,
            "slo": {"ttft_ms": 160}, "number": 80, "low": 2, "high": 8, "max_repeats": 1, **fields}


@pytest.mark.parametrize(("fields", "field", "reason"), [
    ({"slo": {}}, "slo", "needs at least one threshold"),
    ({"attainment": 1.5}, "attainment", "must be <= 1, got 1.5"),
    ({"low": 16, "high": 2}, "high", "the search range is inverted"),
    ({"rate": 10}, "rate", "must be -1, got 10"),
])
def test_bad_input_is_400_naming_the_field(service: Live, fields: dict[str, Any], field: str, reason: str) -> None:
    for path in ("/api/v1/jobs/capacity", "/api/v1/capacity"):
        r = service.client.post(path, json=body("http://127.0.0.1:9/v1/chat/completions", **fields))
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == field and reason in r.json()["error"]["reason"]


def test_openapi_documents_the_capacity_endpoints(service: Live) -> None:
    doc = service.client.get("/openapi.json").json()
    assert "/api/v1/jobs/capacity" in doc["paths"] and "/api/v1/capacity" in doc["paths"]
    schema = doc["components"]["schemas"]["CapacityRequest"]
    assert {"slo", "attainment", "search", "low", "high", "max_probes"} <= set(schema["properties"])
    assert schema["properties"]["attainment"]["exclusiveMinimum"] == 0


def test_a_capacity_job_runs_the_real_search(service_factory: Callable[..., Live], finite: MockHandle,
                                             tmp_path: Path) -> None:
    live = service_factory(targets={})
    r = live.client.post("/api/v1/jobs/capacity", json=body(finite.chat_url, api_key=KEY))
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    job = live.wait_state(job_id, ("completed", "failed"), timeout=120)
    assert job["state"] == "completed" and job["kind"] == "capacity", job
    result = live.client.get(f"/api/v1/jobs/{job_id}/result")
    assert result.status_code == 200
    got = result.json()
    assert got["message"] == "Capacity search completed" and got["capacity"]["value"] == 4
    assert got["results"] and all(k.startswith("parallel_") for k in got["results"])
    listed = live.client.get("/api/v1/jobs", params={"kind": "capacity"}).json()["jobs"]
    assert [j["id"] for j in listed] == [job_id]
    blocking = live.client.post("/api/v1/capacity", json=body(finite.chat_url, high=4))
    assert blocking.status_code == 200 and blocking.json()["capacity"]["ended"] == "above_range"
    assert KEY not in r.text + result.text + json.dumps(listed)
    for path in (tmp_path / "outputs").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_capacity_and_perf_share_one_slot() -> None:
    admission = Admission(4, {"eval": 2, "perf": 1})
    admission.admit("a", "capacity")
    admission.admit("b", "perf")
    admission.admit("c", "eval")
    assert admission.take() == ["a", "c"]  # the perf job waits for the capacity search
    admission.release("capacity")
    assert admission.take() == ["b"]
