"""Hardening of the service against hostile clients and web pages (issue 9)."""

from __future__ import annotations

from collections.abc import Callable

import socket
import time
from pathlib import Path

import httpx
import pytest

from evalsvc.core.config import EvalConfig
from evalsvc.core.errors import ConfigError
from evalsvc.core.jobs._limits import ServiceLimits
from evalsvc.http import create_app
from evalsvc.http._app import read_token_file
from tests.http._live import Live, service_process
from tests.http.conftest import eval_body, perf_body


def test_cross_site_requests_are_refused_unless_the_origin_is_allowed(service_factory: Callable[..., Live],
                                                                     tmp_path: Path) -> None:
    service = service_factory()
    own = service.base_url  # http://127.0.0.1:PORT, what a page served by the service itself would send
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1", "https://evil.example:443"):
        for method, path, kwargs in (("POST", "/api/v1/jobs/perf", {"json": perf_body()}),
                                     ("POST", "/api/v1/perf", {"json": perf_body()}),
                                     ("GET", "/api/v1/jobs", {})):
            r = service.client.request(method, path, headers={"Origin": origin}, **kwargs)
            assert r.status_code == 403, (origin, path, r.text)
            assert r.json()["error"]["type"] == "OriginNotAllowed" and "--allow-origin" in r.json()["message"]
    assert service.client.get("/api/v1/jobs").json()["total"] == 0
    assert service.client.get("/health", headers={"Origin": "http://evil.example"}).status_code == 200
    r = service.client.post("/api/v1/jobs/perf", json=perf_body(), headers={"Origin": own})
    assert r.status_code == 202, r.text
    allowed = service_factory(allow_origins=["https://UI.example.org/"], outputs=tmp_path / "other")
    r = allowed.client.post("/api/v1/jobs/perf", json=perf_body(), headers={"Origin": "https://ui.example.org"})
    assert r.status_code == 202, r.text
    assert allowed.client.post("/api/v1/jobs/perf", json=perf_body(),
                               headers={"Origin": "https://other.example.org"}).status_code == 403


def test_allow_origin_values_are_checked(tmp_path: Path) -> None:
    for bad in ("ui.example.org", "ftp://x", "https://x/path"):
        with pytest.raises(ConfigError) as info:
            create_app(outputs=tmp_path, allow_origins=[bad])
        assert info.value.field == "allow_origin"


