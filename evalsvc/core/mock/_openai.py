"""The OpenAI wire format: /v1/chat/completions, /v1/completions and /v1/models, shaped like vLLM's.

Streamed chunks are built from per-response byte templates, so a content chunk costs one join of
pre-encoded pieces rather than a json.dumps.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from ._config import MockConfig
from ._dialect import BadRequest, MockDialect, Endpoint, GenRequest
from ._text import count_words

_DONE = b"data: [DONE]\n\n"
_REASONS = {"stop": b'"stop"', "length": b'"length"'}


def _int_field(body: dict[str, Any], name: str, low: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"'{name}' must be an integer, got {value!r}", name)
    if value < low:
        raise BadRequest(f"'{name}' must be >= {low}, got {value}", name)
    return value


def _common(body: Any, cfg: MockConfig, match_text: str, prompt_tokens: int,
            max_names: tuple[str, ...], cache_words: list[str] | None) -> GenRequest:
    model = body.get("model", cfg.model)
    if not isinstance(model, str):
        raise BadRequest("'model' must be a string", "model")
    max_tokens = None
    for name in max_names:
        max_tokens = _int_field(body, name, 1)
        if max_tokens is not None:
            break
    min_tokens = _int_field(body, "min_tokens", 0)
    if min_tokens is not None and max_tokens is not None and min_tokens > max_tokens:
        raise BadRequest(f"'min_tokens' ({min_tokens}) must be <= 'max_tokens' ({max_tokens})", "min_tokens")
    n = body.get("n", 1)
    if n != 1:
        raise BadRequest("the mock answers n=1 only", "n")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false", "stream")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise BadRequest("'stream_options' must be an object", "stream_options")
        include_usage = options.get("include_usage") is True
    ignore_eos = body.get("ignore_eos", False)
    if ignore_eos is None:
        ignore_eos = False
    if not isinstance(ignore_eos, bool):
        raise BadRequest("'ignore_eos' must be true or false", "ignore_eos")
    return GenRequest(model=model, match_text=match_text, prompt_tokens=prompt_tokens, max_tokens=max_tokens,
                      min_tokens=min_tokens, stream=stream, include_usage=include_usage, ignore_eos=ignore_eos,
                      cache_words=cache_words)


def _message_text(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        texts = [part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"]
        return " ".join(t for t in texts if isinstance(t, str))
    raise BadRequest(f"messages[{index}].content must be a string or a list of parts", "messages")


def parse_chat(body: Any, cfg: MockConfig) -> GenRequest:
    """Read a chat completion request. The answers table is matched against the last user message."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list", "messages")
    words = 0
    last_user: str | None = None
    cache_words: list[str] | None = [] if cfg.cache_tokens or cfg.prefill_ms_per_token else None
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"messages[{i}] must be an object with a 'role'", "messages")
        text = _message_text(message.get("content"), i)
        words += count_words(text)
        if cache_words is not None:
            cache_words.append(f"<{message['role']}>")
            cache_words.extend(text.split())
        if message["role"] == "user":
            last_user = text
    if last_user is None:
        last_user = _message_text(messages[-1].get("content"), len(messages) - 1)
    return _common(body, cfg, last_user, words, ("max_completion_tokens", "max_tokens"), cache_words)


