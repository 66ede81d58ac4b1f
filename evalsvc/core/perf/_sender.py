"""One request on the wire: pooled keep-alive connections, perf_counter timestamps, incremental stream parsing.

A failed request is never an exception here: it becomes an `Outcome` with a failure `kind`.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Any

import orjson

from .._net import proxy_for
from .._secrets import config_secrets, mask
from ._http import ConnectionLost, Exchange, HttpClient, RequestTimeout, encode_request
from ._kinds import FailureKind, http_kind
from .dialects._base import approx_tokens, sse_events


class Outcome:
    """Raw facts about one request; times are perf_counter seconds."""

    __slots__ = ("index", "scheduled", "sent", "first", "last", "end", "status", "kind", "detail",
                 "output_tokens", "prompt_tokens", "usage", "chunks", "gaps", "zero_gaps", "streamed", "connect")

    def __init__(self, index: int, scheduled: float | None) -> None:
        self.index = index
        self.scheduled = scheduled
        self.sent = 0.0
        self.first: float | None = None  # first output-carrying chunk
        self.last: float | None = None  # last output-carrying chunk
        self.end: float | None = None  # last byte
        self.status = 0
        self.kind: str | None = None  # None = success
        self.detail: str | None = None
        self.output_tokens = 0
        self.prompt_tokens = 0
        self.usage = False  # output_tokens came from the server's usage
        self.chunks = 0
        self.gaps: list[float] | None = None  # ms between output-carrying chunks
        self.zero_gaps = 0  # and how many more gaps were 0 ms (chunks read together)
        self.streamed = False  # the answer was read as an event stream (not one body)
        self.connect: float | None = None  # seconds spent opening a connection for it (None: reused one)

    def to_record(self, t0: float) -> dict[str, Any]:
        def ms(t: float | None) -> float | None:
            return None if t is None else round((t - t0) * 1000.0, 4)

        return {
            "index": self.index,
            "scheduled_ms": ms(self.scheduled),
            "sent_ms": ms(self.sent),
            "first_token_ms": ms(self.first),
            "last_token_ms": ms(self.last),
            "end_ms": ms(self.end),
            "connect_ms": None if self.connect is None else round(self.connect * 1000.0, 4),
            "streamed": self.streamed,
            "status": self.status,
            "ok": self.kind is None,
            "error": self.kind,
            "detail": self.detail,
            "output_tokens": self.output_tokens,
            "prompt_tokens": self.prompt_tokens,
            "chunks": self.chunks,
        }


class TurnOutcome(Outcome):
    """One turn of a multi-turn session: also which session and turn it was, and the answer's text (kept for the
    session's next request)."""

    __slots__ = ("session", "turn", "text")

    def __init__(self, index: int, scheduled: float | None, session: int, turn: int) -> None:
        super().__init__(index, scheduled)
        self.session = session
        self.turn = turn  # 1 for a session's first request
        self.text = ""

    def to_record(self, t0: float) -> dict[str, Any]:
        row = super().to_record(t0)
        row["session"] = self.session
        row["turn"] = self.turn
        return row


