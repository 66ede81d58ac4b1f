"""Anthropic's Messages API (`POST /v1/messages`).

URL: the complete endpoint, e.g. https://api.anthropic.com/v1/messages (the same URL streams, with
`"stream": true` in the body). Auth: `x-api-key: <key>` and `anthropic-version: 2023-06-01` (override it
with `headers`). System messages of a prompt go to the top-level `system` field.

Stream: SSE with `event:` lines. message_start (its message.usage.input_tokens is the prompt size),
content_block_start, content_block_delta (text_delta `text`, thinking_delta `thinking`, input_json_delta
`partial_json`: the output), content_block_stop, ping, message_delta (delta.stop_reason and the
cumulative usage.output_tokens), message_stop (the end). An `event: error` with {"type": "error",
"error": {"type", "message"}} may arrive mid-stream (e.g. overloaded_error); non-streamed errors have the
same body with a 4xx/5xx status.

Prompt tokens are input_tokens + cache_creation_input_tokens + cache_read_input_tokens (Anthropic
counts cached prompt tokens apart from input_tokens).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from .._kinds import FailureKind
from ._base import BodyResult, StreamParser, decode_body
from ..._secrets import has_key
from ._common import error_text, merge_extra, split_system

ANTHROPIC_VERSION = "2023-06-01"

_TEXT = re.compile(rb'"text"\s*:\s*"[^"]')
_THINKING = re.compile(rb'"thinking"\s*:\s*"[^"]')
_JSON = re.compile(rb'"partial_json"\s*:\s*"[^"]')
_PROMPT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _prompt_tokens(usage: dict[str, Any]) -> int | None:
    counts = [usage[k] for k in _PROMPT_KEYS if isinstance(usage.get(k), int)]
    return sum(counts) if counts else None


class AnthropicStream(StreamParser):
    __slots__ = ("_started",)

    def __init__(self) -> None:
        super().__init__()
        self._started = False  # message_start seen (it opens the stream: looked for until found)

    def _count_output(self, block: bytes) -> int:
        # a content_block_delta carries one delta (text, thinking or partial tool input): one per event
        k = len(_TEXT.findall(block))
        if b'"thinking"' in block:
            k += len(_THINKING.findall(block))
        if b'"partial_json"' in block:
            k += len(_JSON.findall(block))
        return k

    def _inspect_block(self, block: bytes) -> None:
        if not self._started:
            pos = block.find(b'"message_start"')
            if pos >= 0:
                self._started = True
                self._inspect(self._event_at(block, pos))
        # message_delta (stop reason, cumulative usage), message_stop and error events, wherever they are
        if b'"message_' in block:
            self._inspect_all(block, b'"message_delta"')
            self._inspect_all(block, b'"message_stop"')
        self._inspect_all(block, b'"error"')

    def _inspect(self, event: dict[str, Any] | None) -> None:
        if event is None:
            return
        kind = event.get("type")
        if kind == "message_delta":
            delta = event.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self.finished = True
            usage = event.get("usage")
            if isinstance(usage, dict):
                if isinstance(usage.get("output_tokens"), int):
                    self.output_tokens = usage["output_tokens"]
                prompt = _prompt_tokens(usage)  # newer servers repeat the (final) input counts here
                if prompt is not None:
                    self.prompt_tokens = prompt
        elif kind == "message_start":
            message = event.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict) and self.prompt_tokens is None:
                self.prompt_tokens = _prompt_tokens(usage)
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            self._fail(FailureKind.STREAM_ERROR, error_text(event.get("error", event)))


class AnthropicDialect:
    name = "anthropic"

    def url(self, config: Any, stream: bool) -> str:
        return str(config.url)

    def headers(self, config: Any) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if has_key(config.api_key):
            headers["x-api-key"] = str(config.api_key)
        return headers

    def build(self, config: Any, prompt: Any) -> bytes:
        system, messages = split_system(prompt)
        body: dict[str, Any] = {"model": config.model, "max_tokens": prompt.max_tokens or config.max_tokens,
                                "messages": messages, "temperature": config.temperature}
        if system is not None:
            body["system"] = system
        if config.stream:
            body["stream"] = True
        return orjson.dumps(merge_extra(body, config.extra_body))

    def stream_parser(self, config: Any) -> StreamParser:
        return AnthropicStream()

    def answer(self, event: dict[str, Any]) -> str:
        """The answer text (not thinking) of a stream event (text_delta) or a whole message."""
        if event.get("type") == "content_block_delta":
            delta = event.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                return str(delta["text"])
            return ""
        content = event.get("content") if event.get("type") == "message" else None
        return "".join(str(b["text"]) for b in content or () if isinstance(b, dict) and b.get("type") == "text"
                       and isinstance(b.get("text"), str))

    def parse_body(self, body: bytes) -> BodyResult:
        obj, out = decode_body(body)
        if obj is None:
            return out
        if obj.get("type") == "error" or obj.get("error") is not None:
            out.error, out.detail = FailureKind.RESPONSE_ERROR, error_text(obj.get("error", obj))
            return out
        content = obj.get("content")
        if not isinstance(content, list):
            out.error, out.detail = FailureKind.MALFORMED, "response has no content list"
            return out
        parts: list[str] = []
        tool = False
        for block in content:
            if not isinstance(block, dict):
                continue
            for key in ("thinking", "text"):
                if isinstance(block.get(key), str):
                    parts.append(block[key])
            tool = tool or block.get("type") == "tool_use"
        out.output_text = "".join(parts)
        out.has_output = bool(out.output_text) or tool
        out.finished = bool(obj.get("stop_reason"))
        usage = obj.get("usage")
        if isinstance(usage, dict):
            if isinstance(usage.get("output_tokens"), int):
                out.output_tokens = usage["output_tokens"]
            out.prompt_tokens = _prompt_tokens(usage)
        return out


DIALECT = AnthropicDialect()
__all__ = ["ANTHROPIC_VERSION", "DIALECT", "AnthropicStream"]
