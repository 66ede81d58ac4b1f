"""The service with the real engines over real HTTP: SPEC §5's request examples against the simulated endpoint,
and a real load test that outlives a kill -9 of `python -m evalsvc service` only as `interrupted`."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from collections.abc import Callable

import pytest

from tests._evaldata import Suite, mcq_row, small_suite, write_local_copy
from tests._servers import MockHandle, start_mock
from tests.http._live import Live, service_process

KEY = "your-api-key"


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return small_suite(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="module")
def mock(suite: Suite) -> Iterator[MockHandle]:
    with start_mock(answers=suite.answers, ttft_ms=0, itl_ms=0, output_tokens=8) as server:
        yield server


@pytest.fixture
def openqa_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local open_qa.jsonl where the openqa dataset looks first (this machine has no hub access)."""
    cache = tmp_path / "cache"
    path = cache / "perf" / "HC3-Chinese" / "open_qa.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps({"question": f"问题 {i}: 为什么天空是蓝色的?"}, ensure_ascii=False) + "\n"
                            for i in range(50)), encoding="utf-8")
    monkeypatch.setenv("EVALSVC_CACHE_DIR", str(cache))  # the job workers inherit it
    return cache


@pytest.fixture
def real_service(service_factory: Callable[..., Live], suite: Suite) -> Live:
    return service_factory(targets={}, dataset_dir=str(suite.dataset_dir))


def _spec_perf_examples(mock: MockHandle) -> list[dict[str, Any]]:
    return [
        {"model": "qwen-plus", "url": mock.chat_url, "api": "openai", "api_key": KEY, "number": 100, "parallel": 10,
         "dataset": "openqa", "max_tokens": 2048, "temperature": 0.0},
        {"model": "qwen2.5", "url": mock.chat_url, "api": "openai", "number": 1000, "parallel": 20,
         "max_tokens": 2048},
    ]


def test_spec_perf_examples(real_service: Live, mock: MockHandle, openqa_cache: Path, tmp_path: Path) -> None:
    for body, key, number in zip(_spec_perf_examples(mock), ("parallel_10_number_100", "parallel_20_number_1000"),
                                 (100, 1000), strict=True):
        r = real_service.client.post("/api/v1/perf", json=body)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["status"] == "success" and got["message"] == "Performance test completed"
        assert list(got["results"]) == [key]
        metrics = got["results"][key]["metrics"]
        assert metrics["requests_total"] == number and metrics["requests_succeeded"] == number
        assert metrics["requests_failed"] == 0
        assert got["results"][key]["percentiles"]["ttft_ms"]["p50"] is not None
        assert Path(got["output_dir"]).parent == (tmp_path / "outputs").resolve()
        job = real_service.client.get(f"/api/v1/jobs/{got['job_id']}").json()["job"]
        assert job["progress"][key]["done"] == number
        assert KEY not in r.text and KEY not in json.dumps(job)
    for path in (tmp_path / "outputs").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_spec_eval_examples(real_service: Live, mock: MockHandle, suite: Suite, tmp_path: Path) -> None:
    examples = [
        {"model": "qwen-plus", "api_url": mock.base_url, "api_key": KEY, "datasets": ["gsm8k", "iquiz"],
         "limit": 10, "generation_config": {"temperature": 0.0, "max_tokens": 2048}},
        {"model": "qwen-plus", "api_url": mock.base_url, "datasets": ["gsm8k", "iquiz", "ceval"], "limit": 50,
         "eval_batch_size": 4},
    ]
    with ThreadPoolExecutor(len(examples)) as pool:  # both at once: eval jobs run side by side
        answers = list(pool.map(lambda body: real_service.client.post("/api/v1/eval", json=body), examples))
    for body, r in zip(examples, answers, strict=True):
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["status"] == "success" and got["message"] == "Evaluation completed"
        assert set(got["result"]) == set(body["datasets"])
        for name in body["datasets"]:
            entry = got["result"][name]
            assert entry["score"] == pytest.approx(suite.expected_score(name), abs=1e-4)
            assert (entry["requested"], entry["scored"], entry["errored"]) == (suite.count(name), suite.count(name), 0)
        assert Path(got["output_dir"]).is_dir()
        assert KEY not in r.text
    for path in (tmp_path / "outputs").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_engine_input_and_endpoint_errors(real_service: Live, mock: MockHandle) -> None:
    unknown = real_service.client.post("/api/v1/eval", json={"model": "m", "api_url": mock.base_url,
                                                             "datasets": ["gsm8kk"]})
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "datasets"
    assert "gsm8k" in unknown.json()["error"]["reason"]  # the suggestion
    dead = real_service.client.post("/api/v1/perf", json={"model": "m", "url": "http://127.0.0.1:9/v1/chat/completions",
                                                           "dataset": "random", "number": 5})
    assert dead.status_code == 502, dead.text
    assert dead.json()["error"]["category"] == "endpoint" and dead.json()["state"] == "failed"


