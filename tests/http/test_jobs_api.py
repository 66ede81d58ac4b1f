"""The job API over real HTTP with stand-in engines: submit, status, progress, result, list, cancel, SSE."""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from collections.abc import Callable

import httpx

from tests.http._live import Live
from tests.http.conftest import eval_body, perf_body


def _sse_events(live: Live, job_id: str, timeout: float = 60) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    with live.client.stream("GET", f"/api/v1/jobs/{job_id}/events", timeout=timeout) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event or "", json.loads(line[6:])))
    return events


def test_submit_answers_202_at_once_then_status_progress_and_result(service: Live) -> None:
    t0 = time.monotonic()
    r = service.client.post("/api/v1/jobs/perf", json=perf_body(number=40, duration=3.0, api_key="sk-abcdef123"))
    assert time.monotonic() - t0 < 2.5  # at once, not after the 3 s run
    assert r.status_code == 202
    body = r.json()
    job_id = body["job_id"]
    assert r.headers["location"] == f"/api/v1/jobs/{job_id}"
    assert body["status"] == "accepted" and body["job"]["state"] in ("queued", "running")
    assert body["links"]["events"] == f"/api/v1/jobs/{job_id}/events"
    assert body["job"]["config"]["api_key"] == "***"

    job = service.wait_progress(job_id)
    assert job["state"] == "running" and job["started_at"]
    progress = job["progress"]["parallel_2_number_40"]
    assert progress["total"] == 40 and 0 < progress["done"] <= 40
    early = service.client.get(f"/api/v1/jobs/{job_id}/result")
    assert early.status_code == 409 and early.json()["state"] == "running"

    done = service.wait_state(job_id, ("completed",))
    assert done["finished_at"] >= done["started_at"] and done["has_result"] is True
    result = service.client.get(f"/api/v1/jobs/{job_id}/result")
    assert result.status_code == 200
    assert result.json()["message"] == "Performance test completed"
    assert result.json()["results"]["parallel_2_number_40"]["metrics"]["requests_total"] == 40


def test_unknown_job_is_404(service: Live) -> None:
    for method, path in (("GET", "/api/v1/jobs/nope"), ("GET", "/api/v1/jobs/nope/result"),
                         ("POST", "/api/v1/jobs/nope/cancel"), ("GET", "/api/v1/jobs/nope/events")):
        r = service.client.request(method, path)
        assert r.status_code == 404, path
        assert r.json()["error"] == {"type": "JobNotFound", "job_id": "nope"}


def test_list_filters_and_pages(service: Live) -> None:
    ids = [service.client.post("/api/v1/perf", json=perf_body()).json()["job_id"] for _ in range(2)]
    ids.append(service.client.post("/api/v1/eval", json=eval_body()).json()["job_id"])
    failed = service.client.post("/api/v1/eval", json=eval_body(model="fake-boom")).json()["job_id"]
    listing = service.client.get("/api/v1/jobs").json()
    assert listing["total"] == 4
    assert [j["id"] for j in listing["jobs"]] == [failed, *reversed(ids)]  # newest first
    assert all("result" not in j for j in listing["jobs"])
    assert service.client.get("/api/v1/jobs", params={"kind": "perf"}).json()["total"] == 2
    only_failed = service.client.get("/api/v1/jobs", params={"state": "failed"}).json()
    assert [j["id"] for j in only_failed["jobs"]] == [failed]
    page = service.client.get("/api/v1/jobs", params={"limit": 2, "offset": 1}).json()
    assert [j["id"] for j in page["jobs"]] == [ids[2], ids[1]] and page["total"] == 4
    for params, field in (({"state": "done"}, "state"), ({"limit": "x"}, "limit"), ({"limit": 0}, "limit"),
                          ({"kind": "train"}, "kind"), ({"sort": "asc"}, "sort")):
        r = service.client.get("/api/v1/jobs", params=params)
        assert r.status_code == 400 and r.json()["error"]["field"] == field


def test_cancel_running_job_keeps_partial_result(service: Live) -> None:
    job_id = service.client.post("/api/v1/jobs/perf", json=perf_body(model="fake-slow")).json()["job_id"]
    service.wait_progress(job_id)
    r = service.client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert r.status_code == 202 and r.json()["job"]["state"] == "running"
    job = service.wait_state(job_id, ("cancelled",), timeout=30)
    assert job["error"]["type"] == "Cancelled" and job["has_result"] is True
    result = service.client.get(f"/api/v1/jobs/{job_id}/result")
    assert result.status_code == 409
    assert result.json()["message"] == "Performance test was cancelled" and result.json()["output_dir"]
    again = service.client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["state"] == "cancelled"


