"""The eval preflight relays no target content: the status and a short reason only (issue 9.7)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from evalsvc.core.config import EvalConfig
from evalsvc.core.errors import EndpointStatusError
from evalsvc.core.eval._preflight import preflight
from tests._servers import QuietHandler, serve_http

PRIVATE = "root:x:0:0:root:/root:/bin/bash internal-admin-page"


@contextmanager
def _serving(status: int, body: bytes, content_type: str = "text/html") -> Iterator[str]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            self.read_body()
            self.answer(body, status, content_type)

    with serve_http(Handler) as base:
        yield f"{base}/v1"


def _fail(api_url: str, **kw: object) -> str:
    config = EvalConfig(model="m", api_url=api_url, datasets=["gsm8k"], retries=0, api_key="sk-secret-abcdefgh1234",
                        **kw)  # type: ignore[arg-type]
    with pytest.raises(EndpointStatusError) as info:
        asyncio.run(preflight(config))
    return str(info.value)


@pytest.mark.parametrize("status", [200, 404, 500])
def test_a_non_json_answer_is_not_relayed(status: int) -> None:
    with _serving(status, f"<html>{PRIVATE}</html>".encode()) as url:
        message = _fail(url)
    assert PRIVATE[:20] not in message and "root:x" not in message
    assert "non-JSON body of" in message


def test_a_json_error_gives_its_message_short_and_masked() -> None:
    body = ('{"error": {"message": "Incorrect API key provided: sk-secret-abcdefgh1234. ' + "x" * 500 +
            '", "internal": "' + PRIVATE + '"}}').encode()
    with _serving(401, body, "application/json") as url:
        message = _fail(url)
    assert "HTTP 401" in message and "Incorrect API key provided: ***" in message
    assert "sk-secret" not in message and "root:x" not in message
    assert len(message) < 400
