"""The network side of reading a response right: proxies (one rule, used end to end), per-request records
a TPOT can be recomputed from, connection set-up kept apart from TTFT.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from evalsvc import PerfConfig, run_perf
from evalsvc.core import _net
from evalsvc.core._net import proxy_for
from evalsvc.core.perf._kinds import FailureKind
from evalsvc.core.perf._sender import Sender
from evalsvc.core.perf.dialects import get_dialect
from tests._servers import start_mock
from tests.core._replay import Reply, serve
from tests.core.test_conformance import CHAT, per_event

# -- the rule ------------------------------------------------------------------------------------------

RULES = [
    # (url, env, expected proxy)
    ("http://api.example.com/v1", {"HTTP_PROXY": "http://p:3128"}, "http://p:3128"),
    ("https://api.example.com/v1", {"HTTP_PROXY": "http://p:3128"}, None),  # https needs HTTPS_PROXY
    ("https://api.example.com/v1", {"HTTPS_PROXY": "p:3128"}, "http://p:3128"),  # no scheme: http://
    ("https://api.example.com/v1", {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:1"}, "http://low:1"),
    ("https://api.example.com/v1", {"https_proxy": "", "HTTPS_PROXY": "http://up:1"}, None),  # empty: none
    ("http://api.example.com/v1", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "example.com"}, None),
    ("http://api.example.com/v1", {"HTTP_PROXY": "http://p:1", "no_proxy": ".example.com"}, None),
    ("http://example.com.evil.io/", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "http://p:1"),
    ("http://notexample.com/", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "http://p:1"),
    ("http://api.example.com/", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "*"}, None),
    ("http://10.1.2.3:8000/v1", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, None),
    ("http://11.1.2.3:8000/v1", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, "http://p:1"),
    ("http://api.example.com:8000/", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "api.example.com:9000"}, "http://p:1"),
    ("http://api.example.com:9000/", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "a.b, api.example.com:9000"}, None),
    ("http://127.0.0.1:8000/v1", {"HTTP_PROXY": "http://p:1"}, None),  # loopback: always direct
    ("http://localhost:8000/v1", {"HTTP_PROXY": "http://p:1"}, None),
    ("http://[::1]:8000/v1", {"HTTP_PROXY": "http://p:1"}, None),
    ("http://api.example.com/", {}, None),
]


@pytest.mark.parametrize(("url", "env", "expected"), RULES)
def test_which_proxy_for_a_url(url: str, env: dict[str, str], expected: str | None) -> None:
    assert proxy_for(url, env) == expected


def test_loopback_bypass_can_be_turned_off_for_tests() -> None:
    assert proxy_for("http://127.0.0.1:1/", {"HTTP_PROXY": "http://p:1"}, bypass_loopback=False) == "http://p:1"


# -- end to end through a proxy on 127.0.0.1 -------------------------------------------------------------

class TinyProxy:
    """A forward proxy: absolute-form requests are relayed, CONNECT opens a tunnel. Keeps the request lines."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.auth: list[bytes] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        first = head.split(b"\r\n", 1)[0]
        self.lines.append(first)
        self.auth += [h for h in head.split(b"\r\n") if h.lower().startswith(b"proxy-authorization:")]
        method, target, _ = first.split(b" ", 2)
        if method == b"CONNECT":
            host, port = target.rsplit(b":", 1)
            up_r, up_w = await asyncio.open_connection(host.decode(), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = b""
        else:  # absolute form: http://host:port/path
            hostport = target.split(b"/")[2]
            host, port = hostport.rsplit(b":", 1)
            up_r, up_w = await asyncio.open_connection(host.decode(), int(port))
            path = b"/" + target.split(b"/", 3)[3]
            rest = head.replace(first, b" ".join([method, path, b"HTTP/1.1"]), 1)
        up_w.write(rest)
        await asyncio.gather(self.pipe(reader, up_w), self.pipe(up_r, writer))

    @staticmethod
    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()


@pytest.fixture
def through_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_net, "LOOPBACK_DIRECT", False)  # every target here is 127.0.0.1
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)


async def send_once(url: str, **kw: Any) -> Any:
    config = PerfConfig(model="m", url=url, api="openai", stream=True, timeout=20, connect_timeout=5,
                        dataset="random", prompt_tokens=4, **kw)
    sender = Sender(get_dialect("openai"), config, [b"{}"], [0])
    try:
        return await sender.send(0, None)
    finally:
        sender.close()


