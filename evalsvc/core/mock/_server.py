"""The simulated endpoint: aiohttp app, timing, capacity, prefix cache, fault plan, answers, counters, and
how to run it.

Timing: every response is scheduled on absolute deadlines. A request starts when its first bytes arrived
(see _Arrivals) or, under `max_batch`, when a slot frees (FIFO); its first content chunk is due at
start + ttft + prefill, prefill being `prefill_ms_per_token` x the prompt tokens the prefix cache did not
hold, and chunk i at first + i * itl (each moved by the seeded jitter, never before the previous one).
With `itl_per_request_ms` each gap is fixed as the previous chunk goes out: itl + A x (other requests
decoding then). Sleeping until a deadline, rather than for a gap, keeps late wake-ups from adding up, so
the time between the first and last chunk stays (chunks - 1) * itl under load.
"""

from __future__ import annotations

import asyncio
import random
import socket
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from ._config import MockConfig
from ._dialect import BadRequest, MockDialect, Endpoint, GenRequest, Wire
from ._faults import FAULT_KINDS, FaultPlan
from ._anthropic import DIALECT as ANTHROPIC
from ._dashscope import DIALECT as DASHSCOPE
from ._gemini import DIALECT as GEMINI
from ._openai import DIALECT as OPENAI
from ._text import Answers, Filler

DIALECTS: tuple[MockDialect, ...] = (OPENAI, DASHSCOPE, ANTHROPIC, GEMINI)
"""Dialects served side by side (their paths do not overlap)."""

FAULT_HEADER = "X-Mock-Fault"
"""Request header forcing one fault kind (or `none`) on that request; it does not use a plan slot."""

_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_MAX_BODY = 256 * 1024 * 1024


class LagHistogram:
    """How late chunks went out against their deadlines, in 0.1 ms buckets up to 100 ms (then one overflow bucket).

    This is the server's own account of its timing: a client that measures a TTFT above the injected one
    while this stays near zero is looking at its own (or the network's) delay.
    """

    __slots__ = ("buckets", "count", "total", "worst")

    _SIZE = 1001

    def __init__(self) -> None:
        self.buckets = [0] * self._SIZE
        self.count = 0
        self.total = 0.0
        self.worst = 0.0

    def add(self, lag_s: float) -> None:
        if lag_s < 0:
            lag_s = 0.0
        index = int(lag_s * 10_000)
        self.buckets[index if index < self._SIZE else self._SIZE - 1] += 1
        self.count += 1
        self.total += lag_s
        if lag_s > self.worst:
            self.worst = lag_s

    def _quantile(self, q: float) -> float:
        rank = q * (self.count - 1)
        seen = 0
        for index, n in enumerate(self.buckets):
            seen += n
            if seen > rank:
                return (index + 0.5) / 10 if index < self._SIZE - 1 else self.worst * 1000
        return self.worst * 1000

    def to_dict(self) -> dict[str, float | int | None]:
        if not self.count:
            return {"count": 0, "mean": None, "p50": None, "p99": None, "max": None}
        return {"count": self.count, "mean": round(self.total / self.count * 1000, 3),
                "p50": round(self._quantile(0.5), 3), "p99": round(self._quantile(0.99), 3),
                "max": round(self.worst * 1000, 3)}


