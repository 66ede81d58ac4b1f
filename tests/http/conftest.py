"""Fixtures for the HTTP service tests: the app on a real uvicorn server with stand-in engines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from evalsvc.http import create_app
from tests.http._live import FAKE_TARGETS, Live, serve_app

PERF_URL = "http://127.0.0.1:9/v1/chat/completions"
EVAL_URL = "http://127.0.0.1:9/v1"


@pytest.fixture
def service_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Live]]:
    """Start the service (uvicorn thread, 127.0.0.1) with create_app(**options); fake engines by default.

    The outputs root is `tmp_path / "outputs"` unless given. Each server stops when the test ends.
    """
    for var in ("EVALSVC_TOKEN", "EVALSVC_OUTPUTS", "EVALSVC_DATA_ROOTS", "EVALSVC_MAX_QUEUE",
                "EVALSVC_EVAL_CONCURRENCY", "EVALSVC_DATASET_DIR"):
        monkeypatch.delenv(var, raising=False)
    with ExitStack() as stack:
        def start(**options: Any) -> Live:
            options.setdefault("outputs", tmp_path / "outputs")
            options.setdefault("targets", FAKE_TARGETS)
            options.setdefault("cancel_grace_s", 5.0)
            app = create_app(**options)
            return stack.enter_context(serve_app(app, token=options.get("token")))

        yield start


@pytest.fixture
def service(service_factory: Callable[..., Live]) -> Live:
    """The service with default settings and fake engines."""
    return service_factory()


def perf_body(**fields: Any) -> dict[str, Any]:
    return {"model": "fake", "url": PERF_URL, "number": 10, "parallel": 2, "dataset": "random", **fields}


def eval_body(**fields: Any) -> dict[str, Any]:
    return {"model": "fake", "api_url": EVAL_URL, "datasets": ["gsm8k"], "limit": 3, **fields}
