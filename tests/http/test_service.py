"""The service over real HTTP (uvicorn on 127.0.0.1) with stand-in engines: endpoints, shapes, error codes."""

from __future__ import annotations

import datetime as dt
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from collections.abc import Callable

import httpx
import pytest

from evalsvc.core.config import EvalConfig, PerfConfig
from tests.http._live import Live
from tests.http.conftest import PERF_URL, eval_body, perf_body


def test_health(service: Live) -> None:
    r = service.client.get("/health")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["status"] == "ok" and body["service"] == "evalsvc"
    stamp = dt.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) < 60
    assert body["jobs"]["queued"] == 0 and body["jobs"]["running"] == 0


def test_openapi_describes_every_endpoint_and_body(service: Live) -> None:
    doc = service.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    expected = {"/health": {"get"}, "/openapi.json": {"get"}, "/api/v1/eval": {"post"}, "/api/v1/perf": {"post"},
                "/api/v1/jobs": {"get"}, "/api/v1/jobs/eval": {"post"}, "/api/v1/jobs/perf": {"post"},
                "/api/v1/capacity": {"post"}, "/api/v1/jobs/capacity": {"post"},
                "/api/v1/jobs/{job_id}": {"get", "delete"}, "/api/v1/jobs/{job_id}/result": {"get"},
                "/api/v1/jobs/{job_id}/cancel": {"post"}, "/api/v1/jobs/{job_id}/events": {"get"},
                "/api/v1/jobs/{job_id}/log": {"get"}, "/api/v1/jobs/{job_id}/report": {"get"},
                "/api/v1/compare": {"get"}, "/metrics": {"get"}}
    assert {p: set(ops) for p, ops in doc["paths"].items()} == expected
    schemas = doc["components"]["schemas"]
    for name, cls in (("PerfRequest", PerfConfig), ("EvalRequest", EvalConfig)):
        props = schemas[name]["properties"]
        assert set(props) == set(cls.__dataclass_fields__)
        assert schemas[name]["additionalProperties"] is False
    assert schemas["PerfRequest"]["required"] == ["model", "url"]
    assert schemas["EvalRequest"]["required"] == ["model", "api_url", "datasets"]
    assert schemas["PerfRequest"]["properties"]["number"]["anyOf"] == [
        {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, "minItems": 1},
        {"type": "null"}]  # unset: 1000, or a trace's length
    assert "gsm8k" in schemas["EvalRequest"]["properties"]["datasets"]["items"]["enum"]
    assert schemas["PerfRequest"]["properties"]["api"]["enum"] == ["openai", "dashscope", "anthropic", "gemini"]
    assert "Output tokens requested" in schemas["PerfRequest"]["properties"]["max_tokens"]["description"]
    assert "securitySchemes" not in doc["components"]


def test_unknown_endpoint_is_json_404_listing_the_endpoints(service: Live) -> None:
    r = service.client.get("/api/v2/nothing")
    assert r.status_code == 404
    body = r.json()
    assert body["status"] == "error" and "GET /api/v2/nothing" in body["message"]
    assert "POST /api/v1/eval" in body["endpoints"] and "POST /api/v1/perf" in body["endpoints"]
    assert "GET /health" in body["endpoints"] and "GET /api/v1/jobs/{job_id}/events" in body["endpoints"]


def test_wrong_method_is_json_405_with_allow(service: Live) -> None:
    r = service.client.get("/api/v1/perf")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json()["status"] == "error" and "POST" in r.json()["message"]
    assert service.client.delete("/health").status_code == 405


@pytest.mark.parametrize(("content", "field", "reason_part"), [
    (b"{not json", "body", "not valid JSON"),
    (b"", "body", "empty"),
    (b"[1, 2]", "body", "JSON object"),
    (b'"a string"', "body", "JSON object"),
    (b'{"model": "m", "url": "http://h/v1/chat/completions", "number": NaN}', "body", "not valid JSON"),
])
def test_malformed_bodies_are_400_naming_body(service: Live, content: bytes, field: str, reason_part: str) -> None:
    for path in ("/api/v1/perf", "/api/v1/eval", "/api/v1/jobs/perf", "/api/v1/jobs/eval"):
        r = service.client.post(path, content=content, headers={"content-type": "application/json"})
        assert r.status_code == 400, (path, r.text)
        body = r.json()
        assert body["status"] == "error"
        assert body["error"]["field"] == field and reason_part in body["error"]["reason"]


