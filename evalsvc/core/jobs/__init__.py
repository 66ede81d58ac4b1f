"""Jobs: eval and perf runs submitted to the service, queued, run in worker processes and persisted.

    policy = PathPolicy("outputs")
    runner = JobRunner(policy)
    await runner.start()
    job = runner.submit("perf", policy.config_from_body("perf", body))
    job = await runner.wait(job.id)
"""

from ._model import (
    ACTIVE_STATES,
    CANCELLED,
    COMPLETED,
    FAILED,
    FINAL_STATES,
    INTERRUPTED,
    KINDS,
    QUEUED,
    RUNNING,
    STATES,
    Job,
    JobNotFound,
    JobStateError,
    QueueFull,
    RunnerClosed,
    RunnerLocked,
)
from ._paths import PathPolicy
from ._store import JobStore
from ._supervisor import (
    DEFAULT_CANCEL_GRACE_S,
    DEFAULT_EVAL_CONCURRENCY,
    DEFAULT_MAX_QUEUED,
    DEFAULT_PERF_CONCURRENCY,
    LOG_TAIL_MAX_BYTES,
    TARGETS,
    JobRunner,
)

__all__ = [
    "ACTIVE_STATES",
    "CANCELLED",
    "COMPLETED",
    "DEFAULT_CANCEL_GRACE_S",
    "DEFAULT_EVAL_CONCURRENCY",
    "DEFAULT_MAX_QUEUED",
    "DEFAULT_PERF_CONCURRENCY",
    "FAILED",
    "FINAL_STATES",
    "INTERRUPTED",
    "KINDS",
    "LOG_TAIL_MAX_BYTES",
    "QUEUED",
    "RUNNING",
    "STATES",
    "TARGETS",
    "Job",
    "JobNotFound",
    "JobRunner",
    "JobStateError",
    "JobStore",
    "PathPolicy",
    "QueueFull",
    "RunnerClosed",
    "RunnerLocked",
]
