"""The DashScope, Anthropic and Gemini dialects (OpenAI as the reference) over real HTTP and on raw bytes.

Against the simulated endpoint: tokens, TTFT and usage agree with what it sent, streamed and not; its
faults and error shapes become classified failures. Against canned streams served on 127.0.0.1: error
events and malformed events mid-stream. On raw bytes: the same stream split at every byte gives the
same result, and requests are built in each provider's shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from evalsvc import PerfConfig, run_perf
from evalsvc.core.perf.datasets import Prompt
from evalsvc.core.perf.dialects import get_dialect
from evalsvc.core.perf.dialects.gemini import gemini_url
from tests._perfrun import cfg as perf_cfg
from tests._perfrun import only, records
from tests._servers import MockHandle, QuietHandler, serve_http, start_mock

APIS = ("openai", "dashscope", "anthropic", "gemini")
PATHS = {"openai": "/v1/chat/completions", "dashscope": "/api/v1/services/aigc/text-generation/generation",
         "anthropic": "/v1/messages", "gemini": "/v1beta/models/gem-test:generateContent"}
TTFT_MS = 40.0
TOKENS = 12


def url_for(mock: MockHandle, api: str) -> str:
    return mock.root_url + PATHS[api]


def route(api: str, stream: bool) -> str:
    """The mock's route (its /mock/stats key) a request of this dialect lands on."""
    path = PATHS[api].replace("gem-test", "{model}")
    return path.replace(":generateContent", ":streamGenerateContent") if api == "gemini" and stream else path


def cfg(url: str, tmp_path: Path, api: str, **kw: Any) -> PerfConfig:
    return perf_cfg(url, tmp_path, **{"api": api, "prompt_tokens": 9, "number": 6, "parallel": 3, **kw})


@pytest.fixture(scope="module")
def timed_mock() -> Iterator[MockHandle]:
    """TTFT 40 ms, ITL 2 ms, 12 tokens; chat streams open with a role/empty chunk at once."""
    with start_mock(ttft_ms=TTFT_MS, itl_ms=2, output_tokens=TOKENS) as mock:
        yield mock


@pytest.fixture(scope="module")
def faulty_mock() -> Iterator[MockHandle]:
    """Every fault kind on exactly 2 of each 20 consecutive requests."""
    with start_mock(ttft_ms=0, itl_ms=1, output_tokens=8, fault_cycle=10, error_500=0.1, error_429=0.1,
                    drop_mid_stream=0.1, malformed_sse=0.1, no_done=0.1, empty_completion=0.1) as mock:
        yield mock


# -- over HTTP against the simulated endpoint -------------------------------------------------------------

@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("stream", [True, False])
def test_tokens_ttft_and_usage_agree_with_the_endpoint(timed_mock: MockHandle, tmp_path: Path, api: str,
                                                       stream: bool) -> None:
    before = timed_mock.stats()["requests_by_path"].get(route(api, stream), 0)
    result = run_perf(cfg(url_for(timed_mock, api), tmp_path, api, stream=stream))
    run = only(result)
    m, p = run["metrics"], run["percentiles"]
    assert m["requests_succeeded"] == 6 and m["requests_failed"] == 0, m["failures_by_kind"]
    # the server's own usage: 12 generated tokens, 9 prompt words (the mock's prompt-token rule)
    assert m["output_tokens_source"] == "usage"
    assert m["output_tokens_total"] == 6 * TOKENS
    assert m["input_tokens_total"] == 6 * 9
    after = timed_mock.stats()["requests_by_path"][route(api, stream)]
    assert after - before == 6  # the dialect's own route answered, not another one
    if stream:
        # one output chunk per token: the opening events (role chunk, message_start, empty content) do not
        # count, so TTFT is the injected 40 ms, not the ~0 ms of those events
        assert [r["chunks"] for r in records(result)] == [TOKENS] * 6
        assert p["ttft_ms"]["min"] >= TTFT_MS - 1
        assert p["ttft_ms"]["p50"] < TTFT_MS + 400
        assert p["tpot_ms"]["count"] == 6
    else:
        assert p["ttft_ms"]["p50"] == pytest.approx(p["latency_ms"]["p50"])
        assert m["tpot_ms_mean"] is None


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("stream", [True, False])
def test_fault_kinds_become_classified_failures(faulty_mock: MockHandle, tmp_path: Path, api: str,
                                                stream: bool) -> None:
    faulty_mock.reset()
    result = run_perf(cfg(url_for(faulty_mock, api), tmp_path, api, stream=stream, number=20, parallel=1))
    m = only(result)["metrics"]
    expected = {"http_500": 2, "http_429": 2, "malformed": 2, "empty_output": 2,
                # a dropped connection and an answer without its end (no [DONE] / finish reason, streamed
                # or whole) are both truncated
                "truncated": 4}
    assert m["failures_by_kind"] == expected
    assert m["requests_succeeded"] + m["requests_failed"] == 20
    details = {r["error"]: r["detail"] for r in records(result) if r["error"]}
    assert "injected internal server error" in details["http_500"]  # the dialect's error body, kept