def test_kill_9_of_the_cli_service_mid_load_test(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    with start_mock(ttft_ms=20, itl_ms=5, output_tokens=20) as slow:
        body = {"model": "m", "url": slow.chat_url, "dataset": "random", "prompt_tokens": 16, "max_tokens": 20}
        with service_process(outputs) as live:
            first = live.client.post("/api/v1/perf", json={**body, "number": 20, "parallel": 4})
            assert first.status_code == 200, first.text
            before = first.json()
            job_id = live.client.post("/api/v1/jobs/perf",
                                      json={**body, "number": 100000, "parallel": 4}).json()["job_id"]
            live.wait_progress(job_id)
            assert live.process is not None
            live.process.send_signal(signal.SIGKILL)
            live.process.wait(10)

        # the orphaned load test stops sending within a few seconds of its service's death
        def served() -> int:
            return int(slow.stats()["requests"])

        deadline = time.monotonic() + 30
        last = served()
        while True:
            time.sleep(1.0)
            now = served()
            if now == last:
                break
            assert time.monotonic() < deadline, "the load test kept running after its service was killed"
            last = now

        with service_process(outputs) as live:
            job = live.client.get(f"/api/v1/jobs/{job_id}").json()["job"]
            assert job["state"] == "interrupted" and job["error"]["type"] == "Interrupted"
            again = live.client.get(f"/api/v1/jobs/{before['job_id']}/result")
            assert again.status_code == 200 and again.json() == before
            assert live.client.post("/api/v1/perf", json={**body, "number": 10}).status_code == 200


def _broken_iquiz(root: Path) -> Path:
    """A local iquiz copy whose split file is not JSONL: evalscope fails that dataset (status failed)."""
    write_local_copy(root / "iquiz", {"IQ": {"test": [mcq_row("[X1]", "B")]}})
    (root / "iquiz" / "IQ" / "test.jsonl").write_text("{not json\n", encoding="utf-8")
    return root


def test_failed_eval_is_mapped_json_not_500(service_factory: Callable[..., Live], mock: MockHandle,
                                            tmp_path: Path) -> None:
    live = service_factory(targets={}, dataset_dir=str(_broken_iquiz(tmp_path / "broken")))
    r = live.client.post("/api/v1/eval", json={"model": "m", "api_url": mock.base_url, "datasets": ["iquiz"],
                                                "preflight": False})
    assert r.status_code == 500, r.text  # the run failed (not an input, endpoint or time-limit problem)
    body = r.json()
    assert body["status"] == "error" and body["state"] == "failed"
    assert body["message"].startswith("Evaluation failed: iquiz: ")
    assert body["error"]["type"] == "RunFailed" and "iquiz" in body["error"]["message"]
    assert body["job_id"] and Path(body["output_dir"]).is_dir()
    assert body["result"]["iquiz"]["status"] == "failed"  # the engine's per-dataset detail is kept
    again = live.client.get(f"/api/v1/jobs/{body['job_id']}/result")
    assert again.status_code == 500 and again.json() == body


def test_cancelled_perf_job_result_is_409_json(real_service: Live, tmp_path: Path) -> None:
    with start_mock(ttft_ms=20, itl_ms=5, output_tokens=20) as slow:
        body = {"model": "m", "url": slow.chat_url, "dataset": "random", "prompt_tokens": 16, "max_tokens": 20,
                "number": 100000, "parallel": 2}
        job_id = real_service.client.post("/api/v1/jobs/perf", json=body).json()["job_id"]
        real_service.wait_progress(job_id)
        assert real_service.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 202
        job = real_service.wait_state(job_id, ("cancelled",), timeout=60)
    assert job["has_result"] is True and job["error"]["type"] == "Cancelled"
    r = real_service.client.get(f"/api/v1/jobs/{job_id}/result")
    assert r.status_code == 409, r.text
    got = r.json()
    assert got["status"] == "error" and got["state"] == "cancelled" and got["job_id"] == job_id
    assert got["message"] == "Performance test was cancelled" and got["error"]["type"] == "Cancelled"
    metrics = got["results"]["parallel_2_number_100000"]["metrics"]
    assert 0 < metrics["requests_succeeded"] < 100000  # what was measured before the cancel is kept
    assert Path(got["output_dir"]).parent == (tmp_path / "outputs").resolve()


def test_success_bodies_carry_no_stray_error(real_service: Live, mock: MockHandle) -> None:
    perf = real_service.client.post("/api/v1/perf", json={"model": "m", "url": mock.chat_url, "dataset": "random",
                                                          "prompt_tokens": 8, "max_tokens": 8, "number": 4})
    ev = real_service.client.post("/api/v1/eval", json={"model": "m", "api_url": mock.base_url, "datasets": ["iquiz"],
                                                        "limit": 2})
    for r, message in ((perf, "Performance test completed"), (ev, "Evaluation completed")):
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "success" and body["message"] == message and "error" not in body
        assert body["job_id"] and body["output_dir"]
    assert "results" in perf.json() and "result" in ev.json()


def test_cancelled_eval_job_is_cancelled_and_keeps_its_predictions(real_service: Live, suite: Suite) -> None:
    with start_mock(answers=suite.answers, ttft_ms=300, itl_ms=0) as slow:
        body = {"model": "m", "api_url": slow.base_url, "datasets": ["iquiz"], "preflight": False}
        job_id = real_service.client.post("/api/v1/jobs/eval", json=body).json()["job_id"]
        deadline = time.monotonic() + 60
        while True:  # wait until at least one answer is in
            job = real_service.client.get(f"/api/v1/jobs/{job_id}").json()["job"]
            if job["progress"].get("iquiz", {}).get("done", 0) >= 1:
                break
            assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.05)
        assert real_service.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 202
        job = real_service.wait_state(job_id, ("cancelled", "failed", "completed"), timeout=60)
    assert job["state"] == "cancelled", job
    assert job["error"]["type"] == "Cancelled" and job["has_result"] is True
    r = real_service.client.get(f"/api/v1/jobs/{job_id}/result")
    assert r.status_code == 409, r.text
    got = r.json()
    assert got["message"] == "Evaluation was cancelled" and got["state"] == "cancelled"
    part = got["result"]["iquiz"]
    assert part["status"] == "cancelled" and 1 <= part["predicted"] < suite.count("iquiz")
    assert part["predictions"] and all(Path(p).is_file() for p in part["predictions"])