def test_http_target_through_the_proxy_in_absolute_form(through_proxy: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    async def go() -> tuple[Any, TinyProxy, int]:
        proxy = TinyProxy()
        pport = await proxy.start()
        server, port = await serve(Reply(per_event(CHAT)))
        monkeypatch.setenv("HTTP_PROXY", f"http://user:s%40cret@127.0.0.1:{pport}")
        out = await send_once(f"http://127.0.0.1:{port}/v1/chat/completions")
        server.close()
        proxy.server.close()
        return out, proxy, port

    out, proxy, port = asyncio.run(go())
    assert out.kind is None and out.chunks == 5 and out.output_tokens == 5
    assert proxy.lines == [f"POST http://127.0.0.1:{port}/v1/chat/completions HTTP/1.1".encode()]
    assert proxy.auth == [b"Proxy-Authorization: Basic dXNlcjpzQGNyZXQ="]  # user:s@cret
    assert out.connect is not None and out.connect > 0  # the connection was opened for it


def test_no_proxy_sends_it_direct(through_proxy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    async def go() -> tuple[Any, TinyProxy]:
        proxy = TinyProxy()
        pport = await proxy.start()
        server, port = await serve(Reply(per_event(CHAT)))
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{pport}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.0/8")
        out = await send_once(f"http://127.0.0.1:{port}/v1/chat/completions")
        server.close()
        proxy.server.close()
        return out, proxy

    out, proxy = asyncio.run(go())
    assert out.kind is None and proxy.lines == []


def test_a_refused_proxy_is_a_connection_error(through_proxy: None, monkeypatch: pytest.MonkeyPatch) -> None:
    async def go() -> Any:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()  # nothing listens there now
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
        return await send_once("https://127.0.0.1:9/v1/chat/completions")

    out = asyncio.run(go())
    assert out.kind == FailureKind.CONNECTION == "connection_error"


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_https_target_through_a_connect_tunnel(through_proxy: None, monkeypatch: pytest.MonkeyPatch,
                                               tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the test certificate

    async def go() -> tuple[Any, TinyProxy, int]:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        reply = Reply(per_event(CHAT))
        proxy = TinyProxy()
        pport = await proxy.start()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            from tests.core._replay import _answer
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
            await reader.readexactly(length)
            await _answer(reply, writer)
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
        port = server.sockets[0].getsockname()[1]
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{pport}")
        out = await send_once(f"https://127.0.0.1:{port}/v1/chat/completions")
        server.close()
        proxy.server.close()
        return out, proxy, port

    out, proxy, port = asyncio.run(go())
    assert proxy.lines == [f"CONNECT 127.0.0.1:{port} HTTP/1.1".encode()]
    assert out.kind is None and out.chunks == 5 and out.output_tokens == 5


# -- records and the peers' variants -----------------------------------------------------------------------

def test_records_let_tpot_be_recomputed_and_connect_time_is_apart(tmp_path: Path) -> None:
    with start_mock(ttft_ms=30, itl_ms=5, output_tokens=8) as mock:
        result = run_perf(PerfConfig(model="m", url=mock.chat_url, dataset="random", prompt_tokens=8, max_tokens=8,
                                     number=6, parallel=2, work_dir=str(tmp_path)))
    (run,) = result.results.values()
    m = run.metrics
    (path,) = Path(result.output_dir).glob("requests_*.jsonl")
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert m["requests_succeeded"] == 6 and m["responses_not_streamed"] == 0
    tpots = [(r["last_token_ms"] - r["first_token_ms"]) / (r["output_tokens"] - 1) for r in recs]
    assert sum(tpots) / len(tpots) == pytest.approx(m["tpot_ms_mean"], rel=1e-4)
    assert all(r["streamed"] for r in recs)
    opened = [r["connect_ms"] for r in recs if r["connect_ms"] is not None]
    assert 1 <= len(opened) == m["connections_opened"]  # only requests that opened a connection have one
    assert all(c > 0 for c in opened)
    assert m["latency_to_last_token_ms_mean"] <= m["latency_ms_mean"]
    assert m["ttft_ms_mean"] <= m["latency_to_last_token_ms_mean"]


def test_a_stream_answered_with_one_body_has_no_tpot_and_is_reported(tmp_path: Path) -> None:
    with start_mock(ttft_ms=0, itl_ms=0, output_tokens=8) as mock:
        # the mock answers stream:true with SSE; ask the non-stream route shape through extra_body
        result = run_perf(PerfConfig(model="m", url=mock.chat_url, dataset="random", prompt_tokens=8, max_tokens=8,
                                     number=4, parallel=1, work_dir=str(tmp_path),
                                     extra_body={"stream": False, "stream_options": None}))
    m = next(iter(result.results.values())).metrics
    assert m["requests_succeeded"] == 4 and m["responses_not_streamed"] == 4
    assert m["tpot_ms_mean"] is None  # never 0.0