def test_error_bodies_have_each_providers_shape(faulty_mock: MockHandle) -> None:
    import httpx

    bodies = {"dashscope": {"model": "q", "input": {"prompt": "hi"}},
              "anthropic": {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
              "gemini": {"contents": [{"parts": [{"text": "hi"}]}]}}
    with httpx.Client(trust_env=False) as client:
        shapes = {api: client.post(url_for(faulty_mock, api), json=body,
                                   headers={"X-Mock-Fault": "error_429"}).json() for api, body in bodies.items()}
        bad = client.post(url_for(faulty_mock, "anthropic"), json={"model": "c", "messages": []})
    assert shapes["dashscope"]["code"] == "Throttling.RateQuota" and "rate limit" in shapes["dashscope"]["message"]
    assert shapes["anthropic"] == {"type": "error", "error": {"type": "rate_limit_error",
                                                              "message": shapes["anthropic"]["error"]["message"]}}
    assert shapes["gemini"]["error"]["status"] == "RESOURCE_EXHAUSTED" and shapes["gemini"]["error"]["code"] == 429
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_dashscope_streams_only_with_its_sse_header(timed_mock: MockHandle) -> None:
    import httpx

    body = {"model": "qwen", "input": {"messages": [{"role": "user", "content": "hi"}]}}
    with httpx.Client(trust_env=False) as client:
        plain = client.post(url_for(timed_mock, "dashscope"), json=body)
        sse = client.post(url_for(timed_mock, "dashscope"), json=body, headers={"X-DashScope-SSE": "enable"})
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.json()["output"]["choices"][0]["finish_reason"] == "stop"
    assert sse.headers["content-type"].startswith("text/event-stream")
    assert sse.text.count("event:result") == TOKENS + 2  # empty opening event, 12 deltas, the final event


def test_gemini_model_comes_from_the_path(timed_mock: MockHandle) -> None:
    import httpx

    with httpx.Client(trust_env=False) as client:
        got = client.post(timed_mock.root_url + "/v1beta/models/gemini-x:generateContent",
                          json={"contents": [{"role": "user", "parts": [{"text": "a b c"}]}]}).json()
    assert got["modelVersion"] == "gemini-x"
    assert got["usageMetadata"] == {"promptTokenCount": 3, "candidatesTokenCount": TOKENS,
                                    "totalTokenCount": 3 + TOKENS}


# -- canned streams over HTTP: error and malformed events mid-stream ---------------------------------------

def _sse(*events: bytes, sep: bytes = b"\n\n") -> bytes:
    return b"".join(e + sep for e in events)


CANNED: dict[str, dict[str, bytes]] = {
    "dashscope": {
        "error": _sse(b'id:1\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{"choices":[{"message":{"content":"Hi","role":"assistant"},"finish_reason":"null"}]},"usage":{"input_tokens":3,"output_tokens":1},"request_id":"r"}',
                      b'id:2\nevent:error\n:HTTP_STATUS/500\ndata:{"code":"InternalError","message":"model overloaded","request_id":"r"}'),
        "malformed": _sse(b'id:1\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{"choices":[{"message":{"content":"Hi',
                          b'id:2\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{"choices":[{"message":{"content":"","role":"assistant"},"finish_reason":"stop"}]},"usage":{"input_tokens":3,"output_tokens":1},"request_id":"r"}'),
    },
    "anthropic": {
        "error": _sse(b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"model":"c","usage":{"input_tokens":3,"output_tokens":1}}}',
                      b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}',
                      b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'),
        "malformed": _sse(b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","usage":{"input_tokens":3}}}',
                          b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi',
                          b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}',
                          b'event: message_stop\ndata: {"type":"message_stop"}'),
    },
    "gemini": {
        "error": _sse(b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"index":0}]}',
                      b'data: {"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}',
                      sep=b"\r\n\r\n"),
        "malformed": _sse(b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"index":0}]}',
                          b'data: {"candidates":[{"content":{"parts":[{"text":"there',
                          b'data: {"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}}',
                          sep=b"\r\n\r\n"),
    },
    "openai": {
        "error": _sse(b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}',
                      b'data: {"error":{"message":"upstream failed","type":"server_error","code":500}}'),
        "malformed": _sse(b'data: {"choices":[{"index":0,"delta":{"content":"Hi',
                          b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}', b"data: [DONE]"),
    },
}
EXPECTED_DETAIL = {"dashscope": "model overloaded", "anthropic": "Overloaded", "gemini": "The model is overloaded.",
                   "openai": "upstream failed"}


