"""Anthropic's Messages wire format: POST /v1/messages.

Stream (`"stream": true`): message_start (usage.input_tokens) and content_block_start go out with the
headers, then one content_block_delta (text_delta) per chunk; the end is content_block_stop,
message_delta (stop_reason end_turn | max_tokens, usage.output_tokens) and message_stop. Every event has
an `event:` line. Fault mapping: no_done ends the stream after the last delta with none of the closing
events; malformed_sse inserts a content_block_delta whose data is cut off; error_500 / error_429 answer
{"type": "error", "error": {"type": "api_error" | "rate_limit_error", "message"}}.
"""

from __future__ import annotations

from typing import Any

import orjson

from ._config import MockConfig
from ._dialect import BadRequest, MockDialect, Endpoint, GenRequest
from ._openai import _int_field
from ._text import count_words

_STOP = {"stop": "end_turn", "length": "max_tokens"}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    raise BadRequest(f"{where} must be a string or a list of content blocks", where.split("[")[0].split(".")[0])


def parse_messages(body: Any, cfg: MockConfig) -> GenRequest:
    """Read a Messages request; the answers table is matched against the last user message."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: field required", "model")
    max_tokens = _int_field(body, "max_tokens", 1)
    if max_tokens is None:
        raise BadRequest("max_tokens: field required", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: must be a non-empty list", "messages")
    words = count_words(_text(body["system"], "system")) if body.get("system") is not None else 0
    last_user = ""
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{i}.role: must be 'user' or 'assistant'", "messages")
        text = _text(message.get("content"), f"messages.{i}.content")
        words += count_words(text)
        if message["role"] == "user":
            last_user = text
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("stream: must be a boolean", "stream")
    return GenRequest(model=model, match_text=last_user, prompt_tokens=words, max_tokens=max_tokens,
                      min_tokens=None, stream=stream, include_usage=True)


def _event(name: bytes, data: bytes) -> bytes:
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


_DELTA_PRE = (b'event: content_block_delta\n'
              b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":')
_BLOCK_STOP = _event(b"content_block_stop", b'{"type":"content_block_stop","index":0}')
_MESSAGE_STOP = _event(b"message_stop", b'{"type":"message_stop"}')


class MessagesWire:
    """Events of one Messages response (stream) or its body."""

    __slots__ = ("_rid", "_model", "_prompt_tokens", "_reason")

    def __init__(self, req: GenRequest, rid: str, created: int, cfg: MockConfig) -> None:
        self._rid, self._model, self._prompt_tokens = rid, req.model, req.prompt_tokens
        self._reason = "stop"

    def open(self) -> bytes:
        start = {"type": "message_start", "message": {
            "id": self._rid, "type": "message", "role": "assistant", "content": [], "model": self._model,
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self._prompt_tokens, "output_tokens": 1}}}
        return (_event(b"message_start", orjson.dumps(start))
                + _event(b"content_block_start",
                         b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}')
                + _event(b"ping", b'{"type": "ping"}'))

    def delta(self, text_json: bytes) -> bytes:
        return b"".join((_DELTA_PRE, text_json, b"}}\n\n"))

    def last_delta(self, text_json: bytes, reason: str) -> bytes:
        self._reason = reason
        return b"".join((_DELTA_PRE, text_json, b"}}\n\n", _BLOCK_STOP))

    def finish(self, reason: str) -> bytes:
        self._reason = reason
        return _BLOCK_STOP

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        # message_delta carries both the stop reason and the final (cumulative) output count
        delta = {"type": "message_delta", "delta": {"stop_reason": _STOP[self._reason], "stop_sequence": None},
                 "usage": {"output_tokens": completion_tokens}}
        return _event(b"message_delta", orjson.dumps(delta))

    def done(self) -> bytes:
        return _MESSAGE_STOP

    def malformed(self) -> bytes:
        return _DELTA_PRE + b'"cut off here\n\n'

    def body(self, text: str, reason: str | None, prompt_tokens: int, completion_tokens: int) -> bytes:
        return orjson.dumps({
            "id": self._rid, "type": "message", "role": "assistant", "model": self._model,
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": _STOP[reason] if reason else None, "stop_sequence": None,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
        })


def error_body(status: int, message: str, kind: str, param: str | None) -> bytes:
    """Anthropic's error shape: {"type": "error", "error": {"type", "message"}}."""
    etype = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return orjson.dumps({"type": "error", "error": {"type": etype, "message": message}})


DIALECT = MockDialect(
    name="anthropic",
    endpoints=(Endpoint("/v1/messages", parse_messages, MessagesWire, id_prefix="msg"),),
    error_body=error_body,
)
