"""`run_perf` / `run_perf_async`: a whole load test, sweep point after sweep point, with outputs."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

from .._aio import run_blocking
from .._cluster import require_ray
from .._io import new_run_dir, utc_now_iso, write_atomic, write_json
from ..config import PerfConfig
from ..errors import ClientProcessError, ConfigError
from ..progress import ProgressCallback, perf_progress, perf_run_done, run_started
from ..status import RunStatus
from ._engine import PROGRESS_PERIOD, STOPPED_INTERRUPTED, Counters, RecordSink, ShardPlan, run_shard, warmup
from ._metrics import RunStats
from ._preflight import preflight
from ._result import PerfResult, RunResult
from ._schedule import arrival_offsets, trace_offsets
from ._sender import Sender
from ._shards import run_sharded, split
from ._verdict import client_verdict
from .datasets import load_prompts
from .datasets._trace import TIMESTAMP_KEY
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
        MissingExtra: `ray_address` is set and Ray is not installed (`pip install 'evalsvc[ray]'`).
        ConfigError / DatasetError: bad input, before anything is sent.
        EndpointError: the test request sent first (`config.preflight`) did not succeed:
            EndpointUnreachable (no connection), EndpointTimeout, EndpointStatusError (the server's status
            and answer are in the message). Nothing is written then.
    """
    if not isinstance(config, PerfConfig):
        raise ConfigError("config", f"expected a PerfConfig, got {type(config).__name__}")
    if config.ray_address is not None:
        require_ray()  # before anything is read, sent or written
    stop = stop or asyncio.Event()
    runs = config.runs()
    largest = max(n for _, n, _, _ in runs) + config.warmup
    prepared, first_prompt = await prepare(config, largest)
    data_info = prepared.data_info
    if prepared.trace is not None:
        runs = config.runs(len(prepared.bodies))
    # raises with the server's answer; False if stopped meanwhile (then nothing is run, the outputs say so)
    started = not config.preflight or await preflight(config, first_prompt, stop)

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
            if config.num_runs > 1:
                run, error = await _measure_repeated(config, prepared, key, number, parallel, rate, out_dir, stop,
                                                     progress)
            else:
                run, error = await _measure(config, prepared, key, number, parallel, rate, out_dir, stop, progress)
            if error is not None:
                result.status, result.error = RunStatus.FAILED, error
            reason = run.metrics["stopped_by"]
            result.results[key] = run
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


@dataclass
class Prepared:
    """What every point of a run shares: the request bodies (built once), their prompt lengths, dataset facts."""

    bodies: list[bytes]
    prompt_tokens: list[int]
    data_info: dict[str, Any]
    trace: list[float] | None = None
    """The trace dataset's send times (ms), one per request; None for the other datasets."""
    tags: list[dict[str, Any]] | None = None
    """Per-request facts the records carry (the trace's index and timestamp)."""
    sessions: list[Any] | None = None
    """multi_turn: the conversations (Prompts with `turns`) the sessions replay."""


async def prepare(config: PerfConfig, count: int) -> tuple[Prepared, Any]:
    """The prompts for runs of up to `count` requests, and the first prompt (for the test request).

    Raises:
        ConfigError: a trace holds fewer requests than `number` asks for.
    """
    dialect = get_dialect(config.api)
    if config.dataset == "trace":  # the trace's requests, each once (warm-up requests reuse the first ones)
        count = max(n for _, n, _, _ in config.runs()) if config.number is not None else sys.maxsize
    prompts, data_info = await asyncio.to_thread(load_prompts, config, count)
    trace: list[float] | None = None
    tags: list[dict[str, Any]] | None = None
    if config.dataset == "trace":
        longest = max(n for _, n, _, _ in config.runs(len(prompts)))
        if longest > len(prompts):
            raise ConfigError("number", f"is {longest} but the trace {config.dataset_path} holds "
                              f"{len(prompts)} requests")
        trace = [p.meta[TIMESTAMP_KEY] for p in prompts]
        tags = [p.meta for p in prompts]
    return (Prepared([dialect.build(config, p) for p in prompts], [p.tokens for p in prompts], data_info, trace,
                     tags, prompts if config.multi_turn else None), prompts[0])


Watch = Callable[[int, int, int], str | None]
"""Looks at a running point about twice a second, given (done, failed, met: requests meeting every SLO so
far); a non-empty string it returns stops the point, and becomes the point's `stopped_by`."""