@contextmanager
def canned_server(body: bytes, status: int = 200, content_type: str = "text/event-stream") -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering every POST with `body`; yields its root URL."""

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.read_body()
            self.answer(body, status, content_type)

    with serve_http(Handler) as url:
        yield url


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("case", ["error", "malformed"])
def test_error_and_malformed_events_mid_stream(tmp_path: Path, api: str, case: str) -> None:
    with canned_server(CANNED[api][case]) as root:
        result = run_perf(cfg(root + PATHS[api], tmp_path, api, number=3, parallel=1))
    m = only(result)["metrics"]
    kind = "stream_error" if case == "error" else "malformed"
    assert m["failures_by_kind"] == {kind: 3} and m["requests_succeeded"] == 0
    detail = records(result)[0]["detail"]
    assert (EXPECTED_DETAIL[api] in detail) if case == "error" else detail.startswith("bad event")


@pytest.mark.parametrize("api,body,detail", [
    ("dashscope", {"code": "InvalidApiKey", "message": "Invalid API-key provided.", "request_id": "r"}, "Invalid API-key"),
    ("anthropic", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "Overloaded"),
    ("gemini", {"error": {"code": 400, "message": "API key not valid", "status": "INVALID_ARGUMENT"}}, "API key not valid"),
])
def test_error_body_with_a_200_status_is_a_response_error(tmp_path: Path, api: str, body: dict[str, Any],
                                                          detail: str) -> None:
    with canned_server(orjson.dumps(body), content_type="application/json") as root:
        result = run_perf(cfg(root + PATHS[api], tmp_path, api, number=2, parallel=1, stream=False))
    assert only(result)["metrics"]["failures_by_kind"] == {"response_error": 2}
    assert detail in records(result)[0]["detail"]


# -- raw bytes: incremental parsing -------------------------------------------------------------------------

def _good_stream(api: str) -> bytes:
    """A well-formed 3-token stream in the dialect's format, with an opening event that carries no output."""
    if api == "dashscope":
        ev = lambda c, f, n: (b'id:1\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{"choices":[{"message":{"content":'  # noqa: E731
                              + c + b',"role":"assistant"},"finish_reason":' + f + b'}]},"usage":{"input_tokens":5,"output_tokens":%d,"total_tokens":0},"request_id":"r"}' % n)
        return _sse(ev(b'""', b'"null"', 0), ev(b'"A"', b'"null"', 1), ev(b'" b"', b'"null"', 2),
                    ev(b'" c"', b'"null"', 3), ev(b'""', b'"stop"', 3))
    if api == "anthropic":
        return _sse(b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"model":"c","usage":{"input_tokens":5,"cache_read_input_tokens":2,"output_tokens":1}}}',
                    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
                    b'event: ping\ndata: {"type": "ping"}',
                    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"A"}}',
                    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" b"}}',
                    b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " c"}}',
                    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}',
                    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}}',
                    b'event: message_stop\ndata: {"type":"message_stop"}')
    if api == "gemini":
        ev = lambda t: b'data: {"candidates": [{"content": {"parts": [{"text": ' + t + b'}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 5,"totalTokenCount": 5}}'  # noqa: E731
        return _sse(ev(b'"A"'), ev(b'" b"'), ev(b'" c"'),
                    b'data: {"candidates": [{"content": {"parts": [{"text": ""}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 2,"thoughtsTokenCount": 1,"totalTokenCount": 10}}',
                    sep=b"\r\n\r\n")
    raise AssertionError(api)


def _parse(api: str, data: bytes, step: int) -> tuple[Any, ...]:
    config = cfg("http://127.0.0.1:1/x", Path("."), api)
    parser = get_dialect(api).stream_parser(config)
    for t, i in enumerate(range(0, len(data), step)):
        parser.feed(data[i:i + step], float(t))
    parser.close(float(len(data)))
    return (parser.n_output, parser.output_tokens, parser.prompt_tokens, parser.done or parser.finished,
            parser.error)


