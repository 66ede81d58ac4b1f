"""`run_perf` / `run_perf_async`: a whole load test, sweep point after sweep point, with outputs."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import Any

from .._aio import run_blocking
from .._io import new_run_dir, utc_now_iso, write_atomic, write_json
from ..config import PerfConfig
from ..errors import ClientProcessError, ConfigError
from ..progress import ProgressCallback, perf_progress, perf_run_done, run_started
from ..status import RunStatus
from ._engine import PROGRESS_PERIOD, STOPPED_INTERRUPTED, Counters, RecordSink, ShardPlan, run_shard, warmup
from ._metrics import RunStats
from ._preflight import preflight
from ._result import PerfResult, RunResult
from ._schedule import arrival_offsets
from ._sender import Sender
from ._shards import run_sharded, split
from ._verdict import client_verdict
from .datasets import load_prompts
from .dialects import get_dialect

log = logging.getLogger("evalsvc.perf")
ProgressFn = ProgressCallback
RPS_WINDOW = 10  # progress reports (about 5 s) the live req/s figure is averaged over

# Why a sweep point stopped early (its metrics' `stopped_by`; None when it ran to its end): the engine's
# STOPPED_INTERRUPTED / STOPPED_DURATION, or this.
CLIENT_FAILED = "client_failed"  # a client process died


async def run_perf_async(config: PerfConfig, *, progress: ProgressFn | None = None,
                         stop: asyncio.Event | None = None) -> PerfResult:
    """Load-test `config.url` as `config` describes; for callers that already run an event loop.

    Args:
        config: the validated PerfConfig.
        progress: called once with {"type": "status", "status": "running", "output_dir"} when the run
            directory exists, about twice a second with {"type": "progress", "part", "run", "done", "total",
            "failed", "rps", "elapsed_s"} and once per finished run with {"type": "run_done", "part", "run",
            "metrics"} ("part" and "run" both hold the sweep key; see evalsvc.core.progress).
        stop: set it to stop early; what was measured so far is kept and written (status "interrupted").

    Returns:
        The PerfResult; outputs are under `result.output_dir`. Its status is "failed" (with `error` saying
        so, e.g. "no request succeeded (http_500: 5)") when the run finished but no request succeeded.

    Raises:
        ConfigError / DatasetError: bad input, before anything is sent.
        EndpointError: the test request sent first (`config.preflight`) did not succeed:
            EndpointUnreachable (no connection), EndpointTimeout, EndpointStatusError (the server's status
            and answer are in the message). Nothing is written then.
    """
    if not isinstance(config, PerfConfig):
        raise ConfigError("config", f"expected a PerfConfig, got {type(config).__name__}")
    stop = stop or asyncio.Event()
    dialect = get_dialect(config.api)
    runs = config.runs()
    largest = max(n for _, n, _, _ in runs) + config.warmup
    prompts, data_info = await asyncio.to_thread(load_prompts, config, largest)
    bodies = [dialect.build(config, p) for p in prompts]
    prompt_tokens = [p.tokens for p in prompts]
    # raises with the server's answer; False if stopped meanwhile (then nothing is run, the outputs say so)
    started = not config.preflight or await preflight(config, prompts[0], stop)

    out_dir = new_run_dir(config.work_dir, prefix="perf_")
    if progress is not None:  # where the run writes, known before it ends (a job killed mid-run keeps it)
        progress(run_started(str(out_dir)))
    write_json(out_dir / "config.json", config.to_dict())
    result = PerfResult(output_dir=str(out_dir), info={"started_at": utc_now_iso(), "dataset": data_info,
                                                       "api": config.api, "model": config.model,
                                                       "workers": config.workers})
    if not started:
        result.status, result.error, runs = RunStatus.INTERRUPTED, "stopped during the test request", []
    try:
        for key, number, parallel, rate in runs:
            try:
                stats, reason = await _run_point(config, key, number, parallel, rate, bodies, prompt_tokens,
                                                 out_dir, stop, progress,
                                                 sessions=prompts if config.multi_turn else None)
            except ClientProcessError as exc:  # keep what the surviving client processes measured
                if exc.stats is None:
                    raise
                stats, reason = exc.stats, CLIENT_FAILED
                result.status, result.error = RunStatus.FAILED, str(exc)
            run = _finish_run(config, stats, key, number, parallel, rate, reason, data_info)
            result.results[key] = run
            write_json(out_dir / f"summary_{key}.json", run.to_dict())
            if progress is not None:
                progress(perf_run_done(key, run.metrics))
            if reason == STOPPED_INTERRUPTED:
                result.status = RunStatus.INTERRUPTED
                break
            if reason == CLIENT_FAILED:
                break
        if result.status == RunStatus.COMPLETED:
            result.status, result.error = _nothing_succeeded(result)
    except asyncio.CancelledError:  # the caller cancelled: what was measured is written, then we unwind
        result.status = RunStatus.INTERRUPTED
        result.error = "cancelled by the caller"
        raise
    except Exception as exc:  # keep what was measured; say what broke
        result.status = RunStatus.FAILED
        result.error = f"{type(exc).__name__}: {exc}"
        if config.debug:
            result.info["traceback"] = traceback.format_exc()
        raise
    finally:
        result.info["finished_at"] = utc_now_iso()
        write_json(out_dir / "summary.json", result.to_dict())
        write_atomic(out_dir / "report.txt", result.report())
        if config.report:
            _write_html_report(out_dir, result)
    return result


def _write_html_report(out_dir: Path, result: PerfResult) -> None:
    """report.html from the files just written; a failure is logged and kept in summary.json, never raised."""
    try:
        from ..report import build_perf_report

        build_perf_report(out_dir)
    except Exception as exc:
        result.info["report_error"] = f"{type(exc).__name__}: {exc}"
        log.warning("evalsvc perf: report.html was not written: %s", result.info["report_error"])
        write_json(out_dir / "summary.json", result.to_dict())


def run_perf(config: PerfConfig, *, progress: ProgressFn | None = None) -> PerfResult:
    """Blocking `run_perf_async`, on a fresh (uv)loop in a helper thread: works in scripts and in Jupyter.

    In the main thread, Ctrl-C (SIGINT, a Jupyter interrupt) and SIGTERM stop the run gracefully: the result
    comes back with status "interrupted" and the outputs hold everything measured. A second one aborts at
    once (KeyboardInterrupt). `progress` is called from the helper thread.
    """
    stop = asyncio.Event()
    return run_blocking(run_perf_async(config, progress=progress, stop=stop), stop=stop, fast=True,
                        name="evalsvc-perf")


async def _run_point(config: PerfConfig, key: str, number: int, parallel: int, rate: float,
                     bodies: list[bytes], prompt_tokens: list[int], out_dir: Path,
                     stop: asyncio.Event, progress: ProgressFn | None,
                     sessions: list[Any] | None = None) -> tuple[RunStats, str | None]:
    workers = max(1, min(config.workers, parallel, number))
    offsets = arrival_offsets(number, rate, config.arrival, config.seed) if rate > 0 else None
    plans = []
    parallels = split(parallel, workers)
    warmups = split(config.warmup, workers)
    counts = split(number, workers)
    for k in range(workers):
        shard_offsets = offsets[k::workers] if offsets is not None else None
        plans.append(ShardPlan(key=key, start=k, step=workers, count=counts[k], parallel=parallels[k],
                               warmup=warmups[k], offsets=shard_offsets, duration=config.duration,
                               sessions=sessions))
    records_path = str(out_dir / f"requests_{key}.jsonl") if config.record_requests else None
    started = perf_counter()
    window: deque[tuple[float, int]] = deque([(started, 0)], maxlen=RPS_WINDOW)

    def report(done: int, failed: int) -> None:
        if progress is None:
            return
        now = perf_counter()
        since, done_then = window[0]
        # completions per second over the last few seconds: steady even when requests take seconds each
        rps = (done - done_then) / (now - since) if now > since else 0.0
        window.append((now, done))
        progress(perf_progress(key, done, number, failed, rps, now - started))

    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()  # fewer, cheaper collections on the hot path; long-lived objects are not rescanned
    try:
        if workers == 1:
            return await _run_local(config, plans[0], bodies, prompt_tokens, records_path, stop, report)
        stats, reason, parts, errors = await run_sharded(config, plans, bodies, prompt_tokens,
                                                         str(out_dir) if records_path else None, stop, report)
        if records_path:
            _concat(parts, records_path)
        report(stats.requests, stats.failed)
        if errors:
            raise ClientProcessError("; ".join(errors), stats)
        return stats, reason
    finally:
        gc.unfreeze()
        if gc_was_enabled:
            gc.enable()


async def _run_local(config: PerfConfig, plan: ShardPlan, bodies: list[bytes], prompt_tokens: list[int],
                     records_path: str | None, stop: asyncio.Event,
                     report: Callable[[int, int], None]) -> tuple[RunStats, str | None]:
    stats = RunStats(bool(config.stream), config.slo)
    counters = Counters()
    loop = asyncio.get_running_loop()
    local_stop = asyncio.Event()  # the run's own flag: a duration cap must not stop later sweep points

    async def forward() -> None:
        await stop.wait()
        local_stop.set()

    async def ticker() -> None:
        while True:
            await asyncio.sleep(PROGRESS_PERIOD)
            report(counters.done, counters.failed)

    sender = Sender(get_dialect(config.api), config, bodies, prompt_tokens)
    helpers = [loop.create_task(forward()), loop.create_task(ticker())]
    try:
        await warmup(plan, sender, local_stop)
        t0 = perf_counter() + 0.001
        sink = RecordSink(records_path, t0) if records_path else None
        try:
            reason = await run_shard(plan, sender, stats, t0, local_stop, counters, sink)
        finally:
            if sink is not None:
                sink.close()  # a few buffered rows; must complete even while a cancellation unwinds
    finally:
        for h in helpers:
            h.cancel()
        sender.close()
    report(counters.done, counters.failed)
    return stats, reason


def _concat(parts: list[str], dest: str) -> None:
    from .._io import AtomicLines

    out = AtomicLines(dest)
    try:
        for part in sorted(parts):
            with open(part, "rb") as src:
                out.copy_from(src)
            os.unlink(part)
    except BaseException:
        out.discard()
        raise
    out.close()


def _nothing_succeeded(result: PerfResult) -> tuple[RunStatus, str | None]:
    """(failed, why) when no request of any sweep point succeeded; else (completed, None)."""
    runs = [run.metrics for run in result.results.values()]
    if any(m["requests_succeeded"] for m in runs):
        return RunStatus.COMPLETED, None
    kinds: dict[str, int] = {}
    for m in runs:
        for kind, count in m["failures_by_kind"].items():
            kinds[kind] = kinds.get(kind, 0) + count
    said = ", ".join(f"{k}: {v}" for k, v in kinds.items()) or "none finished"
    return RunStatus.FAILED, f"no request succeeded ({said})"


def _finish_run(config: PerfConfig, stats: RunStats, key: str, number: int, parallel: int, rate: float,
                reason: str | None, data_info: dict[str, Any]) -> RunResult:
    metrics = stats.metrics()
    metrics.update({
        "number": number,
        "parallel": parallel,
        "rate": rate,
        "arrival": config.arrival if rate > 0 else None,
        "stream": config.stream,
        "warmup": config.warmup,
        "stopped_by": reason,
        "requests_unsent": number - stats.requests - stats.unfinished,
        "prompt_tokens_source": data_info.get("prompt_tokens_source"),
    })
    if config.multi_turn:
        metrics.update({"multi_turn": True, "think_time": config.think_time})
    metrics.update(client_verdict(metrics, stats.load, stats.dists["loop_lag_ms"], parallel, rate,
                                  max(1, min(config.workers, parallel, number))))
    return RunResult(metrics=metrics, percentiles=stats.percentiles())

