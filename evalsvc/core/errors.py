"""Every error evalsvc raises on purpose.

    EvalsvcError
      ConfigError            bad input: a field and what is wrong with it (CLI exit 2, HTTP 400)
      DatasetError           a dataset cannot be found or read (CLI exit 2, HTTP 400)
      EndpointError          the endpoint under test failed us as a whole (CLI exit 1, HTTP 502)
        EndpointUnreachable  connection refused, DNS failure, ...
        EndpointTimeout      no answer in time
        EndpointStatusError  answered with an error status
      RunCancelled           the run was stopped before it finished
      MissingExtra           a feature whose optional dependencies are not installed (CLI exit 2, HTTP 501)
      ClientStartError       a load-test client process ended before it was ready (CLI exit 1)

A failed *request* during a load test is never an exception: it is a record with an error kind.
"""

from __future__ import annotations


class EvalsvcError(Exception):
    """Base class of every error evalsvc raises on purpose."""

    exit_code = 1


class ConfigError(EvalsvcError, ValueError):
    """A config field is invalid. `field` names it, `reason` says why."""

    exit_code = 2

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class DatasetError(EvalsvcError):
    """A dataset could not be located, downloaded or parsed."""

    exit_code = 2


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


class RunCancelled(EvalsvcError):
    """The run was cancelled before it finished."""


class MissingExtra(EvalsvcError):
    """A feature needs an optional part of evalsvc that is not installed (e.g. evaluation: the `eval` extra).

    `extra` names it; the message says how to install it.
    """

    exit_code = 2

    def __init__(self, extra: str, message: str) -> None:
        self.extra = extra
        super().__init__(message)


class ClientStartError(EvalsvcError):
    """A load-test client process (one shard of `workers` > 1) ended before it was ready to send."""
