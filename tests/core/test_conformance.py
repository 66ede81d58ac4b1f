"""Wire conformance: documented provider streams replayed byte for byte, and the reading each must get.

Each case is a response written from a provider's public documentation (OpenAI chat and completions with
`stream_options.include_usage`, DeepSeek/vLLM reasoning deltas, tool-call deltas; Anthropic Messages with
ping, thinking, tool use and error events; Gemini `streamGenerateContent?alt=sse` with thoughts, function
calls and Google-Search grounding; DashScope SSE with reasoning and error frames), served by a replay server
on 127.0.0.1 in one of the legal HTTP framings (Content-Length, chunked, close-delimited HTTP/1.1 and
HTTP/1.0) and SSE framings (LF, CRLF, CR, comments, fields, multi-line data), cut into packets at awkward
places (between CR and LF, inside `data:`, inside a UTF-8 character). The expected reading: success or the
failure kind, output tokens and where they came from, output chunks, and the TTFT read in the packet whose
arrival completes the first output event (between the server's send time of that packet and the next).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from evalsvc import PerfConfig
from evalsvc.core.perf._metrics import tpot_ms
from evalsvc.core.perf._sender import Outcome, Sender
from evalsvc.core.perf.dialects import get_dialect
from tests.core._replay import Reply, serve

PATHS = {"openai": "/v1/chat/completions", "completions": "/v1/completions", "anthropic": "/v1/messages",
         "gemini": "/v1beta/models/gemini-2.0-flash:generateContent",
         "dashscope": "/api/v1/services/aigc/text-generation/generation"}


@dataclass
class Case:
    api: str
    reply: Reply
    kind: str | None = None  # expected failure kind (None: success)
    chunks: int | None = None
    tokens: int | None = None
    usage: bool | None = None  # tokens came from the server's usage
    prompt: int | None = None
    ttft_at: int | None = None  # body offset whose arrival completes the first output event
    stream: bool = True
    streamed: bool | None = None  # the answer was read as a stream (default: = stream)
    extra: dict[str, Any] = field(default_factory=dict)


# -- stream builders ------------------------------------------------------------------------------------

def dumps(obj: Any, spaced: bool = False) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": ") if spaced else (",", ":"))


def sse(events: list[str], nl: str = "\n") -> bytes:
    """Events (their lines joined by LF) with `nl` line endings, each closed by a blank line."""
    return "".join(e.replace("\n", nl) + nl + nl for e in events).encode()


def first_dispatch(body: bytes, marker: bytes) -> int:
    """Offset of the byte that completes the blank line after the event holding `marker`."""
    i = body.index(marker)
    ends = 0
    while True:
        c = body[i:i + 1]
        if c in (b"\r", b"\n"):
            ends += 1
            if ends == 2:
                return i
            if c == b"\r" and body[i + 1:i + 2] == b"\n":
                i += 1
        else:
            ends = 0
        i += 1


def per_event(body: bytes, sep: bytes = b"\n\n") -> list[bytes]:
    parts = body.split(sep)
    return [p + sep for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def split_after(body: bytes, needle: bytes, keep: int) -> list[bytes]:
    """Cut `body` `keep` bytes into every occurrence of `needle`."""
    out, start, pos = [], 0, body.find(needle)
    while pos >= 0:
        out.append(body[start:pos + keep])
        start = pos + keep
        pos = body.find(needle, pos + 1)
    out.append(body[start:])
    return [p for p in out if p]


def every(body: bytes, n: int) -> list[bytes]:
    return [body[i:i + n] for i in range(0, len(body), n)]


PAD = "p" * 300  # makes chunks large, so a read holds output far from its head and tail


def oai(delta: dict[str, Any] | None = None, finish: str | None = None, usage: dict[str, int] | None = None,
        spaced: bool = False, pad: bool = False, text: str | None = None) -> str:
    """One OpenAI chat (or, with `text`, completions) chunk with include_usage (usage null until the last)."""
    obj: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    if pad:
        obj["system_fingerprint"] = PAD
    if usage is not None:
        obj["choices"] = []
    elif text is not None:
        obj["object"] = "text_completion"
        obj["choices"] = [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]
    else:
        obj["choices"] = [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
    obj["usage"] = usage
    return "data: " + dumps(obj, spaced)


WORDS = ["The", " sky", " is", " blue", "."]
USAGE5 = {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}


def chat_events(words: list[str] = WORDS, spaced: bool = False, done: bool = True) -> list[str]:
    evs = [oai({"role": "assistant", "content": ""}, spaced=spaced)]
    evs += [oai({"content": w}, spaced=spaced) for w in words]
    evs += [oai({}, "stop", spaced=spaced), oai(usage=USAGE5, spaced=spaced)]
    return evs + (["data: [DONE]"] if done else [])


CHAT = sse(chat_events())
CHAT_CRLF = sse(chat_events(), "\r\n")
CHAT_CR = sse(chat_events(), "\r")
OK5: dict[str, Any] = {"kind": None, "chunks": 5, "tokens": 5, "usage": True, "prompt": 9}


def multiline(ev: str) -> str:
    """An event's JSON pretty-printed over several `data:` lines (joined back with LF by the reader)."""
    obj = json.loads(ev[len("data: "):])
    return "\n".join("data: " + line for line in json.dumps(obj, indent=1).split("\n"))