def parse_completion(body: Any, cfg: MockConfig) -> GenRequest:
    """Read a (legacy) completion request: one prompt, as a string, a one-string list or token ids."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    cache_words: list[str] | None = None
    if isinstance(prompt, str):
        text, words = prompt, count_words(prompt)
    elif isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        text, words = "", len(prompt)
        cache_words = [str(t) for t in prompt]
    else:
        raise BadRequest("'prompt' must be a string, a list of one string, or a list of token ids", "prompt")
    return _common(body, cfg, text, words, ("max_tokens",), cache_words)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens}


class _ChunkWire:
    """Byte templates shared by the chat and completion streams: `head` is the chunk's opening fields."""

    __slots__ = ("_rid", "_created", "_model", "_head", "_pre", "_include_usage")

    object_name = b""
    content_key = b""
    trailer = b""
    body_object = ""

    def __init__(self, req: GenRequest, rid: str, created: int) -> None:
        self._rid, self._created, self._model = rid, created, req.model
        head = orjson.dumps({"id": rid, "object": self.object_name.decode(), "created": created,
                             "model": req.model})[:-1]
        self._head = b"data: " + head
        self._pre = self._head + b',"choices":[{"index":0,' + self.content_key
        self._include_usage = req.include_usage

    def _choice(self, text: str) -> dict[str, Any]:
        """The body's one choice up to its finish_reason."""
        raise NotImplementedError

    def body(self, text: str, reason: str | None, prompt_tokens: int, completion_tokens: int) -> bytes:
        return orjson.dumps({
            "id": self._rid, "object": self.body_object, "created": self._created, "model": self._model,
            "choices": [{**self._choice(text), "finish_reason": reason}],
            "usage": _usage(prompt_tokens, completion_tokens),
        })

    def delta(self, text_json: bytes) -> bytes:
        return b"".join((self._pre, text_json, self.trailer, b"null}]}\n\n"))

    def last_delta(self, text_json: bytes, reason: str) -> bytes:
        return b"".join((self._pre, text_json, self.trailer, _REASONS[reason], b"}]}\n\n"))

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        if not self._include_usage:
            return b""
        return self._head + b',"choices":[],"usage":' + orjson.dumps(_usage(prompt_tokens, completion_tokens)) \
            + b"}\n\n"

    def done(self) -> bytes:
        return _DONE

    def malformed(self) -> bytes:
        # A chunk cut off inside its JSON: a well-framed SSE event whose data does not parse.
        return self._pre + b'"cut off here\n\n'


class ChatWire(_ChunkWire):
    """chat.completion.chunk stream and chat.completion body."""

    __slots__ = ("_role",)

    object_name = b"chat.completion.chunk"
    content_key = b'"delta":{"content":'
    trailer = b'},"logprobs":null,"finish_reason":'
    body_object = "chat.completion"

    def __init__(self, req: GenRequest, rid: str, created: int, cfg: MockConfig) -> None:
        super().__init__(req, rid, created)
        self._role = cfg.role_chunk

    def open(self) -> bytes:
        if not self._role:
            return b""
        return self._head + b',"choices":[{"index":0,"delta":{"role":"assistant","content":""},' \
            b'"logprobs":null,"finish_reason":null}]}\n\n'

    def finish(self, reason: str) -> bytes:
        return self._head + b',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":' \
            + _REASONS[reason] + b"}]}\n\n"

    def _choice(self, text: str) -> dict[str, Any]:
        return {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None}


class CompletionWire(_ChunkWire):
    """text_completion stream and body (vLLM adds stop_reason)."""

    __slots__ = ()

    object_name = b"text_completion"
    content_key = b'"text":'
    trailer = b',"logprobs":null,"stop_reason":null,"finish_reason":'
    body_object = "text_completion"

    def __init__(self, req: GenRequest, rid: str, created: int, cfg: MockConfig) -> None:
        super().__init__(req, rid, created)

    def open(self) -> bytes:
        return b""

    def finish(self, reason: str) -> bytes:
        return self.last_delta(b'""', reason)

    def _choice(self, text: str) -> dict[str, Any]:
        return {"index": 0, "text": text, "logprobs": None, "stop_reason": None}


def error_body(status: int, message: str, kind: str, param: str | None) -> bytes:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    return orjson.dumps({"error": {"message": message, "type": kind, "param": param, "code": status}})


def _models_route(cfg: MockConfig) -> list[web.RouteDef]:
    created = int(time.time())
    body = orjson.dumps({"object": "list", "data": [
        {"id": cfg.model, "object": "model", "created": created, "owned_by": "evalsvc-mock", "root": cfg.model},
    ]})

    async def models(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return [web.get("/v1/models", models)]


DIALECT = MockDialect(
    name="openai",
    endpoints=(
        Endpoint("/v1/chat/completions", parse_chat, ChatWire, id_prefix="chatcmpl"),
        Endpoint("/v1/completions", parse_completion, CompletionWire, id_prefix="cmpl"),
    ),
    error_body=error_body,
    extra_routes=_models_route,
)
