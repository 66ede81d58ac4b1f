"""Running one sweep point in this process: pacing, concurrency, stopping, records (_shards.py spreads a
point over several client processes, each running this).

Closed loop (rate = -1): `parallel` coroutines send back to back. Open loop (rate > 0): a dispatcher
sleeps until each precomputed absolute deadline, waits for a free slot (so `parallel` caps it) and
starts the request; the gap between deadline and send is recorded as send lag.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from .._io import AtomicLines
from ..status import RunStatus
from ._metrics import RunStats
from ._sender import Outcome, Sender

RECORD_BATCH = 2048
STOPPED_INTERRUPTED = RunStatus.INTERRUPTED.value
"""A point's `stopped_by` when the stop event stopped it (Ctrl-C, SIGTERM, a cancelled job)."""
STOPPED_DURATION = "duration"
"""A point's `stopped_by` when its `duration` cap ended it."""
LOOP_LAG_PERIOD = 0.05
PROGRESS_PERIOD = 0.5


@dataclass
class ShardPlan:
    """One client process's share of a run: requests `start, start+step, ...` (`count` of them)."""

    key: str
    start: int
    step: int
    count: int
    parallel: int
    warmup: int
    offsets: Any | None  # array of seconds from t0 for this shard's requests, or None (closed loop)
    duration: float | None
    tags: Any | None = None  # per-prompt fields added to request i's record (tags[i % len]): a trace's index, time
    sessions: list[Any] | None = None
    """multi_turn: the run's conversations (Prompts with `turns`); this shard's sessions replay them, and
    the offsets then time session starts (see _sessions.py)."""


class Counters:
    """Live counts of a shard, read by progress reports: finished, failed, and meeting every SLO."""

    __slots__ = ("done", "failed", "met")

    def __init__(self) -> None:
        self.done = 0
        self.failed = 0
        self.met = 0


class RecordSink:
    """Per-request JSONL records, written in batches on a background thread (never on the event loop)."""

    def __init__(self, path: str, t0: float, tags: Any | None = None) -> None:
        self._lines = AtomicLines(path)
        self._tags = tags
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalsvc-records")
        self._rows: list[dict[str, Any]] = []
        self._pending: list[Any] = []
        self.t0 = t0

    def add(self, o: Outcome) -> None:
        row = o.to_record(self.t0)
        if self._tags:
            row.update(self._tags[o.index % len(self._tags)])
        self._rows.append(row)
        if len(self._rows) >= RECORD_BATCH:
            rows, self._rows = self._rows, []
            self._pending.append(self._pool.submit(self._lines.write_many, rows))
            self._pending = [f for f in self._pending if not f.done()]

    def close(self) -> str:
        if self._rows:
            self._pending.append(self._pool.submit(self._lines.write_many, self._rows))
            self._rows = []
        for f in self._pending:
            f.result()
        self._pool.shutdown(wait=True)
        return str(self._lines.close())


async def sleep_until(due: float) -> None:
    """Sleep until `due` (a perf_counter() time), to within 0.5 ms and never before it: the event loop's
    timers may wake up to 1 ms early, so a wake-up short of `due` sleeps again."""
    while (wait := due - perf_counter()) > 0.0005:
        await asyncio.sleep(wait)


