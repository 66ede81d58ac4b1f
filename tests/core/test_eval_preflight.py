"""The eval preflight checks the endpoint without generating when it can (GET /models), retries what is
transient, and falls back to one short generation only when /models cannot settle it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from evalsvc import EndpointStatusError, EndpointUnreachable, EvalConfig, run_eval
from evalsvc.core.eval._preflight import preflight
from tests._evaldata import mcq_row, write_local_copy
from tests._servers import QuietHandler, serve_http, start_mock

COMPLETION = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "OK"},
                                      "finish_reason": "stop"}]}).encode()


def _config(api_url: str, **kw: Any) -> EvalConfig:
    return EvalConfig(model="m", api_url=api_url, datasets=["iquiz"], retry_interval=0, **kw)


@contextmanager
def _endpoint(models: tuple[int, bytes], chat: list[str]) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A server answering GET /v1/models with `models` and each chat request with the next of `chat`:
    "ok", "cut" (a reply cut off mid-body), "503"."""
    seen: list[tuple[str, str]] = []
    plan = list(chat)
    lock = threading.Lock()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            seen.append(("GET", self.path))
            self.answer(models[1], models[0])

        def do_POST(self) -> None:
            self.read_body()
            seen.append(("POST", self.path))
            with lock:
                step = plan.pop(0) if plan else "ok"
            if step == "cut":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(COMPLETION)))
                self.end_headers()
                self.wfile.write(COMPLETION[:10])
                self.close_connection = True
            elif step == "503":
                self.answer(b'{"error": {"message": "loading model"}}', 503)
            else:
                self.answer(COMPLETION)

    with serve_http(Handler) as base:
        yield f"{base}/v1", seen


def test_a_model_list_naming_the_model_settles_it_without_generating(tmp_path: Path) -> None:
    write_local_copy(tmp_path / "data" / "iquiz", {"IQ": {"test": [mcq_row(f"[P{i}]", "A") for i in range(3)]}})
    with start_mock(ttft_ms=0, itl_ms=0) as mock:
        config = EvalConfig(model="mock-model", api_url=mock.base_url, datasets=["iquiz"], report=False,
                            dataset_dir=str(tmp_path / "data"), work_dir=str(tmp_path / "out"))
        assert asyncio.run(preflight(config)) == {"checked": "models", "models": ["mock-model"]}
        assert mock.stats()["requests"] == 0
        events: list[dict[str, Any]] = []
        result = run_eval(config, progress=events.append)
        assert result.status == "completed"
        # exactly one generation per sample: the preflight sent none (it would fill a server's prompt cache)
        assert mock.stats()["requests"] == 3
    assert any("its model list names it, no generation sent" in str(e.get("message")) for e in events)


def test_no_models_endpoint_falls_back_to_one_short_generation() -> None:
    with _endpoint((404, b'{"error": "not found"}'), ["ok"]) as (url, seen):
        checked = asyncio.run(preflight(_config(url)))
    assert checked["checked"] == "generation" and checked["body"]["choices"][0]["message"]["content"] == "OK"
    assert seen == [("GET", "/v1/models"), ("POST", "/v1/chat/completions")]


def test_a_list_without_the_model_is_checked_by_generating() -> None:
    listing = json.dumps({"object": "list", "data": [{"id": "other-model"}]}).encode()
    with _endpoint((200, listing), ["ok"]) as (url, seen):
        assert asyncio.run(preflight(_config(url)))["checked"] == "generation"
    assert [m for m, _ in seen] == ["GET", "POST"]


def test_a_cut_off_reply_and_a_503_are_retried_before_refusing() -> None:
    with _endpoint((404, b"{}"), ["cut", "503", "ok"]) as (url, seen):
        assert asyncio.run(preflight(_config(url, retries=2)))["checked"] == "generation"
    assert [m for m, _ in seen] == ["GET", "POST", "POST", "POST"]
    cut_off = r"the preflight request to .*/v1/chat/completions was cut off"
    with _endpoint((404, b"{}"), ["cut", "cut", "cut"]) as (url, seen), pytest.raises(EndpointUnreachable,
                                                                                        match=cut_off):
        asyncio.run(preflight(_config(url, retries=2)))
    assert [m for m, _ in seen] == ["GET", "POST", "POST", "POST"]  # 1 + retries attempts, then refused
    with _endpoint((404, b"{}"), ["503", "503"]) as (url, _), pytest.raises(
            EndpointStatusError, match=r"HTTP 503: 'loading model' after 2 attempts"):
        asyncio.run(preflight(_config(url, retries=1)))


def test_a_key_refused_by_models_fails_at_once_without_generating() -> None:
    refused = r"/v1/models answered the preflight check with HTTP 401: 'bad key' \(is the API key right\?\)"
    with _endpoint((401, b'{"error": {"message": "bad key"}}'), []) as (url, seen), pytest.raises(
            EndpointStatusError, match=refused):
        asyncio.run(preflight(_config(url)))
    assert seen == [("GET", "/v1/models")]


def test_preflight_false_sends_nothing_before_the_samples(tmp_path: Path) -> None:
    write_local_copy(tmp_path / "data" / "iquiz", {"IQ": {"test": [mcq_row("[Q]", "A")]}})
    with _endpoint((404, b"{}"), []) as (url, seen):
        run_eval(_config(url, preflight=False, dataset_dir=str(tmp_path / "data"), work_dir=str(tmp_path / "o"),
                         report=False))
    assert seen == [("POST", "/v1/chat/completions")]
