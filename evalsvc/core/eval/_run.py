"""run_eval: evalscope in worker processes, one per dataset, run concurrently.

evalscope takes over root logging on import, keeps process-global progress and model caches, and
forks during scoring, so it never runs in the caller's process. A zygote process imports evalscope
once (while the preflight request is in flight) and forks a fresh worker for each dataset, in its
own session so a terminal Ctrl-C reaches only the parent (see _child.py). The parent relays
progress and log lines, enforces the overall timeout and cancels by terminating the workers.
Predictions are written per sample, so a cancelled run resumes with `use_cache=<output_dir>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._aio import run_blocking
from .._cluster import require_ray
from .._proc import describe_exit
from .._secrets import config_secrets
from .._io import new_run_dir, utc_now_iso, write_atomic, write_json
from ..config import EvalConfig
from ..errors import ConfigError
from ..progress import ProgressCallback, eval_log, eval_progress, eval_status
from ..status import Phase, RunStatus
from ._plan import (CONFIG_FILE, DATASET_INFOS, REPORT_FILE, SUMMARY_FILE, DatasetPlan, EvalPlan, build_mirror,
                    check_hub, plan_eval, task_kwargs, worker_options)
from ._extra import require_eval
from ._preflight import preflight
from ._result import DatasetResult, EvalResult, describe_shortfall, read_dataset_result
from ._secrets import mask, mask_event
from ._zygote import _KILL_GRACE_S, WorkerHandle, Zygote

log = logging.getLogger("evalsvc.eval")

_MAX_SAMPLE_ERRORS = 5
_MAX_ERRORED_SAMPLES = 1000
"""Errored samples listed per dataset (ids and reasons); the count (`errored`) is always exact."""
_WIND_DOWN_S = 10.0
"""How long stopped datasets may take to settle: a worker gets _KILL_GRACE_S to exit, then is killed."""
_SAMPLE_ERROR_PREFIX = "Processing item in subset="


class _Sink:
    """Delivers events to the caller's callback; a failing callback never breaks the run."""

    def __init__(self, callback: ProgressCallback | None, secrets: tuple[str, ...]) -> None:
        self._callback = callback
        self._secrets = secrets

    def __call__(self, event: Any) -> None:
        if self._callback is None:
            return
        mask_event(event, self._secrets)
        try:
            self._callback(event)
        except Exception:
            log.exception("progress callback failed (event %s)", event.get("type"))


@dataclass
class _DatasetRun:
    plan: DatasetPlan
    status: str = Phase.PENDING
    """A Phase while it runs, then a RunStatus."""
    error: str | None = None
    total: int | None = None
    sample_errors: list[str] = field(default_factory=list)
    errored_samples: list[dict[str, Any]] = field(default_factory=list)
    started: float | None = None
    ended: float | None = None
    first_progress: float | None = None
    """When the sample bar appeared (just before the first request) and when it last moved: the span of
    the dataset's requests, for its throughput."""
    last_progress: float | None = None


