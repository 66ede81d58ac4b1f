"""The job runner: each job's child process supervised (start, cancel, kill escalation, its end), progress
fanned out to subscribers, every change persisted.

Each job runs in its own child process (evalscope keeps process-global state, and a load test must not
share the service's event loop), started with the child-process toolkit (core/_proc.py) in its own
session, so a cancel reaches everything it started. The runner lives on the service's event loop; a reader
thread per running job turns the child's messages into loop callbacks. Which job runs when is admission's
(_admission.py); what a finished child means for its job is the outcome's (_outcome.py). Active jobs
(queued, running) are held in memory, which is authoritative for them; every change is also written to
SQLite through the store's one writer thread (_store.py), so reads see the writes made before them.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from .. import _proc
from .._io import utc_now_iso
from .._secrets import config_secrets, scrub
from ..status import ErrorCategory
from ._admission import Admission
from ._child import Init
from ._model import (
    CANCELLED,
    FAILED,
    INTERRUPTED,
    KINDS,
    QUEUED,
    RUNNING,
    Job,
    JobNotFound,
    JobStateError,
    RunnerClosed,
    new_job_id,
)
from ._outcome import (
    Config,
    cancelled_error,
    interrupted_error,
    job_outcome,
    launch_error,
    public_config,
)
from ._paths import PathPolicy
from ._store import StoreThread, private_dir

log = logging.getLogger("evalsvc.jobs")

TARGETS: dict[str, str] = {"perf": "evalsvc.core.perf:run_perf", "eval": "evalsvc.core.eval:run_eval",
                           "capacity": "evalsvc.core.capacity:run_capacity"}
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
LOG_TAIL_MAX_BYTES = 1 << 20
"""The most of a job's log one read returns (its end)."""

JobListener = Callable[[str, Job], None]
"""Told of a job's changes on the loop thread: ("state" | "progress" | "end", the live job). Read only."""