async def run_shard(plan: ShardPlan, sender: Sender, stats: RunStats, t0: float, stop: asyncio.Event,
                    counters: Counters, sink: RecordSink | None) -> str | None:
    """Send this shard's requests (warm up first with `warmup`); return why it stopped early
    (STOPPED_INTERRUPTED, STOPPED_DURATION) or None."""
    loop = asyncio.get_running_loop()
    delay = t0 - perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    stats.load.start()

    def record(o: Outcome) -> None:
        met = stats.slo.met
        stats.add(o)
        counters.met += stats.slo.met - met
        counters.done += 1
        if o.kind is not None:
            counters.failed += 1
        if sink is not None:
            sink.add(o)

    indices = range(plan.start, plan.start + plan.step * plan.count, plan.step)
    tasks: set[asyncio.Task[Any]] = set()

    if plan.sessions is not None:
        from ._sessions import start_sessions

        main: asyncio.Future[Any] = start_sessions(plan, sender, stats, t0, stop, record, tasks)
    elif plan.offsets is None:
        it = iter(indices)

        async def closed_worker() -> None:
            for i in it:
                if stop.is_set():
                    return
                record(await sender.send(i, None))

        for _ in range(min(plan.parallel, plan.count)):
            tasks.add(loop.create_task(closed_worker()))
        main = asyncio.gather(*tasks)
    else:
        sem = asyncio.Semaphore(plan.parallel)
        offsets = plan.offsets

        async def one(i: int, due: float) -> None:
            try:
                record(await sender.send(i, due))
            finally:
                sem.release()

        async def dispatcher() -> None:
            for k, i in enumerate(indices):
                due = t0 + offsets[k]
                await sleep_until(due)
                if stop.is_set():
                    return
                await sem.acquire()
                if stop.is_set():
                    sem.release()
                    return
                task = loop.create_task(one(i, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*list(tasks))

        main = loop.create_task(dispatcher())

    lag = loop.create_task(_loop_lag(stats))
    stop_wait = loop.create_task(stop.wait())
    waiters: list[asyncio.Future[Any]] = [main, stop_wait]
    if plan.duration is not None:
        waiters.append(loop.create_task(asyncio.sleep(max(0.0, t0 + plan.duration - perf_counter()))))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        interrupted = stop.is_set()
        if not main.done() or interrupted:
            # stopped (or the cap hit) before everything finished: stop sending, cancel what is in flight
            # (recorded as unfinished, not as failures) and wait for every request task to settle
            await _cancel_all(stop, sender, main, tasks)
        else:
            main.result()
    except asyncio.CancelledError:
        # the caller cancelled the run itself: nothing may keep sending after we return
        await _cancel_all(stop, sender, main, tasks)
        raise
    finally:
        for w in waiters[1:]:
            w.cancel()
        lag.cancel()
    if stats.requests + stats.unfinished >= plan.count and not stats.unfinished:
        return None  # everything was sent and answered, even if a stop arrived at the very end
    return STOPPED_INTERRUPTED if interrupted else STOPPED_DURATION


async def _cancel_all(stop: asyncio.Event, sender: Sender, main: asyncio.Future[Any],
                      tasks: set[asyncio.Task[Any]]) -> None:
    stop.set()  # no worker starts another request
    sender.stopping = True  # in-flight requests become "unfinished" records instead of raising
    main.cancel()
    for task in list(tasks):
        task.cancel()
    await asyncio.shield(asyncio.gather(main, *tasks, return_exceptions=True))


async def warmup(plan: ShardPlan, sender: Sender, stop: asyncio.Event | None = None) -> None:
    """The plan's `warmup` requests, sent before the measured run (connections, caches); their outcomes
    are not kept. Callers warm up before they fix t0, so the warm-up never eats into the schedule.

    `plan.duration` bounds the warm-up too: it stops when the duration is spent, and the time it took is
    taken off `plan.duration`, so the warm-up and the measured run together last at most `duration`.
    """
    if not plan.warmup:
        return
    it = iter(range(plan.warmup))
    started = perf_counter()
    halted = False

    async def worker() -> None:
        for j in it:
            if halted or (stop is not None and stop.is_set()):
                return
            await sender.send(plan.start + plan.step * (plan.count + j), None)

    workers = [asyncio.ensure_future(worker()) for _ in range(min(plan.parallel, plan.warmup))]
    try:
        everything: asyncio.Future[Any] = asyncio.gather(*workers)
        waiter = asyncio.ensure_future(stop.wait()) if stop is not None else None
        await asyncio.wait([everything, *([waiter] if waiter else [])], timeout=plan.duration,
                           return_when=asyncio.FIRST_COMPLETED)
        if waiter is not None:
            waiter.cancel()
        if everything.done():
            everything.result()  # a bug in a warm-up send is raised, as before
    finally:
        if any(not w.done() for w in workers):
            halted = True  # a cancelled send returns as "unfinished": the worker must not start another
            sender.stopping = True
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            sender.stopping = False
        if plan.duration is not None:
            plan.duration = max(0.0, plan.duration - (perf_counter() - started))


async def _loop_lag(stats: RunStats) -> None:
    """How late the event loop wakes a 50 ms timer: a busy loop means client-side delay in every timing."""
    dist = stats.dists["loop_lag_ms"]
    while True:
        t = perf_counter()
        await asyncio.sleep(LOOP_LAG_PERIOD)
        dist.add(max(0.0, (perf_counter() - t - LOOP_LAG_PERIOD) * 1000.0))
