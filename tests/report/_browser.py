"""Headless Chromium for the report tests: the system browser (Debian's `chromium`), driven by Playwright.

Playwright never downloads a browser here: it launches `/usr/bin/chromium` (or `chromium` on PATH, or
$EVALSVC_CHROMIUM). Without it the tests skip on a developer's machine and FAIL under CI (CI=true), so a CI
that lost its browser cannot pass silently. `.ci/run` installs it (`apt-get install -y chromium`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _missing(why: str) -> None:
    message = f"{why}: the report's browser tests need it (apt-get install -y chromium; pip install -e '.[dev]')"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def chromium_path() -> str:
    for candidate in (os.environ.get("EVALSVC_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    _missing("no Chromium found (/usr/bin/chromium)")
    raise AssertionError("unreachable")


@dataclass
class OpenedPage:
    """A report page opened from disk, and what it tried to do."""

    page: Any
    errors: list[str] = field(default_factory=list)
    """Console errors and uncaught exceptions."""
    blocked: list[str] = field(default_factory=list)
    """Requests to anything but a file:// URL (all refused)."""

    def plots(self) -> list[dict[str, Any]]:
        """Every Plotly chart in the page: id, trace count and names, shapes, whether it rendered."""
        result: list[dict[str, Any]] = self.page.evaluate("""() =>
            Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
                id: el.id,
                traces: (el.data || []).length,
                names: (el.data || []).map(t => t.name),
                points: (el.data || []).reduce((n, t) => n + ((t.x && t.x.length) || 0), 0),
                shapes: ((el.layout && el.layout.shapes) || []).map(s => ({x0: s.x0, y0: s.y0, type: s.type})),
                rendered: el.querySelector('.plot-container .main-svg') !== null,
            }))""")
        return result


@contextmanager
def browser_page(allow: Callable[[str], bool], errors: list[str], blocked: list[str], *, width: int = 1280,
                 height: int = 900, offline: bool = False) -> Iterator[Any]:
    """A new page in headless Chromium (a throw-away profile): console errors and uncaught exceptions go to
    `errors`; a request whose URL `allow` refuses is aborted and its URL added to `blocked`."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
        raise
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="evalsvc-chromium-") as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height}, offline=offline)
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            def route(r: Any) -> None:
                if allow(r.request.url):
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            context.route("**/*", route)
            yield page
        finally:
            context.close()


@contextmanager
def open_report(path: Path) -> Iterator[OpenedPage]:
    """Open `path` in headless Chromium with the network refused; wait until Plotly has drawn."""
    errors: list[str] = []
    blocked: list[str] = []
    with browser_page(lambda url: url.startswith("file://"), errors, blocked, offline=True) as page:
        opened = OpenedPage(page, errors, blocked)
        page.goto(path.resolve().as_uri(), wait_until="load")
        page.wait_for_function("() => window.Plotly !== undefined && "
                               "document.querySelectorAll('.js-plotly-plot .main-svg').length > 0",
                               timeout=30_000)
        yield opened