async def measure_point(config: PerfConfig, prepared: Prepared, key: str, number: int, parallel: int, rate: float,
                        out_dir: Path, stop: asyncio.Event, progress: ProgressFn | None, *,
                        watch: Watch | None = None) -> tuple[RunResult, str | None]:
    """One sweep point, measured and written (`summary_<key>.json`, `requests_<key>.jsonl`), for callers that
    run their own series of points (the capacity search). Returns the RunResult and, when a client process
    died, the error (the run then holds what the others measured). `watch` may stop the point early."""
    return await _measure(config, prepared, key, number, parallel, rate, out_dir, stop, progress, watch=watch)


async def _measure(config: PerfConfig, prepared: Prepared, key: str, number: int, parallel: int, rate: float,
                   out_dir: Path, stop: asyncio.Event, progress: ProgressFn | None, *, watch: Watch | None = None,
                   repeat: int | None = None) -> tuple[RunResult, str | None]:
    error = None
    suffix = "" if repeat is None else f".run{repeat:03d}"  # zero-padded: the parts concatenate in order
    clients: list[dict[str, Any]] = []
    try:
        stats, reason = await _run_point(config, key, number, parallel, rate, prepared, out_dir, stop, progress,
                                         clients, watch=watch, records_suffix=suffix)
    except ClientProcessError as exc:  # keep what the surviving client processes measured
        if exc.stats is None:
            raise
        stats, reason, error = exc.stats, CLIENT_FAILED, str(exc)
    run = _finish_run(config, stats, key, number, parallel, rate, reason, prepared, clients)
    if repeat is None:
        _point_done(out_dir, key, run, progress)
    else:
        run.stats = stats
    return run, error


async def _measure_repeated(config: PerfConfig, prepared: Prepared, key: str, number: int, parallel: int,
                            rate: float, out_dir: Path, stop: asyncio.Event,
                            progress: ProgressFn | None) -> tuple[RunResult, str | None]:
    """`num_runs` runs of one point: metrics and percentiles pooled over them, `repeats` their spread."""
    from ._repeats import repeats_block

    runs: list[RunResult] = []
    error = None
    for i in range(1, config.num_runs + 1):
        run, error = await _measure(config, prepared, key, number, parallel, rate, out_dir, stop, progress,
                                    repeat=i)
        runs.append(run)
        if error is not None or run.metrics["stopped_by"] in (STOPPED_INTERRUPTED, CLIENT_FAILED):
            break
    pooled = RunStats(bool(config.stream), config.slo)
    for run in runs:
        pooled.merge(run.stats)
    durations = [r.metrics["duration_s"] for r in runs if r.metrics["duration_s"]]
    last = runs[-1].metrics
    out = _finish_run(config, pooled, key, number, parallel, rate, last["stopped_by"], prepared,
                      [c for r in runs for c in (r.metrics.get("clients") or [])],
                      duration_s=sum(durations) if durations else None)
    out.metrics["requests_unsent"] = sum(r.metrics["requests_unsent"] for r in runs)
    out.repeats = repeats_block([r.metrics for r in runs], config.num_runs)
    if config.record_requests:
        parts = [str(out_dir / f"requests_{key}.run{i:03d}.jsonl") for i in range(1, len(runs) + 1)]
        _concat([p for p in parts if os.path.exists(p)], str(out_dir / f"requests_{key}.jsonl"))
    _point_done(out_dir, key, out, progress)
    return out, error


def _point_done(out_dir: Path, key: str, run: RunResult, progress: ProgressFn | None) -> None:
    write_json(out_dir / f"summary_{key}.json", run.to_dict())
    if progress is not None:
        progress(perf_run_done(key, run.metrics))


