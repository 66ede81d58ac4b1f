"""Hardening of the service against hostile clients and web pages (issue 9)."""

from __future__ import annotations

from collections.abc import Callable

from pathlib import Path

import pytest

from evalsvc.core.errors import ConfigError
from evalsvc.http import create_app
from tests.http._live import Live
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