class Sender:
    """Sends the requests of one run over pooled keep-alive connections (see `_http`)."""

    def __init__(self, dialect: Any, config: Any, bodies: list[bytes], prompt_tokens: list[int]) -> None:
        self.dialect = dialect
        self.config = config
        self.stream = bool(config.stream)
        url = dialect.url(config, self.stream)
        headers = merge_headers(dialect.headers(config), config.headers)
        proxy = proxy_for(url)  # the environment's proxy rule (HTTP_PROXY, HTTPS_PROXY, NO_PROXY)
        self._wire = (url, headers, proxy)
        self.requests = [encode_request(url, headers, body, proxy) for body in bodies]
        self.prompt_tokens = prompt_tokens
        self.timeout = float(config.timeout)
        self.client = HttpClient(url, connect_timeout=float(config.connect_timeout), proxy=proxy)
        self.stopping = False  # set by the engine before it cancels in-flight requests on purpose
        self.secrets = config_secrets(config)  # an endpoint may quote the key in an error: never stored in clear

    def close(self) -> None:
        self.client.close()

    def encode(self, body: bytes) -> bytes:
        """A request (head and body) for `body`, to give `send` (multi-turn sessions build theirs per turn)."""
        return encode_request(*self._wire[:2], body, self._wire[2])

    async def send(self, index: int, scheduled: float | None, turn: TurnOutcome | None = None,
                   request: bytes | None = None) -> Outcome:
        """Send request `index` (its body from the run's list), or, for a session's `turn`, `request`
        (from `encode`); the turn then also gets the answer's text."""
        if turn is None:
            out = Outcome(index, scheduled)
            which = index % len(self.requests)
            out.prompt_tokens = self.prompt_tokens[which]
            request = self.requests[which]
        else:
            out = turn
        assert request is not None
        kept: list[bytes] | None = None if turn is None else []
        parser = None
        exchange = Exchange(self.client)
        out.sent = perf_counter()  # replaced by the moment the request is written, once it is
        try:
            status = await exchange.start(request, self.client.loop.time() + self.timeout)
            out.sent = exchange.sent or out.sent
            out.connect = exchange.connect_s
            out.status = status
            payload = exchange.payload
            if not 200 <= status < 300:
                text = await payload.read(2048)
                out.end = perf_counter()
                out.kind = http_kind(status)
                out.detail = _error_detail(text, self.secrets)
                return out
            if self.stream and "json" not in exchange.content_type.lower():
                parser = self.dialect.stream_parser(self.config)
                out.streamed = True
                feed = parser.feed
                readany = payload.readany
                if kept is None:
                    while True:
                        data = await readany()
                        if not data:
                            break
                        feed(data, perf_counter())
                else:  # a session's turn: the bytes are kept to read the answer once it has ended
                    while True:
                        data = await readany()
                        if not data:
                            break
                        feed(data, perf_counter())
                        kept.append(data)
                out.end = perf_counter()
                parser.close(out.end)
                self._finish_stream(out, parser)
                if turn is not None and out.kind is None:
                    answer = self.dialect.answer
                    turn.text = "".join([answer(e) for e in sse_events(b"".join(kept or ()))])
            else:
                # non-streamed, or a server that answered a streamed request with one JSON body
                # (typically an error object): judged as a whole body
                raw = await payload.read()
                out.end = perf_counter()
                self._finish_body(out, self.dialect.parse_body(raw))
                if turn is not None and out.kind is None:
                    turn.text = _body_answer(self.dialect, raw)
        except asyncio.CancelledError:
            out.end = perf_counter()
            out.kind = FailureKind.CANCELLED
            if not self.stopping:
                raise  # the caller cancelled the whole run: let it unwind
            # else the engine stopped the run (interrupt, duration cap): record it as unfinished
        except RequestTimeout:
            out.end = perf_counter()
            out.kind = FailureKind.TIMEOUT
            out.detail = f"no complete answer within {self.timeout:g} s"
        except asyncio.TimeoutError:
            out.end = perf_counter()
            out.kind = FailureKind.CONNECTION
            out.detail = f"no connection within {self.client.connect_timeout:g} s"
        except ConnectionLost as exc:
            out.end = perf_counter()
            mid = out.status != 0
            out.kind = FailureKind.TRUNCATED if mid else FailureKind.DISCONNECTED
            out.detail = f"{exc}{' mid-response' if mid else ' before answering'}"
        except OSError as exc:
            out.end = perf_counter()
            out.kind = FailureKind.CONNECTION
            out.detail = (exc.strerror or str(exc))[:200]
        except Exception as exc:  # aiohttp payload errors (bad chunked framing, short body)
            out.end = perf_counter()
            out.kind = FailureKind.TRUNCATED if out.status else FailureKind.CLIENT_ERROR
            out.detail = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            exchange.finish()
            if out.connect is None:
                out.connect = exchange.connect_s
            if out.detail and self.secrets:
                out.detail = mask(out.detail, self.secrets)
            if parser is not None and out.first is None and parser.first_t is not None:
                out.first, out.last, out.chunks = parser.first_t, parser.last_t, parser.n_output
        return out

    @staticmethod
    def _finish_stream(out: Outcome, parser: Any) -> None:
        out.first = parser.first_t
        out.last = parser.last_t if parser.first_t is not None else None
        out.chunks = parser.n_output
        out.gaps = parser.gaps
        out.zero_gaps = parser.zero_gaps
        _judge(out, parser.prompt_tokens, parser.output_tokens, parser.n_output, parser.error, parser.detail,
               finished=parser.done or parser.finished, produced=parser.n_output > 0,
               unfinished="stream ended without [DONE] or a finish reason",
               empty="stream finished without generating output")

    @staticmethod
    def _finish_body(out: Outcome, res: Any) -> None:
        out.first = out.last = out.end
        out.chunks = 1 if res.has_output else 0
        counted = 0 if res.output_tokens is not None else approx_tokens(res.output_text)
        _judge(out, res.prompt_tokens, res.output_tokens, counted, res.error, res.detail,
               finished=res.finished, produced=res.has_output,
               unfinished="response carries no finish reason", empty="response carried no output")


def _judge(out: Outcome, prompt_tokens: int | None, output_tokens: int | None, counted: int, error: str | None,
           detail: str | None, *, finished: bool, produced: bool, unfinished: str, empty: str) -> None:
    """Token counts (the server's usage where it gave one, else `counted`) and the verdict of an answer read
    whole: the dialect's error, else truncated when it did not finish, else empty when it produced nothing."""
    if prompt_tokens is not None:
        out.prompt_tokens = prompt_tokens
    if output_tokens is not None:
        out.output_tokens = output_tokens
        out.usage = True
    else:
        out.output_tokens = counted
    if error is not None:
        out.kind, out.detail = error, detail
    elif not finished:
        out.kind, out.detail = FailureKind.TRUNCATED, unfinished
    elif not produced:
        out.kind, out.detail = FailureKind.EMPTY, empty


def _body_answer(dialect: Any, raw: bytes) -> str:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(obj, list) and len(obj) == 1:  # as the dialects read it (Gemini behind some proxies)
        obj = obj[0]
    return dialect.answer(obj) if isinstance(obj, dict) else ""


def merge_headers(base: dict[str, str], extra: dict[str, str] | None) -> dict[str, str]:
    """`extra` overrides `base`, names compared without case (one Authorization, not two)."""
    out = dict(base)
    for name, value in (extra or {}).items():
        for existing in [k for k in out if k.lower() == name.lower()]:
            del out[existing]
        out[name] = value
    return out


def _error_detail(raw: bytes, secrets: tuple[str, ...] = ()) -> str | None:
    text = mask(raw.decode("utf-8", "replace").strip(), secrets)  # before clipping: no half key survives
    return text[:200] or None