@pytest.mark.parametrize(("path", "body", "field", "reason_part"), [
    ("/api/v1/perf", perf_body(paralel=3), "paralel", "unknown field"),
    ("/api/v1/perf", perf_body(parallel="ten"), "parallel", "expected an integer"),
    ("/api/v1/perf", perf_body(parallel=0), "parallel", ">= 1"),
    ("/api/v1/perf", perf_body(number=[10, 20], parallel=[1, 2, 3]), "number", "sweep"),
    ("/api/v1/perf", perf_body(api="grpc"), "api", "must be one of"),
    ("/api/v1/perf", perf_body(url="ftp://host/x"), "url", "http(s) URL"),
    ("/api/v1/perf", {"url": PERF_URL}, "model", "required"),
    ("/api/v1/perf", perf_body(stream="yes"), "stream", "true or false"),
    ("/api/v1/eval", eval_body(datasets=[]), "datasets", "at least one"),
    ("/api/v1/eval", eval_body(limit=-1), "limit", ">= 1"),
    ("/api/v1/eval", eval_body(generation_config={"temprature": 0}), "generation_config.temprature", "unknown"),
    ("/api/v1/eval", {"model": "m", "datasets": ["gsm8k"]}, "api_url", "required"),
    ("/api/v1/eval", eval_body(eval_batch_size=True), "eval_batch_size", "integer"),
])
def test_invalid_fields_are_400_with_field_and_reason(service: Live, path: str, body: dict[str, Any], field: str,
                                                      reason_part: str) -> None:
    for target in (path, path.replace("/api/v1/", "/api/v1/jobs/")):
        r = service.client.post(target, json=body)
        assert r.status_code == 400, r.text
        got = r.json()
        assert got["status"] == "error"
        assert got["error"]["field"] == field
        assert reason_part in got["error"]["reason"]
        assert got["message"].startswith(field)
    assert service.client.get("/api/v1/jobs").json()["total"] == 0  # nothing was queued