class JobChild:
    """One job's child process: the events it sends, the lifeline the service holds, its exit."""

    def __init__(self, process: subprocess.Popen[bytes], events: _proc.Channel, control: _proc.Channel) -> None:
        self.process = process
        self.events = events
        self.control = control
        """The lifeline: closing it (or this process dying) tells the child to stop."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def relay(self, name: str, init: Init, post: Callable[..., Any], on_message: Callable[[dict[str, Any]], None],
              on_exit: Callable[[int | None], None]) -> None:
        """On a thread: hand the child its job, `post` each message to `on_message`, then its exit code."""

        def read() -> None:
            try:
                self.control.send(init)  # may block on a large config: hence here, not on the loop
                while True:
                    message = self.events.recv()
                    if isinstance(message, dict):
                        post(on_message, message)
            except (EOFError, OSError):
                pass
            except RuntimeError:  # the loop is closed: nobody is left to tell
                return
            finally:
                self.events.close()
            exitcode = self.process.wait()
            try:
                post(on_exit, exitcode)
            except RuntimeError:
                pass

        threading.Thread(target=read, name=name, daemon=True).start()

    def signal(self, sig: int) -> None:
        _proc.signal_group(self.pid, sig)

    def release(self) -> None:
        self.control.close()


class _Active:
    """A queued or running job with what only memory holds: its unredacted config and its process."""

    def __init__(self, job: Job, config: Config, secrets: tuple[str, ...]) -> None:
        self.job = job
        self.config = config
        self.secrets = secrets
        self.child: JobChild | None = None
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
        self.admission = Admission(max_queued, {"eval": eval_concurrency, "perf": perf_concurrency})
        self.policy = policy
        self.cancel_grace_s = cancel_grace_s
        self.targets = {**TARGETS, **(targets or {})}
        self.debug = debug
        self._active: dict[str, _Active] = {}
        self._closing = False
        self._started = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._store = StoreThread(policy.state_dir, policy.outputs_root)
        self._launching: set[asyncio.Future[None]] = set()
        self.listeners: builtins.list[JobListener] = []
        """Called on every state change, progress event and end (the service's metrics listen)."""

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
        recovered = await self._store.open()
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
        for job_id in self.admission.queued():
            self.admission.withdraw(job_id)
            self._finish(self._active[job_id], INTERRUPTED, error=interrupted_error("queued"))
        for active in list(self._active.values()):
            if active.job.state == RUNNING:
                self._stop(active, "shutdown")

    def begin_shutdown_threadsafe(self) -> None:
        """begin_shutdown() from any thread or a signal handler (a no-op before start)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.begin_shutdown)

    def check_unlocked(self) -> None:
        """Raise RunnerLocked now if another live service holds this outputs root (checked again at start)."""
        self._store.check_unlocked()

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
        await self._store.close()
        self._started = False

    # ---- queries ---------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts for /health: no I/O."""
        return {**self.admission.stats(), "accepting": not self._closing}

    async def get(self, job_id: str) -> Job:
        """The job with this id, live if active.

        Raises:
            JobNotFound: no such job.
        """
        active = self._active.get(job_id)
        if active is not None:
            return active.job
        job = await self._store.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def list(self, *, state: str | None = None, kind: str | None = None, limit: int = 50,
                   offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Job summaries newest first, and how many jobs match in all."""
        jobs, total = await self._store.list(state=state, kind=kind, limit=limit, offset=offset)
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

    def submit(self, kind: str, config: Config, request_id: str | None = None) -> Job:
        """Queue a job; it starts as soon as its kind has a free slot. Loop thread only.

        Args:
            kind: "eval" or "perf".
            config: the validated config, paths already confined (PathPolicy.config_from_body).
            request_id: the id of the request that submitted it (kept with the job, first line of its log).

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
        job_id = new_job_id()
        self.admission.admit(job_id, kind)
        secrets = config_secrets(config)
        job = Job(id=job_id, kind=kind, created_at=utc_now_iso(), config=public_config(config, secrets),
                  request_id=request_id)
        active = _Active(job, config, secrets)
        self._active[job.id] = active
        log.info("job %s (%s) queued", job.id, kind)
        self._persist(active)
        self._tell("state", job)
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
            self.admission.withdraw(job_id)
            self._finish(active, CANCELLED, error=cancelled_error())
        else:
            self._stop(active, "cancel")
        return active.job

    async def counts(self) -> builtins.list[tuple[str, str, int]]:
        """(kind, state, jobs) for every kind and state that has jobs, from the store."""
        counts: builtins.list[tuple[str, str, int]] = await self._store.run(self._store.store.counts)
        return counts

    def log_path(self, job_id: str) -> Path:
        """Where the job's worker writes its output (the file may not exist yet, or any more)."""
        return self.policy.state_dir / "logs" / f"{job_id}.log"

    async def log_tail(self, job_id: str, max_bytes: int = 65536) -> tuple[str, bool]:
        """The end of a job's log: at most `max_bytes` (<= LOG_TAIL_MAX_BYTES), starting at a line, and
        whether earlier output was left out. Empty when the worker has not started.

        Raises:
            JobNotFound: no such job.
        """
        await self.get(job_id)  # 404 for an unknown id: the path below is only built for a stored job
        return await asyncio.to_thread(_tail, self.log_path(job_id), min(max_bytes, LOG_TAIL_MAX_BYTES))

    def running_jobs(self) -> builtins.list[Job]:
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
        await self._store.run(self._delete_files, job)
        return job

    async def prune(self, older_than_s: float) -> builtins.list[str]:
        """Delete finished jobs (files and records) that finished more than `older_than_s` ago."""
        cutoff = (datetime.datetime.now(datetime.timezone.utc)
                  - datetime.timedelta(seconds=older_than_s)).isoformat(timespec="milliseconds")[:23] + "Z"
        jobs: builtins.list[Job] = await self._store.run(self._store.store.finished_before, cutoff)
        for job in jobs:
            await self._store.run(self._delete_files, job)
        if jobs:
            log.info("retention: deleted %d jobs that finished before %s", len(jobs), cutoff)
        return [job.id for job in jobs]

    def _delete_files(self, job: Job) -> None:
        """On the store's writer thread: the job's output directory, log and record."""
        store = self._store.store
        output = self.policy.removable(job.output_dir)
        if output is not None and output.is_dir() and not store.output_dir_used_by_others(str(job.output_dir), job.id):
            shutil.rmtree(output, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.policy.state_dir / "logs" / f"{job.id}.log").unlink()
        store.delete(job.id)

    # ---- internals: starting and supervising children -------------------------------------------

    def _schedule(self) -> None:
        if self._closing:
            return
        for job_id in self.admission.take():
            self._start(self._active[job_id])

    def _start(self, active: _Active) -> None:
        job = active.job
        job.state = RUNNING
        job.started_at = utc_now_iso()
        # Starting a child (mkdir, open, fork and exec of an interpreter) happens off the loop: /health and
        # every other request keep being answered meanwhile.
        task = asyncio.ensure_future(self._start_child(active))
        self._launching.add(task)
        task.add_done_callback(self._launching.discard)

    async def _start_child(self, active: _Active) -> None:
        job = active.job
        assert self._loop is not None
        log_path = self.log_path(job.id)
        header = f"{utc_now_iso()} evalsvc job {job.id} ({job.kind}) request_id={job.request_id or '-'}\n"
        try:
            child = await self._loop.run_in_executor(None, _launch, log_path, self.policy.outputs_root, header)
        except Exception as exc:  # e.g. out of processes or file descriptors: this job fails, the service goes on
            log.exception("job %s: could not start its worker", job.id)
            self._finish(active, FAILED, error=launch_error(exc))
            return
        active.child = child
        log.info("job %s (%s) running in worker pid %s", job.id, job.kind, child.pid)
        self._persist(active)
        self._publish(active, "state", job.summary())
        self._tell("state", job)
        init = Init(self.targets[job.kind], active.config, _proc.parent_sys_path())
        child.relay(f"evalsvc-job-{job.id}", init, self._loop.call_soon_threadsafe,
                    lambda message: self._on_message(job.id, message), lambda code: self._on_exit(job.id, code))
        if active.stop_reason is not None:  # cancelled, or the service began to stop, while the child started
            reason, active.stop_reason = active.stop_reason, None
            self._stop(active, reason)

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
            key = str(message.get("part") or "")
            job.progress[key] = {k: v for k, v in message.items() if k != "type"}
            self._publish(active, "progress", message)
            self._tell("progress", job)
            if time.monotonic() - active.persisted_at >= PROGRESS_PERSIST_S:
                self._persist(active)
        elif kind in ("result", "error", "stopped"):
            active.outcome = message
            self._track(active, self._kill_if_lingering(active))
        else:
            self._publish(active, "log" if kind == "log" else "event", message)

    def _on_exit(self, job_id: str, exitcode: int | None) -> None:
        active = self._active.get(job_id)
        if active is None or active.job.finished:
            return
        state, result, error, output_dir = job_outcome(active.outcome, exitcode, active.stop_reason, self.debug)
        self._finish(active, state, result=result, error=error, output_dir=output_dir)

    def _finish(self, active: _Active, state: str, *, result: dict[str, Any] | None = None,
                error: dict[str, Any] | None = None, output_dir: str | None = None) -> None:
        job = active.job
        if active.expired is not None and state in (CANCELLED, FAILED):  # stopped by expire(): a time limit
            state, error = FAILED, {"type": "Timeout", "category": ErrorCategory.TIMEOUT, "message": active.expired}
        was_running = job.state == RUNNING
        job.state = state
        job.finished_at = utc_now_iso()
        job.result = scrub(result, active.secrets) if result is not None else None
        job.error = scrub(error, active.secrets) if error is not None else None
        if output_dir:
            job.output_dir = output_dir
        for task in active.tasks:
            task.cancel()
        if active.child is not None:
            active.child.release()
        if was_running:
            self.admission.release(job.kind)
        active.config = None  # type: ignore[assignment]  # the key is not kept a moment longer than needed
        log.info("job %s (%s) %s", job.id, job.kind, state)
        self._persist(active)
        self._tell("end", job)
        if job.output_dir and job.result is not None:
            self._store.write_job_file(job)

        def written(_future: asyncio.Future[Any]) -> None:
            # waiters and subscribers hear of the end once the store and job.json say the same
            active.done.set()
            self._publish(active, "end", job.summary())
            self._active.pop(job.id, None)

        self._store.run(lambda: None).add_done_callback(written)
        self._schedule()

    def _stop(self, active: _Active, reason: str) -> None:
        if active.stop_reason is not None or active.child is None:
            if active.stop_reason is None:
                active.stop_reason = reason
            return
        active.stop_reason = reason
        log.info("job %s: stopping (%s)", active.job.id, reason)
        active.child.signal(signal.SIGINT)
        self._track(active, self._escalate(active, active.child))

    async def _escalate(self, active: _Active, child: JobChild) -> None:
        await asyncio.sleep(self.cancel_grace_s)
        if not active.job.finished:
            log.warning("job %s: still running %.0fs after SIGINT, terminating", active.job.id, self.cancel_grace_s)
            child.signal(signal.SIGTERM)
            await asyncio.sleep(TERM_GRACE_S)
        if not active.job.finished:
            log.warning("job %s: killing its worker", active.job.id)
            child.signal(signal.SIGKILL)

    async def _kill_if_lingering(self, active: _Active) -> None:
        await asyncio.sleep(LINGER_S)
        if not active.job.finished and active.child is not None:
            log.warning("job %s: worker sent its result but did not exit; killing it", active.job.id)
            active.child.signal(signal.SIGKILL)

    def _track(self, active: _Active, coro: Any) -> None:
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

    def _tell(self, change: str, job: Job) -> None:
        for listener in self.listeners:
            try:
                listener(change, job)
            except Exception:  # a listener's bug must not break the job's bookkeeping
                log.exception("job listener failed on %s of job %s", change, job.id)

    def _persist(self, active: _Active) -> asyncio.Future[None]:
        active.persisted_at = time.monotonic()
        return self._store.put(active.job)


def _tail(path: Path, max_bytes: int) -> tuple[str, bool]:
    """The last `max_bytes` of a text file from the start of a line, and whether anything was cut."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            file.seek(start)
            data = file.read(max_bytes)
    except FileNotFoundError:
        return "", False
    if start > 0:
        newline = data.find(b"\n")
        data = data[newline + 1:] if newline >= 0 else data
    return data.decode("utf-8", errors="replace"), start > 0


def _launch(log_path: Path, cwd: Path, header: str = "") -> JobChild:
    """Start a job's child in its own session, its output going to `log_path` (after the `header` line).

    It runs in `cwd` (the outputs root): evalscope looks for a relative dataset id on disk relative to the
    cwd, and PathPolicy confines such ids against the outputs root.
    """
    private_dir(log_path.parent)
    # 0600: a log may quote what a run read or was told
    with open(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log_file:
        if header:
            log_file.write(header.encode("utf-8", errors="replace"))
            log_file.flush()
        process, control_w, events_r = _proc.start_piped("evalsvc.core.jobs._child:main", stdout=log_file,
                                                         stderr=log_file, new_session=True, cwd=cwd)
    return JobChild(process, _proc.Channel(events_r, "json"), _proc.Channel(control_w, "pickle"))
