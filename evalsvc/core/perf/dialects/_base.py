"""The machinery every dialect shares: incremental server-sent-events reading without per-chunk JSON decoding.

The hot path of a streamed load test is one `feed()` per socket read. Reading follows the WHATWG
server-sent-events rules exactly (CR, LF or CRLF line endings, a CRLF split over two reads, comments,
`event:`/`id:`/`retry:` fields, a `data:` field over several lines joined with LF, one optional space
after the colon, a leading BOM, an event dispatched only at its blank line). To stay fast, a block of
complete events is first checked against the shape nearly every server sends, one `data:` line holding one
JSON object per event (one C-level regex match over the block). Such a block is read as it is. Any other
block is rewritten event by event into that shape (each payload decoded and re-encoded), so both paths give
one reading. On a block of that shape the dialects count output-carrying fields with literal-prefixed
regexes over the WHOLE block (no head/tail sampling: a chunk in the middle of a large read counts like any
other) and decode only the few events that matter as a whole (usage, finish, errors).

That scan pays off when a read holds many events. When it holds exactly one `data:` line with a JSON object
(a real server's usual pace: one read per token), decoding that one object with orjson costs about half as
much as the scan (measured by benchmarks/trickle_ceiling.py), so a dialect that implements `_take(event)`
reads such a block by decoding it instead; the choice is made per read, and both give one reading.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from .._kinds import FailureKind

# A block in the shape the fast path reads directly: every event is optional `event:`/`id:`/`retry:`/comment
# lines, then ONE `data:` line with a JSON object (or [DONE]) and the blank line; or comment lines only.
# (`.` is any byte but LF: sre scans it faster than the equivalent `[^\n]`)
_SIMPLE = re.compile(rb"\n(?:(?:(?:event|id|retry)?:.*\n)*data: ?(?:\{.*\}|\[DONE\])\n\n|(?::.*\n)+\n)*")
_DONE_LINE = re.compile(rb"\ndata: ?\[DONE\]\n")
_DONE_LINES = (b"data: [DONE]\n", b"data:[DONE]\n")
_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class BodyResult:
    """What a complete (non-streamed) response said."""

    output_text: str = ""
    has_output: bool = False
    output_tokens: int | None = None
    prompt_tokens: int | None = None
    finished: bool = False
    error: str | None = None  # failure kind
    detail: str | None = None


class StreamParser:
    """Incremental parser for one SSE response. A dialect implements `_count_output` and `_inspect_block`.

    Both get a block in the simple shape (see the module docstring): it starts with LF, and every event is
    its own `data:` line followed by a blank line, so "the event at offset p" is the line holding p.
    """

    __slots__ = ("first_t", "last_t", "n_output", "gaps", "zero_gaps", "done", "finished", "output_tokens",
                 "prompt_tokens", "error", "detail", "_tail", "nbytes", "_skip_lf", "_fresh", "slow_blocks",
                 "_last_total", "decoded")
    _decodes = False
    """Whether the dialect implements `_take`, reading a one-event read by decoding it."""

    def __init__(self) -> None:
        self.first_t: float | None = None
        self.last_t = 0.0
        self.n_output = 0
        self.gaps: list[float] = []  # ms between output-carrying chunks that arrived in different reads
        self.zero_gaps = 0  # gaps between chunks that arrived in the same read: 0 ms, kept as a count
        self.done = False  # [DONE] or the dialect's end event
        self.finished = False  # a finish/stop reason was seen
        self.output_tokens: int | None = None  # from usage, if the server reported it
        self.prompt_tokens: int | None = None
        self.error: str | None = None
        self.detail: str | None = None
        self._tail = b""  # the incomplete event so far, line endings already normalised to LF
        self.nbytes = 0
        self._skip_lf = False  # the last read ended with CR: an LF opening the next one belongs to it (CRLF)
        self._fresh = True  # nothing read yet (a leading BOM is dropped)
        self.slow_blocks = 0  # blocks that needed the event-by-event rewrite (diagnostics, benchmarks)
        self._last_total = b""  # the last event with cumulative usage so far, decoded by close()
        self.decoded = 0  # one-event reads read by decoding (diagnostics, benchmarks)

    def feed(self, data: bytes, t: float) -> None:
        """Consume bytes read at time `t` (seconds, perf_counter)."""
        self.nbytes += len(data)
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        buf = self._tail + data if self._tail else data
        if self._fresh:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._tail = buf  # maybe the start of a BOM: wait for more
                return
            self._fresh = False
            if buf.startswith(_BOM):
                buf = buf[3:]
        if b"\r" in buf:
            # CRLF and a lone CR are line endings like LF. A CR ending this read ends its line now (no waiting
            # for the next read); an LF that opens the next read is the rest of that CRLF and is dropped.
            self._skip_lf = buf[-1:] == b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            self._tail = buf
            return
        self._tail = buf[cut + 2 :]
        if self._decodes and buf.startswith(b"data:"):
            # one or two events of one data line each: decoding them is cheaper than the scan
            nl = buf.find(b"\n")
            if nl == cut:
                if self._decode((buf[5:cut],), t):
                    return
            elif (buf.startswith(b"\ndata:", nl + 1) and buf.find(b"\n", nl + 2) == cut
                  and self._decode((buf[5:nl], buf[nl + 7 : cut]), t)):
                return
        block = b"\n" + buf[: cut + 2]
        if _SIMPLE.fullmatch(block) is None:
            self.slow_blocks += 1
            block = self._rewrite(block)
            if len(block) < 2:
                return
        k = self._count_output(block)
        if k:
            self._outputs(k, t)
        self._inspect_block(block)

    def _outputs(self, k: int, t: float) -> None:
        """`k` output chunks arrived in the read at time `t` (scanned or decoded alike): TTFT and the gaps."""
        if self.first_t is None:
            self.first_t = t
        else:
            self.gaps.append((t - self.last_t) * 1000.0)
        if k > 1:
            self.zero_gaps += k - 1  # arrived in the same read: no gap the client could see
        self.last_t = t
        self.n_output += k

    def _decode(self, payloads: tuple[bytes, ...], t: float) -> bool:
        """Read the JSON object of each event of a block (the per-read alternative to the scan, see the module
        docstring); False, having read nothing, when one of them is not an object (then the scan reads it)."""
        events = []
        for payload in payloads:
            if payload[:1] == b" ":
                payload = payload[1:]
            if payload[:1] != b"{":
                return False
            events.append(payload)
        self.decoded += len(events)
        k = 0
        for payload in events:
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError:
                self._fail(FailureKind.MALFORMED, "bad event: data: " + payload[:100].decode("utf-8", "replace"))
                continue
            if type(event) is dict:
                k += self._take(event)
        if k:
            self._outputs(k, t)
        return True

    def _take(self, event: dict[str, Any]) -> int:  # pragma: no cover - only called when `_decodes` is set
        """Inspect one decoded event (usage, finish, errors) and return how many output chunks it carries,
        exactly as `_count_output` + `_inspect_block` read the same event in a block."""
        raise NotImplementedError

    def close(self, t: float) -> None:
        """The response ended at `t`. An event without its closing blank line is not dispatched (WHATWG)."""
        self._tail = b""
        if self._last_total:
            line, self._last_total = self._last_total, b""
            self._inspect(self._event_at(line, 0))

    def _rewrite(self, block: bytes) -> bytes:
        """The events of `block` in the simple shape, read per the WHATWG rules (the exact, slower path)."""
        out = [b"\n"]
        data: list[bytes] = []
        kind = b""
        for line in block.split(b"\n")[1:]:
            if not line:  # a blank line dispatches the event, if it has data
                if data:
                    out.append(self._one_event(kind, b"\n".join(data)))
                    data = []
                kind = b""
                continue
            colon = line.find(b":")
            if colon == 0:
                continue  # a comment
            if colon < 0:
                name, value = line, b""
            else:
                name, value = line[:colon], line[colon + 1 :]
                if value[:1] == b" ":
                    value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                kind = value
            # id, retry and unknown fields do not change what an event says
        return b"".join(out)

    def _one_event(self, kind: bytes, payload: bytes) -> bytes:
        head = b"event: " + kind + b"\n" if kind else b""
        if payload.strip() == b"[DONE]":
            return head + b"data: [DONE]\n\n"
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self._fail(FailureKind.MALFORMED, "bad event: data: " + payload[:100].decode("utf-8", "replace"))
            return b""
        return head + b"data: " + orjson.dumps(obj) + b"\n\n"

    def _check_done(self, block: bytes) -> None:
        """A `data: [DONE]` event ends an OpenAI-style stream (comments may follow it)."""
        pos = block.rfind(b"[DONE]")
        if pos >= 0 and (block[block.rfind(b"\n", 0, pos) + 1 : pos + 7] in _DONE_LINES
                         or _DONE_LINE.search(block) is not None):
            self.done = True

    def _fail(self, kind: str, detail: str | None) -> None:
        if self.error is None:
            self.error = kind
            self.detail = detail

    def _count_output(self, block: bytes) -> int:  # pragma: no cover - every dialect overrides it
        raise NotImplementedError

    def _inspect_block(self, block: bytes) -> None:  # pragma: no cover - every dialect overrides it
        raise NotImplementedError

    def _inspect_at(self, block: bytes, pos: int) -> None:
        """Decode and inspect the event at offset `pos` (a `find` result: -1 means there is none)."""
        if pos >= 0:
            self._inspect(self._event_at(block, pos))

    def _inspect_all(self, block: bytes, needle: bytes) -> None:
        """Decode and inspect every event holding `needle` (for rare markers such as errors)."""
        pos = block.find(needle)
        while pos >= 0:
            self._inspect(self._event_at(block, pos))
            stop = block.find(b"\n", pos)
            pos = block.find(needle, stop) if stop >= 0 else -1

    def _keep_last(self, block: bytes, key: bytes, pattern: re.Pattern[bytes]) -> None:
        """Keep the last event matching `pattern` (which starts with the literal `key`) for `close()`.

        For cumulative figures (usage: the last one is the total), which servers may repeat in every event:
        only the last one of the stream is decoded. The last `key` is tried first (a fast search from the
        end); only if it does not match are the earlier ones searched.
        """
        pos = block.rfind(key)
        if pos < 0:
            return
        if pattern.match(block, pos) is None:
            last = -1
            for m in pattern.finditer(block, 0, pos):
                last = m.start()
            if last < 0:
                return
            pos = last
        stop = block.find(b"\n", pos)
        self._last_total = block[block.rfind(b"\n", 0, pos) + 1 : stop if stop >= 0 else len(block)]

    @staticmethod
    def _find_any(block: bytes, key: bytes, pattern: re.Pattern[bytes]) -> int:
        """Offset of a match of `pattern` (which starts with the literal `key`), or -1: the last `key` first.

        For markers that appear in every event with a null value and with a real value once, at the end
        (finish reasons): the usual hit costs one search from the end.
        """
        pos = block.rfind(key)
        if pos < 0 or pattern.match(block, pos) is not None:
            return pos
        if block.find(key, 0, pos) < 0:  # it was the only one
            return -1
        m = pattern.search(block, 0, pos)
        return -1 if m is None else m.start()

    def _inspect(self, event: dict[str, Any] | None) -> None:  # pragma: no cover - every dialect overrides it
        raise NotImplementedError

    def _event_at(self, block: bytes, pos: int) -> dict[str, Any] | None:
        """Decode the JSON payload of the `data:` line containing offset `pos` (None if it is not one)."""
        start = block.rfind(b"\n", 0, pos) + 1
        stop = block.find(b"\n", pos)
        line = block[start : stop if stop >= 0 else len(block)]
        if not line.startswith(b"data:"):
            return None
        try:
            event = orjson.loads(line[5:])
        except orjson.JSONDecodeError:
            self._fail(FailureKind.MALFORMED, "bad event: " + line[:100].decode("utf-8", "replace"))
            return None
        return event if isinstance(event, dict) else None


def count_events(block: bytes, patterns: Iterable[re.Pattern[bytes]]) -> int:
    """How many events (lines of a simple block) match any of `patterns`: an event counts once."""
    starts = set()
    for pattern in patterns:
        for m in pattern.finditer(block):
            starts.add(block.rfind(b"\n", 0, m.start()))
    return len(starts)


def decode_body(body: bytes, *, unwrap: bool = False) -> tuple[dict[str, Any] | None, BodyResult]:
    """A whole response body as a JSON object, or None with the BodyResult saying why it is malformed.

    `unwrap` also accepts the object inside a one-element array (some proxies answer that way).
    """
    out = BodyResult()
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        out.error, out.detail = FailureKind.MALFORMED, body[:120].decode("utf-8", "replace")
        return None, out
    if unwrap and isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if not isinstance(obj, dict):
        out.error, out.detail = FailureKind.MALFORMED, "response is not a JSON object"
        return None, out
    return obj, out


class Dialect(Protocol):
    name: str

    def url(self, config: Any, stream: bool) -> str: ...

    def headers(self, config: Any) -> dict[str, str]: ...

    def build(self, config: Any, prompt: Any) -> bytes: ...

    def stream_parser(self, config: Any) -> StreamParser: ...

    def parse_body(self, body: bytes) -> BodyResult: ...

    def answer(self, event: dict[str, Any]) -> str: ...


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """The JSON objects of a complete event stream's `data:` events, in order, read per the WHATWG rules.

    For reading what a response said after it ended (a multi-turn session keeps the model's answer), never
    on the hot path. Events whose data is not a JSON object (`[DONE]`) are left out.
    """
    if raw.startswith(_BOM):
        raw = raw[3:]
    out: list[dict[str, Any]] = []
    data: list[bytes] = []
    for line in raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if not line:
            if data:
                try:
                    event = orjson.loads(b"\n".join(data))
                except orjson.JSONDecodeError:
                    event = None
                if isinstance(event, dict):
                    out.append(event)
                data = []
            continue
        name, _, value = line.partition(b":")
        if name == b"data":
            data.append(value[1:] if value[:1] == b" " else value)
    return out


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate (~4 characters a token) for responses without usage."""
    return max(1, round(len(text) / 4)) if text else 0