def test_blocking_perf_answers_spec_shape(service: Live, tmp_path: Path) -> None:
    r = service.client.post("/api/v1/perf", json=perf_body(number=[10, 20], parallel=[1, 2]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success" and body["message"] == "Performance test completed"
    assert set(body["results"]) == {"parallel_1_number_10", "parallel_2_number_20"}
    assert body["results"]["parallel_2_number_20"]["metrics"]["requests_total"] == 20
    assert "percentiles" in body["results"]["parallel_1_number_10"]
    out = Path(body["output_dir"])
    assert out.parent == (tmp_path / "outputs").resolve()  # no work_dir given: straight under the root
    assert (out / "summary.json").is_file() and (out / "job.json").is_file()
    job = service.client.get(f"/api/v1/jobs/{body['job_id']}").json()["job"]
    assert job["state"] == "completed" and job["output_dir"] == body["output_dir"]


def test_blocking_eval_answers_spec_shape(service: Live) -> None:
    r = service.client.post("/api/v1/eval", json=eval_body(datasets=["gsm8k", "iquiz"], limit=4))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success" and body["message"] == "Evaluation completed"
    assert set(body["result"]) == {"gsm8k", "iquiz"}
    assert body["result"]["gsm8k"]["requested"] == 4 and body["result"]["gsm8k"]["score"] == 0.8
    assert Path(body["output_dir"]).is_dir()


def test_bodies_must_be_declared_json(service: Live) -> None:
    # A web page may POST text/plain or a form cross-site without a CORS preflight: such bodies are refused
    # (curl -d sends application/x-www-form-urlencoded unless told otherwise: the answer says what to add).
    body = b'{"model": "fake", "url": "' + PERF_URL.encode() + b'", "number": 5, "dataset": "random"}'
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x",
                         None):
        headers = {"content-type": content_type} if content_type else {}
        for path in ("/api/v1/perf", "/api/v1/jobs/perf"):
            r = httpx.post(service.base_url + path, content=body, headers=headers, timeout=60, trust_env=False)
            assert r.status_code == 415, (content_type, r.text)
            assert r.json()["error"]["type"] == "UnsupportedMediaType"
            assert "application/json" in r.json()["message"]
    assert service.client.get("/api/v1/jobs").json()["total"] == 0  # nothing was submitted
    ok = httpx.post(service.base_url + "/api/v1/perf", content=body, timeout=60, trust_env=False,
                    headers={"content-type": "application/json; charset=utf-8"})
    assert ok.status_code == 200 and ok.json()["status"] == "success"


@pytest.mark.parametrize(("model", "status", "error_type"), [
    ("fake-config", 400, "ConfigError"),
    ("fake-endpoint", 502, "EndpointUnreachable"),
    ("fake-boom", 500, "RuntimeError"),
    ("fake-crash", 500, "WorkerDied"),
])
def test_engine_errors_map_to_status_codes(service: Live, model: str, status: int, error_type: str) -> None:
    r = service.client.post("/api/v1/eval", json=eval_body(model=model))
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "error" and body["state"] == "failed"
    assert body["error"]["type"] == error_type
    assert "traceback" not in body["error"]
    if model == "fake-config":
        assert body["error"]["field"] == "datasets" and "unknown benchmark" in body["error"]["reason"]
    # the job API tells the same story
    result = service.client.get(f"/api/v1/jobs/{body['job_id']}/result")
    assert result.status_code == status and result.json()["error"]["type"] == error_type


def test_incomplete_evaluation_is_a_completed_job_that_says_so(service: Live) -> None:
    r = service.client.post("/api/v1/eval", json=eval_body(model="fake-incomplete"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success" and body["message"] == "Evaluation completed"
    assert body["incomplete"] is True
    assert body["result"]["gsm8k"]["errored"] == 2 and body["result"]["gsm8k"]["incomplete"] is True
    job = service.client.get(f"/api/v1/jobs/{body['job_id']}").json()["job"]
    assert job["state"] == "completed"


def test_time_limit_is_504_with_the_partial_result(service: Live) -> None:
    r = service.client.post("/api/v1/eval", json=eval_body(model="fake-timeout"))
    assert r.status_code == 504
    body = r.json()
    assert body["error"]["type"] == "Timeout" and "time limit" in body["message"]
    assert body["result"]["gsm8k"]["incomplete"] is True and body["output_dir"]


def test_blocking_request_cancelled_through_the_job_api_is_409(service: Live) -> None:
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(service.client.post, "/api/v1/eval", json=eval_body(model="fake-slow"))
        deadline = time.monotonic() + 30
        while not (running := service.client.get("/api/v1/jobs", params={"state": "running"}).json()["jobs"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        service.client.post(f"/api/v1/jobs/{running[0]['id']}/cancel")
        r = pending.result(timeout=60)
    assert r.status_code == 409
    assert r.json()["message"] == "Evaluation was cancelled" and r.json()["state"] == "cancelled"


def test_debug_mode_keeps_tracebacks(service_factory: Callable[..., Live]) -> None:
    live = service_factory(debug=True)
    r = live.client.post("/api/v1/perf", json=perf_body(model="fake-boom"))
    assert r.status_code == 500
    assert "RuntimeError: boom" in r.json()["error"]["traceback"]


def _break_health(live: Live) -> None:
    assert live.app is not None

    def broken() -> dict[str, Any]:
        raise RuntimeError("stats exploded")

    live.app.state.service.runner.stats = broken


def test_internal_error_is_json_500_without_traceback(service: Live) -> None:
    _break_health(service)
    r = service.client.get("/health")
    assert r.status_code == 500
    body = r.json()
    assert body == {"status": "error", "message": "internal server error", "error": {"type": "InternalError"}}
    assert service.client.get("/openapi.json").status_code == 200  # the process lives on


def test_internal_error_in_debug_mode_has_traceback(service_factory: Callable[..., Live]) -> None:
    live = service_factory(debug=True)
    _break_health(live)
    body = live.client.get("/health").json()
    assert "stats exploded" in body["message"] and "RuntimeError: stats exploded" in body["traceback"]


def test_body_too_large_is_413(service: Live) -> None:
    big = perf_body(extra_body={"pad": "x" * (1 << 20)})
    r = service.client.post("/api/v1/perf", json=big)
    assert r.status_code == 413 and r.json()["status"] == "error"


def test_api_key_is_never_stored_logged_or_returned(service: Live, tmp_path: Path) -> None:
    key = "sk-live-0123456789abcdef"
    r = service.client.post("/api/v1/perf", json=perf_body(api_key=key, headers={"Authorization": f"Bearer {key}"}))
    assert r.status_code == 200
    job_id = r.json()["job_id"]
    assert key not in r.text
    job = service.client.get(f"/api/v1/jobs/{job_id}").json()["job"]
    assert job["config"]["api_key"] == "***" and job["config"]["headers"] == {"Authorization": "***"}
    assert key not in service.client.get("/api/v1/jobs").text
    assert key not in service.client.get(f"/api/v1/jobs/{job_id}/result").text
    leak = service.client.post("/api/v1/perf", json=perf_body(model="fake-leak", api_key=key))
    assert leak.status_code == 500 and "bad key ***" in leak.json()["message"] and key not in leak.text
    files = [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()]
    assert any(p.name.startswith("jobs.sqlite3") for p in files)
    for path in files:
        assert key.encode() not in path.read_bytes(), path


def test_token_guards_every_api_route(service_factory: Callable[..., Live]) -> None:
    live = service_factory(token="s3cret-token")
    with httpx.Client(base_url=live.base_url, trust_env=False, timeout=60) as anon, \
            httpx.Client(base_url=live.base_url, trust_env=False, timeout=60,
                         headers={"Authorization": "Bearer nope"}) as wrong:
        routes = [("POST", "/api/v1/perf"), ("POST", "/api/v1/eval"), ("POST", "/api/v1/jobs/perf"),
                  ("POST", "/api/v1/jobs/eval"), ("GET", "/api/v1/jobs"), ("GET", "/api/v1/jobs/x"),
                  ("GET", "/api/v1/jobs/x/result"), ("POST", "/api/v1/jobs/x/cancel"), ("GET", "/api/v1/jobs/x/events"),
                  ("GET", "/api/v2/unknown")]
        for method, path in routes:
            for client, what in ((anon, "missing"), (wrong, "invalid")):
                r = client.request(method, path, json=perf_body())
                assert r.status_code == 401, (method, path)
                assert r.headers["www-authenticate"] == "Bearer"
                assert r.json()["message"].startswith(what)
        assert anon.get("/health").status_code == 200
        doc = anon.get("/openapi.json").json()
        assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
        assert doc["paths"]["/api/v1/perf"]["post"]["security"] == [{"bearerAuth": []}]
    ok = live.client.post("/api/v1/perf", json=perf_body())  # live.client sends the right token
    assert ok.status_code == 200 and ok.json()["status"] == "success"
    assert "s3cret-token" not in ok.text


def test_token_from_environment(service_factory: Callable[..., Live], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALSVC_TOKEN", "from-env")
    live = service_factory(token=None)
    assert httpx.get(live.base_url + "/api/v1/jobs", trust_env=False).status_code == 401
    assert httpx.get(live.base_url + "/api/v1/jobs", trust_env=False,
                     headers={"Authorization": "Bearer from-env"}).status_code == 200


@pytest.mark.parametrize(("work_dir", "reason_part"), [
    ("../escape", "outside the service's outputs root"),
    ("a/../../escape", "outside the service's outputs root"),
    ("/tmp/abs", "relative to the service's outputs root"),
    ("~/home", "relative to the service's outputs root"),
    (".evalsvc/x", "private"),
    ("bad\u0000name", "NUL"),
])
def test_work_dir_is_confined_to_the_outputs_root(service: Live, work_dir: str, reason_part: str) -> None:
    for path, body in (("/api/v1/perf", perf_body(work_dir=work_dir)),
                       ("/api/v1/jobs/eval", eval_body(work_dir=work_dir))):
        r = service.client.post(path, json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == "work_dir" and reason_part in r.json()["error"]["reason"]


def test_work_dir_symlink_escape_is_refused(service: Live, tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    root.mkdir(exist_ok=True)
    os.symlink(tmp_path, root / "link")
    r = service.client.post("/api/v1/perf", json=perf_body(work_dir="link/out"))
    assert r.status_code == 400 and r.json()["error"]["field"] == "work_dir"


def test_relative_work_dir_lands_under_the_root(service: Live, tmp_path: Path) -> None:
    r = service.client.post("/api/v1/perf", json=perf_body(work_dir="team-a/nightly"))
    assert r.status_code == 200
    out = Path(r.json()["output_dir"])
    assert out.parent == (tmp_path / "outputs" / "team-a" / "nightly").resolve()


def test_read_paths_must_be_inside_allowed_roots(service_factory: Callable[..., Live], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    prompts = data / "prompts.txt"
    prompts.write_text("hello\n")
    live = service_factory(data_roots=[str(data)])
    refused = live.client.post("/api/v1/perf", json=perf_body(dataset="line_by_line", dataset_path="/etc/passwd"))
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "dataset_path"
    r = live.client.post("/api/v1/eval", json=eval_body(dataset_args={"gsm8k": {"local_path": "/etc"}}))
    assert r.status_code == 400 and r.json()["error"]["field"] == "dataset_args.gsm8k.local_path"
    r = live.client.post("/api/v1/eval", json=eval_body(use_cache=str(data)))
    assert r.status_code == 400 and r.json()["error"]["field"] == "use_cache"
    ok = live.client.post("/api/v1/jobs/perf", json=perf_body(dataset="line_by_line", dataset_path=str(prompts)))
    assert ok.status_code == 202
    assert ok.json()["job"]["config"]["dataset_path"] == str(prompts.resolve())


def test_queue_full_is_429(service_factory: Callable[..., Live]) -> None:
    live = service_factory(max_queued=1)
    running = live.client.post("/api/v1/jobs/perf", json=perf_body(model="fake-slow")).json()["job_id"]
    live.wait_state(running, ("running",))
    queued = live.client.post("/api/v1/jobs/perf", json=perf_body(model="fake-slow"))
    assert queued.status_code == 202 and queued.json()["job"]["state"] == "queued"
    for path, body in (("/api/v1/jobs/perf", perf_body()), ("/api/v1/perf", perf_body()),
                       ("/api/v1/jobs/eval", eval_body(model="fake-slow"))):
        r = live.client.post(path, json=body)
        if path == "/api/v1/jobs/eval":
            # an eval job starts at once on its own slot: it does not wait in the full queue
            assert r.status_code == 202 and r.json()["job"]["state"] == "running"
            continue
        assert r.status_code == 429, r.text
        assert r.headers["retry-after"] == "5"
        assert "queue is full" in r.json()["message"]
    assert live.client.get("/health").json()["jobs"]["queued"] == 1
    for job in live.client.get("/api/v1/jobs").json()["jobs"]:
        if job["state"] in ("queued", "running"):
            live.client.post(f"/api/v1/jobs/{job['id']}/cancel")


def test_url_credentials_never_shown_stored_or_logged(service: Live, tmp_path: Path) -> None:
    secrets = ("PASSW0RDX", "QKEYQKEY", "XBODYSECRETX")
    base = "http://user:PASSW0RDX@127.0.0.1:9/v1"
    jobs = [
        ("/api/v1/jobs/perf", perf_body(url=f"{base}/chat/completions?api_key=QKEYQKEY",
                                        extra_body={"user_token": "XBODYSECRETX"})),
        ("/api/v1/jobs/perf", perf_body(model="fake-leak", url=f"{base}/chat/completions?api_key=QKEYQKEY",
                                        extra_body={"user_token": "XBODYSECRETX"})),
        ("/api/v1/jobs/eval", eval_body(api_url=f"{base}?api_key=QKEYQKEY")),
    ]
    seen: list[str] = []
    for path, body in jobs:
        r = service.client.post(path, json=body)
        seen.append(r.text)
        if path.endswith("/eval"):  # EvalConfig refuses credentials in api_url, without echoing them
            assert r.status_code == 400 and r.json()["error"]["field"] == "api_url", r.text
            continue
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        job = service.wait_state(job_id, ("completed", "failed"))
        assert job["state"] == ("failed" if body["model"] == "fake-leak" else "completed"), job
        seen += [service.client.get(f"/api/v1/jobs/{job_id}").text,
                 service.client.get(f"/api/v1/jobs/{job_id}/result").text]
        if body["model"] == "fake-leak":
            leaked = service.client.get(f"/api/v1/jobs/{job_id}/result").json()  # the run that quoted its URL
            assert "http://***@127.0.0.1:9/v1/chat/completions?api_key=***" in leaked["message"], leaked
    seen.append(service.client.get("/api/v1/jobs").text)
    files = [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()]
    assert any(p.name == "jobs.sqlite3-wal" for p in files) and any(p.suffix == ".log" for p in files)
    seen += [p.read_bytes().decode(errors="replace") for p in files]
    for text in seen:
        for secret in secrets:
            assert secret not in text, text[:2000]