async def _run_point(config: PerfConfig, key: str, number: int, parallel: int, rate: float, prepared: Prepared,
                     out_dir: Path, stop: asyncio.Event, progress: ProgressFn | None,
                     clients: list[dict[str, Any]], *, watch: Watch | None = None,
                     records_suffix: str = "") -> tuple[RunStats, str | None]:
    """One sweep point; `clients` receives one line per client process or Ray actor (sharded runs only)."""
    bodies, prompt_tokens = prepared.bodies, prepared.prompt_tokens
    workers = max(1, min(config.workers, parallel, number))
    offsets = schedule(config, number, rate, prepared.trace)
    plans = []
    parallels = split(parallel, workers)
    warmups = split(config.warmup, workers)
    counts = split(number, workers)
    for k in range(workers):
        shard_offsets = offsets[k::workers] if offsets is not None else None
        plans.append(ShardPlan(key=key, start=k, step=workers, count=counts[k], parallel=parallels[k],
                               warmup=warmups[k], offsets=shard_offsets, duration=config.duration,
                               tags=prepared.tags, sessions=prepared.sessions))
    records_path = str(out_dir / f"requests_{key}{records_suffix}.jsonl") if config.record_requests else None
    started = perf_counter()
    window: deque[tuple[float, int]] = deque([(started, 0)], maxlen=RPS_WINDOW)
    # the point's own stop: the caller's stop, or `watch` deciding the point has seen enough
    point_stop = asyncio.Event()
    halted: list[str] = []

    def report(done: int, failed: int, met: int) -> None:
        if watch is not None and not halted and not point_stop.is_set():
            why = watch(done, failed, met)
            if why:
                halted.append(why)
                point_stop.set()
        if progress is None:
            return
        now = perf_counter()
        since, done_then = window[0]
        # completions per second over the last few seconds: steady even when requests take seconds each
        rps = (done - done_then) / (now - since) if now > since else 0.0
        window.append((now, done))
        progress(perf_progress(key, done, number, failed, rps, now - started, met if config.slo else None))

    async def forward() -> None:
        await stop.wait()
        point_stop.set()

    forwarder = asyncio.get_running_loop().create_task(forward())

    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()  # fewer, cheaper collections on the hot path; long-lived objects are not rescanned
    try:
        if workers == 1 and not config.ray_address:
            stats, reason = await _run_local(config, plans[0], bodies, prompt_tokens, records_path, point_stop,
                                             report)
        else:
            stats, reason, parts, errors, shards = await run_sharded(
                config, plans, bodies, prompt_tokens, str(out_dir) if records_path else None, point_stop, report)
            clients.extend(shards)
            if records_path:
                _concat(parts, records_path)
            report(stats.requests, stats.failed, stats.slo.met)
            if errors:
                raise ClientProcessError("; ".join(errors), stats)
        if halted and not stop.is_set() and reason == STOPPED_INTERRUPTED:
            reason = halted[0]
        return stats, reason
    finally:
        forwarder.cancel()
        gc.unfreeze()
        if gc_was_enabled:
            gc.enable()


async def _run_local(config: PerfConfig, plan: ShardPlan, bodies: list[bytes], prompt_tokens: list[int],
                     records_path: str | None, stop: asyncio.Event,
                     report: Callable[[int, int, int], None]) -> tuple[RunStats, str | None]:
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
            report(counters.done, counters.failed, counters.met)

    sender = Sender(get_dialect(config.api), config, bodies, prompt_tokens)
    helpers = [loop.create_task(forward()), loop.create_task(ticker())]
    try:
        await warmup(plan, sender, local_stop)
        t0 = perf_counter() + 0.001
        sink = RecordSink(records_path, t0, plan.tags) if records_path else None
        try:
            reason = await run_shard(plan, sender, stats, t0, local_stop, counters, sink)
        finally:
            if sink is not None:
                sink.close()  # a few buffered rows; must complete even while a cancellation unwinds
    finally:
        for h in helpers:
            h.cancel()
        sender.close()
    report(counters.done, counters.failed, counters.met)
    return stats, reason


def schedule(config: PerfConfig, number: int, rate: float, trace: list[float] | None = None) -> Any:
    """The send offsets (seconds from the start) of a sweep point's `number` requests, or None (closed loop):
    the trace's own times scaled by `speed`, or `rate`'s arrival process (and ramp)."""
    if trace is not None:
        return trace_offsets(trace[:number], config.speed)
    if rate <= 0:
        return None
    return arrival_offsets(number, rate, config.arrival, config.seed, burstiness=config.burstiness,
                           rate_start=config.rate_start)


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
                reason: str | None, prepared: Prepared, clients: list[dict[str, Any]],
                duration_s: float | None = None) -> RunResult:
    data_info, trace = prepared.data_info, prepared.trace
    metrics = stats.metrics(duration_s)
    arrival = config.arrival if rate > 0 else None
    extra: dict[str, Any] = {}
    if rate > 0 and config.arrival == "gamma":
        extra["burstiness"] = config.burstiness
    if rate > 0 and config.rate_start is not None:
        extra["rate_start"] = config.rate_start
    if trace is not None:  # the schedule's mean rate: what the open-loop verdict and the report read
        span = (trace[number - 1] - trace[0]) / 1000.0 / config.speed if number > 1 else 0.0
        rate = round((number - 1) / span, 6) if span > 0 else -1.0
        arrival = "trace"
        extra.update({"speed": config.speed, "trace_span_s": round(span, 6)})
    metrics.update({
        "number": number,
        "parallel": parallel,
        "rate": rate,
        "arrival": arrival,
        **extra,
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
    # per client process / Ray actor of a sharded run: where it ran, its share, its own verdict (else null)
    metrics["clients"] = clients or None
    return RunResult(metrics=metrics, percentiles=stats.percentiles())

