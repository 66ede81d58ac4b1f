"""Gemini's wire format: POST /v1beta/models/{model}:generateContent and :streamGenerateContent.

The model is taken from the path. streamGenerateContent answers SSE (as with `?alt=sse`, whatever the
query): `data: {GenerateContentResponse}` events separated by CRLF blank lines, each content event with
promptTokenCount in usageMetadata; the last event has empty text, finishReason STOP | MAX_TOKENS and the
full usageMetadata (candidatesTokenCount). There is no [DONE]. Fault mapping: no_done ends after the last
content event without finishReason; malformed_sse inserts an event whose data is cut off; error_500 /
error_429 answer {"error": {"code", "message", "status": "INTERNAL" | "RESOURCE_EXHAUSTED"}}.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ._config import MockConfig
from ._dialect import BadRequest, Endpoint, GenRequest, MockDialect, ReasonAtUsage
from ._openai import _int_field
from ._text import count_words

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS"}
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def _parts_text(parts: Any, where: str) -> str:
    if not isinstance(parts, list):
        raise BadRequest(f"{where}.parts must be a list", "contents")
    return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def _parse(body: Any, cfg: MockConfig, stream: bool) -> GenRequest:
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified", "contents")
    words = 0
    match = ""
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            raise BadRequest(f"contents[{i}] must be an object", "contents")
        role = content.get("role", "user")
        if role not in ("user", "model"):
            raise BadRequest(f"contents[{i}].role must be 'user' or 'model', got {role!r}", "contents")
        text = _parts_text(content.get("parts"), f"contents[{i}]")
        words += count_words(text)
        if role == "user":
            match = text
    system = body.get("systemInstruction")
    if system is not None:
        if not isinstance(system, dict):
            raise BadRequest("systemInstruction must be a Content object", "systemInstruction")
        words += count_words(_parts_text(system.get("parts"), "systemInstruction"))
    gen = body.get("generationConfig", {})
    if not isinstance(gen, dict):
        raise BadRequest("generationConfig must be an object", "generationConfig")
    max_tokens = _int_field(gen, "maxOutputTokens", 1)
    return GenRequest(model=cfg.model, match_text=match, prompt_tokens=words, max_tokens=max_tokens,
                      min_tokens=None, stream=stream, include_usage=True)


def parse_generate(body: Any, cfg: MockConfig) -> GenRequest:
    return _parse(body, cfg, False)


def parse_stream(body: Any, cfg: MockConfig) -> GenRequest:
    return _parse(body, cfg, True)


def model_from_path(req: GenRequest, request: web.Request) -> None:
    req.model = request.match_info.get("model", req.model)


class GenerateWire(ReasonAtUsage):
    """Events of one GenerateContentResponse stream, or its body."""

    __slots__ = ("_rid", "_model", "_pre", "_post")

    def __init__(self, req: GenRequest, rid: str, created: int, cfg: MockConfig) -> None:
        self._rid, self._model = rid, req.model
        self._pre = b'data: {"candidates":[{"content":{"parts":[{"text":'
        self._post = (b'}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":%d,"totalTokenCount":%d},'
                      % (req.prompt_tokens, req.prompt_tokens)
                      + b'"modelVersion":' + orjson.dumps(req.model) + b',"responseId":' + orjson.dumps(rid)
                      + b"}\r\n\r\n")
        super().__init__()

    def open(self) -> bytes:
        return b""

    def delta(self, text_json: bytes) -> bytes:
        return b"".join((self._pre, text_json, self._post))

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        return b"data: " + self._response("", self._reason, prompt_tokens, completion_tokens) + b"\r\n\r\n"

    def malformed(self) -> bytes:
        return self._pre + b'"cut off here\r\n\r\n'

    def body(self, text: str, reason: str | None, prompt_tokens: int, completion_tokens: int) -> bytes:
        return self._response(text, reason, prompt_tokens, completion_tokens)

    def _response(self, text: str, reason: str | None, prompt_tokens: int, completion_tokens: int) -> bytes:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if reason is not None:
            candidate["finishReason"] = _FINISH[reason]
        return orjson.dumps({
            "candidates": [candidate],
            "usageMetadata": {"promptTokenCount": prompt_tokens, "candidatesTokenCount": completion_tokens,
                              "totalTokenCount": prompt_tokens + completion_tokens},
            "modelVersion": self._model, "responseId": self._rid,
        })


def error_body(status: int, message: str, kind: str, param: str | None) -> bytes:
    """Google's error shape: {"error": {"code", "message", "status"}}."""
    state = _STATUS.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    return orjson.dumps({"error": {"code": status, "message": message, "status": state}})


DIALECT = MockDialect(
    name="gemini",
    endpoints=(
        Endpoint("/v1beta/models/{model}:generateContent", parse_generate, GenerateWire, id_prefix="gen",
                 from_request=model_from_path),
        Endpoint("/v1beta/models/{model}:streamGenerateContent", parse_stream, GenerateWire, id_prefix="gen",
                 from_request=model_from_path),
    ),
    error_body=error_body,
)
