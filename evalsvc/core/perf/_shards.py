"""Sharding a sweep point over client processes: each shard its own interpreter and event loop, so one
machine can offer more load than one Python process can send.

`Shards` is the interface a backend implements. `LocalShards` (here) runs the shards as local processes,
`RayShards` (perf/_ray.py) as Ray actors spread over a cluster's nodes; both are transports for one driver
(`drive` below: hand over the jobs, wait until every shard is Ready, start them together, collect and
merge), so the plan, the start barrier, the stop rules and the exact merge are written once.
`LocalShards` starts a child running `main` below once per shard with the child-process toolkit
(core/_proc.py): a fresh interpreter each, as multiprocessing's spawn gives, but without re-importing the
caller's __main__ (a script without a `__main__` guard works). The caller's process group is kept, so a
job's cancel reaches its shards; a shard ignores SIGINT (the parent decides when to stop).

Per shard, two pickle channels:
    parent -> shard   the parent's sys.path, a ShardJob, then Start(t0) or Stop; its end of file is the
                      lifeline (the parent is gone: stop sending load)
    shard -> parent   Ready (warmed up), Progress..., then Done (what it measured) or Failed

All shards start sending at one t0 after every shard is Ready. A shard that ends before it is Ready fails
the run with ClientStartError (which shard, how it ended, its last stderr lines); one that dies later
stops the others, and what they measured is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any, NamedTuple, Protocol

from .. import _proc
from ..errors import ClientStartError
from ._engine import (
    PROGRESS_PERIOD,
    STOPPED_INTERRUPTED,
    Counters,
    RecordSink,
    ShardPlan,
    run_shard,
    warmup,
)
from ._metrics import RunStats
from ._sender import Sender
from ._verdict import client_verdict

_HOST = socket.gethostname()
CRASH_HOOK_ENV = "EVALSVC_TEST_SHARD_CRASH"
"""Tests only: the index of a shard that exits at once (code 70) as a crashed client would. Unset: inert."""
STOP_GRACE_S = 2.0
PROGRESS_RELAY_S = 0.1


def split(total: int, parts: int) -> list[int]:
    """`total` in `parts` near-equal shares, larger ones first."""
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


# ---- messages --------------------------------------------------------------------------------------

@dataclass
class ShardJob:
    """Everything a client process needs to run its share."""

    config: Any
    plan: ShardPlan
    bodies: list[bytes]
    prompt_tokens: list[int]
    records_path: str | None


@dataclass
class Start:
    t0: float
    """The perf_counter() instant every shard starts at (one machine: one clock; a transport to another
    machine sends the offset from now instead, see perf/_ray.py)."""


@dataclass
class Stop:
    pass


@dataclass
class Ready:
    pass


@dataclass
class Progress:
    done: int
    failed: int
    met: int = 0


@dataclass
class Done:
    stats: RunStats
    reason: str | None
    """Why it stopped early (STOPPED_INTERRUPTED, STOPPED_DURATION), or None."""
    records: str | None
    """Its part of the request records."""


@dataclass
class Failed:
    error: str


class ShardedRun(NamedTuple):
    stats: RunStats
    """What every shard that reported measured, merged."""
    reason: str | None
    parts: list[str]
    """Request-record files, one per shard."""
    errors: list[str]
    """Client processes that died mid-run (their numbers are lost; the others' are kept)."""
    clients: list[dict[str, Any]]
    """Per shard, in order: where it ran and what it measured (see `client_summary`)."""


class Transport(Protocol):
    """One started shard as the driver sees it: its control channel and how to describe it."""

    index: int

    def describe(self) -> str:
        """'client process 2 of 3 (pid 123)', 'Ray actor 2 of 3 on node ab12cd (pid 123)'."""
        ...

    def where(self) -> dict[str, Any]:
        """Where it runs, for the summary: {"pid", "host"} and, on Ray, "node_id", "node_ip"."""
        ...

    def send(self, message: Any) -> None:
        """Start or Stop (never raises: a shard that is gone is noticed by its end of stream)."""
        ...

    async def ended(self) -> tuple[str, str]:
        """How it ended, once its stream of messages ended (exit code, signal, the error that killed it), and
        any detail (its last stderr lines)."""
        ...

    def close(self) -> None:
        """Tell it to stop, release it (kill it if it lingers)."""
        ...


class Shards(Protocol):
    """Runs one sweep point over several client processes and merges what they measured."""

    async def run(self, config: Any, plans: list[ShardPlan], bodies: list[bytes], prompt_tokens: list[int],
                  records_dir: str | None, stop: asyncio.Event,
                  on_progress: Callable[[int, int, int], None]) -> ShardedRun: ...


# ---- the parent's side ----------------------------------------------------------------------------

class _Shard:
    """One started client process: its control channel, its messages (onto `inbox`), its stderr tail."""

    def __init__(self, index: int, total: int, inbox: asyncio.Queue[tuple[int, Any]]) -> None:
        self.index = index
        self.total = total
        self.process, control_w, events_r = _proc.start_piped("evalsvc.core.perf._shards:main", str(index),
                                                              stderr=subprocess.PIPE)
        self.control = _proc.Channel(control_w, "pickle")
        self.stderr = _proc.StderrTail(self.process.stderr)
        self.reader = asyncio.ensure_future(self._read(events_r, inbox))

    async def _read(self, fd: int, inbox: asyncio.Queue[tuple[int, Any]]) -> None:
        try:
            async for message in _proc.read_frames(fd, "pickle"):
                inbox.put_nowait((self.index, message))
        finally:
            inbox.put_nowait((self.index, None))  # end of stream: it exited (or closed its end)

    def send(self, message: Any) -> None:
        with contextlib.suppress(OSError):
            self.control.send(message)

    def exit_code(self, wait: float) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.process.wait(wait)
        return None

    def describe(self) -> str:
        return f"client process {self.index + 1} of {self.total} (pid {self.process.pid})"

    def where(self) -> dict[str, Any]:
        return {"pid": self.process.pid, "host": _HOST}

    async def ended(self) -> tuple[str, str]:
        code = await asyncio.to_thread(self.exit_code, STOP_GRACE_S)
        return _proc.describe_exit(code), await asyncio.to_thread(self.stderr.text)

    def close(self) -> None:
        """Tell it to stop, cut its lifeline, wait for it (killing it if it lingers)."""
        self.send(Stop())
        self.control.close()
        if self.exit_code(STOP_GRACE_S) is None:
            self.process.kill()
            self.exit_code(STOP_GRACE_S)
        self.reader.cancel()


class LocalShards:
    """Shards as local processes (see the module docstring)."""

    async def run(self, config: Any, plans: list[ShardPlan], bodies: list[bytes], prompt_tokens: list[int],
                  records_dir: str | None, stop: asyncio.Event,
                  on_progress: Callable[[int, int, int], None]) -> ShardedRun:
        """Run one sweep point over `len(plans)` client processes and merge what they measured.

        Raises:
            ClientStartError: a client process ended before it was ready.
        """
        inbox: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        shards: list[_Shard] = []
        try:
            for k in range(len(plans)):
                shards.append(_Shard(k, len(plans), inbox))
            jobs = [ShardJob(config, plan, bodies, prompt_tokens,
                             os.path.join(records_dir, f".{plan.key}.part{k}.jsonl") if records_dir else None)
                    for k, plan in enumerate(plans)]
            # a job may be megabytes of bodies: written off the loop (a shard reads it at once)
            await asyncio.gather(*(asyncio.to_thread(_hand_over, s, job) for s, job in zip(shards, jobs, strict=True)))
            return await drive(config, plans, shards, inbox, stop, on_progress)
        finally:
            for shard in shards:
                shard.close()


async def drive(config: Any, plans: list[ShardPlan], shards: Sequence[Transport],
                inbox: asyncio.Queue[tuple[int, Any]], stop: asyncio.Event,
                on_progress: Callable[[int, int, int], None]) -> ShardedRun:
    """The transport-neutral part of a sharded sweep point: `shards` (Transports, their jobs handed over)
    report onto `inbox` as (index, message), None for the end of a shard's stream.

    Raises:
        ClientStartError: a shard ended before it was ready.
    """
    if not await _all_ready(shards, inbox, stop):
        clients = [client_summary(config, plan, shard.where(), None) for plan, shard in zip(plans, shards, strict=True)]
        return ShardedRun(RunStats(bool(config.stream), config.slo), STOPPED_INTERRUPTED, [], [], clients)
    return await _measure(config, plans, shards, inbox, stop, on_progress)


def client_summary(config: Any, plan: ShardPlan, where: dict[str, Any], stats: RunStats | None,
                   error: str | None = None) -> dict[str, Any]:
    """One shard's line in the summary: where it ran, its share, what it measured and its own client-bound
    verdict (its CPU share, loop lag and send lag alone), or the error that lost its numbers."""
    out: dict[str, Any] = {"shard": plan.start, **where, "number": plan.count, "parallel": plan.parallel,
                           "requests": None, "failed": None, "cpu_share": None, "client_bound": None,
                           "client_bound_reasons": [], "error": error}
    if stats is not None:
        metrics = stats.metrics()
        verdict = client_verdict(metrics, stats.load, stats.dists["loop_lag_ms"], plan.parallel,
                                 1.0 if plan.offsets is not None else -1.0, 1)
        out.update(requests=stats.requests, failed=stats.failed, cpu_share=verdict["client_cpu_share"],
                   client_bound=verdict["client_bound"], client_bound_reasons=verdict["client_bound_reasons"])
    return out


def _hand_over(shard: _Shard, job: ShardJob) -> None:
    shard.send(_proc.parent_sys_path())
    shard.send(job)


async def _next(inbox: asyncio.Queue[tuple[int, Any]], stop: asyncio.Event | None,
                timeout: float) -> tuple[int, Any] | None:
    """The next message, or None after `timeout` or when `stop` is set."""
    if not inbox.empty():
        return inbox.get_nowait()
    getter = asyncio.ensure_future(inbox.get())
    waiters: list[asyncio.Future[Any]] = [getter]
    if stop is not None:
        waiters.append(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
    if getter.done() and not getter.cancelled():
        return getter.result()
    return None


async def _all_ready(shards: Sequence[Transport], inbox: asyncio.Queue[tuple[int, Any]], stop: asyncio.Event) -> bool:
    """Wait until every shard has warmed up (False: stopped meanwhile).

    Raises:
        ClientStartError: a shard ended, or failed, before it was ready.
    """
    waiting = {s.index for s in shards}
    while waiting:
        if stop.is_set():
            return False
        item = await _next(inbox, stop, 1.0)
        if item is None:
            continue
        k, message = item
        shard = shards[k]
        if isinstance(message, Ready):
            waiting.discard(k)
        elif isinstance(message, Failed):
            raise ClientStartError(f"{shard.describe()} failed before it was ready: {message.error}")
        elif message is None:
            how, tail = await shard.ended()
            raise ClientStartError(f"{shard.describe()} ended before it was ready ({how})"
                                   + (f": {tail}" if tail else ""))
    return True


async def _measure(config: Any, plans: list[ShardPlan], shards: Sequence[Transport],
                   inbox: asyncio.Queue[tuple[int, Any]], stop: asyncio.Event,
                   on_progress: Callable[[int, int, int], None]) -> ShardedRun:
    merged = RunStats(bool(config.stream), config.slo)
    reasons: list[str] = []
    parts: list[str] = []
    errors: list[str] = []
    clients: list[dict[str, Any] | None] = [None] * len(shards)
    t0 = perf_counter() + 0.05
    for shard in shards:
        shard.send(Start(t0))
    progress = [(0, 0, 0)] * len(shards)
    pending = {s.index for s in shards}
    stop_sent = False
    last_report = perf_counter()
    while pending:
        if (stop.is_set() or errors) and not stop_sent:
            for k in pending:
                shards[k].send(Stop())
            stop_sent = True
        item = await _next(inbox, None if stop_sent else stop, PROGRESS_PERIOD)
        if item is not None:
            k, message = item
            if k not in pending:
                pass
            elif isinstance(message, Progress):
                progress[k] = (message.done, message.failed, message.met)
            elif isinstance(message, Done):
                clients[k] = client_summary(config, plans[k], shards[k].where(), message.stats)
                merged.merge(message.stats)
                if message.reason:
                    reasons.append(message.reason)
                if message.records:
                    parts.append(message.records)
                progress[k] = (message.stats.requests, message.stats.failed, message.stats.slo.met)
                pending.discard(k)
            elif isinstance(message, Failed):
                errors.append(f"{shards[k].describe()}: {message.error}")
                clients[k] = client_summary(config, plans[k], shards[k].where(), None, message.error)
                pending.discard(k)
            elif message is None:
                why = f"exited without reporting ({(await shards[k].ended())[0]})"
                errors.append(f"{shards[k].describe()} {why}")
                clients[k] = client_summary(config, plans[k], shards[k].where(), None, why)
                pending.discard(k)
        now = perf_counter()
        if now - last_report >= PROGRESS_PERIOD or not pending:
            last_report = now
            on_progress(sum(p[0] for p in progress), sum(p[1] for p in progress), sum(p[2] for p in progress))
    reason = STOPPED_INTERRUPTED if STOPPED_INTERRUPTED in reasons else (reasons[0] if reasons else None)
    return ShardedRun(merged, reason, parts, errors, [c for c in clients if c is not None])


LOCAL = LocalShards()


async def run_sharded(config: Any, plans: list[ShardPlan], bodies: list[bytes], prompt_tokens: list[int],
                      records_dir: str | None, stop: asyncio.Event,
                      on_progress: Callable[[int, int, int], None]) -> ShardedRun:
    """One sweep point over local client processes (see LocalShards.run), or over Ray actors when the config
    names a Ray cluster (`ray_address`, see perf/_ray.py)."""
    shards: Shards = LOCAL
    if getattr(config, "ray_address", None):
        from ._ray import RayShards

        shards = RayShards(config.ray_address)
    return await shards.run(config, plans, bodies, prompt_tokens, records_dir, stop, on_progress)


# ---- the client process -----------------------------------------------------------------------------

def main(control_fd: int, events_fd: int, index: int) -> None:
    """Entry point of a client process: ready -> wait for t0 -> run -> send what it measured."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    if os.environ.get(CRASH_HOOK_ENV) == str(index):
        sys.stderr.write(f"{CRASH_HOOK_ENV}={index}: this client process crashes on purpose\n")
        sys.stderr.flush()
        os._exit(70)
    control = _proc.Channel(control_fd, "pickle")
    events = _proc.Channel(events_fd, "pickle")
    try:
        _proc.adopt_sys_path(control.recv())
        job = control.recv()
    except (EOFError, OSError):
        return  # the parent went away before it told us what to do
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        pass
    gc.disable()
    try:
        asyncio.run(_shard_async(job, control, events))
    except BaseException as exc:  # report, never hang the parent
        with contextlib.suppress(OSError):
            events.send(Failed(f"{type(exc).__name__}: {exc}"))
    finally:
        events.close()


async def _shard_async(job: ShardJob, control: _proc.Channel, events: _proc.Channel) -> None:
    from .dialects import get_dialect

    config, plan = job.config, job.plan
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    started: asyncio.Future[float | None] = loop.create_future()

    def on_start(t0: float | None) -> None:
        if t0 is None:
            stop.set()
        if not started.done():
            started.set_result(t0)

    def listen() -> None:  # Start, Stop, and the lifeline: end of file means the parent is gone
        with contextlib.suppress(EOFError, OSError):
            while True:
                message = control.recv()
                loop.call_soon_threadsafe(on_start, message.t0 if isinstance(message, Start) else None)
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            loop.call_soon_threadsafe(on_start, None)

    threading.Thread(target=listen, name="evalsvc-shard-control", daemon=True).start()
    counters = Counters()
    stats = RunStats(bool(config.stream), config.slo)
    sender = Sender(get_dialect(config.api), config, job.bodies, job.prompt_tokens)
    try:
        await warmup(plan, sender, stop)
        events.send(Ready())
        t0 = await started
        if t0 is None:
            return
        sink = RecordSink(job.records_path, t0, plan.tags) if job.records_path else None

        async def relay() -> None:
            try:
                while True:
                    await asyncio.sleep(PROGRESS_RELAY_S)
                    events.send(Progress(counters.done, counters.failed, counters.met))
            except OSError:  # the parent is gone: stop sending load
                stop.set()

        relay_task = loop.create_task(relay())
        try:
            reason = await run_shard(plan, sender, stats, t0, stop, counters, sink)
        finally:
            relay_task.cancel()
            path = sink.close() if sink is not None else None
        events.send(Done(stats, reason, path))
    finally:
        sender.close()

