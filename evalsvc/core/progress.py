"""The events `run_perf` and `run_eval` send to a `progress=` callback, typed once for both.

Every event is a plain dict (JSON-ready: the service relays them as they are) with a `type` and, when it is
about one part of the run, `part`: the one key that says what is running, a sweep key in perf
("parallel_8_number_100") and a dataset in eval ("gsm8k"); `result[part]` is that part's result once the run
returns. Perf events also keep their `run` key and eval events their `dataset` key (same value), as before.

    both  {"type": "status", "part": None, "status": "running", "output_dir"}   once the run's directory exists
    perf  {"type": "progress", "part", "run", "done", "total", "failed", "rps", "elapsed_s", "met"}   ~2 per second
          {"type": "run_done", "part", "run", "metrics"}                                       each sweep point
    capacity  the perf events for each probe run, and {"type": "probe", "part", "value", "verdict", "decided_by",
          "attainment", "interval", "requests", "last_pass", "first_fail"} each value judged
    eval  {"type": "progress", "part", "dataset", "done", "total"}
          {"type": "status", "part", "dataset", "status", "error"?, "resume"?, "output_dir"?}
                                      a dataset starts (status "starting") or ends (a RunStatus); part and
                                      dataset None once, status "running", with the run's output_dir
          {"type": "log", "part", "dataset", "level", "message"}                 part/dataset None: the run's own
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Literal, TypedDict

if sys.version_info >= (3, 11):
    from typing import NotRequired
else:  # pragma: no cover - Python 3.10
    from typing_extensions import NotRequired


class PerfProgress(TypedDict):
    type: Literal["progress"]
    part: str
    run: str
    done: int
    total: int
    failed: int
    rps: float
    elapsed_s: float
    met: int | None
    """Finished requests that succeeded and met every SLO threshold (None without `slo`)."""


class PerfRunDone(TypedDict):
    type: Literal["run_done"]
    part: str
    run: str
    metrics: dict[str, Any]


class EvalProgress(TypedDict):
    type: Literal["progress"]
    part: str
    dataset: str
    done: int
    total: int | None


class EvalStatus(TypedDict):
    type: Literal["status"]
    part: str | None
    dataset: str | None
    status: str
    """A Phase while it runs ("starting", "running"), then a RunStatus."""
    error: NotRequired[str | None]
    resume: NotRequired[bool]
    output_dir: NotRequired[str]


class EvalLog(TypedDict):
    type: Literal["log"]
    part: str | None
    dataset: str | None
    level: str
    message: str


class CapacityProbe(TypedDict):
    """A capacity search judged a value (after its last run there): what it measured and concluded."""

    type: Literal["probe"]
    part: str
    """The key of the value's last probe run."""
    value: float
    verdict: str
    decided_by: str
    attainment: float | None
    interval: list[float]
    requests: int
    last_pass: float | None
    first_fail: float | None


ProgressEvent = PerfProgress | PerfRunDone | EvalProgress | EvalStatus | EvalLog | CapacityProbe
ProgressCallback = Callable[[ProgressEvent], None]


def perf_progress(run: str, done: int, total: int, failed: int, rps: float, elapsed_s: float,
                  met: int | None = None) -> PerfProgress:
    return {"type": "progress", "part": run, "run": run, "done": done, "total": total, "failed": failed,
            "rps": rps, "elapsed_s": elapsed_s, "met": met}


def perf_run_done(run: str, metrics: dict[str, Any]) -> PerfRunDone:
    return {"type": "run_done", "part": run, "run": run, "metrics": metrics}


def eval_progress(dataset: str, done: int, total: int | None) -> EvalProgress:
    return {"type": "progress", "part": dataset, "dataset": dataset, "done": done, "total": total}


def eval_status(dataset: str | None, status: str, **extra: Any) -> EvalStatus:
    event: EvalStatus = {"type": "status", "part": dataset, "dataset": dataset, "status": str(status)}
    event.update(extra)  # type: ignore[typeddict-item]
    return event


def eval_log(dataset: str | None, level: str, message: str) -> EvalLog:
    return {"type": "log", "part": dataset, "dataset": dataset, "level": level, "message": message}


def run_started(output_dir: str) -> EvalStatus:
    """The event perf and eval send once the run's output directory exists (the service records it at once)."""
    return eval_status(None, "running", output_dir=output_dir)


def capacity_probe(part: str, verdict: dict[str, Any], last_pass: float | None,
                   first_fail: float | None) -> CapacityProbe:
    return {"type": "probe", "part": part, "value": verdict["value"], "verdict": verdict["verdict"],
            "decided_by": verdict["decided_by"], "attainment": verdict["attainment"],
            "interval": verdict["interval"], "requests": verdict["requests"], "last_pass": last_pass,
            "first_fail": first_fail}
