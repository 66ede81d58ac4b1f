"""What a job ends as: its state, result and error, from what its child said and how it stopped; and what
it keeps of its config (redacted, its secrets, `_secrets.config_secrets`, scrubbed)."""

from __future__ import annotations

from typing import Any, NamedTuple

from .._proc import describe_exit
from .._secrets import scrub
from ..config import EvalConfig, PerfConfig
from ..status import ErrorCategory, RunStatus
from ._model import CANCELLED, COMPLETED, FAILED, INTERRUPTED

Config = PerfConfig | EvalConfig


class Outcome(NamedTuple):
    state: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    output_dir: str | None = None


def cancelled_error() -> dict[str, Any]:
    return {"type": "Cancelled", "category": ErrorCategory.CANCELLED, "message": "the job was cancelled by a client"}


def interrupted_error(was: str) -> dict[str, Any]:
    return {"type": "Interrupted", "category": ErrorCategory.INTERRUPTED,
            "message": f"the service stopped while this job was {was}"}


def launch_error(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "category": ErrorCategory.INTERNAL,
            "message": f"could not start the worker process: {exc}"}


def stopped(stop_reason: str | None) -> Outcome:
    """How a job told to stop ends: cancelled by a client, or interrupted by the service stopping."""
    if stop_reason == "cancel":
        return Outcome(CANCELLED, error=cancelled_error())
    return Outcome(INTERRUPTED, error=interrupted_error("running"))


def job_outcome(message: dict[str, Any] | None, exitcode: int | None, stop_reason: str | None,
                debug: bool) -> Outcome:
    """The final state, result, error and output dir of a job whose child exited.

    Args:
        message: the child's last word (a result, error or stopped message; see _child.py), or None.
        exitcode: the child's exit code (None: unknown).
        stop_reason: "cancel" or "shutdown" if the job was told to stop, else None.
        debug: keep the traceback of an internal error.
    """
    halt = stopped(stop_reason)
    if message is None:
        if stop_reason is not None:
            return halt
        how = describe_exit(exitcode)
        return Outcome(FAILED, error={"type": "WorkerDied", "category": ErrorCategory.INTERNAL,
                                      "message": f"the worker process ended ({how}) without a result"})
    kind = message.get("type")
    if kind == "result":
        return _from_result(message, halt)
    if kind == "error":
        error = dict(message.get("error") or {})
        if stop_reason is not None:
            # A run told to stop may surface the stop as any error (a closed pool, an interrupted read):
            # it was stopped, not broken; what it said is kept as the detail.
            if error.get("category") != ErrorCategory.CANCELLED and error.get("message"):
                return halt._replace(error={**(halt.error or {}), "detail": error["message"]})
            return halt
        if not debug:
            error.pop("traceback", None)
        return Outcome(FAILED, error=error)
    return halt  # "stopped": the engine raised KeyboardInterrupt


def _from_result(message: dict[str, Any], halt: Outcome) -> Outcome:
    status = message.get("status")
    data = message.get("data") if isinstance(message.get("data"), dict) else None
    output_dir = message.get("output_dir") or (data or {}).get("output_dir")
    if status in (RunStatus.COMPLETED, RunStatus.INCOMPLETE):
        # "incomplete": the evaluation ran to its end but some samples errored; the job is done and
        # its result says so per dataset (`incomplete`, `errored`) rather than failing the whole job
        return Outcome(COMPLETED, data, None, output_dir)
    if status in (RunStatus.CANCELLED, RunStatus.INTERRUPTED):
        return Outcome(halt.state, data, halt.error, output_dir)
    if status == RunStatus.TIMEOUT:
        return Outcome(FAILED, data, {"type": "Timeout", "category": ErrorCategory.TIMEOUT,
                                      "message": message.get("error") or "the run reached its time limit"}, output_dir)
    return Outcome(FAILED, data, {"type": "RunFailed", "category": ErrorCategory.RUN,
                                  "message": message.get("error") or f"the run ended with status {status!r}"},
                   output_dir)


def public_config(config: Config, secrets: tuple[str, ...]) -> dict[str, Any]:
    """What the job keeps of its config: the redacted to_dict(), extra_body's secret-named values hidden,
    and any secret quoted elsewhere (say, in a header with an innocent name) scrubbed."""
    return scrub(config.to_dict(redact=True), secrets)  # type: ignore[no-any-return]
