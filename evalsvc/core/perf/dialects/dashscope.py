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

from .._kinds import FailureKind
from ._base import BodyResult, StreamParser, count_events, decode_body
from ..._secrets import has_key
from ._common import error_text, merge_extra

# Output: message content or reasoning (Qwen thinking models), the `text` of result_format=text, and tool
# calls. An empty string (the first event of some streams) is not output.
_CONTENT = re.compile(rb'"content"\s*:\s*"[^"]')
_REASONING = re.compile(rb'"reasoning_content"\s*:\s*"[^"]')
_TEXT = re.compile(rb'"text"\s*:\s*"[^"]')
_TOOLS = re.compile(rb'"tool_calls"\s*:\s*\[\s*\{')
_FINISHED = re.compile(rb'"finish_reason"\s*:\s*"(?!null")[^"]')  # "null" until the last event
_USAGE = re.compile(rb'"usage"\s*:\s*\{')
_ERROR_EVENT = re.compile(rb"\nevent: ?error\n")


class DashScopeStream(StreamParser):
    __slots__ = ()

    def _count_output(self, block: bytes) -> int:
        # message content, reasoning (Qwen thinking models: both keys in every event, one of them empty) and
        # tool calls; output.text with result_format=text. An event counts once.
        has_reasoning = b'"reasoning_content"' in block
        has_tools = b'"tool_calls"' in block
        if not has_reasoning and not has_tools:
            k = len(_CONTENT.findall(block))
            return k if k or b'"text"' not in block else len(_TEXT.findall(block))
        return count_events(block, (_CONTENT, _REASONING, _TOOLS, _TEXT))

    def _inspect_block(self, block: bytes) -> None:
        if not self.finished:
            self._inspect_at(block, self._find_any(block, b'"finish_reason"', _FINISHED))
        self._keep_last(block, b'"usage"', _USAGE)  # cumulative: the last one is the total
        # errors: an `event:error` event, or a data line with a top-level code and no output
        if b"error" in block:
            m = _ERROR_EVENT.search(block)
            if m is not None:
                data = block.find(b"\ndata:", m.start() + 1)  # the event's data line (after its other fields)
                event = self._event_at(block, data + 1) if data >= 0 else None
                self._fail(FailureKind.STREAM_ERROR, error_text(event) if event else "error event")
                return
        if b'"code"' in block:
            pos = block.find(b'"code"')
            while pos >= 0:
                event = self._event_at(block, pos)
                if event is not None and "output" not in event and event.get("code"):
                    self._fail(FailureKind.STREAM_ERROR, error_text(event))
                    return
                stop = block.find(b"\n", pos)
                pos = block.find(b'"code"', stop) if stop >= 0 else -1

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

    def answer(self, event: dict[str, Any]) -> str:
        """The answer text (not reasoning) of an incremental stream event or a whole response."""
        output = event.get("output")
        if not isinstance(output, dict):
            return ""
        parts = [output["text"]] if isinstance(output.get("text"), str) else []
        for choice in output.get("choices") or ():
            msg = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(msg, dict) and isinstance(msg.get("content"), str):
                parts.append(msg["content"])
        return "".join(parts)

    def parse_body(self, body: bytes) -> BodyResult:
        obj, out = decode_body(body)
        if obj is None:
            return out
        output = obj.get("output")
        if not isinstance(output, dict):
            if obj.get("code"):
                out.error, out.detail = FailureKind.RESPONSE_ERROR, error_text(obj)
            else:
                out.error, out.detail = FailureKind.MALFORMED, "response has no output"
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