@pytest.mark.parametrize("api", ["dashscope", "anthropic", "gemini"])
def test_split_anywhere_parses_the_same(api: str) -> None:
    data = _good_stream(api)
    whole = _parse(api, data, len(data))
    # 3 output events; usage from the final events (Anthropic: input + cached, Gemini: candidates + thoughts)
    assert whole == (3, 3, 7 if api != "dashscope" else 5, True, None)
    for step in (1, 2, 3, 7, 64):
        assert _parse(api, data, step) == whole, step


@pytest.mark.parametrize("api", ["dashscope", "anthropic", "gemini"])
def test_stream_cut_before_its_end_is_not_finished(api: str) -> None:
    data = _good_stream(api)
    cut = data[: data.rfind(b"data:", 0, data.rfind(b"data:")) - 1]  # drop the closing events
    n_output, _, _, finished, error = _parse(api, cut, 50)
    assert n_output >= 2 and not finished and error is None


# -- request shapes, URLs and headers ------------------------------------------------------------------------

def _prompt() -> Prompt:
    return Prompt(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                            {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Why?"}],
                  max_tokens=33)


def test_request_bodies_follow_each_provider() -> None:
    config = cfg("http://h/x", Path("."), "openai", temperature=0.5,
                 extra_body={"parameters": {"top_p": 0.8}, "generationConfig": {"topK": 3}, "top_k": 5})
    ds = orjson.loads(get_dialect("dashscope").build(config, _prompt()))
    assert ds["input"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert ds["parameters"] == {"result_format": "message", "max_tokens": 33, "temperature": 0.5,
                                "incremental_output": True, "top_p": 0.8}
    an = orjson.loads(get_dialect("anthropic").build(config, _prompt()))
    assert an["system"] == "Be brief." and an["max_tokens"] == 33 and an["stream"] is True
    assert [m["role"] for m in an["messages"]] == ["user", "assistant", "user"]
    ge = orjson.loads(get_dialect("gemini").build(config, _prompt()))
    assert ge["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in ge["contents"]] == ["user", "model", "user"]
    assert ge["generationConfig"] == {"maxOutputTokens": 33, "temperature": 0.5, "topK": 3}
    assert "stream" not in ge  # Gemini streams by URL, not by body


def test_headers_carry_each_providers_auth() -> None:
    keyed = cfg("http://h/x", Path("."), "openai", api_key="sk-1")
    assert get_dialect("dashscope").headers(keyed)["Authorization"] == "Bearer sk-1"
    assert get_dialect("dashscope").headers(keyed)["X-DashScope-SSE"] == "enable"
    assert "X-DashScope-SSE" not in get_dialect("dashscope").headers(keyed.replace(stream=False))
    an = get_dialect("anthropic").headers(keyed)
    assert an["x-api-key"] == "sk-1" and an["anthropic-version"] == "2023-06-01" and "Authorization" not in an
    assert get_dialect("gemini").headers(keyed)["x-goog-api-key"] == "sk-1"
    for api in APIS:  # no key, or the "EMPTY" placeholder: no auth header at all
        for key in (None, "EMPTY"):
            headers = get_dialect(api).headers(keyed.replace(api_key=key))
            assert not {"Authorization", "x-api-key", "x-goog-api-key"} & set(headers)


@pytest.mark.parametrize("given,stream,expected", [
    ("https://g.example/v1beta/models/gem:generateContent", False, "https://g.example/v1beta/models/gem:generateContent"),
    ("https://g.example/v1beta/models/gem:generateContent", True, "https://g.example/v1beta/models/gem:streamGenerateContent?alt=sse"),
    ("https://g.example/v1beta/models/gem:streamGenerateContent?alt=sse", False, "https://g.example/v1beta/models/gem:generateContent"),
    ("https://g.example/v1beta/models/gem:generateContent?key=K", True, "https://g.example/v1beta/models/gem:streamGenerateContent?key=K&alt=sse"),
    ("https://g.example/v1beta/models/gem", True, "https://g.example/v1beta/models/gem:streamGenerateContent?alt=sse"),
    ("https://g.example/v1beta/", False, "https://g.example/v1beta/models/my-model:generateContent"),
])
def test_gemini_url_forms(given: str, stream: bool, expected: str) -> None:
    assert gemini_url(given, "my-model", stream) == expected
