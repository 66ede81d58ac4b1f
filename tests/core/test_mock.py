"""The simulated endpoint over real HTTP: wire format, timing, answers and exact, seeded faults.

Servers run in their own process (tests/_servers.py), clients are httpx (sync) and aiohttp (concurrent).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import pytest

from evalsvc.core.errors import ConfigError
from evalsvc.core.mock import FAULT_KINDS, FaultPlan, MockConfig, MockServer
from evalsvc.core.mock._server import _deadlines
from evalsvc.core.mock._text import split_tokens
from tests._servers import MockHandle, start_mock

FILLER = "The simulated endpoint streams these words one token at a time so that".split()


def chat(content: str = "hello there world", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


# --- client helpers ------------------------------------------------------------------------------

@dataclass
class Reply:
    """One response as seen on the wire."""

    status: int
    headers: dict[str, str]
    raw: bytes
    error: Exception | None = None
    event_times: list[float] = field(default_factory=list)
    sent: float = 0.0

    @property
    def events(self) -> list[str]:
        """The `data:` payloads of an SSE body, in order."""
        out = []
        for block in self.raw.decode().split("\n\n"):
            if block.startswith("data: "):
                out.append(block[len("data: "):])
            elif block.strip():
                raise AssertionError(f"not an SSE event: {block!r}")
        return out

    def chunks(self) -> list[dict[str, Any]]:
        """The JSON chunks (malformed ones and [DONE] left out)."""
        out = []
        for event in self.events:
            if event != "[DONE]":
                try:
                    out.append(json.loads(event))
                except json.JSONDecodeError:
                    continue
        return out

    def text(self) -> str:
        parts = []
        for chunk in self.chunks():
            for choice in chunk["choices"]:
                parts.append(choice.get("delta", {}).get("content") or choice.get("text") or "")
        return "".join(parts)

    def json(self) -> Any:
        return json.loads(self.raw)


def post(url: str, body: dict[str, Any], fault: str | None = None) -> Reply:
    """POST and read the whole answer, keeping whatever arrived before a broken transfer."""
    headers = {"X-Mock-Fault": fault} if fault else {}
    raw = bytearray()
    with httpx.Client(trust_env=False, timeout=30) as client:
        sent = time.perf_counter()
        with client.stream("POST", url, json=body, headers=headers) as response:
            reply = Reply(response.status_code, dict(response.headers), b"", sent=sent)
            try:
                for piece in response.iter_raw():
                    raw += piece
                    reply.event_times.append(time.perf_counter())
            except httpx.HTTPError as exc:
                reply.error = exc
    reply.raw = bytes(raw)
    return reply


def classify(status: int, raw: bytes, error: Exception | None) -> str:
    """Which fault kind a streamed chat answer shows on the wire ("ok" when none)."""
    if status in (500, 429):
        return f"error_{status}"
    if error is not None:
        return "drop_mid_stream"
    reply = Reply(status, {}, raw)
    events = reply.events
    if any(e != "[DONE]" and not _is_json(e) for e in events):
        return "malformed_sse"
    finishes = [c["finish_reason"] for ch in reply.chunks() for c in ch["choices"] if c.get("finish_reason")]
    if "[DONE]" not in events and not finishes:
        return "no_done"
    if events[-1] == "[DONE]" and finishes == ["stop"] and reply.text() == "":
        return "empty_completion"
    assert events[-1] == "[DONE]" and reply.text(), raw
    return "ok"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


async def _stream_many(url: str, count: int, parallel: int) -> list[str]:
    """Send `count` streamed chat requests, at most `parallel` at once; the wire class of each, in send order."""
    body = chat(stream=True)
    semaphore = asyncio.Semaphore(parallel)
    async with aiohttp.ClientSession(trust_env=False) as session:
        async def one() -> str:
            async with semaphore:
                try:
                    async with session.post(url, json=body) as response:
                        try:
                            raw = await response.read()
                        except aiohttp.ClientPayloadError as exc:
                            return classify(response.status, b"", exc)
                        return classify(response.status, raw, None)
                except aiohttp.ServerDisconnectedError as exc:
                    return classify(0, b"", exc)
        return await asyncio.gather(*(one() for _ in range(count)))


def stream_many(url: str, count: int, parallel: int = 32) -> list[str]:
    return asyncio.run(_stream_many(url, count, parallel))


# --- servers shared by this module ---------------------------------------------------------------

@pytest.fixture(scope="module")
def fast() -> Iterator[MockHandle]:
    """No delays, 8 tokens: for wire-format checks."""
    with start_mock(ttft_ms=0, itl_ms=0, output_tokens=8) as server:
        yield server


ANSWERS = [
    {"match": "capital of France", "reply": "The capital of France is Paris."},
    {"match": "France", "reply": "never used: the row above matches first"},
    {"match": "2+2", "reply": "  4\n"},
    {"match": "long", "reply": " ".join(f"w{i}" for i in range(20))},
]


@pytest.fixture(scope="module")
def answering() -> Iterator[MockHandle]:
    with start_mock(ttft_ms=0, itl_ms=0, output_tokens=5, answers=ANSWERS) as server:
        yield server


# --- config, plan and text rules (no server) -------------------------------------------------------

@pytest.mark.parametrize(("changes", "field_name"), [
    ({"ttft_ms": -1}, "ttft_ms"),
    ({"itl_ms": -0.5}, "itl_ms"),
    ({"jitter_ms": float("nan")}, "jitter_ms"),
    ({"output_tokens": 0}, "output_tokens"),
    ({"tokens_per_chunk": 0}, "tokens_per_chunk"),
    ({"port": 70000}, "port"),
    ({"fault_cycle": 0}, "fault_cycle"),
    ({"error_500": 1.5}, "error_500"),
    ({"no_done": -0.1}, "no_done"),
    ({"error_500": 0.6, "drop_mid_stream": 0.5}, "drop_mid_stream"),
    ({"empty_completion": 0.0001}, "empty_completion"),
    ({"answers": [{"match": "x"}]}, "answers"),
    ({"answers": "/no/such/answers.jsonl"}, "answers"),
    ({"model": " "}, "model"),
])
def test_config_rejects_bad_values_naming_the_field(changes: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ConfigError) as info:
        MockConfig(**changes)
    assert info.value.field == field_name


def test_config_from_dict_rejects_unknown_fields_and_reads_answer_files(tmp_path: Any) -> None:
    with pytest.raises(ConfigError) as info:
        MockConfig.from_dict({"ttft": 5})
    assert info.value.field == "ttft"
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"match": "a", "reply": "b"}\n\n{"match": "c", "reply": "d", "id": 7}\n')
    assert MockConfig(answers=str(jsonl)).answer_rows() == (("a", "b"), ("c", "d"))
    array = tmp_path / "a.json"
    array.write_text(json.dumps([{"match": "x", "reply": "y"}]))
    assert MockConfig(answers=str(array)).answer_rows() == (("x", "y"),)
    jsonl.write_text('{"match": "a", "reply": "b"}\nnot json\n')
    with pytest.raises(ConfigError, match="line 2"):
        MockConfig(answers=str(jsonl))


def test_fault_plan_counts_are_exact_in_every_window_and_seeded() -> None:
    shares = {"error_500": 0.1, "error_429": 0.05, "drop_mid_stream": 0.013, "no_done": 0.3333}
    plan = FaultPlan(shares, 1000, seed=7)
    sequence = plan.peek(3000)
    expected = {"error_500": 100, "error_429": 50, "drop_mid_stream": 13, "no_done": 333}
    for start in range(0, 2001, 97):
        counts = Counter(k for k in sequence[start:start + 1000] if k is not None)
        assert counts == expected, start
    assert [plan.next() for _ in range(50)] == sequence[:50]
    assert FaultPlan(shares, 1000, seed=7).peek(1000) == sequence[:1000]
    assert FaultPlan(shares, 1000, seed=8).peek(1000) != sequence[:1000]


@pytest.mark.parametrize("text", ["The capital is Paris.", "  4\n", "a\tb  c ", " ", "", "line one\nline two"])
def test_tokens_join_back_to_the_text(text: str) -> None:
    tokens = split_tokens(text)
    assert "".join(tokens) == text
    assert len(tokens) == max(len(text.split()), 1 if text else 0)


def test_jitter_moves_deadlines_within_bounds_reproducibly_and_never_backwards() -> None:
    cfg = MockConfig(ttft_ms=100, itl_ms=2, jitter_ms=3)
    deadlines = _deadlines(cfg, 10.0, 10.1, 50, seed=123)
    assert deadlines is not None and deadlines == _deadlines(cfg, 10.0, 10.1, 50, seed=123)
    assert deadlines != _deadlines(cfg, 10.0, 10.1, 50, seed=124)
    assert all(b >= a for a, b in itertools.pairwise(deadlines))
    for i, at in enumerate(deadlines):
        grid = 10.0 + 0.1 + i * 0.002
        assert at <= grid + 0.003 + 1e-9
    assert _deadlines(MockConfig(), 10.0, 10.2, 5, seed=1) is None


# --- wire format ---------------------------------------------------------------------------------

def test_chat_stream_is_role_chunk_then_one_chunk_per_token_then_done(fast: MockHandle) -> None:
    reply = post(fast.chat_url, chat(stream=True))
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/event-stream")
    events = reply.events
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[0]["choices"][0]["finish_reason"] is None
    content = chunks[1:]
    assert len(content) == 8
    assert [c["choices"][0]["delta"]["content"] for c in content] == [FILLER[0]] + [" " + w for w in FILLER[1:8]]
    assert [c["choices"][0]["finish_reason"] for c in content] == [None] * 7 + ["stop"]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["model"] == "m"
    assert not any("usage" in c for c in chunks)


def test_chat_stream_usage_chunk_only_when_asked(fast: MockHandle) -> None:
    reply = post(fast.chat_url, chat("one two three four", stream=True, stream_options={"include_usage": True}))
    events = reply.events
    assert events[-1] == "[DONE]"
    usage_chunk = json.loads(events[-2])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 4, "completion_tokens": 8, "total_tokens": 12}
    assert json.loads(events[-3])["choices"][0]["finish_reason"] == "stop"
    no_usage = post(fast.chat_url, chat(stream=True, stream_options={"include_usage": False}))
    assert not any("usage" in c for c in no_usage.chunks())


def test_completions_stream_has_text_chunks_and_no_role_chunk(fast: MockHandle) -> None:
    reply = post(fast.completions_url, {"model": "m", "prompt": "say something", "max_tokens": 3, "stream": True,
                                        "stream_options": {"include_usage": True}})
    chunks = reply.chunks()
    assert reply.events[-1] == "[DONE]"
    assert [c["choices"][0]["text"] for c in chunks[:-1]] == [FILLER[0], " " + FILLER[1], " " + FILLER[2]]
    assert chunks[2]["choices"][0]["finish_reason"] == "length"
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


def test_non_stream_answers_always_carry_usage(fast: MockHandle) -> None:
    content = [{"type": "text", "text": "look at"}, {"type": "image_url", "image_url": {"url": "x"}},
               {"type": "text", "text": "this picture"}]
    body = {"model": "m", "messages": [{"role": "system", "content": "be brief"},
                                       {"role": "user", "content": content}]}
    data = post(fast.chat_url, body).json()
    assert data["object"] == "chat.completion" and data["model"] == "m"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": " ".join(FILLER[:8])}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"] == {"prompt_tokens": 6, "completion_tokens": 8, "total_tokens": 14}
    data = post(fast.completions_url, {"model": "m", "prompt": [1, 2, 3]}).json()
    assert data["object"] == "text_completion" and data["choices"][0]["text"] == " ".join(FILLER[:8])
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 8, "total_tokens": 11}


@pytest.mark.parametrize("stream", [True, False])
def test_max_tokens_cuts_with_length_and_min_tokens_extends(fast: MockHandle, stream: bool) -> None:
    def run(**extra: Any) -> tuple[int, str, str]:
        reply = post(fast.chat_url, chat(stream=stream, stream_options={"include_usage": True} if stream else None,
                                         **extra))
        if stream:
            chunks = reply.chunks()
            finish = [c["finish_reason"] for ch in chunks for c in ch["choices"] if c["finish_reason"]]
            return chunks[-1]["usage"]["completion_tokens"], finish[0], reply.text()
        data = reply.json()
        return (data["usage"]["completion_tokens"], data["choices"][0]["finish_reason"],
                data["choices"][0]["message"]["content"])

    assert run(max_tokens=3) == (3, "length", " ".join(FILLER[:3]))
    assert run(max_completion_tokens=2)[:2] == (2, "length")
    assert run(max_tokens=8)[:2] == (8, "stop")
    assert run(max_tokens=100)[:2] == (8, "stop")
    tokens, finish, text = run(min_tokens=12, max_tokens=50)
    assert (tokens, finish, len(text.split())) == (12, "stop", 12)
    assert run(min_tokens=10, max_tokens=10)[:2] == (10, "stop")


def test_role_chunk_off_packed_chunks_and_separate_finish(mock_factory: Any) -> None:
    mock = mock_factory(ttft_ms=0, itl_ms=0, output_tokens=8, role_chunk=False, tokens_per_chunk=3,
                        separate_finish_chunk=True)
    reply = post(mock.chat_url, chat(stream=True, stream_options={"include_usage": True}))
    chunks = reply.chunks()
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"content": " ".join(FILLER[:3])}
    assert [d.get("content") for d in deltas] == [" ".join(FILLER[:3]), " " + " ".join(FILLER[3:6]),
                                                  " " + " ".join(FILLER[6:8]), None]
    assert deltas[-1] == {}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]] == [None, None, None, "stop"]
    assert chunks[-1]["usage"]["completion_tokens"] == 8


def test_models_health_and_stats(fast: MockHandle) -> None:
    fast.reset()
    with httpx.Client(trust_env=False) as client:
        models = client.get(fast.models_url).json()
        assert models["object"] == "list" and models["data"][0]["id"] == "mock-model"
        assert client.get(fast.root_url + "/health").json() == {"status": "ok"}
        client.post(fast.chat_url, json=chat("a b", stream=True))
        client.post(fast.completions_url, json={"prompt": "x y z", "max_tokens": 2})
        bad = client.post(fast.chat_url, content=b"{not json")
    assert bad.status_code == 400 and "error" in bad.json()
    stats = fast.stats()
    assert stats["requests"] == 2 and stats["streamed"] == 1 and stats["bad_requests"] == 1
    assert stats["requests_by_path"] == {"/v1/chat/completions": 1, "/v1/completions": 1}
    assert (stats["prompt_tokens"], stats["completion_tokens"], stats["completed"]) == (5, 10, 2)
    assert stats["faults"] == dict.fromkeys(FAULT_KINDS, 0) and stats["in_flight"] == 0
    assert stats["schedule_lag_ms"]["first_chunk"]["count"] == 1
    assert fast.reset()["requests"] == 0 and fast.stats()["requests"] == 0


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m"}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"content": "no role"}]}, "messages"),
    (chat(max_tokens=0), "max_tokens"),
    (chat(max_tokens="5"), "max_tokens"),
    (chat(min_tokens=9, max_tokens=3), "min_tokens"),
    (chat(n=2), "n"),
    (chat(stream="yes"), "stream"),
])
def test_bad_chat_bodies_get_400_with_an_openai_error(fast: MockHandle, body: dict[str, Any], param: str) -> None:
    reply = post(fast.chat_url, body)
    assert reply.status == 400
    error = reply.json()["error"]
    assert error["param"] == param and error["code"] == 400 and error["message"]


def test_unknown_forced_fault_is_a_400(fast: MockHandle) -> None:
    reply = post(fast.chat_url, chat(), fault="explode")
    assert reply.status == 400 and "X-Mock-Fault" in reply.json()["error"]["message"]


# --- answers table -------------------------------------------------------------------------------

def test_answers_first_matching_row_of_the_last_user_message(answering: MockHandle) -> None:
    body = {"messages": [{"role": "user", "content": "what is 2+2?"}, {"role": "assistant", "content": "4"},
                         {"role": "user", "content": "And the capital of France?"}], "stream": True}
    reply = post(answering.chat_url, body)
    assert reply.text() == "The capital of France is Paris."
    assert len([c for c in reply.chunks() if c["choices"][0]["delta"].get("content")]) == 6
    data = post(answering.chat_url, chat("what is 2+2")).json()
    assert data["choices"][0]["message"]["content"] == "  4\n"
    assert data["usage"]["completion_tokens"] == 1


def test_answers_are_not_cut_to_output_tokens_but_to_max_tokens(answering: MockHandle) -> None:
    long_reply = " ".join(f"w{i}" for i in range(20))
    data = post(answering.completions_url, {"prompt": "a long one please"}).json()
    assert data["choices"][0]["text"] == long_reply and data["usage"]["completion_tokens"] == 20
    assert data["choices"][0]["finish_reason"] == "stop"
    reply = post(answering.chat_url, chat("long", stream=True, max_tokens=4))
    assert reply.text() == "w0 w1 w2 w3"
    data = post(answering.chat_url, chat("nothing matches here")).json()
    assert data["choices"][0]["message"]["content"] == " ".join(FILLER[:5])


def test_inline_answers_in_process() -> None:
    async def main() -> dict[str, Any]:
        cfg = MockConfig(port=0, ttft_ms=0, itl_ms=0, answers=[{"match": "ping", "reply": "pong"}])
        async with MockServer(cfg) as server, aiohttp.ClientSession(trust_env=False) as session:
            async with session.post(server.chat_url, json=chat("ping?")) as response:
                data = await response.json()
            assert server.stats()["requests"] == 1
            return data

    assert asyncio.run(main())["choices"][0]["message"]["content"] == "pong"


# --- faults --------------------------------------------------------------------------------------

def test_forced_errors_carry_status_body_and_retry_after(fast: MockHandle) -> None:
    fast.reset()
    for kind, status in (("error_500", 500), ("error_429", 429)):
        reply = post(fast.chat_url, chat(stream=True), fault=kind)
        assert reply.status == status
        error = reply.json()["error"]
        assert error["code"] == status and error["message"] and error["type"]
    assert post(fast.chat_url, chat(), fault="error_429").headers["retry-after"] == "1"
    stats = fast.stats()
    assert stats["faults_forced"]["error_429"] == 2 and stats["faults"]["error_500"] == 1
    assert stats["plan_position"] == 0  # forced faults do not use plan slots


def test_drop_mid_stream_breaks_the_transfer_after_some_chunks(fast: MockHandle) -> None:
    reply = post(fast.chat_url, chat(stream=True), fault="drop_mid_stream")
    assert reply.status == 200 and isinstance(reply.error, httpx.RemoteProtocolError)
    assert "[DONE]" not in reply.raw.decode()
    received = [c for c in reply.chunks() if c["choices"][0]["delta"].get("content")]
    assert len(received) == 4  # half of the 8 tokens, then the connection is aborted
    whole = post(fast.chat_url, chat(), fault="drop_mid_stream")
    assert whole.status == 200 and isinstance(whole.error, httpx.RemoteProtocolError)
    assert 0 < len(whole.raw) < int(whole.headers["content-length"])


def test_malformed_sse_sends_one_line_that_is_not_json(fast: MockHandle) -> None:
    reply = post(fast.chat_url, chat(stream=True), fault="malformed_sse")
    bad = [e for e in reply.events if e != "[DONE]" and not _is_json(e)]
    assert len(bad) == 1 and bad[0].startswith("{")
    assert reply.events[-1] == "[DONE]" and reply.error is None
    body = post(fast.chat_url, chat(), fault="malformed_sse")
    assert body.status == 200 and not _is_json(body.raw.decode())


def test_no_done_ends_cleanly_without_finish_reason_or_done(fast: MockHandle) -> None:
    reply = post(fast.chat_url, chat(stream=True, stream_options={"include_usage": True}), fault="no_done")
    assert reply.status == 200 and reply.error is None
    assert "[DONE]" not in reply.events and reply.text() == " ".join(FILLER[:8])
    assert all(c["choices"][0]["finish_reason"] is None for c in reply.chunks())
    data = post(fast.chat_url, chat(), fault="no_done").json()
    assert data["choices"][0]["finish_reason"] is None


def test_empty_completion_is_well_formed_and_finished_but_empty(fast: MockHandle) -> None:
    reply = post(fast.chat_url, chat(stream=True, stream_options={"include_usage": True}), fault="empty_completion")
    assert reply.status == 200 and reply.events[-1] == "[DONE]"
    assert reply.text() == ""
    assert [c["finish_reason"] for ch in reply.chunks() for c in ch["choices"] if c["finish_reason"]] == ["stop"]
    assert reply.chunks()[-1]["usage"]["completion_tokens"] == 0
    data = post(fast.completions_url, {"prompt": "x"}, fault="empty_completion").json()
    assert data["choices"][0]["text"] == "" and data["usage"]["completion_tokens"] == 0
    assert data["choices"][0]["finish_reason"] == "stop"


def test_each_fault_kind_seen_on_the_wire_by_the_classifier(fast: MockHandle) -> None:
    for kind in FAULT_KINDS:
        reply = post(fast.chat_url, chat(stream=True), fault=kind)
        assert classify(reply.status, reply.raw, reply.error) == kind
    reply = post(fast.chat_url, chat(stream=True), fault="none")
    assert classify(reply.status, reply.raw, reply.error) == "ok"


def test_forcing_none_answers_normally_on_a_failing_server(mock_factory: Any) -> None:
    mock = mock_factory(ttft_ms=0, itl_ms=0, output_tokens=3, error_500=1.0)
    assert post(mock.chat_url, chat()).status == 500
    reply = post(mock.chat_url, chat(stream=True), fault="none")
    assert classify(reply.status, reply.raw, reply.error) == "ok"
    stats = mock.stats()
    assert (stats["requests"], stats["plan_position"], stats["faults"]["error_500"]) == (2, 1, 1)


SHARES = {"error_500": 0.1, "error_429": 0.05, "drop_mid_stream": 0.02, "malformed_sse": 0.03, "no_done": 0.04,
          "empty_completion": 0.06}


def test_fault_counts_are_exact_over_any_1000_consecutive_requests(mock_factory: Any) -> None:
    mock = mock_factory(ttft_ms=0, itl_ms=0, output_tokens=4, seed=3, **SHARES)
    expected = {kind: round(share * 1000) for kind, share in SHARES.items()}
    head = stream_many(mock.chat_url, 137)  # shift the window off the cycle boundary
    window = stream_many(mock.chat_url, 1000, parallel=48)
    counts = Counter(window)
    assert {k: counts[k] for k in FAULT_KINDS} == expected
    assert counts["ok"] == 1000 - sum(expected.values())
    stats = mock.stats()
    assert stats["requests"] == 1137 and stats["plan_position"] == 1137
    assert stats["faults"] == {k: v + Counter(head)[k] for k, v in expected.items()}
    assert stats["in_flight"] == 0


def test_same_seed_same_fault_sequence_other_seed_differs(mock_factory: Any) -> None:
    first = mock_factory(ttft_ms=0, itl_ms=0, output_tokens=2, seed=11, **SHARES)
    second = mock_factory(ttft_ms=0, itl_ms=0, output_tokens=2, seed=11, **SHARES)
    other = mock_factory(ttft_ms=0, itl_ms=0, output_tokens=2, seed=12, **SHARES)
    sequences = [stream_many(m.chat_url, 120, parallel=1) for m in (first, second, other)]
    assert sequences[0] == sequences[1]
    assert sequences[0] != sequences[2]
    assert len(set(sequences[0])) > 3
    first.reset()
    assert stream_many(first.chat_url, 120, parallel=1) == sequences[0]


def test_client_disconnect_is_counted_and_the_server_keeps_serving(mock_factory: Any) -> None:
    mock = mock_factory(ttft_ms=0, itl_ms=50, output_tokens=40)

    async def leave_early() -> None:
        async with aiohttp.ClientSession(trust_env=False) as session, \
                session.post(mock.chat_url, json=chat(stream=True)) as response:
            await response.content.readline()

    asyncio.run(leave_early())
    deadline = time.monotonic() + 10
    while mock.stats()["client_disconnects"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = mock.stats()
    assert stats["client_disconnects"] == 1 and stats["in_flight"] == 0
    assert post(mock.chat_url, chat(max_tokens=1)).status == 200


# --- timing --------------------------------------------------------------------------------------

async def _timed_streams(url: str, count: int) -> list[tuple[float, float, float, int]]:
    """(role chunk ms, ttft ms, tpot ms, content chunks) per stream, all started together."""
    async with aiohttp.ClientSession(trust_env=False) as session:
        async def one() -> tuple[float, float, float, int]:
            sent = time.perf_counter()
            role = first = last = 0.0
            chunks = 0
            async with session.post(url, json=chat(stream=True)) as response:
                async for line in response.content:
                    now = time.perf_counter()
                    if b'"role":"assistant"' in line:
                        role = now
                    elif b'"delta":{"content":' in line:
                        first = first or now
                        last = now
                        chunks += 1
            return (role - sent) * 1000, (first - sent) * 1000, (last - first) * 1000 / (chunks - 1), chunks
        return await asyncio.gather(*(one() for _ in range(count)))


def test_timing_follows_ttft_and_itl_at_low_concurrency(mock_factory: Any) -> None:
    mock = mock_factory(ttft_ms=100, itl_ms=10, output_tokens=20)
    results = asyncio.run(_timed_streams(mock.chat_url, 4))
    assert all(r[3] == 20 for r in results)
    assert all(r[0] < 60 for r in results)  # the role chunk goes out at once
    ttft = statistics.median(r[1] for r in results)
    tpot = statistics.median(r[2] for r in results)
    assert 98 <= ttft <= 170, ttft
    assert 9.0 <= tpot <= 12.5, tpot
    sent = time.perf_counter()
    data = post(mock.chat_url, chat()).json()
    latency = (time.perf_counter() - sent) * 1000
    assert data["usage"]["completion_tokens"] == 20
    assert 289 <= latency <= 450, latency  # ttft + 19 * itl
    lag = mock.stats()["schedule_lag_ms"]["all_chunks"]
    assert lag["count"] == 80 and lag["p50"] is not None


def test_ttft_counts_from_each_requests_own_arrival_on_a_kept_alive_connection(mock_factory: Any) -> None:
    mock = mock_factory(ttft_ms=100, itl_ms=0, output_tokens=2)
    with httpx.Client(trust_env=False, timeout=30) as client:
        latencies = []
        for pause in (0.0, 0.3, 0.0):
            time.sleep(pause)
            sent = time.perf_counter()
            assert client.get(mock.root_url + "/health").status_code == 200
            assert client.post(mock.chat_url, json=chat()).status_code == 200
            latencies.append((time.perf_counter() - sent) * 1000)
    # A stale arrival time (from an earlier request on the connection) would answer at once.
    assert all(100 <= ms <= 400 for ms in latencies), latencies


def test_arrival_is_stamped_once_per_request_and_never_while_busy() -> None:
    from evalsvc.core.mock._server import _Arrivals

    class Inner(asyncio.Protocol):
        def __init__(self) -> None:
            self.received: list[bytes] = []

        def data_received(self, data: bytes) -> None:
            self.received.append(data)

    class Clock:
        now = 1.0

        def time(self) -> float:
            return self.now

    clock, inner = Clock(), Inner()
    arrivals = _Arrivals(inner, clock)  # type: ignore[arg-type]
    arrivals.data_received(b"POST / HTTP/1.1\r\n")
    clock.now = 2.0
    arrivals.data_received(b"rest of the body")
    assert arrivals.arrival == 1.0 and inner.received == [b"POST / HTTP/1.1\r\n", b"rest of the body"]
    arrivals.busy = True
    arrivals.arrival = None
    arrivals.data_received(b"pipelined request")
    assert arrivals.arrival is None


def test_session_mock_server_fixture(mock_server: MockHandle) -> None:
    before = mock_server.stats()["requests"]
    data = post(mock_server.chat_url, chat()).json()
    assert data["usage"]["completion_tokens"] == 16
    assert mock_server.stats()["requests"] == before + 1
