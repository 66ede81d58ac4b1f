"""run_service: serve create_app() with uvicorn, stopping running jobs in order when the server is told to stop."""

from __future__ import annotations

import copy
import ipaddress
import sys
from types import FrameType
from typing import Any

import uvicorn
import uvicorn.config

from ..core.jobs import JobRunner
from ._app import create_app

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 9000


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


def run_service(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, debug: bool = False, **options: Any) -> None:
    """Serve the evalsvc HTTP service until interrupted (Ctrl-C / SIGTERM stop running jobs cleanly first).

    Args:
        host: interface to listen on ("0.0.0.0": all; a warning is printed when that is done without a token).
        port: TCP port.
        debug: debug logging and tracebacks in 500 answers.
        **options: create_app() keywords: outputs, token, data_roots, dataset_dir, max_queued, eval_concurrency,
            perf_concurrency, cancel_grace_s, targets.

    Raises:
        RunnerLocked: another service already uses the same outputs root.
        ConfigError: an option or EVALSVC_* variable is invalid.
    """
    app = create_app(debug=debug, **options)
    service = app.state.service
    settings = service.settings
    service.runner.check_unlocked()
    if not is_loopback(host) and not settings.token:
        print(f"WARNING: evalsvc service listens on {host}:{port}, beyond this machine, without a token: "
              "anyone who can reach it can run jobs. Set --token or EVALSVC_TOKEN.", file=sys.stderr)
    print(f"evalsvc service: outputs root {service.policy.outputs_root}, "
          f"auth {'bearer token' if settings.token else 'none'}, queue {settings.max_queued}, "
          f"eval concurrency {settings.eval_concurrency}, perf concurrency {settings.perf_concurrency}",
          file=sys.stderr)
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["evalsvc"] = {"handlers": ["default"], "level": "DEBUG" if debug else "INFO",
                                        "propagate": False}
    config = uvicorn.Config(app, host=host, port=port, log_level="debug" if debug else "info",
                            log_config=log_config, lifespan="on",
                            timeout_graceful_shutdown=int(settings.cancel_grace_s) + 15)
    server = _Server(config, service.runner)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the captured Ctrl-C after a clean shutdown
        pass
