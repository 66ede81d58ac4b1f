"""Running one sweep point: pacing, concurrency, stopping, records; in one process or sharded over several.

Closed loop (rate = -1): `parallel` coroutines send back to back. Open loop (rate > 0): a dispatcher
sleeps until each precomputed absolute deadline, waits for a free slot (so `parallel` caps it) and
starts the request; the gap between deadline and send is recorded as send lag.
"""

from __future__ import annotations

import asyncio
import gc
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Callable

from .._io import AtomicLines
from ._metrics import RunStats
from ._sender import Outcome, Sender

RECORD_BATCH = 2048
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


class Counters:
    __slots__ = ("done", "failed")

    def __init__(self) -> None:
        self.done = 0
        self.failed = 0


class RecordSink:
    """Per-request JSONL records, written in batches on a background thread (never on the event loop)."""

    def __init__(self, path: str, t0: float) -> None:
        self._lines = AtomicLines(path)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalsvc-records")
        self._rows: list[dict[str, Any]] = []
        self._pending: list[Any] = []
        self.t0 = t0

    def add(self, o: Outcome) -> None:
        self._rows.append(o.to_record(self.t0))
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


async def run_shard(plan: ShardPlan, sender: Sender, stats: RunStats, t0: float, stop: asyncio.Event,
                    counters: Counters, sink: RecordSink | None) -> str | None:
    """Send this shard's requests; return why it stopped early ("interrupted", "duration") or None."""
    loop = asyncio.get_running_loop()
    if plan.warmup:
        await _warmup(plan, sender, stop)
    delay = t0 - perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    stats.load.start()

    def record(o: Outcome) -> None:
        stats.add(o)
        counters.done += 1
        if o.kind is not None:
            counters.failed += 1
        if sink is not None:
            sink.add(o)

    indices = range(plan.start, plan.start + plan.step * plan.count, plan.step)
    tasks: set[asyncio.Task[Any]] = set()

    if plan.offsets is None:
        it = iter(indices)

        async def closed_worker() -> None:
            for i in it:
                if stop.is_set():
                    return
                record(await sender.send(i, None))

        for _ in range(min(plan.parallel, plan.count)):
            tasks.add(loop.create_task(closed_worker()))
        main: asyncio.Future[Any] = asyncio.gather(*tasks)
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
                wait = due - perf_counter()
                if wait > 0.0005:
                    await asyncio.sleep(wait)
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
    return "interrupted" if interrupted else "duration"


async def _cancel_all(stop: asyncio.Event, sender: Sender, main: asyncio.Future[Any],
                      tasks: set[asyncio.Task[Any]]) -> None:
    stop.set()  # no worker starts another request
    sender.stopping = True  # in-flight requests become "unfinished" records instead of raising
    main.cancel()
    for task in list(tasks):
        task.cancel()
    await asyncio.shield(asyncio.gather(main, *tasks, return_exceptions=True))


async def _warmup(plan: ShardPlan, sender: Sender, stop: asyncio.Event | None = None) -> None:
    """Requests sent before the measured run (connections, caches); their outcomes are not kept.

    `plan.duration` bounds the warm-up too: it stops when the duration is spent, and the time it took is
    taken off `plan.duration`, so the warm-up and the measured run together last at most `duration`.
    """
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
        everything = asyncio.gather(*workers)
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


# -- sharding over processes ------------------------------------------------------------------------

def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


@dataclass
class ShardJob:
    """Everything a client process needs (pickled to it at spawn)."""

    config: Any
    plan: ShardPlan
    bodies: list[bytes]
    prompt_tokens: list[int]
    records_path: str | None


