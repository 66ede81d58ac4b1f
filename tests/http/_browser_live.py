"""Headless Chromium on a live service: the system browser (tests/report/_browser.py finds it), driven by
Playwright, every request refused except those to the service under test on 127.0.0.1."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.report._browser import CHROMIUM_ARGS, _missing, chromium_path


@dataclass
class LivePage:
    """A dashboard page and what it did: console errors, uncaught exceptions, refused requests."""

    page: Any
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


@contextmanager
def open_live(base_url: str, path: str = "/ui", width: int = 1280, height: int = 900) -> Iterator[LivePage]:
    """Open `base_url + path` in headless Chromium; only `base_url` and about:/data: URLs (the report frame) load."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
        raise
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="evalsvc-chromium-") as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height})
        try:
            page = context.new_page()
            opened = LivePage(page)
            page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: opened.errors.append(str(e)))

            def route(r: Any) -> None:
                url = r.request.url
                if url.startswith(base_url + "/") or url == base_url or url.startswith(("about:", "data:")):
                    r.continue_()
                else:
                    opened.blocked.append(url)
                    r.abort()

            context.route("**/*", route)
            page.goto(base_url + path, wait_until="load")
            yield opened
        finally:
            context.close()