class _Run:
    def __init__(self, plan: EvalPlan, progress: ProgressCallback | None,
                 cancel: asyncio.Event | None) -> None:
        self.plan = plan
        self.config = plan.config
        self.secrets = config_secrets(self.config)
        self.emit = _Sink(progress, self.secrets)
        self.cancel = cancel
        self.stop_reason: str | None = None
        self.workers: set[Any] = set()  # WorkerHandles, or RayWorkers
        self.zygote: asyncio.Task[Any] | None = None  # a Zygote, or a RayZygote (eval/_ray.py)
        self.runs = {d.name: _DatasetRun(d) for d in plan.datasets}
        self.root: Path | None = None
        self.slots = asyncio.Semaphore(plan.config.max_workers)

    # -- workers -------------------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        for worker in self.workers:
            worker.terminate()

    async def _close_zygote(self, starting: asyncio.Task[Any]) -> None:
        if not starting.done():
            starting.cancel()
        with contextlib.suppress(BaseException):
            zygote = await starting
            zygote.close()
            await zygote.wait_closed()

    # -- the run -------------------------------------------------------------------------------

    async def execute(self) -> EvalResult:
        config = self.config
        t0 = time.monotonic()
        started_at = utc_now_iso()
        deadline = t0 + config.timeout if config.timeout else None
        # The zygote imports evalscope (~1.5 s) while the preflight request is in flight.
        # (on a Ray cluster: each dataset's worker is an actor on some node, its zygote started there)
        self.zygote = asyncio.create_task(_executor(config))
        # Offline without local copies: one clear line within seconds, not the hub's after ~18 s. Probed while
        # the preflight runs; reported after it (an unreachable endpoint is the first thing to say).
        hub = asyncio.create_task(_hub_problem(self.plan))
        tasks: list[asyncio.Task[None]] = []
        try:
            if config.preflight:
                self.emit(eval_log(None, "INFO", f"preflight: {config.api_url}"))
                if not await self._preflight(deadline):
                    self.stop(RunStatus.CANCELLED)  # before anything was written: no output directory
                    return self._result(started_at, t0)
            problem = await hub
            if problem is not None:
                raise problem
            self.root = self.plan.resume_dir or new_run_dir(config.work_dir, prefix="eval_")
            self._write_config()
            self.emit(eval_status(None, Phase.RUNNING, output_dir=str(self.root)))
            tasks = [asyncio.create_task(self._run_dataset(d)) for d in self.plan.datasets]
            await self._wait(tasks, deadline)
        except BaseException:
            # The caller was cancelled (or interrupted): stop the workers and let every dataset settle
            # (shielded, bounded) so that the outputs say what happened and no worker outlives the call.
            self.stop(RunStatus.CANCELLED)
            if tasks:
                with contextlib.suppress(BaseException):  # a second cancel: write what is known, then go
                    await asyncio.shield(self._wind_down(tasks))
            if self.root is not None:
                with contextlib.suppress(Exception):
                    self._write_outputs(self._result(started_at, t0))
            raise
        finally:
            hub.cancel()
            for worker in self.workers:
                worker.terminate()
            await self._close_zygote(self.zygote)
        result = self._result(started_at, t0)
        self._write_outputs(result)
        return result

    async def _wait(self, tasks: list[asyncio.Task[None]], deadline: float | None) -> None:
        """Wait for every dataset; on cancel or at the deadline, stop the workers. Then let the datasets settle."""
        stopped = asyncio.create_task(self.cancel.wait()) if self.cancel is not None else None
        try:
            pending: set[asyncio.Future[Any]] = set(tasks)
            while pending:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                done, _ = await asyncio.wait(pending | ({stopped} if stopped else set()), timeout=left,
                                             return_when=asyncio.FIRST_COMPLETED)
                pending -= done
                if not pending:
                    break
                if stopped is not None and stopped in done:
                    self.stop(RunStatus.CANCELLED)
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    self.stop(RunStatus.TIMEOUT)
                    break
        finally:
            if stopped is not None:
                stopped.cancel()
        await self._wind_down(tasks)

    async def _wind_down(self, tasks: list[asyncio.Task[None]]) -> None:
        """Wait for the dataset tasks (their workers end when told to stop), cancelling any that overstay.

        Each task's outcome is retrieved, so none is reported as "never retrieved" later.
        """
        pending = {t for t in tasks if not t.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=_WIND_DOWN_S)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=_KILL_GRACE_S)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("dataset task failed", exc_info=task.exception())

    async def _preflight(self, deadline: float | None) -> bool:
        """The preflight request, bounded by the run's deadline; False if the run was cancelled meanwhile.

        Raises:
            EndpointError: the endpoint failed it.
        """
        check = asyncio.create_task(preflight(self.config, deadline=deadline))
        if self.cancel is None:
            self._said_preflight(await check)
            return True
        stopped = asyncio.create_task(self.cancel.wait())
        try:
            await asyncio.wait({check, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not check.done():
                check.cancel()
                with contextlib.suppress(BaseException):
                    await check
        if check.cancelled():
            return False
        self._said_preflight(check.result())  # the endpoint's error, if it failed
        return True

    def _said_preflight(self, checked: dict[str, Any]) -> None:
        how = ("its model list names it, no generation sent" if checked.get("checked") == "models"
               else "a one-token generation succeeded (its /models did not list the model)")
        self.emit(eval_log(None, "INFO", f"preflight: {self.config.model!r} is served ({how})"))

    async def _run_dataset(self, dataset: DatasetPlan) -> None:
        run = self.runs[dataset.name]
        async with self.slots:
            if self.stop_reason is not None:
                run.status = self.stop_reason
                return
            assert self.root is not None and self.zygote is not None
            out_dir = self.root / dataset.name
            resume = self.plan.resume_dir is not None and (out_dir / "configs" / "task_config.yaml").is_file()
            run.started = time.monotonic()
            self.emit(eval_status(dataset.name, Phase.STARTING, resume=resume))
            for note in dataset.notes:
                self.emit(eval_log(dataset.name, "WARNING", note))
            try:
                if dataset.mirror is not None:
                    try:
                        await asyncio.to_thread(build_mirror, dataset.mirror)
                    except OSError as exc:
                        run.status = RunStatus.FAILED
                        run.error = (f"cannot link a copy of {dataset.mirror.source} without its {DATASET_INFOS} "
                                     f"(evalscope deletes that file from the folder it loads): {exc}")
                        return
                await self._run_worker(run, out_dir, resume)
            except Exception as exc:  # a bug here must not take the other datasets down
                log.exception("evaluating %s failed", dataset.name)
                run.status, run.error = RunStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}"
            finally:
                run.ended = time.monotonic()
                self.emit(eval_status(dataset.name, run.status, error=run.error))

    async def _run_worker(self, run: _DatasetRun, out_dir: Path, resume: bool) -> None:
        assert self.zygote is not None
        try:
            zygote = await asyncio.shield(self.zygote)
            if self.stop_reason is not None:  # stopped while evalscope was being imported
                run.status = self.stop_reason
                return
            worker = await zygote.fork()
        except Exception as exc:
            run.status, run.error = RunStatus.FAILED, str(exc)
            return
        self.workers.add(worker)
        node = getattr(worker, "node_id", None)
        if node is not None:  # a RayWorker: say where the dataset runs
            self.emit(eval_log(run.plan.name, "INFO", f"running on Ray node {node} (worker pid {worker.pid})"))
        if self.stop_reason is not None:
            worker.terminate()
        interrupted = True
        try:
            outcome = await self._drive(worker, run, out_dir, resume)
            interrupted = False
        finally:
            if interrupted:  # cancelled while it ran: do not wait for it to end by itself
                worker.terminate()
            code = await worker.finish()  # the one wait for its exit (and kill if it lingers)
            self.workers.discard(worker)
        self._settle(run, worker, out_dir, outcome, code)

    async def _drive(self, worker: WorkerHandle, run: _DatasetRun, out_dir: Path, resume: bool) -> str | None:
        """Start the worker's task and relay its events until its event stream ends; return how it ended
        (RunStatus.COMPLETED, RunStatus.FAILED, or None when it stopped without saying)."""
        name = run.plan.name
        spec = {"task": task_kwargs(self.plan, run.plan, out_dir, resume=resume), "secrets": list(self.secrets),
                "log_file": str(out_dir / "logs" / "worker.log"), "hf_cache": run.plan.hf_cache,
                "options": worker_options(self.config)}
        try:
            worker.start(spec)
        except OSError:
            pass  # it died; the loop below sees the end of its output
        run.status = Phase.RUNNING
        outcome: str | None = None
        while True:
            event = await worker.events.get()
            if event is None:
                break
            kind = event.get("type")
            if kind == "progress":
                done, run.total = int(event.get("done") or 0), int(event.get("total") or 0)
                now = time.monotonic()
                if run.first_progress is None:
                    run.first_progress = now
                elif done:
                    run.last_progress = now
                self.emit(eval_progress(name, done, run.total))
            elif kind == "log":
                message = str(event.get("message", ""))
                level = str(event.get("level", "INFO"))
                if level in ("ERROR", "CRITICAL") and message.startswith(_SAMPLE_ERROR_PREFIX):
                    reason = message.split("failed: ", 1)[-1].strip()
                    if reason not in run.sample_errors and len(run.sample_errors) < _MAX_SAMPLE_ERRORS:
                        run.sample_errors.append(mask(reason, self.secrets))
                self.emit(eval_log(name, level, message))
            elif kind == "sample_error":
                if len(run.errored_samples) < _MAX_ERRORED_SAMPLES:
                    run.errored_samples.append({"subset": str(event.get("subset") or ""), "id": event.get("id"),
                                                "error": mask(str(event.get("error") or ""), self.secrets)})
            elif kind == "done":
                outcome = RunStatus.COMPLETED
            elif kind == "error":
                outcome = RunStatus.FAILED
                run.error = mask(str(event.get("error") or "evaluation failed"), self.secrets)
        return outcome

    def _settle(self, run: _DatasetRun, worker: WorkerHandle, out_dir: Path, outcome: str | None,
                code: int | None) -> None:
        """Set the dataset's status from how its worker ended."""
        if outcome != RunStatus.COMPLETED:
            # evalscope scores into a temporary file it publishes at the end; a stopped run leaves it behind.
            for stale in out_dir.glob("reviews/*/*.rerun-*"):
                stale.unlink(missing_ok=True)
        if outcome == RunStatus.COMPLETED:
            run.status = RunStatus.COMPLETED
        elif self.stop_reason is not None:
            run.status = self.stop_reason
            run.error = None
        else:
            run.status = RunStatus.FAILED
            if run.error is None:
                how = "ended" if code is None else f"ended ({describe_exit(code)})"
                run.error = mask(f"the worker {how} without a result: {worker.crash_reason()}".rstrip(": "),
                                 self.secrets)

    # -- outputs -------------------------------------------------------------------------------

    def _result(self, started_at: str, t0: float) -> EvalResult:
        datasets: dict[str, DatasetResult] = {}
        for name, run in self.runs.items():
            status = run.status
            if self.stop_reason is not None and status in (Phase.PENDING, Phase.RUNNING):
                status = self.stop_reason  # never started, or caught mid-run by a stop
            duration = None if run.started is None else round((run.ended or time.monotonic()) - run.started, 3)
            if self.root is None or run.started is None:
                datasets[name] = DatasetResult(name=name, status=status, error=run.error)
                continue
            datasets[name] = read_dataset_result(
                name, self.root / name, status=status, error=run.error, total=run.total or None,
                sample_errors=run.sample_errors, duration_s=duration, errored_samples=run.errored_samples,
                repeats=self.config.repeats,
                inference_s=(None if run.first_progress is None or run.last_progress is None
                             else run.last_progress - run.first_progress))
        shortfall = describe_shortfall(datasets.values())
        error: str | None
        if self.stop_reason is not None:
            status = self.stop_reason
            error = (str(status) if status == RunStatus.CANCELLED else f"timed out after {self.config.timeout:g} s")
        elif any(d.status == RunStatus.FAILED for d in datasets.values()):
            status, error = RunStatus.FAILED, shortfall
        elif any(d.incomplete for d in datasets.values()):
            status, error = RunStatus.INCOMPLETE, shortfall  # finished, but the scores leave samples out
        else:
            status, error = RunStatus.COMPLETED, None
        return EvalResult(status=status, error=error, output_dir=str(self.root) if self.root else None,
                          datasets=datasets, model=self.config.model, started_at=started_at,
                          finished_at=utc_now_iso(), duration_s=round(time.monotonic() - t0, 3))

    def _write_config(self) -> None:
        assert self.root is not None
        from ... import __version__

        data = {
            "evalsvc_version": __version__,
            "config": self.config.to_dict(),
            "datasets": {d.name: {"dataset_args": d.args} for d in self.plan.datasets},
            "written_at": utc_now_iso(),
        }
        write_json(self.root / CONFIG_FILE, data)

    def _write_outputs(self, result: EvalResult) -> None:
        assert self.root is not None
        write_json(self.root / SUMMARY_FILE, result.to_dict())
        write_atomic(self.root / REPORT_FILE, result.to_markdown())
        if self.config.report:
            self._write_html_report(result)

    def _write_html_report(self, result: EvalResult) -> None:
        """report.html from the files just written; a failure is logged and kept in summary.json, never raised."""
        assert self.root is not None
        try:
            from ..report import build_eval_report

            build_eval_report(self.root)
        except Exception as exc:
            result.info["report_error"] = f"{type(exc).__name__}: {exc}"
            log.warning("evalsvc eval: report.html was not written: %s", result.info["report_error"])
            write_json(self.root / SUMMARY_FILE, result.to_dict())


async def _hub_problem(plan: EvalPlan) -> ConfigError | None:
    """check_hub's error (it probes the hub: a thread), returned rather than raised."""
    try:
        await asyncio.to_thread(check_hub, plan)
    except ConfigError as exc:
        return exc
    return None


async def run_eval_async(config: EvalConfig, *, progress: ProgressCallback | None = None,
                         cancel: asyncio.Event | None = None) -> EvalResult:
    """Evaluate a served model on benchmarks; the coroutine behind `run_eval`.

    Args:
        config: what to evaluate.
        progress: called (on the event loop) with events: {"type": "progress", "part", "dataset", "done",
            "total"}, {"type": "log", "part", "dataset", "level", "message"} and {"type": "status", "part",
            "dataset", "status", ...} when a dataset starts or ends (part and dataset None, with
            "output_dir", once the run directory exists); "part" and "dataset" both name the dataset
            (see evalsvc.core.progress).
        cancel: set it to stop the run: workers are terminated, predictions made so far stay on
            disk and `use_cache=<output_dir>` resumes them.

    Returns:
        The EvalResult; its status is completed (every sample of every dataset scored), incomplete
        (finished, but samples errored and the scores exclude them), failed (a dataset failed or scored
        nothing), cancelled or timeout.

    Raises:
        ConfigError: invalid input (unknown benchmark, missing local copy, ...), before any process starts.
        EndpointError: the endpoint failed the preflight request.
        MissingExtra: evalscope is not installed (`pip install 'evalsvc[eval]'`), or `ray_address` is set
            and Ray is not (`pip install 'evalsvc[ray]'`).
    """
    require_eval()
    if config.ray_address is not None:
        require_ray()
    plan = plan_eval(config)
    return await _Run(plan, progress, cancel).execute()


def run_eval(config: EvalConfig, *, progress: ProgressCallback | None = None) -> EvalResult:
    """Evaluate a served model on benchmarks (blocking); works in scripts and in Jupyter.

    The evaluation runs on a fresh event loop in a helper thread, so it also works where a loop is
    already running. In the main thread, Ctrl-C (or SIGTERM, or a Jupyter interrupt) cancels it cleanly
    and returns the cancelled result, whose `output_dir` resumes it with `use_cache`; a second one
    aborts at once (KeyboardInterrupt).

    Args:
        config: what to evaluate.
        progress: called with progress, log and status events (see `run_eval_async`), from the
            helper thread.

    Returns:
        The EvalResult.

    Raises:
        ConfigError: invalid input, before any process starts.
        EndpointError: the endpoint failed the preflight request.
        MissingExtra: evalscope is not installed (`pip install 'evalsvc[eval]'`).
    """
    cancel = asyncio.Event()
    return run_blocking(run_eval_async(config, progress=progress, cancel=cancel), stop=cancel, name="evalsvc-eval")


async def _executor(config: EvalConfig) -> Any:
    """What forks the datasets' workers: the local zygote, or, with `ray_address`, actors on a Ray cluster."""
    if config.ray_address:
        from ._ray import RayZygote

        # processes on different nodes share no semaphore: there, eval_batch_size bounds each dataset's worker
        return await RayZygote.start(config.ray_address, in_flight=config.eval_batch_size)
    return await Zygote.start(in_flight=config.eval_batch_size)
