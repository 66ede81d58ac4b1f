"""`run_capacity` / `run_capacity_async`: the capacity search against a real endpoint, with outputs.

Each probe is a perf run of one point through the perf engine (`perf._run.measure_point`): the same
request bodies, client processes, metrics, SLO counting, client-bound verdict and files as `evalsvc perf`.
The search (`_search.py`) decides which values to probe and judges them; this module sizes the probes,
keeps the budget, stops a probe early through the engine's watch hook, refuses client-bound probes and
writes the answer.

Early stop (the watch hook of `measure_point`, looked at about twice a second while a probe runs): once 10
requests have finished, a probe whose attainment so far (pooled with the earlier runs at the same value) has
a Wilson upper bound below the target cannot pass any more; it is stopped with `stopped_by: "slo_missed"`.
An over-saturated server (a queue that keeps growing, TTFT rising through the probe, errors climbing) is the
usual cause, and it is cut off after a few seconds instead of the whole probe. The requests in flight at
that moment are counted as unfinished, as for any stopped run. The budget (`max_seconds`) stops the
running probe the same way (`stopped_by: "budget"`).
"""

from __future__ import annotations

import asyncio
import math
import os
import traceback
from time import monotonic
from typing import Any

from .._aio import run_blocking
from .._io import new_run_dir, utc_now_iso, write_atomic, write_json
from ..config import CapacityConfig
from ..errors import ConfigError
from ..progress import ProgressCallback, capacity_probe, run_started
from ..status import RunStatus
from ..perf._engine import STOPPED_INTERRUPTED
from ..perf._preflight import preflight
from ..perf._result import RunResult
from ..perf._run import measure_point, prepare
from ._result import CapacityResult
from ._search import Measured, Outcome, Plan, Verdict, search
from ._stats import knee, wilson

PROBE_ROUNDS = 4
"""A probe sends at least this many requests per unit of its value (parallel: each client sends 4 in turn;
rate: 4 seconds of arrivals), so queues reach their steady state within the probe."""
SCOUT_ROUNDS = 2
"""A bracketing (scout) probe sends max(EARLY_STOP_MIN, 2 x its value) requests."""
EARLY_STOP_MIN = 10
"""Finished requests a probe needs, at least, before the early stop may judge it; also two rounds of its
value (2 x concurrency, or 2 s of arrivals) unless that is more than half the probe. Requests in flight
together are not independent: one stall of the server delays a whole wave of them, so a verdict needs
more than one wave."""
STOPPED_SLO = "slo_missed"
STOPPED_BUDGET = "budget"
UNITS = {"parallel": "concurrent requests", "rate": "requests/s"}


class _Halt(Exception):
    """The search must end now: `ended` says why, `message` says it to the user."""

    def __init__(self, ended: str, message: str, status: RunStatus) -> None:
        super().__init__(message)
        self.ended, self.message, self.status = ended, message, status


def probe_size(config: CapacityConfig, value: float, repeat: int = 0) -> int:
    """Measured requests of a probe run: a scout (repeat -1), a value's first full run (0), or a repeat
    (each doubles the one before)."""
    if repeat < 0:
        return max(EARLY_STOP_MIN, math.ceil(SCOUT_ROUNDS * value))
    return int(max(config.number, math.ceil(PROBE_ROUNDS * value)) * 2 ** repeat)


def _show(value: float, axis: str) -> int | float:
    return int(value) if axis == "parallel" else value


