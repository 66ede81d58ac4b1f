"""The perf preflight (one test request before the sweep) and the rule that a run in which no request
succeeded is `failed`, through the library: `run_perf` / `run_perf_async`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from evalsvc import EndpointStatusError, EndpointUnreachable, PerfConfig, run_perf, run_perf_async
from evalsvc.core.errors import EndpointTimeout
from evalsvc.core.perf._preflight import suggested_url
from tests._gate import start_gate
from tests._servers import start_mock

KEY = "sk-good-key-123456"
WRONG = "sk-wrong-key-987654"


def cfg(url: str, tmp_path: Path, **kw: Any) -> PerfConfig:
    base: dict[str, Any] = {"model": "m", "url": url, "dataset": "random", "prompt_tokens": 8, "max_tokens": 64,
                            "number": 5, "parallel": 2, "work_dir": str(tmp_path / "out")}
    base.update(kw)
    return PerfConfig(**base)


def written(tmp_path: Path) -> list[Path]:
    out = tmp_path / "out"
    return sorted(out.iterdir()) if out.exists() else []


def test_a_base_url_stops_before_the_run_and_names_the_endpoint_path(tmp_path: Path) -> None:
    with start_gate(key=KEY) as gate:
        with pytest.raises(EndpointStatusError) as caught:
            run_perf(cfg(gate.base_url, tmp_path, api_key=KEY))
        assert gate.total == 1  # the test request only, not the 5 of the run
    message = str(caught.value)
    assert caught.value.status == 404
    assert message.startswith(f"{gate.base_url} answered the test request with HTTP 404: 404: Not Found")
    assert f"use the complete endpoint URL, e.g. {gate.chat_url}" in message
    assert "\n" not in message and KEY not in message
    assert written(tmp_path) == []  # nothing written for a run that never started


def test_a_missing_key_is_a_401_saying_how_to_pass_one(tmp_path: Path) -> None:
    with start_gate(key=KEY) as gate:
        with pytest.raises(EndpointStatusError) as caught:
            run_perf(cfg(gate.chat_url, tmp_path))
        assert gate.total == 1
    assert caught.value.status == 401
    message = str(caught.value)
    assert "HTTP 401: " in message and "You didn't provide an API key." in message  # the server's own words
    assert "no API key was sent: pass one with --api-key or EVALSVC_API_KEY" in message


def test_a_refused_key_is_quoted_masked(tmp_path: Path) -> None:
    with start_gate(key=KEY) as gate:
        with pytest.raises(EndpointStatusError) as caught:
            run_perf(cfg(gate.chat_url, tmp_path, api_key=WRONG))
        assert gate.bodies and gate.total == 1
    message = str(caught.value)
    assert "Incorrect API key provided: ***." in message  # the server echoed the key; we do not
    assert WRONG not in message and "the API key was refused" in message


def test_a_key_in_a_header_counts_as_a_key_and_is_masked(tmp_path: Path) -> None:
    with start_gate(key=KEY) as gate, pytest.raises(EndpointStatusError, match="the API key was refused") as caught:
        run_perf(cfg(gate.chat_url, tmp_path, headers={"Authorization": f"Bearer {WRONG}"}))
    assert WRONG not in str(caught.value)


def test_the_test_request_is_the_runs_first_request_with_few_tokens(tmp_path: Path) -> None:
    with start_gate(key=KEY) as gate:
        result = run_perf(cfg(gate.chat_url, tmp_path, api_key=KEY, number=[3, 4], parallel=[1, 2],
                              extra_body={"top_p": 0.5}))
        bodies = list(gate.bodies)
    assert result.status == "completed" and result.error is None
    assert len(bodies) == 1 + 3 + 4  # one test request per run_perf call, not per sweep point
    test, first = bodies[0], bodies[1]
    assert test["max_tokens"] == 16 and first["max_tokens"] == 64
    assert {**test, "max_tokens": 64} == first  # same model, messages, stream options, extra body
    counted = [run.metrics["requests_total"] for run in result.results.values()]
    assert counted == [3, 4]  # the test request is in no metric


def test_the_test_request_honours_min_tokens_and_a_smaller_max_tokens(tmp_path: Path) -> None:
    with start_gate() as gate:
        run_perf(cfg(gate.chat_url, tmp_path, number=1, max_tokens=64, min_tokens=20))
        run_perf(cfg(gate.chat_url, tmp_path, number=1, max_tokens=4))
        bodies = list(gate.bodies)
    assert [b["max_tokens"] for b in bodies] == [20, 64, 4, 4]
    assert bodies[0]["min_tokens"] == 20


def test_no_preflight_reaches_the_run_which_fails_when_nothing_succeeded(tmp_path: Path) -> None:
    with start_gate(key=KEY) as gate:
        result = run_perf(cfg(gate.base_url, tmp_path, api_key=KEY, preflight=False))
        assert gate.total == 5  # no test request
    assert result.status == "failed"
    assert result.error == "no request succeeded (http_404: 5)"
    out = Path(result.output_dir)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == "no request succeeded (http_404: 5)"
    assert summary["results"]["parallel_2_number_5"]["metrics"]["failures_by_kind"] == {"http_404": 5}
    rows = (out / "requests_parallel_2_number_5.jsonl").read_text().splitlines()
    assert len(rows) == 5 and json.loads(rows[0])["status"] == 404
    assert (out / "summary_parallel_2_number_5.json").exists() and (out / "config.json").exists()
    assert (out / "report.txt").read_text().startswith("evalsvc perf: failed (no request succeeded (http_404: 5))")


def test_a_run_with_some_successes_stays_completed(tmp_path: Path) -> None:
    with start_mock(ttft_ms=0, itl_ms=0, output_tokens=4, error_500=0.5, fault_cycle=2) as mock:
        result = run_perf(cfg(mock.chat_url, tmp_path, number=6, parallel=1, preflight=False))
    m = next(iter(result.results.values())).metrics
    assert m["requests_succeeded"] == 3 and m["failures_by_kind"] == {"http_500": 3}
    assert result.status == "completed" and result.error is None


def test_nothing_listening_is_unreachable(tmp_path: Path) -> None:
    with pytest.raises(EndpointUnreachable, match=r"^cannot connect to http://127.0.0.1:9 \(Connection refused\)$"):
        run_perf(cfg("http://127.0.0.1:9/v1/chat/completions", tmp_path))
    assert written(tmp_path) == []


def test_the_test_request_is_bounded_by_the_runs_timeout(tmp_path: Path) -> None:
    with start_gate(hang=True) as gate, \
            pytest.raises(EndpointTimeout, match=r"did not answer the test request within 0.5 s \(timeout\)"):
        run_perf(cfg(gate.chat_url, tmp_path, timeout=0.5))
    assert written(tmp_path) == []


def test_a_stop_during_the_test_request_ends_interrupted_without_running(tmp_path: Path) -> None:
    async def main(url: str, seen: Any) -> Any:
        stop = asyncio.Event()
        task = asyncio.create_task(run_perf_async(cfg(url, tmp_path), stop=stop))
        for _ in range(2000):  # until the server holds the test request
            if seen():
                break
            await asyncio.sleep(0.01)
        stop.set()
        return await asyncio.wait_for(task, 60)

    with start_gate(hang=True) as gate:
        result = asyncio.run(main(gate.chat_url, lambda: gate.total))
        assert gate.total == 1
    assert result.status == "interrupted" and result.error == "stopped during the test request"
    assert result.results == {}
    assert json.loads((Path(result.output_dir) / "summary.json").read_text())["status"] == "interrupted"


def test_a_caller_cancelling_during_the_test_request_leaves_nothing_running(tmp_path: Path) -> None:
    async def main(url: str, seen: Any) -> None:
        task = asyncio.create_task(run_perf_async(cfg(url, tmp_path)))
        for _ in range(2000):
            if seen():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    with start_gate(hang=True) as gate:
        asyncio.run(main(gate.chat_url, lambda: gate.total))
    assert written(tmp_path) == []


@pytest.mark.parametrize(("api", "url", "expected"), [
    ("openai", "http://h:8000/v1", "http://h:8000/v1/chat/completions"),
    ("openai", "http://h:8000/v1/", "http://h:8000/v1/chat/completions"),
    ("openai", "http://h:8000", "http://h:8000/v1/chat/completions"),
    ("anthropic", "https://api.anthropic.com/v1", "https://api.anthropic.com/v1/messages"),
    ("dashscope", "https://dashscope.aliyuncs.com/api/v1",
     "https://dashscope.aliyuncs.com/api/v1/services/aigc/text-generation/generation"),
    ("dashscope", "https://dashscope.aliyuncs.com",
     "https://dashscope.aliyuncs.com/api/v1/services/aigc/text-generation/generation"),
    ("openai", "http://user:pw@h/v1?api_key=s3cret", "http://***@h/v1/chat/completions?api_key=***"),
])
def test_the_suggested_endpoint_url(api: str, url: str, expected: str) -> None:
    assert suggested_url(PerfConfig(model="m", url=url, api=api)) == expected
