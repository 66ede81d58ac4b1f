"""What an API dialect gives the mock server: request parsing and wire encoding, nothing else.

The server (`_server.py`) owns timing, faults, answers and counters. A dialect module (`_openai.py`,
`_dashscope.py`, `_anthropic.py`, `_gemini.py`) declares its generation endpoints: how to read a request body
into a `GenRequest`, and a `Wire` that turns text pieces into the bytes of that dialect's stream or body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aiohttp import web

    from ._config import MockConfig


@dataclass(slots=True)
class GenRequest:
    """A generation request, read out of any dialect's body."""

    model: str
    """Model name to echo back."""
    match_text: str
    """Text the answers table is matched against (last user message, or the prompt)."""
    prompt_tokens: int
    """usage.prompt_tokens (see the word-count rule in _text.py)."""
    max_tokens: int | None
    min_tokens: int | None
    stream: bool
    include_usage: bool
    """Streams only: send a usage event before the end."""
    ignore_eos: bool = False
    """Generate exactly max_tokens tokens (vLLM / SGLang `ignore_eos`), whatever the answer's own length."""
    cache_words: list[str] | None = None
    """The prompt as the prefix cache sees it, one word a token (chat: a `<role>` token before each message's
    words). None: the words of `match_text`."""


class BadRequest(Exception):
    """The request body is not acceptable: answered 400 in the dialect's error shape."""

    def __init__(self, message: str, param: str | None = None) -> None:
        self.message = message
        self.param = param
        super().__init__(message)


class Wire(Protocol):
    """Encodes one response. Text arrives as JSON string literals (`b'" fox"'`), pre-encoded by the server."""

    def open(self) -> bytes:
        """Bytes sent with the headers, before any content (e.g. a role-only chunk); may be empty."""

    def delta(self, text_json: bytes) -> bytes:
        """One content chunk."""

    def last_delta(self, text_json: bytes, reason: str) -> bytes:
        """The last content chunk, carrying the finish reason."""

    def finish(self, reason: str) -> bytes:
        """A chunk with no content carrying the finish reason."""

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        """The usage event, or b"" when the request did not ask for one."""

    def done(self) -> bytes:
        """The end-of-stream marker."""

    def malformed(self) -> bytes:
        """One complete stream event whose payload is not valid JSON."""

    def body(self, text: str, reason: str | None, prompt_tokens: int, completion_tokens: int) -> bytes:
        """The whole non-streaming response body."""


class ReasonAtUsage:
    """Part of a `Wire` whose finish reason travels in its usage event (DashScope, Gemini): the last content
    chunk is an ordinary one, a finish sends nothing, the reason is kept for `usage`, and nothing marks the end."""

    __slots__ = ("_reason",)

    def __init__(self) -> None:
        self._reason = "stop"

    def delta(self, text_json: bytes) -> bytes:
        raise NotImplementedError

    def last_delta(self, text_json: bytes, reason: str) -> bytes:
        self._reason = reason
        return self.delta(text_json)

    def finish(self, reason: str) -> bytes:
        self._reason = reason
        return b""

    def done(self) -> bytes:
        return b""


@dataclass(frozen=True)
class Endpoint:
    """One generation route of a dialect."""

    path: str
    parse: Callable[[Any, MockConfig], GenRequest]
    """Reads the decoded JSON body; raises BadRequest."""
    wire: Callable[[GenRequest, str, int, MockConfig], Wire]
    """(request, response id, created unix time, config) -> the response's encoder."""
    id_prefix: str = "mock"
    stream_content_type: str = "text/event-stream"
    from_request: Callable[[GenRequest, web.Request], None] | None = None
    """Completes the parsed request from the URL or headers (Gemini's model in the path, DashScope's
    `X-DashScope-SSE` header); may raise BadRequest."""


@dataclass(frozen=True)
class MockDialect:
    """An API dialect: its generation endpoints, its error body, and any other routes it serves."""

    name: str
    endpoints: tuple[Endpoint, ...]
    error_body: Callable[[int, str, str, str | None], bytes]
    """(status, message, error type, param) -> JSON error body."""
    extra_routes: Callable[[MockConfig], list[web.RouteDef]] = field(default=lambda cfg: [])