def test_cancel_queued_job_is_immediate(service: Live) -> None:
    first = service.client.post("/api/v1/jobs/perf", json=perf_body(model="fake-slow")).json()["job_id"]
    second = service.client.post("/api/v1/jobs/perf", json=perf_body()).json()
    assert second["job"]["state"] == "queued"  # perf jobs run one at a time
    r = service.client.post(f"/api/v1/jobs/{second['job_id']}/cancel")
    assert r.status_code == 200 and r.json()["job"]["state"] == "cancelled"
    assert r.json()["job"]["started_at"] is None
    service.client.post(f"/api/v1/jobs/{first}/cancel")
    service.wait_state(first, ("cancelled",), timeout=30)


def test_perf_jobs_run_one_at_a_time_evals_in_parallel(service_factory: Callable[..., Live]) -> None:
    live = service_factory(eval_concurrency=2)
    perf = [live.client.post("/api/v1/jobs/perf", json=perf_body(model="fake-slow")).json()["job"] for _ in range(2)]
    evals = [live.client.post("/api/v1/jobs/eval", json=eval_body(model="fake-slow")).json()["job"]
             for _ in range(3)]
    assert [j["state"] for j in perf] == ["running", "queued"]
    assert [j["state"] for j in evals] == ["running", "running", "queued"]
    health = live.client.get("/health").json()["jobs"]
    assert health["running_by_kind"] == {"eval": 2, "perf": 1, "capacity": 0} and health["queued"] == 2
    live.client.post(f"/api/v1/jobs/{perf[0]['id']}/cancel")
    live.wait_state(perf[1]["id"], ("running",), timeout=30)  # the queued one starts when the slot frees
    for job in (perf[1], *evals):
        live.client.post(f"/api/v1/jobs/{job['id']}/cancel")
    for job in (*perf, *evals):
        live.wait_state(job["id"], ("cancelled",), timeout=30)


def test_stubborn_run_is_terminated_after_the_grace_period(service_factory: Callable[..., Live]) -> None:
    live = service_factory(cancel_grace_s=0.5)
    job_id = live.client.post("/api/v1/jobs/eval", json=eval_body(model="fake-stubborn")).json()["job_id"]
    live.wait_state(job_id, ("running",))
    time.sleep(1.0)  # let it install its SIGINT-ignoring handler
    live.client.post(f"/api/v1/jobs/{job_id}/cancel")
    job = live.wait_state(job_id, ("cancelled",), timeout=30)
    assert job["error"]["type"] == "Cancelled"


def test_events_stream_state_progress_end(service: Live) -> None:
    job_id = service.client.post("/api/v1/jobs/eval",
                                 json=eval_body(datasets=["gsm8k", "iquiz"], limit=5)).json()["job_id"]
    events = _sse_events(service, job_id)
    kinds = [e for e, _ in events]
    assert kinds[0] == "state" and kinds[-1] == "end"
    assert events[-1][1]["state"] == "completed" and events[-1][1]["id"] == job_id
    progress = [d for e, d in events if e == "progress"]
    assert {p["dataset"] for p in progress} == {"gsm8k", "iquiz"}
    assert any(p["done"] == p["total"] == 5 for p in progress)
    assert any(e == "log" and d["message"] == "gsm8k done" for e, d in events)
    # a finished job: its state, then the end, at once
    again = _sse_events(service, job_id, timeout=10)
    assert [e for e, _ in again] == ["state", "end"]


def test_blocking_request_whose_client_disconnects_cancels_its_job(service: Live) -> None:
    body = json.dumps(perf_body(model="fake-slow")).encode()
    host, port = service.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /api/v1/perf HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        deadline = time.monotonic() + 30
        while not service.client.get("/api/v1/jobs", params={"state": "running"}).json()["jobs"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    job = service.client.get("/api/v1/jobs").json()["jobs"][0]
    done = service.wait_state(job["id"], ("cancelled",), timeout=30)
    assert done["error"]["type"] == "Cancelled"


def test_many_concurrent_submissions_all_finish(service_factory: Callable[..., Live]) -> None:
    live = service_factory(max_queued=64, eval_concurrency=2)
    with httpx.Client(base_url=live.base_url, trust_env=False, timeout=60) as client:
        ids = [client.post("/api/v1/jobs/eval", json=eval_body(limit=2)).json()["job_id"] for _ in range(8)]
    for job_id in ids:
        assert live.wait_state(job_id, ("completed",), timeout=90)["state"] == "completed"
    assert live.client.get("/health").json()["jobs"] == {**live.client.get("/health").json()["jobs"],
                                                         "queued": 0, "running": 0}
