"""A job: one eval or perf run submitted to the service, its state, progress and outcome."""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import EvalsvcError

KINDS = ("eval", "perf")

QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"

STATES = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED, INTERRUPTED)
ACTIVE_STATES = (QUEUED, RUNNING)
FINAL_STATES = (COMPLETED, FAILED, CANCELLED, INTERRUPTED)
"""completed: the run finished. failed: it could not run or crashed. cancelled: a client stopped it.
interrupted: the service stopped (or died) while the job was queued or running."""


class QueueFull(EvalsvcError):
    """The runner's queue is full; the client should retry later (HTTP 429)."""

    def __init__(self, queued: int, limit: int) -> None:
        self.queued = queued
        self.limit = limit
        super().__init__(f"the job queue is full ({queued} jobs waiting, limit {limit}); retry later")


class JobNotFound(EvalsvcError, LookupError):
    """No job has this id (HTTP 404)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job with id {job_id!r}")


class JobStateError(EvalsvcError):
    """The operation does not apply to the job in its current state (HTTP 409)."""

    def __init__(self, job_id: str, state: str, message: str) -> None:
        self.job_id = job_id
        self.state = state
        super().__init__(message)


class RunnerClosed(EvalsvcError):
    """The service is shutting down and takes no new jobs (HTTP 503)."""

    def __init__(self) -> None:
        super().__init__("the service is shutting down and accepts no new jobs")


class RunnerLocked(EvalsvcError):
    """Another service process already runs jobs from this outputs root."""


def new_job_id() -> str:
    """A 20-character id that sorts by creation time (ms timestamp, then random bits)."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


@dataclass(kw_only=True)
class Job:
    """A job as the store and the API see it. `config` is the redacted config: it never holds a key."""

    id: str
    kind: str
    state: str = QUEUED
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
