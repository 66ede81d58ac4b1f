"""What the service tells its operators about each request: a request id, an access log line, metrics.

Every HTTP request gets a request id: the client's `X-Request-ID` when it is sane (1-128 characters of
letters, digits and `._:-`), else a new one. It is echoed in the answer's `X-Request-ID`, attached to every
log record emitted while the request is handled (`request_id`), written in the access log line, and stored
with any job the request submits (the first line of the job's log says it too).

Logs are readable text with UTC timestamps (`text`, the default) or one JSON object per line (`json`);
`log_config()` builds the logging configuration uvicorn is started with, so its own loggers use the same
format. Nothing here logs a header or a body: the Authorization header and API keys never reach a log.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.errors import ConfigError

LOG_FORMATS = ("text", "json")
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("evalsvc_request_id", default=None)
access_log = logging.getLogger("evalsvc.access")

Observer = Callable[[str, str, int, float], None]
"""Told of each answered request: (method, route template, status, seconds)."""


def current_request_id() -> str | None:
    """The id of the request being handled in this context (None outside a request)."""
    return _request_id.get()


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID if it is sane, else a new random id (32 hex digits)."""
    for name, value in headers:
        if name == b"x-request-id":
            value = value.strip()
            if _SANE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


def route_template(routes: list[Route], scope: Scope) -> str:
    """The path template of the route that serves `scope` ("/api/v1/jobs/{job_id}"), or "other": metric
    labels stay a small fixed set whatever paths clients ask for."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route.path
        if match is Match.PARTIAL and partial is None:
            partial = route.path
    return partial or "other"


class Observe:
    """Outermost middleware: the request id (context, answer header), one access log line, the observer."""

    def __init__(self, app: ASGIApp, routes: list[Route], observer: Observer | None = None) -> None:
        self.app = app
        self.routes = routes
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope["headers"])
        scope.setdefault("state", {})["request_id"] = request_id
        token = _request_id.set(request_id)
        status = 500
        started = time.perf_counter()
        header = (b"x-request-id", request_id.encode("ascii"))

        async def tagged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        try:
            await self.app(scope, receive, tagged_send)
        finally:
            elapsed = time.perf_counter() - started
            template = route_template(self.routes, scope)
            client = scope.get("client")
            access_log.info("%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed * 1000,
                            extra={"method": scope["method"], "path": scope["path"], "route": template,
                                   "status": status, "duration_ms": round(elapsed * 1000, 3),
                                   "client": f"{client[0]}:{client[1]}" if client else None})
            if self.observer is not None:
                self.observer(scope["method"], template, status, elapsed)
            _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Gives every record a `request_id` attribute: the current request's, else "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = _request_id.get() or "-"
        return True


_EXTRA_FIELDS = ("method", "path", "route", "status", "duration_ms", "client", "job_id")


def _utc(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC), level, logger, message, request_id, the access fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {"ts": _utc(record), "level": record.levelname, "logger": record.name,
                                "message": record.getMessage()}
        request_id = getattr(record, "request_id", None)
        if request_id and request_id != "-":
            data["request_id"] = request_id
        for name in _EXTRA_FIELDS:
            if name in record.__dict__:
                data[name] = record.__dict__[name]
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


class TextFormatter(logging.Formatter):
    """`2026-01-02T03:04:05.678Z INFO    evalsvc.access [request-id] message` (UTC)."""

    def format(self, record: logging.LogRecord) -> str:
        line = (f"{_utc(record)} {record.levelname:<7} {record.name} [{getattr(record, 'request_id', '-')}] "
                f"{record.getMessage()}")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record is emitted (not the stream it was at configuration):
    a caller that swaps stderr (a test capturing it, a supervisor) never leaves the handler on a closed file."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def check_log_format(value: str) -> str:
    if value not in LOG_FORMATS:
        raise ConfigError("log_format", f"must be one of {', '.join(LOG_FORMATS)}; got {value!r}")
    return value


def log_config(log_format: str = "text", debug: bool = False) -> dict[str, Any]:
    """The logging.config.dictConfig for uvicorn and evalsvc: one stderr handler in `log_format`.

    uvicorn's own access log is off: the service writes its own (logger evalsvc.access), which knows the
    request id and the route.
    """
    check_log_format(log_format)
    level = "DEBUG" if debug else "INFO"
    formatter = f"{__name__}.JsonFormatter" if log_format == "json" else f"{__name__}.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": f"{__name__}.RequestIdFilter"}},
        "formatters": {"evalsvc": {"()": formatter}},
        "handlers": {"default": {"()": f"{__name__}.StderrHandler", "formatter": "evalsvc",
                                 "filters": ["request_id"]}},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "evalsvc": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }
