"""Every error evalsvc raises on purpose, with the CLI exit code and the HTTP status each one means.

    EvalsvcError              base class                                            exit 1
      ConfigError             bad input: a field and what is wrong with it           exit 2, HTTP 400
      DatasetError            a dataset cannot be found or read                      exit 2, HTTP 400
      EndpointError           the endpoint under test failed us as a whole           exit 1, HTTP 502
        EndpointUnreachable   connection refused, DNS failure, ...
        EndpointTimeout       no answer in time
        EndpointStatusError   answered with an error status (`status` holds it)
      ClientProcessError      a perf client process died (`stats`: what the others measured)   exit 1
        ClientStartError      ... before it was ready to send                        exit 1
      MissingExtra            an optional part of evalsvc is not installed           exit 2, HTTP 501
      BodyTooLarge            an HTTP request body over the service's limit          HTTP 413
      UnsupportedMediaType    an HTTP request body not declared as application/json   HTTP 415
      QueueFull               the service's job queue is full                        HTTP 429
      JobNotFound             no job has this id                                     HTTP 404
      JobStateError           the operation does not apply to the job's state        HTTP 409
      RunnerClosed            the service is shutting down                           HTTP 503
      RunnerLocked            another service runs jobs from the same outputs root   exit 1

A run that is stopped (Ctrl-C, a stop/cancel event, its time limit) is not an exception: it returns its
result with status interrupted, cancelled or timeout (see status.py, which also holds the exit-code table).
A failed *request* during a load test is never an exception either: it is a record with an error kind.
"""

from __future__ import annotations

from typing import Any

from .status import ExitCode


class EvalsvcError(Exception):
    """Base class of every error evalsvc raises on purpose."""

    exit_code: int = ExitCode.FAILED


class ConfigError(EvalsvcError, ValueError):
    """A config field is invalid. `field` names it, `reason` says why."""

    exit_code = ExitCode.USAGE

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class DatasetError(EvalsvcError):
    """A dataset could not be located, downloaded or parsed."""

    exit_code = ExitCode.USAGE


class EndpointError(EvalsvcError):
    """The endpoint under test cannot be used."""


class EndpointUnreachable(EndpointError):
    """The endpoint refused the connection or its host does not resolve."""


class EndpointTimeout(EndpointError):
    """The endpoint did not answer in time."""


class EndpointStatusError(EndpointError):
    """The endpoint answered with an error status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ClientProcessError(EvalsvcError):
    """A client process of a sharded load test died; `stats` holds what the others measured (or None)."""

    def __init__(self, message: str, stats: Any = None) -> None:
        super().__init__(message)
        self.stats = stats


class ClientStartError(ClientProcessError):
    """A load-test client process (one shard of `workers` > 1) ended before it was ready to send."""


class MissingExtra(EvalsvcError):
    """A feature needs an optional part of evalsvc that is not installed (e.g. evaluation: the `eval` extra).

    `extra` names it; the message says how to install it.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, extra: str, message: str) -> None:
        self.extra = extra
        super().__init__(message)


class BodyTooLarge(EvalsvcError):
    """The request body exceeds the service's limit (HTTP 413)."""


class UnsupportedMediaType(EvalsvcError):
    """The request body is not declared as application/json (HTTP 415)."""


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