def _half_head(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
    return sock


def _closed_by_server(sock: socket.socket, within_s: float) -> bool:
    sock.settimeout(within_s)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_connections_that_never_finish_their_request_head_are_closed(tmp_path: Path) -> None:
    with service_process(tmp_path / "out", "--header-timeout", "1") as live:
        slow = [_half_head(live.base_url) for _ in range(30)]
        try:
            started = time.monotonic()
            assert live.client.get("/health").status_code == 200  # still served meanwhile
            assert all(_closed_by_server(sock, within_s=20) for sock in slow)
            assert time.monotonic() - started >= 0.5  # closed by the deadline, not at once
            # a complete request in time is unaffected, and so is a keep-alive connection between requests
            assert live.client.get("/health").status_code == 200
            time.sleep(1.5)
            assert live.client.get("/health").status_code == 200
        finally:
            for sock in slow:
                sock.close()
        assert "no complete request head within 1s" in (live.stderr_path.read_text() if live.stderr_path else "")


def test_connections_beyond_the_limit_are_closed(tmp_path: Path) -> None:
    with service_process(tmp_path / "out", "--max-connections", "5", "--header-timeout", "60") as live:
        live.client.close()  # its keep-alive connection would count
        held: list[socket.socket] = []
        try:
            for _ in range(5):
                held.append(_half_head(live.base_url))
            extra = _half_head(live.base_url)
            held.append(extra)
            assert _closed_by_server(extra, within_s=10)
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 10
        while True:  # the server notices the closed sockets
            try:
                if httpx.get(live.base_url + "/health", timeout=5, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "/health did not answer after the held connections closed"
            time.sleep(0.1)


@pytest.mark.parametrize(("fields", "field", "limit"), [
    ({"number": 10**12}, "number", "max_number"),
    ({"number": [10, 10**6]}, "number", "max_number"),
    ({"parallel": 10**6}, "parallel", "max_parallel"),
    ({"prompt_tokens": 10**7}, "prompt_tokens", "max_prompt_tokens"),
    ({"prompt_tokens_min": 1, "prompt_tokens_max": 10**7}, "prompt_tokens_max", "max_prompt_tokens"),
    ({"prefix_tokens": 10**7, "prompt_tokens": 10}, "prefix_tokens", "max_prompt_tokens"),
    ({"max_tokens_stdev": 5, "max_tokens_max": 10**7}, "max_tokens_max", "max_tokens"),
    ({"max_tokens": 10**7}, "max_tokens", "max_tokens"),
    ({"warmup": 10**9}, "warmup", "max_warmup"),
    ({"duration": 10**6}, "duration", "max_job_seconds"),
    ({"parallel": list(range(1, 101))}, "number", "max_runs"),
    ({"model": "m" * 100_000}, "model", "max_text"),
    ({"headers": {"X-Big": "v" * 5000}}, "headers.X-Big", "max_text"),
    ({"extra_body": {"pad": "x" * 70_000}}, "extra_body", "max_body_json"),
])
def test_perf_requests_beyond_the_operator_limits_get_400_naming_the_limit(
        service: Live, fields: dict[str, object], field: str, limit: str) -> None:
    for path in ("/api/v1/perf", "/api/v1/jobs/perf"):
        r = service.client.post(path, json=perf_body(**fields))
        assert r.status_code == 400, r.text[:300]
        error = r.json()["error"]
        assert error["field"] == field
        assert limit in r.json()["message"] and "--" + limit.replace("_", "-") in r.json()["message"]
    assert service.client.get("/api/v1/jobs").json()["total"] == 0


def test_eval_requests_are_bounded_too_and_get_the_wall_time_as_their_timeout(service_factory: Callable[..., Live]
                                                                              ) -> None:
    service = service_factory(limits=ServiceLimits(max_parallel=8, max_job_seconds=600))
    r = service.client.post("/api/v1/jobs/eval", json=eval_body(eval_batch_size=9))
    assert r.status_code == 400 and r.json()["error"]["field"] == "eval_batch_size"
    r = service.client.post("/api/v1/jobs/eval", json=eval_body(timeout=601))
    assert r.status_code == 400 and "--max-job-seconds" in r.json()["message"]
    r = service.client.post("/api/v1/jobs/eval", json=eval_body(generation_config={"max_tokens": 10**7}))
    assert r.status_code == 400 and r.json()["error"]["field"] == "generation_config.max_tokens"
    r = service.client.post("/api/v1/jobs/eval", json=eval_body())
    assert r.status_code == 202
    assert r.json()["job"]["config"]["timeout"] == 600  # no timeout asked: the limit applies


def test_a_job_running_past_the_wall_time_limit_is_stopped_as_a_timeout(service_factory: Callable[..., Live]
                                                                         ) -> None:
    service = service_factory(limits=ServiceLimits(max_job_seconds=2))
    job_id = service.client.post("/api/v1/jobs/perf", json=perf_body(model="fake-slow")).json()["job_id"]
    job = service.wait_state(job_id, ("completed", "failed", "cancelled"), timeout=60)
    assert job["state"] == "failed"
    assert job["error"]["category"] == "timeout" and "max_job_seconds" in job["error"]["message"]
    r = service.client.get(f"/api/v1/jobs/{job_id}/result")
    assert r.status_code == 504
    # the perf slot is free again
    ok = service.client.post("/api/v1/perf", json=perf_body())
    assert ok.status_code == 200, ok.text


def test_limits_must_be_positive() -> None:
    with pytest.raises(ConfigError) as info:
        ServiceLimits(max_number=0)
    assert info.value.field == "max_number"


@pytest.mark.parametrize(("fields", "field"), [
    ({"limit": 1e-7}, "limit"),
    ({"dataset_args": {"gsm8k": {"extra_params": {"nope": 1}}}}, "dataset_args.gsm8k.extra_params.nope"),
    ({"dataset_args": {"gsm8k": {"filters": {"nope": 1}}}}, "dataset_args.gsm8k.filters"),
    ({"dataset_args": {"gsm8k": {"filters": ["regex"]}}}, "dataset_args.gsm8k.filters"),
    ({"dataset_args": {"gsm8k": {"metric_list": ["nope"]}}}, "dataset_args.gsm8k.metric_list"),
    ({"dataset_args": {"gsm8k": {"metric_list": ["acc"], "primary_metric": "nope"}}},
     "dataset_args.gsm8k.primary_metric"),
    ({"dataset_args": {"gsm8k": {"aggregation": "nope"}}}, "dataset_args.gsm8k.aggregation"),
    ({"dataset_args": {"gsm8k": {"dataset_id": "file:/etc"}}}, "dataset_args.gsm8k.dataset_id"),
    ({"dataset_args": {"gsm8k": {"dataset_id": "file:///etc"}}}, "dataset_args.gsm8k.dataset_id"),
    ({"dataset_args": {"gsm8k": {"hf_dataset_id": "https://huggingface.co/datasets/x/y"}}},
     "dataset_args.gsm8k.hf_dataset_id"),
])
def test_eval_input_evalscope_would_fail_on_is_refused_up_front(service: Live, fields: dict[str, object],
                                                                 field: str) -> None:
    for path in ("/api/v1/eval", "/api/v1/jobs/eval"):
        r = service.client.post(path, json=eval_body(**fields))
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == field
    assert service.client.get("/api/v1/jobs").json()["total"] == 0
    ok = service.client.post("/api/v1/jobs/eval", json=eval_body(
        limit=0.01, dataset_args={"gsm8k": {"metric_list": ["acc"], "filters": {"remove_until": "####"}}}))
    assert ok.status_code == 202, ok.text


def test_the_library_refuses_a_fraction_that_selects_nothing_before_any_work() -> None:
    with pytest.raises(ConfigError) as info:  # the config itself refuses it (an EvalConfig rule)
        EvalConfig(model="m", api_url="http://127.0.0.1:9/v1", datasets=["gsm8k"], limit=1e-7)
    assert info.value.field == "limit" and "gsm8k" in info.value.reason


def test_link_local_targets_are_refused_and_targets_can_be_restricted(service_factory: Callable[..., Live],
                                                                     tmp_path: Path) -> None:
    service = service_factory()
    for url in ("http://169.254.169.254/latest/meta-data", "http://[fe80::1]:8000/v1/chat/completions",
                "http://[::ffff:169.254.169.254]/v1/chat/completions"):
        r = service.client.post("/api/v1/jobs/perf", json=perf_body(url=url))
        assert r.status_code == 400 and r.json()["error"]["field"] == "url", r.text
        assert "link-local" in r.json()["message"] and "--allow-target" in r.json()["message"]
    r = service.client.post("/api/v1/jobs/eval", json=eval_body(api_url="http://169.254.169.254/v1"))
    assert r.status_code == 400 and r.json()["error"]["field"] == "api_url"
    assert service.client.post("/api/v1/jobs/perf", json=perf_body()).status_code == 202  # loopback is fine

    narrow = service_factory(outputs=tmp_path / "narrow", allow_targets=["127.0.0.0/8", "169.254.169.254"])
    assert narrow.client.post("/api/v1/jobs/perf", json=perf_body()).status_code == 202
    assert narrow.client.post("/api/v1/jobs/perf", json=perf_body(
        url="http://169.254.169.254/v1/chat/completions")).status_code == 202  # explicitly allowed
    for url in ("http://10.1.2.3:8000/v1/chat/completions", "http://no-such-host.invalid/v1/chat/completions"):
        r = narrow.client.post("/api/v1/jobs/perf", json=perf_body(url=url))
        assert r.status_code == 400 and "--allow-target" in r.json()["message"], r.text


def test_allow_target_values_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        create_app(outputs=tmp_path, allow_targets=["10.0.0.0/99"])
    assert info.value.field == "allow_target"


def test_the_token_can_come_from_a_file_that_ps_does_not_show(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-from-file\n")
    token_file.chmod(0o600)
    with service_process(tmp_path / "out", "--token-file", str(token_file), token="s3cret-from-file") as live:
        assert live.client.get("/api/v1/jobs").status_code == 200
        assert httpx.get(live.base_url + "/api/v1/jobs", trust_env=False).status_code == 401
        assert live.process is not None
        cmdline = Path(f"/proc/{live.process.pid}/cmdline").read_bytes()
        assert b"s3cret-from-file" not in cmdline
    with service_process(tmp_path / "out2", token="from-env-file",
                         env={"EVALSVC_TOKEN_FILE": str(token_file), "EVALSVC_TOKEN": ""}) as live:
        assert httpx.get(live.base_url + "/api/v1/jobs", trust_env=False,
                         headers={"Authorization": "Bearer s3cret-from-file"}).status_code == 200
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError) as info:
        read_token_file(empty)
    assert "empty" in info.value.reason


@pytest.mark.parametrize(("kind", "fields", "field"), [
    # found by benchmarks/fuzz_service.py --real-engines: each was a 500
    ("perf", {"url": "http://H\x7f\U000d3fa1\u00d6\x96/v1/chat/completions"}, "url"),
    ("perf", {"dataset": "line_by_line", "dataset_path": "~nosuchuser\x10/prompts.txt"}, "dataset_path"),
    ("eval", {"use_cache": "~nosuchuser/run"}, "use_cache"),
    ("eval", {"api_url": "http://\x1c\x197Wp/v1"}, "api_url"),
])
def test_malformed_hosts_and_home_paths_are_400(service: Live, kind: str, fields: dict[str, object],
                                                 field: str) -> None:
    body = perf_body(**fields) if kind == "perf" else eval_body(**fields)
    r = service.client.post(f"/api/v1/jobs/{kind}", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field
