"""Metric arithmetic on known timings, and the success rules applied to crafted responses."""

from __future__ import annotations

import json

import pytest

from evalsvc.core.perf._metrics import RunStats, tpot_ms, ttft_ms
from evalsvc.core.perf._sender import Outcome, Sender
from evalsvc.core.perf.dialects.openai import OpenAIStream


def outcome(index: int, sent: float, first: float | None, last: float | None, end: float, tokens: int,
            *, prompt: int = 10, gaps: list[float] | None = None, kind: str | None = None,
            scheduled: float | None = None, usage: bool = True) -> Outcome:
    o = Outcome(index, scheduled)
    o.sent, o.first, o.last, o.end = sent, first, last, end
    o.output_tokens, o.prompt_tokens, o.kind, o.usage = tokens, prompt, kind, usage
    o.gaps = None if gaps is None else [g * 1000.0 for g in gaps]  # given in s like the times; kept in ms
    o.status = 200 if kind is None else 500
    o.streamed = True
    return o


def test_metrics_on_known_timings() -> None:
    stats = RunStats(streamed=True)
    # request 0: sent at 0, first token at 0.2, last at 0.2 + 3*0.02, end 0.27, 4 tokens
    stats.add(outcome(0, 0.0, 0.2, 0.26, 0.27, 4, gaps=[0.02, 0.02, 0.02]))
    # request 1: sent at 0.1, first token at 0.4, last at 0.4 + 0.1, end 0.5, 2 tokens
    stats.add(outcome(1, 0.1, 0.4, 0.5, 0.5, 2, prompt=30, gaps=[0.1]))
    # request 2: one token: no TPOT
    stats.add(outcome(2, 0.2, 0.3, 0.3, 0.3, 1, gaps=[]))
    # request 3: failed: counted, but no timing or tokens
    stats.add(outcome(3, 0.3, None, None, 0.35, 0, kind="http_500"))
    m = stats.metrics()
    assert (m["requests_total"], m["requests_succeeded"], m["requests_failed"]) == (4, 3, 1)
    assert m["failures_by_kind"] == {"http_500": 1}
    assert m["duration_s"] == pytest.approx(0.5)  # last completion (0.5) - first send (0.0)
    assert m["request_throughput"] == pytest.approx(3 / 0.5)
    assert m["output_throughput"] == pytest.approx(7 / 0.5)
    assert m["total_throughput"] == pytest.approx((7 + 50) / 0.5)
    assert m["ttft_ms_mean"] == pytest.approx((200 + 300 + 100) / 3)
    assert m["tpot_ms_mean"] == pytest.approx((20 + 100) / 2)  # request 2 has none (not a zero)
    assert m["itl_ms_mean"] == pytest.approx((20 * 3 + 100) / 4)
    assert m["latency_ms_mean"] == pytest.approx((270 + 400 + 100) / 3)
    assert m["output_tokens_source"] == "usage"
    p = stats.percentiles()
    assert p["ttft_ms"]["p50"] == pytest.approx(200)
    assert p["tpot_ms"]["count"] == 2
    assert p["send_lag_ms"]["p50"] is None  # closed loop: no schedule, no lag
    json.dumps(p, allow_nan=False)  # never NaN


def test_tpot_is_undefined_below_two_tokens_or_without_stream() -> None:
    one = outcome(0, 0.0, 0.1, 0.1, 0.1, 1)
    assert tpot_ms(one) is None
    two = outcome(0, 0.0, 0.1, 0.3, 0.3, 2)
    assert tpot_ms(two) == pytest.approx(200)
    two.streamed = False  # answered with one body: no TPOT (never 0)
    assert tpot_ms(two) is None
    assert ttft_ms(two) == pytest.approx(100)


def test_no_successes_gives_nulls_not_zeros() -> None:
    stats = RunStats(streamed=True)
    stats.add(outcome(0, 0.0, None, None, 0.01, 0, kind="connection_error"))
    m = stats.metrics()
    assert m["request_throughput"] == 0.0
    for key in ("ttft_ms_mean", "tpot_ms_mean", "itl_ms_mean", "latency_ms_mean", "output_tokens_source"):
        assert m[key] is None


def test_open_loop_send_lag_and_scheduled_latency() -> None:
    stats = RunStats(streamed=True)
    stats.add(outcome(0, 1.005, 1.1, 1.2, 1.2, 3, scheduled=1.0))
    p = stats.percentiles()
    assert p["send_lag_ms"]["max"] == pytest.approx(5)
    assert p["latency_from_scheduled_ms"]["max"] == pytest.approx(200)


def test_token_source_is_reported() -> None:
    stats = RunStats(streamed=True)
    stats.add(outcome(0, 0, 0.1, 0.2, 0.2, 3, usage=False))
    assert stats.metrics()["output_tokens_source"] == "counted"
    stats.add(outcome(1, 0, 0.1, 0.2, 0.2, 3, usage=True))
    assert stats.metrics()["output_tokens_source"] == "mixed"


