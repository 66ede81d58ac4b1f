"""OpenAI chat/completions and completions (also vLLM, SGLang, llama.cpp, TGI's OpenAI routes).

Streams: `data: {chunk}` events, usage in a final chunk with empty `choices` when
`stream_options.include_usage` is set, then `data: [DONE]`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import orjson

from .._kinds import FailureKind
from ._base import BodyResult, StreamParser, approx_tokens, count_events, decode_body
from ..._secrets import has_key
from ._common import error_text, merge_extra

# Output-carrying fields: content (chat) or text (completions), reasoning (vLLM `reasoning`, DeepSeek
# `reasoning_content`) and tool calls. An empty string is not output, so role-only first chunks
# (`"content": ""`) do not stop the TTFT clock. Each pattern starts with a literal (CPython's `re` scans for
# it in C) and allows any JSON whitespace around the colon.
_CONTENT = re.compile(rb'"content"\s*:\s*"[^"]')
_TEXT = re.compile(rb'"text"\s*:\s*"[^"]')
_REASONING = re.compile(rb'"reasoning(?:_content)?"\s*:\s*"[^"]')
_TOOLS = re.compile(rb'"(?:tool_calls"\s*:\s*\[\s*\{|function_call"\s*:\s*\{)')  # an empty list is not a call
_FINISH = re.compile(rb'"finish_reason"\s*:\s*"')
_USAGE = re.compile(rb'"usage"\s*:\s*\{')


class OpenAIStream(StreamParser):
    __slots__ = ("_primary",)

    def __init__(self, chat: bool = True) -> None:
        super().__init__()
        self._primary = _CONTENT if chat else _TEXT

    def _count_output(self, block: bytes) -> int:
        # The common case is one literal scan. Reasoning or tool calls anywhere in the block (searched over
        # all of it: they may sit in the middle of a large read) need every kind, an event counted once
        # (vLLM sends both `reasoning` and `reasoning_content` in one delta).
        if b'"reasoning' not in block and b'_call' not in block:
            return len(self._primary.findall(block))
        return count_events(block, (self._primary, _REASONING, _TOOLS))

    _decodes = True

    def _take(self, event: dict[str, Any]) -> int:
        if "usage" in event or "error" in event or event.get("object") == "error":
            if "usage" in event:
                self._last_total = b""  # this one is later than any kept for close()
            self._inspect(event)
        choices = event.get("choices")
        if type(choices) is not list:
            return 0
        chat = self._primary is _CONTENT
        n = 0
        extra = False  # reasoning or tool-call output: the event counts once, as `count_events` counts it
        mentioned = False  # a reasoning or tool-call key, whatever its value (the scan's test, see above)
        for choice in choices:
            if type(choice) is not dict:
                continue
            if choice.get("finish_reason"):
                self.finished = True
            where = choice.get("delta") if chat else choice
            if chat and type(where) is not dict:
                where = choice.get("message")
            if type(where) is not dict:
                continue
            value = where.get("content" if chat else "text")
            if type(value) is str and value:
                n += 1
            if (len(where) > 1 or value is None) and not _OTHER_KEYS.isdisjoint(where):
                mentioned = True
                extra = extra or _other_output(where)
        if mentioned:
            return 1 if n or extra else 0
        return n

    def _inspect_block(self, block: bytes) -> None:
        # usage is cumulative where servers repeat it: the last object is the total
        self._keep_last(block, b'"usage"', _USAGE)
        if not self.finished:  # a finish reason with a value (null is not one), wherever it is
            self._inspect_at(block, self._find_any(block, b'"finish_reason"', _FINISH))
        if b'"error"' in block:
            self._inspect_all(block, b'"error"')
        if not self.done:
            self._check_done(block)

    def _inspect(self, event: dict[str, Any] | None) -> None:
        if event is None:
            return
        err = event.get("error")
        if err is not None or event.get("object") == "error":
            self._fail(FailureKind.STREAM_ERROR, error_text(err if err is not None else event))
        usage = event.get("usage")
        if isinstance(usage, dict):
            if isinstance(usage.get("completion_tokens"), int):
                self.output_tokens = usage["completion_tokens"]
            if isinstance(usage.get("prompt_tokens"), int):
                self.prompt_tokens = usage["prompt_tokens"]
        for choice in event.get("choices") or ():
            if isinstance(choice, dict) and choice.get("finish_reason"):
                self.finished = True


_OTHER_KEYS = frozenset(("reasoning", "reasoning_content", "tool_calls", "function_call"))


def _other_output(delta: dict[str, Any]) -> bool:
    """Reasoning text or a tool call in a decoded delta (what _REASONING and _TOOLS match in raw bytes)."""
    for key in ("reasoning", "reasoning_content"):
        value = delta.get(key)
        if type(value) is str and value:
            return True
    calls = delta.get("tool_calls")
    return (type(calls) is list and bool(calls) and type(calls[0]) is dict) or type(delta.get("function_call")) is dict


class OpenAIDialect:
    name = "openai"

    def url(self, config: Any, stream: bool) -> str:
        return str(config.url)

    def is_chat(self, config: Any) -> bool:
        path = urlsplit(config.url).path.rstrip("/")
        return not (path.endswith("/completions") and not path.endswith("/chat/completions"))

    def headers(self, config: Any) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if has_key(config.api_key):
            headers["Authorization"] = f"Bearer {config.api_key}"
        return headers

    def build(self, config: Any, prompt: Any) -> bytes:
        body: dict[str, Any] = {"model": config.model}
        if self.is_chat(config):
            body["messages"] = prompt.messages or [{"role": "user", "content": prompt.text}]
        else:
            body["prompt"] = prompt.text if prompt.text is not None else _flatten(prompt.messages)
        max_tokens = body["max_tokens"] = prompt.max_tokens or config.max_tokens
        body["temperature"] = config.temperature
        if config.ignore_eos:  # vLLM / SGLang: generate exactly max_tokens
            body["ignore_eos"] = True
            body["min_tokens"] = max_tokens
        elif config.min_tokens is not None:  # a per-prompt max_tokens below it wins
            body["min_tokens"] = min(config.min_tokens, max_tokens)
        body["stream"] = bool(config.stream)
        if config.stream:
            body["stream_options"] = {"include_usage": True}
        return orjson.dumps(merge_extra(body, config.extra_body))

    def stream_parser(self, config: Any) -> StreamParser:
        return OpenAIStream(chat=self.is_chat(config))

    def answer(self, event: dict[str, Any]) -> str:
        return _answer(event)

    def parse_body(self, body: bytes) -> BodyResult:
        obj, out = decode_body(body)
        if obj is None:
            return out
        if obj.get("error") is not None or obj.get("object") == "error":
            out.error, out.detail = FailureKind.RESPONSE_ERROR, error_text(obj.get("error", obj))
            return out
        text_parts: list[str] = []
        tool = False
        for choice in obj.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            if choice.get("finish_reason"):
                out.finished = True
            msg = choice.get("message")
            if isinstance(msg, dict):
                for key in ("reasoning_content", "reasoning", "content"):
                    if isinstance(msg.get(key), str):
                        text_parts.append(msg[key])
                tool = tool or bool(msg.get("tool_calls") or msg.get("function_call"))
            elif isinstance(choice.get("text"), str):
                text_parts.append(choice["text"])
        out.output_text = "".join(text_parts)
        out.has_output = bool(out.output_text) or tool
        usage = obj.get("usage")
        if isinstance(usage, dict):
            if isinstance(usage.get("completion_tokens"), int):
                out.output_tokens = usage["completion_tokens"]
            if isinstance(usage.get("prompt_tokens"), int):
                out.prompt_tokens = usage["prompt_tokens"]
        if "choices" not in obj:
            out.error, out.detail = FailureKind.MALFORMED, "response has no choices"
        return out


def _answer(event: dict[str, Any]) -> str:
    """The answer text (not reasoning) a stream chunk or a whole response carries."""
    parts: list[str] = []
    for choice in event.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        msg = choice.get("delta") or choice.get("message")
        if isinstance(msg, dict) and isinstance(msg.get("content"), str):
            parts.append(msg["content"])
        elif isinstance(choice.get("text"), str):
            parts.append(choice["text"])
    return "".join(parts)


def _flatten(messages: list[dict[str, Any]] | None) -> str:
    return "\n".join(str(m.get("content", "")) for m in messages or ())


DIALECT = OpenAIDialect()
__all__ = ["DIALECT", "OpenAIStream", "approx_tokens"]
