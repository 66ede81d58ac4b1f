"""The eval preflight relays no target content: the status and a short reason only (issue 9.7)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evalsvc.core.config import EvalConfig
from evalsvc.core.errors import EndpointStatusError
from evalsvc.core.eval._preflight import preflight

PRIVATE = "root:x:0:0:root:/root:/bin/bash internal-admin-page"


def _server(status: int, body: bytes, content_type: str) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@contextmanager
def _serving(status: int, body: bytes, content_type: str = "text/html") -> Iterator[str]:
    server = _server(status, body, content_type)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


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