def test_url_credentials_stay_secret_with_the_real_engines(real_service: Live, mock: MockHandle,
                                                           tmp_path: Path) -> None:
    base = f"http://user:PASSW0RDX@127.0.0.1:{mock.port}/v1"
    bodies = [("/api/v1/jobs/perf", {"model": "m", "url": f"{base}/chat/completions?api_key=QKEYQKEY",
                                     "dataset": "random", "prompt_tokens": 8, "max_tokens": 8, "number": 4}),
              ("/api/v1/jobs/eval", {"model": "m", "api_url": f"{base}?api_key=QKEYQKEY", "datasets": ["iquiz"],
                                     "limit": 2})]
    seen = []
    for path, body in bodies:
        r = real_service.client.post(path, json=body)
        if path.endswith("/eval"):  # EvalConfig refuses credentials in api_url, without echoing them
            assert r.status_code == 400 and r.json()["error"]["field"] == "api_url", r.text
            seen.append(r.text)
            continue
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        real_service.wait_state(job_id, ("completed", "failed"), timeout=120)
        seen += [r.text, real_service.client.get(f"/api/v1/jobs/{job_id}").text,
                 real_service.client.get(f"/api/v1/jobs/{job_id}/result").text]
    seen.append(real_service.client.get("/api/v1/jobs").text)
    seen += [p.read_bytes().decode(errors="replace") for p in (tmp_path / "outputs").rglob("*") if p.is_file()]
    for text in seen:
        assert "PASSW0RDX" not in text and "QKEYQKEY" not in text, text[:2000]
