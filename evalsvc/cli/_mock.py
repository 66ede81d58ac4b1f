"""`evalsvc mock`: serve the simulated OpenAI-compatible endpoint (see evalsvc.core.mock)."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import typer

from ..core.mock._config import MockConfig
from ._common import fail
from ._options import config_parameters, config_values


def mock(**options: Any) -> None:
    """Serve a simulated OpenAI-compatible endpoint with set delays, capacity, prefix cache, exact faults and
    fixed answers.

    Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, GET /mock/stats,
    GET /mock/requests, POST /mock/reset. A request header `X-Mock-Fault: <kind>` forces one fault on that request.
    """
    from ..core.errors import EvalsvcError
    from ..core.mock import run_mock

    try:
        cfg = MockConfig(**config_values(MockConfig, options))
        final = run_mock(cfg, on_ready=lambda url: _ready(url, cfg))
    except EvalsvcError as exc:
        fail(exc)
    if final:
        faults = ", ".join(f"{k} {v}" for k, v in final["faults"].items() if v) or "none"
        print(f"evalsvc mock: stopped after {final['requests']} requests (faults: {faults})", file=sys.stderr)


# One option per MockConfig field, generated from its declaration (evalsvc/cli/_options.py).
mock.__signature__ = inspect.Signature(config_parameters(MockConfig))  # type: ignore[attr-defined]


def _ready(url: str, cfg: Any) -> None:
    # The first stdout line is the contract: a parent process reads the URL from it.
    print(f"evalsvc mock: serving on {url}", flush=True)
    faults = ", ".join(f"{k}={v:g}" for k, v in cfg.fault_shares().items() if v) or "none"
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    print(f"evalsvc mock: listening on {cfg.host}:{port}; ttft {cfg.ttft_ms:g} ms, itl {cfg.itl_ms:g} ms, "
          f"{cfg.output_tokens} tokens, faults: {faults}; Ctrl-C stops", flush=True)


def register(app: typer.Typer) -> None:
    """Add the `mock` command to the evalsvc app."""
    app.command("mock")(mock)
