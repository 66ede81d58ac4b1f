"""A job: one eval, perf or capacity run submitted to the service, its state, progress and outcome."""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import JobNotFound, JobStateError, QueueFull, RunnerClosed, RunnerLocked
from ..status import JobState

KINDS = ("eval", "perf", "capacity")
SLOT = {"eval": "eval", "perf": "perf", "capacity": "perf"}
"""The concurrency slot each kind takes: a capacity search is a series of load tests, so it shares the perf
slot (two load tests on one host distort each other)."""

QUEUED = JobState.QUEUED
RUNNING = JobState.RUNNING
COMPLETED = JobState.COMPLETED
FAILED = JobState.FAILED
CANCELLED = JobState.CANCELLED
INTERRUPTED = JobState.INTERRUPTED

STATES = tuple(JobState)
ACTIVE_STATES = (QUEUED, RUNNING)
FINAL_STATES = (COMPLETED, FAILED, CANCELLED, INTERRUPTED)
"""completed: the run finished. failed: it could not run or crashed. cancelled: a client stopped it.
interrupted: the service stopped (or died) while the job was queued or running."""

__all__ = ["ACTIVE_STATES", "CANCELLED", "COMPLETED", "FAILED", "FINAL_STATES", "INTERRUPTED", "KINDS", "QUEUED",
           "RUNNING", "STATES", "Job", "JobNotFound", "JobState", "JobStateError", "QueueFull", "RunnerClosed",
           "RunnerLocked", "new_job_id"]


def new_job_id() -> str:
    """A 20-character id that sorts by creation time (ms timestamp, then random bits)."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


@dataclass(kw_only=True)
class Job:
    """A job as the store and the API see it. `config` is the redacted config: it never holds a key."""

    id: str
    kind: str
    state: str = QUEUED
    """A JobState value (a plain str when read back from the store)."""
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    """Latest progress event per run (perf) or dataset (eval), keyed by its name."""
    output_dir: str | None = None
    result: dict[str, Any] | None = None
    """The engine's `to_dict()` when it produced one (also for cancelled / interrupted partial runs)."""
    error: dict[str, Any] | None = None
    """{"type", "message"} and, for a ConfigError, "field" and "reason"."""
    request_id: str | None = None
    """The X-Request-ID of the request that submitted the job (also the first line of the job's log)."""

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def summary(self) -> dict[str, Any]:
        """What a job listing shows: everything but the result payload."""
        data = dataclasses.asdict(self)
        del data["result"]
        data["has_result"] = self.result is not None
        return data

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