def test_merge_of_shards_equals_one_run() -> None:
    whole, a, b = RunStats(True), RunStats(True), RunStats(True)
    rows = [outcome(i, i * 0.1, i * 0.1 + 0.05, i * 0.1 + 0.08, i * 0.1 + 0.09, 4, gaps=[0.01, 0.01, 0.01])
            for i in range(10)]
    rows.append(outcome(10, 1.0, None, None, 1.2, 0, kind="timeout"))
    for i, o in enumerate(rows):
        whole.add(o)
        (a if i % 2 else b).add(o)
    a.merge(b)
    merged, expected = a.metrics(), whole.metrics()
    assert merged.pop("failures_by_kind") == expected.pop("failures_by_kind") == {"timeout": 1}
    assert merged == pytest.approx(expected)


# -- the success rules, on the wire format ----------------------------------------------------------

def sse(*events: object, done: bool = True) -> bytes:
    out = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return out + (b"data: [DONE]\n\n" if done else b"")


def chunk(content: str | None = None, finish: str | None = None, **delta: object) -> dict[str, object]:
    d = dict(delta)
    if content is not None:
        d["content"] = content
    return {"choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}


def finish_stream(body: bytes, pieces: int = 1) -> Outcome:
    parser = OpenAIStream()
    step = max(1, len(body) // pieces)
    t = 1.0
    for i in range(0, len(body), step):
        parser.feed(body[i:i + step], t)
        t += 0.01
    parser.close(t)
    o = Outcome(0, None)
    Sender._finish_stream(o, parser)
    return o


def test_role_only_chunk_does_not_stop_the_ttft_clock() -> None:
    body = sse(chunk("", role="assistant"), chunk("Hello"), chunk(" world", finish="stop"), USAGE)
    parser = OpenAIStream()
    parser.feed(body[: body.index(b"Hello") - 40], 1.0)  # the role chunk arrives alone
    assert parser.first_t is None
    parser.feed(body[body.index(b"Hello") - 40:], 2.0)
    parser.close(2.5)
    assert parser.first_t == 2.0 and parser.n_output == 2
    assert parser.output_tokens == 3 and parser.prompt_tokens == 7 and parser.finished and parser.done


def test_reasoning_and_tool_calls_count_as_output() -> None:
    body = sse({"choices": [{"delta": {"reasoning_content": "hmm"}, "finish_reason": None}]},
               {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "f"}}]},
                             "finish_reason": "tool_calls"}]})
    o = finish_stream(body)
    assert o.kind is None and o.chunks == 2


def test_compact_and_spaced_json_both_parse() -> None:
    compact = (b'data: {"choices":[{"delta":{"content":"a"},"finish_reason":null}]}\n\n'
               b'data: {"choices":[{"delta":{"content":"b"},"finish_reason":"stop"}]}\n\n'
               b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\ndata: [DONE]\n\n')
    o = finish_stream(compact, pieces=7)
    assert o.kind is None and o.chunks == 2 and o.output_tokens == 2 and o.usage


def test_crlf_event_boundaries() -> None:
    body = sse(chunk("a"), chunk("b", finish="stop")).replace(b"\n", b"\r\n")
    o = finish_stream(body, pieces=5)
    assert o.kind is None and o.chunks == 2


@pytest.mark.parametrize(("body", "kind"), [
    (sse(chunk("", role="assistant"), chunk(finish="stop"), {"choices": [], "usage": {"completion_tokens": 0}}),
     "empty_output"),
    (sse(chunk("a"), chunk("b"), done=False), "truncated"),
    (sse(chunk("a")) .replace(b"data: [DONE]", b"data: {not json"), "malformed"),
    (sse(chunk("a"), {"error": {"message": "overloaded", "code": 503}}), "stream_error"),
    (sse(chunk("a"), {"object": "error", "message": "boom"}), "stream_error"),
    # a line cut short (the structural rule: one JSON object per data line, closed on that line)
    (b'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"choices":[{"delta":{"content":"b"\n\n'
     b"data: [DONE]\n\n", "malformed"),
    (b'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: plain text\n\ndata: [DONE]\n\n', "malformed"),
])
def test_failed_streams_are_classified(body: bytes, kind: str) -> None:
    o = finish_stream(body, pieces=3)
    assert o.kind == kind


def test_finish_reason_without_done_is_a_success() -> None:
    o = finish_stream(sse(chunk("a"), chunk("b", finish="length"), done=False))
    assert o.kind is None and o.output_tokens == 2  # no usage: counted chunks


def test_itl_gaps_between_reads_and_zero_within_one_read() -> None:
    body = sse(chunk("a"), chunk("b"), chunk("c"), chunk("d", finish="stop"))
    events = body.split(b"\n\n")
    parser = OpenAIStream()
    parser.feed(events[0] + b"\n\n", 1.0)
    parser.feed(events[1] + b"\n\n" + events[2] + b"\n\n", 1.5)
    parser.feed(b"\n\n".join(events[3:]), 2.0)
    parser.close(2.1)
    assert parser.first_t == 1.0 and parser.last_t == 2.0
    assert parser.gaps == pytest.approx([500.0, 500.0])  # ms, between reads
    assert parser.zero_gaps == 1  # b and c came in one read


def test_last_event_without_blank_line_is_not_dispatched() -> None:
    # WHATWG SSE: an event the stream ends inside of (before its blank line) is discarded, as openai-python
    # and httpx-sse do; the stream then has no finish reason
    parser = OpenAIStream()
    parser.feed(b'data: {"choices":[{"delta":{"content":"a"},"finish_reason":"stop"}]}\n', 5.0)
    parser.close(6.0)
    assert parser.first_t is None and parser.n_output == 0 and not parser.finished


def test_empty_tool_call_lists_are_not_output_and_events_count_once() -> None:
    body = sse({"choices": [{"delta": {"role": "assistant", "content": "", "tool_calls": []}, "finish_reason": None}]},
               {"choices": [{"delta": {"content": "a", "tool_calls": []}, "finish_reason": None}]},
               {"choices": [{"delta": {"reasoning": "r", "reasoning_content": "r"}, "finish_reason": None}]},
               {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "f"}}]},
                             "finish_reason": "tool_calls"}]})
    parser = OpenAIStream()
    events = body.split(b"\n\n")
    parser.feed(events[0] + b"\n\n", 1.0)
    assert parser.first_t is None  # a role chunk with an empty tool list starts no clock
    parser.feed(b"\n\n".join(events[1:]), 2.0)
    parser.close(2.0)
    assert parser.first_t == 2.0 and parser.n_output == 3


