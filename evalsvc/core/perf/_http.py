"""A lean keep-alive HTTP/1.1 client for the load generator, built on aiohttp's own C parser.

`aiohttp.ClientSession` does a lot per request (URL and header handling, cookie and auth hooks, tracing,
request objects): measured here at roughly a tenth of wrk's requests/s against an in-memory endpoint,
which makes the client the bottleneck the engine must not be. A load test sends the same kind of request
thousands of times, so this client pre-encodes each request once (request line, headers, body) and on the
hot path only writes those bytes to a pooled connection and feeds the answer to aiohttp's llhttp-based
`HttpResponseParser`, which handles RFC 9112 framing (Content-Length, chunked, and a body delimited by the
end of the connection, as HTTP/1.0 servers and `Connection: close` answers send it) and yields the body as an
aiohttp `StreamReader`. TLS comes from asyncio. Proxies follow `evalsvc.core._net.proxy_for` (HTTP_PROXY,
HTTPS_PROXY, NO_PROXY): an http:// target is asked through the proxy in absolute form, an https:// target
through a CONNECT tunnel with TLS started inside it. Redirects are deliberately not followed (a benchmark
should measure the endpoint it names).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections import deque
from time import perf_counter
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp.http import HttpResponseParser

from .._net import default_port, host_port, proxy_for
from .._validate import require_headers

READ_LIMIT = 1 << 18  # StreamReader high-water mark: long responses at high concurrency need room


class ConnectionLost(Exception):
    """The server closed the connection (kind decided by the caller: before or after the first byte)."""


class RequestTimeout(Exception):
    """The per-request deadline passed."""


class ProxyError(OSError):
    """The proxy refused the tunnel or is not usable (a connection error of the request)."""


class _Conn(asyncio.Protocol):
    """One keep-alive connection. One request at a time; the parser resets between messages."""

    __slots__ = ("transport", "parser", "head", "lost", "payload", "got_bytes", "reused", "_reading_paused",
                 "connect_s")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.transport: asyncio.Transport | None = None
        # read_until_eof: a response with neither Content-Length nor chunked encoding ends with the connection
        # a plain asyncio.Protocol serves as the parser's protocol (it only needs the flow-control calls)
        self.parser = HttpResponseParser(self, loop, READ_LIMIT, auto_decompress=False,  # type: ignore[arg-type]
                                         read_until_eof=True)
        self.connect_s: float | None = None  # how long opening this connection took, until its first request
        self.head: asyncio.Future[Any] | None = None  # resolves to (message, payload)
        self.lost = False
        self.payload: Any = None
        self.got_bytes = False
        self.reused = False
        self._reading_paused = False

    @property
    def connected(self) -> bool:
        return self.transport is not None and not self.lost

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            messages, _, _ = self.parser.feed_data(data)
        except Exception as exc:  # a response that is not HTTP
            self._fail(ConnectionLost(f"invalid HTTP response: {exc}"))
            if self.transport is not None:
                self.transport.abort()
            return
        for message, payload in messages:
            self.payload = payload
            if self.head is not None and not self.head.done():
                self.head.set_result((message, payload))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        try:
            self.parser.feed_eof()  # completes bodies delimited by the end of the connection
        except Exception:
            pass
        self._fail(ConnectionLost("server closed the connection"))

    def _fail(self, exc: Exception) -> None:
        if self.head is not None and not self.head.done():
            self.head.set_exception(exc)
        payload = self.payload
        if payload is not None and not payload.is_eof():
            payload.set_exception(exc)

    # flow control used by aiohttp's StreamReader
    def pause_reading(self, *args: Any, **kwargs: Any) -> None:
        if self.transport is not None and not self.lost and not self._reading_paused:
            self.transport.pause_reading()
            self._reading_paused = True

    def resume_reading(self, *args: Any, **kwargs: Any) -> None:
        if self.transport is not None and not self.lost and self._reading_paused:
            self.transport.resume_reading()
            self._reading_paused = False


class Exchange:
    """One request/response on a pooled connection: `start()` sends and waits for the head."""

    __slots__ = ("client", "conn", "timer", "status", "payload", "keep_alive", "sent", "expired",
                 "content_type", "connect_s")

    def __init__(self, client: HttpClient) -> None:
        self.client = client
        self.conn: _Conn | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.status = 0
        self.payload: Any = None
        self.keep_alive = False
        self.sent: float | None = None  # perf_counter() just before the request was written
        self.expired = False
        self.content_type = ""
        self.connect_s: float | None = None  # seconds spent opening a connection for this request, if one was

    async def start(self, request: bytes, deadline: float) -> int:
        """Send `request` and return the status once the response head arrived.

        `deadline` (loop time) bounds everything: connecting, the head and, via `payload`, the body.
        """
        client = self.client
        loop = client.loop
        self.timer = loop.call_at(deadline, self._expire)
        for attempt in (0, 1):
            conn = await client._acquire(deadline)
            if self.expired:  # the deadline passed while connecting
                client._idle.append(conn)
                raise RequestTimeout()
            self.conn = conn
            if conn.connect_s is not None:
                self.connect_s, conn.connect_s = conn.connect_s, None
            conn.head = loop.create_future()
            conn.got_bytes = False
            conn.payload = None
            assert conn.transport is not None
            self.sent = perf_counter()
            conn.transport.write(request)
            try:
                message, payload = await conn.head
            except ConnectionLost:
                # a kept-alive connection the server had already closed: retry once on a fresh one
                if attempt == 0 and conn.reused and not conn.got_bytes and not self.expired:
                    continue
                raise
            self.status = message.code
            self.payload = payload
            self.keep_alive = not message.should_close
            self.content_type = message.headers.get("Content-Type", "")
            return self.status
        raise ConnectionLost("server closed the connection")  # pragma: no cover - loop always returns

    def _expire(self) -> None:
        self.expired = True
        conn = self.conn
        if conn is not None:
            conn._fail(RequestTimeout())
            if conn.transport is not None:
                conn.transport.abort()

    def finish(self) -> None:
        """Return the connection to the pool if the whole response was read and it may be reused."""
        if self.timer is not None:
            self.timer.cancel()
        conn = self.conn
        if conn is None:
            return
        self.conn = None
        payload = self.payload
        if self.keep_alive and not conn.lost and (payload is None or payload.is_eof()) and conn.head is not None \
                and conn.head.done() and not conn.head.exception():
            conn.reused = True
            self.client._idle.append(conn)
        elif conn.transport is not None:
            conn.transport.abort()


class HttpClient:
    """Keep-alive connections to one origin, created on demand and reused (no limit: callers bound it).

    `proxy` is the proxy URL to go through (see `_net.proxy_for`), or None to connect directly.
    """

    def __init__(self, url: str, *, connect_timeout: float, proxy: str | None = None) -> None:
        parts = urlsplit(url)
        self.loop = asyncio.get_running_loop()
        self.host, self.port = host_port(url)
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if parts.scheme == "https" else None
        self.connect_timeout = connect_timeout
        self.proxy = _Proxy(proxy) if proxy else None
        self._idle: deque[_Conn] = deque()
        self._all: list[_Conn] = []
        self.closed = False

    async def _acquire(self, deadline: float) -> _Conn:
        if self.closed:
            raise ConnectionLost("the client was closed")
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.lost:
                return conn
        loop = self.loop
        timeout = max(0.0, min(self.connect_timeout, deadline - loop.time()))
        began = perf_counter()
        try:
            conn = await asyncio.wait_for(self._open(), timeout=timeout)
        except asyncio.TimeoutError:
            if deadline - loop.time() <= 0:
                raise RequestTimeout() from None
            raise
        conn.connect_s = perf_counter() - began
        self._all.append(conn)
        if len(self._all) > 4 * (len(self._idle) + 64):
            self._all = [c for c in self._all if not c.lost]
        return conn

    async def _open(self) -> _Conn:
        """A new connection to the origin: direct, to the proxy (http://), or tunnelled through it (https://)."""
        loop = self.loop
        proxy = self.proxy
        if proxy is None:
            _, conn = await loop.create_connection(lambda: _Conn(loop), self.host, self.port, ssl=self.ssl,
                                                   server_hostname=self.host if self.ssl else None)
            return conn
        if proxy.error is not None:
            raise ProxyError(proxy.error)
        if self.ssl is None:  # plain http: requests go to the proxy in absolute form
            _, conn = await loop.create_connection(lambda: _Conn(loop), proxy.host, proxy.port)
            return conn
        transport, tunnel = await loop.create_connection(lambda: _Tunnel(loop), proxy.host, proxy.port)
        try:
            transport.write(proxy.connect_request(self.host, self.port))
            await tunnel.answer
            conn = _Conn(loop)
            tls = await loop.start_tls(transport, conn, self.ssl, server_hostname=self.host)
        except BaseException:
            transport.abort()
            raise
        if tls is None:  # the transport closed during the handshake
            raise ConnectionLost("the connection closed during the TLS handshake")
        conn.connection_made(tls)
        return conn

    def close(self) -> None:
        self.closed = True
        for conn in self._all:
            if conn.transport is not None and not conn.lost:
                conn.transport.close()
        self._all.clear()
        self._idle.clear()


class _Proxy:
    """An http:// proxy: where it listens and the Proxy-Authorization its URL's credentials give."""

    __slots__ = ("host", "port", "auth", "error")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.error: str | None = None  # why this proxy cannot be used: each request fails as a connection error
        if parts.scheme != "http":
            self.error = f"proxy {parts.scheme}://{parts.hostname}: only http:// proxies are supported"
        self.host = parts.hostname or ""
        self.port = parts.port or 80
        self.auth: str | None = None
        if parts.username is not None:
            raw = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.auth = "Basic " + base64.b64encode(raw).decode("ascii")

    def connect_request(self, host: str, port: int) -> bytes:
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if self.auth:
            lines.append(f"Proxy-Authorization: {self.auth}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Tunnel(asyncio.Protocol):
    """Reads a proxy's answer to CONNECT; `answer` resolves once a 2xx head arrived."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.answer: asyncio.Future[None] = loop.create_future()
        self._buf = b""

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > 65536:
                self.answer.set_exception(ProxyError("the proxy's answer to CONNECT has no end"))
            return
        status_line = self._buf.split(b"\r\n", 1)[0].decode("latin-1")
        fields = status_line.split(" ", 2)
        if len(fields) < 2 or not fields[1].isdigit() or not 200 <= int(fields[1]) < 300:
            self.answer.set_exception(ProxyError(f"the proxy refused the tunnel: {status_line[:100]}"))
        else:
            self.answer.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(ProxyError("the proxy closed the connection during CONNECT"))


def client_for(url: str, *, connect_timeout: float) -> HttpClient:
    """A client for `url`, through the proxy the environment names for it (see `_net.proxy_for`)."""
    return HttpClient(url, connect_timeout=connect_timeout, proxy=proxy_for(url))


def first_hop(url: str) -> tuple[str, int]:
    """(host, port) a connection for `url` is opened to: the proxy's when one applies, else the target's."""
    return host_port(proxy_for(url) or url)


def encode_request(url: str, headers: dict[str, str], body: bytes, proxy: str | None = None) -> bytes:
    """The complete bytes of a POST to `url` with `headers` and `body`.

    Through a `proxy`, an http:// target is asked in absolute form (RFC 9112 §3.2.2) with the proxy's
    credentials; an https:// target is asked normally inside the tunnel.
    """
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port and parts.port != default_port(parts.scheme):
        host = f"{host}:{parts.port}"
    via = _Proxy(proxy) if proxy and parts.scheme == "http" else None
    if via is not None:
        target = f"http://{host}{target}"
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}", "Accept: */*", "Connection: keep-alive"]
    if via is not None and via.auth:
        lines.append(f"Proxy-Authorization: {via.auth}")
    require_headers("headers", headers)
    seen = {"host", "content-length", "connection", "transfer-encoding"}
    for name, value in headers.items():
        if name.lower() in seen:
            continue
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
