"""Every status word evalsvc uses, and the one exit-code table the CLI commands share.

Three vocabularies, each defined once:

    RunStatus   how a run ended (perf and eval results, an eval dataset, summary.json "status"):
                completed    it ran to its end and every request/sample counted (the only clean outcome)
                incomplete   eval: it ran to its end, but samples errored and the scores exclude them
                failed       it could not do its work: a dataset failed, a client process died, nothing succeeded
                timeout      eval: the run's own time limit stopped it (what was done is kept, resumable)
                interrupted  perf: Ctrl-C / SIGTERM / a stop event stopped it (what was measured is kept)
                cancelled    eval: Ctrl-C / a cancel event stopped it (predictions kept, resumable)
    Phase       where an unfinished part is: pending (not started), starting, running
    JobState    a service job: queued, running, then completed / failed / cancelled / interrupted. Its final
                values are RunStatus values; a job never reads incomplete (the result says so per dataset)
                nor timeout (a job that timed out has failed, its error says why).
    DirState    what `evalsvc runs` lists for a run directory without a readable summary.json:
                partial (no summary.json yet: running, or stopped before writing it), unreadable

`EXIT_CODE` maps a RunStatus to the CLI's exit code; errors carry theirs (`errors.py`), from the same `ExitCode`.

    exit  meaning
    0     completed
    1     failed, incomplete, timeout; an endpoint error, a client process that died
    2     bad input: a config field, a dataset (ConfigError, DatasetError, a usage error)
    130   interrupted, cancelled (Ctrl-C; a second Ctrl-C aborts at once, also 130)
"""

from __future__ import annotations

import sys
from enum import Enum, IntEnum

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10
    class StrEnum(str, Enum):
        """str-valued Enum whose str() is its value (enum.StrEnum from Python 3.11 on)."""

        def __str__(self) -> str:
            return str(self.value)


class RunStatus(StrEnum):
    """How a run (or one part of it: a sweep point, a dataset) ended."""

    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    FAILED = "failed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"


class Phase(StrEnum):
    """Where a part of a run that has not ended is (an eval dataset in progress events)."""

    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"


class JobState(StrEnum):
    """The state of a service job; the final ones share RunStatus's values."""

    QUEUED = "queued"
    RUNNING = Phase.RUNNING.value
    COMPLETED = RunStatus.COMPLETED.value
    FAILED = RunStatus.FAILED.value
    CANCELLED = RunStatus.CANCELLED.value
    INTERRUPTED = RunStatus.INTERRUPTED.value


class DirState(StrEnum):
    """A listed run directory whose summary.json cannot tell its RunStatus (`evalsvc runs`, `list_runs`)."""

    PARTIAL = "partial"
    """No summary.json: the run is still going, or stopped before it wrote one."""
    UNREADABLE = "unreadable"
    """summary.json (or the directory) cannot be read, or holds neither perf nor eval results."""


class ErrorCategory(StrEnum):
    """What kind of failure a job's `error.category` names; the service answers its HTTP status from it."""

    INPUT = "input"  # the request was wrong (a field, a dataset): 400
    ENDPOINT = "endpoint"  # the endpoint under test failed us as a whole: 502
    TIMEOUT = "timeout"  # the run reached its time limit: 504
    RUN = "run"  # the run ended failed (e.g. no request succeeded)
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the service stopped while it ran
    INTERNAL = "internal"  # a bug or a dead worker process


HTTP_STATUS: dict[ErrorCategory, int] = {ErrorCategory.INPUT: 400, ErrorCategory.ENDPOINT: 502,
                                         ErrorCategory.TIMEOUT: 504}
"""The HTTP status of a failed job's result by its error category (500 for the others)."""


class ExitCode(IntEnum):
    """The exit codes of the `evalsvc` commands."""

    OK = 0
    FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


EXIT_CODE: dict[RunStatus, ExitCode] = {
    RunStatus.COMPLETED: ExitCode.OK,
    RunStatus.INCOMPLETE: ExitCode.FAILED,
    RunStatus.FAILED: ExitCode.FAILED,
    RunStatus.TIMEOUT: ExitCode.FAILED,
    RunStatus.INTERRUPTED: ExitCode.INTERRUPTED,
    RunStatus.CANCELLED: ExitCode.INTERRUPTED,
}
"""The CLI exit code of a run that ended with this status (`evalsvc perf` and `evalsvc eval` alike)."""

STOPPED = frozenset({RunStatus.INTERRUPTED, RunStatus.CANCELLED, RunStatus.TIMEOUT})
"""Statuses of a run stopped before its end: what was done is kept (and an eval resumes with use_cache)."""


def exit_code(status: str) -> int:
    """The exit code for a run status; a status this table does not know is a failure (1)."""
    try:
        return int(EXIT_CODE[RunStatus(status)])
    except ValueError:
        return int(ExitCode.FAILED)
