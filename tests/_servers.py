"""Real servers for tests, on 127.0.0.1.

`start_mock(**options)` runs `python -m evalsvc mock --port 0 ...` in its own process, so the
server and the client under test do not share a GIL or an event loop: timings measured by the client
are the server's, not the test process's scheduling.

    with start_mock(ttft_ms=0, itl_ms=0, error_500=0.1) as mock:
        httpx.post(mock.chat_url, json={...})
        assert mock.stats()["faults"]["error_500"] == ...

`serve_http(Handler)` serves a test's own `QuietHandler` subclass (canned answers, a stub proxy, a hub)
on a thread of the test process, for a test that needs one exact answer rather than a mock endpoint.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Loopback only: never let an http_proxy setting route test traffic elsewhere.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class MockHandle:
    """A running mock server process."""

    base_url: str
    """OpenAI base URL, e.g. http://127.0.0.1:40123/v1."""
    process: subprocess.Popen[str]
    stderr_path: Path
    """The server's stderr, readable until the `start_mock` block ends."""

    @property
    def root_url(self) -> str:
        """http://127.0.0.1:PORT (for /health and /mock/*)."""
        return self.base_url.removesuffix("/v1")

    @property
    def port(self) -> int:
        return int(self.root_url.rsplit(":", 1)[1])

    @property
    def chat_url(self) -> str:
        return self.base_url + "/chat/completions"

    @property
    def completions_url(self) -> str:
        return self.base_url + "/completions"

    @property
    def models_url(self) -> str:
        return self.base_url + "/models"

    def stats(self) -> dict[str, Any]:
        """GET /mock/stats: requests served and faults injected, by kind."""
        return _get_json(self.root_url + "/mock/stats")

    def reset(self) -> dict[str, Any]:
        """POST /mock/reset: clear the counters and restart the fault plan from its first slot."""
        request = urllib.request.Request(self.root_url + "/mock/reset", data=b"", method="POST")
        with _OPENER.open(request, timeout=10) as response:
            return json.loads(response.read())


def _get_json(url: str) -> dict[str, Any]:
    with _OPENER.open(url, timeout=10) as response:
        return json.loads(response.read())


def mock_args(options: dict[str, Any], tmp_dir: Path) -> list[str]:
    """CLI flags for MockConfig-style keyword options (answers given as rows are written to a file)."""
    args: list[str] = []
    for key, value in options.items():
        if value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        elif key == "answers" and not isinstance(value, (str, os.PathLike)):
            path = tmp_dir / "answers.jsonl"
            path.write_text("".join(json.dumps(row) + "\n" for row in value), encoding="utf-8")
            args += [flag, str(path)]
        else:
            args += [flag, str(value)]
    return args


@contextmanager
def start_mock(**options: Any) -> Iterator[MockHandle]:
    """Run the simulated endpoint in a subprocess until the block ends.

    Args:
        **options: MockConfig fields (ttft_ms=0, error_500=0.1, answers=[{"match": .., "reply": ..}], ...),
            passed as `evalsvc mock` flags. host and port are fixed to 127.0.0.1 and a free port.

    Yields:
        A MockHandle with base_url, chat_url, completions_url, stats() and reset().

    Raises:
        RuntimeError: the server exited or did not answer /health in time (its stderr is quoted).
    """
    with ExitStack() as stack:
        tmp_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="evalsvc-mock-")))
        err_path = tmp_dir / "stderr.txt"
        err = stack.enter_context(open(err_path, "w"))
        cmd = [sys.executable, "-m", "evalsvc", "mock", "--host", "127.0.0.1", "--port", "0",
               *mock_args(options, tmp_dir)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)
        try:
            base_url = _read_url(proc, err_path)
            handle = MockHandle(base_url=base_url, process=proc, stderr_path=err_path)
            _wait_healthy(handle, proc, err_path)
            yield handle
        finally:
            _stop(proc)


def _read_url(proc: subprocess.Popen[str], err_path: Path) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("evalsvc mock: serving on "):
                return line.rsplit(" ", 1)[1].strip()
            if not line:  # EOF: the process ended
                break
        elif proc.poll() is not None:
            break
    proc.poll()
    raise RuntimeError(f"evalsvc mock did not start (exit code {proc.returncode}): "
                       f"{err_path.read_text(errors='replace').strip()}")


def _wait_healthy(handle: MockHandle, proc: subprocess.Popen[str], err_path: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if _get_json(handle.root_url + "/health").get("status") == "ok":
                return
        except (OSError, urllib.error.URLError, ValueError):
            if proc.poll() is not None:
                break
        time.sleep(0.05)
    raise RuntimeError(f"evalsvc mock at {handle.base_url} never answered /health: "
                       f"{err_path.read_text(errors='replace').strip()}")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def shard_pids(parent: int | None = None) -> list[int]:
    """The perf client processes (shards, `python -m evalsvc.core._entry evalsvc.core.perf._shards:...`) that
    are children of process `parent` (default: this process), from Linux /proc."""
    import os

    found = []
    for task in Path(f"/proc/{parent or os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"evalsvc.core.perf._shards" in cmdline:
                found.append(int(pid))
    return found


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers in one call."""

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, body: bytes, status: int = 200, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on 127.0.0.1 (a thread per request) until the block ends; yields http://127.0.0.1:PORT."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
