"""DashScope's native text-generation API (Alibaba Cloud Model Studio, Qwen models).

URL: the complete endpoint, e.g. https://dashscope.aliyuncs.com/api/v1/services/aigc/text-generation/generation
(the same URL streams; streaming is switched on by the `X-DashScope-SSE: enable` header).

Request: {"model", "input": {"messages": [...]}, "parameters": {"result_format": "message",
"incremental_output": true, "max_tokens", "temperature"}}. Auth: `Authorization: Bearer <key>`.

Stream: SSE events of `id:`, `event:result`, `:HTTP_STATUS/200` and `data:{...}` lines, each data holding
{"output": {"choices": [{"message": {"content", "reasoning_content"?}, "finish_reason"}]}, "usage":
{"input_tokens", "output_tokens"}, "request_id"}. finish_reason is the string "null" until the last
event; usage is cumulative, so only the last event's is read. There is no [DONE]: the stream is finished
when a finish_reason other than "null" arrives. Errors come as `event:error` with data {"code",
"message", "request_id"}; non-streamed errors have the same body with a 4xx/5xx status.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ._base import TAIL, BodyResult, StreamParser, decode_body
from ._common import error_text, has_key, merge_extra

# Output: message content or reasoning (Qwen thinking models), the `text` of result_format=text, and tool
# calls. An empty string (the first event of some streams) is not output.
_CONTENT = re.compile(rb'"content": ?"[^"]')
_REASONING = re.compile(rb'"reasoning_content": ?"[^"]')
_TEXT = re.compile(rb'"text": ?"[^"]')
_TOOLS = re.compile(rb'"tool_calls": ?\[\{')
_FINISH = b'"finish_reason"'
_NOT_FINISHED = (b'"null"', b"null", b'""')


class DashScopeStream(StreamParser):
    __slots__ = ("_text_format",)

    def __init__(self) -> None:
        super().__init__()
        # result_format "message" (content) or "text" (output.text) is one per stream: once output of the
        # message format is seen, the scan for `text` is skipped
        self._text_format = True

    def _count_output(self, block: bytes) -> int:
        k = len(_CONTENT.findall(block))
        if b"_c" in block:  # both "reasoning_content" and "tool_calls" hold it; ordinary events do not
            if b'"reasoning_content"' in block:
                k += len(_REASONING.findall(block))
            if b'"tool_calls"' in block:
                k += len(_TOOLS.findall(block))
        if self._text_format:
            if k:
                self._text_format = False
            elif b'"text"' in block:
                k += len(_TEXT.findall(block))
        return k

    def _inspect_block(self, block: bytes) -> None:
        # The final event (finish_reason, exact usage) and error events end the stream: search the tail only.
        start = max(0, len(block) - TAIL)
        if not self.finished:
            pos = block.rfind(_FINISH, start)
            if pos >= 0:
                value = block[pos + 15 : pos + 24].lstrip(b": ")
                if not value.startswith(_NOT_FINISHED):
                    self._inspect(self._event_at(block, pos))
        # error events: `event:error`, or a data line with a top-level code (no output)
        pos = block.find(b"event:error", start)
        if pos >= 0:
            data = block.find(b"\ndata:", pos)
            event = self._event_at(block, data + 1) if data >= 0 else None
            self._fail("stream_error", error_text(event) if event else "error event")
            return
        pos = block.find(b'"code"', start)
        if pos >= 0:
            event = self._event_at(block, pos)
            if event is not None and "output" not in event and event.get("code"):
                self._fail("stream_error", error_text(event))

    def _inspect(self, event: dict[str, Any] | None) -> None:
        if event is None:
            return
        out = event.get("output")
        if isinstance(out, dict):
            if out.get("finish_reason") not in (None, "null", ""):
                self.finished = True
            for choice in out.get("choices") or ():
                if isinstance(choice, dict) and choice.get("finish_reason") not in (None, "null", ""):
                    self.finished = True
        usage = event.get("usage")
        if isinstance(usage, dict):
            if isinstance(usage.get("output_tokens"), int):
                self.output_tokens = usage["output_tokens"]
            if isinstance(usage.get("input_tokens"), int):
                self.prompt_tokens = usage["input_tokens"]


class DashScopeDialect:
    name = "dashscope"

    def url(self, config: Any, stream: bool) -> str:
        return str(config.url)

    def headers(self, config: Any) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if has_key(config.api_key):
            headers["Authorization"] = f"Bearer {config.api_key}"
        if config.stream:
            headers["X-DashScope-SSE"] = "enable"
        return headers

    def build(self, config: Any, prompt: Any) -> bytes:
        messages = prompt.messages or [{"role": "user", "content": prompt.text or ""}]
        parameters: dict[str, Any] = {
            "result_format": "message",
            "max_tokens": prompt.max_tokens or config.max_tokens,
            "temperature": config.temperature,
        }
        if config.stream:
            parameters["incremental_output"] = True  # each event carries only the new text
        body = {"model": config.model, "input": {"messages": messages}, "parameters": parameters}
        return orjson.dumps(merge_extra(body, config.extra_body))

    def stream_parser(self, config: Any) -> StreamParser:
        return DashScopeStream()

    def parse_body(self, body: bytes) -> BodyResult:
        obj, out = decode_body(body)
        if obj is None:
            return out
        output = obj.get("output")
        if not isinstance(output, dict):
            if obj.get("code"):
                out.error, out.detail = "response_error", error_text(obj)
            else:
                out.error, out.detail = "malformed", "response has no output"
            return out
        parts: list[str] = []
        tool = False
        if isinstance(output.get("text"), str):  # result_format=text
            parts.append(output["text"])
        if output.get("finish_reason") not in (None, "null", ""):
            out.finished = True
        for choice in output.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            if choice.get("finish_reason") not in (None, "null", ""):
                out.finished = True
            msg = choice.get("message")
            if isinstance(msg, dict):
                for key in ("reasoning_content", "content"):
                    if isinstance(msg.get(key), str):
                        parts.append(msg[key])
                tool = tool or bool(msg.get("tool_calls"))
        out.output_text = "".join(parts)
        out.has_output = bool(out.output_text) or tool
        usage = obj.get("usage")
        if isinstance(usage, dict):
            if isinstance(usage.get("output_tokens"), int):
                out.output_tokens = usage["output_tokens"]
            if isinstance(usage.get("input_tokens"), int):
                out.prompt_tokens = usage["input_tokens"]
        return out


DIALECT = DashScopeDialect()
__all__ = ["DIALECT", "DashScopeStream"]
