"""Why a load-test request failed: the keys of `failures_by_kind` and the `error` of a request record."""

from __future__ import annotations

from ..status import StrEnum


class FailureKind(StrEnum):
    """The fixed failure kinds; an HTTP error status is `http_kind(status)` (`http_<status>`)."""

    TIMEOUT = "timeout"  # no complete answer within the request's timeout
    CONNECTION = "connection_error"  # no connection (refused, unresolvable, connect timeout, proxy refused)
    DISCONNECTED = "disconnected"  # the server closed the connection before answering
    TRUNCATED = "truncated"  # cut mid-response, or a stream that ended without [DONE] or a finish reason
    MALFORMED = "malformed"  # an event or body that is not the JSON the dialect documents
    EMPTY = "empty_output"  # finished without generating output
    STREAM_ERROR = "stream_error"  # an error event inside a 2xx stream
    RESPONSE_ERROR = "response_error"  # an error object as a 2xx body
    CANCELLED = "cancelled"  # in flight when the run was stopped (reported as unfinished, not a failure)
    CLIENT_ERROR = "client_error"  # a fault in the client itself


def http_kind(status: int) -> str:
    """The failure kind of an answer with a non-2xx `status`."""
    return f"http_{status}"
