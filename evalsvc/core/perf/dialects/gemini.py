"""Google's Gemini API (`generateContent` / `streamGenerateContent?alt=sse`).

URL: pass the complete non-streaming URL, e.g.
https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent. Streamed runs
post to the same URL with the method changed to `:streamGenerateContent` and `alt=sse` added to the query
(the streaming URL is accepted too and turned back for `stream: false`). A URL that stops at the model
(`.../models/gemini-2.0-flash`) gets the method appended; one that stops before it (`.../v1beta`) gets
`/models/<model>:<method>`. Other query parameters are kept. Auth: `x-goog-api-key: <key>`.

Request: {"contents": [{"role": "user" | "model", "parts": [{"text"}]}], "systemInstruction",
"generationConfig": {"maxOutputTokens", "temperature"}}.

Stream: `data: {GenerateContentResponse}` events (separated by blank lines, CRLF on Google's servers):
candidates[0].content.parts[].text is the output (thought parts included; functionCall parts count too),
candidates[0].finishReason ends it (there is no [DONE]; it may be followed, in the same event, by several
KB of Google-Search groundingMetadata, whose groundingSupports[].segment.text quotes the answer and is not
output); usageMetadata (promptTokenCount, candidatesTokenCount, thoughtsTokenCount) is cumulative, so the
last one read is the total.
Output tokens are candidatesTokenCount + thoughtsTokenCount (both are generated). An error arrives as
{"error": {"code", "message", "status"}}; a blocked prompt as promptFeedback.blockReason.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from .._kinds import FailureKind
from ._base import BodyResult, StreamParser, decode_body
from ..._secrets import has_key
from ._common import content_text, error_text, merge_extra, split_system

_TEXT = re.compile(rb'"text"\s*:\s*"[^"]')
_CALL = re.compile(rb'"functionCall"\s*:\s*\{')
_FINISH = re.compile(rb'"finishReason"\s*:\s*"')
_USAGE = re.compile(rb'"usageMetadata"\s*:\s*\{')
_METHODS = ("generateContent", "streamGenerateContent")


def gemini_url(url: str, model: str, stream: bool) -> str:
    """The URL to post to for `stream` (see the module docstring for the accepted forms)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    method = "streamGenerateContent" if stream else "generateContent"
    head, _, last = path.rpartition("/")
    if ":" in last and last.rsplit(":", 1)[1] in _METHODS:
        path = f"{head}/{last.rsplit(':', 1)[0]}:{method}"
    elif head.endswith("/models") and last:
        path = f"{path}:{method}"
    else:
        path = f"{path}/models/{model}:{method}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "alt"]
    if stream:
        query.append(("alt", "sse"))
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def _usage(meta: Any) -> tuple[int | None, int | None]:
    """(output tokens, prompt tokens) out of usageMetadata."""
    if not isinstance(meta, dict):
        return None, None
    counts = [meta[k] for k in ("candidatesTokenCount", "thoughtsTokenCount") if isinstance(meta.get(k), int)]
    prompt = meta.get("promptTokenCount")
    return (sum(counts) if counts else None), (prompt if isinstance(prompt, int) else None)


class GeminiStream(StreamParser):
    __slots__ = ()

    def _count_output(self, block: bytes) -> int:
        # one per output part (text, thought text, function call) of candidates[].content.parts
        k = len(_TEXT.findall(block))
        if b'"functionCall"' in block:
            k += len(_CALL.findall(block))
        if b'"groundingMetadata"' in block:
            # Search grounding quotes the answer back (groundingSupports[].segment.text): not output. The
            # events holding it are decoded and their parts counted instead of their literal matches.
            for start, stop in _lines_with(block, b'"groundingMetadata"'):
                line = block[start:stop]
                k -= len(_TEXT.findall(line)) + len(_CALL.findall(line))
                k += _output_parts(self._event_at(block, start))
        return k

    def _inspect_block(self, block: bytes) -> None:
        # finishReason may sit anywhere in its event (grounding metadata of several KB can follow it)
        if not self.finished:
            self._inspect_at(block, self._find_any(block, b'"finishReason"', _FINISH))
        self._keep_last(block, b'"usageMetadata"', _USAGE)  # cumulative: the last one is the total
        if b'"error"' in block:
            self._inspect_all(block, b'"error"')
        if b'"blockReason"' in block:
            self._inspect_all(block, b'"blockReason"')

    def _inspect(self, event: dict[str, Any] | None) -> None:
        if event is None:
            return
        err = event.get("error")
        if isinstance(err, dict):
            self._fail(FailureKind.STREAM_ERROR, error_text(err))
            return
        feedback = event.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            self._fail(FailureKind.STREAM_ERROR, f"prompt blocked: {feedback['blockReason']}")
        for cand in event.get("candidates") or ():
            if isinstance(cand, dict) and cand.get("finishReason"):
                self.finished = True
        output, prompt = _usage(event.get("usageMetadata"))
        if output is not None:
            self.output_tokens = output
        if prompt is not None:
            self.prompt_tokens = prompt


