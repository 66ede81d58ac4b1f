"""DashScope's native text-generation wire format: POST /api/v1/services/aigc/text-generation/generation.

The request streams when it carries `X-DashScope-SSE: enable`. The mock always streams incremental
output (each event holds only the new text) and answers in result_format "message" (a request asking for
"text" gets a 400). Stream events are `id:N`, `event:result`, `:HTTP_STATUS/200` and `data:{...}` lines;
finish_reason is "null" until the last event, which has empty content, finish_reason stop | length and
the exact usage (earlier events carry a running output count). There is no [DONE]. With `role_chunk`
the stream opens with an empty-content event. Fault mapping: no_done ends after the last content event
(finish_reason still "null"); malformed_sse inserts an event whose data is cut off; error_500 / error_429
answer {"code": "InternalError" | "Throttling.RateQuota", "message", "request_id"}.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ._config import MockConfig
from ._dialect import BadRequest, Endpoint, GenRequest, MockDialect, ReasonAtUsage
from ._openai import _int_field
from ._text import count_words

PATH = "/api/v1/services/aigc/text-generation/generation"
_CODES = {400: "InvalidParameter", 401: "InvalidApiKey", 404: "ModelNotFound", 429: "Throttling.RateQuota",
          500: "InternalError", 503: "ServiceUnavailable"}


def _content(content: Any, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal style [{"text": ...}]
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    raise BadRequest(f"input.messages[{i}].content must be a string or a list", "input.messages")


def parse_generation(body: Any, cfg: MockConfig) -> GenRequest:
    """Read a text-generation request (messages or prompt); streaming is decided by the header."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("Model not specified", "model")
    inp = body.get("input")
    if not isinstance(inp, dict):
        raise BadRequest("input must be an object with messages or prompt", "input")
    words = 0
    match = ""
    messages = inp.get("messages")
    if messages is not None:
        if not isinstance(messages, list) or not messages:
            raise BadRequest("input.messages must be a non-empty list", "input.messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise BadRequest(f"input.messages[{i}] must be an object with a role", "input.messages")
            text = _content(message.get("content"), i)
            words += count_words(text)
            if message["role"] == "user":
                match = text
    elif isinstance(inp.get("prompt"), str):
        match = inp["prompt"]
        words = count_words(match)
    else:
        raise BadRequest("input must hold messages or prompt", "input")
    params = body.get("parameters", {})
    if not isinstance(params, dict):
        raise BadRequest("parameters must be an object", "parameters")
    if params.get("result_format", "message") != "message":
        raise BadRequest("the mock answers result_format 'message' only", "parameters.result_format")
    max_tokens = _int_field(params, "max_tokens", 1)
    return GenRequest(model=model, match_text=match, prompt_tokens=words, max_tokens=max_tokens,
                      min_tokens=None, stream=False, include_usage=True)


def sse_from_header(req: GenRequest, request: web.Request) -> None:
    req.stream = request.headers.get("X-DashScope-SSE", "").strip().lower() == "enable"


class GenerationWire(ReasonAtUsage):
    """Events of one generation response (stream) or its body."""

    __slots__ = ("_rid", "_prompt_tokens", "_per_chunk", "_n", "_role")

    def __init__(self, req: GenRequest, rid: str, created: int, cfg: MockConfig) -> None:
        self._rid = rid
        self._prompt_tokens = req.prompt_tokens
        self._per_chunk = cfg.tokens_per_chunk
        self._role = cfg.role_chunk
        self._n = 0  # content events sent
        super().__init__()

    def _event(self, n: int, content: bytes, finish: bytes, output_tokens: int) -> bytes:
        p = self._prompt_tokens
        return b"".join((
            b"id:%d\nevent:result\n:HTTP_STATUS/200\n" % n,
            b'data:{"output":{"choices":[{"message":{"content":', content, b',"role":"assistant"},"finish_reason":',
            finish, b'}]},"usage":{"input_tokens":%d,"output_tokens":%d,"total_tokens":%d},"request_id":"'
            % (p, output_tokens, p + output_tokens), self._rid.encode(), b'"}\n\n',
        ))

    def open(self) -> bytes:
        return self._event(1, b'""', b'"null"', 0) if self._role else b""

    def delta(self, text_json: bytes) -> bytes:
        self._n += 1
        return self._event(self._n + self._role, text_json, b'"null"', self._n * self._per_chunk)

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        # built before the content events go out (the server prepares the tail first): number it from the count
        n = -(-completion_tokens // self._per_chunk) + self._role + 1
        return self._event(n, b'""', b'"%s"' % self._reason.encode(), completion_tokens)

    def malformed(self) -> bytes:
        return (b'id:0\nevent:result\n:HTTP_STATUS/200\n'
                b'data:{"output":{"choices":[{"message":{"content":"cut off here\n\n')

    def body(self, text: str, reason: str | None, prompt_tokens: int, completion_tokens: int) -> bytes:
        return orjson.dumps({
            "output": {"choices": [{"finish_reason": reason or "null",
                                    "message": {"role": "assistant", "content": text}}]},
            "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            "request_id": self._rid,
        })


def error_body(status: int, message: str, kind: str, param: str | None) -> bytes:
    """DashScope's error shape: {"code", "message", "request_id"}."""
    code = _CODES.get(status, "InternalError" if status >= 500 else "InvalidParameter")
    return orjson.dumps({"code": code, "message": message, "request_id": "mock-error"})


DIALECT = MockDialect(
    name="dashscope",
    endpoints=(Endpoint(PATH, parse_generation, GenerationWire, id_prefix="ds", from_request=sse_from_header),),
    error_body=error_body,
)