def test_text_then_tool_calls_are_all_counted() -> None:
    body = sse(chunk("Let me check."),
               {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1"}]}, "finish_reason": None}]},
               {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]},
                             "finish_reason": "tool_calls"}]})
    assert finish_stream(body, pieces=3).chunks == 3


# -- config checks the library path gets too (the CLI and HTTP layers build the same config) --------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"headers": {"X": 1}}, "headers.X: expected a string"),
    ({"headers": {"X-Team": "\u2713"}}, "headers: header 'X-Team' must be latin-1 text"),
    ({"headers": {"X": "a\r\nInjected: 1"}}, "line break"),
    ({"extra_body": {"x": {1}}}, "extra_body: must be JSON-serialisable"),
    ({"stream": "false"}, "stream: expected true or false"),
    ({"number": 2.5}, "number: expected an integer or a list of integers"),
])
def test_library_config_errors_name_the_field(kwargs: dict[str, object], message: str) -> None:
    from evalsvc import ConfigError, PerfConfig

    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        PerfConfig(model="m", url="http://h/v1/chat/completions", **kwargs)  # type: ignore[arg-type]


def test_credentials_in_the_url_are_redacted() -> None:
    from evalsvc import PerfConfig

    config = PerfConfig(model="m", url="https://user:pw@h/v1beta/models/g:generateContent?key=SECRET&alt=sse")
    assert config.to_dict()["url"] == "https://***@h/v1beta/models/g:generateContent?key=***&alt=sse"
    assert "SECRET" not in repr(config) and "pw" not in repr(config)


def test_done_followed_by_a_keep_alive_comment_is_well_formed() -> None:
    o = finish_stream(sse(chunk("a"), chunk("b", finish="stop")) + b": keep-alive\n\n")
    assert o.kind is None and o.chunks == 2


def test_eval_config_refuses_url_credentials_without_echoing_them() -> None:
    from evalsvc import ConfigError, EvalConfig

    with pytest.raises(ConfigError) as info:  # evalscope's client cannot use them: the key goes in api_key
        EvalConfig(model="m", api_url="http://user:PASSW0RD@h/v1?api_key=QKEY", datasets=["gsm8k"])
    assert info.value.field == "api_url" and "PASSW0RD" not in str(info.value) and "QKEY" not in str(info.value)


def test_secret_named_extra_body_values_are_redacted_in_the_written_config() -> None:
    from evalsvc import PerfConfig

    config = PerfConfig(model="m", url="http://h/v1/chat/completions",
                        extra_body={"top_k": 5, "auth": {"apiKey": "SECRETVALUE1"}, "max_tokens_hint": 3})
    assert config.to_dict()["extra_body"] == {"top_k": 5, "auth": {"apiKey": "***"}, "max_tokens_hint": 3}
    assert config.extra_body["auth"]["apiKey"] == "SECRETVALUE1"  # what is sent is unchanged