def reasoning_stream() -> bytes:
    evs = [oai({"role": "assistant", "content": ""})]
    evs += [oai({"content": ""}, pad=True) for _ in range(4)]  # keep-alive deltas: > 1 KB before reasoning
    evs += [oai({"reasoning_content": f"step {i} "}, pad=True) for i in range(10)]
    evs += [oai({"content": f"w{i} "}, pad=True) for i in range(20)]  # > 4 KB after it
    evs += [oai({}, "stop"), oai(usage={"prompt_tokens": 9, "completion_tokens": 30, "total_tokens": 39}),
            "data: [DONE]"]
    return sse(evs)


def tool_stream() -> bytes:
    evs = [oai({"role": "assistant", "content": ""})]
    evs += [oai({"content": f"c{i} "}, pad=True) for i in range(5)]
    evs.append(oai({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                    "function": {"name": "get_weather", "arguments": ""}}]}))
    evs += [oai({"tool_calls": [{"index": 0, "function": {"arguments": f"a{i}"}}]}) for i in range(42)]
    evs += [oai({"content": f"d{i} "}, pad=True) for i in range(12)]
    evs += [oai({}, "stop"), "data: [DONE]"]
    return sse(evs)


def completions() -> bytes:
    evs = [oai(text=w) for w in WORDS] + [oai(text="", finish="length"), oai(usage=USAGE5), "data: [DONE]"]
    return sse(evs)


CHAT_BODY = dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "The sky is blue."},
                                "logprobs": None, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}}).encode()


# Anthropic Messages streaming (event types and shapes as documented)
def an_event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: " + dumps({"type": kind, **data}, spaced=True)


AN_START = an_event("message_start", {"message": {
    "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude", "stop_reason": None,
    "stop_sequence": None, "usage": {"input_tokens": 25, "output_tokens": 1}}})


def an_delta(index: int, delta: dict[str, Any]) -> str:
    return an_event("content_block_delta", {"index": index, "delta": delta})


def an_tail(output_tokens: int, stop: str = "end_turn") -> list[str]:
    return [an_event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                       "usage": {"output_tokens": output_tokens}}),
            an_event("message_stop", {})]


def anthropic_text(nl: str = "\n") -> bytes:
    evs = [AN_START, an_event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
           an_event("ping", {})]
    evs += [an_delta(0, {"type": "text_delta", "text": w}) for w in ["Hello", "!", " How", " can I help?"]]
    evs += [an_event("content_block_stop", {"index": 0}), *an_tail(15)]
    return sse(evs, nl)


