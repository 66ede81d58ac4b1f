"""Hardening of the service against hostile clients and web pages (issue 9)."""

from __future__ import annotations

from collections.abc import Callable

import socket
import time
from pathlib import Path

import httpx
import pytest

from evalsvc.core.errors import ConfigError
from evalsvc.http import create_app
from tests.http._live import Live, service_process
from tests.http.conftest import perf_body


def test_cross_site_requests_are_refused_unless_the_origin_is_allowed(service_factory: Callable[..., Live],
                                                                     tmp_path: Path) -> None:
    service = service_factory()
    own = service.base_url  # http://127.0.0.1:PORT, what a page served by the service itself would send
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1", "https://evil.example:443"):
        for method, path, kwargs in (("POST", "/api/v1/jobs/perf", {"json": perf_body()}),
                                     ("POST", "/api/v1/perf", {"json": perf_body()}),
                                     ("GET", "/api/v1/jobs", {})):
            r = service.client.request(method, path, headers={"Origin": origin}, **kwargs)
            assert r.status_code == 403, (origin, path, r.text)
            assert r.json()["error"]["type"] == "OriginNotAllowed" and "--allow-origin" in r.json()["message"]
    assert service.client.get("/api/v1/jobs").json()["total"] == 0
    assert service.client.get("/health", headers={"Origin": "http://evil.example"}).status_code == 200
    r = service.client.post("/api/v1/jobs/perf", json=perf_body(), headers={"Origin": own})
    assert r.status_code == 202, r.text
    allowed = service_factory(allow_origins=["https://UI.example.org/"], outputs=tmp_path / "other")
    r = allowed.client.post("/api/v1/jobs/perf", json=perf_body(), headers={"Origin": "https://ui.example.org"})
    assert r.status_code == 202, r.text
    assert allowed.client.post("/api/v1/jobs/perf", json=perf_body(),
                               headers={"Origin": "https://other.example.org"}).status_code == 403


def test_allow_origin_values_are_checked(tmp_path: Path) -> None:
    for bad in ("ui.example.org", "ftp://x", "https://x/path"):
        with pytest.raises(ConfigError) as info:
            create_app(outputs=tmp_path, allow_origins=[bad])
        assert info.value.field == "allow_origin"


def _half_head(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
    return sock


def _closed_by_server(sock: socket.socket, within_s: float) -> bool:
    sock.settimeout(within_s)
    try:
        return sock.recv(1024) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_connections_that_never_finish_their_request_head_are_closed(tmp_path: Path) -> None:
    with service_process(tmp_path / "out", "--header-timeout", "1") as live:
        slow = [_half_head(live.base_url) for _ in range(30)]
        try:
            started = time.monotonic()
            assert live.client.get("/health").status_code == 200  # still served meanwhile
            assert all(_closed_by_server(sock, within_s=20) for sock in slow)
            assert time.monotonic() - started >= 0.5  # closed by the deadline, not at once
            # a complete request in time is unaffected, and so is a keep-alive connection between requests
            assert live.client.get("/health").status_code == 200
            time.sleep(1.5)
            assert live.client.get("/health").status_code == 200
        finally:
            for sock in slow:
                sock.close()
        assert "no complete request head within 1s" in (live.stderr_path.read_text() if live.stderr_path else "")


def test_connections_beyond_the_limit_are_closed(tmp_path: Path) -> None:
    with service_process(tmp_path / "out", "--max-connections", "5", "--header-timeout", "60") as live:
        live.client.close()  # its keep-alive connection would count
        held: list[socket.socket] = []
        try:
            for _ in range(5):
                held.append(_half_head(live.base_url))
            extra = _half_head(live.base_url)
            held.append(extra)
            assert _closed_by_server(extra, within_s=10)
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 10
        while True:  # the server notices the closed sockets
            try:
                if httpx.get(live.base_url + "/health", timeout=5, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "/health did not answer after the held connections closed"
            time.sleep(0.1)
