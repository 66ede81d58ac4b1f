"""The service with the real perf engine against an endpoint that refuses it: the blocking endpoint answers
502 with the server's words, the job API's job ends `failed` with the same error, and no key leaks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests._gate import start_gate
from tests.http._live import Live

KEY = "sk-good-key-123456"
WRONG = "sk-wrong-key-987654"


def body(url: str, **fields: Any) -> dict[str, Any]:
    return {"model": "m", "url": url, "dataset": "random", "prompt_tokens": 8, "max_tokens": 32, "number": 5,
            "parallel": 2, **fields}


def test_blocking_perf_on_a_base_url_is_502_saying_which_path(service_factory: Callable[..., Live]) -> None:
    live = service_factory(targets={})
    with start_gate(key=KEY) as gate:
        r = live.client.post("/api/v1/perf", json=body(gate.base_url, api_key=KEY))
        assert gate.total == 1
    assert r.status_code == 502, r.text
    data = r.json()
    assert data["status"] == "error" and data["state"] == "failed"
    assert data["error"]["type"] == "EndpointStatusError" and data["error"]["category"] == "endpoint"
    assert data["error"]["status"] == 404
    assert f"use the complete endpoint URL, e.g. {gate.chat_url}" in data["message"]
    assert "HTTP 404: 404: Not Found" in data["error"]["message"]
    assert "results" not in data


def test_job_with_a_refused_key_ends_failed_with_the_401(service_factory: Callable[..., Live]) -> None:
    live = service_factory(targets={})
    with start_gate(key=KEY) as gate:
        job_id = live.client.post("/api/v1/jobs/perf", json=body(gate.chat_url, api_key=WRONG)).json()["job_id"]
        job = live.wait_state(job_id, ("completed", "failed", "cancelled", "interrupted"), timeout=60)
        assert gate.total == 1
    assert job["state"] == "failed"
    assert job["error"]["status"] == 401 and "the API key was refused" in job["error"]["message"]
    result = live.client.get(f"/api/v1/jobs/{job_id}/result")
    assert result.status_code == 502 and "Incorrect API key provided: ***." in result.json()["message"]
    listing = live.client.get("/api/v1/jobs").text
    for text in (result.text, listing, live.client.get(f"/api/v1/jobs/{job_id}").text):
        assert WRONG not in text


def test_job_without_preflight_where_nothing_succeeded_is_failed_not_completed(
        service_factory: Callable[..., Live]) -> None:
    live = service_factory(targets={})
    with start_gate(key=KEY) as gate:
        r = live.client.post("/api/v1/perf", json=body(gate.chat_url, preflight=False))
        assert gate.total == 5
    assert r.status_code >= 400, r.text
    data = r.json()
    assert data["state"] == "failed" and "no request succeeded (http_401: 5)" in data["message"]
    assert data["results"]["parallel_2_number_5"]["metrics"]["requests_succeeded"] == 0  # the outputs are kept
