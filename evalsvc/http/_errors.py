"""JSON responses and the exception handlers: every error a client sees is JSON that says what went wrong."""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core._io import dumps
from ..core.errors import (
    BodyTooLarge,
    ConfigError,
    DatasetError,
    EndpointError,
    EvalsvcError,
    MissingExtra,
    UnsupportedMediaType,
)
from ..core.jobs import JobNotFound, JobStateError, QueueFull, RunnerClosed
from ..core.status import ErrorCategory

log = logging.getLogger("evalsvc.service")

RETRY_AFTER_S = 5


class JSONResponse(Response):
    """orjson-rendered JSON: NaN becomes null, never the invalid bare NaN."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return dumps(content, indent=False)
        except TypeError:  # orjson refuses e.g. integers beyond 64 bits; the stdlib writes them
            return json.dumps(content, default=str, allow_nan=False).encode()


def error_response(status: int, message: str, error: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"status": "error", "message": message}
    if error is not None:
        body["error"] = error
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers)


def config_error_response(exc: ConfigError) -> JSONResponse:
    return error_response(400, str(exc), {"type": "ConfigError", **exc.to_dict()})


def exception_handlers(debug: bool, endpoints: list[str]) -> dict[Any, Any]:
    """Starlette exception handlers: core errors to 400/404/409/413/429/501/502/503 (CatchAll answers the rest)."""

    async def on_config_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConfigError)
        return config_error_response(exc)

    async def on_dataset_error(request: Request, exc: Exception) -> Response:
        return error_response(400, str(exc), {"type": type(exc).__name__})

    async def on_endpoint_error(request: Request, exc: Exception) -> Response:
        # the target failed us (refused the connection, rejected the test request): a bad gateway, with the
        # target's own status when it answered, as the job API reports it (`_child.describe_error`)
        error: dict[str, Any] = {"type": type(exc).__name__, "category": ErrorCategory.ENDPOINT}
        if isinstance(getattr(exc, "status", None), int):
            error["status"] = exc.status  # type: ignore[attr-defined]
        return error_response(502, str(exc), error)

    async def on_queue_full(request: Request, exc: Exception) -> Response:
        return error_response(429, str(exc), {"type": "QueueFull"}, headers={"Retry-After": str(RETRY_AFTER_S)})

    async def on_not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, JobNotFound)
        return error_response(404, str(exc), {"type": "JobNotFound", "job_id": exc.job_id})

    async def on_state(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, JobStateError)
        return error_response(409, str(exc), {"type": "JobStateError", "job_id": exc.job_id, "state": exc.state})

    async def on_closed(request: Request, exc: Exception) -> Response:
        return error_response(503, str(exc), {"type": "RunnerClosed"}, headers={"Retry-After": str(RETRY_AFTER_S)})

    async def on_too_large(request: Request, exc: Exception) -> Response:
        return error_response(413, str(exc), {"type": "BodyTooLarge"})

    async def on_missing_extra(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MissingExtra)
        return error_response(501, str(exc), {"type": "MissingExtra", "extra": exc.extra})
    async def on_media_type(request: Request, exc: Exception) -> Response:
        return error_response(415, str(exc), {"type": "UnsupportedMediaType"})

    async def on_evalsvc_error(request: Request, exc: Exception) -> Response:
        return error_response(500, str(exc), {"type": type(exc).__name__})

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return error_response(404, f"no endpoint {request.method} {request.url.path}",
                                  {"type": "NotFound"}, endpoints=endpoints)
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            return error_response(405, f"method {request.method} is not allowed on {request.url.path}"
                                  + (f"; allowed: {allowed}" if allowed else ""),
                                  {"type": "MethodNotAllowed"}, headers=dict(exc.headers or {}))
        return error_response(exc.status_code, exc.detail, {"type": "HTTPError"}, headers=dict(exc.headers or {}))

    return {
        ConfigError: on_config_error,
        DatasetError: on_dataset_error,
        EndpointError: on_endpoint_error,
        QueueFull: on_queue_full,
        JobNotFound: on_not_found,
        JobStateError: on_state,
        RunnerClosed: on_closed,
        BodyTooLarge: on_too_large,
        MissingExtra: on_missing_extra,
        UnsupportedMediaType: on_media_type,
        EvalsvcError: on_evalsvc_error,
        HTTPException: on_http,
    }


class CatchAll:
    """Turns any unexpected exception into a JSON 500 (the traceback only in debug mode).

    Starlette's own last-resort handler re-raises after answering, and uvicorn then drops the keep-alive
    connection; answering here keeps the connection and the process healthy.
    """

    def __init__(self, app: ASGIApp, debug: bool = False) -> None:
        self.app = app
        self.debug = debug

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("internal error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
            if started:
                return  # half an answer is out; the client sees a truncated response
            extra: dict[str, Any] = {}
            if self.debug:
                extra["traceback"] = "".join(traceback.format_exception(exc))
            message = "internal server error" + (f": {type(exc).__name__}: {exc}" if self.debug else "")
            await error_response(500, message, {"type": "InternalError"}, **extra)(scope, receive, send)
