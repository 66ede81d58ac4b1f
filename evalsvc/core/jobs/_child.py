"""The body of a job's worker process: run the engine, relay its progress, send back its result.

The service starts `python -m evalsvc.core.jobs._child EVENTS_FD CONTROL_FD` in a new session (its own
process group), with stdout and stderr going to the job's log file. A plain subprocess rather than
multiprocessing's spawn: spawn re-imports the parent's __main__ in the child, which breaks services started
from scripts without a __main__ guard.

CONTROL_FD (service -> worker) carries one pickled (target, config, sys_path) message, then nothing: it
reaches EOF when the service process goes away (even on kill -9), and the worker then stops its run as if
cancelled, so no load test outlives the service that started it. The API key travels only in that message.

EVENTS_FD (worker -> service) carries orjson messages:
    {"type": "progress", ...} / {"type": "log", ...}   the engine's own events (progress throttled)
    {"type": "result", "status", "error", "output_dir", "data": result.to_dict()}
    {"type": "error", "error": {"type", "message", "category", "field"?, "reason"?, "traceback"?}}
    {"type": "stopped"}                                  the engine raised KeyboardInterrupt
"""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any, Callable

import orjson

PROGRESS_INTERVAL_S = 0.25
"""At most one progress message per key per this interval: a 256-way load test must not flood the pipe."""
ORPHAN_KILL_AFTER_S = 60.0


def main(events_fd: int, control_fd: int) -> None:
    """Entry point of the worker process.

    Args:
        events_fd: write end of the message pipe to the service.
        control_fd: read end of the control pipe (the init message, then EOF when the service is gone).
    """
    events = Connection(events_fd, readable=False)
    control = Connection(control_fd, writable=False)
    # A service started in the background may have SIGINT ignored, and that would be inherited.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sender = _Sender(events)
    try:
        target, config, sys_path = pickle.loads(control.recv_bytes())
    except (EOFError, OSError, pickle.UnpicklingError):
        return  # the service went away before it told us what to run
    except BaseException as exc:
        sender.send({"type": "error", "error": describe_error(exc)})
        return
    sys.path[:] = list(sys_path) + [p for p in sys.path if p not in sys_path]
    threading.Thread(target=_watch_control, args=(control,), name="lifeline", daemon=True).start()

    try:
        func = _load(target)
        result = func(config, progress=sender.progress)
        sender.flush()
        sender.send({"type": "result", "status": getattr(result, "status", "completed"),
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


def describe_error(exc: BaseException) -> dict[str, Any]:
    """A JSON-able description of an exception: type name, message, field/reason for config errors."""
    from ..errors import ConfigError, EvalsvcError

    out: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}
    if isinstance(exc, ConfigError):
        out["field"], out["reason"] = exc.field, exc.reason
    if isinstance(exc, EvalsvcError):
        out["category"] = _category(exc)
    else:
        out["category"] = "internal"
        out["traceback"] = "".join(traceback.format_exception(exc))
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        out["status"] = status
    return out


def _category(exc: BaseException) -> str:
    from ..errors import ConfigError, DatasetError, EndpointError

    if isinstance(exc, (ConfigError, DatasetError)):
        return "input"
    if isinstance(exc, EndpointError):
        return "endpoint"
    return "internal"


def _is_user_error(exc: BaseException) -> bool:
    from ..errors import EvalsvcError

    return isinstance(exc, EvalsvcError)


def _load(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _watch_control(control: Connection) -> None:
    try:
        while True:
            control.recv_bytes()
    except (EOFError, OSError):
        pass
    # The service is gone: stop the run the way a cancel does (it keeps what it measured), then make sure.
    try:
        os.killpg(os.getpgrp(), signal.SIGINT)
    except OSError:
        os.kill(os.getpid(), signal.SIGINT)
    time.sleep(ORPHAN_KILL_AFTER_S)
    try:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    except OSError:
        os.kill(os.getpid(), signal.SIGKILL)


class _Sender:
    """Sends messages to the service; coalesces progress events so the newest one per key wins."""

    def __init__(self, conn: Connection, interval: float = PROGRESS_INTERVAL_S) -> None:
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

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._send_locked(message)

    def _flush_locked(self) -> None:
        pending, self._pending = self._pending, {}
        for event in pending.values():
            self._send_locked(event)

    def _send_locked(self, message: dict[str, Any]) -> None:
        if self._broken:
            return
        try:
            data = orjson.dumps(message, default=str, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        except TypeError as exc:  # e.g. an integer beyond 64 bits: say so rather than lose the message
            data = orjson.dumps({"type": "error", "error": {
                "type": "SerializationError", "category": "internal",
                "message": f"could not encode a {message.get('type')!r} message as JSON: {exc}"}})
        try:
            self._conn.send_bytes(data)
        except (BrokenPipeError, OSError):
            self._broken = True  # the service is gone; the lifeline watcher stops the run


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
