"""The job runner: admission, a bounded queue, per-kind concurrency, worker processes, cancel, progress fan-out.

Each job runs in its own spawned worker process (evalscope keeps process-global state, and a load test
must not share the service's event loop). The runner lives on the service's event loop; a reader thread
per running job turns the worker's messages into loop callbacks. Active jobs (queued, running) are held in
memory, which is authoritative for them; every change is also written to SQLite through one writer thread,
so reads that go through the same thread see the writes made before them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import fcntl
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import orjson

from .._io import utc_now_iso, write_json
from .._secrets import run_secrets, scrub
from ..config import EvalConfig, PerfConfig
from . import _child
from ._model import (
    CANCELLED,
    COMPLETED,
    FAILED,
    INTERRUPTED,
    KINDS,
    QUEUED,
    RUNNING,
    Job,
    JobNotFound,
    JobStateError,
    QueueFull,
    RunnerClosed,
    RunnerLocked,
    new_job_id,
)
from ._paths import PathPolicy
from ._store import JobStore

log = logging.getLogger("evalsvc.jobs")

TARGETS: dict[str, str] = {"perf": "evalsvc.core.perf:run_perf", "eval": "evalsvc.core.eval:run_eval"}
"""What a worker calls for each job kind: "module:function" taking (config, progress=callback)."""

DEFAULT_MAX_QUEUED = 16
DEFAULT_EVAL_CONCURRENCY = 2
DEFAULT_PERF_CONCURRENCY = 1
DEFAULT_CANCEL_GRACE_S = 15.0
TERM_GRACE_S = 5.0
LINGER_S = 30.0
"""A worker that sent its result but has not exited after this long is killed."""
PROGRESS_PERSIST_S = 2.0
SUBSCRIBER_BUFFER = 1000

Config = PerfConfig | EvalConfig


class _Active:
    """A queued or running job with what only memory holds: its unredacted config and its process."""

    def __init__(self, job: Job, config: Config, secrets: tuple[str, ...]) -> None:
        self.job = job
        self.config = config
        self.secrets = secrets
        self.process: subprocess.Popen[bytes] | None = None
        self.lifeline: Any = None
        self.outcome: dict[str, Any] | None = None
        self.stop_reason: str | None = None  # "cancel" | "shutdown"
        self.done = asyncio.Event()
        self.subscribers: set[asyncio.Queue[tuple[str, Any]]] = set()
        self.persisted_at = 0.0
        self.tasks: set[asyncio.Task[None]] = set()
        self.expired: str | None = None  # why expire() stopped it


class JobRunner:
    """Runs eval and perf jobs in worker processes, at most `limits` at a time, with a bounded queue.

    Call `await start()` on the event loop that will use it, and `await close()` at the end.

    Args:
        policy: the outputs root (the database lives in its `.evalsvc/`), used for job logs too.
        max_queued: jobs allowed to wait; one more is refused with QueueFull.
        eval_concurrency: eval jobs running at once.
        perf_concurrency: perf jobs running at once (1: two load tests on one host distort each other).
        cancel_grace_s: after a cancel (SIGINT), how long a run may take to stop before it is terminated.
        targets: kind -> "module:function" to run (default: the real engines); tests pass fakes.
        debug: keep tracebacks of internal errors in job errors.
    """

    def __init__(self, policy: PathPolicy, *, max_queued: int = DEFAULT_MAX_QUEUED,
                 eval_concurrency: int = DEFAULT_EVAL_CONCURRENCY, perf_concurrency: int = DEFAULT_PERF_CONCURRENCY,
                 cancel_grace_s: float = DEFAULT_CANCEL_GRACE_S, targets: dict[str, str] | None = None,
                 debug: bool = False) -> None:
        if max_queued < 0 or eval_concurrency < 1 or perf_concurrency < 1:
            raise ValueError("max_queued must be >= 0 and concurrency limits >= 1")
        self.policy = policy
        self.max_queued = max_queued
        self.limits = {"eval": eval_concurrency, "perf": perf_concurrency}
        self.cancel_grace_s = cancel_grace_s
        self.targets = {**TARGETS, **(targets or {})}
        self.debug = debug
        self._active: dict[str, _Active] = {}
        self._queue: deque[str] = deque()
        self._running = {kind: 0 for kind in KINDS}
        self._closing = False
        self._started = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._store: JobStore | None = None
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock_fd: int | None = None
        self._launching: set[asyncio.Future[None]] = set()

    # ---- lifecycle -------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> list[str]:
        """Open the store and mark jobs a previous process left queued or running as interrupted.

        Returns:
            The ids of the jobs marked interrupted.

        Raises:
            RunnerLocked: another live service uses the same outputs root.
        """
        if self._started:
            return []
        if self._closing:
            raise RunnerClosed()
        self._loop = asyncio.get_running_loop()
        state_dir = self.policy.state_dir
        _private_dir(state_dir)
        self._lock_fd = _lock(state_dir / "service.lock")
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="evalsvc-jobstore")
        try:
            self._store = await self._io(JobStore, state_dir / "jobs.sqlite3")
            recovered = await self._io(self._store.recover)
        except BaseException:
            self._writer.shutdown(wait=False)
            os.close(self._lock_fd)
            self._lock_fd = None
            raise
        if recovered:
            log.warning("marked %d job(s) interrupted by the previous service process: %s",
                        len(recovered), ", ".join(recovered))
        self._started = True
        return recovered

    def begin_shutdown(self) -> None:
        """Take no new jobs, mark queued ones interrupted and ask running ones to stop. Loop thread only."""
        if self._closing:
            return
        self._closing = True
        for job_id in list(self._queue):
            active = self._active[job_id]
            self._queue.remove(job_id)
            self._finish(active, INTERRUPTED, error=_interrupted_error("queued"))
        for active in list(self._active.values()):
            if active.job.state == RUNNING:
                self._stop(active, "shutdown")

    def begin_shutdown_threadsafe(self) -> None:
        """begin_shutdown() from any thread or a signal handler (a no-op before start)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.begin_shutdown)

    def check_unlocked(self) -> None:
        """Raise RunnerLocked now if another live service holds this outputs root (checked again at start)."""
        state_dir = self.policy.state_dir
        _private_dir(state_dir)
        os.close(_lock(state_dir / "service.lock", write_pid=False))

    async def close(self) -> None:
        """Stop every job (they keep what they measured and read `interrupted`), flush the store, unlock."""
        if not self._started:
            return
        self.begin_shutdown()
        pending = [a.done.wait() for a in self._active.values()]
        if pending:
            try:
                await asyncio.wait_for(asyncio.gather(*pending), self.cancel_grace_s + TERM_GRACE_S + 10)
            except asyncio.TimeoutError:
                log.error("%d job(s) did not stop; the next start marks them interrupted", len(self._active))
        assert self._writer is not None and self._store is not None
        await self._io(lambda: None)  # every write queued before this one is done
        store, self._store = self._store, None
        store.close()
        self._writer.shutdown(wait=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._started = False

    # ---- queries ---------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts for /health: no I/O."""
        return {"queued": len(self._queue), "running": sum(self._running.values()),
                "running_by_kind": dict(self._running), "max_queued": self.max_queued,
                "concurrency": dict(self.limits), "accepting": not self._closing}

    async def get(self, job_id: str) -> Job:
        """The job with this id, live if active.

        Raises:
            JobNotFound: no such job.
        """
        active = self._active.get(job_id)
        if active is not None:
            return active.job
        job = await self._io(self._require_store().get, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def list(self, *, state: str | None = None, kind: str | None = None, limit: int = 50,
                   offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Job summaries newest first, and how many jobs match in all."""
        store = self._require_store()
        jobs, total = await self._io(
            lambda: (store.list(state=state, kind=kind, limit=limit, offset=offset), store.count(state=state, kind=kind)))
        out = []
        for job in jobs:
            active = self._active.get(job.id)
            out.append((active.job if active is not None else job).summary())
        return out, total

    async def wait(self, job_id: str) -> Job:
        """Wait until the job has finished and return it."""
        active = self._active.get(job_id)
        if active is None:
            return await self.get(job_id)
        await active.done.wait()
        return active.job

    async def events(self, job_id: str, *, heartbeat_s: float = 15.0) -> AsyncIterator[tuple[str, Any]]:
        """Live events of a job: ("state", summary) first, then ("progress" | "log", event) as they come,
        ("ping", None) after `heartbeat_s` of silence, and ("end", summary) last.

        Raises:
            JobNotFound: no such job (raised on the first iteration).
        """
        active = self._active.get(job_id)
        if active is None or active.job.finished:
            job = await self.get(job_id)
            yield "state", job.summary()
            yield "end", job.summary()
            return
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(SUBSCRIBER_BUFFER)
        active.subscribers.add(queue)
        try:
            yield "state", active.job.summary()
            while True:
                try:
                    event, data = await asyncio.wait_for(queue.get(), heartbeat_s)
                except asyncio.TimeoutError:
                    yield "ping", None
                    continue
                yield event, data
                if event == "end":
                    return
        finally:
            active.subscribers.discard(queue)

    # ---- commands --------------------------------------------------------------------------------

    def submit(self, kind: str, config: Config) -> Job:
        """Queue a job; it starts as soon as its kind has a free slot. Loop thread only.

        Args:
            kind: "eval" or "perf".
            config: the validated config, paths already confined (PathPolicy.config_from_body).

        Returns:
            The job, state queued (or already running when a slot was free).

        Raises:
            QueueFull: `max_queued` jobs are already waiting.
            RunnerClosed: the service is shutting down.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        if self._closing or not self._started:
            raise RunnerClosed()
        waiting = len(self._queue)
        if waiting >= self.max_queued and not self._has_slot(kind):
            raise QueueFull(waiting, self.max_queued)
        secrets = _secrets_of(config)
        job = Job(id=new_job_id(), kind=kind, created_at=utc_now_iso(), config=_public_config(config, secrets))
        active = _Active(job, config, secrets)
        self._active[job.id] = active
        self._queue.append(job.id)
        log.info("job %s (%s) queued", job.id, kind)
        self._persist(active)
        self._schedule()
        return job

    async def cancel(self, job_id: str) -> Job:
        """Cancel a job: a queued one at once, a running one by stopping its worker (SIGINT, then harder).

        Returns:
            The job; a running one still reads running until its worker has stopped (`wait()` for that).

        Raises:
            JobNotFound: no such job.
            JobStateError: the job has already finished.
        """
        active = self._active.get(job_id)
        if active is None or active.job.finished:
            job = await self.get(job_id)
            raise JobStateError(job_id, job.state, f"job {job_id} has already finished ({job.state})")
        if active.job.state == QUEUED:
            self._queue.remove(job_id)
            self._finish(active, CANCELLED, error=_cancelled_error())
        else:
            self._stop(active, "cancel")
        return active.job

    def running_jobs(self) -> list[Job]:
        """The jobs running now (live objects: read only)."""
        return [a.job for a in self._active.values() if a.job.state == RUNNING]

    async def expire(self, job_id: str, message: str) -> None:
        """Stop a running job that reached a time limit: it ends failed, category timeout, with `message`."""
        active = self._active.get(job_id)
        if active is None or active.job.finished:
            return
        active.expired = message
        with contextlib.suppress(JobStateError):
            await self.cancel(job_id)

    async def delete(self, job_id: str) -> Job:
        """Delete a finished job: its output directory (if inside the outputs root and no other job records
        it), its log and its record.

        Raises:
            JobNotFound: no such job.
            JobStateError: the job is queued or running (cancel it first).
        """
        active = self._active.get(job_id)
        if active is not None and not active.job.finished:
            raise JobStateError(job_id, active.job.state,
                                f"job {job_id} is {active.job.state}; cancel it before deleting it")
        if active is not None:
            await active.done.wait()  # its final record is being written
        job = await self.get(job_id)
        await self._io(self._delete_files, job)
        return job

    async def prune(self, older_than_s: float) -> list[str]:
        """Delete finished jobs (files and records) that finished more than `older_than_s` ago."""
        cutoff = (datetime.datetime.now(datetime.timezone.utc)
                  - datetime.timedelta(seconds=older_than_s)).isoformat(timespec="milliseconds")[:23] + "Z"
        jobs = await self._io(self._require_store().finished_before, cutoff)
        for job in jobs:
            await self._io(self._delete_files, job)
        if jobs:
            log.info("retention: deleted %d jobs that finished before %s", len(jobs), cutoff)
        return [job.id for job in jobs]

    def _delete_files(self, job: Job) -> None:
        store = self._require_store()
        output = self.policy.removable(job.output_dir)
        if output is not None and output.is_dir() and not store.output_dir_used_by_others(str(job.output_dir), job.id):
            shutil.rmtree(output, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.policy.state_dir / "logs" / f"{job.id}.log").unlink()
        store.delete(job.id)

    # ---- internals: scheduling and workers -------------------------------------------------------

    def _has_slot(self, kind: str) -> bool:
        return self._running[kind] < self.limits[kind] and not any(
            self._active[j].job.kind == kind for j in self._queue)

    def _schedule(self) -> None:
        if self._closing:
            return
        for job_id in list(self._queue):
            if job_id not in self._queue:  # started meanwhile by a nested call (a failed launch reschedules)
                continue
            active = self._active[job_id]
            kind = active.job.kind
            if self._running[kind] < self.limits[kind]:
                self._queue.remove(job_id)
                self._start(active)

    def _start(self, active: _Active) -> None:
        job = active.job
        job.state = RUNNING
        job.started_at = utc_now_iso()
        self._running[job.kind] += 1
        # Starting a worker (mkdir, open, fork and exec of an interpreter) happens off the loop: /health and
        # every other request keep being answered meanwhile.
        task = asyncio.ensure_future(self._start_worker(active))
        self._launching.add(task)
        task.add_done_callback(self._launching.discard)

    async def _start_worker(self, active: _Active) -> None:
        job = active.job
        assert self._loop is not None
        log_path = self.policy.state_dir / "logs" / f"{job.id}.log"
        try:
            process, events, control = await self._loop.run_in_executor(
                None, _launch, log_path, self.policy.outputs_root)
        except Exception as exc:  # e.g. out of processes or file descriptors: this job fails, the service goes on
            log.exception("job %s: could not start its worker", job.id)
            self._finish(active, FAILED, error={"type": type(exc).__name__, "category": "internal",
                                                "message": f"could not start the worker process: {exc}"})
            return
        active.process = process
        active.lifeline = control
        log.info("job %s (%s) running in worker pid %s", job.id, job.kind, process.pid)
        self._persist(active)
        self._publish(active, "state", job.summary())
        init = pickle.dumps((self.targets[job.kind], active.config, _child_sys_path()))
        threading.Thread(target=self._read, args=(job.id, init, events, control, process),
                         name=f"evalsvc-job-{job.id}", daemon=True).start()
        if active.stop_reason is not None:  # cancelled, or the service began to stop, while the worker started
            reason, active.stop_reason = active.stop_reason, None
            self._stop(active, reason)

    def _read(self, job_id: str, init: bytes, conn: Connection, control: Connection,
              process: subprocess.Popen[bytes]) -> None:
        """Reader thread: hand the worker its job, relay its messages to the loop until EOF, report its exit."""
        assert self._loop is not None
        post = self._loop.call_soon_threadsafe
        try:
            control.send_bytes(init)  # may block on a large config: hence here, not on the loop
            while True:
                data = conn.recv_bytes()
                try:
                    message = orjson.loads(data)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(message, dict):
                    post(self._on_message, job_id, message)
        except (EOFError, OSError):
            pass
        except RuntimeError:  # the loop is closed: nobody is left to tell
            return
        finally:
            conn.close()
        exitcode = process.wait()
        try:
            post(self._on_exit, job_id, exitcode)
        except RuntimeError:
            pass

    def _on_message(self, job_id: str, message: dict[str, Any]) -> None:
        active = self._active.get(job_id)
        if active is None or active.job.finished:
            return
        message = scrub(message, active.secrets)
        kind = message.get("type", "progress")
        job = active.job
        if isinstance(message.get("output_dir"), str) and kind != "result":
            first = job.output_dir is None
            job.output_dir = message["output_dir"]
            if first:  # stored at once: after a kill -9 the record still says where the run wrote
                self._persist(active)
        if kind == "progress":
            key = str(message.get("run") or message.get("dataset") or "")
            job.progress[key] = {k: v for k, v in message.items() if k != "type"}
            self._publish(active, "progress", message)
            if time.monotonic() - active.persisted_at >= PROGRESS_PERSIST_S:
                self._persist(active)
        elif kind in ("result", "error", "stopped"):
            active.outcome = message
            self._spawn(active, self._kill_if_lingering(active))
        else:
            self._publish(active, "log" if kind == "log" else "event", message)

    def _on_exit(self, job_id: str, exitcode: int | None) -> None:
        active = self._active.get(job_id)
        if active is None or active.job.finished:
            return
        state, result, error, output_dir = self._outcome(active, exitcode)
        self._finish(active, state, result=result, error=error, output_dir=output_dir)

    def _outcome(self, active: _Active, exitcode: int | None
                 ) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None, str | None]:
        """The final state, result, error and output dir from what the worker said and how it exited."""
        stopped_state = CANCELLED if active.stop_reason == "cancel" else INTERRUPTED
        stopped_error = _cancelled_error() if active.stop_reason == "cancel" else _interrupted_error("running")
        message = active.outcome
        if message is None:
            if active.stop_reason is not None:
                return stopped_state, None, stopped_error, None
            return FAILED, None, {"type": "WorkerDied", "category": "internal",
                                  "message": f"the worker process exited (code {exitcode}) without a result"}, None
        kind = message.get("type")
        if kind == "result":
            status = message.get("status")
            data = message.get("data") if isinstance(message.get("data"), dict) else None
            output_dir = message.get("output_dir") or (data or {}).get("output_dir")
            if status in ("completed", "incomplete"):
                # "incomplete": the evaluation ran to its end but some samples errored; the job is done and
                # its result says so per dataset (`incomplete`, `errored`) rather than failing the whole job
                return COMPLETED, data, None, output_dir
            if status in ("cancelled", "interrupted"):
                return stopped_state, data, stopped_error, output_dir
            if status == "timeout":
                return FAILED, data, {"type": "Timeout", "category": "timeout",
                                      "message": message.get("error") or "the run reached its time limit"}, output_dir
            return FAILED, data, {"type": "RunFailed", "category": "run",
                                  "message": message.get("error") or f"the run ended with status {status!r}"}, output_dir
        if kind == "error":
            error = dict(message.get("error") or {})
            if active.stop_reason is not None:
                # A run told to stop may surface the stop as any error (a closed pool, an interrupted read):
                # it was stopped, not broken; what it said is kept as the detail.
                if error.get("category") != "cancelled" and error.get("message"):
                    return stopped_state, None, {**stopped_error, "detail": error["message"]}, None
                return stopped_state, None, stopped_error, None
            if not self.debug:
                error.pop("traceback", None)
            return FAILED, None, error, None
        return stopped_state, None, stopped_error, None  # "stopped": the engine raised KeyboardInterrupt

    def _finish(self, active: _Active, state: str, *, result: dict[str, Any] | None = None,
                error: dict[str, Any] | None = None, output_dir: str | None = None) -> None:
        job = active.job
        if active.expired is not None and state in (CANCELLED, FAILED):  # stopped by expire(): a time limit
            state, error = FAILED, {"type": "Timeout", "category": "timeout", "message": active.expired}
        was_running = job.state == RUNNING
        job.state = state
        job.finished_at = utc_now_iso()
        job.result = scrub(result, active.secrets) if result is not None else None
        job.error = scrub(error, active.secrets) if error is not None else None
        if output_dir:
            job.output_dir = output_dir
        for task in active.tasks:
            task.cancel()
        if active.lifeline is not None:
            active.lifeline.close()
            active.lifeline = None
        if was_running:
            self._running[job.kind] -= 1
        active.config = None  # type: ignore[assignment]  # the key is not kept a moment longer than needed
        log.info("job %s (%s) %s", job.id, job.kind, state)
        self._persist(active)
        if job.output_dir and job.result is not None:
            self._write_job_file(job)

        def written(_future: asyncio.Future[Any]) -> None:
            # waiters and subscribers hear of the end once the store and job.json say the same
            active.done.set()
            self._publish(active, "end", job.summary())
            self._active.pop(job.id, None)

        self._io(lambda: None).add_done_callback(written)
        self._schedule()

    def _stop(self, active: _Active, reason: str) -> None:
        if active.stop_reason is not None or active.process is None:
            if active.stop_reason is None:
                active.stop_reason = reason
            return
        active.stop_reason = reason
        log.info("job %s: stopping (%s)", active.job.id, reason)
        _signal_group(active.process.pid, signal.SIGINT)
        self._spawn(active, self._escalate(active))

    async def _escalate(self, active: _Active) -> None:
        assert active.process is not None
        pid = active.process.pid
        await asyncio.sleep(self.cancel_grace_s)
        if not active.job.finished:
            log.warning("job %s: still running %.0fs after SIGINT, terminating", active.job.id, self.cancel_grace_s)
            _signal_group(pid, signal.SIGTERM)
            await asyncio.sleep(TERM_GRACE_S)
        if not active.job.finished:
            log.warning("job %s: killing its worker", active.job.id)
            _signal_group(pid, signal.SIGKILL)

    async def _kill_if_lingering(self, active: _Active) -> None:
        await asyncio.sleep(LINGER_S)
        if not active.job.finished and active.process is not None:
            log.warning("job %s: worker sent its result but did not exit; killing it", active.job.id)
            _signal_group(active.process.pid, signal.SIGKILL)

    def _spawn(self, active: _Active, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        active.tasks.add(task)
        task.add_done_callback(active.tasks.discard)

    # ---- internals: fan-out and persistence ------------------------------------------------------

    def _publish(self, active: _Active, event: str, data: Any) -> None:
        for queue in active.subscribers:
            if queue.full():  # a slow reader loses old progress, never the end
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    pass
            queue.put_nowait((event, data))

    def _persist(self, active: _Active) -> asyncio.Future[None]:
        active.persisted_at = time.monotonic()
        snapshot = Job(**active.job.to_dict())  # a deep copy: the loop keeps changing the live one
        future = self._io(self._require_store().put, snapshot)
        future.add_done_callback(_log_failure)
        return future

    def _write_job_file(self, job: Job) -> None:
        path = Path(job.output_dir or "")
        if not path.is_absolute():
            return
        try:
            inside = path.resolve().is_relative_to(self.policy.outputs_root)
        except (OSError, ValueError):
            return
        if inside:
            self._io(_write_job_json, path / "job.json", job.to_dict()).add_done_callback(_log_failure)

    def _io(self, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        assert self._loop is not None and self._writer is not None
        return self._loop.run_in_executor(self._writer, func, *args)

    def _require_store(self) -> JobStore:
        if self._store is None:
            raise RunnerClosed()
        return self._store


_CHILD_MAIN = "import sys; from evalsvc.core.jobs._child import main; main(int(sys.argv[1]), int(sys.argv[2]))"


def _launch(log_path: Path, cwd: Path) -> tuple[subprocess.Popen[bytes], Connection, Connection]:
    """Start a worker process in its own session; returns it, the events reader and the control writer.

    It runs in `cwd` (the outputs root): evalscope looks for a relative dataset id on disk relative to the
    cwd, and PathPolicy confines such ids against the outputs root.
    """
    _private_dir(log_path.parent)
    events_r, events_w = os.pipe()
    control_r, control_w = os.pipe()
    try:
        # 0600: a log may quote what a run read or was told
        with open(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log_file:
            process = subprocess.Popen(
                # -P: the cwd (where runs write) is not put on sys.path, so nothing there can shadow a module
                # -c, not -m: the package imports _child first, and runpy then warns (RuntimeWarning) in every log
                [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), "-c", _CHILD_MAIN,
                 str(events_w), str(control_r)],
                pass_fds=(events_w, control_r), stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                start_new_session=True, env=_child_env(), cwd=cwd)
    except BaseException:
        for fd in (events_r, control_w):
            os.close(fd)
        raise
    finally:
        os.close(events_w)
        os.close(control_r)
    return process, Connection(events_r, writable=False), Connection(control_w, readable=False)


def _private_dir(path: Path) -> None:
    """Create `path` (and its parents) if needed; the directory itself is readable by this user only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def _child_env() -> dict[str, str]:
    # The worker must import this very evalsvc, even when it runs from a source tree that is not installed.
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    return env


def _child_sys_path() -> list[str]:
    return [os.path.abspath(p) if p else os.getcwd() for p in sys.path]


def _write_job_json(path: Path, data: dict[str, Any]) -> None:
    if path.parent.is_dir():
        write_json(path, data)


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("job store write failed", exc_info=future.exception())


def _cancelled_error() -> dict[str, Any]:
    return {"type": "Cancelled", "category": "cancelled", "message": "the job was cancelled by a client"}


def _interrupted_error(was: str) -> dict[str, Any]:
    return {"type": "Interrupted", "category": "interrupted",
            "message": f"the service stopped while this job was {was}"}


def _signal_group(pid: int | None, sig: int) -> None:
    """Signal the worker's process group (its own workers too), or the worker alone if it has none yet."""
    if pid is None:
        return
    try:
        os.killpg(pid, sig)
        return
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _lock(path: Path, *, write_pid: bool = True) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunnerLocked(f"another evalsvc service already runs jobs from {path.parent.parent}; "
                           "stop it or give this one another outputs root") from None
    if write_pid:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _secrets_of(config: Config) -> tuple[str, ...]:
    """Every secret the config holds, longest first (see _secrets.run_secrets)."""
    return run_secrets(config)


def _public_config(config: Config, secrets: tuple[str, ...]) -> dict[str, Any]:
    """What the job keeps of its config: the redacted to_dict(), extra_body's secret-named values hidden,
    and any secret quoted elsewhere (say, in a header with an innocent name) scrubbed."""
    return scrub(config.to_dict(redact=True), secrets)  # type: ignore[no-any-return]
