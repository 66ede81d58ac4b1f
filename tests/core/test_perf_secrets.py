"""A key an endpoint echoes in its error body never reaches perf's output files in clear (issue 9.5)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from evalsvc import PerfConfig, run_perf

KEY = "sk-live-0123456789abcdef"


class _Echo(BaseHTTPRequestHandler):
    """Answers 401 quoting the key it was sent, as some gateways do ("Incorrect API key provided: ...")."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        key = (self.headers.get("authorization") or "").removeprefix("Bearer ")
        body = (f'{{"error": {{"message": "Incorrect API key provided: {key}. Token {key} / '
                f'{self.headers.get("x-api-token")}"}}}}').encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"
    finally:
        server.shutdown()
        server.server_close()


def test_an_echoed_key_is_masked_in_every_file_the_run_writes(tmp_path: Path) -> None:
    with _echo_server() as url:
        config = PerfConfig(model="m", url=url, api_key=KEY, headers={"X-Api-Token": "tok-9876543210"},
                            dataset="random", prompt_tokens=8, max_tokens=4, number=3, parallel=1,
                            preflight=False, work_dir=str(tmp_path))
        result = run_perf(config)
    files = [p for p in Path(result.output_dir).rglob("*") if p.is_file()]
    records = [p for p in files if p.name.startswith("requests_")]
    assert records
    lines = records[0].read_text().splitlines()
    assert len(lines) == 3 and all('"error":"http_401"' in line.replace(" ", "") for line in lines)
    assert "Incorrect API key provided: ***" in lines[0]
    for path in files:
        text = path.read_text(errors="replace")
        assert KEY not in text and "tok-9876543210" not in text, path