async def run_capacity_async(config: CapacityConfig, *, progress: ProgressCallback | None = None,
                             stop: asyncio.Event | None = None) -> CapacityResult:
    """Search the largest concurrency (or rate) meeting `config.attainment`; for callers running a loop.

    Args:
        config: the validated CapacityConfig.
        progress: called with the perf events of every probe run (status, progress, run_done) and one
            {"type": "probe", ...} event per value judged (evalsvc.core.progress).
        stop: set it to stop; what was measured is kept and written (status "interrupted").

    Returns:
        The CapacityResult: `result.capacity` is the answer, `result[key]` each probe run. Its status is
        "failed" when a probe was client-bound and could not be made otherwise (no capacity is reported then).

    Raises:
        ConfigError / DatasetError / EndpointError: as run_perf, before anything is measured.
    """
    if not isinstance(config, CapacityConfig):
        raise ConfigError("config", f"expected a CapacityConfig, got {type(config).__name__}")
    stop = stop or asyncio.Event()
    low, high = config.search_range()
    largest = probe_size(config, high, config.max_repeats - 1) + config.warmup
    prepared, first_prompt = await prepare(config, largest)
    started = not config.preflight or await preflight(config, first_prompt, stop)

    out_dir = new_run_dir(config.work_dir, prefix="capacity_")
    if progress is not None:
        progress(run_started(str(out_dir)))
    write_json(out_dir / "config.json", config.to_dict())
    cores = os.cpu_count() or 1
    result = CapacityResult(output_dir=str(out_dir), info={
        "started_at": utc_now_iso(), "dataset": prepared.data_info, "api": config.api, "model": config.model,
        "workers": config.workers, "cores": cores})
    plan = Plan(config.search, low, high, config.attainment, config.confidence, config.max_repeats, config.precision)
    t_start = monotonic()
    deadline = t_start + config.max_seconds
    state: dict[str, Any] = {"runs": 0, "workers": config.workers, "raised": []}

    def watch_for(prior: tuple[int, int], value: float, number: int) -> Any:
        least = max(EARLY_STOP_MIN, min(math.ceil(SCOUT_ROUNDS * value), number // 2))

        def watch(done: int, failed: int, met: int) -> str | None:
            if monotonic() >= deadline:
                return STOPPED_BUDGET
            if config.early_stop and done >= least:
                _, upper = wilson(prior[0] + met, prior[1] + done, config.confidence)
                if upper < config.attainment:
                    return STOPPED_SLO
            return None
        return watch

    async def measure(value: float, repeat: int, prior: tuple[int, int]) -> Measured | None:
        while True:
            if stop.is_set():
                raise _Halt("interrupted", "stopped before the search ended", RunStatus.INTERRUPTED)
            if state["runs"] >= config.max_probes or monotonic() >= deadline:
                return None
            number = probe_size(config, value, repeat)
            workers = state["workers"]
            if config.search == "parallel":
                parallel, rate = int(value), -1.0
                key = f"parallel_{parallel}_number_{number}"
            else:
                parallel, rate = config.parallel, value
                key = f"rate_{rate:g}_number_{number}"
            base, again = key, 1
            while key in result.results:  # the same probe again (after workers were raised, or a scout's size)
                again += 1
                key = f"{base}_run{again}"
            probe = config.perf_config(number=number, parallel=parallel, rate=rate, workers=workers)
            run, error = await measure_point(probe, prepared, key, number, parallel, rate, out_dir, stop, progress,
                                             watch=watch_for(prior, value, number))
            state["runs"] += 1
            result.results[key] = run
            if error is not None:
                raise _Halt("client_failed", f"probe {key}: {error}", RunStatus.FAILED)
            if run.metrics["stopped_by"] == STOPPED_INTERRUPTED or stop.is_set():
                raise _Halt("interrupted", "stopped before the search ended", RunStatus.INTERRUPTED)
            if run.metrics.get("client_bound"):
                reasons = "; ".join(run.metrics.get("client_bound_reasons") or [])
                if config.auto_workers and workers < cores:
                    state["workers"] = min(cores, workers * 2)
                    state["raised"].append({"probe": key, "workers": state["workers"], "reasons": reasons})
                    continue
                raise _Halt("client_bound", f"probe {key} was client-bound ({reasons}): the client, not the server, "
                            "limited it, so no capacity is reported", RunStatus.FAILED)
            met = run.metrics.get("requests_meeting_slo") or 0
            return Measured(met=met, total=run.metrics["requests_total"], key=key,
                            final=run.metrics["stopped_by"] == STOPPED_BUDGET)

    def on_verdict(v: Verdict, outcome: Outcome) -> None:
        if progress is not None:
            progress(capacity_probe(v.keys[-1], v.to_dict(),
                                    outcome.last_pass.value if outcome.last_pass else None,
                                    outcome.first_fail.value if outcome.first_fail else None))

    outcome = Outcome()
    halt: _Halt | None = None
    try:
        if not started:
            raise _Halt("interrupted", "stopped during the test request", RunStatus.INTERRUPTED)
        await search(plan, measure, on_verdict, outcome)
    except _Halt as exc:
        halt = exc
    except asyncio.CancelledError:
        result.status, result.error = RunStatus.INTERRUPTED, "cancelled by the caller"
        raise
    except Exception as exc:
        result.status, result.error = RunStatus.FAILED, f"{type(exc).__name__}: {exc}"
        if config.debug:
            result.info["traceback"] = traceback.format_exc()
        raise
    finally:
        result.capacity = answer(config, outcome, result.results, halt, state, monotonic() - t_start)
        if halt is not None:
            result.status = halt.status
            result.error = halt.message
        result.info["finished_at"] = utc_now_iso()
        _write(out_dir, result, config)
    return result


def run_capacity(config: CapacityConfig, *, progress: ProgressCallback | None = None) -> CapacityResult:
    """Blocking `run_capacity_async` (Ctrl-C stops it gracefully, as run_perf)."""
    stop = asyncio.Event()
    return run_blocking(run_capacity_async(config, progress=progress, stop=stop), stop=stop, fast=True,
                        name="evalsvc-capacity")


def answer(config: CapacityConfig, outcome: Outcome, runs: dict[str, RunResult], halt: _Halt | None,
           state: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The `capacity` block of the result (docs/results.md)."""
    axis, unit = config.search, UNITS[config.search]
    low, high = config.search_range()
    lp, ff = outcome.last_pass, outcome.first_fail
    ended = halt.ended if halt is not None else outcome.ended
    if halt is not None and outcome.verdicts and outcome.verdicts[-1].verdict is None:
        outcome.verdicts.pop()  # the value being probed when the search was halted
    value = None if lp is None or ended in ("client_bound", "client_failed") else _show(lp.value, axis)

    def probe(v: Verdict | None) -> dict[str, Any] | None:
        if v is None:
            return None
        out = v.to_dict()
        out["value"] = _show(v.value, axis)
        return out

    conclusive = (ended == "converged" and lp is not None and ff is not None
                  and lp.decided_by == "interval" and ff.decided_by == "interval")
    pct = f"{config.confidence:.0%}"
    if halt is not None and ended != "interrupted":
        message = halt.message
    elif ended == "interrupted":
        message = "stopped before the search ended" + (f"; so far the target holds at {_show(lp.value, axis)} {unit}"
                                                       if lp else "")
    elif ended == "below_range":
        message = (f"the target is missed even at the lowest value probed (low = {_show(low, axis)} {unit}): "
                   "no capacity in the range; lower `low`")
    elif ended == "above_range":
        message = (f"the target holds at the highest value probed (high = {_show(high, axis)} {unit}): the "
                   "capacity is at least that; raise `high`")
    elif ended == "budget":
        message = (f"the budget ran out (max_probes = {config.max_probes}, max_seconds = {config.max_seconds:g}): "
                   + (f"the capacity is at least {_show(lp.value, axis)} {unit}" if lp else "no probe passed")
                   + (f", below {_show(ff.value, axis)}" if ff else ""))
    else:
        assert lp is not None and ff is not None
        message = (f"capacity: {_show(lp.value, axis)} {unit} ({_show(lp.value, axis)} passes, attainment "
                   f"{lp.attainment:.3f}, {pct} interval [{lp.low:.3f}, {lp.high:.3f}]; {_show(ff.value, axis)} "
                   f"fails, attainment {ff.attainment or 0:.3f}, [{ff.low:.3f}, {ff.high:.3f}]; target "
                   f"{config.attainment:g})" + ("" if conclusive else
                                                 f"; not conclusive at {pct}: a probe was decided by its estimate"))
    goodput = None
    if lp is not None and lp.keys and lp.keys[-1] in runs:
        goodput = runs[lp.keys[-1]].metrics.get("goodput")
    return {
        "search": axis, "unit": unit, "value": value, "ended": ended, "conclusive": conclusive,
        "message": message, "target": config.attainment, "confidence": config.confidence, "slo": config.slo,
        "range": [_show(low, axis), _show(high, axis)],
        "last_pass": probe(lp), "first_fail": probe(ff),
        "goodput": goodput, "knee": _knee(outcome.verdicts, runs, axis),
        "probes": [probe(v) for v in outcome.verdicts if v.verdict is not None],
        "probe_runs": state["runs"], "seconds": seconds, "workers": state["workers"],
        "workers_raised": state["raised"],
    }


def _knee(verdicts: list[Verdict], runs: dict[str, RunResult], axis: str) -> dict[str, Any] | None:
    # probes stopped early count too: past the capacity they are the flat part of the curve that shows the knee
    points = [(v.value, runs[v.keys[-1]].metrics) for v in verdicts if v.keys and v.keys[-1] in runs
              and (runs[v.keys[-1]].metrics.get("requests_succeeded") or 0) >= 2]
    at = knee([p[0] for p in points], [p[1].get("request_throughput") for p in points])
    if at is None:
        return None
    value, m = points[at]
    return {"value": _show(value, axis), "request_throughput": m.get("request_throughput"),
            "ttft_ms_p50": m.get("ttft_ms_p50"), "latency_ms_p50": m.get("latency_ms_p50"),
            "goodput": m.get("goodput")}


def _write(out_dir: Any, result: CapacityResult, config: CapacityConfig) -> None:
    """summary.json (probes ordered by value, so the perf report draws them as a curve), report.txt, report.html."""
    data = result.to_dict()
    data["results"] = dict(sorted(data["results"].items(),
                                  key=lambda kv: (kv[1]["metrics"]["parallel"] if config.search == "parallel"
                                                  else kv[1]["metrics"]["rate"], kv[1]["metrics"]["number"])))
    write_json(out_dir / "summary.json", data)
    write_atomic(out_dir / "report.txt", result.report())
    if config.report:
        try:
            from ._report import build_capacity_report

            build_capacity_report(out_dir)
        except Exception as exc:
            result.info["report_error"] = f"{type(exc).__name__}: {exc}"
            write_json(out_dir / "summary.json", {**data, "info": result.info})
