"""The body of a job's worker process: run the engine, relay its progress, send back its result.

The service starts a child calling `main(CONTROL_FD, EVENTS_FD)` (core/_proc.py's `start_piped`) in a new
session (its own process group), with stdout and stderr going to the job's log file. A plain subprocess rather
than multiprocessing's spawn: spawn re-imports the parent's __main__ in the child, which breaks services
started from scripts without a __main__ guard.

CONTROL_FD (service -> worker) is a pickle channel carrying one `Init` message, then nothing: it is the
lifeline, reaching EOF when the service process goes away (even on kill -9), and the worker then stops its
run as if cancelled, so no load test outlives the service that started it. The API key travels only in Init.

EVENTS_FD (worker -> service) is an orjson channel of `Message`s (below).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, TypedDict

from ..status import ErrorCategory, RunStatus
from .._proc import Channel, adopt_sys_path, signal_group, watch_lifeline

PROGRESS_INTERVAL_S = 0.25
"""At most one progress message per key per this interval: a 256-way load test must not flood the pipe."""
ORPHAN_KILL_AFTER_S = 60.0


class Init(NamedTuple):
    """The one message on the control channel."""

    target: str
    """"module:function" taking (config, progress=callback)."""
    config: Any
    sys_path: list[str]


class ErrorInfo(TypedDict, total=False):
    type: str
    message: str
    category: str  # "input" | "endpoint" | "cancelled" | "internal"
    field: str
    reason: str
    status: int
    traceback: str


class ResultMessage(TypedDict):
    type: Literal["result"]
    status: str
    error: str | None
    output_dir: str | None
    data: dict[str, Any]


class ErrorMessage(TypedDict):
    type: Literal["error"]
    error: ErrorInfo


class StoppedMessage(TypedDict):
    """The engine raised KeyboardInterrupt (it was told to stop)."""

    type: Literal["stopped"]


Message = dict[str, Any] | ResultMessage | ErrorMessage | StoppedMessage
"""What the events channel carries: the engine's own events ({"type": "progress" | "log" | ...},
progress throttled), then one ResultMessage, ErrorMessage or StoppedMessage."""


def main(control_fd: int, events_fd: int) -> None:
    """Entry point of the worker process.

    Args:
        control_fd: read end of the control pipe (the init message, then EOF when the service is gone).
        events_fd: write end of the message pipe to the service.
    """
    events = Channel(events_fd, "json")
    control = Channel(control_fd, "pickle")
    # A service started in the background may have SIGINT ignored, and that would be inherited.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sender = _Sender(events)
    try:
        target, config, sys_path = control.recv()
    except (EOFError, OSError):
        return  # the service went away before it told us what to run
    except BaseException as exc:
        sender.send({"type": "error", "error": describe_error(exc)})
        return
    adopt_sys_path(sys_path)
    watch_lifeline(control.fd, _parent_gone)

    try:
        func = _load(target)
        result = func(config, progress=sender.progress)
        sender.flush()
        sender.send({"type": "result", "status": str(getattr(result, "status", RunStatus.COMPLETED)),
                     "error": getattr(result, "error", None), "output_dir": getattr(result, "output_dir", None),
                     "data": result.to_dict()})
    except KeyboardInterrupt:
        sender.flush()
        sender.send({"type": "stopped"})
    except BaseException as exc:  # everything goes back to the service as a message, never lost
        sender.flush()
        sender.send({"type": "error", "error": describe_error(exc)})
        if not _is_user_error(exc):
            traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def describe_error(exc: BaseException) -> ErrorInfo:
    """A JSON-able description of an exception: type name, message, field/reason for config errors."""
    from ..errors import ConfigError, EvalsvcError

    out: ErrorInfo = {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}
    if isinstance(exc, ConfigError):
        out["field"], out["reason"] = exc.field, exc.reason
    if isinstance(exc, EvalsvcError):
        out["category"] = _category(exc)
    else:
        out["category"] = ErrorCategory.INTERNAL
        out["traceback"] = "".join(traceback.format_exception(exc))
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        out["status"] = status
    return out


def _category(exc: BaseException) -> ErrorCategory:
    from ..errors import ConfigError, DatasetError, EndpointError, MissingExtra

    if isinstance(exc, (ConfigError, DatasetError, MissingExtra)):
        return ErrorCategory.INPUT
    if isinstance(exc, EndpointError):
        return ErrorCategory.ENDPOINT
    return ErrorCategory.INTERNAL


def _is_user_error(exc: BaseException) -> bool:
    from ..errors import EvalsvcError

    return isinstance(exc, EvalsvcError)


def _load(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _parent_gone() -> None:
    # The service is gone: stop the run the way a cancel does (it keeps what it measured), then make sure.
    # The worker leads its own session (start_piped(new_session=True)): its group is everything it started.
    signal_group(os.getpid(), signal.SIGINT)
    time.sleep(ORPHAN_KILL_AFTER_S)
    signal_group(os.getpid(), signal.SIGKILL)


class _Sender:
    """Sends messages to the service; coalesces progress events so the newest one per key wins."""

    def __init__(self, conn: Channel, interval: float = PROGRESS_INTERVAL_S) -> None:
        self._conn = conn
        self._interval = interval
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, Any]] = {}
        self._last = 0.0
        self._broken = False

    def progress(self, event: dict[str, Any]) -> None:
        """The engines' progress callback: may be called from any thread, at any rate."""
        if not isinstance(event, dict):
            return
        with self._lock:
            if event.get("type", "progress") == "progress":
                key = str(event.get("part") or "")
                self._pending[key] = event
                now = time.monotonic()
                if now - self._last >= self._interval:
                    self._last = now
                    self._flush_locked()
            else:
                self._flush_locked()
                self._send_locked(event)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def send(self, message: Message) -> None:
        with self._lock:
            self._send_locked(message)

    def _flush_locked(self) -> None:
        pending, self._pending = self._pending, {}
        for event in pending.values():
            self._send_locked(event)

    def _send_locked(self, message: Message) -> None:
        if self._broken:
            return
        try:
            try:
                self._conn.send(message)
            except TypeError as exc:  # e.g. an integer beyond 64 bits: say so rather than lose the message
                self._conn.send({"type": "error", "error": {
                    "type": "SerializationError", "category": ErrorCategory.INTERNAL,
                    "message": f"could not encode a {message.get('type')!r} message as JSON: {exc}"}})
        except OSError:
            self._broken = True  # the service is gone; the lifeline watcher stops the run

