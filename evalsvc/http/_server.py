"""run_service: serve create_app() with uvicorn, stopping running jobs in order when the server is told to stop."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import sys
from types import FrameType
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..core.errors import ConfigError
from ..core.jobs import JobRunner
from ._app import create_app
from ._observe import check_log_format, log_config

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 9000
DEFAULT_HEADER_TIMEOUT_S = 10.0
"""Seconds a connection may take to send a complete request head (from connecting, or after an answer)."""
MAX_CONNECTIONS_CAP = 1000

log = logging.getLogger("evalsvc.service")


def default_max_connections() -> int:
    """Open connections served at once: half the descriptor limit (the rest is for jobs, logs and the
    database), at most MAX_CONNECTIONS_CAP."""
    try:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError):
        soft = 1024
    if soft == resource.RLIM_INFINITY:
        soft = 2 * MAX_CONNECTIONS_CAP
    return max(8, min(MAX_CONNECTIONS_CAP, soft // 2))


def guarded_protocol(header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
                     max_connections: int | None = None) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing connections that are slow to send a request head or too many.

    uvicorn keeps a connection that never completes its request head forever (its keep-alive timeout only
    runs between requests), so a few hundred half-sent requests exhaust the descriptors before any
    authentication runs. Here a connection must complete each request head within `header_timeout_s` of
    connecting or of the previous answer, and connections beyond `max_connections` are closed at once.
    """
    limit = max_connections if max_connections is not None else default_max_connections()

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limit:
                log.warning("closing a connection: %d open, the limit is %d (--max-connections)",
                            len(self.connections) - 1, limit)
                transport.close()
                return
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE:  # the head is still incomplete
                self._arm_head_timer()
            else:
                self._cancel_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._cancel_head_timer()  # the keep-alive timeout covers an idle connection; data re-arms

        def _arm_head_timer(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                log.info("closing a connection from %s: no complete request head within %gs (--header-timeout)",
                         "{}:{}".format(*self.client) if self.client else "?", header_timeout_s)
                self.transport.close()

    return GuardedH11Protocol


class _Server(uvicorn.Server):
    """uvicorn waits for open connections before the lifespan shutdown; blocking requests wait for their jobs.
    So jobs are told to stop as soon as the signal arrives, and the waits end."""

    def __init__(self, config: uvicorn.Config, runner: JobRunner) -> None:
        super().__init__(config)
        self._runner = runner

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._runner.begin_shutdown_threadsafe()


def is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run_service(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, debug: bool = False, *,
                header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S, max_connections: int | None = None,
                log_format: str = "text", **options: Any) -> None:
    """Serve the evalsvc HTTP service until interrupted (Ctrl-C / SIGTERM stop running jobs cleanly first).

    Args:
        host: interface to listen on ("0.0.0.0": all; a warning is printed when that is done without a token).
        port: TCP port.
        debug: debug logging and tracebacks in 500 answers.
        header_timeout_s: seconds a connection may take to send a complete request head; slower ones are closed.
        max_connections: open connections served at once; more are closed at once (None: half the
            descriptor limit, at most 1000).
        log_format: "text" (UTC timestamps, the request id in brackets) or "json" (one object per line).
        **options: create_app() keywords: outputs, token, data_roots, dataset_dir, max_queued, eval_concurrency,
            perf_concurrency, cancel_grace_s, targets.

    Raises:
        RunnerLocked: another service already uses the same outputs root.
        ConfigError: an option or EVALSVC_* variable is invalid.
    """
    check_log_format(log_format)
    app = create_app(debug=debug, **options)
    service = app.state.service
    settings = service.settings
    service.runner.check_unlocked()
    if not header_timeout_s > 0:
        raise ConfigError("header_timeout", f"must be > 0 seconds, got {header_timeout_s}")
    if max_connections is not None and max_connections < 1:
        raise ConfigError("max_connections", f"must be >= 1, got {max_connections}")
    if not is_loopback(host) and not settings.token:
        print(f"WARNING: evalsvc service listens on {host}:{port}, beyond this machine, without a token: "
              "anyone who can reach it can run jobs. Set --token or EVALSVC_TOKEN.", file=sys.stderr)
    print(f"evalsvc service: outputs root {service.policy.outputs_root}, "
          f"auth {'bearer token' if settings.token else 'none'}, queue {settings.max_queued}, "
          f"eval concurrency {settings.eval_concurrency}, perf concurrency {settings.perf_concurrency}",
          file=sys.stderr)
    config = uvicorn.Config(app, host=host, port=port, log_level="debug" if debug else "info",
                            log_config=log_config(log_format, debug), access_log=False, lifespan="on",
                            timeout_graceful_shutdown=int(settings.cancel_grace_s) + 15,
                            http=guarded_protocol(header_timeout_s, max_connections))
    server = _Server(config, service.runner)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the captured Ctrl-C after a clean shutdown
        pass