def shard_main(job: ShardJob, conn: Any) -> None:
    """Entry point of a spawned client process: ready -> wait for t0 -> run -> send stats back."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        pass
    gc.disable()
    try:
        asyncio.run(_shard_async(job, conn))
    except BaseException as exc:  # report, never hang the parent
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        except Exception:
            pass
    finally:
        conn.close()


async def _shard_async(job: ShardJob, conn: Any) -> None:
    from ..perf.dialects import get_dialect

    config, plan = job.config, job.plan
    stop = asyncio.Event()
    counters = Counters()
    stats = RunStats(bool(config.stream), config.slo)
    sender = Sender(get_dialect(config.api), config, job.bodies, job.prompt_tokens)
    try:
        if plan.warmup:
            await _warmup(plan, sender)
            plan.warmup = 0
        conn.send(("ready",))
        loop = asyncio.get_running_loop()
        msg = await loop.run_in_executor(None, conn.recv)
        if msg[0] != "start":
            return
        t0 = msg[1]
        sink = RecordSink(job.records_path, t0) if job.records_path else None

        async def relay() -> None:
            try:
                while True:
                    await asyncio.sleep(0.1)
                    conn.send(("progress", counters.done, counters.failed))
                    if conn.poll() and conn.recv()[0] == "stop":
                        stop.set()
            except (OSError, EOFError):  # the parent is gone: stop sending load
                stop.set()

        relay_task = loop.create_task(relay())
        try:
            reason = await run_shard(plan, sender, stats, t0, stop, counters, sink)
        finally:
            relay_task.cancel()
            path = sink.close() if sink is not None else None
        conn.send(("done", stats, reason, path))
    finally:
        sender.close()


async def run_sharded(config: Any, plans: list[ShardPlan], bodies: list[bytes], prompt_tokens: list[int],
                      records_dir: str | None, stop: asyncio.Event,
                      on_progress: Callable[[int, int], None]) -> tuple[RunStats, str | None, list[str], list[str]]:
    """Run one sweep point over `len(plans)` spawned client processes and merge what they measured.

    Returns:
        (merged stats, why it stopped early or None, record part files, errors of client processes).
        A client process that dies stops the others; what they measured is still returned.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs, conns = [], []
    merged = RunStats(bool(config.stream), config.slo)
    reasons: list[str] = []
    parts: list[str] = []
    errors: list[str] = []
    for k, plan in enumerate(plans):
        parent, child = ctx.Pipe()
        path = os.path.join(records_dir, f".{plan.key}.part{k}.jsonl") if records_dir else None
        proc = ctx.Process(target=shard_main, args=(ShardJob(config, plan, bodies, prompt_tokens, path), child),
                           name=f"evalsvc-perf-{k}", daemon=True)
        proc.start()
        child.close()
        procs.append(proc)
        conns.append(parent)
    try:
        for proc, conn in zip(procs, conns):  # all ready (warmed up) before anyone starts
            while not conn.poll():
                if not proc.is_alive():
                    raise RuntimeError(f"client process {proc.name} exited before it was ready "
                                       f"(exit code {proc.exitcode}); is the caller guarded by "
                                       "`if __name__ == '__main__':`?")
                if stop.is_set():
                    return merged, "interrupted", parts, errors
                await asyncio.sleep(0.02)
            try:
                msg = conn.recv()
            except EOFError:
                msg = ("error", "exited without a word")
            if msg[0] != "ready":
                raise RuntimeError(f"client process failed to start: {msg[1] if len(msg) > 1 else msg}")
        t0 = perf_counter() + 0.05
        for conn in conns:
            conn.send(("start", t0))
        progress = [(0, 0)] * len(conns)
        pending = set(range(len(conns)))
        stop_sent = False
        last_report = perf_counter()
        while pending:
            await asyncio.sleep(0.05)
            if (stop.is_set() or errors) and not stop_sent:
                for k in pending:
                    _send_quietly(conns[k], ("stop",))
                stop_sent = True
            for k in list(pending):
                while k in pending and conns[k].poll():
                    try:
                        msg = conns[k].recv()
                    except (EOFError, OSError):
                        msg = ("error", f"exited without reporting (exit code {procs[k].exitcode})")
                    if msg[0] == "progress":
                        progress[k] = (msg[1], msg[2])
                    elif msg[0] == "done":
                        merged.merge(msg[1])
                        if msg[2]:
                            reasons.append(msg[2])
                        if msg[3]:
                            parts.append(msg[3])
                        progress[k] = (msg[1].requests, msg[1].failed)
                        pending.discard(k)
                    elif msg[0] == "error":
                        errors.append(f"client process {procs[k].name}: {msg[1]}")
                        pending.discard(k)
            now = perf_counter()
            if now - last_report >= PROGRESS_PERIOD or not pending:
                last_report = now
                on_progress(sum(p[0] for p in progress), sum(p[1] for p in progress))
        reason = "interrupted" if "interrupted" in reasons else (reasons[0] if reasons else None)
        return merged, reason, parts, errors
    finally:
        for conn in conns:  # a child waiting for "start" or sending progress sees the pipe close and ends
            _send_quietly(conn, ("stop",))
            conn.close()
        for proc in procs:
            proc.join(timeout=2)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=2)


def _send_quietly(conn: Any, msg: tuple[Any, ...]) -> None:
    try:
        conn.send(msg)
    except (OSError, ValueError):
        pass