def anthropic_thinking() -> bytes:
    evs = [AN_START,
           an_event("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": ""}})]
    evs += [an_delta(0, {"type": "thinking_delta", "thinking": t}) for t in ["Let me", " think", " it through."]]
    evs += [an_delta(0, {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}),
            an_event("content_block_stop", {"index": 0}),
            an_event("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}})]
    evs += [an_delta(1, {"type": "text_delta", "text": w}) for w in ["27 * 453", " = 12231"]]
    evs += [an_event("content_block_stop", {"index": 1}), *an_tail(40)]
    return sse(evs)


def anthropic_tool() -> bytes:
    evs = [AN_START, an_event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
           an_delta(0, {"type": "text_delta", "text": "Checking the weather."}),
           an_event("content_block_stop", {"index": 0}),
           an_event("content_block_start", {"index": 1, "content_block": {
               "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
           an_delta(1, {"type": "input_json_delta", "partial_json": ""})]
    evs += [an_delta(1, {"type": "input_json_delta", "partial_json": p})
            for p in ['{"location":', ' "San Fra', 'ncisco, CA"', "}"]]
    evs += [an_event("content_block_stop", {"index": 1}), *an_tail(89, "tool_use")]
    return sse(evs)


def anthropic_error() -> bytes:
    evs = [AN_START, an_event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
           an_delta(0, {"type": "text_delta", "text": "Hello"}),
           an_event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})]
    return sse(evs)


AN_BODY = dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                 "content": [{"type": "text", "text": "Hi! My name is Claude."}], "stop_reason": "end_turn",
                 "stop_sequence": None, "usage": {"input_tokens": 2095, "output_tokens": 503}}).encode()


# Gemini streamGenerateContent?alt=sse (CRLF on Google's servers)
def ge(parts: list[dict[str, Any]] | None, finish: str | None = None, usage: dict[str, int] | None = None,
       grounding: dict[str, Any] | None = None, **top: Any) -> str:
    obj: dict[str, Any] = dict(top)
    if parts is not None:
        cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            cand["finishReason"] = finish
        if grounding:
            cand["groundingMetadata"] = grounding
        obj["candidates"] = [cand]
    if usage:
        obj["usageMetadata"] = usage
    obj.setdefault("modelVersion", "gemini-2.0-flash")
    return "data: " + dumps(obj)


def ge_usage(out: int, thoughts: int = 0) -> dict[str, int]:
    u = {"promptTokenCount": 8, "candidatesTokenCount": out, "totalTokenCount": 8 + out + thoughts}
    if thoughts:
        u["thoughtsTokenCount"] = thoughts
    return u


def grounding(answer: list[str], n: int = 60) -> dict[str, Any]:
    supports = []
    start = 0
    for i in range(n):  # 60: ~6 KB, as in a real answer
        text = answer[i % len(answer)]
        supports.append({"segment": {"startIndex": start, "endIndex": start + len(text), "text": text},
                         "groundingChunkIndices": [i % 3], "confidenceScores": [0.9]})
        start += len(text)
    return {"webSearchQueries": ["who won euro 2024"],
            "searchEntryPoint": {"renderedContent": "<style>.container{}</style><div>...</div>"},
            "groundingChunks": [{"web": {"uri": f"https://vertexaisearch.example/{i}", "title": "uefa.com"}}
                                for i in range(3)],
            "groundingSupports": supports}


GE_WORDS = ["Spain won", " Euro 2024,", " beating England 2-1."]


def gemini_text(nl: str = "\r\n", ground: bool = False, supports: int = 60) -> bytes:
    evs = [ge([{"text": w}], usage=ge_usage(i + 1)) for i, w in enumerate(GE_WORDS[:-1])]
    evs.append(ge([{"text": GE_WORDS[-1]}], "STOP", ge_usage(12), grounding(GE_WORDS, supports) if ground else None))
    return sse(evs, nl)


def gemini_thoughts() -> bytes:
    evs = [ge([{"text": "**Planning** the answer", "thought": True}], usage=ge_usage(0, 20)),
           ge([{"text": "Checking the sums", "thought": True}], usage=ge_usage(0, 41)),
           ge([{"text": "The answer"}], usage=ge_usage(2, 41)),
           ge([{"text": " is 42."}], "STOP", ge_usage(6, 41))]
    return sse(evs, "\r\n")


def gemini_call() -> bytes:
    evs = [ge([{"functionCall": {"name": "get_weather", "args": {"location": "Boston"}}}], usage=ge_usage(5)),
           ge([{"text": ""}], "STOP", ge_usage(5))]
    return sse(evs, "\r\n")


GE_ERROR = sse([ge([{"text": "Spain"}], usage=ge_usage(1)),
                "data: " + dumps({"error": {"code": 503, "message": "The model is overloaded.",
                                            "status": "UNAVAILABLE"}})], "\r\n")
GE_BLOCKED = sse(["data: " + dumps({"promptFeedback": {"blockReason": "SAFETY"},
                                    "usageMetadata": {"promptTokenCount": 8}})], "\r\n")
GE_BODY = dumps({"candidates": [{"content": {"parts": [{"text": "".join(GE_WORDS)}], "role": "model"},
                                 "finishReason": "STOP", "groundingMetadata": grounding(GE_WORDS)}],
                 "usageMetadata": ge_usage(12)}).encode()


# DashScope native SSE (incremental_output, result_format=message)
def ds(i: int, content: str, finish: str = "null", reasoning: str | None = None, out: int = 1) -> str:
    msg: dict[str, Any] = {"content": content, "role": "assistant"}
    if reasoning is not None:
        msg["reasoning_content"] = reasoning
    data = {"output": {"choices": [{"message": msg, "finish_reason": finish}]},
            "usage": {"input_tokens": 11, "output_tokens": out, "total_tokens": 11 + out}, "request_id": "r-1"}
    return f"id:{i}\nevent:result\n:HTTP_STATUS/200\ndata:" + dumps(data)


def dashscope_text(nl: str = "\n") -> bytes:
    words = ["Hello", ", I am", " Qwen", "."]
    evs = [ds(i + 1, w, out=i + 1) for i, w in enumerate(words[:-1])]
    evs.append(ds(4, words[-1], "stop", out=4))
    return sse(evs, nl)


def dashscope_reasoning() -> bytes:
    evs = [ds(1, "", reasoning="Let me", out=1), ds(2, "", reasoning=" think", out=2),
           ds(3, "", reasoning=" carefully.", out=3), ds(4, "It is", reasoning="", out=4),
           ds(5, " 4.", "stop", reasoning="", out=5)]
    return sse(evs)


DS_ERROR = sse([ds(1, "Hello"), 'id:2\nevent:error\n:HTTP_STATUS/429\ndata:'
                + dumps({"code": "Throttling.RateQuota", "message": "Requests rate limit exceeded",
                         "request_id": "r-1"})])
DS_BODY = dumps({"output": {"choices": [{"message": {"content": "Hello, I am Qwen.", "role": "assistant"},
                                         "finish_reason": "stop"}]},
                 "usage": {"input_tokens": 11, "output_tokens": 5}, "request_id": "r-1"}).encode()


def one(body: bytes) -> list[bytes]:
    return [body]


CASES: dict[str, Case] = {
    # OpenAI chat, SSE framings
    "openai_lf": Case("openai", Reply(per_event(CHAT)), **OK5, ttft_at=first_dispatch(CHAT, b'"The"')),
    "openai_crlf": Case("openai", Reply(per_event(CHAT_CRLF, b"\r\n\r\n")), **OK5,
                        ttft_at=first_dispatch(CHAT_CRLF, b'"The"')),
    "openai_cr_only": Case("openai", Reply(per_event(CHAT_CR, b"\r\r")), **OK5,
                           ttft_at=first_dispatch(CHAT_CR, b'"The"')),
    "openai_split_between_cr_and_lf": Case("openai", Reply(split_after(CHAT_CRLF, b"\r\n", 1)), **OK5,
                                           ttft_at=first_dispatch(CHAT_CRLF, b'"The"')),
    "openai_split_inside_data": Case("openai", Reply(split_after(CHAT, b"data:", 2)), **OK5,
                                     ttft_at=first_dispatch(CHAT, b'"The"')),
    "openai_split_inside_utf8": Case("openai", Reply(split_after(sse(chat_events(["h\u00e9llo", " \u4e16\u754c", "!", " \U0001f600", "."])), "\u4e16".encode(), 1)),
                                     **OK5),
    "openai_comments": Case("openai", Reply(per_event(sse([": keep-alive"] + [e.replace("data:", ": c\ndata:", 1) for e in chat_events()] + [": bye"]))), **OK5),
    "openai_multiline_data": Case("openai", Reply(per_event(sse([multiline(e) for e in chat_events()[:-1]] + ["data: [DONE]"]))), **OK5),
    "openai_trailing_space": Case("openai", Reply(per_event(sse([e + " " for e in chat_events()]))), **OK5),
    "openai_no_space_after_colon": Case("openai", Reply(per_event(sse([e.replace("data: ", "data:") for e in chat_events()]))), **OK5),
    "openai_event_id_retry_fields": Case("openai", Reply(per_event(sse(["event: message\nid: 7\nretry: 1000\n" + e for e in chat_events()]))), **OK5),
    "openai_bom": Case("openai", Reply(every(b"\xef\xbb\xbf" + CHAT, 2)), **OK5),
    "openai_extra_blank_lines": Case("openai", Reply(per_event(CHAT.replace(b"\n\n", b"\n\n\n\n"))), **OK5),
    "openai_spaced_json": Case("openai", Reply(per_event(sse(chat_events(spaced=True)))), **OK5),
    "openai_one_read": Case("openai", Reply(one(CHAT)), **OK5, ttft_at=0),
    "openai_reasoning_mid_read": Case("openai", Reply([reasoning_stream()[:300], reasoning_stream()[300:]]),
                                      kind=None, chunks=30, tokens=30, usage=True, ttft_at=300),
    "openai_tool_calls_mid_read": Case("openai", Reply(one(tool_stream())), kind=None, chunks=60, tokens=60,
                                       usage=False, ttft_at=0),
    "completions_include_usage": Case("completions", Reply(per_event(completions())), **OK5,
                                      ttft_at=first_dispatch(completions(), b'"The"')),
    # OpenAI: HTTP framings
    "openai_chunked_misaligned": Case("openai", Reply(every(CHAT, 37), framing="chunked"), **OK5),
    "openai_close_delimited": Case("openai", Reply(per_event(CHAT), framing="close"), **OK5),
    "openai_http10": Case("openai", Reply(per_event(CHAT), framing="http10"), **OK5),
    "openai_body": Case("openai", Reply([CHAT_BODY], content_type="application/json"), stream=False,
                        kind=None, chunks=1, tokens=5, usage=True, prompt=9, ttft_at=0),
    "openai_body_close_delimited": Case("openai", Reply([CHAT_BODY], framing="http10",
                                                        content_type="application/json"),
                                        stream=False, kind=None, chunks=1, tokens=5, usage=True),
    "openai_stream_answered_with_body": Case("openai", Reply([CHAT_BODY], content_type="application/json"),
                                             kind=None, chunks=1, tokens=5, usage=True, streamed=False),
    # OpenAI: truncation and errors
    "openai_truncated_close": Case("openai", Reply(per_event(CHAT[:CHAT.index(b"blue") + 2]), framing="close"),
                                   kind="truncated"),
    "openai_truncated_length": Case("openai", Reply(per_event(CHAT[:CHAT.index(b"blue")]), cut=True),
                                    kind="truncated"),
    "openai_truncated_chunked": Case("openai", Reply(per_event(CHAT[:CHAT.index(b"blue")]), framing="chunked",
                                                     cut=True), kind="truncated"),
    "openai_unterminated_last_event": Case("openai", Reply(one(CHAT[:-1])), **OK5),
    "openai_error_event": Case("openai", Reply(per_event(sse([*chat_events()[:3], "data: " + dumps({"error": {"message": "upstream failed", "type": "server_error", "code": None}})]))),
                               kind="stream_error"),
    "openai_http_429": Case("openai", Reply([b'{"error":{"message":"Rate limit","type":"requests"}}'], status=429,
                                            content_type="application/json"), kind="http_429"),
    "openai_bad_json": Case("openai", Reply(per_event(sse([*chat_events()[:2], 'data: {"choices":[{"delta":{"content":"x']))),
                            kind="malformed"),
    "openai_empty_output": Case("openai", Reply(per_event(sse([oai({"role": "assistant", "content": ""}), oai({}, "stop"), "data: [DONE]"]))),
                                kind="empty_output"),
    "openai_no_done_after_finish": Case("openai", Reply(per_event(sse(chat_events(done=False)))), **OK5),
    # Anthropic
    "anthropic_text_ping": Case("anthropic", Reply(per_event(anthropic_text())), kind=None, chunks=4, tokens=15,
                                usage=True, prompt=25, ttft_at=first_dispatch(anthropic_text(), b'"Hello"')),
    "anthropic_crlf_split_cr_lf": Case("anthropic", Reply(split_after(anthropic_text("\r\n"), b"\r\n", 1)),
                                       kind=None, chunks=4, tokens=15, usage=True, prompt=25,
                                       ttft_at=first_dispatch(anthropic_text("\r\n"), b'"Hello"')),
    "anthropic_one_read": Case("anthropic", Reply(one(anthropic_text())), kind=None, chunks=4, tokens=15, usage=True),
    "anthropic_thinking": Case("anthropic", Reply(per_event(anthropic_thinking())), kind=None, chunks=5, tokens=40,
                               usage=True, ttft_at=first_dispatch(anthropic_thinking(), b'"Let me"')),
    "anthropic_tool_use": Case("anthropic", Reply(per_event(anthropic_tool())), kind=None, chunks=5, tokens=89,
                               usage=True),
    "anthropic_error_event": Case("anthropic", Reply(per_event(anthropic_error())), kind="stream_error"),
    "anthropic_close_delimited": Case("anthropic", Reply(per_event(anthropic_text()), framing="close"),
                                      kind=None, chunks=4, tokens=15, usage=True),
    "anthropic_body": Case("anthropic", Reply([AN_BODY], content_type="application/json"), stream=False,
                           kind=None, chunks=1, tokens=503, usage=True, prompt=2095),
    # Gemini
    "gemini_text_crlf": Case("gemini", Reply(per_event(gemini_text(), b"\r\n\r\n")), kind=None, chunks=3, tokens=12,
                             usage=True, prompt=8, ttft_at=first_dispatch(gemini_text(), b"Spain won")),
    "gemini_thoughts": Case("gemini", Reply(per_event(gemini_thoughts(), b"\r\n\r\n")), kind=None, chunks=4,
                            tokens=47, usage=True),
    "gemini_function_call": Case("gemini", Reply(per_event(gemini_call(), b"\r\n\r\n")), kind=None, chunks=1,
                                 tokens=5, usage=True),
    "gemini_grounding": Case("gemini", Reply(per_event(gemini_text(ground=True), b"\r\n\r\n")), kind=None,
                             chunks=3, tokens=12, usage=True),
    "gemini_grounding_small": Case("gemini", Reply(per_event(gemini_text(ground=True, supports=3), b"\r\n\r\n")),
                                   kind=None, chunks=3, tokens=12, usage=True),  # segment.text is not output
    "gemini_grounding_one_read": Case("gemini", Reply(one(gemini_text(ground=True))), kind=None, chunks=3,
                                      tokens=12, usage=True, ttft_at=0),
    "gemini_grounding_lf_close_delimited": Case("gemini", Reply(per_event(gemini_text("\n", ground=True)),
                                                                framing="close"), kind=None, chunks=3, tokens=12,
                                                usage=True),
    "gemini_error_event": Case("gemini", Reply(per_event(GE_ERROR, b"\r\n\r\n")), kind="stream_error"),
    "gemini_prompt_blocked": Case("gemini", Reply(one(GE_BLOCKED)), kind="stream_error"),
    "gemini_body_grounding": Case("gemini", Reply([GE_BODY], content_type="application/json"), stream=False,
                                  kind=None, chunks=1, tokens=12, usage=True, prompt=8),
    # DashScope
    "dashscope_text": Case("dashscope", Reply(per_event(dashscope_text())), kind=None, chunks=4, tokens=4,
                           usage=True, prompt=11, ttft_at=first_dispatch(dashscope_text(), b'"Hello"')),
    "dashscope_cr_only": Case("dashscope", Reply(per_event(dashscope_text("\r"), b"\r\r")), kind=None, chunks=4,
                              tokens=4, usage=True, ttft_at=first_dispatch(dashscope_text("\r"), b'"Hello"')),
    "dashscope_reasoning": Case("dashscope", Reply(per_event(dashscope_reasoning())), kind=None, chunks=5, tokens=5,
                                usage=True, ttft_at=first_dispatch(dashscope_reasoning(), b"Let me")),
    "dashscope_error_frame": Case("dashscope", Reply(per_event(DS_ERROR)), kind="stream_error"),
    "dashscope_body": Case("dashscope", Reply([DS_BODY], content_type="application/json"), stream=False,
                           kind=None, chunks=1, tokens=5, usage=True, prompt=11),
}


async def replay(case: Case) -> Outcome:
    server, port = await serve(case.reply)
    api = "openai" if case.api == "completions" else case.api
    config = PerfConfig(model="m", url=f"http://127.0.0.1:{port}{PATHS[case.api]}", api=api,
                        stream=case.stream, timeout=20, connect_timeout=5, dataset="random", prompt_tokens=4)
    sender = Sender(get_dialect(api), config, [b"{}"], [0])
    try:
        return await sender.send(0, None)
    finally:
        sender.close()
        server.close()
        await server.wait_closed()


def segment_of(reply: Reply, offset: int) -> int:
    seen = 0
    for k, seg in enumerate(reply.segments):
        seen += len(seg)
        if offset < seen:
            return k
    raise AssertionError("offset past the body")


@pytest.mark.parametrize("name", list(CASES))
def test_conformance(name: str) -> None:
    case = CASES[name]
    out = asyncio.run(replay(case))
    assert (out.kind, out.detail if out.kind else None)[0] == case.kind, out.detail
    if case.kind is not None:
        return
    assert out.chunks == case.chunks
    assert (out.output_tokens, out.usage) == (case.tokens, case.usage)
    if case.prompt is not None:
        assert out.prompt_tokens == case.prompt
    streamed = case.stream if case.streamed is None else case.streamed
    assert getattr(out, "streamed", streamed) == streamed
    if not streamed:
        assert tpot_ms(out) is None  # one body: no TPOT, never 0
    if case.ttft_at is not None:
        sent = case.reply.sent
        k = segment_of(case.reply, case.ttft_at)
        assert out.first is not None and sent[k] <= out.first
        if k + 1 < len(sent):
            assert out.first < sent[k + 1]  # read in that packet, not a later one


def test_the_suite_covers_every_dialect_and_framing() -> None:
    assert len(CASES) >= 50
    assert {c.api for c in CASES.values()} == set(PATHS)
    assert {c.reply.framing for c in CASES.values()} == {"length", "chunked", "close", "http10"}


# -- the fast path is exact: same reading as the event-by-event path, wherever the reads are cut ----------

def reading(api: str, reads: list[bytes]) -> tuple[Any, ...]:
    dialect = get_dialect("openai" if api == "completions" else api)
    config = PerfConfig(model="m", url="http://127.0.0.1:1" + PATHS[api], api="openai" if api == "completions" else api)
    parser = dialect.stream_parser(config)
    for k, data in enumerate(reads):
        parser.feed(data, float(k))
    parser.close(float(len(reads)))
    return (parser.n_output, parser.output_tokens, parser.prompt_tokens, parser.finished, parser.done,
            parser.error)


STREAMS = {name: c for name, c in CASES.items()
           if c.stream and c.reply.status == 200 and c.reply.content_type == "text/event-stream" and not c.reply.cut}


@pytest.mark.parametrize("name", list(STREAMS))
def test_fast_path_reads_like_the_exact_path(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalsvc.core.perf.dialects import _base

    case = STREAMS[name]
    body = b"".join(case.reply.segments)
    fast = reading(case.api, [body])
    for cut in range(1, len(body), max(1, len(body) // 97)):  # two reads, cut anywhere
        assert reading(case.api, [body[:cut], body[cut:]]) == fast, cut
    monkeypatch.setattr(_base, "_SIMPLE", __import__("re").compile(rb"(?!)"))  # every block the slow way
    assert reading(case.api, [body]) == fast
    assert reading(case.api, case.reply.segments) == fast


# -- the per-read choice: a read of one or two events is decoded, a larger one scanned; one reading ------------

def _parser_reading(api: str, reads: list[bytes]) -> tuple[tuple[Any, ...], int, Any]:
    dialect = get_dialect("openai" if api == "completions" else api)
    config = PerfConfig(model="m", url="http://127.0.0.1:1" + PATHS[api], api="openai" if api == "completions" else api)
    parser = dialect.stream_parser(config)
    for k, data in enumerate(reads):
        parser.feed(data, float(k))
    parser.close(float(len(reads)))
    return ((parser.n_output, parser.output_tokens, parser.prompt_tokens, parser.finished, parser.done,
             parser.error, parser.zero_gaps, len(parser.gaps)), parser.decoded, parser)


def _events_of(body: bytes) -> list[bytes]:
    sep = b"\r\n\r\n" if b"\r\n\r\n" in body else b"\r\r" if b"\r\r" in body else b"\n\n"
    return per_event(body, sep)


@pytest.mark.parametrize("name", [n for n, c in STREAMS.items() if c.api in ("openai", "completions")])
def test_one_or_two_events_a_read_decode_to_the_scans_reading(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalsvc.core.perf.dialects.openai import OpenAIStream

    case = STREAMS[name]
    body = b"".join(case.reply.segments)
    events = _events_of(body)
    scanned, _, _ = _parser_reading(case.api, [body])
    one, decoded, _ = _parser_reading(case.api, events)
    pairs, _, _ = _parser_reading(case.api, [b"".join(events[i:i + 2]) for i in range(0, len(events), 2)])
    # counts, usage, finish and errors agree; the gaps follow the reads (one read: every gap is a zero gap)
    assert one[:6] == scanned[:6] and pairs[:6] == scanned[:6]
    assert one[6] + one[7] == scanned[6] + scanned[7] == max(0, scanned[0] - 1)
    # a read holding one event of one `data:` line with an object is decoded; comments, fields, multi-line
    # data and [DONE] are scanned
    one_line = re.compile(rb"(?:\xef\xbb\xbf)?data: ?\{[^\r\n]*(?:\r\n\r\n|\r\r|\n\n)")
    assert decoded == sum(1 for e in events if one_line.fullmatch(e))
    monkeypatch.setattr(OpenAIStream, "_decodes", False)  # the same reads, every one scanned: the same reading
    assert _parser_reading(case.api, events)[:2] == (one, 0)


def test_decoded_reads_count_like_the_scan_for_several_choices_and_null_reasoning_keys(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from evalsvc.core.perf.dialects.openai import OpenAIStream

    def ev(obj: dict[str, Any]) -> bytes:
        return b"data: " + dumps(obj).encode() + b"\n\n"

    two = {"choices": [{"index": 0, "delta": {"content": "a"}}, {"index": 1, "delta": {"content": "b"}}]}
    nulls = {"choices": [{"index": 0, "delta": {"content": "a", "reasoning_content": None}},
                         {"index": 1, "delta": {"content": "b", "reasoning_content": None}}]}
    think = {"choices": [{"index": 0, "delta": {"reasoning": "hm"}}]}
    empty_tools = {"choices": [{"index": 0, "delta": {"content": "", "tool_calls": []}}]}
    call = {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}}]}
    usage = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 6}}
    end = [ev({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}), ev(usage), b"data: [DONE]\n\n"]
    stream = [ev(two), ev(nulls), ev(think), ev(empty_tools), ev(call), *end]
    decoded, n, _ = _parser_reading("openai", stream)
    monkeypatch.setattr(OpenAIStream, "_decodes", False)
    scanned, none, _ = _parser_reading("openai", stream)
    assert (n, none) == (7, 0)
    assert decoded == scanned
    # per read: two choices with content count 2; an event naming a reasoning key counts once
    assert decoded[:3] == (2 + 1 + 1 + 0 + 1, 6, 3)


def test_a_decoded_read_that_is_not_json_is_malformed() -> None:
    reads = [b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n', b'data: {"choices": [}\n\n']
    (n_output, *_), decoded, parser = _parser_reading("openai", reads)
    assert (n_output, decoded, parser.error) == (1, 2, "malformed")
    assert parser.detail is not None and parser.detail.startswith('bad event: data: {"choices": [}')