def _lines_with(block: bytes, needle: bytes) -> list[tuple[int, int]]:
    """(start, stop) of every line of `block` holding `needle`."""
    out = []
    pos = block.find(needle)
    while pos >= 0:
        start = block.rfind(b"\n", 0, pos) + 1
        stop = block.find(b"\n", pos)
        out.append((start, stop))
        pos = block.find(needle, stop)
    return out


def _output_parts(event: dict[str, Any] | None) -> int:
    """How many output parts (non-empty text, function calls) the candidates of `event` carry."""
    k = 0
    for cand in (event or {}).get("candidates") or ():
        content = cand.get("content") if isinstance(cand, dict) else None
        for part in (content.get("parts") or ()) if isinstance(content, dict) else ():
            if isinstance(part, dict):
                text = part.get("text")
                k += (isinstance(text, str) and text != "") + isinstance(part.get("functionCall"), dict)
    return k


class GeminiDialect:
    name = "gemini"

    def url(self, config: Any, stream: bool) -> str:
        return gemini_url(str(config.url), str(config.model), stream)

    def headers(self, config: Any) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if has_key(config.api_key):
            headers["x-goog-api-key"] = str(config.api_key)
        return headers

    def build(self, config: Any, prompt: Any) -> bytes:
        system, messages = split_system(prompt)
        contents = [{"role": "model" if m.get("role") == "assistant" else "user",
                     "parts": [{"text": content_text(m.get("content"))}]} for m in messages]
        body: dict[str, Any] = {"contents": contents, "generationConfig": {
            "maxOutputTokens": prompt.max_tokens or config.max_tokens, "temperature": config.temperature}}
        if system is not None:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return orjson.dumps(merge_extra(body, config.extra_body))

    def stream_parser(self, config: Any) -> StreamParser:
        return GeminiStream()

    def answer(self, event: dict[str, Any]) -> str:
        """The answer text (not thoughts) of a stream event or a whole response: the first candidate's parts."""
        parts: list[str] = []
        for cand in (event.get("candidates") or ())[:1]:
            content = cand.get("content") if isinstance(cand, dict) else None
            for part in (content.get("parts") or ()) if isinstance(content, dict) else ():
                if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought"):
                    parts.append(part["text"])
        return "".join(parts)

    def parse_body(self, body: bytes) -> BodyResult:
        obj, out = decode_body(body, unwrap=True)  # some proxies wrap the answer in an array
        if obj is None:
            return out
        if isinstance(obj.get("error"), dict):
            out.error, out.detail = FailureKind.RESPONSE_ERROR, error_text(obj["error"])
            return out
        feedback = obj.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            out.error, out.detail = FailureKind.RESPONSE_ERROR, f"prompt blocked: {feedback['blockReason']}"
            return out
        candidates = obj.get("candidates")
        if not isinstance(candidates, list):
            out.error, out.detail = FailureKind.MALFORMED, "response has no candidates"
            return out
        parts: list[str] = []
        tool = False
        for cand in candidates[:1]:
            if not isinstance(cand, dict):
                continue
            out.finished = bool(cand.get("finishReason"))
            content = cand.get("content")
            for part in (content.get("parts") or ()) if isinstance(content, dict) else ():
                if isinstance(part, dict):
                    if isinstance(part.get("text"), str):
                        parts.append(part["text"])
                    tool = tool or "functionCall" in part
        out.output_text = "".join(parts)
        out.has_output = bool(out.output_text) or tool
        out.output_tokens, out.prompt_tokens = _usage(obj.get("usageMetadata"))
        return out


DIALECT = GeminiDialect()
__all__ = ["DIALECT", "GeminiStream", "gemini_url"]