class MockStats:
    """Counters shown by GET /mock/stats and cleared by POST /mock/reset."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.requests = 0
        self.requests_by_path: dict[str, int] = {}
        self.streamed = 0
        self.bad_requests = 0
        self.faults = dict.fromkeys(FAULT_KINDS, 0)
        self.faults_forced = dict.fromkeys(FAULT_KINDS, 0)
        self.in_flight = 0
        self.max_in_flight = 0
        self.completed = 0
        self.client_disconnects = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.first_chunk_lag = LagHistogram()
        self.chunk_lag = LagHistogram()
        self.waited = 0
        self.max_waiting = 0
        self.wait_total = 0.0
        self.wait_max = 0.0
        self.cache_hit_tokens = 0
        self.cache_miss_tokens = 0

    def to_dict(self) -> dict[str, Any]:
        looked_up = self.cache_hit_tokens + self.cache_miss_tokens
        return {
            "requests": self.requests,
            "requests_by_path": dict(self.requests_by_path),
            "streamed": self.streamed,
            "bad_requests": self.bad_requests,
            "faults": dict(self.faults),
            "faults_forced": dict(self.faults_forced),
            "faults_total": sum(self.faults.values()),
            "completed": self.completed,
            "client_disconnects": self.client_disconnects,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "schedule_lag_ms": {"first_chunk": self.first_chunk_lag.to_dict(),
                                "all_chunks": self.chunk_lag.to_dict()},
            "queue": {"waited": self.waited, "max_waiting": self.max_waiting,
                      "mean_wait_ms": round(self.wait_total / self.waited * 1000, 3) if self.waited else None,
                      "max_wait_ms": round(self.wait_max * 1000, 3)},
            "cache": {"hit_tokens": self.cache_hit_tokens, "miss_tokens": self.cache_miss_tokens,
                      "hit_share": round(self.cache_hit_tokens / looked_up, 6) if looked_up else None},
            "uptime_s": round(time.monotonic() - self.started, 3),
        }


class MockState:
    """Everything one mock app shares between requests."""

    def __init__(self, cfg: MockConfig) -> None:
        self.cfg = cfg
        self.plan = FaultPlan(cfg.fault_shares(), cfg.fault_cycle, cfg.seed)
        self.answers = Answers(cfg.answer_rows())
        self.filler = Filler()
        self.filler.ensure(cfg.output_tokens + 1)
        self.stats = MockStats()
        self.arrivals = 0
        # Remembered so an in-flight request that finishes after a reset does not drive in_flight negative.
        self.epoch = 0
        self.slots = _Slots(cfg.max_batch) if cfg.max_batch else None
        self.cache = _PrefixCache(cfg.cache_tokens, cfg.cache_block_tokens)
        self.decoding = 0
        """Requests past their first token and not finished: what `itl_per_request_ms` scales with."""
        self.captured: list[Any] = []

    def reset(self) -> None:
        """New counters, the fault plan from its start, an empty prefix cache and capture list (requests
        in flight keep their slots)."""
        self.stats = MockStats()
        self.plan.reset()
        self.arrivals = 0
        self.epoch += 1
        self.cache = _PrefixCache(self.cfg.cache_tokens, self.cfg.cache_block_tokens)
        self.captured = []

    def stats_dict(self) -> dict[str, Any]:
        data = self.stats.to_dict()
        data["plan_position"] = self.plan.position
        data["fault_cycle"] = self.cfg.fault_cycle
        return data


class _Slots:
    """`max_batch` generation slots, handed out in arrival order (a FIFO queue, not a race)."""

    __slots__ = ("free", "waiters")

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> bool:
        """Take a slot, waiting behind earlier requests; True when the request had to wait."""
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as it was cancelled: pass it on
            else:
                self.waiters.remove(waiter)
            raise
        return True

    def release(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves to the next waiter directly
                return
        self.free += 1


class _PrefixCache:
    """Prompt blocks already prefilled, as a serving engine's automatic prefix cache keeps them.

    A prompt is cut into whole blocks of `block` tokens; block j is identified by a hash chained over
    blocks 0..j, so it hits only when the whole prefix up to it is identical (vLLM's rule). A lookup counts
    the leading blocks present; the prompt's blocks are added (most recently used) once its prefill is
    done, and the least recently used are evicted past `capacity` tokens. Tokens after the last whole block
    are never cached.
    """

    __slots__ = ("block", "capacity", "_blocks")

    def __init__(self, capacity_tokens: int, block: int) -> None:
        self.block = block
        self.capacity = capacity_tokens // block
        self._blocks: OrderedDict[int, None] = OrderedDict()

    def hashes(self, words: Sequence[str]) -> list[int]:
        out: list[int] = []
        h = 0
        b = self.block
        for start in range(0, len(words) - b + 1, b):
            h = hash((h, tuple(words[start:start + b])))
            out.append(h)
        return out

    def hit_blocks(self, hashes: list[int]) -> int:
        blocks = self._blocks
        n = 0
        for h in hashes:
            if h not in blocks:
                break
            blocks.move_to_end(h)
            n += 1
        return n

    def add(self, hashes: list[int]) -> None:
        if not self.capacity:
            return
        blocks = self._blocks
        for h in hashes:
            blocks[h] = None
            blocks.move_to_end(h)
        while len(blocks) > self.capacity:
            blocks.popitem(last=False)


STATE = web.AppKey("evalsvc_mock_state", MockState)


class _Arrivals(asyncio.Protocol):
    """aiohttp's protocol for one connection, wrapped to note when each request's first bytes arrive.

    A burst of requests reaches the handlers one after another; timing them from handler start
    would add that queue to the TTFT of the later ones. `arrival` is set by the first bytes received
    while no request is being handled, and cleared when the request ends (a pipelined request,
    whose bytes came during the previous one, finds None and falls back to its handler start).
    """

    __slots__ = ("_inner", "_loop", "arrival", "busy")

    def __init__(self, inner: asyncio.Protocol, loop: asyncio.AbstractEventLoop) -> None:
        self._inner = inner
        self._loop = loop
        self.arrival: float | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self.busy and self.arrival is None:
            self.arrival = self._loop.time()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def _arrivals_of(request: web.Request) -> _Arrivals | None:
    transport = request.transport
    protocol = transport.get_protocol() if transport is not None else None
    return protocol if isinstance(protocol, _Arrivals) else None


@web.middleware
async def _track_arrivals(request: web.Request, handler: Handler) -> web.StreamResponse:
    arrivals = _arrivals_of(request)
    if arrivals is None:  # served by a runner without the wrapper (create_mock_app under another site)
        return await handler(request)
    arrivals.busy = True
    try:
        return await handler(request)
    finally:
        arrivals.busy = False
        arrivals.arrival = None


class _SSEResponse(web.StreamResponse):
    """A stream whose headers leave with its first bytes (the role chunk): one send instead of two."""

    _send_headers_immediately = False


async def _until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


class _Reply:
    """The content of one answer: its pieces (one per chunk), token count and finish reason."""

    __slots__ = ("tokens", "encoded", "count", "reason")

    def __init__(self, tokens: Sequence[str], encoded: list[bytes] | None, count: int, reason: str) -> None:
        self.tokens = tokens
        self.encoded = encoded
        self.count = count
        self.reason = reason


def _reply(state: MockState, req: GenRequest, empty: bool) -> _Reply:
    if empty:
        return _Reply((), [], 0, "stop")
    filler = state.filler
    found = state.answers.find(req.match_text) if state.answers else None
    natural = len(found) if found is not None else state.cfg.output_tokens
    count = natural
    reason = "stop"
    if req.ignore_eos and req.max_tokens is not None:
        count, reason = req.max_tokens, "length"  # no end-of-sequence: generation runs to the limit
    if req.min_tokens is not None and count < req.min_tokens:
        count = req.min_tokens
    if req.max_tokens is not None and count > req.max_tokens:
        count, reason = req.max_tokens, "length"
    if found is None:
        filler.ensure(count)
        return _Reply(filler.tokens[:count], filler.encoded[:count], count, reason)
    tokens = found[:count]
    if count > len(tokens):  # min_tokens asks for more than the answer: pad with filler words
        filler.ensure(count + 1)
        tokens = tokens + filler.tokens[1:count - len(tokens) + 1]
    return _Reply(tokens, None, count, reason)


def _chunks(reply: _Reply, per_chunk: int) -> list[bytes]:
    if per_chunk == 1:
        if reply.encoded is not None:
            return reply.encoded
        return [orjson.dumps(t) for t in reply.tokens]
    tokens = reply.tokens
    return [orjson.dumps("".join(tokens[i:i + per_chunk])) for i in range(0, len(tokens), per_chunk)]


def _deadlines(cfg: MockConfig, start: float, first: float, steps: int, seed: int) -> list[float] | None:
    """Per-chunk deadlines when jitter is on (None: the plain first + i * itl grid is used)."""
    if cfg.jitter_ms <= 0:
        return None
    rng = random.Random(seed)
    jitter = cfg.jitter_ms / 1000
    itl = cfg.itl_ms / 1000
    out: list[float] = []
    previous = start
    for i in range(steps):
        at = first + i * itl + rng.uniform(-jitter, jitter)
        if at < previous:
            at = previous
        out.append(at)
        previous = at
    return out


class _Timeline:
    """When each chunk of one answer is due (see the module docstring); `at(i)` is asked in order, i = 0, 1, ...

    On the plain grid every deadline is known up front. With `itl_per_request_ms` the gap before chunk i is
    set when `at(i)` is asked, just after chunk i-1 went out, from the requests decoding at that moment.
    """

    __slots__ = ("_state", "_grid", "_first", "_itl", "_per", "_last", "_out", "_rng", "_jitter")

    def __init__(self, state: MockState, start: float, first: float, steps: int, seed: int) -> None:
        cfg = state.cfg
        self._state = state
        self._first = first
        self._itl = cfg.itl_ms / 1000
        self._per = cfg.itl_per_request_ms / 1000
        self._jitter = cfg.jitter_ms / 1000
        self._grid = None if self._per else _deadlines(cfg, start, first, steps, seed)
        self._rng = random.Random(seed) if self._per and self._jitter else None
        self._last = start  # the previous deadline before jitter
        self._out = start  # the previous deadline as given (never go back before it)

    def at(self, i: int) -> float:
        if not self._per:
            grid = self._grid
            return grid[i] if grid is not None else self._first + i * self._itl
        if i == 0:
            due = self._first
        else:
            others = self._state.decoding - 1
            due = self._last + self._itl + self._per * (others if others > 0 else 0)
        self._last = due
        if self._rng is not None:
            due += self._rng.uniform(-self._jitter, self._jitter)
            if due < self._out:
                due = self._out
        self._out = due
        return due


class _Work:
    """One admitted request's claim on the server: its slot, its prefill, its place among the decoding."""

    __slots__ = ("_state", "_slot", "_hashes", "_decoding", "start", "first")

    def __init__(self, state: MockState) -> None:
        self._state = state
        self._slot = False
        self._hashes: list[int] = []
        self._decoding = False
        self.start = 0.0
        self.first = 0.0

    async def begin(self, loop: asyncio.AbstractEventLoop, t0: float, req: GenRequest) -> None:
        """Wait for a slot (under max_batch), then look the prompt up in the prefix cache: sets `start`
        (when generation begins) and `first` (when the first token is due)."""
        state, cfg, stats = self._state, self._state.cfg, self._state.stats
        start = t0
        if state.slots is not None:
            waiting = len(state.slots.waiters) + 1
            if waiting > stats.max_waiting and state.slots.free == 0:
                stats.max_waiting = waiting
            waited = await state.slots.acquire()
            self._slot = True
            if waited:
                start = loop.time()
                wait = start - t0
                stats.waited += 1
                stats.wait_total += wait
                if wait > stats.wait_max:
                    stats.wait_max = wait
        prefill = 0.0
        if cfg.prefill_ms_per_token or cfg.cache_tokens:
            words = req.cache_words if req.cache_words is not None else req.match_text.split()
            cache = state.cache
            self._hashes = hashes = cache.hashes(words)
            hit = cache.hit_blocks(hashes) * cache.block
            stats.cache_hit_tokens += hit
            stats.cache_miss_tokens += len(words) - hit
            prefill = (len(words) - hit) * cfg.prefill_ms_per_token / 1000
        self.start = start
        self.first = start + cfg.ttft_ms / 1000 + prefill

    def first_token(self) -> None:
        """The first token is out: the prompt's blocks are now cached, and the request counts as decoding."""
        if self._hashes:
            self._state.cache.add(self._hashes)
            self._hashes = []
        if not self._decoding:
            self._decoding = True
            self._state.decoding += 1

    def end(self) -> None:
        if self._decoding:
            self._decoding = False
            self._state.decoding -= 1
        if self._slot:
            self._slot = False
            assert self._state.slots is not None
            self._state.slots.release()


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


class _Handler:
    """One generation endpoint: parse, pick the fault, then answer on schedule."""

    def __init__(self, state: MockState, dialect: MockDialect, endpoint: Endpoint) -> None:
        self.state = state
        self.dialect = dialect
        self.endpoint = endpoint

    def _error(self, status: int, message: str, kind: str, param: str | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(status=status, body=self.dialect.error_body(status, message, kind, param),
                            content_type="application/json", headers=headers)

    def _bad(self, message: str, param: str | None = None) -> web.Response:
        self.state.stats.bad_requests += 1
        return self._error(400, message, "BadRequestError", param)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        arrivals = _arrivals_of(request)
        t0 = arrivals.arrival if arrivals is not None and arrivals.arrival is not None else loop.time()
        state, cfg = self.state, self.state.cfg
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return self._bad(f"the body is not valid JSON: {exc}")
        if cfg.capture_requests:
            state.captured.append(body)
        try:
            req = self.endpoint.parse(body, cfg)
            if self.endpoint.from_request is not None:
                self.endpoint.from_request(req, request)
        except BadRequest as exc:
            return self._bad(exc.message, exc.param)

        stats = state.stats
        forced = request.headers.get(FAULT_HEADER)
        if forced is not None:
            forced = forced.strip().lower()
            if forced != "none" and forced not in FAULT_KINDS:
                return self._bad(f"{FAULT_HEADER} must be one of none, {', '.join(FAULT_KINDS)}; got {forced!r}")
            kind = None if forced == "none" else forced
            if kind is not None:
                stats.faults_forced[kind] += 1
        else:
            kind = state.plan.next()
        seq = state.arrivals
        state.arrivals += 1
        stats.requests += 1
        path = self.endpoint.path
        stats.requests_by_path[path] = stats.requests_by_path.get(path, 0) + 1
        stats.prompt_tokens += req.prompt_tokens
        if req.stream:
            stats.streamed += 1
        if kind is not None:
            stats.faults[kind] += 1
            if kind == "error_500":
                return self._error(500, "mock: injected internal server error", "InternalServerError")
            if kind == "error_429":
                return self._error(429, "mock: injected rate limit, retry later", "RateLimitError",
                                   headers={"Retry-After": str(cfg.retry_after_s)})

        reply = _reply(state, req, kind == "empty_completion")
        wire = self.endpoint.wire(req, f"{self.endpoint.id_prefix}-mock-{seq}", int(time.time()), cfg)
        stats.in_flight += 1
        if stats.in_flight > stats.max_in_flight:
            stats.max_in_flight = stats.in_flight
        epoch = state.epoch
        work = _Work(state)
        try:
            await work.begin(loop, t0, req)
            if req.stream:
                resp = await self._stream(request, loop, work, req, reply, wire, kind, seq)
            else:
                resp = await self._whole(request, loop, work, req, reply, wire, kind, seq)
        except ConnectionResetError:
            # The client went away (timeout, cancelled run): nothing to answer, nothing to log.
            if epoch == state.epoch:
                state.stats.client_disconnects += 1
            _abort(request)
            return web.Response(status=499)
        finally:
            work.end()
            if epoch == state.epoch:
                state.stats.in_flight -= 1
        if epoch == state.epoch and kind != "drop_mid_stream":
            state.stats.completed += 1
            state.stats.completion_tokens += reply.count
        return resp

    async def _stream(self, request: web.Request, loop: asyncio.AbstractEventLoop, work: _Work, req: GenRequest,
                      reply: _Reply, wire: Wire, kind: str | None, seq: int) -> web.StreamResponse:
        cfg = self.state.cfg
        chunks = _chunks(reply, cfg.tokens_per_chunk)
        count = len(chunks)
        # An answer with no content still ends at the first-token deadline.
        steps = count if count else 1
        finish_on_last = count > 0 and not cfg.separate_finish_chunk
        tail = b""
        if kind != "no_done":
            if not finish_on_last:
                tail = wire.finish(reply.reason)
            tail += wire.usage(req.prompt_tokens, reply.count) + wire.done()
        drop_at = count // 2 if kind == "drop_mid_stream" else -1
        bad_at = count // 2 if kind == "malformed_sse" else -1
        last = steps - 1
        timeline = _Timeline(self.state, work.start, work.first, steps, hash((cfg.seed, seq)))

        stats = self.state.stats
        first_lag, chunk_lag = stats.first_chunk_lag, stats.chunk_lag
        head = wire.open()
        resp = (_SSEResponse if head else web.StreamResponse)(headers=_SSE_HEADERS)
        await resp.prepare(request)
        if head:
            await resp.write(head)
        pending = b""  # chunks already due are sent in one write (itl 0, or catching up after a stall)
        monotonic = time.monotonic
        for i in range(steps):
            deadline = timeline.at(i)
            if deadline > loop.time():
                if pending:
                    await resp.write(pending)
                    pending = b""
                await _until(loop, deadline)
            # uvloop's loop.time() is CLOCK_MONOTONIC cut to whole ms, asyncio's is time.monotonic():
            # same clock, so monotonic() measures the lag to sub-ms precision on both.
            lag = monotonic() - deadline
            chunk_lag.add(lag)
            if i == 0:
                first_lag.add(lag)
                work.first_token()
            if i == drop_at:
                if pending:
                    await resp.write(pending)
                _abort(request)
                return resp
            if count:
                if i == last and finish_on_last and kind != "no_done":
                    data = wire.last_delta(chunks[i], reply.reason)
                else:
                    data = wire.delta(chunks[i])
            else:
                data = b""
            if i == bad_at:
                data = wire.malformed() + data
            if i == last:
                data += tail
            pending += data
        await resp.write_eof(pending)  # the last chunks and the end of the chunked body in one send
        return resp

    async def _whole(self, request: web.Request, loop: asyncio.AbstractEventLoop, work: _Work, req: GenRequest,
                     reply: _Reply, wire: Wire, kind: str | None, seq: int) -> web.StreamResponse:
        cfg = self.state.cfg
        per_chunk = cfg.tokens_per_chunk
        steps = max(1, -(-reply.count // per_chunk))
        timeline = _Timeline(self.state, work.start, work.first, steps, hash((cfg.seed, seq)))
        await _until(loop, timeline.at(0))
        work.first_token()
        if cfg.itl_per_request_ms:  # each gap depends on the load when it starts: walk them
            for i in range(1, steps):
                await _until(loop, timeline.at(i))
        elif steps > 1:
            await _until(loop, timeline.at(steps - 1))
        body = wire.body("".join(reply.tokens), None if kind == "no_done" else reply.reason,
                         req.prompt_tokens, reply.count)
        if kind == "malformed_sse":
            body = body[: len(body) // 2]
        elif kind == "drop_mid_stream":
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            resp.content_length = len(body)
            await resp.prepare(request)
            await resp.write(body[: len(body) // 2])
            _abort(request)
            return resp
        return web.Response(body=body, content_type="application/json")


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _stats(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(request.app[STATE].stats_dict()), content_type="application/json")


async def _requests(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not state.cfg.capture_requests:
        return web.json_response({"error": "start the mock with capture_requests (--capture-requests) to keep "
                                  "request bodies"}, status=404)
    return web.Response(body=orjson.dumps(state.captured), content_type="application/json")


async def _reset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.reset()
    return web.Response(body=orjson.dumps(state.stats_dict()), content_type="application/json")


def create_mock_app(cfg: MockConfig) -> web.Application:
    """Build the aiohttp application of the simulated endpoint.

    Args:
        cfg: what the endpoint does (timing, faults, answers).

    Returns:
        An aiohttp `web.Application` serving every dialect's routes, /health, /mock/stats, /mock/requests and
        /mock/reset.
    """
    state = MockState(cfg)
    app = web.Application(client_max_size=_MAX_BODY, middlewares=[_track_arrivals])
    app[STATE] = state
    routes = [web.get("/health", _health), web.get("/mock/stats", _stats), web.get("/mock/requests", _requests),
              web.post("/mock/reset", _reset)]
    for dialect in DIALECTS:
        routes.extend(dialect.extra_routes(cfg))
        for endpoint in dialect.endpoints:
            routes.append(web.post(endpoint.path, _Handler(state, dialect, endpoint).handle))
    app.add_routes(routes)
    return app


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        from ..errors import ConfigError

        raise ConfigError("host", f"cannot resolve {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        from ..errors import ConfigError

        raise ConfigError("port", f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class MockServer:
    """The simulated endpoint running in the current event loop.

        async with MockServer(MockConfig(port=0, ttft_ms=0)) as server:
            url = server.chat_url
    """

    def __init__(self, cfg: MockConfig) -> None:
        """Args:
            cfg: what the endpoint does; `cfg.port` 0 picks a free port.
        """
        self.cfg = cfg
        self.app = create_mock_app(cfg)
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. http://127.0.0.1:8000/v1."""
        if self.port is None:
            raise RuntimeError("the mock server is not started")
        return f"http://{_url_host(self.cfg.host)}:{self.port}/v1"

    @property
    def chat_url(self) -> str:
        return self.base_url + "/chat/completions"

    @property
    def completions_url(self) -> str:
        return self.base_url + "/completions"

    def stats(self) -> dict[str, Any]:
        """The same counters as GET /mock/stats."""
        return self.app[STATE].stats_dict()

    def reset(self) -> None:
        """Clear the counters, the prefix cache and the captured requests, and restart the fault plan, as
        POST /mock/reset does."""
        self.app[STATE].reset()

    def captured(self) -> list[Any]:
        """The JSON bodies of the generation requests received, in arrival order (with `capture_requests`)."""
        return list(self.app[STATE].captured)

    async def start(self) -> str:
        """Bind and serve.

        Returns:
            The base URL.

        Raises:
            ConfigError: the host does not resolve or the port cannot be bound.
        """
        sock = _bind(self.cfg.host, self.cfg.port)
        self.port = sock.getsockname()[1]
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        loop = asyncio.get_running_loop()
        server = runner.server
        assert server is not None
        try:
            # In place of a web.SockSite: the same server, each connection's protocol wrapped in _Arrivals.
            self._listener = await loop.create_server(lambda: _Arrivals(server(), loop), sock=sock, backlog=4096)
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        return self.base_url

    async def close(self) -> None:
        """Stop serving; streams still running are cut."""
        runner, self._runner = self._runner, None
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if runner is not None:
            await runner.cleanup()
        if listener is not None:
            await listener.wait_closed()

    async def __aenter__(self) -> MockServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _serve(cfg: MockConfig, on_ready: Callable[[str], None] | None, stop: asyncio.Event) -> dict[str, Any]:
    server = MockServer(cfg)
    await server.start()
    try:
        if on_ready is not None:
            on_ready(server.base_url)
        await stop.wait()
    finally:
        final = server.stats()
        await server.close()
    return final


def run_mock(cfg: MockConfig, *, on_ready: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Serve the simulated endpoint until Ctrl-C or SIGTERM (blocking; on a (uv)loop in a helper thread, so
    it also works under a running loop, e.g. in Jupyter).

    Args:
        cfg: what the endpoint does.
        on_ready: called (from the helper thread) with the base URL (e.g. http://127.0.0.1:8000/v1) once the
            port is bound.

    Returns:
        The final counters (the /mock/stats document); empty if aborted by a second Ctrl-C.

    Raises:
        ConfigError: the host does not resolve or the port cannot be bound.
    """
    from .._aio import run_blocking

    stop = asyncio.Event()
    try:
        return run_blocking(_serve(cfg, on_ready, stop), stop=stop, fast=True, name="evalsvc-mock")
    except KeyboardInterrupt:
        return {}
