"""Stand-in engines for job-runner tests: they run in the worker process like run_perf / run_eval do.

Behaviour is picked by the config's `model`:
    "fake"          finish after `duration` seconds (perf) / at once (eval), emitting progress
    "fake-slow"     run until interrupted (SIGINT), then return a partial result
    "fake-stubborn" ignore SIGINT (a run that will not stop: the runner must terminate it)
    "fake-config"   raise ConfigError("datasets", ...) before doing any work
    "fake-endpoint" raise EndpointUnreachable
    "fake-boom"     raise RuntimeError (an internal error)
    "fake-crash"    exit the process without a word
    "fake-leak"     fail with an error message quoting the API key and URL (perf: headers, extra_body too)
    "fake-timeout"  (eval) reach the run's time limit, keeping a partial result
    "fake-cwd"      (eval) complete at once, reporting the worker's working directory as "cwd"
    "fake-fragile"  run until interrupted, then fail with RuntimeError (a stop that surfaces as an error)
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evalsvc.core._io import new_run_dir, write_json
from evalsvc.core.errors import ConfigError, EndpointUnreachable
from evalsvc.core.progress import eval_log, eval_progress, perf_progress


@dataclass
class FakeResult:
    status: str
    output_dir: str
    payload: dict[str, Any]
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # the real engines' to_dict() carries "error" too (None when there is none)
        return {"output_dir": self.output_dir, "status": self.status, "error": self.error, **self.payload}


def _common(config: Any, progress: Callable[[dict[str, Any]], None] | None = None) -> None:
    model = config.model
    if model == "fake-config":
        raise ConfigError("datasets", "unknown benchmark 'nope'")
    if model == "fake-endpoint":
        raise EndpointUnreachable("cannot connect to http://127.0.0.1:9/v1: connection refused")
    if model == "fake-boom":
        raise RuntimeError("boom")
    if model == "fake-crash":
        os._exit(3)
    if model == "fake-fragile":
        if progress is not None:
            progress(eval_progress("fragile", 0, 1))
        try:
            time.sleep(3600)
        except KeyboardInterrupt:
            raise RuntimeError("connection pool closed while stopping") from None
    if model == "fake-stubborn":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        time.sleep(3600)


def perf(config: Any, *, progress: Callable[[dict[str, Any]], None] | None = None) -> FakeResult:
    _common(config, progress)
    out = str(new_run_dir(config.work_dir))
    emit = progress or (lambda e: None)
    runs = config.runs()
    results: dict[str, Any] = {}
    status = "completed"
    error = None
    if config.model == "fake-leak":
        return FakeResult("failed", out, {"results": {}}, error=f"server said: bad key {config.api_key} "
                          f"at {config.url}, headers {config.headers}, body {config.extra_body}")
    try:
        for key, number, parallel, _rate in runs:
            done = 0
            while done < number or config.model == "fake-slow":
                time.sleep(0.05 if config.model == "fake-slow" else min(config.duration or 0.2, 0.5) / 20)
                done = min(number, done + max(1, number // 20))
                emit(perf_progress(key, done, number, 0, 100.0, 0.1))
            results[key] = {"metrics": {"requests_total": number, "requests_succeeded": number,
                                        "requests_failed": 0, "parallel": parallel},
                            "percentiles": {"ttft_ms": {"p50": 1.0, "p99": 2.0}}}
    except KeyboardInterrupt:
        status = "interrupted"
    payload = {"results": results}
    write_json(os.path.join(out, "summary.json"), {"status": status, **payload})
    return FakeResult(status, out, payload, error)


def eval(config: Any, *, progress: Callable[[dict[str, Any]], None] | None = None) -> FakeResult:
    _common(config, progress)
    out = str(new_run_dir(config.work_dir))
    emit = progress or (lambda e: None)
    result: dict[str, Any] = {}
    status = "completed"
    if config.model == "fake-leak":
        raise EndpointUnreachable(f"cannot connect to {config.api_url} with key {config.api_key}")
    if config.model == "fake-cwd":
        return FakeResult("completed", out, {"result": {}, "cwd": os.getcwd()})
    if config.model == "fake-incomplete":  # ran to the end, some samples errored (evalsvc's honest status)
        result = {config.datasets[0]: {"score": 1.0, "metric": "accuracy", "requested": 5, "scored": 3,
                                       "errored": 2, "incomplete": True}}
        return FakeResult("incomplete", out, {"result": result, "incomplete": True},
                          error="gsm8k: 2 of 5 samples errored")
    if config.model == "fake-timeout":
        result = {config.datasets[0]: {"score": 0.5, "metric": "accuracy", "requested": 4, "scored": 2,
                                       "errored": 0, "incomplete": True}}
        return FakeResult("timeout", out, {"result": result}, error="the run reached its time limit (1 s)")
    try:
        for name in config.datasets:
            total = min(int(config.limit or 5), 20)
            for done in range(1, total + 1):
                time.sleep(0.01 if config.model != "fake-slow" else 0.2)
                emit(eval_progress(name, done, total))
                if config.model == "fake-slow" and done == total:
                    time.sleep(3600)
            emit(eval_log(name, "INFO", f"{name} done"))
            result[name] = {"score": 0.8, "metric": "accuracy", "requested": total, "scored": total, "errored": 0}
    except KeyboardInterrupt:
        status = "cancelled"
    write_json(os.path.join(out, "summary.json"), {"status": status, "result": result})
    return FakeResult(status, out, {"result": result})


def capacity(config: Any, *, progress: Callable[[dict[str, Any]], None] | None = None) -> FakeResult:
    """The perf stand-in with a capacity answer beside its results (the shape of CapacityResult.to_dict())."""
    result = perf(config, progress=progress)
    result.payload["capacity"] = {"search": config.search, "value": None, "ended": "interrupted",
                                  "message": "stand-in engine", "probes": []}
    return result
