"""Headless Chromium on a live service: the system browser (tests/report/_browser.py finds it), driven by
Playwright, every request refused except those to the service under test on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.report._browser import browser_page


@dataclass
class LivePage:
    """A dashboard page and what it did: console errors, uncaught exceptions, refused requests."""

    page: Any
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


@contextmanager
def open_live(base_url: str, path: str = "/ui", width: int = 1280, height: int = 900) -> Iterator[LivePage]:
    """Open `base_url + path` in headless Chromium; only `base_url` and about:/data: URLs (the report frame) load."""
    opened = LivePage(None)

    def allow(url: str) -> bool:
        return url.startswith(base_url + "/") or url == base_url or url.startswith(("about:", "data:"))

    with browser_page(allow, opened.errors, opened.blocked, width=width, height=height) as page:
        opened.page = page
        page.goto(base_url + path, wait_until="load")
        yield opened
